//! berth-apiserver: the only door to the cluster state. It serves the
//! generic gRPC `Api` over every kind, keeps the semantics of DESIGN.md §3,
//! and persists to sled with group-committed, flushed writes (§4).
//!
//! # Layout
//! - [`storage`]: the `Store` trait, its sled backend and the watch cache.
//! - [`registry`]: the API's object semantics on top of a store.
//! - [`admission`]: the admission chain (plugins that mutate or refuse writes).
//! - [`allocator`]: ClusterIP and NodePort allocation for Services.
//! - [`defaults`]: Kubernetes' defaulting of omitted fields.
//! - [`service`]: the gRPC service, watches with selectors and bookmarks.
//! - [`http`]: `/healthz`, `/livez`, `/readyz` and `/metrics` on the API port.
//! - [`metrics`]: the Prometheus metrics.
//! - [`error`]: errors and their one mapping to gRPC codes.

pub mod admission;
pub mod allocator;
pub mod defaults;
pub mod error;
pub mod http;
pub mod metrics;
pub mod registry;
pub mod service;
pub mod storage;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use berth_api::pb::api::api_server::ApiServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::info;

use crate::storage::sled_store::{SledOptions, SledStore};

/// How the apiserver runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where sled keeps the cluster state.
    pub data_dir: PathBuf,
    /// How many recent events the watch history retains (in memory and on disk).
    pub history: usize,
    /// How often watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// sled's page cache.
    pub cache_capacity_bytes: u64,
    /// ClusterIPs come from this range (`--service-cidr`).
    pub service_cidr: String,
    /// NodePorts come from this range (`--service-node-port-range`).
    pub node_port_range: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/berth/apiserver"),
            history: 10_000,
            bookmark_interval: Duration::from_secs(10),
            cache_capacity_bytes: 64 * 1024 * 1024,
            service_cidr: registry::DEFAULT_SERVICE_CIDR.into(),
            node_port_range: "30000-32767".into(),
        }
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then ends every
/// watch, finishes in-flight requests and closes the store.
pub async fn run(config: Config, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    let cidr: allocator::Cidr = config.service_cidr.parse().with_context(|| format!("--service-cidr {:?}", config.service_cidr))?;
    let ports: allocator::PortRange =
        config.node_port_range.parse().with_context(|| format!("--service-node-port-range {:?}: write it like 30000-32767", config.node_port_range))?;
    let options = SledOptions { history: config.history, cache_capacity_bytes: config.cache_capacity_bytes };
    let dir = config.data_dir.clone();
    let store = tokio::task::spawn_blocking(move || SledStore::open(&dir, options))
        .await
        .context("store open task failed")?
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let store = Arc::new(store);
    let dyn_store: Arc<dyn storage::Store> = store.clone();
    let registry = registry::Registry::new(dyn_store.clone()).with_allocator(allocator::Allocator::new(cidr, ports));
    registry.bootstrap().await.context("cannot create the system namespaces")?;

    let metrics = metrics::Metrics::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, ready_rx) = watch::channel(true);
    let api = service::ApiService::new(registry, metrics.clone(), config.bookmark_interval, stop_rx);
    let grpc = ApiServer::new(api).max_decoding_message_size(64 * 1024 * 1024).max_encoding_message_size(256 * 1024 * 1024);
    let router = tonic::service::Routes::new(grpc)
        .into_axum_router()
        .merge(http::router(http::HealthState { metrics, store: dyn_store, ready: ready_rx }));

    let addr = listener.local_addr().context("listener has no address")?;
    info!(%addr, data_dir = %config.data_dir.display(), revision = storage::Store::current_revision(store.as_ref()), "serving the API");
    let signal = async move {
        shutdown.await;
        let _ = ready_tx.send(false);
        // Ending watches first lets the server drain: streams would otherwise keep it open.
        let _ = stop_tx.send(true);
    };
    let served = tonic::transport::Server::builder()
        .accept_http1(true)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_routes(tonic::service::Routes::from(router))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal)
        .await;
    let closed = tokio::task::spawn_blocking(move || store.close()).await;
    served.context("the API server failed")?;
    closed.context("store close task failed")?;
    info!("stopped");
    Ok(())
}
