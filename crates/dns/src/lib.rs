//! berth-dns: the cluster DNS server. It answers the names Kubernetes' DNS specification defines for Services and their endpoints from Service and Endpoints informers, and forwards every other name to the node's resolvers.
//!
//! # Layout
//! - [`records`]: pure functions from Services and Endpoints to records, and the [`records::Index`] that answers by name.
//! - [`answer`]: one query's answer, from the index or upstream.
//! - [`forward`]: the upstream resolvers from a resolv.conf (hickory-resolver, with a bounded cache).
//! - [`limit`]: a token bucket per UDP client, so one client's flood does not starve the others.
//! - [`server`]: UDP (own loop: malformed packets are dropped and counted) and TCP (hickory-server).
//! - [`metrics`]: `berth_dns_…` metrics.
//!
//! Cluster names are never cached: every informer event rebuilds the index
//! (events arriving during a rebuild are coalesced into one more), and
//! queries read the newest one, so answers follow changes as soon as the
//! informers see them. Answers carry a TTL of 5 s.

pub mod answer;
pub mod forward;
pub mod limit;
pub mod metrics;
pub mod records;
pub mod server;

use berth_base::sync::RwLockExt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use berth_api::pb::core::{Endpoints, Service};
use berth_base::health::Checks;
use berth_client::{Client, ListParams};
use berth_runtime::Informer;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::answer::Answerer;
use crate::forward::Forwarder;
use crate::metrics::Metrics;
use crate::records::Index;

/// The default `--listen`: every address, the DNS port.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:53";
/// The default `--health-listen` (CoreDNS' health port is 8080; 10054 sits beside berth's other daemons' 102xx ports and kube-dns' 10054 metrics port).
pub const DEFAULT_HEALTH_LISTEN: &str = "127.0.0.1:10054";

/// The default `--max-queries-per-client` (UDP queries per second from one address).
pub const DEFAULT_MAX_QUERIES_PER_CLIENT: u32 = 20_000;

/// Why berth-dns could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Domain(#[from] records::Error),
    #[error(transparent)]
    Upstream(#[from] forward::Error),
    #[error("cannot listen on {addr} ({transport}): {source}")]
    Listen {
        addr: SocketAddr,
        transport: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("health endpoint: {0}")]
    Health(#[source] std::io::Error),
}

/// How berth-dns runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where DNS is served, UDP and TCP (`--listen`).
    pub listen: SocketAddr,
    /// The cluster domain (`--cluster-domain`).
    pub cluster_domain: String,
    /// Upstream resolvers for other names (`--resolv-conf`); `None` refuses them.
    pub resolv_conf: Option<PathBuf>,
    /// How many forwarded answers are cached (`--forward-cache-size`).
    pub forward_cache_size: usize,
    /// The cluster DNS address, answered for `ns.dns.<domain>` (`--cluster-dns-ip`).
    pub cluster_dns_ip: Option<Ipv4Addr>,
    /// UDP queries per second answered per client address, 0 for no limit (`--max-queries-per-client`).
    pub max_queries_per_client: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 53)),
            cluster_domain: "cluster.local".into(),
            resolv_conf: Some(PathBuf::from("/etc/resolv.conf")),
            forward_cache_size: 4096,
            cluster_dns_ip: Some(Ipv4Addr::new(10, 96, 0, 10)),
            max_queries_per_client: DEFAULT_MAX_QUERIES_PER_CLIENT,
        }
    }
}

/// Binds the DNS sockets of `config.listen` (UDP and TCP on the same port).
pub async fn bind(listen: SocketAddr) -> Result<(UdpSocket, TcpListener), Error> {
    let udp = UdpSocket::bind(listen).await.map_err(|source| Error::Listen { addr: listen, transport: "udp", source })?;
    let tcp = TcpListener::bind(listen).await.map_err(|source| Error::Listen { addr: listen, transport: "tcp", source })?;
    Ok((udp, tcp))
}

/// Serves DNS on `udp` and `tcp` and health on `health` until `shutdown` resolves.
pub async fn run(
    config: Config,
    client: Client,
    (udp, tcp): (UdpSocket, TcpListener),
    health: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let zone = records::zone_name(&config.cluster_domain)?;
    let forwarder = match &config.resolv_conf {
        Some(path) => Some(Forwarder::from_resolv_conf(path, &[config.listen], config.forward_cache_size)?),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let index = Arc::new(RwLock::new(Arc::new(Index::unsynced(&zone))));
    let answerer = Answerer::new(index.clone(), forwarder.clone());

    let synced = Arc::new(AtomicBool::new(false));
    let (trigger, stop) = berth_base::shutdown::channel();
    let checks = Checks::builder()
        .ready("informers", {
            let synced = synced.clone();
            move || if synced.load(Ordering::Relaxed) { Ok(()) } else { Err("the Service and Endpoints caches have not synced yet".into()) }
        })
        .build();
    let health_task = tokio::spawn(berth_base::health::serve(health, metrics.registry.clone(), checks, stop.clone().wait()));
    info!(
        udp = ?udp.local_addr().ok(),
        tcp = ?tcp.local_addr().ok(),
        zone = %zone,
        upstreams = ?forwarder.as_ref().map(|f| f.upstreams().to_vec()),
        server = %client.server(),
        "berth-dns starting"
    );

    let changed = Arc::new(Notify::new());
    let notify = |changed: &Arc<Notify>| {
        let c = changed.clone();
        move || c.notify_one()
    };
    let services_informer = {
        let (a, u, d) = (notify(&changed), notify(&changed), notify(&changed));
        Informer::<Service>::new(client.clone(), "", ListParams::default())
            .on_add(move |_| a())
            .on_update(move |_, _| u())
            .on_delete(move |_| d())
    };
    let endpoints_informer = {
        let (a, u, d) = (notify(&changed), notify(&changed), notify(&changed));
        Informer::<Endpoints>::new(client, "", ListParams::default())
            .on_add(move |_| a())
            .on_update(move |_, _| u())
            .on_delete(move |_| d())
    };
    let services = services_informer.reader();
    let endpoints = endpoints_informer.reader();
    let informers = [tokio::spawn(services_informer.run(stop.clone().wait())), tokio::spawn(endpoints_informer.run(stop.clone().wait()))];

    let rebuild = {
        let (services, endpoints, metrics, index, synced, changed) =
            (services.clone(), endpoints.clone(), metrics.clone(), index.clone(), synced.clone(), changed.clone());
        let dns_ip = config.cluster_dns_ip;
        async move {
            if services.wait_until_ready().await.is_err() || endpoints.wait_until_ready().await.is_err() {
                return;
            }
            let mut serial: u32 = 0;
            loop {
                serial = serial.wrapping_add(1);
                let all = services.list();
                let built = Index::build(&zone, serial, dns_ip, all.iter().map(|s| &**s), |svc| {
                    let meta = svc.metadata.as_ref()?;
                    endpoints.get(&meta.namespace, &meta.name)
                });
                metrics.records.set(i64::try_from(built.len()).unwrap_or(i64::MAX));
                metrics.rebuilds.inc();
                *index.write_or_recover() = Arc::new(built);
                if !synced.swap(true, Ordering::Relaxed) {
                    info!(services = all.len(), "caches synced; answering cluster names");
                }
                changed.notified().await;
            }
        }
    };
    let rebuild_task = tokio::spawn(rebuild);
    let udp_task = tokio::spawn(server::serve_udp(Arc::new(udp), answerer.clone(), metrics.clone(), config.max_queries_per_client));
    let tcp_task = tokio::spawn(server::serve_tcp(tcp, answerer, metrics, stop.clone().wait()));

    shutdown.await;
    info!("berth-dns stopping");
    trigger.fire();
    udp_task.abort();
    rebuild_task.abort();
    let _ = tcp_task.await;
    for informer in informers {
        let _ = informer.await;
    }
    match health_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::Health(e)),
        Err(e) => warn!(cause = %e, "health task ended abnormally"),
    }
    info!("berth-dns stopped");
    Ok(())
}
