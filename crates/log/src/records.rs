//! Record-level decoding of a v2 batch: decompression with a bounded output size and an iterator of `RecordView`s.
//!
//! The produce and fetch paths never come here; they move whole batches. This is for the few places that must look
//! inside a batch: timestamp lookups, and the broker's own internal topics. Every count and length read here is
//! untrusted, so nothing is sized from them and decompressed output is capped by the caller.

use std::io::Read;

use bytes::Bytes;

use crate::batch::{check_stored_record_count, BatchError, BatchHeader, Compression, TimestampType};
use crate::varint::{read_varint, read_varlong};
use crate::BATCH_HEADER_BYTES;

/// The decompressed size limit the log uses when it looks inside a stored batch.
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 64 << 20;

/// Magic prefix of the block framing that Java clients write around snappy blocks.
const SNAPPY_FRAMED_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_FRAMED_HEADER_BYTES: usize = 16;

/// One record header (a key and an optional value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    pub key: Bytes,
    pub value: Option<Bytes>,
}

/// One decoded record with its absolute offset and effective timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordView {
    pub offset: i64,
    /// The batch's max timestamp for LogAppendTime batches, else base timestamp + the record's delta.
    pub timestamp: i64,
    pub attributes: i8,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<RecordHeader>,
}

/// Iterator over the records of one batch. Yields an error (then stops) if the records do not match the header.
#[derive(Debug)]
pub struct Records {
    header: BatchHeader,
    data: Bytes,
    pos: usize,
    yielded: i32,
    done: bool,
}

/// Decodes the batch at the start of `batch` for record iteration, decompressing at most `max_decompressed_bytes`.
pub fn records(batch: &[u8], max_decompressed_bytes: usize) -> Result<Records, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.magic != crate::batch::MAGIC_V2 {
        return Err(BatchError::UnsupportedMagic { magic: header.magic });
    }
    let size = header.total_bytes();
    if size < BATCH_HEADER_BYTES || size > batch.len() {
        return Err(BatchError::Truncated {
            position: 0,
            needed: size.max(BATCH_HEADER_BYTES),
            available: batch.len(),
        });
    }
    check_stored_record_count(&header, 0)?;
    let body = &batch[BATCH_HEADER_BYTES..size];
    let data = match header.compression() {
        Compression::None => Bytes::copy_from_slice(body),
        compression => Bytes::from(decompress(compression, body, max_decompressed_bytes)?),
    };
    Ok(Records { header, data, pos: 0, yielded: 0, done: false })
}

impl Records {
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The next record with its encoded bytes (length prefix included), so a record can be copied into another
    /// batch with the same base offset and base timestamp unchanged.
    pub fn next_with_bytes(&mut self) -> Option<Result<(RecordView, Bytes), BatchError>> {
        let start = self.pos;
        let view = self.next()?;
        Some(view.map(|view| (view, self.data.slice(start..self.pos))))
    }

    fn parse_next(&mut self) -> Result<RecordView, BatchError> {
        let invalid = |reason| BatchError::InvalidRecords { position: 0, reason };
        let rest = &self.data[self.pos..];
        let (length, used) = read_varint(rest).ok_or(invalid("bad record length varint"))?;
        let length = usize::try_from(length).map_err(|_| invalid("negative record length"))?;
        if length > rest.len() - used {
            return Err(invalid("record overruns the batch"));
        }
        let start = self.pos + used;
        let body = self.data.slice(start..start + length);
        let mut cursor = Cursor { data: &body, pos: 0 };
        let view = self.parse_record(&mut cursor, &body)?;
        if cursor.pos != body.len() {
            return Err(invalid("record length does not match its fields"));
        }
        self.pos = start + length;
        Ok(view)
    }

    fn parse_record(&self, c: &mut Cursor<'_>, body: &Bytes) -> Result<RecordView, BatchError> {
        let attributes = c.byte()? as i8;
        let timestamp_delta = c.varlong()?;
        let offset_delta = c.varint()?;
        let key = c.nullable_bytes(body)?;
        let value = c.nullable_bytes(body)?;
        let headers_count = c.varint()?;
        // Each header takes at least two bytes, which bounds the loop by the data rather than by the claimed count.
        let headers_count = usize::try_from(headers_count)
            .ok()
            .filter(|&n| n <= (body.len() - c.pos) / 2)
            .ok_or(c.invalid("invalid headers count"))?;
        let mut headers = Vec::new();
        for _ in 0..headers_count {
            let key = c.nullable_bytes(body)?.ok_or(c.invalid("null header key"))?;
            let value = c.nullable_bytes(body)?;
            headers.push(RecordHeader { key, value });
        }
        let timestamp = match self.header.timestamp_type() {
            TimestampType::LogAppendTime => self.header.max_timestamp,
            TimestampType::CreateTime => self.header.base_timestamp.wrapping_add(timestamp_delta),
        };
        Ok(RecordView {
            offset: self.header.base_offset + i64::from(offset_delta),
            timestamp,
            attributes,
            key,
            value,
            headers,
        })
    }
}

impl Iterator for Records {
    type Item = Result<RecordView, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.yielded == self.header.records_count {
            self.done = true;
            if self.pos != self.data.len() {
                return Some(Err(BatchError::InvalidRecords { position: 0, reason: "bytes after the last record" }));
            }
            return None;
        }
        match self.parse_next() {
            Ok(view) => {
                self.yielded += 1;
                Some(Ok(view))
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

/// Bounds-checked reader over one record's bytes.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn invalid(&self, reason: &'static str) -> BatchError {
        BatchError::InvalidRecords { position: 0, reason }
    }

    fn byte(&mut self) -> Result<u8, BatchError> {
        let b = *self.data.get(self.pos).ok_or(self.invalid("truncated record"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<i32, BatchError> {
        let (v, used) = read_varint(&self.data[self.pos..]).ok_or(self.invalid("bad varint"))?;
        self.pos += used;
        Ok(v)
    }

    fn varlong(&mut self) -> Result<i64, BatchError> {
        let (v, used) = read_varlong(&self.data[self.pos..]).ok_or(self.invalid("bad varlong"))?;
        self.pos += used;
        Ok(v)
    }

    /// A varint length then that many bytes, sliced from `owner` without copying; length -1 is null.
    fn nullable_bytes(&mut self, owner: &Bytes) -> Result<Option<Bytes>, BatchError> {
        let length = self.varint()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| self.invalid("negative length"))?;
        if length > self.data.len() - self.pos {
            return Err(self.invalid("field overruns the record"));
        }
        let out = owner.slice(self.pos..self.pos + length);
        self.pos += length;
        Ok(Some(out))
    }
}

/// Decompresses a batch's records, failing once the output would exceed `max_bytes`.
pub fn decompress(compression: Compression, input: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let failed = |reason: String| BatchError::Decompression { compression, reason };
    match compression {
        Compression::None => bounded_read(input, max_bytes, compression),
        Compression::Gzip => bounded_read(flate2::read::MultiGzDecoder::new(input), max_bytes, compression),
        Compression::Lz4 => bounded_read(lz4_flex::frame::FrameDecoder::new(input), max_bytes, compression),
        Compression::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(input).map_err(|e| failed(e.to_string()))?;
            bounded_read(decoder, max_bytes, compression)
        }
        Compression::Snappy => decompress_snappy(input, max_bytes),
        Compression::Unknown(codec) => Err(BatchError::UnsupportedCompression { codec }),
    }
}

/// Reads `reader` to the end, never holding more than `max_bytes + 1` bytes.
fn bounded_read(reader: impl Read, max_bytes: usize, compression: Compression) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    reader
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| BatchError::Decompression { compression, reason: e.to_string() })?;
    if out.len() > max_bytes {
        return Err(BatchError::DecompressedTooLarge { max: max_bytes });
    }
    Ok(out)
}

/// Snappy comes either as one raw block or in the block framing Java clients write (magic, version, compatible
/// version, then length-prefixed raw blocks). Each block's decompressed size is read from its preamble and checked
/// against the limit before anything is allocated.
fn decompress_snappy(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let failed = |reason: String| BatchError::Decompression { compression: Compression::Snappy, reason };
    let mut out = Vec::new();
    let push_block = |block: &[u8], out: &mut Vec<u8>| -> Result<(), BatchError> {
        let len = snap::raw::decompress_len(block).map_err(|e| failed(e.to_string()))?;
        if len > max_bytes - out.len() {
            return Err(BatchError::DecompressedTooLarge { max: max_bytes });
        }
        let start = out.len();
        out.resize(start + len, 0);
        snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(|e| failed(e.to_string()))?;
        Ok(())
    };
    if !input.starts_with(&SNAPPY_FRAMED_MAGIC) {
        push_block(input, &mut out)?;
        return Ok(out);
    }
    let mut pos = SNAPPY_FRAMED_HEADER_BYTES.min(input.len());
    while pos < input.len() {
        let len_bytes = input.get(pos..pos + 4).ok_or_else(|| failed("truncated block length".to_string()))?;
        let len = u32::from_be_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        pos += 4;
        let block = input.get(pos..pos.saturating_add(len)).ok_or_else(|| failed("truncated block".to_string()))?;
        push_block(block, &mut out)?;
        pos += len;
    }
    Ok(out)
}

/// Compresses `data` the way Kafka producers do for each codec (snappy in the Java clients' block framing, which
/// every client reads).
pub fn compress(compression: Compression, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    use std::io::Write;
    let failed = |_| BatchError::InvalidRecords { position: 0, reason: "compression failed" };
    Ok(match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(data).map_err(failed)?;
            encoder.finish().map_err(failed)?
        }
        Compression::Snappy => {
            let mut out = SNAPPY_FRAMED_MAGIC.to_vec();
            out.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
            for chunk in data.chunks(32 * 1024) {
                let block = snap::raw::Encoder::new()
                    .compress_vec(chunk)
                    .map_err(|_| BatchError::InvalidRecords { position: 0, reason: "compression failed" })?;
                out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            out
        }
        Compression::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(data).map_err(failed)?;
            encoder.finish().map_err(|_| BatchError::InvalidRecords { position: 0, reason: "compression failed" })?
        }
        Compression::Zstd => zstd::encode_all(data, 3).map_err(failed)?,
        Compression::Unknown(codec) => return Err(BatchError::UnsupportedCompression { codec }),
    })
}

/// A copy of the batch `header` holding only `kept`, records taken from it by [`Records::next_with_bytes`] in
/// order: same base offset, base timestamp, producer fields, attributes and codec; the last offset delta, record
/// count and (for CreateTime) max timestamp follow the kept records; a new CRC. `kept` must not be empty.
pub fn rebuild_batch(header: &BatchHeader, kept: &[(RecordView, Bytes)]) -> Result<Vec<u8>, BatchError> {
    let (last, _) = kept.last().expect("a rebuilt batch keeps at least one record");
    let mut body = Vec::with_capacity(kept.iter().map(|(_, b)| b.len()).sum());
    for (_, bytes) in kept {
        body.extend_from_slice(bytes);
    }
    let body = compress(header.compression(), &body)?;
    let max_timestamp = match header.timestamp_type() {
        TimestampType::LogAppendTime => header.max_timestamp,
        TimestampType::CreateTime => kept.iter().map(|(r, _)| r.timestamp).max().unwrap_or(header.base_timestamp),
    };
    let rebuilt = BatchHeader {
        batch_length: (BATCH_HEADER_BYTES - 12 + body.len()) as i32,
        crc: 0,
        last_offset_delta: (last.offset - header.base_offset) as i32,
        max_timestamp,
        records_count: kept.len() as i32,
        ..*header
    };
    let mut out = vec![0u8; BATCH_HEADER_BYTES];
    rebuilt.encode(&mut out);
    out.extend_from_slice(&body);
    let crc = crate::batch::batch_crc(&out);
    out[crate::batch::CRC_POS..crate::batch::CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{compress, BatchBuilder, TestRecord};

    const CODECS: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    fn sample_records() -> Vec<TestRecord> {
        vec![
            TestRecord {
                key: Some(b"k1".to_vec()),
                value: Some(b"hello".to_vec()),
                headers: vec![(b"h".to_vec(), Some(b"v".to_vec())), (b"n".to_vec(), None)],
                timestamp_delta: 0,
            },
            TestRecord { key: None, value: None, headers: vec![], timestamp_delta: 7 },
            TestRecord { key: Some(vec![]), value: Some(vec![9; 300]), headers: vec![], timestamp_delta: 3 },
        ]
    }

    // Goal: every codec decodes back to the records the builder wrote, with absolute offsets and timestamps.
    #[test]
    fn iterates_all_codecs() {
        for codec in CODECS {
            let mut builder = BatchBuilder::new(1000).compression(codec);
            builder.base_offset = 50;
            builder.records = sample_records();
            let batch = builder.build();
            let views: Vec<RecordView> = records(&batch, 1 << 20).unwrap().collect::<Result<_, _>>().unwrap();
            assert_eq!(views.len(), 3, "{codec:?}");
            assert_eq!(views[0].offset, 50);
            assert_eq!(views[2].offset, 52);
            assert_eq!(views[1].timestamp, 1007);
            assert_eq!(views[0].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(views[0].headers.len(), 2);
            assert_eq!(views[0].headers[1].value, None);
            assert_eq!(views[1].key, None);
            assert_eq!(views[1].value, None);
            assert_eq!(views[2].value.as_deref(), Some(&[9u8; 300][..]));
        }
    }

    #[test]
    fn log_append_time_uses_max_timestamp() {
        let mut builder = BatchBuilder::new(1000);
        builder.records = sample_records();
        builder.timestamp_type = TimestampType::LogAppendTime;
        builder.max_timestamp_override = Some(5555);
        let batch = builder.build();
        for view in records(&batch, 1 << 20).unwrap() {
            assert_eq!(view.unwrap().timestamp, 5555);
        }
    }

    // Goal: decompression stops at the limit instead of allocating what a small compressed payload expands to.
    #[test]
    fn decompression_is_bounded() {
        let big = vec![0u8; 4 << 20];
        for codec in &CODECS[1..] {
            let compressed = compress(*codec, &big);
            assert!(compressed.len() < 1 << 20, "{codec:?}");
            assert_eq!(
                decompress(*codec, &compressed, 1 << 20),
                Err(BatchError::DecompressedTooLarge { max: 1 << 20 }),
                "{codec:?}"
            );
            assert_eq!(decompress(*codec, &compressed, 4 << 20).unwrap(), big);
        }
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let data = b"raw snappy block".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, 1 << 20).unwrap(), data);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for codec in &CODECS[1..] {
            assert!(decompress(*codec, &[1, 2, 3, 4, 5, 6, 7], 1 << 20).is_err());
        }
        let mut builder = BatchBuilder::new(0);
        builder.records = sample_records();
        let mut batch = builder.build();
        // Corrupt the first record's length varint: iteration reports an error and stops.
        batch[crate::BATCH_HEADER_BYTES] = 0x7f;
        let results: Vec<_> = records(&batch, 1 << 20).unwrap().collect();
        assert!(results.last().unwrap().is_err());
    }
}
