//! Runnel's storage engine: partitions stored as segmented logs in Kafka's on-disk layout.
//!
//! A partition directory `<topic>-<partition>/` holds segments named by their 20-digit base offset: `.log` (record
//! batches exactly as produced, with broker-assigned offsets), `.index` (sparse offset index) and `.timeindex`
//! (sparse time index). A log directory adds checkpoint files and a clean-shutdown marker. The crate validates
//! batches on the way in, appends and reads whole batches, flushes with group commit, and after an unclean stop
//! recovers by re-scanning only the unflushed tail.
//!
//! Synchronous std I/O only: no async runtime, no networking, no Kafka protocol types. The broker calls in from
//! blocking threads.

pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod error;
mod flusher;
pub mod index;
mod log;
mod manager;
#[cfg(test)]
mod model_tests;
pub mod offset_index;
pub mod producer;
mod read;
pub mod records;
mod recovery;
mod scan;
mod segment;
pub mod throttle;
pub mod time_index;
pub mod varint;
mod writeback;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use batch::{validate_batches, BatchError, BatchHeader, BatchInfo, Compression, TimestampType, ValidatedBatches};
pub use config::LogConfig;
pub use error::LogError;
pub use flusher::{FlushStats, Flusher, FLUSH_DURATION, FLUSH_ROUND_LOGS};
pub use log::{
    parse_partition_dir_name, AppendInfo, CleanStats, Cleanable, Log, OpenMode, OpenOptions, ReadResult,
    RetentionOutcome,
};
pub use manager::{validate_topic_name, LogManager, StartupReport};
pub use producer::{AbortedTxn, ControlType, ProducerInfo, NO_PRODUCER_ID, NO_SEQUENCE};
pub use records::{RecordHeader, RecordView, Records};
pub use recovery::RecoveryStats;
pub use throttle::Throttle;

/// Size of a magic-2 record batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
