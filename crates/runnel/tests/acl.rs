//! ACL authorization end to end: the real `runnel` binary with the
//! StandardAuthorizer, a SASL_PLAINTEXT listener with the PLAIN users admin
//! (a super user), alice and bob, librdkafka clients as users run them, the
//! `runnel acl` command, and a raw SASL client for what must happen on one
//! connection.
//!
//! Covered: a principal without WRITE gets TOPIC_AUTHORIZATION_FAILED on
//! produce and sees no topics in Metadata; ACLs created with `runnel acl
//! create` let it produce and read; a prefixed ACL grants a family of
//! topics; a consumer group needs READ on the group; an ACL added or deleted
//! while a connection stays open takes effect on that connection; ACLs
//! survive a restart; `runnel acl list|delete` show and remove them; the
//! ACL APIs answer SECURITY_DISABLED without an authorizer.

mod common;

use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

use bytes::Bytes;
use common::wire::call;
use common::BrokerProcess;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, DescribeAclsRequest, DescribeAclsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::Message;

const JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin=\"admin-secret\" user_alice=\"alice-secret\" user_bob=\"bob-secret\";";
const AUTHORIZER: &str = "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const TIMEOUT: Duration = Duration::from_secs(20);

fn start(dir: &tempfile::TempDir) -> (BrokerProcess, String) {
    let settings =
        ["listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0", JAAS, AUTHORIZER, "super.users=User:admin"];
    let env = [("RUST_LOG", "info,runnel_broker::authz=debug")];
    let broker = BrokerProcess::start_with_env(&dir.path().join("data"), &settings, &env);
    let sasl = broker.listener_addr("SASL_PLAINTEXT");
    (broker, sasl)
}

fn client(addr: &str, user: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanisms", "PLAIN")
        .set("sasl.username", user)
        .set("sasl.password", format!("{user}-secret"))
        .set("message.timeout.ms", "10000")
        .set("enable.idempotence", "false")
        .set("allow.auto.create.topics", "false")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100");
    config
}

/// `runnel acl ARGS` as admin over SASL_PLAINTEXT.
fn acl_cli(addr: &str, args: &[&str]) -> Output {
    let auth = [
        "--brokers",
        addr,
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=PLAIN",
        "-X",
        "sasl.username=admin",
        "-X",
        "sasl.password=admin-secret",
    ];
    let output = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .arg("acl")
        .args(args)
        .args(auth)
        .env_remove("RUNNEL_BROKERS")
        .env_remove("RUNNEL_PROFILE")
        .output()
        .expect("run runnel acl");
    assert!(
        output.status.success(),
        "runnel acl {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

async fn create_topics(addr: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = client(addr, "admin").create().unwrap();
    let topics: Vec<NewTopic> = names.iter().map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1))).collect();
    for result in admin.create_topics(&topics, &AdminOptions::new()).await.unwrap() {
        result.unwrap();
    }
}

async fn produce(config: &ClientConfig, topic: &str, value: &str) -> Result<(), KafkaError> {
    let producer: FutureProducer = config.create().unwrap();
    producer.send(FutureRecord::to(topic).key("k").payload(value), TIMEOUT).await.map(|_| ()).map_err(|(e, _)| e)
}

fn topics_seen(config: &ClientConfig) -> Vec<String> {
    let consumer: BaseConsumer = config.create().unwrap();
    let metadata = consumer.fetch_metadata(None, TIMEOUT).unwrap();
    let mut names: Vec<String> = metadata.topics().iter().map(|t| t.name().to_string()).collect();
    names.sort();
    names
}

/// A raw connection authenticated as `user` with SASL/PLAIN.
fn sasl_connection(addr: &str, user: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    let r: SaslHandshakeResponse = call(&mut stream, ApiKey::SaslHandshake, 1, &handshake).unwrap();
    assert_eq!(r.error_code, 0);
    let token = format!("\0{user}\0{user}-secret");
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token.into_bytes()));
    let r: SaslAuthenticateResponse = call(&mut stream, ApiKey::SaslAuthenticate, 2, &auth).unwrap();
    assert_eq!(r.error_code, 0);
    stream
}

/// Produce v9 of one record to partition 0 of `topic`: its error code.
fn raw_produce(stream: &mut TcpStream, topic: &str) -> i16 {
    let batch = Bytes::from(
        runnel_log::testing::BatchBuilder::new(1_700_000_000_000).record(Some(b"k"), Some(b"v"), 0).build(),
    );
    let data = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch))]);
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(10_000).with_topic_data(vec![data]);
    let r: ProduceResponse = call(stream, ApiKey::Produce, 9, &request).unwrap();
    r.responses[0].partition_responses[0].error_code
}

fn raw_metadata(stream: &mut TcpStream) -> Vec<String> {
    let r: MetadataResponse =
        call(stream, ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None)).unwrap();
    let mut names: Vec<String> = r.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.to_string())).collect();
    names.sort();
    names
}

const TOPIC_AUTHORIZATION_FAILED: i16 = 29;

/// The next message or error of `consumer`; `poll` also returns `None` when
/// it only served an event, so it is called until the deadline.
fn next(consumer: &BaseConsumer) -> Result<rdkafka::message::OwnedMessage, KafkaError> {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => return Ok(m.detach()),
            Some(Err(e)) => return Err(e),
            None => {}
        }
    }
    panic!("no message and no error within {TIMEOUT:?}");
}

// Goal: ACLs decide what a SASL user may produce, read and see, and a
// change applies to a connection that stays open. Method: alice produces
// with librdkafka before and after `runnel acl create`; a raw connection of
// bob's stays open while ACLs for bob are created and deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_decide_produce_consume_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, addr) = start(&dir);
    create_topics(&addr, &["orders", "sales-eu", "sales-us", "secret"]).await;
    let alice = client(&addr, "alice");

    // No ACL: produce is refused and Metadata shows nothing.
    match produce(&alice, "orders", "denied").await {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)) => {}
        other => panic!("expected TOPIC_AUTHORIZATION_FAILED, got {other:?}"),
    }
    assert!(topics_seen(&alice).is_empty());
    // librdkafka asked Metadata for the topic first: DESCRIBE was denied.
    let metrics = common::http_get(&broker.http_addr(), "/metrics");
    assert!(
        metrics.lines().any(|l| l.starts_with("runnel_authorization_denied_total")
            && l.contains("operation=\"DESCRIBE\"")
            && l.contains("resource_type=\"TOPIC\"")),
        "{metrics}"
    );

    acl_cli(&addr, &["create", "--principal", "User:alice", "--operation", "WRITE", "--topic", "orders"]);
    produce(&alice, "orders", "allowed").await.expect("alice may write orders");
    assert_eq!(topics_seen(&alice), ["orders"], "WRITE implies DESCRIBE");

    // A prefixed ACL grants a family of topics.
    for topic in ["sales-eu", "sales-us"] {
        produce(&client(&addr, "admin"), topic, "sale").await.unwrap();
    }
    acl_cli(
        &addr,
        &[
            "create",
            "--principal",
            "User:alice",
            "--operation",
            "READ",
            "--topic",
            "sales-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    assert_eq!(topics_seen(&alice), ["orders", "sales-eu", "sales-us"]);
    // librdkafka looks up the coordinator of its group.id even for assigned
    // partitions: DESCRIBE on the group (implied by READ) is needed.
    acl_cli(
        &addr,
        &[
            "create",
            "--principal",
            "User:alice",
            "--operation",
            "READ",
            "--group",
            "alice-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    let mut alice = alice.clone();
    alice.set("group.id", "alice-reader");
    let consumer: BaseConsumer = alice.create().unwrap();
    let read = common::read_partition(&consumer, "sales-us", 0, 0, 1, TIMEOUT);
    assert_eq!(read.len(), 1);

    // A change applies to an open connection at once.
    let mut bob = sasl_connection(&addr, "bob");
    assert_eq!(raw_produce(&mut bob, "secret"), TOPIC_AUTHORIZATION_FAILED);
    assert!(raw_metadata(&mut bob).is_empty());
    acl_cli(&addr, &["create", "--principal", "User:bob", "--operation", "WRITE", "--topic", "secret"]);
    assert_eq!(raw_produce(&mut bob, "secret"), 0);
    assert_eq!(raw_metadata(&mut bob), ["secret"]);
    let deleted = acl_cli(&addr, &["delete", "--principal", "User:bob", "--topic", "secret", "--format", "json"]);
    let deleted: serde_json::Value = serde_json::from_slice(&deleted.stdout).unwrap();
    assert_eq!(deleted.as_array().unwrap().len(), 1, "{deleted}");
    assert_eq!(raw_produce(&mut bob, "secret"), TOPIC_AUTHORIZATION_FAILED);

    // A deny beats the prefixed allow.
    acl_cli(
        &addr,
        &["create", "--principal", "User:alice", "--operation", "READ", "--permission", "deny", "--topic", "sales-us"],
    );
    let consumer: BaseConsumer = alice.create().unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset("sales-us", 0, rdkafka::Offset::Beginning).unwrap();
    consumer.assign(&tpl).unwrap();
    let error = next(&consumer).expect_err("a read despite the deny");
    assert!(error.to_string().contains("authoriz"), "{error}");
}

// Goal: a consumer group needs READ on the group as well as on the topic.
// Method: alice subscribes with READ on the topic only, then the group ACL
// is added and a new consumer of the group reads and commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_groups_need_read_on_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr) = start(&dir);
    create_topics(&addr, &["events"]).await;
    produce(&client(&addr, "admin"), "events", "e1").await.unwrap();
    acl_cli(&addr, &["create", "--principal", "User:alice", "--operation", "READ", "--topic", "events"]);

    let mut config = client(&addr, "alice");
    config.set("group.id", "billing").set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&["events"]).unwrap();
    let error = next(&consumer).expect_err("consumed without READ on the group");
    assert!(error.to_string().contains("Group authorization failed"), "{error}");
    drop(consumer);

    acl_cli(&addr, &["create", "--principal", "User:alice", "--operation", "READ", "--group", "billing"]);
    let consumer: BaseConsumer = config.create().unwrap();
    consumer.subscribe(&["events"]).unwrap();
    let message = next(&consumer).expect("consume with the group ACL");
    assert_eq!(message.payload(), Some(&b"e1"[..]));
    consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync).expect("commit with READ on the group");
}

// Goal: idempotent and transactional producers get Kafka's checks. Method:
// with WRITE on the topic only, an idempotent producer works (KIP-679: no
// IDEMPOTENT_WRITE needed) and a transactional one is refused with
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED until WRITE on its transactional id
// is granted; then it commits a transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_and_transactional_producers() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, addr) = start(&dir);
    create_topics(&addr, &["payments"]).await;
    acl_cli(&addr, &["create", "--principal", "User:alice", "--operation", "WRITE", "--topic", "payments"]);

    let mut idempotent = client(&addr, "alice");
    idempotent.set("enable.idempotence", "true");
    produce(&idempotent, "payments", "once").await.expect("idempotent produce with WRITE on the topic");

    let mut transactional = client(&addr, "alice");
    transactional.set("enable.idempotence", "true").set("transactional.id", "payments-tx");
    let producer: FutureProducer = transactional.create().unwrap();
    let error = producer.init_transactions(TIMEOUT).expect_err("no WRITE on the transactional id");
    assert_eq!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::TransactionalIdAuthorizationFailed), "{error}");
    drop(producer);

    acl_cli(
        &addr,
        &["create", "--principal", "User:alice", "--operation", "WRITE", "--transactional-id", "payments-tx"],
    );
    let producer: FutureProducer = transactional.create().unwrap();
    producer.init_transactions(TIMEOUT).expect("init with WRITE on the transactional id");
    producer.begin_transaction().unwrap();
    producer.send(FutureRecord::to("payments").key("k").payload("in-txn"), TIMEOUT).await.map_err(|(e, _)| e).unwrap();
    producer.commit_transaction(TIMEOUT).expect("commit");
}

// Goal: ACLs are metadata and survive a restart; `runnel acl list` shows
// them. Method: create two, restart, list as JSON, produce as alice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (mut broker, addr) = start(&dir);
    create_topics(&addr, &["kept"]).await;
    acl_cli(
        &addr,
        &["create", "--principal", "User:alice", "--operation", "WRITE", "--operation", "READ", "--topic", "kept"],
    );
    broker.terminate();
    broker.restart();
    let addr = broker.listener_addr("SASL_PLAINTEXT");
    let listed = acl_cli(&addr, &["list", "--format", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{listed}");
    assert!(rows.iter().all(|r| r["principal"] == "User:alice" && r["resource_name"] == "kept"), "{listed}");
    assert!(rows.iter().any(|r| r["operation"] == "WRITE" && r["permission"] == "ALLOW"), "{listed}");
    produce(&client(&addr, "alice"), "kept", "after restart").await.expect("the ACL survived");
}

// Goal: without an authorizer the ACL APIs say so. Method: DescribeAcls and
// `runnel acl list` on a broker with no authorizer.class.name.
#[test]
fn acl_apis_answer_security_disabled_without_an_authorizer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&dir.path().join("data"), &[]);
    let mut stream = TcpStream::connect(&broker.addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let request = DescribeAclsRequest::default()
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_resource_type_filter(1)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1);
    let r: DescribeAclsResponse = call(&mut stream, ApiKey::DescribeAcls, 3, &request).unwrap();
    assert_eq!(r.error_code, 54, "SECURITY_DISABLED");

    // The command says so too, and refuses to delete every ACL at once.
    let runnel = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_runnel")).args(args).env_remove("RUNNEL_BROKERS").output().unwrap()
    };
    let list = runnel(&["acl", "list", "--brokers", &broker.addr]);
    assert!(!list.status.success());
    assert!(String::from_utf8_lossy(&list.stderr).contains("No Authorizer is configured"), "{list:?}");
    let delete = runnel(&["acl", "delete", "--brokers", &broker.addr]);
    assert!(!delete.status.success());
    assert!(String::from_utf8_lossy(&delete.stderr).contains("refusing to delete every ACL"), "{delete:?}");
}
