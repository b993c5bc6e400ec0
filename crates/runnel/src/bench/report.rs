//! What `runnel bench` measures and how it shows it: shared counters that the
//! client threads bump, HDR latency histograms, the live progress bar on
//! stderr and the final summary on stdout (text or one JSON object).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Largest latency a histogram tracks: longer ones are recorded as this value.
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant decimal digits the histograms keep (0.1% relative error).
const LATENCY_SIGFIG: u8 = 3;
/// How often the progress bar is refreshed and the current rate sampled.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// Counters updated from client threads and read by the progress bar.
#[derive(Default)]
pub struct Counters {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    pub fn add(&self, records: u64, bytes: u64) {
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a failed record and keeps the first error message for the report.
    pub fn fail(&self, error: impl FnOnce() -> String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().expect("first_error lock");
        if first.is_none() {
            *first = Some(error());
        }
    }

    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    pub fn first_error(&self) -> Option<String> {
        self.first_error.lock().expect("first_error lock").clone()
    }
}

/// A latency histogram in microseconds.
pub struct Latency(Histogram<u64>);

impl Latency {
    pub fn new() -> Latency {
        Latency(Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGFIG).expect("valid histogram bounds"))
    }

    pub fn record(&mut self, latency: Duration) {
        // Clamp to 1 µs: the histogram's lowest trackable value.
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(us);
    }

    pub fn merge(&mut self, other: &Latency) {
        self.0.add(&other.0).expect("histograms share bounds");
    }

    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.0.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            count: self.0.len(),
            p50: ms(self.0.value_at_quantile(0.50)),
            p90: ms(self.0.value_at_quantile(0.90)),
            p99: ms(self.0.value_at_quantile(0.99)),
            p999: ms(self.0.value_at_quantile(0.999)),
            max: ms(self.0.max()),
        })
    }
}

/// Latency percentiles in milliseconds.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// The result of one run, printed as text or JSON.
#[derive(Serialize, Debug)]
pub struct Summary {
    pub workload: &'static str,
    pub topic: String,
    pub partitions: usize,
    /// Records acknowledged (produce) or received (consume, e2e).
    pub records: u64,
    /// Key and value bytes of those records.
    pub bytes: u64,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    /// Megabytes per second, with MB = 10^6 bytes.
    pub mb_per_s: f64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Produce settings, for the record of what was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acks: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record_size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub producers: Option<usize>,
    /// Whether the producers were idempotent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// Records per transaction, for a transactional run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn_records: Option<u64>,
    /// Transactions committed, for a transactional run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<u64>,
    /// Records sent minus records received, for e2e.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<u64>,
    /// Send call to delivery report, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_latency_ms: Option<Percentiles>,
    /// When only one acknowledged record in this many went into
    /// `ack_latency_ms` (absent when every record did).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_latency_sample_every: Option<u64>,
    /// Send call to the consumer receiving the record, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_latency_ms: Option<Percentiles>,
    /// The commit call of each transaction, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_latency_ms: Option<Percentiles>,
}

impl Summary {
    pub fn new(workload: &'static str, topic: &str, partitions: usize, counters: &Counters, elapsed: Duration) -> Self {
        let records = counters.records();
        let bytes = counters.bytes();
        let secs = elapsed.as_secs_f64();
        let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        Summary {
            workload,
            topic: topic.to_string(),
            partitions,
            records,
            bytes,
            elapsed_s: secs,
            records_per_s: per_s(records),
            mb_per_s: per_s(bytes) / 1e6,
            errors: counters.errors(),
            first_error: counters.first_error(),
            acks: None,
            compression: None,
            record_size: None,
            producers: None,
            idempotent: None,
            txn_records: None,
            transactions: None,
            missing: None,
            ack_latency_ms: None,
            ack_latency_sample_every: None,
            e2e_latency_ms: None,
            commit_latency_ms: None,
        }
    }

    /// Notes that the ack latency covers one record in `every` (1: all of them).
    pub fn set_ack_latency_every(&mut self, every: u64) {
        self.ack_latency_sample_every = (every > 1).then_some(every);
    }

    /// Prints the summary to stdout as text or as one JSON line.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            serde_json::to_writer(&mut out, self)?;
            writeln!(out)?;
        } else {
            out.write_all(self.to_text().as_bytes())?;
        }
        out.flush()?;
        Ok(())
    }

    fn to_text(&self) -> String {
        let mut s = format!("{}  topic={} partitions={}", self.workload, self.topic, self.partitions);
        if let Some(acks) = self.acks {
            s += &format!(" acks={acks}");
        }
        if let Some(c) = self.compression {
            s += &format!(" compression={c}");
        }
        if let Some(size) = self.record_size {
            s += &format!(" record-size={size}");
        }
        if let Some(p) = self.producers {
            s += &format!(" producers={p}");
        }
        if self.idempotent == Some(true) {
            s += " idempotent";
        }
        if let Some(n) = self.txn_records {
            s += &format!(" txn-records={n}");
        }
        s += "\n";
        s += &format!("  records     {}\n", self.records);
        s += &format!("  bytes       {} ({:.2} MB, MB = 10^6 bytes)\n", self.bytes, self.bytes as f64 / 1e6);
        s += &format!("  elapsed     {:.3} s\n", self.elapsed_s);
        s += &format!("  throughput  {:.0} records/s, {:.2} MB/s\n", self.records_per_s, self.mb_per_s);
        s += &format!("  errors      {}\n", self.errors);
        if let Some(e) = &self.first_error {
            s += &format!("  first error {e}\n");
        }
        if let Some(m) = self.missing {
            s += &format!("  missing     {m}\n");
        }
        if let Some(t) = self.transactions {
            s += &format!("  committed   {t} transactions\n");
        }
        if let Some(p) = &self.ack_latency_ms {
            s += &format_latency("ack latency", p, self.ack_latency_sample_every);
        }
        if let Some(p) = &self.e2e_latency_ms {
            s += &format_latency("e2e latency", p, None);
        }
        if let Some(p) = &self.commit_latency_ms {
            s += &format_latency("commit latency", p, None);
        }
        s
    }
}

/// One line of percentiles; `sample_every` says when the samples are one
/// record in that many.
fn format_latency(label: &str, p: &Percentiles, sample_every: Option<u64>) -> String {
    let sampled = sample_every.map_or_else(String::new, |n| format!(", 1 in {n} records"));
    format!(
        "  {label} ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  ({} samples{sampled})\n",
        p.p50, p.p90, p.p99, p.p999, p.max, p.count
    )
}

/// The live progress bar on stderr, with the rate over the last interval.
pub struct Progress {
    bar: ProgressBar,
    last: Instant,
    last_records: u64,
    last_bytes: u64,
    total: Option<Duration>,
    start: Instant,
}

impl Progress {
    /// A bar of `count` records, or of `duration` when the run is timed.
    /// Hidden when `quiet` or when stderr is not a terminal.
    pub fn new(label: &str, count: Option<u64>, duration: Option<Duration>, quiet: bool) -> Progress {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let (len, template) = match (count, duration) {
                (Some(n), _) => (n, "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} records  {msg}"),
                (None, Some(d)) => (d.as_millis() as u64, "{prefix} [{elapsed_precise}] {wide_bar} {msg}"),
                (None, None) => (0, "{prefix} [{elapsed_precise}] {spinner} {msg}"),
            };
            let style = ProgressStyle::with_template(template).expect("valid progress template");
            let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr()).with_style(style);
            bar.set_prefix(label.to_string());
            bar
        };
        let now = Instant::now();
        Progress { bar, last: now, last_records: 0, last_bytes: 0, total: duration, start: now }
    }

    /// Redraws with the counters' values, at most once per `PROGRESS_INTERVAL`.
    pub fn update(&mut self, counters: &Counters) {
        let now = Instant::now();
        let dt = now.duration_since(self.last);
        if dt < PROGRESS_INTERVAL || self.bar.is_hidden() {
            return;
        }
        let records = counters.records();
        let bytes = counters.bytes();
        let secs = dt.as_secs_f64();
        let rate = (records - self.last_records) as f64 / secs;
        let mbps = (bytes - self.last_bytes) as f64 / secs / 1e6;
        let errors = counters.errors();
        let mut msg = format!("{rate:.0} rec/s {mbps:.1} MB/s");
        if errors > 0 {
            msg += &format!("  errors {errors}");
        }
        match self.total {
            Some(total) => {
                let pos = now.duration_since(self.start).min(total);
                self.bar.set_position(pos.as_millis() as u64);
                msg = format!("{records} records  {msg}");
            }
            None => self.bar.set_position(records),
        }
        self.bar.set_message(msg);
        self.last = now;
        self.last_records = records;
        self.last_bytes = bytes;
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered_and_in_milliseconds() {
        let mut latency = Latency::new();
        for us in 1..=10_000u64 {
            latency.record(Duration::from_micros(us));
        }
        let p = latency.percentiles().unwrap();
        assert_eq!(p.count, 10_000);
        assert!((p.p50 - 5.0).abs() < 0.05, "{p:?}");
        assert!(p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max, "{p:?}");
        assert!((p.max - 10.0).abs() < 0.02, "{p:?}");
    }

    #[test]
    fn empty_histogram_has_no_percentiles_and_zero_latency_counts_as_one_microsecond() {
        let mut latency = Latency::new();
        assert!(latency.percentiles().is_none());
        latency.record(Duration::ZERO);
        assert_eq!(latency.percentiles().unwrap().max, 0.001);
    }

    #[test]
    fn summary_rates_use_decimal_megabytes_and_keep_the_first_error() {
        let counters = Counters::default();
        counters.add(1000, 2_000_000);
        counters.fail(|| "first".into());
        counters.fail(|| "second".into());
        let summary = Summary::new("produce", "t", 1, &counters, Duration::from_secs(2));
        assert_eq!(summary.records_per_s, 500.0);
        assert_eq!(summary.mb_per_s, 1.0);
        assert_eq!(summary.errors, 2);
        assert_eq!(summary.first_error.as_deref(), Some("first"));
        let json: serde_json::Value = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["records"], 1000);
        assert!(json.get("e2e_latency_ms").is_none());
        assert!(json.get("ack_latency_sample_every").is_none());
    }

    #[test]
    fn sampled_ack_latency_says_so_in_text_and_json() {
        let mut latency = Latency::new();
        latency.record(Duration::from_millis(2));
        let mut summary = Summary::new("produce", "t", 1, &Counters::default(), Duration::from_secs(1));
        summary.ack_latency_ms = latency.percentiles();
        summary.set_ack_latency_every(1);
        assert!(summary.to_text().contains("(1 samples)"), "{}", summary.to_text());
        summary.set_ack_latency_every(8);
        assert!(summary.to_text().contains("(1 samples, 1 in 8 records)"), "{}", summary.to_text());
        let json: serde_json::Value = serde_json::to_value(&summary).unwrap();
        assert_eq!(json["ack_latency_sample_every"], 8);
    }
}
