//! A byte-rate limiter for background I/O: the log cleaner's `log.cleaner.io.max.bytes.per.second`.
//!
//! The limiter keeps a virtual clock, the instant up to which the bytes acquired so far are paid for. Each
//! `acquire(bytes)` moves that instant forward by `bytes / rate`; when it is ahead of now, the caller sleeps until it
//! is not. Idle time earns at most `burst` of credit, so a cleaner that waited for work does not then run unthrottled
//! for long, and debts below `SLEEP_MIN` are carried to the next call rather than slept one by one, so the average
//! rate is exact without a sleep per batch.
//!
//! The rate is a dynamic broker config: it can change while the cleaner sleeps. Sleeps are cut into slices of at most
//! `SLEEP_SLICE`, and a change of rate forgives the debt, so a cleaner held back by a low rate resumes within one slice
//! of the operator raising it. Time comes from a [`Clock`], so tests drive the limiter without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The rate that means "not throttled": Kafka's default for `log.cleaner.io.max.bytes.per.second` (`Double.MAX_VALUE`).
pub const UNLIMITED: f64 = f64::MAX;
/// Credit idle time may earn.
pub const BURST: Duration = Duration::from_millis(10);
/// Debts shorter than this are carried to the next `acquire` instead of slept.
const SLEEP_MIN: Duration = Duration::from_millis(1);
/// The longest single sleep: how soon a sleeping caller notices a new rate.
const SLEEP_SLICE: Duration = Duration::from_millis(100);

/// Monotonic time and sleeping, injectable for tests.
pub trait Clock: Send + Sync {
    /// Time since an arbitrary, fixed origin.
    fn now(&self) -> Duration;
    fn sleep(&self, duration: Duration);
}

/// The process's monotonic clock and `thread::sleep`.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock { origin: Instant::now() }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Limits the bytes per second of whoever calls `acquire`; shared by reference between threads.
pub struct Throttle {
    /// Bytes per second, as `f64` bits.
    rate: AtomicU64,
    /// The instant up to which acquired bytes are paid for; `None` after a change of rate.
    paid_until: Mutex<Option<Duration>>,
    burst: Duration,
    clock: Arc<dyn Clock>,
    /// Total time callers slept, in nanoseconds.
    throttled_nanos: AtomicU64,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").field("rate", &self.rate()).field("throttled", &self.throttled()).finish()
    }
}

impl Throttle {
    /// A limiter at `bytes_per_second` ([`UNLIMITED`] for none) on the system clock.
    pub fn new(bytes_per_second: f64) -> Throttle {
        Throttle::with_clock(bytes_per_second, BURST, Arc::new(SystemClock::default()))
    }

    pub fn unlimited() -> Throttle {
        Throttle::new(UNLIMITED)
    }

    pub fn with_clock(bytes_per_second: f64, burst: Duration, clock: Arc<dyn Clock>) -> Throttle {
        assert!(bytes_per_second > 0.0, "a throttle rate must be positive, got {bytes_per_second}");
        Throttle {
            rate: AtomicU64::new(bytes_per_second.to_bits()),
            paid_until: Mutex::new(None),
            burst,
            clock,
            throttled_nanos: AtomicU64::new(0),
        }
    }

    pub fn rate(&self) -> f64 {
        f64::from_bits(self.rate.load(Ordering::Relaxed))
    }

    /// Changes the rate; debt owed at the old rate is forgiven, so sleepers wake within one slice.
    pub fn set_rate(&self, bytes_per_second: f64) {
        assert!(bytes_per_second > 0.0, "a throttle rate must be positive, got {bytes_per_second}");
        let mut paid_until = self.paid_until.lock();
        if self.rate.swap(bytes_per_second.to_bits(), Ordering::Relaxed) != bytes_per_second.to_bits() {
            *paid_until = None;
        }
    }

    /// Total time `acquire` has slept.
    pub fn throttled(&self) -> Duration {
        Duration::from_nanos(self.throttled_nanos.load(Ordering::Relaxed))
    }

    /// Accounts for `bytes` of I/O and sleeps as long as the rate requires; returns the time slept.
    pub fn acquire(&self, bytes: u64) -> Duration {
        if self.rate() >= UNLIMITED {
            return Duration::ZERO;
        }
        let mut slept = Duration::ZERO;
        let mut wait = self.charge(bytes);
        while wait >= SLEEP_MIN {
            let slice = wait.min(SLEEP_SLICE);
            self.clock.sleep(slice);
            slept += slice;
            wait = self.debt();
        }
        self.throttled_nanos.fetch_add(slept.as_nanos() as u64, Ordering::Relaxed);
        slept
    }

    /// Moves the paid-for instant forward by the cost of `bytes`; returns how far it is ahead of now.
    fn charge(&self, bytes: u64) -> Duration {
        let mut paid_until = self.paid_until.lock();
        let now = self.clock.now();
        let idle_credit = now.saturating_sub(self.burst);
        let start = paid_until.map_or(now, |paid| paid.max(idle_credit));
        let cost = Duration::try_from_secs_f64(bytes as f64 / self.rate()).unwrap_or(Duration::MAX);
        let paid = start.saturating_add(cost);
        *paid_until = Some(paid);
        paid.saturating_sub(now)
    }

    /// How far the paid-for instant is ahead of now (zero after a change of rate).
    fn debt(&self) -> Duration {
        let paid_until = self.paid_until.lock();
        paid_until.map_or(Duration::ZERO, |paid| paid.saturating_sub(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{OnceLock, Weak};

    use super::*;

    /// A clock that only moves when slept on; records each sleep and can run a hook on the first one.
    #[derive(Default)]
    struct ManualClock {
        now: Mutex<Duration>,
        sleeps: Mutex<Vec<Duration>>,
        /// Set to a throttle whose rate the first sleep raises to unlimited, as an operator would mid-cleaning.
        raise_on_first_sleep: OnceLock<Weak<Throttle>>,
    }

    impl ManualClock {
        fn advance(&self, by: Duration) {
            *self.now.lock() += by;
        }

        fn slept(&self) -> Duration {
            self.sleeps.lock().iter().sum()
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            *self.now.lock()
        }

        fn sleep(&self, duration: Duration) {
            let first = {
                let mut sleeps = self.sleeps.lock();
                sleeps.push(duration);
                sleeps.len() == 1
            };
            self.advance(duration);
            if let Some(throttle) = self.raise_on_first_sleep.get().and_then(Weak::upgrade).filter(|_| first) {
                throttle.set_rate(UNLIMITED);
            }
        }
    }

    fn throttle(rate: f64) -> (Arc<ManualClock>, Throttle) {
        let clock = Arc::new(ManualClock::default());
        clock.advance(Duration::from_secs(1000));
        (clock.clone(), Throttle::with_clock(rate, BURST, clock))
    }

    const MB: f64 = 1_000_000.0;

    // Goal: an unlimited throttle never sleeps, whatever it is asked for.
    #[test]
    fn unlimited_never_sleeps() {
        let (clock, throttle) = throttle(UNLIMITED);
        for _ in 0..1000 {
            assert_eq!(throttle.acquire(1 << 30), Duration::ZERO);
        }
        assert_eq!(clock.slept(), Duration::ZERO);
        assert_eq!(throttle.throttled(), Duration::ZERO);
    }

    // Goal: a steady stream of acquires runs at the configured rate, neither faster nor (beyond one burst) slower.
    // Method: 1000 acquires of 64 KiB at 10 MB/s with no time passing between them except the sleeps.
    #[test]
    fn steady_stream_runs_at_the_rate() {
        let (clock, throttle) = throttle(10.0 * MB);
        let start = clock.now();
        let total = 1000 * 65_536u64;
        for _ in 0..1000 {
            throttle.acquire(65_536);
        }
        let elapsed = (clock.now() - start).as_secs_f64();
        let ideal = total as f64 / (10.0 * MB);
        assert!(elapsed <= ideal + 1e-6, "elapsed {elapsed} s, ideal {ideal} s");
        assert!(elapsed >= ideal - SLEEP_MIN.as_secs_f64(), "elapsed {elapsed} s, ideal {ideal} s");
        assert_eq!(throttle.throttled(), clock.slept());
        assert!(clock.sleeps.lock().iter().all(|&s| s >= SLEEP_MIN && s <= SLEEP_SLICE));
    }

    // Goal: small acquires whose individual debt is below the minimum sleep are not free: the debt is carried and
    // slept once it adds up. Method: 100-byte acquires at 1 MB/s cost 100 µs each; ten of them owe a millisecond.
    #[test]
    fn small_debts_add_up() {
        let (clock, throttle) = throttle(MB);
        for _ in 0..9 {
            assert_eq!(throttle.acquire(100), Duration::ZERO);
        }
        assert_eq!(throttle.acquire(100), Duration::from_millis(1));
        assert_eq!(clock.slept(), Duration::from_millis(1));
    }

    // Goal: idle time earns at most one burst of credit. Method: after a minute without I/O, 1 MB at 1 MB/s still
    // sleeps one second less the burst.
    #[test]
    fn idle_time_earns_at_most_one_burst() {
        let (clock, throttle) = throttle(MB);
        throttle.acquire(1);
        clock.advance(Duration::from_secs(60));
        let slept = throttle.acquire(1_000_000);
        let expected = Duration::from_secs(1) - BURST;
        assert!(slept.abs_diff(expected) < Duration::from_micros(10), "slept {slept:?}, expected {expected:?}");
    }

    // Goal: raising the rate while a caller sleeps off a large debt wakes it within one slice. Method: 100 MB at
    // 1 kB/s would sleep for more than a day; the clock raises the rate to unlimited during the first sleep.
    #[test]
    fn raising_the_rate_ends_a_long_sleep() {
        let clock = Arc::new(ManualClock::default());
        let throttle = Arc::new(Throttle::with_clock(1000.0, BURST, clock.clone()));
        clock.raise_on_first_sleep.set(Arc::downgrade(&throttle)).unwrap();
        let slept = throttle.acquire(100_000_000);
        assert_eq!(slept, SLEEP_SLICE);
        assert_eq!(throttle.rate(), UNLIMITED);
        assert_eq!(throttle.acquire(100_000_000), Duration::ZERO);
    }

    // Goal: lowering the rate applies to the next acquire, and setting the same rate again keeps the debt.
    #[test]
    fn lowering_the_rate_applies_to_the_next_acquire() {
        let (clock, throttle) = throttle(UNLIMITED);
        assert_eq!(throttle.acquire(1_000_000), Duration::ZERO);
        throttle.set_rate(MB);
        let slept = throttle.acquire(500_000);
        assert_eq!(slept, Duration::from_millis(500));
        throttle.set_rate(MB);
        assert_eq!(throttle.acquire(10_000), Duration::from_millis(10));
        assert_eq!(clock.slept(), Duration::from_millis(510));
    }

    #[test]
    #[should_panic(expected = "must be positive")]
    fn a_zero_rate_is_a_bug() {
        Throttle::new(0.0);
    }
}
