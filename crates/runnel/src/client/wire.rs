//! A small blocking Kafka client for the requests librdkafka's Rust binding
//! does not expose: ListGroups with group types (v5),
//! ConsumerGroupDescribe, DescribeUserScramCredentials,
//! AlterUserScramCredentials, the client quota APIs (`runnel quota`) and the
//! ACL APIs (`runnel acl`), with FindCoordinator and ApiVersions to reach them.
//!
//! A [`Connection`] is one TCP connection to one broker, over TLS and
//! authenticated with SASL when the command's `security.protocol` says so
//! (see [`super::secure`]). It asks the broker's ApiVersions first, so each
//! request goes at the highest version both sides speak, and it bounds every
//! wait and every response frame. Everything else the client commands do
//! goes through librdkafka.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::secure::{SaslClient, SaslSettings, Security, Stream};

/// The largest response frame accepted (Kafka's `socket.request.max.bytes`
/// default; group listings and descriptions are far smaller).
const RESPONSE_BYTES_MAX: usize = 100 * 1024 * 1024;

/// The ApiVersions version sent first; every broker that serves the
/// consumer group protocol answers it.
const API_VERSIONS_VERSION: i16 = 3;

/// The client id every request carries.
const CLIENT_ID: &str = "runnel-cli";

/// One connection to one broker, with the API versions it serves.
pub struct Connection {
    stream: Box<dyn Stream>,
    addr: String,
    correlation_id: i32,
    /// Supported version range per API key.
    versions: BTreeMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `addr` (`host:port`) with TLS and SASL as `security`
    /// says, asks for its API versions and authenticates. `timeout` bounds
    /// the connect and every later read and write.
    pub fn open_secure(addr: &str, security: &Security, timeout: Duration) -> anyhow::Result<Connection> {
        let tcp = connect(addr, timeout)?;
        tcp.set_read_timeout(Some(timeout))?;
        tcp.set_write_timeout(Some(timeout))?;
        tcp.set_nodelay(true)?;
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host).trim_matches(|c| c == '[' || c == ']');
        let stream = security.wrap(host, tcp)?;
        let mut conn = Connection { stream, addr: addr.to_string(), correlation_id: 0, versions: BTreeMap::new() };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("runnel"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = conn.send(API_VERSIONS_VERSION, &request)?;
        if response.error_code != 0 {
            bail!("broker {addr} refused ApiVersions v{API_VERSIONS_VERSION}: {}", error_name(response.error_code));
        }
        conn.versions = response.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        if let Some(sasl) = &security.sasl {
            conn.authenticate(sasl)?;
        }
        Ok(conn)
    }

    /// SaslHandshake v1 then SaslAuthenticate until the mechanism is done.
    fn authenticate(&mut self, sasl: &SaslSettings) -> anyhow::Result<()> {
        let (addr, name) = (self.addr.clone(), sasl.mechanism.name());
        let handshake = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(name));
        let response = self.send(1, &handshake)?;
        if response.error_code != 0 {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            bail!("broker {addr} refused SASL {name}: {} (it offers {offered:?})", error_name(response.error_code));
        }
        let version =
            self.version::<SaslAuthenticateRequest>(2).context("the broker does not serve SaslAuthenticate")?;
        let mut client = SaslClient::new(sasl);
        let mut server = Bytes::new();
        while let Some(token) = client.step(&server)? {
            let response = self.send(version, &SaslAuthenticateRequest::default().with_auth_bytes(token.into()))?;
            if response.error_code != 0 {
                let message = response.error_message.as_ref().map_or("", |m| m.as_str());
                bail!("SASL {name} authentication with {addr} failed: {} {message}", error_name(response.error_code));
            }
            server = response.auth_bytes;
        }
        Ok(())
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The highest version of `R`, up to `max`, that both this client and
    /// the broker speak; `None` when the broker does not serve `R` at all.
    pub fn version<R: Request>(&self, max: i16) -> Option<i16> {
        let (broker_min, broker_max) = *self.versions.get(&R::KEY)?;
        let version = broker_max.min(max).min(R::VERSIONS.max);
        (version >= broker_min.max(R::VERSIONS.min)).then_some(version)
    }

    /// The broker's version range of API `key`, if it serves it.
    pub fn version_of(&self, key: i16) -> Option<(i16, i16)> {
        self.versions.get(&key).copied()
    }

    /// Sends `request` at `version` and reads its response.
    pub fn send<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<R::Response> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version))?;
        request.encode(&mut body, version)?;
        let mut frame = BytesMut::with_capacity(4 + body.len());
        frame.put_i32(i32::try_from(body.len()).context("request too large")?);
        frame.extend_from_slice(&body);
        let addr = &self.addr;
        self.stream.write_all(&frame).with_context(|| format!("cannot send a request to {addr}"))?;

        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).with_context(|| format!("no response from {addr}"))?;
        let len = i32::from_be_bytes(len);
        let len = usize::try_from(len).ok().filter(|l| *l <= RESPONSE_BYTES_MAX);
        let Some(len) = len else { bail!("broker {addr} sent a response frame of a bad length") };
        let mut response = vec![0u8; len];
        self.stream.read_exact(&mut response).with_context(|| format!("response from {addr} cut short"))?;
        let mut response = Bytes::from(response);
        let header = ResponseHeader::decode(&mut response, R::Response::header_version(version))?;
        if header.correlation_id != self.correlation_id {
            bail!("broker {addr} answered request {} instead of {}", header.correlation_id, self.correlation_id);
        }
        R::Response::decode(&mut response, version)
            .with_context(|| format!("cannot read the response of {addr} to API {} v{version}", R::KEY))
    }
}

/// Connects to the first address `addr` resolves to that accepts.
fn connect(addr: &str, timeout: Duration) -> anyhow::Result<TcpStream> {
    let mut last = None;
    for socket in addr.to_socket_addrs().with_context(|| format!("cannot resolve {addr}"))? {
        match TcpStream::connect_timeout(&socket, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e).with_context(|| format!("cannot connect to {addr}")),
        None => bail!("{addr} resolves to no address"),
    }
}

/// A Kafka error code by its name, e.g. GROUP_ID_NOT_FOUND (69).
pub fn error_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(e) => format!("{e} ({code})"),
        None => "no error (0)".to_string(),
    }
}

/// The bootstrap addresses of a `bootstrap.servers` list, without any
/// `PLAINTEXT://` style prefix.
pub fn bootstrap_addrs(brokers: &str) -> Vec<String> {
    brokers
        .split(',')
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(|b| b.split_once("://").map_or(b, |(_, rest)| rest).to_string())
        .collect()
}

/// Opens a connection secured as `security` says to the first bootstrap
/// broker that answers.
pub fn open_any_secure(brokers: &str, security: &Security, timeout: Duration) -> anyhow::Result<Connection> {
    let mut last = None;
    for addr in bootstrap_addrs(brokers) {
        match Connection::open_secure(&addr, security, timeout) {
            Ok(conn) => return Ok(conn),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no bootstrap broker given")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_lists_split_and_lose_their_scheme() {
        assert_eq!(bootstrap_addrs("PLAINTEXT://a:9092, b:9093,,"), vec!["a:9092".to_string(), "b:9093".to_string()]);
        assert!(bootstrap_addrs("").is_empty());
    }

    #[test]
    fn error_codes_have_names() {
        assert_eq!(error_name(69), "GroupIdNotFound (69)");
        assert_eq!(error_name(0), "no error (0)");
    }
}
