//! One client connection: set it up (TLS handshake, principal), on a SASL
//! listener authenticate it (`sasl`), read frames, guard and decode them,
//! dispatch, and write responses in request order.
//!
//! Up to `connection.max.inflight.requests` requests may be in progress at
//! once; beyond that the connection stops reading, which pushes back on the
//! client through TCP. A frame that cannot be read or parsed closes this
//! connection only, after the responses already due have been written. A
//! connection with nothing in progress that sends nothing for
//! `connections.max.idle.ms` is closed, as Kafka does.
//!
//! A SASL session with a lifetime (KIP-368) re-authenticates between
//! requests: its SaslHandshake waits until every earlier response is
//! written, then the exchange runs on the connection as at the start. Once
//! the session has expired, any request but a re-authentication closes the
//! connection, as Kafka does.
//!
//! Client quotas (`quota`): a request's produce bytes, fetch bytes and
//! handling time are measured against the quotas of its user and client id.
//! A client over a quota gets its response at once with `throttle_time_ms`
//! set, and the connection then reads nothing more until the throttle time
//! has passed (KIP-219); a produce request's throttle mutes the connection
//! as soon as the request is read.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::handler::{self, api_versions, throttle, Endpoint};
use crate::listener::Listener;
use crate::protocol::guard::{self, GuardError};
use crate::protocol::{decode_request, encode_response, Frame, FrameReader};
use crate::quota::manager::QuotaType;
use crate::sasl::{self, Refused, SaslListener, SaslSession};
use crate::session::{Principal, Session};

/// A response waiting its turn: the encoded response (none for `acks=0`)
/// and the throttle time its client quota gave (KIP-219), for which the
/// connection stops reading once the response is written.
struct Reply {
    bytes: Option<bytes::Bytes>,
    throttle_ms: u64,
}

/// A response being built.
type InFlight = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>;

/// Sets up a connection accepted on `listener`: the TLS handshake on a TLS
/// listener (which also gives the client's principal), a check that a
/// plaintext listener is not spoken to in TLS, then [`serve`].
pub async fn accept(
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    stream: TcpStream,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let accepted_at = tokio::time::Instant::now();
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let endpoint = match &listener.spec.advertised {
        Some(advertised) => advertised.clone(),
        // The address the client reached: right even for a wildcard bind.
        None => match stream.local_addr() {
            Ok(local) => Endpoint { host: local.ip().to_string(), port: i32::from(local.port()) },
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection has no local address");
                return;
            }
        },
    };
    let mut session = Session {
        listener: listener.name.clone(),
        security_protocol: listener.spec.security_protocol,
        endpoint,
        peer,
        principal: Principal::anonymous(),
        accepted_at,
    };
    match &listener.tls {
        Some(tls) => match tls.accept(stream).await {
            Ok((stream, principal)) => {
                tracing::debug!(%peer, listener = %session.listener, %principal, "TLS client connected");
                session.principal = principal;
                let (rd, wr) = tokio::io::split(stream);
                serve(broker, session, listener.sasl.clone(), rd, wr, shutdown).await;
            }
            Err(reason) => {
                metrics::counter!(crate::metrics::TLS_HANDSHAKE_FAILURES, "listener" => listener.name.to_string())
                    .increment(1);
                log_rejected(peer, &reason);
            }
        },
        None => {
            // A SASL client must start within its authentication deadline.
            let idle = broker.config.connections_max_idle();
            let wait_max = listener.sasl.as_ref().map_or(idle, |sasl| sasl.timeout.min(idle));
            match first_byte(&stream, wait_max).await {
                Some(0x16) => {
                    metrics::counter!(crate::metrics::CONNECTIONS_CLOSED_BAD_INPUT).increment(1);
                    log_rejected(
                        peer,
                        &format!("TLS handshake (a TLS client?) on plaintext listener {}", listener.name),
                    );
                    return;
                }
                None if listener.sasl.is_some() => {
                    log_rejected(peer, "not authenticated within sasl.server.authentication.timeout.ms");
                    return;
                }
                _ => {}
            }
            let (rd, wr) = stream.into_split();
            serve(broker, session, listener.sasl.clone(), rd, wr, shutdown).await;
        }
    }
}

/// The client's first byte, without consuming it, or `None` when none came
/// within `wait_max`. A TLS handshake record starts with 0x16; a Kafka request
/// with a length prefix whose first byte is 0 for any frame under 16 MiB, and
/// the first frame is bounded far below that.
async fn first_byte(stream: &TcpStream, wait_max: std::time::Duration) -> Option<u8> {
    let mut first = [0u8; 1];
    match tokio::time::timeout(wait_max, stream.peek(&mut first)).await {
        Ok(Ok(1)) => Some(first[0]),
        _ => None,
    }
}

/// Serves one connection until the client leaves, a frame is bad, or the
/// broker shuts down (then in-flight requests finish first). On a SASL
/// listener (`sasl` set) the client authenticates first.
pub async fn serve<R, W>(
    broker: Arc<Broker>,
    mut session: Session,
    sasl: Option<Arc<SaslListener>>,
    rd: R,
    mut wr: W,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let peer = session.peer;
    let _open = OpenConnection::counted();
    // Until the client has completed a request, frames are held to the small
    // pre-authentication bound, so an anonymous connection cannot make the
    // broker buffer a large frame.
    let mut frames = FrameReader::new(rd, broker.config.pre_request_frame_bytes_max(), broker.request_budget.clone());
    let mut greeted = false;
    let mut sasl_session: Option<SaslSession> = None;
    if let Some(sasl) = &sasl {
        let deadline = session.accepted_at + sasl.timeout;
        let exchange = sasl::authenticate(sasl, &mut session, &mut frames, &mut wr);
        match bounded(sasl, peer, deadline, &mut shutdown, exchange).await {
            Some(authenticated) => sasl_session = Some(authenticated),
            None => {
                if let Err(e) = wr.shutdown().await {
                    tracing::debug!(%peer, error = %e, "socket shutdown failed");
                }
                return;
            }
        }
        greeted = true;
        frames.set_frame_bytes_max(broker.config.socket_request_max_bytes());
    }
    let inflight_max = broker.config.connection_max_inflight_requests();
    let idle_max = broker.config.connections_max_idle();
    let idle = tokio::time::sleep(idle_max);
    tokio::pin!(idle);
    let mut inflight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut reading = true;
    // A client over its quota is muted: no frame is read until this passes.
    let muted = tokio::time::sleep(std::time::Duration::ZERO);
    tokio::pin!(muted);
    let mut is_muted = false;
    loop {
        tokio::select! {
            Some(reply) = inflight.next(), if !inflight.is_empty() => {
                if let Some(bytes) = reply.bytes {
                    if let Err(e) = wr.write_all(&bytes).await {
                        tracing::debug!(%peer, error = %e, "write failed, closing connection");
                        return;
                    }
                }
                mute(muted.as_mut(), &mut is_muted, reply.throttle_ms);
            }
            _ = &mut muted, if is_muted => is_muted = false,
            frame = frames.next_frame(), if reading && !is_muted && inflight.len() < inflight_max => {
                match frame {
                    Ok(Some(frame)) if sasl_turn(sasl_session.as_ref(), &frame.bytes) != SaslTurn::Serve => {
                        let turn = sasl_turn(sasl_session.as_ref(), &frame.bytes);
                        let (Some(sasl), Some(current)) = (sasl.as_deref(), sasl_session.as_mut()) else {
                            unreachable!("only a SASL session has a turn")
                        };
                        if turn == SaslTurn::Expired {
                            metrics::counter!(crate::metrics::SASL_EXPIRED_SESSIONS_CLOSED,
                                "listener" => session.listener.to_string()).increment(1);
                            log_rejected(peer, "SASL session expired without re-authentication");
                            reading = false;
                        } else if !write_due(&mut inflight, &mut wr, peer).await {
                            return;
                        } else {
                            // The exchange's frames are held to the pre-authentication bound, as at the start.
                            frames.set_frame_bytes_max(broker.config.pre_request_frame_bytes_max());
                            let deadline = tokio::time::Instant::now() + sasl.timeout;
                            let handshake = frame.bytes;
                            let exchange =
                                sasl::reauthenticate(sasl, &mut session, current, &mut frames, &mut wr, handshake);
                            match bounded(sasl, peer, deadline, &mut shutdown, exchange).await {
                                Some(next) => *current = next,
                                None => reading = false,
                            }
                            frames.set_frame_bytes_max(broker.config.socket_request_max_bytes());
                        }
                    }
                    Ok(Some(Frame { bytes, budget })) => match start_request(&broker, &session, bytes, budget).await {
                        Ok((pending, throttle_ms)) => {
                            inflight.push_back(pending);
                            mute(muted.as_mut(), &mut is_muted, throttle_ms);
                            if !greeted {
                                greeted = true;
                                frames.set_frame_bytes_max(broker.config.socket_request_max_bytes());
                            }
                        }
                        Err(reason) => {
                            log_rejected(peer, &format!("bad request: {reason}"));
                            metrics::counter!(crate::metrics::CONNECTIONS_CLOSED_BAD_INPUT).increment(1);
                            reading = false;
                        }
                    },
                    Ok(None) => reading = false,
                    Err(e) => {
                        log_rejected(peer, &format!("bad frame: {e}"));
                        metrics::counter!(crate::metrics::CONNECTIONS_CLOSED_BAD_INPUT).increment(1);
                        reading = false;
                    }
                }
            }
            _ = shutdown.changed(), if reading => reading = false,
            _ = &mut idle, if reading && inflight.is_empty() => {
                tracing::debug!(%peer, idle_ms = idle_max.as_millis() as u64, "closing idle connection");
                reading = false;
            }
        }
        if inflight.is_empty() {
            // Idle time counts from the last request answered or received.
            idle.as_mut().reset(tokio::time::Instant::now() + idle_max);
        }
        if !reading && inflight.is_empty() {
            break;
        }
    }
    if let Err(e) = wr.shutdown().await {
        tracing::debug!(%peer, error = %e, "socket shutdown failed");
    }
}

/// Stops reading for `throttle_ms` from now (KIP-219), unless the
/// connection is already muted for longer.
fn mute(muted: std::pin::Pin<&mut tokio::time::Sleep>, is_muted: &mut bool, throttle_ms: u64) {
    if throttle_ms == 0 {
        return;
    }
    let until = tokio::time::Instant::now() + std::time::Duration::from_millis(throttle_ms);
    if !*is_muted || muted.deadline() < until {
        muted.reset(until);
    }
    *is_muted = true;
}

/// Runs a SASL exchange (`sasl::authenticate` or `sasl::reauthenticate`)
/// until `deadline` (`sasl.server.authentication.timeout.ms`, counted from
/// the connection's acceptance for the first authentication, a TLS handshake
/// and the wait for the first byte included), cut short by shutdown; the
/// session when the connection may go on.
async fn bounded(
    sasl: &SaslListener,
    peer: SocketAddr,
    deadline: tokio::time::Instant,
    shutdown: &mut watch::Receiver<bool>,
    exchange: impl std::future::Future<Output = Result<SaslSession, Refused>>,
) -> Option<SaslSession> {
    let outcome = tokio::select! {
        outcome = tokio::time::timeout_at(deadline, exchange) => outcome,
        _ = shutdown.changed() => return None,
    };
    match outcome {
        Ok(Ok(authenticated)) => Some(authenticated),
        Ok(Err(Refused::Left | Refused::Failed)) => None,
        Ok(Err(Refused::Io(e))) => {
            tracing::debug!(%peer, error = %e, "write failed during SASL authentication");
            None
        }
        Ok(Err(Refused::BadInput(reason))) => {
            metrics::counter!(crate::metrics::CONNECTIONS_CLOSED_BAD_INPUT).increment(1);
            log_rejected(peer, &reason);
            None
        }
        Err(_) => {
            let timeout_ms = sasl.timeout.as_millis();
            log_rejected(
                peer,
                &format!("not authenticated within sasl.server.authentication.timeout.ms ({timeout_ms})"),
            );
            None
        }
    }
}

/// What a request frame of a connection with a SASL session leads to (KIP-368).
#[derive(Debug, PartialEq, Eq)]
enum SaslTurn {
    /// Served as usual.
    Serve,
    /// A SaslHandshake that begins a re-authentication.
    Reauthenticate,
    /// The session has expired: the connection is closed.
    Expired,
}

fn sasl_turn(current: Option<&SaslSession>, frame: &[u8]) -> SaslTurn {
    let Some(current) = current else { return SaslTurn::Serve };
    let now = tokio::time::Instant::now();
    let handshake = frame.get(..2) == Some(&(ApiKey::SaslHandshake as i16).to_be_bytes()[..]);
    if handshake && current.may_reauthenticate(now) {
        SaslTurn::Reauthenticate
    } else if current.expired(now) {
        SaslTurn::Expired
    } else {
        SaslTurn::Serve
    }
}

/// Writes every response in flight, in order; whether the connection is still usable.
async fn write_due<W: AsyncWrite + Unpin>(
    inflight: &mut FuturesOrdered<InFlight>,
    wr: &mut W,
    peer: SocketAddr,
) -> bool {
    while let Some(reply) = inflight.next().await {
        if let Some(bytes) = reply.bytes {
            if let Err(e) = wr.write_all(&bytes).await {
                tracing::debug!(%peer, error = %e, "write failed, closing connection");
                return false;
            }
        }
    }
    true
}

/// Connection error lines logged per second at most; the rest are counted and
/// reported in the next line, so a misbehaving client cannot flood the log.
pub const REJECTED_LOG_LINES_PER_SECOND_MAX: u32 = 10;

/// Logs one line for a connection closed or refused because of its client,
/// with the peer address and the reason, rate-limited.
pub fn log_rejected(peer: SocketAddr, reason: &str) {
    static WINDOW: parking_lot::Mutex<(Option<std::time::Instant>, u32, u64)> = parking_lot::Mutex::new((None, 0, 0));
    let mut window = WINDOW.lock();
    let now = std::time::Instant::now();
    if window.0.is_none_or(|start| now.duration_since(start) >= std::time::Duration::from_secs(1)) {
        *window = (Some(now), 0, window.2);
    }
    if window.1 >= REJECTED_LOG_LINES_PER_SECOND_MAX {
        window.2 += 1;
        return;
    }
    window.1 += 1;
    let suppressed = std::mem::take(&mut window.2);
    drop(window);
    tracing::info!(%peer, reason, suppressed_since_last = suppressed, "closing client connection");
}

/// Counts a connection in the open-connections gauge for as long as it lives.
struct OpenConnection(metrics::Gauge);

impl OpenConnection {
    fn counted() -> OpenConnection {
        metrics::counter!(crate::metrics::CONNECTIONS_ACCEPTED).increment(1);
        let gauge = metrics::gauge!(crate::metrics::CONNECTIONS);
        gauge.increment(1);
        OpenConnection(gauge)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}

/// Guards, decodes and dispatches one frame. An error closes the connection.
/// `budget` is the frame's share of `queued.max.request.bytes`; it is
/// released when the response has been built. Also returns the throttle a
/// produce quota gave the request, known before it is handled: the
/// connection stops reading for that long at once.
async fn start_request(
    broker: &Arc<Broker>,
    session: &Session,
    frame: bytes::Bytes,
    budget: tokio::sync::OwnedSemaphorePermit,
) -> Result<(InFlight, u64), String> {
    let summary = match guard::check_request(&frame) {
        Ok(summary) => summary,
        Err(GuardError::UnsupportedVersion { api_key, correlation_id, .. })
            if api_key == ApiKey::ApiVersions as i16 =>
        {
            let body = ResponseKind::ApiVersions(api_versions::unsupported());
            let bytes = encode_response(ApiKey::ApiVersions, 0, correlation_id, &body);
            return Ok((Box::pin(async move { Reply { bytes: Some(bytes), throttle_ms: 0 } }), 0));
        }
        Err(e) => {
            let head = &frame[..frame.len().min(64)];
            tracing::debug!(error = %e, frame_len = frame.len(), head = ?head, "request refused by the guard");
            return Err(e.to_string());
        }
    };
    let frame_len = frame.len();
    let mut request = decode_request(frame, &summary).map_err(|e| e.to_string())?;
    let (api_key, version, correlation_id) = (request.api_key, summary.api_version, summary.correlation_id);
    let quota = RequestQuota::new(broker, session, request.header.client_id.as_deref());
    let produce_throttle = quota.as_ref().map_or(0, |q| q.before(&mut request, frame_len));
    let started = std::time::Instant::now();
    let pending = handler::dispatch(broker, session, request).await.map_err(|e| e.to_string())?;
    let handling = started.elapsed();
    let reply = Box::pin(async move {
        let (body, handling) = timed(pending, handling).await;
        drop(budget);
        let api = crate::metrics::api_name(api_key);
        metrics::counter!(crate::metrics::REQUESTS, "api" => api).increment(1);
        metrics::histogram!(crate::metrics::REQUEST_DURATION, "api" => api).record(started.elapsed().as_secs_f64());
        let (body, throttle_ms) = match &quota {
            Some(quota) => quota.after(body, handling, produce_throttle),
            None => (body, 0),
        };
        let Some(body) = body else { return Reply { bytes: None, throttle_ms } };
        // Clients older than KIP-219 expect the broker to hold the response back.
        if throttle_ms > 0 && !throttle::client_throttles(api_key, version) {
            tokio::time::sleep(std::time::Duration::from_millis(throttle_ms)).await;
            return Reply { bytes: Some(encode_response(api_key, version, correlation_id, &body)), throttle_ms: 0 };
        }
        Reply { bytes: Some(encode_response(api_key, version, correlation_id, &body)), throttle_ms }
    });
    Ok((reply, produce_throttle))
}

/// Runs `pending`, adding the time spent polling it to `handling`: the time
/// the broker spent on the request, without the time it waited (fsync, long
/// poll), which `request_percentage` measures.
async fn timed<F: std::future::Future + Unpin>(
    mut pending: F,
    mut handling: std::time::Duration,
) -> (F::Output, std::time::Duration) {
    let output = std::future::poll_fn(|cx| {
        let polled = std::time::Instant::now();
        let poll = std::pin::Pin::new(&mut pending).poll(cx);
        handling += polled.elapsed();
        poll
    })
    .await;
    (output, handling)
}

/// A request's client quotas: who it is charged to, and the throttles its
/// produce bytes, fetch bytes and handling time give.
struct RequestQuota {
    broker: Arc<Broker>,
    user: String,
    client_id: String,
}

impl RequestQuota {
    /// `None` when no quota is set at all: then nothing is measured, and
    /// the request path allocates nothing for quotas.
    fn new(broker: &Arc<Broker>, session: &Session, client_id: Option<&str>) -> Option<RequestQuota> {
        if broker.quotas.configs().is_empty() {
            return None;
        }
        Some(RequestQuota {
            broker: broker.clone(),
            user: session.principal.name.clone(),
            client_id: client_id.unwrap_or_default().to_string(),
        })
    }

    /// Before handling: a produce request's bytes count against
    /// `producer_byte_rate` (the throttle is returned); a fetch is capped at
    /// the client's consumer quota over one window, as Kafka caps it.
    fn before(&self, request: &mut crate::protocol::Request, frame_len: usize) -> u64 {
        match &mut request.body {
            RequestKind::Produce(_) => {
                self.broker.quotas.record(QuotaType::Produce, &self.user, &self.client_id, frame_len as f64)
            }
            RequestKind::Fetch(fetch) => {
                if let Some(max) = self.broker.quotas.fetch_bytes_max(&self.user, &self.client_id) {
                    fetch.max_bytes = fetch.max_bytes.min(i32::try_from(max).unwrap_or(i32::MAX));
                }
                0
            }
            _ => 0,
        }
    }

    /// After handling: fetch bytes and handling time are measured, the
    /// largest throttle goes into the response, and a throttled fetch loses
    /// its data (and its bytes are not counted), as in Kafka.
    fn after(
        &self,
        body: Option<ResponseKind>,
        handling: std::time::Duration,
        produce_throttle: u64,
    ) -> (Option<ResponseKind>, u64) {
        let quotas = &self.broker.quotas;
        let (user, client) = (self.user.as_str(), self.client_id.as_str());
        let percent_seconds = handling.as_secs_f64() * 100.0;
        let request_throttle = quotas.record(QuotaType::Request, user, client, percent_seconds);
        let mut throttle = produce_throttle.max(request_throttle);
        let mut body = body;
        if let Some(ResponseKind::Fetch(fetch)) = &body {
            let bytes = throttle::fetch_record_bytes(fetch) as f64;
            throttle = throttle.max(quotas.record(QuotaType::Fetch, user, client, bytes));
            if throttle > 0 {
                quotas.unrecord(QuotaType::Fetch, user, client, bytes);
                body = Some(ResponseKind::Fetch(throttle::throttled_fetch(0)));
            }
        }
        if throttle > 0 {
            tracing::debug!(user, client_id = client, throttle_ms = throttle, "client throttled by quota");
        }
        if let Some(body) = &mut body {
            throttle::set_throttle_time(body, i32::try_from(throttle).unwrap_or(i32::MAX));
        }
        (body, throttle)
    }
}
