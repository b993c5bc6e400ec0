//! `runnel produce`: writes records read line by line from stdin or a file.
//!
//! A line is a value, or key and value split at `--key-separator`, or with
//! `--format json` an object with key, value, headers, partition and
//! timestamp. Records go out through one librdkafka producer with
//! idempotence off (Runnel does not serve InitProducerId yet); the command
//! waits for every acknowledgement and exits non-zero if any record failed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use serde::Deserialize;

use super::template::{base64_decode, ENCODING_BASE64, ENCODING_UTF8};
use super::{existing_topic_partitions, Acks, Compression, ConnectArgs};

/// How long librdkafka may try to deliver one record before reporting failure
/// (librdkafka: message.timeout.ms; its own default is 300 s).
const MESSAGE_TIMEOUT_MS: u64 = 30_000;
/// How long the final flush may wait for outstanding acknowledgements.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(MESSAGE_TIMEOUT_MS + 30_000);
/// How long to wait before retrying a send that found the local queue full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);

/// Write records to a topic, one per input line.
///
/// Reads stdin (or --file) line by line; each line, without its newline, is
/// one record's value. With --key-separator the line is split at the first
/// separator into key and value (a line without it has no key). With
/// --format json each line is an object:
///   {"key": "k", "value": "v", "headers": {"h": "1"}, "partition": 0}
/// where every field may be left out and key, value and header values may be
/// null; "timestamp" (ms) sets the record timestamp, and "encoding": "base64"
/// marks key, value and header values as base64, as `runnel consume --format
/// json` writes them for bytes that are not UTF-8. Blank lines are skipped in
/// JSON mode.
///
/// Prints how many records were acknowledged on stderr; exits non-zero when
/// any record failed or a line could not be read.
///
/// Examples:
///   printf 'alice:hello\nbob:world\n' | runnel produce orders --key-separator :
///   runnel produce orders --file events.txt --header source=import --compression zstd
///   echo '{"key":"k1","value":"v1","headers":{"a":"1"}}' | runnel produce orders --format json
#[derive(Args, Debug)]
#[command(verbatim_doc_comment, about = "Write records to a topic, one per input line")]
pub struct ProduceArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Topic to write to; it must exist.
    topic: String,
    /// Read records from this file instead of stdin.
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// Input format: one value (or key, separator, value) per line, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = InputFormat::Lines)]
    format: InputFormat,
    /// Split each line into key and value at the first occurrence of SEP.
    #[arg(long, short = 'K', value_name = "SEP", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    key_separator: Option<String>,
    /// A header added to every record; repeatable. Example: --header source=cli
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE", value_parser = super::parse_property)]
    headers: Vec<(String, String)>,
    /// Write every record to this partition (default: by key hash, or spread when there is no key).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    /// Acknowledgements to wait for: 0 (none), 1 (leader append) or all.
    #[arg(long, value_enum, default_value_t = Acks::All)]
    acks: Acks,
    /// Compression codec for record batches.
    #[arg(long, value_enum, default_value_t = Compression::None)]
    compression: Compression,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum InputFormat {
    Lines,
    Json,
}

/// One record parsed from an input line, before it is handed to librdkafka.
#[derive(Debug, Default, PartialEq, Eq)]
struct InputRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    partition: Option<i32>,
    timestamp_ms: Option<i64>,
}

/// The JSON input form of a record; unknown fields (such as the topic and
/// offset that `runnel consume --format json` prints) are ignored.
#[derive(Deserialize)]
struct JsonInput {
    key: Option<String>,
    value: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Option<String>>,
    partition: Option<i32>,
    timestamp: Option<i64>,
    encoding: Option<String>,
}

/// Counts acknowledgements and failures as librdkafka reports them.
#[derive(Default)]
struct DeliveryCounter {
    acknowledged: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self.first_error.lock().expect("first error lock");
                first.get_or_insert_with(|| format!("partition {}: {error}", rdkafka::Message::partition(message)));
            }
        }
    }
}

/// Runs `runnel produce`.
pub fn run(mut args: ProduceArgs) -> anyhow::Result<()> {
    args.connect.resolve()?;
    let consumer = args.connect.consumer(&[("client.id", "runnel-produce".to_string())])?;
    args.connect.check_reachable(&consumer)?;
    let partitions = existing_topic_partitions(&consumer, &args.topic)?;
    if let Some(p) = args.partition.filter(|p| !partitions.contains(p)) {
        bail!("topic {} has no partition {p} (it has {})", args.topic, partitions.len());
    }
    drop(consumer);
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => {
            Box::new(BufReader::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?))
        }
        None => Box::new(std::io::stdin().lock()),
    };
    let producer: ThreadedProducer<DeliveryCounter> = args
        .connect
        .client_config(&[
            ("client.id", "runnel-produce".to_string()),
            ("enable.idempotence", "false".to_string()),
            ("acks", args.acks.as_str().to_string()),
            ("compression.codec", args.compression.as_str().to_string()),
            ("message.timeout.ms", MESSAGE_TIMEOUT_MS.to_string()),
            // Keys land on the partitions the Java client would pick.
            ("partitioner", "murmur2_random".to_string()),
        ])
        .create_with_context(DeliveryCounter::default())
        .context("cannot create the producer")?;

    let (sent, read_error) = match send_all(&args, &producer, &partitions, input) {
        Ok(sent) => (sent, None),
        Err((sent, e)) => (sent, Some(e)),
    };
    let flushed = producer.flush(FLUSH_TIMEOUT);
    let counter = producer.context();
    let acknowledged = counter.acknowledged.load(Ordering::Relaxed);
    let failed = counter.failed.load(Ordering::Relaxed);
    if let Some(e) = read_error {
        bail!("{e:#} ({acknowledged} earlier records acknowledged)");
    }
    if let Err(e) = flushed {
        bail!(
            "{acknowledged} of {sent} records acknowledged; the rest were not within {} s: {e}",
            FLUSH_TIMEOUT.as_secs()
        );
    }
    if failed > 0 {
        let first = counter.first_error.lock().expect("first error lock").clone().unwrap_or_default();
        bail!("{acknowledged} of {sent} records acknowledged, {failed} failed; first error: {first}");
    }
    let noun = if acknowledged == 1 { "record" } else { "records" };
    eprintln!("acknowledged {acknowledged} {noun} on topic {}", args.topic);
    Ok(())
}

/// Reads every line and hands its record to the producer. Returns how many
/// records were sent, or the count so far and the error that stopped it.
fn send_all(
    args: &ProduceArgs,
    producer: &ThreadedProducer<DeliveryCounter>,
    partitions: &[i32],
    mut input: Box<dyn BufRead>,
) -> Result<u64, (u64, anyhow::Error)> {
    let mut sent = 0u64;
    let mut line = Vec::new();
    for line_number in 1.. {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err((sent, anyhow::Error::new(e).context("cannot read input"))),
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let record = match parse_line(args, &line) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(e) => return Err((sent, e.context(format!("input line {line_number}")))),
        };
        if let Some(p) = record.partition.filter(|p| !partitions.contains(p)) {
            let e = anyhow::anyhow!("input line {line_number}: topic {} has no partition {p}", args.topic);
            return Err((sent, e));
        }
        send(producer, &args.topic, &record).map_err(|e| (sent, e))?;
        sent += 1;
    }
    Ok(sent)
}

/// One line as a record; `None` for a line JSON mode skips.
fn parse_line(args: &ProduceArgs, line: &[u8]) -> anyhow::Result<Option<InputRecord>> {
    let mut record = match args.format {
        InputFormat::Lines => split_key(line, args.key_separator.as_deref()),
        InputFormat::Json if line.iter().all(u8::is_ascii_whitespace) => return Ok(None),
        InputFormat::Json => parse_json(line)?,
    };
    let flag_headers = args.headers.iter().map(|(k, v)| (k.clone(), Some(v.clone().into_bytes())));
    record.headers.splice(0..0, flag_headers);
    if record.partition.is_none() {
        record.partition = args.partition;
    }
    Ok(Some(record))
}

/// Splits a line at the first `separator` into key and value; without a
/// separator, or when the line lacks it, the whole line is the value.
fn split_key(line: &[u8], separator: Option<&str>) -> InputRecord {
    let split = separator.and_then(|sep| {
        let sep = sep.as_bytes();
        line.windows(sep.len()).position(|w| w == sep).map(|at| (&line[..at], &line[at + sep.len()..]))
    });
    match split {
        Some((key, value)) => {
            InputRecord { key: Some(key.to_vec()), value: Some(value.to_vec()), ..Default::default() }
        }
        None => InputRecord { value: Some(line.to_vec()), ..Default::default() },
    }
}

fn parse_json(line: &[u8]) -> anyhow::Result<InputRecord> {
    let input: JsonInput = serde_json::from_slice(line).context("invalid JSON record")?;
    let base64 = match input.encoding.as_deref() {
        None | Some(ENCODING_UTF8) => false,
        Some(ENCODING_BASE64) => true,
        Some(other) => bail!("unknown encoding {other:?} (expected {ENCODING_UTF8:?} or {ENCODING_BASE64:?})"),
    };
    let bytes = |text: String| -> anyhow::Result<Vec<u8>> {
        if base64 {
            base64_decode(&text)
        } else {
            Ok(text.into_bytes())
        }
    };
    let mut headers = Vec::with_capacity(input.headers.len());
    for (key, value) in input.headers {
        headers.push((key, value.map(bytes).transpose()?));
    }
    Ok(InputRecord {
        key: input.key.map(bytes).transpose()?,
        value: input.value.map(bytes).transpose()?,
        headers,
        partition: input.partition,
        timestamp_ms: input.timestamp,
    })
}

/// Hands one record to librdkafka, waiting while its local queue is full.
fn send(producer: &ThreadedProducer<DeliveryCounter>, topic: &str, record: &InputRecord) -> anyhow::Result<()> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in &record.headers {
        headers = headers.insert(Header { key, value: value.as_deref() });
    }
    let mut base: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(headers);
    if let Some(key) = &record.key {
        base = base.key(key.as_slice());
    }
    if let Some(value) = &record.value {
        base = base.payload(value.as_slice());
    }
    if let Some(p) = record.partition {
        base = base.partition(p);
    }
    if let Some(ts) = record.timestamp_ms {
        base = base.timestamp(ts);
    }
    loop {
        match producer.send(base) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                base = returned;
                std::thread::sleep(QUEUE_FULL_BACKOFF);
            }
            Err((e, _)) => bail!("cannot send a record: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_splits_at_the_first_separator_only() {
        let r = split_key(b"k::v::w", Some("::"));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v::w"[..]));
        let r = split_key(b"no separator", Some(":"));
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"no separator"[..])));
        let r = split_key(b"a:b", None);
        assert_eq!((r.key, r.value.as_deref()), (None, Some(&b"a:b"[..])));
    }

    #[test]
    fn json_input_reads_nulls_headers_and_base64() {
        let r =
            parse_json(br#"{"key":null,"value":"v","headers":{"a":"1","b":null},"partition":2,"offset":9}"#).unwrap();
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(r.headers, vec![("a".to_string(), Some(b"1".to_vec())), ("b".to_string(), None)]);
        assert_eq!(r.partition, Some(2));
        let r = parse_json(br#"{"encoding":"base64","value":"/wA=","timestamp":5}"#).unwrap();
        assert_eq!(r.value, Some(vec![0xff, 0x00]));
        assert_eq!(r.timestamp_ms, Some(5));
        assert!(parse_json(br#"{"encoding":"hex","value":"00"}"#).is_err());
        assert!(parse_json(b"not json").is_err());
    }
}
