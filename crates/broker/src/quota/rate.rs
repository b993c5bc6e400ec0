//! A rate measured the way Kafka's quota sensors measure it, and Kafka's
//! throttle time for a rate over its bound.
//!
//! The rate keeps `quota.window.num` samples, each covering
//! `quota.window.size.seconds`. A value goes into the current sample; a
//! sample is finished once its window has passed, and samples older than
//! all the windows together are forgotten. The rate is the sum of the kept
//! samples over the time they cover, counted as at least `samples - 1` whole
//! windows, so a client's first burst is spread over the full span instead
//! of looking like an infinite rate (Kafka's `Rate.windowSize`).
//!
//! A client over its bound is throttled for `(rate - bound) / bound * span`:
//! the time after which, sending nothing, its rate over the span would be
//! back at the bound (Kafka's `QuotaUtils.throttleTime`).

/// Times are milliseconds on a monotonic clock the caller chooses.
pub type Millis = u64;

/// `quota.window.num` and `quota.window.size.seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    pub samples: usize,
    pub window_ms: Millis,
}

impl Windows {
    /// The longest a client is throttled for at once: all the windows.
    pub fn throttle_max_ms(&self) -> Millis {
        self.window_ms * self.samples as u64
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    start: Millis,
    value: f64,
}

/// A rate over sampled windows.
#[derive(Clone, Debug)]
pub struct Rate {
    windows: Windows,
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    pub fn new(windows: Windows, now: Millis) -> Rate {
        assert!(windows.samples >= 2 && windows.window_ms > 0, "quota windows are validated by the config");
        let mut samples = vec![Sample::default(); windows.samples];
        samples[0].start = now;
        Rate { windows, samples, current: 0 }
    }

    /// Adds `value` at `now` (negative to take back a recorded value).
    pub fn record(&mut self, value: f64, now: Millis) {
        if now.saturating_sub(self.samples[self.current].start) >= self.windows.window_ms {
            self.current = (self.current + 1) % self.samples.len();
            self.samples[self.current] = Sample { start: now, value: 0.0 };
        }
        self.samples[self.current].value += value;
    }

    /// The rate per second at `now`.
    pub fn measure(&mut self, now: Millis) -> f64 {
        let span = self.span_ms(now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (span as f64 / 1000.0)
    }

    /// Forgets samples that ended before the whole span, then returns the
    /// time the kept samples cover, at least `samples - 1` windows (Kafka's
    /// `Rate.windowSize`), and at least 1 ms.
    pub fn span_ms(&mut self, now: Millis) -> Millis {
        let expire_age = self.windows.window_ms * self.samples.len() as u64;
        for sample in &mut self.samples {
            if now.saturating_sub(sample.start) >= expire_age {
                *sample = Sample { start: now, value: 0.0 };
            }
        }
        let oldest = self.samples.iter().map(|s| s.start).min().unwrap_or(now);
        let mut elapsed = now.saturating_sub(oldest);
        let full_windows = elapsed / self.windows.window_ms;
        let min_full_windows = self.samples.len() as u64 - 1;
        if full_windows < min_full_windows {
            elapsed += (min_full_windows - full_windows) * self.windows.window_ms;
        }
        elapsed.max(1)
    }

    /// The throttle time for a client at `now` under `bound`: zero within the
    /// bound, else Kafka's formula, at most [`Windows::throttle_max_ms`].
    pub fn throttle_ms(&mut self, bound: f64, now: Millis) -> Millis {
        let rate = self.measure(now);
        if rate <= bound {
            return 0;
        }
        throttle_time_ms(rate, bound, self.span_ms(now)).min(self.windows.throttle_max_ms())
    }
}

/// `(rate - bound) / bound * span`, rounded: how long a client at `rate`
/// must send nothing for its rate over `span_ms` to come back to `bound`.
pub fn throttle_time_ms(rate: f64, bound: f64, span_ms: Millis) -> Millis {
    if rate <= bound || bound <= 0.0 {
        return 0;
    }
    ((rate - bound) / bound * span_ms as f64).round() as Millis
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Windows = Windows { samples: 11, window_ms: 1000 };

    // Goal: the formula is Kafka's: twice the bound over a 10 s span throttles for 10 s; at or under it, not at all.
    #[test]
    fn throttle_time_follows_kafkas_formula() {
        assert_eq!(throttle_time_ms(2000.0, 1000.0, 10_000), 10_000);
        assert_eq!(throttle_time_ms(1100.0, 1000.0, 10_000), 1000);
        assert_eq!(throttle_time_ms(1000.0, 1000.0, 10_000), 0);
        assert_eq!(throttle_time_ms(10.0, 1000.0, 10_000), 0);
    }

    // Goal: a first burst counts over at least samples-1 windows (10 s), not over the few ms since it started.
    #[test]
    fn a_first_burst_is_spread_over_the_minimum_span() {
        let mut rate = Rate::new(W, 0);
        rate.record(10_000.0, 0);
        assert_eq!(rate.span_ms(0), 10_000);
        assert!((rate.measure(0) - 1000.0).abs() < 1e-9);
        assert_eq!(rate.throttle_ms(1000.0, 0), 0);
        rate.record(10_000.0, 500);
        // 20 000 over 10.5 s: 1904.8/s against 1000/s.
        let t = rate.throttle_ms(1000.0, 500);
        assert_eq!(t, ((20_000.0 / 10.5 - 1000.0) / 1000.0 * 10_500.0f64).round() as u64);
    }

    // Goal: samples older than all the windows are forgotten, so an idle client's rate falls to zero.
    #[test]
    fn old_samples_expire() {
        let mut rate = Rate::new(W, 0);
        rate.record(5_000.0, 0);
        rate.record(5_000.0, 3_000);
        assert!(rate.measure(3_000) > 0.0);
        assert!(rate.measure(12_000) > 0.0, "the sample at 3 s is still within 11 windows");
        assert_eq!(rate.measure(14_001), 0.0);
    }

    // Goal: a client sending steadily at the bound is never throttled, and one at 1.5x is throttled about
    // long enough to bring it back: with the throttle obeyed, its long-run rate is the bound.
    #[test]
    fn obeying_the_throttle_keeps_a_client_at_its_bound() {
        let bound = 1_000_000.0;
        let mut rate = Rate::new(W, 0);
        let mut now = 0;
        let mut sent = 0.0;
        // A client that sends 100 KB every 10 ms (10 MB/s) unless throttled.
        while now < 60_000 {
            rate.record(100_000.0, now);
            sent += 100_000.0;
            let throttle = rate.throttle_ms(bound, now);
            now += 10 + throttle;
        }
        let achieved = sent / (now as f64 / 1000.0);
        assert!((achieved - bound).abs() / bound < 0.10, "achieved {achieved}");
    }

    // Goal: taking a value back (an unrecorded throttled fetch) lowers the rate again.
    #[test]
    fn negative_records_take_values_back() {
        let mut rate = Rate::new(W, 0);
        rate.record(50_000.0, 100);
        rate.record(-50_000.0, 100);
        assert_eq!(rate.measure(100), 0.0);
    }

    // Goal: the throttle is bounded by the whole span of windows.
    #[test]
    fn throttle_is_bounded() {
        let mut rate = Rate::new(W, 0);
        rate.record(1e12, 0);
        assert_eq!(rate.throttle_ms(1.0, 0), 11_000);
    }
}
