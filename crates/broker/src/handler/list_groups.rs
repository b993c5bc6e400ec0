//! ListGroups: every group this coordinator knows, optionally filtered by
//! state (v4+, case-insensitive) and by type (v5+; every Runnel group is a
//! "classic" group).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;

/// The type of every group Runnel coordinates.
const GROUP_TYPE_CLASSIC: &str = "classic";

pub fn handle(broker: &Arc<Broker>, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let groups = broker
        .groups
        .list_groups()
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.name().to_ascii_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == GROUP_TYPE_CLASSIC))
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            let listed =
                if version >= 4 { listed.with_group_state(StrBytes::from_static_str(g.state.name())) } else { listed };
            if version >= 5 {
                listed.with_group_type(StrBytes::from_static_str(GROUP_TYPE_CLASSIC))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
