//! The API port's connection loop: serves every accepted connection (plain
//! or TLS, see [`crate::tls::incoming`]) with HTTP/1.1 (with upgrades, which
//! WebSocket exec needs and tonic's own server does not allow) and HTTP/2,
//! on the one router that holds gRPC and REST. Each request carries its
//! connection's [`ConnInfo`] (peer address, client certificates) for
//! authentication. On shutdown it stops accepting and lets open requests
//! finish, for a bounded time.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tonic::transport::server::Connected as _;
use tower::ServiceExt as _;
use tracing::{debug, warn};

use crate::tls::{Conn, ConnInfo};

/// How long open connections get to finish once the server stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `incoming` with `service` until `shutdown` resolves, then drains.
pub async fn serve<I, S>(incoming: I, service: S, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()>
where
    I: Stream<Item = io::Result<Conn>> + Send + Unpin + 'static,
    S: tower::Service<http::Request<Incoming>, Response = axum::response::Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    let mut incoming = incoming;
    tokio::pin!(shutdown);
    loop {
        let conn = tokio::select! {
            c = incoming.next() => c,
            _ = &mut shutdown => break,
        };
        let conn = match conn {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                debug!(cause = %e, "connection failed before it was served");
                continue;
            }
            None => break,
        };
        let info: ConnInfo = conn.connect_info();
        let service = service.clone();
        let per_request = tower::service_fn(move |mut req: http::Request<Incoming>| {
            req.extensions_mut().insert(info.clone());
            service.clone().oneshot(req)
        });
        let served = builder.serve_connection_with_upgrades(TokioIo::new(conn), TowerToHyperService::new(per_request)).into_owned();
        let served = graceful.watch(served);
        tokio::spawn(async move {
            if let Err(e) = served.await {
                debug!(cause = %e, "connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        warn!(timeout = ?DRAIN_TIMEOUT, "connections still open after the drain timeout; closing them");
    }
    Ok(())
}
