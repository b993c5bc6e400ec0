//! ConsumerGroupHeartbeat: membership and assignment of the consumer group
//! protocol (KIP-848).
//!
//! The handler translates between the wire (topics by id) and the
//! coordinator (topics by name): owned partitions of topics that no longer
//! exist are dropped, and the assignment is sent with the ids of the topics
//! as they are now. The state change runs on a blocking thread before the
//! connection reads its next request; the answer waits for any write of the
//! group's records to be flushed.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::group::assignor;
use crate::group::consumer::{Heartbeat, HeartbeatAnswer};

/// Id and partition count of every topic, by name.
fn topic_counts(broker: &Broker) -> BTreeMap<String, (Uuid, i32)> {
    broker.topics().iter().map(|t| (t.meta.name.clone(), (t.meta.id, t.partitions.len() as i32))).collect()
}

fn to_request(broker: &Broker, req: &ConsumerGroupHeartbeatRequest, client_id: String, peer: SocketAddr) -> Heartbeat {
    let owned = req.topic_partitions.as_ref().map(|topics| {
        let mut owned = assignor::Assignment::new();
        for t in topics {
            if let Some(topic) = broker.topic_by_id(&t.topic_id) {
                owned.entry(topic.meta.name.clone()).or_default().extend(t.partitions.iter().copied());
            }
        }
        owned
    });
    Heartbeat {
        member_id: req.member_id.to_string(),
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        member_epoch: req.member_epoch,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed: req.subscribed_topic_names.as_ref().map(|ts| ts.iter().map(|t| t.to_string()).collect()),
        regex: req.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
        owned,
        client_id,
        client_host: format!("/{}", peer.ip()),
    }
}

/// The assignment on the wire: topics by id, in name order.
pub fn wire_assignment(broker: &Broker, assignment: &assignor::Assignment) -> Vec<TopicPartitions> {
    assignment
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .filter_map(|(name, ps)| {
            let topic = broker.topic(name)?;
            Some(TopicPartitions::default().with_topic_id(topic.meta.id).with_partitions(ps.iter().copied().collect()))
        })
        .collect()
}

fn answer(broker: &Broker, a: HeartbeatAnswer) -> ConsumerGroupHeartbeatResponse {
    let assignment = a.assignment.map(|x| Assignment::default().with_topic_partitions(wire_assignment(broker, &x)));
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(StrBytes::from_string(a.member_id)))
        .with_member_epoch(a.member_epoch)
        .with_heartbeat_interval_ms(a.heartbeat_interval_ms)
        .with_assignment(assignment)
}

fn error(code: i16, message: &str) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}

pub async fn handle(
    broker: Arc<Broker>,
    req: ConsumerGroupHeartbeatRequest,
    client_id: String,
    peer: SocketAddr,
    version: i16,
) -> impl Future<Output = ConsumerGroupHeartbeatResponse> + Send {
    let heartbeat = to_request(&broker, &req, client_id, peer);
    let b = broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        let topics = topic_counts(&b);
        b.groups.consumer_heartbeat(b.logs.flusher(), req.group_id.as_str(), heartbeat, version, &topics)
    })
    .await
    .expect("consumer heartbeat does not panic");
    async move {
        match result {
            Err(e) => error(e.error_code(), &e.to_string()),
            Ok((a, written)) => {
                if let Some(written) = written {
                    if !written.durable().await {
                        return error(ResponseError::CoordinatorNotAvailable.code(), "group state not stored");
                    }
                }
                answer(&broker, a)
            }
        }
    }
}
