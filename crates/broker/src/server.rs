//! The listener: accepts connections up to `max.connections` (and
//! `max.connections.per.ip` from one address), runs periodic
//! storage work, and shuts down cleanly.
//!
//! Shutdown order: stop accepting, tell every connection to stop reading,
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
use crate::connection;
use crate::handler::{now_ms, Endpoint};
use crate::retention;

/// A bound, ready broker.
pub struct Server {
    broker: Arc<Broker>,
    listener: TcpListener,
    endpoint: Endpoint,
}

impl Server {
    /// Binds the listener. The advertised endpoint defaults to the bound address.
    pub async fn bind(broker: Arc<Broker>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(broker.config.listen()).await?;
        let local = listener.local_addr()?;
        let endpoint = match broker.config.advertised_listener() {
            Some(adv) => parse_endpoint(&adv).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("advertised listener '{adv}' is not host:port"),
                )
            })?,
            None => Endpoint { host: local.ip().to_string(), port: i32::from(local.port()) },
        };
        Ok(Server { broker, listener, endpoint })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    /// Serves until `shutdown` resolves, then shuts down cleanly.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<(), runnel_log::LogError> {
        let Server { broker, listener, endpoint } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        // Every connection holds a clone; when all are dropped, all connections are done.
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        let permits = Arc::new(Semaphore::new(broker.config.max_connections()));
        let per_ip: Arc<Mutex<HashMap<IpAddr, usize>>> = Arc::default();
        let background = tokio::spawn(periodic(broker.clone(), stop_rx.clone()));
        // Not awaited at shutdown: closing the logs stops a cleaning in progress (see `cleaner`).
        tokio::spawn(cleaner::run(broker.clone(), stop_rx.clone()));
        let group_timers = tokio::spawn(crate::group::run(broker.clone(), stop_rx.clone()));
        let txn_timers = tokio::spawn(crate::txn::run(broker.clone(), stop_rx.clone()));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                permit = permits.clone().acquire_owned() => permit.expect("semaphore is never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Usually EMFILE; back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Some(per_ip) = PerIpSlot::take(&per_ip, peer.ip(), broker.config.max_connections_per_ip()) else {
                connection::log_rejected(peer, "max.connections.per.ip reached");
                drop(stream);
                continue;
            };
            let (broker, endpoint, stop, done) = (broker.clone(), endpoint.clone(), stop_rx.clone(), done_tx.clone());
            tokio::spawn(async move {
                connection::serve(broker, endpoint, stream, peer, stop).await;
                drop((permit, per_ip, done));
            });
        }
        tracing::info!("shutting down: no new connections, finishing requests in progress");
        drop(listener);
        stop_tx.send_replace(true);
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

fn parse_endpoint(s: &str) -> Option<Endpoint> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    Some(Endpoint { host: host.trim_matches(|c| c == '[' || c == ']').to_string(), port: i32::from(port) })
}
