//! JoinGroup: a member joins (or rejoins) a consumer group.
//!
//! A long-poll request: the response comes when the group's join phase ends
//! (every member rejoined, or the rebalance timeout passed), so the returned
//! future waits on the group's answer without holding up later requests on
//! the same connection. From v4 a member without an id first gets
//! MEMBER_ID_REQUIRED with the id to use (KIP-394); from v5 members may be
//! static (`group.instance.id`, KIP-345).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequest;
use kafka_protocol::messages::join_group_response::{JoinGroupResponse, JoinGroupResponseMember};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::group::state::{GroupError, JoinRequest, JoinResult, Reply};

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub async fn handle(
    broker: Arc<Broker>,
    req: JoinGroupRequest,
    client_id: String,
    peer: SocketAddr,
    version: i16,
) -> impl Future<Output = JoinGroupResponse> + Send {
    let group_id = req.group_id.to_string();
    let join = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.map(|s| s.to_string()),
        require_known_member_id: version >= 4,
        client_id,
        client_host: format!("/{}", peer.ip()),
        session_timeout: millis(req.session_timeout_ms),
        // Before v1 the rebalance timeout is the session timeout.
        rebalance_timeout: millis(if version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms }),
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        supports_skip_assignment: version >= 9,
    };
    let member_id = join.member_id.clone();
    let b = broker.clone();
    let (reply, written) = tokio::task::spawn_blocking(move || b.groups.join(b.logs.flusher(), &group_id, join))
        .await
        .expect("join does not panic");
    async move {
        if let Some(written) = written {
            if !written.durable().await {
                return response(JoinResult::error(GroupError::CoordinatorNotAvailable, &member_id), version);
            }
        }
        let result = match reply {
            Reply::Now(result) => result,
            // The sender is dropped only if the group is removed under the member.
            Reply::Wait(rx) => rx.await.unwrap_or_else(|_| JoinResult::error(GroupError::UnknownMemberId, &member_id)),
        };
        response(result, version)
    }
}

fn response(result: JoinResult, version: i16) -> JoinGroupResponse {
    let code = result.error.map_or(0, |e| e.error_code());
    let members = result
        .members
        .into_iter()
        .map(|m| {
            let member = JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_metadata(m.metadata);
            // Instance ids are in the response from v5 (KIP-345).
            if version >= 5 {
                member.with_group_instance_id(m.instance_id.map(StrBytes::from_string))
            } else {
                member
            }
        })
        .collect();
    // Before v7 the protocol name is a non-nullable string.
    let protocol_name = match result.protocol_name {
        Some(name) => Some(StrBytes::from_string(name)),
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    };
    let mut response = JoinGroupResponse::default()
        .with_error_code(code)
        .with_generation_id(result.generation)
        .with_protocol_name(protocol_name)
        .with_leader(StrBytes::from_string(result.leader))
        .with_member_id(StrBytes::from_string(result.member_id))
        .with_members(members);
    if version >= 7 {
        response = response.with_protocol_type(result.protocol_type.map(StrBytes::from_string));
    }
    if version >= 9 {
        response = response.with_skip_assignment(result.skip_assignment);
    }
    response
}
