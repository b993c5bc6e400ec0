//! SyncGroup: members get their assignment, which the leader sends.
//!
//! A long-poll request like JoinGroup: followers wait until the leader's
//! assignment is stored in `__consumer_offsets`, then everyone gets theirs.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::group::state::{GroupError, Reply, SyncResult};

pub async fn handle(
    broker: Arc<Broker>,
    req: SyncGroupRequest,
    version: i16,
) -> impl Future<Output = SyncGroupResponse> + Send {
    let group_id = req.group_id.to_string();
    let b = broker.clone();
    let gid = group_id.clone();
    let (reply, written) = tokio::task::spawn_blocking(move || {
        let assignments = req.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect();
        b.groups.sync(
            b.logs.flusher(),
            &gid,
            req.member_id.as_str(),
            req.group_instance_id.as_deref(),
            req.generation_id,
            req.protocol_type.as_deref(),
            req.protocol_name.as_deref(),
            assignments,
        )
    })
    .await
    .expect("sync does not panic");
    async move {
        if let Some((written, generation)) = written {
            let stored = written.durable().await;
            broker.groups.finish_sync(&group_id, generation, stored);
        }
        let result = match reply {
            Reply::Now(result) => result,
            Reply::Wait(rx) => rx.await.unwrap_or_else(|_| SyncResult::error(GroupError::UnknownMemberId)),
        };
        let mut response = SyncGroupResponse::default()
            .with_error_code(result.error.map_or(0, |e| e.error_code()))
            .with_assignment(result.assignment);
        // The protocol type and name are in the response from v5 (KIP-559).
        if version >= 5 {
            response = response
                .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
                .with_protocol_name(result.protocol_name.map(StrBytes::from_string));
        }
        response
    }
}
