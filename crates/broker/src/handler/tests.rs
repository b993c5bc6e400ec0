//! Every handler at every version the broker serves produces a response that
//! encodes at that version.
//!
//! `kafka-protocol` refuses to encode a field that a version does not have
//! when it holds a non-default value, so a handler that sets, say, a topic id
//! in a Metadata v9 response would fail at run time. This test drives each
//! handler over a real broker in a temporary directory, with an existing
//! topic holding data, an unknown topic and an out-of-range offset, and
//! encodes each response at every served version.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::{
    create_topics, delete_topics, fetch, find_coordinator, list_offsets, metadata, produce, Endpoint,
};
use crate::protocol::{encode_response, guard};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = guard::supported_versions(api as i16).expect("served api");
    min..=max
}

fn open_broker(dir: &std::path::Path) -> Arc<Broker> {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    let broker = Broker::open(config).unwrap();
    broker.create_topic("t", 2, Default::default()).unwrap();
    broker
}

fn encode(api: ApiKey, version: i16, body: ResponseKind) {
    // Panics on a field the version does not have.
    encode_response(api, version, 1, &body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_handler_encodes_at_every_served_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let endpoint = Endpoint { host: "127.0.0.1".into(), port: 9092 };
    let topic_id = broker.topic("t").unwrap().meta.id;
    let batch = Bytes::from(
        runnel_log::testing::BatchBuilder::new(1_700_000_000_000).record(Some(b"k"), Some(b"v"), 0).build(),
    );

    for v in versions(ApiKey::Produce) {
        let topic = |n: &str| {
            let data = TopicProduceData::default().with_partition_data(vec![
                PartitionProduceData::default().with_index(0).with_records(Some(batch.clone())),
                PartitionProduceData::default().with_index(9).with_records(Some(batch.clone())),
            ]);
            if v >= 13 {
                data.with_topic_id(if n == "t" { topic_id } else { uuid::Uuid::new_v4() })
            } else {
                data.with_name(name(n))
            }
        };
        let req = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(1000)
            .with_topic_data(vec![topic("t"), topic("nope")]);
        let response = produce::append(broker.clone(), req, v).await.await.expect("acks=-1 responds");
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0, "v{v}");
        encode(ApiKey::Produce, v, ResponseKind::Produce(response));
    }
    for v in versions(ApiKey::Fetch) {
        let topic = |n: &str, offset: i64| {
            let t = FetchTopic::default().with_partitions(vec![
                FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20),
                FetchPartition::default().with_partition(7).with_partition_max_bytes(1 << 20),
            ]);
            if v >= 13 {
                t.with_topic_id(if n == "t" { topic_id } else { uuid::Uuid::new_v4() })
            } else {
                t.with_topic(name(n))
            }
        };
        let req = FetchRequest::default().with_max_wait_ms(0).with_max_bytes(1 << 20).with_topics(vec![
            topic("t", 0),
            topic("t", 1_000_000),
            topic("x", 0),
        ]);
        let response = fetch::handle(broker.clone(), req, v).await;
        let data = &response.responses[0].partitions[0];
        assert!(data.records.as_ref().is_some_and(|r| !r.is_empty()), "v{v} returns records");
        assert_eq!(response.responses[1].partitions[0].error_code, 1, "v{v}: OFFSET_OUT_OF_RANGE");
        encode(ApiKey::Fetch, v, ResponseKind::Fetch(response));
    }
    for v in versions(ApiKey::Metadata) {
        let topics = [Some(name("t")), Some(name("auto-created")), Some(name("bad name"))]
            .into_iter()
            .map(|n| MetadataRequestTopic::default().with_name(n))
            .collect();
        for topics in [None, Some(topics)] {
            if topics.is_none() && v == 0 {
                continue;
            }
            let req = MetadataRequest::default().with_topics(topics).with_allow_auto_topic_creation(true);
            let response = metadata::handle(broker.clone(), endpoint.clone(), req, v).await;
            encode(ApiKey::Metadata, v, ResponseKind::Metadata(response));
        }
    }
    for v in versions(ApiKey::ListOffsets) {
        let partitions = [-1, -2, -3, -4, -5, 0, 5_000_000_000_000]
            .into_iter()
            .map(|ts| ListOffsetsPartition::default().with_partition_index(0).with_timestamp(ts))
            .chain([ListOffsetsPartition::default().with_partition_index(5)])
            .collect();
        let req = ListOffsetsRequest::default()
            .with_topics(vec![ListOffsetsTopic::default().with_name(name("t")).with_partitions(partitions)]);
        let response = list_offsets::handle(broker.clone(), req, v).await;
        encode(ApiKey::ListOffsets, v, ResponseKind::ListOffsets(response));
    }
    for v in versions(ApiKey::CreateTopics) {
        let topic = |n: String, partitions: i32| {
            CreatableTopic::default().with_name(name(&n)).with_num_partitions(partitions).with_replication_factor(-1)
        };
        let req = CreateTopicsRequest::default().with_topics(vec![
            topic(format!("c{v}"), 3),
            topic("t".into(), 1),
            topic("bad name".into(), 1),
            topic(format!("z{v}"), 0),
        ]);
        let response = create_topics::handle(broker.clone(), req, v).await;
        assert_eq!(response.topics[0].error_code, 0, "v{v}");
        assert_eq!(response.topics[1].error_code, 36, "v{v}: TOPIC_ALREADY_EXISTS");
        assert_eq!(response.topics[2].error_code, 17, "v{v}: INVALID_TOPIC_EXCEPTION");
        assert_eq!(response.topics[3].error_code, 37, "v{v}: INVALID_PARTITIONS");
        encode(ApiKey::CreateTopics, v, ResponseKind::CreateTopics(response));
    }
    for v in versions(ApiKey::DeleteTopics) {
        broker.create_topic(&format!("d{v}"), 1, Default::default()).unwrap();
        let req = if v >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(name(&format!("d{v}")))),
                DeleteTopicState::default().with_topic_id(uuid::Uuid::new_v4()),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&format!("d{v}")), name("missing")])
        };
        let response = delete_topics::handle(broker.clone(), req, v).await;
        assert_eq!(response.responses[0].error_code, 0, "v{v}");
        assert_ne!(response.responses[1].error_code, 0, "v{v}");
        encode(ApiKey::DeleteTopics, v, ResponseKind::DeleteTopics(response));
    }
    for v in versions(ApiKey::FindCoordinator) {
        for key_type in [0, 1, 2] {
            let mut req = FindCoordinatorRequest::default().with_key_type(if v >= 1 { key_type } else { 0 });
            if v >= 4 {
                req.coordinator_keys = vec![StrBytes::from_static_str("g1"), StrBytes::from_static_str("g2")];
            } else {
                req.key = StrBytes::from_static_str("g1");
            }
            let response = find_coordinator::handle(broker.node_id(), &endpoint, req, v);
            let (error, node) = match response.coordinators.first() {
                Some(c) => (c.error_code, c.node_id.0),
                None => (response.error_code, response.node_id.0),
            };
            // Groups (0) and transactional ids (1) are served; share groups (2) are not.
            let served = v == 0 || key_type <= 1;
            assert_eq!((error, node), if served { (0, 1) } else { (15, -1) }, "v{v} key type {key_type}");
            encode(ApiKey::FindCoordinator, v, ResponseKind::FindCoordinator(response));
        }
    }
    for v in versions(ApiKey::ApiVersions) {
        encode(ApiKey::ApiVersions, v, ResponseKind::ApiVersions(crate::handler::api_versions::handle()));
    }
    broker.shutdown().unwrap();
}
