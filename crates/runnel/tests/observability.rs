//! The HTTP admin endpoint against the real broker: /health, /ready and
//! /metrics, with counters checked against exactly what a test produced and
//! consumed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{read_partition, BrokerProcess};
use rdkafka::producer::FutureRecord;

/// GETs `path` with HTTP/1.0; returns (status code, body).
fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect to the admin endpoint");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: runnel\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// The value of the sample `name{labels}` in a Prometheus text body.
fn sample(body: &str, name_and_labels: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name_and_labels).and_then(|rest| rest.trim().parse().ok()))
}

/// Goal: the endpoint answers health and readiness, and the data-path
/// counters move by exactly what clients did. Method: produce 500 records of
/// 100 bytes to a fresh topic, consume them all, scrape /metrics and compare
/// records in/out, bytes in, offsets, high watermark and request counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_clients_did() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let http = broker.http_addr();
    assert_eq!(get(&http, "/health"), (200, "ok\n".to_string()));
    assert_eq!(get(&http, "/ready").0, 200);
    assert_eq!(get(&http, "/nope").0, 404);

    let producer = broker.producer(&[("linger.ms", "5")]);
    let value = [7u8; 100];
    for _ in 0..500 {
        producer
            .send(FutureRecord::<(), _>::to("metered").payload(&value[..]), Duration::from_secs(10))
            .await
            .expect("delivery");
    }
    let consumer = broker.consumer(&[]);
    assert_eq!(read_partition(&consumer, "metered", 0, 0, 500, Duration::from_secs(30)).len(), 500);

    let (status, body) = get(&http, "/metrics");
    assert_eq!(status, 200);
    let topic = r#"{topic="metered"}"#;
    let partition = r#"{topic="metered",partition="0"}"#;
    assert_eq!(sample(&body, &format!("runnel_topic_records_in_total{topic}")), Some(500.0), "{body}");
    assert_eq!(sample(&body, &format!("runnel_topic_records_out_total{topic}")), Some(500.0), "{body}");
    let bytes_in = sample(&body, &format!("runnel_topic_bytes_in_total{topic}")).expect("bytes in");
    assert!(bytes_in > 500.0 * 100.0, "batches carry the values plus framing: {bytes_in}");
    assert_eq!(sample(&body, &format!("runnel_log_end_offset{partition}")), Some(500.0));
    assert_eq!(sample(&body, &format!("runnel_high_watermark{partition}")), Some(500.0));
    assert!(sample(&body, &format!("runnel_log_size_bytes{partition}")).unwrap() >= bytes_in);
    assert!(sample(&body, r#"runnel_requests_total{api="Produce"}"#).unwrap() >= 1.0);
    assert!(sample(&body, r#"runnel_requests_total{api="Fetch"}"#).unwrap() >= 1.0);
    assert!(body.contains("runnel_request_duration_seconds_bucket{api=\"Produce\""), "latency histogram per API");
    assert!(sample(&body, "runnel_connections").unwrap() >= 1.0, "clients are connected");
    assert!(sample(&body, "runnel_fsyncs_total").unwrap() >= 1.0, "acks=all produce was fsynced");
    assert!(sample(&body, "runnel_log_flush_duration_seconds_count").unwrap() >= 1.0, "fsync latency is recorded");
    assert!(sample(&body, "runnel_flush_round_logs_count").unwrap() >= 1.0, "group-commit round sizes are recorded");
    assert!(sample(&body, "process_resident_memory_bytes").unwrap() > 0.0);
}

/// Goal: during start-up /health answers 200 and /ready 503 until recovery
/// has finished and the Kafka listener accepts clients; then /ready is 200
/// and the data is served. Method: SIGKILL a broker that holds records, then
/// replace its recovery-point checkpoint with a named pipe, so the restarted
/// broker's recovery blocks reading it for as long as the test wants; check
/// both endpoints while it waits, then write the original checkpoint into the
/// pipe and check the broker becomes ready and serves every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_waits_for_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &[]);
    let producer = broker.producer(&[]);
    for i in 0..20 {
        let value = format!("v{i}");
        producer.send(FutureRecord::<(), _>::to("recovering").payload(&value), Duration::from_secs(10)).await.unwrap();
    }
    drop(producer);
    broker.kill9();
    // The restarted broker appends to the same log file; start it afresh so its admin line is the only one.
    std::fs::remove_file(&broker.log_path).unwrap();
    let checkpoint = data.join("recovery-point-offset-checkpoint");
    let saved = std::fs::read(&checkpoint).unwrap_or_default();
    let _ = std::fs::remove_file(&checkpoint);
    let status = std::process::Command::new("mkfifo").arg(&checkpoint).status().expect("mkfifo");
    assert!(status.success());

    let (mut broker, ready) = BrokerProcess::launch(&data, &[]);
    let http = broker.wait_http_addr();
    for _ in 0..5 {
        assert_eq!(get(&http, "/health").0, 200, "alive during recovery");
        assert_eq!(get(&http, "/ready").0, 503, "not ready during recovery");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Opening the pipe for writing unblocks the broker's read; closing it ends the file.
    std::fs::write(&checkpoint, &saved).expect("write the checkpoint into the pipe");
    broker.wait_ready(&ready);
    assert_eq!(get(&http, "/ready").0, 200, "ready once recovery is done");
    let consumer = broker.consumer(&[]);
    assert_eq!(read_partition(&consumer, "recovering", 0, 0, 20, Duration::from_secs(30)).len(), 20);
}

/// Goal: /ready turns 503 as soon as shutdown begins, while /health stays
/// 200. Method: park a raw long-polling fetch (3 s) so shutdown has a request
/// to finish, send SIGTERM, check both endpoints during that window, and
/// check the parked fetch is still answered before the broker exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_off_when_shutdown_begins() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let http = broker.http_addr();
    let producer = broker.producer(&[]);
    producer.send(FutureRecord::<(), _>::to("quiet").payload("x"), Duration::from_secs(10)).await.expect("delivery");
    let addr = broker.addr.clone();
    let parked = std::thread::spawn(move || common::wire::fetch(&addr, "quiet", 1, 3000));
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) on the broker this test started.
    assert_eq!(unsafe { libc::kill(broker.pid(), libc::SIGTERM) }, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&http, "/ready").0, 503, "not ready once shutdown has begun");
    assert_eq!(get(&http, "/health").0, 200, "still alive while finishing requests");
    let answered = parked.join().expect("the parked fetch is answered during shutdown");
    assert_eq!(answered.responses[0].partitions[0].error_code, 0);
    assert_eq!(broker.wait_exit(), Some(0), "a clean exit after finishing the parked fetch");
}

/// Goal: the Grafana dashboard in deploy/ only queries metrics the broker
/// exports. Method: after some traffic (and one bad connection), every
/// `runnel_*` and `process_*` name in the dashboard's queries appears in a
/// scrape, except produce errors, which exist only once a produce fails
/// (labelled by error). A group commits an offset so its lag is scraped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_queries_exported_metrics() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana-dashboard.json");
    let dashboard: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("runnel_") || word.starts_with("process_") {
                    names.insert(word.to_string());
                }
            }
        }
    }
    assert!(names.len() >= 10, "{names:?}");

    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let producer = broker.producer(&[]);
    producer.send(FutureRecord::<(), _>::to("dash").payload("x"), Duration::from_secs(10)).await.expect("delivery");
    let consumer = broker.consumer(&[]);
    assert_eq!(read_partition(&consumer, "dash", 0, 0, 1, Duration::from_secs(20)).len(), 1);
    // A committed group offset, so the lag gauge has a series.
    let mut offsets = rdkafka::TopicPartitionList::new();
    offsets.add_partition_offset("dash", 0, rdkafka::Offset::Offset(0)).unwrap();
    rdkafka::consumer::Consumer::commit(&consumer, &offsets, rdkafka::consumer::CommitMode::Sync).expect("commit");
    let mut bad = TcpStream::connect(&broker.addr).unwrap();
    bad.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    let mut sink = Vec::new();
    bad.read_to_end(&mut sink).ok();
    let (_, body) = get(&broker.http_addr(), "/metrics");
    for name in names.iter().filter(|n| n.as_str() != "runnel_produce_errors_total") {
        assert!(body.contains(name.as_str()), "dashboard queries {name}, which /metrics does not export:\n{body}");
    }
}
