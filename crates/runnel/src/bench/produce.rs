//! `runnel bench produce`: producer throughput and acknowledgement latency.
//!
//! Each producer is a librdkafka `ThreadedProducer` fed by a thread of its
//! own. Records carry no per-record future: a delivery callback on the
//! producer's poll thread counts acknowledged records and bytes and records
//! the time from the send call to the acknowledgement, as librdkafka measures
//! it. This is also the producer half of `runnel bench e2e`.
//!
//! The generator shares the machine with the broker it measures, so every
//! CPU cycle it spends per record is taken from the broker. A send therefore
//! goes through a topic handle resolved once per producer (no topic name to
//! copy and look up per record), and the value is not copied: librdkafka
//! points at the payload pool, which lives until the process ends. A run
//! that sends as fast as it can reads the clock for one acknowledged record
//! in `LATENCY_SAMPLE_EVERY` only, and the summary says so.
//!
//! With `--transactional-id` each producer sends its records in transactions
//! of `--txn-records` records: begin, send, commit (which waits for every
//! record of the transaction to be acknowledged), and the commit call's time
//! goes into a histogram of its own.

use std::ffi::{c_void, CString};
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use rand::RngCore;
use rdkafka::bindings as rdsys;
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::{RDKafkaErrorCode, RDKafkaTopic};

use super::report::{Counters, Latency, Progress, Summary, PROGRESS_INTERVAL};
use super::{check_reachable, ensure_topic, CommonArgs, Limit, ProducerTuning};

/// How long librdkafka may try to deliver one record before reporting failure
/// (librdkafka: message.timeout.ms; its own default is 300 s).
const MESSAGE_TIMEOUT_MS: u64 = 30_000;
/// How long the final flush may wait for outstanding acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(MESSAGE_TIMEOUT_MS + 30_000);
/// Bytes of pre-generated random payload that records are cut from when they
/// are compressed. Records in one batch (at most 1 MB by default) never share
/// bytes, so a compressor finds no repeats across them.
const PAYLOAD_POOL_BYTES: usize = 8 << 20;
/// The pool for uncompressed records: nothing looks for repeats, so it is
/// small enough to stay in the CPU cache while librdkafka copies records into
/// requests, as a single reused buffer would.
const PAYLOAD_POOL_BYTES_UNCOMPRESSED: usize = 64 << 10;
/// How long a sender waits when librdkafka's local queue is full. Its
/// default bound of 100,000 records lasts far longer at any rate this
/// generator reaches, and each wake-up costs a context switch.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);
/// An unpaced sender looks at the clock for its deadline once per this many
/// records (a paced one before every record).
const DEADLINE_CHECK_EVERY: u64 = 64;
/// librdkafka's partition number for "let the partitioner choose" (RD_KAFKA_PARTITION_UA).
const PARTITION_UNASSIGNED: i32 = -1;
/// librdkafka message flags for a send that neither copies nor frees the value.
const MSG_FLAGS_NO_COPY: i32 = 0;
/// In a run without --rate, the ack latency of one record in this many is recorded.
const LATENCY_SAMPLE_EVERY: u64 = 8;
/// Acknowledged records a producer adds up before it updates the shared counters.
const PUBLISH_EVERY: u64 = 1024;
/// A run with neither --count nor --duration lasts this long.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// How long initialising, committing or aborting a transaction may take.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a commit or the final flush checks whether every record is acknowledged.
const ACK_WAIT_INTERVAL: Duration = Duration::from_micros(200);

/// Measure producer throughput and acknowledgement latency.
///
/// Sends records of random bytes (so compression is not flattered) with no
/// key, spread over the topic's partitions by librdkafka's sticky
/// partitioner. Creates the topic with --partitions partitions when it does
/// not exist. Counts a record when its acknowledgement arrives; the time from
/// the send call to that acknowledgement goes into a latency histogram, for
/// every record with --rate and for one in 8 without (the summary says so),
/// so that the generator leaves the broker as much CPU as it can.
/// Runs for 10 s unless --count or --duration says otherwise. With
/// --transactional-id the records go in transactions of --txn-records records.
///
/// Examples:
///   runnel bench produce --topic load --count 1000000 --acks 1
///   runnel bench produce --topic load --duration 30 --producers 2 --compression lz4
///   runnel bench produce --topic paced --duration 60 --rate 5000 -X linger.ms=0
///   runnel bench produce --topic load --idempotent
///   runnel bench produce --topic load --transactional-id bench --txn-records 10000
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ProduceArgs {
    /// Topic to write to.
    #[arg(long, default_value = "runnel-bench")]
    pub topic: String,
    /// Bytes of value per record.
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Give records keys, cycling through this many distinct ones (`key-0000000000`, ...), so that each key is
    /// updated again and again, as a compacted topic expects; 0 sends records without keys.
    #[arg(long, default_value_t = 0)]
    pub keys: u64,
    /// Stop after this many records have been sent.
    #[arg(long, conflicts_with = "duration")]
    pub count: Option<u64>,
    /// Stop sending after this many seconds (default 10 when --count is not given).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Records per second over all producers; 0 sends as fast as the client can.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Independent producer instances, each with its own thread and connections;
    /// use more than one when a single client cannot saturate the broker.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub producers: u64,
    /// How long librdkafka waits to fill a batch (librdkafka: linger.ms).
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    #[command(flatten)]
    pub tuning: ProducerTuning,
}

/// Counts acknowledgements and their latency for one producer.
///
/// The latency of a record is librdkafka's own: from the send call, whose
/// time librdkafka takes anyway, to the delivery report. Reading the clock
/// costs more than the rest of the callback, so a run that sends as fast as
/// it can records the latency of every `latency_every`-th acknowledged record
/// only. Acknowledged records and bytes are added up here and handed to the
/// shared counters every `PUBLISH_EVERY` records and on
/// [`DeliveryContext::publish`], so the producers' poll threads do not all
/// write one cache line per record.
pub struct DeliveryContext {
    counters: Arc<Counters>,
    latency_every: u64,
    acked: Mutex<Acked>,
}

/// What a producer's delivery callback has seen.
struct Acked {
    latency: Latency,
    /// Acknowledged records since the start, for sampling.
    seen: u64,
    /// Records and bytes not yet added to the shared counters.
    records: u64,
    bytes: u64,
}

impl DeliveryContext {
    pub fn new(counters: Arc<Counters>, latency_every: u64) -> DeliveryContext {
        let acked = Acked { latency: Latency::new(), seen: 0, records: 0, bytes: 0 };
        DeliveryContext { counters, latency_every: latency_every.max(1), acked: Mutex::new(acked) }
    }

    /// Adds the records and bytes not yet counted to the shared counters.
    pub fn publish(&self) {
        let mut acked = self.acked.lock().expect("acked lock");
        self.counters.add(acked.records, acked.bytes);
        acked.records = 0;
        acked.bytes = 0;
    }

    pub fn take_latency(&self) -> Latency {
        std::mem::replace(&mut self.acked.lock().expect("acked lock").latency, Latency::new())
    }
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let mut acked = self.acked.lock().expect("acked lock");
                if acked.seen.is_multiple_of(self.latency_every) {
                    if let Some(latency) = latency_since_send(message) {
                        acked.latency.record(latency);
                    }
                }
                acked.seen += 1;
                acked.records += 1;
                acked.bytes += (message.payload_len() + message.key_len()) as u64;
                if acked.records >= PUBLISH_EVERY {
                    self.counters.add(acked.records, acked.bytes);
                    acked.records = 0;
                    acked.bytes = 0;
                }
            }
            Err((error, message)) => {
                self.counters.fail(|| format!("partition {}: {error}", message.partition()));
            }
        }
    }
}

/// Which acknowledged records get their latency recorded: every one in a
/// paced run, one in `LATENCY_SAMPLE_EVERY` in a run that sends as fast as it
/// can (where librdkafka's queue, not the broker, makes most of the latency).
pub fn latency_every(rate: u64) -> u64 {
    if rate == 0 {
        LATENCY_SAMPLE_EVERY
    } else {
        1
    }
}

/// How long ago the record was handed to librdkafka, by librdkafka's clock;
/// `None` when librdkafka does not know.
fn latency_since_send(message: &BorrowedMessage<'_>) -> Option<Duration> {
    // SAFETY: the message is a live delivery report borrowed for this call;
    // the function only reads its enqueue time and the clock.
    let us = unsafe { rdsys::rd_kafka_message_latency(message.ptr()) };
    u64::try_from(us).ok().map(Duration::from_micros)
}

/// Nanoseconds since `epoch`; 2^64 ns is 584 years, so this never wraps.
pub fn nanos_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

pub type BenchProducer = ThreadedProducer<DeliveryContext>;

/// Producer settings: the benchmark's defaults, then the flags, then `-X`.
pub fn producer_config(common: &CommonArgs, tuning: &ProducerTuning, linger_ms: u64) -> ClientConfig {
    let mut settings = vec![
        ("client.id", "runnel-bench".to_string()),
        // Off unless asked for, so runs stay comparable with earlier ones (librdkafka turns it on itself for a
        // transactional producer).
        ("enable.idempotence", (tuning.idempotent || tuning.transactional_id.is_some()).to_string()),
        ("message.timeout.ms", MESSAGE_TIMEOUT_MS.to_string()),
        ("acks", tuning.acks.as_str().to_string()),
        ("compression.codec", tuning.compression.as_str().to_string()),
        ("linger.ms", linger_ms.to_string()),
    ];
    if let Some(bytes) = tuning.batch_size {
        settings.push(("batch.size", bytes.to_string()));
    }
    common.client_config(&settings)
}

/// Producer number `index`, recording the latency of every `latency_every`-th
/// acknowledged record: with `--transactional-id`, its transactional id is
/// `PREFIX-index` and its transactions are initialised.
pub fn create_producer(
    config: &ClientConfig,
    tuning: &ProducerTuning,
    index: u64,
    counters: &Arc<Counters>,
    latency_every: u64,
) -> anyhow::Result<BenchProducer> {
    let context = DeliveryContext::new(Arc::clone(counters), latency_every);
    let mut config = config.clone();
    if let Some(prefix) = &tuning.transactional_id {
        config.set("transactional.id", format!("{prefix}-{index}"));
    }
    let producer: BenchProducer =
        ThreadedProducer::from_config_and_context(&config, context).context("cannot create the producer")?;
    if tuning.transactional_id.is_some() {
        producer.init_transactions(TXN_TIMEOUT).context("cannot initialise transactions")?;
    }
    Ok(producer)
}

/// A producer's transactions of a fixed number of records, for `--transactional-id`.
pub struct Transactions {
    records_per_txn: u64,
    /// Records sent in the open transaction; 0 when none is open.
    open: u64,
    committed: u64,
    commit_latency: Latency,
}

impl Transactions {
    /// `None` unless the run is transactional.
    pub fn from_tuning(tuning: &ProducerTuning) -> Option<Transactions> {
        tuning.transactional_id.as_ref().map(|_| Transactions {
            records_per_txn: tuning.txn_records,
            open: 0,
            committed: 0,
            commit_latency: Latency::new(),
        })
    }

    /// Begins a transaction unless one is open; false when that fails.
    pub fn before_send(&mut self, producer: &BenchProducer, counters: &Counters) -> bool {
        if self.open > 0 {
            return true;
        }
        match producer.begin_transaction() {
            Ok(()) => true,
            Err(error) => {
                counters.fail(|| format!("begin transaction: {error}"));
                false
            }
        }
    }

    /// Counts a sent record; commits when the transaction is full.
    pub fn after_send(&mut self, producer: &BenchProducer, counters: &Counters) {
        self.open += 1;
        if self.open >= self.records_per_txn {
            self.commit(producer, counters);
        }
    }

    /// Commits the open transaction, if any. A failed commit counts as an
    /// error and the transaction is aborted.
    pub fn finish(&mut self, producer: &BenchProducer, counters: &Counters) {
        if self.open > 0 {
            self.commit(producer, counters);
        }
    }

    fn commit(&mut self, producer: &BenchProducer, counters: &Counters) {
        let started = Instant::now();
        // rust-rdkafka's commit first flushes, which would add up to 100 ms to every commit (see `wait_for_acks`).
        wait_for_acks(producer, TXN_TIMEOUT);
        match producer.commit_transaction(TXN_TIMEOUT) {
            Ok(()) => {
                self.commit_latency.record(started.elapsed());
                self.committed += 1;
            }
            Err(error) => {
                counters.fail(|| format!("commit transaction: {error}"));
                if let Err(error) = producer.abort_transaction(TXN_TIMEOUT) {
                    counters.fail(|| format!("abort transaction: {error}"));
                }
            }
        }
        self.open = 0;
    }

    /// Adds this producer's committed transactions and commit latencies to the summary.
    pub fn report(done: Vec<Transactions>, tuning: &ProducerTuning, summary: &mut Summary) {
        if tuning.transactional_id.is_none() {
            return;
        }
        let mut latency = Latency::new();
        let mut committed = 0;
        for t in &done {
            latency.merge(&t.commit_latency);
            committed += t.committed;
        }
        summary.txn_records = Some(tuning.txn_records);
        summary.transactions = Some(committed);
        summary.commit_latency_ms = latency.percentiles();
    }
}

/// Pre-generated random record values.
pub struct Payloads {
    pool: Vec<u8>,
    size: usize,
    slots: usize,
}

impl Payloads {
    /// Values of `size` bytes for a producer configured by `config`; the pool
    /// is large only when the records are compressed.
    pub fn new(size: usize, config: &ClientConfig) -> Payloads {
        let compressed = ["compression.codec", "compression.type"]
            .iter()
            .filter_map(|key| config.get(key))
            .any(|codec| codec != "none");
        let pool_bytes = if compressed { PAYLOAD_POOL_BYTES } else { PAYLOAD_POOL_BYTES_UNCOMPRESSED };
        Payloads::with_pool_bytes(size, pool_bytes)
    }

    fn with_pool_bytes(size: usize, pool_bytes: usize) -> Payloads {
        let slots = (pool_bytes / size.max(1)).max(16);
        let mut pool = vec![0u8; size * slots];
        rand::thread_rng().fill_bytes(&mut pool);
        Payloads { pool, size, slots }
    }

    /// A pool that lives until the process ends, so that librdkafka may point
    /// at its bytes instead of copying them (see [`TopicSender::send`]).
    pub fn new_static(size: usize, config: &ClientConfig) -> &'static Payloads {
        Box::leak(Box::new(Payloads::new(size, config)))
    }

    /// The value of record number `i`; consecutive records use disjoint bytes.
    pub fn get(&self, i: u64) -> &[u8] {
        let start = (i % self.slots as u64) as usize * self.size;
        &self.pool[start..start + self.size]
    }
}

/// Spaces sends evenly at a fixed rate; sleeps only when at least a
/// millisecond ahead, so high rates send in short bursts instead of spinning.
pub struct Pacer {
    start: Instant,
    per_record: Option<Duration>,
}

impl Pacer {
    /// Paces records from `start` on; a rate of 0 does not pace at all.
    pub fn new(records_per_s: f64, start: Instant) -> Pacer {
        let per_record = (records_per_s > 0.0).then(|| Duration::from_secs_f64(1.0 / records_per_s));
        Pacer { start, per_record }
    }

    /// Waits until record number `n` (from 0) is due.
    pub fn wait(&self, n: u64) {
        let Some(per_record) = self.per_record else { return };
        let due = self.start + per_record.mul_f64(n as f64);
        let now = Instant::now();
        if due > now + Duration::from_millis(1) {
            std::thread::sleep(due - now);
        }
    }
}

/// One producer's sends to one topic, through a librdkafka topic handle
/// that is resolved once instead of per record by name.
pub struct TopicSender<'p> {
    topic: NonNull<RDKafkaTopic>,
    /// Borrowing the producer keeps the handle from outliving it.
    _producer: PhantomData<&'p BenchProducer>,
}

impl<'p> TopicSender<'p> {
    pub fn new(producer: &'p BenchProducer, topic: &str) -> anyhow::Result<TopicSender<'p>> {
        let name = CString::new(topic).with_context(|| format!("topic name {topic:?} contains a NUL byte"))?;
        // SAFETY: the producer's librdkafka handle is live for the call, which
        // copies the name; a null topic configuration means the defaults.
        let handle =
            unsafe { rdsys::rd_kafka_topic_new(producer.client().native_ptr(), name.as_ptr(), ptr::null_mut()) };
        let topic = NonNull::new(handle).ok_or_else(|| anyhow!("cannot use topic {topic}: {}", last_error()))?;
        Ok(TopicSender { topic, _producer: PhantomData })
    }

    /// Hands one record to librdkafka. The key is copied; the value is not,
    /// which is why it must live until the process ends.
    pub fn send(&self, key: Option<&[u8]>, value: &'static [u8]) -> Result<(), RDKafkaErrorCode> {
        let (key_ptr, key_len) = key.map_or((ptr::null(), 0), |k| (k.as_ptr().cast::<c_void>(), k.len()));
        // SAFETY: the topic handle is live (it is destroyed only on drop, and
        // borrows the producer). With no copy flag librdkafka keeps a pointer
        // to `value` until the record is delivered or purged and never writes
        // through it; `value` is 'static. The key is always copied.
        let result = unsafe {
            rdsys::rd_kafka_produce(
                self.topic.as_ptr(),
                PARTITION_UNASSIGNED,
                MSG_FLAGS_NO_COPY,
                value.as_ptr().cast_mut().cast::<c_void>(),
                value.len(),
                key_ptr,
                key_len,
                ptr::null_mut(),
            )
        };
        if result == 0 {
            Ok(())
        } else {
            Err(last_error())
        }
    }
}

impl Drop for TopicSender<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from rd_kafka_topic_new and is released once;
        // the producer it belongs to is still live (borrowed for 'p). Records
        // still queued hold references of their own.
        unsafe { rdsys::rd_kafka_topic_destroy(self.topic.as_ptr()) };
    }
}

/// The error of this thread's last failed librdkafka call.
fn last_error() -> RDKafkaErrorCode {
    // SAFETY: reads a thread-local error code; no arguments.
    RDKafkaErrorCode::from(unsafe { rdsys::rd_kafka_last_error() })
}

/// Sends one record, waiting while librdkafka's local queue is full. Returns
/// false when the deadline passed while waiting; a record that librdkafka
/// refuses outright is counted as failed.
pub fn send_one(
    sender: &TopicSender<'_>,
    key: Option<&[u8]>,
    payload: &'static [u8],
    counters: &Counters,
    deadline: Option<Instant>,
) -> bool {
    loop {
        match sender.send(key, payload) {
            Ok(()) => return true,
            Err(RDKafkaErrorCode::QueueFull) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return false;
                }
                std::thread::sleep(QUEUE_FULL_BACKOFF);
            }
            Err(error) => {
                counters.fail(|| format!("send: {error}"));
                return true;
            }
        }
    }
}

/// Waits until librdkafka holds no record of the producer any more, or for
/// `timeout`; true when none is left. rust-rdkafka's flush polls in steps of
/// 100 ms and would add up to that much to a run's elapsed time; the
/// producer's own thread serves acknowledgements, so this only watches.
fn wait_for_acks(producer: &BenchProducer, timeout: Duration) -> bool {
    let started = Instant::now();
    while producer.in_flight_count() > 0 {
        if started.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(ACK_WAIT_INTERVAL);
    }
    true
}

/// Waits for every outstanding acknowledgement and counts them all; records
/// still unacknowledged when the flush gives up count as failed.
pub fn flush(producer: &BenchProducer, counters: &Counters) {
    if !wait_for_acks(producer, FLUSH_TIMEOUT) {
        let left = producer.in_flight_count().max(0) as u64;
        for _ in 0..left {
            counters.fail(|| format!("flush: records not acknowledged within {} s", FLUSH_TIMEOUT.as_secs()));
        }
    }
    producer.context().publish();
}

/// What one sender thread does.
struct Share {
    start: Instant,
    count: Option<u64>,
    deadline: Option<Instant>,
    rate: f64,
    first_index: u64,
}

fn send_loop(
    producer: &BenchProducer,
    topic: &str,
    keys: u64,
    payloads: &'static Payloads,
    counters: &Counters,
    share: Share,
    mut txn: Option<Transactions>,
) -> Option<Transactions> {
    let sender = match TopicSender::new(producer, topic) {
        Ok(sender) => sender,
        Err(error) => {
            counters.fail(|| format!("{error:#}"));
            return txn;
        }
    };
    let pacer = Pacer::new(share.rate, share.start);
    // Unpaced, a clock read per record would cost as much as the send itself.
    let deadline_every = if share.rate > 0.0 { 1 } else { DEADLINE_CHECK_EVERY };
    let mut sent = 0u64;
    let mut key = String::new();
    loop {
        if share.count.is_some_and(|n| sent >= n) {
            break;
        }
        if sent.is_multiple_of(deadline_every) && share.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        pacer.wait(sent);
        let index = share.first_index + sent;
        let key = (keys > 0).then(|| {
            key.clear();
            let _ = write!(key, "key-{:010}", index % keys);
            key.as_bytes()
        });
        if txn.as_mut().is_some_and(|t| !t.before_send(producer, counters)) {
            break;
        }
        if !send_one(&sender, key, payloads.get(index), counters, share.deadline) {
            break;
        }
        if let Some(t) = txn.as_mut() {
            t.after_send(producer, counters);
        }
        sent += 1;
    }
    if let Some(t) = txn.as_mut() {
        t.finish(producer, counters);
    }
    flush(producer, counters);
    txn
}

pub fn run(common: &CommonArgs, args: &ProduceArgs) -> anyhow::Result<()> {
    let limit = Limit::from_args(args.count, args.duration, Limit::Duration(DEFAULT_DURATION))?;
    let consumer = common.consumer(&[])?;
    check_reachable(&consumer, common)?;
    let partitions = ensure_topic(common, &consumer, &args.topic, args.tuning.partitions)?;
    drop(consumer);

    let config = producer_config(common, &args.tuning, args.linger_ms);
    let counters = Arc::new(Counters::default());
    let n = args.producers;
    let latency_every = latency_every(args.rate);
    let producers: Vec<BenchProducer> = (0..n)
        .map(|i| create_producer(&config, &args.tuning, i, &counters, latency_every))
        .collect::<anyhow::Result<_>>()?;
    let payloads = Payloads::new_static(args.record_size, &config);

    let (count, duration) = match limit {
        Limit::Count(c) => (Some(c), None),
        Limit::Duration(d) => (None, Some(d)),
    };
    let mut progress = Progress::new("produce", count, duration, common.quiet);
    let start = Instant::now();
    let transactions = std::thread::scope(|scope| {
        let handles: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(i, producer)| {
                let i = i as u64;
                let share = Share {
                    start,
                    count: count.map(|c| c / n + u64::from(i < c % n)),
                    deadline: duration.map(|d| start + d),
                    rate: args.rate as f64 / n as f64,
                    // Producers start at different records of the pool.
                    first_index: i * 7919,
                };
                let (topic, keys, counters) = (&args.topic, args.keys, &*counters);
                let txn = Transactions::from_tuning(&args.tuning);
                scope.spawn(move || send_loop(producer, topic, keys, payloads, counters, share, txn))
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            progress.update(&counters);
            std::thread::sleep(PROGRESS_INTERVAL / 5);
        }
        handles.into_iter().filter_map(|h| h.join().expect("sender thread")).collect::<Vec<_>>()
    });
    let elapsed = start.elapsed();
    progress.finish();

    let mut latency = Latency::new();
    for producer in &producers {
        latency.merge(&producer.context().take_latency());
    }
    let mut summary = Summary::new("produce", &args.topic, partitions.len(), &counters, elapsed);
    summary.acks = Some(args.tuning.acks.as_str());
    summary.compression = Some(args.tuning.compression.as_str());
    summary.record_size = Some(args.record_size);
    summary.producers = Some(n as usize);
    summary.idempotent = Some(args.tuning.idempotent || args.tuning.transactional_id.is_some());
    summary.ack_latency_ms = latency.percentiles();
    summary.set_ack_latency_every(latency_every);
    Transactions::report(transactions, &args.tuning, &mut summary);
    summary.print(common.json)?;
    fail_on_errors(&summary)
}

/// A run in which any record failed exits non-zero, after its summary.
pub fn fail_on_errors(summary: &Summary) -> anyhow::Result<()> {
    if summary.errors > 0 {
        let first = summary.first_error.as_deref().unwrap_or("unknown error");
        bail!("{} of {} records failed; first error: {first}", summary.errors, summary.errors + summary.records);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_random_and_consecutive_records_do_not_share_bytes() {
        let payloads = Payloads::with_pool_bytes(1024, PAYLOAD_POOL_BYTES);
        let a = payloads.get(0);
        let b = payloads.get(1);
        assert_eq!(a.len(), 1024);
        assert_ne!(a, b);
        assert!(a.iter().filter(|&&x| x == 0).count() < 64, "payload is not zeros");
        let wrap = payloads.get(payloads.slots as u64);
        assert_eq!(a, wrap);
        assert!(Payloads::with_pool_bytes(0, PAYLOAD_POOL_BYTES).get(5).is_empty());
    }

    #[test]
    fn only_compressed_records_get_the_large_pool() {
        let mut config = ClientConfig::new();
        assert_eq!(Payloads::new(1024, &config).pool.len(), PAYLOAD_POOL_BYTES_UNCOMPRESSED);
        config.set("compression.codec", "none");
        assert_eq!(Payloads::new(1024, &config).pool.len(), PAYLOAD_POOL_BYTES_UNCOMPRESSED);
        config.set("compression.type", "zstd");
        assert_eq!(Payloads::new(1024, &config).pool.len(), PAYLOAD_POOL_BYTES);
        // Records larger than the small pool still get 16 distinct values.
        assert_eq!(Payloads::new(1 << 20, &ClientConfig::new()).slots, 16);
    }

    #[test]
    fn pacer_spaces_records_at_the_rate() {
        let start = Instant::now();
        let pacer = Pacer::new(1000.0, start);
        for n in 0..50 {
            pacer.wait(n);
        }
        assert!(start.elapsed() >= Duration::from_millis(45), "{:?}", start.elapsed());
    }
}
