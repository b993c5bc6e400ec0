//! `runnel bench consume`: consumer throughput over every partition of a topic.
//!
//! The consumer assigns all partitions by hand, from the log start offset,
//! and never joins a group or commits offsets: Runnel does not implement the
//! group protocol yet, and a benchmark should not depend on stored offsets.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::report::{Counters, Progress, Summary};
use super::{check_reachable, topic_partitions, CommonArgs};

/// How long one poll waits for a record before the loop checks its limits.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Measure consumer throughput, reading a topic from the beginning.
///
/// Reads every partition of the topic from its first offset by manual
/// assignment (no consumer group) and counts records and key+value bytes.
/// Stops at the first of: --count records read, --duration elapsed, or, with
/// --until-end, the end of every partition reached. Without --count or
/// --duration, --until-end is implied. The elapsed time runs from the start
/// to the last record received.
///
/// Examples:
///   runnel bench consume --topic load --until-end
///   runnel bench consume --topic load --count 1000000 --json
///   runnel bench consume --topic load --duration 20 -X fetch.max.bytes=104857600
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct ConsumeArgs {
    /// Topic to read.
    #[arg(long, default_value = "runnel-bench")]
    pub topic: String,
    /// Stop after this many records.
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Stop when the end of every partition is reached (librdkafka: enable.partition.eof).
    #[arg(long)]
    pub until_end: bool,
    /// With --count, fail when no record arrives for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub idle_timeout: f64,
}

/// Why the read loop stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    Count,
    Deadline,
    End,
    Idle,
}

pub fn run(common: &CommonArgs, args: &ConsumeArgs) -> anyhow::Result<()> {
    let deadline = match args.duration {
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => bail!("--duration must be a positive number of seconds, got {s}"),
        None => None,
    };
    let until_end = args.until_end || (args.count.is_none() && deadline.is_none());
    let idle = (args.count.is_some() && deadline.is_none() && args.idle_timeout > 0.0)
        .then(|| Duration::from_secs_f64(args.idle_timeout));
    let consumer = common.consumer(&[
        ("client.id", "runnel-bench".to_string()),
        ("auto.offset.reset", "earliest".to_string()),
        ("enable.partition.eof", until_end.to_string()),
    ])?;
    check_reachable(&consumer, common)?;
    let Some(partitions) = topic_partitions(&consumer, &args.topic)? else {
        bail!("topic {} does not exist or has no leader", args.topic);
    };
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment.add_partition_offset(&args.topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;

    let counters = Counters::default();
    let mut progress = Progress::new("consume", args.count, deadline, common.quiet);
    let start = Instant::now();
    let limits = Limits { count: args.count, deadline: deadline.map(|d| start + d), until_end, idle };
    let (stop, last_record) = read_loop(&consumer, &counters, partitions.len(), &limits, &mut progress);
    progress.finish();

    let elapsed = if counters.records() > 0 { last_record - start } else { start.elapsed() };
    let summary = Summary::new("consume", &args.topic, partitions.len(), &counters, elapsed);
    summary.print(common.json)?;
    if stop == Stop::Idle {
        bail!(
            "no record arrived for {} s; read {} of {} records",
            args.idle_timeout,
            summary.records,
            args.count.unwrap_or_default()
        );
    }
    super::produce::fail_on_errors(&summary)
}

struct Limits {
    count: Option<u64>,
    deadline: Option<Instant>,
    until_end: bool,
    idle: Option<Duration>,
}

/// Polls until a limit is met; returns why it stopped and when the last
/// record arrived.
fn read_loop(
    consumer: &BaseConsumer,
    counters: &Counters,
    partition_count: usize,
    limits: &Limits,
    progress: &mut Progress,
) -> (Stop, Instant) {
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut records = 0u64;
    let mut last_record = Instant::now();
    let mut last_activity = last_record;
    loop {
        if limits.count.is_some_and(|n| records >= n) {
            return (Stop::Count, last_record);
        }
        if limits.until_end && at_end.len() == partition_count {
            return (Stop::End, last_record);
        }
        let now = Instant::now();
        if limits.deadline.is_some_and(|d| now >= d) {
            return (Stop::Deadline, last_record);
        }
        if limits.idle.is_some_and(|idle| now - last_activity >= idle) {
            return (Stop::Idle, last_record);
        }
        match consumer.poll(POLL_TIMEOUT) {
            None => {}
            Some(Ok(message)) => {
                records += 1;
                counters.add(1, (message.payload_len() + message.key_len()) as u64);
                last_record = Instant::now();
                last_activity = last_record;
                // A partition that reported its end has grown since.
                at_end.remove(&message.partition());
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                last_activity = Instant::now();
            }
            Some(Err(error)) => counters.fail(|| error.to_string()),
        }
        progress.update(counters);
    }
}
