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
pub mod error;
pub mod records;
pub mod varint;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use batch::{validate_batches, BatchError, BatchHeader, BatchInfo, Compression, TimestampType, ValidatedBatches};
pub use error::LogError;
pub use records::{RecordHeader, RecordView, Records};

/// Size of a magic-2 record batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
