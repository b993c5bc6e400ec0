//! SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners.
//!
//! A connection on a SASL listener (after the TLS handshake on SASL_SSL)
//! goes through [`authenticate`] before anything else: it may send only
//! ApiVersions, SaslHandshake and SaslAuthenticate, one at a time, in frames
//! of at most `sasl.server.max.receive.size` bytes, and must authenticate
//! within `sasl.server.authentication.timeout.ms`. Any other request closes
//! the connection, as Kafka does. SaslHandshake names the mechanism (v0
//! followed by one raw, unframed token as old clients send it; v1 followed by
//! SaslAuthenticate v0-v2, KIP-152). A failed authentication is answered
//! with SASL_AUTHENTICATION_FAILED and one generic message after
//! `connection.failed.authentication.delay.ms`, whatever went wrong, and the
//! connection is closed. Success makes the session's principal
//! `User:<name>`.
//!
//! Mechanisms: PLAIN ([`plain`]), SCRAM-SHA-256 and SCRAM-SHA-512
//! ([`scram`]). A mechanism is a [`Mechanism`] variant that turns client
//! tokens into an [`Outcome`]; a mechanism with more than one step answers
//! [`Outcome::Challenge`] with the state its next step needs (a
//! [`Continuation`]), and the reply goes back in SaslAuthenticate's
//! `auth_bytes` (or as a raw token after SaslHandshake v0). Re-authentication
//! (KIP-368) is not served: SaslAuthenticate reports `connections.max.reauth.ms`
//! as the session lifetime and a later SaslHandshake gets ILLEGAL_SASL_STATE.

pub mod plain;
pub mod scram;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::config::{BrokerConfig, ConfigError};
use crate::handler::api_versions;
use crate::protocol::guard::{self, GuardError};
use crate::protocol::{decode_request, encode_response, FrameReader};
use crate::session::{Principal, Session};

/// What every failed authentication is told, whatever the cause.
pub const FAILED_MESSAGE: &str = "Authentication failed: Invalid username or password";

/// A SASL mechanism Runnel serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(scram::ScramMechanism),
}

impl Mechanism {
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            _ => scram::ScramMechanism::parse(name).map(Mechanism::Scram),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }
}

/// The result of a mechanism's look at a client token.
#[derive(Debug)]
pub enum Outcome {
    /// `reply` is the server's last message (SCRAM's server-final), empty
    /// when the mechanism has none.
    Authenticated { user: String, reply: Vec<u8> },
    /// The exchange goes on: `reply` goes to the client, whose next token
    /// goes to `next`.
    Challenge { reply: Vec<u8>, next: Continuation },
    /// `user` is whom the client claimed to be, when it said; `reason` is for
    /// the broker's log only.
    Failed { user: Option<String>, reason: &'static str },
}

/// A mechanism's state between two client tokens.
#[derive(Debug)]
pub enum Continuation {
    Scram(Box<scram::Exchange>),
}

/// A SASL listener's mechanisms, credentials and bounds.
#[derive(Debug)]
pub struct SaslListener {
    pub listener: String,
    pub mechanisms: Vec<Mechanism>,
    plain: Option<plain::PlainUsers>,
    /// The broker's SCRAM credentials, seen live.
    scram: Arc<scram::ScramCredentials>,
    /// `connections.max.reauth.ms`, reported as the session lifetime.
    session_lifetime_ms: i64,
    failure_delay: Duration,
    pub timeout: Duration,
}

impl SaslListener {
    /// Reads listener `name`'s SASL settings; errors name the key and never
    /// repeat a JAAS line.
    pub fn from_config(config: &BrokerConfig, name: &str) -> Result<SaslListener, ConfigError> {
        let mechanisms_key = config.listener_key_name(name, "sasl.enabled.mechanisms");
        let mechanisms: Vec<Mechanism> =
            crate::config::split_list(config.listener_str(name, "sasl.enabled.mechanisms"))
                .iter()
                // The config table keeps list values in lower case.
                .filter_map(|m| Mechanism::parse(&m.to_ascii_uppercase()))
                .collect();
        if mechanisms.is_empty() {
            return Err(ConfigError::InvalidValue {
                key: mechanisms_key,
                value: String::new(),
                reason: format!("SASL listener {name} needs at least one mechanism"),
            });
        }
        let plain = match mechanisms.contains(&Mechanism::Plain) {
            true => Some(plain_users(config, name)?),
            false => None,
        };
        let int = |key: &str| config.get(key).and_then(|(v, _)| v.parse::<i64>().ok()).unwrap_or(0);
        Ok(SaslListener {
            listener: name.to_string(),
            mechanisms,
            plain,
            scram: scram::ScramCredentials::empty(),
            session_lifetime_ms: int("connections.max.reauth.ms"),
            failure_delay: Duration::from_millis(int("connection.failed.authentication.delay.ms") as u64),
            timeout: Duration::from_millis(int("sasl.server.authentication.timeout.ms") as u64),
        })
    }

    /// Checks SCRAM logins against `credentials` (the broker's).
    pub fn with_scram(self, credentials: Arc<scram::ScramCredentials>) -> SaslListener {
        SaslListener { scram: credentials, ..self }
    }

    fn mechanism_names(&self) -> Vec<StrBytes> {
        self.mechanisms.iter().map(|m| StrBytes::from_static_str(m.name())).collect()
    }

    /// Runs one step of `mechanism`: the first when `next` is `None`.
    fn check(&self, mechanism: Mechanism, next: Option<Continuation>, token: &[u8]) -> Outcome {
        match (mechanism, next, &self.plain) {
            (_, Some(Continuation::Scram(exchange)), _) => exchange.finish(token),
            (Mechanism::Plain, None, Some(users)) => users.authenticate(token),
            (Mechanism::Plain, None, None) => Outcome::Failed { user: None, reason: "PLAIN has no users" },
            (Mechanism::Scram(m), None, _) => scram::first(&self.scram, m, token),
        }
    }
}

/// The PLAIN users of listener `name`: `listener.name.<name>.plain.sasl.jaas.config`,
/// else the listener's or the broker's `sasl.jaas.config`.
fn plain_users(config: &BrokerConfig, name: &str) -> Result<plain::PlainUsers, ConfigError> {
    let prefixed = format!("{}plain.sasl.jaas.config", crate::listener::listener_config_prefix(name));
    let (key, jaas) = match config.get(&prefixed) {
        Some((jaas, _)) => (prefixed, jaas),
        None => (config.listener_key_name(name, "sasl.jaas.config"), config.listener_str(name, "sasl.jaas.config")),
    };
    let invalid =
        |reason: String| ConfigError::InvalidValue { key: key.clone(), value: crate::config::MASKED.into(), reason };
    if jaas.trim().is_empty() {
        return Err(invalid(format!(
            "PLAIN on SASL listener {name} needs a JAAS line with user_<name>=\"<password>\" entries"
        )));
    }
    let users = plain::PlainUsers::parse(jaas).map_err(invalid)?;
    if users.is_empty() {
        return Err(invalid("the JAAS line has no user_<name>=\"<password>\" entry".into()));
    }
    Ok(users)
}

/// Why a connection ends during authentication.
#[derive(Debug)]
pub enum Refused {
    /// The client closed the connection.
    Left,
    /// A bad frame or a request out of place; the reason is for the log.
    BadInput(String),
    /// Authentication failed; already answered and logged.
    Failed,
    /// A write to the client failed.
    Io(std::io::Error),
}

impl From<std::io::Error> for Refused {
    fn from(e: std::io::Error) -> Refused {
        Refused::Io(e)
    }
}

/// Where a connection is in the exchange.
enum State {
    Start,
    /// SaslHandshake v1 chose this mechanism; SaslAuthenticate comes next,
    /// for the step `next` holds (the first when `None`).
    Framed(Mechanism, Option<Continuation>),
    /// SaslHandshake v0 chose this mechanism; a raw token comes next.
    Raw(Mechanism, Option<Continuation>),
}

/// What a client token led to.
enum Progress {
    Done { user: String, reply: Vec<u8> },
    Challenge { reply: Vec<u8>, next: Continuation },
}

/// Runs the SASL exchange on a new connection; on success the session's
/// principal is the authenticated user. The caller bounds it in time.
pub async fn authenticate<R, W>(
    sasl: &SaslListener,
    session: &mut Session,
    frames: &mut FrameReader<R>,
    wr: &mut W,
) -> Result<(), Refused>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut state = State::Start;
    loop {
        let frame = match frames.next_frame().await {
            Ok(Some(frame)) => frame.bytes,
            Ok(None) => return Err(Refused::Left),
            Err(e) => return Err(Refused::BadInput(format!("bad frame before authentication: {e}"))),
        };
        if matches!(state, State::Raw(..)) {
            let State::Raw(mechanism, next) = std::mem::replace(&mut state, State::Start) else { unreachable!() };
            // The raw exchange has no error response: each server token goes
            // back length-prefixed (empty for PLAIN's success), failure is a close.
            let progress = finish(sasl, session, mechanism, next, &frame).await?;
            let reply = match &progress {
                Progress::Done { reply, .. } | Progress::Challenge { reply, .. } => reply,
            };
            wr.write_all(&(reply.len() as u32).to_be_bytes()).await?;
            wr.write_all(reply).await?;
            match progress {
                Progress::Done { user, .. } => return authenticated(sasl, session, mechanism, user),
                Progress::Challenge { next, .. } => state = State::Raw(mechanism, Some(next)),
            }
            continue;
        }
        let summary = match guard::check_request(&frame) {
            Ok(summary) => summary,
            Err(GuardError::UnsupportedVersion { api_key, correlation_id, .. })
                if api_key == ApiKey::ApiVersions as i16 =>
            {
                let body = ResponseKind::ApiVersions(api_versions::unsupported());
                wr.write_all(&encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)).await?;
                continue;
            }
            Err(e) => return Err(Refused::BadInput(format!("bad request before authentication: {e}"))),
        };
        let request = decode_request(frame, &summary).map_err(|e| Refused::BadInput(e.to_string()))?;
        let (version, correlation_id) = (summary.api_version, summary.correlation_id);
        let respond = |api_key, body: ResponseKind| encode_response(api_key, version, correlation_id, &body);
        match (request.body, std::mem::replace(&mut state, State::Start)) {
            (RequestKind::ApiVersions(_), current) => {
                state = current;
                let body = ResponseKind::ApiVersions(api_versions::handle());
                wr.write_all(&respond(ApiKey::ApiVersions, body)).await?;
            }
            (RequestKind::SaslHandshake(req), State::Start) => {
                let (response, chosen) = handshake(sasl, &req);
                wr.write_all(&respond(ApiKey::SaslHandshake, ResponseKind::SaslHandshake(response))).await?;
                let Some(mechanism) = chosen else {
                    crate::connection::log_rejected(
                        session.peer,
                        &format!(
                            "SASL mechanism {:?} is not enabled on listener {}",
                            req.mechanism.as_str(),
                            sasl.listener
                        ),
                    );
                    return Err(Refused::Failed);
                };
                state = if version == 0 { State::Raw(mechanism, None) } else { State::Framed(mechanism, None) };
            }
            (RequestKind::SaslAuthenticate(req), State::Framed(mechanism, next)) => {
                let progress = match finish(sasl, session, mechanism, next, &req.auth_bytes).await {
                    Ok(progress) => progress,
                    Err(refused) => {
                        let body = SaslAuthenticateResponse::default()
                            .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                            .with_error_message(Some(StrBytes::from_static_str(FAILED_MESSAGE)));
                        let body = ResponseKind::SaslAuthenticate(body);
                        wr.write_all(&respond(ApiKey::SaslAuthenticate, body)).await?;
                        return Err(refused);
                    }
                };
                let (body, done) = match progress {
                    Progress::Challenge { reply, next } => {
                        state = State::Framed(mechanism, Some(next));
                        (SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(reply)), None)
                    }
                    Progress::Done { user, reply } => {
                        let body = SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(reply))
                            .with_session_lifetime_ms(sasl.session_lifetime_ms);
                        (body, Some(user))
                    }
                };
                wr.write_all(&respond(ApiKey::SaslAuthenticate, ResponseKind::SaslAuthenticate(body))).await?;
                if let Some(user) = done {
                    return authenticated(sasl, session, mechanism, user);
                }
            }
            (RequestKind::SaslHandshake(_), _) => {
                let body = ResponseKind::SaslHandshake(illegal_state_handshake());
                wr.write_all(&respond(ApiKey::SaslHandshake, body)).await?;
                return Err(Refused::BadInput("a second SaslHandshake".into()));
            }
            (RequestKind::SaslAuthenticate(_), _) => {
                let body = ResponseKind::SaslAuthenticate(illegal_state_authenticate());
                wr.write_all(&respond(ApiKey::SaslAuthenticate, body)).await?;
                return Err(Refused::BadInput("SaslAuthenticate before SaslHandshake".into()));
            }
            (_, _) => {
                return Err(Refused::BadInput(format!("{:?} before SASL authentication", request.api_key)));
            }
        }
    }
}

/// Answers SaslHandshake: the enabled mechanisms, and the chosen one when it
/// is among them (else UNSUPPORTED_SASL_MECHANISM).
fn handshake(sasl: &SaslListener, req: &SaslHandshakeRequest) -> (SaslHandshakeResponse, Option<Mechanism>) {
    let chosen = Mechanism::parse(req.mechanism.as_str()).filter(|m| sasl.mechanisms.contains(m));
    let mut response = SaslHandshakeResponse::default().with_mechanisms(sasl.mechanism_names());
    if chosen.is_none() {
        response.error_code = ResponseError::UnsupportedSaslMechanism.code();
    }
    (response, chosen)
}

/// Checks the client's token; a failure waits the fixed delay, is counted
/// and logged with the peer and the claimed user.
async fn finish(
    sasl: &SaslListener,
    session: &Session,
    mechanism: Mechanism,
    next: Option<Continuation>,
    token: &[u8],
) -> Result<Progress, Refused> {
    match sasl.check(mechanism, next, token) {
        Outcome::Authenticated { user, reply } => Ok(Progress::Done { user, reply }),
        Outcome::Challenge { reply, next } => Ok(Progress::Challenge { reply, next }),
        Outcome::Failed { user, reason } => {
            tokio::time::sleep(sasl.failure_delay).await;
            count(sasl, mechanism, "failure");
            let user = user.as_deref().unwrap_or("(none)");
            crate::connection::log_rejected(
                session.peer,
                &format!("SASL {} authentication failed for user {user}: {reason}", mechanism.name()),
            );
            Err(Refused::Failed)
        }
    }
}

fn authenticated(
    sasl: &SaslListener,
    session: &mut Session,
    mechanism: Mechanism,
    user: String,
) -> Result<(), Refused> {
    count(sasl, mechanism, "success");
    session.principal = Principal::user(user);
    tracing::debug!(peer = %session.peer, listener = %sasl.listener, mechanism = mechanism.name(),
        principal = %session.principal, "SASL client authenticated");
    Ok(())
}

fn count(sasl: &SaslListener, mechanism: Mechanism, result: &'static str) {
    metrics::counter!(crate::metrics::SASL_AUTHENTICATIONS, "listener" => sasl.listener.clone(),
        "mechanism" => mechanism.name(), "result" => result)
    .increment(1);
}

/// SaslHandshake on a connection that is past authentication or on a
/// listener without SASL.
pub fn illegal_state_handshake() -> SaslHandshakeResponse {
    SaslHandshakeResponse::default().with_error_code(ResponseError::IllegalSaslState.code())
}

/// SaslAuthenticate out of place.
pub fn illegal_state_authenticate() -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(StrBytes::from_static_str("SaslAuthenticate is not expected now")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Source;

    fn config(settings: &[(&str, &str)]) -> Result<BrokerConfig, ConfigError> {
        let mut config = BrokerConfig::default();
        for (k, v) in settings {
            config.set(k, v, Source::Override)?;
        }
        Ok(config)
    }

    const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"pw\";";

    // Goal: the listener's mechanism-prefixed JAAS line wins over the broker-wide one, and errors name the key without the secret.
    #[test]
    fn reads_per_listener_settings() {
        let c = config(&[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"x\";"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ])
        .unwrap();
        let s = SaslListener::from_config(&c, "SASL_PLAINTEXT").unwrap();
        assert!(matches!(s.check(Mechanism::Plain, None, b"\0alice\0pw"), Outcome::Authenticated { .. }));
        assert!(matches!(s.check(Mechanism::Plain, None, b"\0bob\0x"), Outcome::Failed { .. }));

        let c = config(&[("listeners", "SASL_PLAINTEXT://127.0.0.1:0")]).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("sasl.jaas.config"), "{err}");
        let c = config(&[(
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"secret\"",
        )])
        .unwrap();
        let err = SaslListener::from_config(&c, "SASL_PLAINTEXT").unwrap_err().to_string();
        assert!(
            err.contains("listener.name.sasl_plaintext.plain.sasl.jaas.config") && !err.contains("secret"),
            "{err}"
        );
        assert!(config(&[("sasl.enabled.mechanisms", "GSSAPI")]).is_err());
        // SCRAM alone needs no JAAS line: its users are in the metadata log. Kafka's SCRAM login line is
        // accepted (configs copied from Kafka have it) and not needed.
        let c = config(&[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
            (
                "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            ),
        ])
        .unwrap();
        c.validate().unwrap();
        let s = SaslListener::from_config(&c, "SASL_PLAINTEXT").unwrap();
        assert_eq!(s.mechanisms, vec![Mechanism::Scram(scram::ScramMechanism::Sha512)]);
    }

    // Goal: a handshake names the enabled mechanisms, and refuses others with UNSUPPORTED_SASL_MECHANISM.
    #[test]
    fn handshake_lists_mechanisms() {
        let c = config(&[("sasl.jaas.config", JAAS)]).unwrap();
        let s = SaslListener::from_config(&c, "SASL_PLAINTEXT").unwrap();
        let ask = |m: &'static str| {
            handshake(&s, &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(m)))
        };
        let (ok, chosen) = ask("PLAIN");
        assert_eq!((ok.error_code, chosen), (0, Some(Mechanism::Plain)));
        let (refused, chosen) = ask("SCRAM-SHA-512");
        assert_eq!((refused.error_code, chosen), (ResponseError::UnsupportedSaslMechanism.code(), None));
        assert_eq!(refused.mechanisms, vec![StrBytes::from_static_str("PLAIN")]);
    }
}
