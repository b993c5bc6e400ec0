//! `LogManager`: one log directory. Opens every partition at start (clean or with recovery), owns the flusher,
//! writes checkpoints and the clean-shutdown marker, creates and deletes partitions.
//!
//! Startup reads the clean-shutdown marker and the checkpoints, then deletes the marker (and fsyncs the directory)
//! before any write is accepted, so a crash from then on is recognised as unclean. A partition listed in the marker
//! whose active segment still has the recorded size opens without reading any `.log` data; every other partition
//! recovers from its checkpointed recovery point.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions as FsOpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use crate::checkpoint::{
    format_rows, read_offsets, read_rows, remove_durably, sync_dir, write_atomic, Row, CLEAN_SHUTDOWN_MARKER,
    LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT,
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

/// One log directory and its partitions.
pub struct LogManager {
    dir: PathBuf,
    default_config: LogConfig,
    logs: RwLock<HashMap<(String, i32), Arc<Log>>>,
    flusher: Flusher,
    report: StartupReport,
    /// True once shut down; also serialises checkpoints with shutdown.
    shut_down: Mutex<bool>,
    _lock: File,
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
    })
}

impl LogManager {
    /// Opens (creating if missing) a log directory and every partition in it.
    pub fn open(dir: PathBuf, default_config: LogConfig) -> Result<LogManager, LogError> {
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
        let manager = LogManager {
            flusher: Flusher::start(&name),
            dir,
            default_config,
            logs: RwLock::new(logs),
            report,
            shut_down: Mutex::new(false),
            _lock: lock,
        };
        // Recovery fsynced every recovered tail; record that so a second crash does not scan it again.
        manager.checkpoint()?;
        tracing::info!(dir = %manager.dir.display(), report = ?manager.report, "log directory opened");
        Ok(manager)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn default_config(&self) -> &LogConfig {
        &self.default_config
    }

    pub fn startup_report(&self) -> StartupReport {
        self.report.clone()
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Log>> {
        self.logs.read().get(&(topic.to_string(), partition)).cloned()
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
        let shut_down = self.shut_down.lock();
        if *shut_down {
            return Err(LogError::ShutDown { path: self.dir.clone() });
        }
        let mut logs = self.logs.write();
        let key = (topic.to_string(), partition);
        if let Some(log) = logs.get(&key) {
            return Ok(log.clone());
        }
        let log = Arc::new(Log::create(self.dir.join(format!("{topic}-{partition}")), config)?);
        logs.insert(key, log.clone());
        Ok(log)
    }

    pub fn logs(&self) -> Vec<Arc<Log>> {
        self.logs.read().values().cloned().collect()
    }

    /// Removes a partition: closes it, renames its directory to `<topic>-<partition>.<random hex>-delete` (durably),
    /// and deletes that directory on a background thread. Removing an unknown partition does nothing.
    pub fn delete(&self, topic: &str, partition: i32) -> Result<(), LogError> {
        let Some(log) = self.logs.write().remove(&(topic.to_string(), partition)) else {
            return Ok(());
        };
        log.close();
        let target = self.dir.join(format!("{topic}-{partition}.{}{DELETE_SUFFIX}", random_hex()));
        std::fs::rename(log.dir(), &target).map_err(io_err("rename for deletion", log.dir()))?;
        sync_dir(&self.dir)?;
        delete_in_background(target);
        Ok(())
    }

    pub fn flusher(&self) -> &Flusher {
        &self.flusher
    }

    /// Writes the recovery-point and log-start-offset checkpoints atomically. A failed log is left out, so the next
    /// start recovers it from scratch.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        let _serial = self.shut_down.lock();
        self.write_checkpoints()
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

    /// Clean shutdown: stop the flusher, flush and close every log (finalising time indexes), write the checkpoints,
    /// then the clean-shutdown marker. A log that fails is left out of the marker and recovers at the next start; the
    /// first such error is returned after the marker is written for the others.
    pub fn shutdown(&self) -> Result<(), LogError> {
        let mut shut_down = self.shut_down.lock();
        if *shut_down {
            return Ok(());
        }
        *shut_down = true;
        self.flusher.stop();
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
        self.write_checkpoints()?;
        marker.sort();
        write_atomic(&self.dir, CLEAN_SHUTDOWN_MARKER, format_rows(&marker).as_bytes())?;
        first_error.map_or(Ok(()), Err)
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
