//! LeaveGroup: members leave a group, which then rebalances. Up to v2 one
//! member per request; from v3 a batch of members, each named by member id
//! or, for static members, by group instance id (KIP-345).

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use kafka_protocol::messages::leave_group_response::{LeaveGroupResponse, MemberResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;

pub async fn handle(
    broker: Arc<Broker>,
    req: LeaveGroupRequest,
    version: i16,
) -> impl Future<Output = LeaveGroupResponse> + Send {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let group_id = req.group_id.to_string();
    let b = broker.clone();
    let asked = members.clone();
    let outcome = tokio::task::spawn_blocking(move || b.groups.leave(b.logs.flusher(), &group_id, &asked))
        .await
        .expect("leave does not panic");
    async move {
        let results = match outcome {
            Ok((results, written)) => {
                if let Some(written) = written {
                    // The departure is in memory either way; the stored metadata catches up on the next write.
                    let _durable = written.durable().await;
                }
                results
            }
            Err(e) => return LeaveGroupResponse::default().with_error_code(e.error_code()),
        };
        if version < 3 {
            let code = results.first().and_then(|r| r.err()).map_or(0, |e| e.error_code());
            return LeaveGroupResponse::default().with_error_code(code);
        }
        let responses = members
            .into_iter()
            .zip(results)
            .map(|((member_id, instance_id), result)| {
                MemberResponse::default()
                    .with_member_id(StrBytes::from_string(member_id))
                    .with_group_instance_id(instance_id.map(StrBytes::from_string))
                    .with_error_code(result.err().map_or(0, |e| e.error_code()))
            })
            .collect();
        LeaveGroupResponse::default().with_members(responses)
    }
}
