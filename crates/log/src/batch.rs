//! The record batch (magic 2) header codec and produce-side validation.
//!
//! Runnel stores batches exactly as producers send them, so this is the only place that knows the header layout.
//! `validate_batches` checks a produce request's bytes once, before they reach the log: length bounds, magic,
//! CRC-32C, record counts and, for uncompressed batches, that the records walk exactly to the batch end. It never
//! decompresses and never sizes an allocation from a count read off the wire.

use crate::varint::read_varint;
use crate::BATCH_HEADER_BYTES;

/// Bytes before the part counted by `batchLength`: baseOffset (8) and batchLength (4).
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// The smallest legal `batchLength`: a header with no records.
pub const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES) as i32;
/// The record batch format this engine stores.
pub const MAGIC_V2: i8 = 2;

/// Byte offsets of the header fields the broker rewrites or reads without a full parse.
pub const BASE_OFFSET_POS: usize = 0;
pub const BATCH_LENGTH_POS: usize = 8;
pub const PARTITION_LEADER_EPOCH_POS: usize = 12;
pub const MAGIC_POS: usize = 16;
pub const CRC_POS: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
pub const ATTRIBUTES_POS: usize = 21;
pub const MAX_TIMESTAMP_POS: usize = 35;

const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: the timestamps are the broker's append time.
pub const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// A batch that failed validation or decoding.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum BatchError {
    #[error("batch at position {position} is truncated: needs {needed} bytes, {available} available")]
    Truncated { position: usize, needed: usize, available: usize },
    #[error("batch at position {position} has invalid batch length {batch_length}")]
    InvalidLength { position: usize, batch_length: i32 },
    #[error("unsupported record batch magic {magic}")]
    UnsupportedMagic { magic: i8 },
    #[error("batch crc mismatch: header says {expected:#010x}, content has {actual:#010x}")]
    CorruptCrc { expected: u32, actual: u32 },
    #[error(
        "batch at position {position} has records count {records_count} with last offset delta {last_offset_delta}"
    )]
    InvalidRecordCount { position: usize, records_count: i32, last_offset_delta: i32 },
    #[error("batch of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("invalid records in batch at position {position}: {reason}")]
    InvalidRecords { position: usize, reason: &'static str },
    #[error("unsupported compression codec {codec}")]
    UnsupportedCompression { codec: u8 },
    #[error("cannot decompress {compression:?} records: {reason}")]
    Decompression { compression: Compression, reason: String },
    #[error("decompressed records exceed the limit of {max} bytes")]
    DecompressedTooLarge { max: usize },
    #[error("empty record set")]
    Empty,
}

/// The compression codec in attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    /// Codec bits Kafka does not define (5-7); validation rejects them.
    Unknown(u8),
}

impl Compression {
    /// The codec encoded in `attributes`.
    pub fn from_attributes(attributes: i16) -> Compression {
        match (attributes & COMPRESSION_MASK) as u8 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => Compression::Unknown(other),
        }
    }

    /// The attribute bits for this codec.
    pub fn attribute_bits(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
            Compression::Unknown(code) => i16::from(code) & COMPRESSION_MASK,
        }
    }
}

/// Attribute bit 3: whose clock the batch's timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    #[default]
    CreateTime,
    LogAppendTime,
}

/// The 61-byte header of a magic-2 record batch, field by field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i64(buf: &[u8], pos: usize) -> i64 {
    i64::from_be_bytes(buf[pos..pos + 8].try_into().expect("slice of 8 bytes"))
}

fn be_i32(buf: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes(buf[pos..pos + 4].try_into().expect("slice of 4 bytes"))
}

fn be_i16(buf: &[u8], pos: usize) -> i16 {
    i16::from_be_bytes(buf[pos..pos + 2].try_into().expect("slice of 2 bytes"))
}

impl BatchHeader {
    /// Decodes the header fields from the first 61 bytes of `buf`. Checks nothing but the length.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated { position: 0, needed: BATCH_HEADER_BYTES, available: buf.len() });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, 0),
            batch_length: be_i32(buf, 8),
            partition_leader_epoch: be_i32(buf, 12),
            magic: buf[16] as i8,
            crc: be_i32(buf, 17) as u32,
            attributes: be_i16(buf, 21),
            last_offset_delta: be_i32(buf, 23),
            base_timestamp: be_i64(buf, 27),
            max_timestamp: be_i64(buf, 35),
            producer_id: be_i64(buf, 43),
            producer_epoch: be_i16(buf, 51),
            base_sequence: be_i32(buf, 53),
            records_count: be_i32(buf, 57),
        })
    }

    /// Writes the 61 header bytes (the CRC as stored in `self`, not recomputed) into `out[..61]`.
    pub fn encode(&self, out: &mut [u8]) {
        assert!(out.len() >= BATCH_HEADER_BYTES, "header buffer too small");
        out[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        out[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        out[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out[16] = self.magic as u8;
        out[17..21].copy_from_slice(&self.crc.to_be_bytes());
        out[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        out[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        out[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        out[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        out[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        out[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        out[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        out[57..61].copy_from_slice(&self.records_count.to_be_bytes());
    }

    /// Size of the whole batch on disk: the 12 bytes of log overhead plus `batchLength` (0 overhead if negative).
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD_BYTES + usize::try_from(self.batch_length).unwrap_or(0)
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }

    pub fn compression(&self) -> Compression {
        Compression::from_attributes(self.attributes)
    }

    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// CRC-32C of a whole batch's covered bytes (attributes to end).
pub fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_POS..])
}

/// What validation learned about one batch of a produce request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchInfo {
    /// Byte position of the batch within the validated buffer.
    pub position: usize,
    /// Total bytes of the batch, header included.
    pub size: usize,
    pub records_count: i32,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub attributes: i16,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl BatchInfo {
    pub fn compression(&self) -> Compression {
        Compression::from_attributes(self.attributes)
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }
}

/// A produce request's records, checked batch by batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedBatches {
    pub batches: Vec<BatchInfo>,
    /// Sum of the batches' record counts.
    pub records_count: i64,
    /// Length of the validated buffer (the sum of the batch sizes).
    pub bytes: usize,
}

/// Validates a produce request's records: a sequence of whole magic-2 batches.
///
/// Checks each batch's length bounds (at least a header, within the buffer, at most `max_batch_bytes`), magic, CRC-32C,
/// that `records_count >= 1` and equals `last_offset_delta + 1`, and for uncompressed batches that the records' length
/// varints walk exactly to the batch end with exactly `records_count` records. Compressed batches stay compressed.
/// An empty buffer or trailing partial bytes are errors.
pub fn validate_batches(records: &[u8], max_batch_bytes: usize) -> Result<ValidatedBatches, BatchError> {
    if records.is_empty() {
        return Err(BatchError::Empty);
    }
    // Each batch is at least 61 bytes, so this vector is bounded by the buffer length, not by any wire count.
    let mut batches = Vec::new();
    let mut records_count = 0i64;
    let mut position = 0usize;
    while position < records.len() {
        let info = validate_one(&records[position..], position, max_batch_bytes)?;
        position += info.size;
        records_count += i64::from(info.records_count);
        batches.push(info);
    }
    Ok(ValidatedBatches { batches, records_count, bytes: records.len() })
}

/// Validates the batch at the start of `buf`, which sits at `position` in the request.
fn validate_one(buf: &[u8], position: usize, max_batch_bytes: usize) -> Result<BatchInfo, BatchError> {
    if buf.len() <= MAGIC_POS {
        return Err(BatchError::Truncated { position, needed: MAGIC_POS + 1, available: buf.len() });
    }
    // Magic 0 and 1 message sets keep the magic byte at the same position, so check it before the v2 length rules.
    let magic = buf[MAGIC_POS] as i8;
    if magic != MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic { magic });
    }
    let batch_length = be_i32(buf, BATCH_LENGTH_POS);
    if batch_length < BATCH_LENGTH_MIN {
        return Err(BatchError::InvalidLength { position, batch_length });
    }
    let size = LOG_OVERHEAD_BYTES + batch_length as usize;
    if size > max_batch_bytes {
        return Err(BatchError::TooLarge { size, max: max_batch_bytes });
    }
    if size > buf.len() {
        return Err(BatchError::Truncated { position, needed: size, available: buf.len() });
    }
    let batch = &buf[..size];
    let header = BatchHeader::parse(batch)?;
    let actual = batch_crc(batch);
    if actual != header.crc {
        return Err(BatchError::CorruptCrc { expected: header.crc, actual });
    }
    check_record_count(&header, position)?;
    match header.compression() {
        Compression::None => walk_records(&batch[BATCH_HEADER_BYTES..], &header, position)?,
        Compression::Unknown(codec) => return Err(BatchError::UnsupportedCompression { codec }),
        _ => {}
    }
    Ok(BatchInfo {
        position,
        size,
        records_count: header.records_count,
        last_offset_delta: header.last_offset_delta,
        base_timestamp: header.base_timestamp,
        max_timestamp: header.max_timestamp,
        attributes: header.attributes,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
    })
}

/// Checks `records_count >= 1` and `records_count == last_offset_delta + 1`.
pub(crate) fn check_record_count(header: &BatchHeader, position: usize) -> Result<(), BatchError> {
    if header.records_count < 1 || i64::from(header.last_offset_delta) + 1 != i64::from(header.records_count) {
        return Err(BatchError::InvalidRecordCount {
            position,
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(())
}

/// The record count rule for batches already in a log: compaction removes records but keeps the batch's base
/// offset, so a stored batch may hold fewer records than its offset range, never more.
pub(crate) fn check_stored_record_count(header: &BatchHeader, position: usize) -> Result<(), BatchError> {
    if header.records_count < 0
        || header.last_offset_delta < 0
        || i64::from(header.records_count) > i64::from(header.last_offset_delta) + 1
    {
        return Err(BatchError::InvalidRecordCount {
            position,
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(())
}

/// Walks the length prefixes of uncompressed records: they must end exactly at the batch end after exactly
/// `records_count` records. The loop is bounded by the bytes, so a huge claimed count costs nothing.
fn walk_records(body: &[u8], header: &BatchHeader, position: usize) -> Result<(), BatchError> {
    let invalid = |reason| BatchError::InvalidRecords { position, reason };
    let mut pos = 0usize;
    let mut walked = 0i64;
    while pos < body.len() {
        let (length, used) = read_varint(&body[pos..]).ok_or(invalid("bad record length varint"))?;
        pos += used;
        let length = usize::try_from(length).map_err(|_| invalid("negative record length"))?;
        if length > body.len() - pos {
            return Err(invalid("record overruns the batch"));
        }
        pos += length;
        walked += 1;
        if walked > i64::from(header.records_count) {
            return Err(invalid("more records than records count"));
        }
    }
    if walked != i64::from(header.records_count) {
        return Err(invalid("fewer records than records count"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{simple_batch, BatchBuilder, TestRecord};
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;

    fn arb_header() -> impl Strategy<Value = BatchHeader> {
        (
            (any::<i64>(), any::<i32>(), any::<i32>(), any::<i8>(), any::<u32>()),
            (any::<i16>(), any::<i32>(), any::<i64>(), any::<i64>()),
            (any::<i64>(), any::<i16>(), any::<i32>(), any::<i32>()),
        )
            .prop_map(|(a, b, c)| BatchHeader {
                base_offset: a.0,
                batch_length: a.1,
                partition_leader_epoch: a.2,
                magic: a.3,
                crc: a.4,
                attributes: b.0,
                last_offset_delta: b.1,
                base_timestamp: b.2,
                max_timestamp: b.3,
                producer_id: c.0,
                producer_epoch: c.1,
                base_sequence: c.2,
                records_count: c.3,
            })
    }

    fn arb_compression() -> impl Strategy<Value = Compression> {
        prop_oneof![
            Just(Compression::None),
            Just(Compression::Gzip),
            Just(Compression::Snappy),
            Just(Compression::Lz4),
            Just(Compression::Zstd),
        ]
    }

    fn arb_record() -> impl Strategy<Value = TestRecord> {
        (
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            proptest::collection::vec(
                (
                    proptest::collection::vec(any::<u8>(), 0..8),
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
                ),
                0..3,
            ),
            0i64..10_000,
        )
            .prop_map(|(key, value, headers, timestamp_delta)| TestRecord {
                key,
                value,
                headers,
                timestamp_delta,
            })
    }

    fn set_crc(batch: &mut [u8]) {
        let crc = batch_crc(batch);
        batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    }

    proptest! {
        // Goal: every header survives encode then parse unchanged, whatever its field values.
        #[test]
        fn header_roundtrip(header in arb_header()) {
            let mut buf = [0u8; BATCH_HEADER_BYTES];
            header.encode(&mut buf);
            prop_assert_eq!(BatchHeader::parse(&buf).unwrap(), header);
        }

        // Goal: well-formed batches (any codec, any records) validate, and the info matches the builder's header.
        #[test]
        fn accepts_built_batches(
            batches in proptest::collection::vec(
                (proptest::collection::vec(arb_record(), 1..8), arb_compression()), 1..4)
        ) {
            let mut buf = Vec::new();
            let mut expected_records = 0i64;
            for (records, compression) in &batches {
                let mut builder = BatchBuilder::new(1_700_000_000_000).compression(*compression);
                builder.records = records.clone();
                expected_records += records.len() as i64;
                buf.extend_from_slice(&builder.build());
            }
            let validated = validate_batches(&buf, MAX).unwrap();
            prop_assert_eq!(validated.batches.len(), batches.len());
            prop_assert_eq!(validated.records_count, expected_records);
            prop_assert_eq!(validated.bytes, buf.len());
            let mut position = 0;
            for info in &validated.batches {
                prop_assert_eq!(info.position, position);
                let header = BatchHeader::parse(&buf[position..]).unwrap();
                prop_assert_eq!(info.size, header.total_bytes());
                prop_assert_eq!(info.max_timestamp, header.max_timestamp);
                position += info.size;
            }
        }

        // Goal: flipping any byte covered by the CRC, or the length or magic, is rejected.
        #[test]
        fn rejects_any_flipped_byte(
            n in 1usize..5, compression in arb_compression(), pick in any::<prop::sample::Index>(), flip in 1u8..=255
        ) {
            let mut batch = simple_batch(n, 16, compression);
            let pos = BATCH_LENGTH_POS + pick.index(batch.len() - BATCH_LENGTH_POS);
            if (PARTITION_LEADER_EPOCH_POS..MAGIC_POS).contains(&pos) {
                // The leader epoch is not covered by the CRC: the broker rewrites it.
                return Ok(());
            }
            batch[pos] ^= flip;
            prop_assert!(validate_batches(&batch, MAX).is_err());
        }
    }

    #[test]
    fn rejects_bad_crc() {
        let mut batch = simple_batch(3, 10, Compression::None);
        let last = batch.len() - 1;
        batch[last] ^= 0x55;
        assert!(matches!(validate_batches(&batch, MAX), Err(BatchError::CorruptCrc { .. })));
    }

    #[test]
    fn rejects_old_magic() {
        for magic in [0i8, 1] {
            let mut batch = simple_batch(1, 10, Compression::None);
            batch[MAGIC_POS] = magic as u8;
            assert_eq!(validate_batches(&batch, MAX), Err(BatchError::UnsupportedMagic { magic }));
        }
    }

    #[test]
    fn rejects_truncation_and_trailing_bytes() {
        let batch = simple_batch(2, 10, Compression::None);
        for cut in [1, 10, 16, 17, 60, 61, batch.len() - 1] {
            let err = validate_batches(&batch[..cut], MAX).unwrap_err();
            assert!(matches!(err, BatchError::Truncated { .. }), "cut {cut}: {err:?}");
        }
        let mut two = batch.clone();
        two.extend_from_slice(&batch[..30]);
        assert!(matches!(
            validate_batches(&two, MAX),
            Err(BatchError::Truncated { position, .. }) if position == batch.len()
        ));
        assert_eq!(validate_batches(&[], MAX), Err(BatchError::Empty));
    }

    #[test]
    fn rejects_count_mismatch() {
        let mut batch = simple_batch(3, 10, Compression::None);
        // Claim 4 records consistently in the header while only 3 are present.
        batch[23..27].copy_from_slice(&3i32.to_be_bytes());
        batch[57..61].copy_from_slice(&4i32.to_be_bytes());
        set_crc(&mut batch);
        assert!(matches!(validate_batches(&batch, MAX), Err(BatchError::InvalidRecords { .. })));
        // Header inconsistent with itself.
        let mut batch = simple_batch(3, 10, Compression::None);
        batch[57..61].copy_from_slice(&5i32.to_be_bytes());
        set_crc(&mut batch);
        assert!(matches!(validate_batches(&batch, MAX), Err(BatchError::InvalidRecordCount { .. })));
        // Zero records.
        let mut batch = simple_batch(1, 10, Compression::None);
        batch[23..27].copy_from_slice(&(-1i32).to_be_bytes());
        batch[57..61].copy_from_slice(&0i32.to_be_bytes());
        set_crc(&mut batch);
        assert!(matches!(validate_batches(&batch, MAX), Err(BatchError::InvalidRecordCount { .. })));
    }

    #[test]
    fn rejects_oversize() {
        let batch = simple_batch(10, 100, Compression::None);
        assert_eq!(
            validate_batches(&batch, batch.len() - 1),
            Err(BatchError::TooLarge { size: batch.len(), max: batch.len() - 1 })
        );
        assert!(validate_batches(&batch, batch.len()).is_ok());
    }

    #[test]
    fn rejects_huge_claimed_count_without_allocating() {
        // A 70-byte batch claiming i32::MAX records, consistent in its header and with a valid CRC: the record walk is
        // bounded by the 9 bytes present, so this returns quickly instead of reserving room for 2^31 records.
        let mut batch = simple_batch(1, 1, Compression::None);
        batch.truncate(BATCH_HEADER_BYTES);
        batch.extend_from_slice(&[0u8; 9]);
        let batch_length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
        batch[8..12].copy_from_slice(&batch_length.to_be_bytes());
        batch[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        set_crc(&mut batch);
        assert_eq!(batch.len(), 70);
        assert!(matches!(validate_batches(&batch, MAX), Err(BatchError::InvalidRecords { .. })));
        // A compressed batch with the same claim passes validation (its records stay compressed); the bounded
        // decoder in `records` rejects it.
        batch[22] = 1; // gzip
        set_crc(&mut batch);
        let validated = validate_batches(&batch, MAX).unwrap();
        assert_eq!(validated.records_count, i64::from(i32::MAX));
        assert!(crate::records::records(&batch, 1 << 20).is_err());
    }

    #[test]
    fn rejects_short_length_and_unknown_codec() {
        let mut batch = simple_batch(1, 1, Compression::None);
        batch[8..12].copy_from_slice(&10i32.to_be_bytes());
        assert!(matches!(validate_batches(&batch, MAX), Err(BatchError::InvalidLength { batch_length: 10, .. })));
        let mut batch = simple_batch(1, 1, Compression::None);
        batch[22] = 6;
        set_crc(&mut batch);
        assert_eq!(validate_batches(&batch, MAX), Err(BatchError::UnsupportedCompression { codec: 6 }));
    }
}
