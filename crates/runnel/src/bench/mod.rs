//! `runnel bench`: a load generator that drives any Kafka-compatible broker
//! (Runnel first of all) through librdkafka, the client most applications use,
//! so the numbers it prints are the numbers a real client sees.
//!
//! This module holds the command-line surface and what the three workloads
//! share: client configuration, the reachability check and topic creation.
//! The workloads live in `produce`, `consume` and `e2e`; counting, latency
//! histograms, the progress bar and the summary live in `report`.

mod consume;
mod e2e;
mod produce;
mod report;

use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

/// How long the first metadata request may take before the broker counts as
/// unreachable.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long creating the topic and seeing it in metadata may take.
const TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(15);

const BENCH_ABOUT: &str = "Generate load against a Kafka-compatible broker and measure it";

const BENCH_LONG_ABOUT: &str = "\
Generate load against a Kafka-compatible broker and measure it.

All workloads use librdkafka, the C client under most Kafka clients, so they
measure what an application would see. Each prints a live progress bar on
stderr (when stderr is a terminal and --quiet is not given) and a summary on
stdout: records, bytes, elapsed time, records/s, MB/s (MB = 10^6 bytes),
errors and, where they apply, latency percentiles from an HDR histogram.
--json prints the summary as one JSON object instead.

The command exits non-zero with one line on stderr when the broker cannot be
reached within 5 s or when any record failed.

Any librdkafka client property can be passed with -X KEY=VALUE; it is applied
last, so it overrides the values the flags below set.";

const BENCH_AFTER_HELP: &str = "\
Examples:
  # 1 KiB records for 20 s with acks=all against a local broker
  runnel bench produce --topic load --duration 20

  # read that topic back from the beginning until the end is reached
  runnel bench consume --topic load --until-end

  # end-to-end latency at 2000 records/s for 30 s, as JSON
  runnel bench e2e --rate 2000 --duration 30 --json";

/// Arguments of `runnel bench`.
#[derive(Args, Debug)]
#[command(about = BENCH_ABOUT, long_about = BENCH_LONG_ABOUT, after_help = BENCH_AFTER_HELP)]
pub struct BenchArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(subcommand)]
    workload: Workload,
}

/// Flags every workload takes; they may stand before or after the workload name.
#[derive(Args, Debug, Clone)]
struct CommonArgs {
    /// Bootstrap brokers, comma-separated (librdkafka: bootstrap.servers).
    #[arg(long, global = true, env = "RUNNEL_BROKERS", default_value = "127.0.0.1:9092", value_name = "HOST:PORT,...")]
    brokers: String,
    /// A librdkafka client property, applied after all other settings; repeatable.
    /// Example: -X socket.send.buffer.bytes=1048576
    #[arg(short = 'X', global = true, value_name = "KEY=VALUE", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// Print the summary as one JSON object on stdout, for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// Do not draw the progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Workload {
    Produce(produce::ProduceArgs),
    Consume(consume::ConsumeArgs),
    E2e(e2e::E2eArgs),
}

/// Producer settings shared by `produce` and `e2e`.
#[derive(Args, Debug, Clone)]
struct ProducerTuning {
    /// Acknowledgements the producer asks for: 0 (none), 1 (leader append) or
    /// all (every in-sync replica; on Runnel also the configured flush).
    #[arg(long, value_enum, default_value_t = Acks::All)]
    acks: Acks,
    /// Compression codec for record batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
    /// Upper bound of one record batch in bytes (librdkafka: batch.size; its default is 1000000).
    #[arg(long, value_name = "BYTES")]
    batch_size: Option<u64>,
    /// Partitions of the topic when the benchmark creates it; an existing topic is used as it is.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Acks {
    #[value(name = "0")]
    None,
    #[value(name = "1")]
    Leader,
    #[value(name = "all", alias = "-1")]
    All,
}

impl Acks {
    fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// Runs `runnel bench`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.workload {
        Workload::Produce(w) => produce::run(&args.common, &w),
        Workload::Consume(w) => consume::run(&args.common, &w),
        Workload::E2e(w) => e2e::run(&args.common, &w),
    }
}

impl CommonArgs {
    /// A client configuration with the bootstrap brokers, then `settings`,
    /// then the user's `-X` properties, so the user has the last word.
    fn client_config(&self, settings: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in settings {
            config.set(*key, value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// A consumer used for metadata and watermark look-ups and for reading.
    /// It never joins a group: Runnel does not implement the group protocol
    /// yet, so partitions are assigned by hand and offsets are never committed.
    fn consumer(&self, settings: &[(&str, String)]) -> anyhow::Result<BaseConsumer> {
        let mut all = vec![
            ("group.id", "runnel-bench-unused".to_string()),
            ("enable.auto.commit", "false".to_string()),
            ("enable.auto.offset.store", "false".to_string()),
        ];
        all.extend(settings.iter().cloned());
        self.client_config(&all).create().context("cannot create the consumer")
    }
}

/// Fetches cluster metadata once, so a wrong address fails fast with one line
/// instead of a producer retrying until its message timeout.
fn check_reachable(consumer: &BaseConsumer, brokers: &str) -> anyhow::Result<()> {
    match consumer.fetch_metadata(None, REACH_TIMEOUT) {
        Ok(_) => Ok(()),
        Err(e) => bail!("cannot reach broker at {brokers} within {} s: {e}", REACH_TIMEOUT.as_secs()),
    }
}

/// The partition ids of `topic`, or `None` when the broker does not know it.
fn topic_partitions(consumer: &BaseConsumer, topic: &str) -> anyhow::Result<Option<Vec<i32>>> {
    let metadata = consumer.fetch_metadata(Some(topic), REACH_TIMEOUT).context("metadata request failed")?;
    let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(None) };
    if t.error().is_some() || t.partitions().is_empty() {
        return Ok(None);
    }
    // A partition without a leader cannot take writes yet.
    if t.partitions().iter().any(|p| p.leader() < 0) {
        return Ok(None);
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(Some(ids))
}

/// Creates `topic` with `partitions` partitions unless it exists, then waits
/// until metadata shows it with a leader for every partition. Returns the
/// partition ids. An existing topic keeps its partition count.
fn ensure_topic(
    common: &CommonArgs,
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<i32>> {
    if let Some(ids) = topic_partitions(consumer, topic)? {
        return Ok(ids);
    }
    let admin: AdminClient<DefaultClientContext> =
        common.client_config(&[]).create().context("cannot create the admin client")?;
    let opts =
        AdminOptions::new().request_timeout(Some(TOPIC_READY_TIMEOUT)).operation_timeout(Some(TOPIC_READY_TIMEOUT));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let results = runtime
        .block_on(admin.create_topics([&new_topic], &opts))
        .with_context(|| format!("cannot create topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("cannot create topic {name}: {code}"),
        }
    }
    let deadline = std::time::Instant::now() + TOPIC_READY_TIMEOUT;
    loop {
        if let Some(ids) = topic_partitions(consumer, topic)? {
            return Ok(ids);
        }
        if std::time::Instant::now() > deadline {
            bail!("topic {topic} was created but has no leader after {} s", TOPIC_READY_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// How a run ends: after a number of records or after a span of time.
#[derive(Clone, Copy, Debug)]
enum Limit {
    Count(u64),
    Duration(Duration),
}

impl Limit {
    fn from_args(count: Option<u64>, duration_s: Option<f64>, default: Limit) -> anyhow::Result<Limit> {
        match (count, duration_s) {
            (Some(n), _) => Ok(Limit::Count(n)),
            (None, Some(s)) if s.is_finite() && s > 0.0 => Ok(Limit::Duration(Duration::from_secs_f64(s))),
            (None, Some(s)) => bail!("--duration must be a positive number of seconds, got {s}"),
            (None, None) => Ok(default),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    #[test]
    fn parses_properties_and_global_flags_after_the_workload() {
        let cli = Cli::try_parse_from([
            "bench",
            "produce",
            "--brokers",
            "h:1",
            "-X",
            "linger.ms=7",
            "-X",
            "client.id=a=b",
            "--acks",
            "1",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.bench.common.brokers, "h:1");
        assert!(cli.bench.common.json);
        assert_eq!(
            cli.bench.common.properties,
            vec![("linger.ms".to_string(), "7".to_string()), ("client.id".to_string(), "a=b".to_string())]
        );
        let Workload::Produce(p) = cli.bench.workload else { panic!("produce expected") };
        assert_eq!(p.tuning.acks, Acks::Leader);
        assert_eq!(p.record_size, 1024);
    }

    #[test]
    fn rejects_a_property_without_value_and_count_with_duration() {
        assert!(Cli::try_parse_from(["bench", "produce", "-X", "linger.ms"]).is_err());
        assert!(Cli::try_parse_from(["bench", "produce", "--count", "1", "--duration", "2"]).is_err());
    }

    #[test]
    fn later_settings_override_earlier_ones() {
        let common = CommonArgs {
            brokers: "b:1".into(),
            properties: vec![("linger.ms".into(), "9".into())],
            json: false,
            quiet: true,
        };
        let config = common.client_config(&[("linger.ms", "5".into())]);
        assert_eq!(config.get("linger.ms"), Some("9"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:1"));
    }
}
