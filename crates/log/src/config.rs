//! `LogConfig`: the per-partition settings the storage engine obeys, with Kafka's names and defaults.

use crate::batch::TimestampType;

/// Per-partition storage settings. Field comments give the Kafka topic config (and broker default) they mirror.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes` / `log.segment.bytes`: roll when an append would grow the active segment past this.
    pub segment_bytes: u64,
    /// `segment.ms` / `log.roll.ms`: roll when the active segment's first append is this old.
    pub segment_ms: i64,
    /// `segment.index.bytes`: roll when an index of the active segment would grow past this.
    pub segment_index_bytes: u64,
    /// `index.interval.bytes`: log bytes between two offset index entries.
    pub index_interval_bytes: u32,
    /// `flush.messages` / `log.flush.interval.messages`: flush after this many unflushed messages
    /// (Runnel defaults to 1, flush before ack; `i64::MAX` means never by count).
    pub flush_interval_messages: i64,
    /// `flush.ms` / `log.flush.interval.ms`: flush when unflushed data is this old.
    pub flush_interval_ms: i64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `retention.ms` / `log.retention.ms`: closed segments whose newest record is older than this are deleted;
    /// -1 keeps them forever.
    pub retention_ms: i64,
    /// `retention.bytes` / `log.retention.bytes`: the oldest segments are deleted while the log without them is
    /// still at least this big; -1 means no size limit.
    pub retention_bytes: i64,
    /// `cleanup.policy` contains `delete`: time and size retention apply. Segments below the log start offset are
    /// removed whatever the policy.
    pub retention_enabled: bool,
    /// `file.delete.delay.ms` / `log.segment.delete.delay.ms`: a segment removed from the log keeps its files this
    /// long, so reads already holding it finish.
    pub file_delete_delay_ms: i64,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the newest record per key.
    pub compact: bool,
    /// `min.cleanable.dirty.ratio`: the share of the cleanable log not yet cleaned above which the log is cleaned.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`: how long a tombstone (a record with a key and a null value) stays after it was
    /// written, so consumers reading the topic from the start see the deletion.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log with uncleaned records older than this is cleaned whatever its dirty ratio.
    pub max_compaction_lag_ms: i64,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            flush_interval_messages: 1,
            flush_interval_ms: i64::MAX,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            retention_enabled: true,
            file_delete_delay_ms: 60_000,
            compact: false,
            min_cleanable_dirty_ratio: 0.5,
            delete_retention_ms: 24 * 60 * 60 * 1000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
        }
    }
}

impl LogConfig {
    /// The segment size the engine actually enforces: positions in the offset index are i32.
    pub(crate) fn segment_bytes_max(&self) -> u64 {
        self.segment_bytes.min(i32::MAX as u64)
    }
}
