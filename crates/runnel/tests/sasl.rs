//! SASL/PLAIN end to end: the real `runnel` binary with SASL_PLAINTEXT and
//! SASL_SSL listeners, driven by librdkafka as a Kafka user would, and by a
//! small raw client for what librdkafka does not show (timings, a request
//! before authentication).
//!
//! Covered: the right password produces and consumes; a wrong password and
//! an unknown user are refused with SASL_AUTHENTICATION_FAILED, the generic
//! message and the same delay; a Metadata request before authentication
//! closes the connection; SASL_SSL PLAIN works over TLS (CA made with
//! `rcgen`).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ca::TestCa;
use common::wire::call;
use common::BrokerProcess;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

const JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";";

fn start(dir: &tempfile::TempDir, extra: &[&str]) -> BrokerProcess {
    let mut settings = vec!["listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0", JAAS];
    settings.extend_from_slice(extra);
    let env = [("RUST_LOG", "info,runnel_broker::sasl=debug")];
    BrokerProcess::start_with_env(&dir.path().join("data"), &settings, &env)
}

/// Records the errors librdkafka reports.
#[derive(Clone, Default)]
struct Errors(Arc<Mutex<Vec<String>>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, reason: &str) {
        self.0.lock().unwrap().push(format!("{error}: {reason}"));
    }
}
impl ConsumerContext for Errors {}

// Goal: the right PLAIN password produces and consumes, the principal becomes User:<name>, and a wrong password
// or an unknown user makes librdkafka report an authentication error. Method: one broker with PLAINTEXT and
// SASL_PLAINTEXT listeners; librdkafka over SASL_PLAINTEXT; the failing clients' error callbacks.
#[tokio::test]
async fn sasl_plaintext_plain_authenticates_and_refuses_bad_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(&dir, &[]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    round_trip(&sasl_client(&addr, "SASL_PLAINTEXT", "alice", "alice-secret"), "sasl-topic").await;
    assert!(broker.logs().contains("principal=User:alice"), "{}", broker.logs());

    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let errors = Errors::default();
        let consumer: BaseConsumer<Errors> =
            sasl_client(&addr, "SASL_PLAINTEXT", user, password).create_with_context(errors.clone()).unwrap();
        let refused = consumer.fetch_metadata(None, Duration::from_secs(3)).expect_err("refused");
        // Error callbacks run when the client is polled.
        let deadline = Instant::now() + Duration::from_secs(5);
        while errors.0.lock().unwrap().is_empty() && Instant::now() < deadline {
            let _ = consumer.poll(Duration::from_millis(100));
        }
        let seen = format!("{refused}\n{}", errors.0.lock().unwrap().join("\n"));
        assert!(seen.contains("Authentication failed: Invalid username or password"), "{user}: {seen}");
    }
    let logs = broker.logs();
    assert!(logs.contains("authentication failed for user mallory: unknown user"), "{logs}");
    assert!(logs.contains("authentication failed for user alice: wrong password"), "{logs}");
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

/// Handshake and authenticate with `token`; the response and how long SaslAuthenticate took.
fn authenticate(addr: &str, token: &[u8]) -> (SaslAuthenticateResponse, Duration, TcpStream) {
    let mut stream = connect(addr);
    let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let response: SaslHandshakeResponse = call(&mut stream, ApiKey::SaslHandshake, 1, &handshake).unwrap();
    assert_eq!(response.error_code, 0);
    let started = Instant::now();
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token));
    let response: SaslAuthenticateResponse = call(&mut stream, ApiKey::SaslAuthenticate, 2, &request).unwrap();
    (response, started.elapsed(), stream)
}

/// Whether the broker closed `stream` (end of file or reset) within the read timeout.
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_)) && !matches!(stream.read(&mut byte), Ok(n) if n > 0)
}

// Goal: a wrong password and an unknown user get the same error, message and delay, and the connection is
// closed; the right password gets no error and session_lifetime_ms 0. Method: a raw client times
// SaslAuthenticate v2 with connection.failed.authentication.delay.ms=300, several times each.
#[test]
fn failures_look_alike_and_wait_the_fixed_delay() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(&dir, &["connection.failed.authentication.delay.ms=300"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    let (ok, _, _) = authenticate(&addr, b"\0alice\0alice-secret");
    assert_eq!((ok.error_code, ok.session_lifetime_ms), (0, 0));
    let mut times = Vec::new();
    for token in [&b"\0alice\0wrong"[..], b"\0mallory\0alice-secret", b"\0alice\0wrong", b"\0mallory\0x"] {
        let (refused, took, mut stream) = authenticate(&addr, token);
        assert_eq!(refused.error_code, 58, "SASL_AUTHENTICATION_FAILED");
        assert_eq!(refused.error_message.as_deref(), Some("Authentication failed: Invalid username or password"));
        assert!(closed(&mut stream), "the connection is closed after a failure");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        times.push(took);
    }
    let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(*max - *min < Duration::from_millis(250), "failures take the same time: {times:?}");
}

// Goal: before authentication only ApiVersions and SASL are served; a Metadata request closes the connection,
// and a SASL connection that never authenticates is closed at the deadline. Method: raw clients.
#[test]
fn requests_before_authentication_close_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(&dir, &["sasl.server.authentication.timeout.ms=1000"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    let mut stream = connect(&addr);
    let versions: kafka_protocol::messages::ApiVersionsResponse =
        call(&mut stream, ApiKey::ApiVersions, 3, &kafka_protocol::messages::ApiVersionsRequest::default()).unwrap();
    assert!(versions.api_keys.iter().any(|k| k.api_key == ApiKey::SaslAuthenticate as i16));
    let metadata: Option<kafka_protocol::messages::MetadataResponse> =
        call(&mut stream, ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(metadata.is_none(), "Metadata before authentication gets no answer");
    assert!(closed(&mut stream));
    assert!(broker.logs().contains("Metadata before SASL authentication"), "{}", broker.logs());

    let mut idle = connect(&addr);
    let started = Instant::now();
    assert!(closed(&mut idle), "an unauthenticated connection is closed at the deadline");
    assert!(started.elapsed() >= Duration::from_millis(900) && started.elapsed() < Duration::from_secs(5));

    // The plaintext listener serves Metadata as before.
    let plain = broker.listener_addr("PLAINTEXT");
    let _: kafka_protocol::messages::MetadataResponse =
        call(&mut connect(&plain), ApiKey::Metadata, 12, &MetadataRequest::default()).unwrap();
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

// Goal: unauthenticated floods cannot make the broker hold much memory or stop serving others. Method: on a SASL
// listener, 400 connections that each send half of a frame of sasl.server.max.receive.size bytes and stall, 100
// that announce a 100 MB frame, 100 that send Metadata before authenticating; meanwhile a PLAIN client
// authenticates, produces and consumes. The stalled connections are closed at the authentication deadline, the
// others at once; the broker's resident memory grows by less than 400 KiB per stalled connection (half a frame
// each, when the bound is 512 KiB) and returns near its start once they are gone.
#[tokio::test]
async fn unauthenticated_floods_stay_bounded_and_others_are_served() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let broker = start(&dir, &["sasl.server.authentication.timeout.ms=8000"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    let before = rss_kib(broker.pid());

    let frame_max: usize = 524_288;
    let mut stalled = Vec::new();
    for _ in 0..400 {
        let mut s = connect(&addr);
        s.write_all(&(frame_max as i32).to_be_bytes()).unwrap();
        s.write_all(&vec![0x5au8; frame_max / 2]).unwrap();
        stalled.push(s);
    }
    let mut huge = Vec::new();
    for _ in 0..100 {
        let mut s = connect(&addr);
        s.write_all(&(100_000_000i32).to_be_bytes()).unwrap();
        huge.push(s);
    }
    let mut early = Vec::new();
    for _ in 0..100 {
        let mut s = connect(&addr);
        let _: Option<kafka_protocol::messages::MetadataResponse> =
            call(&mut s, ApiKey::Metadata, 12, &MetadataRequest::default());
        early.push(s);
    }
    round_trip(&sasl_client(&addr, "SASL_PLAINTEXT", "alice", "alice-secret"), "flood-topic").await;
    let during = rss_kib(broker.pid());
    assert!(
        during < before + 400 * 400,
        "resident memory grew from {before} KiB to {during} KiB with 400 stalled connections"
    );
    for s in huge.iter_mut().chain(early.iter_mut()) {
        assert!(closed(s), "a connection with an oversized frame or an early request is closed");
    }
    for s in stalled.iter_mut() {
        assert!(closed(s), "a stalled unauthenticated connection is closed at the deadline");
    }
    drop(stalled);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(broker.pid());
    assert!(after < before + 64 * 1024, "resident memory stayed at {after} KiB (from {before} KiB) after the flood");
}

/// A broker with PLAINTEXT and SASL_SSL (PLAIN) listeners and a certificate from a CA made with rcgen; the CA's
/// PEM file.
fn start_sasl_ssl(dir: &tempfile::TempDir) -> (BrokerProcess, std::path::PathBuf) {
    let ca = TestCa::new("Runnel SASL Test CA");
    let (keystore, ca_path) = (dir.path().join("broker.pem"), dir.path().join("ca.pem"));
    ca.write_keystore(&keystore);
    ca.write_pem(&ca_path);
    let keystore = format!("ssl.keystore.location={}", keystore.display());
    let jaas = JAAS.replace("listener.name.sasl_plaintext.plain.", "listener.name.sasl_ssl.plain.");
    let settings = ["listeners=PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0", &keystore, &jaas];
    (BrokerProcess::start(&dir.path().join("data"), &settings), ca_path)
}

// Goal: SASL_SSL PLAIN works over TLS. Method: a CA and broker certificate made with rcgen; librdkafka with
// security.protocol=SASL_SSL trusting the CA produces and consumes.
#[tokio::test]
async fn sasl_ssl_plain_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, ca_path) = start_sasl_ssl(&dir);
    let addr = broker.listener_addr("SASL_SSL");
    let mut config = sasl_client(&addr, "SASL_SSL", "admin", "admin-secret");
    config.set("ssl.ca.location", ca_path.to_str().unwrap());
    round_trip(&config, "sasl-ssl-topic").await;
}

/// `runnel <args>` with a 60 s bound; its status, stdout and stderr.
fn cli(args: &[&str]) -> std::process::Output {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .env_remove("RUNNEL_BROKERS")
        .env_remove("RUNNEL_PROFILE")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run runnel");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "runnel {args:?} did not finish within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

// Goal: the CLI's own Kafka client (ListGroups v5, ConsumerGroupDescribe) speaks TLS and SASL with the same -X
// properties librdkafka takes, so a consumer-protocol group shows as such over SASL_SSL, and a wrong password is one
// clear error. Method: a consumer-protocol member joins through the plaintext listener; `runnel group list` and
// `group describe` run against the SASL_SSL listener with PLAIN; only the CLI's wire client knows group types.
#[tokio::test]
async fn cli_group_commands_speak_sasl_ssl() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, ca_path) = start_sasl_ssl(&dir);

    let plain = broker.listener_addr("PLAINTEXT");
    common::create_topic(&plain, "cli-sasl", 2, &[]).await;
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &plain)
        .set("group.id", "cli-sasl-group")
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    member.subscribe(&["cli-sasl"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while member.assignment().unwrap().count() < 2 {
        assert!(Instant::now() < deadline, "the member got no assignment");
        let _ = member.poll(Duration::from_millis(100));
    }

    let addr = broker.listener_addr("SASL_SSL");
    let ca_location = format!("ssl.ca.location={}", ca_path.display());
    let secured = |password: &str| {
        let password = format!("sasl.password={password}");
        ["-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanism=PLAIN", "-X", "sasl.username=admin"]
            .into_iter()
            .map(String::from)
            .chain(["-X".into(), password, "-X".into(), ca_location.clone(), "--brokers".into(), addr.clone()])
            .collect::<Vec<String>>()
    };
    let run = |command: &[&str], password: &str| {
        let args: Vec<String> = command.iter().map(|s| s.to_string()).chain(secured(password)).collect();
        cli(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let listed = run(&["group", "list", "--format", "json"], "admin-secret");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let groups: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let group = groups.as_array().unwrap().iter().find(|g| g["group"] == "cli-sasl-group").expect("group listed");
    assert_eq!(group["type"], "consumer", "{groups}");
    let described = run(&["group", "describe", "cli-sasl-group", "--format", "json"], "admin-secret");
    assert!(described.status.success(), "{}", String::from_utf8_lossy(&described.stderr));
    let described: serde_json::Value = serde_json::from_slice(&described.stdout).unwrap();
    assert_eq!(described["type"], "consumer", "{described}");
    assert_eq!(described["members"].as_array().map(Vec::len), Some(1), "{described}");

    let refused = run(&["group", "describe", "cli-sasl-group"], "wrong");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "a wrong password must fail");
    assert!(stderr.contains("Invalid username or password") && stderr.lines().count() == 1, "{stderr}");
}

fn sasl_client(addr: &str, protocol: &str, user: &str, password: &str) -> ClientConfig {
    common::sasl_client(addr, protocol, "PLAIN", user, password)
}

async fn round_trip(config: &ClientConfig, topic: &str) {
    common::sasl_round_trip(config, topic, 10).await
}
