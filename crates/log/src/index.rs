//! What the offset index and the time index share: fixed-size big-endian entries, whole-file load with
//! validation, and lazy loading for closed segments.
//!
//! Index files are derived data. They are appended at their exact size (no preallocation) and may be torn by a crash,
//! so loading keeps only the longest well-formed prefix (offsets increasing, positions inside the log). Closed
//! segments load their index on the first lookup, so opening a log reads no index of a segment nobody fetches from.

use std::fmt::Debug;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use parking_lot::RwLock;

use crate::error::{io_err, LogError};

/// A fixed-size index entry, stored with its offset relative to the segment's base offset.
pub trait IndexEntry: Copy + Debug + PartialEq + Send + Sync + 'static {
    /// Encoded size in bytes.
    const BYTES: usize;
    fn encode(&self, base_offset: i64, out: &mut [u8]);
    fn decode(base_offset: i64, buf: &[u8]) -> Self;
    /// Whether this entry may follow `prev` in a well-formed index of a segment whose log holds `log_bytes` bytes.
    fn may_follow(&self, prev: Option<&Self>, log_bytes: u64) -> bool;
}

/// Encodes `entries` back to back.
pub fn encode_entries<E: IndexEntry>(base_offset: i64, entries: &[E]) -> Vec<u8> {
    let mut out = vec![0u8; entries.len() * E::BYTES];
    for (entry, chunk) in entries.iter().zip(out.chunks_exact_mut(E::BYTES)) {
        entry.encode(base_offset, chunk);
    }
    out
}

/// Decodes whole entries; a trailing partial entry (a torn append) is ignored.
pub fn decode_entries<E: IndexEntry>(base_offset: i64, bytes: &[u8]) -> Vec<E> {
    bytes.chunks_exact(E::BYTES).map(|chunk| E::decode(base_offset, chunk)).collect()
}

/// Length of the longest prefix of `entries` that is well formed for a log of `log_bytes` bytes.
pub fn valid_prefix_len<E: IndexEntry>(entries: &[E], log_bytes: u64) -> usize {
    let mut prev = None;
    for (i, entry) in entries.iter().enumerate() {
        if !entry.may_follow(prev, log_bytes) {
            return i;
        }
        prev = Some(entry);
    }
    entries.len()
}

/// Reads an index file and returns its valid prefix. A missing file is an empty index.
pub(crate) fn read_index_file<E: IndexEntry>(
    path: &Path,
    base_offset: i64,
    log_bytes: u64,
) -> Result<Vec<E>, LogError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes).map_err(io_err("read index", path))?;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("open index", path)(e)),
    }
    let mut entries = decode_entries::<E>(base_offset, &bytes);
    let valid = valid_prefix_len(&entries, log_bytes);
    if valid < entries.len() || bytes.len() % E::BYTES != 0 {
        tracing::warn!(path = %path.display(), valid, total = entries.len(), "ignoring malformed index tail");
    }
    entries.truncate(valid);
    Ok(entries)
}

/// Reads only the last whole entry of an index file, for a closed segment's max timestamp.
pub(crate) fn read_last_entry<E: IndexEntry>(path: &Path, base_offset: i64) -> Result<Option<E>, LogError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open index", path)(e)),
    };
    let len = file.metadata().map_err(io_err("stat index", path))?.len();
    let whole = len - len % E::BYTES as u64;
    if whole == 0 {
        return Ok(None);
    }
    let mut buf = vec![0u8; E::BYTES];
    file.read_exact_at(&mut buf, whole - E::BYTES as u64).map_err(io_err("read index", path))?;
    Ok(Some(E::decode(base_offset, &buf)))
}

/// The in-memory entries of one index file, loaded on first use when the segment is closed.
#[derive(Debug)]
pub(crate) struct IndexFile<E> {
    path: PathBuf,
    base_offset: i64,
    /// Size of the segment's log, bounding the positions a valid entry may hold.
    log_bytes: u64,
    entries: RwLock<Option<Vec<E>>>,
}

impl<E: IndexEntry> IndexFile<E> {
    /// An index whose entries are already in memory (the active segment, or one just scanned).
    pub(crate) fn loaded(path: PathBuf, base_offset: i64, entries: Vec<E>) -> IndexFile<E> {
        IndexFile { path, base_offset, log_bytes: u64::MAX, entries: RwLock::new(Some(entries)) }
    }

    /// An index read from `path` on first use.
    pub(crate) fn lazy(path: PathBuf, base_offset: i64, log_bytes: u64) -> IndexFile<E> {
        IndexFile { path, base_offset, log_bytes, entries: RwLock::new(None) }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` over the entries, loading them first if needed.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&[E]) -> R) -> Result<R, LogError> {
        if let Some(entries) = self.entries.read().as_deref() {
            return Ok(f(entries));
        }
        let mut guard = self.entries.write();
        if guard.is_none() {
            *guard = Some(read_index_file(&self.path, self.base_offset, self.log_bytes)?);
        }
        Ok(f(guard.as_deref().expect("index loaded above")))
    }

    /// Number of entries of a loaded index. Panics if the index is not loaded (only the active segment appends).
    pub(crate) fn loaded_len(&self) -> usize {
        self.entries.read().as_ref().expect("active index is loaded").len()
    }

    /// Appends entries in memory (the caller has written them to the file).
    pub(crate) fn push(&self, new: &[E]) {
        let mut guard = self.entries.write();
        let entries = guard.as_mut().expect("active index is loaded");
        for entry in new {
            assert!(entry.may_follow(entries.last(), u64::MAX), "index entry {entry:?} out of order");
            entries.push(*entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offset_index::OffsetEntry;
    use crate::time_index::TimeEntry;

    // Goal: a torn or garbage tail is dropped and everything before it kept.
    #[test]
    fn read_keeps_valid_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let entries = vec![
            OffsetEntry { offset: 100, position: 0 },
            OffsetEntry { offset: 110, position: 4096 },
            OffsetEntry { offset: 120, position: 8192 },
        ];
        let mut bytes = encode_entries(100, &entries);
        bytes.extend_from_slice(&[0u8; 8]); // a zero-filled entry after a crash
        bytes.extend_from_slice(&[1u8; 3]); // a partial entry
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read_index_file::<OffsetEntry>(&path, 100, 10_000).unwrap(), entries);
        // Positions past the log's end are not trusted either.
        assert_eq!(read_index_file::<OffsetEntry>(&path, 100, 5000).unwrap(), entries[..2]);
        let missing = dir.path().join("missing.index");
        assert!(read_index_file::<OffsetEntry>(&missing, 0, 10).unwrap().is_empty());
    }

    #[test]
    fn lazy_index_loads_once_and_reads_last_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let entries = vec![TimeEntry { timestamp: 5, offset: 0 }, TimeEntry { timestamp: 9, offset: 3 }];
        std::fs::write(&path, encode_entries(0, &entries)).unwrap();
        let index = IndexFile::<TimeEntry>::lazy(path.clone(), 0, 100);
        assert_eq!(index.with(|e| e.to_vec()).unwrap(), entries);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(index.with(|e| e.len()).unwrap(), 2);
        std::fs::write(&path, encode_entries(0, &entries)).unwrap();
        assert_eq!(read_last_entry::<TimeEntry>(&path, 0).unwrap(), Some(entries[1]));
    }
}
