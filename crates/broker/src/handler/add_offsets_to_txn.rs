//! AddOffsetsToTxn: a transactional producer is about to commit a group's
//! offsets in its transaction. The group's `__consumer_offsets` partition
//! joins the transaction, so ending it writes a marker there too.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;

use crate::broker::Broker;
use crate::group::OFFSETS_TOPIC;

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;

pub async fn handle(
    broker: Arc<Broker>,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> impl Future<Output = AddOffsetsToTxnResponse> + Send {
    let b = broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        if req.group_id.is_empty() {
            return Err(crate::txn::state::TxnError::InvalidRequest);
        }
        let partition = (OFFSETS_TOPIC.to_string(), b.groups.partition_index(&req.group_id));
        let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
        b.txns.add_partitions(&b, &req.transactional_id, pid, epoch, &[partition])
    })
    .await
    .expect("add offsets does not panic");
    async move {
        let code = match result {
            Ok(written) => {
                if crate::txn::durable(written.into_iter().collect()).await {
                    0
                } else {
                    ResponseError::CoordinatorNotAvailable.code()
                }
            }
            Err(e) => e.code_for(version, FENCED_SINCE),
        };
        AddOffsetsToTxnResponse::default().with_error_code(code)
    }
}
