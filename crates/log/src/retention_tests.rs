//! Tests of retention: which segments a pass removes, the log start offset it leaves, and the files on disk.

use std::path::Path;

use super::*;
use crate::testing::{append_bytes, read_all, BatchBuilder};

const HOUR_MS: i64 = 3_600_000;

fn config(retention_ms: i64, retention_bytes: i64) -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        retention_ms,
        retention_bytes,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

/// Appends `count` batches of two 200-byte records stamped `timestamp`.
fn fill(log: &Log, count: usize, timestamp: i64) {
    for _ in 0..count {
        let batch =
            BatchBuilder::new(timestamp).record(Some(b"k"), Some(&[7; 200]), 0).record(None, Some(&[8; 200]), 0);
        append_bytes(log, batch.build(), timestamp).unwrap();
    }
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".log"))
        .count()
}

fn first_base(log: &Log) -> i64 {
    log.state.lock().segments[0].base_offset
}

// Goal: size retention keeps the smallest suffix of segments that still holds retention.bytes, moves the log start
// offset to its first segment, refuses reads below it and serves everything above it.
#[test]
fn size_retention_keeps_at_least_the_limit() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(root.path().join("t-0"), config(-1, 5000)).unwrap();
    fill(&log, 40, 1_000);
    let before = log.size_bytes();
    let segments_before = log.segment_count();
    let outcome = log.enforce_retention(2_000).unwrap();
    assert!(outcome.over_size > 0, "{outcome:?}");
    assert_eq!(outcome.segments(), segments_before - log.segment_count());
    assert_eq!(before - outcome.bytes, log.size_bytes());
    let first_size = log.state.lock().segments[0].size;
    assert!(log.size_bytes() >= 5000 && log.size_bytes() - first_size < 5000, "size {}", log.size_bytes());
    assert_eq!(log.log_start_offset(), first_base(&log));
    assert_eq!(outcome.log_start_offset, log.log_start_offset());
    assert!(matches!(log.read(0, 1000, i64::MAX, true), Err(LogError::OffsetOutOfRange { .. })));
    assert_eq!(read_all(&log, log.log_start_offset()).unwrap().len() as u64, log.size_bytes());
    // A second pass has nothing more to do.
    assert_eq!(log.enforce_retention(3_000).unwrap().segments(), 0);
}

// Goal: time retention removes closed segments whose newest record is older than retention.ms, stops at the first
// segment it must keep, and leaves files on disk until the deletion delay has passed.
#[test]
fn time_retention_removes_an_expired_prefix_after_the_delay() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let log = Log::create(dir.clone(), LogConfig { file_delete_delay_ms: 60_000, ..config(HOUR_MS, -1) }).unwrap();
    fill(&log, 10, 1_000); // old
    let old_end = log.log_end_offset();
    fill(&log, 10, 10 * HOUR_MS); // recent
    fill(&log, 10, 1_000); // old again, but behind recent data: kept
    let now = 10 * HOUR_MS + 1;
    let outcome = log.enforce_retention(now).unwrap();
    assert!(outcome.expired > 0, "{outcome:?}");
    assert_eq!(outcome.over_size + outcome.below_start_offset, 0);
    assert!(log.log_start_offset() <= old_end, "only the old prefix goes");
    assert!(first_base(&log) <= old_end);
    assert_eq!(segment_files(&dir), log.segment_count() + outcome.segments(), "files wait for file.delete.delay.ms");
    assert_eq!(log.purge_deleted_segments(now + 59_999).unwrap(), 0);
    assert_eq!(log.purge_deleted_segments(now + 60_000).unwrap(), outcome.segments());
    assert_eq!(segment_files(&dir), log.segment_count());
}

// Goal: when everything has expired, the active segment is rolled and removed too; the log is empty at its old end
// offset and keeps taking appends.
#[test]
fn an_expired_active_segment_is_rolled_and_removed() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let log = Log::create(dir.clone(), config(1_000, -1)).unwrap();
    fill(&log, 3, 5_000);
    let end = log.log_end_offset();
    let outcome = log.enforce_retention(7_000).unwrap();
    assert_eq!(outcome.expired, 1, "{outcome:?}");
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.size_bytes(), 0);
    log.purge_deleted_segments(7_000).unwrap();
    assert_eq!(segment_files(&dir), 1);
    fill(&log, 1, 8_000);
    assert_eq!(read_all(&log, end).unwrap().len() as u64, log.size_bytes());
    // Data newer than the limit stays.
    assert_eq!(log.enforce_retention(8_500).unwrap().segments(), 0);
}

// Goal: without the delete policy (compact only) time and size limits do nothing, but DeleteRecords still moves the
// log start offset and the segments wholly below it go.
#[test]
fn compact_only_logs_keep_data_but_honour_the_log_start_offset() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(root.path().join("t-0"), LogConfig { retention_enabled: false, ..config(1, 1) }).unwrap();
    fill(&log, 30, 1_000);
    let segments = log.segment_count();
    assert_eq!(log.enforce_retention(HOUR_MS).unwrap().segments(), 0);
    assert_eq!(log.segment_count(), segments);

    let third = log.state.lock().segments[2].base_offset;
    assert_eq!(log.advance_log_start_offset(third + 1).unwrap(), third + 1);
    assert_eq!(log.advance_log_start_offset(1).unwrap(), third + 1, "never moves back");
    assert!(matches!(log.read(third, 1, i64::MAX, true), Err(LogError::OffsetOutOfRange { .. })));
    assert!(matches!(log.advance_log_start_offset(log.log_end_offset() + 1), Err(LogError::OffsetOutOfRange { .. })));
    let outcome = log.enforce_retention(HOUR_MS).unwrap();
    assert_eq!(outcome.below_start_offset, 2);
    assert_eq!(first_base(&log), third);
    assert_eq!(log.log_start_offset(), third + 1, "the segment holding the start offset stays");
}

// Goal: segments removed but not yet deleted when the broker stops are removed when the log opens with the
// checkpointed start offset; with an older checkpoint the start offset is the first segment on disk.
#[test]
fn reopen_removes_segments_below_the_start_offset() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("t-0");
    let log = Log::create(dir.clone(), LogConfig { file_delete_delay_ms: HOUR_MS, ..config(-1, 3000) }).unwrap();
    fill(&log, 30, 1_000);
    log.flush().unwrap();
    log.enforce_retention(2_000).unwrap();
    let (start, end, size) = (log.log_start_offset(), log.log_end_offset(), log.size_bytes());
    let kept = log.segment_count();
    drop(log);
    assert!(segment_files(&dir) > kept);

    let options =
        OpenOptions { log_start_offset: Some(start), ..OpenOptions::new(OpenMode::Unclean { recovery_point: 0 }) };
    let reopened = Log::open_with(dir.clone(), config(-1, 3000), options).unwrap();
    assert_eq!((reopened.log_start_offset(), reopened.log_end_offset()), (start, end));
    assert_eq!(reopened.size_bytes(), size);
    assert_eq!(segment_files(&dir), kept);
    drop(reopened);

    let older =
        Log::open_with(dir, config(-1, 3000), OpenOptions::new(OpenMode::Unclean { recovery_point: 0 })).unwrap();
    assert_eq!(older.log_start_offset(), start, "the first segment on disk starts at the old start offset");
}
