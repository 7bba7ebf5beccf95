//! berth-controller-manager: the controllers that drive the cluster's
//! observed state towards its declared state. Each controller is one module
//! built on shared informers and a rate-limited work queue; all are
//! level-triggered (a sync reads the current state, so a restart at any
//! moment is safe), and only the instance holding the leader Lease runs them.
//!
//! # Layout
//! - [`replication`]: ReplicationControllers keep their pods.
//! - [`endpoints`]: Endpoints follow each Service's ready pods.
//! - [`namespace`]: a deleted namespace is emptied, then removed.
//! - [`gc`]: the garbage collector (ownerReferences, propagation policies).
//! - [`node`]: node heartbeats, taints, evictions and podCIDR allocation.
//! - [`resourcequota`]: ResourceQuota `status.used`.
//! - [`service`]: LoadBalancer services get an address from a provider.
//! - [`controller`]: the worker loop every controller shares.
//! - [`informers`]: one informer per kind, shared by the controllers.
//! - [`pods`]: readiness, activity and ownership facts about pods.
//! - [`metrics`], [`error`]: metrics, errors (the stop signal is `berth_base::shutdown`).

pub mod controller;
pub mod endpoints;
pub mod error;
pub mod gc;
pub mod informers;
pub mod metrics;
pub mod namespace;
pub mod node;
pub mod pods;
pub mod replication;
pub mod resourcequota;
pub mod service;

use berth_base::sync::MutexExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use berth_base::health::{Checks, Flag};
use berth_client::{Client, ClientConfig};
use berth_runtime::leader::{self, LeaderConfig};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::{error, info, warn};

pub use crate::error::{Error, Result};
use crate::informers::Informers;
use crate::metrics::Metrics;
use berth_base::shutdown::Stop;

/// Every controller, by the name `--controllers` uses, in start order.
pub const CONTROLLERS: &[&str] =
    &[replication::NAME, endpoints::NAME, namespace::NAME, gc::NAME, node::NAME, node::IPAM_NAME, resourcequota::NAME, service::NAME];

/// Other names accepted for controllers (Kubernetes' own, and short ones).
const ALIASES: &[(&str, &str)] =
    &[("gc", gc::NAME), ("replicationcontroller", replication::NAME), ("nodelifecycle", node::NAME), ("endpoint", endpoints::NAME)];

/// Which controllers run: `*` (all), names, and `-name` to leave one out,
/// as kube-controller-manager's `--controllers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    enabled: Vec<&'static str>,
}

impl Selection {
    /// Parses `*`, `replication,endpoints`, `*,-gc`, `replication,endpoints,-gc`.
    pub fn parse(spec: &str) -> Result<Selection, String> {
        let mut all = false;
        let mut on = Vec::new();
        let mut off = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if item == "*" {
                all = true;
                continue;
            }
            let (negate, name) = match item.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, item),
            };
            let name = resolve(name).ok_or_else(|| format!("unknown controller {name:?}; known: {}", CONTROLLERS.join(", ")))?;
            if negate { off.push(name) } else { on.push(name) }
        }
        // Only exclusions means "all but these".
        if on.is_empty() && !off.is_empty() {
            all = true;
        }
        let enabled = CONTROLLERS.iter().copied().filter(|c| (all || on.contains(c)) && !off.contains(c)).collect();
        Ok(Selection { enabled })
    }

    /// Every controller.
    pub fn all() -> Selection {
        Selection { enabled: CONTROLLERS.to_vec() }
    }

    pub fn enabled(&self, name: &str) -> bool {
        self.enabled.contains(&name)
    }

    pub fn names(&self) -> &[&'static str] {
        &self.enabled
    }
}

fn resolve(name: &str) -> Option<&'static str> {
    CONTROLLERS.iter().copied().find(|c| *c == name).or_else(|| ALIASES.iter().find(|(a, _)| *a == name).map(|(_, c)| *c))
}

/// Leader election timings (kube-controller-manager's defaults).
#[derive(Debug, Clone)]
pub struct LeaderSettings {
    /// Whether to elect a leader at all; off, this instance always runs.
    pub enabled: bool,
    pub namespace: String,
    pub name: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for LeaderSettings {
    fn default() -> Self {
        LeaderSettings {
            enabled: true,
            namespace: "kube-system".into(),
            name: "berth-controller-manager".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// How the manager runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub client: ClientConfig,
    pub controllers: Selection,
    pub leader: LeaderSettings,
    /// How often informers re-announce every object (zero: never).
    pub resync: Duration,
    pub replication: replication::Settings,
    pub endpoints: endpoints::Settings,
    pub namespace: namespace::Settings,
    pub gc: gc::Settings,
    pub node: node::Settings,
    pub quota: resourcequota::Settings,
    pub service: service::Settings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client: ClientConfig::default(),
            controllers: Selection::all(),
            leader: LeaderSettings::default(),
            resync: Duration::from_secs(5 * 60),
            replication: Default::default(),
            endpoints: Default::default(),
            namespace: Default::default(),
            gc: Default::default(),
            node: Default::default(),
            quota: Default::default(),
            service: Default::default(),
        }
    }
}

/// What every controller gets: the API, metrics, the stop signal and the
/// identity it records events under.
#[derive(Clone)]
pub struct Ctx {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub stop: Stop,
    /// This instance's host, for Events' source.
    pub host: String,
}

type ControllerTask = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// How long running controllers get to finish their current syncs at shutdown.
const DRAIN: Duration = Duration::from_secs(10);

/// Runs the manager until `shutdown` resolves (Ok) or the leader lease is
/// lost (Err: the process should exit so that a restart starts as a
/// candidate again). Serves health and metrics on `health` all along.
pub async fn run(config: Config, health: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let (trigger, stop) = berth_base::shutdown::channel();
    let mut registry = Registry::with_prefix("berth_controller_manager");
    let metrics = Metrics::new(&mut registry);
    // Informers start with leadership: a standby has nothing to sync and is ready.
    let synced: Arc<std::sync::Mutex<Option<SyncedCheck>>> = Arc::default();
    let leading = Flag::passing();
    let checks = {
        let synced = synced.clone();
        Checks::builder()
            .ready("informers-synced", move || match &*synced.lock_or_recover() {
                Some(check) => check(),
                None => Ok(()),
            })
            .ready_flag("leader-election", &leading)
            .build()
    };
    let health_addr = health.local_addr().ok();
    let health_task = tokio::spawn(berth_base::health::serve(health, Arc::new(registry), checks.clone(), stop.clone().wait()));
    info!(health = ?health_addr, controllers = ?config.controllers.names(), leader_elect = config.leader.enabled, "starting");

    let client = Client::connect_lazy(&config.client).map_err(error::api("connecting to the API server"))?;
    let host = berth_base::host::hostname();
    let ctx = Ctx { client: client.clone(), metrics: metrics.clone(), stop: stop.clone(), host: host.clone() };

    let shutdown_stop = trigger.subscribe();
    let shutdown = async move {
        tokio::select! {
            () = shutdown => {}
            () = shutdown_stop.wait() => {}
        }
    };
    tokio::pin!(shutdown);

    let leadership = if config.leader.enabled {
        let lc = LeaderConfig {
            namespace: config.leader.namespace.clone(),
            name: config.leader.name.clone(),
            identity: format!("{host}_{}", uuid_like()),
            lease_duration: config.leader.lease_duration,
            renew_deadline: config.leader.renew_deadline,
            retry_period: config.leader.retry_period,
        };
        match leader::acquire(&client, lc, &mut shutdown).await {
            Some(l) => Some(l),
            None => {
                trigger.fire();
                let _ = health_task.await;
                return Ok(());
            }
        }
    } else {
        None
    };
    metrics.leader.set(1);

    let (tasks, check) = start_controllers(&config, &ctx);
    *synced.lock_or_recover() = Some(check);
    let lost = async {
        match &leadership {
            Some(l) => l.lost().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        () = &mut shutdown => Ok(()),
        () = lost => {
            error!("lost the leader lease; stopping the controllers");
            leading.fail("lost the leader lease");
            Err(Error::LeaderLost)
        }
    };
    checks.shutting_down();
    trigger.fire();
    metrics.leader.set(0);
    if tokio::time::timeout(DRAIN, futures::future::join_all(tasks)).await.is_err() {
        warn!("controllers did not finish within {DRAIN:?}; stopping anyway");
    }
    if let Some(l) = leadership
        && outcome.is_ok()
    {
        l.release().await;
    }
    let _ = health_task.await;
    info!("stopped");
    outcome
}

/// Whether the informers of the running controllers have their first lists.
type SyncedCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Sets up every enabled controller, starts the informers they asked for,
/// and spawns them; returns their tasks and the check of their informers.
fn start_controllers(config: &Config, ctx: &Ctx) -> (Vec<tokio::task::JoinHandle<()>>, SyncedCheck) {
    let mut informers = Informers::new(ctx.client.clone(), config.resync);
    let mut controllers: Vec<(&'static str, ControllerTask)> = Vec::new();
    let on = |n: &str| config.controllers.enabled(n);
    if on(replication::NAME) {
        controllers.push((replication::NAME, Box::pin(replication::start(ctx, &mut informers, config.replication.clone()))));
    }
    if on(endpoints::NAME) {
        controllers.push((endpoints::NAME, Box::pin(endpoints::start(ctx, &mut informers, config.endpoints.clone()))));
    }
    if on(namespace::NAME) {
        controllers.push((namespace::NAME, Box::pin(namespace::start(ctx, &mut informers, config.namespace.clone()))));
    }
    if on(gc::NAME) {
        controllers.push((gc::NAME, Box::pin(gc::start(ctx, &mut informers, config.gc.clone()))));
    }
    if on(node::NAME) {
        controllers.push((node::NAME, Box::pin(node::start(ctx, &mut informers, config.node.clone()))));
    }
    if on(node::IPAM_NAME) {
        match node::ipam::start(ctx, &mut informers, &config.node) {
            Some(task) => controllers.push((node::IPAM_NAME, Box::pin(task))),
            None => info!(controller = node::IPAM_NAME, "no --cluster-cidr: podCIDRs are not allocated"),
        }
    }
    if on(resourcequota::NAME) {
        controllers.push((resourcequota::NAME, Box::pin(resourcequota::start(ctx, &mut informers, config.quota.clone()))));
    }
    if on(service::NAME) {
        controllers.push((service::NAME, Box::pin(service::start(ctx, &mut informers, config.service.clone()))));
    }
    let synced: SyncedCheck = Box::new(informers.synced_check());
    let mut handles = informers.start(&ctx.stop);
    for (name, task) in controllers {
        let stop = ctx.stop.clone();
        handles.push(tokio::spawn(async move {
            tokio::select! {
                r = task => if let Err(e) = r {
                    error!(controller = name, cause = %e, "controller stopped");
                },
                () = stop.wait() => {}
            }
        }));
    }
    (handles, synced)
}

/// Eight random hex digits, to tell instances on one host apart.
fn uuid_like() -> String {
    use rand::Rng;
    format!("{:08x}", rand::rng().random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_select_all_but_excluded_controllers() {
        let s = Selection::parse("*,-gc").unwrap();
        assert!(s.enabled(replication::NAME));
        assert!(!s.enabled(gc::NAME));
        let s = Selection::parse("replication,endpoints,-gc").unwrap();
        assert_eq!(s.names(), &[replication::NAME, endpoints::NAME]);
        let s = Selection::parse("-service").unwrap();
        assert!(s.enabled(node::NAME) && !s.enabled(service::NAME));
    }

    #[test]
    fn should_refuse_unknown_controllers() {
        let e = Selection::parse("replication,deployment").unwrap_err();
        assert!(e.contains("deployment"), "{e}");
    }
}
