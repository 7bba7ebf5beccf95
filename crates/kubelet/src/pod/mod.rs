//! Pod workers: one task per pod on the node, woken by changes of the pod
//! (from the informer), of its containers (engine events) or of its probes,
//! and periodically; so one slow pod (a pull, a grace period) never holds
//! up another. At start the workers adopt the containers already running
//! (found by their labels) and remove those of pods that no longer exist.
//!
//! - [`sync`]: one sync of one pod (the seed's steps).
//! - [`status`]: the pod's status from what runs.
//! - [`dns`]: the pod's resolv.conf and /etc/hosts.
//! - [`service_env`]: the Service environment variables of its containers.

pub mod dns;
pub mod service_env;
pub mod status;
pub mod sync;

use berth_base::shutdown::Stop;
use berth_base::sync::MutexExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::Pod;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::agent::Agent;
use crate::probes::Poke;
use crate::runtime::labels;
use sync::Next;

/// One pod's worker: the latest object, and what wakes it.
struct Slot {
    pod: Mutex<Option<Arc<Pod>>>,
    gone: AtomicBool,
    notify: Notify,
}

/// The pod workers of one node.
pub struct Workers {
    agent: Arc<Agent>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    stop: Stop,
    me: Weak<Workers>,
}

/// Whether an update changes something a sync acts on (a status written
/// by this kubelet itself does not).
fn worth_a_sync(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata != new.metadata && {
            let (mut a, mut b) = (old.meta().clone(), new.meta().clone());
            a.resource_version.clear();
            b.resource_version.clear();
            a != b
        }
}

impl Workers {
    pub fn new(agent: Arc<Agent>, stop: Stop) -> Arc<Workers> {
        Arc::new_cyclic(|me| Workers { agent, slots: Mutex::new(HashMap::new()), stop, me: me.clone() })
    }

    /// The pod was added or changed (never blocks: called from the informer).
    pub fn update(&self, old: Option<&Pod>, pod: &Arc<Pod>) {
        let uid = pod.meta().uid.clone();
        let (slot, new) = self.slot(&uid);
        *slot.pod.lock_or_recover() = Some(pod.clone());
        if new || old.is_none_or(|o| worth_a_sync(o, pod)) {
            slot.notify.notify_one();
        }
    }

    /// The apiserver deleted the pod.
    pub fn deleted(&self, pod: &Arc<Pod>) {
        let uid = pod.meta().uid.clone();
        let (slot, _) = self.slot(&uid);
        *slot.pod.lock_or_recover() = Some(pod.clone());
        slot.gone.store(true, Ordering::SeqCst);
        slot.notify.notify_one();
    }

    /// Containers of a pod the apiserver does not know: remove them.
    pub fn orphan(&self, uid: &str) {
        let mut slots = self.slots.lock_or_recover();
        if slots.contains_key(uid) {
            return;
        }
        let slot = Arc::new(Slot { pod: Mutex::new(None), gone: AtomicBool::new(true), notify: Notify::new() });
        slots.insert(uid.to_string(), slot.clone());
        drop(slots);
        self.spawn(uid.to_string(), slot);
    }

    /// Something about the pod changed: sync it soon.
    pub fn poke(&self, uid: &str) {
        if let Some(s) = self.slots.lock_or_recover().get(uid) {
            s.notify.notify_one();
        }
    }

    /// Wakes every worker (e.g. the node got its podCIDR).
    pub fn poke_all(&self) {
        for s in self.slots.lock_or_recover().values() {
            s.notify.notify_one();
        }
    }

    pub fn len(&self) -> usize {
        self.slots.lock_or_recover().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn poker(&self, uid: &str) -> Poke {
        let me = self.me.clone();
        let uid = uid.to_string();
        Arc::new(move || {
            if let Some(w) = me.upgrade() {
                w.poke(&uid);
            }
        })
    }

    fn slot(&self, uid: &str) -> (Arc<Slot>, bool) {
        let mut slots = self.slots.lock_or_recover();
        if let Some(s) = slots.get(uid) {
            return (s.clone(), false);
        }
        let slot = Arc::new(Slot { pod: Mutex::new(None), gone: AtomicBool::new(false), notify: Notify::new() });
        slots.insert(uid.to_string(), slot.clone());
        self.agent.metrics.pods.set(slots.len() as i64);
        drop(slots);
        self.spawn(uid.to_string(), slot.clone());
        (slot, true)
    }

    fn spawn(&self, uid: String, slot: Arc<Slot>) {
        let Some(me) = self.me.upgrade() else { return };
        tokio::spawn(async move { me.work(uid, slot).await });
    }

    async fn work(self: Arc<Self>, uid: String, slot: Arc<Slot>) {
        let a = self.agent.clone();
        let poke = self.poker(&uid);
        let mut stop = self.stop.clone();
        let mut failures: u32 = 0;
        loop {
            if stop.is_stopped() {
                return;
            }
            let pod = slot.pod.lock_or_recover().clone();
            let gone = slot.gone.load(Ordering::SeqCst);
            let started = Instant::now();
            let outcome = sync::sync_pod(&a, &uid, pod.clone(), gone, poke.clone()).await;
            a.metrics.pod_syncs.inc();
            a.metrics.pod_sync_duration.observe(started.elapsed().as_secs_f64());
            let wait = match outcome {
                Ok(Next::Done) => {
                    let mut slots = self.slots.lock_or_recover();
                    slots.remove(&uid);
                    a.metrics.pods.set(slots.len() as i64);
                    return;
                }
                Ok(Next::After(d)) => {
                    failures = 0;
                    d
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    a.metrics.pod_sync_errors.inc();
                    let name = pod.as_ref().map(|p| format!("{}/{}", p.namespace(), p.name())).unwrap_or_else(|| uid.clone());
                    warn!(pod = %name, cause = %e, failures, "pod sync failed, retrying");
                    Duration::from_millis(500u64.saturating_mul(1 << failures.min(6)))
                }
            };
            tokio::select! {
                _ = slot.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                () = stop.stopped() => return,
            }
        }
    }

    /// Keeps the addresses of the sandboxes that run (call before any pod
    /// is synced, so that no address is handed out twice).
    pub async fn reserve_addresses(&self) -> Result<(), crate::runtime::Error> {
        let a = &self.agent;
        let sandboxes = a.runtime.list_containers(&[(labels::NODE, a.node_name()), (labels::CONTAINER_TYPE, labels::TYPE_SANDBOX)]).await?;
        let mut ipam = a.ipam.lock_or_recover();
        for c in sandboxes.iter().filter(|c| c.is_running()) {
            ipam.reserve(c.label(labels::POD_UID), c.label(labels::POD_IP));
        }
        Ok(())
    }

    /// Adopts what runs on the node: removes the containers of pods the
    /// apiserver no longer has (call once the pod cache is synced; running
    /// containers of known pods are kept by their workers).
    pub async fn adopt(&self) -> Result<(), crate::runtime::Error> {
        let a = &self.agent;
        let containers = a.runtime.list_containers(&[(labels::NODE, a.node_name())]).await?;
        let known: HashSet<String> = a.pods.list().iter().map(|p| p.meta().uid.clone()).collect();
        let mut orphans = HashSet::new();
        for c in &containers {
            let uid = c.label(labels::POD_UID);
            if !known.contains(uid) {
                orphans.insert(uid.to_string());
            }
        }
        if !containers.is_empty() {
            info!(containers = containers.len(), pods = known.len(), orphans = orphans.len(), "adopting the node's containers");
        }
        for uid in orphans {
            self.orphan(&uid);
        }
        Ok(())
    }

    /// Wakes the pods whose containers change, as the engine reports it.
    pub async fn watch_runtime(self: Arc<Self>) {
        let mut stop = self.stop.clone();
        loop {
            match self.agent.runtime.events(self.agent.node_name()).await {
                Ok(mut events) => loop {
                    tokio::select! {
                        e = events.next() => match e {
                            Some(e) => {
                                debug!(container = %e.container_id, action = %e.action, "container event");
                                if !e.pod_uid.is_empty() && !e.action.starts_with("exec_") {
                                    self.poke(&e.pod_uid);
                                }
                            }
                            None => break,
                        },
                        () = stop.stopped() => return,
                    }
                },
                Err(e) => warn!(cause = %e, "cannot follow the engine's events, retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                () = stop.stopped() => return,
            }
        }
    }

    /// Periodically removes containers of pods that are gone (a missed
    /// deletion, a crash between steps).
    pub async fn housekeeping(self: Arc<Self>) {
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                () = stop.stopped() => return,
            }
            if self.agent.pods.is_ready()
                && let Err(e) = self.adopt_orphans_only().await
            {
                debug!(cause = %e, "housekeeping failed");
            }
        }
    }

    async fn adopt_orphans_only(&self) -> Result<(), crate::runtime::Error> {
        let a = &self.agent;
        let containers = a.runtime.list_containers(&[(labels::NODE, a.node_name())]).await?;
        let known: HashSet<String> = a.pods.list().iter().map(|p| p.meta().uid.clone()).collect();
        for c in &containers {
            let uid = c.label(labels::POD_UID);
            if !known.contains(uid) {
                self.orphan(uid);
            }
        }
        Ok(())
    }
}
