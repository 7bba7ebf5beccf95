//! berth-kubelet: the agent on each node. It registers its Node and keeps
//! it alive, runs the pods bound to it on the Docker engine, probes them,
//! reports their status and usage, and serves their logs and exec.
//!
//! # Layout
//! - [`config`]: the settings the flags give.
//! - [`agent`]: one node's shared state.
//! - [`node`]: registration, Lease heartbeat, node status and conditions.
//! - [`host`]: facts about the host from `/proc` and `/sys`.
//! - [`pod`]: the pod workers, one sync of a pod, its status.
//! - [`container`]: a container spec to what the engine creates (env, mounts, limits, hash).
//! - [`volumes`]: the pod's data directory and volumes.
//! - [`images`]: pulls per imagePullPolicy with back-off.
//! - [`ipam`]: pod addresses from the node's podCIDR.
//! - [`backoff`]: restart back-off (CrashLoopBackOff).
//! - [`probes`]: liveness and readiness probes.
//! - [`stats`]: CPU and memory usage per container, pod and node.
//! - [`podlogs`]: the logs of deleted pods.
//! - [`server`]: the kubelet's gRPC endpoint (logs, exec, stats).
//! - [`metrics`]: `berth_kubelet_*` metrics.
//! - [`runtime`]: the container runtime trait, Docker and fake (hollow nodes).
//!
//! The cluster network is a Docker bridge network named `berth`
//! (172.30.0.0/16), created by the first kubelet that needs it and never
//! removed by the kubelet; each node owns a /24 of it (its podCIDR).

pub mod agent;
pub mod backoff;
pub mod config;
pub mod container;
pub mod host;
pub mod images;
pub mod ipam;
pub mod metrics;
pub mod node;
pub mod pod;
pub mod podlogs;
pub mod probes;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod volumes;

use berth_base::shutdown::Stop;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::pb::core::{Node, Pod, Service};
use berth_base::health::Checks;
use berth_client::{Client, ListParams};
use berth_runtime::events::Recorder;
use berth_runtime::{Informer, Reader};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

pub use config::{Config, RuntimeKind};

use crate::agent::Agent;
use crate::host::HostInfo;
use crate::images::Images;
use crate::ipam::Ipam;
use crate::metrics::Metrics;
use crate::node::NodeAgent;
use crate::pod::Workers;
use crate::podlogs::PodLogs;
use crate::probes::Probes;
use crate::runtime::Runtime;
use crate::stats::Stats;

/// Why the kubelet could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container engine cannot be used.
    #[error("container runtime: {0}")]
    Runtime(#[from] runtime::Error),
    /// The API server address is unusable.
    #[error("api client: {0}")]
    Client(#[from] berth_client::Error),
    /// A listener or the root directory failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The settings contradict each other.
    #[error("{0}")]
    Config(String),
}

/// Runs the kubelet until `shutdown` resolves: health and metrics on
/// `health`, the kubelet API on `api` (none for hollow nodes).
pub async fn run(
    config: Config,
    health: TcpListener,
    api: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    if config.node_name.is_empty() {
        return Err(Error::Config("the node name is empty: give --node-name".into()));
    }
    if config.hollow_nodes > 0 && config.runtime != RuntimeKind::Fake {
        return Err(Error::Config("--hollow-nodes needs --runtime fake".into()));
    }
    let api_tls = config.api_tls.as_ref().map(server::tls_config).transpose().map_err(|e| Error::Config(e.to_string()))?;
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (ready_tx, ready_rx) = watch::channel(false);
    let (trigger, stop_rx) = berth_base::shutdown::channel();
    tokio::spawn(async move {
        shutdown.await;
        trigger.fire();
    });
    // Hollow nodes run an in-process fake each; a real node checks its engine.
    let engine: Option<Arc<dyn Runtime>> = match (config.hollow_nodes, config.runtime) {
        (0, RuntimeKind::Docker) => Some(Arc::new(runtime::docker::DockerRuntime::connect().await?)),
        (0, RuntimeKind::Fake) => Some(Arc::new(runtime::fake::FakeRuntime::new())),
        _ => None,
    };
    let runtime = engine.map(|r| runtime::metered::Metered::wrap(r, metrics.clone()));
    let mut checks = Checks::builder().ready("registered", move || {
        if *ready_rx.borrow() { Ok(()) } else { Err("the node is not registered with the apiserver yet".into()) }
    });
    if let Some(r) = &runtime {
        let r = r.clone();
        checks = checks.ready_async("runtime", move || {
            let r = r.clone();
            async move { r.version().await.map(drop).map_err(|e| format!("the container runtime does not answer: {e}")) }
        });
    }
    let checks = checks.build();
    let mut tasks = JoinSet::new();
    tasks.spawn({
        let (stop, checks) = (stop_rx.clone(), checks.clone());
        async move {
            if let Err(e) = berth_base::health::serve(health, Arc::new(registry), checks, stop.wait()).await {
                warn!(cause = %e, "the health endpoint failed");
            }
        }
    });
    let client = Client::connect_lazy(&config.client)?;
    std::fs::create_dir_all(&config.root_dir)?;
    warn_about_unreachable_resolvers(&config);
    // One cache of the cluster's Services for every node of this process:
    // the containers' Service environment variables.
    let service_informer = Informer::<Service>::new(client.clone(), "", ListParams::default());
    let services = service_informer.reader();
    tasks.spawn(service_informer.run(stop_rx.clone().wait()));

    if config.hollow_nodes > 0 {
        info!(nodes = config.hollow_nodes, prefix = %config.node_name, "starting hollow nodes");
        let ready = Arc::new(std::sync::atomic::AtomicU32::new(0));
        for i in 0..config.hollow_nodes {
            let mut c = config.clone();
            c.node_name = format!("{}-{i}", config.node_name);
            c.root_dir = config.root_dir.join(&c.node_name);
            let runtime = runtime::metered::Metered::wrap(Arc::new(runtime::fake::FakeRuntime::new()), metrics.clone());
            let (client, metrics, stop, ready, ready_tx, services) =
                (client.clone(), metrics.clone(), stop_rx.clone(), ready.clone(), ready_tx.clone(), services.clone());
            let total = config.hollow_nodes;
            tasks.spawn(async move {
                let on_ready = move || {
                    if ready.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == total {
                        let _ = ready_tx.send(true);
                    }
                };
                if let Err(e) = run_node(c, runtime, client, services, metrics, None, stop, on_ready).await {
                    warn!(cause = %e, "a hollow node stopped");
                }
            });
        }
    } else if let Some(runtime) = runtime {
        let stop = stop_rx.clone();
        let on_ready = move || {
            let _ = ready_tx.send(true);
        };
        run_node(config, runtime, client, services, metrics, api.map(|l| (l, api_tls, checks)), stop, on_ready).await?;
    }
    stop_rx.wait().await;
    // Let the tasks see the stop; cap the drain.
    let _ = tokio::time::timeout(Duration::from_secs(10), async { while tasks.join_next().await.is_some() {} }).await;
    info!("kubelet stopped");
    Ok(())
}

/// Logs a warning when `--resolv-conf` names only loopback resolvers (such
/// as systemd-resolved's 127.0.0.53): pods in their own network namespace
/// cannot reach those, so dnsPolicy Default pods would resolve nothing.
fn warn_about_unreachable_resolvers(config: &Config) {
    let Some(path) = &config.resolv_conf else { return };
    match std::fs::read_to_string(path) {
        Ok(text) if pod::dns::ResolvConf::parse(&text).only_loopback() => warn!(
            resolv_conf = %path.display(),
            "--resolv-conf names only loopback resolvers, which pods cannot reach: give one with the real upstream resolvers \
             (with systemd-resolved: /run/systemd/resolve/resolv.conf)"
        ),
        Ok(_) => {}
        Err(e) => warn!(resolv_conf = %path.display(), cause = %e, "cannot read --resolv-conf: dnsPolicy Default pods get no resolvers"),
    }
}

/// Runs one node's kubelet until `stop`; returns once it is running.
#[allow(clippy::too_many_arguments)]
async fn run_node(
    config: Config,
    runtime: Arc<dyn Runtime>,
    client: Client,
    services: Reader<Service>,
    metrics: Metrics,
    api: Option<(TcpListener, Option<tonic::transport::ServerTlsConfig>, Checks)>,
    stop: Stop,
    on_ready: impl FnOnce() + Send + 'static,
) -> Result<(), Error> {
    let name = config.node_name.clone();
    let scheme = runtime.version().await.ok().and_then(|v| v.version.split_once("://").map(|(s, _)| s.to_string()));
    let port = match &api {
        Some((l, _, _)) => l.local_addr()?.port(),
        None => 0,
    };
    let pod_informer = Informer::<Pod>::new(client.clone(), "", ListParams::default().fields(format!("spec.nodeName={name}")));
    let node_informer = Informer::<Node>::new(client.clone(), "", ListParams::default().fields(format!("metadata.name={name}")));
    let gateway = ipam::Cidr::parse(&config.cluster_cidr).map(|c| c.first_host()).ok();
    let agent = Arc::new(Agent {
        recorder: Recorder::new(client.clone(), "kubelet", &name),
        images: Images::new(runtime.clone(), metrics.clone()),
        probes: Probes::new(metrics.clone()),
        stats: Stats::default(),
        pod_logs: PodLogs::new(&config.root_dir, config.deleted_pod_logs_ttl),
        host: HostInfo::read(),
        scheme: scheme.unwrap_or_else(|| "docker".into()),
        pods: pod_informer.reader(),
        node: node_informer.reader(),
        services,
        ipam: Mutex::new(Ipam::new(gateway.into_iter().collect())),
        restarts: Mutex::default(),
        started: Mutex::default(),
        node_changed: tokio::sync::Notify::new(),
        port,
        config,
        client,
        runtime,
        metrics,
    });
    let workers = Workers::new(agent.clone(), stop.clone());
    let pod_informer = {
        let (w1, w2, w3) = (workers.clone(), workers.clone(), workers.clone());
        pod_informer
            .on_add(move |p| w1.update(None, p))
            .on_update(move |old, new| w2.update(Some(old), new))
            .on_delete(move |p| w3.deleted(p))
    };
    let node_informer = {
        let (a1, a2, w1) = (agent.clone(), agent.clone(), workers.clone());
        node_informer.on_add(move |_| a1.node_changed.notify_one()).on_update(move |old, new| {
            a2.node_changed.notify_one();
            let cidr = |n: &Node| n.spec.as_ref().map(|s| s.pod_cidr.clone()).unwrap_or_default();
            if cidr(old) != cidr(new) {
                w1.poke_all();
            }
        })
    };

    // Register first: pods must not run on a node that does not exist.
    let mut node_agent = NodeAgent::new(agent.clone());
    if !node_agent.register(stop.clone()).await {
        return Ok(());
    }
    if agent.runtime.needs_pod_cidr()
        && let Err(e) = node::ensure_network(&agent).await
    {
        warn!(network = %agent.config.cluster_network, cause = %e, "the cluster network is not ready");
    }
    // Running sandboxes keep their addresses.
    let mut delay = Duration::from_millis(200);
    while let Err(e) = workers.reserve_addresses().await {
        warn!(node = %name, cause = %e, "listing the node's sandboxes failed, retrying");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.clone().wait() => return Ok(()),
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    tokio::spawn(node_informer.run(stop.clone().wait()));
    tokio::spawn(pod_informer.run(stop.clone().wait()));
    if let Some((listener, api_tls, checks)) = api {
        let (a, s) = (agent.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = server::serve(a, listener, api_tls, checks, s.wait()).await {
                warn!(cause = %e, "the kubelet API failed");
            }
        });
    }
    // Adopt what runs once the pods the apiserver has are known.
    let (pods, w, a) = (agent.pods.clone(), workers.clone(), agent.clone());
    let mut s = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            r = pods.wait_until_ready() => if r.is_err() { return },
            () = s.stopped() => return,
        }
        loop {
            match w.adopt().await {
                Ok(()) => break,
                Err(e) => warn!(node = %a.node_name(), cause = %e, "adopting the node's containers failed, retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                () = s.stopped() => return,
            }
        }
    });
    tokio::spawn(node_agent.run(stop.clone()));
    tokio::spawn(Stats::run(agent.clone(), stop.clone()));
    tokio::spawn(workers.clone().watch_runtime());
    tokio::spawn(workers.clone().housekeeping());
    {
        let (a, s) = (agent.clone(), stop.clone());
        tokio::spawn(async move { a.pod_logs.clean(s).await });
    }
    info!(node = %name, port, "kubelet running");
    on_ready();
    Ok(())
}
