//! The consumer group protocol's handlers (KIP-848) against a broker in a
//! temporary directory: every served version of ConsumerGroupHeartbeat and
//! ConsumerGroupDescribe answers with a response that encodes at that
//! version, and the error codes at the protocol edge are Kafka's: the
//! classic/consumer clash (GROUP_ID_NOT_FOUND, INCONSISTENT_GROUP_PROTOCOL),
//! STALE_MEMBER_EPOCH on OffsetCommit and OffsetFetch,
//! INVALID_REGULAR_EXPRESSION, and ListGroups' type and state.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequest, OffsetFetchRequestGroup};
use kafka_protocol::messages::{ApiKey, GroupId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::{
    consumer_group_describe, consumer_group_heartbeat, join_group, list_groups, offset_commit, offset_fetch,
};
use crate::protocol::encode_response;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn peer() -> SocketAddr {
    "127.0.0.1:5555".parse().unwrap()
}

fn open(dir: &std::path::Path) -> Arc<Broker> {
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.to_string_lossy(), Source::Override).unwrap();
    config.set("group.initial.rebalance.delay.ms", "0", Source::Override).unwrap();
    config.set("offsets.topic.num.partitions", "3", Source::Override).unwrap();
    let broker = Broker::open(config).unwrap();
    broker.create_topic("t", 4, Default::default()).unwrap();
    broker
}

fn join_req(group: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("t"))]))
        .with_topic_partitions(Some(Vec::new()))
}

async fn heartbeat(broker: &Arc<Broker>, req: ConsumerGroupHeartbeatRequest, v: i16) -> ConsumerGroupHeartbeatResponse {
    let response = consumer_group_heartbeat::handle(broker.clone(), req, "client".into(), peer(), v).await.await;
    encode_response(ApiKey::ConsumerGroupHeartbeat, v, 1, &ResponseKind::ConsumerGroupHeartbeat(response.clone()));
    response
}

async fn commit(broker: &Arc<Broker>, group: &str, member: &str, epoch: i32) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(epoch)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partitions(vec![OffsetCommitRequestPartition::default().with_committed_offset(3)])]);
    offset_commit::handle(broker.clone(), req).await.await.topics[0].partitions[0].error_code
}

/// Goal: a member joins at every served version (v0 without a member id:
/// the broker names it), gets all four partitions at epoch 1, commits with
/// its epoch, and is described; a stale epoch is refused on OffsetCommit and
/// OffsetFetch; it leaves with -1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_commit_fetch_describe_and_leave_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    for v in 0..=1i16 {
        let group = format!("g{v}");
        let member = if v == 0 { "" } else { "member-one" };
        let joined = heartbeat(&broker, join_req(&group, member), v).await;
        assert_eq!(joined.error_code, 0, "v{v}: {:?}", joined.error_message);
        let member_id = joined.member_id.clone().unwrap().to_string();
        assert!(!member_id.is_empty());
        assert_eq!(joined.member_epoch, 1);
        assert_eq!(joined.heartbeat_interval_ms, 500);
        let assigned = joined.assignment.unwrap().topic_partitions;
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].topic_id, broker.topic("t").unwrap().meta.id);
        assert_eq!(assigned[0].partitions, vec![0, 1, 2, 3]);

        assert_eq!(commit(&broker, &group, &member_id, 1).await, 0);
        assert_eq!(commit(&broker, &group, &member_id, 2).await, ResponseError::StaleMemberEpoch.code());
        assert_eq!(commit(&broker, &group, "stranger", 1).await, ResponseError::UnknownMemberId.code());
        let fetch = |epoch| {
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(&group)))
                .with_member_id(Some(s(&member_id)))
                .with_member_epoch(epoch)
                .with_topics(None)])
        };
        let fetched = offset_fetch::handle(&broker, fetch(1), 9);
        assert_eq!(fetched.groups[0].error_code, 0);
        assert_eq!(fetched.groups[0].topics[0].partitions[0].committed_offset, 3);
        let stale = offset_fetch::handle(&broker, fetch(0), 9);
        assert_eq!(stale.groups[0].error_code, ResponseError::StaleMemberEpoch.code());

        let describe = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(s(&group)), GroupId(s("nope"))])
            .with_include_authorized_operations(true);
        let described = consumer_group_describe::handle(&broker, describe, v);
        encode_response(ApiKey::ConsumerGroupDescribe, v, 1, &ResponseKind::ConsumerGroupDescribe(described.clone()));
        let g = &described.groups[0];
        assert_eq!(
            (g.error_code, g.group_state.as_str(), g.group_epoch, g.assignor_name.as_str()),
            (0, "Stable", 1, "uniform")
        );
        assert_eq!(g.members[0].member_id.as_str(), member_id);
        assert_eq!(g.members[0].assignment.topic_partitions[0].partitions, vec![0, 1, 2, 3]);
        assert_eq!(described.groups[1].error_code, ResponseError::GroupIdNotFound.code());

        let leave = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_member_id(s(&member_id))
            .with_member_epoch(-1);
        let left = heartbeat(&broker, leave, v).await;
        assert_eq!((left.error_code, left.member_epoch), (0, -1));
    }
    broker.shutdown().unwrap();
}

/// Goal: one group id serves one protocol. A consumer heartbeat for a
/// classic group with members gets GROUP_ID_NOT_FOUND; a JoinGroup for a
/// consumer group with members gets INCONSISTENT_GROUP_PROTOCOL; a bad
/// regex gets INVALID_REGULAR_EXPRESSION; an unknown assignor
/// UNSUPPORTED_ASSIGNOR; ListGroups filters by type and shows consumer
/// states; ConsumerGroupDescribe of a classic group is GROUP_ID_NOT_FOUND.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_and_consumer_groups_do_not_mix() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let classic_join = |group: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("range")).with_metadata(Bytes::new())])
    };
    let joined = join_group::handle(broker.clone(), classic_join("classic"), "c".into(), peer(), 3).await.await;
    assert_eq!(joined.error_code, 0);
    let clash = heartbeat(&broker, join_req("classic", "m"), 1).await;
    assert_eq!(clash.error_code, ResponseError::GroupIdNotFound.code());

    assert_eq!(heartbeat(&broker, join_req("modern", "m"), 1).await.error_code, 0);
    let refused = join_group::handle(broker.clone(), classic_join("modern"), "c".into(), peer(), 3).await.await;
    assert_eq!(refused.error_code, ResponseError::InconsistentGroupProtocol.code());

    let bad_regex = join_req("modern", "r").with_subscribed_topic_regex(Some(s("t(")));
    assert_eq!(heartbeat(&broker, bad_regex, 1).await.error_code, ResponseError::InvalidRegularExpression.code());
    let assignor = join_req("modern", "a").with_server_assignor(Some(s("sticky")));
    assert_eq!(heartbeat(&broker, assignor, 1).await.error_code, ResponseError::UnsupportedAssignor.code());
    let no_id = join_req("modern", "");
    assert_eq!(heartbeat(&broker, no_id, 1).await.error_code, ResponseError::InvalidRequest.code());

    let listed = list_groups::handle(&broker, ListGroupsRequest::default().with_types_filter(vec![s("consumer")]), 5);
    let names: Vec<(&str, &str, &str)> =
        listed.groups.iter().map(|g| (g.group_id.as_str(), g.group_type.as_str(), g.group_state.as_str())).collect();
    assert_eq!(names, vec![("modern", "consumer", "Stable")]);
    let describe = ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s("classic"))]);
    let described = consumer_group_describe::handle(&broker, describe, 1);
    assert_eq!(described.groups[0].error_code, ResponseError::GroupIdNotFound.code());
    broker.shutdown().unwrap();
}
