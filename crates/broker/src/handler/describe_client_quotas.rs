//! DescribeClientQuotas (v0-v1): the client quotas whose entities match a
//! filter.
//!
//! Each filter component names an entity type and matches it exactly
//! (match type 0, a name), as the default (1, no name) or with any name,
//! default included (2, Kafka's MATCH_TYPE_SPECIFIED). An entity matches
//! when it has every component; with `strict` it must have no other entity
//! types. A malformed filter is INVALID_REQUEST; an entity type Kafka does
//! not know is UNSUPPORTED_VERSION, as Kafka answers it. On error the
//! response carries no entries.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_client_quotas_request::DescribeClientQuotasRequest;
use kafka_protocol::messages::describe_client_quotas_response::{
    DescribeClientQuotasResponse, EntityData, EntryData, ValueData,
};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::quota::{QuotaEntity, CLIENT_ID, IP, USER};

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_ANY: i8 = 2;

/// A checked filter: entity types matched by name (`None`: the default) and
/// entity types matched whatever their name.
#[derive(Debug, Default)]
struct Filter {
    exact: BTreeMap<String, Option<String>>,
    any: Vec<String>,
    strict: bool,
}

pub fn handle(broker: &Broker, req: DescribeClientQuotasRequest) -> DescribeClientQuotasResponse {
    let filter = match parse_filter(&req) {
        Ok(filter) => filter,
        Err((error, message)) => {
            return DescribeClientQuotasResponse::default()
                .with_error_code(error.code())
                .with_error_message(Some(StrBytes::from_string(message)))
                .with_entries(None);
        }
    };
    let entries = broker
        .client_quotas()
        .iter()
        .filter(|(entity, _)| filter.matches(entity))
        .map(|(entity, values)| entry(entity, values))
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}

fn parse_filter(req: &DescribeClientQuotasRequest) -> Result<Filter, (ResponseError, String)> {
    let invalid = |message: String| Err((ResponseError::InvalidRequest, message));
    let mut filter = Filter { strict: req.strict, ..Filter::default() };
    for c in &req.components {
        let entity_type = c.entity_type.as_str();
        if entity_type.is_empty() {
            return invalid("Invalid empty entity type.".to_string());
        }
        if filter.exact.contains_key(entity_type) || filter.any.iter().any(|t| t == entity_type) {
            return invalid(format!("Entity type {entity_type} cannot appear more than once in the filter."));
        }
        if ![USER, CLIENT_ID, IP].contains(&entity_type) {
            return Err((ResponseError::UnsupportedVersion, format!("Unsupported entity type {entity_type}")));
        }
        let name = c._match.as_ref().map(|m| m.to_string());
        match (c.match_type, name) {
            (MATCH_EXACT, Some(name)) => {
                filter.exact.insert(entity_type.to_string(), Some(name));
            }
            (MATCH_EXACT, None) => {
                return invalid("Request specified MATCH_TYPE_EXACT, but set match string to null.".to_string())
            }
            (MATCH_DEFAULT, None) => {
                filter.exact.insert(entity_type.to_string(), None);
            }
            (MATCH_ANY, None) => filter.any.push(entity_type.to_string()),
            (MATCH_DEFAULT | MATCH_ANY, Some(_)) => {
                return invalid(format!(
                    "Request specified match type {}, but also specified a match string.",
                    c.match_type
                ))
            }
            (other, _) => return invalid(format!("Unknown match type {other}")),
        }
    }
    let has = |t: &str| filter.exact.contains_key(t) || filter.any.iter().any(|a| a == t);
    if has(IP) && (has(USER) || has(CLIENT_ID)) {
        return invalid(
            "Invalid entity filter component combination. IP filter component should not be used with user or \
             clientId filter component."
                .to_string(),
        );
    }
    Ok(filter)
}

impl Filter {
    fn matches(&self, entity: &QuotaEntity) -> bool {
        let components = entity.components();
        if self.strict && components.len() != self.exact.len() + self.any.len() {
            return false;
        }
        let name_of = |t: &str| components.iter().find(|(ct, _)| *ct == t).map(|(_, n)| n.map(str::to_string));
        self.exact.iter().all(|(t, name)| name_of(t).as_ref() == Some(name))
            && self.any.iter().all(|t| name_of(t).is_some())
    }
}

fn entry(entity: &QuotaEntity, values: &BTreeMap<String, f64>) -> EntryData {
    let entity = entity
        .components()
        .into_iter()
        .map(|(t, n)| {
            EntityData::default()
                .with_entity_type(StrBytes::from_static_str(t))
                .with_entity_name(n.map(|n| StrBytes::from_string(n.to_string())))
        })
        .collect();
    let values = values
        .iter()
        .map(|(k, v)| ValueData::default().with_key(StrBytes::from_string(k.clone())).with_value(*v))
        .collect();
    EntryData::default().with_entity(entity).with_values(values)
}
