//! A partition as the broker sees it: the log, the high watermark and the
//! notifications that wake long-polling fetches and `acks=all` producers.
//!
//! On one node the in-sync replica set is the leader alone, so the high
//! watermark is the log end offset, with one Runnel rule on top: when the
//! partition's flush policy is "fsync every message" (`flush.messages=1`, the
//! default), the high watermark follows the flushed offset instead. Consumers
//! then never read a record that a crash could still take away, and an offset
//! once served always names the same record.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use runnel_log::{Log, LogConfig};
use tokio::sync::watch;
use uuid::Uuid;

use crate::metrics::TopicCounters;

/// How often a request waiting for an fsync checks whether the log failed.
const FAILURE_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// A partition served by this broker.
pub struct Partition {
    pub topic: String,
    pub topic_id: Uuid,
    pub index: i32,
    pub log: Arc<Log>,
    /// The topic's data-path counters, shared by its partitions.
    pub counters: TopicCounters,
    /// Whether the high watermark waits for fsync (see the module docs).
    durable_high_watermark: AtomicBool,
    high_watermark: watch::Sender<i64>,
    flushed: watch::Sender<i64>,
}

impl Partition {
    /// Wraps an opened log. The flush listener keeps the `flushed` and high
    /// watermark channels current from the flusher thread.
    pub fn new(topic: String, topic_id: Uuid, index: i32, log: Arc<Log>, counters: TopicCounters) -> Arc<Partition> {
        let config = log.config();
        let durable = is_durable(&config);
        let flushed_offset = log.flushed_offset();
        let hw = if durable { flushed_offset } else { log.log_end_offset() };
        let partition = Arc::new(Partition {
            topic,
            topic_id,
            index,
            durable_high_watermark: AtomicBool::new(durable),
            high_watermark: watch::Sender::new(hw),
            flushed: watch::Sender::new(flushed_offset),
            log,
            counters,
        });
        let weak = Arc::downgrade(&partition);
        partition.log.set_flush_listener(Box::new(move |offset| {
            if let Some(p) = weak.upgrade() {
                p.on_flushed(offset);
            }
        }));
        partition
    }

    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }

    /// A receiver that sees every later change of the high watermark.
    pub fn watch_high_watermark(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }

    /// Whether `acks=all` must wait for an fsync of data just appended.
    pub fn flush_required(&self, now_ms: i64) -> bool {
        self.log.needs_flush(now_ms)
    }

    /// Called after an append: advances the high watermark when it does not wait for fsync.
    pub fn on_appended(&self) {
        if !self.durable_high_watermark.load(Ordering::Acquire) {
            let leo = self.log.log_end_offset();
            advance(&self.high_watermark, leo);
        }
    }

    fn on_flushed(&self, offset: i64) {
        advance(&self.flushed, offset);
        if self.durable_high_watermark.load(Ordering::Acquire) {
            advance(&self.high_watermark, offset);
        }
    }

    /// Waits until every offset below `end_offset` is fsynced; false if the
    /// log fails first. A failed fsync takes the log offline without a flush
    /// notification, so the wait re-checks the log's state every
    /// [`FAILURE_CHECK_INTERVAL`].
    pub async fn wait_flushed(&self, end_offset: i64) -> bool {
        let mut rx = self.flushed.subscribe();
        loop {
            match tokio::time::timeout(FAILURE_CHECK_INTERVAL, rx.wait_for(|flushed| *flushed >= end_offset)).await {
                Ok(reached) => return reached.is_ok(),
                Err(_) if self.log.is_failed() => return false,
                Err(_) => {}
            }
        }
    }

    /// Applies a new storage configuration (e.g. a topic config change).
    pub fn set_log_config(&self, config: LogConfig) {
        self.durable_high_watermark.store(is_durable(&config), Ordering::Release);
        self.log.set_config(config);
        self.on_appended();
    }
}

fn is_durable(config: &LogConfig) -> bool {
    config.flush_interval_messages <= 1
}

/// Moves a watermark forward; it never moves back.
fn advance(tx: &watch::Sender<i64>, offset: i64) {
    tx.send_if_modified(|current| {
        if offset > *current {
            *current = offset;
            true
        } else {
            false
        }
    });
}
