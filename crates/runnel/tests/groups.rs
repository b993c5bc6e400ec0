//! Consumer groups against the real broker with the `rdkafka` crate.
//!
//! Goal: a group of two consumers splits a 4-partition topic, reads every
//! record exactly once and commits; the committed offsets survive a broker
//! SIGKILL and restart, and a new member resumes right after them. Method:
//! two BaseConsumers subscribe and are polled until each owns two partitions;
//! records are produced only then, so no rebalance happens while they are
//! read. The broker's initial rebalance delay is set low to keep the test
//! short; `/metrics` must show the group's lag.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::BrokerProcess;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};

const TOPIC: &str = "orders";
const PARTITIONS: i32 = 4;
const RECORDS: usize = 200;

fn group_consumer(addr: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", group)
        .set("group.protocol", "classic")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

fn partitions_of(consumer: &BaseConsumer) -> BTreeSet<i32> {
    consumer.assignment().expect("assignment").elements().iter().map(|e| e.partition()).collect()
}

async fn produce(broker: &BrokerProcess, from: usize, count: usize) {
    let producer = broker.producer(&[]);
    for i in from..from + count {
        let key = format!("k{i}");
        let value = format!("v{i}");
        let record = FutureRecord::to(TOPIC).key(&key).payload(&value).partition((i % PARTITIONS as usize) as i32);
        producer.send(record, Duration::from_secs(30)).await.expect("produced");
    }
}

fn committed_offsets(consumer: &BaseConsumer) -> BTreeMap<i32, i64> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(TOPIC, p);
    }
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    committed
        .elements()
        .iter()
        .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { o } else { -1 }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_of_two_commits_and_offsets_survive_a_broker_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &["group.initial.rebalance.delay.ms=100"]);
    common::create_topic(&broker.addr, TOPIC, PARTITIONS, &[]).await;
    let members = [group_consumer(&broker.addr, "g"), group_consumer(&broker.addr, "g")];
    for m in &members {
        m.subscribe(&[TOPIC]).expect("subscribe");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for m in &members {
            if let Some(Err(e)) = m.poll(Duration::from_millis(50)) {
                panic!("poll error: {e}");
            }
        }
        let (a, b) = (partitions_of(&members[0]), partitions_of(&members[1]));
        if a.len() == 2 && b.len() == 2 && a.is_disjoint(&b) {
            break;
        }
        assert!(Instant::now() < deadline, "no stable split: {a:?} {b:?}");
    }

    produce(&broker, 0, RECORDS).await;
    let mut seen: Vec<BTreeSet<(i32, i64)>> = vec![BTreeSet::new(), BTreeSet::new()];
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.iter().map(BTreeSet::len).sum::<usize>() < RECORDS {
        assert!(Instant::now() < deadline, "records missing");
        for (i, m) in members.iter().enumerate() {
            if let Some(msg) = m.poll(Duration::from_millis(50)) {
                let msg = msg.expect("record");
                assert!(seen[i].insert((msg.partition(), msg.offset())), "a record was read twice");
            }
        }
    }
    assert!(seen[0].is_disjoint(&seen[1]), "both members read the same record");
    for (i, m) in members.iter().enumerate() {
        let owned = partitions_of(m);
        assert!(seen[i].iter().all(|(p, _)| owned.contains(p)), "member {i} read a partition it does not own");
        m.commit_consumer_state(CommitMode::Sync).expect("commit");
    }
    let per_partition = (RECORDS / PARTITIONS as usize) as i64;
    let expected: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, per_partition)).collect();
    assert_eq!(committed_offsets(&members[0]), expected);

    // The lag gauge: every partition has been read to its end.
    let metrics = common::http_get(&broker.http_addr(), "/metrics");
    let lag = metrics.lines().find(|l| l.starts_with("runnel_group_lag{") && l.contains("group=\"g\""));
    assert!(lag.is_some_and(|l| l.ends_with(" 0")), "lag line: {lag:?}");
    drop(members);

    broker.kill9();
    broker.restart();
    let fresh = group_consumer(&broker.addr, "g");
    assert_eq!(committed_offsets(&fresh), expected, "committed offsets after a broker SIGKILL and restart");
    produce(&broker, RECORDS, PARTITIONS as usize).await;
    fresh.subscribe(&[TOPIC]).expect("subscribe");
    let mut firsts = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while firsts.len() < PARTITIONS as usize {
        assert!(Instant::now() < deadline, "new records missing: {firsts:?}");
        if let Some(msg) = fresh.poll(Duration::from_millis(100)) {
            let msg = msg.expect("record");
            firsts.entry(msg.partition()).or_insert(msg.offset());
        }
    }
    assert_eq!(firsts, expected, "the new member resumes right after the committed offsets");
    let logs = broker.logs();
    assert!(logs.contains("consumer groups loaded groups=1"), "groups reloaded: {logs}");
}
