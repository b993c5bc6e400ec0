//! Client quotas end to end: the real `runnel` binary, quotas set through
//! the `runnel quota` command, and librdkafka clients measured from outside.
//!
//! Covered: a producer_byte_rate quota holds an rdkafka producer to the
//! configured rate within 10% and librdkafka sees throttle time; a
//! consumer_byte_rate quota does the same to a consumer; Kafka's precedence
//! between user, (user, client id) and default client id quotas for SASL/PLAIN
//! users; quotas survive a restart; set, describe and delete round trip
//! through the CLI; request_percentage by handling time; the per-IP connection_creation_rate and the broker-wide
//! max.connection.creation.rate; and, with raw requests, that a throttled
//! response comes at once and the connection is then muted (KIP-219).
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

use bytes::Bytes;
use common::wire::call;
use common::BrokerProcess;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
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
fn produce_flat_out(
    producer: &ThreadedProducer<Meter>,
    meter: &Meter,
    topic: &str,
    warm_up: Duration,
    run: Duration,
) -> f64 {
    let payload = vec![b'q'; 10_000];
    let rate = measure(meter, warm_up, run, || match producer.send::<(), _>(BaseRecord::to(topic).payload(&payload)) {
        Ok(()) => {}
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
            std::thread::sleep(Duration::from_millis(5))
        }
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
    let metrics = common::http_get(&broker.http_addr(), "/metrics");
    for name in ["runnel_quota_throttled_total", "runnel_quota_throttle_time_ms_total", "runnel_quota_recorded_total"] {
        let sample = format!("{name}{{quota=\"produce\"}} ");
        let value = metrics.lines().find_map(|l| l.strip_prefix(&sample)).and_then(|v| v.trim().parse::<f64>().ok());
        assert!(value.is_some_and(|v| v > 0.0), "{sample} not above zero in:\n{metrics}");
    }
    assert!(metrics.lines().any(|l| l == "runnel_quota_sensors 1"), "one quota rate kept:\n{metrics}");

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

const JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_bob=\"bob-secret\";";

/// Produces 10 KB records as `user` (over SASL/PLAIN at `sasl_addr`) or anonymously (`user` None) with
/// `client_id` until librdkafka reports a throttle or 3 MB are acknowledged; whether it was throttled.
fn throttled(addr: &str, user: Option<&str>, client_id: &str) -> bool {
    let sasl: Vec<(&str, String)> = match user {
        Some(user) => vec![
            ("security.protocol", "SASL_PLAINTEXT".to_string()),
            ("sasl.mechanisms", "PLAIN".to_string()),
            ("sasl.username", user.to_string()),
            ("sasl.password", format!("{user}-secret")),
        ],
        None => vec![],
    };
    let extra: Vec<(&str, &str)> = sasl.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (producer, meter) = metered_producer(addr, client_id, &extra);
    let payload = vec![b'p'; 10_000];
    let deadline = Instant::now() + Duration::from_secs(20);
    while meter.bytes.load(Ordering::Relaxed) < 3_000_000 && meter.throttle_max_ms.load(Ordering::Relaxed) == 0 {
        assert!(Instant::now() < deadline, "neither 3 MB acknowledged nor a throttle seen in 20 s");
        match producer.send::<(), _>(BaseRecord::to("quota-precedence").payload(&payload)) {
            Ok(()) => {}
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err((e, _)) => panic!("produce: {e}"),
        }
    }
    // One more statistics interval, so a throttle on the last responses is seen too.
    std::thread::sleep(Duration::from_millis(500));
    producer.purge(rdkafka::producer::PurgeConfig::default().queue());
    meter.throttle_max_ms.load(Ordering::Relaxed) > 0
}

// Goal: Kafka's precedence picks the quota of a SASL user's requests: (user, client id) over user, user over
// client id, client id over the default client id. Method: a low (100 KB/s) or high (100 MB/s) producer
// quota per entity; a client throttled within its first 3 MB had a low one.
#[test]
fn precedence_between_user_and_client_id_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let settings = ["listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0", JAAS, RATE_SETTINGS[2]];
    let broker = BrokerProcess::start(&dir.path().join("data"), &settings);
    let sasl = broker.listener_addr("SASL_PLAINTEXT");
    let (low, high) = ("100000", "100000000");
    runnel_quota(&broker.addr, &["set", "--user", "alice", "--client-id", "fast", "--producer-byte-rate", high]);
    runnel_quota(&broker.addr, &["set", "--user", "alice", "--producer-byte-rate", low]);
    runnel_quota(&broker.addr, &["set", "--client-id", "unlimited", "--producer-byte-rate", high]);
    runnel_quota(&broker.addr, &["set", "--default-client-id", "--producer-byte-rate", low]);

    assert!(!throttled(&sasl, Some("alice"), "fast"), "alice/fast: the (user, client id) quota wins");
    assert!(throttled(&sasl, Some("alice"), "unlimited"), "alice/unlimited: the user quota beats the client id's");
    assert!(!throttled(&sasl, Some("bob"), "unlimited"), "bob/unlimited: the client id quota applies");
    assert!(throttled(&sasl, Some("bob"), "other"), "bob/other: the default client id quota applies");
    assert!(throttled(&broker.addr, None, "other"), "ANONYMOUS/other: the default client id quota applies");
    // A user quota for the unauthenticated principal, then its client id quota no longer applies.
    runnel_quota(&broker.addr, &["set", "--user", "ANONYMOUS", "--producer-byte-rate", high]);
    assert!(!throttled(&broker.addr, None, "other2"), "ANONYMOUS: its user quota is in force at once");
}

// Goal: set, describe (table, JSON, filters) and delete round trip through the CLI, the broker refuses what
// Kafka refuses with a message, and the quotas survive a restart and are enforced after it.
#[test]
fn quotas_round_trip_through_the_cli_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[RATE_SETTINGS[2]]);
    let addr = broker.addr.clone();
    assert!(runnel_quota(
        &addr,
        &["set", "--user", "alice", "--producer-byte-rate", "1048576", "--consumer-byte-rate", "2097152"]
    )
    .contains("changed the quotas of user=alice"));
    runnel_quota(&addr, &["set", "--user", "alice", "--client-id", "batch", "--request-percentage", "25"]);
    runnel_quota(&addr, &["set", "--default-client-id", "--producer-byte-rate", "100000"]);
    runnel_quota(&addr, &["set", "--ip", "10.1.2.3", "--connection-creation-rate", "7"]);
    runnel_quota(&addr, &["set", "--default-user", "--controller-mutation-rate", "2.5"]);
    assert!(runnel_quota(&addr, &["set", "--user", "v", "--producer-byte-rate", "5", "--validate-only"])
        .contains("would change"));

    let table = runnel_quota(&addr, &["describe"]);
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    for row in [
        ["ENTITY", "KEY", "VALUE"],
        ["user=alice", "producer_byte_rate", "1048576"],
        ["user=alice", "consumer_byte_rate", "2097152"],
        ["user=alice,client-id=batch", "request_percentage", "25"],
        ["client-id=<default>", "producer_byte_rate", "100000"],
        ["ip=10.1.2.3", "connection_creation_rate", "7"],
        ["user=<default>", "controller_mutation_rate", "2.5"],
    ] {
        assert!(rows.contains(&row.to_vec()), "{row:?} missing from:\n{table}");
    }
    assert_eq!(rows.len(), 7, "{table}");
    assert!(!table.contains("user=v"), "validate-only wrote a quota:\n{table}");
    let alice = runnel_quota(&addr, &["describe", "--user", "alice", "--format", "json"]);
    let alice: serde_json::Value = serde_json::from_str(&alice).unwrap();
    assert_eq!(
        alice,
        serde_json::json!([
            {"entity": {"client-id": "batch", "user": "alice"}, "values": {"request_percentage": 25.0}},
            {"entity": {"user": "alice"}, "values": {"consumer_byte_rate": 2097152.0, "producer_byte_rate": 1048576.0}}
        ])
    );
    let strict = runnel_quota(&addr, &["describe", "--user", "alice", "--strict", "--format", "json"]);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&strict).unwrap().as_array().unwrap().len(), 1);
    let defaults = runnel_quota(&addr, &["describe", "--default-client-id", "--format", "json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&defaults).unwrap(),
        serde_json::json!([{"entity": {"client-id": null}, "values": {"producer_byte_rate": 100000.0}}])
    );

    runnel_quota(&addr, &["set", "--user", "alice", "--delete", "consumer_byte_rate"]);
    let alice = runnel_quota(&addr, &["describe", "--user", "alice", "--strict", "--format", "json"]);
    assert!(!alice.contains("consumer_byte_rate") && alice.contains("producer_byte_rate"), "{alice}");

    // Refusals carry Kafka's error and message.
    for (args, message) in [
        (
            &["set", "--user", "x", "--connection-creation-rate", "3"][..],
            "Invalid configuration key connection_creation_rate",
        ),
        (&["set", "--ip", "not-an-ip", "--connection-creation-rate", "3"][..], "is not a valid IP"),
        (&["set", "--user", "x", "--producer-byte-rate", "0"][..], "must be a positive finite number"),
    ] {
        let out =
            Command::new(env!("CARGO_BIN_EXE_runnel")).args(["quota", "--brokers", &addr]).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("InvalidRequest") && stderr.contains(message),
            "{args:?}: {stderr}"
        );
    }

    let before = runnel_quota(&addr, &["describe", "--format", "json"]);
    assert_eq!(broker.terminate(), Some(0));
    broker.restart();
    assert_eq!(runnel_quota(&broker.addr, &["describe", "--format", "json"]), before);
    assert!(throttled(&broker.addr, None, "any-client"), "the default client id quota is enforced after a restart");
}

/// Opens a connection to `addr` and asks for ApiVersions; whether the broker answered (rather than closing
/// the connection).
fn api_versions_answered(addr: &str) -> bool {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let response: Option<ApiVersionsResponse> =
        call(&mut stream, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    response.is_some_and(|r| r.error_code == 0)
}

// Goal: an IP over its connection_creation_rate quota has its new connections closed (after a delay of at
// most one window) and gets connections again once its rate is back under the quota (KIP-612). Method: with
// two one-second windows and a quota of 2/s, open 12 connections at once from
// 12 threads; only the first few are served.
#[test]
fn ip_connection_creation_rate_closes_connections_over_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), RATE_SETTINGS);
    runnel_quota(&broker.addr, &["set", "--ip", "127.0.0.1", "--connection-creation-rate", "2"]);
    // Let the CLI's own connection age out of the windows.
    std::thread::sleep(Duration::from_millis(2500));
    let started = Instant::now();
    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let addr = broker.addr.clone();
            std::thread::spawn(move || api_versions_answered(&addr))
        })
        .collect();
    let served = attempts.into_iter().map(|a| a.join().unwrap()).filter(|served| *served).count();
    assert!((1..=4).contains(&served), "{served} of 12 connections served under a quota of 2/s");
    assert!(started.elapsed() < Duration::from_secs(12), "closing throttled connections took {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(2500));
    assert!(api_versions_answered(&broker.addr), "a connection after the rate fell is served");
    let metrics = common::http_get(&broker.http_addr(), "/metrics");
    assert!(metrics.contains("runnel_connections_throttled_total{scope=\"ip\"}"), "no ip throttle metric");

    // Removing the quota lifts the limit at once.
    runnel_quota(&broker.addr, &["set", "--ip", "127.0.0.1", "--delete", "connection_creation_rate"]);
    assert_eq!((0..12).filter(|_| api_versions_answered(&broker.addr)).count(), 12);
}

// Goal: max.connection.creation.rate delays new connections instead of refusing them (KIP-612): 15
// connections at 5/s are all served, and take over a second and a half. Method: two one-second windows (a
// burst of 5 is allowed), then connect and ask ApiVersions 15 times in a row.
#[test]
fn broker_connection_creation_rate_delays_connections() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = RATE_SETTINGS.to_vec();
    settings.push("max.connection.creation.rate=5");
    let broker = BrokerProcess::start(&dir.path().join("data"), &settings);
    std::thread::sleep(Duration::from_millis(2500));
    let started = Instant::now();
    assert_eq!((0..15).filter(|_| api_versions_answered(&broker.addr)).count(), 15);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "15 connections at 5/s took only {elapsed:?}");
    let metrics = common::http_get(&broker.http_addr(), "/metrics");
    assert!(metrics.contains("runnel_connections_throttled_total{scope=\"broker\"}"), "no broker throttle metric");
}

fn produce_request(topic: &str, value: &[u8]) -> ProduceRequest {
    ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(Bytes::from(
            runnel_log::testing::BatchBuilder::new(1_700_000_000_000).record(None, Some(value), 0).build(),
        )))])])
}

// Goal: KIP-219 as Kafka does it: a produce over the quota is answered at once with throttle_time_ms, and the
// broker then reads nothing more from that connection until the throttle has passed; a client older than
// KIP-219 (Produce v5) gets its response held back for the throttle instead. Method: raw requests from the
// client id of `common::wire` under a 10 KB/s quota with two one-second windows: 50 KB is 5x the quota, a
// throttle of (50000 - 10000) / 10000 * 1000 ms, bounded to the 2000 ms of both windows.
#[test]
fn a_throttled_connection_is_answered_at_once_and_then_muted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), RATE_SETTINGS);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(common::create_topic(&broker.addr, "quota-kip219", 1, &[]));
    runnel_quota(&broker.addr, &["set", "--client-id", "runnel-tests", "--producer-byte-rate", "10000"]);

    let mut stream = TcpStream::connect(&broker.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let sent = Instant::now();
    let response: ProduceResponse =
        call(&mut stream, ApiKey::Produce, 9, &produce_request("quota-kip219", &[7u8; 50_000])).unwrap();
    let answered_in = sent.elapsed();
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(response.throttle_time_ms, 2000, "Kafka's throttle time, bounded by the windows");
    assert!(answered_in < Duration::from_millis(1500), "the throttled response took {answered_in:?}");

    // The next request on the muted connection is read only after the throttle.
    let versions: ApiVersionsResponse =
        call(&mut stream, ApiKey::ApiVersions, 3, &ApiVersionsRequest::default()).unwrap();
    let muted_for = sent.elapsed();
    assert_eq!(versions.error_code, 0);
    assert!(muted_for >= Duration::from_millis(1900), "the connection was read again after {muted_for:?}");
    assert!(versions.throttle_time_ms >= 0);

    // Produce v5 predates KIP-219: the response itself waits out the throttle.
    let mut old = TcpStream::connect(&broker.addr).unwrap();
    old.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let sent = Instant::now();
    let response: ProduceResponse =
        call(&mut old, ApiKey::Produce, 5, &produce_request("quota-kip219", &[7u8; 50_000])).unwrap();
    assert!(response.throttle_time_ms > 0);
    assert!(sent.elapsed() >= Duration::from_millis(900), "a v5 response came after {:?}", sent.elapsed());
}

// Goal: request_percentage counts the time the broker spends on a client's requests: with a quota of
// 0.001% of a thread (10 µs a second) the first Metadata request already goes over it and its response
// carries a throttle; another client id is not throttled.
#[test]
fn request_percentage_throttles_by_handling_time() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), RATE_SETTINGS);
    let metadata = || {
        let mut stream = TcpStream::connect(&broker.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let response: MetadataResponse =
            call(&mut stream, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).unwrap();
        response.throttle_time_ms
    };
    assert_eq!(metadata(), 0, "no quota, no throttle");
    runnel_quota(&broker.addr, &["set", "--client-id", "runnel-tests", "--request-percentage", "0.001"]);
    let throttle = metadata();
    assert!(throttle > 0 && throttle <= 2000, "throttle {throttle} ms");
    runnel_quota(&broker.addr, &["set", "--client-id", "runnel-tests", "--delete", "request_percentage"]);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(metadata(), 0, "the quota removed, no throttle");
}
