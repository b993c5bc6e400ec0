//! Fuzz target: recovery of an arbitrary segment file.
//!
//! The input becomes the active segment of a partition that was not shut
//! down cleanly. Opening the log must never panic, whatever the bytes; every
//! batch it then serves must be whole, CRC-valid and at contiguous offsets;
//! and the log must accept an append at its recovered end.

#![no_main]

use libfuzzer_sys::fuzz_target;
use runnel_log::testing::simple_batch;
use runnel_log::{validate_batches, BatchHeader, Compression, Log, LogConfig, OpenMode, BATCH_HEADER_BYTES};

fuzz_target!(|data: &[u8]| {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("fuzz-0");
    std::fs::create_dir(&dir).expect("partition dir");
    std::fs::write(dir.join("00000000000000000000.log"), data).expect("segment");
    let config = LogConfig::default();
    let Ok(log) = Log::open(dir, config.clone(), OpenMode::Unclean { recovery_point: 0 }) else {
        return;
    };
    let end = log.log_end_offset();
    let mut offset = log.log_start_offset();
    while offset < end {
        let read = log.read(offset, 1 << 20, end, true).expect("recovered data reads back");
        assert!(!read.bytes.is_empty(), "no progress at offset {offset} below the end {end}");
        let validated = validate_batches(&read.bytes, usize::MAX).expect("served batches are valid");
        let mut position = 0;
        let mut next: Option<i64> = None;
        for batch in &validated.batches {
            let header = BatchHeader::parse(&read.bytes[position..position + BATCH_HEADER_BYTES]).expect("header");
            match next {
                // The first batch served is the one holding the fetch offset.
                None => assert!(header.base_offset <= offset && offset <= header.last_offset(), "wrong first batch"),
                // Recovery enforces offset continuity, so batches follow each other exactly.
                Some(n) => assert_eq!(header.base_offset, n, "offsets are contiguous"),
            }
            next = Some(header.last_offset() + 1);
            position += batch.size;
        }
        offset = next.expect("at least one batch");
    }
    let mut next = simple_batch(1, 10, Compression::None);
    let validated = validate_batches(&next, config.max_message_bytes).expect("valid batch");
    let info = log.append(&mut next, &validated, 0, 0).expect("append after recovery");
    assert_eq!(info.base_offset, end, "appends continue at the recovered end");
});
