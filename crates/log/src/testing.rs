//! Test support: a builder of valid magic-2 record batches (any codec, keys, values, headers, correct CRC).
//!
//! Compiled for this crate's tests and, behind the `testing` feature, for other crates' tests, so the broker can
//! produce realistic batches without a Kafka client.

use crate::batch::{batch_crc, BatchHeader, Compression, TimestampType, CRC_POS, TIMESTAMP_TYPE_BIT};
use crate::varint::{write_varint, write_varlong};
use crate::BATCH_HEADER_BYTES;

/// One record to put in a built batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRecord {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Added to the batch's base timestamp.
    pub timestamp_delta: i64,
}

/// Builds one record batch. Fields are public; the methods are shortcuts.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub base_timestamp: i64,
    /// Replaces the computed max timestamp (base + largest delta), e.g. for LogAppendTime batches.
    pub max_timestamp_override: Option<i64>,
    pub compression: Compression,
    pub timestamp_type: TimestampType,
    pub transactional: bool,
    pub control: bool,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records: Vec<TestRecord>,
}

impl BatchBuilder {
    /// An empty, uncompressed, non-idempotent batch at offset 0 with the given base timestamp.
    pub fn new(base_timestamp: i64) -> BatchBuilder {
        BatchBuilder {
            base_offset: 0,
            partition_leader_epoch: -1,
            base_timestamp,
            max_timestamp_override: None,
            compression: Compression::None,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
        }
    }

    pub fn compression(mut self, compression: Compression) -> BatchBuilder {
        self.compression = compression;
        self
    }

    /// Adds a record with a key and value and the given timestamp delta.
    pub fn record(mut self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp_delta: i64) -> BatchBuilder {
        self.records.push(TestRecord {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: Vec::new(),
            timestamp_delta,
        });
        self
    }

    /// Encodes the batch with a correct length and CRC. Panics on an empty batch (Kafka has none).
    pub fn build(&self) -> Vec<u8> {
        assert!(!self.records.is_empty(), "a batch needs at least one record");
        let mut body = Vec::new();
        for (i, record) in self.records.iter().enumerate() {
            encode_record(record, i as i32, &mut body);
        }
        let body = compress(self.compression, &body);
        let mut attributes = self.compression.attribute_bits();
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= TIMESTAMP_TYPE_BIT;
        }
        if self.transactional {
            attributes |= 0x10;
        }
        if self.control {
            attributes |= 0x20;
        }
        let max_delta = self.records.iter().map(|r| r.timestamp_delta).max().unwrap_or(0);
        let header = BatchHeader {
            base_offset: self.base_offset,
            batch_length: (BATCH_HEADER_BYTES - 12 + body.len()) as i32,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: 2,
            crc: 0,
            attributes,
            last_offset_delta: self.records.len() as i32 - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp_override.unwrap_or(self.base_timestamp + max_delta),
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count: self.records.len() as i32,
        };
        let mut out = vec![0u8; BATCH_HEADER_BYTES];
        header.encode(&mut out);
        out.extend_from_slice(&body);
        let crc = batch_crc(&out);
        out[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }
}

fn encode_nullable(bytes: Option<&[u8]>, out: &mut Vec<u8>) {
    match bytes {
        None => write_varint(-1, out),
        Some(b) => {
            write_varint(b.len() as i32, out);
            out.extend_from_slice(b);
        }
    }
}

fn encode_record(record: &TestRecord, offset_delta: i32, out: &mut Vec<u8>) {
    let mut body = vec![0u8]; // attributes
    write_varlong(record.timestamp_delta, &mut body);
    write_varint(offset_delta, &mut body);
    encode_nullable(record.key.as_deref(), &mut body);
    encode_nullable(record.value.as_deref(), &mut body);
    write_varint(record.headers.len() as i32, &mut body);
    for (key, value) in &record.headers {
        encode_nullable(Some(key), &mut body);
        encode_nullable(value.as_deref(), &mut body);
    }
    write_varint(body.len() as i32, out);
    out.extend_from_slice(&body);
}

/// Compresses `data` the way Kafka producers do for each codec.
pub fn compress(compression: Compression, data: &[u8]) -> Vec<u8> {
    crate::records::compress(compression, data).expect("compressible test data")
}

/// A batch of `records` records whose values are `value_bytes` long, keys `k<i>`, timestamps 1000 + i.
pub fn simple_batch(records: usize, value_bytes: usize, compression: Compression) -> Vec<u8> {
    let mut builder = BatchBuilder::new(1000).compression(compression);
    for i in 0..records {
        let key = format!("k{i}");
        let value = vec![(i % 251) as u8; value_bytes];
        builder = builder.record(Some(key.as_bytes()), Some(&value), i as i64);
    }
    builder.build()
}

/// Validates `batches` (one or more built batches back to back), appends them with leader epoch 0, and returns the
/// append result with the bytes as stored (offsets assigned).
pub fn append_bytes(
    log: &crate::Log,
    mut batches: Vec<u8>,
    now_ms: i64,
) -> Result<(crate::AppendInfo, Vec<u8>), crate::LogError> {
    let validated = crate::validate_batches(&batches, usize::MAX)?;
    let info = log.append(&mut batches, &validated, 0, now_ms)?;
    Ok((info, batches))
}

/// Reads every batch from `from` to the log end offset, one `read` call after another.
pub fn read_all(log: &crate::Log, from: i64) -> Result<Vec<u8>, crate::LogError> {
    let mut out = Vec::new();
    let mut offset = from;
    let end = log.log_end_offset();
    while offset < end {
        let result = log.read(offset, 64 * 1024, end, true)?;
        let batches = split_batches(&result.bytes);
        let last = batches.last().expect("a read below the log end offset returns a batch");
        offset = last.last_offset() + 1;
        out.extend_from_slice(&result.bytes);
    }
    Ok(out)
}

/// Headers of the whole batches in `bytes`. Panics on a partial batch.
pub fn split_batches(bytes: &[u8]) -> Vec<BatchHeader> {
    let mut headers = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let header = BatchHeader::parse(&bytes[pos..]).expect("whole header");
        assert!(pos + header.total_bytes() <= bytes.len(), "partial batch in read result");
        pos += header.total_bytes();
        headers.push(header);
    }
    headers
}
