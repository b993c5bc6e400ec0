//! The authorization layer in front of the handlers, driven through
//! [`dispatch`] with a real broker in a temporary directory.
//!
//! Goal: every answer the checks build or merge encodes at every version the
//! broker serves (a field set in a version that lacks it panics at encode),
//! and the checks give Kafka's error codes. Method: user alice may WRITE,
//! READ and DESCRIBE topic `t` and nothing else; each request names `t` and
//! the existing topic `u`, group `g` and transactional id `x`; every
//! response is encoded at its version.

use std::sync::Arc;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::authz::{AclBinding, Operation, PatternType, Permission, ResourceType, STANDARD_AUTHORIZER};
use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::dispatch;
use crate::protocol::{encode_response, guard, Request};
use crate::session::{Principal, Session};

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn topic(text: &str) -> TopicName {
    TopicName(s(text))
}

fn open_broker(dir: &std::path::Path) -> Arc<Broker> {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    config.set("authorizer.class.name", STANDARD_AUTHORIZER, Source::Override).unwrap();
    config.set("super.users", "User:admin", Source::Override).unwrap();
    let broker = Broker::open(config).unwrap();
    for name in ["t", "u"] {
        broker.create_topic(name, 1, Default::default()).unwrap();
    }
    let acl = |op| AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: "t".into(),
        pattern_type: PatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: op,
        permission: Permission::Allow,
    };
    broker.create_acls(&[acl(Operation::Write), acl(Operation::Read)]).unwrap();
    broker
}

/// A request of `api` at `version` naming `t`, `u`, group `g` and
/// transactional id `x`, with only fields the version has.
fn request(api: ApiKey, v: i16, broker: &Broker) -> RequestKind {
    use kafka_protocol::messages::{
        create_topics_request as ct, delete_records_request as dr, delete_topics_request as dt,
        describe_configs_request as dc, fetch_request as f, list_offsets_request as lo, metadata_request as m,
        offset_commit_request as oc, offset_fetch_request as of, produce_request as p,
    };
    let id = |name: &str| broker.topic(name).unwrap().meta.id;
    let names = ["t", "u"];
    match api {
        ApiKey::Produce => ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(1000)
            .with_topic_data(
                names
                    .iter()
                    .map(|n| {
                        let d = p::TopicProduceData::default()
                            .with_partition_data(vec![p::PartitionProduceData::default().with_index(0)]);
                        if v >= 13 {
                            d.with_topic_id(id(n))
                        } else {
                            d.with_name(topic(n))
                        }
                    })
                    .collect(),
            )
            .into(),
        ApiKey::Fetch => FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_topics(
                names
                    .iter()
                    .map(|n| {
                        let t = f::FetchTopic::default().with_partitions(vec![f::FetchPartition::default()]);
                        if v >= 13 {
                            t.with_topic_id(id(n))
                        } else {
                            t.with_topic(topic(n))
                        }
                    })
                    .collect(),
            )
            .into(),
        ApiKey::ListOffsets => ListOffsetsRequest::default()
            .with_topics(
                names
                    .iter()
                    .map(|n| {
                        lo::ListOffsetsTopic::default()
                            .with_name(topic(n))
                            .with_partitions(vec![lo::ListOffsetsPartition::default().with_timestamp(-1)])
                    })
                    .collect(),
            )
            .into(),
        ApiKey::Metadata => MetadataRequest::default()
            .with_topics(Some(
                ["t", "u", "new"]
                    .iter()
                    .map(|n| m::MetadataRequestTopic::default().with_name(Some(topic(n))))
                    .collect(),
            ))
            .with_allow_auto_topic_creation(true)
            .with_include_topic_authorized_operations(v >= 8)
            .into(),
        ApiKey::CreateTopics => CreateTopicsRequest::default()
            .with_topics(vec![ct::CreatableTopic::default()
                .with_name(topic("new"))
                .with_num_partitions(1)
                .with_replication_factor(1)])
            .into(),
        ApiKey::DeleteTopics if v >= 6 => DeleteTopicsRequest::default()
            .with_topics(vec![dt::DeleteTopicState::default().with_name(Some(topic("u")))])
            .into(),
        ApiKey::DeleteTopics => DeleteTopicsRequest::default().with_topic_names(vec![topic("u")]).into(),
        ApiKey::DeleteRecords => DeleteRecordsRequest::default()
            .with_topics(vec![dr::DeleteRecordsTopic::default()
                .with_name(topic("u"))
                .with_partitions(vec![dr::DeleteRecordsPartition::default()])])
            .into(),
        ApiKey::DescribeConfigs => DescribeConfigsRequest::default()
            .with_resources(vec![
                dc::DescribeConfigsResource::default().with_resource_type(2).with_resource_name(s("u")),
                dc::DescribeConfigsResource::default().with_resource_type(4).with_resource_name(s("1")),
            ])
            .into(),
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::default().into(),
        ApiKey::ElectLeaders => ElectLeadersRequest::default().into(),
        ApiKey::DescribeCluster => DescribeClusterRequest::default().into(),
        ApiKey::FindCoordinator if v >= 4 => {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")]).into()
        }
        ApiKey::FindCoordinator => FindCoordinatorRequest::default().with_key(s("g")).into(),
        ApiKey::JoinGroup => JoinGroupRequest::default().with_group_id(GroupId(s("g"))).into(),
        ApiKey::SyncGroup => SyncGroupRequest::default().with_group_id(GroupId(s("g"))).into(),
        ApiKey::Heartbeat => HeartbeatRequest::default().with_group_id(GroupId(s("g"))).into(),
        ApiKey::LeaveGroup => LeaveGroupRequest::default().with_group_id(GroupId(s("g"))).into(),
        ApiKey::OffsetCommit => OffsetCommitRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(vec![oc::OffsetCommitRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![oc::OffsetCommitRequestPartition::default()])])
            .into(),
        ApiKey::OffsetFetch if v >= 8 => OffsetFetchRequest::default()
            .with_groups(vec![of::OffsetFetchRequestGroup::default().with_group_id(GroupId(s("g")))])
            .into(),
        ApiKey::OffsetFetch => OffsetFetchRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(Some(vec![of::OffsetFetchRequestTopic::default()
                .with_name(topic("t"))
                .with_partition_indexes(vec![0])]))
            .into(),
        ApiKey::DescribeGroups => DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]).into(),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]).into(),
        ApiKey::InitProducerId => InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s("x"))))
            .with_transaction_timeout_ms(60_000)
            .into(),
        ApiKey::AddOffsetsToTxn => {
            AddOffsetsToTxnRequest::default().with_transactional_id(TransactionalId(s("x"))).into()
        }
        ApiKey::EndTxn => EndTxnRequest::default().with_transactional_id(TransactionalId(s("x"))).into(),
        ApiKey::DescribeTransactions => {
            DescribeTransactionsRequest::default().with_transactional_ids(vec![TransactionalId(s("x"))]).into()
        }
        ApiKey::ConsumerGroupDescribe => {
            ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("g"))]).into()
        }
        ApiKey::ConsumerGroupHeartbeat => {
            ConsumerGroupHeartbeatRequest::default().with_group_id(GroupId(s("g"))).into()
        }
        ApiKey::CreateAcls => CreateAclsRequest::default().into(),
        ApiKey::DescribeAcls => DescribeAclsRequest::default()
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1)
            .into(),
        ApiKey::DeleteAcls => DeleteAclsRequest::default().into(),
        ApiKey::DescribeUserScramCredentials => DescribeUserScramCredentialsRequest::default().into(),
        ApiKey::AlterUserScramCredentials => AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                .with_name(s("bob"))
                .with_mechanism(1)])
            .into(),
        ApiKey::DescribeClientQuotas => DescribeClientQuotasRequest::default().into(),
        ApiKey::AlterClientQuotas => AlterClientQuotasRequest::default()
            .with_entries(vec![alter_client_quotas_request::EntryData::default().with_entity(vec![
                alter_client_quotas_request::EntityData::default()
                    .with_entity_type(s("client-id"))
                    .with_entity_name(Some(s("c"))),
            ])])
            .into(),
        other => panic!("no request for {other:?}"),
    }
}

/// The APIs whose checks this test drives.
const APIS: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::DescribeConfigs,
    ApiKey::DescribeLogDirs,
    ApiKey::ElectLeaders,
    ApiKey::DescribeCluster,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::InitProducerId,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::DescribeTransactions,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::CreateAcls,
    ApiKey::DescribeAcls,
    ApiKey::DeleteAcls,
    ApiKey::DescribeUserScramCredentials,
    ApiKey::AlterUserScramCredentials,
    ApiKey::DescribeClientQuotas,
    ApiKey::AlterClientQuotas,
];

async fn send(broker: &Arc<Broker>, session: &Session, api: ApiKey, version: i16) -> Option<ResponseKind> {
    let header = RequestHeader::default().with_request_api_key(api as i16).with_request_api_version(version);
    let body = request(api, version, broker);
    let pending = dispatch(broker, session, Request { header, api_key: api, body }).await.expect("served");
    pending.await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_answers_encode_at_every_served_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let alice = Session::for_tests(Principal::user("alice".into()));
    for &api in APIS {
        let (min, max) = guard::supported_versions(api as i16).expect("served");
        for v in min..=max {
            if let Some(response) = send(&broker, &alice, api, v).await {
                // Panics on a field the version does not have.
                encode_response(api, v, 1, &response);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_give_kafkas_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open_broker(dir.path());
    let alice = Session::for_tests(Principal::user("alice".into()));
    let codes = |mut topics: Vec<(String, i16)>| {
        topics.sort();
        topics
    };

    let Some(ResponseKind::Produce(r)) = send(&broker, &alice, ApiKey::Produce, 9).await else { panic!() };
    let errors = |name: &str| -> Vec<i16> {
        let t = r.responses.iter().find(|t| t.name.as_str() == name).expect("topic answered");
        t.partition_responses.iter().map(|p| p.error_code).collect()
    };
    assert_eq!(errors("u"), [29]);
    // `t` is allowed: whatever the handler says of its empty batch, it is no denial.
    assert!(!errors("t").contains(&29));

    let Some(ResponseKind::Metadata(r)) = send(&broker, &alice, ApiKey::Metadata, 12).await else { panic!() };
    let got = codes(r.topics.iter().map(|t| (t.name.as_ref().unwrap().to_string(), t.error_code)).collect());
    assert_eq!(got, [("new".to_string(), 29), ("t".to_string(), 0), ("u".to_string(), 29)]);
    assert!(broker.topic("new").is_none(), "no auto-creation without DESCRIBE and CREATE");
    let t = r.topics.iter().find(|t| t.error_code == 0).unwrap();
    let read_write_describe = (1 << 3) | (1 << 4) | (1 << 8);
    assert_eq!(t.topic_authorized_operations, read_write_describe);

    // Metadata v0 naming only denied topics must not turn into "all topics".
    let header = RequestHeader::default().with_request_api_key(ApiKey::Metadata as i16).with_request_api_version(0);
    let named_u = metadata_request::MetadataRequestTopic::default().with_name(Some(topic("u")));
    let body = MetadataRequest::default().with_topics(Some(vec![named_u])).into();
    let pending = dispatch(&broker, &alice, Request { header, api_key: ApiKey::Metadata, body }).await.unwrap();
    let Some(ResponseKind::Metadata(r)) = pending.await else { panic!() };
    let got: Vec<_> = r.topics.iter().map(|t| (t.name.as_ref().unwrap().to_string(), t.error_code)).collect();
    assert_eq!(got, [("u".to_string(), 29)]);

    let Some(ResponseKind::JoinGroup(r)) = send(&broker, &alice, ApiKey::JoinGroup, 9).await else { panic!() };
    assert_eq!(r.error_code, 30);
    let Some(ResponseKind::InitProducerId(r)) = send(&broker, &alice, ApiKey::InitProducerId, 5).await else {
        panic!()
    };
    assert_eq!(r.error_code, 53);
    let Some(ResponseKind::DescribeCluster(r)) = send(&broker, &alice, ApiKey::DescribeCluster, 1).await else {
        panic!()
    };
    assert_eq!(r.error_code, 31);
    let Some(ResponseKind::DescribeAcls(r)) = send(&broker, &alice, ApiKey::DescribeAcls, 3).await else { panic!() };
    assert_eq!(r.error_code, 31);
    // SCRAM credentials and client quotas need DESCRIBE / ALTER and DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster.
    let scram = send(&broker, &alice, ApiKey::DescribeUserScramCredentials, 0).await;
    let Some(ResponseKind::DescribeUserScramCredentials(r)) = scram else { panic!() };
    assert_eq!(r.error_code, 31);
    let scram = send(&broker, &alice, ApiKey::AlterUserScramCredentials, 0).await;
    let Some(ResponseKind::AlterUserScramCredentials(r)) = scram else { panic!() };
    assert_eq!(r.results.iter().map(|r| (r.user.as_str(), r.error_code)).collect::<Vec<_>>(), [("bob", 31)]);
    let quotas = send(&broker, &alice, ApiKey::DescribeClientQuotas, 1).await;
    let Some(ResponseKind::DescribeClientQuotas(r)) = quotas else { panic!() };
    assert_eq!((r.error_code, r.entries.is_none()), (31, true));
    let quotas = send(&broker, &alice, ApiKey::AlterClientQuotas, 1).await;
    let Some(ResponseKind::AlterClientQuotas(r)) = quotas else { panic!() };
    assert_eq!(r.entries.iter().map(|e| e.error_code).collect::<Vec<_>>(), [31]);
    assert!(broker.client_quotas().is_empty(), "a denied alter changes nothing");

    // CREATE on a topic creates it, but without DESCRIBE_CONFIGS its
    // configs stay hidden (v5+).
    let Some(ResponseKind::CreateTopics(r)) = send(&broker, &alice, ApiKey::CreateTopics, 7).await else { panic!() };
    assert_eq!(r.topics[0].error_code, 29, "no CREATE on `new`");
    let create_made = AclBinding {
        resource_type: ResourceType::Topic,
        resource_name: "made".into(),
        pattern_type: PatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: Operation::Create,
        permission: Permission::Allow,
    };
    broker.create_acls(&[create_made]).unwrap();
    let made = create_topics_request::CreatableTopic::default()
        .with_name(topic("made"))
        .with_num_partitions(2)
        .with_replication_factor(1);
    let header = RequestHeader::default().with_request_api_key(ApiKey::CreateTopics as i16).with_request_api_version(7);
    let body = CreateTopicsRequest::default().with_topics(vec![made]).into();
    let pending = dispatch(&broker, &alice, Request { header, api_key: ApiKey::CreateTopics, body }).await.unwrap();
    let Some(ResponseKind::CreateTopics(r)) = pending.await else { panic!() };
    let t = &r.topics[0];
    assert_eq!((t.error_code, t.topic_config_error_code, t.num_partitions), (0, 29, -1));
    assert_eq!(broker.topic("made").unwrap().partitions.len(), 2);

    // A super user sees everything, ACLs included.
    let admin = Session::for_tests(Principal::user("admin".into()));
    let Some(ResponseKind::DescribeAcls(r)) = send(&broker, &admin, ApiKey::DescribeAcls, 3).await else { panic!() };
    assert_eq!(r.error_code, 0, "{r:?}");
    let acls: usize = r.resources.iter().map(|r| r.acls.len()).sum();
    assert_eq!((r.resources.len(), acls), (2, 3), "{r:?}");
}
