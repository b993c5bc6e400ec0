//! DescribeGroups: state, protocol and members of groups. An unknown group
//! is described as Dead with no error, as Kafka does up to v5. Member
//! metadata and assignments are shown once the group is Stable.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;

/// Kafka's "authorized operations were not requested" marker.
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// Group operations allowed with no authorizer: READ(3), DELETE(6), DESCRIBE(8).
const GROUP_OPERATIONS_ALL: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub fn handle(broker: &Arc<Broker>, req: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let include_ops = version >= 3 && req.include_authorized_operations;
    let groups = req
        .groups
        .into_iter()
        .map(|group_id| {
            let d = broker.groups.describe(group_id.as_str());
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    let member = DescribedGroupMember::default()
                        .with_member_id(StrBytes::from_string(m.member_id))
                        .with_client_id(StrBytes::from_string(m.client_id))
                        .with_client_host(StrBytes::from_string(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment);
                    // Instance ids are in the response from v4 (KIP-345).
                    if version >= 4 {
                        member.with_group_instance_id(m.instance_id.map(StrBytes::from_string))
                    } else {
                        member
                    }
                })
                .collect();
            DescribedGroup::default()
                .with_group_id(group_id)
                .with_group_state(StrBytes::from_static_str(d.state.name()))
                .with_protocol_type(StrBytes::from_string(d.protocol_type))
                .with_protocol_data(StrBytes::from_string(d.protocol))
                .with_members(members)
                .with_authorized_operations(if include_ops { GROUP_OPERATIONS_ALL } else { OPERATIONS_NOT_REQUESTED })
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
