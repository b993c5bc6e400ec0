//! Prometheus metrics: every metric name the broker exports, the counters
//! the data path updates, and the gauges computed when `/metrics` is scraped.
//!
//! Counters on the hot path are registered once per topic and kept on each
//! partition ([`TopicCounters`]), so producing or fetching touches an atomic
//! and never looks a name up. Request counts and latencies are recorded per
//! API through the `metrics` facade. Storage state (log sizes, offsets,
//! flusher totals) and process state (memory, CPU) are read at scrape time,
//! so they cost nothing between scrapes.

use std::sync::OnceLock;

use kafka_protocol::messages::ApiKey;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Counter, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::broker::Broker;

pub const REQUESTS: &str = "runnel_requests_total";
pub const REQUEST_DURATION: &str = "runnel_request_duration_seconds";
pub const CONNECTIONS: &str = "runnel_connections";
pub const CONNECTIONS_ACCEPTED: &str = "runnel_connections_accepted_total";
pub const CONNECTIONS_CLOSED_BAD_INPUT: &str = "runnel_connections_closed_bad_input_total";
pub const TLS_HANDSHAKE_FAILURES: &str = "runnel_tls_handshake_failures_total";
pub const SASL_AUTHENTICATIONS: &str = "runnel_sasl_authentications_total";
pub const TLS_RELOADS: &str = "runnel_tls_certificate_reloads_total";
pub const SASL_REAUTHENTICATIONS: &str = "runnel_sasl_reauthentications_total";
pub const SASL_EXPIRED_SESSIONS_CLOSED: &str = "runnel_sasl_expired_sessions_closed_total";
pub const JWKS_RELOADS: &str = "runnel_sasl_oauthbearer_jwks_reloads_total";
pub const BYTES_IN: &str = "runnel_topic_bytes_in_total";
pub const RECORDS_IN: &str = "runnel_topic_records_in_total";
pub const BYTES_OUT: &str = "runnel_topic_bytes_out_total";
pub const RECORDS_OUT: &str = "runnel_topic_records_out_total";
pub const PRODUCE_ERRORS: &str = "runnel_produce_errors_total";
pub const PRODUCE_DUPLICATES: &str = "runnel_produce_duplicate_batches_total";
pub const PRODUCERS_EXPIRED: &str = "runnel_producers_expired_total";
pub const FETCH_WAITING: &str = "runnel_fetch_waiting";
pub const PRODUCE_WAITING: &str = "runnel_produce_waiting_for_fsync";
pub const LOG_SIZE: &str = "runnel_log_size_bytes";
pub const LOG_END_OFFSET: &str = "runnel_log_end_offset";
pub const LOG_START_OFFSET: &str = "runnel_log_start_offset";
pub const HIGH_WATERMARK: &str = "runnel_high_watermark";
pub const FLUSH_ROUNDS: &str = "runnel_flush_rounds_total";
pub const FLUSH_REQUESTS: &str = "runnel_flush_requests_total";
pub const FSYNCS: &str = "runnel_fsyncs_total";
pub const RETENTION_SEGMENTS: &str = "runnel_retention_segments_deleted_total";
pub const RETENTION_BYTES: &str = "runnel_retention_bytes_deleted_total";
pub const CLEANER_RUNS: &str = "runnel_cleaner_runs_total";
pub const CLEANER_BYTES_READ: &str = "runnel_cleaner_bytes_read_total";
pub const CLEANER_BYTES_WRITTEN: &str = "runnel_cleaner_bytes_written_total";
pub const CLEANER_RECORDS_REMOVED: &str = "runnel_cleaner_records_removed_total";
pub const CLEANER_THROTTLED_SECONDS: &str = "runnel_cleaner_throttled_seconds";
pub const METADATA_SNAPSHOTS: &str = "runnel_metadata_snapshots_total";
pub const CONFIG_CHANGES: &str = "runnel_config_changes_total";
pub const SCRAM_CREDENTIAL_CHANGES: &str = "runnel_scram_credential_changes_total";
pub const QUOTA_RECORDED: &str = "runnel_quota_recorded_total";
pub const QUOTA_THROTTLED: &str = "runnel_quota_throttled_total";
pub const QUOTA_THROTTLE_TIME: &str = "runnel_quota_throttle_time_ms_total";
pub const CONNECTIONS_THROTTLED: &str = "runnel_connections_throttled_total";
pub const QUOTA_SENSORS: &str = "runnel_quota_sensors";
pub const PROCESS_RSS: &str = "process_resident_memory_bytes";
pub const PROCESS_CPU: &str = "process_cpu_seconds_total";

/// Request latency buckets, in seconds: from a fraction of a millisecond
/// (metadata, page-cache produce) to long polls of several seconds.
const REQUEST_DURATION_BUCKETS: &[f64] =
    &[0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Logs flushed per group-commit round.
const FLUSH_ROUND_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// Installs the process-wide Prometheus recorder (once) and returns the
/// handle that renders the text format.
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_string()), REQUEST_DURATION_BUCKETS)
                .expect("bucket list is not empty")
                .set_buckets_for_metric(Matcher::Full(runnel_log::FLUSH_DURATION.to_string()), REQUEST_DURATION_BUCKETS)
                .expect("bucket list is not empty")
                .set_buckets_for_metric(Matcher::Full(runnel_log::FLUSH_ROUND_LOGS.to_string()), FLUSH_ROUND_BUCKETS)
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed, which this process never does.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            describe();
            start_at_zero();
            handle
        })
        .clone()
}

/// Registers the unlabelled counters of rare events at 0, so they are scraped
/// (and a dashboard's `rate()` over them works) before the first event.
fn start_at_zero() {
    for name in [
        PRODUCE_DUPLICATES,
        PRODUCERS_EXPIRED,
        RETENTION_BYTES,
        CLEANER_RUNS,
        CLEANER_BYTES_READ,
        CLEANER_BYTES_WRITTEN,
        CLEANER_RECORDS_REMOVED,
        crate::group::GROUP_REBALANCES,
        crate::group::OFFSET_COMMITS,
        crate::txn::TRANSACTION_TIMEOUTS,
    ] {
        metrics::counter!(name).absolute(0);
    }
    for result in ["commit", "abort"] {
        metrics::counter!(crate::txn::TRANSACTIONS_ENDED, "result" => result).absolute(0);
    }
    for quota in ["produce", "fetch", "request"] {
        metrics::counter!(QUOTA_THROTTLED, "quota" => quota).absolute(0);
    }
}

fn describe() {
    describe_counter!(REQUESTS, "Requests answered, by API");
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from a request being read to its response being ready, by API"
    );
    describe_gauge!(CONNECTIONS, "Open client connections");
    describe_counter!(CONNECTIONS_ACCEPTED, "Client connections accepted");
    describe_counter!(CONNECTIONS_CLOSED_BAD_INPUT, "Connections closed because of a bad frame or request");
    describe_counter!(
        TLS_HANDSHAKE_FAILURES,
        "Connections to a TLS listener refused before or during the TLS handshake"
    );
    describe_counter!(
        SASL_AUTHENTICATIONS,
        "SASL authentications by listener, mechanism and result (success, failure)"
    );
    describe_counter!(TLS_RELOADS, "Reloads of changed TLS certificate files, by result (ok, error)");
    describe_counter!(
        SASL_REAUTHENTICATIONS,
        "SASL re-authentications (KIP-368) on live connections by listener, mechanism and result (success, failure)"
    );
    describe_counter!(
        SASL_EXPIRED_SESSIONS_CLOSED,
        "Connections closed because their SASL session expired before they re-authenticated, by listener"
    );
    describe_counter!(JWKS_RELOADS, "Reloads of a changed OAUTHBEARER JWKS file, by result (ok, error)");
    describe_counter!(BYTES_IN, Unit::Bytes, "Record batch bytes appended, by topic");
    describe_counter!(RECORDS_IN, "Records appended, by topic");
    describe_counter!(BYTES_OUT, Unit::Bytes, "Record batch bytes returned by Fetch, by topic");
    describe_counter!(RECORDS_OUT, "Records returned by Fetch, by topic");
    describe_counter!(PRODUCE_ERRORS, "Partitions of produce requests refused, by Kafka error name");
    describe_counter!(PRODUCERS_EXPIRED, "Idle producers forgotten by partitions after producer.id.expiration.ms");
    describe_counter!(
        PRODUCE_DUPLICATES,
        "Retried idempotent batches answered with their original offsets instead of being written again"
    );
    describe_gauge!(FETCH_WAITING, "Fetch requests waiting for data (long poll)");
    describe_gauge!(PRODUCE_WAITING, "Produce requests waiting for an fsync before acks=all is answered");
    // Group coordinator.
    describe_gauge!(crate::group::GROUPS, "Consumer groups, by state");
    describe_gauge!(crate::group::GROUP_MEMBERS, "Members of all consumer groups");
    describe_counter!(
        crate::group::GROUP_REBALANCES,
        "Rebalances completed (classic join phases ended, consumer-protocol target assignments computed)"
    );
    describe_counter!(crate::group::OFFSET_COMMITS, "Partition offsets committed");
    describe_gauge!(
        crate::group::GROUP_LAG,
        "Records between a group's committed offset and the partition's high watermark"
    );
    describe_gauge!(crate::txn::TRANSACTIONS_OPEN, "Transactions open or being completed");
    describe_gauge!(crate::txn::TRANSACTIONAL_IDS, "Transactional ids the coordinator knows");
    describe_counter!(crate::txn::TRANSACTIONS_ENDED, "Transactions ended, by result (commit, abort)");
    describe_counter!(crate::txn::TRANSACTION_TIMEOUTS, "Transactions aborted by the coordinator after their timeout");
    describe_gauge!(LOG_SIZE, Unit::Bytes, "Size of a partition's log");
    describe_gauge!(LOG_END_OFFSET, "A partition's log end offset");
    describe_gauge!(LOG_START_OFFSET, "A partition's log start offset");
    describe_gauge!(HIGH_WATERMARK, "A partition's high watermark");
    describe_counter!(FLUSH_ROUNDS, "Group-commit rounds run by the flusher");
    describe_counter!(FLUSH_REQUESTS, "Flush requests made to the flusher");
    describe_counter!(FSYNCS, "fdatasync calls made by the flusher");
    describe_histogram!(runnel_log::FLUSH_DURATION, Unit::Seconds, "Time to fsync one log's unflushed data");
    describe_histogram!(runnel_log::FLUSH_ROUND_LOGS, "Logs flushed together in one group-commit round");
    describe_counter!(
        RETENTION_SEGMENTS,
        "Segments removed by retention, by reason (retention.ms, retention.bytes, log start offset)"
    );
    describe_counter!(RETENTION_BYTES, Unit::Bytes, "Log bytes removed by retention");
    describe_counter!(CLEANER_RUNS, "Logs compacted by the log cleaner");
    describe_counter!(CLEANER_BYTES_READ, Unit::Bytes, "Segment bytes read by the log cleaner");
    describe_counter!(CLEANER_BYTES_WRITTEN, Unit::Bytes, "Cleaned segment bytes written by the log cleaner");
    describe_counter!(CLEANER_RECORDS_REMOVED, "Superseded records and expired tombstones removed by the log cleaner");
    describe_gauge!(
        CLEANER_THROTTLED_SECONDS,
        Unit::Seconds,
        "Time the log cleaner has slept to keep to log.cleaner.io.max.bytes.per.second, since start"
    );
    describe_counter!(METADATA_SNAPSHOTS, "Metadata log snapshots written");
    describe_counter!(CONFIG_CHANGES, "Topic and broker config changes applied, by resource type");
    describe_counter!(SCRAM_CREDENTIAL_CHANGES, "SCRAM credentials set or deleted, by operation (upsert, delete)");
    describe_counter!(
        QUOTA_RECORDED,
        "Amounts measured against client quotas, by quota: produce and fetch in bytes, request in percent-seconds of handling time"
    );
    describe_counter!(QUOTA_THROTTLED, "Responses throttled for a client quota, by quota (produce, fetch, request)");
    describe_counter!(
        QUOTA_THROTTLE_TIME,
        Unit::Milliseconds,
        "Throttle time given to clients over their quotas, by quota (produce, fetch, request)"
    );
    describe_counter!(
        CONNECTIONS_THROTTLED,
        "New connections delayed (scope=broker, max.connection.creation.rate) or closed (scope=ip, connection_creation_rate)"
    );
    describe_gauge!(
        QUOTA_SENSORS,
        "Client quota rates kept (one per shared quota and type, and per IP with a connection rate quota)"
    );
    describe_counter!(
        crate::authz::AUTHORIZATION_DENIED,
        "Actions the authorizer denied, by operation and resource type"
    );
    describe_gauge!(PROCESS_RSS, Unit::Bytes, "Resident memory of the broker process");
    describe_counter!(PROCESS_CPU, Unit::Seconds, "User and system CPU time of the broker process");
}

/// Per-topic data-path counters, registered once and shared by the topic's partitions.
#[derive(Clone)]
pub struct TopicCounters {
    pub bytes_in: Counter,
    pub records_in: Counter,
    pub bytes_out: Counter,
    pub records_out: Counter,
}

impl TopicCounters {
    pub fn new(topic: &str) -> TopicCounters {
        let label = topic.to_string();
        TopicCounters {
            bytes_in: counter!(BYTES_IN, "topic" => label.clone()),
            records_in: counter!(RECORDS_IN, "topic" => label.clone()),
            bytes_out: counter!(BYTES_OUT, "topic" => label.clone()),
            records_out: counter!(RECORDS_OUT, "topic" => label),
        }
    }
}

/// Counts one metadata snapshot.
pub fn metadata_snapshot_written() {
    counter!(METADATA_SNAPSHOTS).increment(1);
}

/// Counts one applied config change of `resource` ("topic" or "broker").
pub fn config_changed(resource: &'static str) {
    counter!(CONFIG_CHANGES, "resource" => resource).increment(1);
}

/// Counts one SCRAM credential change, `operation` "upsert" or "delete".
pub fn scram_credentials_changed(operation: &'static str) {
    counter!(SCRAM_CREDENTIAL_CHANGES, "operation" => operation).increment(1);
}

/// Counts an amount measured against a client quota and the throttle it gave.
pub fn quota_recorded(quota: &'static str, value: f64, throttle_ms: u64) {
    counter!(QUOTA_RECORDED, "quota" => quota).increment(value.max(0.0) as u64);
    if throttle_ms > 0 {
        counter!(QUOTA_THROTTLED, "quota" => quota).increment(1);
        counter!(QUOTA_THROTTLE_TIME, "quota" => quota).increment(throttle_ms);
    }
}

/// A stable label for an API key.
pub fn api_name(api: ApiKey) -> &'static str {
    match api {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        // Admin APIs.
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::DeleteRecords => "DeleteRecords",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::DescribeLogDirs => "DescribeLogDirs",
        ApiKey::ElectLeaders => "ElectLeaders",
        ApiKey::DescribeTopicPartitions => "DescribeTopicPartitions",
        ApiKey::DescribeUserScramCredentials => "DescribeUserScramCredentials",
        ApiKey::AlterUserScramCredentials => "AlterUserScramCredentials",
        ApiKey::DescribeClientQuotas => "DescribeClientQuotas",
        ApiKey::AlterClientQuotas => "AlterClientQuotas",
        ApiKey::CreateAcls => "CreateAcls",
        ApiKey::DescribeAcls => "DescribeAcls",
        ApiKey::DeleteAcls => "DeleteAcls",
        // Group coordinator.
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::OffsetDelete => "OffsetDelete",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        // Transaction coordinator.
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::AddPartitionsToTxn => "AddPartitionsToTxn",
        ApiKey::AddOffsetsToTxn => "AddOffsetsToTxn",
        ApiKey::EndTxn => "EndTxn",
        ApiKey::WriteTxnMarkers => "WriteTxnMarkers",
        ApiKey::TxnOffsetCommit => "TxnOffsetCommit",
        ApiKey::DescribeProducers => "DescribeProducers",
        ApiKey::DescribeTransactions => "DescribeTransactions",
        ApiKey::ListTransactions => "ListTransactions",
        _ => "Other",
    }
}

/// Sets the scrape-time gauges from the broker's current state, then renders.
pub fn render(handle: &PrometheusHandle, broker: Option<&Broker>) -> String {
    if let Some(broker) = broker {
        for topic in broker.topics() {
            for p in &topic.partitions {
                let labels = [("topic", topic.meta.name.clone()), ("partition", p.index.to_string())];
                gauge!(LOG_SIZE, &labels).set(p.log.size_bytes() as f64);
                gauge!(LOG_END_OFFSET, &labels).set(p.log.log_end_offset() as f64);
                gauge!(LOG_START_OFFSET, &labels).set(p.log.log_start_offset() as f64);
                gauge!(HIGH_WATERMARK, &labels).set(p.high_watermark() as f64);
            }
        }
        broker.groups.record_metrics(broker);
        broker.txns.record_metrics();
        gauge!(QUOTA_SENSORS).set(broker.quotas.sensor_count() as f64);
        let stats = broker.logs.flusher().stats();
        counter!(FLUSH_ROUNDS).absolute(stats.rounds);
        counter!(FLUSH_REQUESTS).absolute(stats.requests);
        counter!(FSYNCS).absolute(stats.fsyncs);
    }
    if let Some((rss, cpu)) = process_usage() {
        gauge!(PROCESS_RSS).set(rss as f64);
        counter!(PROCESS_CPU).absolute(cpu);
    }
    handle.render()
}

/// Resident bytes and whole CPU seconds of this process, from /proc.
fn process_usage() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: u64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th fields overall.
    let after_comm = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions; _SC_CLK_TCK is a valid name.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100).max(1);
    Some((rss_kib * 1024, ticks / hz))
}
