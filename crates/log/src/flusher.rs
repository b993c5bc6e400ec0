//! Group commit: one flusher thread per log directory makes appends durable in shared rounds of `fdatasync`.
//!
//! `request(log)` adds the log to a pending set (deduplicated, so the set is bounded by the number of logs) and wakes
//! the thread. The thread takes the whole set at once and flushes each log: under the log's lock it takes the list of
//! files with unflushed data and the target offset, fsyncs outside the lock, then advances the flushed offset and
//! calls the log's flush listener. Requests arriving during a round wait for the next one, so many concurrent appends
//! share one fsync. A failed fsync takes that log offline (see `Log::flush`); it is never retried on the same file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::log::Log;

/// Counters of a flusher's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushStats {
    /// Rounds run (each serves every log requested before it began).
    pub rounds: u64,
    /// fsync/fdatasync calls made.
    pub fsyncs: u64,
    /// `request` calls received.
    pub requests: u64,
}

#[derive(Default)]
struct Pending {
    logs: HashMap<u64, Arc<Log>>,
    stopping: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    rounds: AtomicU64,
    fsyncs: AtomicU64,
    requests: AtomicU64,
}

/// The group-commit thread of one log directory.
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Flusher {
    /// Starts the flusher thread, named after `name` (e.g. the log directory).
    pub fn start(name: &str) -> Flusher {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            rounds: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("flusher-{name}"))
            .spawn(move || run(&worker))
            .expect("spawn flusher thread");
        Flusher { shared, thread: Mutex::new(Some(thread)) }
    }

    /// Asks for `log` to be fsynced up to its log end offset as of the round that serves it.
    pub fn request(&self, log: &Arc<Log>) {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        let mut pending = self.shared.pending.lock();
        if pending.stopping {
            tracing::debug!(log = ?log, "flush requested after the flusher stopped");
            return;
        }
        pending.logs.entry(log.id()).or_insert_with(|| log.clone());
        self.shared.wake.notify_one();
    }

    pub fn stats(&self) -> FlushStats {
        FlushStats {
            rounds: self.shared.rounds.load(Ordering::Relaxed),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            requests: self.shared.requests.load(Ordering::Relaxed),
        }
    }

    /// Serves the requests already made, then stops the thread.
    pub fn shutdown(self) {
        self.stop();
    }

    /// `shutdown` through a shared reference; later requests are ignored.
    pub(crate) fn stop(&self) {
        self.shared.pending.lock().stopping = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.lock().take() {
            if thread.join().is_err() {
                tracing::error!("flusher thread panicked");
            }
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Histogram of the time one log's flush took (its fdatasync calls), in seconds.
pub const FLUSH_DURATION: &str = "runnel_log_flush_duration_seconds";
/// Histogram of how many logs one group-commit round flushed.
pub const FLUSH_ROUND_LOGS: &str = "runnel_flush_round_logs";

fn run(shared: &Shared) {
    loop {
        let round = {
            let mut pending = shared.pending.lock();
            while pending.logs.is_empty() && !pending.stopping {
                shared.wake.wait(&mut pending);
            }
            if pending.logs.is_empty() {
                return;
            }
            std::mem::take(&mut pending.logs)
        };
        metrics::histogram!(FLUSH_ROUND_LOGS).record(round.len() as f64);
        for log in round.values() {
            let started = std::time::Instant::now();
            match log.flush_counted() {
                Ok((_, fsyncs)) => {
                    shared.fsyncs.fetch_add(fsyncs, Ordering::Relaxed);
                    if fsyncs > 0 {
                        metrics::histogram!(FLUSH_DURATION).record(started.elapsed().as_secs_f64());
                    }
                }
                // A failing log has already logged its failure and gone offline.
                Err(err) => tracing::debug!(log = ?log, error = %err, "flush skipped"),
            }
        }
        shared.rounds.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Compression;
    use crate::config::LogConfig;
    use crate::testing::{append_bytes, simple_batch};
    use parking_lot::Condvar;

    /// Waits until the log's flushed offset passes `offset`, woken by its flush listener.
    struct FlushWaiter {
        flushed: Mutex<i64>,
        changed: Condvar,
    }

    impl FlushWaiter {
        fn wait_past(&self, offset: i64) {
            let mut flushed = self.flushed.lock();
            while *flushed <= offset {
                assert!(
                    !self.changed.wait_for(&mut flushed, std::time::Duration::from_secs(30)).timed_out(),
                    "flush of offset {offset} never came"
                );
            }
        }
    }

    // Goal: under concurrent appends that each wait for durability, every append is flushed, and appends share
    // fsyncs (group commit): far fewer fsyncs than appends.
    #[test]
    fn concurrent_appends_share_fsyncs() {
        const THREADS: usize = 8;
        const APPENDS: usize = 50;
        let root = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 64 * 1024, ..LogConfig::default() };
        let log = Arc::new(Log::create(root.path().join("t-0"), config).unwrap());
        let waiter = Arc::new(FlushWaiter { flushed: Mutex::new(0), changed: Condvar::new() });
        let listener = waiter.clone();
        log.set_flush_listener(Box::new(move |offset| {
            *listener.flushed.lock() = offset;
            listener.changed.notify_all();
        }));
        let flusher = Arc::new(Flusher::start("test"));
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for _ in 0..APPENDS {
                        let (info, _) = append_bytes(&log, simple_batch(2, 100, Compression::None), 0).unwrap();
                        flusher.request(&log);
                        waiter.wait_past(info.last_offset);
                        assert!(log.flushed_offset() > info.last_offset);
                    }
                });
            }
        });
        let appends = (THREADS * APPENDS) as u64;
        assert_eq!(log.flushed_offset(), log.log_end_offset());
        assert_eq!(log.log_end_offset(), 2 * appends as i64);
        let stats = flusher.stats();
        assert_eq!(stats.requests, appends);
        assert!(stats.fsyncs < appends, "{stats:?}");
        assert!(stats.rounds < appends, "{stats:?}");
        Arc::into_inner(flusher).unwrap().shutdown();
    }

    #[test]
    fn shutdown_serves_pending_requests() {
        let root = tempfile::tempdir().unwrap();
        let log = Arc::new(Log::create(root.path().join("t-0"), LogConfig::default()).unwrap());
        append_bytes(&log, simple_batch(1, 10, Compression::None), 0).unwrap();
        let flusher = Flusher::start("test");
        flusher.request(&log);
        flusher.shutdown();
        assert_eq!(log.flushed_offset(), 1);
    }
}
