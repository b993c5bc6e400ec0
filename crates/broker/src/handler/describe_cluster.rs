//! DescribeCluster (v0-v2): the cluster id, this broker as the only broker
//! and as the controller (one node runs the metadata log itself).
//!
//! Asking for controller endpoints (endpoint type 2) is refused with
//! MISMATCHED_ENDPOINT_TYPE: a client reaches controllers only through a
//! controller listener, which Runnel does not have.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::{DescribeClusterBroker, DescribeClusterResponse};
use kafka_protocol::messages::BrokerId;
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::handler::metadata::{CLUSTER_OPERATIONS_ALL, OPERATIONS_NOT_REQUESTED};
use crate::handler::Endpoint;

/// Endpoint types of DescribeCluster v1+.
const ENDPOINT_BROKERS: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    endpoint: &Endpoint,
    req: DescribeClusterRequest,
    version: i16,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    if version >= 1 {
        response.endpoint_type = req.endpoint_type;
        if req.endpoint_type != ENDPOINT_BROKERS {
            response.error_code = ResponseError::MismatchedEndpointType.code();
            response.error_message = Some(StrBytes::from_static_str("this listener serves brokers only"));
            return response;
        }
    }
    let me = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.node_id()))
        .with_host(StrBytes::from_string(endpoint.host.clone()))
        .with_port(endpoint.port);
    response
        .with_cluster_id(StrBytes::from_string(broker.cluster_id().to_string()))
        .with_controller_id(BrokerId(broker.node_id()))
        .with_brokers(vec![me])
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            CLUSTER_OPERATIONS_ALL
        } else {
            OPERATIONS_NOT_REQUESTED
        })
}
