//! The scheduling loop: applies informer changes to the cache and the
//! queue, takes pods from the queue one at a time, decides, assumes the pod
//! onto its node and binds it in the background (bounded concurrency) while
//! the next decisions go on; reports pods that fit nowhere with a
//! PodScheduled=False condition and a FailedScheduling event.
//!
//! One task owns the cache and the queue, so decisions never race with
//! each other or with the changes they depend on; informer handlers only
//! send changes over a channel, and binding tasks report back on another.

use berth_base::shutdown::Stop;
use std::sync::Arc;
use std::time::Duration;

use berth_api::Resource;
use berth_api::labels::Selector;
use berth_api::pb::core::{Node, Pod, PodCondition, ReplicationController, Service};
use berth_client::Client;
use berth_runtime::events::{Recorder, reference};
use berth_runtime::{Reader, key_of};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::algorithm::Algorithm;
use crate::cache::{Cache, NodeChange};
use crate::config::Profile;
use crate::metrics::{Metrics, Outcome};
use crate::podinfo::{self, PodInfo};
use crate::queue::SchedulingQueue;

/// A change announced by an informer.
#[derive(Debug)]
pub enum Change {
    /// A pod was added or updated.
    Pod(Arc<Pod>),
    PodDeleted(Arc<Pod>),
    /// A node was added or updated.
    Node(Arc<Node>),
    NodeDeleted(Arc<Node>),
}

/// What a binding task reports.
struct Bound {
    key: String,
    namespace: String,
    name: String,
    node: String,
    result: Result<(), berth_client::Error>,
    took: Duration,
    queued_at: Instant,
    object: berth_api::pb::core::ObjectReference,
}

/// How many pods one turn of the loop decides on before it looks at changes again.
const BATCH: usize = 64;
/// Status writes for unschedulable pods in flight at once.
const STATUS_WRITERS: usize = 8;
/// How long shutdown waits for bindings in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// The readers the loop consults for data it does not keep itself.
#[derive(Clone)]
pub struct Readers {
    pub pods: Reader<Pod>,
    pub services: Reader<Service>,
    pub controllers: Reader<ReplicationController>,
}

/// The scheduling loop's state.
pub struct Scheduler {
    name: String,
    profile: Profile,
    cache: Cache,
    queue: SchedulingQueue,
    algorithm: Algorithm,
    client: Client,
    readers: Readers,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    binds: Arc<Semaphore>,
    statuses: Arc<Semaphore>,
    bound_tx: mpsc::UnboundedSender<Bound>,
    bound_rx: mpsc::UnboundedReceiver<Bound>,
    leading: bool,
}

impl Scheduler {
    pub fn new(name: String, profile: Profile, client: Client, readers: Readers, recorder: Recorder, metrics: Arc<Metrics>) -> Scheduler {
        let (bound_tx, bound_rx) = mpsc::unbounded_channel();
        let binds = Arc::new(Semaphore::new(profile.bind_concurrency));
        Scheduler {
            name,
            profile,
            cache: Cache::new(),
            queue: SchedulingQueue::new(),
            algorithm: Algorithm::new(),
            client,
            readers,
            recorder,
            metrics,
            binds,
            statuses: Arc::new(Semaphore::new(STATUS_WRITERS)),
            bound_tx,
            bound_rx,
            leading: false,
        }
    }

    /// Applies changes all the time, and schedules while `leading` is true,
    /// until `stop` becomes true; then waits (a little) for bindings in flight.
    pub async fn run(mut self, mut changes: mpsc::UnboundedReceiver<Change>, mut leading: watch::Receiver<bool>, mut stop: Stop) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            if stop.is_stopped() {
                break;
            }
            // Take in everything that is already there, then decide on a batch.
            while let Ok(change) = changes.try_recv() {
                self.apply(change);
            }
            while let Ok(b) = self.bound_rx.try_recv() {
                self.on_bound(b);
            }
            let now = Instant::now();
            self.queue.flush(now);
            let decided = if self.leading { self.schedule_batch() } else { 0 };
            self.publish_gauges();
            if decided > 0 {
                tokio::task::yield_now().await;
                continue;
            }
            let next_backoff = self.queue.next_backoff_expiry();
            tokio::select! {
                () = stop.stopped() => {}
                change = changes.recv() => match change {
                    Some(c) => self.apply(c),
                    None => break,
                },
                Some(b) = self.bound_rx.recv() => self.on_bound(b),
                _ = sleep_until(next_backoff) => {}
                _ = tick.tick() => {}
                r = leading.changed() => {
                    if r.is_err() {
                        break;
                    }
                    let now_leading = *leading.borrow();
                    if now_leading != self.leading {
                        info!(leading = now_leading, pending = self.queue.depths().active, "leadership changed");
                    }
                    self.leading = now_leading;
                    self.metrics.set_leader(now_leading);
                }
            }
        }
        self.leading = false;
        self.metrics.set_leader(false);
        let all = u32::try_from(self.profile.bind_concurrency).unwrap_or(u32::MAX);
        if tokio::time::timeout(DRAIN, self.binds.acquire_many(all)).await.is_err() {
            warn!("bindings still in flight at shutdown");
        }
        info!("scheduling loop stopped");
    }

    fn publish_gauges(&self) {
        self.metrics.set_depths(self.queue.depths());
        self.metrics.set_cache(self.cache.node_count(), self.cache.pod_count(), self.cache.assumed_count());
    }

    /// Whether this scheduler is the one to schedule the pod.
    fn responsible(&self, pod: &Pod) -> bool {
        let wanted = pod.spec.as_ref().map_or("", |s| s.scheduler_name.as_str());
        wanted == self.name || (wanted.is_empty() && self.name == crate::DEFAULT_SCHEDULER_NAME)
    }

    /// Applies one informer change to the cache and the queue.
    pub fn apply(&mut self, change: Change) {
        let now = Instant::now();
        match change {
            Change::Pod(pod) => {
                let key = key_of(&*pod);
                if !podinfo::node_name(&pod).is_empty() {
                    // Bound (by us or anyone): it leaves the queue and counts on its node.
                    self.queue.remove(&key);
                    let finished = podinfo::is_terminal(&pod);
                    self.cache.set_bound_pod(&key, pod);
                    if finished {
                        self.queue.move_all_unschedulable(now);
                    }
                    return;
                }
                let waiting = self.responsible(&pod) && pod.meta().deletion_timestamp.is_empty() && !podinfo::is_terminal(&pod);
                if !waiting {
                    self.queue.remove(&key);
                } else if self.cache.is_assumed(&key) {
                    // Binding in flight: keep its queue entry (if any) current, never re-add it.
                    if self.queue.contains(&key) {
                        self.queue.add_or_update(&key, pod, now);
                    }
                } else {
                    self.queue.add_or_update(&key, pod, now);
                }
            }
            Change::PodDeleted(pod) => {
                let key = key_of(&*pod);
                self.queue.remove(&key);
                if self.cache.is_placed(&key) {
                    self.cache.remove_pod(&key);
                    self.queue.move_all_unschedulable(now);
                }
            }
            Change::Node(node) => {
                if self.cache.set_node(node) != NodeChange::Irrelevant {
                    self.queue.move_all_unschedulable(now);
                }
            }
            Change::NodeDeleted(node) => self.cache.remove_node(node.name()),
        }
    }

    /// Decides on up to [`BATCH`] pods while bindings can be started.
    fn schedule_batch(&mut self) -> usize {
        let mut decided = 0;
        while decided < BATCH && self.queue.has_active() {
            let Ok(permit) = self.binds.clone().try_acquire_owned() else { break };
            let Some(popped) = self.queue.pop() else { break };
            decided += 1;
            self.schedule_one(popped, permit);
        }
        decided
    }

    fn schedule_one(&mut self, popped: crate::queue::Popped, permit: tokio::sync::OwnedSemaphorePermit) {
        let started = Instant::now();
        let pod = popped.pod;
        let key = popped.key;
        let info = PodInfo::new(&pod);
        let selectors = self.spread_selectors(&pod);
        match self.algorithm.schedule(&info, &self.cache, &self.profile, &selectors) {
            Ok(decision) => {
                self.cache.assume(&key, pod.clone(), &decision.node);
                self.metrics.attempt(Outcome::Scheduled, started.elapsed());
                debug!(pod = %key, node = %decision.node, evaluated = decision.evaluated, feasible = decision.feasible, "assumed");
                self.spawn_bind(key, &pod, decision.node, popped.added, permit);
            }
            Err(fit) => {
                drop(permit);
                self.metrics.attempt(Outcome::Unschedulable, started.elapsed());
                self.queue.unschedulable(&key, started);
                let message = fit.to_string();
                if popped.attempts == 0 {
                    info!(pod = %key, reason = %message, "no node fits the pod; waiting");
                } else {
                    debug!(pod = %key, attempts = popped.attempts + 1, reason = %message, "still no node fits the pod");
                }
                if self.queue.should_report(&key, &message, started) {
                    self.report_unschedulable(&pod, message);
                }
            }
        }
    }

    /// The selectors of the Services and ReplicationControllers in the
    /// pod's namespace that select it (for spreading).
    fn spread_selectors(&self, pod: &Pod) -> Vec<Selector> {
        let labels = &pod.meta().labels;
        if self.profile.weights.selector_spread == 0 || labels.is_empty() {
            return Vec::new();
        }
        let namespace = pod.namespace();
        let mut selectors = Vec::new();
        let mut consider = |selector: Option<&std::collections::BTreeMap<String, String>>| {
            if let Some(map) = selector.filter(|m| !m.is_empty()) {
                let s = Selector::from_map(map);
                if s.matches(labels) {
                    selectors.push(s);
                }
            }
        };
        for svc in self.readers.services.by_index(crate::NAMESPACE_INDEX, namespace) {
            consider(svc.spec.as_ref().map(|s| &s.selector));
        }
        for rc in self.readers.controllers.by_index(crate::NAMESPACE_INDEX, namespace) {
            consider(rc.spec.as_ref().map(|s| &s.selector));
        }
        selectors
    }

    fn spawn_bind(&self, key: String, pod: &Pod, node: String, queued_at: Instant, permit: tokio::sync::OwnedSemaphorePermit) {
        let client = self.client.clone();
        let tx = self.bound_tx.clone();
        let (namespace, name) = (pod.namespace().to_string(), pod.name().to_string());
        let object = reference(pod);
        tokio::spawn(async move {
            let t0 = Instant::now();
            let result = client.bind(&namespace, &name, &node).await.map(|_| ());
            let took = t0.elapsed();
            // The permit goes back before the loop hears of the result, so it can start the next binding.
            drop(permit);
            let _ = tx.send(Bound { key, namespace, name, node, result, took, queued_at, object });
        });
    }

    fn on_bound(&mut self, b: Bound) {
        match b.result {
            Ok(()) => {
                self.metrics.bound(b.took, b.queued_at.elapsed());
                self.queue.remove(&b.key);
                debug!(pod = %b.key, node = %b.node, took_ms = b.took.as_secs_f64() * 1000.0, "bound");
                self.recorder.normal(&b.object, "Scheduled", format!("Successfully assigned {}/{} to {}", b.namespace, b.name, b.node));
            }
            Err(err) => {
                self.metrics.binding_failed();
                self.metrics.attempt(Outcome::Error, b.took);
                self.cache.forget(&b.key);
                // Retry only a pod that still waits for a node.
                let current = self.readers.pods.get(&b.namespace, &b.name);
                let still_waiting = current
                    .as_ref()
                    .is_some_and(|p| podinfo::node_name(p).is_empty() && p.meta().deletion_timestamp.is_empty() && self.responsible(p));
                match current {
                    Some(pod) if still_waiting => {
                        warn!(pod = %b.key, node = %b.node, error = %err, "binding failed; retrying after a back-off");
                        self.recorder.warning(&b.object, "FailedScheduling", format!("Binding rejected: {err}"));
                        let now = Instant::now();
                        self.queue.add_or_update(&b.key, pod, now);
                        self.queue.backoff(&b.key, now);
                    }
                    _ => {
                        debug!(pod = %b.key, error = %err, "binding failed for a pod that no longer waits");
                        self.queue.remove(&b.key);
                    }
                }
            }
        }
    }

    /// A FailedScheduling event, and the PodScheduled=False condition
    /// written in the background (other conditions kept).
    fn report_unschedulable(&self, pod: &Pod, message: String) {
        self.recorder.warning(&reference(pod), "FailedScheduling", message.clone());
        let (client, pods, limit) = (self.client.clone(), self.readers.pods.clone(), self.statuses.clone());
        let (namespace, name) = (pod.namespace().to_string(), pod.name().to_string());
        tokio::spawn(async move {
            let Ok(_permit) = limit.acquire_owned().await else { return };
            if let Err(e) = write_unschedulable(&client, &pods, &namespace, &name, &message).await {
                debug!(pod = %format!("{namespace}/{name}"), error = %e, "cannot set the PodScheduled condition");
            }
        });
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sets `PodScheduled=False, reason Unschedulable` with `message` on a pod
/// that still has no node, unless it already says exactly that.
async fn write_unschedulable(client: &Client, pods: &Reader<Pod>, namespace: &str, name: &str, message: &str) -> berth_client::Result<()> {
    let mut current = match pods.get(namespace, name) {
        Some(p) => (*p).clone(),
        None => return Ok(()),
    };
    for _ in 0..3 {
        if !podinfo::node_name(&current).is_empty() || !current.meta().deletion_timestamp.is_empty() {
            return Ok(());
        }
        let status = current.status.get_or_insert_with(Default::default);
        let existing = status.conditions.iter().position(|c| c.r#type == "PodScheduled");
        if let Some(i) = existing {
            let c = &status.conditions[i];
            if c.status == "False" && c.reason == "Unschedulable" && c.message == message {
                return Ok(());
            }
        }
        let now = berth_api::time::now_rfc3339();
        let transition = match existing.map(|i| &status.conditions[i]) {
            Some(c) if c.status == "False" && !c.last_transition_time.is_empty() => c.last_transition_time.clone(),
            _ => now.clone(),
        };
        let condition = PodCondition {
            r#type: "PodScheduled".into(),
            status: "False".into(),
            reason: "Unschedulable".into(),
            message: message.into(),
            last_probe_time: String::new(),
            last_transition_time: transition,
        };
        match existing {
            Some(i) => status.conditions[i] = condition,
            None => status.conditions.push(condition),
        }
        if status.phase.is_empty() {
            status.phase = "Pending".into();
        }
        match client.update_status(current).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => current = client.get::<Pod>(namespace, name).await?,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
