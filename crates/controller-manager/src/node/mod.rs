//! The node controller: watches each node's heartbeats (its Lease in
//! `kube-node-lease` and its Ready condition) by the time this controller
//! observes them, so clocks need not agree. A node silent for the grace
//! period gets Ready=Unknown (and its pods Ready=False) and the
//! `node.kubernetes.io/unreachable` taint; a node reporting Ready=False gets
//! `node.kubernetes.io/not-ready`. After the pod eviction timeout its pods
//! are deleted — at the zone's [`eviction`] rate — so that their
//! controllers recreate them elsewhere. A node that reports again loses
//! its taints and leaves the eviction queue. [`ipam`] allocates podCIDRs.

pub mod cidr;
pub mod eviction;
pub mod ipam;

use berth_base::sync::MutexExt;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{Lease, Node, NodeCondition, Pod, PodCondition, Taint};
use berth_client::{Client, DeleteParams};
use berth_runtime::events::{Recorder, reference};
use berth_runtime::{Reader, WorkQueue, key_of};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use self::eviction::{Queues, Rates, ZoneState};
use crate::controller::{self, Next, now_rfc3339, run_workers};
use crate::error::{self, Error, Result};
use crate::informers::{Informers, index};
use crate::metrics::Metrics;
use berth_client::modify;

use crate::{Ctx, pods};

/// The controllers' names, in `--controllers`, metrics and queue names.
pub const NAME: &str = "node";
pub const IPAM_NAME: &str = "nodeipam";

/// The taints this controller manages.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The label that groups nodes into zones.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Where kubelets renew their heartbeat Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Conditions the kubelet owns, set Unknown when it goes silent.
const KUBELET_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// How the node controllers run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often every node is looked at (`--node-monitor-period`).
    pub monitor_period: Duration,
    /// Silence after which a node is Unknown (`--node-monitor-grace-period`).
    pub grace_period: Duration,
    /// Silence allowed to a node that never reported (`--node-startup-grace-period`).
    pub startup_grace_period: Duration,
    /// How long a node may be not ready before its pods go (`--pod-eviction-timeout`).
    pub pod_eviction_timeout: Duration,
    /// Nodes evicted per second (`--node-eviction-rate`).
    pub eviction_rate: f64,
    /// Nodes evicted per second when a large zone is mostly unhealthy (`--secondary-node-eviction-rate`).
    pub secondary_eviction_rate: f64,
    /// Fraction of not-ready nodes that makes a zone unhealthy (`--unhealthy-zone-threshold`).
    pub unhealthy_zone_threshold: f64,
    /// Zones up to this size stop evicting when unhealthy (`--large-cluster-size-threshold`).
    pub large_cluster_threshold: usize,
    /// Where podCIDRs come from (`--cluster-cidr`); None: not allocated.
    pub cluster_cidr: Option<cidr::Cidr>,
    /// The prefix length of each node's podCIDR (`--node-cidr-mask-size`).
    pub node_cidr_mask_size: u8,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            monitor_period: Duration::from_secs(5),
            grace_period: Duration::from_secs(40),
            startup_grace_period: Duration::from_secs(60),
            pod_eviction_timeout: Duration::from_secs(300),
            eviction_rate: 0.1,
            secondary_eviction_rate: 0.01,
            unhealthy_zone_threshold: 0.55,
            large_cluster_threshold: 50,
            cluster_cidr: "172.30.0.0/16".parse().ok(),
            node_cidr_mask_size: 24,
        }
    }
}

/// What this controller has observed of a node's heartbeats.
#[derive(Debug)]
struct Health {
    /// When a heartbeat last changed, by our clock.
    probed: Instant,
    heartbeat: String,
    lease_renew: String,
    /// The Ready status last seen, and since when (by our clock).
    ready: String,
    since: Instant,
}

struct Controller {
    client: Client,
    nodes: Reader<Node>,
    leases: Reader<Lease>,
    pods: Reader<Pod>,
    health: Mutex<HashMap<String, Health>>,
    evictions: Mutex<Queues>,
    zones: Mutex<BTreeMap<String, ZoneState>>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    settings: Settings,
}

/// Registers the controller's informers; the returned future runs it until the manager stops.
pub fn start(ctx: &Ctx, informers: &mut Informers, settings: Settings) -> impl Future<Output = Result<()>> + Send + 'static {
    let queue = controller::queue(NAME, &ctx.metrics);
    let nodes = informers.of::<Node>();
    let q = queue.clone();
    nodes.on_add(move |n| q.add(key_of(&**n)));
    let q = queue.clone();
    nodes.on_update(move |old, n| {
        if old.meta().resource_version != n.meta().resource_version {
            q.add(key_of(&**n));
        }
    });
    let q = queue.clone();
    nodes.on_delete(move |n| q.add(key_of(&**n)));
    let node_reader = nodes.reader();
    let leases = informers.of::<Lease>();
    let q = queue.clone();
    leases.on_update(move |old, l| {
        if l.namespace() == LEASE_NAMESPACE && old.meta().resource_version != l.meta().resource_version {
            q.add(l.name().to_string());
        }
    });
    let lease_reader = leases.reader();
    let pods = informers.of::<Pod>();
    pods.index(index::NODE, index::pod_by_node);
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        nodes: node_reader,
        leases: lease_reader,
        pods: pods.reader(),
        health: Mutex::default(),
        evictions: Mutex::default(),
        zones: Mutex::default(),
        recorder: Recorder::new(ctx.client.clone(), "node-controller", &ctx.host),
        metrics: ctx.metrics.clone(),
        settings,
    });
    let (metrics, stop) = (ctx.metrics.clone(), ctx.stop.clone());
    async move {
        c.nodes.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Node", source })?;
        c.leases.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Lease", source })?;
        c.pods.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Pod", source })?;
        info!(
            controller = NAME,
            grace_period = ?c.settings.grace_period,
            pod_eviction_timeout = ?c.settings.pod_eviction_timeout,
            "caches synced, monitoring nodes"
        );
        let monitor = tokio::spawn(monitor(c.clone(), queue.clone(), stop.clone()));
        let evictor = tokio::spawn(evict_loop(c.clone(), stop.clone()));
        let worker = c.clone();
        run_workers(NAME, queue, 4, metrics, stop, move |key| {
            let c = worker.clone();
            async move { c.sync(&key).await }
        })
        .await;
        let _ = monitor.await;
        let _ = evictor.await;
        Ok(())
    }
}

/// Every monitor period: grade the zones, set their eviction rates, and
/// queue every node for a look.
async fn monitor(c: Arc<Controller>, queue: WorkQueue<String>, stop: berth_base::shutdown::Stop) {
    let mut tick = tokio::time::interval(c.settings.monitor_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stopped = stop.clone().wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopped => return,
        }
        c.grade_zones();
        for n in c.nodes.list() {
            queue.add(n.name().to_string());
        }
    }
}

/// Evicts the pods of the nodes whose turn has come.
async fn evict_loop(c: Arc<Controller>, stop: berth_base::shutdown::Stop) {
    let period = (c.settings.monitor_period / 10).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    let stopped = stop.wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stopped => return,
        }
        let due = c.evictions.lock_or_recover().take_due();
        for node in due {
            if let Err(e) = c.evict_pods(&node).await {
                warn!(node = %node, cause = %e, "evicting the node's pods failed; will retry");
            }
        }
    }
}

fn ready_condition(n: &Node) -> Option<&NodeCondition> {
    n.status.as_ref()?.conditions.iter().find(|c| c.r#type == "Ready")
}

fn zone_of(n: &Node) -> String {
    n.meta().labels.get(ZONE_LABEL).cloned().unwrap_or_default()
}

/// Whether the pod tolerates the taint forever (then it is never evicted for it).
fn tolerates_forever(pod: &Pod, taint_key: &str) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.tolerations.iter().any(|t| {
            let key = t.key.is_empty() && t.operator == "Exists" || t.key == taint_key;
            let effect = t.effect.is_empty() || t.effect == "NoExecute";
            key && effect && t.toleration_seconds.is_none()
        })
    })
}

impl Controller {
    /// Grades each zone from the nodes' Ready conditions and sets its rate.
    fn grade_zones(&self) {
        let mut zones: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for n in self.nodes.list() {
            let z = zones.entry(zone_of(&n)).or_default();
            z.0 += 1;
            if ready_condition(&n).is_none_or(|c| c.status != "True") {
                z.1 += 1;
            }
        }
        let rates = Rates {
            normal: self.settings.eviction_rate,
            secondary: self.settings.secondary_eviction_rate,
            unhealthy_threshold: self.settings.unhealthy_zone_threshold,
            large_cluster_threshold: self.settings.large_cluster_threshold,
        };
        let states: BTreeMap<String, (ZoneState, usize)> = zones
            .iter()
            .map(|(z, (total, bad))| (z.clone(), (eviction::zone_state(*total, *bad, rates.unhealthy_threshold), *total)))
            .collect();
        let all_full = !states.is_empty() && states.values().all(|(s, _)| *s == ZoneState::FullDisruption);
        let mut known = self.zones.lock_or_recover();
        let mut queues = self.evictions.lock_or_recover();
        for (zone, (state, size)) in &states {
            if known.get(zone) != Some(state) {
                info!(zone = %zone, state = ?state, nodes = size, "zone state changed");
                known.insert(zone.clone(), *state);
            }
            queues.set_rate(zone, eviction::rate(*state, *size, all_full, &rates));
        }
    }

    async fn sync(&self, name: &str) -> Result<Next> {
        let Some(node) = self.nodes.get("", name) else {
            self.health.lock_or_recover().remove(name);
            self.evictions.lock_or_recover().remove(name);
            return Ok(Next::Done);
        };
        let now = Instant::now();
        let cond = ready_condition(&node).cloned();
        let heartbeat = cond.as_ref().map(|c| c.last_heartbeat_time.clone()).unwrap_or_default();
        let lease_renew =
            self.leases.get(LEASE_NAMESPACE, name).and_then(|l| l.spec.as_ref().map(|s| s.renew_time.clone())).unwrap_or_default();
        let mut ready = cond.as_ref().map(|c| c.status.clone()).unwrap_or_default();
        let (probed, since_ready_change) = {
            let mut h = self.health.lock_or_recover();
            let e = h.entry(name.to_string()).or_insert_with(|| Health {
                probed: now,
                heartbeat: heartbeat.clone(),
                lease_renew: lease_renew.clone(),
                ready: ready.clone(),
                since: now,
            });
            if e.heartbeat != heartbeat || e.lease_renew != lease_renew {
                e.probed = now;
                e.heartbeat = heartbeat;
                e.lease_renew = lease_renew;
            }
            if e.ready != ready {
                e.ready = ready.clone();
                e.since = now;
            }
            (e.probed, e.since)
        };
        let grace = if cond.is_none() { self.settings.startup_grace_period } else { self.settings.grace_period };
        let mut since = since_ready_change;
        if now.saturating_duration_since(probed) > grace && ready != "Unknown" {
            self.mark_unknown(&node, cond.is_none()).await?;
            ready = "Unknown".into();
            let mut h = self.health.lock_or_recover();
            if let Some(e) = h.get_mut(name) {
                e.ready = ready.clone();
                e.since = now;
            }
            since = now;
        }
        if ready == "Unknown" {
            self.mark_pods_not_ready(name).await?;
        }
        self.set_taints(&node, &ready).await?;
        let mut queues = self.evictions.lock_or_recover();
        if ready == "True" {
            if queues.contains(name) {
                info!(node = name, "node is ready again; its pods stay");
            }
            queues.remove(name);
        } else if now.saturating_duration_since(since) >= self.settings.pod_eviction_timeout && self.has_evictable_pods(name, &ready) {
            if !queues.contains(name) {
                info!(node = name, ready = %ready, "node not ready past the pod eviction timeout; queued for eviction");
            }
            queues.add(&zone_of(&node), name);
        }
        Ok(Next::Done)
    }

    fn taint_key(ready: &str) -> &'static str {
        if ready == "False" { TAINT_NOT_READY } else { TAINT_UNREACHABLE }
    }

    fn has_evictable_pods(&self, node: &str, ready: &str) -> bool {
        let key = Self::taint_key(ready);
        self.pods.by_index(index::NODE, node).iter().any(|p| !pods::is_deleting(p.metadata.as_ref()) && !tolerates_forever(p, key))
    }

    /// Sets the kubelet's conditions Unknown: it stopped reporting.
    async fn mark_unknown(&self, node: &Node, never_reported: bool) -> Result<()> {
        let name = node.name();
        let (reason, message) = if never_reported {
            ("NodeStatusNeverUpdated", "Kubelet never posted node status.")
        } else {
            ("NodeStatusUnknown", "Kubelet stopped posting node status.")
        };
        let r = modify::update_status::<Node>(&self.client, "", name, |n| {
            let status = n.status.get_or_insert_with(Default::default);
            let now = now_rfc3339();
            if !status.conditions.iter().any(|c| c.r#type == "Ready") {
                status.conditions.push(NodeCondition { r#type: "Ready".into(), ..Default::default() });
            }
            let mut changed = false;
            for c in status.conditions.iter_mut().filter(|c| KUBELET_CONDITIONS.contains(&c.r#type.as_str())) {
                if c.status != "Unknown" {
                    c.status = "Unknown".into();
                    c.reason = reason.into();
                    c.message = message.into();
                    c.last_transition_time = now.clone();
                    changed = true;
                }
            }
            changed
        })
        .await;
        match r {
            Ok(_) => {
                warn!(node = name, "node stopped reporting; marked Ready=Unknown");
                self.recorder.normal(&reference(node), "NodeNotReady", format!("Node {name} status is now: NodeNotReady"));
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(error::api(format!("marking node {name} Unknown"))(e)),
        }
    }

    /// Pods on a node that stopped reporting are not ready (so services stop sending them traffic).
    async fn mark_pods_not_ready(&self, node: &str) -> Result<()> {
        for p in self.pods.by_index(index::NODE, node) {
            if !pods::is_ready(&p) {
                continue;
            }
            let r = modify::update_status::<Pod>(&self.client, p.namespace(), p.name(), |p| {
                let status = p.status.get_or_insert_with(Default::default);
                let Some(c) = status.conditions.iter_mut().find(|c| c.r#type == "Ready") else { return false };
                if c.status == "False" {
                    return false;
                }
                *c = PodCondition {
                    r#type: "Ready".into(),
                    status: "False".into(),
                    last_transition_time: now_rfc3339(),
                    reason: "NodeNotReady".into(),
                    message: format!("node {node} stopped reporting"),
                    ..Default::default()
                };
                true
            })
            .await;
            match r {
                Ok(_) => debug!(node, pod = %key_of(&*p), "marked pod not ready"),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(error::api(format!("marking pod {} not ready", key_of(&*p)))(e)),
            }
        }
        Ok(())
    }

    /// Keeps the unreachable / not-ready taints in step with the Ready status.
    async fn set_taints(&self, node: &Node, ready: &str) -> Result<()> {
        let wanted: Option<&str> = match ready {
            "True" => None,
            "False" => Some(TAINT_NOT_READY),
            _ => Some(TAINT_UNREACHABLE),
        };
        let has = |key: &str, effect: &str| node.spec.as_ref().is_some_and(|s| s.taints.iter().any(|t| t.key == key && t.effect == effect));
        let ok = [TAINT_UNREACHABLE, TAINT_NOT_READY]
            .iter()
            .all(|k| ["NoSchedule", "NoExecute"].iter().all(|e| has(k, e) == (wanted == Some(*k))));
        if ok {
            return Ok(());
        }
        let name = node.name();
        let r = modify::update::<Node>(&self.client, "", name, |n| {
            let spec = n.spec.get_or_insert_with(Default::default);
            let before = spec.taints.clone();
            spec.taints.retain(|t| t.key != TAINT_UNREACHABLE && t.key != TAINT_NOT_READY || Some(t.key.as_str()) == wanted);
            if let Some(key) = wanted {
                for effect in ["NoSchedule", "NoExecute"] {
                    if !spec.taints.iter().any(|t| t.key == key && t.effect == effect) {
                        spec.taints.push(Taint { key: key.into(), effect: effect.into(), time_added: now_rfc3339(), ..Default::default() });
                    }
                }
            }
            spec.taints != before
        })
        .await;
        match r {
            Ok(_) => {
                info!(node = name, taint = ?wanted, "node taints updated");
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(error::api(format!("updating the taints of node {name}"))(e)),
        }
    }

    /// Deletes the pods of a lost node so that their controllers recreate them elsewhere.
    async fn evict_pods(&self, node_name: &str) -> Result<()> {
        let Some(node) = self.nodes.get("", node_name) else { return Ok(()) };
        let ready = ready_condition(&node).map(|c| c.status.clone()).unwrap_or_default();
        if ready == "True" {
            return Ok(());
        }
        let key = Self::taint_key(&ready);
        let mut evicted = 0;
        for p in self.pods.by_index(index::NODE, node_name) {
            if pods::is_deleting(p.metadata.as_ref()) || tolerates_forever(&p, key) {
                continue;
            }
            let params = DeleteParams { uid: p.meta().uid.clone(), ..Default::default() };
            match self.client.delete::<Pod>(p.namespace(), p.name(), &params).await {
                Ok(_) => {
                    evicted += 1;
                    self.metrics.evictions.inc();
                    info!(node = node_name, pod = %key_of(&*p), "evicted pod from a lost node");
                }
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(error::api(format!("evicting pod {}", key_of(&*p)))(e)),
            }
        }
        if evicted > 0 {
            self.recorder.normal(&reference(&*node), "DeletingAllPods", format!("Deleting {evicted} pods from Node {node_name}."));
        }
        Ok(())
    }
}
