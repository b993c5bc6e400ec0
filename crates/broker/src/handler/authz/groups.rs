//! Checks of the group coordinator's APIs, as Kafka makes them:
//! FindCoordinator (DESCRIBE on the group or transactional id), the classic
//! protocol (READ on the group), OffsetCommit (READ on the group and on each
//! topic), OffsetFetch (DESCRIBE on the group and on each topic shown),
//! OffsetDelete and DeleteGroups (DELETE on the group, READ on the topics
//! for OffsetDelete), DescribeGroups and ConsumerGroupDescribe (DESCRIBE on
//! the group), ListGroups (DESCRIBE on the cluster, else only the groups it
//! may DESCRIBE) and ConsumerGroupHeartbeat (READ on the group, DESCRIBE on
//! the subscribed topics).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_describe_response::{self, ConsumerGroupDescribeResponse};
use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};
use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{DescribeGroupsResponse, DescribedGroup};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::JoinGroupResponse;
use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::LeaveGroupResponse;
use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::ListGroupsResponse;
use kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{BrokerId, GroupId};
use kafka_protocol::protocol::StrBytes;

use super::{Check, Outcome};
use crate::authz::{Operation, ResourceType, CLUSTER_NAME};

const GROUP_DENIED: ResponseError = ResponseError::GroupAuthorizationFailed;
const TOPIC_DENIED: ResponseError = ResponseError::TopicAuthorizationFailed;
/// Kafka's "authorized operations were not requested" marker.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// FindCoordinator key types.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

pub(super) fn find_coordinator(check: Check<'_>, mut req: FindCoordinatorRequest, version: i16) -> Outcome {
    let allowed = |key: &str| match req.key_type {
        KEY_GROUP => check.group(Operation::Describe, key),
        KEY_TRANSACTION => check.transactional_id(Operation::Describe, key),
        _ => true,
    };
    let error_for = |key_type| {
        if key_type == KEY_TRANSACTION {
            ResponseError::TransactionalIdAuthorizationFailed
        } else {
            GROUP_DENIED
        }
    };
    if version < 4 {
        if allowed(&req.key) {
            return Outcome::pass(req);
        }
        let error = error_for(req.key_type);
        let response = FindCoordinatorResponse::default().with_error_code(error.code()).with_node_id(BrokerId(-1));
        let response = response.with_host(StrBytes::from_static_str("")).with_port(-1);
        // The error message field exists from v1.
        return Outcome::answer(if version >= 1 {
            response.with_error_message(Some(StrBytes::from_string(error.to_string())))
        } else {
            response
        });
    }
    let mut denied = Vec::new();
    let keys = std::mem::take(&mut req.coordinator_keys);
    for key in keys {
        if allowed(&key) {
            req.coordinator_keys.push(key);
        } else {
            let error = error_for(req.key_type);
            denied.push(
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(-1))
                    .with_port(-1)
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(error.to_string()))),
            );
        }
    }
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: FindCoordinatorResponse| {
        r.coordinators.extend(denied);
        r
    })
}

pub(super) fn join_group(check: Check<'_>, req: JoinGroupRequest) -> Outcome {
    if check.group(Operation::Read, &req.group_id) {
        return Outcome::pass(req);
    }
    Outcome::answer(JoinGroupResponse::default().with_error_code(GROUP_DENIED.code()).with_generation_id(-1))
}

pub(super) fn sync_group(check: Check<'_>, req: kafka_protocol::messages::SyncGroupRequest) -> Outcome {
    if check.group(Operation::Read, &req.group_id) {
        return Outcome::pass(req);
    }
    Outcome::answer(kafka_protocol::messages::SyncGroupResponse::default().with_error_code(GROUP_DENIED.code()))
}

pub(super) fn heartbeat(check: Check<'_>, req: HeartbeatRequest) -> Outcome {
    if check.group(Operation::Read, &req.group_id) {
        return Outcome::pass(req);
    }
    Outcome::answer(HeartbeatResponse::default().with_error_code(GROUP_DENIED.code()))
}

pub(super) fn leave_group(check: Check<'_>, req: LeaveGroupRequest) -> Outcome {
    if check.group(Operation::Read, &req.group_id) {
        return Outcome::pass(req);
    }
    Outcome::answer(LeaveGroupResponse::default().with_error_code(GROUP_DENIED.code()))
}

pub(super) fn offset_commit(check: Check<'_>, mut req: OffsetCommitRequest) -> Outcome {
    let group_allowed = check.group(Operation::Read, &req.group_id);
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let error = if !group_allowed {
            GROUP_DENIED
        } else if !check.topic(Operation::Read, &t.name) {
            TOPIC_DENIED
        } else {
            return true;
        };
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(error.code())
            })
            .collect();
        denied.push(
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(partitions),
        );
        false
    });
    if !group_allowed {
        return Outcome::answer(OffsetCommitResponse::default().with_topics(denied));
    }
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: OffsetCommitResponse| {
        r.topics.extend(denied);
        r
    })
}

/// OffsetFetch: a group the principal may not DESCRIBE is
/// GROUP_AUTHORIZATION_FAILED; in an allowed group, topics it may not
/// DESCRIBE are TOPIC_AUTHORIZATION_FAILED when named and left out when
/// the request asks for all of them.
pub(super) fn offset_fetch(check: Check<'_>, mut req: OffsetFetchRequest, version: i16) -> Outcome {
    if version < 8 {
        if !check.group(Operation::Describe, &req.group_id) {
            return Outcome::answer(single_group_denied(&req, version));
        }
        let all_topics = req.topics.is_none();
        let owned = check.owned();
        return Outcome::merge(req, move |mut r: OffsetFetchResponse| {
            let check = owned.check();
            r.topics.retain_mut(|t| {
                if check.quietly(Operation::Describe, ResourceType::Topic, &t.name) {
                    return true;
                }
                if all_topics {
                    return false;
                }
                crate::authz::denied(check.session, Operation::Describe, ResourceType::Topic, &t.name);
                for p in &mut t.partitions {
                    *p = OffsetFetchResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_committed_offset(-1)
                        .with_error_code(TOPIC_DENIED.code());
                }
                true
            });
            r
        });
    }
    let mut denied = Vec::new();
    req.groups.retain(|g| {
        let allowed = check.group(Operation::Describe, &g.group_id);
        if !allowed {
            denied.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(GROUP_DENIED.code()),
            );
        }
        allowed
    });
    let all_topics: Vec<GroupId> =
        req.groups.iter().filter(|g| g.topics.is_none()).map(|g| g.group_id.clone()).collect();
    let owned = check.owned();
    Outcome::merge(req, move |mut r: OffsetFetchResponse| {
        let check = owned.check();
        for group in &mut r.groups {
            let all = all_topics.contains(&group.group_id);
            group.topics.retain_mut(|t| {
                if check.quietly(Operation::Describe, ResourceType::Topic, &t.name) {
                    return true;
                }
                for p in &mut t.partitions {
                    *p = OffsetFetchResponsePartitions::default()
                        .with_partition_index(p.partition_index)
                        .with_committed_offset(-1)
                        .with_error_code(TOPIC_DENIED.code());
                }
                !all
            });
        }
        r.groups.extend(denied);
        r
    })
}

/// The answer to a one-group OffsetFetch (v0-7) without DESCRIBE on the
/// group: the top-level error from v2 on, each partition's before.
fn single_group_denied(req: &OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 2 {
        return OffsetFetchResponse::default().with_error_code(GROUP_DENIED.code());
    }
    let topics = req
        .topics
        .iter()
        .flatten()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(*p)
                        .with_committed_offset(-1)
                        .with_error_code(GROUP_DENIED.code())
                })
                .collect();
            OffsetFetchResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

pub(super) fn offset_delete(check: Check<'_>, mut req: OffsetDeleteRequest) -> Outcome {
    if !check.group(Operation::Delete, &req.group_id) {
        return Outcome::answer(OffsetDeleteResponse::default().with_error_code(GROUP_DENIED.code()));
    }
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let allowed = check.topic(Operation::Read, &t.name);
        if !allowed {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TOPIC_DENIED.code())
                })
                .collect();
            denied.push(OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions));
        }
        allowed
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: OffsetDeleteResponse| {
        r.topics.extend(denied);
        r
    })
}

pub(super) fn describe_groups(check: Check<'_>, mut req: DescribeGroupsRequest) -> Outcome {
    let mut denied = Vec::new();
    req.groups.retain(|g| {
        let allowed = check.group(Operation::Describe, g);
        if !allowed {
            denied.push(
                DescribedGroup::default()
                    .with_group_id(g.clone())
                    .with_error_code(GROUP_DENIED.code())
                    .with_authorized_operations(OPERATIONS_NOT_REQUESTED),
            );
        }
        allowed
    });
    let owned = check.owned();
    let include_ops = req.include_authorized_operations;
    Outcome::merge(req, move |mut r: DescribeGroupsResponse| {
        if include_ops {
            let check = owned.check();
            for g in r.groups.iter_mut().filter(|g| g.error_code == 0) {
                g.authorized_operations = check.operations(ResourceType::Group, &g.group_id);
            }
        }
        r.groups.extend(denied);
        r
    })
}

pub(super) fn list_groups(check: Check<'_>, req: ListGroupsRequest) -> Outcome {
    if check.quietly(Operation::Describe, ResourceType::Cluster, CLUSTER_NAME) {
        return Outcome::pass(req);
    }
    let owned = check.owned();
    Outcome::merge(req, move |mut r: ListGroupsResponse| {
        let check = owned.check();
        r.groups.retain(|g| check.quietly(Operation::Describe, ResourceType::Group, &g.group_id));
        r
    })
}

pub(super) fn delete_groups(check: Check<'_>, mut req: DeleteGroupsRequest) -> Outcome {
    let mut denied = Vec::new();
    req.groups_names.retain(|g| {
        let allowed = check.group(Operation::Delete, g);
        if !allowed {
            denied.push(DeletableGroupResult::default().with_group_id(g.clone()).with_error_code(GROUP_DENIED.code()));
        }
        allowed
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: DeleteGroupsResponse| {
        r.results.extend(denied);
        r
    })
}

pub(super) fn consumer_group_heartbeat(check: Check<'_>, req: ConsumerGroupHeartbeatRequest) -> Outcome {
    let denied = |error: ResponseError, message: String| {
        Outcome::answer(
            ConsumerGroupHeartbeatResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message))),
        )
    };
    if !check.group(Operation::Read, &req.group_id) {
        return denied(GROUP_DENIED, GROUP_DENIED.to_string());
    }
    let unauthorized: Vec<&str> = req
        .subscribed_topic_names
        .iter()
        .flatten()
        .filter(|t| !check.topic(Operation::Describe, t))
        .map(|t| t.as_str())
        .collect();
    if !unauthorized.is_empty() {
        let message = format!("The group member is not authorized to subscribe to topics: {}", unauthorized.join(", "));
        return denied(TOPIC_DENIED, message);
    }
    Outcome::pass(req)
}

pub(super) fn consumer_group_describe(check: Check<'_>, mut req: ConsumerGroupDescribeRequest) -> Outcome {
    let mut denied = Vec::new();
    req.group_ids.retain(|g| {
        let allowed = check.group(Operation::Describe, g);
        if !allowed {
            denied.push(
                consumer_group_describe_response::DescribedGroup::default()
                    .with_group_id(g.clone())
                    .with_error_code(GROUP_DENIED.code())
                    .with_authorized_operations(OPERATIONS_NOT_REQUESTED),
            );
        }
        allowed
    });
    let owned = check.owned();
    let include_ops = req.include_authorized_operations;
    Outcome::merge(req, move |mut r: ConsumerGroupDescribeResponse| {
        if include_ops {
            let check = owned.check();
            for g in r.groups.iter_mut().filter(|g| g.error_code == 0) {
                g.authorized_operations = check.operations(ResourceType::Group, &g.group_id);
            }
        }
        r.groups.extend(denied);
        r
    })
}
