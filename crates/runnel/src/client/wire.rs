//! A small blocking Kafka client for the requests librdkafka's Rust binding
//! does not expose: ListGroups with group types (v5),
//! ConsumerGroupDescribe and the ACL APIs, with FindCoordinator and
//! ApiVersions to reach them.
//!
//! A [`Connection`] is one TCP connection to one broker, plaintext or
//! SASL_PLAINTEXT with the PLAIN mechanism ([`Auth`]). It asks the broker's
//! ApiVersions first, so each request goes at the highest version both sides
//! speak, and it bounds every wait and every response frame. Everything else
//! the client commands do goes through librdkafka; a connection configured
//! for TLS is not something this module can speak, and callers fall back to
//! librdkafka or refuse then.

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

/// The largest response frame accepted (Kafka's `socket.request.max.bytes`
/// default; group listings and descriptions are far smaller).
const RESPONSE_BYTES_MAX: usize = 100 * 1024 * 1024;

/// The ApiVersions version sent first; every broker that serves the
/// consumer group protocol answers it.
const API_VERSIONS_VERSION: i16 = 3;

/// The client id every request carries.
const CLIENT_ID: &str = "runnel-group";

/// One connection to one broker, with the API versions it serves.
pub struct Connection {
    stream: TcpStream,
    addr: String,
    correlation_id: i32,
    /// Supported version range per API key.
    versions: BTreeMap<i16, (i16, i16)>,
}

/// SASL/PLAIN credentials for a SASL_PLAINTEXT listener.
#[derive(Clone, Debug)]
pub struct Auth {
    pub username: String,
    pub password: String,
}

impl Auth {
    /// The credentials librdkafka properties describe: `security.protocol`
    /// SASL_PLAINTEXT with `sasl.mechanism(s)` PLAIN, `sasl.username` and
    /// `sasl.password`. `Ok(None)` for plaintext; an error for what this
    /// client cannot speak (TLS, other mechanisms).
    pub fn from_properties<'a>(property: impl Fn(&str) -> Option<&'a str>) -> anyhow::Result<Option<Auth>> {
        let protocol = property("security.protocol").unwrap_or("plaintext");
        if protocol.eq_ignore_ascii_case("plaintext") {
            return Ok(None);
        }
        if !protocol.eq_ignore_ascii_case("sasl_plaintext") {
            bail!("security.protocol {protocol} is not supported by this command (plaintext or sasl_plaintext)");
        }
        let mechanism = property("sasl.mechanism").or_else(|| property("sasl.mechanisms")).unwrap_or("PLAIN");
        if !mechanism.eq_ignore_ascii_case("PLAIN") {
            bail!("sasl.mechanism {mechanism} is not supported by this command (PLAIN)");
        }
        let username = property("sasl.username").context("sasl.username is not set")?.to_string();
        let password = property("sasl.password").context("sasl.password is not set")?.to_string();
        Ok(Some(Auth { username, password }))
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`) and asks for its API versions.
    /// `timeout` bounds the connect and every later read and write.
    pub fn open(addr: &str, timeout: Duration) -> anyhow::Result<Connection> {
        Connection::open_with(addr, timeout, None)
    }

    /// Like [`Connection::open`], then authenticates with SASL/PLAIN when
    /// `auth` is given (SaslHandshake v1, SaslAuthenticate, KIP-152).
    pub fn open_with(addr: &str, timeout: Duration, auth: Option<&Auth>) -> anyhow::Result<Connection> {
        let mut conn = Connection::connect_and_ask_versions(addr, timeout)?;
        if let Some(auth) = auth {
            conn.authenticate(auth)?;
        }
        Ok(conn)
    }

    fn authenticate(&mut self, auth: &Auth) -> anyhow::Result<()> {
        let addr = self.addr.clone();
        let handshake =
            self.send(1, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")))?;
        if handshake.error_code != 0 {
            bail!("broker {addr} refused SASL mechanism PLAIN: {}", error_name(handshake.error_code));
        }
        let token = format!("\0{}\0{}", auth.username, auth.password);
        let version = self.version::<SaslAuthenticateRequest>(2).unwrap_or(0);
        let response =
            self.send(version, &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token.into_bytes())))?;
        if response.error_code != 0 {
            let message = response.error_message.as_deref().unwrap_or_default().to_string();
            bail!(
                "authentication as {} at {addr} failed: {} {message}",
                auth.username,
                error_name(response.error_code)
            );
        }
        Ok(())
    }

    fn connect_and_ask_versions(addr: &str, timeout: Duration) -> anyhow::Result<Connection> {
        let stream = connect(addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut conn = Connection { stream, addr: addr.to_string(), correlation_id: 0, versions: BTreeMap::new() };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("runnel"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = conn.send(API_VERSIONS_VERSION, &request)?;
        if response.error_code != 0 {
            bail!("broker {addr} refused ApiVersions v{API_VERSIONS_VERSION}: {}", error_name(response.error_code));
        }
        conn.versions = response.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(conn)
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

/// Opens a connection to the first bootstrap broker that answers.
pub fn open_any(brokers: &str, timeout: Duration) -> anyhow::Result<Connection> {
    open_any_with(brokers, timeout, None)
}

/// Opens a connection to the first bootstrap broker that answers,
/// authenticating with `auth` when given.
pub fn open_any_with(brokers: &str, timeout: Duration, auth: Option<&Auth>) -> anyhow::Result<Connection> {
    let mut last = None;
    for addr in bootstrap_addrs(brokers) {
        match Connection::open_with(&addr, timeout, auth) {
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
    fn sasl_plain_credentials_come_from_librdkafka_properties() {
        let props = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
        };
        assert!(Auth::from_properties(props(&[])).unwrap().is_none());
        let auth = Auth::from_properties(props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "admin"),
            ("sasl.password", "s3cret"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((auth.username.as_str(), auth.password.as_str()), ("admin", "s3cret"));
        assert!(Auth::from_properties(props(&[("security.protocol", "SSL")])).is_err());
        assert!(Auth::from_properties(props(&[("security.protocol", "sasl_plaintext")])).is_err());
        let scram = props(&[("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanism", "SCRAM-SHA-256")]);
        assert!(Auth::from_properties(scram).is_err());
    }

    #[test]
    fn error_codes_have_names() {
        assert_eq!(error_name(69), "GroupIdNotFound (69)");
        assert_eq!(error_name(0), "no error (0)");
    }
}
