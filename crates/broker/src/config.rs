//! Broker and topic configuration under Apache Kafka's names.
//!
//! Every setting is declared once in [`BROKER_CONFIGS`] or [`TOPIC_CONFIGS`] with
//! its Kafka name, type, allowed range and default, so validation, `--set`
//! overrides, the TOML file and (later) DescribeConfigs all read one table.
//! Every bound the broker enforces (frame sizes, connections, in-flight
//! requests) is a named setting here with a Kafka-like default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use runnel_log::{LogConfig, TimestampType};

/// Kafka's `Long.MAX_VALUE`, which Kafka uses for "never" in flush settings.
pub const LONG_MAX: i64 = i64::MAX;

/// The type and range of one setting's value.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Int { min: i64, max: i64 },
    Bool,
    Str,
    Choice(&'static [&'static str]),
    Addr,
}

/// One configuration key: Kafka name, type, default and a line of documentation.
#[derive(Clone, Copy, Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub doc: &'static str,
}

const fn int(name: &'static str, min: i64, max: i64, default: &'static str, doc: &'static str) -> ConfigDef {
    ConfigDef { name, kind: Kind::Int { min, max }, default, doc }
}

const I32_MAX: i64 = i32::MAX as i64;
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];
const CLEANUP_POLICIES: &[&str] = &["delete", "compact", "compact,delete", "delete,compact"];

/// Broker-level settings.
pub const BROKER_CONFIGS: &[ConfigDef] = &[
    ConfigDef { name: "listen", kind: Kind::Addr, default: "127.0.0.1:9092", doc: "address the Kafka listener binds" },
    ConfigDef {
        name: "http.listen",
        kind: Kind::Addr,
        default: "127.0.0.1:9644",
        doc: "address of the HTTP admin endpoint (/metrics, /health, /ready)",
    },
    ConfigDef {
        name: "advertised.listener",
        kind: Kind::Str,
        default: "",
        doc: "host:port put in Metadata responses; empty means the bound address",
    },
    ConfigDef { name: "log.dirs", kind: Kind::Str, default: "./runnel-data", doc: "data directory" },
    int("node.id", 0, I32_MAX, "1", "this broker's node id"),
    int("num.partitions", 1, 1_000_000, "1", "partitions of an auto-created topic or a CreateTopics with -1"),
    int("default.replication.factor", 1, 1, "1", "replication factor of new topics (single node: 1)"),
    ConfigDef {
        name: "auto.create.topics.enable",
        kind: Kind::Bool,
        default: "true",
        doc: "create unknown topics named in Metadata requests",
    },
    int(
        "socket.request.max.bytes",
        1024,
        I32_MAX,
        "104857600",
        "largest request frame accepted; a larger length prefix closes the connection",
    ),
    int(
        "max.connections.per.ip",
        1,
        I32_MAX,
        "2147483647",
        "client connections from one IP address; a connection beyond it is closed at once",
    ),
    int(
        "max.connections",
        1,
        I32_MAX,
        "10000",
        "client connections served at once; further connections wait in the accept queue",
    ),
    int(
        "connection.max.inflight.requests",
        1,
        1024,
        "16",
        "requests one connection may have in progress; reading pauses beyond it",
    ),
    int("fetch.max.bytes", 1024, I32_MAX, "57671680", "largest record data returned by one Fetch response"),
    int(
        "sasl.server.max.receive.size",
        1024,
        I32_MAX,
        "524288",
        "largest frame accepted before a connection has completed a request (and, with SASL, before it authenticates)",
    ),
    int(
        "queued.max.request.bytes",
        1024,
        I32_MAX,
        "536870912",
        "bytes of requests read and not yet answered, over all connections; reading waits beyond it (at least socket.request.max.bytes)",
    ),
    int(
        "connections.max.idle.ms",
        1,
        LONG_MAX,
        "600000",
        "a connection with no request in progress and none received for this long is closed",
    ),
    int("message.max.bytes", 0, I32_MAX, "1048588", "largest record batch accepted (topic: max.message.bytes)"),
    int("log.segment.bytes", 14, I32_MAX, "1073741824", "segment size before a roll (topic: segment.bytes)"),
    int("log.roll.ms", 1, LONG_MAX, "604800000", "segment age before a roll (topic: segment.ms)"),
    int(
        "log.index.size.max.bytes",
        4,
        I32_MAX,
        "10485760",
        "offset index size before a roll (topic: segment.index.bytes)",
    ),
    int(
        "log.index.interval.bytes",
        0,
        I32_MAX,
        "4096",
        "log bytes between offset index entries (topic: index.interval.bytes)",
    ),
    int(
        "log.flush.interval.messages",
        1,
        LONG_MAX,
        "1",
        "unflushed messages that force an fsync; 1 = fsync before acks=all is answered (topic: flush.messages)",
    ),
    int(
        "log.flush.interval.ms",
        0,
        LONG_MAX,
        "9223372036854775807",
        "age of unflushed data that forces an fsync (topic: flush.ms)",
    ),
    int(
        "log.flush.offset.checkpoint.interval.ms",
        100,
        I32_MAX,
        "5000",
        "how often the recovery-point checkpoint is written; bounds the tail scanned after a crash",
    ),
    ConfigDef {
        name: "log.message.timestamp.type",
        kind: Kind::Choice(TIMESTAMP_TYPES),
        default: "CreateTime",
        doc: "CreateTime or LogAppendTime (topic: message.timestamp.type)",
    },
    int(
        "log.retention.ms",
        -1,
        LONG_MAX,
        "604800000",
        "retention by time (topic: retention.ms); enforced by the cleaner",
    ),
    int(
        "log.retention.bytes",
        -1,
        LONG_MAX,
        "-1",
        "retention by size (topic: retention.bytes); enforced by the cleaner",
    ),
    ConfigDef {
        name: "log.cleanup.policy",
        kind: Kind::Choice(CLEANUP_POLICIES),
        default: "delete",
        doc: "delete or compact (topic: cleanup.policy)",
    },
    int("shutdown.timeout.ms", 0, I32_MAX, "30000", "how long a clean shutdown waits for requests in progress"),
    // Group coordinator.
    int(
        "offsets.topic.num.partitions",
        1,
        10_000,
        "50",
        "partitions of __consumer_offsets when it is created (a group's partition is hash(group id) modulo this)",
    ),
    int(
        "offsets.retention.minutes",
        1,
        I32_MAX,
        "10080",
        "committed offsets of an empty group are removed this long after it became empty",
    ),
    int(
        "offsets.retention.check.interval.ms",
        1,
        LONG_MAX,
        "600000",
        "how often expired committed offsets are looked for",
    ),
    int(
        "offset.metadata.max.bytes",
        0,
        I32_MAX,
        "4096",
        "longest metadata string of a committed offset; longer ones get OFFSET_METADATA_TOO_LARGE",
    ),
    int(
        "group.initial.rebalance.delay.ms",
        0,
        I32_MAX,
        "3000",
        "how long the first rebalance of an empty group waits for more members",
    ),
    int("group.min.session.timeout.ms", 0, I32_MAX, "6000", "smallest session timeout a member may ask for"),
    int("group.max.session.timeout.ms", 0, I32_MAX, "1800000", "largest session timeout a member may ask for"),
    int("group.max.size", 1, I32_MAX, "2147483647", "members one consumer group may have"),
];

/// Topic-level settings and the broker setting each one defaults to.
pub const TOPIC_CONFIGS: &[(ConfigDef, &str)] = &[
    (int("segment.bytes", 14, I32_MAX, "", "segment size before a roll"), "log.segment.bytes"),
    (int("segment.ms", 1, LONG_MAX, "", "segment age before a roll"), "log.roll.ms"),
    (int("segment.index.bytes", 4, I32_MAX, "", "offset index size before a roll"), "log.index.size.max.bytes"),
    (int("index.interval.bytes", 0, I32_MAX, "", "log bytes between offset index entries"), "log.index.interval.bytes"),
    (int("flush.messages", 1, LONG_MAX, "", "unflushed messages that force an fsync"), "log.flush.interval.messages"),
    (int("flush.ms", 0, LONG_MAX, "", "age of unflushed data that forces an fsync"), "log.flush.interval.ms"),
    (int("max.message.bytes", 0, I32_MAX, "", "largest record batch accepted"), "message.max.bytes"),
    (
        ConfigDef {
            name: "message.timestamp.type",
            kind: Kind::Choice(TIMESTAMP_TYPES),
            default: "",
            doc: "CreateTime or LogAppendTime",
        },
        "log.message.timestamp.type",
    ),
    (int("retention.ms", -1, LONG_MAX, "", "retention by time"), "log.retention.ms"),
    (int("retention.bytes", -1, LONG_MAX, "", "retention by size"), "log.retention.bytes"),
    (
        ConfigDef {
            name: "cleanup.policy",
            kind: Kind::Choice(CLEANUP_POLICIES),
            default: "",
            doc: "delete or compact",
        },
        "log.cleanup.policy",
    ),
];

/// A setting's value could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("unknown config key '{0}'")]
    UnknownKey(String),
    #[error("invalid value '{value}' for config '{key}': {reason}")]
    InvalidValue { key: String, value: String, reason: String },
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
}

/// Checks `value` against `def`, returning it in canonical form.
pub fn validate(def: &ConfigDef, value: &str) -> Result<String, ConfigError> {
    let invalid =
        |reason: String| ConfigError::InvalidValue { key: def.name.to_string(), value: value.to_string(), reason };
    let value = value.trim();
    match def.kind {
        Kind::Int { min, max } => {
            let parsed: i64 = value.parse().map_err(|_| invalid("not an integer".into()))?;
            if parsed < min || parsed > max {
                return Err(invalid(format!("must be between {min} and {max}")));
            }
            Ok(parsed.to_string())
        }
        Kind::Bool => match value.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(value.to_ascii_lowercase()),
            _ => Err(invalid("must be true or false".into())),
        },
        Kind::Str => Ok(value.to_string()),
        Kind::Choice(choices) => {
            let canonical = value.replace(' ', "");
            if choices.iter().any(|c| c.eq_ignore_ascii_case(&canonical)) {
                Ok(canonical)
            } else {
                Err(invalid(format!("must be one of {}", choices.join(" | "))))
            }
        }
        Kind::Addr => value
            .parse::<SocketAddr>()
            .map(|a| a.to_string())
            .map_err(|_| invalid("must be host:port with a numeric IP".into())),
    }
}

/// Where a setting's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    /// A `RUNNEL_` environment variable.
    Env,
    Override,
}

/// The environment variable that overrides `key`: `RUNNEL_` and the key in
/// upper case with dots as underscores (`log.segment.bytes` →
/// `RUNNEL_LOG_SEGMENT_BYTES`).
pub fn env_name(key: &str) -> String {
    format!("RUNNEL_{}", key.replace(['.', '-'], "_").to_ascii_uppercase())
}

/// The broker's effective configuration: every key of [`BROKER_CONFIGS`] with a
/// validated value and its source.
#[derive(Clone, Debug)]
pub struct BrokerConfig {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let values = BROKER_CONFIGS.iter().map(|d| (d.name, (d.default.to_string(), Source::Default))).collect();
        BrokerConfig { values }
    }
}

impl BrokerConfig {
    /// Sets `key` to `value` after validation.
    pub fn set(&mut self, key: &str, value: &str, source: Source) -> Result<(), ConfigError> {
        let def =
            BROKER_CONFIGS.iter().find(|d| d.name == key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
        let value = validate(def, value)?;
        self.values.insert(def.name, (value, source));
        Ok(())
    }

    /// Applies a TOML file of Kafka keys. Dotted keys (`num.partitions = 3`) parse
    /// as nested tables in TOML, so nested tables are flattened back with dots.
    pub fn apply_toml(&mut self, path: &std::path::Path) -> Result<(), ConfigError> {
        let file_err = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| file_err(e.to_string()))?;
        let mut flat = Vec::new();
        flatten_toml("", &toml::Value::Table(table), &mut flat);
        for (key, value) in flat {
            self.set(&key, &value, Source::File)?;
        }
        Ok(())
    }

    /// Applies every `RUNNEL_` variable that names a setting, from `vars`
    /// (the process environment in production); an invalid value is an
    /// error naming the key. Returns the `RUNNEL_` variables that name no
    /// setting, for the caller to warn about (they may belong to tools).
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) -> Result<Vec<String>, ConfigError> {
        let mut unknown = Vec::new();
        for (name, value) in vars {
            if !name.starts_with("RUNNEL_") {
                continue;
            }
            match BROKER_CONFIGS.iter().find(|d| env_name(d.name) == name) {
                Some(def) => self.set(def.name, &value, Source::Env)?,
                None => unknown.push(name),
            }
        }
        Ok(unknown)
    }

    /// Checks rules that tie settings together; each error names the keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let frame_max = self.socket_request_max_bytes();
        let budget = self.queued_max_request_bytes();
        if budget < frame_max {
            // A frame larger than the whole budget could never be read.
            return Err(ConfigError::InvalidValue {
                key: "queued.max.request.bytes".into(),
                value: budget.to_string(),
                reason: format!("must be at least socket.request.max.bytes ({frame_max})"),
            });
        }
        Ok(())
    }

    /// The value of `key` and where it came from.
    pub fn get(&self, key: &str) -> Option<(&str, Source)> {
        self.values.get(key).map(|(v, s)| (v.as_str(), *s))
    }

    fn str(&self, key: &str) -> &str {
        match self.values.get(key) {
            Some((v, _)) => v,
            None => panic!("config key {key} is not declared in BROKER_CONFIGS"),
        }
    }

    fn int(&self, key: &str) -> i64 {
        // Values are validated on the way in, so a parse failure is a bug.
        self.str(key).parse().expect("validated integer config")
    }

    pub fn listen(&self) -> SocketAddr {
        self.str("listen").parse().expect("validated address config")
    }
    pub fn http_listen(&self) -> SocketAddr {
        self.str("http.listen").parse().expect("validated address config")
    }
    pub fn advertised_listener(&self) -> Option<String> {
        Some(self.str("advertised.listener").to_string()).filter(|s| !s.is_empty())
    }
    pub fn data_dir(&self) -> PathBuf {
        PathBuf::from(self.str("log.dirs"))
    }
    pub fn node_id(&self) -> i32 {
        self.int("node.id") as i32
    }
    pub fn num_partitions(&self) -> i32 {
        self.int("num.partitions") as i32
    }
    pub fn auto_create_topics(&self) -> bool {
        self.str("auto.create.topics.enable") == "true"
    }
    pub fn socket_request_max_bytes(&self) -> usize {
        self.int("socket.request.max.bytes") as usize
    }
    pub fn max_connections_per_ip(&self) -> usize {
        self.int("max.connections.per.ip") as usize
    }
    pub fn max_connections(&self) -> usize {
        self.int("max.connections") as usize
    }
    pub fn connection_max_inflight_requests(&self) -> usize {
        self.int("connection.max.inflight.requests") as usize
    }
    pub fn pre_request_frame_bytes_max(&self) -> usize {
        (self.int("sasl.server.max.receive.size") as usize).min(self.socket_request_max_bytes())
    }
    pub fn queued_max_request_bytes(&self) -> usize {
        self.int("queued.max.request.bytes") as usize
    }
    pub fn connections_max_idle(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.int("connections.max.idle.ms") as u64)
    }
    pub fn fetch_max_bytes(&self) -> usize {
        self.int("fetch.max.bytes") as usize
    }
    pub fn checkpoint_interval_ms(&self) -> u64 {
        self.int("log.flush.offset.checkpoint.interval.ms") as u64
    }
    pub fn shutdown_timeout_ms(&self) -> u64 {
        self.int("shutdown.timeout.ms") as u64
    }
    // Group coordinator.
    pub fn offsets_topic_num_partitions(&self) -> i32 {
        self.int("offsets.topic.num.partitions") as i32
    }
    pub fn offsets_retention_minutes(&self) -> i64 {
        self.int("offsets.retention.minutes")
    }
    pub fn offsets_retention_check_interval_ms(&self) -> u64 {
        self.int("offsets.retention.check.interval.ms") as u64
    }
    pub fn offset_metadata_max_bytes(&self) -> usize {
        self.int("offset.metadata.max.bytes") as usize
    }
    pub fn group_initial_rebalance_delay_ms(&self) -> u64 {
        self.int("group.initial.rebalance.delay.ms") as u64
    }
    pub fn group_min_session_timeout_ms(&self) -> u64 {
        self.int("group.min.session.timeout.ms") as u64
    }
    pub fn group_max_session_timeout_ms(&self) -> u64 {
        self.int("group.max.session.timeout.ms") as u64
    }
    pub fn group_max_size(&self) -> usize {
        self.int("group.max.size") as usize
    }

    /// The effective broker-level value behind a topic setting.
    pub fn topic_default(&self, topic_key: &str) -> Option<&str> {
        TOPIC_CONFIGS.iter().find(|(d, _)| d.name == topic_key).map(|(_, broker_key)| self.str(broker_key))
    }

    /// The storage configuration of a topic: broker defaults overlaid with the
    /// topic's own settings (already validated when the topic was created).
    pub fn log_config(&self, topic_configs: &BTreeMap<String, String>) -> LogConfig {
        let get = |topic_key: &str| -> i64 {
            let value = topic_configs.get(topic_key).map(String::as_str).or_else(|| self.topic_default(topic_key));
            value.and_then(|v| v.parse().ok()).expect("validated topic config")
        };
        let timestamp_type = topic_configs
            .get("message.timestamp.type")
            .map(String::as_str)
            .unwrap_or_else(|| self.str("log.message.timestamp.type"));
        LogConfig {
            segment_bytes: get("segment.bytes") as u64,
            segment_ms: get("segment.ms"),
            segment_index_bytes: get("segment.index.bytes") as u64,
            index_interval_bytes: get("index.interval.bytes") as u32,
            flush_interval_messages: get("flush.messages"),
            flush_interval_ms: get("flush.ms"),
            max_message_bytes: get("max.message.bytes") as usize,
            timestamp_type: if timestamp_type.eq_ignore_ascii_case("LogAppendTime") {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
        }
    }

    /// Every key with its value and source, for `serve --print-config`.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str, Source)> {
        self.values.iter().map(|(k, (v, s))| (*k, v.as_str(), *s))
    }
}

/// Validates a topic's settings from CreateTopics; the error names the key.
pub fn validate_topic_configs<'a>(
    configs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (key, value) in configs {
        let def = TOPIC_CONFIGS
            .iter()
            .map(|(d, _)| d)
            .find(|d| d.name == key)
            .ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
        let Some(value) = value else {
            return Err(ConfigError::InvalidValue {
                key: key.into(),
                value: "null".into(),
                reason: "a value is required".into(),
            });
        };
        out.insert(def.name.to_string(), validate(def, value)?);
    }
    Ok(out)
}

fn flatten_toml(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten_toml(&key, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        for def in BROKER_CONFIGS {
            validate(def, def.default).unwrap_or_else(|e| panic!("default of {}: {e}", def.name));
        }
        let config = BrokerConfig::default();
        let log = config.log_config(&BTreeMap::new());
        assert_eq!(log.flush_interval_messages, 1);
        assert_eq!(log.max_message_bytes, 1_048_588);
        assert_eq!(config.socket_request_max_bytes(), 100 * 1024 * 1024);
    }

    #[test]
    fn set_validates_and_names_the_key() {
        let mut config = BrokerConfig::default();
        config.set("num.partitions", "3", Source::Override).unwrap();
        assert_eq!(config.num_partitions(), 3);
        let err = config.set("num.partitions", "0", Source::Override).unwrap_err();
        assert!(err.to_string().contains("num.partitions"), "{err}");
        assert!(matches!(config.set("no.such.key", "1", Source::Override), Err(ConfigError::UnknownKey(_))));
    }

    #[test]
    fn request_budget_must_hold_the_largest_frame() {
        let mut config = BrokerConfig::default();
        assert!(config.validate().is_ok());
        config.set("queued.max.request.bytes", "1048576", Source::Override).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("queued.max.request.bytes") && err.contains("socket.request.max.bytes"), "{err}");
        config.set("socket.request.max.bytes", "1048576", Source::Override).unwrap();
        assert!(config.validate().is_ok());
    }

    #[test]
    fn environment_overrides_by_name() {
        let mut config = BrokerConfig::default();
        let vars = [("RUNNEL_NUM_PARTITIONS", "6"), ("RUNNEL_BROKERS", "a client's"), ("PATH", "/bin")];
        let unknown = config.apply_env(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        assert_eq!(config.get("num.partitions"), Some(("6", Source::Env)));
        assert_eq!(unknown, vec!["RUNNEL_BROKERS".to_string()]);
        let bad = [("RUNNEL_NUM_PARTITIONS".to_string(), "zero".to_string())];
        assert!(config.apply_env(bad).unwrap_err().to_string().contains("num.partitions"));
        assert_eq!(env_name("log.segment.bytes"), "RUNNEL_LOG_SEGMENT_BYTES");
    }

    #[test]
    fn toml_dotted_keys_flatten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runnel.toml");
        std::fs::write(
            &path,
            "num.partitions = 4\n\"log.segment.bytes\" = 1048576\n[auto.create.topics]\nenable = false\n",
        )
        .unwrap();
        let mut config = BrokerConfig::default();
        config.apply_toml(&path).unwrap();
        assert_eq!(config.num_partitions(), 4);
        assert!(!config.auto_create_topics());
        assert_eq!(config.get("log.segment.bytes"), Some(("1048576", Source::File)));
    }

    #[test]
    fn topic_configs_overlay_broker_defaults() {
        let config = BrokerConfig::default();
        let topic = validate_topic_configs([
            ("segment.bytes", Some("2048")),
            ("message.timestamp.type", Some("LogAppendTime")),
        ])
        .unwrap();
        let log = config.log_config(&topic);
        assert_eq!(log.segment_bytes, 2048);
        assert_eq!(log.timestamp_type, TimestampType::LogAppendTime);
        let err = validate_topic_configs([("retention.msx", Some("1"))]).unwrap_err();
        assert!(err.to_string().contains("retention.msx"));
    }
}
