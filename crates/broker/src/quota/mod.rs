//! Client quotas, Kafka's model (KIP-13, KIP-55, KIP-124, KIP-546, KIP-612):
//! who a quota applies to ([`QuotaEntity`]), what it limits ([`QuotaKey`]),
//! the quotas in force ([`QuotaConfigs`], rebuilt from the metadata image on
//! every change) and the rule that picks the quota of a request's user and
//! client id ([`QuotaConfigs::lookup`]).
//!
//! Enforcement lives in [`manager`] (rates per client, throttle times) and in
//! `connection` (muting a throttled connection) and `server` (connection
//! creation rates); the measuring and the throttle formula are in [`rate`].

pub mod manager;
pub mod rate;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Kafka's entity type names.
pub const USER: &str = "user";
pub const CLIENT_ID: &str = "client-id";
pub const IP: &str = "ip";

/// One component of an entity: a name, or the default of its type (a null
/// name on the wire, `<default>` in Kafka's tools).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Name(String),
}

impl EntityName {
    /// From the wire form: `None` is the default.
    pub fn from_wire(name: Option<&str>) -> EntityName {
        name.map_or(EntityName::Default, |n| EntityName::Name(n.to_string()))
    }

    pub fn to_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Name(n) => Some(n),
        }
    }
}

impl std::fmt::Display for EntityName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EntityName::Default => f.write_str("<default>"),
            EntityName::Name(n) => f.write_str(n),
        }
    }
}

/// What a quota applies to. Kafka allows a user, a client id, a user and a
/// client id together, or an IP address (the last only for
/// `connection_creation_rate`); [`QuotaEntity::validate`] checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<EntityName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<EntityName>,
}

impl QuotaEntity {
    pub fn user(user: EntityName) -> QuotaEntity {
        QuotaEntity { user: Some(user), ..QuotaEntity::default() }
    }

    pub fn client(client_id: EntityName) -> QuotaEntity {
        QuotaEntity { client_id: Some(client_id), ..QuotaEntity::default() }
    }

    pub fn user_client(user: EntityName, client_id: EntityName) -> QuotaEntity {
        QuotaEntity { user: Some(user), client_id: Some(client_id), ip: None }
    }

    pub fn ip(ip: EntityName) -> QuotaEntity {
        QuotaEntity { ip: Some(ip), ..QuotaEntity::default() }
    }

    /// Builds an entity from `(entity type, name)` pairs as AlterClientQuotas
    /// and DescribeClientQuotas carry them, with Kafka's checks.
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<QuotaEntity, QuotaError> {
        let mut entity = QuotaEntity::default();
        let mut empty = true;
        for (entity_type, name) in components {
            empty = false;
            let slot = match entity_type {
                USER => &mut entity.user,
                CLIENT_ID => &mut entity.client_id,
                IP => &mut entity.ip,
                other => return Err(QuotaError::UnknownEntityType(other.to_string())),
            };
            if slot.is_some() {
                return Err(QuotaError::DuplicateEntityType(entity_type.to_string()));
            }
            if name == Some("") {
                return Err(QuotaError::EmptyName(entity_type.to_string()));
            }
            // An address is kept in its canonical form, so `::1` and
            // `0:0:0:0:0:0:0:1` name the same entity and match the peer.
            let canonical = match (entity_type, name.map(str::parse::<IpAddr>)) {
                (IP, Some(Ok(ip))) => Some(ip.to_canonical().to_string()),
                _ => name.map(str::to_string),
            };
            *slot = Some(EntityName::from_wire(canonical.as_deref()));
        }
        if empty {
            return Err(QuotaError::EmptyEntity);
        }
        entity.validate()?;
        Ok(entity)
    }

    /// Kafka's allowed combinations; an IP must parse as an address.
    pub fn validate(&self) -> Result<(), QuotaError> {
        match (&self.user, &self.client_id, &self.ip) {
            (None, None, None) => Err(QuotaError::EmptyEntity),
            (_, _, Some(_)) if self.user.is_some() || self.client_id.is_some() => Err(QuotaError::IpCombined),
            (None, None, Some(EntityName::Name(ip))) if ip.parse::<IpAddr>().is_err() => {
                Err(QuotaError::BadIp(ip.clone()))
            }
            _ => Ok(()),
        }
    }

    /// The `(entity type, name)` pairs of the wire form, in Kafka's order.
    pub fn components(&self) -> Vec<(&'static str, Option<&str>)> {
        let mut out = Vec::with_capacity(2);
        if let Some(user) = &self.user {
            out.push((USER, user.to_wire()));
        }
        if let Some(client) = &self.client_id {
            out.push((CLIENT_ID, client.to_wire()));
        }
        if let Some(ip) = &self.ip {
            out.push((IP, ip.to_wire()));
        }
        out
    }

    fn is_ip(&self) -> bool {
        self.ip.is_some()
    }
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> =
            self.components().iter().map(|(t, n)| format!("{t}={}", n.unwrap_or("<default>"))).collect();
        f.write_str(&parts.join(","))
    }
}

/// A quota key: what is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuotaKey {
    ProducerByteRate,
    ConsumerByteRate,
    RequestPercentage,
    ControllerMutationRate,
    ConnectionCreationRate,
}

impl QuotaKey {
    pub const ALL: [QuotaKey; 5] = [
        QuotaKey::ProducerByteRate,
        QuotaKey::ConsumerByteRate,
        QuotaKey::RequestPercentage,
        QuotaKey::ControllerMutationRate,
        QuotaKey::ConnectionCreationRate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QuotaKey::ProducerByteRate => "producer_byte_rate",
            QuotaKey::ConsumerByteRate => "consumer_byte_rate",
            QuotaKey::RequestPercentage => "request_percentage",
            QuotaKey::ControllerMutationRate => "controller_mutation_rate",
            QuotaKey::ConnectionCreationRate => "connection_creation_rate",
        }
    }

    pub fn from_name(name: &str) -> Option<QuotaKey> {
        QuotaKey::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Kafka's LONG and INT keys take whole numbers only; the others are doubles.
    fn whole(self) -> bool {
        matches!(self, QuotaKey::ProducerByteRate | QuotaKey::ConsumerByteRate | QuotaKey::ConnectionCreationRate)
    }

    /// Whether the key may be set on `entity`: the connection creation rate
    /// on IP entities only, every other key on user and client-id entities.
    fn applies_to(self, entity: &QuotaEntity) -> bool {
        (self == QuotaKey::ConnectionCreationRate) == entity.is_ip()
    }
}

/// Why a quota alteration or a describe filter is refused (INVALID_REQUEST,
/// except where a handler says otherwise).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    #[error("Invalid empty client quota entity")]
    EmptyEntity,
    #[error("Unhandled client quota entity type: {0}")]
    UnknownEntityType(String),
    #[error("Invalid client quota entity, duplicate entity entry {0}")]
    DuplicateEntityType(String),
    #[error("Empty {0} not supported")]
    EmptyName(String),
    #[error("Invalid quota entity combination, IP entity should not be combined with User or ClientId")]
    IpCombined,
    #[error("{0} is not a valid IP")]
    BadIp(String),
    #[error("Invalid configuration key {0}")]
    UnknownKey(String),
    #[error("Duplicate quota key {0} not updating quota for this entity")]
    DuplicateKey(String),
    #[error("Configuration {0} must be a Long value")]
    NotWhole(String),
    #[error("Configuration {0} must be a positive finite number")]
    NotPositive(String),
}

/// Checks one quota value for `entity`, as Kafka's controller does (plus a
/// check that it is positive and finite: a zero quota would throttle for
/// ever).
pub fn validate_value(entity: &QuotaEntity, key: &str, value: f64) -> Result<QuotaKey, QuotaError> {
    let parsed = QuotaKey::from_name(key).filter(|k| k.applies_to(entity));
    let Some(parsed) = parsed else { return Err(QuotaError::UnknownKey(key.to_string())) };
    if parsed.whole() {
        let epsilon = 1e-6;
        if ((value + epsilon).trunc() - value).abs() > epsilon {
            return Err(QuotaError::NotWhole(key.to_string()));
        }
    }
    if !value.is_finite() || value <= 0.0 {
        return Err(QuotaError::NotPositive(key.to_string()));
    }
    Ok(parsed)
}

/// The quotas in force: every entity's values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaConfigs {
    entities: BTreeMap<QuotaEntity, BTreeMap<QuotaKey, f64>>,
}

/// The quota that applies to a client for one key, and the clients it is
/// shared with: the user and client id parts of the entity it came from,
/// filled with the client's own names (Kafka's quota metric tags). Two
/// clients with the same [`QuotaMatch::share`] are measured together.
#[derive(Clone, Debug, PartialEq)]
pub struct QuotaMatch {
    pub bound: f64,
    pub share: (Option<String>, Option<String>),
}

impl QuotaConfigs {
    pub fn from_entities(entities: BTreeMap<QuotaEntity, BTreeMap<String, f64>>) -> QuotaConfigs {
        let entities = entities
            .into_iter()
            .map(|(entity, values)| {
                let values = values.into_iter().filter_map(|(k, v)| Some((QuotaKey::from_name(&k)?, v))).collect();
                (entity, values)
            })
            .collect();
        QuotaConfigs { entities }
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    fn value(&self, entity: &QuotaEntity, key: QuotaKey) -> Option<f64> {
        self.entities.get(entity)?.get(&key).copied()
    }

    /// The quota of `key` for `user` connecting as `client_id`, by Kafka's
    /// precedence: user and client id, user and default client id, user,
    /// default user and client id, default user and default client id,
    /// default user, client id, default client id. `None` when none is set.
    pub fn lookup(&self, key: QuotaKey, user: &str, client_id: &str) -> Option<QuotaMatch> {
        let (u, c) = (EntityName::Name(user.to_string()), EntityName::Name(client_id.to_string()));
        let d = EntityName::Default;
        let order = [
            QuotaEntity::user_client(u.clone(), c.clone()),
            QuotaEntity::user_client(u.clone(), d.clone()),
            QuotaEntity::user(u),
            QuotaEntity::user_client(d.clone(), c.clone()),
            QuotaEntity::user_client(d.clone(), d.clone()),
            QuotaEntity::user(d.clone()),
            QuotaEntity::client(c),
            QuotaEntity::client(d),
        ];
        order.iter().find_map(|entity| {
            let bound = self.value(entity, key)?;
            let share = (
                entity.user.as_ref().map(|_| user.to_string()),
                entity.client_id.as_ref().map(|_| client_id.to_string()),
            );
            Some(QuotaMatch { bound, share })
        })
    }

    /// The connection creation rate quota of `ip`: its own, else the default
    /// IP quota, else none.
    pub fn ip_connection_rate(&self, ip: IpAddr) -> Option<f64> {
        let own = QuotaEntity::ip(EntityName::Name(ip.to_canonical().to_string()));
        self.value(&own, QuotaKey::ConnectionCreationRate)
            .or_else(|| self.value(&QuotaEntity::ip(EntityName::Default), QuotaKey::ConnectionCreationRate))
    }
}

#[cfg(test)]
mod tests;
