//! `Log`: one partition's segmented log. Appends assign offsets and write whole batches to the active segment;
//! reads return whole batches; flushing and recovery keep what was acknowledged.
//!
//! All state sits behind one mutex, held only for in-memory work and the append's single `pwrite`. Reads take a
//! `SegmentView` (shared file handle, logical end, index handles) under the lock and do their I/O after releasing
//! it; fsyncs also run outside the lock, serialised per log by a second mutex so two flushes never overlap.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::batch::{
    batch_crc, TimestampType, ValidatedBatches, ATTRIBUTES_POS, BATCH_LENGTH_POS, CRC_POS, LOG_OVERHEAD_BYTES,
    MAGIC_POS, MAGIC_V2, MAX_TIMESTAMP_POS, PARTITION_LEADER_EPOCH_POS, TIMESTAMP_TYPE_BIT,
};
use crate::checkpoint::sync_dir;
use crate::config::LogConfig;
use crate::error::{io_err, is_storage_full, LogError};
use crate::producer::{AbortedTxn, Checked, ControlType, ProducerInfo, ProducerStates};
use crate::read;
use crate::recovery::{recover, RecoveryStats};
use crate::segment::{segment_file, AppendFailure, AppendedBatch, Segment, INDEX_EXT, LOG_EXT, TIME_INDEX_EXT};
use crate::time_index::TimeEntry;

/// The offsets an append assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's timestamp written into the batches, or -1 unless the topic uses LogAppendTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    pub records_count: i64,
    /// The batch repeats one of the producer's last five batches: nothing was written and the offsets are the ones
    /// the original append assigned (Kafka answers a retried batch this way).
    pub duplicate: bool,
}

/// Whole batches read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub bytes: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// How to open an existing partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The last shutdown was clean and recorded these values: no `.log` data is read. If the active segment's size
    /// differs, the active segment is recovered instead.
    Clean { log_end_offset: i64, active_segment_bytes: u64 },
    /// Recover: everything below `recovery_point` was fsynced; everything from it is re-scanned.
    Unclean { recovery_point: i64 },
}

/// `OpenMode` plus what the log directory's checkpoints know about the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    pub mode: OpenMode,
    /// From the log-start-offset checkpoint; defaults to the first segment's base offset.
    pub log_start_offset: Option<i64>,
    /// When the active segment got its first append, so `segment_ms` survives a clean restart.
    pub first_append_ms: Option<i64>,
    /// From the cleaner-offset checkpoint: where the part the cleaner has not compacted yet starts.
    pub first_dirty_offset: Option<i64>,
}

impl OpenOptions {
    pub fn new(mode: OpenMode) -> OpenOptions {
        OpenOptions { mode, log_start_offset: None, first_append_ms: None, first_dirty_offset: None }
    }
}

/// What a clean shutdown records about a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanState {
    pub log_end_offset: i64,
    pub active_segment_bytes: u64,
    pub first_append_ms: Option<i64>,
}

type FlushListener = dyn Fn(i64) + Send + Sync;

static NEXT_LOG_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// `<topic>-<partition>`: the topic may itself contain '-', the partition follows the last one.
pub fn parse_partition_dir_name(name: &str) -> Option<(String, i32)> {
    let (topic, suffix) = name.rsplit_once('-')?;
    let partition: i32 = suffix.parse().ok()?;
    // Only the canonical spelling ("7", not "07" or "+7"), so one partition has one directory name.
    if topic.is_empty() || partition < 0 || partition.to_string() != suffix {
        return None;
    }
    Some((topic.to_string(), partition))
}

fn parse_partition_dir(dir: &Path) -> Result<(String, i32), LogError> {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    parse_partition_dir_name(name).ok_or_else(|| LogError::InvalidDirName { name: name.to_string() })
}

/// Base offsets of the segments in `dir`, sorted. Index files without a log file are removed.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<i64>, LogError> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        let Some((stem, ext)) = name.to_str().and_then(|n| n.split_once('.')) else { continue };
        let Some(base) = stem.parse::<i64>().ok().filter(|_| stem.len() == 20) else { continue };
        match ext {
            LOG_EXT => logs.push(base),
            INDEX_EXT | TIME_INDEX_EXT => indexes.push((base, entry.path())),
            _ => {}
        }
    }
    logs.sort_unstable();
    for (base, path) in indexes {
        if logs.binary_search(&base).is_err() {
            tracing::warn!(path = %path.display(), "removing index without a segment");
            std::fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
    }
    Ok(logs)
}

struct LogState {
    config: LogConfig,
    /// Sorted by base offset; the last one is the active segment.
    segments: Vec<Segment>,
    log_start_offset: i64,
    log_end_offset: i64,
    flushed_offset: i64,
    last_flush_ms: i64,
    /// Files of rolled segments that still need an fsync.
    pending_flush: Vec<Arc<File>>,
    /// A segment file was created since the last flush, so the directory needs an fsync.
    dir_dirty: bool,
    failed: bool,
    closed: bool,
    /// The directory was renamed for deletion.
    deleted: bool,
    /// The log's largest timestamp and the batch holding it, once computed (`None` = not yet).
    max_timestamp: Option<Option<TimeEntry>>,
    /// The record offset resolved for a max timestamp entry.
    max_timestamp_record: Option<(TimeEntry, i64)>,
    /// Segments retention took out of the log whose files are not deleted yet.
    removed: Vec<retention::RemovedSegment>,
    /// Where the part not yet compacted starts (compacted logs; 0 until the first cleaning).
    first_dirty_offset: i64,
    /// Idempotent and transactional producers' state.
    producers: ProducerStates,
    /// Aborted transactions with records at or above the log start offset, by marker offset.
    aborted: Vec<AbortedTxn>,
}

impl LogState {
    fn active(&self) -> &Segment {
        self.segments.last().expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments.last_mut().expect("a log always has an active segment")
    }

    /// Index of the segment that holds `offset` (the last one whose base is <= offset).
    fn segment_index(&self, offset: i64) -> usize {
        self.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1)
    }
}

/// One partition's log. Shared as `Arc<Log>`; every method takes `&self`.
pub struct Log {
    id: u64,
    dir: PathBuf,
    topic: String,
    partition: i32,
    state: Mutex<LogState>,
    /// Serialises flushes (and checkpoint index syncs) so a flush never advances past another's unfinished fsync.
    flush_lock: Mutex<()>,
    /// Held by the cleaner while it compacts; retention skips a log being cleaned.
    clean_lock: Mutex<()>,
    listener: RwLock<Option<Arc<FlushListener>>>,
    recovery: RecoveryStats,
    /// Test seam: makes the next fsync fail as a disk would.
    #[cfg(test)]
    fsync_failure: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("topic", &self.topic).field("partition", &self.partition).finish()
    }
}

impl Log {
    /// Creates a new, empty partition directory with its first segment at offset 0.
    pub fn create(dir: PathBuf, config: LogConfig) -> Result<Log, LogError> {
        let (topic, partition) = parse_partition_dir(&dir)?;
        std::fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        if !list_segments(&dir)?.is_empty() {
            return Err(LogError::AlreadyExists { path: dir });
        }
        let segment = Segment::create(&dir, 0, config.index_interval_bytes)?;
        sync_dir(&dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        let txn = LoadedTxnState::default();
        Ok(Log::assemble(dir, (topic, partition), config, vec![segment], (0, 0), txn, RecoveryStats::default()))
    }

    /// Opens an existing partition directory.
    pub fn open(dir: PathBuf, config: LogConfig, mode: OpenMode) -> Result<Log, LogError> {
        Log::open_with(dir, config, OpenOptions::new(mode))
    }

    /// Opens an existing partition directory with what the log directory's checkpoints know about it.
    pub fn open_with(dir: PathBuf, config: LogConfig, options: OpenOptions) -> Result<Log, LogError> {
        let topic_partition = parse_partition_dir(&dir)?;
        cleaner::finish_interrupted_clean(&dir)?;
        let bases = list_segments(&dir)?;
        let interval = config.index_interval_bytes;
        let (mut segments, log_end_offset, stats) = if bases.is_empty() {
            let base = options.log_start_offset.unwrap_or(0).max(0);
            let segment = Segment::create(&dir, base, interval)?;
            sync_dir(&dir)?;
            (vec![segment], base, RecoveryStats::default())
        } else {
            let clean = match options.mode {
                OpenMode::Clean { log_end_offset, active_segment_bytes } => {
                    open_clean(&dir, &bases, log_end_offset, active_segment_bytes, interval)?
                        .map(|segments| (segments, log_end_offset, RecoveryStats::default()))
                }
                OpenMode::Unclean { .. } => None,
            };
            match (clean, options.mode) {
                (Some(opened), _) => opened,
                (None, OpenMode::Unclean { recovery_point }) => recover_log(&dir, &bases, recovery_point, interval)?,
                (None, OpenMode::Clean { .. }) => {
                    // A clean shutdown flushed every closed segment; only the active one can disagree.
                    tracing::warn!(dir = %dir.display(), "active segment differs from the clean shutdown record");
                    let active_base = *bases.last().expect("bases is not empty");
                    recover_log(&dir, &bases, active_base, interval)?
                }
            }
        };
        // A recovered active segment restarts its age at its next append; a clean one keeps the recorded age.
        if let Some(active) = segments.last_mut().and_then(|s| s.active.as_mut()).filter(|_| !stats.recovered) {
            active.first_append_ms = options.first_append_ms;
        }
        let first_base = segments[0].base_offset;
        let log_start_offset = options.log_start_offset.unwrap_or(first_base).clamp(first_base, log_end_offset);
        retention::drop_segments_below(&dir, &mut segments, log_start_offset)?;
        let txn = transactions::load_txn_state(&dir, &segments, log_start_offset, log_end_offset)?;
        let offsets = (log_start_offset, log_end_offset);
        let log = Log::assemble(dir, topic_partition, config, segments, offsets, txn, stats);
        if let Some(offset) = options.first_dirty_offset {
            log.restore_first_dirty_offset(offset);
        }
        Ok(log)
    }

    /// Takes the first dirty offset from the cleaner-offset checkpoint. An offset beyond the log end (a log cut short
    /// by recovery, or a topic re-created under the old name before the checkpoint caught up) is ignored: the whole
    /// log then counts as dirty, which costs a cleaning and is never wrong.
    fn restore_first_dirty_offset(&self, offset: i64) {
        let mut st = self.state.lock();
        if offset > st.log_end_offset {
            tracing::warn!(
                topic = %self.topic,
                partition = self.partition,
                offset,
                log_end_offset = st.log_end_offset,
                "cleaner checkpoint is past the log end; the whole log counts as dirty"
            );
            return;
        }
        st.first_dirty_offset = offset;
    }

    /// Where the part the cleaner has not compacted yet starts (0 before the first cleaning), for the cleaner-offset
    /// checkpoint.
    pub(crate) fn first_dirty_offset(&self) -> i64 {
        self.state.lock().first_dirty_offset
    }

    fn assemble(
        dir: PathBuf,
        (topic, partition): (String, i32),
        config: LogConfig,
        segments: Vec<Segment>,
        (log_start_offset, log_end_offset): (i64, i64),
        txn: LoadedTxnState,
        recovery: RecoveryStats,
    ) -> Log {
        assert!(segments.last().is_some_and(Segment::is_active), "the last segment is active");
        let state = LogState {
            config,
            segments,
            log_start_offset,
            log_end_offset,
            // Opening either found a clean shutdown (everything flushed) or recovered and fsynced the tail.
            flushed_offset: log_end_offset,
            last_flush_ms: now_ms(),
            pending_flush: Vec::new(),
            dir_dirty: false,
            failed: false,
            closed: false,
            deleted: false,
            max_timestamp: None,
            max_timestamp_record: None,
            removed: Vec::new(),
            first_dirty_offset: 0,
            producers: txn.producers,
            aborted: txn.aborted,
        };
        Log {
            id: NEXT_LOG_ID.fetch_add(1, Ordering::Relaxed),
            dir,
            topic,
            partition,
            state: Mutex::new(state),
            flush_lock: Mutex::new(()),
            clean_lock: Mutex::new(()),
            listener: RwLock::new(None),
            recovery,
            #[cfg(test)]
            fsync_failure: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Topic and partition, from the directory name.
    pub fn topic_partition(&self) -> (String, i32) {
        (self.topic.clone(), self.partition)
    }

    /// What opening the log had to recover.
    pub fn recovery_stats(&self) -> RecoveryStats {
        self.recovery.clone()
    }

    fn failed_error(&self) -> LogError {
        LogError::Failed { topic: self.topic.clone(), partition: self.partition }
    }

    fn check_writable(&self, st: &LogState) -> Result<(), LogError> {
        if st.failed {
            return Err(self.failed_error());
        }
        if st.closed {
            return Err(LogError::Closed { topic: self.topic.clone(), partition: self.partition });
        }
        Ok(())
    }

    fn check_readable(&self, st: &LogState) -> Result<(), LogError> {
        if st.failed {
            return Err(self.failed_error());
        }
        Ok(())
    }

    /// A deleted log's directory was renamed away; flushing it would fail for no reason.
    fn check_flushable(&self, st: &LogState) -> Result<(), LogError> {
        self.check_readable(st)?;
        if st.deleted {
            return Err(LogError::Closed { topic: self.topic.clone(), partition: self.partition });
        }
        Ok(())
    }

    /// Takes the log offline after a failed write or fsync: the file state is unknown, so nothing more is trusted.
    fn fail(&self, st: &mut LogState, err: &LogError) {
        tracing::error!(topic = %self.topic, partition = self.partition, error = %err, "log failed, taking it offline");
        st.failed = true;
    }

    fn fail_unlocked(&self, err: LogError) -> LogError {
        self.fail(&mut self.state.lock(), &err);
        err
    }

    /// Assigns offsets to validated batches and appends them with one write.
    ///
    /// Writes each batch's base offset and partition leader epoch (neither is covered by the CRC); for LogAppendTime
    /// topics also rewrites the max timestamp to `now_ms`, sets the timestamp type bit and recomputes the CRC. Rolls
    /// the segment first when the append would make it too big, too old, overflow an index or the relative offsets.
    pub fn append(
        &self,
        records: &mut [u8],
        validated: &ValidatedBatches,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_with(records, validated, leader_epoch, now_ms, None)
    }

    /// `append`, or with `marker` the append of a transaction marker's control batch.
    fn append_with(
        &self,
        records: &mut [u8],
        validated: &ValidatedBatches,
        leader_epoch: i32,
        now_ms: i64,
        marker: Option<&transactions::Marker>,
    ) -> Result<AppendInfo, LogError> {
        assert_eq!(records.len(), validated.bytes, "records differ from what was validated");
        assert!(!validated.batches.is_empty(), "validation never yields an empty record set");
        let mut st = self.state.lock();
        self.check_writable(&st)?;
        let result = self.append_locked(&mut st, records, validated, leader_epoch, now_ms, marker);
        match &result {
            // A full disk left nothing behind; the log stays writable and the next append may succeed.
            Err(LogError::StorageFull { path }) => {
                tracing::warn!(topic = %self.topic, partition = self.partition, path = %path.display(), "append refused: disk full");
            }
            // Producer state refused the write before anything was written.
            Err(err) if err.is_producer_refusal() => {}
            Err(err) => self.fail(&mut st, err),
            Ok(_) => {}
        }
        result
    }

    fn append_locked(
        &self,
        st: &mut LogState,
        records: &mut [u8],
        validated: &ValidatedBatches,
        leader_epoch: i32,
        now_ms: i64,
        marker: Option<&transactions::Marker>,
    ) -> Result<AppendInfo, LogError> {
        let base_offset = st.log_end_offset;
        let last_offset = base_offset + validated.records_count - 1;
        // Producer state first: a refused or repeated batch changes nothing.
        let staged = match marker {
            None => match self.check_producers(st, validated, base_offset)? {
                Checked::Duplicate(meta) => return Ok(Log::duplicate_info(st, meta)),
                Checked::Write(staged) => Some(staged),
            },
            Some(m) => {
                st.producers.check_marker(m.producer_id, m.epoch, m.coordinator_epoch).map_err(|r| self.refused(r))?;
                None
            }
        };
        if should_roll(st.active(), &st.config, records.len(), validated.batches.len(), last_offset, now_ms) {
            self.roll(st)?;
        }
        let log_append_time = (st.config.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let position = st.active().size;
        let batches = assign_offsets(records, validated, base_offset, leader_epoch, log_append_time, position);
        match st.active_mut().append(records, &batches, now_ms) {
            Ok(()) => {}
            Err(AppendFailure::Undone(err)) if is_storage_full(&err) => {
                return Err(LogError::StorageFull { path: st.active().path().to_path_buf() })
            }
            Err(AppendFailure::Undone(err) | AppendFailure::Damaged(err)) => return Err(err),
        }
        st.log_end_offset = last_offset + 1;
        match (staged, marker) {
            (Some(staged), _) => st.producers.apply(staged),
            (None, Some(marker)) => self.complete_marker(st, marker, base_offset, now_ms)?,
            (None, None) => unreachable!("an append is either checked batches or a marker"),
        }
        if let Some(max) = &mut st.max_timestamp {
            for batch in &batches {
                if batch.max_timestamp > max.map_or(-1, |m| m.timestamp) {
                    *max = Some(TimeEntry { timestamp: batch.max_timestamp, offset: batch.base_offset });
                }
            }
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time: log_append_time.unwrap_or(-1),
            log_start_offset: st.log_start_offset,
            records_count: validated.records_count,
            duplicate: false,
        })
    }

    /// Starts a new active segment at the log end offset. The old one gets its final time index entry and its files
    /// join the flusher's list, with the directory (which gained a file).
    fn roll(&self, st: &mut LogState) -> Result<(), LogError> {
        let base = st.log_end_offset;
        let segment = match Segment::create(&self.dir, base, st.config.index_interval_bytes) {
            Ok(segment) => segment,
            Err(err) => {
                // Leave no half-created segment behind, so a later roll can create it again.
                Segment::remove_files(&self.dir, base);
                if is_storage_full(&err) {
                    return Err(LogError::StorageFull { path: self.dir.clone() });
                }
                return Err(err);
            }
        };
        let files = st.active_mut().seal()?;
        let rolled_base = st.active().base_offset;
        st.pending_flush.extend(files);
        st.segments.push(segment);
        st.dir_dirty = true;
        self.on_roll(st, rolled_base);
        tracing::debug!(topic = %self.topic, partition = self.partition, base, "rolled segment");
        Ok(())
    }

    /// Reads whole batches from the batch holding `fetch_offset`, stopping before any batch whose last offset is >=
    /// `upper_bound` (the high watermark) and before `max_bytes`, except that with `min_one_batch` the first batch
    /// is returned whole even when larger. Reads one segment per call, moving to the next one only when
    /// `fetch_offset` lies past the last batch of its segment.
    pub fn read(
        &self,
        fetch_offset: i64,
        max_bytes: usize,
        upper_bound: i64,
        min_one_batch: bool,
    ) -> Result<ReadResult, LogError> {
        let mut target = fetch_offset;
        loop {
            let (view, next_base, log_start_offset, log_end_offset) = {
                let st = self.state.lock();
                self.check_readable(&st)?;
                if fetch_offset < st.log_start_offset || fetch_offset > st.log_end_offset {
                    return Err(self.out_of_range(&st, fetch_offset));
                }
                let (lso, leo) = (st.log_start_offset, st.log_end_offset);
                if target >= leo || target >= upper_bound {
                    return Ok(ReadResult { bytes: Bytes::new(), log_start_offset: lso, log_end_offset: leo });
                }
                let i = st.segment_index(target);
                (st.segments[i].view(), st.segments.get(i + 1).map(|s| s.base_offset), lso, leo)
            };
            let found = read::find_batch(&view, target)?;
            let bytes = match (found, next_base) {
                (Some((position, header)), _) => {
                    read::collect_batches(&view, position, &header, max_bytes, upper_bound, min_one_batch)?
                }
                (None, Some(next)) => {
                    target = next;
                    continue;
                }
                (None, None) => Bytes::new(),
            };
            return Ok(ReadResult { bytes, log_start_offset, log_end_offset });
        }
    }

    fn out_of_range(&self, st: &LogState, offset: i64) -> LogError {
        LogError::OffsetOutOfRange {
            topic: self.topic.clone(),
            partition: self.partition,
            offset,
            log_start_offset: st.log_start_offset,
            log_end_offset: st.log_end_offset,
        }
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.lock().log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.lock().log_end_offset
    }

    /// Every offset below this one is on stable storage (the recovery point).
    pub fn flushed_offset(&self) -> i64 {
        self.state.lock().flushed_offset
    }

    /// Whether the flush policy asks for a flush now: enough unflushed messages, or unflushed data older than
    /// `flush_interval_ms`.
    pub fn needs_flush(&self, now_ms: i64) -> bool {
        let st = self.state.lock();
        let unflushed = st.log_end_offset - st.flushed_offset;
        !st.failed
            && unflushed > 0
            && (unflushed >= st.config.flush_interval_messages
                || now_ms.saturating_sub(st.last_flush_ms) >= st.config.flush_interval_ms)
    }

    /// Whether rolled segments still wait for an fsync. The broker asks the
    /// flusher for them in the background whatever the flush policy, as Kafka
    /// flushes a segment once it is rolled, so the recovery point keeps up
    /// and a restart scans at most the active segment's recent tail.
    pub fn has_unflushed_rolled_segments(&self) -> bool {
        let st = self.state.lock();
        !st.failed && !st.pending_flush.is_empty()
    }

    pub fn is_failed(&self) -> bool {
        self.state.lock().failed
    }

    /// Fsyncs everything appended so far; returns the new flushed offset.
    pub fn flush(&self) -> Result<i64, LogError> {
        self.flush_counted().map(|(offset, _)| offset)
    }

    /// `flush`, also returning how many fsyncs it ran.
    pub(crate) fn flush_counted(&self) -> Result<(i64, u64), LogError> {
        let _serial = self.flush_lock.lock();
        self.flush_serialized()
    }

    /// fdatasync of one of the log's files. A failure takes the log offline: after a failed fsync the kernel may
    /// have dropped the dirty pages, so retrying on the same file could report success for lost data.
    fn sync_data(&self, file: &File) -> Result<(), LogError> {
        #[cfg(test)]
        if self.fsync_failure.swap(false, Ordering::SeqCst) {
            let injected = std::io::Error::other("injected fsync failure");
            return Err(self.fail_unlocked(io_err("fsync", &self.dir)(injected)));
        }
        file.sync_data().map_err(|e| self.fail_unlocked(io_err("fsync", &self.dir)(e)))
    }

    #[cfg(test)]
    pub(crate) fn inject_fsync_failure(&self) {
        self.fsync_failure.store(true, Ordering::SeqCst);
    }

    /// The body of `flush`; the caller holds `flush_lock`.
    fn flush_serialized(&self) -> Result<(i64, u64), LogError> {
        let (target, files, dir_dirty) = {
            let mut st = self.state.lock();
            self.check_flushable(&st)?;
            let target = st.log_end_offset;
            if target == st.flushed_offset && st.pending_flush.is_empty() && !st.dir_dirty {
                return Ok((target, 0));
            }
            // The files are taken with the target: a later roll moves newer data to a new segment and the rolled
            // segment's files to the next flush's list, never out of this one.
            let mut files = std::mem::take(&mut st.pending_flush);
            files.push(st.active().file.clone());
            (target, files, std::mem::take(&mut st.dir_dirty))
        };
        let mut fsyncs = 0;
        for file in &files {
            self.sync_data(file)?;
            fsyncs += 1;
        }
        if dir_dirty {
            sync_dir(&self.dir).map_err(|e| self.fail_unlocked(e))?;
            fsyncs += 1;
        }
        {
            let mut st = self.state.lock();
            st.flushed_offset = st.flushed_offset.max(target);
            st.last_flush_ms = now_ms();
        }
        let listener = self.listener.read().clone();
        if let Some(listener) = listener {
            listener(target);
        }
        Ok((target, fsyncs))
    }

    /// Makes the index entries below the flushed offset durable, then returns the recovery point and log start offset
    /// to checkpoint. Recovery resumes from an index entry at or below the checkpointed recovery point, so those
    /// entries must be on disk before the point is written: rolled segments still waiting for the flusher are flushed
    /// (with their indexes) first, then the active segment's indexes are fsynced if they changed.
    pub(crate) fn checkpoint_offsets(&self) -> Result<(i64, i64), LogError> {
        let _serial = self.flush_lock.lock();
        let rolled_unflushed = {
            let st = self.state.lock();
            self.check_flushable(&st)?;
            !st.pending_flush.is_empty()
        };
        if rolled_unflushed {
            self.flush_serialized()?;
        }
        let (recovery_point, log_start_offset, files) = {
            let mut st = self.state.lock();
            self.check_flushable(&st)?;
            let active = st.active_mut().active.as_mut().expect("the last segment is active");
            let dirty = std::mem::take(&mut active.indexes_dirty);
            let files = if dirty { st.active().index_files().to_vec() } else { Vec::new() };
            (st.flushed_offset, st.log_start_offset, files)
        };
        for file in files {
            self.sync_data(&file)?;
        }
        Ok((recovery_point, log_start_offset))
    }

    /// Stops appends, flushes, writes the active segment's final time index entry and fsyncs its indexes; returns
    /// what the clean-shutdown marker records.
    pub(crate) fn close_clean(&self) -> Result<CleanState, LogError> {
        self.close();
        self.flush()?;
        let mut st = self.state.lock();
        self.check_readable(&st)?;
        let log_end_offset = st.log_end_offset;
        let active = st.active_mut();
        let finalized = active.finalize_time_index();
        if let Err(err) = finalized {
            self.fail(&mut st, &err);
            return Err(err);
        }
        for file in st.active().index_files() {
            if let Err(e) = file.sync_data() {
                let err = io_err("fsync index", &self.dir)(e);
                self.fail(&mut st, &err);
                return Err(err);
            }
        }
        if let Some(active) = st.active_mut().active.as_mut() {
            active.indexes_dirty = false;
        }
        if let Err(err) = self.write_snapshot(&st, true) {
            // The next open replays the log from an older snapshot instead.
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %err, "cannot write producer snapshot");
        }
        let active = st.active();
        Ok(CleanState {
            log_end_offset,
            active_segment_bytes: active.size,
            first_append_ms: active.active_state().first_append_ms,
        })
    }

    /// Refuses further appends.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
    }

    /// Refuses further appends and flushes: the directory is about to be renamed and deleted.
    pub(crate) fn close_for_deletion(&self) {
        let _serial = self.flush_lock.lock();
        let mut st = self.state.lock();
        st.closed = true;
        st.deleted = true;
    }

    /// The earliest record whose timestamp is >= `timestamp`: its offset and timestamp (Kafka ListOffsets by time).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (views, log_start_offset) = {
            let mut st = self.state.lock();
            self.check_readable(&st)?;
            let first = st.segment_index(st.log_start_offset);
            let mut views = Vec::new();
            for segment in &mut st.segments[first..] {
                if segment.max_timestamp()?.is_some_and(|m| m.timestamp >= timestamp) {
                    views.push(segment.view());
                }
            }
            (views, st.log_start_offset)
        };
        for view in &views {
            if let Some(found) = read::first_record_at_or_after(view, timestamp, log_start_offset)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The log's largest timestamp and the offset of the first record carrying it (ListOffsets MAX_TIMESTAMP).
    /// A storage error is logged and reported as `None`; `try_max_timestamp` returns it instead.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.try_max_timestamp().unwrap_or_else(|err| {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %err, "cannot find max timestamp");
            None
        })
    }

    /// `max_timestamp`, with errors. Per-segment maxima are tracked on append (closed segments: the time index's
    /// final entry); only the batch holding the maximum is read, once, to find the exact record.
    pub fn try_max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let (max, view) = {
            let mut st = self.state.lock();
            self.check_readable(&st)?;
            let max = match st.max_timestamp {
                Some(max) => max,
                None => {
                    let mut max: Option<TimeEntry> = None;
                    for segment in &mut st.segments {
                        if let Some(m) = segment.max_timestamp()? {
                            if max.is_none_or(|best| m.timestamp > best.timestamp) {
                                max = Some(m);
                            }
                        }
                    }
                    st.max_timestamp = Some(max);
                    max
                }
            };
            let Some(max) = max else { return Ok(None) };
            if let Some((entry, offset)) = st.max_timestamp_record.filter(|(entry, _)| *entry == max) {
                return Ok(Some((entry.timestamp, offset)));
            }
            (max, st.segments[st.segment_index(max.offset)].view())
        };
        let offset = read::record_with_timestamp(&view, max.offset, max.timestamp)?;
        self.state.lock().max_timestamp_record = Some((max, offset));
        Ok(Some((max.timestamp, offset)))
    }

    /// Calls `f` with the new flushed offset after every flush.
    pub fn set_flush_listener(&self, f: Box<dyn Fn(i64) + Send + Sync>) {
        *self.listener.write() = Some(Arc::from(f));
    }

    pub fn config(&self) -> LogConfig {
        self.state.lock().config.clone()
    }

    /// Replaces the config; it applies from the next append.
    pub fn set_config(&self, config: LogConfig) {
        let mut st = self.state.lock();
        if let Some(active) = st.active_mut().active.as_mut() {
            active.builder.set_interval(config.index_interval_bytes);
        }
        st.config = config;
    }

    /// Bytes of log data across all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.lock().segments.iter().map(|s| s.size).sum()
    }

    /// Number of segments (closed and active).
    pub fn segment_count(&self) -> usize {
        self.state.lock().segments.len()
    }

    /// Path of the active segment's `.log` file.
    pub fn active_segment_path(&self) -> PathBuf {
        let st = self.state.lock();
        segment_file(&self.dir, st.active().base_offset, LOG_EXT)
    }
}

/// Opens segments after a clean shutdown: closed ones by stat, the active one with its indexes. `None` if the active
/// segment does not match what the shutdown recorded.
fn open_clean(
    dir: &Path,
    bases: &[i64],
    log_end_offset: i64,
    active_segment_bytes: u64,
    interval: u32,
) -> Result<Option<Vec<Segment>>, LogError> {
    let (&active_base, closed) = bases.split_last().expect("bases is not empty");
    let path = segment_file(dir, active_base, LOG_EXT);
    let size = std::fs::metadata(&path).map_err(io_err("stat segment", &path))?.len();
    if size != active_segment_bytes || log_end_offset < active_base {
        return Ok(None);
    }
    let mut segments = Vec::with_capacity(bases.len());
    for &base in closed {
        segments.push(Segment::open_closed(dir, base)?);
    }
    segments.push(Segment::open_active(dir, active_base, size, interval)?);
    Ok(Some(segments))
}

fn recover_log(
    dir: &Path,
    bases: &[i64],
    recovery_point: i64,
    interval: u32,
) -> Result<(Vec<Segment>, i64, RecoveryStats), LogError> {
    let recovered = recover(dir, bases, recovery_point, interval)?;
    Ok((recovered.segments, recovered.log_end_offset, recovered.stats))
}

/// Whether the active segment must be rolled before appending `bytes` in `batches` batches ending at `last_offset`.
fn should_roll(
    active: &Segment,
    config: &LogConfig,
    bytes: usize,
    batches: usize,
    last_offset: i64,
    now_ms: i64,
) -> bool {
    if active.size == 0 {
        return false;
    }
    let state = active.active_state();
    let index_entries_max = (config.segment_index_bytes / 8) as usize;
    // One more time entry may come when the segment is finalized.
    let time_entries_max = (config.segment_index_bytes / 12) as usize;
    active.size + bytes as u64 > config.segment_bytes_max()
        || state.first_append_ms.is_some_and(|first| now_ms.saturating_sub(first) >= config.segment_ms)
        || active.offset_index.loaded_len() + batches > index_entries_max
        || active.time_index.loaded_len() + batches + 1 > time_entries_max
        || last_offset - active.base_offset > i64::from(i32::MAX)
}

/// Writes offsets and the leader epoch into each batch (and the append time, for LogAppendTime topics); returns
/// where each batch lands in a segment whose append starts at `position`.
fn assign_offsets(
    records: &mut [u8],
    validated: &ValidatedBatches,
    base_offset: i64,
    leader_epoch: i32,
    log_append_time: Option<i64>,
    position: u64,
) -> Vec<AppendedBatch> {
    let mut next = base_offset;
    let mut placed = Vec::with_capacity(validated.batches.len());
    for info in &validated.batches {
        let batch = &mut records[info.position..info.position + info.size];
        // Pair with validation: the bytes still have the shape that was checked.
        let batch_length = i32::from_be_bytes(batch[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].try_into().expect("4"));
        assert_eq!(batch[MAGIC_POS] as i8, MAGIC_V2, "validated batch lost its magic");
        assert_eq!(LOG_OVERHEAD_BYTES + batch_length as usize, info.size, "validated batch changed length");
        batch[0..8].copy_from_slice(&next.to_be_bytes());
        batch[PARTITION_LEADER_EPOCH_POS..PARTITION_LEADER_EPOCH_POS + 4].copy_from_slice(&leader_epoch.to_be_bytes());
        let max_timestamp = match log_append_time {
            Some(now) => {
                let attributes = i16::from_be_bytes([batch[ATTRIBUTES_POS], batch[ATTRIBUTES_POS + 1]]);
                let attributes = attributes | TIMESTAMP_TYPE_BIT;
                batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
                batch[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&now.to_be_bytes());
                let crc = batch_crc(batch);
                batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
                now
            }
            None => info.max_timestamp,
        };
        placed.push(AppendedBatch {
            base_offset: next,
            last_offset: next + i64::from(info.last_offset_delta),
            position: position + info.position as u64,
            size: info.size as u64,
            max_timestamp,
        });
        next += i64::from(info.records_count);
    }
    assert_eq!(next, base_offset + validated.records_count, "record counts add up");
    placed
}

#[path = "retention.rs"]
mod retention;
pub use retention::RetentionOutcome;

#[path = "transactions.rs"]
mod transactions;
use transactions::LoadedTxnState;

#[path = "cleaner.rs"]
mod cleaner;
pub use cleaner::{CleanStats, Cleanable};

#[cfg(test)]
#[path = "log_tests.rs"]
mod tests;
