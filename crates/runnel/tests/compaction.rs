//! Log compaction against the real broker: a compacted topic read back
//! from the start is the table of the newest value per key, superseded
//! records are gone from the cleaned part, keyless records are refused, and
//! SIGKILLs while the cleaner works lose no newest value and serve no
//! offset twice.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{watermarks, BrokerProcess};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset, TopicPartitionList};

const TOPIC: &str = "table";

/// A broker whose cleaner looks for dirty logs every 100 ms.
fn start(dir: &Path) -> BrokerProcess {
    BrokerProcess::start(&dir.join("data"), &["log.cleaner.backoff.ms=100"])
}

async fn create_compacted_topic(broker: &BrokerProcess, segment_bytes: &str) {
    common::create_topic(&broker.addr, TOPIC, 1, &[("cleanup.policy", "compact"), ("segment.bytes", segment_bytes)])
        .await;
}

/// Every record of the partition from the start to the high watermark: (offset, key, value).
fn read_all(consumer: &BaseConsumer) -> Vec<(i64, String, Option<String>)> {
    let (_, high) = watermarks(consumer, TOPIC, 0);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out: Vec<(i64, String, Option<String>)> = Vec::new();
    while out.last().is_none_or(|(o, _, _)| *o + 1 < high) {
        assert!(Instant::now() < deadline, "timed out reading to {high}, at {:?}", out.last());
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let key = String::from_utf8(m.key().expect("keyed").to_vec()).unwrap();
                let value = m.payload().map(|p| String::from_utf8(p.to_vec()).unwrap());
                if let Some((prev, _, _)) = out.last() {
                    assert!(m.offset() > *prev, "offsets increase: {} after {prev}", m.offset());
                }
                out.push((m.offset(), key, value));
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

/// The newest value per key (a tombstone removes the key).
fn table(records: &[(i64, String, Option<String>)]) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for (_, key, value) in records {
        match value {
            Some(v) => table.insert(key.clone(), v.clone()),
            None => table.remove(key),
        };
    }
    table
}

fn active_segment_base(data_dir: &Path) -> i64 {
    *common::segment_bases(data_dir, TOPIC, 0).last().expect("a segment")
}

async fn put(producer: &FutureProducer, key: &str, value: Option<&str>) {
    let mut record = FutureRecord::to(TOPIC).key(key);
    if let Some(value) = value {
        record = record.payload(value);
    }
    producer.send(record, Duration::from_secs(10)).await.expect("acknowledged");
}

/// Goal: after the cleaner has run, reading the topic from the start gives
/// the same table as the full history did, the cleaned part holds each key
/// at most once (and no deleted key), and a keyless record is refused with
/// INVALID_RECORD. Method: 40 keys updated 50 times each in 4 KiB segments,
/// 8 of them deleted with tombstones, then wait for the cleaner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topic_reads_back_as_the_newest_value_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    create_compacted_topic(&broker, "4096").await;
    let producer = broker.producer(&[("linger.ms", "5")]);
    let mut expected = BTreeMap::new();
    for version in 0..50 {
        for key in 0..40 {
            let (key, value) = (format!("key-{key:02}"), format!("value-{key:02}-{version:03}"));
            put(&producer, &key, Some(&value)).await;
            expected.insert(key, value);
        }
    }
    for key in (0..40).step_by(5) {
        let key = format!("key-{key:02}");
        put(&producer, &key, None).await;
        expected.remove(&key);
    }
    let keyless = producer.send(FutureRecord::<(), _>::to(TOPIC).payload("no key"), Duration::from_secs(10)).await;
    match keyless {
        Err((KafkaError::MessageProduction(code), _)) => assert_eq!(code, RDKafkaErrorCode::InvalidRecord),
        other => panic!("a keyless record on a compacted topic must be refused, got {other:?}"),
    }

    let consumer = broker.consumer(&[]);
    let produced = 50 * 40 + 8;
    // Cleaned up to the active segment: every key at most once below it.
    let cleaned_to_active = |records: &[(i64, String, Option<String>)], active: i64| {
        let mut seen = std::collections::HashSet::new();
        records.iter().filter(|(o, _, _)| *o < active).all(|(_, key, _)| seen.insert(key.clone()))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (records, active) = loop {
        let active = active_segment_base(&broker.data_dir);
        let records = read_all(&consumer);
        if records.len() < produced / 2 && cleaned_to_active(&records, active) {
            break (records, active);
        }
        assert!(Instant::now() < deadline, "the cleaner did not compact the topic ({} records)", records.len());
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(table(&records), expected, "the compacted topic is the same table");
    for (offset, key, value) in records.iter().filter(|(o, _, _)| *o < active) {
        let newer_in_active = records.iter().any(|(o, k, _)| *o >= active && k == key);
        if !newer_in_active {
            // The newest value, or the tombstone of a deleted key (kept for delete.retention.ms).
            assert_eq!(value.as_ref(), expected.get(key), "offset {offset}: the cleaned part keeps the newest value");
        }
    }
}

/// Goal: SIGKILLs while the cleaner rewrites segments lose nothing. Method:
/// five rounds of 2000 acknowledged updates over 100 keys in 16 KiB segments,
/// each followed by a SIGKILL at a varying moment of the cleaning and a
/// restart; after each restart the topic read from the start is the table of
/// the last acknowledged value per key, with offsets increasing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_cleaning_loses_no_newest_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(dir.path());
    create_compacted_topic(&broker, "16384").await;
    let mut expected = BTreeMap::new();
    for round in 0..5u64 {
        let producer = broker.producer(&[("linger.ms", "2")]);
        let sends: Vec<_> = (0..2000u64)
            .map(|i| {
                let (key, value) = (format!("key-{:03}", (i * 7 + round) % 100), format!("r{round}-{i:05}"));
                expected.insert(key.clone(), value.clone());
                let producer = producer.clone();
                async move { put(&producer, &key, Some(&value)).await }
            })
            .collect();
        for send in sends {
            send.await;
        }
        tokio::time::sleep(Duration::from_millis(50 + 60 * round)).await;
        broker.kill9();
        broker.restart();
        let consumer = broker.consumer(&[]);
        assert_eq!(table(&read_all(&consumer)), expected, "round {round}: every newest value survives");
    }
}

/// The value of a counter in the broker's /metrics, 0 when absent.
fn counter(broker: &BrokerProcess, name: &str) -> f64 {
    common::http_get(&broker.http_addr(), "/metrics")
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Goal: `__consumer_offsets` is compacted by the same cleaner, and the
/// newest committed offset survives it and a SIGKILL. Method: a broker with
/// one 4 KiB-segment offsets partition; 400 commits of one group's offset;
/// wait until the cleaner has removed most of the superseded commit
/// records; SIGKILL, restart, and read the committed offset back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_offsets_is_compacted_and_keeps_the_newest_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["log.cleaner.backoff.ms=100", "offsets.topic.num.partitions=1", "offsets.topic.segment.bytes=4096"],
    );
    create_compacted_topic(&broker, "1048576").await;
    let group =
        |broker: &BrokerProcess| broker.consumer(&[("group.id", "compacted-commits"), ("enable.auto.commit", "false")]);
    let consumer = group(&broker);
    for offset in 1..=400 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(TOPIC, 0, Offset::Offset(offset)).unwrap();
        consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).expect("commit");
    }
    drop(consumer);
    let deadline = Instant::now() + Duration::from_secs(30);
    while counter(&broker, "runnel_cleaner_records_removed_total") < 300.0 {
        assert!(Instant::now() < deadline, "the cleaner did not compact __consumer_offsets");
        std::thread::sleep(Duration::from_millis(200));
    }
    broker.kill9();
    broker.restart();
    let consumer = group(&broker);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    assert_eq!(committed.find_partition(TOPIC, 0).unwrap().offset(), Offset::Offset(400));
}

const CLEANER_IO: &str = "log.cleaner.io.max.bytes.per.second";

/// IncrementalAlterConfigs on the cluster-wide broker default: SET `value`,
/// or DELETE the key when `None`. Returns the error code and message.
fn alter_cleaner_io(addr: &str, value: Option<&str>) -> (i16, String) {
    use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
    use kafka_protocol::protocol::StrBytes;
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const BROKER: i8 = 4;
    let config = AlterableConfig::default()
        .with_name(StrBytes::from_static_str(CLEANER_IO))
        .with_config_operation(if value.is_some() { SET } else { DELETE })
        .with_value(value.map(|v| StrBytes::from_string(v.to_string())));
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(BROKER)
        .with_resource_name(StrBytes::from_static_str(""))
        .with_configs(vec![config])]);
    let response: IncrementalAlterConfigsResponse =
        common::wire::roundtrip(addr, ApiKey::IncrementalAlterConfigs, 1, &request);
    let result = &response.responses[0];
    (result.error_code, result.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default())
}

/// The cleaner I/O limit as DescribeConfigs reports it for this broker: value, source (rdkafka's name) and
/// read-only flag.
async fn describe_cleaner_io(addr: &str) -> (String, String, bool) {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::ClientConfig::new().set("bootstrap.servers", addr).create().expect("admin client");
    let resources = admin.describe_configs(&[ResourceSpecifier::Broker(1)], &AdminOptions::new()).await.unwrap();
    let resource = resources.into_iter().next().unwrap().expect("broker configs");
    let entry = resource.get(CLEANER_IO).expect("the cleaner I/O limit is described");
    (entry.value.clone().unwrap_or_default(), format!("{:?}", entry.source), entry.is_read_only)
}

/// Writes `count` acknowledged updates over 20 keys, 1 KiB each.
async fn write_updates(producer: &FutureProducer, round: usize, count: usize) {
    let value = "v".repeat(1024);
    let sends: Vec<_> = (0..count)
        .map(|i| {
            let key = format!("key-{:02}", (i + round) % 20);
            let (producer, value) = (producer.clone(), value.clone());
            async move { put(&producer, &key, Some(&value)).await }
        })
        .collect();
    for send in sends {
        send.await;
    }
}

/// Waits until the cleaner has run at least `runs` times in all.
fn wait_for_cleanings(broker: &BrokerProcess, runs: f64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter(broker, "runnel_cleaner_runs_total") < runs {
        assert!(Instant::now() < deadline, "the cleaner did not run {runs} times");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Goal: `log.cleaner.io.max.bytes.per.second` is a dynamic broker config:
/// DescribeConfigs shows Kafka's default (unlimited), IncrementalAlterConfigs
/// refuses a bad value naming the key, and sets and deletes it at run time
/// without a restart; the running cleaner obeys each value at once.
/// Method: a compacted topic with 64 KiB segments takes rounds of 1 MB of
/// updates; the time the cleaner slept for the limit (the
/// `runnel_cleaner_throttled_seconds` gauge) stays 0 while unlimited, grows
/// by at least half of what the cleaned bytes cost at 1 MB/s once the limit
/// is set, and stops growing once it is deleted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleaner_io_limit_is_a_dynamic_broker_config() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    create_compacted_topic(&broker, "65536").await;
    let producer = broker.producer(&[("linger.ms", "5")]);
    let (value, source, read_only) = describe_cleaner_io(&broker.addr).await;
    assert_eq!(value.parse::<f64>().unwrap(), f64::MAX, "Kafka's default, Double.MAX_VALUE");
    assert_eq!(source, "Default");
    assert!(!read_only, "the cleaner I/O limit is dynamic");
    let (code, message) = alter_cleaner_io(&broker.addr, Some("fast"));
    assert_eq!(code, 40, "INVALID_CONFIG");
    assert!(message.contains(CLEANER_IO), "the error names the key: {message}");

    // Unlimited: the cleaner never sleeps.
    write_updates(&producer, 0, 1000).await;
    wait_for_cleanings(&broker, 1.0);
    assert_eq!(counter(&broker, "runnel_cleaner_throttled_seconds"), 0.0);

    // 1 MB/s: the next cleanings sleep for most of what their bytes cost.
    assert_eq!(alter_cleaner_io(&broker.addr, Some("1000000")), (0, String::new()));
    let (value, source, _) = describe_cleaner_io(&broker.addr).await;
    assert_eq!((value.as_str(), source.as_str()), ("1000000", "DynamicDefaultBroker"));
    let runs = counter(&broker, "runnel_cleaner_runs_total");
    let bytes = |b: &BrokerProcess| {
        counter(b, "runnel_cleaner_bytes_read_total") + counter(b, "runnel_cleaner_bytes_written_total")
    };
    let bytes_before = bytes(&broker);
    write_updates(&producer, 1, 1000).await;
    wait_for_cleanings(&broker, runs + 1.0);
    let cost_s = (bytes(&broker) - bytes_before) / 1e6;
    let throttled = counter(&broker, "runnel_cleaner_throttled_seconds");
    assert!(cost_s > 0.5, "the cleaning read and wrote {cost_s} MB");
    assert!(throttled >= cost_s / 2.0, "slept {throttled} s for {cost_s} s worth of cleaner I/O at 1 MB/s");

    // Deleted: back to unlimited. A cleaning asleep when the change lands wakes within 100 ms.
    assert_eq!(alter_cleaner_io(&broker.addr, None), (0, String::new()));
    let (value, source, _) = describe_cleaner_io(&broker.addr).await;
    assert_eq!((value.parse::<f64>().unwrap(), source.as_str()), (f64::MAX, "Default"));
    let runs = counter(&broker, "runnel_cleaner_runs_total");
    let throttled = counter(&broker, "runnel_cleaner_throttled_seconds");
    write_updates(&producer, 2, 1000).await;
    wait_for_cleanings(&broker, runs + 2.0);
    let more = counter(&broker, "runnel_cleaner_throttled_seconds") - throttled;
    assert!(more <= 0.2, "the cleaner slept {more} s more after the limit was deleted");
}
