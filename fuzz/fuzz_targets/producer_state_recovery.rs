//! Fuzz target: recovery of producer state from damaged snapshot and transaction index files.
//!
//! A partition is written with idempotent and transactional producers (commits, aborts, one transaction left
//! open) across several segments, then dropped without a clean shutdown. The input's first byte picks which file
//! is damaged (the newest producer snapshot, an older one, or a transaction index) and whether the snapshot's
//! checksum is recomputed afterwards, so damage also reaches the decoder behind the checksum; the rest is a list of
//! 4-byte operations as in `segment_recovery`. Opening the log must never panic; the last stable offset must lie
//! within the log; every aborted transaction it reports must lie within the log; and the log must take an append
//! and a marker at its end.

#![no_main]

use libfuzzer_sys::fuzz_target;
use runnel_log::testing::{append_bytes, BatchBuilder};
use runnel_log::{ControlType, Log, LogConfig, OpenMode};

const NOW: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 700, index_interval_bytes: 128, ..LogConfig::default() }
}

fn batch(pid: i64, seq: i32, transactional: bool) -> Vec<u8> {
    let mut b = BatchBuilder::new(NOW).record(Some(b"key"), Some(&[3u8; 90]), 0).record(None, Some(b"v"), 1);
    b.producer_id = pid;
    b.producer_epoch = 0;
    b.base_sequence = seq;
    b.transactional = transactional;
    b.build()
}

fn write_partition(dir: std::path::PathBuf) {
    let log = Log::create(dir, config()).expect("create");
    for round in 0..8i32 {
        append_bytes(&log, batch(1, round * 2, true), NOW).expect("transactional append");
        append_bytes(&log, batch(2, round * 2, false), NOW).expect("idempotent append");
        let control = if round % 3 == 0 { ControlType::Abort } else { ControlType::Commit };
        log.append_marker(1, 0, control, 0, 0, NOW).expect("marker");
    }
    append_bytes(&log, batch(3, 0, true), NOW).expect("open transaction");
}

fn files(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    found
}

fn damage(bytes: &mut Vec<u8>, ops: &[u8]) {
    for op in ops.chunks_exact(4) {
        let at = usize::from(u16::from_be_bytes([op[1], op[2]]));
        match op[0] % 4 {
            0 => bytes.truncate(at.min(bytes.len())),
            1 if !bytes.is_empty() => {
                let i = at % bytes.len();
                bytes[i] ^= op[3] | 1;
            }
            2 if !bytes.is_empty() => {
                let start = at % bytes.len();
                let end = (start + usize::from(op[3] % 16) + 1).min(bytes.len());
                bytes[start..end].fill(op[3]);
            }
            _ => bytes.extend_from_slice(&op[1..]),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, ops)) = data.split_first() else { return };
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("fuzz-0");
    write_partition(dir.clone());
    let snapshots = files(&dir, "snapshot");
    let indexes = files(&dir, "txnindex");
    let target = match choice % 3 {
        0 => snapshots.last(),
        1 => snapshots.first(),
        _ => indexes.first(),
    };
    let Some(target) = target else { return };
    let mut bytes = std::fs::read(target).expect("read");
    damage(&mut bytes, ops);
    // Snapshots are magic (4 bytes), CRC-32C of the rest (4 bytes), body.
    if choice & 0x80 != 0 && target.extension().is_some_and(|e| e == "snapshot") && bytes.len() >= 8 {
        let crc = crc32c::crc32c(&bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_be_bytes());
    }
    std::fs::write(target, &bytes).expect("write");

    let log = Log::open(dir, config(), OpenMode::Unclean { recovery_point: 0 }).expect("open never fails on these");
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let lso = log.last_stable_offset();
    assert!(start <= lso && lso <= end, "last stable offset {lso} outside [{start}, {end}]");
    for aborted in log.aborted_transactions(0, i64::MAX) {
        assert!(aborted.first_offset <= aborted.last_offset && aborted.last_offset < end, "{aborted:?} outside the log");
    }
    for producer in log.producers() {
        assert!(producer.current_txn_start_offset < end, "{producer:?}");
    }
    let appended = append_bytes(&log, batch(4, 0, false), NOW).expect("append after recovery");
    assert_eq!(appended.0.base_offset, end);
    log.append_marker(3, 0, ControlType::Abort, 0, 0, NOW).expect("marker after recovery");
});
