//! Checks of the admin APIs: CreateTopics (CREATE on the cluster or the
//! topic), DeleteTopics and DeleteRecords (DELETE on the topic),
//! CreatePartitions (ALTER on the topic), DescribeConfigs and the two
//! AlterConfigs (DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic or the
//! cluster), DescribeLogDirs and DescribeCluster (DESCRIBE on the cluster),
//! ElectLeaders (ALTER on the cluster) and DescribeTopicPartitions (DESCRIBE
//! on each topic).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{self, AlterConfigsResponse};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafka_protocol::messages::create_partitions_response::{CreatePartitionsResponse, CreatePartitionsTopicResult};
use kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafka_protocol::messages::create_topics_response::{CreatableTopicResult, CreateTopicsResponse};
use kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafka_protocol::messages::delete_topics_response::{DeletableTopicResult, DeleteTopicsResponse};
use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterResponse;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResponse, DescribeConfigsResult};
use kafka_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResponse;
use kafka_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use kafka_protocol::messages::describe_topic_partitions_response::{
    DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::elect_leaders_request::ElectLeadersRequest;
use kafka_protocol::messages::elect_leaders_response::{ElectLeadersResponse, PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_response::{self, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::{Check, Outcome};
use crate::authz::{Operation, ResourceType, CLUSTER_NAME};
use crate::handler::metadata::OPERATIONS_NOT_REQUESTED;

const TOPIC_DENIED: ResponseError = ResponseError::TopicAuthorizationFailed;
const CLUSTER_DENIED: ResponseError = ResponseError::ClusterAuthorizationFailed;

/// Config resource types (DescribeConfigs, AlterConfigs).
const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;

fn message(error: ResponseError) -> Option<StrBytes> {
    Some(StrBytes::from_static_str(match error {
        ResponseError::TopicAuthorizationFailed => "Topic authorization failed.",
        ResponseError::ClusterAuthorizationFailed => "Cluster authorization failed.",
        _ => "Authorization failed.",
    }))
}

/// CreateTopics: CREATE on the cluster or the topic; a created topic's
/// configs, partition count and replication factor (v5+) are shown only
/// with DESCRIBE_CONFIGS on it, else its topic_config_error_code is
/// TOPIC_AUTHORIZATION_FAILED, as in Kafka.
pub(super) fn create_topics(check: Check<'_>, mut req: CreateTopicsRequest, version: i16) -> Outcome {
    let cluster_create = check.quietly(Operation::Create, ResourceType::Cluster, CLUSTER_NAME);
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let allowed = cluster_create || check.topic(Operation::Create, &t.name);
        if !allowed {
            denied.push(
                CreatableTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(TOPIC_DENIED.code())
                    .with_error_message(message(TOPIC_DENIED)),
            );
        }
        allowed
    });
    let owned = check.owned();
    Outcome::merge(req, move |mut r: CreateTopicsResponse| {
        if version >= 5 {
            let check = owned.check();
            for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
                if !check.quietly(Operation::DescribeConfigs, ResourceType::Topic, &t.name) {
                    t.topic_config_error_code = TOPIC_DENIED.code();
                    t.num_partitions = -1;
                    t.replication_factor = -1;
                    t.configs = Some(Vec::new());
                }
            }
        }
        r.topics.extend(denied);
        r
    })
}

pub(super) fn delete_topics(check: Check<'_>, mut req: DeleteTopicsRequest, version: i16) -> Outcome {
    let mut denied = Vec::new();
    let result = |name: Option<_>, id| {
        DeletableTopicResult::default().with_name(name).with_topic_id(id).with_error_code(TOPIC_DENIED.code())
    };
    if version >= 6 {
        req.topics.retain(|t| {
            let name = match &t.name {
                Some(name) => Some(name.to_string()),
                None => check.broker.topic_by_id(&t.topic_id).map(|t| t.meta.name.clone()),
            };
            let allowed = name.is_none_or(|name| check.topic(Operation::Delete, &name));
            if !allowed {
                denied.push(result(t.name.clone(), t.topic_id));
            }
            allowed
        });
    } else {
        req.topic_names.retain(|name| {
            let allowed = check.topic(Operation::Delete, name);
            if !allowed {
                denied.push(result(Some(name.clone()), uuid::Uuid::nil()));
            }
            allowed
        });
    }
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: DeleteTopicsResponse| {
        r.responses.extend(denied);
        r
    })
}

pub(super) fn create_partitions(check: Check<'_>, mut req: CreatePartitionsRequest) -> Outcome {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let allowed = check.topic(Operation::Alter, &t.name);
        if !allowed {
            denied.push(
                CreatePartitionsTopicResult::default()
                    .with_name(t.name.clone())
                    .with_error_code(TOPIC_DENIED.code())
                    .with_error_message(message(TOPIC_DENIED)),
            );
        }
        allowed
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: CreatePartitionsResponse| {
        r.results.extend(denied);
        r
    })
}

pub(super) fn delete_records(check: Check<'_>, mut req: DeleteRecordsRequest) -> Outcome {
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let allowed = check.topic(Operation::Delete, &t.name);
        if !allowed {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1)
                        .with_error_code(TOPIC_DENIED.code())
                })
                .collect();
            denied.push(DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(partitions));
        }
        allowed
    });
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: DeleteRecordsResponse| {
        r.topics.extend(denied);
        r
    })
}

/// Whether the principal may perform `topic_op` / `cluster_op` on a config
/// resource; `None` when allowed (or not a resource type ACLs cover).
fn config_denial(check: Check<'_>, resource_type: i8, name: &str, op: Operation) -> Option<ResponseError> {
    match resource_type {
        CONFIG_TOPIC => (!check.topic(op, name)).then_some(TOPIC_DENIED),
        CONFIG_BROKER | CONFIG_BROKER_LOGGER => (!check.cluster(op)).then_some(CLUSTER_DENIED),
        _ => None,
    }
}

/// Keeps the config resources `operation` is allowed on; the others become
/// the denied results `deny` makes of them.
fn retain_allowed<T, D>(
    check: Check<'_>,
    resources: &mut Vec<T>,
    operation: Operation,
    resource: impl Fn(&T) -> (i8, &StrBytes),
    deny: impl Fn(&T, ResponseError) -> D,
) -> Vec<D> {
    let mut denied = Vec::new();
    resources.retain(|r| {
        let (resource_type, name) = resource(r);
        let denial = config_denial(check, resource_type, name, operation);
        if let Some(error) = denial {
            denied.push(deny(r, error));
        }
        denial.is_none()
    });
    denied
}

pub(super) fn describe_configs(check: Check<'_>, mut req: DescribeConfigsRequest) -> Outcome {
    let denied = retain_allowed(
        check,
        &mut req.resources,
        Operation::DescribeConfigs,
        |r| (r.resource_type, &r.resource_name),
        |r, error| {
            DescribeConfigsResult::default()
                .with_error_code(error.code())
                .with_error_message(message(error))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        },
    );
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: DescribeConfigsResponse| {
        r.results.extend(denied);
        r
    })
}

pub(super) fn alter_configs(check: Check<'_>, mut req: AlterConfigsRequest) -> Outcome {
    let denied = retain_allowed(
        check,
        &mut req.resources,
        Operation::AlterConfigs,
        |r| (r.resource_type, &r.resource_name),
        |r, error| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error.code())
                .with_error_message(message(error))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        },
    );
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: AlterConfigsResponse| {
        r.responses.extend(denied);
        r
    })
}

pub(super) fn incremental_alter_configs(check: Check<'_>, mut req: IncrementalAlterConfigsRequest) -> Outcome {
    let denied = retain_allowed(
        check,
        &mut req.resources,
        Operation::AlterConfigs,
        |r| (r.resource_type, &r.resource_name),
        |r, error| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error.code())
                .with_error_message(message(error))
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone())
        },
    );
    if denied.is_empty() {
        return Outcome::pass(req);
    }
    Outcome::merge(req, move |mut r: IncrementalAlterConfigsResponse| {
        r.responses.extend(denied);
        r
    })
}

/// DescribeLogDirs without DESCRIBE on the cluster: no directories, and
/// from v3 on CLUSTER_AUTHORIZATION_FAILED.
pub(super) fn describe_log_dirs(check: Check<'_>, req: DescribeLogDirsRequest, version: i16) -> Outcome {
    if check.cluster(Operation::Describe) {
        return Outcome::pass(req);
    }
    let response = DescribeLogDirsResponse::default();
    Outcome::answer(if version >= 3 { response.with_error_code(CLUSTER_DENIED.code()) } else { response })
}

pub(super) fn elect_leaders(check: Check<'_>, req: ElectLeadersRequest, version: i16) -> Outcome {
    if check.cluster(Operation::Alter) {
        return Outcome::pass(req);
    }
    let results = req
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    PartitionResult::default()
                        .with_partition_id(*p)
                        .with_error_code(CLUSTER_DENIED.code())
                        .with_error_message(message(CLUSTER_DENIED))
                })
                .collect();
            ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(partitions)
        })
        .collect();
    let response = ElectLeadersResponse::default().with_replica_election_results(results);
    Outcome::answer(if version >= 1 { response.with_error_code(CLUSTER_DENIED.code()) } else { response })
}

pub(super) fn describe_cluster(check: Check<'_>, req: DescribeClusterRequest) -> Outcome {
    if !check.cluster(Operation::Describe) {
        return Outcome::answer(
            DescribeClusterResponse::default()
                .with_error_code(CLUSTER_DENIED.code())
                .with_error_message(message(CLUSTER_DENIED))
                .with_endpoint_type(req.endpoint_type)
                .with_cluster_authorized_operations(OPERATIONS_NOT_REQUESTED),
        );
    }
    let owned = check.owned();
    Outcome::merge(req, move |mut r: DescribeClusterResponse| {
        if r.cluster_authorized_operations != OPERATIONS_NOT_REQUESTED {
            r.cluster_authorized_operations = owned.check().operations(ResourceType::Cluster, CLUSTER_NAME);
        }
        r
    })
}

/// DescribeTopicPartitions: a named topic the principal may not DESCRIBE is
/// TOPIC_AUTHORIZATION_FAILED; with no names (all topics) such topics are
/// left out.
pub(super) fn describe_topic_partitions(check: Check<'_>, mut req: DescribeTopicPartitionsRequest) -> Outcome {
    let all_topics = req.topics.is_empty();
    let mut denied = Vec::new();
    req.topics.retain(|t| {
        let allowed = check.topic(Operation::Describe, &t.name);
        if !allowed {
            denied.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(TOPIC_DENIED.code())
                    .with_name(Some(t.name.clone()))
                    .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED),
            );
        }
        allowed
    });
    if !all_topics && req.topics.is_empty() {
        // Every named topic is denied: an empty list would mean "all".
        return Outcome::answer(DescribeTopicPartitionsResponse::default().with_topics(denied));
    }
    let owned = check.owned();
    Outcome::merge(req, move |mut r: DescribeTopicPartitionsResponse| {
        let check = owned.check();
        if all_topics {
            r.topics
                .retain(|t| t.name.as_ref().is_none_or(|n| check.quietly(Operation::Describe, ResourceType::Topic, n)));
        }
        for t in r.topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(name) = &t.name {
                t.topic_authorized_operations = check.operations(ResourceType::Topic, name);
            }
        }
        r.topics.extend(denied);
        r
    })
}
