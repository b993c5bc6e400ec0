//! Round trips through the real broker binary with librdkafka (the `rdkafka`
//! crate): produce with every acks level, consume by manual assignment, admin
//! topic creation and deletion, offsets by time, and clean restarts.

mod common;

use std::time::Duration;

use common::{read_partition, watermarks, BrokerProcess};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

fn admin(addr: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", addr).create().expect("admin client")
}

async fn create_topic(addr: &str, name: &str, partitions: i32) {
    let results = admin(addr)
        .create_topics(&[NewTopic::new(name, partitions, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create topics request");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
}

/// Goal: every record produced to a 3-partition topic comes back on its
/// partition, in order, with key, value, headers and timestamp intact.
/// Method: create the topic with the admin API, produce 200 records per
/// partition with acks=all, read each partition from offset 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_across_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    create_topic(&broker.addr, "orders", 3).await;
    let producer = broker.producer(&[("linger.ms", "5")]);
    let base_ts = 1_700_000_000_000i64;
    let mut sends = Vec::new();
    for partition in 0..3 {
        for i in 0..200i64 {
            let key = format!("k{partition}-{i}");
            let value = format!("v{partition}-{i}");
            let headers = OwnedHeaders::new()
                .insert(Header { key: "h", value: Some(&[0u8, 1, 255][..]) })
                .insert(Header { key: "h", value: Some("second") });
            let record = FutureRecord::to("orders")
                .partition(partition)
                .key(&key)
                .payload(&value)
                .timestamp(base_ts + i)
                .headers(headers);
            let future = producer.send_result(record).map_err(|(e, _)| e).expect("enqueue");
            sends.push((partition, i, future));
        }
    }
    for (partition, i, send) in sends {
        let delivery = send.await.expect("not canceled").expect("delivery");
        assert_eq!(delivery.partition, partition);
        assert_eq!(delivery.offset, i, "offsets are assigned densely per partition");
    }
    let consumer = broker.producer_free_consumer();
    for partition in 0..3 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("orders", partition, Offset::Beginning).unwrap();
        consumer.assign(&tpl).unwrap();
        let mut seen = 0i64;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while seen < 200 && std::time::Instant::now() < deadline {
            let Some(msg) = consumer.poll(Duration::from_millis(200)) else { continue };
            let msg = msg.expect("consume");
            assert_eq!(msg.partition(), partition);
            assert_eq!(msg.offset(), seen);
            assert_eq!(msg.key(), Some(format!("k{partition}-{seen}").as_bytes()));
            assert_eq!(msg.payload(), Some(format!("v{partition}-{seen}").as_bytes()));
            assert_eq!(msg.timestamp().to_millis(), Some(base_ts + seen));
            let headers = msg.headers().expect("headers");
            assert_eq!(headers.count(), 2);
            assert_eq!(headers.get(0).value, Some(&[0u8, 1, 255][..]));
            assert_eq!(headers.get(1).key, "h");
            assert_eq!(headers.get(1).value, Some(&b"second"[..]));
            seen += 1;
        }
        assert_eq!(seen, 200, "partition {partition} returned every record");
    }
}

impl BrokerProcess {
    fn producer_free_consumer(&self) -> rdkafka::consumer::BaseConsumer {
        self.consumer(&[])
    }
}

/// Goal: acks 0, 1 and all are each accepted, and records sent with any of
/// them become readable. Method: auto-create a topic by producing to it,
/// produce 100 records per acks level, read back 300 records in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acks_level_and_auto_creation() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    for acks in ["0", "1", "all"] {
        let producer = broker.producer(&[("acks", acks)]);
        for i in 0..100 {
            let value = format!("{acks}-{i}");
            producer
                .send(FutureRecord::<(), _>::to("auto-created").payload(&value), Duration::from_secs(10))
                .await
                .expect("delivery");
        }
    }
    let consumer = broker.consumer(&[]);
    let records = read_partition(&consumer, "auto-created", 0, 0, 300, Duration::from_secs(30));
    assert_eq!(records.len(), 300);
    for (i, (offset, _, value)) in records.iter().enumerate() {
        assert_eq!(*offset, i as i64);
        let acks = ["0", "1", "all"][i / 100];
        assert_eq!(value.as_deref(), Some(format!("{acks}-{}", i % 100).as_bytes()));
    }
}

/// Goal: a ~1 MB record is stored and fetched whole, even though it exceeds
/// the consumer's per-partition fetch size. Method: raise the producer's
/// message limit, produce one 1,000,000-byte value between two small records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_megabyte_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let producer = broker.producer(&[("message.max.bytes", "1048576")]);
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    for value in [&b"before"[..], &big[..], &b"after"[..]] {
        producer
            .send(FutureRecord::<(), _>::to("big").payload(value), Duration::from_secs(10))
            .await
            .expect("delivery");
    }
    let consumer = broker.consumer(&[("max.partition.fetch.bytes", "65536"), ("fetch.max.bytes", "1000000")]);
    let records = read_partition(&consumer, "big", 0, 0, 3, Duration::from_secs(30));
    assert_eq!(records.len(), 3);
    assert_eq!(records[1].2.as_deref(), Some(&big[..]));
    assert_eq!(records[2].2.as_deref(), Some(&b"after"[..]));
}

/// Goal: ListOffsets by time and the watermarks match what was produced.
/// Method: produce 10 records with timestamps 1000, 2000, ... and ask for
/// offsets at, between and past them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_times_and_watermarks() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let producer = broker.producer(&[("linger.ms", "0")]);
    for i in 0..10i64 {
        let value = i.to_string();
        let record = FutureRecord::<(), _>::to("times").payload(&value).timestamp(1000 * (i + 1));
        producer.send(record, Duration::from_secs(10)).await.expect("delivery");
    }
    let consumer = broker.consumer(&[]);
    assert_eq!(watermarks(&consumer, "times", 0), (0, 10));
    for (ts, expected) in [
        (0, Offset::Offset(0)),
        (1000, Offset::Offset(0)),
        (4500, Offset::Offset(4)),
        (10_000, Offset::Offset(9)),
        (10_001, Offset::End),
    ] {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("times", 0, Offset::Offset(ts)).unwrap();
        let found = consumer.offsets_for_times(tpl, Duration::from_secs(10)).expect("offsets for times");
        let offset = found.find_partition("times", 0).unwrap().offset();
        assert_eq!(offset, expected, "timestamp {ts}");
    }
}

/// Goal: data survives a clean restart, the restart needs no recovery, and
/// a topic deleted through the admin API stays deleted.
/// Method: produce, SIGTERM (exit code 0), restart, read back; delete the
/// topic, restart, check metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_restart_keeps_data_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &["num.partitions=2"]);
    let producer = broker.producer(&[]);
    for i in 0..50 {
        let value = format!("r{i}");
        producer
            .send(FutureRecord::<(), _>::to("kept").partition(i % 2).payload(&value), Duration::from_secs(10))
            .await
            .expect("delivery");
        producer
            .send(FutureRecord::<(), _>::to("dropped").payload(&value), Duration::from_secs(10))
            .await
            .expect("delivery");
    }
    drop(producer);
    assert_eq!(broker.terminate(), Some(0), "clean shutdown exits 0");
    broker.restart();
    assert!(broker.logs().contains("clean: true"), "restart after SIGTERM is reported clean:\n{}", broker.logs());
    let consumer = broker.consumer(&[]);
    assert_eq!(read_partition(&consumer, "kept", 0, 0, 25, Duration::from_secs(20)).len(), 25);
    assert_eq!(read_partition(&consumer, "kept", 1, 0, 25, Duration::from_secs(20)).len(), 25);
    let results = admin(&broker.addr).delete_topics(&["dropped"], &AdminOptions::new()).await.expect("delete request");
    results[0].as_ref().expect("deleted");
    assert_eq!(broker.terminate(), Some(0));
    broker.restart();
    let metadata = consumer_metadata(&broker);
    assert!(metadata.contains(&"kept".to_string()));
    assert!(!metadata.contains(&"dropped".to_string()), "deleted topic stays deleted: {metadata:?}");
}

fn consumer_metadata(broker: &BrokerProcess) -> Vec<String> {
    let consumer: rdkafka::consumer::BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("allow.auto.create.topics", "false")
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata: {e}; broker log:\n{}", broker.logs()));
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// Goal: a topic's own settings apply after a restart, not just at creation.
/// Method: create a topic with `max.message.bytes=1000` and one with
/// `message.timestamp.type=LogAppendTime`, restart (SIGKILL, so the logs are
/// recovered), then a 2,000-byte record is refused with MESSAGE_TOO_LARGE and
/// a record's CreateTime is replaced by the broker's append time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let topics = [
        NewTopic::new("small", 1, TopicReplication::Fixed(1)).set("max.message.bytes", "1000"),
        NewTopic::new("stamped", 1, TopicReplication::Fixed(1)).set("message.timestamp.type", "LogAppendTime"),
    ];
    for r in admin(&broker.addr).create_topics(&topics, &AdminOptions::new()).await.expect("create") {
        r.expect("created");
    }
    broker.kill9();
    broker.restart();
    let producer = broker.producer(&[("linger.ms", "0")]);
    let big = vec![1u8; 2000];
    let refused = producer.send(FutureRecord::<(), _>::to("small").payload(&big), Duration::from_secs(10)).await;
    let (error, _) = refused.expect_err("a batch over max.message.bytes is refused");
    assert_eq!(error.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::MessageSizeTooLarge), "{error}");
    let before = common_now_ms();
    producer
        .send(FutureRecord::<(), _>::to("stamped").payload("x").timestamp(1_000), Duration::from_secs(10))
        .await
        .expect("delivery");
    let records = {
        let consumer = broker.consumer(&[]);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("stamped", 0, Offset::Beginning).unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                break m.expect("consume").timestamp();
            }
            assert!(std::time::Instant::now() < deadline, "record never arrived");
        }
    };
    match records {
        rdkafka::Timestamp::LogAppendTime(ts) => assert!(ts >= before, "append time {ts} is the broker's clock"),
        other => panic!("expected LogAppendTime, got {other:?}"),
    }
}

fn common_now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
