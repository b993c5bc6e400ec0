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
        for log in round.values() {
            match log.flush_counted() {
                Ok((_, fsyncs)) => {
                    shared.fsyncs.fetch_add(fsyncs, Ordering::Relaxed);
                }
                // A failing log has already logged its failure and gone offline.
                Err(err) => tracing::debug!(log = ?log, error = %err, "flush skipped"),
            }
        }
        shared.rounds.fetch_add(1, Ordering::Relaxed);
    }
}
