//! Retention: removing whole segments from the front of a log.
//!
//! A retention pass removes the longest prefix of closed segments in which
//! every segment lies wholly below the log start offset, holds nothing newer
//! than `retention.ms`, or can go while the rest of the log still holds
//! `retention.bytes`; the log start offset then moves to the first segment
//! kept. Time and size limits apply only when the cleanup policy includes
//! `delete`. When every closed segment goes and the active one has expired as
//! a whole, it is rolled and goes too, so a quiet topic empties.
//!
//! Removed segments leave the log at once (new reads cannot reach them) but
//! keep their files for `file.delete.delay.ms`, so a read that already holds
//! one finishes; [`Log::purge_deleted_segments`] unlinks them afterwards.
//! Nothing is renamed: after a crash, segments wholly below the
//! checkpointed log start offset are removed when the log opens, and if the
//! checkpoint was older the log start offset is simply the first segment
//! still on disk.

use super::*;
use crate::segment::delete_segment_files;

/// What one retention pass removed from a log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// Segments removed, by the first reason that applied to each.
    pub below_start_offset: usize,
    pub expired: usize,
    pub over_size: usize,
    /// Log bytes removed.
    pub bytes: u64,
    /// The log start offset after the pass.
    pub log_start_offset: i64,
}

impl RetentionOutcome {
    pub fn segments(&self) -> usize {
        self.below_start_offset + self.expired + self.over_size
    }
}

/// A segment out of the log whose files wait for `file.delete.delay.ms`.
#[derive(Debug)]
pub(crate) struct RemovedSegment {
    base_offset: i64,
    delete_at_ms: i64,
}

/// The newest timestamp in a segment; the file's modification time when no record carries one, as Kafka does.
pub(super) fn newest_timestamp_ms(segment: &mut Segment) -> Result<i64, LogError> {
    if let Some(entry) = segment.max_timestamp()? {
        return Ok(entry.timestamp);
    }
    let path = segment.path().to_path_buf();
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).map_err(io_err("stat segment", &path))?;
    Ok(modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64))
}

impl Log {
    /// Moves the log start offset up to `offset` (DeleteRecords). Records below it are no longer served; the
    /// segments they fill are removed by the next retention pass. Returns the new log start offset.
    pub fn advance_log_start_offset(&self, offset: i64) -> Result<i64, LogError> {
        let mut st = self.state.lock();
        self.check_writable(&st)?;
        if offset > st.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.partition,
                offset,
                log_start_offset: st.log_start_offset,
                log_end_offset: st.log_end_offset,
            });
        }
        if offset > st.log_start_offset {
            st.log_start_offset = offset;
            Log::forget_aborted_below(&mut st, offset);
            tracing::info!(topic = %self.topic, partition = self.partition, offset, "log start offset advanced");
        }
        Ok(st.log_start_offset)
    }

    /// One retention pass (see the module documentation). A closed or failed log, or one being cleaned, is left alone.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionOutcome, LogError> {
        // The cleaner is rewriting segments; the next pass will do.
        let Some(_not_cleaning) = self.clean_lock.try_lock() else {
            return Ok(RetentionOutcome { log_start_offset: self.log_start_offset(), ..RetentionOutcome::default() });
        };
        let mut st = self.state.lock();
        if st.closed || st.failed {
            return Ok(RetentionOutcome { log_start_offset: st.log_start_offset, ..RetentionOutcome::default() });
        }
        let config = st.config.clone();
        let expire_before =
            (config.retention_enabled && config.retention_ms >= 0).then(|| now_ms.saturating_sub(config.retention_ms));
        let size_limit =
            (config.retention_enabled && config.retention_bytes >= 0).then_some(config.retention_bytes as u64);
        let mut outcome = RetentionOutcome::default();
        let mut remaining: u64 = st.segments.iter().map(|s| s.size).sum();
        let mut count = 0;
        // The last segment is the active one and always stays.
        while count + 1 < st.segments.len() {
            let next_base = st.segments[count + 1].base_offset;
            let log_start_offset = st.log_start_offset;
            let segment = &mut st.segments[count];
            let size = segment.size;
            if next_base <= log_start_offset {
                outcome.below_start_offset += 1;
            } else if expire_before.is_some_and(|limit| newest_timestamp_ms(segment).is_ok_and(|newest| newest < limit))
            {
                outcome.expired += 1;
            } else if size_limit.is_some_and(|limit| remaining - size >= limit) {
                outcome.over_size += 1;
            } else {
                break;
            }
            remaining -= size;
            outcome.bytes += size;
            count += 1;
        }
        // Everything closed goes: an expired active segment is rolled so that it goes too, as Kafka does.
        if let Some(limit) = expire_before.filter(|_| count + 1 == st.segments.len()) {
            let active = st.active_mut();
            let size = active.size;
            if size > 0 && newest_timestamp_ms(active)? < limit {
                self.roll(&mut st)?;
                outcome.expired += 1;
                outcome.bytes += size;
                count += 1;
            }
        }
        if count > 0 {
            let delete_at_ms = now_ms.saturating_add(config.file_delete_delay_ms.max(0));
            let removed: Vec<RemovedSegment> = st
                .segments
                .drain(..count)
                .map(|segment| RemovedSegment { base_offset: segment.base_offset, delete_at_ms })
                .collect();
            st.removed.extend(removed);
            st.log_start_offset = st.log_start_offset.max(st.segments[0].base_offset);
            let log_start_offset = st.log_start_offset;
            Log::forget_aborted_below(&mut st, log_start_offset);
            // The largest timestamp may have been in a removed segment.
            st.max_timestamp = None;
            st.max_timestamp_record = None;
            tracing::info!(
                topic = %self.topic,
                partition = self.partition,
                segments = count,
                bytes = outcome.bytes,
                log_start_offset = st.log_start_offset,
                "retention removed segments"
            );
        }
        outcome.log_start_offset = st.log_start_offset;
        Ok(outcome)
    }

    /// Unlinks the files of removed segments whose delay has passed (all of them with `now_ms = i64::MAX`).
    /// Returns how many segments' files were deleted.
    pub fn purge_deleted_segments(&self, now_ms: i64) -> Result<usize, LogError> {
        let due: Vec<i64> = {
            let mut st = self.state.lock();
            if st.removed.is_empty() {
                return Ok(0);
            }
            let (due, waiting): (Vec<_>, Vec<_>) =
                std::mem::take(&mut st.removed).into_iter().partition(|r| r.delete_at_ms <= now_ms);
            st.removed = waiting;
            due.into_iter().map(|r| r.base_offset).collect()
        };
        for &base in &due {
            delete_segment_files(&self.dir, base)?;
        }
        if !due.is_empty() {
            tracing::debug!(topic = %self.topic, partition = self.partition, segments = due.len(), "deleted segment files");
        }
        Ok(due.len())
    }
}

/// Removes, when a log opens, the segments wholly below its log start offset: a retention pass or a deletion
/// delay that a stop interrupted. Keeps the last (active) segment.
pub(crate) fn drop_segments_below(
    dir: &Path,
    segments: &mut Vec<Segment>,
    log_start_offset: i64,
) -> Result<(), LogError> {
    let count = segments.windows(2).take_while(|pair| pair[1].base_offset <= log_start_offset).count();
    for segment in segments.drain(..count) {
        tracing::info!(dir = %dir.display(), base_offset = segment.base_offset, "removing a segment below the log start offset");
        delete_segment_files(dir, segment.base_offset)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
