//! The sparse offset index (`.index`): 8-byte entries mapping a batch's base offset to its file position.
//!
//! An entry is added after appending a batch once `index_interval_bytes` of log data have accumulated since the
//! previous entry, so the index holds a few entries per interval rather than one per batch. Entry layout (big-endian):
//! relative offset i32 (offset - segment base offset), file position i32.

use crate::index::IndexEntry;

/// Size of one offset index entry.
pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;

/// A batch's base offset and the position of its first byte in the segment's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub offset: i64,
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const BYTES: usize = OFFSET_INDEX_ENTRY_BYTES;

    fn encode(&self, base_offset: i64, out: &mut [u8]) {
        let relative = i32::try_from(self.offset - base_offset).expect("relative offset fits in i32");
        let position = i32::try_from(self.position).expect("segment position fits in i32");
        out[0..4].copy_from_slice(&relative.to_be_bytes());
        out[4..8].copy_from_slice(&position.to_be_bytes());
    }

    fn decode(base_offset: i64, buf: &[u8]) -> OffsetEntry {
        let relative = i32::from_be_bytes(buf[0..4].try_into().expect("4 bytes"));
        let position = i32::from_be_bytes(buf[4..8].try_into().expect("4 bytes"));
        // A negative position (garbage) becomes a huge one, which validation rejects as outside the log.
        OffsetEntry { offset: base_offset + i64::from(relative), position: position as u32 }
    }

    fn may_follow(&self, prev: Option<&OffsetEntry>, log_bytes: u64) -> bool {
        let in_log = u64::from(self.position) < log_bytes && self.position <= i32::MAX as u32;
        match prev {
            None => in_log && self.offset >= 0,
            Some(prev) => in_log && self.offset > prev.offset && self.position > prev.position,
        }
    }
}

/// The entry at or below `target`: the index is sparse, so the batch holding `target` starts at or after that entry's
/// position and the reader scans forward from there. `None` means scan from the segment start.
pub fn lookup(entries: &[OffsetEntry], target: i64) -> Option<OffsetEntry> {
    let after = entries.partition_point(|e| e.offset <= target);
    after.checked_sub(1).map(|i| entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{decode_entries, encode_entries, valid_prefix_len};
    use proptest::prelude::*;

    /// Strictly increasing offsets and positions, as the log writes them.
    fn arb_entries(base: i64) -> impl Strategy<Value = Vec<OffsetEntry>> {
        proptest::collection::vec((1i64..1000, 1u32..100_000), 0..200).prop_map(move |steps| {
            let mut offset = base;
            let mut position = 0u32;
            steps
                .into_iter()
                .map(|(d_offset, d_position)| {
                    let entry = OffsetEntry { offset, position };
                    offset += d_offset;
                    position += d_position;
                    entry
                })
                .collect()
        })
    }

    proptest! {
        // Goal: entries survive encode/decode with any base offset, and a written index validates whole.
        #[test]
        fn codec_roundtrip(base in 0i64..(1 << 40), entries in arb_entries(0)) {
            let entries: Vec<_> = entries.into_iter().map(|e| OffsetEntry { offset: e.offset + base, ..e }).collect();
            let bytes = encode_entries(base, &entries);
            prop_assert_eq!(bytes.len(), entries.len() * OFFSET_INDEX_ENTRY_BYTES);
            let decoded = decode_entries::<OffsetEntry>(base, &bytes);
            prop_assert_eq!(&decoded, &entries);
            prop_assert_eq!(valid_prefix_len(&decoded, u64::MAX), entries.len());
        }

        // Goal: lookup returns exactly the last entry whose offset is <= target (checked against a linear scan).
        #[test]
        fn lookup_is_floor(entries in arb_entries(0), target in -5i64..250_000) {
            let expected = entries.iter().rev().find(|e| e.offset <= target).copied();
            prop_assert_eq!(lookup(&entries, target), expected);
        }
    }

    #[test]
    fn validation_rejects_disorder() {
        let a = OffsetEntry { offset: 10, position: 100 };
        let b = OffsetEntry { offset: 10, position: 200 };
        let c = OffsetEntry { offset: 11, position: 50 };
        assert!(!b.may_follow(Some(&a), 1000));
        assert!(!c.may_follow(Some(&a), 1000));
        assert!(!a.may_follow(None, 100));
        assert_eq!(lookup(&[a], 9), None);
    }
}
