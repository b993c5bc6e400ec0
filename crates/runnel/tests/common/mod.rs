//! Test harness: runs the real `runnel` binary on a free loopback port with a
//! data directory of its own, and gives tests rdkafka clients for it.
//!
//! A broker is started with `--listen 127.0.0.1:0`; the harness reads the
//! "runnel listening on ADDR" line from stdout to learn the port, so tests
//! never race for ports. Broker logs go to a file in the data directory's
//! parent and are printed when a test fails to start a broker.

#![allow(dead_code)]

pub mod ca;
pub mod jwt;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};

/// How long a broker may take to start (including recovery) in tests.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running broker process.
pub struct BrokerProcess {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
}

impl BrokerProcess {
    /// Starts a broker on a fresh port over `data_dir` with `--set` overrides.
    pub fn start(data_dir: &Path, settings: &[&str]) -> BrokerProcess {
        let extra_args: Vec<String> = settings.iter().flat_map(|s| ["--set".to_string(), s.to_string()]).collect();
        let log_path = data_dir.with_extension("log");
        let (child, addr) = spawn(data_dir, &extra_args, &[], &log_path);
        BrokerProcess { child: Some(child), addr, data_dir: data_dir.to_path_buf(), log_path, extra_args, env: vec![] }
    }

    /// Starts a broker like [`BrokerProcess::start`] with extra environment variables (e.g. `RUST_LOG`).
    pub fn start_with_env(data_dir: &Path, settings: &[&str], env: &[(&str, &str)]) -> BrokerProcess {
        let extra_args: Vec<String> = settings.iter().flat_map(|s| ["--set".to_string(), s.to_string()]).collect();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let log_path = data_dir.with_extension("log");
        let (child, addr) = spawn(data_dir, &extra_args, &env, &log_path);
        BrokerProcess { child: Some(child), addr, data_dir: data_dir.to_path_buf(), log_path, extra_args, env }
    }

    /// The bound address of listener `name`, from its "listener bound" log line.
    pub fn listener_addr(&self, name: &str) -> String {
        let logs = self.logs();
        let field = format!("listener={name} ");
        let line = logs
            .lines()
            .rev()
            .find(|l| l.contains("listener bound") && l.contains(&field))
            .unwrap_or_else(|| panic!("no 'listener bound' line for {name}; log:\n{logs}"));
        let start = line.find("addr=").expect("addr field") + "addr=".len();
        line[start..].split_whitespace().next().expect("address").to_string()
    }

    /// Starts a broker without waiting for it to become ready; `wait_ready` waits.
    pub fn launch(data_dir: &Path, settings: &[&str]) -> (BrokerProcess, mpsc::Receiver<String>) {
        let extra_args: Vec<String> = settings.iter().flat_map(|s| ["--set".to_string(), s.to_string()]).collect();
        let log_path = data_dir.with_extension("log");
        let (child, ready) = launch(data_dir, &extra_args, &[], &log_path);
        let broker = BrokerProcess {
            child: Some(child),
            addr: String::new(),
            data_dir: data_dir.to_path_buf(),
            log_path,
            extra_args,
            env: vec![],
        };
        (broker, ready)
    }

    /// Waits for a launched broker's readiness line and records its address.
    pub fn wait_ready(&mut self, ready: &mpsc::Receiver<String>) {
        let child = self.child.take().expect("broker is running");
        let (child, addr) = await_ready(child, ready, &self.log_path);
        self.child = Some(child);
        self.addr = addr;
    }

    /// Waits until the broker has logged its HTTP admin endpoint address (it binds that before recovery).
    pub fn wait_http_addr(&self) -> String {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        while !self.logs().contains("admin endpoint serving") {
            assert!(std::time::Instant::now() < deadline, "no admin endpoint line; log:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
        self.http_addr()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("broker is running").id() as i32
    }

    /// SIGKILL: the broker gets no chance to flush or checkpoint.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id() as i32, libc::SIGKILL);
            child.wait().expect("wait for killed broker");
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        send_signal(self.pid(), libc::SIGTERM);
        self.wait_exit()
    }

    /// Waits (at most 60 s) for the broker to exit on its own; returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("wait for broker") {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                send_signal(child.id() as i32, libc::SIGKILL);
                child.wait().expect("wait for killed broker");
                panic!("broker did not exit within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the broker again over the same data directory (on a new port).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the broker before restarting it");
        let (child, addr) = spawn(&self.data_dir, &self.extra_args, &self.env, &self.log_path);
        self.child = Some(child);
        self.addr = addr;
    }

    /// The HTTP admin endpoint's address, from the broker's start-up log line.
    pub fn http_addr(&self) -> String {
        let logs = self.logs();
        let line = logs.lines().rev().find(|l| l.contains("admin endpoint serving")).expect("admin endpoint log line");
        let start = line.find("http_addr=").expect("http_addr field") + "http_addr=".len();
        line[start..].split_whitespace().next().expect("address").to_string()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn producer(&self, extra: &[(&str, &str)]) -> FutureProducer {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.addr)
            .set("enable.idempotence", "false")
            .set("message.timeout.ms", "30000")
            .set("acks", "all");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        config.create().expect("producer")
    }

    /// A consumer for manual assignment (no group protocol involved).
    pub fn consumer(&self, extra: &[(&str, &str)]) -> BaseConsumer {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.addr)
            .set("group.id", "runnel-tests-unused")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("check.crcs", "true")
            .set("fetch.wait.max.ms", "100");
        for (k, v) in extra {
            config.set(*k, *v);
        }
        config.create().expect("consumer")
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn spawn(data_dir: &Path, extra_args: &[String], env: &[(String, String)], log_path: &Path) -> (Child, String) {
    let (child, ready) = launch(data_dir, extra_args, env, log_path);
    await_ready(child, &ready, log_path)
}

/// Starts `runnel serve`; the receiver gets the address from its readiness line.
fn launch(
    data_dir: &Path,
    extra_args: &[String],
    env: &[(String, String)],
    log_path: &Path,
) -> (Child, mpsc::Receiver<String>) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(log_path).expect("broker log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_runnel"))
        .arg("serve")
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--http")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra_args)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn runnel");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if let Some(addr) = line.strip_prefix("runnel listening on ") {
                let _unused = tx.send(addr.trim().to_string());
            }
        }
    });
    (child, rx)
}

fn await_ready(mut child: Child, rx: &mpsc::Receiver<String>, log_path: &Path) -> (Child, String) {
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(addr) => (child, addr),
        Err(_) => {
            send_signal(child.id() as i32, libc::SIGKILL);
            child.wait().ok();
            let logs = std::fs::read_to_string(log_path).unwrap_or_default();
            panic!("broker did not become ready; its log:\n{logs}");
        }
    }
}

fn send_signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) with a pid of a child this harness started.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// Creates `name` with `partitions` partitions and the given topic configs through the admin API.
pub async fn create_topic(addr: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", addr).create().expect("admin client");
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    for result in admin.create_topics([&topic], &AdminOptions::new()).await.expect("create_topics") {
        result.expect("topic created");
    }
}

/// Base offsets of the `.log` files of a partition directory, sorted.
pub fn segment_bases(data_dir: &Path, topic: &str, partition: i32) -> Vec<i64> {
    let mut bases: Vec<i64> = std::fs::read_dir(data_dir.join(format!("{topic}-{partition}")))
        .expect("partition directory")
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".log")?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

/// The body (with the status line and headers) of an HTTP GET to the admin endpoint.
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the admin endpoint");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

/// A record as read back: (offset, key, value).
pub type Read = (i64, Option<Vec<u8>>, Option<Vec<u8>>);

/// Reads partition `partition` of `topic` from `from` until `count` records
/// arrived or `timeout` passed.
pub fn read_partition(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    from: i64,
    count: usize,
    timeout: Duration,
) -> Vec<Read> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(from)).expect("offset");
    consumer.assign(&tpl).expect("assign");
    let deadline = std::time::Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < count && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push((m.offset(), m.key().map(<[u8]>::to_vec), m.payload().map(<[u8]>::to_vec))),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

/// The (low, high) watermarks of a partition.
pub fn watermarks(consumer: &BaseConsumer, topic: &str, partition: i32) -> (i64, i64) {
    consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).expect("watermarks")
}

pub mod wire {
    //! A minimal blocking Kafka connection for requests rdkafka does not send (a long-polling Fetch,
    //! IncrementalAlterConfigs).
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
    use kafka_protocol::messages::fetch_response::FetchResponse;
    use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    const VERSION: i16 = 12;

    /// Sends one request of `api` at `version` on a new connection and decodes the response.
    pub fn roundtrip<Req: Encodable, Resp: Decodable>(addr: &str, api: ApiKey, version: i16, request: &Req) -> Resp {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        call(&mut stream, api, version, request).expect("a response")
    }

    /// Sends one request of `api` at `version` on `stream` and decodes the
    /// response; `None` when the broker closed the connection instead.
    pub fn call<Req: Encodable, Resp: Decodable>(
        stream: &mut TcpStream,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> Option<Resp> {
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(1)
            .with_client_id(Some(StrBytes::from_static_str("runnel-tests")));
        let mut body = BytesMut::new();
        header.encode(&mut body, api.request_header_version(version)).unwrap();
        request.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        stream.write_all(&frame).ok()?;
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).ok()?;
        let mut response = vec![0u8; i32::from_be_bytes(len) as usize];
        stream.read_exact(&mut response).ok()?;
        let mut response = Bytes::from(response);
        ResponseHeader::decode(&mut response, api.response_header_version(version)).unwrap();
        Some(Resp::decode(&mut response, version).unwrap())
    }

    pub fn fetch(addr: &str, topic: &str, offset: i64, max_wait_ms: i32) -> FetchResponse {
        let request = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        roundtrip(addr, ApiKey::Fetch, VERSION, &request)
    }
}

/// A librdkafka client configuration for a SASL listener (`protocol`
/// SASL_PLAINTEXT or SASL_SSL) logging in as `user` with `mechanism`.
pub fn sasl_client(addr: &str, protocol: &str, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", addr)
        .set("security.protocol", protocol)
        .set("sasl.mechanisms", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password)
        .set("group.id", "runnel-sasl-tests")
        .set("enable.auto.commit", "false")
        .set("message.timeout.ms", "20000")
        .set("enable.idempotence", "false")
        .set("fetch.wait.max.ms", "100");
    config
}

/// Produces `count` keyed records to partition 0 of `topic` with `config`
/// and reads them back with a consumer of the same configuration.
pub async fn sasl_round_trip(config: &ClientConfig, topic: &str, count: usize) {
    use rdkafka::producer::FutureRecord;
    let producer: FutureProducer = config.create().unwrap();
    for i in 0..count {
        let value = format!("v-{i}");
        producer
            .send(FutureRecord::to(topic).key("k").payload(&value), Duration::from_secs(20))
            .await
            .unwrap_or_else(|(e, _)| panic!("produce over SASL: {e}"));
    }
    let consumer: BaseConsumer = config.create().unwrap();
    let read = read_partition(&consumer, topic, 0, 0, count, Duration::from_secs(20));
    let values: Vec<String> = read.iter().map(|r| String::from_utf8(r.2.clone().unwrap()).unwrap()).collect();
    assert_eq!(values, (0..count).map(|i| format!("v-{i}")).collect::<Vec<_>>());
}
