//! The read side of a segment, run without the log lock on a `SegmentView`: locating a batch through the sparse
//! offset index, collecting whole batches for a fetch, and looking inside batches for timestamp queries.

use std::os::unix::fs::FileExt;

use bytes::Bytes;

use crate::batch::{BatchHeader, MAGIC_V2};
use crate::error::{io_err, LogError};
use crate::records::{records, DECOMPRESSED_BATCH_BYTES_MAX};
use crate::scan::BatchCursor;
use crate::segment::SegmentView;
use crate::{offset_index, time_index};

/// Read buffer for walking headers from an index entry to the wanted batch: a few index intervals.
const LOCATE_BUFFER_BYTES: usize = 16 * 1024;

fn corrupt(view: &SegmentView, position: u64, reason: &str) -> LogError {
    LogError::Corrupt { path: view.path.to_path_buf(), position, reason: reason.to_string() }
}

/// The first batch of the segment whose last offset is >= `target`, with its position; `None` if every batch of the
/// segment ends before `target`.
pub(crate) fn find_batch(view: &SegmentView, target: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
    let entry = view.offset_index.with(|entries| offset_index::lookup(entries, target))?;
    let start = entry.map_or(0, |e| u64::from(e.position));
    let mut cursor = BatchCursor::new(&view.file, &view.path, start, view.end, LOCATE_BUFFER_BYTES);
    let mut first = true;
    while let Some((position, header)) = cursor.next_header()? {
        // The index and the log are written together; an entry pointing elsewhere means corruption.
        if first && entry.is_some_and(|e| e.offset != header.base_offset) {
            return Err(corrupt(view, position, "offset index entry does not point at its batch"));
        }
        first = false;
        if header.last_offset() >= target {
            return Ok(Some((position, header)));
        }
    }
    Ok(None)
}

/// Reads `len` bytes at `position`.
fn read_exact(view: &SegmentView, position: u64, len: usize) -> Result<Vec<u8>, LogError> {
    let mut buf = vec![0u8; len];
    view.file.read_exact_at(&mut buf, position).map_err(io_err("read", &view.path))?;
    Ok(buf)
}

/// Whole batches from `position` (where `first` starts) that end before `upper_bound` and fit in `max_bytes`; the
/// first batch alone even if larger when `min_one_batch`.
pub(crate) fn collect_batches(
    view: &SegmentView,
    position: u64,
    first: &BatchHeader,
    max_bytes: usize,
    upper_bound: i64,
    min_one_batch: bool,
) -> Result<Bytes, LogError> {
    if first.last_offset() >= upper_bound {
        return Ok(Bytes::new());
    }
    let first_size = first.total_bytes();
    if first_size > max_bytes {
        if !min_one_batch {
            return Ok(Bytes::new());
        }
        return Ok(Bytes::from(read_exact(view, position, first_size)?));
    }
    let len = max_bytes.min((view.end - position) as usize);
    let mut buf = read_exact(view, position, len)?;
    let mut end = 0usize;
    let mut expected = first.base_offset;
    while buf.len() - end >= crate::BATCH_HEADER_BYTES {
        let header = BatchHeader::parse(&buf[end..]).expect("61 bytes");
        // The bytes were read again since the cursor saw them; check the same invariants before they leave.
        if header.magic != MAGIC_V2 || header.base_offset < expected || header.total_bytes() < crate::BATCH_HEADER_BYTES
        {
            return Err(corrupt(view, position + end as u64, "batch offsets go backwards"));
        }
        if header.last_offset() >= upper_bound || header.total_bytes() > buf.len() - end {
            break;
        }
        end += header.total_bytes();
        expected = header.last_offset() + 1;
    }
    assert!(end >= first_size, "the first batch fits in max_bytes and was read whole");
    buf.truncate(end);
    Ok(Bytes::from(buf))
}

/// The earliest record at or after `timestamp` in this segment, at or above `log_start_offset`: its offset and
/// timestamp. The time index gives a starting offset, batch max timestamps skip whole batches, and only the first
/// candidate batch is decoded.
pub(crate) fn first_record_at_or_after(
    view: &SegmentView,
    timestamp: i64,
    log_start_offset: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    let from = view
        .time_index
        .with(|entries| time_index::lookup(entries, timestamp))?
        .map_or(view.base_offset, |e| e.offset)
        .max(log_start_offset);
    let Some((position, _)) = find_batch(view, from)? else {
        return Ok(None);
    };
    let mut cursor = BatchCursor::new(&view.file, &view.path, position, view.end, LOCATE_BUFFER_BYTES);
    while let Some((position, header)) = cursor.next_header()? {
        if header.max_timestamp < timestamp || header.last_offset() < from {
            continue;
        }
        let batch = read_exact(view, position, header.total_bytes())?;
        for record in records(&batch, DECOMPRESSED_BATCH_BYTES_MAX)? {
            let record = record?;
            if record.offset >= from && record.timestamp >= timestamp {
                return Ok(Some((record.offset, record.timestamp)));
            }
        }
    }
    Ok(None)
}

/// The offset of the first record with exactly `timestamp` in the batch starting at `batch_offset`; the batch's last
/// offset if no record matches (a producer may set a max timestamp no record carries).
pub(crate) fn record_with_timestamp(view: &SegmentView, batch_offset: i64, timestamp: i64) -> Result<i64, LogError> {
    let Some((position, header)) = find_batch(view, batch_offset)? else {
        return Err(corrupt(view, 0, "batch holding the max timestamp is missing"));
    };
    let batch = read_exact(view, position, header.total_bytes())?;
    for record in records(&batch, DECOMPRESSED_BATCH_BYTES_MAX)? {
        let record = record?;
        if record.timestamp == timestamp {
            return Ok(record.offset);
        }
    }
    Ok(header.last_offset())
}
