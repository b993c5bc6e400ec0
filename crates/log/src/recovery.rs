//! Recovery after an unclean stop: re-scan the unflushed tail of a partition, truncate at the first invalid byte,
//! and rebuild the indexes of what was scanned.
//!
//! Segments wholly below the checkpointed recovery point were fsynced (data and indexes) before that point was
//! written, so they are trusted and only stat'ed. The scan starts in the segment holding the recovery point, at the
//! largest offset index entry at or below it when that entry checks out (the index may be torn too: entries must
//! increase and stay inside the file, and the entry must point at a valid batch with exactly its offset), otherwise
//! at the segment start. Every later segment is scanned whole. The first invalid batch (bad bounds, magic, CRC,
//! record count, or an offset out of order) ends the log: the file is cut there and later segments are deleted,
//! since nothing after it can be trusted. In the last segment (the active one, where torn writes happen and which
//! compaction never touches) each batch must start exactly where the previous one ended; in earlier segments offsets
//! may jump forward, as compaction leaves them, but must stay below the next segment's base. The base offset is not
//! covered by the CRC, so these rules are what catch a damaged one.

use std::fs::OpenOptions;
use std::path::Path;

use crate::error::{io_err, LogError};
use crate::index::read_index_file;
use crate::offset_index::OffsetEntry;
use crate::scan::{batch_is_valid_at, scan_batches};
use crate::segment::{
    delete_segment_files, rewrite_index, segment_file, IndexBuilder, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT,
};
use crate::time_index::TimeEntry;

/// What recovering one partition did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryStats {
    /// False when the log opened clean and no recovery ran.
    pub recovered: bool,
    pub segments_scanned: usize,
    /// Bytes of `.log` data read by the scan.
    pub bytes_scanned: u64,
    /// Bytes cut from the scanned segment plus the sizes of deleted later segments.
    pub truncated_bytes: u64,
    pub segments_deleted: usize,
    /// Segment base offset and position where the scan started.
    pub scan_start: Option<(i64, u64)>,
}

/// A recovered partition: its segments (the last one active) and its log end offset.
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub log_end_offset: i64,
    pub stats: RecoveryStats,
}

/// Recovers a partition whose segments have base offsets `bases` (sorted, non-empty).
pub(crate) fn recover(dir: &Path, bases: &[i64], recovery_point: i64, interval: u32) -> Result<Recovered, LogError> {
    assert!(!bases.is_empty(), "recovery needs at least one segment");
    let first_scanned = bases.partition_point(|&b| b <= recovery_point).saturating_sub(1);
    let mut segments = Vec::with_capacity(bases.len());
    for &base in &bases[..first_scanned] {
        segments.push(Segment::open_closed(dir, base)?);
    }
    let mut stats = RecoveryStats { recovered: true, ..RecoveryStats::default() };
    let mut next_offset = bases[first_scanned];
    let mut cut = false;
    for (i, &base) in bases[first_scanned..].iter().enumerate() {
        // A segment may start after the previous one's last offset (compaction leaves gaps), never before it.
        if cut || base < next_offset {
            let size = std::fs::metadata(segment_file(dir, base, LOG_EXT)).map_or(0, |m| m.len());
            tracing::warn!(dir = %dir.display(), base, size, "deleting segment after the recovered end");
            delete_segment_files(dir, base)?;
            stats.truncated_bytes += size;
            stats.segments_deleted += 1;
            cut = true;
            continue;
        }
        if let Some(previous) = segments.last_mut().filter(|s: &&mut Segment| s.is_active()) {
            sync_files(&previous.seal()?, dir)?;
        }
        let scan_from = (i == 0).then_some(recovery_point);
        let next_base = bases.get(first_scanned + i + 1).copied();
        let (segment, next, truncated) = recover_segment(dir, base, next_base, scan_from, interval, &mut stats)?;
        segments.push(segment);
        next_offset = next;
        cut = truncated;
    }
    if stats.segments_deleted > 0 {
        crate::checkpoint::sync_dir(dir)?;
    }
    Ok(Recovered { segments, log_end_offset: next_offset, stats })
}

fn sync_files(files: &[std::sync::Arc<std::fs::File>], dir: &Path) -> Result<(), LogError> {
    for file in files {
        file.sync_data().map_err(io_err("fsync", dir))?;
    }
    Ok(())
}

/// Scans one segment (from the recovery point's index entry when `recovery_point` is given), cuts it at the first
/// invalid byte and rebuilds its indexes. Returns the segment as active, its next offset, and whether it was cut.
/// `next_base` is the base offset of the following segment, `None` for the last one: a closed segment may have been
/// compacted, so its offsets may jump forward but must stay below `next_base`; the last segment was the active one,
/// which the cleaner never touches, so its offsets must follow each other exactly.
fn recover_segment(
    dir: &Path,
    base: i64,
    next_base: Option<i64>,
    recovery_point: Option<i64>,
    interval: u32,
    stats: &mut RecoveryStats,
) -> Result<(Segment, i64, bool), LogError> {
    let path = segment_file(dir, base, LOG_EXT);
    let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_err("open segment", &path))?;
    let size = file.metadata().map_err(io_err("stat segment", &path))?.len();
    let index_path = segment_file(dir, base, INDEX_EXT);
    let time_index_path = segment_file(dir, base, TIME_INDEX_EXT);
    let mut offset_entries: Vec<OffsetEntry> = read_index_file(&index_path, base, size)?;
    let mut time_entries: Vec<TimeEntry> = read_index_file(&time_index_path, base, u64::MAX)?;
    let resume = match recovery_point {
        Some(rp) if rp > base => resume_entry(&file, &path, size, &offset_entries, rp)?,
        _ => None,
    };
    // Keep the index entries up to the resume point; the scan rebuilds the rest.
    let (start, expected, mut builder) = match resume {
        Some(keep) => {
            let entry = offset_entries[keep];
            offset_entries.truncate(keep + 1);
            time_entries.retain(|t| t.offset <= entry.offset);
            let builder = IndexBuilder::resume(interval, 0, time_entries.last().copied());
            (u64::from(entry.position), entry.offset, builder)
        }
        None => {
            offset_entries.clear();
            time_entries.clear();
            (0, base, IndexBuilder::new(interval))
        }
    };
    let (kept_offsets, kept_times) = (offset_entries.len(), time_entries.len());
    let outcome = scan_batches(&file, &path, start, size, expected, next_base, &mut builder, resume.is_some())?;
    stats.segments_scanned += 1;
    stats.bytes_scanned += outcome.bytes_scanned;
    stats.scan_start.get_or_insert((base, start));
    let truncated = outcome.valid_end < size;
    if truncated {
        tracing::warn!(
            segment = %path.display(), position = outcome.valid_end, size,
            reason = outcome.invalid.unwrap_or("unknown"), "truncating segment at the first invalid batch"
        );
        file.set_len(outcome.valid_end).map_err(io_err("truncate segment", &path))?;
        stats.truncated_bytes += size - outcome.valid_end;
    }
    file.sync_data().map_err(io_err("fsync segment", &path))?;
    offset_entries.extend(outcome.offset_entries);
    time_entries.extend(outcome.time_entries);
    rewrite_index(&index_path, base, &offset_entries, kept_offsets)?;
    rewrite_index(&time_index_path, base, &time_entries, kept_times)?;
    let segment = Segment::active(dir, base, file, outcome.valid_end, offset_entries, time_entries, builder)?;
    Ok((segment, outcome.next_offset, truncated))
}

/// The index of the largest offset index entry at or below `recovery_point` whose position holds a valid batch with
/// exactly that base offset, or `None` to scan from the segment start.
fn resume_entry(
    file: &std::fs::File,
    path: &Path,
    size: u64,
    entries: &[OffsetEntry],
    recovery_point: i64,
) -> Result<Option<usize>, LogError> {
    let Some(i) = entries.partition_point(|e| e.offset <= recovery_point).checked_sub(1) else {
        return Ok(None);
    };
    let entry = entries[i];
    if batch_is_valid_at(file, path, u64::from(entry.position), size, entry.offset)? {
        return Ok(Some(i));
    }
    tracing::warn!(segment = %path.display(), ?entry, "offset index entry does not match the log, scanning the whole segment");
    Ok(None)
}
