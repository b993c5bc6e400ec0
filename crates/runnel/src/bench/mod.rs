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
use clap::{Args, Subcommand};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::BaseConsumer;
use rdkafka::types::RDKafkaErrorCode;

use crate::client::ConnectArgs;
pub use crate::client::{topic_partitions, Acks, Compression, REACH_TIMEOUT};
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
    #[command(flatten)]
    connect: ConnectArgs,
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
    /// Idempotent producers (librdkafka: enable.idempotence): each gets a producer id and numbers its
    /// batches, so the broker drops retried duplicates.
    #[arg(long)]
    idempotent: bool,
    /// Send in transactions; producer n uses the transactional id PREFIX-n (implies --idempotent).
    #[arg(long, value_name = "PREFIX")]
    transactional_id: Option<String>,
    /// Records per transaction with --transactional-id; the last one may hold fewer.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    txn_records: u64,
}

/// Runs `runnel bench`.
pub fn run(mut args: BenchArgs) -> anyhow::Result<()> {
    args.common.connect.resolve()?;
    match args.workload {
        Workload::Produce(w) => produce::run(&args.common, &w),
        Workload::Consume(w) => consume::run(&args.common, &w),
        Workload::E2e(w) => e2e::run(&args.common, &w),
    }
}

impl CommonArgs {
    /// See [`ConnectArgs::client_config`].
    fn client_config(&self, settings: &[(&str, String)]) -> ClientConfig {
        self.connect.client_config(settings)
    }

    /// See [`ConnectArgs::consumer`].
    fn consumer(&self, settings: &[(&str, String)]) -> anyhow::Result<BaseConsumer> {
        self.connect.consumer(settings)
    }
}

/// Fetches cluster metadata once, so a wrong address fails fast with one line
/// instead of a producer retrying until its message timeout.
fn check_reachable(consumer: &BaseConsumer, common: &CommonArgs) -> anyhow::Result<()> {
    common.connect.check_reachable(consumer).map(drop)
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
    let admin = common.connect.admin()?;
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
        assert_eq!(cli.bench.common.connect.brokers_flag.as_deref(), Some("h:1"));
        assert!(cli.bench.common.json);
        assert_eq!(
            cli.bench.common.connect.properties,
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
            connect: ConnectArgs::new("b:1", vec![("linger.ms".into(), "9".into())]),
            json: false,
            quiet: true,
        };
        let config = common.client_config(&[("linger.ms", "5".into())]);
        assert_eq!(config.get("linger.ms"), Some("9"));
        assert_eq!(config.get("bootstrap.servers"), Some("b:1"));
    }
}
