//! berth-scheduler: takes each new pod without a node (whose schedulerName
//! is ours), picks the best node and binds it through pods/binding.
//!
//! # Layout
//! - [`scheduler`]: the loop: informer changes in, decisions, assumed pods, bindings out.
//! - [`queue`]: the scheduling queue (active, back-off, unschedulable).
//! - [`cache`]: what each node offers and has committed, assumed pods included.
//! - [`algorithm`]: one decision: filter a sample of nodes, score, pick; why nothing fits.
//! - [`filters`]: readiness and cordon, resources, node selector and affinity, taints, host ports.
//! - [`scores`]: least allocated, balanced, spreading, image locality, preferred affinity, taints, load.
//! - [`affinity`], [`taints`]: node selector terms and toleration matching.
//! - [`podinfo`], [`resources`]: what a pod asks of a node.
//! - [`config`]: the configuration file (weights, nodes to score, load-aware score).
//! - [`metrics`]: the Prometheus metrics.

pub mod affinity;
pub mod algorithm;
pub mod cache;
pub mod config;
pub mod filters;
pub mod metrics;
pub mod podinfo;
pub mod queue;
pub mod resources;
pub mod scheduler;
pub mod scores;
pub mod taints;

use std::future::Future;
use std::sync::Arc;

use berth_api::pb::core::{Node, Pod, ReplicationController, Service};
use berth_base::health::{Checks, Flag};
use berth_client::{Client, ClientConfig, ListParams};
use berth_runtime::Informer;
use berth_runtime::events::Recorder;
use berth_runtime::leader::{self, LeaderConfig};
use berth_runtime::reflector::by_namespace;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::config::Profile;
use crate::metrics::Metrics;
use crate::scheduler::{Change, Readers, Scheduler};

/// The scheduler name pods get when they name none.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// The informer index of Services and ReplicationControllers by namespace.
pub const NAMESPACE_INDEX: &str = "namespace";

/// Why the scheduler stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server address or credentials cannot be used.
    #[error("cannot set up the API client: {0}")]
    Client(#[from] berth_client::Error),
    /// Another instance took the lease: this one must stop scheduling at once.
    #[error("lost the leader lease {0}")]
    LeadershipLost(String),
    /// The health endpoint failed.
    #[error("the health endpoint failed: {0}")]
    Health(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How the scheduler runs.
#[derive(Debug, Clone)]
pub struct Config {
    pub client: ClientConfig,
    /// Pods with this `spec.schedulerName` are ours.
    pub scheduler_name: String,
    pub profile: Profile,
    /// Lease-based leader election; None schedules at once, alone.
    pub leader_election: Option<LeaderConfig>,
}

impl Config {
    /// Defaults for a server address: default-scheduler, default profile, no election.
    pub fn new(client: ClientConfig) -> Config {
        Config { client, scheduler_name: DEFAULT_SCHEDULER_NAME.into(), profile: Profile::default(), leader_election: None }
    }
}

/// Runs the scheduler until `shutdown` resolves: serves health and
/// metrics on `health`, fills the caches, waits for leadership (when
/// elected) and schedules. Returns an error when leadership is lost, as
/// kube-scheduler exits then.
pub async fn run(config: Config, health: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    let metrics = Metrics::new();
    let (trigger, stop_rx) = berth_base::shutdown::channel();
    let stop_tx = Arc::new(trigger);
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop_tx.fire();
        });
    }
    // Watches and writes on separate connections, so that a burst of
    // bindings never delays the changes the decisions depend on.
    let watch_client = Client::connect_lazy(&config.client)?;
    let write_client = Client::connect_lazy(&config.client)?;

    let (changes_tx, changes_rx) = mpsc::unbounded_channel::<Change>();
    let pods = {
        let (a, u, d) = (changes_tx.clone(), changes_tx.clone(), changes_tx.clone());
        Informer::<Pod>::new(watch_client.clone(), "", ListParams::default())
            .on_add(move |p| drop(a.send(Change::Pod(p.clone()))))
            .on_update(move |_, p| drop(u.send(Change::Pod(p.clone()))))
            .on_delete(move |p| drop(d.send(Change::PodDeleted(p.clone()))))
    };
    let nodes = {
        let (a, u, d) = (changes_tx.clone(), changes_tx.clone(), changes_tx);
        Informer::<Node>::new(watch_client.clone(), "", ListParams::default())
            .on_add(move |n| drop(a.send(Change::Node(n.clone()))))
            .on_update(move |_, n| drop(u.send(Change::Node(n.clone()))))
            .on_delete(move |n| drop(d.send(Change::NodeDeleted(n.clone()))))
    };
    let services = Informer::<Service>::new(watch_client.clone(), "", ListParams::default()).with_index(NAMESPACE_INDEX, by_namespace);
    let controllers =
        Informer::<ReplicationController>::new(watch_client.clone(), "", ListParams::default()).with_index(NAMESPACE_INDEX, by_namespace);
    let readers = Readers { pods: pods.reader(), services: services.reader(), controllers: controllers.reader() };
    let node_reader = nodes.reader();
    // A standby is ready too: it has its caches and waits for the lease.
    let leading = Flag::passing();
    let checks = {
        let (r, n) = (readers.clone(), node_reader.clone());
        Checks::builder()
            .ready("informers-synced", move || {
                let pending: Vec<&str> = [
                    ("pods", r.pods.is_ready()),
                    ("nodes", n.is_ready()),
                    ("services", r.services.is_ready()),
                    ("replicationcontrollers", r.controllers.is_ready()),
                ]
                .into_iter()
                .filter_map(|(kind, ready)| (!ready).then_some(kind))
                .collect();
                if pending.is_empty() { Ok(()) } else { Err(format!("waiting for the first list of {}", pending.join(", "))) }
            })
            .ready_flag("leader-election", &leading)
            .build()
    };
    let health_task = tokio::spawn(berth_base::health::serve(health, metrics.registry(), checks, stop_rx.clone().wait()));
    let informers = [
        tokio::spawn(pods.run(stop_rx.clone().wait())),
        tokio::spawn(nodes.run(stop_rx.clone().wait())),
        tokio::spawn(services.run(stop_rx.clone().wait())),
        tokio::spawn(controllers.run(stop_rx.clone().wait())),
    ];

    let recorder = Recorder::new(write_client.clone(), &config.scheduler_name, &berth_base::host::hostname());
    let scheduler = Scheduler::new(
        config.scheduler_name.clone(),
        config.profile.clone(),
        write_client.clone(),
        readers.clone(),
        recorder,
        metrics.clone(),
    );
    let (lead_tx, lead_rx) = watch::channel(false);
    let mut loop_task = tokio::spawn(scheduler.run(changes_rx, lead_rx, stop_rx.clone()));
    info!(name = %config.scheduler_name, server = %config.client.server, election = config.leader_election.is_some(), "scheduler starting");

    // Decisions need complete caches: wait for every first list.
    let synced = async {
        let _ = tokio::join!(
            readers.pods.wait_until_ready(),
            node_reader.wait_until_ready(),
            readers.services.wait_until_ready(),
            readers.controllers.wait_until_ready(),
        );
    };
    let mut outcome = Ok(());
    let mut leadership = None;
    let mut watchdog = None;
    tokio::select! {
        () = synced => {
            // Ready for systemd too (Type=notify), leader or standby.
            watchdog = berth_base::systemd::ready();
            info!(nodes = node_reader.len(), pods = readers.pods.len(), "caches synced");
            match config.leader_election.clone() {
                None => {
                    let _ = lead_tx.send(true);
                    stop_rx.clone().wait().await;
                }
                Some(election) => {
                    let lease = format!("{}/{}", election.namespace, election.name);
                    leadership = leader::acquire(&watch_client, election, stop_rx.clone().wait()).await;
                    if let Some(l) = &leadership {
                        let _ = lead_tx.send(true);
                        tokio::select! {
                            () = l.lost() => {
                                error!(lease = %lease, "lost the leader lease; stopping");
                                leading.fail(format!("lost the leader lease {lease}"));
                                outcome = Err(Error::LeadershipLost(lease));
                                stop_tx.fire();
                            }
                            () = stop_rx.clone().wait() => {}
                        }
                    }
                }
            }
        }
        () = stop_rx.clone().wait() => {}
        r = &mut loop_task => {
            if let Err(e) = r {
                error!(error = %e, "the scheduling loop failed");
            }
        }
    }

    // Stop scheduling before giving up the lease, so two leaders never overlap.
    berth_base::systemd::stopping();
    stop_tx.fire();
    let _ = lead_tx.send(false);
    if !loop_task.is_finished() {
        let _ = loop_task.await;
    }
    if let Some(l) = leadership
        && outcome.is_ok()
    {
        l.release().await;
    }
    for task in informers {
        let _ = task.await;
    }
    if let Ok(Err(e)) = health_task.await {
        warn!(error = %e, "health endpoint failed");
        if outcome.is_ok() {
            outcome = Err(Error::Health(e));
        }
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    info!("scheduler stopped");
    outcome
}
