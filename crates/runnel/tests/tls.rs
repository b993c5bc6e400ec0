//! TLS listeners end to end: the real `runnel` binary with a PLAINTEXT and an
//! SSL listener, driven by librdkafka (rdkafka with OpenSSL) as a Kafka user
//! would. Certificates come from a CA the test makes with `rcgen`; nothing is
//! stored in the repository.
//!
//! Covered: a produce/consume round trip over TLS with each listener
//! advertising its own address; mutual TLS (a certificate from the CA works
//! and its mapped subject becomes the principal, no certificate is refused);
//! a plaintext client on the TLS port and a TLS client on the plaintext
//! port are refused while other clients keep being served; certificate
//! files replaced on disk are used by new connections, and a broken
//! replacement keeps the previous certificate.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::ca::TestCa;
use common::BrokerProcess;
use rcgen::ExtendedKeyUsagePurpose;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// The files one test uses: the broker's keystore, the CA bundle, a client certificate and key.
struct Files {
    dir: tempfile::TempDir,
    keystore: PathBuf,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn files(ca: &TestCa) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("broker.pem");
    ca.write_keystore(&keystore);
    let ca_path = dir.path().join("ca.pem");
    ca.write_pem(&ca_path);
    let (cert, key) = ca.issue("App-1", ExtendedKeyUsagePurpose::ClientAuth);
    let client_cert = dir.path().join("client.pem");
    let client_key = dir.path().join("client.key");
    std::fs::write(&client_cert, cert).unwrap();
    std::fs::write(&client_key, key).unwrap();
    Files { keystore, ca: ca_path, client_cert, client_key, dir }
}

const LISTENERS: &str = "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0";

fn start(files: &Files, extra: &[&str]) -> BrokerProcess {
    let keystore = format!("ssl.keystore.location={}", files.keystore.display());
    let mut settings = vec![LISTENERS, keystore.as_str()];
    settings.extend_from_slice(extra);
    let env = [("RUST_LOG", "info,runnel_broker::connection=debug")];
    BrokerProcess::start_with_env(&files.dir.path().join("data"), &settings, &env)
}

/// Client settings for TLS to `addr` trusting `ca`, with an optional client certificate.
fn tls_client(addr: &str, ca: &Path, cert: Option<(&Path, &Path)>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", ca.to_str().unwrap())
        .set("group.id", "runnel-tls-tests")
        .set("enable.auto.commit", "false")
        .set("message.timeout.ms", "20000")
        .set("enable.idempotence", "false")
        .set("fetch.wait.max.ms", "100");
    if let Some((cert, key)) = cert {
        config.set("ssl.certificate.location", cert.to_str().unwrap()).set("ssl.key.location", key.to_str().unwrap());
    }
    config
}

/// The port of the one broker in a Metadata answer, or the error.
fn metadata_port(config: &ClientConfig, timeout: Duration) -> Result<i32, String> {
    let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
    let metadata = consumer.fetch_metadata(None, timeout).map_err(|e| e.to_string())?;
    Ok(metadata.brokers()[0].port())
}

fn port_of(addr: &str) -> i32 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

fn wait_for_log(broker: &BrokerProcess, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !broker.logs().contains(needle) {
        assert!(Instant::now() < deadline, "no log line with {needle:?}; log:\n{}", broker.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
}

// Goal: records produced over TLS are consumed over TLS, and each listener's clients are told that listener's
// address. Method: one broker with PLAINTEXT and SSL listeners on port 0; librdkafka over SSL produces and
// consumes; Metadata over each listener names its own port.
#[tokio::test]
async fn tls_round_trip_and_each_listener_advertises_itself() {
    let ca = TestCa::new("Runnel Test CA");
    let files = files(&ca);
    let broker = start(&files, &[]);
    let (plain, ssl) = (broker.listener_addr("PLAINTEXT"), broker.listener_addr("SSL"));
    assert_eq!(plain, broker.addr, "the first listener is the one printed on stdout");

    let client = tls_client(&ssl, &files.ca, None);
    assert_eq!(metadata_port(&client, Duration::from_secs(10)).unwrap(), port_of(&ssl));
    let mut plain_client = ClientConfig::new();
    plain_client.set("bootstrap.servers", &plain);
    assert_eq!(metadata_port(&plain_client, Duration::from_secs(10)).unwrap(), port_of(&plain));

    let producer: FutureProducer = client.create().unwrap();
    for i in 0..20 {
        let value = format!("secret-{i}");
        producer
            .send(FutureRecord::to("tls-topic").key("k").payload(&value), Duration::from_secs(20))
            .await
            .unwrap_or_else(|(e, _)| panic!("produce over TLS: {e}"));
    }
    let consumer: BaseConsumer = client.create().unwrap();
    let read = common::read_partition(&consumer, "tls-topic", 0, 0, 20, Duration::from_secs(20));
    let values: Vec<String> = read.iter().map(|r| String::from_utf8(r.2.clone().unwrap()).unwrap()).collect();
    assert_eq!(values, (0..20).map(|i| format!("secret-{i}")).collect::<Vec<_>>());
    assert!(broker.logs().contains("principal=User:ANONYMOUS"), "a client without a certificate is anonymous");
}

// Goal: with ssl.client.auth=required, a client certificate from the trusted CA is accepted and its subject,
// mapped by ssl.principal.mapping.rules, is the connection's principal; a client without a certificate is
// refused. Method: the broker logs the principal at debug; the unauthenticated client's Metadata fails.
#[tokio::test]
async fn mutual_tls_required_maps_the_subject_and_refuses_clients_without_certificates() {
    let ca = TestCa::new("Runnel Test CA");
    let files = files(&ca);
    let truststore = format!("ssl.truststore.location={}", files.ca.display());
    let broker = start(
        &files,
        &[
            "ssl.client.auth=required",
            &truststore,
            "ssl.principal.mapping.rules=RULE:^CN=(.*?),O=Other$/other/,RULE:^CN=(.*?),O=Runnel Tests$/$1/L,DEFAULT",
        ],
    );
    let ssl = broker.listener_addr("SSL");

    let with_cert = tls_client(&ssl, &files.ca, Some((&files.client_cert, &files.client_key)));
    assert_eq!(metadata_port(&with_cert, Duration::from_secs(10)).unwrap(), port_of(&ssl));
    wait_for_log(&broker, "principal=User:app-1");

    let without = tls_client(&ssl, &files.ca, None);
    let err = metadata_port(&without, Duration::from_secs(3)).expect_err("a client without a certificate is refused");
    assert!(!err.is_empty());
    wait_for_log(&broker, "TLS handshake failed");
    // The plaintext listener is unaffected by the SSL listener's client authentication.
    let mut plain = ClientConfig::new();
    plain.set("bootstrap.servers", broker.listener_addr("PLAINTEXT"));
    metadata_port(&plain, Duration::from_secs(10)).unwrap();
}

// Goal: a plaintext Kafka client on the TLS port and a TLS client on the plaintext port are refused cleanly,
// each with a log line naming the reason, and the broker keeps serving others. Method: a raw Kafka frame and
// librdkafka without TLS on the SSL port, librdkafka with TLS on the PLAINTEXT port, then good clients.
#[tokio::test]
async fn wrong_protocol_clients_are_refused_and_others_still_served() {
    use std::io::{Read, Write};
    let ca = TestCa::new("Runnel Test CA");
    let files = files(&ca);
    let broker = start(&files, &[]);
    let (plain, ssl) = (broker.listener_addr("PLAINTEXT"), broker.listener_addr("SSL"));

    // An ApiVersions v0 request in plaintext: the broker closes the connection without answering.
    let mut raw = std::net::TcpStream::connect(&ssl).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0]).unwrap();
    let mut buf = [0u8; 64];
    match raw.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("a plaintext client on the TLS port got {n} bytes back"),
    }
    wait_for_log(&broker, "not a TLS handshake (a plaintext client?) on TLS listener SSL");

    let mut plain_on_ssl = ClientConfig::new();
    plain_on_ssl.set("bootstrap.servers", &ssl);
    assert!(metadata_port(&plain_on_ssl, Duration::from_secs(3)).is_err());

    let tls_on_plain = tls_client(&plain, &files.ca, None);
    assert!(metadata_port(&tls_on_plain, Duration::from_secs(3)).is_err());
    wait_for_log(&broker, "TLS handshake (a TLS client?) on plaintext listener PLAINTEXT");

    let mut good_plain = ClientConfig::new();
    good_plain.set("bootstrap.servers", &plain);
    assert_eq!(metadata_port(&good_plain, Duration::from_secs(10)).unwrap(), port_of(&plain));
    assert_eq!(metadata_port(&tls_client(&ssl, &files.ca, None), Duration::from_secs(10)).unwrap(), port_of(&ssl));
}

// Goal: replacing the keystore file makes new connections see the new certificate without a restart, and a
// broken replacement keeps the certificate in service. Method: switch the keystore to one issued by a second
// CA; wait until a client trusting only that CA connects; then a client trusting only the first CA fails;
// then write a broken keystore and check the second CA's clients still connect.
#[tokio::test]
async fn replaced_certificates_are_used_by_new_connections() {
    let first = TestCa::new("Runnel Test CA 1");
    let files = files(&first);
    let broker = start(&files, &[]);
    let ssl = broker.listener_addr("SSL");
    let old_ca = files.ca.clone();
    assert!(metadata_port(&tls_client(&ssl, &old_ca, None), Duration::from_secs(10)).is_ok());

    let second = TestCa::new("Runnel Test CA 2");
    let new_ca = files.dir.path().join("ca2.pem");
    second.write_pem(&new_ca);
    second.write_keystore(&files.keystore);
    wait_for_log(&broker, "TLS certificates reloaded");
    let deadline = Instant::now() + Duration::from_secs(15);
    while metadata_port(&tls_client(&ssl, &new_ca, None), Duration::from_secs(2)).is_err() {
        assert!(Instant::now() < deadline, "the new certificate was never served; log:\n{}", broker.logs());
    }
    assert!(metadata_port(&tls_client(&ssl, &old_ca, None), Duration::from_secs(3)).is_err());

    std::fs::write(&files.keystore, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n").unwrap();
    wait_for_log(&broker, "keeping the previous certificates");
    assert_eq!(metadata_port(&tls_client(&ssl, &new_ca, None), Duration::from_secs(10)).unwrap(), port_of(&ssl));
}
