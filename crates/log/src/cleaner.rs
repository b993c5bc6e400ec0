//! Log compaction: keeping the newest record per key.
//!
//! A compacted log has a clean head (cleaned before), a dirty part (appended
//! since the last cleaning, from the *first dirty offset*) and an uncleanable
//! tail: the active segment and every segment holding records younger than
//! `min.compaction.lag.ms`. Cleaning runs in two passes, like Kafka's:
//!
//! 1. The key map: every keyed record of the dirty part, key to its newest
//!    offset, held in memory up to a byte budget
//!    (`log.cleaner.dedupe.buffer.size`). When the budget runs out the map
//!    covers the dirty part only up to that record (the *map end*); the rest
//!    waits for the next cleaning.
//! 2. The rewrite: every closed segment from the log start up to the map end
//!    is copied, in groups whose total fits one segment (`segment.bytes`), so
//!    small segments merge. A record below the map end goes when the map
//!    holds a newer offset for its key, and a tombstone (null value) goes once
//!    its batch is older than `delete.retention.ms`. Records keep their offsets
//!    (readers see gaps, never reordering); a batch that loses some records is
//!    rebuilt with the same base offset, codec and producer fields; a batch
//!    that loses all of them disappears. Control batches are kept.
//!
//! Swapping a cleaned group in is crash-safe. The group is written as
//! `<base>.log.cleaned` with its two indexes beside it and fsynced; then a
//! small manifest `cleaner-swap` naming the group (its base and the base of
//! the segment after it) is written and renamed into place: that rename
//! commits. The cleaned files are renamed over the group's first segment, the
//! group's other segments are deleted, and the manifest is removed. A log
//! that opens with a manifest finishes those steps (they can be repeated); one
//! that opens with `.cleaned` files and no manifest deletes them, and the old
//! segments are intact. Either way every offset is served once: before the
//! swap from the old segments, after it from the cleaned one.
//!
//! Transactions: nothing at or above the last stable offset is cleaned, and the batches of aborted transactions are
//! dropped from every group (they never enter the key map). Transaction markers are kept.
//!
//! The cleaner's reads and writes are charged to a [`Throttle`]
//! (`log.cleaner.io.max.bytes.per.second`), and a cleaned segment is written
//! back to disk in bounded chunks as it is written (`writeback.rs`). The swap's
//! fsyncs and renames run without the log's lock (see `clean_group`), so the
//! flusher and appends never wait for them. The first dirty offset is
//! checkpointed by the log manager (`cleaner-offset-checkpoint`).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::FileExt;

use super::transactions::{is_aborted, AbortedRanges};
use super::*;
use crate::batch::BatchHeader;
use crate::index::encode_entries;
use crate::offset_index::OffsetEntry;
use crate::records::{rebuild_batch, records, DECOMPRESSED_BATCH_BYTES_MAX};
use crate::segment::{delete_segment_files, IndexBuilder, SegmentView};
use crate::throttle::Throttle;
use crate::writeback::PacedWriter;
use crate::BATCH_HEADER_BYTES;

/// The manifest whose presence commits a cleaned group.
const SWAP_MANIFEST: &str = "cleaner-swap";
const SWAP_MANIFEST_TMP: &str = "cleaner-swap.tmp";
/// Suffix of a cleaned segment's files before the swap.
const CLEANED: &str = "cleaned";
/// What the key map charges for an entry besides the key's bytes (offset, hash table slot, allocation).
const KEY_ENTRY_OVERHEAD_BYTES: usize = 64;

/// How much of a compacted log is waiting for the cleaner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanable {
    /// Bytes of closed, cleanable segments not cleaned since the log opened or was last cleaned.
    pub dirty_bytes: u64,
    /// Bytes of all cleanable segments (clean head and dirty part).
    pub cleanable_bytes: u64,
    /// The dirty part holds records older than `max.compaction.lag.ms`: clean whatever the ratio.
    pub overdue: bool,
}

impl Cleanable {
    pub fn dirty_ratio(&self) -> f64 {
        if self.cleanable_bytes == 0 {
            0.0
        } else {
            self.dirty_bytes as f64 / self.cleanable_bytes as f64
        }
    }
}

/// What one cleaning did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    pub segments_read: usize,
    pub segments_written: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_removed: u64,
    pub tombstones_removed: u64,
    /// Keys in the map, and the bytes it was charged.
    pub keys: usize,
    pub key_map_bytes: usize,
    /// The dirty range cleaned: the next cleaning starts at its end.
    pub first_dirty_offset: i64,
    pub map_end_offset: i64,
    /// Wall time of the cleaning, in milliseconds.
    pub elapsed_ms: u64,
}

/// Reads the batches of a closed segment in order, each whole.
fn for_each_batch(
    view: &SegmentView,
    mut f: impl FnMut(&BatchHeader, Vec<u8>) -> Result<bool, LogError>,
) -> Result<(), LogError> {
    let mut position = 0u64;
    while position < view.end {
        let corrupt =
            |reason: &str| LogError::Corrupt { path: view.path.to_path_buf(), position, reason: reason.to_string() };
        if view.end - position < BATCH_HEADER_BYTES as u64 {
            return Err(corrupt("partial batch header"));
        }
        let mut head = [0u8; BATCH_HEADER_BYTES];
        view.file.read_exact_at(&mut head, position).map_err(io_err("read", &view.path))?;
        let header = BatchHeader::parse(&head).expect("61 bytes");
        let size = header.total_bytes() as u64;
        if header.magic != MAGIC_V2 || size < BATCH_HEADER_BYTES as u64 || size > view.end - position {
            return Err(corrupt("invalid batch header"));
        }
        // The header is in hand; read only the rest.
        let mut batch = vec![0u8; size as usize];
        batch[..BATCH_HEADER_BYTES].copy_from_slice(&head);
        view.file
            .read_exact_at(&mut batch[BATCH_HEADER_BYTES..], position + BATCH_HEADER_BYTES as u64)
            .map_err(io_err("read", &view.path))?;
        if !f(&header, batch)? {
            return Ok(());
        }
        position += size;
    }
    Ok(())
}

fn corrupt_batch(view: &SegmentView, err: impl std::fmt::Display) -> LogError {
    LogError::Corrupt { path: view.path.to_path_buf(), position: 0, reason: format!("undecodable batch: {err}") }
}

/// Key to newest offset over the dirty part, within a byte budget.
struct KeyMap {
    offsets: HashMap<Bytes, i64>,
    charged: usize,
    budget: usize,
}

impl KeyMap {
    /// Records `offset` as the newest for `key`; `false` when the budget has no room for a new key.
    fn put(&mut self, key: Bytes, offset: i64) -> bool {
        if let Some(newest) = self.offsets.get_mut(&key) {
            *newest = offset;
            return true;
        }
        let charge = key.len() + KEY_ENTRY_OVERHEAD_BYTES;
        if self.charged + charge > self.budget {
            return false;
        }
        self.charged += charge;
        // A copy: the key is a slice of its batch's records, which would otherwise stay in memory with it.
        self.offsets.insert(Bytes::copy_from_slice(&key), offset);
        true
    }
}

/// A group of adjacent segments cleaned into one.
struct Group {
    /// Base offsets and views of the old segments.
    segments: Vec<(i64, SegmentView)>,
    /// Base offset of the segment after the group.
    end: i64,
}

impl Log {
    /// The offset below which segments may be cleaned: the active segment's base, or the base of the first closed
    /// segment holding a record younger than `min.compaction.lag.ms` or at or above the last stable offset.
    fn first_uncleanable_offset(st: &mut LogState, now_ms: i64) -> Result<(i64, usize), LogError> {
        let lag_limit = now_ms.saturating_sub(st.config.min_compaction_lag_ms);
        let closed = st.segments.len() - 1;
        // Nothing at or above the last stable offset is cleaned: an open transaction may still abort.
        let last_stable = st.producers.first_unstable_offset().unwrap_or(st.log_end_offset);
        for i in 0..closed {
            if st.segments[i + 1].base_offset > last_stable {
                return Ok((st.segments[i].base_offset, i));
            }
            if st.config.min_compaction_lag_ms > 0 && retention::newest_timestamp_ms(&mut st.segments[i])? >= lag_limit
            {
                return Ok((st.segments[i].base_offset, i));
            }
        }
        Ok((st.segments[closed].base_offset, closed))
    }

    /// How much of this log waits for the cleaner; `None` when it is not compacted or has nothing to clean.
    pub fn cleanable(&self, now_ms: i64) -> Result<Option<Cleanable>, LogError> {
        let mut st = self.state.lock();
        if !st.config.compact || st.closed || st.failed {
            return Ok(None);
        }
        let (_, uncleanable) = Log::first_uncleanable_offset(&mut st, now_ms)?;
        let first_dirty = st.first_dirty_offset.max(st.log_start_offset);
        let mut cleanable = Cleanable { dirty_bytes: 0, cleanable_bytes: 0, overdue: false };
        for i in 0..uncleanable {
            let size = st.segments[i].size;
            cleanable.cleanable_bytes += size;
            if st.segments[i + 1].base_offset > first_dirty {
                cleanable.dirty_bytes += size;
                let max_lag = st.config.max_compaction_lag_ms;
                if max_lag < i64::MAX && !cleanable.overdue {
                    let newest = retention::newest_timestamp_ms(&mut st.segments[i])?;
                    cleanable.overdue = newest < now_ms.saturating_sub(max_lag);
                }
            }
        }
        Ok((cleanable.dirty_bytes > 0).then_some(cleanable))
    }

    /// Cleans the log once (see the module documentation), without an I/O limit. `None` when there was nothing to
    /// clean.
    pub fn clean(&self, now_ms: i64, key_map_budget: usize) -> Result<Option<CleanStats>, LogError> {
        self.clean_throttled(now_ms, key_map_budget, &Throttle::unlimited())
    }

    /// `clean`, charging every byte read and written to `throttle`.
    pub fn clean_throttled(
        &self,
        now_ms: i64,
        key_map_budget: usize,
        throttle: &Throttle,
    ) -> Result<Option<CleanStats>, LogError> {
        let started = std::time::Instant::now();
        let _cleaning = self.clean_lock.lock();
        let (config, first_dirty, first_uncleanable, plan, aborted) = {
            let mut st = self.state.lock();
            if !st.config.compact || st.closed || st.failed {
                return Ok(None);
            }
            let (first_uncleanable, uncleanable) = Log::first_uncleanable_offset(&mut st, now_ms)?;
            let first_dirty = st.first_dirty_offset.max(st.log_start_offset);
            if first_dirty >= first_uncleanable {
                return Ok(None);
            }
            let plan: Vec<(i64, SegmentView)> =
                st.segments[..uncleanable].iter().map(|s| (s.base_offset, s.view())).collect();
            let aborted = Log::aborted_ranges(&st, first_uncleanable);
            (st.config.clone(), first_dirty, first_uncleanable, plan, aborted)
        };
        let mut stats = CleanStats { first_dirty_offset: first_dirty, ..CleanStats::default() };

        // Pass 1: the key map over the dirty part.
        let mut map = KeyMap { offsets: HashMap::new(), charged: 0, budget: key_map_budget };
        let mut map_end = first_uncleanable;
        'segments: for (i, (_, view)) in plan.iter().enumerate() {
            let next_base = plan.get(i + 1).map_or(first_uncleanable, |(base, _)| *base);
            if next_base <= first_dirty {
                continue;
            }
            let mut full_at = None;
            for_each_batch(view, |header, batch| {
                throttle.acquire(batch.len() as u64);
                // Aborted records never replace anything: they are dropped.
                if header.last_offset() < first_dirty || header.is_control() || is_aborted(&aborted, header) {
                    return Ok(true);
                }
                let mut recs = records(&batch, DECOMPRESSED_BATCH_BYTES_MAX).map_err(|e| corrupt_batch(view, e))?;
                for record in &mut recs {
                    let record = record.map_err(|e| corrupt_batch(view, e))?;
                    if record.offset < first_dirty {
                        continue;
                    }
                    if let Some(key) = record.key {
                        if !map.put(key, record.offset) {
                            full_at = Some(record.offset);
                            return Ok(false);
                        }
                    }
                }
                Ok(true)
            })?;
            if let Some(offset) = full_at {
                map_end = offset;
                break 'segments;
            }
        }
        if map_end <= first_dirty {
            tracing::warn!(
                topic = %self.topic,
                partition = self.partition,
                budget = key_map_budget,
                "key map budget too small for a single key; not cleaning"
            );
            return Ok(None);
        }
        stats.map_end_offset = map_end;
        stats.keys = map.offsets.len();
        stats.key_map_bytes = map.charged;

        // Pass 2: rewrite every segment that starts below the map end, in groups.
        let delete_horizon = now_ms.saturating_sub(config.delete_retention_ms);
        for group in groups(&plan, map_end, first_uncleanable, &config) {
            let written = self.clean_group(
                &group,
                (&map.offsets, &aborted),
                map_end,
                delete_horizon,
                &config,
                &mut stats,
                throttle,
            )?;
            if !written {
                return Ok(None);
            }
        }
        self.state.lock().first_dirty_offset = map_end;
        stats.elapsed_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            topic = %self.topic,
            partition = self.partition,
            first_dirty,
            map_end,
            keys = stats.keys,
            key_map_bytes = stats.key_map_bytes,
            elapsed_ms = stats.elapsed_ms,
            bytes_read = stats.bytes_read,
            bytes_written = stats.bytes_written,
            records_removed = stats.records_removed,
            tombstones_removed = stats.tombstones_removed,
            "log cleaned"
        );
        Ok(Some(stats))
    }

    /// Writes one group's cleaned segment and swaps it in. `false` when the log changed under the cleaner (it was
    /// deleted or closed) and nothing was swapped.
    #[allow(clippy::too_many_arguments)]
    fn clean_group(
        &self,
        group: &Group,
        (newest, aborted): (&HashMap<Bytes, i64>, &AbortedRanges),
        map_end: i64,
        delete_horizon: i64,
        config: &LogConfig,
        stats: &mut CleanStats,
        throttle: &Throttle,
    ) -> Result<bool, LogError> {
        let base = group.segments[0].0;
        let cleaned_log = cleaned_file(&self.dir, base, LOG_EXT);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&cleaned_log)
            .map_err(io_err("create cleaned segment", &cleaned_log))?;
        let mut out = PacedWriter::new(file, throttle);
        let mut builder = IndexBuilder::new(config.index_interval_bytes);
        let mut offset_entries: Vec<OffsetEntry> = Vec::new();
        let mut time_entries: Vec<TimeEntry> = Vec::new();
        let mut position = 0u64;
        for (_, view) in &group.segments {
            // A broker shutting down or a topic being deleted stops the cleaner between segments.
            if self.state.lock().closed {
                drop(out);
                remove_cleaned_files(&self.dir, base);
                return Ok(false);
            }
            stats.segments_read += 1;
            stats.bytes_read += view.end;
            for_each_batch(view, |header, batch| {
                throttle.acquire(batch.len() as u64);
                let kept = if is_aborted(aborted, header) {
                    // Every record of an aborted transaction goes, wherever the key map ends.
                    stats.records_removed += u64::try_from(header.records_count).unwrap_or(0);
                    None
                } else if header.base_offset >= map_end || header.is_control() {
                    Some(batch)
                } else {
                    filter_batch(view, header, batch, newest, map_end, delete_horizon, stats)?
                };
                if let Some(bytes) = kept {
                    let header = BatchHeader::parse(&bytes).expect("a kept batch has a header");
                    out.write_all(&bytes).map_err(io_err("write", &cleaned_log))?;
                    let (o, t) =
                        builder.on_batch(header.base_offset, position, bytes.len() as u64, header.max_timestamp);
                    offset_entries.extend(o);
                    time_entries.extend(t);
                    position += bytes.len() as u64;
                }
                Ok(true)
            })?;
        }
        time_entries.extend(builder.take_time_entry());
        let file = out.into_file().map_err(io_err("write", &cleaned_log))?;
        file.sync_data().map_err(io_err("fsync", &cleaned_log))?;
        for (ext, bytes) in
            [(INDEX_EXT, encode_entries(base, &offset_entries)), (TIME_INDEX_EXT, encode_entries(base, &time_entries))]
        {
            let path = cleaned_file(&self.dir, base, ext);
            let index = File::create(&path).map_err(io_err("create", &path))?;
            index.write_all_at(&bytes, 0).map_err(io_err("write", &path))?;
            index.sync_data().map_err(io_err("fsync", &path))?;
        }
        stats.segments_written += 1;
        stats.bytes_written += position;
        #[cfg(test)]
        tests::crash_point(1)?;

        {
            let mut st = self.state.lock();
            let first = st.segments.iter().position(|s| s.base_offset == base);
            let unchanged = !st.closed
                && !st.deleted
                && first.is_some_and(|first| {
                    group.segments.iter().enumerate().all(|(k, (b, _))| {
                        st.segments.get(first + k).is_some_and(|s| s.base_offset == *b && !s.is_active())
                    }) && st.segments.get(first + group.segments.len()).is_some_and(|s| s.base_offset == group.end)
                });
            let Some(first) = first.filter(|_| unchanged) else {
                drop(st);
                remove_cleaned_files(&self.dir, base);
                return Ok(false);
            };
            // Readers holding views of the old segments keep their open files; load what they would otherwise read
            // lazily by path, since the paths are about to name the cleaned segment.
            for segment in &mut st.segments[first..first + group.segments.len()] {
                segment.offset_index.with(|_| ())?;
                segment.time_index.with(|_| ())?;
                segment.max_timestamp()?;
            }
        }
        // The swap's fsyncs and renames run without the log's lock, which the flusher takes for every log it flushes
        // and appends take too: a swap must not stall them. Nothing else changes the group meanwhile: retention
        // skips a log whose `clean_lock` is held, appends only touch the active segment, and readers holding views of
        // the old segments keep their open files and the indexes loaded above.
        write_manifest(&self.dir, base, group.end)?;
        #[cfg(test)]
        tests::crash_point(2)?;
        finish_swap(&self.dir, base, group.end, group.segments[1..].iter().map(|(b, _)| *b))?;
        let cleaned = Segment::open_closed(&self.dir, base)?;
        let mut st = self.state.lock();
        let first = st.segments.iter().position(|s| s.base_offset == base).expect("only the cleaner removes the group");
        st.segments.splice(first..first + group.segments.len(), [cleaned]);
        st.max_timestamp = None;
        st.max_timestamp_record = None;
        Ok(true)
    }
}

/// The batch without the records the cleaner removes: `None` if none is left, the original bytes if all are.
fn filter_batch(
    view: &SegmentView,
    header: &BatchHeader,
    batch: Vec<u8>,
    newest: &HashMap<Bytes, i64>,
    map_end: i64,
    delete_horizon: i64,
    stats: &mut CleanStats,
) -> Result<Option<Vec<u8>>, LogError> {
    let mut recs = records(&batch, DECOMPRESSED_BATCH_BYTES_MAX).map_err(|e| corrupt_batch(view, e))?;
    let mut kept = Vec::new();
    let mut total = 0usize;
    while let Some(next) = recs.next_with_bytes() {
        let (record, bytes) = next.map_err(|e| corrupt_batch(view, e))?;
        total += 1;
        let keep = match &record.key {
            _ if record.offset >= map_end => true,
            // Records without a key have nothing to be replaced by; a compacted topic refuses new ones.
            None => true,
            Some(key) if newest.get(key).is_some_and(|&n| n > record.offset) => false,
            Some(_) if record.value.is_none() && header.max_timestamp < delete_horizon => {
                stats.tombstones_removed += 1;
                false
            }
            Some(_) => true,
        };
        if keep {
            kept.push((record, bytes));
        }
    }
    stats.records_removed += (total - kept.len()) as u64;
    if kept.len() == total {
        return Ok(Some(batch));
    }
    if kept.is_empty() {
        return Ok(None);
    }
    rebuild_batch(header, &kept).map(Some).map_err(|e| corrupt_batch(view, e))
}

/// Adjacent segments starting below `map_end`, grouped so that each group fits one segment.
fn groups(plan: &[(i64, SegmentView)], map_end: i64, first_uncleanable: i64, config: &LogConfig) -> Vec<Group> {
    let max_bytes = config.segment_bytes_max();
    let max_index_entries = (config.segment_index_bytes / 12).max(1);
    let interval = u64::from(config.index_interval_bytes.max(1));
    let mut out: Vec<Group> = Vec::new();
    let mut current: Vec<(i64, SegmentView)> = Vec::new();
    let mut bytes = 0u64;
    // Base offset of the segment after the last one taken into `current`.
    let mut end = first_uncleanable;
    for (i, (base, view)) in plan.iter().enumerate() {
        if *base >= map_end {
            break;
        }
        let next_base = plan.get(i + 1).map_or(first_uncleanable, |(b, _)| *b);
        let fits = current.first().is_some_and(|(first, _)| {
            bytes + view.end <= max_bytes
                && (bytes + view.end) / interval < max_index_entries
                && next_base - first <= i64::from(i32::MAX)
        });
        if !current.is_empty() && !fits {
            out.push(Group { segments: std::mem::take(&mut current), end: *base });
            bytes = 0;
        }
        bytes += view.end;
        current.push((*base, view.clone()));
        end = next_base;
    }
    if !current.is_empty() {
        out.push(Group { segments: current, end });
    }
    out
}

fn cleaned_file(dir: &Path, base: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base:020}.{ext}.{CLEANED}"))
}

fn remove_cleaned_files(dir: &Path, base: i64) {
    for ext in [LOG_EXT, INDEX_EXT, TIME_INDEX_EXT] {
        let _ = std::fs::remove_file(cleaned_file(dir, base, ext));
    }
}

/// Commits a swap: the manifest names the group (its base and the base after it) and appears atomically.
fn write_manifest(dir: &Path, base: i64, end: i64) -> Result<(), LogError> {
    let tmp = dir.join(SWAP_MANIFEST_TMP);
    let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    file.write_all_at(format!("{base} {end}\n").as_bytes(), 0).map_err(io_err("write", &tmp))?;
    file.sync_data().map_err(io_err("fsync", &tmp))?;
    let manifest = dir.join(SWAP_MANIFEST);
    std::fs::rename(&tmp, &manifest).map_err(io_err("rename", &manifest))?;
    sync_dir(dir)
}

/// The steps after the commit, safe to repeat: cleaned files over the group's first segment, the group's other
/// segments (`others`) deleted, the manifest removed. The caller names the others: listing the directory while the
/// log appends could catch a new segment half created.
fn finish_swap(dir: &Path, base: i64, end: i64, others: impl IntoIterator<Item = i64>) -> Result<(), LogError> {
    // The log file last: its `.cleaned` name is what says the swap is not finished.
    for ext in [INDEX_EXT, TIME_INDEX_EXT, LOG_EXT] {
        let cleaned = cleaned_file(dir, base, ext);
        if cleaned.exists() {
            let target = segment_file(dir, base, ext);
            std::fs::rename(&cleaned, &target).map_err(io_err("rename", &cleaned))?;
        }
    }
    #[cfg(test)]
    tests::crash_point(3)?;
    for other in others {
        assert!(other > base && other < end, "segment {other} is outside the cleaned group {base}..{end}");
        delete_segment_files(dir, other)?;
    }
    sync_dir(dir)?;
    let manifest = dir.join(SWAP_MANIFEST);
    std::fs::remove_file(&manifest).map_err(io_err("remove", &manifest))?;
    sync_dir(dir)
}

/// Run when a log opens, before its segments are listed: finishes a committed swap and removes the files of an
/// uncommitted one.
pub(crate) fn finish_interrupted_clean(dir: &Path) -> Result<(), LogError> {
    let manifest = dir.join(SWAP_MANIFEST);
    match std::fs::read_to_string(&manifest) {
        Ok(text) => {
            let mut parts = text.split_whitespace().map(str::parse::<i64>);
            let (Some(Ok(base)), Some(Ok(end))) = (parts.next(), parts.next()) else {
                return Err(LogError::Malformed { path: manifest, line: 1, reason: "expected '<base> <end>'".into() });
            };
            tracing::warn!(dir = %dir.display(), base, end, "finishing an interrupted compaction swap");
            let others: Vec<i64> = list_segments(dir)?.into_iter().filter(|&b| b > base && b < end).collect();
            finish_swap(dir, base, end, others)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("read", &manifest)(e)),
    }
    let mut removed = false;
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(&format!(".{CLEANED}")) || name == SWAP_MANIFEST_TMP {
            tracing::info!(path = %entry.path().display(), "removing an unfinished cleaner file");
            std::fs::remove_file(entry.path()).map_err(io_err("remove", &entry.path()))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "cleaner_tests.rs"]
mod tests;
