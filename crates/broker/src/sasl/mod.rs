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
//! ([`scram`]) and OAUTHBEARER ([`oauthbearer`]). A mechanism is a
//! [`Mechanism`] variant that turns client tokens into an [`Outcome`]; a
//! mechanism with more than one step answers [`Outcome::Challenge`] with the
//! state its next step needs (a [`Continuation`]), and the reply goes back
//! in SaslAuthenticate's `auth_bytes` (or as a raw token after SaslHandshake
//! v0).
//!
//! Re-authentication (KIP-368): a session has a lifetime when
//! `connections.max.reauth.ms` is positive or the credential expires (an
//! OAUTHBEARER token), the smaller of the two, reported in
//! SaslAuthenticate v1+ `session_lifetime_ms`. Such a session may
//! re-authenticate on its live connection with SaslHandshake v1 and
//! SaslAuthenticate ([`reauthenticate`], at most once a second, same
//! mechanism, same principal, or the connection is closed); once the session
//! has expired, any other request closes the connection (`connection`).
//! Without a lifetime, a SaslHandshake after authentication gets
//! ILLEGAL_SASL_STATE, as in Kafka.

pub mod oauthbearer;
pub mod plain;
pub mod scram;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

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
use oauthbearer::INVALID_TOKEN_CHALLENGE;

/// What every failed PLAIN authentication is told, whatever the cause.
pub const FAILED_MESSAGE: &str = "Authentication failed: Invalid username or password";
/// What every failed OAUTHBEARER authentication is told (Kafka's generic text).
pub const OAUTHBEARER_FAILED_MESSAGE: &str =
    "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER";

/// A SASL mechanism Runnel serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(scram::ScramMechanism),
    OAuthBearer,
}

impl Mechanism {
    /// The mechanism named `name`, in any case (list settings are stored in
    /// lower case).
    pub fn parse(name: &str) -> Option<Mechanism> {
        [Mechanism::Plain, Mechanism::OAuthBearer]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
            .or_else(|| scram::ScramMechanism::parse(&name.to_ascii_uppercase()).map(Mechanism::Scram))
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The one message a failed authentication with this mechanism gets.
    pub fn failed_message(self) -> &'static str {
        match self {
            Mechanism::Plain | Mechanism::Scram(_) => FAILED_MESSAGE,
            Mechanism::OAuthBearer => OAUTHBEARER_FAILED_MESSAGE,
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
    /// Authenticated with a credential that expires (an OAUTHBEARER token):
    /// the session ends at `expires_at_ms` at the latest.
    Expiring { user: String, expires_at_ms: i64 },
    /// The client is sent `challenge` (RFC 7628's error challenge) and the
    /// exchange fails at its next message; `reason` is for the log only.
    ErrorChallenge { challenge: &'static [u8], user: Option<String>, reason: String },
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
    oauthbearer: Option<oauthbearer::Validator>,
    /// `connections.max.reauth.ms`: when positive, the longest session.
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
                .filter_map(|m| Mechanism::parse(m))
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
        let oauthbearer = match mechanisms.contains(&Mechanism::OAuthBearer) {
            true => Some(oauthbearer::Validator::from_config(config)?),
            false => None,
        };
        let int = |key: &str| config.get(key).and_then(|(v, _)| v.parse::<i64>().ok()).unwrap_or(0);
        Ok(SaslListener {
            listener: name.to_string(),
            mechanisms,
            plain,
            scram: scram::ScramCredentials::empty(),
            oauthbearer,
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
    async fn check(&self, mechanism: Mechanism, next: Option<Continuation>, token: &[u8]) -> Outcome {
        if let Some(Continuation::Scram(exchange)) = next {
            return exchange.finish(token);
        }
        match (mechanism, &self.plain, &self.oauthbearer) {
            (Mechanism::Scram(m), _, _) => scram::first(&self.scram, m, token),
            (Mechanism::Plain, Some(users), _) => users.authenticate(token),
            (Mechanism::Plain, None, _) => Outcome::Failed { user: None, reason: "PLAIN has no users" },
            (Mechanism::OAuthBearer, _, Some(validator)) => match validator.check(token).await {
                Ok(token) => Outcome::Expiring { user: token.principal, expires_at_ms: token.expires_at_ms },
                Err(reason) => Outcome::ErrorChallenge { challenge: INVALID_TOKEN_CHALLENGE, user: None, reason },
            },
            (Mechanism::OAuthBearer, _, None) => Outcome::Failed { user: None, reason: "OAUTHBEARER is not set up" },
        }
    }

    /// The session lifetime (KIP-368) of a session authenticated at `now_ms`
    /// with a credential expiring at `expires_at_ms`: the smaller of that and
    /// `connections.max.reauth.ms`, never negative; `None` when neither bounds it.
    fn session_lifetime(&self, expires_at_ms: Option<i64>, now_ms: i64) -> Option<i64> {
        let max = (self.session_lifetime_ms > 0).then_some(self.session_lifetime_ms);
        let credential = expires_at_ms.map(|e| e.saturating_sub(now_ms));
        let lifetime = match (credential, max) {
            (Some(c), Some(m)) => Some(c.min(m)),
            (c, m) => c.or(m),
        };
        lifetime.map(|l| l.max(0))
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
    /// The client was sent an error challenge; its next message (framed or
    /// raw) ends the exchange with this failure.
    Erred {
        raw: bool,
        failure: Failure,
    },
}

/// A failed authentication, to be answered, counted and logged.
struct Failure {
    mechanism: Mechanism,
    user: Option<String>,
    reason: String,
}

/// A session a successful authentication leaves on the connection.
#[derive(Clone, Copy, Debug)]
pub struct SaslSession {
    pub mechanism: Mechanism,
    /// When the session ends, if it does (KIP-368): after that the client
    /// may only re-authenticate.
    pub expires_at: Option<Instant>,
    /// When this authentication began.
    pub began_at: Instant,
}

/// Kafka lets a client re-authenticate at most once a second.
pub const REAUTHENTICATION_INTERVAL_MIN: Duration = Duration::from_secs(1);

impl SaslSession {
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Whether a SaslHandshake now begins a re-authentication: the session
    /// has a lifetime and the last authentication began a second ago or more.
    /// Otherwise the handshake is answered ILLEGAL_SASL_STATE.
    pub fn may_reauthenticate(&self, now: Instant) -> bool {
        self.expires_at.is_some() && now.duration_since(self.began_at) >= REAUTHENTICATION_INTERVAL_MIN
    }
}

/// What a re-authentication must keep.
struct Previous {
    mechanism: Mechanism,
    principal: Principal,
}

/// Runs the SASL exchange on a new connection; on success the session's
/// principal is the authenticated user. The caller bounds it in time.
pub async fn authenticate<R, W>(
    sasl: &SaslListener,
    session: &mut Session,
    frames: &mut FrameReader<R>,
    wr: &mut W,
) -> Result<SaslSession, Refused>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    exchange(sasl, session, frames, wr, None, None).await
}

/// Re-authenticates an authenticated connection (KIP-368) that sent the
/// SaslHandshake `handshake` (a whole request frame). The mechanism and the
/// principal must stay the same; any failure ends the connection. The
/// caller has written every response due before and bounds this in time.
pub async fn reauthenticate<R, W>(
    sasl: &SaslListener,
    session: &mut Session,
    previous: &SaslSession,
    frames: &mut FrameReader<R>,
    wr: &mut W,
    handshake: Bytes,
) -> Result<SaslSession, Refused>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let previous = Previous { mechanism: previous.mechanism, principal: session.principal.clone() };
    exchange(sasl, session, frames, wr, Some(previous), Some(handshake)).await
}

/// The exchange itself: from the start, or from `first`, a re-authentication's handshake.
async fn exchange<R, W>(
    sasl: &SaslListener,
    session: &mut Session,
    frames: &mut FrameReader<R>,
    wr: &mut W,
    previous: Option<Previous>,
    mut first: Option<Bytes>,
) -> Result<SaslSession, Refused>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let began_at = Instant::now();
    let reauth = previous.is_some();
    let mut state = State::Start;
    loop {
        let frame = match first.take() {
            Some(frame) => frame,
            None => match frames.next_frame().await {
                Ok(Some(frame)) => frame.bytes,
                Ok(None) => return Err(Refused::Left),
                Err(e) => return Err(Refused::BadInput(format!("bad frame before authentication: {e}"))),
            },
        };
        match state {
            // The raw exchange has no error response: each server token goes back
            // length-prefixed (empty for PLAIN's success), failure is a close.
            State::Raw(mechanism, next) => match finish(sasl, session, mechanism, next, &frame, reauth).await? {
                Verdict::Step { reply, next } => {
                    wr.write_all(&(reply.len() as u32).to_be_bytes()).await?;
                    wr.write_all(&reply).await?;
                    state = State::Raw(mechanism, Some(next));
                    continue;
                }
                Verdict::Authenticated { user, reply, expires_at_ms } => {
                    wr.write_all(&(reply.len() as u32).to_be_bytes()).await?;
                    wr.write_all(&reply).await?;
                    let lifetime = sasl.session_lifetime(expires_at_ms, crate::handler::now_ms());
                    return Ok(authenticated(sasl, session, mechanism, user, lifetime, began_at, reauth));
                }
                Verdict::Challenge { challenge, failure } => {
                    wr.write_all(&(challenge.len() as u32).to_be_bytes()).await?;
                    wr.write_all(challenge).await?;
                    state = State::Erred { raw: true, failure };
                    continue;
                }
            },
            State::Erred { raw: true, failure } => return Err(fail(sasl, session, failure, reauth).await),
            _ => {}
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
        match (request.body, state) {
            (RequestKind::ApiVersions(_), s) => {
                state = s;
                let body = ResponseKind::ApiVersions(api_versions::handle());
                wr.write_all(&respond(ApiKey::ApiVersions, body)).await?;
            }
            // Re-authentication needs the framed exchange (KIP-152), as in Kafka.
            (RequestKind::SaslHandshake(req), State::Start) if !(reauth && version == 0) => {
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
            (RequestKind::SaslAuthenticate(req), State::Framed(mechanism, step)) => {
                let context = Context { sasl, previous: previous.as_ref(), began_at };
                let (response, next) = framed_authenticate(&context, session, mechanism, step, &req.auth_bytes).await;
                wr.write_all(&respond(ApiKey::SaslAuthenticate, ResponseKind::SaslAuthenticate(response))).await?;
                match next {
                    Next::Continue(next) => state = next,
                    Next::Done(authenticated) => return Ok(authenticated),
                    Next::Stop(refused) => return Err(refused),
                }
            }
            (RequestKind::SaslAuthenticate(_), State::Erred { raw: false, failure }) => {
                let response = failed_response(failure.mechanism);
                let refused = fail(sasl, session, failure, reauth).await;
                wr.write_all(&respond(ApiKey::SaslAuthenticate, ResponseKind::SaslAuthenticate(response))).await?;
                return Err(refused);
            }
            (RequestKind::SaslHandshake(_), _) => {
                let body = ResponseKind::SaslHandshake(illegal_state_handshake());
                wr.write_all(&respond(ApiKey::SaslHandshake, body)).await?;
                return Err(Refused::BadInput("a SaslHandshake out of place".into()));
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

/// What a framed SaslAuthenticate is checked against.
struct Context<'a> {
    sasl: &'a SaslListener,
    /// Set on a re-authentication.
    previous: Option<&'a Previous>,
    began_at: Instant,
}

/// What follows a framed SaslAuthenticate's response.
enum Next {
    Continue(State),
    Done(SaslSession),
    Stop(Refused),
}

/// Checks a framed SaslAuthenticate: the response to send and what follows.
/// A re-authentication must keep the mechanism and the principal.
async fn framed_authenticate(
    context: &Context<'_>,
    session: &mut Session,
    mechanism: Mechanism,
    step: Option<Continuation>,
    token: &[u8],
) -> (SaslAuthenticateResponse, Next) {
    let (sasl, reauth) = (context.sasl, context.previous.is_some());
    if let Some(previous) = context.previous.filter(|p| p.mechanism != mechanism) {
        let reason = format!("re-authentication with {} after {}", mechanism.name(), previous.mechanism.name());
        let refused = fail(sasl, session, Failure { mechanism, user: None, reason }, reauth).await;
        return (failed_response(mechanism), Next::Stop(refused));
    }
    let (user, reply, expires_at_ms) = match finish(sasl, session, mechanism, step, token, reauth).await {
        Ok(Verdict::Authenticated { user, reply, expires_at_ms }) => (user, reply, expires_at_ms),
        Ok(Verdict::Step { reply, next }) => {
            let response = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(reply));
            return (response, Next::Continue(State::Framed(mechanism, Some(next))));
        }
        Ok(Verdict::Challenge { challenge, failure }) => {
            // RFC 7628 section 3.2.2: the error travels as a challenge; the client answers %x01.
            let response = SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from_static(challenge));
            return (response, Next::Continue(State::Erred { raw: false, failure }));
        }
        Err(refused) => return (failed_response(mechanism), Next::Stop(refused)),
    };
    let principal = Principal::user(user.clone());
    if let Some(previous) = context.previous.filter(|p| p.principal != principal) {
        let reason = format!("re-authentication as {principal} changes the principal {}", previous.principal);
        let refused = fail(sasl, session, Failure { mechanism, user: Some(user), reason }, reauth).await;
        return (failed_response(mechanism), Next::Stop(refused));
    }
    let lifetime = sasl.session_lifetime(expires_at_ms, crate::handler::now_ms());
    let response = SaslAuthenticateResponse::default()
        .with_auth_bytes(Bytes::from(reply))
        .with_session_lifetime_ms(lifetime.unwrap_or(0));
    let authenticated = authenticated(sasl, session, mechanism, user, lifetime, context.began_at, reauth);
    (response, Next::Done(authenticated))
}

/// SASL_AUTHENTICATION_FAILED with the mechanism's one generic message.
fn failed_response(mechanism: Mechanism) -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::SaslAuthenticationFailed.code())
        .with_error_message(Some(StrBytes::from_static_str(mechanism.failed_message())))
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

/// What a mechanism made of a client token.
enum Verdict {
    Authenticated {
        user: String,
        /// The server's last message, if the mechanism has one.
        reply: Vec<u8>,
        expires_at_ms: Option<i64>,
    },
    /// Send `reply`; the client's next token goes to `next`.
    Step { reply: Vec<u8>, next: Continuation },
    /// Send `challenge`; the exchange fails with `failure` at the next message.
    Challenge { challenge: &'static [u8], failure: Failure },
}

/// Checks the client's token; a plain failure is answered as [`fail`] says.
async fn finish(
    sasl: &SaslListener,
    session: &Session,
    mechanism: Mechanism,
    next: Option<Continuation>,
    token: &[u8],
    reauth: bool,
) -> Result<Verdict, Refused> {
    match sasl.check(mechanism, next, token).await {
        Outcome::Authenticated { user, reply } => Ok(Verdict::Authenticated { user, reply, expires_at_ms: None }),
        Outcome::Challenge { reply, next } => Ok(Verdict::Step { reply, next }),
        Outcome::Expiring { user, expires_at_ms } => {
            Ok(Verdict::Authenticated { user, reply: Vec::new(), expires_at_ms: Some(expires_at_ms) })
        }
        Outcome::ErrorChallenge { challenge, user, reason } => {
            Ok(Verdict::Challenge { challenge, failure: Failure { mechanism, user, reason } })
        }
        Outcome::Failed { user, reason } => {
            Err(fail(sasl, session, Failure { mechanism, user, reason: reason.to_string() }, reauth).await)
        }
    }
}

/// A failed authentication waits the fixed delay, is counted and logged
/// with the peer, the claimed user and the reason.
async fn fail(sasl: &SaslListener, session: &Session, failure: Failure, reauth: bool) -> Refused {
    let Failure { mechanism, user, reason } = failure;
    tokio::time::sleep(sasl.failure_delay).await;
    count(sasl, mechanism, "failure", reauth);
    let user = user.as_deref().unwrap_or("(none)");
    let what = if reauth { "re-authentication" } else { "authentication" };
    crate::connection::log_rejected(
        session.peer,
        &format!("SASL {} {what} failed for user {user}: {reason}", mechanism.name()),
    );
    Refused::Failed
}

fn authenticated(
    sasl: &SaslListener,
    session: &mut Session,
    mechanism: Mechanism,
    user: String,
    lifetime_ms: Option<i64>,
    began_at: Instant,
    reauth: bool,
) -> SaslSession {
    count(sasl, mechanism, "success", reauth);
    session.principal = Principal::user(user);
    let expires_at = lifetime_ms.map(|ms| Instant::now() + Duration::from_millis(ms as u64));
    tracing::debug!(peer = %session.peer, listener = %sasl.listener, mechanism = mechanism.name(),
        principal = %session.principal, reauthentication = reauth, session_lifetime_ms = lifetime_ms.unwrap_or(0),
        "SASL client authenticated");
    SaslSession { mechanism, expires_at, began_at }
}

fn count(sasl: &SaslListener, mechanism: Mechanism, result: &'static str, reauth: bool) {
    metrics::counter!(crate::metrics::SASL_AUTHENTICATIONS, "listener" => sasl.listener.clone(),
        "mechanism" => mechanism.name(), "result" => result)
    .increment(1);
    if reauth {
        metrics::counter!(crate::metrics::SASL_REAUTHENTICATIONS, "listener" => sasl.listener.clone(),
            "mechanism" => mechanism.name(), "result" => result)
        .increment(1);
    }
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
    #[tokio::test]
    async fn reads_per_listener_settings() {
        let c = config(&[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"x\";"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ])
        .unwrap();
        let s = SaslListener::from_config(&c, "SASL_PLAINTEXT").unwrap();
        assert!(matches!(s.check(Mechanism::Plain, None, b"\0alice\0pw").await, Outcome::Authenticated { .. }));
        assert!(matches!(s.check(Mechanism::Plain, None, b"\0bob\0x").await, Outcome::Failed { .. }));

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

    // Goal: OAUTHBEARER needs a JWKS file or the explicit unsecured opt-in; errors name the key.
    #[test]
    fn oauthbearer_needs_keys_or_the_opt_in() {
        let on = ("sasl.enabled.mechanisms", "OAUTHBEARER");
        let err = SaslListener::from_config(&config(&[on]).unwrap(), "SASL_PLAINTEXT").unwrap_err().to_string();
        assert!(err.contains("sasl.oauthbearer.jwks.endpoint.url"), "{err}");
        let https = ("sasl.oauthbearer.jwks.endpoint.url", "https://idp.example/jwks");
        let err = SaslListener::from_config(&config(&[on, https]).unwrap(), "SASL_PLAINTEXT").unwrap_err().to_string();
        assert!(err.contains("HTTP(S) JWKS endpoints are not fetched"), "{err}");
        let missing = ("sasl.oauthbearer.jwks.endpoint.url", "file:///nonexistent/jwks.json");
        assert!(SaslListener::from_config(&config(&[on, missing]).unwrap(), "SASL_PLAINTEXT").is_err());
        let opt_in = ("sasl.oauthbearer.unsecured.validator.enable", "true");
        let s = SaslListener::from_config(&config(&[on, opt_in]).unwrap(), "SASL_PLAINTEXT").unwrap();
        assert_eq!(s.mechanisms, vec![Mechanism::OAuthBearer]);
        assert!(s.plain.is_none(), "PLAIN's JAAS line is not needed for OAUTHBEARER only");
    }

    // Goal: the session lifetime is min(connections.max.reauth.ms, token expiry - now), never negative, and
    // absent when neither bounds it (KIP-368, as Kafka computes it).
    #[test]
    fn session_lifetime_is_bounded_by_reauth_and_expiry() {
        let listener = |reauth: &str| {
            let c = config(&[("sasl.jaas.config", JAAS), ("connections.max.reauth.ms", reauth)]).unwrap();
            SaslListener::from_config(&c, "SASL_PLAINTEXT").unwrap()
        };
        let (off, on) = (listener("0"), listener("60000"));
        assert_eq!(off.session_lifetime(None, 1000), None);
        assert_eq!(on.session_lifetime(None, 1000), Some(60_000));
        assert_eq!(off.session_lifetime(Some(11_000), 1000), Some(10_000));
        assert_eq!(on.session_lifetime(Some(11_000), 1000), Some(10_000));
        assert_eq!(on.session_lifetime(Some(1_000_000), 1000), Some(60_000));
        assert_eq!(on.session_lifetime(Some(500), 1000), Some(0), "an expired credential gives 0, not less");
        assert_eq!(Mechanism::parse("oauthbearer"), Some(Mechanism::OAuthBearer));
    }

    // Goal: a session with a lifetime may re-authenticate once a second at most; one without may not.
    #[test]
    fn reauthentication_needs_a_lifetime_and_a_second() {
        let now = Instant::now();
        let session = |expires_at| SaslSession { mechanism: Mechanism::Plain, expires_at, began_at: now };
        let later = now + REAUTHENTICATION_INTERVAL_MIN;
        assert!(!session(None).may_reauthenticate(later));
        assert!(!session(None).expired(later + Duration::from_secs(3600)));
        let bounded = session(Some(now + Duration::from_secs(5)));
        assert!(!bounded.may_reauthenticate(now + Duration::from_millis(999)));
        assert!(bounded.may_reauthenticate(later));
        assert!(!bounded.expired(now + Duration::from_secs(4)));
        assert!(bounded.expired(now + Duration::from_secs(5)));
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
