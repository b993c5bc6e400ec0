//! Background retention against the real broker: old segments leave by size
//! and by time, the log start offset follows, consumers below it are reset to
//! it, and none of that is undone by a SIGKILL and restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{read_partition, segment_bases, watermarks, BrokerProcess};
use rdkafka::producer::FutureRecord;

/// A broker whose retention pass runs from the start, every 200 ms, and deletes files at once.
fn start(dir: &Path) -> BrokerProcess {
    BrokerProcess::start(
        &dir.join("data"),
        &["log.initial.task.delay.ms=0", "log.retention.check.interval.ms=200", "log.segment.delete.delay.ms=0"],
    )
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Goal: retention.bytes removes the oldest segments, keeps at least the
/// limit, moves the log start offset to the first kept segment, and a
/// consumer asking for offset 0 is reset to it and reads every kept record in
/// order; after SIGKILL and restart the start offset has not moved back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_retention_deletes_old_segments_and_consumers_reset_to_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(dir.path());
    common::create_topic(&broker.addr, "sized", 1, &[("segment.bytes", "4096"), ("retention.bytes", "16384")]).await;
    let producer = broker.producer(&[("linger.ms", "0"), ("batch.size", "600")]);
    let value = |i: usize| format!("{i:06}-{}", "v".repeat(490));
    for i in 0..200 {
        producer.send(FutureRecord::<(), _>::to("sized").payload(&value(i)), Duration::from_secs(10)).await.unwrap();
    }

    let consumer = broker.consumer(&[("auto.offset.reset", "earliest")]);
    wait_for("the log start offset to advance", Duration::from_secs(15), || watermarks(&consumer, "sized", 0).0 > 0);
    let data_dir = broker.data_dir.clone();
    wait_for("old segment files to go", Duration::from_secs(15), || {
        segment_bases(&data_dir, "sized", 0)[0] == watermarks(&consumer, "sized", 0).0
    });
    let (low, high) = watermarks(&consumer, "sized", 0);
    assert_eq!(high, 200);
    let bases = segment_bases(&data_dir, "sized", 0);
    let kept_bytes: u64 = std::fs::read_dir(data_dir.join("sized-0"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(kept_bytes >= 16384, "at least retention.bytes kept: {kept_bytes}");
    assert!(kept_bytes < 16384 + 2 * 4096, "not much more than retention.bytes kept: {kept_bytes}, {bases:?}");

    let read = read_partition(&consumer, "sized", 0, 0, (high - low) as usize, Duration::from_secs(15));
    let offsets: Vec<i64> = read.iter().map(|r| r.0).collect();
    assert_eq!(offsets, (low..high).collect::<Vec<_>>(), "reset to the start offset, then every kept record");
    for (offset, _, payload) in &read {
        assert_eq!(payload.as_deref(), Some(value(*offset as usize).as_bytes()));
    }

    broker.kill9();
    broker.restart();
    let consumer = broker.consumer(&[]);
    let (low_after, high_after) = watermarks(&consumer, "sized", 0);
    assert_eq!(high_after, 200);
    assert!(low_after >= low, "the start offset did not move back: {low_after} < {low}");
}

/// Goal: retention.ms removes data whose newest timestamp is older than the
/// limit, including an active segment that expired as a whole, while a topic
/// with fresh data keeps it; producing after the purge works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_retention_empties_expired_topics_and_keeps_fresh_ones() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path());
    common::create_topic(&broker.addr, "expiring", 1, &[("retention.ms", "2000")]).await;
    common::create_topic(&broker.addr, "fresh", 1, &[("retention.ms", "3600000")]).await;
    let producer = broker.producer(&[("linger.ms", "0")]);
    let hour_ago =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000;
    for i in 0..20 {
        let payload = format!("old-{i}");
        let old = FutureRecord::<(), _>::to("expiring").payload(&payload).timestamp(hour_ago);
        producer.send(old, Duration::from_secs(10)).await.unwrap();
        producer.send(FutureRecord::<(), _>::to("fresh").payload(&payload), Duration::from_secs(10)).await.unwrap();
    }
    let consumer = broker.consumer(&[("auto.offset.reset", "earliest")]);
    wait_for("the expired topic to empty", Duration::from_secs(15), || {
        watermarks(&consumer, "expiring", 0) == (20, 20)
    });
    assert_eq!(watermarks(&consumer, "fresh", 0), (0, 20), "fresh data stays");

    producer.send(FutureRecord::<(), _>::to("expiring").payload("new"), Duration::from_secs(10)).await.unwrap();
    let read = read_partition(&consumer, "expiring", 0, 0, 1, Duration::from_secs(15));
    assert_eq!(read.len(), 1);
    assert_eq!((read[0].0, read[0].2.as_deref()), (20, Some(&b"new"[..])));
}
