//! SASL/SCRAM end to end: the real `runnel` binary with a PLAINTEXT listener
//! (for the first user) and a SCRAM-only SASL_PLAINTEXT listener, driven by
//! librdkafka, by the `runnel user` command and by a raw client for what
//! librdkafka does not show (the SCRAM messages, timings, SaslHandshake v0).
//!
//! Covered: credentials set through `runnel user create` and through a raw
//! AlterUserScramCredentials produce and consume with SCRAM-SHA-256 and
//! SCRAM-SHA-512; a wrong password, an unknown user and the wrong mechanism
//! are refused; a deleted credential stops working on the next connection
//! without a restart; credentials survive a restart; `runnel user` works over
//! SASL_PLAINTEXT as a SCRAM user; an unknown user gets a stable salt and
//! fails at the final step exactly like a wrong password, after the same
//! delay; raw SaslHandshake v0 tokens carry the exchange for old clients.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use common::wire::call;
use common::BrokerProcess;
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use runnel_broker::sasl::scram::{client_proof, salted_password, ScramMechanism};

const GENERIC: &str = "Authentication failed: Invalid username or password";

fn start(dir: &tempfile::TempDir, extra: &[&str]) -> BrokerProcess {
    let mut settings = vec![
        "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
    ];
    settings.extend_from_slice(extra);
    let env = [("RUST_LOG", "info,runnel_broker::sasl=debug")];
    BrokerProcess::start_with_env(&dir.path().join("data"), &settings, &env)
}

/// Runs `runnel ARGS` with `stdin` piped in; its output.
fn runnel(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .args(args)
        .env_remove("RUNNEL_BROKERS")
        .env_remove("RUNNEL_PROFILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn runnel");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(output: Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "stdout: {text}\nstderr: {}", String::from_utf8_lossy(&output.stderr));
    text
}

/// Whether librdkafka fails to fetch metadata with these credentials.
fn refused(addr: &str, mechanism: &str, user: &str, password: &str) -> bool {
    let consumer: BaseConsumer = scram_client(addr, mechanism, user, password).create().unwrap();
    // librdkafka reports a refused login as a transport failure or a timeout; the broker's log says why.
    consumer.fetch_metadata(None, Duration::from_secs(3)).is_err()
}

/// An upsertion as Kafka's admin client computes it.
fn upsertion(user: &str, mechanism: ScramMechanism, iterations: i32, password: &str) -> ScramCredentialUpsertion {
    let salt = vec![42u8; 32];
    let salted = salted_password(mechanism, password.as_bytes(), &salt, iterations as u32);
    ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(user.to_string()))
        .with_mechanism(mechanism.kafka_type())
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted))
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

fn alter(addr: &str, upsertions: Vec<ScramCredentialUpsertion>) -> Vec<i16> {
    let request = AlterUserScramCredentialsRequest::default().with_upsertions(upsertions);
    let response: AlterUserScramCredentialsResponse =
        call(&mut connect(addr), ApiKey::AlterUserScramCredentials, 0, &request).unwrap();
    response.results.iter().map(|r| r.error_code).collect()
}

// Goal: credentials from the CLI and from AlterUserScramCredentials work with librdkafka for both mechanisms,
// bad logins are refused, deletion takes effect on the next connection and credentials survive a restart.
// Method: one broker; `runnel user` on the PLAINTEXT listener, then on the SASL listener as a SCRAM user;
// librdkafka clients on the SCRAM-only SASL_PLAINTEXT listener.
#[tokio::test]
async fn scram_users_from_the_cli_and_the_api_produce_and_consume() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = start(&dir, &[]);
    let plain = broker.listener_addr("PLAINTEXT");
    let sasl = broker.listener_addr("SASL_PLAINTEXT");
    let created = runnel(
        &["user", "create", "alice", "--mechanism", "SCRAM-SHA-256", "--password-stdin", "--brokers", &plain],
        "alice-secret\n",
    );
    assert!(ok(created).contains("SCRAM-SHA-256 credential of user alice"));
    assert_eq!(alter(&plain, vec![upsertion("bob", ScramMechanism::Sha512, 8192, "bob-secret")]), vec![0]);
    assert!(!broker.logs().contains("alice-secret") && !broker.logs().contains("bob-secret"));

    round_trip(&scram_client(&sasl, "SCRAM-SHA-256", "alice", "alice-secret"), "scram-256").await;
    round_trip(&scram_client(&sasl, "SCRAM-SHA-512", "bob", "bob-secret"), "scram-512").await;
    assert!(broker.logs().contains("principal=User:alice") && broker.logs().contains("principal=User:bob"));
    assert!(refused(&sasl, "SCRAM-SHA-256", "alice", "wrong"));
    assert!(refused(&sasl, "SCRAM-SHA-512", "alice", "alice-secret"), "alice has no SCRAM-SHA-512 credential");
    assert!(refused(&sasl, "SCRAM-SHA-512", "carol", "bob-secret"));
    let logs = broker.logs();
    assert!(logs.contains("SASL SCRAM-SHA-256 authentication failed for user alice: wrong password"), "{logs}");
    assert!(logs.contains("SASL SCRAM-SHA-512 authentication failed for user carol: unknown user"), "{logs}");
    let metrics = common::http_get(&broker.http_addr(), "/metrics");
    for line in [
        r#"runnel_sasl_authentications_total{listener="SASL_PLAINTEXT",mechanism="SCRAM-SHA-512",result="success"}"#,
        r#"runnel_sasl_authentications_total{listener="SASL_PLAINTEXT",mechanism="SCRAM-SHA-256",result="failure"}"#,
        r#"runnel_scram_credential_changes_total{operation="upsert"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    // As bob over SASL_PLAINTEXT: list, and delete alice; alice's next connection is refused.
    let as_bob = [
        "--brokers",
        &sasl,
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=SCRAM-SHA-512",
        "-X",
        "sasl.username=bob",
        "-X",
        "sasl.password=bob-secret",
    ];
    let listed = ok(runnel(&[&["user", "list", "--format", "json"][..], &as_bob].concat(), ""));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([
            {"user": "alice", "mechanism": "SCRAM-SHA-256", "iterations": 4096},
            {"user": "bob", "mechanism": "SCRAM-SHA-512", "iterations": 8192},
        ])
    );
    ok(runnel(&[&["user", "delete", "alice"][..], &as_bob].concat(), ""));
    assert!(refused(&sasl, "SCRAM-SHA-256", "alice", "alice-secret"), "a deleted user is refused");
    let logs = broker.logs();
    assert!(logs.contains("SASL SCRAM-SHA-256 authentication failed for user alice: unknown user"), "{logs}");
    let wrong = runnel(
        &[
            "user",
            "list",
            "--brokers",
            &sasl,
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanism=SCRAM-SHA-512",
            "-X",
            "sasl.username=bob",
            "-X",
            "sasl.password=nope",
        ],
        "",
    );
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains(GENERIC), "{wrong:?}");

    broker.terminate();
    broker.restart();
    let sasl = broker.listener_addr("SASL_PLAINTEXT");
    round_trip(&scram_client(&sasl, "SCRAM-SHA-512", "bob", "bob-secret"), "scram-after-restart").await;
    assert!(refused(&sasl, "SCRAM-SHA-256", "alice", "alice-secret"), "the deletion survives the restart");
    let table = ok(runnel(&["user", "list", "--brokers", &broker.listener_addr("PLAINTEXT")], ""));
    assert_eq!(table.lines().collect::<Vec<_>>(), vec!["USER  MECHANISM      ITERATIONS", "bob   SCRAM-SHA-512  8192"]);
}

/// The raw SCRAM client's two steps; `frame` sends one token and returns the server's.
fn scram_login(
    mechanism: ScramMechanism,
    user: &str,
    password: &str,
    mut frame: impl FnMut(Vec<u8>) -> Option<Vec<u8>>,
) -> (String, Option<Vec<u8>>) {
    let bare = format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL");
    let server_first = String::from_utf8(frame(format!("n,,{bare}").into_bytes()).expect("server-first")).unwrap();
    let mut fields = server_first.split(',');
    let nonce = fields.next().unwrap().strip_prefix("r=").unwrap().to_string();
    let salt = BASE64.decode(fields.next().unwrap().strip_prefix("s=").unwrap()).unwrap();
    let iterations: u32 = fields.next().unwrap().strip_prefix("i=").unwrap().parse().unwrap();
    let salted = salted_password(mechanism, password.as_bytes(), &salt, iterations);
    let without_proof = format!("c=biws,r={nonce}");
    let auth = format!("{bare},{server_first},{without_proof}");
    let (proof, _) = client_proof(mechanism, &salted, auth.as_bytes());
    let last = frame(format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes());
    (server_first, last)
}

/// A SaslHandshake v1 + SaslAuthenticate v2 login; server-first, the final response and its duration.
fn framed_login(addr: &str, user: &str, password: &str) -> (String, SaslAuthenticateResponse, Duration, TcpStream) {
    let mut stream = connect(addr);
    let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-512"));
    let response: SaslHandshakeResponse = call(&mut stream, ApiKey::SaslHandshake, 1, &handshake).unwrap();
    assert_eq!(response.error_code, 0);
    let mut last = None;
    let mut took = Duration::ZERO;
    let (server_first, _) = scram_login(ScramMechanism::Sha512, user, password, |token| {
        let started = Instant::now();
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
        let response: SaslAuthenticateResponse = call(&mut stream, ApiKey::SaslAuthenticate, 2, &request).unwrap();
        took = started.elapsed();
        let bytes = response.auth_bytes.to_vec();
        last = Some(response);
        Some(bytes)
    });
    (server_first, last.unwrap(), took, stream)
}

// Goal: an unknown user cannot be told from a wrong password: it gets a salt and iterations of the same shape,
// the same each time, and fails at the final step with the same code, message and delay; the right password
// gets server-final. Method: a raw SCRAM-SHA-512 client with connection.failed.authentication.delay.ms=300.
#[test]
fn unknown_users_fail_like_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(&dir, &["connection.failed.authentication.delay.ms=300"]);
    let (plain, sasl) = (broker.listener_addr("PLAINTEXT"), broker.listener_addr("SASL_PLAINTEXT"));
    assert_eq!(alter(&plain, vec![upsertion("alice", ScramMechanism::Sha512, 4096, "pw")]), vec![0]);
    let (_, good, _, _) = framed_login(&sasl, "alice", "pw");
    assert_eq!(good.error_code, 0);
    assert!(String::from_utf8(good.auth_bytes.to_vec()).unwrap().starts_with("v="));

    let shape = |server_first: &str| {
        let fields: Vec<&str> = server_first.split(',').collect();
        (BASE64.decode(&fields[1][2..]).unwrap().len(), fields[2].to_string())
    };
    let mut times = Vec::new();
    let mut ghost_salts = Vec::new();
    for (user, password) in [("alice", "wrong"), ("ghost", "pw"), ("alice", "wrong"), ("ghost", "x")] {
        let (server_first, refused, took, mut stream) = framed_login(&sasl, user, password);
        assert_eq!(shape(&server_first), (32, "i=4096".to_string()), "{user}: {server_first}");
        assert_eq!(refused.error_code, 58, "SASL_AUTHENTICATION_FAILED");
        assert_eq!(refused.error_message.as_deref(), Some(GENERIC));
        let mut byte = [0u8; 1];
        assert!(matches!(stream.read(&mut byte), Ok(0) | Err(_)), "the connection is closed");
        assert!(took >= Duration::from_millis(300), "{took:?}");
        times.push(took);
        if user == "ghost" {
            ghost_salts.push(server_first.split(',').nth(1).unwrap().to_string());
        }
    }
    assert_eq!(ghost_salts[0], ghost_salts[1], "an unknown user's salt is stable");
    let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
    assert!(*max - *min < Duration::from_millis(250), "failures take the same time: {times:?}");
}

// Goal: old clients' SaslHandshake v0 followed by raw tokens carries the SCRAM exchange: server-first and
// server-final come back as raw tokens, and a wrong password closes the connection. Method: a raw client.
#[test]
fn handshake_v0_raw_tokens_carry_scram() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(&dir, &["connection.failed.authentication.delay.ms=0"]);
    let (plain, sasl) = (broker.listener_addr("PLAINTEXT"), broker.listener_addr("SASL_PLAINTEXT"));
    assert_eq!(alter(&plain, vec![upsertion("alice", ScramMechanism::Sha256, 4096, "pw")]), vec![0]);
    for (password, accepted) in [("pw", true), ("wrong", false)] {
        let mut stream = connect(&sasl);
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("SCRAM-SHA-256"));
        let response: SaslHandshakeResponse = call(&mut stream, ApiKey::SaslHandshake, 0, &handshake).unwrap();
        assert_eq!(response.error_code, 0);
        let (_, last) = scram_login(ScramMechanism::Sha256, "alice", password, |token| {
            stream.write_all(&(token.len() as u32).to_be_bytes()).unwrap();
            stream.write_all(&token).unwrap();
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).ok()?;
            let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
            stream.read_exact(&mut reply).ok()?;
            Some(reply)
        });
        match accepted {
            true => assert!(String::from_utf8(last.expect("server-final")).unwrap().starts_with("v=")),
            false => assert!(last.is_none(), "a failed raw exchange is a close"),
        }
    }
    // Authenticated over v0, the connection serves requests.
    assert!(broker.logs().contains("principal=User:alice"), "{}", broker.logs());
}

// Goal: the first SCRAM user can be made by a PLAIN user on a listener that offers both, with no PLAINTEXT
// listener at all, and then logs in with SCRAM. Method: `runnel user create` with librdkafka-style PLAIN
// properties, then a librdkafka SCRAM round trip on the same listener.
#[tokio::test]
async fn a_plain_admin_creates_the_first_scram_user() {
    let dir = tempfile::tempdir().unwrap();
    let jaas = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\";";
    let settings = [
        "listeners=SASL_PLAINTEXT://127.0.0.1:0",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256",
        jaas,
    ];
    let broker = BrokerProcess::start_with_env(&dir.path().join("data"), &settings, &[("RUST_LOG", "info")]);
    let sasl = broker.listener_addr("SASL_PLAINTEXT");
    let as_admin =
        ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanism=PLAIN", "-X", "sasl.username=admin"];
    let args = [
        &["user", "create", "dana", "--mechanism", "SCRAM-SHA-256", "--password-stdin", "--brokers", &sasl][..],
        &as_admin,
    ];
    let refused = runnel(&[&args.concat()[..], &["-X", "sasl.password=wrong"]].concat(), "dana-secret");
    assert!(!refused.status.success(), "a wrong PLAIN password creates nothing");
    ok(runnel(&[&args.concat()[..], &["-X", "sasl.password=admin-secret"]].concat(), "dana-secret"));
    round_trip(&scram_client(&sasl, "SCRAM-SHA-256", "dana", "dana-secret"), "scram-first-user").await;
}

fn scram_client(addr: &str, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    common::sasl_client(addr, "SASL_PLAINTEXT", mechanism, user, password)
}

async fn round_trip(config: &ClientConfig, topic: &str) {
    common::sasl_round_trip(config, topic, 5).await
}
