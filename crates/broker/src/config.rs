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
    Int {
        min: i64,
        max: i64,
    },
    Bool,
    Str,
    Choice(&'static [&'static str]),
    Addr,
    /// A floating-point number in `min..=max`.
    Double {
        min: f64,
        max: f64,
    },
    /// A comma-separated list, each item one of the choices when given; the
    /// kind IncrementalAlterConfigs APPEND and SUBTRACT work on.
    List(Option<&'static [&'static str]>),
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
const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];
const CONSUMER_ASSIGNORS: &[&str] = &["uniform", "range"];
const PEM_ONLY: &[&str] = &["PEM"];
const CLIENT_AUTH: &[&str] = &["required", "requested", "none"];
const TLS_VERSIONS: &[&str] = &["TLSv1.2", "TLSv1.3"];
/// SASL mechanisms Runnel serves.
pub const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];
const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

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
        doc: "host:port put in Metadata responses for the first listener unless advertised.listeners names it; empty means the bound address",
    },
    // Listeners and TLS (see `listener` and `tls`).
    ConfigDef {
        name: "listeners",
        kind: Kind::Str,
        default: "",
        doc: "comma-separated NAME://host:port listeners, e.g. PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:9093; empty means one PLAINTEXT listener on listen",
    },
    ConfigDef {
        name: "advertised.listeners",
        kind: Kind::Str,
        default: "",
        doc: "comma-separated NAME://host:port told to clients of each named listener; a listener not named advertises the address a client connected to",
    },
    ConfigDef {
        name: "listener.security.protocol.map",
        kind: Kind::Str,
        default: "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        doc: "listener name to security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)",
    },
    ConfigDef {
        name: "inter.broker.listener.name",
        kind: Kind::Str,
        default: "",
        doc: "listener brokers use to reach each other; validated to name a listener, unused on a single node",
    },
    ConfigDef {
        name: "ssl.keystore.location",
        kind: Kind::Str,
        default: "",
        doc: "PEM file with the certificate chain (leaf first) and the unencrypted private key of TLS listeners; reloaded when it changes",
    },
    choice("ssl.keystore.type", PEM_ONLY, "PEM", "format of ssl.keystore.location; only PEM"),
    ConfigDef {
        name: "ssl.truststore.location",
        kind: Kind::Str,
        default: "",
        doc: "PEM file of CA certificates that client certificates must chain to (needed when ssl.client.auth is not none); reloaded when it changes",
    },
    choice("ssl.truststore.type", PEM_ONLY, "PEM", "format of ssl.truststore.location; only PEM"),
    choice(
        "ssl.client.auth",
        CLIENT_AUTH,
        "none",
        "required: clients must present a certificate the truststore trusts; requested: verified when presented; none: not asked for",
    ),
    ConfigDef {
        name: "ssl.principal.mapping.rules",
        kind: Kind::Str,
        default: "DEFAULT",
        doc: "rules mapping a client certificate's subject to a principal name: DEFAULT and RULE:pattern/replacement/[LU], comma-separated, first match wins",
    },
    list(
        "ssl.enabled.protocols",
        Some(TLS_VERSIONS),
        "TLSv1.2,TLSv1.3",
        "TLS versions TLS listeners accept",
    ),
    // SASL (see `sasl`).
    list(
        "sasl.enabled.mechanisms",
        Some(SASL_MECHANISMS),
        "PLAIN",
        "SASL mechanisms SASL listeners offer: PLAIN (users in sasl.jaas.config), SCRAM-SHA-256 and SCRAM-SHA-512 (users in the metadata log, set with AlterUserScramCredentials or `runnel user`), OAUTHBEARER (JWTs checked against sasl.oauthbearer.jwks.endpoint.url); Kafka's default is GSSAPI, which Runnel does not serve; Runnel's is PLAIN",
    ),
    ConfigDef {
        name: "sasl.jaas.config",
        kind: Kind::Str,
        default: "",
        doc: "JAAS line with the PLAIN users of SASL listeners: org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>=\"<password>\" ...; per listener as listener.name.<name>.plain.sasl.jaas.config; sensitive",
    },
    int(
        "connection.failed.authentication.delay.ms",
        0,
        I32_MAX,
        "100",
        "delay before a failed SASL authentication is answered and its connection closed, the same for every kind of failure",
    ),
    int(
        "sasl.server.authentication.timeout.ms",
        1,
        I32_MAX,
        "10000",
        "Runnel's own bound (Kafka has none): a SASL connection not authenticated this long after it was accepted is closed",
    ),
    int(
        "connections.max.reauth.ms",
        0,
        LONG_MAX,
        "0",
        "when positive, the longest a SASL session lasts before the client must re-authenticate on its connection (KIP-368); 0: no limit (an OAUTHBEARER session still ends when its token expires)",
    ),
    // OAUTHBEARER (see `sasl::oauthbearer`).
    ConfigDef {
        name: "sasl.oauthbearer.jwks.endpoint.url",
        kind: Kind::Str,
        default: "",
        doc: "JWKS file (a path or a file: URL) with the keys OAUTHBEARER tokens must be signed with; reloaded when it changes. HTTP(S) endpoints are not fetched",
    },
    int(
        "sasl.oauthbearer.clock.skew.seconds",
        0,
        I32_MAX,
        "30",
        "leeway allowed between the broker's clock and the token issuer's when checking exp, nbf and iat",
    ),
    ConfigDef {
        name: "sasl.oauthbearer.expected.audience",
        kind: Kind::Str,
        default: "",
        doc: "comma-separated audiences; when set, a token's aud claim must name one of them",
    },
    ConfigDef {
        name: "sasl.oauthbearer.expected.issuer",
        kind: Kind::Str,
        default: "",
        doc: "when set, a token's iss claim must equal it",
    },
    ConfigDef {
        name: "sasl.oauthbearer.sub.claim.name",
        kind: Kind::Str,
        default: "sub",
        doc: "claim holding the principal name of an OAUTHBEARER token",
    },
    ConfigDef {
        name: "sasl.oauthbearer.scope.claim.name",
        kind: Kind::Str,
        default: "scope",
        doc: "claim holding the scopes of an OAUTHBEARER token (a space-separated string or a list)",
    },
    boolean(
        "sasl.oauthbearer.unsecured.validator.enable",
        "false",
        "Runnel's own key (Kafka's default validator accepts them): accept unsigned OAUTHBEARER tokens (alg none), as Kafka's OAuthBearerUnsecuredValidatorCallbackHandler does; for tests only",
    ),
    // Authorization (see `authz`).
    ConfigDef {
        name: "authorizer.class.name",
        kind: Kind::Str,
        default: "",
        doc: "org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer) turns ACL authorization on; empty allows every request",
    },
    ConfigDef {
        name: "super.users",
        kind: Kind::Str,
        default: "",
        doc: "semicolon-separated principals (User:admin;User:ops) allowed everything whatever the ACLs",
    },
    boolean(
        "allow.everyone.if.no.acl.found",
        "false",
        "allow an action on a resource that no ACL matches at all; otherwise only super users may",
    ),
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
    // Quotas (see `quota`).
    int(
        "max.connection.creation.rate",
        1,
        I32_MAX,
        "2147483647",
        "new connections per second the broker accepts over all listeners; beyond it accepting waits (at most quota.window.size.seconds)",
    ),
    int(
        "quota.window.num",
        2,
        I32_MAX,
        "11",
        "samples kept to measure client quota rates (produce, fetch, request, connection creation)",
    ),
    int(
        "quota.window.size.seconds",
        1,
        I32_MAX,
        "1",
        "time span of each sample of client quota rates",
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
        "retention by time (topic: retention.ms); -1 keeps data forever",
    ),
    int(
        "log.retention.bytes",
        -1,
        LONG_MAX,
        "-1",
        "retention by size per partition (topic: retention.bytes); -1 means no limit",
    ),
    ConfigDef {
        name: "log.cleanup.policy",
        kind: Kind::List(Some(CLEANUP_POLICIES)),
        default: "delete",
        doc: "delete and/or compact (topic: cleanup.policy)",
    },
    int(
        "log.retention.check.interval.ms",
        1,
        LONG_MAX,
        "300000",
        "how often the retention pass looks for segments to delete (retention.ms, retention.bytes, DeleteRecords)",
    ),
    int(
        "log.initial.task.delay.ms",
        0,
        LONG_MAX,
        "30000",
        "delay after start-up before the first retention pass, so a restarted broker serves its data before deleting any",
    ),
    ConfigDef {
        name: "log.cleaner.enable",
        kind: Kind::Bool,
        default: "true",
        doc: "run the log cleaner, which compacts topics with cleanup.policy=compact",
    },
    int(
        "log.cleaner.backoff.ms",
        1,
        LONG_MAX,
        "15000",
        "how long the cleaner sleeps when no log is dirty enough to clean",
    ),
    int(
        "log.cleaner.dedupe.buffer.size",
        1024 * 1024,
        LONG_MAX,
        "134217728",
        "memory for the cleaner's key map (key bytes plus 64 per key); a larger dirty part is cleaned in several runs",
    ),
    ConfigDef {
        name: "log.cleaner.io.max.bytes.per.second",
        kind: Kind::Double { min: 1.0, max: f64::MAX },
        default: CLEANER_IO_UNLIMITED,
        doc: "the log cleaner's reads plus writes, in bytes per second; the default is unlimited",
    },
    int(
        "producer.id.expiration.ms",
        1,
        LONG_MAX,
        "86400000",
        "how long a partition remembers an idempotent producer that stopped writing (checked at each retention pass)",
    ),
    int(
        "log.segment.delete.delay.ms",
        0,
        LONG_MAX,
        "60000",
        "how long a segment removed by retention keeps its files, so reads in progress finish",
    ),
    int("shutdown.timeout.ms", 0, I32_MAX, "30000", "how long a clean shutdown waits for requests in progress"),
    // Broker-level synonyms of topic settings Runnel accepts but does not act
    // on yet (see TOPIC_CONFIGS); each is a real, dynamically alterable key.
    choice("compression.type", COMPRESSION_TYPES, "producer", "default of the topic setting compression.type; not enforced yet"),
    int("compression.gzip.level", -1, 9, "-1", "topic: compression.gzip.level; not enforced yet"),
    int("compression.lz4.level", 1, 17, "9", "topic: compression.lz4.level; not enforced yet"),
    int("compression.zstd.level", -131072, 22, "3", "topic: compression.zstd.level; not enforced yet"),
    int("log.cleaner.delete.retention.ms", 0, LONG_MAX, "86400000", "how long tombstones stay in compacted logs (topic: delete.retention.ms)"),
    int("log.local.retention.bytes", -2, LONG_MAX, "-2", "topic: local.retention.bytes; no tiered storage"),
    int("log.local.retention.ms", -2, LONG_MAX, "-2", "topic: local.retention.ms; no tiered storage"),
    int("log.cleaner.max.compaction.lag.ms", 1, LONG_MAX, "9223372036854775807", "longest time a record stays uncompacted (topic: max.compaction.lag.ms)"),
    int("log.cleaner.min.compaction.lag.ms", 0, LONG_MAX, "0", "shortest time a record stays uncompacted (topic: min.compaction.lag.ms)"),
    int("log.message.timestamp.after.max.ms", 0, LONG_MAX, "3600000", "topic: message.timestamp.after.max.ms; not enforced yet"),
    int("log.message.timestamp.before.max.ms", 0, LONG_MAX, "9223372036854775807", "topic: message.timestamp.before.max.ms; not enforced yet"),
    ConfigDef {
        name: "log.cleaner.min.cleanable.ratio",
        kind: Kind::Double { min: 0.0, max: 1.0 },
        default: "0.5",
        doc: "dirty share of a log that triggers compaction (topic: min.cleanable.dirty.ratio)",
    },
    int("min.insync.replicas", 1, I32_MAX, "1", "topic: min.insync.replicas; single node, not enforced"),
    boolean("log.preallocate", "false", "topic: preallocate; not enforced"),
    int("log.roll.jitter.ms", 0, LONG_MAX, "0", "topic: segment.jitter.ms; not enforced"),
    boolean("unclean.leader.election.enable", "false", "topic: unclean.leader.election.enable; single node, nothing to elect"),
    int(
        "max.request.partition.size.limit",
        1,
        I32_MAX,
        "2000",
        "most partitions one DescribeTopicPartitions response describes",
    ),
    // Metadata log (admin).
    int(
        "metadata.log.max.record.bytes.between.snapshots",
        1024,
        LONG_MAX,
        "20971520",
        "metadata log bytes written after which the image is snapshotted and the log started afresh",
    ),
    // Group coordinator.
    int(
        "offsets.topic.num.partitions",
        1,
        10_000,
        "50",
        "partitions of __consumer_offsets when it is created (a group's partition is hash(group id) modulo this)",
    ),
    int(
        "offsets.topic.segment.bytes",
        14,
        I32_MAX,
        "104857600",
        "segment size of __consumer_offsets when it is created; the cleaner compacts only rolled segments",
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
    // Transaction coordinator.
    int(
        "transaction.state.log.num.partitions",
        1,
        10_000,
        "50",
        "partitions of __transaction_state when it is created (an id's partition is hash(transactional id) modulo this)",
    ),
    int(
        "transaction.state.log.segment.bytes",
        14,
        I32_MAX,
        "104857600",
        "segment size of __transaction_state when it is created; the cleaner compacts only rolled segments",
    ),
    int(
        "transaction.max.timeout.ms",
        1,
        I32_MAX,
        "900000",
        "largest transaction.timeout.ms a producer may ask for; larger gets INVALID_TRANSACTION_TIMEOUT",
    ),
    int(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        1,
        I32_MAX,
        "10000",
        "how often transactions open past their timeout are looked for and aborted",
    ),
    int(
        "transactional.id.expiration.ms",
        1,
        I32_MAX,
        "604800000",
        "a transactional id without a transaction for this long is removed",
    ),
    int(
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        1,
        I32_MAX,
        "3600000",
        "how often expired transactional ids are looked for",
    ),
    // The consumer group protocol (KIP-848).
    int(
        "group.consumer.heartbeat.interval.ms",
        1,
        I32_MAX,
        "500",
        "how often members of consumer-protocol groups heartbeat (sent to them in every heartbeat answer; Kafka's default is 5000)",
    ),
    int(
        "group.consumer.session.timeout.ms",
        1,
        I32_MAX,
        "45000",
        "a consumer-protocol member that does not heartbeat for this long is removed",
    ),
    int("group.consumer.max.size", 1, I32_MAX, "2147483647", "members one consumer-protocol group may have"),
    list(
        "group.consumer.assignors",
        Some(CONSUMER_ASSIGNORS),
        "uniform,range",
        "server-side assignors members may choose with server_assignor; the first is the default",
    ),
];

/// A topic-level setting: its definition (with Kafka's default), the broker
/// setting it falls back to and whether Runnel acts on it yet.
#[derive(Clone, Copy, Debug)]
pub struct TopicConfigDef {
    pub def: ConfigDef,
    /// The broker-level key whose effective value applies when the topic has
    /// no override; `None` when Kafka has no broker-level synonym.
    pub synonym: Option<&'static str>,
    /// False for settings Runnel accepts, stores and reports but does not act
    /// on yet (their doc string says so; docs/OPERATIONS.md lists them).
    pub enforced: bool,
}

const fn topic(def: ConfigDef, synonym: &'static str, enforced: bool) -> TopicConfigDef {
    TopicConfigDef { def, synonym: Some(synonym), enforced }
}

const fn topic_only(def: ConfigDef, enforced: bool) -> TopicConfigDef {
    TopicConfigDef { def, synonym: None, enforced }
}

const fn boolean(name: &'static str, default: &'static str, doc: &'static str) -> ConfigDef {
    ConfigDef { name, kind: Kind::Bool, default, doc }
}

const fn choice(
    name: &'static str,
    choices: &'static [&'static str],
    default: &'static str,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef { name, kind: Kind::Choice(choices), default, doc }
}

const fn list(
    name: &'static str,
    items: Option<&'static [&'static str]>,
    default: &'static str,
    doc: &'static str,
) -> ConfigDef {
    ConfigDef { name, kind: Kind::List(items), default, doc }
}

const NOT_ENFORCED: &str = "accepted and stored; Runnel does not act on it yet";

/// Every topic-level setting of Apache Kafka 4.x, with its broker-level
/// synonym. Defaults are Kafka's, except `flush.messages` (Runnel: 1).
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic(
        list("cleanup.policy", Some(CLEANUP_POLICIES), "delete", "delete (retention) and/or compact (the log cleaner)"),
        "log.cleanup.policy",
        true,
    ),
    topic(
        choice(
            "compression.type",
            COMPRESSION_TYPES,
            "producer",
            "final compression of the topic's batches; not enforced yet: batches keep the producer's compression",
        ),
        "compression.type",
        false,
    ),
    topic(int("compression.gzip.level", -1, 9, "-1", NOT_ENFORCED), "compression.gzip.level", false),
    topic(int("compression.lz4.level", 1, 17, "9", NOT_ENFORCED), "compression.lz4.level", false),
    topic(int("compression.zstd.level", -131072, 22, "3", NOT_ENFORCED), "compression.zstd.level", false),
    topic(
        int("delete.retention.ms", 0, LONG_MAX, "86400000", "how long tombstones are kept in compacted topics"),
        "log.cleaner.delete.retention.ms",
        true,
    ),
    topic(
        int("file.delete.delay.ms", 0, LONG_MAX, "60000", "delay before a deleted segment's files are removed"),
        "log.segment.delete.delay.ms",
        true,
    ),
    topic(
        int("flush.messages", 1, LONG_MAX, "1", "unflushed messages that force an fsync"),
        "log.flush.interval.messages",
        true,
    ),
    topic(
        int("flush.ms", 0, LONG_MAX, "9223372036854775807", "age of unflushed data that forces an fsync"),
        "log.flush.interval.ms",
        true,
    ),
    topic_only(
        list(
            "follower.replication.throttled.replicas",
            None,
            "",
            "replicas throttled on the follower side; single node: no replication to throttle",
        ),
        false,
    ),
    topic(
        int("index.interval.bytes", 0, I32_MAX, "4096", "log bytes between offset index entries"),
        "log.index.interval.bytes",
        true,
    ),
    topic_only(
        list(
            "leader.replication.throttled.replicas",
            None,
            "",
            "replicas throttled on the leader side; single node: no replication to throttle",
        ),
        false,
    ),
    topic(
        int(
            "local.retention.bytes",
            -2,
            LONG_MAX,
            "-2",
            "local retention with tiered storage; not enforced (no tiered storage)",
        ),
        "log.local.retention.bytes",
        false,
    ),
    topic(
        int(
            "local.retention.ms",
            -2,
            LONG_MAX,
            "-2",
            "local retention with tiered storage; not enforced (no tiered storage)",
        ),
        "log.local.retention.ms",
        false,
    ),
    topic(
        int("max.compaction.lag.ms", 1, LONG_MAX, "9223372036854775807", "longest time a record stays uncompacted"),
        "log.cleaner.max.compaction.lag.ms",
        true,
    ),
    topic(int("max.message.bytes", 0, I32_MAX, "1048588", "largest record batch accepted"), "message.max.bytes", true),
    topic(
        int(
            "message.timestamp.after.max.ms",
            0,
            LONG_MAX,
            "3600000",
            "how far a CreateTime may lie in the future; not enforced yet",
        ),
        "log.message.timestamp.after.max.ms",
        false,
    ),
    topic(
        int(
            "message.timestamp.before.max.ms",
            0,
            LONG_MAX,
            "9223372036854775807",
            "how far a CreateTime may lie in the past; not enforced yet",
        ),
        "log.message.timestamp.before.max.ms",
        false,
    ),
    topic(
        choice("message.timestamp.type", TIMESTAMP_TYPES, "CreateTime", "CreateTime or LogAppendTime"),
        "log.message.timestamp.type",
        true,
    ),
    topic(
        ConfigDef {
            name: "min.cleanable.dirty.ratio",
            kind: Kind::Double { min: 0.0, max: 1.0 },
            default: "0.5",
            doc: "dirty share of a log that triggers compaction",
        },
        "log.cleaner.min.cleanable.ratio",
        true,
    ),
    topic(
        int("min.compaction.lag.ms", 0, LONG_MAX, "0", "shortest time a record stays uncompacted"),
        "log.cleaner.min.compaction.lag.ms",
        true,
    ),
    topic(
        int(
            "min.insync.replicas",
            1,
            I32_MAX,
            "1",
            "replicas that must acknowledge acks=all; single node: the leader alone, not enforced",
        ),
        "min.insync.replicas",
        false,
    ),
    topic(boolean("preallocate", "false", "preallocate segment files; not enforced"), "log.preallocate", false),
    topic_only(
        boolean(
            "remote.log.copy.disable",
            "false",
            "tiered storage: stop copying to remote storage; no tiered storage",
        ),
        false,
    ),
    topic_only(
        boolean(
            "remote.log.delete.on.disable",
            "false",
            "tiered storage: delete remote data when disabled; no tiered storage",
        ),
        false,
    ),
    topic_only(
        boolean("remote.storage.enable", "false", "tiered storage; Runnel has none, so only false is accepted"),
        true,
    ),
    topic(int("retention.bytes", -1, LONG_MAX, "-1", "retention by size per partition"), "log.retention.bytes", true),
    topic(int("retention.ms", -1, LONG_MAX, "604800000", "retention by time"), "log.retention.ms", true),
    topic(int("segment.bytes", 14, I32_MAX, "1073741824", "segment size before a roll"), "log.segment.bytes", true),
    topic(
        int("segment.index.bytes", 4, I32_MAX, "10485760", "offset index size before a roll"),
        "log.index.size.max.bytes",
        true,
    ),
    topic(
        int("segment.jitter.ms", 0, LONG_MAX, "0", "random jitter subtracted from segment.ms; not enforced"),
        "log.roll.jitter.ms",
        false,
    ),
    topic(int("segment.ms", 1, LONG_MAX, "604800000", "segment age before a roll"), "log.roll.ms", true),
    topic(
        boolean(
            "unclean.leader.election.enable",
            "false",
            "elect an out-of-sync replica as leader; single node: nothing to elect",
        ),
        "unclean.leader.election.enable",
        false,
    ),
];

/// The topic setting named `key`.
pub fn topic_config(key: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|t| t.def.name == key)
}

/// The broker setting named `key`.
pub fn broker_config(key: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == key)
}

/// Broker settings that IncrementalAlterConfigs and AlterConfigs may change at
/// run time (per broker or as the cluster default): every broker synonym of a
/// topic setting plus [`DYNAMIC_BROKER_EXTRA`]. The others are read-only.
pub fn is_dynamic_broker_key(key: &str) -> bool {
    DYNAMIC_BROKER_EXTRA.contains(&key) || TOPIC_CONFIGS.iter().any(|t| t.synonym == Some(key))
}

/// Dynamic broker settings that are not the synonym of a topic setting.
pub const DYNAMIC_BROKER_EXTRA: &[&str] = &[
    "num.partitions",
    "producer.id.expiration.ms",
    "log.cleaner.io.max.bytes.per.second",
    "max.connection.creation.rate",
];

/// Kafka's default of `log.cleaner.io.max.bytes.per.second`, `Double.MAX_VALUE`: no limit.
const CLEANER_IO_UNLIMITED: &str = "1.7976931348623157E308";

/// A setting's value could not be accepted.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("unknown config key '{0}'")]
    UnknownKey(String),
    #[error("invalid value '{value}' for config '{key}': {reason}")]
    InvalidValue { key: String, value: String, reason: String },
    #[error("config '{0}' cannot be updated dynamically")]
    ReadOnly(String),
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
        Kind::Double { min, max } => {
            let parsed: f64 = value.parse().map_err(|_| invalid("not a number".into()))?;
            if !parsed.is_finite() || parsed < min || parsed > max {
                return Err(invalid(format!("must be between {min} and {max}")));
            }
            Ok(value.to_string())
        }
        Kind::List(choices) => {
            let items = split_list(value);
            if let Some(choices) = choices {
                if items.is_empty() {
                    return Err(invalid(format!("must list at least one of {}", choices.join(" | "))));
                }
                if let Some(bad) = items.iter().find(|i| !choices.iter().any(|c| c.eq_ignore_ascii_case(i))) {
                    return Err(invalid(format!("'{bad}' is not one of {}", choices.join(" | "))));
                }
            }
            if def.name == "leader.replication.throttled.replicas"
                || def.name == "follower.replication.throttled.replicas"
            {
                check_throttled_replicas(&items).map_err(|reason| invalid(reason.into()))?;
            }
            Ok(items.iter().map(|i| i.to_ascii_lowercase()).collect::<Vec<_>>().join(","))
        }
    }
}

/// The items of a list value: comma-separated, blanks trimmed, empties dropped.
pub fn split_list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// Kafka's form for throttled replicas: `*` or `partition:broker` pairs.
fn check_throttled_replicas(items: &[String]) -> Result<(), &'static str> {
    if items.len() == 1 && items[0] == "*" {
        return Ok(());
    }
    let pair = |s: &String| {
        s.split_once(':').is_some_and(|(p, b)| p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok())
    };
    if items.iter().all(pair) {
        Ok(())
    } else {
        Err("must be '*' or a list of partition:broker pairs")
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
    /// Set at run time for this broker (IncrementalAlterConfigs/AlterConfigs).
    DynamicBroker,
    /// Set at run time as the cluster-wide default (resource name `""`).
    DynamicDefault,
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
    /// Per-listener settings, `listener.name.<listener>.<key>` for a key of
    /// [`PER_LISTENER_KEYS`], by their full name.
    per_listener: BTreeMap<String, (String, Source)>,
}

/// Settings a listener may override with Kafka's prefix
/// `listener.name.<listener name in lower case>.`.
pub const PER_LISTENER_KEYS: &[&str] = &[
    "ssl.keystore.location",
    "ssl.keystore.type",
    "ssl.truststore.location",
    "ssl.truststore.type",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
    "ssl.enabled.protocols",
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
];

/// Whether `key` holds a secret: its value is never shown by
/// `--print-config` or DescribeConfigs.
pub fn is_sensitive(key: &str) -> bool {
    key.ends_with("sasl.jaas.config")
}

/// What `--print-config` and DescribeConfigs show instead of a sensitive value.
pub const MASKED: &str = "[hidden]";

/// Splits `listener.name.<listener>.<key>` into the listener (lower case) and
/// the key, when the key may be set per listener.
fn per_listener_key(key: &str) -> Option<(&str, &'static ConfigDef)> {
    let rest = key.strip_prefix("listener.name.")?;
    let (listener, name) = rest.split_once('.')?;
    // Kafka names a mechanism's JAAS line `<mechanism in lower case>.sasl.jaas.config`.
    let name = match name.strip_suffix(".sasl.jaas.config") {
        Some(mechanism) if SASL_MECHANISMS.iter().any(|m| m.eq_ignore_ascii_case(mechanism)) => "sasl.jaas.config",
        _ => name,
    };
    let def = PER_LISTENER_KEYS.iter().find(|k| **k == name).and_then(|k| broker_config(k))?;
    (!listener.is_empty() && listener.chars().all(|c| !c.is_ascii_uppercase())).then_some((listener, def))
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let values = BROKER_CONFIGS.iter().map(|d| (d.name, (d.default.to_string(), Source::Default))).collect();
        BrokerConfig { values, per_listener: BTreeMap::new() }
    }
}

impl BrokerConfig {
    /// Sets `key` to `value` after validation.
    pub fn set(&mut self, key: &str, value: &str, source: Source) -> Result<(), ConfigError> {
        if let Some((_, def)) = per_listener_key(key) {
            let value = validate(def, value).map_err(|e| match e {
                ConfigError::InvalidValue { value, reason, .. } => {
                    ConfigError::InvalidValue { key: key.to_string(), value, reason }
                }
                other => other,
            })?;
            self.per_listener.insert(key.to_string(), (value, source));
            return Ok(());
        }
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
        let authorizer = self.str("authorizer.class.name");
        if !crate::authz::is_known_authorizer(authorizer) {
            return Err(ConfigError::InvalidValue {
                key: "authorizer.class.name".into(),
                value: authorizer.to_string(),
                reason: format!(
                    "only {} (or {}) is served",
                    crate::authz::STANDARD_AUTHORIZER,
                    crate::authz::ACL_AUTHORIZER
                ),
            });
        }
        for principal in self.str("super.users").split(';').map(str::trim).filter(|p| !p.is_empty()) {
            if !principal.split_once(':').is_some_and(|(t, n)| !t.is_empty() && !n.is_empty()) {
                return Err(ConfigError::InvalidValue {
                    key: "super.users".into(),
                    value: principal.to_string(),
                    reason: "a principal is Type:name, e.g. User:admin".into(),
                });
            }
        }
        let listeners = crate::listener::listeners(self)?;
        crate::tls::check_settings(self, &listeners)?;
        for spec in listeners.iter().filter(|s| s.security_protocol.uses_sasl()) {
            crate::sasl::SaslListener::from_config(self, &spec.name)?;
        }
        Ok(())
    }

    /// The value of a per-listener setting for listener `name`: its
    /// `listener.name.<name>.` override, else the broker-wide value.
    pub fn listener_str(&self, name: &str, key: &str) -> &str {
        let prefixed = format!("{}{key}", crate::listener::listener_config_prefix(name));
        match self.per_listener.get(&prefixed) {
            Some((v, _)) => v,
            None => self.str(key),
        }
    }

    /// The name under which listener `name` got `key`: the prefixed name when
    /// the listener overrides it, for error messages.
    pub fn listener_key_name(&self, name: &str, key: &str) -> String {
        let prefixed = format!("{}{key}", crate::listener::listener_config_prefix(name));
        if self.per_listener.contains_key(&prefixed) {
            prefixed
        } else {
            key.to_string()
        }
    }

    /// The value of a broker setting declared in [`BROKER_CONFIGS`].
    pub fn str_value(&self, key: &str) -> &str {
        self.str(key)
    }

    /// The value of `key` and where it came from.
    pub fn get(&self, key: &str) -> Option<(&str, Source)> {
        self.values.get(key).or_else(|| self.per_listener.get(key)).map(|(v, s)| (v.as_str(), *s))
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
    pub fn max_connection_creation_rate(&self) -> f64 {
        self.int("max.connection.creation.rate") as f64
    }
    /// `quota.window.num` samples of `quota.window.size.seconds` each.
    pub fn quota_windows(&self) -> crate::quota::rate::Windows {
        crate::quota::rate::Windows {
            samples: self.int("quota.window.num") as usize,
            window_ms: self.int("quota.window.size.seconds") as u64 * 1000,
        }
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
    pub fn cleaner_enabled(&self) -> bool {
        self.str("log.cleaner.enable") == "true"
    }
    pub fn cleaner_backoff(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.int("log.cleaner.backoff.ms") as u64)
    }
    /// `log.cleaner.io.max.bytes.per.second`; `f64::MAX` means unlimited.
    pub fn cleaner_io_max_bytes_per_second(&self) -> f64 {
        self.str("log.cleaner.io.max.bytes.per.second").parse().expect("validated double")
    }
    pub fn cleaner_key_map_bytes(&self) -> usize {
        usize::try_from(self.int("log.cleaner.dedupe.buffer.size")).unwrap_or(usize::MAX)
    }
    pub fn initial_task_delay(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.int("log.initial.task.delay.ms") as u64)
    }
    pub fn producer_id_expiration_ms(&self) -> i64 {
        self.int("producer.id.expiration.ms")
    }
    pub fn retention_check_interval(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.int("log.retention.check.interval.ms") as u64)
    }
    pub fn checkpoint_interval_ms(&self) -> u64 {
        self.int("log.flush.offset.checkpoint.interval.ms") as u64
    }
    pub fn max_request_partition_size_limit(&self) -> i32 {
        self.int("max.request.partition.size.limit") as i32
    }
    pub fn metadata_snapshot_after_bytes(&self) -> u64 {
        self.int("metadata.log.max.record.bytes.between.snapshots") as u64
    }
    pub fn shutdown_timeout_ms(&self) -> u64 {
        self.int("shutdown.timeout.ms") as u64
    }
    // Group coordinator.
    pub fn offsets_topic_segment_bytes(&self) -> i64 {
        self.int("offsets.topic.segment.bytes")
    }
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
    // Transaction coordinator.
    pub fn transaction_state_log_num_partitions(&self) -> i32 {
        self.int("transaction.state.log.num.partitions") as i32
    }
    pub fn transaction_state_log_segment_bytes(&self) -> i64 {
        self.int("transaction.state.log.segment.bytes")
    }
    pub fn transaction_max_timeout_ms(&self) -> i32 {
        self.int("transaction.max.timeout.ms") as i32
    }
    pub fn transaction_abort_timed_out_transaction_cleanup_interval_ms(&self) -> u64 {
        self.int("transaction.abort.timed.out.transaction.cleanup.interval.ms") as u64
    }
    pub fn transactional_id_expiration_ms(&self) -> i64 {
        self.int("transactional.id.expiration.ms")
    }
    pub fn transaction_remove_expired_transaction_cleanup_interval_ms(&self) -> u64 {
        self.int("transaction.remove.expired.transaction.cleanup.interval.ms") as u64
    }
    pub fn group_consumer_heartbeat_interval_ms(&self) -> u64 {
        self.int("group.consumer.heartbeat.interval.ms") as u64
    }
    pub fn group_consumer_session_timeout_ms(&self) -> u64 {
        self.int("group.consumer.session.timeout.ms") as u64
    }
    pub fn group_consumer_max_size(&self) -> usize {
        self.int("group.consumer.max.size") as usize
    }
    /// The configured server-side assignors, in order.
    pub fn group_consumer_assignors(&self) -> Vec<&str> {
        self.str("group.consumer.assignors").split(',').map(str::trim).filter(|a| !a.is_empty()).collect()
    }

    /// The effective broker-level value behind a topic setting (Kafka's
    /// default for a setting without a broker synonym).
    pub fn topic_default(&self, topic_key: &str) -> Option<&str> {
        topic_config(topic_key).map(|t| match t.synonym {
            Some(broker_key) => self.str(broker_key),
            None => t.def.default,
        })
    }

    /// This configuration with dynamic settings layered on top: the cluster
    /// default (`""` resource) first, then this broker's own. Values were
    /// validated when they were altered.
    pub fn with_dynamic(&self, cluster: &BTreeMap<String, String>, node: &BTreeMap<String, String>) -> BrokerConfig {
        let mut out = self.clone();
        for (layer, source) in [(cluster, Source::DynamicDefault), (node, Source::DynamicBroker)] {
            for (key, value) in layer {
                if let Some(def) = broker_config(key) {
                    out.values.insert(def.name, (value.clone(), source));
                }
            }
        }
        out
    }

    /// The storage configuration of a topic: broker defaults overlaid with the
    /// topic's own settings (already validated when the topic was created).
    pub fn log_config(&self, topic_configs: &BTreeMap<String, String>) -> LogConfig {
        let get = |topic_key: &str| -> i64 {
            let value = topic_configs.get(topic_key).map(String::as_str).or_else(|| self.topic_default(topic_key));
            value.and_then(|v| v.parse().ok()).expect("validated topic config")
        };
        let cleanup_policy =
            topic_configs.get("cleanup.policy").map(String::as_str).unwrap_or_else(|| self.str("log.cleanup.policy"));
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
            retention_ms: get("retention.ms"),
            retention_bytes: get("retention.bytes"),
            retention_enabled: cleanup_policy.split(',').any(|p| p.trim() == "delete"),
            file_delete_delay_ms: get("file.delete.delay.ms"),
            compact: cleanup_policy.split(',').any(|p| p.trim() == "compact"),
            min_cleanable_dirty_ratio: topic_configs
                .get("min.cleanable.dirty.ratio")
                .map(String::as_str)
                .or_else(|| self.topic_default("min.cleanable.dirty.ratio"))
                .and_then(|v| v.parse().ok())
                .expect("validated topic config"),
            delete_retention_ms: get("delete.retention.ms"),
            min_compaction_lag_ms: get("min.compaction.lag.ms"),
            max_compaction_lag_ms: get("max.compaction.lag.ms"),
        }
    }

    /// Every key with its value and source, for `serve --print-config`.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, Source)> {
        let values = self.values.iter().map(|(k, (v, s))| (*k, v.as_str(), *s));
        values.chain(self.per_listener.iter().map(|(k, (v, s))| (k.as_str(), v.as_str(), *s)))
    }
}

/// Validates a topic's settings from CreateTopics; the error names the key.
pub fn validate_topic_configs<'a>(
    configs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (key, value) in configs {
        let Some(value) = value else {
            // Reported under the key's name, known or not.
            topic_config(key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
            return Err(ConfigError::InvalidValue {
                key: key.into(),
                value: "null".into(),
                reason: "a value is required".into(),
            });
        };
        let (name, value) = validate_topic_config(key, value)?;
        out.insert(name.to_string(), value);
    }
    Ok(out)
}

/// Validates one topic setting; returns its name and canonical value.
pub fn validate_topic_config(key: &str, value: &str) -> Result<(&'static str, String), ConfigError> {
    let t = topic_config(key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
    let value = validate(&t.def, value)?;
    if t.def.name == "remote.storage.enable" && value == "true" {
        return Err(ConfigError::InvalidValue {
            key: key.into(),
            value,
            reason: "tiered storage is not available on this broker".into(),
        });
    }
    Ok((t.def.name, value))
}

/// Validates one dynamic broker setting; returns its name and canonical value.
pub fn validate_dynamic_broker_config(key: &str, value: &str) -> Result<(&'static str, String), ConfigError> {
    let def = broker_config(key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
    if !is_dynamic_broker_key(def.name) {
        return Err(ConfigError::ReadOnly(key.to_string()));
    }
    Ok((def.name, validate(def, value)?))
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
        // Re-authentication (KIP-368) is served: any non-negative session lifetime.
        config.set("connections.max.reauth.ms", "3600000", Source::Override).unwrap();
        let err = config.set("connections.max.reauth.ms", "-1", Source::Override).unwrap_err();
        assert!(err.to_string().contains("connections.max.reauth.ms"), "{err}");
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
    fn every_topic_config_has_a_real_synonym_with_the_same_default() {
        for t in TOPIC_CONFIGS {
            validate(&t.def, t.def.default).unwrap_or_else(|e| panic!("default of {}: {e}", t.def.name));
            if let Some(synonym) = t.synonym {
                let def = broker_config(synonym).unwrap_or_else(|| panic!("{synonym} is not a broker key"));
                assert_eq!(def.default, t.def.default, "{} vs {synonym}", t.def.name);
                assert!(is_dynamic_broker_key(synonym), "{synonym}");
            }
        }
        // Keys Kafka clients send at creation (librdkafka 0081 among them).
        for (key, value) in [
            ("compression.type", "lz4"),
            ("delete.retention.ms", "900"),
            ("file.delete.delay.ms", "0"),
            ("min.insync.replicas", "1"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("min.compaction.lag.ms", "10"),
            ("max.compaction.lag.ms", "100"),
            ("unclean.leader.election.enable", "TRUE"),
            ("preallocate", "false"),
            ("segment.jitter.ms", "5"),
            ("message.timestamp.before.max.ms", "1000"),
            ("message.timestamp.after.max.ms", "1000"),
            ("local.retention.ms", "-2"),
            ("local.retention.bytes", "-2"),
            ("remote.storage.enable", "false"),
            ("leader.replication.throttled.replicas", "0:1,1:1"),
            ("follower.replication.throttled.replicas", "*"),
            ("max.message.bytes", "2000"),
            ("cleanup.policy", "compact, delete"),
        ] {
            validate_topic_config(key, value).unwrap_or_else(|e| panic!("{key}={value}: {e}"));
        }
        assert_eq!(validate_topic_config("cleanup.policy", "Compact, delete").unwrap().1, "compact,delete");
        assert_eq!(validate_topic_config("unclean.leader.election.enable", "TRUE").unwrap().1, "true");
    }

    #[test]
    fn topic_values_are_checked_by_type_and_range_and_name_the_key() {
        for (key, value) in [
            ("compression.type", "brotli"),
            ("delete.retention.ms", "-1"),
            ("min.cleanable.dirty.ratio", "1.01"),
            ("min.cleanable.dirty.ratio", "NaN"),
            ("min.cleanable.dirty.ratio", "half"),
            ("min.insync.replicas", "0"),
            ("preallocate", "yes"),
            ("max.compaction.lag.ms", "0"),
            ("local.retention.ms", "-3"),
            ("remote.storage.enable", "true"),
            ("leader.replication.throttled.replicas", "0-1"),
            ("cleanup.policy", ""),
            ("cleanup.policy", "delete,shred"),
            ("segment.bytes", "13"),
        ] {
            let err = validate_topic_config(key, value).expect_err(&format!("{key}={value}"));
            assert!(err.to_string().contains(key), "{key}={value}: {err}");
        }
        assert_eq!(validate_topic_config("no.such", "1").unwrap_err(), ConfigError::UnknownKey("no.such".into()));
    }

    #[test]
    fn dynamic_layers_override_static_values() {
        let mut config = BrokerConfig::default();
        config.set("log.retention.ms", "1000", Source::File).unwrap();
        let cluster: BTreeMap<String, String> = [("log.retention.ms", "2000"), ("message.max.bytes", "500")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let node: BTreeMap<String, String> = [("message.max.bytes".to_string(), "700".to_string())].into();
        let effective = config.with_dynamic(&cluster, &node);
        assert_eq!(effective.get("log.retention.ms"), Some(("2000", Source::DynamicDefault)));
        assert_eq!(effective.get("message.max.bytes"), Some(("700", Source::DynamicBroker)));
        assert_eq!(effective.log_config(&BTreeMap::new()).max_message_bytes, 700);
        assert_eq!(effective.topic_default("retention.ms"), Some("2000"));
        assert_eq!(effective.topic_default("remote.storage.enable"), Some("false"));
        assert!(validate_dynamic_broker_config("log.dirs", "/x").is_err());
        assert!(!is_dynamic_broker_key("node.id") && is_dynamic_broker_key("num.partitions"));
    }

    // Goal: the cleaner's I/O limit has Kafka's name and default (unlimited), is a dynamic broker key, and refuses
    // values that are not a positive rate, naming the key.
    #[test]
    fn cleaner_io_limit_is_dynamic_and_unlimited_by_default() {
        let key = "log.cleaner.io.max.bytes.per.second";
        assert_eq!(BrokerConfig::default().cleaner_io_max_bytes_per_second(), f64::MAX);
        assert!(is_dynamic_broker_key(key));
        assert_eq!(validate_dynamic_broker_config(key, "5e7").unwrap(), (key, "5e7".to_string()));
        for bad in ["0", "-1", "fast", "inf"] {
            let err = validate_dynamic_broker_config(key, bad).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        let node: BTreeMap<String, String> = [(key.to_string(), "25000000".to_string())].into();
        assert_eq!(
            BrokerConfig::default().with_dynamic(&BTreeMap::new(), &node).cleaner_io_max_bytes_per_second(),
            25e6
        );
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
