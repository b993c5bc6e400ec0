//! One segment of a partition: its `.log` file, its two sparse indexes, and while it is the active segment the
//! writer state that decides when to add index entries.
//!
//! Writes are positional (`pwrite` at the segment's logical size), so the logical size, not the file length, bounds
//! what readers see. Index files are appended at their exact size. A segment stops being active when the log rolls:
//! it then gets a final time index entry and its files are handed to the flusher.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{io_err, LogError};
use crate::index::{encode_entries, read_index_file, read_last_entry, IndexEntry, IndexFile};
use crate::offset_index::OffsetEntry;
use crate::time_index::TimeEntry;

pub(crate) const LOG_EXT: &str = "log";
pub(crate) const INDEX_EXT: &str = "index";
pub(crate) const TIME_INDEX_EXT: &str = "timeindex";
/// Aborted transactions whose abort marker is in the segment (see `transactions.rs`).
pub(crate) const TXN_INDEX_EXT: &str = "txnindex";

/// `<dir>/<20-digit base offset>.<ext>`.
pub(crate) fn segment_file(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// Kafka's "no timestamp": never indexed.
const NO_TIMESTAMP: i64 = -1;

/// Why an append failed, and whether the segment is still as it was.
#[derive(Debug)]
pub(crate) enum AppendFailure {
    /// Every file was cut back: nothing of the append remains, and the segment can take the next append.
    Undone(LogError),
    /// The files could not be cut back; the segment must not be written again until recovery.
    Damaged(LogError),
}

/// Decides which batches get index entries, shared by appends and by the recovery scan so both build the same index.
#[derive(Debug, Clone)]
pub(crate) struct IndexBuilder {
    interval: u64,
    bytes_since_last_entry: u64,
    /// The largest timestamp so far and the base offset of the first batch that had it.
    max_timestamp: Option<TimeEntry>,
    last_indexed_timestamp: Option<i64>,
}

impl IndexBuilder {
    pub(crate) fn new(interval: u32) -> IndexBuilder {
        IndexBuilder {
            interval: u64::from(interval),
            bytes_since_last_entry: 0,
            max_timestamp: None,
            last_indexed_timestamp: None,
        }
    }

    /// Continues after existing entries whose last time entry is `last_time_entry`.
    pub(crate) fn resume(
        interval: u32,
        bytes_since_last_entry: u64,
        last_time_entry: Option<TimeEntry>,
    ) -> IndexBuilder {
        IndexBuilder {
            interval: u64::from(interval),
            bytes_since_last_entry,
            max_timestamp: last_time_entry,
            last_indexed_timestamp: last_time_entry.map(|e| e.timestamp),
        }
    }

    pub(crate) fn set_interval(&mut self, interval: u32) {
        self.interval = u64::from(interval);
    }

    pub(crate) fn max_timestamp(&self) -> Option<TimeEntry> {
        self.max_timestamp
    }

    /// Records a batch's max timestamp without counting its bytes.
    pub(crate) fn observe_timestamp(&mut self, base_offset: i64, max_timestamp: i64) {
        if max_timestamp > self.max_timestamp.map_or(NO_TIMESTAMP, |m| m.timestamp) {
            self.max_timestamp = Some(TimeEntry { timestamp: max_timestamp, offset: base_offset });
        }
    }

    /// Accounts for a batch just appended at `position`; returns the index entries it earns.
    pub(crate) fn on_batch(
        &mut self,
        base_offset: i64,
        position: u64,
        size: u64,
        max_timestamp: i64,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        self.observe_timestamp(base_offset, max_timestamp);
        self.bytes_since_last_entry += size;
        if self.bytes_since_last_entry < self.interval {
            return (None, None);
        }
        self.bytes_since_last_entry = 0;
        let position = u32::try_from(position).expect("segment positions fit in i32");
        (Some(OffsetEntry { offset: base_offset, position }), self.take_time_entry())
    }

    /// The time entry for the largest timestamp so far, if it is newer than the last indexed one.
    pub(crate) fn take_time_entry(&mut self) -> Option<TimeEntry> {
        let max = self.max_timestamp?;
        if self.last_indexed_timestamp.is_some_and(|t| t >= max.timestamp) {
            return None;
        }
        self.last_indexed_timestamp = Some(max.timestamp);
        Some(max)
    }
}

/// A batch placed by an append: where it went and what the indexes need to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub position: u64,
    pub size: u64,
    pub max_timestamp: i64,
}

/// Writer state of the active segment.
#[derive(Debug)]
pub(crate) struct ActiveState {
    offset_index_file: Arc<File>,
    time_index_file: Arc<File>,
    pub(crate) builder: IndexBuilder,
    pub(crate) first_append_ms: Option<i64>,
    /// Index bytes were written since the indexes were last fsynced.
    pub(crate) indexes_dirty: bool,
}

/// What a reader needs of a segment, taken under the log lock and used without it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    pub base_offset: i64,
    pub path: Arc<Path>,
    pub file: Arc<File>,
    /// Logical size when the view was taken; readers never look past it.
    pub end: u64,
    pub offset_index: Arc<IndexFile<OffsetEntry>>,
    pub time_index: Arc<IndexFile<TimeEntry>>,
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    pub(crate) path: Arc<Path>,
    pub(crate) file: Arc<File>,
    /// Logical size: bytes of whole, valid batches.
    pub(crate) size: u64,
    pub(crate) offset_index: Arc<IndexFile<OffsetEntry>>,
    pub(crate) time_index: Arc<IndexFile<TimeEntry>>,
    /// Largest timestamp of a closed segment, read from its time index on first use.
    closed_max_timestamp: Option<Option<TimeEntry>>,
    pub(crate) active: Option<ActiveState>,
}

fn open_rw(path: &Path, create: bool) -> Result<File, LogError> {
    OpenOptions::new().read(true).write(true).create(create).open(path).map_err(io_err("open", path))
}

impl Segment {
    /// Creates an empty active segment. Fails if its log file already exists.
    pub(crate) fn create(dir: &Path, base_offset: i64, interval: u32) -> Result<Segment, LogError> {
        let path = segment_file(dir, base_offset, LOG_EXT);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create segment", &path))?;
        for ext in [INDEX_EXT, TIME_INDEX_EXT] {
            let index_path = segment_file(dir, base_offset, ext);
            open_rw(&index_path, true)?.set_len(0).map_err(io_err("truncate index", &index_path))?;
        }
        Segment::active(dir, base_offset, file, 0, Vec::new(), Vec::new(), IndexBuilder::new(interval))
    }

    /// Removes a segment's three files, whichever exist (after a failed create).
    pub(crate) fn remove_files(dir: &Path, base_offset: i64) {
        for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
            let path = segment_file(dir, base_offset, ext);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a half-created segment file");
                }
            }
        }
    }

    /// The segment's `.log` file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// An active segment from its parts; the index files must already hold exactly `offset_entries`/`time_entries`.
    pub(crate) fn active(
        dir: &Path,
        base_offset: i64,
        file: File,
        size: u64,
        offset_entries: Vec<OffsetEntry>,
        time_entries: Vec<TimeEntry>,
        builder: IndexBuilder,
    ) -> Result<Segment, LogError> {
        let offset_index_path = segment_file(dir, base_offset, INDEX_EXT);
        let time_index_path = segment_file(dir, base_offset, TIME_INDEX_EXT);
        let active = ActiveState {
            offset_index_file: Arc::new(open_rw(&offset_index_path, true)?),
            time_index_file: Arc::new(open_rw(&time_index_path, true)?),
            builder,
            first_append_ms: None,
            indexes_dirty: false,
        };
        Ok(Segment {
            base_offset,
            path: Arc::from(segment_file(dir, base_offset, LOG_EXT)),
            file: Arc::new(file),
            size,
            offset_index: Arc::new(IndexFile::loaded(offset_index_path, base_offset, offset_entries)),
            time_index: Arc::new(IndexFile::loaded(time_index_path, base_offset, time_entries)),
            closed_max_timestamp: None,
            active: Some(active),
        })
    }

    /// Opens a closed segment: a stat of its log, nothing read. Indexes load on first lookup.
    pub(crate) fn open_closed(dir: &Path, base_offset: i64) -> Result<Segment, LogError> {
        let path = segment_file(dir, base_offset, LOG_EXT);
        let file = File::open(&path).map_err(io_err("open segment", &path))?;
        let size = file.metadata().map_err(io_err("stat segment", &path))?.len();
        let offset_index_path = segment_file(dir, base_offset, INDEX_EXT);
        let time_index_path = segment_file(dir, base_offset, TIME_INDEX_EXT);
        Ok(Segment {
            base_offset,
            path: Arc::from(path),
            file: Arc::new(file),
            size,
            offset_index: Arc::new(IndexFile::lazy(offset_index_path, base_offset, size)),
            time_index: Arc::new(IndexFile::lazy(time_index_path, base_offset, u64::MAX)),
            closed_max_timestamp: None,
            active: None,
        })
    }

    /// Opens the active segment after a clean shutdown: reads its two index files, not its log.
    pub(crate) fn open_active(dir: &Path, base_offset: i64, size: u64, interval: u32) -> Result<Segment, LogError> {
        let path = segment_file(dir, base_offset, LOG_EXT);
        let file = open_rw(&path, false)?;
        let offset_entries: Vec<OffsetEntry> =
            read_index_file(&segment_file(dir, base_offset, INDEX_EXT), base_offset, size)?;
        let time_entries: Vec<TimeEntry> =
            read_index_file(&segment_file(dir, base_offset, TIME_INDEX_EXT), base_offset, u64::MAX)?;
        // The last indexed batch's size is unknown without reading the log, so count from its start: the next entry
        // comes at most one batch early.
        let since_last = size - offset_entries.last().map_or(0, |e| u64::from(e.position));
        let builder = IndexBuilder::resume(interval, since_last, time_entries.last().copied());
        // Rewrite the index files at their valid length so appends continue right after the last valid entry.
        rewrite_index(&segment_file(dir, base_offset, INDEX_EXT), base_offset, &offset_entries, offset_entries.len())?;
        rewrite_index(&segment_file(dir, base_offset, TIME_INDEX_EXT), base_offset, &time_entries, time_entries.len())?;
        Segment::active(dir, base_offset, file, size, offset_entries, time_entries, builder)
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active.is_some()
    }

    pub(crate) fn active_state(&self) -> &ActiveState {
        self.active.as_ref().expect("the last segment is active")
    }

    /// Writes `buf` (the batches described by `batches`, back to back) at the end of the segment and indexes them.
    ///
    /// Every write is positional, and memory (size, index entries, the index builder) changes only after all of
    /// them succeeded. If one fails, each file is cut back to the length memory says it has, so the segment is
    /// exactly as before the call: [`AppendFailure::Undone`]. If even that fails, [`AppendFailure::Damaged`].
    pub(crate) fn append(&mut self, buf: &[u8], batches: &[AppendedBatch], now_ms: i64) -> Result<(), AppendFailure> {
        let active = self.active.as_mut().expect("appends go to the active segment");
        assert_eq!(batches.first().map(|b| b.position), Some(self.size), "append must start at the segment end");
        for pair in batches.windows(2) {
            assert_eq!(pair[0].last_offset + 1, pair[1].base_offset, "appended offsets are contiguous");
            assert_eq!(pair[0].position + pair[0].size, pair[1].position, "appended batches are back to back");
        }
        let builder_before = active.builder.clone();
        let mut offset_entries = Vec::new();
        let mut time_entries = Vec::new();
        for batch in batches {
            let (offset_entry, time_entry) =
                active.builder.on_batch(batch.base_offset, batch.position, batch.size, batch.max_timestamp);
            offset_entries.extend(offset_entry);
            time_entries.extend(time_entry);
        }
        let written = self
            .file
            .write_all_at(buf, self.size)
            .map_err(io_err("append to", &self.path))
            .and_then(|()| {
                write_entries(&active.offset_index_file, &self.offset_index, self.base_offset, &offset_entries)
            })
            .and_then(|()| write_entries(&active.time_index_file, &self.time_index, self.base_offset, &time_entries));
        if let Err(err) = written {
            active.builder = builder_before;
            return Err(self.undo_append(err));
        }
        self.offset_index.push(&offset_entries);
        self.time_index.push(&time_entries);
        let active = self.active.as_mut().expect("appends go to the active segment");
        active.indexes_dirty |= !offset_entries.is_empty() || !time_entries.is_empty();
        active.first_append_ms.get_or_insert(now_ms);
        self.size += buf.len() as u64;
        Ok(())
    }

    /// Cuts the log and index files back to the lengths memory has for them after a failed append.
    fn undo_append(&self, err: LogError) -> AppendFailure {
        let active = self.active.as_ref().expect("appends go to the active segment");
        let offset_len = (self.offset_index.loaded_len() * OffsetEntry::BYTES) as u64;
        let time_len = (self.time_index.loaded_len() * TimeEntry::BYTES) as u64;
        let undone = self.file.set_len(self.size).is_ok()
            && active.offset_index_file.set_len(offset_len).is_ok()
            && active.time_index_file.set_len(time_len).is_ok();
        if undone {
            AppendFailure::Undone(err)
        } else {
            AppendFailure::Damaged(err)
        }
    }

    /// Appends the final time index entry (the segment's largest timestamp) if it is newer than the last entry.
    pub(crate) fn finalize_time_index(&mut self) -> Result<(), LogError> {
        let active = self.active.as_mut().expect("only the active segment is finalized");
        if let Some(entry) = active.builder.take_time_entry() {
            append_entries(&active.time_index_file, &self.time_index, self.base_offset, &[entry])?;
            active.indexes_dirty = true;
        }
        Ok(())
    }

    /// The active segment's index files, to fsync before a recovery point past their entries is checkpointed.
    pub(crate) fn index_files(&self) -> [Arc<File>; 2] {
        let active = self.active_state();
        [active.offset_index_file.clone(), active.time_index_file.clone()]
    }

    /// Makes the segment closed. Returns its files (log and both indexes), which still need an fsync.
    pub(crate) fn seal(&mut self) -> Result<Vec<Arc<File>>, LogError> {
        self.finalize_time_index()?;
        let active = self.active.take().expect("only the active segment is sealed");
        self.closed_max_timestamp = Some(active.builder.max_timestamp());
        Ok(vec![self.file.clone(), active.offset_index_file, active.time_index_file])
    }

    /// The segment's largest timestamp and the base offset of the batch holding it.
    pub(crate) fn max_timestamp(&mut self) -> Result<Option<TimeEntry>, LogError> {
        if let Some(active) = &self.active {
            return Ok(active.builder.max_timestamp());
        }
        if let Some(cached) = self.closed_max_timestamp {
            return Ok(cached);
        }
        let last = read_last_entry::<TimeEntry>(self.time_index.path(), self.base_offset)?;
        self.closed_max_timestamp = Some(last);
        Ok(last)
    }

    pub(crate) fn view(&self) -> SegmentView {
        SegmentView {
            base_offset: self.base_offset,
            path: self.path.clone(),
            file: self.file.clone(),
            end: self.size,
            offset_index: self.offset_index.clone(),
            time_index: self.time_index.clone(),
        }
    }
}

/// Writes index entries at the end of an index file, then records them in memory.
/// Writes `entries` after the entries `index` holds in memory; the caller pushes them once every write of the
/// append succeeded.
fn write_entries<E: IndexEntry>(
    file: &File,
    index: &IndexFile<E>,
    base_offset: i64,
    entries: &[E],
) -> Result<(), LogError> {
    if entries.is_empty() {
        return Ok(());
    }
    let position = (index.loaded_len() * E::BYTES) as u64;
    file.write_all_at(&encode_entries(base_offset, entries), position).map_err(io_err("append to", index.path()))
}

/// Writes `entries` after those `index` holds and records them in memory.
fn append_entries<E: IndexEntry>(
    file: &File,
    index: &IndexFile<E>,
    base_offset: i64,
    entries: &[E],
) -> Result<(), LogError> {
    write_entries(file, index, base_offset, entries)?;
    index.push(entries);
    Ok(())
}

/// Makes an index file hold exactly `entries`, rewriting only from entry `keep` onwards (earlier ones are on disk).
pub(crate) fn rewrite_index<E: IndexEntry>(
    path: &Path,
    base_offset: i64,
    entries: &[E],
    keep: usize,
) -> Result<(), LogError> {
    let file = open_rw(path, true)?;
    let keep_bytes = (keep * E::BYTES) as u64;
    let current = file.metadata().map_err(io_err("stat index", path))?.len();
    let wanted = (entries.len() * E::BYTES) as u64;
    if current == wanted && keep == entries.len() {
        return Ok(());
    }
    file.set_len(keep_bytes).map_err(io_err("truncate index", path))?;
    file.write_all_at(&encode_entries(base_offset, &entries[keep..]), keep_bytes)
        .map_err(io_err("write index", path))?;
    file.sync_data().map_err(io_err("fsync index", path))
}

/// Removes a segment's files; missing files are fine.
pub(crate) fn delete_segment_files(dir: &Path, base_offset: i64) -> Result<(), LogError> {
    for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT, TXN_INDEX_EXT] {
        let path = segment_file(dir, base_offset, ext);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("delete", &path)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: entries follow the interval rule: an offset entry once `interval` bytes accumulate, a time entry only
    // when the largest timestamp grew, and a final entry for a later maximum.
    #[test]
    fn builder_follows_interval_and_timestamps() {
        let mut b = IndexBuilder::new(100);
        assert_eq!(b.on_batch(0, 0, 60, 10), (None, None));
        let (o, t) = b.on_batch(5, 60, 60, 8);
        assert_eq!(o, Some(OffsetEntry { offset: 5, position: 60 }));
        assert_eq!(t, Some(TimeEntry { timestamp: 10, offset: 0 }));
        let (o, t) = b.on_batch(9, 120, 150, 9);
        assert_eq!(o, Some(OffsetEntry { offset: 9, position: 120 }));
        assert_eq!(t, None, "max timestamp did not grow");
        assert_eq!(b.on_batch(12, 270, 10, 30), (None, None));
        assert_eq!(b.take_time_entry(), Some(TimeEntry { timestamp: 30, offset: 12 }));
        assert_eq!(b.take_time_entry(), None);
        // A batch without timestamp (-1) never becomes the max.
        let mut b = IndexBuilder::new(0);
        assert_eq!(b.on_batch(0, 0, 70, -1).1, None);
    }

    #[test]
    fn append_seal_and_reopen_closed() {
        let dir = tempfile::tempdir().unwrap();
        let mut segment = Segment::create(dir.path(), 100, 50).unwrap();
        assert!(Segment::create(dir.path(), 100, 50).is_err(), "create never overwrites a segment");
        let data = vec![7u8; 120];
        let batches = [
            AppendedBatch { base_offset: 100, last_offset: 101, position: 0, size: 60, max_timestamp: 5 },
            AppendedBatch { base_offset: 102, last_offset: 102, position: 60, size: 60, max_timestamp: 7 },
        ];
        segment.append(&data, &batches, 0).unwrap();
        assert_eq!(segment.size, 120);
        assert_eq!(segment.offset_index.loaded_len(), 2);
        let files = segment.seal().unwrap();
        assert_eq!(files.len(), 3);
        let mut closed = Segment::open_closed(dir.path(), 100).unwrap();
        assert_eq!(closed.size, 120);
        assert_eq!(closed.max_timestamp().unwrap(), Some(TimeEntry { timestamp: 7, offset: 102 }));
        let entries = closed.offset_index.with(|e| e.to_vec()).unwrap();
        assert_eq!(entries[1], OffsetEntry { offset: 102, position: 60 });
    }
}
