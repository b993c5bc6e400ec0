//! Bad input over raw sockets: every malformed frame closes only its own
//! connection, allocates nothing large, and leaves the broker serving others;
//! every invalid record batch or name gets the Kafka error code clients expect.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::BrokerProcess;
use kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafka_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafka_protocol::messages::create_topics_response::CreateTopicsResponse;
use kafka_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafka_protocol::messages::metadata_response::MetadataResponse;
use kafka_protocol::messages::produce_request::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_protocol::messages::produce_response::ProduceResponse;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// A connection speaking raw frames.
struct Wire {
    stream: TcpStream,
    correlation_id: i32,
}

impl Wire {
    fn connect(addr: &str) -> Wire {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Wire { stream, correlation_id: 0 }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a request and returns the response body bytes (header stripped).
    fn call<Req: Encodable>(&mut self, api_key: ApiKey, version: i16, body: &Req) -> Bytes {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, api_key.request_header_version(version)).unwrap();
        body.encode(&mut buf, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(buf.len() as i32);
        frame.extend_from_slice(&buf);
        self.send_raw(&frame);
        let mut response = self.read_frame().expect("a response frame");
        let header_version = if api_key == ApiKey::ApiVersions { 0 } else { api_key.response_header_version(version) };
        let header = ResponseHeader::decode(&mut response, header_version).unwrap();
        assert_eq!(header.correlation_id, self.correlation_id);
        response
    }

    fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(Bytes::from(body))
    }

    /// True when the broker closed the connection (EOF or reset) within the timeout.
    fn closed_by_broker(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    }
}

fn api_versions_ok(addr: &str) {
    let mut wire = Wire::connect(addr);
    let mut body = wire.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let response = ApiVersionsResponse::decode(&mut body, 3).unwrap();
    assert_eq!(response.error_code, 0);
    assert!(response.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16));
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A request header (v1: api key, version, correlation id, client id) for hand-made frames.
fn header_v1(api_key: i16, version: i16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&7i32.to_be_bytes());
    h.extend_from_slice(&(-1i16).to_be_bytes());
    h
}

fn framed(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// Goal: each malformed frame closes only its own connection, with no large
/// allocation, and the broker keeps serving. Method: send each bad frame on a
/// fresh connection, check the broker closed it, check a healthy client still
/// gets ApiVersions answered and the broker's resident memory stayed small.
#[test]
fn malformed_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let healthy = Wire::connect(&broker.addr);
    let rss_before = rss_kib(broker.pid());

    let mut metadata_huge_array = header_v1(ApiKey::Metadata as i16, 4);
    metadata_huge_array.extend_from_slice(&i32::MAX.to_be_bytes()); // topics: 2^31-1 claimed, none present
    metadata_huge_array.push(1);
    let mut produce_huge_array = header_v1(ApiKey::Produce as i16, 8);
    produce_huge_array.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    produce_huge_array.extend_from_slice(&(-1i16).to_be_bytes()); // acks
    produce_huge_array.extend_from_slice(&1000i32.to_be_bytes()); // timeout
    produce_huge_array.extend_from_slice(&i32::MAX.to_be_bytes()); // topic_data: 2^31-1 claimed
    let mut flexible_huge_array = vec![0, 3, 0, 12, 0, 0, 0, 7, 0xff, 0xff, 0]; // Metadata v12, header v2
    flexible_huge_array.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // compact count 2^32-1
    let mut unknown_api = header_v1(9999, 0);
    unknown_api.extend_from_slice(&[0; 16]);

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("length above socket.request.max.bytes", 200_000_000i32.to_be_bytes().to_vec()),
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        ("garbage", framed(&[0x5a; 64])),
        ("truncated request", {
            let mut f = 100i32.to_be_bytes().to_vec();
            f.extend_from_slice(&[0, 18, 0, 3]);
            f
        }),
        ("unknown api key", framed(&unknown_api)),
        ("metadata claiming 2^31-1 topics", framed(&metadata_huge_array)),
        ("produce claiming 2^31-1 topics", framed(&produce_huge_array)),
        ("flexible array claiming 2^32-2 elements", framed(&flexible_huge_array)),
    ];
    for (name, bytes) in cases {
        let mut wire = Wire::connect(&broker.addr);
        wire.send_raw(&bytes);
        if name == "truncated request" {
            wire.stream.shutdown(std::net::Shutdown::Write).unwrap();
        }
        assert!(wire.closed_by_broker(), "{name}: the broker closes the connection");
        api_versions_ok(&broker.addr);
    }
    drop(healthy);
    let rss_after = rss_kib(broker.pid());
    assert!(rss_after < rss_before + 64 * 1024, "resident memory grew from {rss_before} KiB to {rss_after} KiB");
}

/// Goal: an ApiVersions request newer than the broker's gets
/// UNSUPPORTED_VERSION and the supported ranges in a v0 response (KIP-511).
#[test]
fn api_versions_from_the_future_gets_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let mut wire = Wire::connect(&broker.addr);
    let mut frame = vec![0, 18, 0, 99, 0, 0, 0, 42, 0xff, 0xff];
    frame.extend_from_slice(&[0, 0, 0]); // whatever a v99 body holds
    wire.send_raw(&framed(&frame));
    let mut response = wire.read_frame().expect("response");
    let header = ResponseHeader::decode(&mut response, 0).unwrap();
    assert_eq!(header.correlation_id, 42);
    let body = ApiVersionsResponse::decode(&mut response, 0).unwrap();
    assert_eq!(body.error_code, 35, "UNSUPPORTED_VERSION");
    let api_versions = body.api_keys.iter().find(|k| k.api_key == 18).expect("ApiVersions listed");
    assert_eq!((api_versions.min_version, api_versions.max_version), (0, 4));
}

/// Builds a one-record, uncompressed v2 record batch with a correct CRC.
fn record_batch(magic: i8, value: &[u8]) -> Vec<u8> {
    let mut record = Vec::new();
    record.push(0); // attributes
    put_varint(&mut record, 0); // timestamp delta
    put_varint(&mut record, 0); // offset delta
    put_varint(&mut record, -1); // key: null
    put_varint(&mut record, value.len() as i64);
    record.extend_from_slice(value);
    put_varint(&mut record, 0); // headers
    let mut records = Vec::new();
    put_varint(&mut records, record.len() as i64);
    records.extend_from_slice(&record);

    let mut after_crc = Vec::new();
    after_crc.extend_from_slice(&0i16.to_be_bytes()); // attributes
    after_crc.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    after_crc.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    after_crc.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    after_crc.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    after_crc.extend_from_slice(&(-1i16).to_be_bytes());
    after_crc.extend_from_slice(&(-1i32).to_be_bytes());
    after_crc.extend_from_slice(&1i32.to_be_bytes()); // records count
    after_crc.extend_from_slice(&records);
    let mut batch = Vec::new();
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((4 + 1 + 4 + after_crc.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    batch.push(magic as u8);
    batch.extend_from_slice(&crc32c::crc32c(&after_crc).to_be_bytes());
    batch.extend_from_slice(&after_crc);
    batch
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn produce(wire: &mut Wire, topic: &str, partition: i32, batch: Vec<u8>) -> (i16, i64) {
    let request =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(TopicName(StrBytes::from_string(topic.into())))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(partition)
            .with_records(Some(Bytes::from(batch)))])]);
    let mut body = wire.call(ApiKey::Produce, 9, &request);
    let response = ProduceResponse::decode(&mut body, 9).unwrap();
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn create_topic(wire: &mut Wire, name: &str) -> i16 {
    let request = CreateTopicsRequest::default().with_timeout_ms(5000).with_topics(vec![CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.into())))
        .with_num_partitions(1)
        .with_replication_factor(1)]);
    let mut body = wire.call(ApiKey::CreateTopics, 5, &request);
    CreateTopicsResponse::decode(&mut body, 5).unwrap().topics[0].error_code
}

/// Goal: invalid batches and names get Kafka's error codes and store nothing.
/// Method: a bad CRC (CORRUPT_MESSAGE), a batch over message.max.bytes
/// (MESSAGE_TOO_LARGE), magic 1 (INVALID_RECORD), an unknown partition
/// (UNKNOWN_TOPIC_OR_PARTITION) and invalid topic names (INVALID_TOPIC_EXCEPTION);
/// then a valid batch still lands at offset 0.
#[test]
fn invalid_batches_and_names_get_kafka_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &["message.max.bytes=2000"]);
    let mut wire = Wire::connect(&broker.addr);
    assert_eq!(create_topic(&mut wire, "t"), 0);

    let mut bad_crc = record_batch(2, b"hello");
    let last = bad_crc.len() - 2;
    bad_crc[last] ^= 0x01;
    assert_eq!(produce(&mut wire, "t", 0, bad_crc).0, 2, "CORRUPT_MESSAGE");
    assert_eq!(produce(&mut wire, "t", 0, record_batch(2, &[7u8; 3000])).0, 10, "MESSAGE_TOO_LARGE");
    assert_eq!(produce(&mut wire, "t", 0, record_batch(1, b"old format")).0, 87, "INVALID_RECORD");
    assert_eq!(produce(&mut wire, "t", 5, record_batch(2, b"x")).0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(produce(&mut wire, "no-such-topic", 0, record_batch(2, b"x")).0, 3, "UNKNOWN_TOPIC_OR_PARTITION");
    assert_eq!(produce(&mut wire, "t", 0, record_batch(2, b"good")), (0, 0), "nothing invalid was stored");

    assert_eq!(create_topic(&mut wire, "bad name!"), 17, "INVALID_TOPIC_EXCEPTION");
    assert_eq!(create_topic(&mut wire, &"x".repeat(250)), 17, "INVALID_TOPIC_EXCEPTION");
    assert_eq!(create_topic(&mut wire, "t"), 36, "TOPIC_ALREADY_EXISTS");
    let request = MetadataRequest::default().with_allow_auto_topic_creation(true).with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str("white space")))),
    ]));
    let mut body = wire.call(ApiKey::Metadata, 9, &request);
    let response = MetadataResponse::decode(&mut body, 9).unwrap();
    assert_eq!(response.topics[0].error_code, 17, "INVALID_TOPIC_EXCEPTION");
}

/// Goal: idle connections are closed after `connections.max.idle.ms`, and a
/// connection in use is not. Method: with a 400 ms limit, a silent connection
/// and one idle after an ApiVersions exchange are both closed by the broker
/// within a few seconds; a third that sends a request every 150 ms for 1.2 s
/// is still answered.
#[test]
fn idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &["connections.max.idle.ms=400"]);
    let mut silent = Wire::connect(&broker.addr);
    let mut after_request = Wire::connect(&broker.addr);
    after_request.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let mut busy = Wire::connect(&broker.addr);
    for _ in 0..8 {
        busy.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(silent.closed_by_broker(), "a connection that never spoke is closed");
    assert!(after_request.closed_by_broker(), "a connection idle after a request is closed");
}

/// Goal: the broker-wide request budget (`queued.max.request.bytes`) pushes
/// back instead of failing: with room for only two 1 MiB frames, eight
/// connections each sending a ~0.9 MB produce request at once all get their
/// records stored. Method: a broker with socket.request.max.bytes=1 MiB and
/// queued.max.request.bytes=2 MiB; eight threads produce concurrently; every
/// answer is error-free and the offsets 0..8 are each assigned once.
#[test]
fn request_budget_applies_back_pressure_without_failures() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["socket.request.max.bytes=1048576", "queued.max.request.bytes=2097152", "message.max.bytes=1000000"],
    );
    assert_eq!(create_topic(&mut Wire::connect(&broker.addr), "budget"), 0);
    let offsets: Vec<i64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let addr = broker.addr.clone();
                scope.spawn(move || {
                    let mut wire = Wire::connect(&addr);
                    wire.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
                    let (error, offset) = produce(&mut wire, "budget", 0, record_batch(2, &vec![i as u8; 900_000]));
                    assert_eq!(error, 0, "request {i}");
                    offset
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = offsets.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..8).collect::<Vec<i64>>(), "each request got its own offset: {offsets:?}");
}

/// Goal: a budget too small for the largest frame is refused at start, with
/// an error naming both keys.
#[test]
fn request_budget_smaller_than_a_frame_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_runnel"));
    // The test command's own RUNNEL_ variables (RUNNEL_SKIP_INSTALL, ...) would add warning lines.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("RUNNEL_")) {
        command.env_remove(name);
    }
    let output = command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--set", "queued.max.request.bytes=1024"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("queued.max.request.bytes") && stderr.contains("socket.request.max.bytes"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

/// Goal: the request budget really bounds buffered request bytes. Method:
/// with a 2 MiB budget, two connections each send all but the last byte of
/// a 1 MiB frame, which holds the whole budget; a third connection's small
/// ApiVersions request then gets no answer for 700 ms; once one of the two
/// disconnects (its bytes are freed), the third is answered.
#[test]
fn request_budget_bounds_buffered_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(
        &dir.path().join("data"),
        &["socket.request.max.bytes=1048576", "queued.max.request.bytes=2097152"],
    );
    let length = 1_048_576usize;
    let mut partial = Vec::with_capacity(4 + length);
    partial.extend_from_slice(&(length as i32).to_be_bytes());
    partial.resize(4 + length - 1, 0);
    let mut holders: Vec<Wire> = (0..2).map(|_| Wire::connect(&broker.addr)).collect();
    for holder in &mut holders {
        // A first request lifts the connection's frame bound from the pre-request size.
        holder.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        holder.send_raw(&partial);
    }
    std::thread::sleep(Duration::from_millis(300));

    let mut waiting = Wire::connect(&broker.addr);
    waiting.stream.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    waiting.send_raw(&framed(&[0, 18, 0, 0, 0, 0, 0, 9, 0xff, 0xff]));
    assert!(waiting.read_frame().is_none(), "no answer while the budget is held");

    holders.pop();
    waiting.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(waiting.read_frame().is_some(), "answered once budget was freed");
}

/// Goal: `max.connections.per.ip` closes connections beyond the cap at once,
/// `max.connections` makes extra connections wait instead, and both free
/// their slot when a connection ends. Method: per-IP cap 2: the third
/// connection is closed, and after one of the two leaves a new one is
/// served. Global cap 2 (on another broker): the third connection's request
/// is not answered while two are open, and is answered once one closes.
#[test]
fn connection_caps() {
    let dir = tempfile::tempdir().unwrap();
    let per_ip = BrokerProcess::start(&dir.path().join("a"), &["max.connections.per.ip=2"]);
    let mut first = Wire::connect(&per_ip.addr);
    first.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let mut second = Wire::connect(&per_ip.addr);
    second.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let mut third = Wire::connect(&per_ip.addr);
    assert!(third.closed_by_broker(), "a third connection from the same IP is closed");
    drop(first);
    std::thread::sleep(Duration::from_millis(200));
    let mut fourth = Wire::connect(&per_ip.addr);
    fourth.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());

    let global = BrokerProcess::start(&dir.path().join("b"), &["max.connections=2"]);
    let mut one = Wire::connect(&global.addr);
    one.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let _two = Wire::connect(&global.addr);
    std::thread::sleep(Duration::from_millis(200));
    let mut waiting = Wire::connect(&global.addr);
    waiting.stream.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    waiting.send_raw(&framed(&[0, 18, 0, 0, 0, 0, 0, 3, 0xff, 0xff]));
    assert!(waiting.read_frame().is_none(), "no answer while the broker serves max.connections others");
    drop(one);
    waiting.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert!(waiting.read_frame().is_some(), "served once a slot frees");
}

/// Goal: a flood of bad connections cannot flood the log. Method: 200
/// connections that each send garbage within a fraction of a second; the
/// broker logs at most a few dozen "closing client connection" lines, and
/// the next line after the flood reports how many it left out.
#[test]
fn connection_error_lines_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    for _ in 0..200 {
        let mut wire = Wire::connect(&broker.addr);
        wire.send_raw(&framed(&[0x5a; 16]));
        assert!(wire.closed_by_broker());
    }
    api_versions_ok(&broker.addr);
    // The count of left-out lines rides on the next line logged after the one-second window.
    std::thread::sleep(Duration::from_millis(1100));
    let mut late = Wire::connect(&broker.addr);
    late.send_raw(&framed(&[0x5a; 16]));
    assert!(late.closed_by_broker());
    std::thread::sleep(Duration::from_millis(100));
    let logs = broker.logs();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains("closing client connection")).collect();
    assert!(!lines.is_empty() && lines.len() <= 60, "{} lines logged for 200 bad connections", lines.len());
    assert!(lines.iter().any(|l| !l.contains("suppressed_since_last=0")), "suppressed lines are reported");
}

/// Goal: before a connection has completed a request, frames above
/// `sasl.server.max.receive.size` (512 KiB) close it; after one request the
/// full `socket.request.max.bytes` applies. Method: a 600 KB produce as the
/// first frame closes the connection without an answer; the same request
/// after an ApiVersions exchange is stored.
#[test]
fn large_first_frame_is_refused_until_the_client_has_spoken() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    assert_eq!(create_topic(&mut Wire::connect(&broker.addr), "first"), 0);
    let big = || record_batch(2, &[3u8; 600_000]);

    let request =
        ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default(
        )
        .with_name(TopicName(StrBytes::from_static_str("first")))
        .with_partition_data(vec![PartitionProduceData::default()
            .with_index(0)
            .with_records(Some(Bytes::from(big())))])]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(9)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("raw-test")));
    let mut body = BytesMut::new();
    header.encode(&mut body, ApiKey::Produce.request_header_version(9)).unwrap();
    request.encode(&mut body, 9).unwrap();
    let mut anonymous = Wire::connect(&broker.addr);
    anonymous.send_raw(&framed(&body));
    assert!(anonymous.closed_by_broker(), "a large first frame closes the connection");

    let mut greeted = Wire::connect(&broker.addr);
    greeted.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(produce(&mut greeted, "first", 0, big()), (0, 0), "after a request the full frame size applies");
}
