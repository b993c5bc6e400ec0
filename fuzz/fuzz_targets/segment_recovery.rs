//! Fuzz target: recovery of a damaged segment file.
//!
//! The input drives damage to a valid segment: its first byte picks how many
//! batches (of varied sizes and codecs) the segment starts with; the rest is a
//! list of 4-byte operations that truncate the file, flip a byte, overwrite a
//! run of bytes or append raw bytes. The damaged file becomes the active
//! segment of a partition that was not shut down cleanly. Opening the log must
//! never panic; every batch it then serves must be whole, CRC-valid and at
//! contiguous offsets; and the log must accept an append at its recovered end.

#![no_main]

use libfuzzer_sys::fuzz_target;
use runnel_log::testing::simple_batch;
use runnel_log::{validate_batches, BatchHeader, Compression, Log, LogConfig, OpenMode, BATCH_HEADER_BYTES};

const CODECS: [Compression; 3] = [Compression::None, Compression::Lz4, Compression::Gzip];

/// A valid segment of `batches` batches with contiguous offsets.
fn valid_segment(batches: usize) -> Vec<u8> {
    let mut segment = Vec::new();
    let mut next_offset = 0i64;
    for i in 0..batches {
        let records = 1 + i % 4;
        let mut batch = simple_batch(records, 8 + 40 * (i % 3), CODECS[i % CODECS.len()]);
        batch[..8].copy_from_slice(&next_offset.to_be_bytes());
        next_offset += records as i64;
        segment.extend_from_slice(&batch);
    }
    segment
}

/// Applies the 4-byte operations in `ops` to `segment`.
fn damage(segment: &mut Vec<u8>, ops: &[u8]) {
    for op in ops.chunks_exact(4) {
        let at = usize::from(u16::from_be_bytes([op[1], op[2]]));
        match op[0] % 4 {
            0 => segment.truncate(at.min(segment.len())),
            1 if !segment.is_empty() => {
                let i = at % segment.len();
                segment[i] ^= op[3] | 1;
            }
            2 if !segment.is_empty() => {
                let start = at % segment.len();
                let end = (start + usize::from(op[3] % 16) + 1).min(segment.len());
                segment[start..end].fill(op[3]);
            }
            _ => segment.extend_from_slice(&op[1..]),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("fuzz-0");
    std::fs::create_dir(&dir).expect("partition dir");
    let Some((&batches, ops)) = data.split_first() else { return };
    let mut segment = valid_segment(usize::from(batches % 24));
    damage(&mut segment, ops);
    std::fs::write(dir.join("00000000000000000000.log"), &segment).expect("segment");
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
                // Recovery keeps only batches whose offsets increase (compaction may leave gaps).
                Some(n) => assert!(header.base_offset >= n, "offsets increase"),
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
