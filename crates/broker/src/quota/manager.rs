//! The quota state of a running broker: the quotas in force and one rate
//! ("sensor", in Kafka's words) per client group a quota is shared by, per
//! quota type; plus the connection creation rates of the broker and of each
//! IP address (KIP-612).
//!
//! A sensor exists only while a quota applies and its clients are active:
//! one not recorded into for [`SENSOR_EXPIRATION_MS`] is dropped (Kafka
//! expires inactive quota sensors after an hour too), and the number of
//! sensors is capped at [`SENSORS_MAX`], the least recently used one making
//! room, so clients inventing client ids cannot grow the broker's memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};

use super::rate::{Millis, Rate, Windows};
use super::{QuotaConfigs, QuotaKey};

/// A sensor not recorded into for this long is dropped (Kafka: one hour).
pub const SENSOR_EXPIRATION_MS: Millis = 3_600_000;

/// Most sensors kept at once, over all quota types and IP addresses.
pub const SENSORS_MAX: usize = 100_000;

/// How often expired sensors are looked for.
const PURGE_INTERVAL_MS: Millis = 60_000;

/// The client quota types Kafka enforces per request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotaType {
    /// Produce request bytes against `producer_byte_rate`.
    Produce,
    /// Fetch response bytes against `consumer_byte_rate`.
    Fetch,
    /// Request handling time against `request_percentage`.
    Request,
}

impl QuotaType {
    pub fn key(self) -> QuotaKey {
        match self {
            QuotaType::Produce => QuotaKey::ProducerByteRate,
            QuotaType::Fetch => QuotaKey::ConsumerByteRate,
            QuotaType::Request => QuotaKey::RequestPercentage,
        }
    }

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            QuotaType::Produce => "produce",
            QuotaType::Fetch => "fetch",
            QuotaType::Request => "request",
        }
    }
}

/// What a sensor is kept for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum SensorKey {
    /// A quota type and the (user, client id) the quota is shared by.
    Client(QuotaType, Option<String>, Option<String>),
    Ip(IpAddr),
}

struct Sensor {
    rate: Rate,
    last_recorded: Millis,
}

struct Sensors {
    map: HashMap<SensorKey, Sensor>,
    last_purge: Millis,
}

/// The broker's quota state; see the module documentation.
pub struct QuotaManager {
    configs: RwLock<Arc<QuotaConfigs>>,
    windows: Windows,
    epoch: Instant,
    sensors: Mutex<Sensors>,
    /// The broker-wide connection creation rate (`max.connection.creation.rate`).
    connections: Mutex<Rate>,
}

impl QuotaManager {
    pub fn new(windows: Windows, configs: QuotaConfigs) -> QuotaManager {
        QuotaManager {
            configs: RwLock::new(Arc::new(configs)),
            windows,
            epoch: Instant::now(),
            sensors: Mutex::new(Sensors { map: HashMap::new(), last_purge: 0 }),
            connections: Mutex::new(Rate::new(windows, 0)),
        }
    }

    /// Puts new quotas in force; live connections see them on their next request.
    pub fn set_configs(&self, configs: QuotaConfigs) {
        *self.configs.write() = Arc::new(configs);
    }

    pub fn configs(&self) -> Arc<QuotaConfigs> {
        self.configs.read().clone()
    }

    pub fn windows(&self) -> Windows {
        self.windows
    }

    fn now(&self) -> Millis {
        self.epoch.elapsed().as_millis() as Millis
    }

    /// Records `value` for `user` as `client_id` under `kind` and returns the
    /// throttle time in ms (0 when no quota applies or the client is within
    /// it).
    pub fn record(&self, kind: QuotaType, user: &str, client_id: &str, value: f64) -> Millis {
        self.record_at(kind, user, client_id, value, self.now())
    }

    pub(crate) fn record_at(&self, kind: QuotaType, user: &str, client_id: &str, value: f64, now: Millis) -> Millis {
        let Some(quota) = self.configs.read().lookup(kind.key(), user, client_id) else { return 0 };
        let key = SensorKey::Client(kind, quota.share.0, quota.share.1);
        let throttle = self.with_sensor(key, now, |rate| {
            rate.record(value, now);
            rate.throttle_ms(quota.bound, now)
        });
        crate::metrics::quota_recorded(kind.label(), value, throttle);
        throttle
    }

    /// Takes back a value recorded with [`record`](Self::record): a throttled
    /// fetch sends no data, so its bytes do not count (as in Kafka).
    pub fn unrecord(&self, kind: QuotaType, user: &str, client_id: &str, value: f64) {
        let now = self.now();
        let Some(quota) = self.configs.read().lookup(kind.key(), user, client_id) else { return };
        let key = SensorKey::Client(kind, quota.share.0, quota.share.1);
        self.with_sensor(key, now, |rate| rate.record(-value, now));
    }

    /// The most bytes one fetch may return to this client: its consumer
    /// quota over one window (Kafka's `getMaxValueInQuotaWindow`), or `None`
    /// without a quota.
    pub fn fetch_bytes_max(&self, user: &str, client_id: &str) -> Option<usize> {
        let quota = self.configs.read().lookup(QuotaKey::ConsumerByteRate, user, client_id)?;
        Some((quota.bound * self.windows.window_ms as f64 / 1000.0).max(1.0) as usize)
    }

    /// Records a new connection against `max.connection.creation.rate` and
    /// returns how long to wait before accepting it (at most one window, as
    /// Kafka bounds it).
    pub fn broker_connection_throttle(&self, rate_max: f64) -> Millis {
        let now = self.now();
        let mut rate = self.connections.lock();
        rate.record(1.0, now);
        rate.throttle_ms(rate_max, now).min(self.windows.window_ms)
    }

    /// Records a connection from `ip` against its `connection_creation_rate`
    /// quota. Over it, the connection is not recorded (it is not accepted)
    /// and the result is how long to hold it before closing it (at most one
    /// window, as Kafka does).
    pub fn ip_connection_throttle(&self, ip: IpAddr) -> Millis {
        self.ip_connection_throttle_at(ip, self.now())
    }

    pub(crate) fn ip_connection_throttle_at(&self, ip: IpAddr, now: Millis) -> Millis {
        let Some(bound) = self.configs.read().ip_connection_rate(ip) else { return 0 };
        let windows = self.windows;
        self.with_sensor(SensorKey::Ip(ip), now, |rate| {
            rate.record(1.0, now);
            let throttle = rate.throttle_ms(bound, now).min(windows.window_ms);
            if throttle > 0 {
                rate.record(-1.0, now);
            }
            throttle
        })
    }

    /// Sensors kept now (for tests and metrics).
    pub fn sensor_count(&self) -> usize {
        self.sensors.lock().map.len()
    }

    fn with_sensor<T>(&self, key: SensorKey, now: Millis, f: impl FnOnce(&mut Rate) -> T) -> T {
        let mut sensors = self.sensors.lock();
        if now.saturating_sub(sensors.last_purge) >= PURGE_INTERVAL_MS {
            sensors.map.retain(|_, s| now.saturating_sub(s.last_recorded) < SENSOR_EXPIRATION_MS);
            sensors.last_purge = now;
        }
        if !sensors.map.contains_key(&key) && sensors.map.len() >= SENSORS_MAX {
            let oldest = sensors.map.iter().min_by_key(|(_, s)| s.last_recorded).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                sensors.map.remove(&oldest);
            }
        }
        let windows = self.windows;
        let sensor =
            sensors.map.entry(key).or_insert_with(|| Sensor { rate: Rate::new(windows, now), last_recorded: now });
        sensor.last_recorded = now;
        f(&mut sensor.rate)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::quota::{EntityName, QuotaEntity};

    const W: Windows = Windows { samples: 11, window_ms: 1000 };

    fn configs(entries: &[(QuotaEntity, &str, f64)]) -> QuotaConfigs {
        let mut map: BTreeMap<QuotaEntity, BTreeMap<String, f64>> = BTreeMap::new();
        for (entity, key, value) in entries {
            map.entry(entity.clone()).or_default().insert(key.to_string(), *value);
        }
        QuotaConfigs::from_entities(map)
    }

    // Goal: without a quota nothing is throttled and no state is kept.
    #[test]
    fn no_quota_no_state() {
        let m = QuotaManager::new(W, QuotaConfigs::default());
        assert_eq!(m.record_at(QuotaType::Produce, "alice", "app", 1e12, 0), 0);
        assert_eq!(m.sensor_count(), 0);
    }

    // Goal: a user-level quota is shared by all the user's client ids; a default-user quota gives each user its own.
    #[test]
    fn sensors_are_shared_as_kafka_tags_them() {
        let m = QuotaManager::new(
            W,
            configs(&[
                (QuotaEntity::user(EntityName::Name("alice".into())), "producer_byte_rate", 1000.0),
                (QuotaEntity::user(EntityName::Default), "producer_byte_rate", 1000.0),
            ]),
        );
        assert_eq!(m.record_at(QuotaType::Produce, "alice", "a", 10_000.0, 0), 0);
        assert!(m.record_at(QuotaType::Produce, "alice", "b", 10_000.0, 0) > 0, "alice's clients share");
        assert_eq!(m.record_at(QuotaType::Produce, "bob", "a", 10_000.0, 0), 0, "bob has his own");
        assert_eq!(m.sensor_count(), 2);
    }

    // Goal: idle sensors expire, so per-client state is bounded.
    #[test]
    fn idle_sensors_expire() {
        let m = QuotaManager::new(W, configs(&[(QuotaEntity::client(EntityName::Default), "consumer_byte_rate", 1e6)]));
        for i in 0..50 {
            m.record_at(QuotaType::Fetch, "u", &format!("client-{i}"), 1.0, 0);
        }
        assert_eq!(m.sensor_count(), 50);
        m.record_at(QuotaType::Fetch, "u", "late", 1.0, SENSOR_EXPIRATION_MS + PURGE_INTERVAL_MS);
        assert_eq!(m.sensor_count(), 1);
    }

    // Goal: an IP over its connection creation rate is throttled for at most one window and the refused
    // connection does not count, so the IP gets connections again at the quota's pace.
    #[test]
    fn ip_connection_rate_is_enforced_and_refusals_do_not_count() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let m = QuotaManager::new(
            W,
            configs(&[(QuotaEntity::ip(EntityName::Name("10.0.0.1".into())), "connection_creation_rate", 2.0)]),
        );
        let accepted = (0..100).filter(|_| m.ip_connection_throttle_at(ip, 0) == 0).count();
        // Two per second over the minimum span of ten windows.
        assert_eq!(accepted, 20);
        assert!(m.ip_connection_throttle_at(ip, 0) <= 1000);
        assert_eq!(m.ip_connection_throttle_at("10.0.0.2".parse().unwrap(), 0), 0, "other IPs are unlimited");
    }
}
