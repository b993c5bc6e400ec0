//! EndTxn: commit or abort the producer's open transaction.
//!
//! The coordinator stores the decision (PrepareCommit or PrepareAbort); the
//! answer goes out once that write is flushed, and the markers and the
//! complete state follow in the background (see [`crate::txn`]), as Kafka
//! answers once the decision is replicated. From v5 (transaction version 2,
//! KIP-890) the epoch is bumped for every transaction and returned.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::end_txn_request::EndTxnRequest;
use kafka_protocol::messages::end_txn_response::EndTxnResponse;
use kafka_protocol::messages::ProducerId;

use crate::broker::Broker;

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 2;
/// The first version of transaction protocol version 2.
const TV2_SINCE: i16 = 5;

pub async fn handle(
    broker: Arc<Broker>,
    req: EndTxnRequest,
    version: i16,
) -> impl Future<Output = EndTxnResponse> + Send {
    let b = broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
        b.txns.end_txn(&b, &req.transactional_id, pid, epoch, req.committed, version >= TV2_SINCE)
    })
    .await
    .expect("end txn does not panic");
    let decided = match result {
        Ok((answer, Some(prepared))) => Ok((answer, Some(crate::txn::spawn_completion(broker, prepared)))),
        Ok((answer, None)) => Ok((answer, None)),
        Err(e) => Err(e),
    };
    async move {
        let (code, answer) = match decided {
            Ok((answer, decision)) => {
                let stored = match decision {
                    Some(stored) => stored.await.unwrap_or(false),
                    None => true,
                };
                if stored {
                    (0, Some(answer))
                } else {
                    (ResponseError::CoordinatorNotAvailable.code(), None)
                }
            }
            Err(e) => (e.code_for(version, FENCED_SINCE), None),
        };
        let response = EndTxnResponse::default().with_error_code(code);
        if version < TV2_SINCE {
            return response;
        }
        match answer {
            Some(a) => response.with_producer_id(ProducerId(a.producer_id)).with_producer_epoch(a.epoch),
            None => response,
        }
    }
}
