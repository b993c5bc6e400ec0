//! DeleteGroups: remove groups without members, with their committed
//! offsets (tombstones in `__consumer_offsets`). A group with members gets
//! NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::group::state::GroupError;

/// Deletes the groups before the connection reads its next request, then
/// returns the future that waits for the tombstones to be flushed.
pub async fn handle(
    broker: Arc<Broker>,
    req: DeleteGroupsRequest,
) -> impl Future<Output = DeleteGroupsResponse> + Send {
    let b = broker.clone();
    let outcomes = tokio::task::spawn_blocking(move || {
        req.groups_names
            .into_iter()
            .map(|group_id| {
                let outcome = if group_id.is_empty() {
                    Err(GroupError::InvalidGroupId)
                } else {
                    b.groups.delete_group(b.logs.flusher(), group_id.as_str())
                };
                (group_id, outcome)
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("group deletion does not panic");
    async move {
        let mut results = Vec::with_capacity(outcomes.len());
        for (group_id, outcome) in outcomes {
            let code = match outcome {
                Ok(Some(written)) => {
                    if written.durable().await {
                        0
                    } else {
                        ResponseError::CoordinatorNotAvailable.code()
                    }
                }
                Ok(None) => 0,
                Err(e) => e.error_code(),
            };
            results.push(DeletableGroupResult::default().with_group_id(group_id).with_error_code(code));
        }
        DeleteGroupsResponse::default().with_results(results)
    }
}
