//! Durability proved by crashing: SIGKILL the broker while producers are
//! mid-flight, restart it, and check that every acknowledged record is there
//! exactly once and in order; damage the tail of a segment while the broker is
//! down and check that recovery cuts exactly the damaged part.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{read_partition, watermarks, BrokerProcess};
use rand::Rng;
use rdkafka::producer::FutureRecord;

const PRODUCERS: usize = 3;
const PARTITIONS: i32 = 2;

/// Acknowledged records: (producer, sequence) -> (partition, offset).
type Acked = Arc<Mutex<BTreeMap<(usize, u64), (i32, i64)>>>;

/// Goal: no acknowledged record is lost or duplicated across SIGKILLs.
/// Method: three rounds; in each, three producers send acks=all records
/// (value = "producer:sequence") as fast as they can, the broker is killed at
/// a random moment, restarted, and the producers go on. At the end every
/// partition is read from offset 0 and every acknowledged record must appear
/// exactly once, at the offset it was acknowledged with, and each producer's
/// records must appear in sequence order within a partition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_acks_all_produce_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let settings = format!("num.partitions={PARTITIONS}");
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[&settings]);
    let acked: Acked = Arc::new(Mutex::new(BTreeMap::new()));
    let mut next_seq = [0u64; PRODUCERS];
    for round in 0..3 {
        let kill_after = Duration::from_millis(rand::thread_rng().gen_range(300..1500));
        let mut tasks = Vec::new();
        for (p, &start) in next_seq.iter().enumerate() {
            let (addr, acked) = (broker.addr.clone(), acked.clone());
            tasks.push(tokio::spawn(produce_until_failure(addr, p, start, acked)));
        }
        tokio::time::sleep(kill_after).await;
        broker.kill9();
        for (p, task) in tasks.into_iter().enumerate() {
            next_seq[p] = task.await.expect("producer task");
        }
        broker.restart();
        let count = acked.lock().unwrap().len();
        eprintln!("round {round}: killed after {kill_after:?}, {count} records acknowledged so far");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "the test must acknowledge a meaningful number of records, got {}", acked.len());
    check_all_present(&broker, &acked);
}

/// Sends records until the broker dies; returns the next unused sequence.
async fn produce_until_failure(addr: String, producer_id: usize, mut seq: u64, acked: Acked) -> u64 {
    let producer: rdkafka::producer::FutureProducer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &addr)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "3000")
        .set("retries", "0")
        .create()
        .expect("producer");
    loop {
        // A window of concurrent sends; stop at the first failure.
        let mut window = Vec::new();
        for _ in 0..20 {
            let partition = (seq % PARTITIONS as u64) as i32;
            let value = format!("{producer_id}:{seq}");
            let send = producer.send_result(FutureRecord::<(), _>::to("crash").partition(partition).payload(&value));
            match send {
                Ok(future) => window.push((seq, future)),
                Err((e, _)) => panic!("enqueue failed: {e}"),
            }
            seq += 1;
        }
        let mut failed = false;
        for (s, future) in window {
            match future.await {
                Ok(Ok(delivery)) => {
                    acked.lock().unwrap().insert((producer_id, s), (delivery.partition, delivery.offset));
                }
                _ => failed = true,
            }
        }
        if failed {
            return seq;
        }
    }
}

fn check_all_present(broker: &BrokerProcess, acked: &BTreeMap<(usize, u64), (i32, i64)>) {
    let consumer = broker.consumer(&[]);
    let mut found: BTreeMap<(usize, u64), (i32, i64)> = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let (low, high) = watermarks(&consumer, "crash", partition);
        assert_eq!(low, 0);
        let records = read_partition(&consumer, "crash", partition, 0, high as usize, Duration::from_secs(60));
        assert_eq!(
            records.len() as i64,
            high,
            "partition {partition}: every offset below the high watermark is readable"
        );
        let mut last_seq_of: BTreeMap<usize, u64> = BTreeMap::new();
        for (offset, _, value) in records {
            let value = String::from_utf8(value.expect("value")).expect("utf-8 value");
            let (p, s) = value.split_once(':').expect("producer:seq");
            let (p, s): (usize, u64) = (p.parse().unwrap(), s.parse().unwrap());
            assert!(found.insert((p, s), (partition, offset)).is_none(), "record {p}:{s} appears twice");
            if let Some(prev) = last_seq_of.insert(p, s) {
                assert!(s > prev, "producer {p}'s records are out of order in partition {partition}");
            }
        }
    }
    for (key, position) in acked {
        assert_eq!(found.get(key), Some(position), "acknowledged record {key:?} must be at its acknowledged offset");
    }
}

/// Stops the broker with `signals` SIGTERMs (a second one forces an
/// immediate exit) while three producers write at acks=all; returns the exit
/// code and what was acknowledged.
async fn stop_under_load(
    broker: &mut BrokerProcess,
    signals: usize,
) -> (Option<i32>, BTreeMap<(usize, u64), (i32, i64)>) {
    let acked: Acked = Arc::new(Mutex::new(BTreeMap::new()));
    let tasks: Vec<_> =
        (0..PRODUCERS).map(|p| tokio::spawn(produce_until_failure(broker.addr.clone(), p, 0, acked.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    // SIGTERM, then SIGINT: two signals of the same kind sent close together may
    // reach the process as one (POSIX does not queue them), two kinds never do.
    for signal in [libc::SIGTERM, libc::SIGINT].into_iter().take(signals) {
        // SAFETY: kill(2) on the broker this test started.
        assert_eq!(unsafe { libc::kill(broker.pid(), signal) }, 0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let code = broker.wait_exit();
    for task in tasks {
        task.await.expect("producer task");
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "the producers were busy: {} acknowledged", acked.len());
    (code, acked)
}

/// Goal: a graceful shutdown under load loses no acknowledged record and the
/// next start is clean (no recovery scan). Method: SIGTERM while three
/// producers write at acks=all; exit code 0; restart; the start-up report
/// says clean with nothing scanned; every acknowledged record is present once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_under_load_then_clean_start() {
    let dir = tempfile::tempdir().unwrap();
    let settings = format!("num.partitions={PARTITIONS}");
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[&settings]);
    let (code, acked) = stop_under_load(&mut broker, 1).await;
    assert_eq!(code, Some(0), "graceful shutdown exits 0");
    broker.restart();
    let logs = broker.logs();
    let report = logs.lines().rev().find(|l| l.contains("log directory opened")).expect("start-up report");
    assert!(report.contains("clean: true") && report.contains("bytes_scanned: 0"), "{report}");
    check_all_present(&broker, &acked);
}

/// Goal: a second signal forces an immediate exit that is still safe.
/// Method: SIGTERM then SIGINT 5 ms apart under acks=all load; the broker exits at
/// once with 130; the restart recovers and every acknowledged record is
/// present once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_signal_exits_at_once_and_safely() {
    let dir = tempfile::tempdir().unwrap();
    let settings = format!("num.partitions={PARTITIONS}");
    let mut broker = BrokerProcess::start(&dir.path().join("data"), &[&settings]);
    let (code, acked) = stop_under_load(&mut broker, 2).await;
    assert_eq!(code, Some(130), "the second signal forces the exit");
    broker.restart();
    check_all_present(&broker, &acked);
}

/// Goal: a torn or corrupted tail is cut off at restart and everything before
/// it is still served; nothing corrupt is ever returned.
/// Method: write 100 acknowledged records one batch each, SIGKILL, then damage
/// the active segment three ways in turn (cut mid-batch; overwrite the last
/// bytes; append garbage), restart each time and read everything back with
/// CRC checking on. Finally produce again and read the new record after the
/// surviving ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_truncated_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = BrokerProcess::start(&data, &[]);
    let producer = broker.producer(&[("linger.ms", "0")]);
    for i in 0..100 {
        let value = format!("record-{i:03}");
        producer
            .send(FutureRecord::<(), _>::to("torn").payload(&value), Duration::from_secs(10))
            .await
            .expect("delivery");
    }
    drop(producer);
    broker.kill9();
    let segment = active_segment(&data.join("torn-0"));
    let full_len = std::fs::metadata(&segment).unwrap().len();

    // 1. Cut the file in the middle of the last batch: the last record goes.
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(full_len - 5).unwrap();
    expect_records(&mut broker, 99).await;

    // 2. Flip bytes inside the (new) last batch: its CRC fails and it goes.
    broker.kill9();
    let len = std::fs::metadata(&segment).unwrap().len();
    flip_byte(&segment, len - 3);
    expect_records(&mut broker, 98).await;

    // 3. Garbage after the last valid batch is cut; no record is lost.
    broker.kill9();
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[0xAB; 300]);
    std::fs::write(&segment, &bytes).unwrap();
    expect_records(&mut broker, 98).await;

    let producer = broker.producer(&[]);
    let delivery = producer
        .send(FutureRecord::<(), _>::to("torn").payload("after-recovery"), Duration::from_secs(10))
        .await
        .expect("delivery");
    assert_eq!(delivery.offset, 98, "appends continue at the recovered log end offset");
    let consumer = broker.consumer(&[]);
    let records = read_partition(&consumer, "torn", 0, 97, 2, Duration::from_secs(20));
    assert_eq!(records[1].2.as_deref(), Some(&b"after-recovery"[..]));
}

async fn expect_records(broker: &mut BrokerProcess, count: i64) {
    broker.restart();
    let consumer = broker.consumer(&[]);
    let (_, high) = watermarks(&consumer, "torn", 0);
    assert_eq!(high, count, "recovery keeps exactly the intact batches");
    let records = read_partition(&consumer, "torn", 0, 0, count as usize, Duration::from_secs(30));
    let values: BTreeSet<Vec<u8>> = records.iter().map(|r| r.2.clone().unwrap()).collect();
    assert_eq!(records.len() as i64, count);
    for i in 0..count {
        assert!(values.contains(format!("record-{i:03}").as_bytes()), "record {i} survives");
    }
}

fn active_segment(partition_dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(partition_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment file")
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0xFF;
    std::fs::write(path, &bytes).unwrap();
}
