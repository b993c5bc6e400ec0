//! Checks of the data-path APIs: Produce (WRITE on each topic, and WRITE on
//! the transactional id for transactional batches), Fetch (READ on each
//! topic; CLUSTER_ACTION for a follower), ListOffsets (DESCRIBE on each
//! topic) and Metadata (DESCRIBE on each topic shown, CREATE to auto-create).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchRequest;
use kafka_protocol::messages::fetch_response::{FetchResponse, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::{MetadataResponse, MetadataResponseTopic};
use kafka_protocol::messages::produce_request::{ProduceRequest, TopicProduceData};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, ProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::TopicName;
use uuid::Uuid;

use super::{Check, Outcome};
use crate::authz::{Operation, ResourceType};
use crate::handler::metadata::OPERATIONS_NOT_REQUESTED;

/// Offset of the attributes in a v2 record batch, and their transactional bit.
const BATCH_ATTRIBUTES_OFFSET: usize = 21;
const ATTRIBUTE_TRANSACTIONAL: u8 = 0x10;

/// Whether `operation` is allowed on a topic a request names by name or
/// (newer versions) by id. An unknown id passes: the handler answers it
/// (UNKNOWN_TOPIC_ID), as Kafka does. By name, nothing is allocated.
fn topic_allowed(check: Check<'_>, operation: Operation, name: &TopicName, id: Uuid, by_id: bool) -> bool {
    if !by_id {
        return check.topic(operation, name);
    }
    check.broker.topic_by_id(&id).is_none_or(|t| check.topic(operation, &t.meta.name))
}

/// Whether a produce request carries transactional batches: Kafka's
/// `hasTransactionalRecords`, read from the first batch of each partition.
fn has_transactional_records(req: &ProduceRequest) -> bool {
    req.transactional_id.is_some()
        || req.topic_data.iter().flat_map(|t| &t.partition_data).any(|p| {
            p.records
                .as_ref()
                .and_then(|r| r.get(BATCH_ATTRIBUTES_OFFSET + 1))
                .is_some_and(|low| low & ATTRIBUTE_TRANSACTIONAL != 0)
        })
}

pub(super) fn produce(check: Check<'_>, mut req: ProduceRequest, version: i16) -> Outcome {
    let acks_none = req.acks == 0;
    if has_transactional_records(&req) {
        let allowed = req.transactional_id.as_ref().is_some_and(|id| check.transactional_id(Operation::Write, id));
        if !allowed {
            let responses = req
                .topic_data
                .iter()
                .map(|t| produce_denied(t, ResponseError::TransactionalIdAuthorizationFailed))
                .collect();
            let response = ProduceResponse::default().with_responses(responses);
            return if acks_none { Outcome::Answer(None) } else { Outcome::answer(response) };
        }
    }
    let mut denied = Vec::new();
    req.topic_data.retain(|t| {
        let allowed = topic_allowed(check, Operation::Write, &t.name, t.topic_id, version >= 13);
        if !allowed {
            denied.push(produce_denied(t, ResponseError::TopicAuthorizationFailed));
        }
        allowed
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: ProduceResponse| {
        r.responses.extend(denied);
        r
    })
}

fn produce_denied(t: &TopicProduceData, error: ResponseError) -> TopicProduceResponse {
    let partitions = t
        .partition_data
        .iter()
        .map(|p| {
            PartitionProduceResponse::default()
                .with_index(p.index)
                .with_error_code(error.code())
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
        })
        .collect();
    TopicProduceResponse::default()
        .with_name(t.name.clone())
        .with_topic_id(t.topic_id)
        .with_partition_responses(partitions)
}

pub(super) fn fetch(check: Check<'_>, mut req: FetchRequest, version: i16) -> Outcome {
    let follower = req.replica_id.0 >= 0 || req.replica_state.replica_id.0 >= 0;
    let by_id = version >= 13;
    let mut denied = Vec::new();
    let cluster_allowed = follower && check.cluster(Operation::ClusterAction);
    req.topics.retain(|t| {
        let allowed =
            if follower { cluster_allowed } else { topic_allowed(check, Operation::Read, &t.topic, t.topic_id, by_id) };
        if !allowed {
            let error = if follower {
                ResponseError::ClusterAuthorizationFailed
            } else {
                ResponseError::TopicAuthorizationFailed
            };
            let partitions = t.partitions.iter().map(|p| fetch_denied(p.partition, error)).collect();
            denied.push(
                FetchableTopicResponse::default()
                    .with_topic(t.topic.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(partitions),
            );
        }
        allowed
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: FetchResponse| {
        r.responses.extend(denied);
        r
    })
}

fn fetch_denied(partition: i32, error: ResponseError) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(error.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
}

pub(super) fn list_offsets(check: Check<'_>, mut req: ListOffsetsRequest) -> Outcome {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let allowed = check.topic(Operation::Describe, &t.name);
        if !allowed {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1)
                })
                .collect();
            denied.push(ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions));
        }
        allowed
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: ListOffsetsResponse| {
        r.topics.extend(denied);
        r
    })
}

/// Metadata, as Kafka's `handleTopicMetadataRequest`: a topic named but not
/// DESCRIBE-able is TOPIC_AUTHORIZATION_FAILED (and never auto-created); a
/// missing topic the principal may DESCRIBE is auto-created only with
/// CREATE on the cluster or the topic, else TOPIC_AUTHORIZATION_FAILED; a
/// request for all topics shows only the DESCRIBE-able ones, silently.
pub(super) fn metadata(check: Check<'_>, mut req: MetadataRequest, version: i16) -> Outcome {
    let all_topics = match &req.topics {
        None => true,
        Some(list) => list.is_empty() && version == 0,
    };
    let mut denied = Vec::new();
    if let Some(list) = req.topics.as_mut().filter(|_| !all_topics) {
        let auto_create = (version < 4 || req.allow_auto_topic_creation) && check.broker.config.auto_create_topics();
        let cluster_create = std::cell::OnceCell::new();
        list.retain(|t: &MetadataRequestTopic| {
            let (name, exists) = match &t.name {
                Some(name) => (Some(name.to_string()), check.broker.topic(name).is_some()),
                None => (check.broker.topic_by_id(&t.topic_id).map(|t| t.meta.name.clone()), true),
            };
            let Some(name) = name else { return true };
            let allowed = check.topic(Operation::Describe, &name)
                && (exists
                    || !auto_create
                    || *cluster_create.get_or_init(|| {
                        check.quietly(Operation::Create, ResourceType::Cluster, crate::authz::CLUSTER_NAME)
                    })
                    || check.topic(Operation::Create, &name));
            if !allowed {
                denied.push(
                    MetadataResponseTopic::default()
                        .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                        .with_name(t.name.clone())
                        .with_topic_id(if t.name.is_some() { Uuid::nil() } else { t.topic_id })
                        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED),
                );
            }
            allowed
        });
    }
    // At v0 an empty list asks for every topic: when every named topic was
    // denied, the handler's list is dropped.
    let emptied = !all_topics && version == 0 && req.topics.as_ref().is_some_and(Vec::is_empty);
    let owned = check.owned();
    let cluster_ops = (8..=10).contains(&version) && req.include_cluster_authorized_operations;
    Outcome::merge(req, move |mut r: MetadataResponse| {
        let check = owned.check();
        if emptied {
            r.topics.clear();
        }
        if all_topics {
            r.topics
                .retain(|t| t.name.as_ref().is_none_or(|n| check.quietly(Operation::Describe, ResourceType::Topic, n)));
        }
        for t in &mut r.topics {
            if t.topic_authorized_operations != OPERATIONS_NOT_REQUESTED && t.error_code == 0 {
                if let Some(name) = &t.name {
                    t.topic_authorized_operations = check.operations(ResourceType::Topic, name);
                }
            }
        }
        if cluster_ops {
            r.cluster_authorized_operations = check.operations(ResourceType::Cluster, crate::authz::CLUSTER_NAME);
        }
        r.topics.extend(denied);
        r
    })
}
