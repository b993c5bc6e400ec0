//! Fetch long polling over a raw connection: a fetch parked at the log end
//! returns as soon as a record arrives, and one that finds nothing returns
//! empty once `max_wait_ms` has passed, never long after.

mod common;

use std::time::{Duration, Instant};

use common::BrokerProcess;
use rdkafka::producer::FutureRecord;

fn records_len(response: &kafka_protocol::messages::fetch_response::FetchResponse) -> usize {
    response.responses[0].partitions[0].records.as_ref().map_or(0, |r| r.len())
}

/// Goal: a fetch waiting for data wakes when data arrives, and an idle one
/// honours max_wait_ms. Method: park a fetch with max_wait_ms=10 000 at the
/// log end, produce one record 300 ms later from another client, and require
/// the fetch to return that record well before its wait would have expired;
/// then fetch at the new end with max_wait_ms=500 and require an empty
/// response after at least 500 ms and well under 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_returns_when_data_arrives_and_waits_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let producer = broker.producer(&[("linger.ms", "0")]);
    producer.send(FutureRecord::<(), _>::to("poll").payload("first"), Duration::from_secs(10)).await.expect("delivery");

    let addr = broker.addr.clone();
    let started = Instant::now();
    let parked = tokio::task::spawn_blocking(move || common::wire::fetch(&addr, "poll", 1, 10_000));
    tokio::time::sleep(Duration::from_millis(300)).await;
    producer
        .send(FutureRecord::<(), _>::to("poll").payload("second"), Duration::from_secs(10))
        .await
        .expect("delivery");
    let response = parked.await.unwrap();
    let waited = started.elapsed();
    assert!(records_len(&response) > 0, "the parked fetch returns the new record");
    assert!(waited >= Duration::from_millis(300), "it did not return before the record existed ({waited:?})");
    assert!(waited < Duration::from_secs(5), "it returned when the record arrived, not at max_wait_ms ({waited:?})");

    let addr = broker.addr.clone();
    let started = Instant::now();
    let idle = tokio::task::spawn_blocking(move || common::wire::fetch(&addr, "poll", 2, 500)).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(records_len(&idle), 0);
    assert_eq!(idle.responses[0].partitions[0].error_code, 0);
    assert_eq!(idle.responses[0].partitions[0].high_watermark, 2);
    assert!(waited >= Duration::from_millis(500), "an idle fetch waits max_wait_ms ({waited:?})");
    assert!(waited < Duration::from_secs(5), "and not much longer ({waited:?})");
}
