//! Reading and writing `__consumer_offsets` through the broker's own logs.
//!
//! Writes build one uncompressed magic-2 record batch per request (every
//! record of an offset commit lands in the group's one partition, so a
//! commit is atomic) and append it with the same validation and append call
//! the produce path uses. The caller then waits for the flushed offset, as
//! an `acks=all` produce does, before it answers. Loading reads each
//! partition from its log start offset to its log end offset and hands every
//! record (key, value or tombstone) to the caller in log order.

use std::sync::Arc;

use runnel_log::batch::{batch_crc, BatchHeader, CRC_POS};
use runnel_log::records::{records, DECOMPRESSED_BATCH_BYTES_MAX};
use runnel_log::varint::{write_varint, write_varlong};
use runnel_log::{validate_batches, LogError, BATCH_HEADER_BYTES};

use crate::partition::Partition;

/// Bytes read from a partition per read call while loading.
const LOAD_READ_BYTES: usize = 1 << 20;

/// A key and its value; `None` is a tombstone.
pub type KeyValue = (Vec<u8>, Option<Vec<u8>>);

/// Where a write ended: the partition and the offset after its last record,
/// which the caller waits to see flushed.
pub struct Written {
    pub partition: Arc<Partition>,
    pub end_offset: i64,
    pub wait_for_flush: bool,
}

impl Written {
    /// Waits until the write is on stable storage; false if the log failed.
    pub async fn durable(self) -> bool {
        !self.wait_for_flush || self.partition.wait_flushed(self.end_offset).await
    }
}

/// Encodes `entries` as one uncompressed record batch with `now_ms` as the
/// timestamp of every record.
pub fn encode_batch(entries: &[KeyValue], now_ms: i64) -> Vec<u8> {
    assert!(!entries.is_empty(), "a batch needs at least one record");
    let mut body = Vec::new();
    for (i, (key, value)) in entries.iter().enumerate() {
        let mut record = vec![0u8]; // attributes
        write_varlong(0, &mut record); // timestamp delta
        write_varint(i as i32, &mut record); // offset delta
        write_varint(key.len() as i32, &mut record);
        record.extend_from_slice(key);
        match value {
            None => write_varint(-1, &mut record),
            Some(v) => {
                write_varint(v.len() as i32, &mut record);
                record.extend_from_slice(v);
            }
        }
        write_varint(0, &mut record); // headers
        write_varint(record.len() as i32, &mut body);
        body.extend_from_slice(&record);
    }
    let header = BatchHeader {
        base_offset: 0,
        batch_length: (BATCH_HEADER_BYTES - 12 + body.len()) as i32,
        partition_leader_epoch: -1,
        magic: 2,
        crc: 0,
        attributes: 0,
        last_offset_delta: entries.len() as i32 - 1,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count: entries.len() as i32,
    };
    let mut out = vec![0u8; BATCH_HEADER_BYTES];
    header.encode(&mut out);
    out.extend_from_slice(&body);
    let crc = batch_crc(&out);
    out[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Appends `entries` to `partition` and asks for the flush the partition's
/// policy requires. Blocking (the append writes to the page cache).
pub fn append(
    partition: &Arc<Partition>,
    flusher: &runnel_log::Flusher,
    entries: &[KeyValue],
    now_ms: i64,
) -> Result<Written, LogError> {
    let mut batch = encode_batch(entries, now_ms);
    let validated = validate_batches(&batch, usize::MAX).map_err(LogError::Batch)?;
    let info = partition.log.append(&mut batch, &validated, 0, now_ms)?;
    partition.on_appended();
    let wait_for_flush = partition.flush_required(now_ms);
    if wait_for_flush {
        flusher.request(&partition.log);
    }
    Ok(Written { partition: partition.clone(), end_offset: info.last_offset + 1, wait_for_flush })
}

/// Reads every record of `partition` in log order and passes each key and
/// value (or tombstone) to `apply`. A record that does not decode stops the
/// load of this partition with an error. Blocking.
pub fn load(partition: &Partition, mut apply: impl FnMut(&[u8], Option<&[u8]>)) -> Result<usize, LogError> {
    let end = partition.log.log_end_offset();
    let mut offset = partition.log.log_start_offset();
    let mut count = 0usize;
    while offset < end {
        let read = partition.log.read(offset, LOAD_READ_BYTES, end, true)?;
        if read.bytes.is_empty() {
            break;
        }
        let mut bytes: &[u8] = &read.bytes;
        while !bytes.is_empty() {
            let header = BatchHeader::parse(bytes).map_err(LogError::Batch)?;
            let size = header.total_bytes();
            let batch = bytes.get(..size).ok_or(LogError::Batch(runnel_log::BatchError::Empty))?;
            if !header.is_control() {
                for record in records(batch, DECOMPRESSED_BATCH_BYTES_MAX).map_err(LogError::Batch)? {
                    let record = record.map_err(LogError::Batch)?;
                    if let Some(key) = &record.key {
                        apply(key, record.value.as_deref());
                        count += 1;
                    }
                }
            }
            offset = header.last_offset() + 1;
            bytes = &bytes[size..];
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the batches the coordinator writes pass the same validation as
    /// produced batches and decode back to the same keys and values,
    /// tombstones included.
    #[test]
    fn encoded_batches_validate_and_decode() {
        let entries: Vec<KeyValue> =
            vec![(b"k1".to_vec(), Some(b"v1".to_vec())), (b"k2".to_vec(), None), (vec![], Some(vec![0; 300]))];
        let batch = encode_batch(&entries, 1234);
        let validated = validate_batches(&batch, usize::MAX).unwrap();
        assert_eq!(validated.records_count, 3);
        let decoded: Vec<KeyValue> = records(&batch, 1 << 20)
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                assert_eq!(r.timestamp, 1234);
                (r.key.unwrap().to_vec(), r.value.map(|v| v.to_vec()))
            })
            .collect();
        assert_eq!(decoded, entries);
    }
}
