//! ConsumerGroupDescribe: state, epochs, assignor and members of
//! consumer-protocol groups (KIP-848). An unknown group and a classic group
//! get GROUP_ID_NOT_FOUND, as Kafka answers; clients then fall back to
//! DescribeGroups for classic groups.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, ConsumerGroupDescribeResponse, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::group::assignor;
use crate::group::consumer_coordinator::ConsumerMemberDescription;
use crate::group::state::GroupError;

/// Kafka's "authorized operations were not requested" marker.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// Group operations allowed with no authorizer: READ(3), DELETE(6), DESCRIBE(8).
const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);
/// The member type of a member using the consumer protocol (v1+).
const MEMBER_TYPE_CONSUMER: i8 = 1;

fn assignment(broker: &Broker, a: &assignor::Assignment) -> Assignment {
    let topics = a
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .filter_map(|(name, ps)| {
            let topic = broker.topic(name)?;
            Some(
                TopicPartitions::default()
                    .with_topic_id(topic.meta.id)
                    .with_topic_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_partitions(ps.iter().copied().collect()),
            )
        })
        .collect();
    Assignment::default().with_topic_partitions(topics)
}

fn member(broker: &Broker, m: ConsumerMemberDescription, version: i16) -> Member {
    let described = Member::default()
        .with_member_id(StrBytes::from_string(m.member_id))
        .with_instance_id(m.instance_id.map(StrBytes::from_string))
        .with_rack_id(m.rack_id.map(StrBytes::from_string))
        .with_member_epoch(m.epoch)
        .with_client_id(StrBytes::from_string(m.client_id))
        .with_client_host(StrBytes::from_string(m.client_host))
        .with_subscribed_topic_names(m.subscribed.into_iter().map(|t| TopicName(StrBytes::from_string(t))).collect())
        .with_subscribed_topic_regex(m.regex.map(StrBytes::from_string))
        .with_assignment(assignment(broker, &m.assignment))
        .with_target_assignment(assignment(broker, &m.target));
    if version >= 1 {
        described.with_member_type(MEMBER_TYPE_CONSUMER)
    } else {
        described
    }
}

pub fn handle(broker: &Arc<Broker>, req: ConsumerGroupDescribeRequest, version: i16) -> ConsumerGroupDescribeResponse {
    let ops = if req.include_authorized_operations { GROUP_OPERATIONS_ALL } else { OPERATIONS_NOT_REQUESTED };
    let groups = req
        .group_ids
        .into_iter()
        .map(|group_id| {
            let base = DescribedGroup::default().with_group_id(group_id.clone()).with_authorized_operations(ops);
            match broker.groups.consumer_describe(group_id.as_str()) {
                Err(e) => {
                    let message = match e {
                        GroupError::GroupIdNotFound => {
                            format!("Group {} not found or not a consumer group.", group_id.as_str())
                        }
                        e => e.to_string(),
                    };
                    base.with_error_code(e.error_code())
                        .with_error_message(Some(StrBytes::from_string(message)))
                        .with_group_state(StrBytes::from_static_str("Dead"))
                }
                Ok(d) => base
                    .with_group_state(StrBytes::from_static_str(d.state.name()))
                    .with_group_epoch(d.epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(StrBytes::from_string(d.assignor))
                    .with_members(d.members.into_iter().map(|m| member(broker, m, version)).collect()),
            }
        })
        .collect();
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
