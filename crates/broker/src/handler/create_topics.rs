//! CreateTopics: topics with a chosen partition count and topic configs.
//!
//! On one broker the only valid replication factor is 1 (or -1 for the
//! default); an explicit assignment must name this broker for each partition.
//! `validate_only` checks everything and creates nothing. A topic named twice
//! in one request is refused with INVALID_REQUEST, as Kafka does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, BrokerScope, TopicError};
use crate::config::{broker_config, validate_topic_configs, TOPIC_CONFIGS};
use crate::error::ToErrorCode;
use crate::handler::describe_configs::{broker_chain, SOURCE_DEFAULT, SOURCE_TOPIC};

pub async fn handle(broker: Arc<Broker>, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    tokio::task::spawn_blocking(move || {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for t in &req.topics {
            *seen.entry(t.name.to_string()).or_default() += 1;
        }
        let results = req
            .topics
            .iter()
            .map(|t| {
                if seen[t.name.as_str()] > 1 {
                    let msg = format!("topic '{}' appears more than once in the request", t.name.as_str());
                    return failed(t, ResponseError::InvalidRequest, msg);
                }
                match create(&broker, t, req.validate_only, version) {
                    Ok(result) => result,
                    Err(e) => failed(t, e.error(), e.to_string()),
                }
            })
            .collect();
        CreateTopicsResponse::default().with_topics(results)
    })
    .await
    .expect("create topics does not panic")
}

fn create(
    broker: &Broker,
    t: &CreatableTopic,
    validate_only: bool,
    version: i16,
) -> Result<CreatableTopicResult, TopicError> {
    let partitions = partition_count(broker, t)?;
    let configs =
        validate_topic_configs(t.configs.iter().map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str()))))?;
    let id = if validate_only {
        broker.check_new_topic(&t.name, partitions)?;
        uuid::Uuid::nil()
    } else {
        broker.create_topic(&t.name, partitions, configs.clone())?.meta.id
    };
    let mut result = CreatableTopicResult::default().with_name(t.name.clone());
    // Partition count, replication factor and configs are reported from v5
    // (KIP-464), the topic id from v7 (KIP-516).
    if version >= 5 {
        result = result
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(Some(describe_configs(broker, &configs)));
    }
    if version >= 7 {
        result = result.with_topic_id(id);
    }
    Ok(result)
}

fn partition_count(broker: &Broker, t: &CreatableTopic) -> Result<i32, TopicError> {
    if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            // Kafka: either an assignment or counts, not both.
            return Err(TopicError::InvalidPartitions(t.num_partitions));
        }
        let me = broker.node_id();
        let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        let dense = indexes.iter().enumerate().all(|(i, p)| *p == i as i32);
        let on_me = t.assignments.iter().all(|a| a.broker_ids.len() == 1 && a.broker_ids[0].0 == me);
        if !dense || !on_me {
            return Err(TopicError::InvalidReplicationFactor(t.assignments[0].broker_ids.len() as i16));
        }
        return Ok(t.assignments.len() as i32);
    }
    if t.replication_factor != -1 && t.replication_factor != 1 {
        return Err(TopicError::InvalidReplicationFactor(t.replication_factor));
    }
    Ok(if t.num_partitions == -1 { broker.effective_config().num_partitions() } else { t.num_partitions })
}

fn describe_configs(broker: &Broker, overrides: &BTreeMap<String, String>) -> Vec<CreatableTopicConfigs> {
    let node = broker.dynamic_broker_configs(BrokerScope::Node);
    let cluster = broker.dynamic_broker_configs(BrokerScope::ClusterDefault);
    TOPIC_CONFIGS
        .iter()
        .map(|t| {
            // The same resolution as DescribeConfigs: override, then the broker synonym's chain.
            let (value, source) = match (overrides.get(t.def.name), t.synonym.and_then(broker_config)) {
                (Some(v), _) => (v.clone(), SOURCE_TOPIC),
                (None, Some(def)) => {
                    let top = broker_chain(broker, def, &node, &cluster).swap_remove(0);
                    (top.value, top.source)
                }
                (None, None) => (t.def.default.to_string(), SOURCE_DEFAULT),
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(t.def.name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source)
        })
        .collect()
}

/// A failed topic; error messages exist in every version served (v2+).
fn failed(t: &CreatableTopic, error: ResponseError, message: String) -> CreatableTopicResult {
    CreatableTopicResult::default()
        .with_name(t.name.clone())
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}
