//! DescribeConfigs (v1-v4): the settings of a topic or of this broker, with
//! each value's source and, on request, its synonyms and documentation.
//!
//! A topic setting resolves in this order, which is also the order of its
//! synonyms: the topic's override (TOPIC_CONFIG), then the broker synonym set
//! for this node (DYNAMIC_BROKER_CONFIG), as the cluster default
//! (DYNAMIC_DEFAULT_BROKER_CONFIG), in the file, environment or command line
//! (STATIC_BROKER_CONFIG), then the default (DEFAULT_CONFIG). A broker
//! setting follows the same chain from the dynamic layers down. The `""`
//! broker resource lists only the cluster-default dynamic settings, as Kafka
//! does. Sensitive settings (`config::is_sensitive`: JAAS lines with
//! passwords) are reported with `is_sensitive` set and no value, as Kafka does.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_request::{DescribeConfigsRequest, DescribeConfigsResource};
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, BrokerScope};
use crate::config::{broker_config, is_dynamic_broker_key, ConfigDef, Kind, Source, BROKER_CONFIGS, TOPIC_CONFIGS};

/// Resource types of the config APIs.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Config sources as Kafka numbers them on the wire.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

/// One link of a setting's resolution chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Synonym {
    pub name: &'static str,
    pub value: String,
    pub source: i8,
}

/// Which broker a broker resource name addresses.
pub fn broker_scope(broker: &Broker, name: &str) -> Result<BrokerScope, String> {
    if name.is_empty() {
        return Ok(BrokerScope::ClusterDefault);
    }
    match name.parse::<i32>() {
        Ok(id) if id == broker.node_id() => Ok(BrokerScope::Node),
        Ok(id) => Err(format!("broker {id} is not this broker ({})", broker.node_id())),
        Err(_) => Err(format!("'{name}' is not a broker id")),
    }
}

/// The resolution chain of broker setting `def`, highest precedence first.
pub fn broker_chain(
    broker: &Broker,
    def: &'static ConfigDef,
    node: &BTreeMap<String, String>,
    cluster: &BTreeMap<String, String>,
) -> Vec<Synonym> {
    let mut chain = Vec::with_capacity(4);
    let mut push = |value: &str, source| chain.push(Synonym { name: def.name, value: value.to_string(), source });
    if let Some(v) = node.get(def.name) {
        push(v, SOURCE_DYNAMIC_BROKER);
    }
    if let Some(v) = cluster.get(def.name) {
        push(v, SOURCE_DYNAMIC_DEFAULT_BROKER);
    }
    if let Some((v, source)) = broker.config.get(def.name) {
        if source != Source::Default {
            push(v, SOURCE_STATIC_BROKER);
        }
    }
    push(def.default, SOURCE_DEFAULT);
    chain
}

/// Kafka's config type numbers (DescribeConfigs v3+).
pub fn config_type(kind: Kind) -> i8 {
    match kind {
        Kind::Bool => 1,
        Kind::Str | Kind::Addr | Kind::Choice(_) => 2,
        Kind::Int { max, .. } if max <= i64::from(i32::MAX) => 3,
        Kind::Int { .. } => 5,
        Kind::Double { .. } => 6,
        Kind::List(_) => 7,
    }
}

/// Runs on a blocking thread: reading the metadata image waits for the
/// metadata lock, which a concurrent alter holds across its fsync.
pub async fn handle(broker: Arc<Broker>, req: DescribeConfigsRequest, version: i16) -> DescribeConfigsResponse {
    tokio::task::spawn_blocking(move || {
        let results = req.resources.iter().map(|r| describe(&broker, r, &req, version)).collect();
        DescribeConfigsResponse::default().with_results(results)
    })
    .await
    .expect("describe configs does not panic")
}

fn describe(
    broker: &Broker,
    resource: &DescribeConfigsResource,
    req: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let fail = |error: ResponseError, message: String| {
        result.clone().with_error_code(error.code()).with_error_message(Some(StrBytes::from_string(message)))
    };
    let wanted =
        |name: &str| resource.configuration_keys.as_ref().is_none_or(|keys| keys.iter().any(|k| k.as_str() == name));
    let node = broker.dynamic_broker_configs(BrokerScope::Node);
    let cluster = broker.dynamic_broker_configs(BrokerScope::ClusterDefault);
    let entries: Vec<(&'static ConfigDef, Vec<Synonym>, bool)> = match resource.resource_type {
        RESOURCE_TOPIC => {
            let name = resource.resource_name.as_str();
            let Some(overrides) = broker.topic_configs(name) else {
                return fail(ResponseError::UnknownTopicOrPartition, format!("unknown topic '{name}'"));
            };
            TOPIC_CONFIGS
                .iter()
                .filter(|t| wanted(t.def.name))
                .map(|t| {
                    let mut chain = Vec::new();
                    if let Some(v) = overrides.get(t.def.name) {
                        chain.push(Synonym { name: t.def.name, value: v.clone(), source: SOURCE_TOPIC });
                    }
                    match t.synonym.and_then(broker_config) {
                        Some(def) => chain.extend(broker_chain(broker, def, &node, &cluster)),
                        None => chain.push(Synonym {
                            name: t.def.name,
                            value: t.def.default.to_string(),
                            source: SOURCE_DEFAULT,
                        }),
                    }
                    (&t.def, chain, false)
                })
                .collect()
        }
        RESOURCE_BROKER => match broker_scope(broker, resource.resource_name.as_str()) {
            Err(message) => return fail(ResponseError::InvalidRequest, message),
            Ok(BrokerScope::ClusterDefault) => BROKER_CONFIGS
                .iter()
                .filter(|d| cluster.contains_key(d.name) && wanted(d.name))
                .map(|d| {
                    let chain = vec![Synonym {
                        name: d.name,
                        value: cluster[d.name].clone(),
                        source: SOURCE_DYNAMIC_DEFAULT_BROKER,
                    }];
                    (d, chain, !is_dynamic_broker_key(d.name))
                })
                .collect(),
            Ok(BrokerScope::Node) => BROKER_CONFIGS
                .iter()
                .filter(|d| wanted(d.name))
                .map(|d| (d, broker_chain(broker, d, &node, &cluster), !is_dynamic_broker_key(d.name)))
                .collect(),
        },
        other => return fail(ResponseError::InvalidRequest, format!("unsupported resource type {other}")),
    };
    let configs =
        entries.into_iter().map(|(def, chain, read_only)| entry(def, chain, read_only, req, version)).collect();
    result.with_configs(configs)
}

fn entry(
    def: &'static ConfigDef,
    chain: Vec<Synonym>,
    read_only: bool,
    req: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResourceResult {
    let top = chain.first().cloned().expect("a chain ends with the default");
    let sensitive = crate::config::is_sensitive(def.name);
    let shown = |value: String| (!sensitive).then(|| StrBytes::from_string(value));
    let mut out = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(def.name))
        .with_value(shown(top.value))
        .with_read_only(read_only)
        .with_config_source(top.source)
        .with_is_sensitive(sensitive);
    if req.include_synonyms {
        out.synonyms = chain
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(StrBytes::from_static_str(s.name))
                    .with_value(shown(s.value))
                    .with_source(s.source)
            })
            .collect();
    }
    if version >= 3 {
        out.config_type = config_type(def.kind);
        if req.include_documentation {
            out.documentation = Some(StrBytes::from_static_str(def.doc));
        }
    }
    out
}
