//! Transactions against the real broker with the `rdkafka` crate
//! (librdkafka's transactional producer).
//!
//! Goal: the transaction coordinator gives librdkafka what it needs for
//! exactly-once: committed records reach read_committed consumers, aborted
//! ones only read_uncommitted consumers; a second producer with the same
//! transactional.id fences the first; a transaction left open past its
//! timeout is aborted by the broker; offsets sent with
//! send_offsets_to_transaction become the group's only on commit, also for a
//! member of a joined group (consume-transform-produce); and a broker SIGKILL
//! in the middle of transactions leaves each one committed or aborted. Method: one broker per test on loopback, transactional producers
//! and consumers of both isolation levels reading partition 0; the transaction
//! markers show up as offsets the consumers never return (the high watermark
//! counts them).

mod common;

use std::time::{Duration, Instant};

use common::BrokerProcess;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TOPIC: &str = "txn";
const TIMEOUT: Duration = Duration::from_secs(30);

fn transactional(broker: &BrokerProcess, id: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut settings = vec![("enable.idempotence", "true"), ("transactional.id", id)];
    settings.extend_from_slice(extra);
    let producer = broker.producer(&settings);
    producer.init_transactions(TIMEOUT).expect("init transactions");
    producer
}

async fn send(producer: &FutureProducer, values: &[String]) {
    for v in values {
        let record = FutureRecord::to(TOPIC).key("k").payload(v).partition(0);
        producer.send(record, TIMEOUT).await.expect("produced");
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

/// The values of partition 0 from offset 0, read with `isolation`, until
/// `count` arrived or a few seconds passed (more may come: the caller
/// compares).
fn read(broker: &BrokerProcess, isolation: &str, count: usize) -> Vec<String> {
    let consumer = broker.consumer(&[("isolation.level", isolation)]);
    common::read_partition(&consumer, TOPIC, 0, 0, count + 1, Duration::from_secs(5))
        .into_iter()
        .map(|(_, _, v)| String::from_utf8(v.unwrap_or_default()).unwrap())
        .collect()
}

/// The high watermark, as a read_uncommitted consumer sees it (read_committed
/// ListOffsets answers the last stable offset instead).
fn high_watermark(broker: &BrokerProcess) -> i64 {
    common::watermarks(&broker.consumer(&[("isolation.level", "read_uncommitted")]), TOPIC, 0).1
}

/// The last stable offset: the end a read_committed consumer sees.
fn last_stable_offset(broker: &BrokerProcess) -> i64 {
    common::watermarks(&broker.consumer(&[("isolation.level", "read_committed")]), TOPIC, 0).1
}

async fn start(settings: &[&str]) -> (tempfile::TempDir, BrokerProcess) {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), settings);
    common::create_topic(&broker.addr, TOPIC, 1, &[]).await;
    (dir, broker)
}

/// Committed, aborted, committed: read_uncommitted sees all fifteen records,
/// and three markers take an offset each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_and_abort_write_markers_and_read_uncommitted_sees_everything() {
    let (_dir, broker) = start(&[]).await;
    let producer = transactional(&broker, "tx-a", &[]);
    for (prefix, commit) in [("c", true), ("a", false), ("d", true)] {
        producer.begin_transaction().expect("begin");
        send(&producer, &values(prefix, 5)).await;
        if commit {
            producer.commit_transaction(TIMEOUT).expect("commit");
        } else {
            producer.abort_transaction(TIMEOUT).expect("abort");
        }
    }
    assert_eq!(high_watermark(&broker), 18, "15 records and 3 markers");
    let all = read(&broker, "read_uncommitted", 15);
    let expected: Vec<String> = [values("c", 5), values("a", 5), values("d", 5)].concat();
    assert_eq!(all, expected);
}

/// read_committed returns only committed records, in order, and none of the
/// aborted transaction's (Fetch stops at the last stable offset and lists
/// the aborted transactions, which the client drops).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_sees_committed_records_only() {
    let (_dir, broker) = start(&[]).await;
    let producer = transactional(&broker, "tx-rc", &[]);
    for (prefix, commit) in [("c", true), ("a", false), ("d", true)] {
        producer.begin_transaction().expect("begin");
        send(&producer, &values(prefix, 5)).await;
        if commit {
            producer.commit_transaction(TIMEOUT).expect("commit");
        } else {
            producer.abort_transaction(TIMEOUT).expect("abort");
        }
    }
    // An open transaction holds back what follows it from read_committed consumers.
    producer.begin_transaction().expect("begin");
    send(&producer, &values("open", 2)).await;
    let committed = read(&broker, "read_committed", 10);
    assert_eq!(committed, [values("c", 5), values("d", 5)].concat());
    producer.commit_transaction(TIMEOUT).expect("commit");
    let committed = read(&broker, "read_committed", 12);
    assert_eq!(committed, [values("c", 5), values("d", 5), values("open", 2)].concat());
}

/// A second producer with the same transactional.id fences the first: the
/// first one's open transaction is aborted and its commit fails; the second
/// one commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_producer_with_the_same_id_fences_the_first() {
    let (_dir, broker) = start(&[]).await;
    let first = transactional(&broker, "tx-f", &[]);
    first.begin_transaction().expect("begin");
    send(&first, &values("zombie", 3)).await;
    let second = transactional(&broker, "tx-f", &[]);
    let refused = first.commit_transaction(TIMEOUT);
    assert!(refused.is_err(), "the fenced producer cannot commit");
    second.begin_transaction().expect("begin");
    send(&second, &values("live", 3)).await;
    second.commit_transaction(TIMEOUT).expect("commit");
    // 3 zombie records, their abort marker, 3 live records, their commit marker.
    assert_eq!(high_watermark(&broker), 8);
    let all = read(&broker, "read_uncommitted", 6);
    assert_eq!(all, [values("zombie", 3), values("live", 3)].concat());
}

/// The broker aborts a transaction open past its transaction.timeout.ms and
/// fences its producer, whose late commit fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_open_past_its_timeout_is_aborted_by_the_broker() {
    let (_dir, broker) = start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]).await;
    let producer =
        transactional(&broker, "tx-t", &[("transaction.timeout.ms", "2000"), ("message.timeout.ms", "2000")]);
    producer.begin_transaction().expect("begin");
    send(&producer, &values("late", 2)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while high_watermark(&broker) < 3 {
        assert!(Instant::now() < deadline, "no abort marker after the timeout");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(producer.commit_transaction(TIMEOUT).is_err(), "the timed-out producer is fenced");
    let metrics = common::http_get(&broker.http_addr(), "/metrics");
    assert!(metrics.contains("runnel_transaction_timeouts_total 1"), "{metrics}");
}

fn group_offset(broker: &BrokerProcess, group: &str) -> Option<i64> {
    let consumer = broker.consumer(&[("group.id", group)]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("input", 0);
    let committed = consumer.committed_offsets(tpl, TIMEOUT).expect("committed offsets");
    match committed.elements()[0].offset() {
        Offset::Offset(o) => Some(o),
        _ => None,
    }
}

/// Offsets sent with send_offsets_to_transaction become the group's when
/// the transaction commits and are dropped when it aborts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_offsets_to_transaction_commits_group_offsets_only_on_commit() {
    let (_dir, broker) = start(&[]).await;
    common::create_topic(&broker.addr, "input", 1, &[]).await;
    let group: BaseConsumer = broker.consumer(&[("group.id", "processor")]);
    let metadata = group.group_metadata().expect("group metadata");
    let producer = transactional(&broker, "tx-o", &[]);
    for (offset, commit) in [(5, false), (7, true), (9, false)] {
        producer.begin_transaction().expect("begin");
        send(&producer, &values("out", 1)).await;
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("input", 0, Offset::Offset(offset)).unwrap();
        producer.send_offsets_to_transaction(&offsets, &metadata, TIMEOUT).expect("send offsets");
        if commit {
            producer.commit_transaction(TIMEOUT).expect("commit");
        } else {
            producer.abort_transaction(TIMEOUT).expect("abort");
        }
        let expected = if offset < 7 { None } else { Some(7) };
        assert_eq!(group_offset(&broker, "processor"), expected, "after offset {offset}, commit={commit}");
    }
    // The same after a restart: the offsets topic replays the markers.
    let mut broker = broker;
    broker.kill9();
    broker.restart();
    assert_eq!(group_offset(&broker, "processor"), Some(7));
}

/// A broker SIGKILL with one transaction just committed and one open: after
/// the restart the committed one stays committed, the open one is aborted
/// (here by the next producer with its transactional.id), and new
/// transactions commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_kill_leaves_every_transaction_committed_or_aborted() {
    let (_dir, mut broker) = start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]).await;
    {
        let producer = transactional(&broker, "tx-k", &[]);
        producer.begin_transaction().expect("begin");
        send(&producer, &values("kept", 3)).await;
        producer.commit_transaction(TIMEOUT).expect("commit");
        producer.begin_transaction().expect("begin");
        send(&producer, &values("lost", 2)).await;
        broker.kill9();
    }
    broker.restart();
    // 3 records, the commit marker, 2 records of the open transaction.
    assert_eq!(high_watermark(&broker), 6);
    assert_eq!(last_stable_offset(&broker), 4, "the open transaction holds the last stable offset");
    let producer = transactional(&broker, "tx-k", &[]);
    assert_eq!(high_watermark(&broker), 7, "init_transactions aborted the open transaction");
    assert_eq!(last_stable_offset(&broker), 7, "no transaction holds the last stable offset any more");
    producer.begin_transaction().expect("begin");
    send(&producer, &values("after", 2)).await;
    producer.commit_transaction(TIMEOUT).expect("commit");
    let all = read(&broker, "read_uncommitted", 7);
    assert_eq!(all, [values("kept", 3), values("lost", 2), values("after", 2)].concat());
    // The aborted records never reach a read_committed consumer.
    let committed = read(&broker, "read_committed", 5);
    assert_eq!(committed, [values("kept", 3), values("after", 2)].concat());
}

/// The broker aborts a transaction left open by a broker SIGKILL once its
/// timeout passes, with no producer coming back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_open_at_a_broker_kill_is_aborted_after_its_timeout() {
    let (_dir, mut broker) = start(&["transaction.abort.timed.out.transaction.cleanup.interval.ms=200"]).await;
    {
        let producer =
            transactional(&broker, "tx-o2", &[("transaction.timeout.ms", "2000"), ("message.timeout.ms", "2000")]);
        producer.begin_transaction().expect("begin");
        send(&producer, &values("open", 2)).await;
        broker.kill9();
    }
    broker.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while high_watermark(&broker) < 3 {
        assert!(Instant::now() < deadline, "no abort marker after the restart");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Consume-transform-produce with a consumer that joined its group: the
/// transaction carries the member's generation (KIP-447), each input's
/// output is written once, and the group's offset ends after the last input.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_with_a_group_member() {
    use rdkafka::Message;
    let (_dir, broker) = start(&["group.initial.rebalance.delay.ms=0"]).await;
    common::create_topic(&broker.addr, "input", 1, &[]).await;
    let plain = broker.producer(&[]);
    for i in 0..20 {
        let v = format!("in{i}");
        plain.send(FutureRecord::to("input").key("k").payload(&v).partition(0), TIMEOUT).await.expect("input");
    }
    let consumer = broker.consumer(&[
        ("group.id", "etl"),
        ("group.protocol", "classic"),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
    ]);
    consumer.subscribe(&["input"]).expect("subscribe");
    let producer = transactional(&broker, "tx-etl", &[]);
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while done < 20 {
        assert!(Instant::now() < deadline, "processed {done} of 20");
        let Some(message) = consumer.poll(Duration::from_millis(100)) else { continue };
        let message = message.expect("consume");
        let output = format!("out-{}", String::from_utf8_lossy(message.payload().unwrap_or_default()));
        producer.begin_transaction().expect("begin");
        send(&producer, &[output]).await;
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("input", 0, Offset::Offset(message.offset() + 1)).unwrap();
        let metadata = consumer.group_metadata().expect("group metadata");
        producer.send_offsets_to_transaction(&offsets, &metadata, TIMEOUT).expect("send offsets");
        producer.commit_transaction(TIMEOUT).expect("commit");
        done += 1;
    }
    let outputs = read(&broker, "read_uncommitted", 20);
    let expected: Vec<String> = (0..20).map(|i| format!("out-in{i}")).collect();
    assert_eq!(outputs, expected);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("input", 0);
    let committed = consumer.committed_offsets(tpl, TIMEOUT).expect("committed");
    assert_eq!(committed.elements()[0].offset(), Offset::Offset(20));
}
