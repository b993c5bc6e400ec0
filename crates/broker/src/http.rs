//! The HTTP admin endpoint (`--http`, default 127.0.0.1:9644):
//!
//! - `GET /metrics`: Prometheus text format ([`crate::metrics`]);
//! - `GET /health`: 200 while the process runs (liveness);
//! - `GET /ready`: 200 once recovery is done and the Kafka listener accepts
//!   clients, 503 before that and from the moment shutdown begins.
//!
//! It starts before recovery, so orchestrators can tell "starting" from
//! "dead". It is bounded like the Kafka listener: at most
//! [`HTTP_CONNECTIONS_MAX`] connections, and a client must send its request
//! headers within [`HTTP_HEADER_READ_TIMEOUT`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::broker::Broker;

/// Concurrent HTTP connections served; more wait in the accept queue.
pub const HTTP_CONNECTIONS_MAX: usize = 64;
/// How long a client may take to send its request headers.
pub const HTTP_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the endpoint reports: readiness and, once open, the broker.
pub struct AdminState {
    ready: AtomicBool,
    broker: OnceLock<Arc<Broker>>,
    prometheus: PrometheusHandle,
}

impl AdminState {
    pub fn new(prometheus: PrometheusHandle) -> Arc<AdminState> {
        Arc::new(AdminState { ready: AtomicBool::new(false), broker: OnceLock::new(), prometheus })
    }

    /// The broker is open and its Kafka listener accepts clients.
    pub fn set_ready(&self, broker: Arc<Broker>) {
        // Set once; a second call (never made) would keep the first broker.
        let _first = self.broker.set(broker);
        self.ready.store(true, Ordering::Release);
    }

    /// Shutdown has begun: stop reporting ready so no new traffic is sent here.
    pub fn set_not_ready(&self) {
        self.ready.store(false, Ordering::Release);
    }
}

/// Binds the admin listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves the endpoint until the process exits.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>) {
    let permits = Arc::new(Semaphore::new(HTTP_CONNECTIONS_MAX));
    loop {
        let permit = permits.clone().acquire_owned().await.expect("semaphore is never closed");
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "admin http accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(req, state.clone()));
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HTTP_HEADER_READ_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "admin http connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn respond(req: Request<Incoming>, state: Arc<AdminState>) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let body = crate::metrics::render(&state.prometheus, state.broker.get().map(Arc::as_ref));
            let mut response = text(StatusCode::OK, body);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        (&Method::GET, "/health") => text(StatusCode::OK, "ok\n".into()),
        (&Method::GET, "/ready") if state.ready.load(Ordering::Acquire) => text(StatusCode::OK, "ready\n".into()),
        (&Method::GET, "/ready") => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics, /health or /ready\n".into()),
    };
    Ok(response)
}
