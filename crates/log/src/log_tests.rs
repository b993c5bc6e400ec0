//! Tests of `Log`: append and read across segment rolls, fetch limits, timestamps, LogAppendTime, reopen and
//! recovery of torn tails.

use std::path::{Path, PathBuf};

use super::*;
use crate::batch::{validate_batches, BatchHeader, Compression};
use crate::testing::{append_bytes, read_all, simple_batch, split_batches, BatchBuilder};

fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 2048, index_interval_bytes: 256, ..LogConfig::default() }
}

fn log_dir(root: &Path) -> PathBuf {
    root.join("orders-events-3")
}

/// Appends `count` batches of 1..=4 records (100-byte values) and returns the stored bytes of each batch.
fn fill(log: &Log, count: usize, compression: Compression) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| append_bytes(log, simple_batch(1 + i % 4, 100, compression), 1000 + i as i64).unwrap().1)
        .collect()
}

#[test]
fn dir_name_parsing() {
    assert_eq!(parse_partition_dir_name("orders-events-3"), Some(("orders-events".to_string(), 3)));
    assert_eq!(parse_partition_dir_name("t-0"), Some(("t".to_string(), 0)));
    for bad in ["t", "-1", "t-", "t-x", "t-01", "t-+1"] {
        assert_eq!(parse_partition_dir_name(bad), None, "{bad}");
    }
}

// Goal: appended batches come back byte for byte from every offset, across many segments.
#[test]
fn append_and_read_across_rolls() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(log_dir(root.path()), small_config()).unwrap();
    assert_eq!(log.topic_partition(), ("orders-events".to_string(), 3));
    let stored = fill(&log, 60, Compression::None);
    assert!(log.segment_count() > 5, "segments: {}", log.segment_count());
    assert_eq!(read_all(&log, 0).unwrap(), stored.concat());
    assert_eq!(log.size_bytes(), stored.iter().map(|b| b.len() as u64).sum::<u64>());
    // From every offset, the first batch returned is the one holding it.
    for offset in 0..log.log_end_offset() {
        let result = log.read(offset, 1, log.log_end_offset(), true).unwrap();
        let header = BatchHeader::parse(&result.bytes).unwrap();
        assert!(header.base_offset <= offset && offset <= header.last_offset(), "offset {offset}");
        assert_eq!(result.bytes.len(), header.total_bytes());
    }
    let end = log.read(log.log_end_offset(), 1000, i64::MAX, true).unwrap();
    assert!(end.bytes.is_empty());
    assert_eq!(end.log_end_offset, log.log_end_offset());
}

#[test]
fn offsets_epoch_and_append_info() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(log_dir(root.path()), LogConfig::default()).unwrap();
    let mut two = simple_batch(3, 10, Compression::None);
    two.extend_from_slice(&simple_batch(2, 10, Compression::Gzip));
    let validated = validate_batches(&two, 1 << 20).unwrap();
    let info = log.append(&mut two, &validated, 7, 0).unwrap();
    assert_eq!((info.base_offset, info.last_offset, info.records_count, info.log_append_time), (0, 4, 5, -1));
    let headers = split_batches(&two);
    assert_eq!((headers[0].base_offset, headers[1].base_offset), (0, 3));
    assert!(headers.iter().all(|h| h.partition_leader_epoch == 7));
    // Rewriting offsets and epochs leaves the CRC valid.
    validate_batches(&two, 1 << 20).unwrap();
    let (info, _) = append_bytes(&log, simple_batch(1, 10, Compression::None), 0).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (5, 5));
}

// Goal: a fetch never returns a batch reaching the upper bound, nor more than max_bytes except one whole batch.
#[test]
fn read_limits() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(log_dir(root.path()), LogConfig::default()).unwrap();
    let stored = fill(&log, 10, Compression::None);
    let sizes: Vec<usize> = stored.iter().map(Vec::len).collect();
    let leo = log.log_end_offset();
    // Upper bound inside the third batch: only the first two are returned.
    let third = split_batches(&stored[2])[0];
    let result = log.read(0, 1 << 20, third.base_offset + 1, true).unwrap();
    assert_eq!(result.bytes, stored[..2].concat());
    // Upper bound at a batch's base offset excludes that batch.
    let result = log.read(0, 1 << 20, third.base_offset, true).unwrap();
    assert_eq!(result.bytes.len(), sizes[0] + sizes[1]);
    // max_bytes cuts at a whole batch.
    let result = log.read(0, sizes[0] + sizes[1] + sizes[2] - 1, leo, true).unwrap();
    assert_eq!(result.bytes, stored[..2].concat());
    // min_one_batch returns the first batch whole even if larger than max_bytes.
    assert_eq!(log.read(0, 10, leo, true).unwrap().bytes, stored[0]);
    assert!(log.read(0, 10, leo, false).unwrap().bytes.is_empty());
    // A high watermark at or below the fetch offset returns nothing.
    assert!(log.read(3, 1 << 20, 3, true).unwrap().bytes.is_empty());
}

#[test]
fn out_of_range() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(log_dir(root.path()), LogConfig::default()).unwrap();
    fill(&log, 3, Compression::None);
    let leo = log.log_end_offset();
    for offset in [-1, leo + 1, i64::MAX] {
        match log.read(offset, 100, leo, true) {
            Err(LogError::OffsetOutOfRange { offset: o, log_start_offset: 0, log_end_offset, .. }) => {
                assert_eq!((o, log_end_offset), (offset, leo));
            }
            other => panic!("offset {offset}: {other:?}"),
        }
    }
}

/// Appends batches with distinct, non-monotonic record timestamps across several segments.
fn fill_timestamps(log: &Log, compression: Compression) -> Vec<(i64, i64)> {
    let mut records = Vec::new();
    for batch in 0..40i64 {
        let base_ts = 10_000 + batch * 100;
        let mut builder = BatchBuilder::new(base_ts).compression(compression);
        for r in 0..3i64 {
            // Within a batch the timestamps go 50, 10, 30 above the base: the max is the first record.
            let delta = [50, 10, 30][r as usize];
            builder = builder.record(Some(b"k"), Some(&[7u8; 80]), delta);
        }
        let (info, _) = append_bytes(log, builder.build(), 0).unwrap();
        for r in 0..3 {
            records.push((info.base_offset + r, base_ts + [50, 10, 30][r as usize]));
        }
    }
    records
}

// Goal: offset_for_timestamp finds the earliest record whose timestamp is >= the target, inside compressed batches
// too, and max_timestamp names the exact record with the largest timestamp.
#[test]
fn timestamp_lookups() {
    for compression in [Compression::None, Compression::Lz4, Compression::Zstd] {
        let root = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 600, index_interval_bytes: 150, ..LogConfig::default() };
        let log = Log::create(log_dir(root.path()), config.clone()).unwrap();
        let records = fill_timestamps(&log, compression);
        assert!(log.segment_count() > 2, "{compression:?}: {} segments", log.segment_count());
        for target in [0, 10_000, 10_011, 10_030, 10_031, 10_049, 10_050, 10_051, 12_000, 13_950, 13_951] {
            let expected = records.iter().find(|(_, ts)| *ts >= target).copied();
            assert_eq!(log.offset_for_timestamp(target).unwrap(), expected, "{compression:?} target {target}");
        }
        let max = records.iter().max_by_key(|(o, ts)| (*ts, -o)).copied().map(|(o, ts)| (ts, o));
        assert_eq!(log.max_timestamp(), max, "{compression:?}");
        // After a clean reopen, closed segments answer from their time indexes.
        let state = log.close_clean().unwrap();
        drop(log);
        let mode =
            OpenMode::Clean { log_end_offset: state.log_end_offset, active_segment_bytes: state.active_segment_bytes };
        let log = Log::open(log_dir(root.path()), config, mode).unwrap();
        assert_eq!(log.max_timestamp(), max);
        assert_eq!(log.offset_for_timestamp(12_345).unwrap(), records.iter().find(|(_, ts)| *ts >= 12_345).copied());
    }
}

#[test]
fn empty_log_has_no_timestamps() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(log_dir(root.path()), LogConfig::default()).unwrap();
    assert_eq!(log.max_timestamp(), None);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), None);
}

// Goal: LogAppendTime rewrites max timestamp and the attribute bit, the CRC stays valid, and the records read back
// carry the append time.
#[test]
fn log_append_time() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig { timestamp_type: TimestampType::LogAppendTime, ..LogConfig::default() };
    let log = Log::create(log_dir(root.path()), config).unwrap();
    for compression in [Compression::None, Compression::Snappy] {
        let (info, stored) = append_bytes(&log, simple_batch(3, 20, compression), 777_000).unwrap();
        assert_eq!(info.log_append_time, 777_000);
        validate_batches(&stored, 1 << 20).unwrap();
        let header = BatchHeader::parse(&stored).unwrap();
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.max_timestamp, 777_000);
        for record in crate::records::records(&stored, 1 << 20).unwrap() {
            assert_eq!(record.unwrap().timestamp, 777_000);
        }
    }
    assert_eq!(log.max_timestamp(), Some((777_000, 0)));
    assert_eq!(log.offset_for_timestamp(777_000).unwrap(), Some((0, 777_000)));
}

#[test]
fn rolls_on_age_and_index_size() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_ms: 1000, ..LogConfig::default() };
    let log = Log::create(log_dir(root.path()), config).unwrap();
    append_bytes(&log, simple_batch(1, 10, Compression::None), 5000).unwrap();
    append_bytes(&log, simple_batch(1, 10, Compression::None), 5999).unwrap();
    assert_eq!(log.segment_count(), 1);
    append_bytes(&log, simple_batch(1, 10, Compression::None), 6000).unwrap();
    assert_eq!(log.segment_count(), 2);
    // An index of 4 entries: with an entry per batch the segment rolls every few batches.
    let config = LogConfig { segment_index_bytes: 32, index_interval_bytes: 1, ..LogConfig::default() };
    log.set_config(config);
    for _ in 0..10 {
        append_bytes(&log, simple_batch(1, 10, Compression::None), 6000).unwrap();
    }
    assert!(log.segment_count() >= 4, "segments: {}", log.segment_count());
    assert_eq!(read_all(&log, 0).unwrap().len() as u64, log.size_bytes());
}

fn reopen_unclean(root: &Path, recovery_point: i64) -> Log {
    Log::open(log_dir(root), small_config(), OpenMode::Unclean { recovery_point }).unwrap()
}

/// Damage to apply to the last segment's tail.
fn damage(path: &Path, how: &str, at: u64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let len = file.metadata().unwrap().len();
    match how {
        "truncate" => file.set_len(at).unwrap(),
        "zeroes" => file.write_all_at(&[0u8; 300], len).unwrap(),
        "garbage" => file.write_all_at(&[0xa5u8; 300], len).unwrap(),
        "flip" => {
            let mut b = [0u8; 1];
            file.read_exact_at(&mut b, at).unwrap();
            file.write_all_at(&[b[0] ^ 0x40], at).unwrap();
        }
        other => panic!("unknown damage {other}"),
    }
}

// Goal: every kind of torn tail keeps every earlier batch readable and ends the log after the last valid batch.
#[test]
fn recovery_of_torn_tails() {
    for how in ["truncate", "zeroes", "garbage", "flip"] {
        let root = tempfile::tempdir().unwrap();
        let log = Log::create(log_dir(root.path()), small_config()).unwrap();
        let stored = fill(&log, 30, Compression::None);
        let path = log.active_segment_path();
        drop(log);
        let len = std::fs::metadata(&path).unwrap().len();
        let last = stored.last().unwrap();
        // Damage the last batch (for truncate/flip) or append after it (zeroes/garbage).
        damage(&path, how, len - last.len() as u64 / 2);
        let log = reopen_unclean(root.path(), 0);
        let intact = if how == "truncate" || how == "flip" { &stored[..stored.len() - 1] } else { &stored[..] };
        let expected_end = split_batches(&intact.concat()).last().unwrap().last_offset() + 1;
        assert_eq!(log.log_end_offset(), expected_end, "{how}");
        assert_eq!(read_all(&log, 0).unwrap(), intact.concat(), "{how}");
        assert!(log.recovery_stats().truncated_bytes > 0, "{how}");
        // Appends continue at the recovered end.
        let (info, _) = append_bytes(&log, simple_batch(2, 10, Compression::None), 0).unwrap();
        assert_eq!(info.base_offset, expected_end);
    }
}

// Goal: recovery resumes at the offset index entry below the recovery point instead of rescanning the segment.
#[test]
fn recovery_resumes_from_index_entry() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 1 << 20, index_interval_bytes: 256, ..LogConfig::default() };
    let log = Log::create(log_dir(root.path()), config.clone()).unwrap();
    let stored = fill(&log, 40, Compression::None);
    log.flush().unwrap();
    let (recovery_point, _) = log.checkpoint_offsets().unwrap();
    let size = log.size_bytes();
    drop(log);
    let log = Log::open(log_dir(root.path()), config, OpenMode::Unclean { recovery_point }).unwrap();
    let stats = log.recovery_stats();
    let (_, start) = stats.scan_start.unwrap();
    assert!(start > size / 2, "scan started at {start} of {size}");
    assert!(stats.bytes_scanned < size / 4, "scanned {} of {size}", stats.bytes_scanned);
    assert_eq!(read_all(&log, 0).unwrap(), stored.concat());
    assert_eq!(log.log_end_offset(), recovery_point);
}

// Goal: a torn or lying offset index never misleads recovery: it falls back to scanning the segment.
#[test]
fn recovery_with_broken_index() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig { segment_bytes: 1 << 20, index_interval_bytes: 256, ..LogConfig::default() };
    let log = Log::create(log_dir(root.path()), config.clone()).unwrap();
    let stored = fill(&log, 40, Compression::None);
    let index_path = log.active_segment_path().with_extension("index");
    drop(log);
    // Shift every entry's position by 3 bytes: still increasing, still inside the file, but wrong.
    let bytes = std::fs::read(&index_path).unwrap();
    let mut entries = crate::index::decode_entries::<crate::offset_index::OffsetEntry>(0, &bytes);
    for e in &mut entries {
        e.position += 3;
    }
    std::fs::write(&index_path, crate::index::encode_entries(0, &entries)).unwrap();
    let log = Log::open(log_dir(root.path()), config, OpenMode::Unclean { recovery_point: 60 }).unwrap();
    assert_eq!(log.recovery_stats().scan_start, Some((0, 0)));
    assert_eq!(read_all(&log, 0).unwrap(), stored.concat());
    // The rebuilt index is right again: every offset reads.
    for offset in 0..log.log_end_offset() {
        log.read(offset, 1, i64::MAX, true).unwrap();
    }
}

// Goal: after corruption inside an earlier (unflushed) segment, later segments are deleted, not served.
#[test]
fn recovery_deletes_segments_after_a_cut() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(log_dir(root.path()), small_config()).unwrap();
    let stored = fill(&log, 40, Compression::None);
    let segments = log.segment_count();
    assert!(segments >= 4);
    drop(log);
    let second = crate::segment::segment_file(&log_dir(root.path()), 0, "log");
    // Corrupt the first segment's last batch: everything from it on is gone.
    let len = std::fs::metadata(&second).unwrap().len();
    damage(&second, "flip", len - 5);
    let log = reopen_unclean(root.path(), 0);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.recovery_stats().segments_deleted, segments - 1);
    let data = read_all(&log, 0).unwrap();
    assert!(stored.concat().starts_with(&data) && !data.is_empty());
}

// Goal: opening clean reads the marker's values, and an active segment of another size is recovered instead.
#[test]
fn clean_open_and_size_mismatch() {
    let root = tempfile::tempdir().unwrap();
    let log = Log::create(log_dir(root.path()), small_config()).unwrap();
    let stored = fill(&log, 25, Compression::None);
    let state = log.close_clean().unwrap();
    assert!(matches!(append_bytes(&log, simple_batch(1, 1, Compression::None), 0), Err(LogError::Closed { .. })));
    let path = log.active_segment_path();
    drop(log);
    let mode =
        OpenMode::Clean { log_end_offset: state.log_end_offset, active_segment_bytes: state.active_segment_bytes };
    let log = Log::open(log_dir(root.path()), small_config(), mode).unwrap();
    assert!(!log.recovery_stats().recovered);
    assert_eq!(log.log_end_offset(), state.log_end_offset);
    assert_eq!(read_all(&log, 0).unwrap(), stored.concat());
    drop(log);
    damage(&path, "garbage", 0);
    let log = Log::open(log_dir(root.path()), small_config(), mode).unwrap();
    assert!(log.recovery_stats().recovered);
    assert_eq!(log.log_end_offset(), state.log_end_offset);
    assert_eq!(read_all(&log, 0).unwrap(), stored.concat());
}

#[test]
fn flush_tracks_offsets_and_policy() {
    let root = tempfile::tempdir().unwrap();
    let config = LogConfig { flush_interval_messages: 5, flush_interval_ms: 1000, ..small_config() };
    let log = Log::create(log_dir(root.path()), config).unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let seen_in_listener = seen.clone();
    log.set_flush_listener(Box::new(move |offset| seen_in_listener.store(offset as u64, Ordering::SeqCst)));
    append_bytes(&log, simple_batch(2, 10, Compression::None), 0).unwrap();
    assert!(!log.needs_flush(now_ms()));
    assert!(log.needs_flush(now_ms() + 1000));
    append_bytes(&log, simple_batch(3, 10, Compression::None), 0).unwrap();
    assert!(log.needs_flush(now_ms()));
    assert_eq!(log.flushed_offset(), 0);
    assert_eq!(log.flush().unwrap(), 5);
    assert_eq!((log.flushed_offset(), seen.load(Ordering::SeqCst)), (5, 5));
    assert!(!log.needs_flush(now_ms() + 10_000));
    // Rolled segments are flushed with the active one.
    fill(&log, 30, Compression::None);
    let (offset, fsyncs) = log.flush_counted().unwrap();
    assert_eq!(offset, log.log_end_offset());
    assert!(fsyncs > 3, "fsyncs {fsyncs}");
    assert_eq!(log.flush_counted().unwrap().1, 0, "nothing left to flush");
}

// Goal: a fetch offset in a gap between segments (offsets no batch holds) returns the next segment's first batch.
#[test]
fn read_continues_past_a_gap() {
    let root = tempfile::tempdir().unwrap();
    let dir = log_dir(root.path());
    let log = Log::create(dir.clone(), LogConfig::default()).unwrap();
    let stored = fill(&log, 2, Compression::None);
    let end = log.log_end_offset();
    log.close_clean().unwrap();
    drop(log);
    // A later segment starting at offset 10, leaving a gap after the first segment's batches.
    let mut builder = BatchBuilder::new(0).record(None, Some(b"after the gap"), 0);
    builder.base_offset = 10;
    let later = builder.build();
    std::fs::write(crate::segment::segment_file(&dir, 10, "log"), &later).unwrap();
    let log = Log::open(dir, LogConfig::default(), OpenMode::Unclean { recovery_point: 10 }).unwrap();
    assert_eq!(log.log_end_offset(), 11);
    assert!(end < 10);
    assert_eq!(log.read(0, 1 << 20, 11, true).unwrap().bytes, stored.concat());
    for offset in end..=10 {
        assert_eq!(log.read(offset, 1 << 20, 11, true).unwrap().bytes, later, "offset {offset}");
    }
}
