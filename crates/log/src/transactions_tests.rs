//! Tests of producer state in the log: duplicates, refusals, transactions, markers, the aborted-transactions index,
//! snapshots and replay after clean and unclean restarts, retention and compaction of transactional data.

use std::path::{Path, PathBuf};

use super::*;
use crate::batch::Compression;
use crate::testing::{append_bytes, read_all, split_batches, BatchBuilder};

const NOW: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 1024, index_interval_bytes: 128, ..LogConfig::default() }
}

fn dir(root: &Path) -> PathBuf {
    root.join("payments-0")
}

/// A batch of `records` records from a producer, starting at sequence `seq`.
fn producer_batch(pid: i64, epoch: i16, seq: i32, records: usize, transactional: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new(NOW).compression(Compression::None);
    b.producer_id = pid;
    b.producer_epoch = epoch;
    b.base_sequence = seq;
    b.transactional = transactional;
    for i in 0..records {
        b = b.record(Some(format!("k{}", (seq as usize + i) % 7).as_bytes()), Some(&[i as u8; 60]), 0);
    }
    b.build()
}

fn append(log: &Log, batch: Vec<u8>) -> Result<AppendInfo, LogError> {
    append_bytes(log, batch, NOW).map(|(info, _)| info)
}

fn reopen_clean(log: Log, root: &Path) -> Log {
    let state = log.close_clean().unwrap();
    drop(log);
    let mode =
        OpenMode::Clean { log_end_offset: state.log_end_offset, active_segment_bytes: state.active_segment_bytes };
    Log::open(dir(root), config(), mode).unwrap()
}

fn reopen_unclean(log: Log, root: &Path) -> Log {
    drop(log);
    Log::open(dir(root), config(), OpenMode::Unclean { recovery_point: 0 }).unwrap()
}

fn files_with_ext(root: &Path, ext: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir(root))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(ext))
        .collect();
    names.sort();
    names
}

// Goal: a retried batch is answered with its original offsets and not written again; a gap is refused and the log
// stays writable; a stale epoch is fenced.
#[test]
fn duplicates_and_refusals() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(dir(root.path()), config()).unwrap();
    let first = append(&log, producer_batch(5, 0, 0, 3, false)).unwrap();
    assert_eq!((first.base_offset, first.last_offset, first.duplicate), (0, 2, false));
    append(&log, producer_batch(5, 0, 3, 2, false)).unwrap();
    let retry = append(&log, producer_batch(5, 0, 0, 3, false)).unwrap();
    assert_eq!((retry.base_offset, retry.last_offset, retry.duplicate), (0, 2, true));
    assert_eq!(log.log_end_offset(), 5, "a duplicate writes nothing");
    let gap = append(&log, producer_batch(5, 0, 9, 1, false)).unwrap_err();
    assert!(matches!(gap, LogError::OutOfOrderSequence { expected: 5, found: 9, .. }), "{gap}");
    append(&log, producer_batch(5, 1, 0, 1, false)).unwrap();
    let stale = append(&log, producer_batch(5, 0, 5, 1, false)).unwrap_err();
    assert!(matches!(stale, LogError::InvalidProducerEpoch { epoch: 0, current: 1, .. }), "{stale}");
    assert!(!log.is_failed());
    assert_eq!(append(&log, producer_batch(5, 1, 1, 1, false)).unwrap().base_offset, 6);
    let p = &log.producers()[0];
    assert_eq!((p.producer_id, p.producer_epoch, p.last_sequence, p.current_txn_start_offset), (5, 1, 1, -1));
}

// Goal: open transactions hold the last stable offset at their first offset; markers end them; an abort is indexed
// and reported for the fetch ranges it overlaps; a non-transactional write inside a transaction is refused.
#[test]
fn transactions_markers_and_the_last_stable_offset() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(dir(root.path()), config()).unwrap();
    append(&log, producer_batch(1, 0, 0, 2, false)).unwrap(); // 0-1, plain idempotent
    append(&log, producer_batch(2, 0, 0, 2, true)).unwrap(); // 2-3, txn A
    append(&log, producer_batch(3, 0, 0, 1, true)).unwrap(); // 4, txn B
    assert_eq!(log.last_stable_offset(), 2);
    let refused = append(&log, producer_batch(2, 0, 2, 1, false)).unwrap_err();
    assert!(matches!(refused, LogError::InvalidTxnState { .. }), "{refused}");
    let abort = log.append_marker(2, 0, ControlType::Abort, 0, 0, NOW).unwrap(); // 5
    assert_eq!(abort.base_offset, 5);
    assert_eq!(log.last_stable_offset(), 4, "txn B is still open");
    let commit = log.append_marker(3, 0, ControlType::Commit, 0, 0, NOW).unwrap(); // 6
    assert_eq!(commit.base_offset, 6);
    assert_eq!(log.last_stable_offset(), 7);
    let aborted = AbortedTxn { producer_id: 2, first_offset: 2, last_offset: 5, last_stable_offset: 4 };
    assert_eq!(log.aborted_transactions(0, 7), vec![aborted]);
    assert_eq!(log.aborted_transactions(6, 7), vec![], "the abort ended before the range");
    assert_eq!(log.aborted_transactions(0, 2), vec![], "the abort starts after the range");
    // The markers are control batches as consumers expect them.
    let headers = split_batches(&read_all(&log, 5).unwrap());
    assert!(headers.iter().all(|h| h.is_control() && h.is_transactional() && h.records_count == 1));
    assert_eq!(files_with_ext(root.path(), ".txnindex").len(), 1);
    // A stale marker is refused without harm.
    let stale = log.append_marker(2, 0, ControlType::Commit, -5, 0, NOW).unwrap_err();
    assert!(matches!(stale, LogError::CoordinatorFenced { .. }), "{stale}");
    assert!(!log.is_failed());
}

/// Writes transactional data across several segments, leaving one transaction open.
fn busy_log(root: &Path) -> Log {
    let log = Log::create(dir(root), config()).unwrap();
    for round in 0..6i32 {
        append(&log, producer_batch(10, 0, round * 2, 2, true)).unwrap();
        append(&log, producer_batch(11, 0, round * 3, 3, false)).unwrap();
        let control = if round % 2 == 0 { ControlType::Abort } else { ControlType::Commit };
        log.append_marker(10, 0, control, 1, 0, NOW).unwrap();
    }
    append(&log, producer_batch(12, 4, 0, 1, true)).unwrap();
    assert!(log.segment_count() > 3, "segments: {}", log.segment_count());
    log
}

fn txn_view(log: &Log) -> (Vec<ProducerInfo>, i64, Vec<AbortedTxn>) {
    (log.producers(), log.last_stable_offset(), log.aborted_transactions(0, i64::MAX))
}

// Goal: producer state, the last stable offset and the aborted transactions survive a clean restart (from the
// shutdown snapshot) and an unclean one (from a roll snapshot plus replay, or from the log alone).
#[test]
fn state_survives_restarts() {
    let root = tempfile::tempdir().unwrap();
    let log = busy_log(root.path());
    let before = txn_view(&log);
    assert_eq!(before.2.len(), 3);
    let log = reopen_clean(log, root.path());
    assert_eq!(txn_view(&log), before, "clean restart");
    let log = reopen_unclean(log, root.path());
    assert_eq!(txn_view(&log), before, "unclean restart from a roll snapshot");
    for name in files_with_ext(root.path(), ".snapshot") {
        std::fs::remove_file(dir(root.path()).join(name)).unwrap();
    }
    let log = reopen_unclean(log, root.path());
    assert_eq!(txn_view(&log), before, "unclean restart without snapshots");
    // Duplicate detection still works after the restarts.
    let retry = append(&log, producer_batch(11, 0, 15, 3, false)).unwrap();
    assert!(retry.duplicate, "{retry:?}");
}

// Goal: a snapshot torn by a crash, or one beyond the recovered end, is ignored, never trusted.
#[test]
fn bad_snapshots_are_ignored() {
    let root = tempfile::tempdir().unwrap();
    let log = busy_log(root.path());
    let before = txn_view(&log);
    drop(log);
    let snapshots = files_with_ext(root.path(), ".snapshot");
    let newest = dir(root.path()).join(snapshots.last().unwrap());
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    // A snapshot claiming an offset past the log's end (as after a torn tail) is deleted on open.
    let future = dir(root.path()).join(format!("{:020}.snapshot", 1_000_000));
    std::fs::write(&future, ProducerStates::default().encode()).unwrap();
    assert!(ProducerStates::decode(&ProducerStates::default().encode(), 1_000_000).is_some(), "a valid snapshot");
    let log = Log::open(dir(root.path()), config(), OpenMode::Unclean { recovery_point: 0 }).unwrap();
    assert_eq!(txn_view(&log), before);
    assert!(!future.exists());
}

// Goal: retention removes a segment's transaction index with it and forgets aborts below the log start offset.
#[test]
fn retention_drops_old_aborts() {
    let root = tempfile::tempdir().unwrap();
    let log = busy_log(root.path());
    let first_abort_end = log.aborted_transactions(0, i64::MAX)[0].last_offset;
    log.advance_log_start_offset(first_abort_end + 1).unwrap();
    assert_eq!(log.aborted_transactions(0, i64::MAX).len(), 2);
}

// Goal: compaction drops aborted records, keeps markers and committed records, and never cleans at or above the
// last stable offset.
#[test]
fn compaction_drops_aborted_records_and_stops_at_the_last_stable_offset() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig { compact: true, retention_enabled: false, ..config() };
    let log = Log::create(dir(root.path()), config.clone()).unwrap();
    let keyed = |pid: i64, seq: i32, key: &str, transactional: bool| {
        let mut b = BatchBuilder::new(NOW).record(Some(key.as_bytes()), Some(&[7u8; 300]), 0);
        b.producer_id = pid;
        b.producer_epoch = 0;
        b.base_sequence = seq;
        b.transactional = transactional;
        b.build()
    };
    append(&log, keyed(1, 0, "a", false)).unwrap(); // 0: committed value of a
    append(&log, keyed(2, 0, "a", true)).unwrap(); // 1: aborted value of a
    log.append_marker(2, 0, ControlType::Abort, 0, 0, NOW).unwrap(); // 2
    append(&log, keyed(3, 0, "b", true)).unwrap(); // 3: open transaction
    for i in 0..8 {
        append(&log, keyed(1, 1 + i, "c", false)).unwrap();
    }
    assert!(log.segment_count() > 3);
    while log.clean(NOW, 1 << 20).unwrap().is_some() {}
    let bytes = read_all(&log, 0).unwrap();
    let mut offsets = Vec::new();
    let mut pos = 0;
    for header in split_batches(&bytes) {
        let size = header.total_bytes();
        for r in crate::records::records(&bytes[pos..pos + size], usize::MAX).unwrap() {
            offsets.push(r.unwrap().offset);
        }
        pos += size;
    }
    assert!(offsets.contains(&0), "the committed value of a stays: {offsets:?}");
    assert!(!offsets.contains(&1), "the aborted value is dropped: {offsets:?}");
    assert!(offsets.contains(&2), "the marker stays: {offsets:?}");
    assert!(offsets.contains(&3), "the open transaction is not touched: {offsets:?}");
    assert!(offsets.contains(&4), "nothing above the last stable offset is cleaned: {offsets:?}");
}
