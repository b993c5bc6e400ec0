//! AlterClientQuotas (v0-v1): set or remove client quotas.
//!
//! Each entry names one entity (user, client-id, user and client-id, or
//! ip; a null name is the default) and its operations: a key set to a value,
//! or removed. An entry's operations are checked together and applied
//! together or not at all; entries are independent. Unknown entity types or
//! keys, bad combinations, fractional byte rates, a key twice in an entry or
//! an entity twice in the request are INVALID_REQUEST, as in Kafka. Every
//! change is a metadata record, in force on live connections at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_client_quotas_request::{AlterClientQuotasRequest, EntryData};
use kafka_protocol::messages::alter_client_quotas_response::{self, AlterClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::error::ToErrorCode;
use crate::quota::{QuotaEntity, QuotaError};

pub async fn handle(broker: Arc<Broker>, req: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    tokio::task::spawn_blocking(move || {
        let entities: Vec<Result<QuotaEntity, QuotaError>> = req.entries.iter().map(entity_of).collect();
        let mut seen: HashMap<&QuotaEntity, usize> = HashMap::new();
        for entity in entities.iter().flatten() {
            *seen.entry(entity).or_default() += 1;
        }
        let results = req
            .entries
            .iter()
            .zip(&entities)
            .map(|(entry, entity)| {
                let outcome = match entity {
                    Err(e) => Err((ResponseError::InvalidRequest, e.to_string())),
                    Ok(entity) if seen[entity] > 1 => {
                        Err((ResponseError::InvalidRequest, format!("Ignoring duplicate entity {entity}")))
                    }
                    Ok(entity) => alter(&broker, entity, entry, req.validate_only),
                };
                result(entry, outcome)
            })
            .collect();
        AlterClientQuotasResponse::default().with_entries(results)
    })
    .await
    .expect("alter client quotas does not panic")
}

fn entity_of(entry: &EntryData) -> Result<QuotaEntity, QuotaError> {
    QuotaEntity::from_components(
        entry.entity.iter().map(|e| (e.entity_type.as_str(), e.entity_name.as_ref().map(|n| n.as_str()))),
    )
}

fn alter(
    broker: &Broker,
    entity: &QuotaEntity,
    entry: &EntryData,
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let mut ops: BTreeMap<String, Option<f64>> = BTreeMap::new();
    for op in &entry.ops {
        let value = (!op.remove).then_some(op.value);
        if ops.insert(op.key.to_string(), value).is_some() {
            let e = QuotaError::DuplicateKey(op.key.to_string());
            return Err((ResponseError::InvalidRequest, format!("{e} {entity}")));
        }
    }
    broker.alter_client_quotas(entity, &ops, validate_only).map_err(|e| (e.error(), e.to_string()))
}

fn result(entry: &EntryData, outcome: Result<(), (ResponseError, String)>) -> alter_client_quotas_response::EntryData {
    let entity = entry
        .entity
        .iter()
        .map(|e| {
            alter_client_quotas_response::EntityData::default()
                .with_entity_type(e.entity_type.clone())
                .with_entity_name(e.entity_name.clone())
        })
        .collect();
    let out = alter_client_quotas_response::EntryData::default().with_entity(entity);
    match outcome {
        Ok(()) => out,
        Err((error, message)) => {
            out.with_error_code(error.code()).with_error_message(Some(StrBytes::from_string(message)))
        }
    }
}
