//! `runnel bench e2e`: end-to-end latency, from the producer's send call to
//! a consumer in the same process receiving the record.
//!
//! Each record's first 16 bytes carry its send time (nanoseconds since an
//! `Instant` both sides share, little-endian) and a random id of this run, so
//! records from other writers to the topic are ignored. The consumer is
//! positioned at each partition's high watermark before the first send, so
//! it sees every record of the run and nothing older.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use rand::RngCore;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::produce::{self, nanos_since, BenchProducer, Pacer, Payloads, Transactions};
use super::report::{Counters, Latency, Progress, Summary, PROGRESS_INTERVAL};
use super::{check_reachable, ensure_topic, CommonArgs, Limit, ProducerTuning, REACH_TIMEOUT};

/// Bytes at the start of each value that carry the send time and run id.
const HEADER_BYTES: usize = 16;
/// How long the consumer may lag behind the last acknowledgement at the end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one consumer poll waits before checking whether to stop.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);
/// A run with neither --count nor --duration lasts this long.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// How long a sender waits when librdkafka's local queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(1);

/// Measure end-to-end latency: send call to a consumer receiving the record.
///
/// A producer sends at a fixed --rate while a consumer in the same process
/// reads the topic from its end. Each value starts with its send time, so the
/// consumer records the latency of every record in an HDR histogram; the
/// acknowledgement latency is recorded too. Keep the rate below the broker's
/// capacity, or queueing dominates what is measured. Runs for 10 s unless
/// --count or --duration says otherwise. Fails when a record is lost.
/// With --read-committed the consumer reads only committed records; with
/// --transactional-id the producer sends in transactions, so a record's
/// latency includes the wait for its transaction's commit.
///
/// Examples:
///   runnel bench e2e
///   runnel bench e2e --rate 5000 --duration 60 --acks 1 --json
///   runnel bench e2e --rate 200 --record-size 100 -X fetch.wait.max.ms=10
///   runnel bench e2e --read-committed --transactional-id e2e --txn-records 100
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct E2eArgs {
    /// Topic to write and read.
    #[arg(long, default_value = "runnel-bench-e2e")]
    pub topic: String,
    /// Records per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: u64,
    /// Bytes of value per record (at least 16: the send time and run id).
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Stop after this many records have been sent.
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Stop sending after this many seconds (default 10 when --count is not given).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// How long librdkafka waits to fill a batch (librdkafka: linger.ms).
    #[arg(long, default_value_t = 0)]
    pub linger_ms: u64,
    /// The consumer reads only committed records (librdkafka: isolation.level=read_committed).
    #[arg(long)]
    pub read_committed: bool,
    #[command(flatten)]
    pub tuning: ProducerTuning,
}

pub fn run(common: &CommonArgs, args: &E2eArgs) -> anyhow::Result<()> {
    if args.record_size < HEADER_BYTES {
        bail!("--record-size must be at least {HEADER_BYTES} for e2e, got {}", args.record_size);
    }
    let limit = Limit::from_args(args.count, args.duration, Limit::Duration(DEFAULT_DURATION))?;
    let isolation = if args.read_committed { "read_committed" } else { "read_uncommitted" };
    let consumer = common
        .consumer(&[("client.id", "runnel-bench-e2e".to_string()), ("isolation.level", isolation.to_string())])?;
    check_reachable(&consumer, common)?;
    let partitions = ensure_topic(common, &consumer, &args.topic, args.tuning.partitions)?;
    assign_at_end(&consumer, &args.topic, &partitions)?;

    let epoch = Instant::now();
    let run_id = rand::thread_rng().next_u64();
    let acked = Arc::new(Counters::default());
    let received = Counters::default();
    let config = produce::producer_config(common, &args.tuning, args.linger_ms);
    let latency_every = produce::latency_every(args.rate);
    let producer = produce::create_producer(&config, &args.tuning, 0, &acked, latency_every)?;
    let stop = AtomicBool::new(false);
    let payloads = Payloads::new(args.record_size, &config);

    let (count, duration) = match limit {
        Limit::Count(c) => (Some(c), None),
        Limit::Duration(d) => (None, Some(d)),
    };
    let mut progress = Progress::new("e2e", count, duration, common.quiet);
    let start = Instant::now();
    let sender = Sender { producer: &producer, topic: &args.topic, run_id, epoch, acked: &acked, payloads: &payloads };
    let txn = Transactions::from_tuning(&args.tuning);
    let (e2e_latency, last_received, txn) = std::thread::scope(|scope| {
        let reader = scope.spawn(|| read_loop(&consumer, run_id, epoch, &received, &stop));
        let send = scope.spawn(|| sender.run(args.rate, start, count, duration.map(|d| start + d), txn));
        while !send.is_finished() {
            progress.update(&received);
            std::thread::sleep(PROGRESS_INTERVAL / 5);
        }
        let txn = send.join().expect("sender thread");
        // Every acknowledged record should arrive; give the consumer a while.
        let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
        while received.records() < acked.records() && Instant::now() < drain_deadline {
            progress.update(&received);
            std::thread::sleep(PROGRESS_INTERVAL / 5);
        }
        stop.store(true, Ordering::Relaxed);
        let (latency, last) = reader.join().expect("reader thread");
        (latency, last, txn)
    });
    progress.finish();

    let elapsed = last_received.map_or_else(|| start.elapsed(), |t| t - start);
    let mut summary = Summary::new("e2e", &args.topic, partitions.len(), &received, elapsed);
    summary.errors += acked.errors();
    summary.first_error = summary.first_error.or_else(|| acked.first_error());
    summary.acks = Some(args.tuning.acks.as_str());
    summary.compression = Some(args.tuning.compression.as_str());
    summary.record_size = Some(args.record_size);
    summary.missing = Some(acked.records().saturating_sub(received.records()));
    summary.ack_latency_ms = producer.context().take_latency().percentiles();
    summary.set_ack_latency_every(latency_every);
    summary.e2e_latency_ms = e2e_latency.percentiles();
    summary.idempotent = Some(args.tuning.idempotent || args.tuning.transactional_id.is_some());
    Transactions::report(txn.into_iter().collect(), &args.tuning, &mut summary);
    summary.print(common.json)?;
    produce::fail_on_errors(&summary)?;
    if let Some(missing) = summary.missing.filter(|&m| m > 0) {
        bail!("{missing} acknowledged records did not reach the consumer within {} s", DRAIN_TIMEOUT.as_secs());
    }
    Ok(())
}

/// Assigns every partition at its current high watermark, so the consumer
/// sees exactly the records sent from now on.
fn assign_at_end(consumer: &BaseConsumer, topic: &str, partitions: &[i32]) -> anyhow::Result<()> {
    let mut assignment = TopicPartitionList::new();
    for &p in partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, REACH_TIMEOUT)?;
        assignment.add_partition_offset(topic, p, Offset::Offset(high))?;
    }
    consumer.assign(&assignment)?;
    Ok(())
}

struct Sender<'a> {
    producer: &'a BenchProducer,
    topic: &'a str,
    run_id: u64,
    epoch: Instant,
    acked: &'a Counters,
    payloads: &'a Payloads,
}

impl Sender<'_> {
    /// Sends at the fixed rate until the count or deadline, then commits the
    /// open transaction, if any, and flushes.
    fn run(
        &self,
        rate: u64,
        start: Instant,
        count: Option<u64>,
        deadline: Option<Instant>,
        mut txn: Option<Transactions>,
    ) -> Option<Transactions> {
        let mut value = self.payloads.get(0).to_vec();
        let pacer = Pacer::new(rate as f64, start);
        let mut sent = 0u64;
        loop {
            if count.is_some_and(|n| sent >= n) || deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            pacer.wait(sent);
            value.copy_from_slice(self.payloads.get(sent));
            if txn.as_mut().is_some_and(|t| !t.before_send(self.producer, self.acked)) {
                break;
            }
            if !self.send(&mut value, deadline) {
                break;
            }
            if let Some(t) = txn.as_mut() {
                t.after_send(self.producer, self.acked);
            }
            sent += 1;
        }
        if let Some(t) = txn.as_mut() {
            t.finish(self.producer, self.acked);
        }
        produce::flush(self.producer, self.acked);
        txn
    }

    /// Stamps `value` with the send time and run id and sends it; waits while
    /// the local queue is full. Returns false when the deadline passed.
    fn send(&self, value: &mut [u8], deadline: Option<Instant>) -> bool {
        value[8..16].copy_from_slice(&self.run_id.to_le_bytes());
        loop {
            let sent_at = nanos_since(self.epoch);
            value[..8].copy_from_slice(&sent_at.to_le_bytes());
            let record = BaseRecord::<(), [u8]>::to(self.topic).payload(&*value);
            match self.producer.send(record) {
                Ok(()) => return true,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return false;
                    }
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
                }
                Err((error, _)) => {
                    self.acked.fail(|| format!("send: {error}"));
                    return true;
                }
            }
        }
    }
}

/// Reads until `stop`, recording the latency of each record of this run.
/// Returns the histogram and when the last record arrived.
fn read_loop(
    consumer: &BaseConsumer,
    run_id: u64,
    epoch: Instant,
    received: &Counters,
    stop: &AtomicBool,
) -> (Latency, Option<Instant>) {
    let mut latency = Latency::new();
    let mut last = None;
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(POLL_TIMEOUT) {
            None => {}
            Some(Ok(message)) => {
                let now = nanos_since(epoch);
                let Some(sent_at) = message.payload().and_then(|v| parse_header(v, run_id)) else { continue };
                latency.record(Duration::from_nanos(now.saturating_sub(sent_at)));
                received.add(1, (message.payload_len() + message.key_len()) as u64);
                last = Some(Instant::now());
            }
            Some(Err(error)) => received.fail(|| format!("consume: {error}")),
        }
    }
    (latency, last)
}

/// The send time in a value written by run `run_id`, or `None` for a value
/// from another writer.
fn parse_header(value: &[u8], run_id: u64) -> Option<u64> {
    let header = value.get(..HEADER_BYTES)?;
    let (sent_at, id) = header.split_at(8);
    if u64::from_le_bytes(id.try_into().ok()?) != run_id {
        return None;
    }
    Some(u64::from_le_bytes(sent_at.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_other_runs_are_ignored() {
        let mut value = vec![7u8; 32];
        value[..8].copy_from_slice(&123_456u64.to_le_bytes());
        value[8..16].copy_from_slice(&42u64.to_le_bytes());
        assert_eq!(parse_header(&value, 42), Some(123_456));
        assert_eq!(parse_header(&value, 43), None);
        assert_eq!(parse_header(&value[..10], 42), None);
    }
}
