//! Every group coordinator handler, at every version the broker serves, runs
//! a real flow against a broker in a temporary directory and produces a
//! response that encodes at that version (see `tests.rs` for why).
//!
//! Per JoinGroup version: a member joins a fresh group (from v4 after
//! MEMBER_ID_REQUIRED), syncs as leader, heartbeats, commits and fetches
//! offsets, is described and listed, leaves, and the group is deleted.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::join_group_request::{JoinGroupRequest, JoinGroupRequestProtocol};
use kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::{SyncGroupRequest, SyncGroupRequestAssignment};
use kafka_protocol::messages::{ApiKey, GroupId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{BrokerConfig, Source};
use crate::handler::{
    delete_groups, describe_groups, heartbeat, join_group, leave_group, list_groups, offset_commit, offset_delete,
    offset_fetch, sync_group,
};
use crate::protocol::{encode_response, guard};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn top(v: i16, api: ApiKey) -> i16 {
    let (min, max) = guard::supported_versions(api as i16).expect("served api");
    v.clamp(min, max)
}

fn encode(api: ApiKey, version: i16, body: ResponseKind) {
    encode_response(api, version, 1, &body);
}

async fn join(broker: &Arc<Broker>, group: &str, member: &str, v: i16) -> kafka_protocol::messages::JoinGroupResponse {
    let peer: SocketAddr = "127.0.0.1:5555".parse().unwrap();
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(if v >= 1 { 10_000 } else { 0 })
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("range")).with_metadata(Bytes::new())]);
    let response = join_group::handle(broker.clone(), req, "client".into(), peer, v).await.await;
    encode(ApiKey::JoinGroup, v, ResponseKind::JoinGroup(response.clone()));
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_handler_encodes_at_every_served_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = BrokerConfig::default();
    config.set("log.dirs", &dir.path().to_string_lossy(), Source::Override).unwrap();
    config.set("group.initial.rebalance.delay.ms", "0", Source::Override).unwrap();
    config.set("offsets.topic.num.partitions", "3", Source::Override).unwrap();
    let broker = Broker::open(config).unwrap();
    broker.create_topic("t", 2, Default::default()).unwrap();
    for v in 0..=9i16 {
        let group = format!("g{v}");
        let mut joined = join(&broker, &group, "", v).await;
        if v >= 4 {
            assert_eq!(joined.error_code, 79, "v{v}: MEMBER_ID_REQUIRED");
            joined = join(&broker, &group, &joined.member_id.to_string(), v).await;
        }
        assert_eq!(joined.error_code, 0, "v{v}");
        assert_eq!(joined.generation_id, 1);
        assert_eq!(joined.leader, joined.member_id, "the only member leads");
        let member = joined.member_id.clone();

        let sv = top(v, ApiKey::SyncGroup);
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(1)
            .with_member_id(member.clone())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(member.clone())
                .with_assignment(Bytes::from_static(b"assigned"))]);
        let synced = sync_group::handle(broker.clone(), sync, sv).await.await;
        assert_eq!((synced.error_code, synced.assignment.as_ref()), (0, &b"assigned"[..]), "v{sv}");
        encode(ApiKey::SyncGroup, sv, ResponseKind::SyncGroup(synced));

        let hv = top(v, ApiKey::Heartbeat);
        let hb = HeartbeatRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id(1)
            .with_member_id(member.clone());
        let beat = heartbeat::handle(&broker, hb);
        assert_eq!(beat.error_code, 0);
        encode(ApiKey::Heartbeat, hv, ResponseKind::Heartbeat(beat));

        let cv = top(v, ApiKey::OffsetCommit);
        let commit = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id_or_member_epoch(1)
            .with_member_id(member.clone())
            .with_topics(vec![OffsetCommitRequestTopic::default().with_name(TopicName(s("t"))).with_partitions(vec![
                OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(7),
                OffsetCommitRequestPartition::default().with_partition_index(9).with_committed_offset(7),
                OffsetCommitRequestPartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(7)
                    .with_committed_metadata(Some(s(&"m".repeat(5000)))),
            ])]);
        let committed = offset_commit::handle(broker.clone(), commit).await.await;
        let codes: Vec<i16> = committed.topics[0].partitions.iter().map(|p| p.error_code).collect();
        assert_eq!(codes, vec![0, 3, 12], "v{cv}: ok, UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE");
        encode(ApiKey::OffsetCommit, cv, ResponseKind::OffsetCommit(committed));

        let fv = top(v, ApiKey::OffsetFetch);
        let fetch = if fv >= 8 {
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s(&group)))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0, 1])]))])
        } else {
            OffsetFetchRequest::default().with_group_id(GroupId(s(&group))).with_topics(Some(vec![
                OffsetFetchRequestTopic::default().with_name(TopicName(s("t"))).with_partition_indexes(vec![0, 1]),
            ]))
        };
        let fetched = offset_fetch::handle(&broker, fetch, fv);
        let offsets: Vec<i64> = if fv >= 8 {
            fetched.groups[0].topics[0].partitions.iter().map(|p| p.committed_offset).collect()
        } else {
            fetched.topics[0].partitions.iter().map(|p| p.committed_offset).collect()
        };
        assert_eq!(offsets, vec![7, -1], "v{fv}");
        encode(ApiKey::OffsetFetch, fv, ResponseKind::OffsetFetch(fetched));

        let dv = top(v, ApiKey::DescribeGroups);
        let describe = DescribeGroupsRequest::default().with_groups(vec![GroupId(s(&group)), GroupId(s("unknown"))]);
        let described = describe_groups::handle(&broker, describe, dv);
        assert_eq!(described.groups[0].group_state.as_str(), "Stable");
        assert_eq!(described.groups[0].members[0].member_assignment.as_ref(), b"assigned");
        assert_eq!(described.groups[1].group_state.as_str(), "Dead");
        encode(ApiKey::DescribeGroups, dv, ResponseKind::DescribeGroups(described));

        let lv = top(v, ApiKey::ListGroups);
        let mut list = ListGroupsRequest::default();
        if lv >= 4 {
            list.states_filter = vec![s("stable")];
        }
        let listed = list_groups::handle(&broker, list, lv);
        assert!(listed.groups.iter().any(|g| g.group_id.as_str() == group), "v{lv}");
        encode(ApiKey::ListGroups, lv, ResponseKind::ListGroups(listed));

        let gv = top(v, ApiKey::LeaveGroup);
        let leave = if gv >= 3 {
            LeaveGroupRequest::default().with_group_id(GroupId(s(&group))).with_members(vec![
                MemberIdentity::default().with_member_id(member.clone()),
                MemberIdentity::default().with_member_id(s("nobody")),
            ])
        } else {
            LeaveGroupRequest::default().with_group_id(GroupId(s(&group))).with_member_id(member.clone())
        };
        let left = leave_group::handle(broker.clone(), leave, gv).await.await;
        if gv >= 3 {
            let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
            assert_eq!(codes, vec![0, 25], "v{gv}");
        } else {
            assert_eq!(left.error_code, 0);
        }
        encode(ApiKey::LeaveGroup, gv, ResponseKind::LeaveGroup(left));

        let od = OffsetDeleteRequest::default().with_group_id(GroupId(s(&group))).with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
        ]);
        let deleted = offset_delete::handle(broker.clone(), od).await.await;
        assert_eq!((deleted.error_code, deleted.topics[0].partitions[0].error_code), (0, 0));
        encode(ApiKey::OffsetDelete, 0, ResponseKind::OffsetDelete(deleted));

        let xv = top(v, ApiKey::DeleteGroups);
        let del = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(&group)), GroupId(s("unknown"))]);
        let gone = delete_groups::handle(broker.clone(), del).await.await;
        let codes: Vec<i16> = gone.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![0, 69], "GROUP_ID_NOT_FOUND for the unknown group");
        encode(ApiKey::DeleteGroups, xv, ResponseKind::DeleteGroups(gone));
    }
    broker.shutdown().unwrap();
}
