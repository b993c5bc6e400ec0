//! Metadata: brokers, topics and partition leaders; auto-creates topics.
//!
//! A null topic list (v1+) or an empty one at v0 asks for every topic. An
//! unknown topic is created when the request allows it (always before v4) and
//! `auto.create.topics.enable` is set; it is created synchronously, so the
//! response already carries its partitions and leaders.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequest;
use kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::broker::{Broker, Topic, TopicError};
use crate::error::ToErrorCode;
use crate::handler::Endpoint;

/// Kafka's "authorized operations were not requested" marker.
pub(crate) const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;
/// Topic operations a client may perform with no authorizer configured:
/// READ(3), WRITE(4), CREATE(5), DELETE(6), ALTER(7), DESCRIBE(8),
/// DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11), as a bit set.
pub(crate) const TOPIC_OPERATIONS_ALL: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Cluster operations allowed with no authorizer: CREATE(5), ALTER(7),
/// DESCRIBE(8), CLUSTER_ACTION(9), DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11),
/// IDEMPOTENT_WRITE(12).
pub(crate) const CLUSTER_OPERATIONS_ALL: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

pub async fn handle(broker: Arc<Broker>, endpoint: Endpoint, req: MetadataRequest, version: i16) -> MetadataResponse {
    let include_ops = version >= 8 && req.include_topic_authorized_operations;
    let req_cluster_ops = req.include_cluster_authorized_operations;
    let topics = match req.topics {
        None => all_topics(&broker, include_ops, version),
        Some(ref list) if list.is_empty() && version == 0 => all_topics(&broker, include_ops, version),
        Some(list) => {
            let allow_create = (version < 4 || req.allow_auto_topic_creation) && broker.config.auto_create_topics();
            let mut out = Vec::with_capacity(list.len());
            for requested in list {
                out.push(
                    requested_topic(&broker, requested.name, requested.topic_id, allow_create, include_ops, version)
                        .await,
                );
            }
            out
        }
    };
    let node = MetadataResponseBroker::default()
        .with_node_id(BrokerId(broker.node_id()))
        .with_host(StrBytes::from_string(endpoint.host))
        .with_port(endpoint.port);
    let mut response = MetadataResponse::default().with_brokers(vec![node]).with_topics(topics);
    if version >= 1 {
        response = response.with_controller_id(BrokerId(broker.node_id()));
    }
    if version >= 2 {
        response = response.with_cluster_id(Some(StrBytes::from_string(broker.cluster_id().to_string())));
    }
    // Only v8-10 carry the cluster's authorized operations (KIP-430).
    if (8..=10).contains(&version) && req_cluster_ops {
        response = response.with_cluster_authorized_operations(CLUSTER_OPERATIONS_ALL);
    }
    response
}

fn all_topics(broker: &Broker, include_ops: bool, version: i16) -> Vec<MetadataResponseTopic> {
    broker.topics().iter().map(|t| describe(broker, t, include_ops, version)).collect()
}

async fn requested_topic(
    broker: &Arc<Broker>,
    name: Option<TopicName>,
    topic_id: Uuid,
    allow_create: bool,
    include_ops: bool,
    version: i16,
) -> MetadataResponseTopic {
    let Some(name) = name else {
        // Topic ids (v10+) name a topic without its name.
        return match broker.topic_by_id(&topic_id) {
            Some(topic) => describe(broker, &topic, include_ops, version),
            None => error_topic(None, topic_id, ResponseError::UnknownTopicId),
        };
    };
    if let Some(topic) = broker.topic(&name) {
        return describe(broker, &topic, include_ops, version);
    }
    if !allow_create {
        return error_topic(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition);
    }
    let creator = broker.clone();
    let topic_name = name.to_string();
    let created = tokio::task::spawn_blocking(move || {
        let partitions = creator.effective_config().num_partitions();
        creator.create_topic(&topic_name, partitions, BTreeMap::new())
    })
    .await
    .expect("topic creation does not panic");
    match created {
        Ok(topic) => describe(broker, &topic, include_ops, version),
        // Another request created it first.
        Err(TopicError::AlreadyExists(_)) => match broker.topic(&name) {
            Some(topic) => describe(broker, &topic, include_ops, version),
            None => error_topic(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition),
        },
        Err(e) => {
            tracing::warn!(topic = %name.as_str(), error = %e, "auto-creation failed");
            error_topic(Some(name), Uuid::nil(), e.error())
        }
    }
}

fn describe(broker: &Broker, topic: &Topic, include_ops: bool, version: i16) -> MetadataResponseTopic {
    let node = BrokerId(broker.node_id());
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            let partition = MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(node)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node]);
            // Leader epochs appear in v7 (KIP-320).
            if version >= 7 {
                partition.with_leader_epoch(0)
            } else {
                partition
            }
        })
        .collect();
    let described = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.meta.name.clone()))))
        .with_partitions(partitions)
        .with_is_internal(crate::group::is_internal_topic(&topic.meta.name))
        .with_topic_authorized_operations(if include_ops { TOPIC_OPERATIONS_ALL } else { OPERATIONS_NOT_REQUESTED });
    // Topic ids appear in v10 (KIP-516).
    if version >= 10 {
        described.with_topic_id(topic.meta.id)
    } else {
        described
    }
}

fn error_topic(name: Option<TopicName>, id: Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error.code())
        .with_name(name)
        .with_topic_id(id)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}
