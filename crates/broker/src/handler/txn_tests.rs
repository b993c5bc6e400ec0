//! The transaction coordinator's handlers at every served version: each
//! response encodes at its version, and the error codes follow the version
//! (PRODUCER_FENCED only for clients that know it).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::describe_producers_request::{DescribeProducersRequest, TopicRequest};
use kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use kafka_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{ApiKey, GroupId, ProducerId, ResponseKind, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::{
    add_offsets_to_txn, add_partitions_to_txn, describe_producers, describe_transactions, end_txn, init_producer_id,
    list_transactions, produce, txn_offset_commit, write_txn_markers,
};
use crate::protocol::{encode_response, guard};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn txn_id(s: &str) -> TransactionalId {
    TransactionalId(StrBytes::from_string(s.to_string()))
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = guard::supported_versions(api as i16).expect("served api");
    min..=max
}

fn encode(api: ApiKey, version: i16, body: ResponseKind) {
    encode_response(api, version, 1, &body);
}

fn open_broker(dir: &std::path::Path) -> Arc<Broker> {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    config.set("offsets.topic.num.partitions", "2", Source::Override).unwrap();
    config.set("transaction.state.log.num.partitions", "2", Source::Override).unwrap();
    let broker = Broker::open(config).unwrap();
    broker.create_topic("t", 2, Default::default()).unwrap();
    broker
}

async fn init(broker: &Arc<Broker>, id: &str, version: i16) -> (i16, i64, i16) {
    let req =
        InitProducerIdRequest::default().with_transactional_id(Some(txn_id(id))).with_transaction_timeout_ms(10_000);
    let r = init_producer_id::handle(broker.clone(), req, version).await.await;
    let out = (r.error_code, r.producer_id.0, r.producer_epoch);
    encode(ApiKey::InitProducerId, version, ResponseKind::InitProducerId(r));
    out
}

fn transactional_batch(pid: i64, epoch: i16) -> Bytes {
    let mut batch = runnel_log::testing::BatchBuilder::new(1_700_000_000_000).record(Some(b"k"), Some(b"v"), 0).build();
    let mut header = runnel_log::batch::BatchHeader::parse(&batch).unwrap();
    header.attributes |= 0x10;
    header.producer_id = pid;
    header.producer_epoch = epoch;
    header.base_sequence = 0;
    header.encode(&mut batch);
    let crc = runnel_log::batch::batch_crc(&batch);
    batch[runnel_log::batch::CRC_POS..runnel_log::batch::CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(batch)
}

/// Ends a transaction through the coordinator, completed before it returns.
async fn end(broker: &Arc<Broker>, id: &str, pid: i64, epoch: i16, commit: bool) {
    let (_, prepared) = broker.txns.end_txn(broker, id, pid, epoch, commit, false).unwrap();
    let prepared = prepared.expect("a decision");
    assert!(prepared.written.expect("stored").durable().await, "the decision is stored");
    crate::txn::complete(broker.clone(), prepared.metadata).await;
}

async fn produce_code(broker: &Arc<Broker>, id: Option<&str>, batch: Bytes) -> i16 {
    let req = ProduceRequest::default()
        .with_transactional_id(id.map(txn_id))
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("t"))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch))])]);
    let r = produce::append(broker.clone(), req, 9).await.await.expect("acks=-1 responds");
    r.responses[0].partition_responses[0].error_code
}

/// Goal: one transaction per version runs through every handler, each
/// response encodes at its version, and a fenced producer gets the code its
/// version knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_handlers_encode_at_every_served_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());

    for v in versions(ApiKey::InitProducerId) {
        let idempotent = InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(-1);
        let r = init_producer_id::handle(broker.clone(), idempotent, v).await.await;
        assert_eq!((r.error_code, r.producer_epoch), (0, 0), "v{v}");
        encode(ApiKey::InitProducerId, v, ResponseKind::InitProducerId(r));
        let (code, _, _) = init(&broker, &format!("i{v}"), v).await;
        assert_eq!(code, 0);
        let too_long = InitProducerIdRequest::default()
            .with_transactional_id(Some(txn_id("long")))
            .with_transaction_timeout_ms(900_001);
        let r = init_producer_id::handle(broker.clone(), too_long, v).await.await;
        assert_eq!(r.error_code, 50, "v{v}: INVALID_TRANSACTION_TIMEOUT");
        encode(ApiKey::InitProducerId, v, ResponseKind::InitProducerId(r));
    }

    for v in versions(ApiKey::AddPartitionsToTxn) {
        let id = format!("a{v}");
        let (_, pid, epoch) = init(&broker, &id, 4).await;
        let topics = vec![AddPartitionsToTxnTopic::default().with_name(name("t")).with_partitions(vec![0, 1])];
        let unknown = vec![
            AddPartitionsToTxnTopic::default().with_name(name("t")).with_partitions(vec![0]),
            AddPartitionsToTxnTopic::default().with_name(name("nope")).with_partitions(vec![0]),
        ];
        let req = |topics: Vec<AddPartitionsToTxnTopic>, epoch: i16, verify_only: bool| {
            if v >= 4 {
                AddPartitionsToTxnRequest::default().with_transactions(vec![AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(txn_id(&id))
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch)
                    .with_verify_only(verify_only)
                    .with_topics(topics)])
            } else {
                AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(txn_id(&id))
                    .with_v3_and_below_producer_id(ProducerId(pid))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(topics)
            }
        };
        let codes = |r: &kafka_protocol::messages::AddPartitionsToTxnResponse| -> Vec<i16> {
            let topics =
                if v >= 4 { &r.results_by_transaction[0].topic_results } else { &r.results_by_topic_v3_and_below };
            topics.iter().flat_map(|t| t.results_by_partition.iter().map(|p| p.partition_error_code)).collect()
        };
        let r = add_partitions_to_txn::handle(broker.clone(), req(unknown, epoch, false), v).await.await;
        assert_eq!(codes(&r), vec![55, 3], "v{v}: OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION");
        encode(ApiKey::AddPartitionsToTxn, v, ResponseKind::AddPartitionsToTxn(r));
        let r = add_partitions_to_txn::handle(broker.clone(), req(topics.clone(), epoch, false), v).await.await;
        assert_eq!(codes(&r), vec![0, 0], "v{v}");
        encode(ApiKey::AddPartitionsToTxn, v, ResponseKind::AddPartitionsToTxn(r));
        if v >= 4 {
            let r = add_partitions_to_txn::handle(broker.clone(), req(topics.clone(), epoch, true), v).await.await;
            assert_eq!(codes(&r), vec![0, 0], "v{v}: verified");
            encode(ApiKey::AddPartitionsToTxn, v, ResponseKind::AddPartitionsToTxn(r));
        }
        let r = add_partitions_to_txn::handle(broker.clone(), req(topics, epoch - 1, false), v).await.await;
        let fenced = if v >= 2 { 90 } else { 47 };
        assert_eq!(codes(&r), vec![fenced, fenced], "v{v}: PRODUCER_FENCED or INVALID_PRODUCER_EPOCH");
        encode(ApiKey::AddPartitionsToTxn, v, ResponseKind::AddPartitionsToTxn(r));
        end(&broker, &id, pid, epoch, false).await;
    }

    for v in versions(ApiKey::AddOffsetsToTxn) {
        let id = format!("o{v}");
        let (_, pid, epoch) = init(&broker, &id, 4).await;
        let req = AddOffsetsToTxnRequest::default()
            .with_transactional_id(txn_id(&id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(StrBytes::from_static_str("g")));
        let r = add_offsets_to_txn::handle(broker.clone(), req.clone(), v).await.await;
        assert_eq!(r.error_code, 0, "v{v}");
        encode(ApiKey::AddOffsetsToTxn, v, ResponseKind::AddOffsetsToTxn(r));
        for tv in versions(ApiKey::TxnOffsetCommit) {
            let commit = TxnOffsetCommitRequest::default()
                .with_transactional_id(txn_id(&id))
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_topics(vec![TxnOffsetCommitRequestTopic::default().with_name(name("t")).with_partitions(vec![
                    TxnOffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(3),
                    TxnOffsetCommitRequestPartition::default().with_partition_index(9),
                ])]);
            let r = txn_offset_commit::handle(broker.clone(), commit, tv).await.await;
            let codes: Vec<i16> = r.topics[0].partitions.iter().map(|p| p.error_code).collect();
            assert_eq!(codes, vec![0, 3], "v{tv}");
            encode(ApiKey::TxnOffsetCommit, tv, ResponseKind::TxnOffsetCommit(r));
        }
        let r = add_offsets_to_txn::handle(broker.clone(), req.with_producer_epoch(epoch + 1), v).await.await;
        assert_eq!(r.error_code, if v >= 2 { 90 } else { 47 }, "v{v}");
        encode(ApiKey::AddOffsetsToTxn, v, ResponseKind::AddOffsetsToTxn(r));
        end(&broker, &id, pid, epoch, true).await;
    }
    let found = broker.groups.fetch_offsets("g", Some(vec![("t".into(), vec![0])]));
    assert_eq!(found[0].1[0].1.as_ref().map(|o| o.offset), Some(3), "committed with the transaction");

    for v in versions(ApiKey::EndTxn) {
        let id = format!("e{v}");
        let (_, pid, epoch) = init(&broker, &id, 4).await;
        broker.txns.add_partitions(&broker, &id, pid, epoch, &[("t".into(), 1)]).unwrap();
        let req = EndTxnRequest::default()
            .with_transactional_id(txn_id(&id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(true);
        let r = end_txn::handle(broker.clone(), req.clone(), v).await.await;
        assert_eq!(r.error_code, 0, "v{v}");
        if v >= 5 {
            assert_eq!((r.producer_id.0, r.producer_epoch), (pid, epoch + 1), "v{v}: the epoch is bumped");
        }
        encode(ApiKey::EndTxn, v, ResponseKind::EndTxn(r));
        let r = end_txn::handle(broker.clone(), req.with_committed(false), v).await.await;
        assert_ne!(r.error_code, 0, "v{v}: abort after commit");
        encode(ApiKey::EndTxn, v, ResponseKind::EndTxn(r));
    }

    // Produce: a transactional batch needs its transactional id and a partition of the open transaction.
    let (_, pid, epoch) = init(&broker, "p", 4).await;
    assert_eq!(produce_code(&broker, Some("p"), transactional_batch(pid, epoch)).await, 48, "INVALID_TXN_STATE");
    broker.txns.add_partitions(&broker, "p", pid, epoch, &[("t".into(), 0)]).unwrap();
    assert_eq!(produce_code(&broker, None, transactional_batch(pid, epoch)).await, 48, "no transactional id");
    assert_eq!(produce_code(&broker, Some("p"), transactional_batch(pid, epoch)).await, 0);

    for v in versions(ApiKey::DescribeProducers) {
        let req = DescribeProducersRequest::default()
            .with_topics(vec![TopicRequest::default().with_name(name("t")).with_partition_indexes(vec![0, 9])]);
        let r = describe_producers::handle(&broker, req);
        let partitions = &r.topics[0].partitions;
        assert_eq!(partitions[1].error_code, 3);
        let producer = partitions[0].active_producers.iter().find(|s| s.producer_id.0 == pid).expect("described");
        assert!(producer.current_txn_start_offset >= 0, "its transaction is open");
        encode(ApiKey::DescribeProducers, v, ResponseKind::DescribeProducers(r));
    }
    for v in versions(ApiKey::DescribeTransactions) {
        let req = DescribeTransactionsRequest::default().with_transactional_ids(vec![txn_id("p"), txn_id("none")]);
        let r = describe_transactions::handle(&broker, req);
        assert_eq!(r.transaction_states[0].transaction_state.as_str(), "Ongoing");
        assert_eq!(r.transaction_states[0].topics[0].partitions, vec![0]);
        assert_eq!(r.transaction_states[1].error_code, 105, "TRANSACTIONAL_ID_NOT_FOUND");
        encode(ApiKey::DescribeTransactions, v, ResponseKind::DescribeTransactions(r));
    }
    for v in versions(ApiKey::ListTransactions) {
        let req = ListTransactionsRequest::default()
            .with_state_filters(vec![StrBytes::from_static_str("Ongoing"), StrBytes::from_static_str("Bogus")]);
        let req = if v >= 1 { req.with_duration_filter(0) } else { req };
        let r = list_transactions::handle(&broker, req);
        let ids: Vec<&str> = r.transaction_states.iter().map(|s| s.transactional_id.as_str()).collect();
        assert_eq!(ids, vec!["p"], "v{v}");
        assert_eq!(r.unknown_state_filters, vec![StrBytes::from_static_str("Bogus")]);
        encode(ApiKey::ListTransactions, v, ResponseKind::ListTransactions(r));
        let by_pid = list_transactions::handle(
            &broker,
            ListTransactionsRequest::default().with_producer_id_filters(vec![ProducerId(pid)]),
        );
        assert_eq!(by_pid.transaction_states.len(), 1);
        if v >= 2 {
            let by_pattern = |pattern: &'static str| {
                let req = ListTransactionsRequest::default()
                    .with_transactional_id_pattern(Some(StrBytes::from_static_str(pattern)));
                list_transactions::handle(&broker, req)
            };
            let ids = |r: &kafka_protocol::messages::ListTransactionsResponse| -> Vec<String> {
                r.transaction_states.iter().map(|s| s.transactional_id.to_string()).collect()
            };
            assert_eq!(ids(&by_pattern("p")), vec!["p"], "v{v}: the whole id must match");
            assert!(ids(&by_pattern("e[0-9]+")).iter().all(|id| id.starts_with('e')), "v{v}");
            assert!(!ids(&by_pattern("e[0-9]+")).is_empty(), "v{v}");
            assert_eq!(ids(&by_pattern("")).len(), ids(&by_pattern(".*")).len(), "v{v}: empty means all");
            let bad = by_pattern("(unclosed");
            assert_eq!(bad.error_code, 128, "v{v}: INVALID_REGULAR_EXPRESSION");
            encode(ApiKey::ListTransactions, v, ResponseKind::ListTransactions(bad));
        }
    }
    for v in versions(ApiKey::WriteTxnMarkers) {
        let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(name("t"))
                .with_partition_indexes(vec![0, 9])])]);
        let r = write_txn_markers::handle(broker.clone(), req).await.await;
        let codes: Vec<i16> = r.markers[0].topics[0].partitions.iter().map(|p| p.error_code).collect();
        assert_eq!(codes, vec![0, 3], "v{v}");
        encode(ApiKey::WriteTxnMarkers, v, ResponseKind::WriteTxnMarkers(r));
    }
    broker.shutdown().unwrap();
}
