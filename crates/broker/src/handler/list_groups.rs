//! ListGroups: every group this coordinator knows, optionally filtered by
//! state (v4+, case-insensitive) and by type (v5+: "classic", or "consumer"
//! for groups of the consumer group protocol, listed with that protocol's
//! state names).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use kafka_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafka_protocol::messages::GroupId;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::group::GroupListing;

/// The types of groups Runnel coordinates.
const GROUP_TYPE_CLASSIC: &str = "classic";
const GROUP_TYPE_CONSUMER: &str = "consumer";

/// A consumer-protocol group lists with its own state names.
fn state_name(g: &GroupListing) -> &'static str {
    g.consumer_state.map_or(g.state.name(), |s| s.name())
}

fn group_type(g: &GroupListing) -> &'static str {
    if g.consumer_state.is_some() {
        GROUP_TYPE_CONSUMER
    } else {
        GROUP_TYPE_CLASSIC
    }
}

pub fn handle(broker: &Arc<Broker>, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let groups = broker
        .groups
        .list_groups()
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&state_name(g).to_ascii_lowercase()))
        .filter(|g| types.is_empty() || types.iter().any(|t| t == group_type(g)))
        .map(|g| {
            let (state, kind) = (state_name(&g), group_type(&g));
            let listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(g.group_id)))
                .with_protocol_type(StrBytes::from_string(g.protocol_type));
            let listed = if version >= 4 { listed.with_group_state(StrBytes::from_static_str(state)) } else { listed };
            if version >= 5 {
                listed.with_group_type(StrBytes::from_static_str(kind))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
