//! What the broker knows about the client at the other end of a connection:
//! the listener it came in on, that listener's security protocol, the
//! address the client is told to use, its network address and its principal.
//!
//! The principal is Kafka's `Type:name` pair. A TLS client that presented a
//! certificate is `User:<subject after ssl.principal.mapping.rules>`; every
//! other client is `User:ANONYMOUS`, as in Kafka; SASL sets it after
//! authentication. Authorization (`authz`) reads it and the peer's address
//! from here on every request.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::handler::Endpoint;
use crate::listener::SecurityProtocol;

/// Kafka's principal: a type (always `User` so far) and a name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub principal_type: &'static str,
    pub name: String,
}

impl Principal {
    /// The principal of a client that has not authenticated.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS".to_string())
    }

    pub fn user(name: String) -> Principal {
        Principal { principal_type: "User", name }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// One connection's identity, fixed once the connection is set up.
#[derive(Clone, Debug)]
pub struct Session {
    /// The listener's name, e.g. `PLAINTEXT` or `SSL`.
    pub listener: Arc<str>,
    pub security_protocol: SecurityProtocol,
    /// The address Metadata, FindCoordinator and DescribeCluster give this
    /// client: its listener's advertised address.
    pub endpoint: Endpoint,
    pub peer: SocketAddr,
    pub principal: Principal,
    /// When the broker accepted the connection: the SASL deadline
    /// (`sasl.server.authentication.timeout.ms`) counts from here, TLS
    /// handshake included.
    pub accepted_at: tokio::time::Instant,
}

impl Session {
    /// A session of `principal` on a PLAINTEXT listener from 127.0.0.1, for
    /// unit tests of handlers and the authorizer.
    pub fn for_tests(principal: Principal) -> Session {
        Session {
            listener: Arc::from("PLAINTEXT"),
            security_protocol: SecurityProtocol::Plaintext,
            endpoint: Endpoint { host: "127.0.0.1".into(), port: 9092 },
            peer: SocketAddr::from(([127, 0, 0, 1], 50000)),
            principal,
            accepted_at: tokio::time::Instant::now(),
        }
    }
}
