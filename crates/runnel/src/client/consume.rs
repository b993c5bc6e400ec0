//! `runnel consume`: prints the records of a topic.
//!
//! Partitions are assigned by hand from a chosen start (beginning, end, an
//! offset, the last N records or a timestamp looked up with ListOffsets), or,
//! with `--group`, the consumer joins that group, starts at its committed
//! offsets and commits what it printed when it stops. It stops after
//! `--count` records, at the end of every partition with `--until-end`, or on
//! SIGINT/SIGTERM, flushing what it has printed.

use std::collections::HashSet;
use std::io::{BufWriter, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::signal::unix::{signal, SignalKind};

use super::template::{write_json, RecordView, Template};
use super::{existing_topic_partitions, ConnectArgs, REACH_TIMEOUT};

/// How long one poll waits before the loop checks for a stop signal.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// Print records of a topic.
///
/// Reads every partition (or one, with --partition) by manual assignment: no
/// consumer group is joined and no offset is committed, unless --group names
/// a group to join: then the group assigns the partitions, each starts at the
/// group's committed offset (or, without one, at --from beginning or end),
/// and the offsets of the printed records are committed on exit.
/// --from picks where each partition starts:
///   beginning     the log start offset
///   end           the high watermark: only records written from now on (default)
///   OFFSET        this offset, e.g. --from 42 (clamped to the partition's
///                 log start offset and high watermark)
///   -N            the last N records, e.g. --from -10
///   @TIMESTAMP    the first record at or after this time (ms since the epoch);
///                 a partition with no such record starts at its end
///
/// --format is a template: %k key, %s value, %p partition, %o offset,
/// %t topic, %h headers (k=v,k2=v2), %T timestamp (ms), %% a percent sign,
/// and the escapes \n \t \r \\. --format json prints one object per record
/// with topic, partition, offset, timestamp, key, value and headers; key,
/// value and header values are UTF-8 text, or base64 when any of them is not
/// valid UTF-8, as the "encoding" field says ("utf-8" or "base64").
///
/// Runs until --count records were printed, until the end of every partition
/// with --until-end, or until Ctrl-C.
///
/// Examples:
///   runnel consume orders --from beginning --until-end
///   runnel consume orders --from -5 --format '%p:%o %k=%s\n'
///   runnel consume orders --partition 0 --from @1700000000000 --count 10 --format json
///   runnel consume orders --group billing --count 100
#[derive(Args, Debug)]
#[command(verbatim_doc_comment, about = "Print records of a topic")]
pub struct ConsumeArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to read.
    topic: String,
    /// Where each partition starts: beginning, end, OFFSET, -N or @TIMESTAMP_MS.
    #[arg(long, short = 'o', default_value = "end", allow_hyphen_values = true, value_parser = parse_start)]
    from: Start,
    /// Read only this partition (default: all).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Stop after printing this many records.
    #[arg(long, short = 'c')]
    count: Option<u64>,
    /// Stop when the end of every partition is reached (librdkafka: enable.partition.eof).
    #[arg(long, short = 'e')]
    until_end: bool,
    /// Output: a template such as '%k=%s\n', or json.
    #[arg(long, short = 'F', default_value = "%s\\n")]
    format: String,
    /// Join this consumer group, start at its committed offsets and commit on exit.
    #[arg(long, short = 'G', conflicts_with = "partition")]
    group: Option<String>,
}

/// Where reading starts in each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    Beginning,
    End,
    Offset(i64),
    Tail(i64),
    Timestamp(i64),
}

fn parse_start(s: &str) -> Result<Start, String> {
    let number = |t: &str| t.parse::<i64>().ok().filter(|n| *n >= 0);
    let start = match s {
        "beginning" => Some(Start::Beginning),
        "end" => Some(Start::End),
        _ if s.starts_with('@') => number(&s[1..]).map(Start::Timestamp),
        _ if s.starts_with('-') => number(&s[1..]).map(Start::Tail),
        _ => number(s).map(Start::Offset),
    };
    start.ok_or_else(|| format!("expected beginning, end, OFFSET, -N or @TIMESTAMP_MS, got `{s}`"))
}

/// How the records are printed.
enum Output {
    Template(Template),
    Json,
}

/// Runs `runnel consume`.
pub fn run(mut args: ConsumeArgs) -> anyhow::Result<()> {
    args.connect.resolve()?;
    let output = if args.format == "json" { Output::Json } else { Output::Template(Template::parse(&args.format)?) };
    let mut settings = vec![
        ("client.id", "runnel-consume".to_string()),
        ("enable.partition.eof", args.until_end.to_string()),
        // Retention may delete records ahead of a slow reader; it then goes
        // on from the new log start offset.
        ("auto.offset.reset", "earliest".to_string()),
    ];
    let consumer = match &args.group {
        None => args.connect.consumer(&settings)?,
        Some(group) => {
            // Without a committed offset a partition starts where --from says.
            let reset = match args.from {
                Start::Beginning => "earliest",
                Start::End => "latest",
                _ => bail!("--group starts at the committed offsets; --from may only be beginning or end"),
            };
            settings[2].1 = reset.to_string();
            args.connect.group_consumer(group, &settings)?
        }
    };
    args.connect.check_reachable(&consumer)?;
    let mut partitions = existing_topic_partitions(&consumer, &args.topic)?;
    if let Some(p) = args.partition {
        if !partitions.contains(&p) {
            bail!("topic {} has no partition {p} (it has {})", args.topic, partitions.len());
        }
        partitions = vec![p];
    }
    if args.group.is_some() {
        consumer.subscribe(&[&args.topic])?;
    } else {
        consumer.assign(&start_positions(&consumer, &args.topic, &partitions, args.from)?)?;
    }

    // The handlers are installed before the first poll, so a Ctrl-C at any
    // later point ends the loop instead of killing the process mid-write.
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let (mut int, mut term) =
        runtime.block_on(async { anyhow::Ok((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?)) })?;
    let flag = stop.clone();
    runtime.spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        flag.store(true, Ordering::Relaxed);
    });

    let stdout = std::io::stdout().lock();
    let mut out = BufWriter::new(stdout);
    let result = read_loop(&consumer, &args, partitions.len(), &output, &mut out, &stop);
    let result = result.and_then(|()| out.flush());
    if let Some(group) = &args.group {
        commit_printed(&consumer, group)?;
        // Leaving now hands the partitions to the other members at once.
        consumer.unsubscribe();
    }
    match result {
        // A closed pipe (`runnel consume ... | head`) is a normal way to stop.
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        // Consumer errors arrive wrapped with their message; anything else
        // is a failed write.
        Err(e) if e.kind() == ErrorKind::Other && e.get_ref().is_some() => Err(anyhow::anyhow!("{e}")),
        Err(e) => Err(anyhow::anyhow!("cannot write output: {e}")),
        Ok(()) => Ok(()),
    }
}

/// Commits the offsets stored for the printed records; nothing printed is not an error.
fn commit_printed(consumer: &BaseConsumer, group: &str) -> anyhow::Result<()> {
    match consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        Err(e) => bail!("cannot commit the offsets of group {group}: {e}"),
    }
}

/// The assignment for `start`; timestamps are resolved to offsets with
/// ListOffsets (librdkafka: offsets_for_times). A partition with no record
/// at or after the timestamp starts at its end.
fn start_positions(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: &[i32],
    start: Start,
) -> anyhow::Result<TopicPartitionList> {
    let offset = match start {
        Start::Beginning => Offset::Beginning,
        Start::End => Offset::End,
        Start::Offset(n) => Offset::Offset(n),
        Start::Tail(n) => Offset::OffsetTail(n),
        Start::Timestamp(ms) => Offset::Offset(ms),
    };
    let mut list = TopicPartitionList::new();
    for &p in partitions {
        let offset = match start {
            // An offset outside the log starts at its nearer edge, so one
            // --from works across partitions of different lengths.
            Start::Offset(n) => {
                let (low, high) = consumer
                    .fetch_watermarks(topic, p, REACH_TIMEOUT)
                    .with_context(|| format!("cannot read the watermarks of {topic}-{p}"))?;
                Offset::Offset(n.clamp(low, high))
            }
            _ => offset,
        };
        list.add_partition_offset(topic, p, offset)?;
    }
    if let Start::Timestamp(ms) = start {
        list = consumer
            .offsets_for_times(list, REACH_TIMEOUT)
            .with_context(|| format!("cannot look up offsets for timestamp {ms}"))?;
        for element in list.elements() {
            if let Err(e) = element.error() {
                bail!("cannot look up the offset for timestamp {ms} in partition {}: {e}", element.partition());
            }
        }
    }
    Ok(list)
}

/// Polls and prints until a limit is met or `stop` is set. Errors carry a
/// one-line message; a broken pipe comes back as `ErrorKind::BrokenPipe`.
fn read_loop(
    consumer: &BaseConsumer,
    args: &ConsumeArgs,
    partition_count: usize,
    output: &Output,
    out: &mut impl Write,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut printed = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) || args.count.is_some_and(|n| printed >= n) {
            return Ok(());
        }
        // A group member reads what the group assigned it.
        let partition_count = match &args.group {
            Some(_) => consumer.assignment().map(|a| a.count()).unwrap_or(0),
            None => partition_count,
        };
        if args.until_end && partition_count > 0 && at_end.len() >= partition_count {
            return Ok(());
        }
        match consumer.poll(POLL_TIMEOUT) {
            None => out.flush()?,
            Some(Ok(message)) => {
                // A partition that reported its end has grown since.
                at_end.remove(&message.partition());
                print(output, out, &message)?;
                printed += 1;
                if args.group.is_some() {
                    consumer.store_offset_from_message(&message).map_err(std::io::Error::other)?;
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                out.flush()?;
            }
            Some(Err(e)) if is_fatal(&e) => return Err(std::io::Error::other(e.to_string())),
            // Transport errors are retried by librdkafka; say so and keep going.
            Some(Err(e)) => eprintln!("runnel: warning: {e}"),
        }
    }
}

/// Errors that retrying will not fix: the topic went away or the client
/// cannot go on.
fn is_fatal(error: &KafkaError) -> bool {
    let code = match error {
        KafkaError::MessageConsumption(code) | KafkaError::MessageConsumptionFatal(code) => *code,
        _ => return false,
    };
    matches!(
        code,
        RDKafkaErrorCode::OffsetOutOfRange
            | RDKafkaErrorCode::AutoOffsetReset
            | RDKafkaErrorCode::UnknownTopicOrPartition
            | RDKafkaErrorCode::UnknownPartition
            | RDKafkaErrorCode::UnknownTopic
            | RDKafkaErrorCode::Fatal
    ) || matches!(error, KafkaError::MessageConsumptionFatal(_))
}

fn print(output: &Output, out: &mut impl Write, message: &BorrowedMessage<'_>) -> std::io::Result<()> {
    let headers =
        message.headers().map(|h| h.iter().map(|header| (header.key, header.value)).collect()).unwrap_or_default();
    let record = RecordView {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis().unwrap_or(-1),
        key: message.key(),
        value: message.payload(),
        headers,
    };
    match output {
        Output::Template(template) => template.write(out, &record),
        Output::Json => write_json(out, &record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_start("beginning"), Ok(Start::Beginning));
        assert_eq!(parse_start("end"), Ok(Start::End));
        assert_eq!(parse_start("42"), Ok(Start::Offset(42)));
        assert_eq!(parse_start("-10"), Ok(Start::Tail(10)));
        assert_eq!(parse_start("@1700000000000"), Ok(Start::Timestamp(1_700_000_000_000)));
        for bad in ["", "start", "@", "@-1", "--1", "1.5"] {
            assert!(parse_start(bad).is_err(), "{bad}");
        }
    }
}
