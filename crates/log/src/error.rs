//! `LogError`, the one error type of the storage engine.
//!
//! Operating failures (an I/O error, a fetch outside the log, a malformed checkpoint) are values carrying the
//! partition, offset or path they concern, so the broker can log them and map them to a Kafka error code at its
//! edge. Broken invariants are not errors: they are `assert!`s.

use std::io;
use std::path::{Path, PathBuf};

use crate::batch::BatchError;

/// Everything the storage engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A system call on a file or directory failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A fetch or lookup asked for an offset outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}] in {topic}-{partition}")]
    OffsetOutOfRange { topic: String, partition: i32, offset: i64, log_start_offset: i64, log_end_offset: i64 },
    /// The disk (or the user's quota) is full. The append was undone completely and the log stays writable: the
    /// next append succeeds once space is freed.
    #[error("no space left for {path}: the append was undone")]
    StorageFull { path: PathBuf },
    /// An earlier write or fsync failed; the log refuses all further I/O until it is reopened.
    #[error("log {topic}-{partition} is offline after a storage failure")]
    Failed { topic: String, partition: i32 },
    /// The log was closed (shutdown or deletion) and takes no more appends.
    #[error("log {topic}-{partition} is closed")]
    Closed { topic: String, partition: i32 },
    /// A record batch failed validation.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Stored data does not have the shape the engine wrote.
    #[error("corrupt data in {path} at position {position}: {reason}")]
    Corrupt { path: PathBuf, position: u64, reason: String },
    /// A partition directory name is not `<topic>-<partition>`.
    #[error("invalid partition directory name {name:?}")]
    InvalidDirName { name: String },
    /// A topic name Kafka would not accept.
    #[error("invalid topic name {topic:?}: {reason}")]
    InvalidTopic { topic: String, reason: &'static str },
    /// `Log::create` found segments already present.
    #[error("log directory {path} already holds segments")]
    AlreadyExists { path: PathBuf },
    /// Another process (or another `LogManager`) holds the log directory's lock file.
    #[error("log directory {path} is locked by another process")]
    DirLocked { path: PathBuf },
    /// A checkpoint or marker file does not parse.
    #[error("malformed file {path} at line {line}: {reason}")]
    Malformed { path: PathBuf, line: usize, reason: String },
    /// An idempotent producer's batch does not follow its last sequence (Kafka OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error(
        "out of order sequence from producer {producer_id} in {topic}-{partition}: expected {expected}, got {found}"
    )]
    OutOfOrderSequence { topic: String, partition: i32, producer_id: i64, expected: i32, found: i32 },
    /// A batch or marker carries an epoch older than the producer's current one (Kafka INVALID_PRODUCER_EPOCH).
    #[error("producer {producer_id} in {topic}-{partition} has epoch {epoch}, older than the current {current}")]
    InvalidProducerEpoch { topic: String, partition: i32, producer_id: i64, epoch: i16, current: i16 },
    /// A write that the producer's transaction state does not allow, e.g. a non-transactional batch while its
    /// transaction is open (Kafka INVALID_TXN_STATE).
    #[error("invalid transaction state for producer {producer_id} in {topic}-{partition}: {reason}")]
    InvalidTxnState { topic: String, partition: i32, producer_id: i64, reason: &'static str },
    /// A transaction marker from a coordinator epoch older than the one that last wrote a marker for the producer
    /// (Kafka TRANSACTION_COORDINATOR_FENCED).
    #[error(
        "marker for producer {producer_id} in {topic}-{partition} has coordinator epoch {epoch}, older than {current}"
    )]
    CoordinatorFenced { topic: String, partition: i32, producer_id: i64, epoch: i32, current: i32 },
    /// The log manager was shut down.
    #[error("log manager for {path} is shut down")]
    ShutDown { path: PathBuf },
}

impl LogError {
    /// True for failures of the disk or the stored data, which Kafka reports as `KAFKA_STORAGE_ERROR`.
    pub fn is_storage_error(&self) -> bool {
        matches!(
            self,
            LogError::Io { .. } | LogError::Failed { .. } | LogError::Corrupt { .. } | LogError::StorageFull { .. }
        )
    }
}

/// Whether an I/O error means the disk or a quota is full, which frees up without operator action on the log.
pub(crate) fn is_storage_full(err: &LogError) -> bool {
    match err {
        LogError::Io { source, .. } => {
            matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
                || source.raw_os_error() == Some(libc::ENOSPC)
                || source.raw_os_error() == Some(libc::EDQUOT)
        }
        _ => false,
    }
}

/// Returns a closure that wraps an `io::Error` with the operation and path it concerns, for `map_err`.
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LogError + 'a {
    move |source| LogError::Io { op, path: path.to_path_buf(), source }
}
