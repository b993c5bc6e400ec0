//! The log cleaner: compacts logs of topics with `cleanup.policy=compact`.
//!
//! One task, like Kafka's default `log.cleaner.threads=1`: it cleans, on a
//! blocking thread, every compacted log whose dirty ratio has reached
//! `min.cleanable.dirty.ratio` (or whose oldest uncleaned data is older than
//! `max.compaction.lag.ms`), dirtiest first, then sleeps
//! `log.cleaner.backoff.ms`. The key map of each cleaning is bounded by
//! `log.cleaner.dedupe.buffer.size`. How a log is cleaned, and why a crash
//! in the middle loses nothing, is in `runnel_log`'s cleaner module.
//!
//! Shutdown does not wait for a cleaning in progress: closing the logs stops
//! it between segments, and a cleaning cut short by the process exiting is
//! finished or discarded when the log next opens.

use std::sync::Arc;

use metrics::counter;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::handler::now_ms;
use crate::metrics::{CLEANER_BYTES_READ, CLEANER_BYTES_WRITTEN, CLEANER_RECORDS_REMOVED, CLEANER_RUNS};

/// Runs until `stop` turns true.
pub async fn run(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    if !broker.config.cleaner_enabled() {
        tracing::info!("log cleaner disabled (log.cleaner.enable=false)");
        return;
    }
    let backoff = broker.config.cleaner_backoff();
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        let b = broker.clone();
        let cleaned = tokio::task::spawn_blocking(move || clean_dirty_logs(&b, now_ms())).await;
        if let Err(e) = cleaned {
            tracing::error!(error = %e, "log cleaner pass panicked");
        }
    }
}

/// Cleans every log that is dirty enough, dirtiest first; returns how many were cleaned. Blocking.
pub fn clean_dirty_logs(broker: &Broker, now_ms: i64) -> usize {
    let mut candidates = Vec::new();
    for log in broker.logs.logs() {
        match log.cleanable(now_ms) {
            Ok(Some(cleanable)) => {
                let ratio = cleanable.dirty_ratio();
                if cleanable.overdue || ratio >= log.config().min_cleanable_dirty_ratio {
                    candidates.push((ratio, log));
                }
            }
            Ok(None) => {}
            Err(err) => {
                let (topic, partition) = log.topic_partition();
                tracing::warn!(topic, partition, error = %err, "cannot measure a log's dirty ratio");
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut cleaned = 0;
    for (_, log) in candidates {
        let (topic, partition) = log.topic_partition();
        match log.clean(now_ms, broker.config.cleaner_key_map_bytes()) {
            Ok(Some(stats)) => {
                cleaned += 1;
                counter!(CLEANER_RUNS).increment(1);
                counter!(CLEANER_BYTES_READ).increment(stats.bytes_read);
                counter!(CLEANER_BYTES_WRITTEN).increment(stats.bytes_written);
                counter!(CLEANER_RECORDS_REMOVED).increment(stats.records_removed);
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(topic, partition, error = %err, "cleaning a log failed; it stays as it was"),
        }
    }
    cleaned
}
