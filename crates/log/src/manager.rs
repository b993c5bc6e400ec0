//! `LogManager`: one log directory. Opens every partition at start (clean or with recovery), owns the flusher,
//! writes checkpoints and the clean-shutdown marker, creates and deletes partitions.
//!
//! Startup reads the clean-shutdown marker and the checkpoints, then deletes the marker (and fsyncs the directory)
//! before any write is accepted, so a crash from then on is recognised as unclean. A partition listed in the marker
//! whose active segment still has the recorded size opens without reading any `.log` data; every other partition
//! recovers from its checkpointed recovery point.
//!
//! The cleaner-offset checkpoint records each compacted partition's first dirty offset, so a restart does not
//! clean again what was cleaned before it. It is written after cleanings (`checkpoint_cleaner_offsets`, which the
//! broker's cleaner calls once a cleaning's swap is durable), when a partition that has one is deleted, and at
//! shutdown. An offset in it is never ahead of a cleaning that reached the disk, so a crash at any point leaves it
//! at worst behind, and the next cleaning then rereads part that is already clean, which loses nothing.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions as FsOpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::checkpoint::{
    format_rows, read_offsets, read_rows, remove_durably, sync_dir, write_atomic, Row, CLEANER_OFFSET_CHECKPOINT,
    CLEAN_SHUTDOWN_MARKER, LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
};
use crate::config::LogConfig;
use crate::error::{io_err, LogError};
use crate::flusher::Flusher;
use crate::log::{parse_partition_dir_name, Log, OpenMode, OpenOptions};

/// Lock file that keeps two processes from opening one log directory.
const LOCK_FILE: &str = ".lock";
/// Suffix of a partition directory awaiting deletion.
const DELETE_SUFFIX: &str = "-delete";
/// Kafka's longest topic name.
const TOPIC_NAME_BYTES_MAX: usize = 249;

/// What startup found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupReport {
    /// The previous shutdown left a clean-shutdown marker.
    pub clean: bool,
    pub partitions: usize,
    /// Partitions that went through recovery.
    pub recovered_partitions: usize,
    /// `.log` bytes read by recovery, over all partitions.
    pub bytes_scanned: u64,
    /// Bytes cut by recovery, for each partition that lost any.
    pub truncated_bytes: BTreeMap<(String, i32), u64>,
    pub elapsed: Duration,
}

/// How often the recovery-point checkpoint is rewritten (Kafka's `log.flush.offset.checkpoint.interval.ms`), which
/// bounds how much already-flushed data a crash makes startup scan again.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(60);

/// One log directory and its partitions.
pub struct LogManager {
    shared: Arc<Shared>,
    default_config: LogConfig,
    flusher: Flusher,
    report: StartupReport,
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    _lock: File,
}

/// What the checkpoint thread shares with the manager.
struct Shared {
    dir: PathBuf,
    logs: RwLock<HashMap<(String, i32), Arc<Log>>>,
    /// True once shut down (or dropped); also serialises checkpoints with shutdown.
    shut_down: Mutex<bool>,
    /// Wakes the checkpoint thread when `shut_down` becomes true.
    wake: Condvar,
}

/// Kafka's topic name rules: 1 to 249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(topic: &str) -> Result<(), LogError> {
    let invalid = |reason| Err(LogError::InvalidTopic { topic: topic.to_string(), reason });
    if topic.is_empty() || topic.len() > TOPIC_NAME_BYTES_MAX {
        return invalid("length must be 1 to 249");
    }
    if topic == "." || topic == ".." {
        return invalid("cannot be . or ..");
    }
    if !topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let path = dir.join(LOCK_FILE);
    let file =
        FsOpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io_err("open", &path))?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(LogError::DirLocked { path: dir.to_path_buf() });
    }
    Ok(file)
}

/// What the checkpoints and marker say about each partition at startup.
struct StartupState {
    marker: Option<HashMap<(String, i32), Vec<i64>>>,
    recovery_points: HashMap<(String, i32), i64>,
    log_start_offsets: HashMap<(String, i32), i64>,
    cleaner_offsets: HashMap<(String, i32), i64>,
}

/// Reads the marker and checkpoints. Malformed files are logged and ignored, which only makes startup scan more.
fn read_startup_state(dir: &Path) -> Result<StartupState, LogError> {
    let or_empty = |result: Result<HashMap<(String, i32), i64>, LogError>| match result {
        Err(err @ LogError::Malformed { .. }) => {
            tracing::warn!(error = %err, "ignoring malformed checkpoint");
            Ok(HashMap::new())
        }
        other => other,
    };
    let marker = match read_rows(dir, CLEAN_SHUTDOWN_MARKER, 3) {
        Ok(rows) => rows.map(|rows| rows.into_iter().map(|(t, p, v)| ((t, p), v)).collect()),
        Err(err @ LogError::Malformed { .. }) => {
            tracing::warn!(error = %err, "ignoring malformed clean shutdown marker, recovering every partition");
            None
        }
        Err(err) => return Err(err),
    };
    Ok(StartupState {
        marker,
        recovery_points: or_empty(read_offsets(dir, RECOVERY_POINT_CHECKPOINT))?,
        log_start_offsets: or_empty(read_offsets(dir, LOG_START_OFFSET_CHECKPOINT))?,
        cleaner_offsets: or_empty(read_offsets(dir, CLEANER_OFFSET_CHECKPOINT))?,
    })
}

impl LogManager {
    /// Opens (creating if missing) a log directory and every partition in it.
    pub fn open(dir: PathBuf, default_config: LogConfig) -> Result<LogManager, LogError> {
        LogManager::open_with_interval(dir, default_config, CHECKPOINT_INTERVAL)
    }

    /// `open` with another checkpoint interval.
    pub fn open_with_interval(
        dir: PathBuf,
        default_config: LogConfig,
        checkpoint_interval: Duration,
    ) -> Result<LogManager, LogError> {
        let started = Instant::now();
        std::fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
        let lock = lock_dir(&dir)?;
        let startup = read_startup_state(&dir)?;
        // From here on a crash must look unclean.
        remove_durably(&dir, CLEAN_SHUTDOWN_MARKER)?;
        let mut report = StartupReport { clean: startup.marker.is_some(), ..StartupReport::default() };
        let mut logs = HashMap::new();
        for (name, path) in partition_dirs(&dir)? {
            let Some(key) = parse_partition_dir_name(&name) else {
                tracing::warn!(path = %path.display(), "ignoring directory that is not a partition");
                continue;
            };
            let log = open_partition(path, &key, &startup, &default_config)?;
            let stats = log.recovery_stats();
            report.partitions += 1;
            report.recovered_partitions += usize::from(stats.recovered);
            report.bytes_scanned += stats.bytes_scanned;
            if stats.truncated_bytes > 0 {
                report.truncated_bytes.insert(key.clone(), stats.truncated_bytes);
            }
            logs.insert(key, Arc::new(log));
        }
        let name = dir.file_name().map_or_else(|| "log".to_string(), |n| n.to_string_lossy().into_owned());
        report.elapsed = started.elapsed();
        let shared =
            Arc::new(Shared { dir, logs: RwLock::new(logs), shut_down: Mutex::new(false), wake: Condvar::new() });
        // Recovery fsynced every recovered tail; record that so a second crash does not scan it again.
        shared.write_checkpoints()?;
        let worker = shared.clone();
        let checkpointer = std::thread::Builder::new()
            .name(format!("checkpoint-{name}"))
            .spawn(move || run_checkpointer(&worker, checkpoint_interval))
            .map_err(io_err("start checkpoint thread", &shared.dir))?;
        tracing::info!(dir = %shared.dir.display(), report = ?report, "log directory opened");
        Ok(LogManager {
            shared,
            default_config,
            flusher: Flusher::start(&name),
            report,
            checkpointer: Mutex::new(Some(checkpointer)),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    pub fn startup_report(&self) -> StartupReport {
        self.report.clone()
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        self.shared.logs.read().get(&(topic.to_string(), partition)).cloned()
    }

    /// The partition's log, created empty (with `config`) if it does not exist.
    pub fn get_or_create(&self, topic: &str, partition: i32, config: LogConfig) -> Result<Arc<Log>, LogError> {
        if let Some(log) = self.get(topic, partition) {
            return Ok(log);
        }
        validate_topic_name(topic)?;
        if partition < 0 {
            return Err(LogError::InvalidDirName { name: format!("{topic}-{partition}") });
        }
        let shut_down = self.shared.shut_down.lock();
        if *shut_down {
            return Err(LogError::ShutDown { path: self.shared.dir.clone() });
        }
        let mut logs = self.shared.logs.write();
        let key = (topic.to_string(), partition);
        if let Some(log) = logs.get(&key) {
            return Ok(log.clone());
        }
        let log = Arc::new(Log::create(self.shared.dir.join(format!("{topic}-{partition}")), config)?);
        logs.insert(key, log.clone());
        Ok(log)
    }

    pub fn logs(&self) -> Vec<Arc<Log>> {
        self.shared.logs()
    }

    /// Removes a partition: closes it, renames its directory to `<topic>-<partition>.<random hex>-delete` (durably),
    /// and deletes that directory on a background thread. Removing an unknown partition does nothing.
    pub fn delete(&self, topic: &str, partition: i32) -> Result<(), LogError> {
        let Some(log) = self.shared.logs.write().remove(&(topic.to_string(), partition)) else {
            return Ok(());
        };
        log.close_for_deletion();
        let had_cleaner_offset = log.first_dirty_offset() > 0;
        let target = self.shared.dir.join(format!("{topic}-{partition}.{}{DELETE_SUFFIX}", random_hex()));
        std::fs::rename(log.dir(), &target).map_err(io_err("rename for deletion", log.dir()))?;
        sync_dir(&self.shared.dir)?;
        delete_in_background(target);
        // A topic re-created under this name must not inherit the old partition's first dirty offset.
        if had_cleaner_offset {
            self.checkpoint_cleaner_offsets()?;
        }
        Ok(())
    }

    pub fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    /// Writes the recovery-point and log-start-offset checkpoints atomically. A failed log is left out, so the next
    /// start recovers it from scratch. A background thread also does this every `CHECKPOINT_INTERVAL`.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        let _serial = self.shared.shut_down.lock();
        self.shared.write_checkpoints()
    }

    /// Writes the cleaner-offset checkpoint atomically: every log's first dirty offset, for those the cleaner has
    /// cleaned. Does nothing once the manager is shut down (shutdown writes it last).
    pub fn checkpoint_cleaner_offsets(&self) -> Result<(), LogError> {
        let shut_down = self.shared.shut_down.lock();
        if *shut_down {
            return Ok(());
        }
        self.shared.write_cleaner_checkpoint()
    }

    /// Clean shutdown: stop the flusher, flush and close every log (finalising time indexes), write the checkpoints,
    /// then the clean-shutdown marker. A log that fails is left out of the marker and recovers at the next start; the
    /// first such error is returned after the marker is written for the others.
    pub fn shutdown(&self) -> Result<(), LogError> {
        if !self.stop_background() {
            return Ok(());
        }
        let _serial = self.shared.shut_down.lock();
        let mut marker: Vec<Row> = Vec::new();
        let mut first_error = None;
        for log in self.logs() {
            let (topic, partition) = log.topic_partition();
            match log.close_clean() {
                Ok(state) => marker.push((
                    topic,
                    partition,
                    vec![state.log_end_offset, state.active_segment_bytes as i64, state.first_append_ms.unwrap_or(-1)],
                )),
                Err(err) => {
                    tracing::error!(topic, partition, error = %err, "log did not close cleanly");
                    first_error.get_or_insert(err);
                }
            }
        }
        self.shared.write_checkpoints()?;
        self.shared.write_cleaner_checkpoint()?;
        marker.sort();
        write_atomic(&self.shared.dir, CLEAN_SHUTDOWN_MARKER, format_rows(&marker).as_bytes())?;
        first_error.map_or(Ok(()), Err)
    }

    /// Marks the manager shut down and stops its threads. Returns false if that already happened.
    fn stop_background(&self) -> bool {
        {
            let mut shut_down = self.shared.shut_down.lock();
            if *shut_down {
                return false;
            }
            *shut_down = true;
            self.shared.wake.notify_all();
        }
        if let Some(thread) = self.checkpointer.lock().take() {
            if thread.join().is_err() {
                tracing::error!("checkpoint thread panicked");
            }
        }
        self.flusher.stop();
        true
    }
}

impl Drop for LogManager {
    /// Stops the background threads without writing the clean-shutdown marker: without `shutdown`, the next start is
    /// unclean.
    fn drop(&mut self) {
        self.stop_background();
    }
}

impl Shared {
    fn logs(&self) -> Vec<Arc<Log>> {
        self.logs.read().values().cloned().collect()
    }

    fn write_checkpoints(&self) -> Result<(), LogError> {
        let mut recovery_points: Vec<Row> = Vec::new();
        let mut log_start_offsets: Vec<Row> = Vec::new();
        for log in self.logs() {
            let (topic, partition) = log.topic_partition();
            match log.checkpoint_offsets() {
                Ok((recovery_point, log_start_offset)) => {
                    recovery_points.push((topic.clone(), partition, vec![recovery_point]));
                    log_start_offsets.push((topic, partition, vec![log_start_offset]));
                }
                Err(err) => tracing::warn!(topic, partition, error = %err, "leaving log out of the checkpoint"),
            }
        }
        recovery_points.sort();
        log_start_offsets.sort();
        write_atomic(&self.dir, RECOVERY_POINT_CHECKPOINT, format_rows(&recovery_points).as_bytes())?;
        write_atomic(&self.dir, LOG_START_OFFSET_CHECKPOINT, format_rows(&log_start_offsets).as_bytes())
    }

    fn write_cleaner_checkpoint(&self) -> Result<(), LogError> {
        let mut rows: Vec<Row> = self
            .logs()
            .iter()
            .map(|log| (log.topic_partition(), log.first_dirty_offset()))
            .filter(|(_, offset)| *offset > 0)
            .map(|((topic, partition), offset)| (topic, partition, vec![offset]))
            .collect();
        rows.sort();
        write_atomic(&self.dir, CLEANER_OFFSET_CHECKPOINT, format_rows(&rows).as_bytes())
    }
}

/// Rewrites the checkpoints every `interval` until the manager shuts down.
fn run_checkpointer(shared: &Shared, interval: Duration) {
    let mut shut_down = shared.shut_down.lock();
    while !*shut_down {
        if shared.wake.wait_for(&mut shut_down, interval).timed_out() && !*shut_down {
            if let Err(err) = shared.write_checkpoints() {
                tracing::warn!(dir = %shared.dir.display(), error = %err, "periodic checkpoint failed");
            }
        }
    }
}

/// Subdirectories of the log directory by name; leftover `-delete` directories are removed in the background.
fn partition_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, LogError> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err("list", dir))? {
        let entry = entry.map_err(io_err("list", dir))?;
        if !entry.file_type().map_err(io_err("stat", &entry.path()))?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(DELETE_SUFFIX) {
            delete_in_background(entry.path());
            continue;
        }
        dirs.push((name, entry.path()));
    }
    dirs.sort();
    Ok(dirs)
}

/// Opens one partition in the mode the marker and checkpoints call for.
fn open_partition(
    path: PathBuf,
    key: &(String, i32),
    startup: &StartupState,
    config: &LogConfig,
) -> Result<Log, LogError> {
    let clean = startup.marker.as_ref().and_then(|m| m.get(key));
    let mode = match clean {
        Some(values) if values[1] >= 0 => {
            OpenMode::Clean { log_end_offset: values[0], active_segment_bytes: values[1] as u64 }
        }
        _ => OpenMode::Unclean { recovery_point: startup.recovery_points.get(key).copied().unwrap_or(0) },
    };
    let options = OpenOptions {
        mode,
        log_start_offset: startup.log_start_offsets.get(key).copied(),
        first_append_ms: clean.map(|v| v[2]).filter(|&ms| ms >= 0),
        first_dirty_offset: startup.cleaner_offsets.get(key).copied(),
    };
    Log::open_with(path, config.clone(), options)
}

fn delete_in_background(path: PathBuf) {
    let spawned = std::thread::Builder::new().name("log-delete".to_string()).spawn(move || {
        if let Err(err) = std::fs::remove_dir_all(&path) {
            tracing::warn!(path = %path.display(), error = %err, "cannot delete partition directory");
        }
    });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot start partition deletion thread");
    }
}

/// 32 hex digits that differ between calls, for deleted directory names.
fn random_hex() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::new();
    for _ in 0..2 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u128(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
        );
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Compression;
    use crate::testing::{append_bytes, read_all, simple_batch, BatchBuilder};

    fn config() -> LogConfig {
        LogConfig { segment_bytes: 4096, index_interval_bytes: 512, ..LogConfig::default() }
    }

    /// Opens a manager with two partitions holding a few segments each; returns their stored bytes.
    fn populated(dir: &Path) -> (LogManager, Vec<Vec<u8>>) {
        let manager = LogManager::open(dir.to_path_buf(), config()).unwrap();
        let mut stored = Vec::new();
        for (topic, partition) in [("alpha", 0), ("beta-2", 1)] {
            let log = manager.get_or_create(topic, partition, config()).unwrap();
            let mut bytes = Vec::new();
            for i in 0..40 {
                bytes.extend(append_bytes(&log, simple_batch(1 + i % 3, 150, Compression::None), 0).unwrap().1);
            }
            stored.push(bytes);
        }
        (manager, stored)
    }

    fn segment_logs(dir: &Path) -> Vec<PathBuf> {
        let mut logs = Vec::new();
        for partition in std::fs::read_dir(dir).unwrap() {
            let partition = partition.unwrap().path();
            if partition.is_dir() {
                for file in std::fs::read_dir(&partition).unwrap() {
                    let file = file.unwrap().path();
                    if file.extension().is_some_and(|e| e == "log") {
                        logs.push(file);
                    }
                }
            }
        }
        logs
    }

    // Goal: the cleaner's progress survives a restart, so the restarted log has nothing to clean again; and the
    // checkpoint is what makes it so. Method: a compacted partition of 60 updates of 5 keys over several segments,
    // cleaned up to its active segment and checkpointed, then dropped without shutdown (a crash) and reopened: the
    // first dirty offset is where the cleaning ended and the log is not dirty. New appends make only themselves
    // dirty. The same files without the checkpoint count the whole log as dirty again.
    #[test]
    fn cleaner_progress_survives_a_restart() {
        const NOW: i64 = 1_000_000;
        let compacted = LogConfig { compact: true, ..config() };
        let update = |log: &Log, i: usize| {
            let key = format!("key-{}", i % 5);
            let batch = BatchBuilder::new(NOW).record(Some(key.as_bytes()), Some(&[b'v'; 100]), 0).build();
            append_bytes(log, batch, NOW).unwrap();
        };
        let root = tempfile::tempdir().unwrap();
        let manager = LogManager::open(root.path().to_path_buf(), compacted.clone()).unwrap();
        let log = manager.get_or_create("table", 0, compacted.clone()).unwrap();
        (0..60).for_each(|i| update(&log, i));
        let cleaned = log.clean(NOW, 1 << 20).unwrap().expect("a dirty log");
        assert_eq!(cleaned.first_dirty_offset, 0);
        manager.checkpoint_cleaner_offsets().unwrap();
        assert_eq!(log.cleanable(NOW).unwrap(), None);
        drop(log);
        drop(manager);

        let manager = LogManager::open(root.path().to_path_buf(), compacted.clone()).unwrap();
        let log = manager.get("table", 0).unwrap();
        assert_eq!(log.first_dirty_offset(), cleaned.map_end_offset);
        assert_eq!(log.cleanable(NOW).unwrap(), None, "a restart does not make the cleaned log dirty");
        assert_eq!(log.clean(NOW, 1 << 20).unwrap(), None);
        (60..120).for_each(|i| update(&log, i));
        let next = log.clean(NOW, 1 << 20).unwrap().expect("the new appends are dirty");
        assert_eq!(next.first_dirty_offset, cleaned.map_end_offset, "only what came after is cleaned");
        manager.shutdown().unwrap();
        drop(log);
        drop(manager);

        std::fs::remove_file(root.path().join(CLEANER_OFFSET_CHECKPOINT)).unwrap();
        let manager = LogManager::open(root.path().to_path_buf(), compacted).unwrap();
        let log = manager.get("table", 0).unwrap();
        let dirty = log.cleanable(NOW).unwrap().expect("without the checkpoint the whole log is dirty");
        assert_eq!(dirty.dirty_bytes, dirty.cleanable_bytes);
    }

    // Goal: a deleted partition's first dirty offset leaves the checkpoint, so a topic re-created under its name
    // starts with everything dirty; an offset past a log's end is ignored.
    #[test]
    fn cleaner_checkpoint_forgets_deleted_partitions() {
        let root = tempfile::tempdir().unwrap();
        let compacted = LogConfig { compact: true, ..config() };
        let manager = LogManager::open(root.path().to_path_buf(), compacted.clone()).unwrap();
        let log = manager.get_or_create("table", 0, compacted.clone()).unwrap();
        for i in 0..40 {
            let batch = BatchBuilder::new(0).record(Some(format!("k{}", i % 3).as_bytes()), Some(&[1; 150]), 0).build();
            append_bytes(&log, batch, 0).unwrap();
        }
        log.clean(0, 1 << 20).unwrap().expect("a dirty log");
        manager.checkpoint_cleaner_offsets().unwrap();
        let rows = read_offsets(root.path(), CLEANER_OFFSET_CHECKPOINT).unwrap();
        assert_eq!(rows.get(&("table".to_string(), 0)), Some(&log.first_dirty_offset()));
        drop(log);
        manager.delete("table", 0).unwrap();
        assert!(read_offsets(root.path(), CLEANER_OFFSET_CHECKPOINT).unwrap().is_empty());
        drop(manager);

        // A checkpoint naming an offset past the log end (written, say, before a crash cut the log short).
        write_atomic(root.path(), CLEANER_OFFSET_CHECKPOINT, b"0\n1\nshort 0 1000\n").unwrap();
        let log = Log::create(root.path().join("short-0"), compacted.clone()).unwrap();
        append_bytes(&log, BatchBuilder::new(0).record(Some(b"k"), Some(b"v"), 0).build(), 0).unwrap();
        drop(log);
        let manager = LogManager::open(root.path().to_path_buf(), compacted).unwrap();
        assert_eq!(manager.get("short", 0).unwrap().first_dirty_offset(), 0);
    }

    // Goal: an advanced log start offset hides older records and survives a restart through the checkpoint, clean
    // or not. Method: advance, checkpoint, drop without shutdown, reopen; then move backwards and past the end.
    #[test]
    fn advanced_log_start_offset_is_checkpointed() {
        let root = tempfile::tempdir().unwrap();
        let (manager, _) = populated(root.path());
        let log = manager.get("alpha", 0).unwrap();
        let end = log.log_end_offset();
        assert_eq!(log.advance_log_start_offset(17).unwrap(), 17);
        assert!(matches!(log.read(16, 1024, end, true), Err(LogError::OffsetOutOfRange { .. })));
        assert!(log.read(17, 1024, end, true).is_ok());
        // Never backwards; never past the end.
        assert_eq!(log.advance_log_start_offset(5).unwrap(), 17);
        assert!(matches!(log.advance_log_start_offset(end + 1), Err(LogError::OffsetOutOfRange { .. })));
        manager.checkpoint().unwrap();
        drop(log);
        drop(manager);
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        let log = manager.get("alpha", 0).unwrap();
        assert_eq!(log.log_start_offset(), 17);
        assert_eq!(log.log_end_offset(), end);
        assert_eq!(manager.get("beta-2", 1).unwrap().log_start_offset(), 0);
        // Advancing to the end empties the readable range.
        assert_eq!(log.advance_log_start_offset(end).unwrap(), end);
        manager.shutdown().unwrap();
        drop(log);
        drop(manager);
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        assert_eq!(manager.get("alpha", 0).unwrap().log_start_offset(), end);
    }

    // Goal: a clean shutdown writes checkpoints and a marker, and the next start is clean, scans nothing, removes the
    // marker before accepting writes, and serves the same data.
    #[test]
    fn clean_shutdown_and_clean_start() {
        let root = tempfile::tempdir().unwrap();
        let (manager, stored) = populated(root.path());
        manager.shutdown().unwrap();
        manager.shutdown().unwrap();
        assert!(manager.get_or_create("gamma", 0, config()).is_err());
        drop(manager);
        let marker = std::fs::read_to_string(root.path().join(CLEAN_SHUTDOWN_MARKER)).unwrap();
        assert!(marker.starts_with("0\n2\nalpha 0 "), "{marker}");
        let rp = std::fs::read_to_string(root.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap();
        assert!(rp.starts_with("0\n2\nalpha 0 "), "{rp}");
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        assert!(!root.path().join(CLEAN_SHUTDOWN_MARKER).exists());
        let report = manager.startup_report();
        assert!(report.clean);
        assert_eq!((report.partitions, report.recovered_partitions, report.bytes_scanned), (2, 0, 0));
        assert_eq!(read_all(&manager.get("alpha", 0).unwrap(), 0).unwrap(), stored[0]);
        assert_eq!(read_all(&manager.get("beta-2", 1).unwrap(), 0).unwrap(), stored[1]);
    }

    // Goal: prove a clean start reads no `.log` data. Every segment file is overwritten with garbage of the same size
    // after a clean shutdown; had the clean start read (and validated) any of it, it would have truncated the log.
    // The same files then make an unclean start (marker and checkpoints removed) truncate everything.
    #[test]
    fn clean_start_reads_no_segment_data() {
        let root = tempfile::tempdir().unwrap();
        let (manager, _) = populated(root.path());
        let ends: Vec<i64> = ["alpha", "beta-2"]
            .iter()
            .map(|t| manager.get(t, i32::from(*t != "alpha")).unwrap().log_end_offset())
            .collect();
        manager.shutdown().unwrap();
        drop(manager);
        let logs = segment_logs(root.path());
        assert!(logs.len() > 4);
        for path in &logs {
            let len = std::fs::metadata(path).unwrap().len() as usize;
            std::fs::write(path, vec![0xee; len]).unwrap();
        }
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        let report = manager.startup_report();
        assert!(report.clean && report.recovered_partitions == 0 && report.bytes_scanned == 0, "{report:?}");
        assert_eq!(manager.get("alpha", 0).unwrap().log_end_offset(), ends[0]);
        assert_eq!(manager.get("beta-2", 1).unwrap().log_end_offset(), ends[1]);
        assert!(manager.get("alpha", 0).unwrap().read(0, 1000, i64::MAX, true).is_err(), "garbage is never served");
        drop(manager);
        std::fs::remove_file(root.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap();
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        let report = manager.startup_report();
        assert!(!report.clean && report.recovered_partitions == 2 && report.bytes_scanned > 0, "{report:?}");
        assert_eq!(manager.get("alpha", 0).unwrap().log_end_offset(), 0);
    }

    // Goal: a crash (no shutdown) is an unclean start that keeps everything written, scanning only past the
    // checkpointed recovery point.
    #[test]
    fn crash_recovers_from_checkpoint() {
        let root = tempfile::tempdir().unwrap();
        let (manager, stored) = populated(root.path());
        for log in manager.logs() {
            log.flush().unwrap();
        }
        manager.checkpoint().unwrap();
        let alpha = manager.get("alpha", 0).unwrap();
        append_bytes(&alpha, simple_batch(2, 10, Compression::None), 0).unwrap();
        let end = alpha.log_end_offset();
        drop(alpha);
        drop(manager);
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        let report = manager.startup_report();
        assert!(!report.clean && report.recovered_partitions == 2, "{report:?}");
        let total: usize = stored.iter().map(Vec::len).sum();
        assert!(report.bytes_scanned < total as u64 / 2, "{report:?}");
        assert!(report.truncated_bytes.is_empty());
        let alpha = manager.get("alpha", 0).unwrap();
        assert_eq!(alpha.log_end_offset(), end);
        assert!(read_all(&alpha, 0).unwrap().starts_with(&stored[0]));
        assert_eq!(read_all(&manager.get("beta-2", 1).unwrap(), 0).unwrap(), stored[1]);
    }

    // Goal: a partition whose active segment changed size after the marker was written is recovered; others are not.
    #[test]
    fn marker_size_mismatch_recovers_that_partition() {
        let root = tempfile::tempdir().unwrap();
        let (manager, stored) = populated(root.path());
        let active = manager.get("beta-2", 1).unwrap().active_segment_path();
        manager.shutdown().unwrap();
        drop(manager);
        let mut bytes = std::fs::read(&active).unwrap();
        bytes.extend_from_slice(&[0u8; 100]);
        std::fs::write(&active, bytes).unwrap();
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        let report = manager.startup_report();
        assert_eq!(report.recovered_partitions, 1);
        assert_eq!(report.truncated_bytes.get(&("beta-2".to_string(), 1)), Some(&100));
        assert_eq!(read_all(&manager.get("beta-2", 1).unwrap(), 0).unwrap(), stored[1]);
    }

    #[test]
    fn delete_partition() {
        let root = tempfile::tempdir().unwrap();
        let (manager, _) = populated(root.path());
        let log = manager.get("alpha", 0).unwrap();
        manager.delete("alpha", 0).unwrap();
        manager.delete("alpha", 0).unwrap();
        assert!(manager.get("alpha", 0).is_none());
        assert!(matches!(append_bytes(&log, simple_batch(1, 1, Compression::None), 0), Err(LogError::Closed { .. })));
        assert!(!root.path().join("alpha-0").exists());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_dir(root.path())
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().ends_with("-delete"))
        {
            assert!(Instant::now() < deadline, "deletion did not finish");
            std::thread::sleep(Duration::from_millis(10));
        }
        let fresh = manager.get_or_create("alpha", 0, config()).unwrap();
        assert_eq!(fresh.log_end_offset(), 0);
        manager.checkpoint().unwrap();
        drop(manager);
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        assert_eq!(manager.logs().len(), 2);
    }

    // Goal: a failed fsync takes only that log offline (appends, flushes and reads fail), a clean shutdown leaves it
    // out of the marker, and the next start recovers it with the flushed data intact.
    #[test]
    fn fsync_failure_takes_the_log_offline() {
        let root = tempfile::tempdir().unwrap();
        let (manager, stored) = populated(root.path());
        let alpha = manager.get("alpha", 0).unwrap();
        alpha.flush().unwrap();
        append_bytes(&alpha, simple_batch(1, 10, Compression::None), 0).unwrap();
        alpha.inject_fsync_failure();
        assert!(matches!(alpha.flush(), Err(LogError::Io { .. })));
        assert!(alpha.is_failed() && !alpha.needs_flush(i64::MAX));
        let failed = |r: Result<_, LogError>| matches!(r, Err(LogError::Failed { .. }));
        assert!(failed(append_bytes(&alpha, simple_batch(1, 10, Compression::None), 0).map(|_| ())));
        assert!(failed(alpha.flush().map(|_| ())));
        assert!(failed(alpha.read(0, 100, i64::MAX, true).map(|_| ())));
        assert!(failed(alpha.checkpoint_offsets().map(|_| ())));
        manager.get("beta-2", 1).unwrap().flush().unwrap();
        assert!(matches!(manager.shutdown(), Err(LogError::Failed { .. })));
        drop((alpha, manager));
        let marker = std::fs::read_to_string(root.path().join(CLEAN_SHUTDOWN_MARKER)).unwrap();
        assert!(marker.starts_with("0\n1\nbeta-2 1 "), "{marker}");
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        assert_eq!(manager.startup_report().recovered_partitions, 1);
        assert!(read_all(&manager.get("alpha", 0).unwrap(), 0).unwrap().starts_with(&stored[0]));
    }

    // Goal: the background thread keeps the recovery point checkpoint close to the flushed offset, so a crash
    // rescans little even though nobody called `checkpoint`.
    #[test]
    fn checkpoints_periodically() {
        let root = tempfile::tempdir().unwrap();
        let manager =
            LogManager::open_with_interval(root.path().to_path_buf(), config(), Duration::from_millis(20)).unwrap();
        let log = manager.get_or_create("alpha", 0, config()).unwrap();
        for _ in 0..40 {
            append_bytes(&log, simple_batch(3, 150, Compression::None), 0).unwrap();
        }
        log.flush().unwrap();
        let expected = format!("0\n1\nalpha 0 {}\n", log.log_end_offset());
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(root.path().join(RECOVERY_POINT_CHECKPOINT)).unwrap() != expected {
            assert!(Instant::now() < deadline, "checkpoint never caught up");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop((log, manager));
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        let report = manager.startup_report();
        assert!(!report.clean && report.bytes_scanned < 4096, "{report:?}");
    }

    #[test]
    fn directory_is_locked() {
        let root = tempfile::tempdir().unwrap();
        let manager = LogManager::open(root.path().to_path_buf(), config()).unwrap();
        assert!(matches!(LogManager::open(root.path().to_path_buf(), config()), Err(LogError::DirLocked { .. })));
        drop(manager);
        LogManager::open(root.path().to_path_buf(), config()).unwrap();
    }

    #[test]
    fn topic_names() {
        for good in ["a", "orders.v1", "my_topic-2", &"x".repeat(249)] {
            validate_topic_name(good).unwrap();
        }
        for bad in ["", ".", "..", "a b", "a/b", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }
}
