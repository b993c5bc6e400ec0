//! FindCoordinator: which broker coordinates a consumer group or a
//! transactional id.
//!
//! On one node the answer is always this broker. Group keys (type 0) and
//! transactional ids (type 1) get it; keys of other types (share groups) get
//! COORDINATOR_NOT_AVAILABLE until Runnel coordinates them. From v4 one
//! request names several keys (KIP-699) and the answer is a list.
//!
//! librdkafka decides whether a broker supports LZ4 compression from whether
//! its ApiVersions lists FindCoordinator, so serving it also makes librdkafka
//! clients compress with LZ4 when asked.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::find_coordinator_response::{Coordinator, FindCoordinatorResponse};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;

use crate::handler::Endpoint;

/// Kafka's key type for consumer groups.
const KEY_TYPE_GROUP: i8 = 0;
/// Kafka's key type for transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(node_id: i32, endpoint: &Endpoint, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let served = req.key_type == KEY_TYPE_GROUP || req.key_type == KEY_TYPE_TRANSACTION;
    let error = if served { None } else { Some(ResponseError::CoordinatorNotAvailable) };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key);
                match error {
                    None => c.with_node_id(BrokerId(node_id)).with_host(host(endpoint)).with_port(endpoint.port),
                    Some(e) => c.with_node_id(BrokerId(-1)).with_port(-1).with_error_code(e.code()),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match error {
        None => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(node_id))
            .with_host(host(endpoint))
            .with_port(endpoint.port),
        Some(e) => {
            FindCoordinatorResponse::default().with_error_code(e.code()).with_node_id(BrokerId(-1)).with_port(-1)
        }
    }
}

fn host(endpoint: &Endpoint) -> StrBytes {
    StrBytes::from_string(endpoint.host.clone())
}
