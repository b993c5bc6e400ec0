//! DeleteGroups: remove groups without members, with their committed
//! offsets (tombstones in `__consumer_offsets`). A group with members gets
//! NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::delete_groups_response::{DeletableGroupResult, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::error::ToErrorCode;

pub async fn handle(broker: Arc<Broker>, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for group_id in req.groups_names {
        let b = broker.clone();
        let id = group_id.to_string();
        let outcome = tokio::task::spawn_blocking(move || {
            if id.is_empty() {
                return Err(crate::group::state::GroupError::InvalidGroupId);
            }
            b.groups.delete_group(b.logs.flusher(), &id)
        })
        .await
        .expect("group deletion does not panic");
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
