//! The read_committed side of Fetch and ListOffsets, against a real broker in
//! a temporary directory: transactional batches and markers are appended to a
//! partition's log directly, as the produce path and the transaction
//! coordinator do, and the handlers are asked what a consumer sees.
//!
//! The topic uses `flush.messages` far above what is written, so the high
//! watermark follows every append and the bound under test is the last stable
//! offset alone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use runnel_log::testing::BatchBuilder;
use runnel_log::ControlType;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::{fetch, list_offsets, now_ms};
use crate::partition::Partition;
use crate::protocol::{encode_response, guard};

const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;
const PRODUCER: i64 = 7;
const EPOCH: i16 = 0;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// A broker with topic "t" of one partition whose high watermark follows appends.
fn open_broker(dir: &std::path::Path) -> (Arc<Broker>, Arc<Partition>) {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    let broker = Broker::open(config).unwrap();
    let configs = BTreeMap::from([("flush.messages".to_string(), "1000000".to_string())]);
    let topic = broker.create_topic("t", 1, configs).unwrap();
    let partition = topic.partition(0).unwrap().clone();
    (broker, partition)
}

/// A batch of `records` records; transactional batches come from [`PRODUCER`].
fn batch(records: usize, transactional: bool, base_sequence: i32) -> Vec<u8> {
    let mut b = BatchBuilder::new(now_ms());
    for i in 0..records {
        b = b.record(Some(b"k"), Some(format!("v{i}").as_bytes()), 0);
    }
    if transactional {
        b.transactional = true;
        b.producer_id = PRODUCER;
        b.producer_epoch = EPOCH;
        b.base_sequence = base_sequence;
    }
    b.build()
}

/// Appends one batch and moves the high watermark; returns its first offset.
fn append(partition: &Partition, bytes: Vec<u8>) -> i64 {
    let (info, _) = runnel_log::testing::append_bytes(&partition.log, bytes, now_ms()).unwrap();
    partition.on_appended();
    info.base_offset
}

/// Appends [`PRODUCER`]'s commit or abort marker; returns its offset.
fn marker(partition: &Partition, control: ControlType) -> i64 {
    let info = partition.log.append_marker(PRODUCER, EPOCH, control, 0, 0, now_ms()).unwrap();
    partition.on_appended();
    info.base_offset
}

fn fetch_request(isolation: i8, offset: i64, max_bytes: i32, wait_ms: i32) -> FetchRequest {
    let partition =
        FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(max_bytes);
    FetchRequest::default()
        .with_isolation_level(isolation)
        .with_max_wait_ms(wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default().with_topic(name("t")).with_partitions(vec![partition])])
}

async fn fetch_at(broker: &Arc<Broker>, isolation: i8, offset: i64, max_bytes: i32) -> PartitionData {
    let response = fetch::handle(broker.clone(), fetch_request(isolation, offset, max_bytes, 0), 12).await;
    response.responses[0].partitions[0].clone()
}

/// The first offset of every batch in a fetch's records.
fn batch_offsets(data: &PartitionData) -> Vec<i64> {
    let bytes = data.records.clone().unwrap_or_default();
    runnel_log::testing::split_batches(&bytes).iter().map(|h| h.base_offset).collect()
}

fn aborted(data: &PartitionData) -> Option<Vec<(i64, i64)>> {
    data.aborted_transactions.as_ref().map(|list| list.iter().map(|t| (t.producer_id.0, t.first_offset)).collect())
}

async fn latest(broker: &Arc<Broker>, isolation: i8) -> i64 {
    let partition = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(-1);
    let req = ListOffsetsRequest::default()
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default().with_name(name("t")).with_partitions(vec![partition])]);
    let response = list_offsets::handle(broker.clone(), req, 5).await;
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_stops_at_the_first_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, partition) = open_broker(dir.path());
    assert_eq!(append(&partition, batch(2, false, -1)), 0);
    assert_eq!(append(&partition, batch(3, true, 0)), 2);
    assert_eq!(append(&partition, batch(1, false, -1)), 5);

    let uncommitted = fetch_at(&broker, READ_UNCOMMITTED, 0, 1 << 20).await;
    assert_eq!(batch_offsets(&uncommitted), [0, 2, 5]);
    assert_eq!((uncommitted.high_watermark, uncommitted.last_stable_offset), (6, 2), "the bound whatever the level");
    assert_eq!(aborted(&uncommitted), None, "read_uncommitted gets a null list");

    let committed = fetch_at(&broker, READ_COMMITTED, 0, 1 << 20).await;
    assert_eq!(batch_offsets(&committed), [0]);
    assert_eq!((committed.high_watermark, committed.last_stable_offset), (6, 2));
    assert_eq!(aborted(&committed), Some(vec![]));
    let at_lso = fetch_at(&broker, READ_COMMITTED, 2, 1 << 20).await;
    assert_eq!((at_lso.error_code, batch_offsets(&at_lso)), (0, vec![]), "at the LSO: nothing yet, no error");

    assert_eq!(latest(&broker, READ_UNCOMMITTED).await, 6);
    assert_eq!(latest(&broker, READ_COMMITTED).await, 2);

    let commit = marker(&partition, ControlType::Commit);
    assert_eq!(commit, 6);
    let committed = fetch_at(&broker, READ_COMMITTED, 0, 1 << 20).await;
    assert_eq!(batch_offsets(&committed), [0, 2, 5, 6], "the marker is returned too");
    assert_eq!(committed.last_stable_offset, 7);
    assert_eq!(aborted(&committed), Some(vec![]));
    assert_eq!(latest(&broker, READ_COMMITTED).await, 7);
    broker.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_lists_aborted_transactions_in_the_returned_range() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, partition) = open_broker(dir.path());
    append(&partition, batch(2, false, -1));
    append(&partition, batch(3, true, 0));
    append(&partition, batch(1, true, 3));
    let abort = marker(&partition, ControlType::Abort);
    assert_eq!(abort, 6);
    append(&partition, batch(1, false, -1));

    let committed = fetch_at(&broker, READ_COMMITTED, 0, 1 << 20).await;
    assert_eq!(batch_offsets(&committed), [0, 2, 5, 6, 7]);
    assert_eq!(committed.last_stable_offset, 8);
    assert_eq!(aborted(&committed), Some(vec![(PRODUCER, 2)]));
    for v in 4..=guard::supported_versions(ApiKey::Fetch as i16).unwrap().1 {
        let response = fetch::handle(broker.clone(), fetch_request(READ_COMMITTED, 0, 1 << 20, 0), v).await;
        encode_response(ApiKey::Fetch, v, 1, &ResponseKind::Fetch(response));
    }

    // Only the first batch fits: the aborted transaction starts after it.
    let first = fetch_at(&broker, READ_COMMITTED, 0, 1).await;
    assert_eq!(batch_offsets(&first), [0]);
    assert_eq!(aborted(&first), Some(vec![]));
    // From inside the transaction, it is listed.
    let inside = fetch_at(&broker, READ_COMMITTED, 5, 1 << 20).await;
    assert_eq!(batch_offsets(&inside), [5, 6, 7]);
    assert_eq!(aborted(&inside), Some(vec![(PRODUCER, 2)]));
    // After its marker, it is not.
    let after = fetch_at(&broker, READ_COMMITTED, 7, 1 << 20).await;
    assert_eq!(batch_offsets(&after), [7]);
    assert_eq!(aborted(&after), Some(vec![]));

    let uncommitted = fetch_at(&broker, READ_UNCOMMITTED, 0, 1 << 20).await;
    assert_eq!(batch_offsets(&uncommitted), [0, 2, 5, 6, 7]);
    assert_eq!(aborted(&uncommitted), None);
    broker.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_long_poll_wakes_when_the_transaction_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, partition) = open_broker(dir.path());
    append(&partition, batch(2, true, 0));

    let waiting = tokio::spawn(fetch::handle(broker.clone(), fetch_request(READ_COMMITTED, 0, 1 << 20, 10_000), 12));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Other data moves the high watermark but not the last stable offset.
    append(&partition, batch(1, false, -1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "nothing below the last stable offset yet");

    let started = tokio::time::Instant::now();
    marker(&partition, ControlType::Commit);
    let response =
        tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("the commit wakes the fetch").unwrap();
    assert!(started.elapsed() < Duration::from_secs(2), "woken by the marker, not the timeout");
    let data = &response.responses[0].partitions[0];
    assert_eq!(batch_offsets(data), [0, 2, 3]);
    assert_eq!(data.last_stable_offset, 4);
    broker.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_by_timestamp_stays_below_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, partition) = open_broker(dir.path());
    let base = now_ms();
    append(&partition, BatchBuilder::new(base).record(None, Some(b"plain"), 0).build());
    let mut open = BatchBuilder::new(base + 1000).record(None, Some(b"in a transaction"), 0);
    (open.transactional, open.producer_id, open.producer_epoch, open.base_sequence) = (true, PRODUCER, EPOCH, 0);
    append(&partition, open.build());

    let lookup = |isolation: i8, timestamp: i64| {
        let broker = broker.clone();
        async move {
            let p = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp);
            let req = ListOffsetsRequest::default()
                .with_isolation_level(isolation)
                .with_topics(vec![ListOffsetsTopic::default().with_name(name("t")).with_partitions(vec![p])]);
            let response = list_offsets::handle(broker, req, 7).await;
            response.topics[0].partitions[0].offset
        }
    };
    assert_eq!(lookup(READ_COMMITTED, base).await, 0);
    assert_eq!(lookup(READ_UNCOMMITTED, base + 1000).await, 1);
    assert_eq!(lookup(READ_COMMITTED, base + 1000).await, -1, "the open transaction is not stable");
    assert_eq!(lookup(READ_UNCOMMITTED, -3).await, 1, "max timestamp");
    assert_eq!(lookup(READ_COMMITTED, -3).await, -1);
    marker(&partition, ControlType::Commit);
    assert_eq!(lookup(READ_COMMITTED, base + 1000).await, 1);
    broker.shutdown().unwrap();
}
