//! The sparse time index (`.timeindex`): 12-byte entries (timestamp i64, relative offset i32, big-endian).
//!
//! An entry `(t, o)` says: the largest timestamp among the segment's batches up to and including the batch at offset
//! `o` is `t`, and `o` is the first batch that reached it. Entries are added with the offset index entries (same
//! interval) when the largest timestamp so far has grown since the last entry, plus a final entry for the segment's
//! largest timestamp when the segment is rolled or closed. Timestamps and offsets are therefore strictly increasing.

use crate::index::IndexEntry;

/// Size of one time index entry.
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

/// A timestamp and the base offset of the batch that first reached it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub offset: i64,
}

impl IndexEntry for TimeEntry {
    const BYTES: usize = TIME_INDEX_ENTRY_BYTES;

    fn encode(&self, base_offset: i64, out: &mut [u8]) {
        let relative = i32::try_from(self.offset - base_offset).expect("relative offset fits in i32");
        out[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&relative.to_be_bytes());
    }

    fn decode(base_offset: i64, buf: &[u8]) -> TimeEntry {
        let timestamp = i64::from_be_bytes(buf[0..8].try_into().expect("8 bytes"));
        let relative = i32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
        TimeEntry { timestamp, offset: base_offset + i64::from(relative) }
    }

    fn may_follow(&self, prev: Option<&TimeEntry>, _log_bytes: u64) -> bool {
        match prev {
            None => self.offset >= 0,
            Some(prev) => self.timestamp > prev.timestamp && self.offset > prev.offset,
        }
    }
}

/// The entry with the largest timestamp <= `timestamp`. Every batch before that entry's offset has a smaller
/// timestamp, so a search for the first record at or after `timestamp` may start there. `None` means start at the
/// segment's beginning.
pub fn lookup(entries: &[TimeEntry], timestamp: i64) -> Option<TimeEntry> {
    let after = entries.partition_point(|e| e.timestamp <= timestamp);
    after.checked_sub(1).map(|i| entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::{decode_entries, encode_entries, valid_prefix_len};
    use proptest::prelude::*;

    fn arb_entries() -> impl Strategy<Value = Vec<TimeEntry>> {
        (any::<i32>(), proptest::collection::vec((1i64..10_000, 1i64..1000), 0..200)).prop_map(|(start, steps)| {
            let mut timestamp = i64::from(start);
            let mut offset = 0;
            steps
                .into_iter()
                .map(|(d_ts, d_offset)| {
                    let entry = TimeEntry { timestamp, offset };
                    timestamp += d_ts;
                    offset += d_offset;
                    entry
                })
                .collect()
        })
    }

    proptest! {
        // Goal: entries survive encode/decode relative to any base offset, and a written index validates whole.
        #[test]
        fn codec_roundtrip(base in 0i64..(1 << 40), entries in arb_entries()) {
            let entries: Vec<_> = entries.into_iter().map(|e| TimeEntry { offset: e.offset + base, ..e }).collect();
            let bytes = encode_entries(base, &entries);
            prop_assert_eq!(bytes.len(), entries.len() * TIME_INDEX_ENTRY_BYTES);
            let decoded = decode_entries::<TimeEntry>(base, &bytes);
            prop_assert_eq!(&decoded, &entries);
            prop_assert_eq!(valid_prefix_len(&decoded, 0), entries.len());
        }

        // Goal: lookup returns the last entry whose timestamp is <= the target (checked against a linear scan).
        #[test]
        fn lookup_is_floor(entries in arb_entries(), target in any::<i32>()) {
            let target = i64::from(target);
            let expected = entries.iter().rev().find(|e| e.timestamp <= target).copied();
            prop_assert_eq!(lookup(&entries, target), expected);
        }
    }
}
