//! InitProducerId: a producer id and epoch for an idempotent or
//! transactional producer.
//!
//! Without a transactional id the answer is a fresh producer id at epoch 0.
//! With one, the transaction coordinator bumps the id's epoch (fencing any
//! older producer with the same id) or, when a transaction is open, aborts it
//! first and answers CONCURRENT_TRANSACTIONS so the client retries. From v3
//! a producer recovering from an error sends its current id and epoch
//! (KIP-360). The answer waits until the new state is stored.

use std::future::Future;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::ProducerId;

use crate::broker::Broker;

/// The first version whose clients know PRODUCER_FENCED (KIP-588).
const FENCED_SINCE: i16 = 4;

pub async fn handle(
    broker: Arc<Broker>,
    req: InitProducerIdRequest,
    version: i16,
) -> impl Future<Output = InitProducerIdResponse> + Send {
    let transactional_id = req.transactional_id.map(|id| id.to_string());
    let expected = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
    let timeout_ms = req.transaction_timeout_ms;
    let b = broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        b.txns.init_producer_id(&b, transactional_id.as_deref(), timeout_ms, expected)
    })
    .await
    .expect("init producer id does not panic");
    async move {
        let failed = |code: i16| {
            InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        };
        match result {
            Ok((answer, written)) => {
                if !crate::txn::durable(written).await {
                    return failed(ResponseError::CoordinatorNotAvailable.code());
                }
                InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(answer.producer_id))
                    .with_producer_epoch(answer.epoch)
            }
            Err(e) => failed(e.code_for(version, FENCED_SINCE)),
        }
    }
}
