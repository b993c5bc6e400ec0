//! The listeners: each accepts connections (all of them together up to
//! `max.connections`, and `max.connections.per.ip` from one address, at
//! most `max.connection.creation.rate` new ones a second and each IP within
//! its `connection_creation_rate` quota); the
//! server also runs periodic storage work and shuts down cleanly.
//!
//! Shutdown order: stop accepting on every listener, tell every connection to stop reading,
//! wait (bounded by `shutdown.timeout.ms`) for requests in progress to be
//! answered, then flush, checkpoint and write the clean-shutdown marker.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::broker::Broker;
use crate::cleaner;
use crate::config::ConfigError;
use crate::connection;
use crate::handler::now_ms;
use crate::listener::{Listener, SecurityProtocol};
use crate::retention;
use crate::sasl::SaslListener;
use crate::tls::{TlsError, TlsListener, TlsSettings};

/// A listener could not be set up; the broker does not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot bind listener {listener} on {addr}: {source}")]
    Bind { listener: String, addr: String, source: std::io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A listener bound to its socket.
struct Bound {
    listener: Arc<Listener>,
    socket: TcpListener,
}

/// A bound, ready broker.
pub struct Server {
    broker: Arc<Broker>,
    listeners: Vec<Bound>,
}

impl Server {
    /// Binds every listener, reads the certificates of TLS listeners and the
    /// credentials of SASL listeners.
    pub async fn bind(broker: Arc<Broker>) -> Result<Server, BindError> {
        let mut listeners = Vec::new();
        for spec in crate::listener::listeners(&broker.config)? {
            let addr = spec.bind_address();
            let socket = TcpListener::bind(&addr).await.map_err(|source| BindError::Bind {
                listener: spec.name.clone(),
                addr: addr.clone(),
                source,
            })?;
            let tls = match spec.security_protocol.uses_tls() {
                true => Some(TlsListener::load(TlsSettings::from_config(&broker.config, &spec.name)?)?),
                false => None,
            };
            let sasl = match spec.security_protocol.uses_sasl() {
                true => Some(Arc::new(
                    SaslListener::from_config(&broker.config, &spec.name)?.with_scram(broker.scram_credentials()),
                )),
                false => None,
            };
            let listener = Arc::new(Listener { name: spec.name.as_str().into(), spec, tls, sasl });
            listeners.push(Bound { listener, socket });
        }
        Ok(Server { broker, listeners })
    }

    /// The address of the first listener (the one `runnel serve` prints).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].socket.local_addr().expect("bound listener has an address")
    }

    /// Every listener's name, security protocol and bound address.
    pub fn listener_addrs(&self) -> Vec<(String, SecurityProtocol, SocketAddr)> {
        self.listeners
            .iter()
            .map(|b| {
                let addr = b.socket.local_addr().expect("bound listener has an address");
                (b.listener.spec.name.clone(), b.listener.spec.security_protocol, addr)
            })
            .collect()
    }

    /// Serves until `shutdown` resolves, then shuts down cleanly.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), runnel_log::LogError> {
        let Server { broker, listeners } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        // Every connection holds a clone; when all are dropped, all connections are done.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let limits = Arc::new(Limits {
            permits: Arc::new(Semaphore::new(broker.config.max_connections())),
            per_ip: Arc::default(),
            per_ip_max: broker.config.max_connections_per_ip(),
        });
        let background = tokio::spawn(periodic(broker.clone(), stop_rx.clone()));
        // Not awaited at shutdown: closing the logs stops a cleaning in progress (see `cleaner`).
        tokio::spawn(cleaner::run(broker.clone(), stop_rx.clone()));
        let group_timers = tokio::spawn(crate::group::run(broker.clone(), stop_rx.clone()));
        let txn_timers = tokio::spawn(crate::txn::run(broker.clone(), stop_rx.clone()));
        let mut accepting = Vec::new();
        for bound in listeners {
            if let Some(tls) = &bound.listener.tls {
                tokio::spawn(tls.clone().watch_files(stop_rx.clone()));
            }
            let task = accept_loop(broker.clone(), bound, limits.clone(), stop_rx.clone(), done_tx.clone());
            accepting.push(tokio::spawn(task));
        }
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing requests in progress");
        stop_tx.send_replace(true);
        for task in accepting {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "accept task ended abnormally");
            }
        }
        drop(done_tx);
        let timeout = Duration::from_millis(broker.config.shutdown_timeout_ms());
        if tokio::time::timeout(timeout, done_rx.recv()).await.is_err() {
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "connections still busy at shutdown timeout");
        }
        if let Err(e) = background.await {
            tracing::warn!(error = %e, "background task ended abnormally");
        }
        if let Err(e) = group_timers.await {
            tracing::warn!(error = %e, "group timer task ended abnormally");
        }
        if let Err(e) = txn_timers.await {
            tracing::warn!(error = %e, "transaction timer task ended abnormally");
        }
        let b = broker.clone();
        tokio::task::spawn_blocking(move || b.shutdown()).await.expect("shutdown does not panic")?;
        tracing::info!("clean shutdown complete");
        Ok(())
    }
}

/// The connection limits all listeners share: `max.connections` and
/// `max.connections.per.ip`.
struct Limits {
    permits: Arc<Semaphore>,
    per_ip: Arc<Mutex<HashMap<IpAddr, usize>>>,
    per_ip_max: usize,
}

/// Accepts connections on one listener until `stop`; the socket closes when it returns.
async fn accept_loop(
    broker: Arc<Broker>,
    bound: Bound,
    limits: Arc<Limits>,
    mut stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let Bound { listener, socket } = bound;
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            permit = limits.permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = socket.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Usually EMFILE; back off instead of spinning.
                    tracing::warn!(listener = %listener.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        if !wait_for_connection_rate(&broker, &mut stop).await {
            break;
        }
        let Some(per_ip) = PerIpSlot::take(&limits.per_ip, peer.ip(), limits.per_ip_max) else {
            connection::log_rejected(peer, "max.connections.per.ip reached");
            drop(stream);
            continue;
        };
        let ip_throttle_ms = broker.quotas.ip_connection_throttle(peer.ip());
        if ip_throttle_ms > 0 {
            // KIP-612: the connection is held for the throttle time, then
            // closed, so a client retrying at once is slowed down too.
            metrics::counter!(crate::metrics::CONNECTIONS_THROTTLED, "scope" => "ip").increment(1);
            connection::log_rejected(
                peer,
                &format!("connection_creation_rate quota reached, closing in {ip_throttle_ms} ms"),
            );
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ip_throttle_ms)).await;
                drop((stream, permit, per_ip));
            });
            continue;
        }
        let (broker, listener, stop, done) = (broker.clone(), listener.clone(), stop.clone(), done.clone());
        tokio::spawn(async move {
            connection::accept(broker, listener, stream, peer, stop).await;
            drop((permit, per_ip, done));
        });
    }
}

/// Records a new connection against `max.connection.creation.rate` and,
/// over it, waits before the connection is served (KIP-612: the acceptor
/// slows down; nothing is refused). False when the broker stops meanwhile.
async fn wait_for_connection_rate(broker: &Broker, stop: &mut watch::Receiver<bool>) -> bool {
    let rate_max = broker.effective_config().max_connection_creation_rate();
    if rate_max >= f64::from(i32::MAX) {
        return true;
    }
    let wait_ms = broker.quotas.broker_connection_throttle(rate_max);
    if wait_ms == 0 {
        return true;
    }
    metrics::counter!(crate::metrics::CONNECTIONS_THROTTLED, "scope" => "broker").increment(1);
    tracing::debug!(wait_ms, "max.connection.creation.rate reached, delaying a new connection");
    tokio::select! {
        _ = stop.changed() => false,
        _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => true,
    }
}

/// Periodic storage work: time-based flushes (`flush.ms`), background
/// flushes of rolled segments and deletion of removed segments' files every
/// second; a retention pass every `log.retention.check.interval.ms`. The log
/// manager writes its recovery-point checkpoints on a thread of its own.
async fn periodic(broker: Arc<Broker>, mut stop: watch::Receiver<bool>) {
    let mut flush = tokio::time::interval(Duration::from_millis(1000));
    let first_retention = tokio::time::Instant::now() + broker.config.initial_task_delay();
    let mut retention = tokio::time::interval_at(first_retention, broker.config.retention_check_interval());
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = flush.tick() => {
                let now = now_ms();
                for log in broker.logs.logs() {
                    if log.needs_flush(now) || log.has_unflushed_rolled_segments() {
                        broker.logs.flusher().request(&log);
                    }
                }
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || retention::purge(&b, now)).await;
            }
            _ = retention.tick() => {
                let b = broker.clone();
                let _ = tokio::task::spawn_blocking(move || retention::run_pass(&b, now_ms())).await;
            }
        }
    }
}

/// One of an IP address's `max.connections.per.ip` slots, given back on drop.
struct PerIpSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerIpSlot {
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr, max: usize) -> Option<PerIpSlot> {
        let mut map = counts.lock();
        let count = map.entry(ip).or_insert(0);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PerIpSlot { counts: counts.clone(), ip })
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock();
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}
