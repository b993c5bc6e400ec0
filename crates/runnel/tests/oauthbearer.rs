//! SASL/OAUTHBEARER and KIP-368 re-authentication end to end: the real
//! `runnel` binary with a SASL_PLAINTEXT listener whose tokens are checked
//! against a JWKS file the test writes, driven by librdkafka (tokens given
//! through its refresh callback, as a Kafka user would) and by a raw client
//! for what librdkafka does not show (the error challenge, session
//! lifetimes, a principal changing on re-authentication).

mod common;

use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::jwt::{client_message, now_s, Issuer, AUDIENCE, ISSUER};
use common::wire::call;
use common::BrokerProcess;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// A broker with PLAINTEXT and SASL_PLAINTEXT (OAUTHBEARER) listeners trusting `issuer`.
fn start(dir: &tempfile::TempDir, issuer: &Issuer, extra: &[&str]) -> BrokerProcess {
    let jwks = dir.path().join("jwks.json");
    issuer.write_jwks(&jwks);
    let jwks = format!("sasl.oauthbearer.jwks.endpoint.url=file://{}", jwks.display());
    let audience = format!("sasl.oauthbearer.expected.audience={AUDIENCE}");
    let issuer_setting = format!("sasl.oauthbearer.expected.issuer={ISSUER}");
    let mut settings = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms=OAUTHBEARER",
        &jwks,
        &audience,
        &issuer_setting,
    ];
    settings.extend_from_slice(extra);
    let env = [("RUST_LOG", "info,runnel_broker::sasl=debug")];
    BrokerProcess::start_with_env(&dir.path().join("data"), &settings, &env)
}

/// Gives librdkafka a fixed token from its refresh callback and records its errors.
#[derive(Clone)]
struct Token {
    token: String,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Token {
    fn new(token: String) -> Token {
        Token { token, errors: Arc::default() }
    }

    fn errors(&self) -> String {
        self.errors.lock().unwrap().join("\n")
    }
}

impl ClientContext for Token {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(&self, _config: Option<&str>) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        // librdkafka refuses a lifetime in the past, so the client is told an hour whatever the token says:
        // the broker alone judges the token.
        let lifetime_ms = (now_s() + 3600) * 1000;
        Ok(OAuthToken { token: self.token.clone(), principal_name: "alice".into(), lifetime_ms })
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.lock().unwrap().push(format!("{error}: {reason}"));
    }
}
impl ConsumerContext for Token {}

fn client(addr: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanisms", "OAUTHBEARER")
        .set("group.id", "runnel-oauth-tests")
        .set("enable.auto.commit", "false")
        .set("message.timeout.ms", "20000")
        .set("enable.idempotence", "false")
        .set("fetch.wait.max.ms", "100");
    config
}

/// Whether a client with `token` is refused, and what librdkafka said.
fn refused_with(addr: &str, token: String) -> String {
    let context = Token::new(token);
    let consumer: BaseConsumer<Token> = client(addr).create_with_context(context.clone()).unwrap();
    // Polling serves the token refresh callback, then the connection attempt.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !context.errors().contains("Authentication failed") && Instant::now() < deadline {
        let _ = consumer.poll(Duration::from_millis(100));
    }
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(1));
    assert!(metadata.is_err(), "a refused client gets no metadata");
    context.errors()
}

// Goal: a valid token produces and consumes as User:<sub>; an expired token and a token signed by another key
// are refused, librdkafka reports the authentication failure, and the broker's log says why. Method: one broker
// trusting an ES256 key in a JWKS file; librdkafka with tokens from its refresh callback.
#[tokio::test]
async fn oauthbearer_valid_expired_and_wrongly_signed_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("key-1");
    let broker = start(&dir, &issuer, &[]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");

    let context = Token::new(issuer.token("alice", 3600));
    let producer: FutureProducer<Token> = client(&addr).create_with_context(context.clone()).unwrap();
    for i in 0..5 {
        let value = format!("v-{i}");
        producer
            .send(FutureRecord::to("oauth-topic").key("k").payload(&value), Duration::from_secs(20))
            .await
            .unwrap_or_else(|(e, _)| panic!("produce over OAUTHBEARER: {e}; {}", context.errors()));
    }
    let consumer: BaseConsumer<Token> = client(&addr).create_with_context(context.clone()).unwrap();
    let mut assignment = rdkafka::TopicPartitionList::new();
    assignment.add_partition_offset("oauth-topic", 0, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&assignment).unwrap();
    let (mut read, deadline) = (0, Instant::now() + Duration::from_secs(20));
    while read < 5 && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            message.unwrap_or_else(|e| panic!("consume over OAUTHBEARER: {e}"));
            read += 1;
        }
    }
    assert_eq!(read, 5, "{}", context.errors());
    assert!(broker.logs().contains("principal=User:alice"), "{}", broker.logs());

    let expired = refused_with(&addr, issuer.token("alice", -3600));
    assert!(expired.contains("Authentication failed"), "{expired}");
    let forger = Issuer::new("key-1");
    let forged = refused_with(&addr, forger.token("alice", 3600));
    assert!(forged.contains("Authentication failed"), "{forged}");
    let logs = broker.logs();
    assert!(logs.contains("SASL OAUTHBEARER authentication failed for user (none): token expired"), "{logs}");
    assert!(logs.contains("SASL OAUTHBEARER authentication failed for user (none): signature does not verify"));
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

fn handshake(stream: &mut TcpStream) -> SaslHandshakeResponse {
    let request = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("OAUTHBEARER"));
    call(stream, ApiKey::SaslHandshake, 1, &request).expect("a SaslHandshake response")
}

fn authenticate(stream: &mut TcpStream, message: &[u8]) -> Option<SaslAuthenticateResponse> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(message));
    call(stream, ApiKey::SaslAuthenticate, 2, &request)
}

/// A connection authenticated with `token`, and the SaslAuthenticate response.
fn authenticated(addr: &str, token: &str) -> (TcpStream, SaslAuthenticateResponse) {
    let mut stream = connect(addr);
    assert_eq!(handshake(&mut stream).error_code, 0);
    let response = authenticate(&mut stream, &client_message(token)).unwrap();
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    (stream, response)
}

fn metadata(stream: &mut TcpStream) -> Option<MetadataResponse> {
    call(stream, ApiKey::Metadata, 12, &MetadataRequest::default())
}

/// Whether the broker closed `stream` (end of file or reset) within the read timeout.
fn closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}

// Goal: a refused token gets RFC 7628's error challenge with no error code; the client's %x01 then gets
// SASL_AUTHENTICATION_FAILED with the generic message after the fixed delay, and the connection is closed.
// Method: a raw client with connection.failed.authentication.delay.ms=300.
#[test]
fn a_refused_token_gets_the_error_challenge_then_the_failure() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("k");
    let broker = start(&dir, &issuer, &["connection.failed.authentication.delay.ms=300"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    for message in [client_message(&issuer.token("alice", -3600)), b"n,,\x01auth=Basic x\x01\x01".to_vec()] {
        let mut stream = connect(&addr);
        assert_eq!(handshake(&mut stream).error_code, 0);
        let challenge = authenticate(&mut stream, &message).unwrap();
        assert_eq!(challenge.error_code, 0);
        assert_eq!(&challenge.auth_bytes[..], br#"{"status":"invalid_token"}"#);
        let started = Instant::now();
        let failed = authenticate(&mut stream, b"\x01").unwrap();
        assert_eq!(failed.error_code, 58, "SASL_AUTHENTICATION_FAILED");
        assert_eq!(
            failed.error_message.as_deref(),
            Some("Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER")
        );
        assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
        assert!(closed(&mut stream), "the connection is closed after a failure");
    }
    assert!(broker.logs().contains("malformed client message: auth scheme is not Bearer"), "{}", broker.logs());
}

/// Sends one raw, unframed SASL token (after SaslHandshake v0) and reads the raw reply, `None` when closed.
fn raw_token(stream: &mut TcpStream, token: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut frame = (token.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(token);
    stream.write_all(&frame).ok()?;
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut reply).ok()?;
    Some(reply)
}

// Goal: old clients' raw exchange (SaslHandshake v0, then unframed tokens) works for OAUTHBEARER: a valid token
// gets an empty reply and requests follow; a refused one gets the error challenge, and the %x01 reply a close.
#[test]
fn oauthbearer_over_the_raw_v0_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("k");
    let broker = start(&dir, &issuer, &["connection.failed.authentication.delay.ms=0"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    let handshake_v0 = |stream: &mut TcpStream| {
        let request = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("OAUTHBEARER"));
        let response: SaslHandshakeResponse = call(stream, ApiKey::SaslHandshake, 0, &request).unwrap();
        assert_eq!(response.error_code, 0);
    };
    let mut stream = connect(&addr);
    handshake_v0(&mut stream);
    assert_eq!(raw_token(&mut stream, &client_message(&issuer.token("alice", 600))), Some(vec![]));
    assert!(metadata(&mut stream).is_some());

    let mut stream = connect(&addr);
    handshake_v0(&mut stream);
    let challenge = raw_token(&mut stream, &client_message(&issuer.token("alice", -600))).unwrap();
    assert_eq!(&challenge[..], br#"{"status":"invalid_token"}"#);
    assert_eq!(raw_token(&mut stream, b"\x01"), None, "the failure closes the connection");
}

// Goal: a key added to the JWKS file is used without a restart, and a key removed from it is no longer trusted.
// Method: tokens of a second issuer before and after the file is replaced (the broker checks it once a second).
#[test]
fn a_rotated_jwks_file_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (Issuer::new("old"), Issuer::new("new"));
    let broker = start(&dir, &old, &["connection.failed.authentication.delay.ms=0"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    let accepted = |issuer: &Issuer| {
        let mut stream = connect(&addr);
        assert_eq!(handshake(&mut stream).error_code, 0);
        authenticate(&mut stream, &client_message(&issuer.token("alice", 600))).unwrap().auth_bytes.is_empty()
    };
    assert!(accepted(&old) && !accepted(&new));
    common::jwt::write_jwks(&dir.path().join("jwks.json"), &[&new]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !accepted(&new) {
        assert!(Instant::now() < deadline, "the new key is never used: {}", broker.logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!accepted(&old), "a key removed from the file is no longer trusted");
    assert!(broker.logs().contains("JWKS file reloaded"), "{}", broker.logs());
}

// Goal: the session lifetime is min(connections.max.reauth.ms, token expiry - now); without either bound it is 0.
// Method: raw clients against brokers with and without connections.max.reauth.ms.
#[test]
fn session_lifetime_follows_the_token_and_connections_max_reauth_ms() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("k");
    let broker = start(&dir, &issuer, &[]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    let (_, response) = authenticated(&addr, &issuer.token("alice", 60));
    let lifetime = response.session_lifetime_ms;
    assert!((55_000..=60_000).contains(&lifetime), "the token's remaining life: {lifetime}");
    drop(broker);

    let dir = tempfile::tempdir().unwrap();
    let broker = start(&dir, &issuer, &["connections.max.reauth.ms=5000"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    assert_eq!(authenticated(&addr, &issuer.token("alice", 60)).1.session_lifetime_ms, 5000);
    let lifetime = authenticated(&addr, &issuer.token("alice", 3)).1.session_lifetime_ms;
    assert!((1..=3000).contains(&lifetime), "a token expiring sooner wins: {lifetime}");
}

// Goal: KIP-368 on one live connection: a SaslHandshake within a second of the last authentication gets
// ILLEGAL_SASL_STATE; after that the same principal re-authenticates and requests go on; a different principal
// is refused and the connection closed; a session left to expire is closed at its next request.
// Method: raw clients, connections.max.reauth.ms=1500.
#[test]
fn reauthentication_keeps_the_principal_and_expired_sessions_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("k");
    let broker = start(&dir, &issuer, &["connections.max.reauth.ms=1500"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");

    let (mut stream, response) = authenticated(&addr, &issuer.token("alice", 3600));
    assert_eq!(response.session_lifetime_ms, 1500);
    assert!(metadata(&mut stream).is_some());
    assert_eq!(handshake(&mut stream).error_code, 34, "ILLEGAL_SASL_STATE within a second");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(handshake(&mut stream).error_code, 0);
    let again = authenticate(&mut stream, &client_message(&issuer.token("alice", 3600))).unwrap();
    assert_eq!((again.error_code, again.session_lifetime_ms), (0, 1500));
    assert!(metadata(&mut stream).is_some(), "requests go on after re-authentication");

    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(handshake(&mut stream).error_code, 0);
    let bob = authenticate(&mut stream, &client_message(&issuer.token("bob", 3600))).unwrap();
    assert_eq!(bob.error_code, 58, "a changed principal fails the re-authentication");
    assert!(closed(&mut stream));

    let (mut stream, _) = authenticated(&addr, &issuer.token("alice", 3600));
    std::thread::sleep(Duration::from_millis(1700));
    assert!(metadata(&mut stream).is_none(), "an expired session gets no answer");
    let logs = broker.logs();
    assert!(logs.contains("re-authentication as User:bob changes the principal User:alice"), "{logs}");
    assert!(logs.contains("SASL session expired without re-authentication"), "{logs}");
}

// Goal: librdkafka re-authenticates on its live connection (KIP-368) and keeps producing. Method:
// connections.max.reauth.ms=2000 and a producer sending for 8 s; every record is acknowledged, and the broker's
// debug log shows re-authentications of one connection (the same peer address authenticated three times or more).
#[tokio::test]
async fn librdkafka_reauthenticates_while_producing() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new("k");
    let broker = start(&dir, &issuer, &["connections.max.reauth.ms=2000"]);
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    let context = Token::new(issuer.token("alice", 3600));
    let producer: FutureProducer<Token> = client(&addr).create_with_context(context.clone()).unwrap();
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let value = format!("v-{sent}");
        producer
            .send(FutureRecord::to("reauth-topic").key("k").payload(&value), Duration::from_secs(10))
            .await
            .unwrap_or_else(|(e, _)| panic!("produce at {:?}: {e}; {}", started.elapsed(), context.errors()));
        sent += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent > 30, "{sent}");
    let logs = broker.logs();
    let peers: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("SASL client authenticated") && l.contains("reauthentication=true"))
        .filter_map(|l| l.split("peer=").nth(1)?.split_whitespace().next())
        .collect();
    let most = peers.iter().map(|p| peers.iter().filter(|q| *q == p).count()).max().unwrap_or(0);
    assert!(most >= 2, "one connection re-authenticated at least twice: {peers:?}\n{logs}");
    assert!(!logs.contains("SASL session expired"), "{logs}");
}
