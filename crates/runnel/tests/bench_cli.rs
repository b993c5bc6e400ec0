//! `runnel bench` against the real broker binary: the produce, consume and
//! e2e workloads report what they did as JSON, and an unreachable broker
//! fails fast with one line.

mod common;

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::BrokerProcess;
use serde_json::Value;

/// How long one bench command may run before the test gives up on it.
const BENCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `runnel bench ARGS --quiet` and returns its output; kills it when it
/// outlives `BENCH_TIMEOUT`.
fn bench(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .arg("bench")
        .args(args)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runnel bench");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).map(|_| buf)
    });
    let deadline = Instant::now() + BENCH_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for runnel bench") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("kill runnel bench");
            child.wait().expect("reap runnel bench");
            panic!("runnel bench {args:?} ran longer than {BENCH_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out_reader.join().expect("stdout reader").expect("read stdout");
    let stderr = err_reader.join().expect("stderr reader").expect("read stderr");
    Output { status, stdout, stderr }
}

/// The JSON summary of a successful run.
fn summary(args: &[&str]) -> Value {
    let out = bench(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "runnel bench {args:?} failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert_eq!(stdout.lines().count(), 1, "--json prints one line: {stdout}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}"))
}

fn u64_field(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// Asserts a latency object is present, positive and ordered.
fn assert_latency(v: &Value, key: &str, samples: u64) {
    let l = &v[key];
    let get = |p: &str| l[p].as_f64().unwrap_or_else(|| panic!("{key}.{p} missing in {v}"));
    let (p50, p90, p99, p999, max) = (get("p50"), get("p90"), get("p99"), get("p999"), get("max"));
    assert!(p50 > 0.0, "{key}: {l}");
    assert!(p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max, "{key} percentiles out of order: {l}");
    assert_eq!(l["count"].as_u64(), Some(samples), "{key}: samples: {l}");
}

/// Goal: the three workloads count exactly what they moved and report sane
/// latencies. Method: produce 20,000 1 KiB records, read them back by count
/// and to the end of the topic, then run e2e at 500 records/s for 3 s; parse
/// each JSON summary.
#[test]
fn produce_consume_and_e2e_report_counts_and_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let addr = broker.addr.as_str();

    let produced = summary(&[
        "produce",
        "--brokers",
        addr,
        "--topic",
        "bench-cli",
        "--partitions",
        "3",
        "--count",
        "20000",
        "--json",
    ]);
    assert_eq!(produced["workload"], "produce");
    assert_eq!(u64_field(&produced, "records"), 20_000, "{produced}");
    assert_eq!(u64_field(&produced, "bytes"), 20_000 * 1024, "{produced}");
    assert_eq!(u64_field(&produced, "errors"), 0, "{produced}");
    assert_eq!(u64_field(&produced, "partitions"), 3, "{produced}");
    assert!(produced["records_per_s"].as_f64().unwrap() > 0.0, "{produced}");
    // Sending as fast as it can, produce records the latency of one record in 8.
    assert_eq!(u64_field(&produced, "ack_latency_sample_every"), 8, "{produced}");
    assert_latency(&produced, "ack_latency_ms", 20_000 / 8);

    let consumed = summary(&["consume", "--brokers", addr, "--topic", "bench-cli", "--count", "20000", "--json"]);
    assert_eq!(u64_field(&consumed, "records"), 20_000, "{consumed}");
    assert_eq!(u64_field(&consumed, "bytes"), 20_000 * 1024, "{consumed}");
    assert_eq!(u64_field(&consumed, "errors"), 0, "{consumed}");

    let to_end = summary(&["consume", "--brokers", addr, "--topic", "bench-cli", "--until-end", "--json"]);
    assert_eq!(u64_field(&to_end, "records"), 20_000, "reads every partition to its end: {to_end}");

    let e2e = summary(&["e2e", "--brokers", addr, "--duration", "3", "--rate", "500", "--json"]);
    let records = u64_field(&e2e, "records");
    assert!((1_400..=1_501).contains(&records), "about 3 s x 500/s records: {e2e}");
    assert_eq!(u64_field(&e2e, "missing"), 0, "{e2e}");
    assert_eq!(u64_field(&e2e, "errors"), 0, "{e2e}");
    assert_latency(&e2e, "e2e_latency_ms", records);
    assert_latency(&e2e, "ack_latency_ms", records);
    assert!(e2e.get("ack_latency_sample_every").is_none(), "a paced run measures every record: {e2e}");
}

/// Goal: the producer's other modes still count exactly and deliver what
/// they count. Method: two transactional, compressed producers send 5,000
/// keyed records in transactions of 1,000; then a paced run sends 600 records
/// at 1,000/s; read the topic to its end and compare the counts, the number
/// of committed transactions and the latency samples.
#[test]
fn transactional_keyed_and_paced_produce_deliver_what_they_count() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let addr = broker.addr.as_str();

    let txn = summary(&[
        "produce",
        "--brokers",
        addr,
        "--topic",
        "bench-modes",
        "--partitions",
        "2",
        "--count",
        "5000",
        "--producers",
        "2",
        "--keys",
        "100",
        "--compression",
        "lz4",
        "--transactional-id",
        "bench-cli",
        "--txn-records",
        "1000",
        "--json",
    ]);
    assert_eq!(u64_field(&txn, "records"), 5_000, "{txn}");
    assert_eq!(u64_field(&txn, "bytes"), 5_000 * (1024 + "key-0000000000".len() as u64), "{txn}");
    assert_eq!(u64_field(&txn, "errors"), 0, "{txn}");
    // Each producer sends 2,500 records: transactions of 1,000, 1,000 and 500.
    assert_eq!(u64_field(&txn, "transactions"), 6, "{txn}");
    // Each producer records the 1st, 9th, 17th, ... of its acknowledged records.
    assert_latency(&txn, "ack_latency_ms", 2 * 2_500_u64.div_ceil(8));
    assert!(txn["commit_latency_ms"].is_object(), "{txn}");

    let paced = summary(&[
        "produce",
        "--brokers",
        addr,
        "--topic",
        "bench-modes",
        "--count",
        "600",
        "--rate",
        "1000",
        "--json",
    ]);
    assert_eq!(u64_field(&paced, "records"), 600, "{paced}");
    assert!(paced["elapsed_s"].as_f64().unwrap() >= 0.5, "600 records at 1,000/s take 0.6 s: {paced}");
    assert!(paced.get("ack_latency_sample_every").is_none(), "{paced}");
    assert_latency(&paced, "ack_latency_ms", 600);

    let read = summary(&["consume", "--brokers", addr, "--topic", "bench-modes", "--until-end", "--json"]);
    assert_eq!(u64_field(&read, "records"), 5_600, "every counted record is in the topic: {read}");
    assert_eq!(u64_field(&read, "errors"), 0, "{read}");
}

/// Goal: a wrong address fails fast and plainly. Method: point produce at a
/// port nothing listens on; expect a non-zero exit within seconds and a
/// single `runnel: ...` line on stderr naming the address.
#[test]
fn unreachable_broker_fails_with_one_line() {
    let start = Instant::now();
    let out = bench(&["produce", "--brokers", "127.0.0.1:1", "--count", "10"]);
    assert!(!out.status.success());
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {stderr}");
    assert!(lines[0].starts_with("runnel: ") && lines[0].contains("127.0.0.1:1"), "{stderr}");
    assert!(out.stdout.is_empty(), "no summary for a run that never started");
}
