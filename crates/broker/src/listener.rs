//! Listeners as Kafka names them: `listeners` (`NAME://host:port`, several),
//! `listener.security.protocol.map` (listener name → security protocol),
//! `advertised.listeners` (the address clients are told, per listener) and
//! `inter.broker.listener.name`.
//!
//! Without `listeners` the broker has one PLAINTEXT listener on `listen`,
//! advertised as `advertised.listener` when that is set: the out-of-the-box
//! single-listener set-up. Every error names the key it comes from.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{BrokerConfig, ConfigError};
use crate::handler::Endpoint;
use crate::tls::TlsListener;

/// The security protocol of a listener, under Kafka's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether clients on this protocol authenticate with SASL first.
    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }

    /// Whether connections on this protocol start with a TLS handshake.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One listener to bind: its name, protocol, bind address and (when
/// configured) the address advertised to its clients.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerSpec {
    pub name: String,
    pub security_protocol: SecurityProtocol,
    /// Host to bind; an empty host binds every interface, as in Kafka.
    pub host: String,
    pub port: u16,
    /// `None` advertises the address the connection arrived on.
    pub advertised: Option<Endpoint>,
}

impl ListenerSpec {
    /// `host:port` for binding; an empty host is the IPv4 wildcard.
    pub fn bind_address(&self) -> String {
        let host = if self.host.is_empty() { "0.0.0.0" } else { self.host.as_str() };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The prefix of this listener's own settings: `listener.name.<name in lower case>.`.
    pub fn config_prefix(&self) -> String {
        listener_config_prefix(&self.name)
    }
}

/// A listener in service: what connections arriving on it share.
pub struct Listener {
    pub spec: ListenerSpec,
    pub name: Arc<str>,
    /// The certificates of a TLS listener.
    pub tls: Option<Arc<TlsListener>>,
    /// The mechanisms and credentials of a SASL listener.
    pub sasl: Option<Arc<crate::sasl::SaslListener>>,
}

/// `listener.name.<name in lower case>.`, Kafka's prefix for per-listener settings.
pub fn listener_config_prefix(name: &str) -> String {
    format!("listener.name.{}.", name.to_ascii_lowercase())
}

/// The listeners `config` describes, in the order of `listeners`.
pub fn listeners(config: &BrokerConfig) -> Result<Vec<ListenerSpec>, ConfigError> {
    let map = protocol_map(config.str_value("listener.security.protocol.map"))?;
    let listeners = config.str_value("listeners");
    let mut specs = if listeners.trim().is_empty() {
        let listen = config.listen();
        vec![ListenerSpec {
            name: "PLAINTEXT".into(),
            security_protocol: SecurityProtocol::Plaintext,
            host: listen.ip().to_string(),
            port: listen.port(),
            advertised: None,
        }]
    } else {
        parse_listeners(listeners, &map)?
    };
    apply_advertised(config, &mut specs)?;
    let inter_broker = config.str_value("inter.broker.listener.name").trim();
    if !inter_broker.is_empty() && !specs.iter().any(|s| s.name == inter_broker) {
        return Err(invalid("inter.broker.listener.name", inter_broker, "names no listener in listeners"));
    }
    Ok(specs)
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue { key: key.into(), value: value.into(), reason: reason.into() }
}

/// Parses `listener.security.protocol.map`: `NAME:PROTOCOL` pairs.
fn protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let key = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, protocol) =
            item.split_once(':').ok_or_else(|| invalid(key, value, &format!("'{item}' is not NAME:PROTOCOL")))?;
        let protocol = SecurityProtocol::parse(protocol)
            .ok_or_else(|| invalid(key, value, &format!("'{protocol}' is not a security protocol")))?;
        if map.insert(name.trim().to_string(), protocol).is_some() {
            return Err(invalid(key, value, &format!("listener name '{name}' appears twice")));
        }
    }
    Ok(map)
}

/// Splits `NAME://host:port` into its parts; the host may be empty or a
/// bracketed IPv6 address.
fn split_url(item: &str) -> Option<(&str, &str, u16)> {
    let (name, rest) = item.split_once("://")?;
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Some((name.trim(), host, port.parse().ok()?))
}

fn parse_listeners(value: &str, map: &BTreeMap<String, SecurityProtocol>) -> Result<Vec<ListenerSpec>, ConfigError> {
    let key = "listeners";
    let mut specs: Vec<ListenerSpec> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, host, port) =
            split_url(item).ok_or_else(|| invalid(key, value, &format!("'{item}' is not NAME://host:port")))?;
        let security_protocol = *map.get(name).ok_or_else(|| {
            invalid(key, value, &format!("listener name '{name}' is not in listener.security.protocol.map"))
        })?;
        if specs.iter().any(|s| s.name == name) {
            return Err(invalid(key, value, &format!("listener name '{name}' appears twice")));
        }
        if port != 0 && specs.iter().any(|s| s.port == port) {
            return Err(invalid(key, value, &format!("port {port} is used by two listeners")));
        }
        specs.push(ListenerSpec {
            name: name.to_string(),
            security_protocol,
            host: host.into(),
            port,
            advertised: None,
        });
    }
    if specs.is_empty() {
        return Err(invalid(key, value, "names no listener"));
    }
    Ok(specs)
}

/// Fills in each listener's advertised address: `advertised.listeners` by
/// name, else `advertised.listener` for the first listener.
fn apply_advertised(config: &BrokerConfig, specs: &mut [ListenerSpec]) -> Result<(), ConfigError> {
    let key = "advertised.listeners";
    let value = config.str_value(key);
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, host, port) =
            split_url(item).ok_or_else(|| invalid(key, value, &format!("'{item}' is not NAME://host:port")))?;
        let spec = specs
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| invalid(key, value, &format!("'{name}' names no listener in listeners")))?;
        if host.is_empty() || port == 0 {
            return Err(invalid(key, value, &format!("'{item}' needs a host and a non-zero port")));
        }
        spec.advertised = Some(Endpoint { host: host.to_string(), port: i32::from(port) });
    }
    if let (Some(adv), Some(first)) = (config.advertised_listener(), specs.first_mut()) {
        if first.advertised.is_none() {
            let endpoint = parse_endpoint(&adv)
                .ok_or_else(|| invalid("advertised.listener", &adv, "must be host:port with a non-zero port"))?;
            first.advertised = Some(endpoint);
        }
    }
    Ok(())
}

/// Parses `host:port` (IPv6 hosts in brackets).
pub fn parse_endpoint(s: &str) -> Option<Endpoint> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    Some(Endpoint { host: host.trim_matches(|c| c == '[' || c == ']').to_string(), port: i32::from(port) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn config(settings: &[(&str, &str)]) -> BrokerConfig {
        let mut config = BrokerConfig::default();
        for (k, v) in settings {
            config.set(k, v, Source::Override).unwrap();
        }
        config
    }

    #[test]
    fn without_listeners_one_plaintext_listener_serves_listen() {
        let specs =
            listeners(&config(&[("listen", "127.0.0.1:0"), ("advertised.listener", "kafka.example:9092")])).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].name, "PLAINTEXT");
        assert_eq!(specs[0].security_protocol, SecurityProtocol::Plaintext);
        assert_eq!(specs[0].bind_address(), "127.0.0.1:0");
        assert_eq!(specs[0].advertised.as_ref().map(|e| (e.host.as_str(), e.port)), Some(("kafka.example", 9092)));
    }

    #[test]
    fn several_listeners_with_the_default_map_and_advertised_addresses() {
        let specs = listeners(&config(&[
            ("listeners", "PLAINTEXT://127.0.0.1:9092, SSL://:9093,INTERNAL://[::1]:0"),
            ("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT,SSL:SSL,INTERNAL:SSL"),
            ("advertised.listeners", "SSL://broker1.example:19093"),
            ("inter.broker.listener.name", "INTERNAL"),
        ]))
        .unwrap();
        let names: Vec<_> = specs.iter().map(|s| (s.name.as_str(), s.security_protocol, s.bind_address())).collect();
        assert_eq!(
            names,
            vec![
                ("PLAINTEXT", SecurityProtocol::Plaintext, "127.0.0.1:9092".to_string()),
                ("SSL", SecurityProtocol::Ssl, "0.0.0.0:9093".to_string()),
                ("INTERNAL", SecurityProtocol::Ssl, "[::1]:0".to_string()),
            ]
        );
        assert!(specs[0].advertised.is_none());
        assert_eq!(specs[1].advertised.as_ref().unwrap().host, "broker1.example");
        assert_eq!(specs[2].config_prefix(), "listener.name.internal.");
    }

    #[test]
    fn errors_name_the_key() {
        for (settings, key) in [
            (vec![("listeners", "PLAINTEXT:/127.0.0.1:9092")], "listeners"),
            (vec![("listeners", "OTHER://127.0.0.1:9092")], "listeners"),
            (vec![("listeners", "PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9092")], "listeners"),
            (vec![("listeners", "PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2")], "listeners"),
            (vec![("listener.security.protocol.map", "PLAINTEXT:TLS")], "listener.security.protocol.map"),
            (vec![("advertised.listeners", "SSL://host:9093")], "advertised.listeners"),
            (vec![("advertised.listeners", "PLAINTEXT://host:0")], "advertised.listeners"),
            (vec![("inter.broker.listener.name", "INTERNAL")], "inter.broker.listener.name"),
            (vec![("advertised.listener", "host")], "advertised.listener"),
        ] {
            let err = listeners(&config(&settings)).expect_err(&format!("{settings:?}")).to_string();
            assert!(err.contains(key), "{settings:?}: {err}");
        }
    }
}
