//! What every client command shares: the connection flags (`--brokers`,
//! `-X`), librdkafka client configuration built from them, the reachability
//! check, topic look-ups and the producer settings `--acks` and
//! `--compression`.
//!
//! The client commands (`runnel topic`, `runnel produce`, `runnel consume`)
//! and `runnel bench` all talk to the broker through librdkafka, so a flag
//! means the same thing everywhere and `-X` reaches every client property.

pub mod acl;
pub mod cluster;
pub mod consume;
pub mod group;
pub mod produce;
pub mod profile;
pub mod quota;
pub mod secure;
pub mod template;
pub mod topic;
pub mod user;
pub mod wire;

use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;

/// How long the first metadata request may take before the broker counts as
/// unreachable.
pub const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Bootstrap brokers when neither --brokers nor a profile names any.
pub const DEFAULT_BROKERS: &str = "127.0.0.1:9092";

/// The connection flags of every client command; they may stand before or
/// after a subcommand name.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Bootstrap brokers, comma-separated (librdkafka: bootstrap.servers)
    /// [default: the profile's, else 127.0.0.1:9092].
    #[arg(long = "brokers", global = true, env = "RUNNEL_BROKERS", value_name = "HOST:PORT,...")]
    pub(crate) brokers_flag: Option<String>,
    /// A librdkafka client property, applied after all other settings; repeatable.
    /// Example: -X socket.send.buffer.bytes=1048576
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,
    /// Take brokers and client properties from this profile in
    /// $XDG_CONFIG_HOME/runnel/profiles.toml (~/.config/runnel/profiles.toml);
    /// --brokers and -X override it. Example: --profile staging
    #[arg(long, global = true, env = "RUNNEL_PROFILE", value_name = "NAME")]
    profile: Option<String>,
    /// The bootstrap brokers in effect, set by `resolve`.
    #[arg(skip = DEFAULT_BROKERS.to_string())]
    pub brokers: String,
    /// The profile's client properties; `-X` comes after them.
    #[arg(skip)]
    profile_properties: Vec<(String, String)>,
}

impl ConnectArgs {
    /// Connection settings without a profile, as if given on the command line.
    #[cfg(test)]
    pub fn new(brokers: &str, properties: Vec<(String, String)>) -> ConnectArgs {
        ConnectArgs {
            brokers_flag: Some(brokers.to_string()),
            properties,
            profile: None,
            brokers: brokers.to_string(),
            profile_properties: Vec::new(),
        }
    }

    /// Applies `--profile` and works out the brokers in effect: `--brokers`
    /// (or RUNNEL_BROKERS), else the profile's, else the default. Every
    /// command calls it once before connecting.
    pub fn resolve(&mut self) -> anyhow::Result<()> {
        let profile = match &self.profile {
            Some(name) => profile::load(name)?,
            None => profile::Profile::default(),
        };
        self.brokers = self.brokers_flag.clone().or(profile.brokers).unwrap_or_else(|| DEFAULT_BROKERS.to_string());
        self.profile_properties = profile.properties;
        Ok(())
    }

    /// A client configuration with the bootstrap brokers, then `settings`,
    /// then the profile's properties, then the user's `-X` properties, so the
    /// user has the last word.
    pub fn client_config(&self, settings: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in settings {
            config.set(*key, value);
        }
        for (key, value) in &self.profile_properties {
            config.set(key, value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// A consumer used for metadata and watermark look-ups and for reading by
    /// hand-assigned partitions. It never joins a group or commits offsets;
    /// `group_consumer` is the one for a named group.
    pub fn consumer(&self, settings: &[(&str, String)]) -> anyhow::Result<BaseConsumer> {
        let mut all = vec![
            ("group.id", "runnel-cli-unused".to_string()),
            ("enable.auto.commit", "false".to_string()),
            ("enable.auto.offset.store", "false".to_string()),
        ];
        all.extend(settings.iter().cloned());
        self.client_config(&all).create().context("cannot create the consumer")
    }

    /// A consumer with `group.id` set to `group`, for reading and committing
    /// that group's offsets. It joins the group only when it subscribes.
    pub fn group_consumer(&self, group: &str, settings: &[(&str, String)]) -> anyhow::Result<BaseConsumer> {
        let mut all = vec![
            ("group.id", group.to_string()),
            ("group.protocol", "classic".to_string()),
            ("enable.auto.commit", "false".to_string()),
            ("enable.auto.offset.store", "false".to_string()),
        ];
        all.extend(settings.iter().cloned());
        self.client_config(&all).create().context("cannot create the consumer")
    }

    /// The value of a client property as the clients get it: `-X` over the
    /// profile's properties.
    pub fn property(&self, key: &str) -> Option<&str> {
        let set = self.profile_properties.iter().chain(&self.properties);
        set.filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).next_back()
    }

    /// TLS and SASL settings for [`wire`] connections, from the same
    /// properties librdkafka reads.
    pub fn security(&self) -> anyhow::Result<secure::Security> {
        secure::Security::from_properties(|key| self.property(key))
    }

    /// A [`wire`] connection to the first bootstrap broker that answers,
    /// secured as the properties say.
    pub fn wire(&self, timeout: Duration) -> anyhow::Result<wire::Connection> {
        wire::open_any_secure(&self.brokers, &self.security()?, timeout)
    }

    /// A [`wire`] connection to broker `addr`, secured as the properties say.
    pub fn wire_to(&self, addr: &str, timeout: Duration) -> anyhow::Result<wire::Connection> {
        wire::Connection::open_secure(addr, &self.security()?, timeout)
    }

    /// An admin client for topic creation and deletion.
    pub fn admin(&self) -> anyhow::Result<AdminClient<DefaultClientContext>> {
        self.client_config(&[]).create().context("cannot create the admin client")
    }

    /// Fetches cluster metadata once, so a wrong address fails fast with one
    /// line instead of a client retrying until its own timeout.
    pub fn check_reachable(&self, consumer: &BaseConsumer) -> anyhow::Result<Metadata> {
        match consumer.fetch_metadata(None, REACH_TIMEOUT) {
            Ok(metadata) => Ok(metadata),
            Err(e) => {
                // librdkafka says only "transport failure" when TLS or SASL
                // fails; the CLI's own client can say why.
                let secured = self.property("security.protocol").is_some_and(|p| !p.eq_ignore_ascii_case("plaintext"));
                let why = match secured.then(|| self.wire(REACH_TIMEOUT)) {
                    Some(Err(cause)) => format!("{cause:#}"),
                    _ => e.to_string(),
                };
                bail!("cannot reach broker at {} within {} s: {why}", self.brokers, REACH_TIMEOUT.as_secs())
            }
        }
    }
}

/// Parses one `-X KEY=VALUE`; the value may itself contain `=`.
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// The partition ids of `topic`, sorted, or `None` when the broker does not
/// know it or a partition has no leader yet (it cannot take writes).
pub fn topic_partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Option<Vec<i32>>> {
    let metadata = consumer.fetch_metadata(Some(topic), REACH_TIMEOUT).context("metadata request failed")?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(None);
    }
    if t.partitions().iter().any(|p| p.leader() < 0) {
        return Ok(None);
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(Some(ids))
}

/// Like `topic_partitions`, but an unknown topic is an error that says what to do.
pub fn existing_topic_partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
    match topic_partitions(consumer, topic)? {
        Some(ids) => Ok(ids),
        None => bail!("topic {topic} does not exist (create it with `runnel topic create {topic}`)"),
    }
}

/// Acknowledgements a producer asks for (librdkafka: acks).
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Acks {
    #[value(name = "0")]
    None,
    #[value(name = "1")]
    Leader,
    #[value(name = "all", alias = "-1")]
    All,
}

impl Acks {
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// Compression codec for record batches (librdkafka: compression.codec).
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Output format of the commands that print data: a table for people, JSON for scripts.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

/// Runs one admin future to completion on a small runtime of its own.
pub fn block_on<F: std::future::Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    Ok(runtime.block_on(future))
}

/// Prints left-aligned columns separated by two spaces.
pub fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_settings_override_earlier_ones() {
        let connect = ConnectArgs::new("b:1", vec![("linger.ms".into(), "9".into())]);
        let config = connect.client_config(&[("linger.ms", "5".into())]);
        assert_eq!(config.get("linger.ms"), Some("9"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:1"));
    }

    #[test]
    fn a_property_needs_a_key_and_may_hold_equals_signs() {
        assert_eq!(parse_property("client.id=a=b"), Ok(("client.id".into(), "a=b".into())));
        assert!(parse_property("linger.ms").is_err());
        assert!(parse_property("=1").is_err());
    }
}
