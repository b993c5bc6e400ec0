//! IncrementalAlterConfigs (v0-v1) and AlterConfigs (v0-v2): change a topic's
//! overrides or this broker's dynamic settings (per node, or the cluster
//! default under the resource name `""`).
//!
//! IncrementalAlterConfigs applies SET, DELETE, APPEND and SUBTRACT to the
//! current overrides; AlterConfigs replaces them with the request's set. Each
//! resource's change is one metadata record, written under the metadata lock
//! and applied to the running partitions at once; `validate_only` checks and
//! writes nothing. A bad name or value fails the resource with INVALID_CONFIG
//! naming the key; a static broker setting (`listen`, `log.dirs`, `node.id`,
//! ...) with INVALID_REQUEST, as Kafka refuses it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use kafka_protocol::messages::alter_configs_response::{self, AlterConfigsResponse};
use kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_response::{self, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{Broker, TopicError};
use crate::config::{
    broker_config, split_list, topic_config, validate_dynamic_broker_config, validate_topic_config, ConfigDef,
    ConfigError, Kind,
};
use crate::error::ToErrorCode;
use crate::handler::describe_configs::{broker_scope, RESOURCE_BROKER, RESOURCE_TOPIC};

/// One IncrementalAlterConfigs operation on a key.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

/// What kind of settings a change addresses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    Topic,
    Broker,
}

impl Target {
    fn check(self, key: &str, value: &str) -> Result<(&'static str, String), ConfigError> {
        match self {
            Target::Topic => validate_topic_config(key, value),
            Target::Broker => validate_dynamic_broker_config(key, value),
        }
    }

    fn def(self, key: &str) -> Option<&'static ConfigDef> {
        match self {
            Target::Topic => topic_config(key).map(|t| &t.def),
            Target::Broker => broker_config(key),
        }
    }
}

/// Applies incremental operations to `current` overrides. APPEND and
/// SUBTRACT work on list-valued settings only and start from the override,
/// or the setting's default when there is none.
pub fn apply_ops(
    current: &BTreeMap<String, String>,
    ops: &[(String, Op)],
    target: Target,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = current.clone();
    for (key, op) in ops {
        match op {
            Op::Set(value) => {
                let (name, value) = target.check(key, value)?;
                out.insert(name.to_string(), value);
            }
            Op::Delete => {
                out.remove(key);
            }
            Op::Append(value) | Op::Subtract(value) => {
                let def = target.def(key).ok_or_else(|| ConfigError::UnknownKey(key.clone()))?;
                if !matches!(def.kind, Kind::List(_)) {
                    let verb = if matches!(op, Op::Append(_)) { "APPEND" } else { "SUBTRACT" };
                    return Err(ConfigError::InvalidValue {
                        key: key.clone(),
                        value: value.clone(),
                        reason: format!("{verb} applies only to list-valued configs"),
                    });
                }
                let mut items = split_list(out.get(key).map_or(def.default, String::as_str));
                for item in split_list(value) {
                    let present = items.iter().any(|i| i.eq_ignore_ascii_case(&item));
                    match op {
                        Op::Append(_) if !present => items.push(item),
                        Op::Subtract(_) => items.retain(|i| !i.eq_ignore_ascii_case(&item)),
                        _ => {}
                    }
                }
                let (name, value) = target.check(key, &items.join(","))?;
                out.insert(name.to_string(), value);
            }
        }
    }
    Ok(out)
}

/// The outcome of one resource: error code and message.
type Outcome = (i16, Option<String>);

fn ok() -> Outcome {
    (0, None)
}

fn refused(error: ResponseError, message: String) -> Outcome {
    (error.code(), Some(message))
}

/// Checks a resource's keys are unique, then runs `change` against its
/// current overrides through the broker.
fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    keys: impl IntoIterator<Item = String>,
    validate_only: bool,
    change: impl FnOnce(&BTreeMap<String, String>, Target) -> Result<BTreeMap<String, String>, ConfigError>,
) -> Outcome {
    let mut seen = HashSet::new();
    for key in keys {
        if !seen.insert(key.clone()) {
            return refused(ResponseError::InvalidRequest, format!("config '{key}' appears more than once"));
        }
    }
    let result = match resource_type {
        RESOURCE_TOPIC => broker.alter_topic_configs(name, validate_only, |c| change(c, Target::Topic)),
        RESOURCE_BROKER => match broker_scope(broker, name) {
            Ok(scope) => broker.alter_broker_configs(scope, validate_only, |c| change(c, Target::Broker)),
            Err(message) => return refused(ResponseError::InvalidRequest, message),
        },
        other => return refused(ResponseError::InvalidRequest, format!("unsupported resource type {other}")),
    };
    match result {
        Ok(()) => ok(),
        Err(e @ TopicError::Unknown(_)) => refused(ResponseError::UnknownTopicOrPartition, e.to_string()),
        Err(e) => refused(e.error(), e.to_string()),
    }
}

pub async fn handle_incremental(
    broker: Arc<Broker>,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    tokio::task::spawn_blocking(move || {
        let responses = req
            .resources
            .iter()
            .map(|r| {
                let (code, message) = incremental(&broker, r, req.validate_only);
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
            })
            .collect();
        IncrementalAlterConfigsResponse::default().with_responses(responses)
    })
    .await
    .expect("incremental alter configs does not panic")
}

fn incremental(
    broker: &Broker,
    r: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    validate_only: bool,
) -> Outcome {
    let mut ops = Vec::with_capacity(r.configs.len());
    for c in &r.configs {
        let key = c.name.to_string();
        let value = c.value.as_ref().map(|v| v.to_string());
        let op = match (c.config_operation, value) {
            (1, _) => Op::Delete,
            (0, Some(v)) => Op::Set(v),
            (2, Some(v)) => Op::Append(v),
            (3, Some(v)) => Op::Subtract(v),
            (0..=3, None) => {
                return refused(ResponseError::InvalidRequest, format!("config '{key}': a value is required"))
            }
            (other, _) => {
                return refused(ResponseError::InvalidRequest, format!("config '{key}': unknown operation {other}"))
            }
        };
        ops.push((key, op));
    }
    let keys: Vec<String> = ops.iter().map(|(k, _)| k.clone()).collect();
    alter(broker, r.resource_type, r.resource_name.as_str(), keys, validate_only, |current, target| {
        apply_ops(current, &ops, target)
    })
}

pub async fn handle(broker: Arc<Broker>, req: AlterConfigsRequest) -> AlterConfigsResponse {
    tokio::task::spawn_blocking(move || {
        let responses = req
            .resources
            .iter()
            .map(|r| {
                let (code, message) = replace(&broker, r, req.validate_only);
                alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_error_code(code)
                    .with_error_message(message.map(StrBytes::from_string))
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name.clone())
            })
            .collect();
        AlterConfigsResponse::default().with_responses(responses)
    })
    .await
    .expect("alter configs does not panic")
}

/// AlterConfigs: the request's set replaces every override of the resource.
fn replace(
    broker: &Broker,
    r: &kafka_protocol::messages::alter_configs_request::AlterConfigsResource,
    validate_only: bool,
) -> Outcome {
    let mut ops = Vec::with_capacity(r.configs.len());
    for c in &r.configs {
        match &c.value {
            Some(v) => ops.push((c.name.to_string(), Op::Set(v.to_string()))),
            None => {
                return refused(
                    ResponseError::InvalidRequest,
                    format!("config '{}': a value is required", c.name.as_str()),
                )
            }
        }
    }
    let keys: Vec<String> = ops.iter().map(|(k, _)| k.clone()).collect();
    alter(broker, r.resource_type, r.resource_name.as_str(), keys, validate_only, |_, target| {
        apply_ops(&BTreeMap::new(), &ops, target)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn ops(list: &[(&str, Op)]) -> Vec<(String, Op)> {
        list.iter().map(|(k, op)| (k.to_string(), op.clone())).collect()
    }

    #[test]
    fn set_and_delete_replace_single_keys() {
        let current = map(&[("retention.ms", "1000"), ("segment.bytes", "2048")]);
        let out = apply_ops(
            &current,
            &ops(&[("retention.ms", Op::Set("5000".into())), ("segment.bytes", Op::Delete)]),
            Target::Topic,
        )
        .unwrap();
        assert_eq!(out, map(&[("retention.ms", "5000")]));
        // Deleting a key that has no override changes nothing.
        assert_eq!(apply_ops(&out, &ops(&[("flush.ms", Op::Delete)]), Target::Topic).unwrap(), out);
    }

    #[test]
    fn append_and_subtract_work_on_lists_from_the_default() {
        let empty = BTreeMap::new();
        let out = apply_ops(&empty, &ops(&[("cleanup.policy", Op::Append("compact".into()))]), Target::Topic).unwrap();
        assert_eq!(out, map(&[("cleanup.policy", "delete,compact")]));
        // Appending an item already present keeps one copy.
        let again = apply_ops(&out, &ops(&[("cleanup.policy", Op::Append("COMPACT".into()))]), Target::Topic).unwrap();
        assert_eq!(again, out);
        let out = apply_ops(&out, &ops(&[("cleanup.policy", Op::Subtract("delete".into()))]), Target::Topic).unwrap();
        assert_eq!(out, map(&[("cleanup.policy", "compact")]));
        // Subtracting the last item leaves an invalid, empty policy.
        let err =
            apply_ops(&out, &ops(&[("cleanup.policy", Op::Subtract("compact".into()))]), Target::Topic).unwrap_err();
        assert!(err.to_string().contains("cleanup.policy"), "{err}");
        // Broker lists work the same way.
        let b = apply_ops(&empty, &ops(&[("log.cleanup.policy", Op::Append("compact".into()))]), Target::Broker);
        assert_eq!(b.unwrap(), map(&[("log.cleanup.policy", "delete,compact")]));
    }

    #[test]
    fn append_to_a_scalar_or_bad_values_name_the_key() {
        let empty = BTreeMap::new();
        let err = apply_ops(&empty, &ops(&[("retention.ms", Op::Append("5".into()))]), Target::Topic).unwrap_err();
        assert!(err.to_string().contains("retention.ms") && err.to_string().contains("APPEND"), "{err}");
        let err = apply_ops(&empty, &ops(&[("cleanup.policy", Op::Append("shred".into()))]), Target::Topic);
        assert!(err.unwrap_err().to_string().contains("shred"));
        let err = apply_ops(&empty, &ops(&[("no.such", Op::Set("1".into()))]), Target::Topic).unwrap_err();
        assert_eq!(err, ConfigError::UnknownKey("no.such".into()));
        let err = apply_ops(&empty, &ops(&[("min.cleanable.dirty.ratio", Op::Set("1.5".into()))]), Target::Topic);
        assert!(err.unwrap_err().to_string().contains("min.cleanable.dirty.ratio"));
    }

    #[test]
    fn broker_targets_only_dynamic_keys() {
        let empty = BTreeMap::new();
        let out = apply_ops(&empty, &ops(&[("log.retention.ms", Op::Set("1000".into()))]), Target::Broker).unwrap();
        assert_eq!(out, map(&[("log.retention.ms", "1000")]));
        let out = apply_ops(&empty, &ops(&[("num.partitions", Op::Set("3".into()))]), Target::Broker).unwrap();
        assert_eq!(out, map(&[("num.partitions", "3")]));
        for key in ["listen", "log.dirs", "node.id"] {
            let err = apply_ops(&empty, &ops(&[(key, Op::Set("1".into()))]), Target::Broker).unwrap_err();
            assert_eq!(err, ConfigError::ReadOnly(key.into()));
        }
        // A topic key is not a broker key.
        let err = apply_ops(&empty, &ops(&[("retention.ms", Op::Set("1".into()))]), Target::Broker).unwrap_err();
        assert_eq!(err, ConfigError::UnknownKey("retention.ms".into()));
    }
}
