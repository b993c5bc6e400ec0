//! Strategies for the group coordinator's requests, in the style of
//! `strategies.rs`: fields set only in the versions that have them.

use bytes::Bytes;
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_heartbeat_request::{ConsumerGroupHeartbeatRequest, TopicPartitions};
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
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

use super::{list, text, topic_name, unknown_tags, uuid};

fn group_id() -> impl Strategy<Value = GroupId> {
    text().prop_map(GroupId)
}

fn blob() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..12).prop_map(Bytes::from)
}

fn opt_text() -> impl Strategy<Value = Option<StrBytes>> {
    option::of(text())
}

pub(in super::super) fn offset_commit(v: i16) -> impl Strategy<Value = OffsetCommitRequest> {
    let flexible = v >= 8;
    let partition = (any::<i32>(), any::<i64>(), any::<i32>(), opt_text(), unknown_tags(flexible)).prop_map(
        move |(index, offset, epoch, metadata, tags)| {
            let mut p = OffsetCommitRequestPartition::default()
                .with_partition_index(index)
                .with_committed_offset(offset)
                .with_committed_metadata(metadata)
                .with_unknown_tagged_fields(tags);
            if v >= 6 {
                p.committed_leader_epoch = epoch;
            }
            p
        },
    );
    let topic = (topic_name(), list(partition), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
        OffsetCommitRequestTopic::default().with_name(name).with_partitions(partitions).with_unknown_tagged_fields(tags)
    });
    let head = (group_id(), any::<i32>(), text(), opt_text(), any::<i64>());
    (head, list(topic), unknown_tags(flexible)).prop_map(
        move |((group, generation, member, instance, retention), topics, tags)| {
            let mut r = OffsetCommitRequest::default()
                .with_group_id(group)
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(member)
                .with_topics(topics)
                .with_unknown_tagged_fields(tags);
            if v >= 7 {
                r.group_instance_id = instance;
            }
            if v <= 4 {
                r.retention_time_ms = retention;
            }
            r
        },
    )
}

pub(in super::super) fn offset_fetch(v: i16) -> impl Strategy<Value = OffsetFetchRequest> {
    let flexible = v >= 6;
    let topic = (topic_name(), list(any::<i32>()), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
        OffsetFetchRequestTopic::default()
            .with_name(name)
            .with_partition_indexes(partitions)
            .with_unknown_tagged_fields(tags)
    });
    let topics = (topic_name(), list(any::<i32>()), unknown_tags(flexible)).prop_map(|(name, partitions, tags)| {
        OffsetFetchRequestTopics::default()
            .with_name(name)
            .with_partition_indexes(partitions)
            .with_unknown_tagged_fields(tags)
    });
    let group = (group_id(), opt_text(), any::<i32>(), option::of(list(topics)), unknown_tags(flexible)).prop_map(
        move |(id, member, epoch, topics, tags)| {
            let mut g = OffsetFetchRequestGroup::default()
                .with_group_id(id)
                .with_topics(topics)
                .with_unknown_tagged_fields(tags);
            if v >= 9 {
                g.member_id = member;
                g.member_epoch = epoch;
            }
            g
        },
    );
    (group_id(), option::of(list(topic)), list(group), any::<bool>(), unknown_tags(flexible)).prop_map(
        move |(id, topics, groups, stable, tags)| {
            let mut r = OffsetFetchRequest::default().with_unknown_tagged_fields(tags);
            if v <= 7 {
                r.group_id = id;
                r.topics = topics;
            } else {
                r.groups = groups;
            }
            if v >= 7 {
                r.require_stable = stable;
            }
            r
        },
    )
}

pub(in super::super) fn join_group(v: i16) -> impl Strategy<Value = JoinGroupRequest> {
    let flexible = v >= 6;
    let protocol = (text(), blob(), unknown_tags(flexible)).prop_map(|(name, metadata, tags)| {
        JoinGroupRequestProtocol::default().with_name(name).with_metadata(metadata).with_unknown_tagged_fields(tags)
    });
    let head = (group_id(), any::<i32>(), any::<i32>(), text(), opt_text(), text());
    (head, list(protocol), opt_text(), unknown_tags(flexible)).prop_map(
        move |((group, session, rebalance, member, instance, protocol_type), protocols, reason, tags)| {
            let mut r = JoinGroupRequest::default()
                .with_group_id(group)
                .with_session_timeout_ms(session)
                .with_member_id(member)
                .with_protocol_type(protocol_type)
                .with_protocols(protocols)
                .with_unknown_tagged_fields(tags);
            if v >= 1 {
                r.rebalance_timeout_ms = rebalance;
            }
            if v >= 5 {
                r.group_instance_id = instance;
            }
            if v >= 8 {
                r.reason = reason;
            }
            r
        },
    )
}

pub(in super::super) fn heartbeat(v: i16) -> impl Strategy<Value = HeartbeatRequest> {
    (group_id(), any::<i32>(), text(), opt_text(), unknown_tags(v >= 4)).prop_map(
        move |(group, generation, member, instance, tags)| {
            let mut r = HeartbeatRequest::default()
                .with_group_id(group)
                .with_generation_id(generation)
                .with_member_id(member)
                .with_unknown_tagged_fields(tags);
            if v >= 3 {
                r.group_instance_id = instance;
            }
            r
        },
    )
}

pub(in super::super) fn leave_group(v: i16) -> impl Strategy<Value = LeaveGroupRequest> {
    let flexible = v >= 4;
    let member =
        (text(), opt_text(), opt_text(), unknown_tags(flexible)).prop_map(move |(id, instance, reason, tags)| {
            let mut m = MemberIdentity::default()
                .with_member_id(id)
                .with_group_instance_id(instance)
                .with_unknown_tagged_fields(tags);
            if v >= 5 {
                m.reason = reason;
            }
            m
        });
    (group_id(), text(), list(member), unknown_tags(flexible)).prop_map(move |(group, member_id, members, tags)| {
        let mut r = LeaveGroupRequest::default().with_group_id(group).with_unknown_tagged_fields(tags);
        if v <= 2 {
            r.member_id = member_id;
        } else {
            r.members = members;
        }
        r
    })
}

pub(in super::super) fn sync_group(v: i16) -> impl Strategy<Value = SyncGroupRequest> {
    let flexible = v >= 4;
    let assignment = (text(), blob(), unknown_tags(flexible)).prop_map(|(member, assignment, tags)| {
        SyncGroupRequestAssignment::default()
            .with_member_id(member)
            .with_assignment(assignment)
            .with_unknown_tagged_fields(tags)
    });
    let head = (group_id(), any::<i32>(), text(), opt_text(), opt_text(), opt_text());
    (head, list(assignment), unknown_tags(flexible)).prop_map(
        move |((group, generation, member, instance, ptype, pname), assignments, tags)| {
            let mut r = SyncGroupRequest::default()
                .with_group_id(group)
                .with_generation_id(generation)
                .with_member_id(member)
                .with_assignments(assignments)
                .with_unknown_tagged_fields(tags);
            if v >= 3 {
                r.group_instance_id = instance;
            }
            if v >= 5 {
                r.protocol_type = ptype;
                r.protocol_name = pname;
            }
            r
        },
    )
}

pub(in super::super) fn describe_groups(v: i16) -> impl Strategy<Value = DescribeGroupsRequest> {
    (list(group_id()), any::<bool>(), unknown_tags(v >= 5)).prop_map(move |(groups, ops, tags)| {
        let mut r = DescribeGroupsRequest::default().with_groups(groups).with_unknown_tagged_fields(tags);
        if v >= 3 {
            r.include_authorized_operations = ops;
        }
        r
    })
}

pub(in super::super) fn list_groups(v: i16) -> impl Strategy<Value = ListGroupsRequest> {
    (list(text()), list(text()), unknown_tags(v >= 3)).prop_map(move |(states, types, tags)| {
        let mut r = ListGroupsRequest::default().with_unknown_tagged_fields(tags);
        if v >= 4 {
            r.states_filter = states;
        }
        if v >= 5 {
            r.types_filter = types;
        }
        r
    })
}

pub(in super::super) fn delete_groups(v: i16) -> impl Strategy<Value = DeleteGroupsRequest> {
    (list(group_id()), unknown_tags(v >= 2)).prop_map(|(groups, tags)| {
        DeleteGroupsRequest::default().with_groups_names(groups).with_unknown_tagged_fields(tags)
    })
}

pub(in super::super) fn offset_delete(_v: i16) -> impl Strategy<Value = OffsetDeleteRequest> {
    let partition = any::<i32>().prop_map(|i| OffsetDeleteRequestPartition::default().with_partition_index(i));
    let topic = (topic_name(), list(partition))
        .prop_map(|(name, partitions)| OffsetDeleteRequestTopic::default().with_name(name).with_partitions(partitions));
    (group_id(), list(topic))
        .prop_map(|(group, topics)| OffsetDeleteRequest::default().with_group_id(group).with_topics(topics))
}

pub(in super::super) fn consumer_group_heartbeat(v: i16) -> impl Strategy<Value = ConsumerGroupHeartbeatRequest> {
    let owned = (uuid(), list(any::<i32>()), unknown_tags(true)).prop_map(|(id, partitions, tags)| {
        TopicPartitions::default().with_topic_id(id).with_partitions(partitions).with_unknown_tagged_fields(tags)
    });
    let ids = (group_id(), text(), any::<i32>(), opt_text(), opt_text(), any::<i32>());
    let rest = (option::of(list(topic_name())), opt_text(), opt_text(), option::of(list(owned)), unknown_tags(true));
    (ids, rest).prop_map(
        move |((group, member, epoch, instance, rack, timeout), (names, regex, assignor, owned, tags))| {
            let mut r = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(group)
                .with_member_id(member)
                .with_member_epoch(epoch)
                .with_instance_id(instance)
                .with_rack_id(rack)
                .with_rebalance_timeout_ms(timeout)
                .with_subscribed_topic_names(names)
                .with_server_assignor(assignor)
                .with_topic_partitions(owned)
                .with_unknown_tagged_fields(tags);
            if v >= 1 {
                r.subscribed_topic_regex = regex;
            }
            r
        },
    )
}

pub(in super::super) fn consumer_group_describe(_v: i16) -> impl Strategy<Value = ConsumerGroupDescribeRequest> {
    (list(group_id()), any::<bool>(), unknown_tags(true)).prop_map(|(groups, ops, tags)| {
        ConsumerGroupDescribeRequest::default()
            .with_group_ids(groups)
            .with_include_authorized_operations(ops)
            .with_unknown_tagged_fields(tags)
    })
}
