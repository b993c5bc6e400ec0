//! Reading and writing `__consumer_offsets` through the broker's own logs.
//!
//! Writes build one uncompressed magic-2 record batch per request (every
//! record of an offset commit lands in the group's one partition, so a
//! commit is atomic) and append it with the same validation and append call
//! the produce path uses. The caller then waits for the flushed offset, as
//! an `acks=all` produce does, before it answers. Loading reads each
//! partition from its log start offset to its log end offset and hands every
//! record (key, value or tombstone) to the caller in log order, with the
//! producer id of its transaction when it was written by a transactional
//! offset commit, and every transaction marker.
//!
//! A transactional offset commit is one batch carrying the producer's id and
//! epoch with the transactional attribute set and no sequence; the
//! transaction coordinator later writes the commit or abort marker after it.

use std::sync::Arc;

use runnel_log::batch::{batch_crc, BatchHeader, CRC_POS};
use runnel_log::records::{records, DECOMPRESSED_BATCH_BYTES_MAX};
use runnel_log::varint::{write_varint, write_varlong};
use runnel_log::{validate_batches, ControlType, LogError, BATCH_HEADER_BYTES};

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

impl std::fmt::Debug for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Written")
            .field("topic", &self.partition.topic)
            .field("partition", &self.partition.index)
            .field("end_offset", &self.end_offset)
            .field("wait_for_flush", &self.wait_for_flush)
            .finish()
    }
}

impl Written {
    /// Waits until the write is on stable storage; false if the log failed.
    pub async fn durable(self) -> bool {
        !self.wait_for_flush || self.partition.wait_flushed(self.end_offset).await
    }
}

/// What [`load`] hands to the caller, in log order.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded<'a> {
    /// A record; `txn` is the producer id when the record belongs to a
    /// transaction, whose marker comes later.
    Record { key: &'a [u8], value: Option<&'a [u8]>, txn: Option<i64> },
    /// A transaction marker of `producer_id`.
    Marker { producer_id: i64, commit: bool },
}

/// The transactional bit of a batch's attributes.
const TRANSACTIONAL: i16 = 0x10;

/// Encodes `entries` as one uncompressed record batch with `now_ms` as the
/// timestamp of every record.
pub fn encode_batch(entries: &[KeyValue], now_ms: i64) -> Vec<u8> {
    encode_batch_as(entries, now_ms, None)
}

/// [`encode_batch`], as a transactional batch of `producer` (id, epoch) when
/// given, without a sequence (the coordinator's own writes carry none).
pub fn encode_batch_as(entries: &[KeyValue], now_ms: i64, producer: Option<(i64, i16)>) -> Vec<u8> {
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
        attributes: if producer.is_some() { TRANSACTIONAL } else { 0 },
        last_offset_delta: entries.len() as i32 - 1,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id: producer.map_or(-1, |p| p.0),
        producer_epoch: producer.map_or(-1, |p| p.1),
        base_sequence: runnel_log::NO_SEQUENCE,
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
    append_as(partition, flusher, entries, now_ms, None)
}

/// [`append`] as a transactional batch of `producer` (id, epoch) when given.
pub fn append_as(
    partition: &Arc<Partition>,
    flusher: &runnel_log::Flusher,
    entries: &[KeyValue],
    now_ms: i64,
    producer: Option<(i64, i16)>,
) -> Result<Written, LogError> {
    let mut batch = encode_batch_as(entries, now_ms, producer);
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
/// value (or tombstone), and each transaction marker, to `apply`. A record
/// that does not decode stops the load of this partition with an error.
/// Blocking.
pub fn load(partition: &Partition, mut apply: impl FnMut(Loaded<'_>)) -> Result<usize, LogError> {
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
            let txn = header.is_transactional().then_some(header.producer_id);
            for record in records(batch, DECOMPRESSED_BATCH_BYTES_MAX).map_err(LogError::Batch)? {
                let record = record.map_err(LogError::Batch)?;
                let Some(key) = &record.key else { continue };
                if header.is_control() {
                    // A control record's key is a version and the marker type (0 abort, 1 commit).
                    if key.len() >= 4 {
                        let commit = i16::from_be_bytes([key[2], key[3]]) == ControlType::Commit.code();
                        apply(Loaded::Marker { producer_id: header.producer_id, commit });
                    }
                    continue;
                }
                apply(Loaded::Record { key, value: record.value.as_deref(), txn });
                count += 1;
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

    /// Goal: a transactional batch carries the producer, the transactional
    /// attribute and no sequence, and still validates.
    #[test]
    fn transactional_batches_carry_the_producer() {
        let entries: Vec<KeyValue> = vec![(b"k".to_vec(), Some(b"v".to_vec()))];
        let batch = encode_batch_as(&entries, 5, Some((42, 3)));
        let validated = validate_batches(&batch, usize::MAX).unwrap();
        let info = &validated.batches[0];
        assert!(info.is_transactional() && !info.is_control());
        assert_eq!((info.producer_id, info.producer_epoch, info.base_sequence), (42, 3, -1));
        let plain = validate_batches(&encode_batch(&entries, 5), usize::MAX).unwrap();
        assert!(!plain.batches[0].is_transactional());
        assert_eq!(plain.batches[0].producer_id, -1);
    }
}
