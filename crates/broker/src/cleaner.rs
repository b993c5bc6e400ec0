//! The log cleaner: compacts logs of topics with `cleanup.policy=compact`.
//!
//! One task, like Kafka's default `log.cleaner.threads=1`: it cleans every
//! compacted log whose dirty ratio has reached `min.cleanable.dirty.ratio`
//! (or whose oldest uncleaned data is older than `max.compaction.lag.ms`),
//! dirtiest first, then sleeps `log.cleaner.backoff.ms`. The key map of each
//! cleaning is bounded by `log.cleaner.dedupe.buffer.size`. How a log is
//! cleaned, and why a crash in the middle loses nothing, is in `runnel_log`'s
//! cleaner module.
//!
//! Cleaning must not slow down producers. Its reads and writes are limited to
//! `log.cleaner.io.max.bytes.per.second` (a dynamic broker config: a change
//! applies at once, even to a cleaning in progress), and each pass runs on
//! its own thread, `log-cleaner`, under Linux's idle scheduling policy
//! (`SCHED_IDLE`; nice +10 where that is refused), so on a busy machine
//! request handling, the flusher and the clients come first: any of them
//! waking up takes the core from the cleaner at once.
//! After a pass that cleaned something the cleaner-offset checkpoint is
//! rewritten, so a restart does not clean the same data again.
//!
//! Shutdown does not wait for a cleaning in progress: closing the logs stops
//! it between segments, and a cleaning cut short by the process exiting is
//! finished or discarded when the log next opens.

use std::sync::Arc;

use metrics::{counter, gauge};
use tokio::sync::watch;

use crate::broker::Broker;
use crate::handler::now_ms;
use crate::metrics::{
    CLEANER_BYTES_READ, CLEANER_BYTES_WRITTEN, CLEANER_RECORDS_REMOVED, CLEANER_RUNS, CLEANER_THROTTLED_SECONDS,
};

/// The cleaner thread's nice increment where the idle policy is refused.
/// Against threads at the default priority, the scheduler gives a thread at
/// +10 about a tenth of their share of a busy core.
const CLEANER_NICE: i32 = 10;

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
        if let Err(reason) = on_cleaner_thread(move || clean_dirty_logs(&b, now_ms())).await {
            tracing::error!(reason, "log cleaner pass failed");
        }
    }
}

/// Runs `pass` on a new thread, `log-cleaner`, at lower CPU priority, and
/// waits for it without blocking the runtime. A thread per pass (a pass runs
/// at most every `log.cleaner.backoff.ms`) keeps the lowered priority off
/// the runtime's shared blocking threads, and an unprivileged process cannot
/// raise a thread's priority back.
async fn on_cleaner_thread<T: Send + 'static>(pass: impl FnOnce() -> T + Send + 'static) -> Result<T, &'static str> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("log-cleaner".to_string())
        .spawn(move || {
            lower_priority();
            if done.send(pass()).is_err() {
                tracing::debug!("log cleaner pass finished after its task stopped");
            }
        })
        .map_err(|_| "cannot start the log cleaner thread")?;
    result.await.map_err(|_| "log cleaner pass panicked")
}

/// Puts the calling thread under the idle scheduling policy: it runs when a
/// core has nothing else to run, and a thread of normal policy that wakes up
/// preempts it at once (a niced thread may keep the core for a scheduler
/// tick). It is not starved: the scheduler still gives it a small share of a
/// busy core. If the policy is refused, raises the thread's nice value by
/// [`CLEANER_NICE`]. On Linux both belong to the thread, not the process.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param for the call's duration; pid 0 is the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } == 0 {
            return;
        }
        tracing::debug!(error = %std::io::Error::last_os_error(), "idle scheduling refused; lowering the log cleaner's nice value");
        // SAFETY: nice takes no pointers; on Linux it changes the calling thread only.
        let niced = unsafe {
            *libc::__errno_location() = 0;
            libc::nice(CLEANER_NICE)
        };
        if niced == -1 && std::io::Error::last_os_error().raw_os_error() != Some(0) {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower the log cleaner's priority");
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
    let throttle = broker.cleaner_throttle();
    for (_, log) in candidates {
        let (topic, partition) = log.topic_partition();
        let result = log.clean_throttled(now_ms, broker.config.cleaner_key_map_bytes(), throttle);
        gauge!(CLEANER_THROTTLED_SECONDS).set(throttle.throttled().as_secs_f64());
        match result {
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
    if cleaned > 0 {
        if let Err(err) = broker.logs.checkpoint_cleaner_offsets() {
            tracing::warn!(error = %err, "cannot write the cleaner-offset checkpoint");
        }
    }
    cleaned
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a cleaning pass runs on its own thread under the idle scheduling
    // policy (or, where that is refused, at a raised nice value), and the
    // caller's thread keeps its own priority.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn passes_run_at_idle_priority_on_their_own_thread() {
        // SAFETY: sched_getscheduler and getpriority take no pointers; 0 names the calling thread.
        let policy_and_nice = || unsafe {
            (libc::sched_getscheduler(0), libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t))
        };
        let caller = policy_and_nice();
        let (policy, nice) = on_cleaner_thread(policy_and_nice).await.unwrap();
        assert!(
            policy == libc::SCHED_IDLE || nice == caller.1 + CLEANER_NICE,
            "cleaner thread: policy {policy}, nice {nice}; caller nice {}",
            caller.1
        );
        assert_eq!(policy_and_nice(), caller, "the caller's thread is unchanged");
        let name = on_cleaner_thread(|| std::thread::current().name().map(str::to_string)).await.unwrap();
        assert_eq!(name.as_deref(), Some("log-cleaner"));
    }
}
