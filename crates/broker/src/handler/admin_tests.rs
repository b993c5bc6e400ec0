//! The admin handlers over a real broker in a temporary directory: each
//! response encodes at every served version, and the answers carry the
//! codes and values Kafka gives (sources, synonyms, errors, new partitions,
//! moved log start offsets).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::alter_configs_request::{self, AlterConfigsRequest};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::describe_log_dirs_request::{DescribableLogDirTopic, DescribeLogDirsRequest};
use kafka_protocol::messages::describe_topic_partitions_request::{DescribeTopicPartitionsRequest, TopicRequest};
use kafka_protocol::messages::elect_leaders_request::{ElectLeadersRequest, TopicPartitions};
use kafka_protocol::messages::incremental_alter_configs_request::{self, IncrementalAlterConfigsRequest};
use kafka_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_protocol::messages::{ApiKey, BrokerId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::describe_configs::{
    RESOURCE_BROKER, RESOURCE_TOPIC, SOURCE_DEFAULT, SOURCE_DYNAMIC_BROKER, SOURCE_DYNAMIC_DEFAULT_BROKER,
    SOURCE_STATIC_BROKER, SOURCE_TOPIC,
};
use crate::handler::{
    alter_configs, create_partitions, delete_records, describe_cluster, describe_configs, describe_log_dirs,
    describe_topic_partitions, elect_leaders, produce, Endpoint,
};
use crate::protocol::{encode_response, guard};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let (min, max) = guard::supported_versions(api as i16).expect("served api");
    min..=max
}

fn encode(api: ApiKey, version: i16, body: ResponseKind) {
    encode_response(api, version, 1, &body);
}

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    config.set("log.retention.ms", "5000", Source::File).unwrap();
    Broker::open(config).unwrap()
}

async fn describe(broker: &Arc<Broker>, resource_type: i8, resource: &str, version: i16) -> DescribeConfigsResult {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_include_documentation(true)
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(resource))
            .with_configuration_keys(None)]);
    let response = describe_configs::handle(broker.clone(), req, version).await;
    encode(ApiKey::DescribeConfigs, version, ResponseKind::DescribeConfigs(response.clone()));
    response.results.into_iter().next().unwrap()
}

/// `(value, source, synonym sources)` of `key` in a describe result.
fn entry(result: &DescribeConfigsResult, key: &str) -> (String, i8, Vec<(String, i8)>) {
    let e = result.configs.iter().find(|c| c.name.as_str() == key).unwrap_or_else(|| panic!("{key} described"));
    let synonyms = e.synonyms.iter().map(|s| (s.name.to_string(), s.source)).collect();
    (e.value.as_ref().unwrap().to_string(), e.config_source, synonyms)
}

async fn incremental(
    broker: &Arc<Broker>,
    resource_type: i8,
    resource: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
    version: i16,
) -> i16 {
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(s(k))
                .with_config_operation(*op)
                .with_value(v.map(s))
        })
        .collect();
    let req = IncrementalAlterConfigsRequest::default().with_validate_only(validate_only).with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(resource))
            .with_configs(configs),
    ]);
    let response = alter_configs::handle_incremental(broker.clone(), req).await;
    let code = response.responses[0].error_code;
    encode(ApiKey::IncrementalAlterConfigs, version, ResponseKind::IncrementalAlterConfigs(response));
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_and_alter_configs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let overrides = BTreeMap::from([("segment.bytes".to_string(), "4096".to_string())]);
    broker.create_topic("t", 1, overrides).unwrap();

    for v in versions(ApiKey::DescribeConfigs) {
        let t = describe(&broker, RESOURCE_TOPIC, "t", v).await;
        assert_eq!(t.error_code, 0);
        assert_eq!(entry(&t, "segment.bytes").1, SOURCE_TOPIC);
        assert_eq!(
            entry(&t, "segment.bytes").2,
            vec![("segment.bytes".into(), SOURCE_TOPIC), ("log.segment.bytes".into(), SOURCE_DEFAULT)]
        );
        // Set in the (static) broker file: the topic inherits it with that source.
        assert_eq!(
            entry(&t, "retention.ms"),
            (
                "5000".into(),
                SOURCE_STATIC_BROKER,
                vec![("log.retention.ms".into(), SOURCE_STATIC_BROKER), ("log.retention.ms".into(), SOURCE_DEFAULT)]
            )
        );
        assert_eq!(entry(&t, "remote.storage.enable").0, "false");
        if v >= 3 {
            let e = t.configs.iter().find(|c| c.name.as_str() == "min.cleanable.dirty.ratio").unwrap();
            assert_eq!(e.config_type, 6, "DOUBLE");
            assert!(e.documentation.is_some());
        }
        let unknown = describe(&broker, RESOURCE_TOPIC, "nope", v).await;
        assert_eq!(unknown.error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");
        let b = describe(&broker, RESOURCE_BROKER, "1", v).await;
        assert_eq!(b.error_code, 0);
        let listen = b.configs.iter().find(|c| c.name.as_str() == "listen").unwrap();
        assert!(listen.read_only);
        assert!(!b.configs.iter().find(|c| c.name.as_str() == "log.retention.ms").unwrap().read_only);
        assert_eq!(describe(&broker, RESOURCE_BROKER, "7", v).await.error_code, 42, "INVALID_REQUEST");
        assert_eq!(describe(&broker, 3, "x", v).await.error_code, 42);
    }

    for v in versions(ApiKey::IncrementalAlterConfigs) {
        // validate_only changes nothing.
        assert_eq!(incremental(&broker, RESOURCE_TOPIC, "t", &[("retention.ms", 0, Some("9"))], true, v).await, 0);
        assert_eq!(broker.topic_configs("t").unwrap().get("retention.ms"), None);
        assert_eq!(incremental(&broker, RESOURCE_TOPIC, "t", &[("retention.ms", 0, Some("9"))], false, v).await, 0);
        assert_eq!(broker.topic_configs("t").unwrap()["retention.ms"], "9");
        assert_eq!(incremental(&broker, RESOURCE_TOPIC, "t", &[("retention.ms", 1, None)], false, v).await, 0);
        assert_eq!(broker.topic_configs("t").unwrap().get("retention.ms"), None);
        // Bad names and values: INVALID_CONFIG; bad requests: INVALID_REQUEST.
        assert_eq!(incremental(&broker, RESOURCE_TOPIC, "t", &[("retention.msx", 0, Some("1"))], false, v).await, 40);
        assert_eq!(incremental(&broker, RESOURCE_TOPIC, "t", &[("retention.ms", 2, Some("1"))], false, v).await, 40);
        assert_eq!(incremental(&broker, RESOURCE_TOPIC, "t", &[("retention.ms", 9, Some("1"))], false, v).await, 42);
        let dup = [("retention.ms", 0, Some("1")), ("retention.ms", 1, None)];
        assert_eq!(incremental(&broker, RESOURCE_TOPIC, "t", &dup, false, v).await, 42);
        assert_eq!(incremental(&broker, RESOURCE_TOPIC, "nope", &[("retention.ms", 1, None)], false, v).await, 3);
        // Read-only broker keys, another broker.
        assert_eq!(incremental(&broker, RESOURCE_BROKER, "1", &[("log.dirs", 0, Some("/x"))], false, v).await, 42);
        assert_eq!(incremental(&broker, RESOURCE_BROKER, "2", &[("log.retention.ms", 1, None)], false, v).await, 42);
    }

    // A cluster default, then a per-broker value, each with its source; a topic follows them.
    let set = |key, value| [(key, 0i8, Some(value))];
    assert_eq!(incremental(&broker, RESOURCE_BROKER, "", &set("message.max.bytes", "3000"), false, 1).await, 0);
    let t = describe(&broker, RESOURCE_TOPIC, "t", 4).await;
    assert_eq!(entry(&t, "max.message.bytes").0, "3000");
    assert_eq!(entry(&t, "max.message.bytes").1, SOURCE_DYNAMIC_DEFAULT_BROKER);
    assert_eq!(broker.topic("t").unwrap().partitions[0].log.config().max_message_bytes, 3000);
    assert_eq!(incremental(&broker, RESOURCE_BROKER, "1", &set("message.max.bytes", "2000"), false, 1).await, 0);
    let b = describe(&broker, RESOURCE_BROKER, "1", 4).await;
    assert_eq!(
        entry(&b, "message.max.bytes"),
        (
            "2000".into(),
            SOURCE_DYNAMIC_BROKER,
            vec![
                ("message.max.bytes".into(), SOURCE_DYNAMIC_BROKER),
                ("message.max.bytes".into(), SOURCE_DYNAMIC_DEFAULT_BROKER),
                ("message.max.bytes".into(), SOURCE_DEFAULT)
            ]
        )
    );
    let defaults = describe(&broker, RESOURCE_BROKER, "", 4).await;
    assert_eq!(defaults.configs.len(), 1);
    assert_eq!(entry(&defaults, "message.max.bytes").1, SOURCE_DYNAMIC_DEFAULT_BROKER);
    assert_eq!(broker.topic("t").unwrap().partitions[0].log.config().max_message_bytes, 2000);

    // AlterConfigs replaces the whole set.
    for v in versions(ApiKey::AlterConfigs) {
        let req =
            AlterConfigsRequest::default().with_resources(vec![alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(RESOURCE_TOPIC)
                .with_resource_name(s("t"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(s("cleanup.policy"))
                    .with_value(Some(s("compact")))])]);
        let response = alter_configs::handle(broker.clone(), req).await;
        assert_eq!(response.responses[0].error_code, 0);
        encode(ApiKey::AlterConfigs, v, ResponseKind::AlterConfigs(response));
        let configs = broker.topic_configs("t").unwrap();
        assert_eq!(configs, BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]));
    }
    broker.shutdown().unwrap();
    drop(broker);
    // Every change is in the metadata log and applied again on start.
    let broker = open(dir.path());
    assert_eq!(broker.topic_configs("t").unwrap()["cleanup.policy"], "compact");
    assert_eq!(broker.topic("t").unwrap().partitions[0].log.config().max_message_bytes, 2000);
    assert_eq!(broker.effective_config().get("message.max.bytes"), Some(("2000", Source::DynamicBroker)));
    broker.shutdown().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_records_cluster_and_log_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("p", 1, BTreeMap::new()).unwrap();
    let endpoint = Endpoint { host: "127.0.0.1".into(), port: 9092 };

    for v in versions(ApiKey::CreatePartitions) {
        let count = broker.topic("p").unwrap().partitions.len() as i32;
        let topic =
            |n: &str, c| CreatePartitionsTopic::default().with_name(name(n)).with_count(c).with_assignments(None);
        let bad_assignment = Some(vec![CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(5)])]);
        let req = CreatePartitionsRequest::default().with_topics(vec![
            topic("p", count + 1),
            topic("nope", 3),
            topic("x", 1),
            topic("x", 2),
        ]);
        let response = create_partitions::handle(broker.clone(), req).await;
        let codes: Vec<i16> = response.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![0, 3, 42, 42], "v{v}");
        encode(ApiKey::CreatePartitions, v, ResponseKind::CreatePartitions(response));
        assert_eq!(broker.topic("p").unwrap().partitions.len() as i32, count + 1);
        let req = CreatePartitionsRequest::default()
            .with_validate_only(true)
            .with_topics(vec![topic("p", count), topic("p2", 1)]);
        broker.create_topic("p2", 1, BTreeMap::new()).ok();
        let response = create_partitions::handle(broker.clone(), req).await;
        assert_eq!(response.results[0].error_code, 37, "INVALID_PARTITIONS");
        let req = CreatePartitionsRequest::default()
            .with_validate_only(true)
            .with_topics(vec![topic("p", count + 5).with_assignments(bad_assignment)]);
        let response = create_partitions::handle(broker.clone(), req).await;
        assert_eq!(response.results[0].error_code, 39, "INVALID_REPLICA_ASSIGNMENT");
        assert_eq!(broker.topic("p").unwrap().partitions.len() as i32, count + 1, "validate_only creates nothing");
    }
    let partitions = broker.topic("p").unwrap().partitions.len();
    assert_eq!(partitions, 1 + versions(ApiKey::CreatePartitions).count());

    // Records to delete.
    let batch = Bytes::from(
        runnel_log::testing::BatchBuilder::new(1_700_000_000_000)
            .record(Some(b"k"), Some(b"v"), 0)
            .record(None, Some(b"w"), 0)
            .build(),
    );
    for _ in 0..5 {
        let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![
            TopicProduceData::default().with_name(name("p")).with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.clone()))]),
        ]);
        produce::append(broker.clone(), req, 9).await.await.unwrap();
    }
    for v in versions(ApiKey::DeleteRecords) {
        let partition =
            |index, offset| DeleteRecordsPartition::default().with_partition_index(index).with_offset(offset);
        let offset = 2 + i64::from(v) * 2;
        let req = DeleteRecordsRequest::default().with_topics(vec![
            DeleteRecordsTopic::default().with_name(name("p")).with_partitions(vec![
                partition(0, offset),
                partition(1, 5),
                partition(99, 0),
            ]),
            DeleteRecordsTopic::default().with_name(name("nope")).with_partitions(vec![partition(0, 0)]),
        ]);
        let response = delete_records::handle(broker.clone(), req).await;
        let results: Vec<(i16, i64)> =
            response.topics.iter().flat_map(|t| t.partitions.iter().map(|p| (p.error_code, p.low_watermark))).collect();
        assert_eq!(results, vec![(0, offset), (1, -1), (3, -1), (3, -1)], "v{v}");
        encode(ApiKey::DeleteRecords, v, ResponseKind::DeleteRecords(response));
    }
    let hw_req = DeleteRecordsRequest::default().with_topics(vec![DeleteRecordsTopic::default()
        .with_name(name("p"))
        .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(0).with_offset(-1)])]);
    let response = delete_records::handle(broker.clone(), hw_req).await;
    assert_eq!(response.topics[0].partitions[0].low_watermark, 10, "-1 means the high watermark");

    for v in versions(ApiKey::DescribeCluster) {
        let response =
            describe_cluster::handle(&broker, &endpoint, DescribeClusterRequest::default().with_endpoint_type(1), v);
        assert_eq!(response.error_code, 0);
        assert_eq!(response.brokers.len(), 1);
        assert_eq!(response.cluster_id.as_str(), broker.cluster_id());
        encode(ApiKey::DescribeCluster, v, ResponseKind::DescribeCluster(response));
        if v >= 1 {
            let response = describe_cluster::handle(
                &broker,
                &endpoint,
                DescribeClusterRequest::default().with_endpoint_type(2),
                v,
            );
            assert_eq!(response.error_code, 114, "MISMATCHED_ENDPOINT_TYPE");
        }
    }
    for v in versions(ApiKey::DescribeLogDirs) {
        for topics in
            [None, Some(vec![DescribableLogDirTopic::default().with_topic(name("p")).with_partitions(vec![0, 42])])]
        {
            let all = topics.is_none();
            let response =
                describe_log_dirs::handle(broker.clone(), DescribeLogDirsRequest::default().with_topics(topics), v)
                    .await;
            let result = &response.results[0];
            let p = result.topics.iter().find(|t| t.name.as_str() == "p").unwrap();
            assert_eq!(p.partitions.len(), if all { partitions } else { 1 });
            assert!(p.partitions.iter().find(|x| x.partition_index == 0).unwrap().partition_size > 0);
            if v >= 4 {
                assert!(result.total_bytes > 0 && result.usable_bytes > 0);
            }
            encode(ApiKey::DescribeLogDirs, v, ResponseKind::DescribeLogDirs(response));
        }
    }
    for v in versions(ApiKey::ElectLeaders) {
        let req = ElectLeadersRequest::default().with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(name("p"))
            .with_partitions(vec![0, 77])]));
        let response = elect_leaders::handle(&broker, req);
        let codes: Vec<i16> =
            response.replica_election_results[0].partition_result.iter().map(|p| p.error_code).collect();
        assert_eq!(codes, vec![84, 3]);
        encode(ApiKey::ElectLeaders, v, ResponseKind::ElectLeaders(response));
        let all = elect_leaders::handle(&broker, ElectLeadersRequest::default().with_topic_partitions(None));
        assert!(all.replica_election_results.is_empty());
    }
    // Paging by partitions: p has several, p2 one.
    let mut cursor = None;
    let mut seen = Vec::new();
    for _ in 0..20 {
        let req = DescribeTopicPartitionsRequest::default()
            .with_topics(vec![
                TopicRequest::default().with_name(name("p2")),
                TopicRequest::default().with_name(name("p")),
            ])
            .with_response_partition_limit(2)
            .with_cursor(cursor.take().map(
                |c: kafka_protocol::messages::describe_topic_partitions_response::Cursor| {
                    kafka_protocol::messages::describe_topic_partitions_request::Cursor::default()
                        .with_topic_name(c.topic_name)
                        .with_partition_index(c.partition_index)
                },
            ));
        let response = describe_topic_partitions::handle(&broker, req);
        let count: usize = response.topics.iter().map(|t| t.partitions.len()).sum();
        assert!(count <= 2);
        for t in &response.topics {
            for p in &t.partitions {
                seen.push((t.name.as_ref().unwrap().to_string(), p.partition_index));
            }
        }
        encode(ApiKey::DescribeTopicPartitions, 0, ResponseKind::DescribeTopicPartitions(response.clone()));
        match response.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut expected: Vec<(String, i32)> = (0..partitions as i32).map(|i| ("p".to_string(), i)).collect();
    expected.push(("p2".to_string(), 0));
    assert_eq!(seen, expected);
    broker.shutdown().unwrap();
    drop(broker);
    let broker = open(dir.path());
    assert_eq!(broker.topic("p").unwrap().partitions.len(), partitions, "new partitions survive a restart");
    assert_eq!(broker.topic("p").unwrap().partitions[0].log.log_start_offset(), 10, "and so does the start offset");
    broker.shutdown().unwrap();
}

/// Goal: a compacted topic refuses a batch holding a record without a key
/// and names that record (KIP-467), as Kafka does; keyed batches pass.
/// Method: produce to a topic switched to `cleanup.policy=compact` through
/// IncrementalAlterConfigs APPEND, at every Produce version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_topics_refuse_records_without_keys() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    broker.create_topic("c", 1, BTreeMap::new()).unwrap();
    assert_eq!(incremental(&broker, RESOURCE_TOPIC, "c", &[("cleanup.policy", 2, Some("compact"))], false, 1).await, 0);
    let keyless = runnel_log::testing::BatchBuilder::new(1_700_000_000_000)
        .record(Some(b"k"), Some(b"v"), 0)
        .record(None, Some(b"w"), 0)
        .build();
    let keyed = runnel_log::testing::BatchBuilder::new(1_700_000_000_000).record(Some(b"k"), Some(b"v"), 0).build();
    for v in versions(ApiKey::Produce) {
        for (batch, ok) in [(&keyless, false), (&keyed, true)] {
            let data = TopicProduceData::default().with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(batch.clone())))]);
            let data = if v >= 13 {
                data.with_topic_id(broker.topic("c").unwrap().meta.id)
            } else {
                data.with_name(name("c"))
            };
            let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(1000).with_topic_data(vec![data]);
            let response = produce::append(broker.clone(), req, v).await.await.unwrap();
            let p = &response.responses[0].partition_responses[0];
            if ok {
                assert_eq!(p.error_code, 0, "v{v}");
            } else {
                assert_eq!(p.error_code, 87, "v{v}: INVALID_RECORD");
                let indexes: Vec<i32> = p.record_errors.iter().map(|e| e.batch_index).collect();
                assert_eq!(indexes, if v >= 8 { vec![1] } else { vec![] }, "v{v}");
            }
            encode(ApiKey::Produce, v, ResponseKind::Produce(response));
        }
    }
    broker.shutdown().unwrap();
}
