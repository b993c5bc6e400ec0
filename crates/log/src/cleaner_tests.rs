//! Tests of log compaction: a model-based property test (random keys, values, tombstones, codecs, segment sizes
//! and key map budgets) and crashes at each step of the swap.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::batch::Compression;
use crate::records::RecordView;
use crate::testing::{append_bytes, read_all, split_batches, BatchBuilder};

thread_local! {
    /// The swap step at which the next cleaning on this thread fails as if the process died there (0: none).
    static CRASH_AT: Cell<u8> = const { Cell::new(0) };
}

pub(super) fn crash_point(step: u8) -> Result<(), LogError> {
    if CRASH_AT.with(|c| c.get()) == step {
        CRASH_AT.with(|c| c.set(0));
        return Err(LogError::Io {
            op: "injected crash",
            path: PathBuf::from(format!("step {step}")),
            source: std::io::Error::other("injected"),
        });
    }
    Ok(())
}

const NOW: i64 = 10_000_000;
const DELETE_RETENTION_MS: i64 = 1_000_000;
const OLD: i64 = NOW - 2 * DELETE_RETENTION_MS;
const RECENT: i64 = NOW - 10;
const CODECS: [Compression; 5] =
    [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 64,
        compact: true,
        delete_retention_ms: DELETE_RETENTION_MS,
        retention_enabled: false,
        ..LogConfig::default()
    }
}

/// One appended record as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    batch_timestamp: i64,
}

/// A batch to append: (key index or None, value seed or None for a tombstone) records, codec, old or recent.
type TestBatch = (Vec<(Option<u8>, Option<u8>)>, usize, bool);

fn append(log: &Log, batch: &TestBatch, model: &mut BTreeMap<i64, Written>) {
    let (records, codec, old) = batch;
    let timestamp = if *old { OLD } else { RECENT };
    let mut builder = BatchBuilder::new(timestamp).compression(CODECS[*codec]);
    let mut written = Vec::new();
    for (key, value) in records {
        let key = key.map(|k| format!("key-{k}").into_bytes());
        let value = value.map(|v| vec![v; 20 + usize::from(v % 7) * 10]);
        builder = builder.record(key.as_deref(), value.as_deref(), 0);
        written.push(Written { key, value, batch_timestamp: timestamp });
    }
    let (info, _) = append_bytes(log, builder.build(), NOW).unwrap();
    for (i, w) in written.into_iter().enumerate() {
        model.insert(info.base_offset + i as i64, w);
    }
}

/// Closes the active segment: appends one record after making the segment limit tiny, so it lands in a new one.
fn roll_with_barrier(log: &Log) -> i64 {
    let config = log.config();
    log.set_config(LogConfig { segment_bytes: 1, ..config.clone() });
    let (info, _) =
        append_bytes(log, BatchBuilder::new(RECENT).record(Some(b"barrier"), Some(b"b"), 0).build(), NOW).unwrap();
    log.set_config(config);
    info.base_offset
}

/// Every record the log serves from its start, decoded, with offsets checked to increase.
fn served(log: &Log) -> Vec<RecordView> {
    let bytes = read_all(log, log.log_start_offset()).unwrap();
    let mut out: Vec<RecordView> = Vec::new();
    let mut position = 0;
    for header in split_batches(&bytes) {
        let size = header.total_bytes();
        for record in records(&bytes[position..position + size], DECOMPRESSED_BATCH_BYTES_MAX).unwrap() {
            let record = record.unwrap();
            assert!(out.last().is_none_or(|prev| prev.offset < record.offset), "offsets increase");
            out.push(record);
        }
        position += size;
    }
    out
}

/// What compaction must leave of the records below `barrier`: the newest record of each key (dropped when it is a
/// tombstone older than delete.retention.ms) and every record without a key.
fn expected(model: &BTreeMap<i64, Written>, barrier: i64) -> BTreeMap<i64, Written> {
    let mut newest: BTreeMap<&Vec<u8>, i64> = BTreeMap::new();
    for (offset, w) in model.range(..barrier) {
        if let Some(key) = &w.key {
            newest.insert(key, *offset);
        }
    }
    model
        .iter()
        .filter(|(offset, w)| {
            if **offset >= barrier {
                return true;
            }
            match &w.key {
                None => true,
                Some(key) => {
                    newest[key] == **offset && !(w.value.is_none() && w.batch_timestamp < NOW - DELETE_RETENTION_MS)
                }
            }
        })
        .map(|(o, w)| (*o, w.clone()))
        .collect()
}

fn as_model(records: &[RecordView], model: &BTreeMap<i64, Written>) -> BTreeMap<i64, Written> {
    records
        .iter()
        .map(|r| {
            let original = &model[&r.offset];
            assert_eq!(r.key.as_deref(), original.key.as_deref(), "offset {} keeps its key", r.offset);
            assert_eq!(r.value.as_deref(), original.value.as_deref(), "offset {} keeps its value", r.offset);
            (r.offset, original.clone())
        })
        .collect()
}

/// Cleans until the cleaner has nothing left to do; returns how many cleanings ran.
fn clean_fully(log: &Log, budget: usize) -> usize {
    let mut runs = 0;
    while log.clean(NOW, budget).unwrap().is_some() {
        runs += 1;
        assert!(runs < 1000, "cleaning makes progress");
    }
    runs
}

fn arb_batch() -> impl Strategy<Value = TestBatch> {
    let record = (prop::option::weighted(0.95, 0u8..12), prop::option::weighted(0.8, any::<u8>()));
    (prop::collection::vec(record, 1..6), 0..CODECS.len(), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    // Goal: after cleaning, the log serves exactly the newest record per key (tombstones gone once older than
    // delete.retention.ms), every record without a key, and the uncleanable tail, each with its original offset,
    // key and value and in increasing offset order; the same after an unclean reopen and after more appends and
    // cleanings. Method: random batches over 12 keys with tombstones, every codec, old and recent timestamps, small
    // segments (so groups merge and split) and key map budgets from a few keys to unlimited, checked against a
    // model of what was appended.
    #[test]
    fn compaction_keeps_the_newest_record_per_key(
        first in prop::collection::vec(arb_batch(), 1..40),
        second in prop::collection::vec(arb_batch(), 0..20),
        segment_bytes in 300u64..3000,
        budget_keys in prop::sample::select(vec![1usize, 3, 6, 100]),
    ) {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("table-0");
        let log = Log::create(dir.clone(), config(segment_bytes)).unwrap();
        let budget = budget_keys * (KEY_ENTRY_OVERHEAD_BYTES + "barrier".len());
        let mut model = BTreeMap::new();
        for batch in &first {
            append(&log, batch, &mut model);
        }
        let barrier = roll_with_barrier(&log);
        model.insert(barrier, Written { key: Some(b"barrier".to_vec()), value: Some(b"b".to_vec()), batch_timestamp: RECENT });
        clean_fully(&log, budget);
        let want = expected(&model, barrier);
        prop_assert_eq!(&as_model(&served(&log), &model), &want);

        drop(log);
        let log = Log::open(dir.clone(), config(segment_bytes), OpenMode::Unclean { recovery_point: 0 }).unwrap();
        prop_assert_eq!(&as_model(&served(&log), &model), &want, "after an unclean reopen");

        for batch in &second {
            append(&log, batch, &mut model);
        }
        let barrier = roll_with_barrier(&log);
        model.insert(barrier, Written { key: Some(b"barrier".to_vec()), value: Some(b"b".to_vec()), batch_timestamp: RECENT });
        clean_fully(&log, budget);
        prop_assert_eq!(&as_model(&served(&log), &model), &expected(&model, barrier), "after a second round");
    }
}

/// A log of 60 batches over 5 keys in small segments, rolled so all of it is cleanable; returns the model.
fn dirty_log(dir: &Path) -> (Log, BTreeMap<i64, Written>) {
    let log = Log::create(dir.to_path_buf(), config(600)).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..60u8 {
        let tombstone = i % 11 == 0;
        let batch = (vec![(Some(i % 5), (!tombstone).then_some(i))], usize::from(i) % CODECS.len(), i < 30);
        append(&log, &batch, &mut model);
    }
    let barrier = roll_with_barrier(&log);
    model.insert(
        barrier,
        Written { key: Some(b"barrier".to_vec()), value: Some(b"b".to_vec()), batch_timestamp: RECENT },
    );
    (log, model)
}

// Goal: a crash at any step of a swap leaves, after reopening, either the log as it was or the log as cleaned,
// never a mix (no record twice, none of the newest lost), and cleaning can go on. Method: crash the first cleaned
// group before its manifest (step 1), after it (step 2) and halfway through the swap (step 3); reopen with an unclean
// recovery from offset 0 and compare with the model.
#[test]
fn a_crash_during_the_swap_leaves_old_or_new_never_a_mix() {
    for step in 1..=3u8 {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("table-0");
        let (log, model) = dirty_log(&dir);
        let before = as_model(&served(&log), &model);
        CRASH_AT.with(|c| c.set(step));
        assert!(log.clean(NOW, usize::MAX).is_err(), "step {step}: the injected crash surfaces");
        drop(log);

        let log = Log::open(dir.clone(), config(600), OpenMode::Unclean { recovery_point: 0 }).unwrap();
        let after = as_model(&served(&log), &model);
        let names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(!names.iter().any(|n| n.ends_with(".cleaned") || n.starts_with(SWAP_MANIFEST)), "{names:?}");
        if step == 1 {
            assert_eq!(after, before, "step {step}: an uncommitted swap leaves the old log");
        } else {
            // The first group is swapped in, cleaned with the map of the whole dirty part; the rest is as it was.
            let group_end = log.state.lock().segments[1].base_offset;
            let cleaned = expected(&model, *model.keys().last().unwrap());
            let head = |m: &BTreeMap<i64, Written>| m.range(..group_end).map(|(o, w)| (*o, w.clone())).collect();
            let tail = |m: &BTreeMap<i64, Written>| m.range(group_end..).map(|(o, w)| (*o, w.clone())).collect();
            let (after_head, cleaned_head): (BTreeMap<_, _>, BTreeMap<_, _>) = (head(&after), head(&cleaned));
            assert_eq!(after_head, cleaned_head, "step {step}: the committed group is the cleaned one");
            let (after_tail, before_tail): (BTreeMap<_, _>, BTreeMap<_, _>) = (tail(&after), tail(&before));
            assert_eq!(after_tail, before_tail, "step {step}: the rest is untouched");
            assert!(after.len() < before.len(), "step {step}: the group lost superseded records");
        }
        clean_fully(&log, usize::MAX);
        let last = *model.keys().last().unwrap();
        assert_eq!(as_model(&served(&log), &model), expected(&model, last), "step {step}: cleaning finishes");
    }
}

// Goal: a log that is not compacted is never cleaned, and the dirty ratio follows appends and cleanings.
#[test]
fn cleanable_reports_dirty_bytes_only_for_compacted_logs() {
    let root = tempfile::tempdir().unwrap();
    let (log, _) = dirty_log(&root.path().join("table-0"));
    let dirty = log.cleanable(NOW).unwrap().expect("dirty");
    assert_eq!(dirty.dirty_ratio(), 1.0);
    assert!(!dirty.overdue);
    clean_fully(&log, usize::MAX);
    assert_eq!(log.cleanable(NOW).unwrap(), None, "nothing dirty after cleaning");

    let plain = Log::create(root.path().join("plain-0"), LogConfig { compact: false, ..config(600) }).unwrap();
    let mut model = BTreeMap::new();
    for i in 0..20u8 {
        append(&plain, &(vec![(Some(1), Some(i))], 0, true), &mut model);
    }
    roll_with_barrier(&plain);
    assert_eq!(plain.cleanable(NOW).unwrap(), None);
    assert_eq!(plain.clean(NOW, usize::MAX).unwrap(), None);
}
