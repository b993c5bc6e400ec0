//! Background retention: every `log.retention.check.interval.ms`, each
//! partition's log drops the segments that `retention.ms`,
//! `retention.bytes` (when `cleanup.policy` includes `delete`) or its log
//! start offset (DeleteRecords) no longer keep; their files are deleted
//! `log.segment.delete.delay.ms` later. The rules are in `runnel_log`'s
//! retention module; this module runs them and counts what they removed.
//! The same pass forgets idempotent producers idle for longer than
//! `producer.id.expiration.ms`.

use metrics::counter;
use runnel_log::RetentionOutcome;

use crate::broker::Broker;
use crate::metrics::{PRODUCERS_EXPIRED, RETENTION_BYTES, RETENTION_SEGMENTS};

/// One retention pass over every log. Blocking (may roll a segment); run it on a blocking thread.
pub fn run_pass(broker: &Broker, now_ms: i64) -> RetentionOutcome {
    let mut total = RetentionOutcome::default();
    let producer_expiration_ms = broker.effective_config().producer_id_expiration_ms();
    let mut producers_expired = 0;
    for log in broker.logs.logs() {
        producers_expired += log.expire_producers(now_ms, producer_expiration_ms);
        match log.enforce_retention(now_ms) {
            Ok(outcome) => {
                total.below_start_offset += outcome.below_start_offset;
                total.expired += outcome.expired;
                total.over_size += outcome.over_size;
                total.bytes += outcome.bytes;
            }
            Err(err) => {
                let (topic, partition) = log.topic_partition();
                tracing::warn!(topic, partition, error = %err, "retention pass failed for a log");
            }
        }
    }
    for (reason, count) in [
        ("log_start_offset", total.below_start_offset),
        ("retention_ms", total.expired),
        ("retention_bytes", total.over_size),
    ] {
        if count > 0 {
            counter!(RETENTION_SEGMENTS, "reason" => reason).increment(count as u64);
        }
    }
    counter!(RETENTION_BYTES).increment(total.bytes);
    if producers_expired > 0 {
        counter!(PRODUCERS_EXPIRED).increment(producers_expired as u64);
        tracing::info!(producers_expired, "forgot idle producers");
    }
    total
}

/// Deletes the files of removed segments whose delay has passed. Blocking.
pub fn purge(broker: &Broker, now_ms: i64) {
    for log in broker.logs.logs() {
        if let Err(err) = log.purge_deleted_segments(now_ms) {
            let (topic, partition) = log.topic_partition();
            tracing::warn!(topic, partition, error = %err, "cannot delete a removed segment's files");
        }
    }
}
