//! The replication controller: keeps exactly `spec.replicas` pods matching
//! each ReplicationController's selector, created from its template and
//! owned by it; adopts matching orphans, releases pods that stopped
//! matching, and reports replicas, fullyLabeled, ready and available
//! replicas and the observed generation in the RC's status.
//!
//! Creations go in slow-start batches (1, 2, 4, …; the first failure stops
//! them), so a template the API refuses costs one call, not hundreds.
//! [`expectations`] keep a sync from acting again on a cache that has not
//! yet seen its previous creations and deletions; [`ranking`] picks which
//! pods a scale-down removes.

pub mod expectations;
pub mod ranking;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_api::Resource;
use berth_api::labels::Selector;
use berth_api::pb::core::{
    ObjectMeta, OwnerReference, Pod, ReplicationController, ReplicationControllerCondition, ReplicationControllerStatus,
};
use berth_client::{Client, DeleteParams};
use berth_runtime::events::{Recorder, reference};
use berth_runtime::{Reader, WorkQueue, key_of};
use futures::future::join_all;
use tracing::{debug, info};

use crate::controller::{self, Next, now_rfc3339, run_workers};
use crate::error::{self, Error, Result};
use crate::informers::{Informers, index};
use crate::pods;
use berth_client::modify;

use crate::Ctx;

use self::expectations::Expectations;

/// The controller's name, in `--controllers`, metrics and queue names.
pub const NAME: &str = "replication";

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// RCs synced at once (`--concurrent-rc-syncs`).
    pub workers: usize,
    /// Most pods created or deleted by one sync (Kubernetes' burstReplicas).
    pub burst: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { workers: 5, burst: 500 }
    }
}

/// At most this many events name single pods per sync; the rest are summed up.
const EVENTS_PER_SYNC: usize = 10;

struct Controller {
    client: Client,
    rcs: Reader<ReplicationController>,
    pods: Reader<Pod>,
    expectations: Arc<Expectations>,
    recorder: Recorder,
    burst: usize,
}

/// Registers the controller's informers and handlers; the returned future
/// runs it until the manager stops.
pub fn start(ctx: &Ctx, informers: &mut Informers, settings: Settings) -> impl Future<Output = Result<()>> + Send + 'static {
    let queue = controller::queue(NAME, &ctx.metrics);
    let expectations = Arc::new(Expectations::default());
    let rcs = informers.of::<ReplicationController>();
    rcs.index(index::NAMESPACE, index::by_namespace);
    {
        let q = queue.clone();
        rcs.on_add(move |rc| q.add(key_of(&**rc)));
        let q = queue.clone();
        rcs.on_update(move |_, rc| q.add(key_of(&**rc)));
        let (q, e) = (queue.clone(), expectations.clone());
        rcs.on_delete(move |rc| {
            let key = key_of(&**rc);
            e.forget(&key);
            q.add(key);
        });
    }
    let rc_reader = rcs.reader();
    let pods = informers.of::<Pod>();
    pods.index(index::NAMESPACE, index::by_namespace);
    {
        let (q, e, r) = (queue.clone(), expectations.clone(), rc_reader.clone());
        pods.on_add(move |p| pod_added(&q, &e, &r, p));
        let (q, e, r) = (queue.clone(), expectations.clone(), rc_reader.clone());
        pods.on_update(move |old, new| pod_updated(&q, &e, &r, old, new));
        let (q, e, r) = (queue.clone(), expectations.clone(), rc_reader.clone());
        pods.on_delete(move |p| pod_deleted(&q, &e, &r, p));
    }
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        rcs: rc_reader,
        pods: pods.reader(),
        expectations,
        recorder: Recorder::new(ctx.client.clone(), "replication-controller", &ctx.host),
        burst: settings.burst.max(1),
    });
    let (metrics, stop) = (ctx.metrics.clone(), ctx.stop.clone());
    async move {
        c.rcs.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "ReplicationController", source })?;
        c.pods.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Pod", source })?;
        info!(controller = NAME, workers = settings.workers, "caches synced, starting workers");
        run_workers(NAME, queue, settings.workers, metrics, stop, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    }
}

// ----- event handlers: find the RCs a pod change concerns and queue them

/// The RC that controls `pod`, if it is in the cache with the referenced uid.
fn controller_of(rcs: &Reader<ReplicationController>, pod: &Pod) -> Option<Arc<ReplicationController>> {
    let r = pods::controller_ref(pod.metadata.as_ref())?;
    if r.kind != ReplicationController::INFO.kind {
        return None;
    }
    rcs.get(pod.namespace(), &r.name).filter(|rc| rc.meta().uid == r.uid)
}

/// The RCs whose selector matches `pod` (candidates to adopt it).
fn matching(rcs: &Reader<ReplicationController>, pod: &Pod) -> Vec<Arc<ReplicationController>> {
    let labels = &pod.meta().labels;
    rcs.by_index(index::NAMESPACE, pod.namespace())
        .into_iter()
        .filter(|rc| {
            let sel = rc.spec.as_ref().map(|s| &s.selector);
            sel.is_some_and(|s| !s.is_empty() && Selector::from_map(s).matches(labels))
        })
        .collect()
}

fn pod_added(q: &WorkQueue<String>, e: &Expectations, rcs: &Reader<ReplicationController>, pod: &Arc<Pod>) {
    if pods::is_deleting(pod.metadata.as_ref()) {
        // A restarted manager can see a pod already being deleted: that is a deletion.
        return pod_deleted(q, e, rcs, pod);
    }
    if let Some(rc) = controller_of(rcs, pod) {
        let key = key_of(&*rc);
        e.creation_observed(&key);
        q.add(key);
        return;
    }
    if pods::controller_ref(pod.metadata.as_ref()).is_none() {
        for rc in matching(rcs, pod) {
            q.add(key_of(&*rc));
        }
    }
}

fn pod_updated(q: &WorkQueue<String>, e: &Expectations, rcs: &Reader<ReplicationController>, old: &Arc<Pod>, new: &Arc<Pod>) {
    if old.meta().resource_version == new.meta().resource_version {
        // A resync: only the controller needs another look.
        if let Some(rc) = controller_of(rcs, new) {
            q.add(key_of(&*rc));
        }
        return;
    }
    if pods::is_deleting(new.metadata.as_ref()) && !pods::is_deleting(old.metadata.as_ref()) {
        pod_deleted(q, e, rcs, new);
        if pods::controller_ref(old.metadata.as_ref()) != pods::controller_ref(new.metadata.as_ref())
            && let Some(rc) = controller_of(rcs, old)
        {
            q.add(key_of(&*rc));
        }
        return;
    }
    let ref_changed = pods::controller_ref(old.metadata.as_ref()) != pods::controller_ref(new.metadata.as_ref());
    if ref_changed && let Some(rc) = controller_of(rcs, old) {
        q.add(key_of(&*rc));
    }
    if let Some(rc) = controller_of(rcs, new) {
        q.add(key_of(&*rc));
        return;
    }
    if pods::controller_ref(new.metadata.as_ref()).is_none() && (ref_changed || old.meta().labels != new.meta().labels) {
        for rc in matching(rcs, new) {
            q.add(key_of(&*rc));
        }
    }
}

fn pod_deleted(q: &WorkQueue<String>, e: &Expectations, rcs: &Reader<ReplicationController>, pod: &Arc<Pod>) {
    let Some(r) = pods::controller_ref(pod.metadata.as_ref()) else { return };
    if r.kind != ReplicationController::INFO.kind {
        return;
    }
    let key = berth_runtime::reflector::object_key(pod.namespace(), &r.name);
    e.deletion_observed(&key, &key_of(&**pod));
    if rcs.get_by_key(&key).is_some() {
        q.add(key);
    }
}

// ----- sync

impl Controller {
    async fn sync(&self, key: &str) -> Result<Next> {
        let Some(rc) = self.rcs.get_by_key(key) else {
            self.expectations.forget(key);
            return Ok(Next::Done);
        };
        let spec = rc.spec.clone().unwrap_or_default();
        let selector = Selector::from_map(&spec.selector);
        let satisfied = self.expectations.satisfied(key);
        let owned = self.claim(&rc, &selector).await?;
        let active: Vec<Arc<Pod>> = owned.into_iter().filter(|p| pods::is_active(p)).collect();
        let managed = if satisfied && !pods::is_deleting(rc.metadata.as_ref()) {
            self.manage(&rc, key, &active).await
        } else {
            debug!(rc = %key, "waiting for earlier creations and deletions to be observed");
            Ok(())
        };
        let now = chrono::Utc::now();
        let min_ready = spec.min_ready_seconds.unwrap_or(0) as i64;
        let status = status_of(&rc, &active, managed.as_ref().err(), min_ready, now);
        self.write_status(&rc, status.clone()).await?;
        managed.map_err(|(_, e)| e)?;
        if min_ready > 0 && status.ready_replicas != status.available_replicas {
            // A ready pod becomes available without any event: look again then.
            return Ok(Next::After(Duration::from_secs(min_ready as u64 + 1)));
        }
        Ok(Next::Done)
    }

    /// The pods this RC owns after adopting matching orphans and releasing
    /// owned pods that no longer match.
    async fn claim(&self, rc: &ReplicationController, selector: &Selector) -> Result<Vec<Arc<Pod>>> {
        let uid = rc.meta().uid.clone();
        let rc_deleting = pods::is_deleting(rc.metadata.as_ref());
        let mut owned = Vec::new();
        let mut can_adopt: Option<bool> = None;
        for pod in self.pods.by_index(index::NAMESPACE, rc.namespace()) {
            let matches = !selector.is_empty() && selector.matches(&pod.meta().labels);
            match pods::controller_ref(pod.metadata.as_ref()) {
                Some(r) if r.uid == uid => {
                    if matches {
                        owned.push(pod);
                    } else if !rc_deleting {
                        self.release(rc, &pod).await?;
                    }
                }
                Some(_) => {}
                None => {
                    if !matches || rc_deleting || pods::is_deleting(pod.metadata.as_ref()) {
                        continue;
                    }
                    if can_adopt.is_none() {
                        // Adopt only for an RC that still exists as cached: the cache may be stale.
                        let fresh = self.client.get::<ReplicationController>(rc.namespace(), rc.name()).await;
                        can_adopt = Some(matches!(fresh, Ok(f) if f.meta().uid == uid && !pods::is_deleting(f.metadata.as_ref())));
                    }
                    if can_adopt == Some(true)
                        && let Some(adopted) = self.adopt(rc, &pod).await?
                    {
                        owned.push(Arc::new(adopted));
                    }
                }
            }
        }
        Ok(owned)
    }

    async fn adopt(&self, rc: &ReplicationController, pod: &Pod) -> Result<Option<Pod>> {
        let owner = owner_ref(rc);
        let result = modify::update::<Pod>(&self.client, pod.namespace(), pod.name(), |p| {
            let m = p.metadata_mut();
            if !m.deletion_timestamp.is_empty() || m.owner_references.iter().any(|r| r.controller == Some(true)) {
                return false;
            }
            m.owner_references.push(owner.clone());
            true
        })
        .await;
        match result {
            Ok(Some(p)) => {
                info!(rc = %key_of(rc), pod = %pod.name(), "adopted pod");
                Ok(Some(p))
            }
            Ok(None) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(error::api(format!("adopting pod {}/{}", pod.namespace(), pod.name()))(e)),
        }
    }

    async fn release(&self, rc: &ReplicationController, pod: &Pod) -> Result<()> {
        let uid = rc.meta().uid.clone();
        let result = modify::update::<Pod>(&self.client, pod.namespace(), pod.name(), |p| {
            let m = p.metadata_mut();
            let before = m.owner_references.len();
            m.owner_references.retain(|r| r.uid != uid);
            m.owner_references.len() != before
        })
        .await;
        match result {
            Ok(_) => {
                info!(rc = %key_of(rc), pod = %pod.name(), "released pod that no longer matches the selector");
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(error::api(format!("releasing pod {}/{}", pod.namespace(), pod.name()))(e)),
        }
    }

    /// Creates or deletes pods so that `active` becomes `spec.replicas`; a
    /// failure comes with the reason of the RC's ReplicaFailure condition.
    async fn manage(&self, rc: &ReplicationController, key: &str, active: &[Arc<Pod>]) -> Result<(), (&'static str, Error)> {
        let want = rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1).max(0) as usize;
        let have = active.len();
        let rc_ref = reference(rc);
        if have < want {
            let n = (want - have).min(self.burst);
            self.expectations.expect_creations(key, n);
            info!(rc = %key, want, have, creating = n, "too few replicas");
            let template = pod_from_template(rc);
            let (created, failure) = slow_start(n, 1, || {
                let (client, pod) = (self.client.clone(), template.clone());
                async move { client.create(pod).await }
            })
            .await;
            self.expectations.lower_creations(key, n - created.len());
            self.record_many(&rc_ref, "SuccessfulCreate", "Created", created.iter().map(|p| p.name().to_string()).collect());
            if let Some(e) = failure {
                self.recorder.warning(&rc_ref, "FailedCreate", format!("Error creating: {e}"));
                return Err(("FailedCreate", error::api(format!("creating pods for rc {key}"))(e)));
            }
        } else if have > want {
            let n = (have - want).min(self.burst);
            let victims = ranking::victims(active.to_vec(), n);
            info!(rc = %key, want, have, deleting = n, "too many replicas");
            self.expectations.expect_deletions(key, victims.iter().map(|p| key_of(&**p)));
            let results = join_all(victims.iter().map(|p| {
                let client = self.client.clone();
                let uid = p.meta().uid.clone();
                async move {
                    let params = DeleteParams { uid, ..Default::default() };
                    match client.delete::<Pod>(p.namespace(), p.name(), &params).await {
                        Ok(_) => Ok(p.name().to_string()),
                        Err(e) if e.is_not_found() => Ok(p.name().to_string()),
                        Err(e) => Err((p.clone(), e)),
                    }
                }
            }))
            .await;
            let mut deleted = Vec::new();
            let mut failure = None;
            for r in results {
                match r {
                    Ok(name) => deleted.push(name),
                    Err((p, e)) => {
                        // The deletion will not be observed: do not wait for it.
                        self.expectations.deletion_observed(key, &key_of(&*p));
                        failure.get_or_insert(e);
                    }
                }
            }
            self.record_many(&rc_ref, "SuccessfulDelete", "Deleted", deleted);
            if let Some(e) = failure {
                self.recorder.warning(&rc_ref, "FailedDelete", format!("Error deleting: {e}"));
                return Err(("FailedDelete", error::api(format!("deleting pods of rc {key}"))(e)));
            }
        }
        Ok(())
    }

    /// One event per pod for the first few, then one that sums up the rest.
    fn record_many(&self, rc: &berth_api::pb::core::ObjectReference, reason: &str, verb: &str, names: Vec<String>) {
        let (each, rest) = names.split_at(names.len().min(EVENTS_PER_SYNC));
        for n in each {
            self.recorder.normal(rc, reason, format!("{verb} pod: {n}"));
        }
        if !rest.is_empty() {
            self.recorder.normal(rc, reason, format!("{verb} {} more pods", rest.len()));
        }
    }

    async fn write_status(&self, rc: &ReplicationController, status: ReplicationControllerStatus) -> Result<()> {
        if same_status(rc.status.as_ref(), &status) {
            return Ok(());
        }
        let mut next = rc.clone();
        next.status = Some(status.clone());
        match self.client.update_status(next).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.is_conflict() => {
                // Our cached copy is stale: write onto the current one.
                let r = modify::update_status::<ReplicationController>(&self.client, rc.namespace(), rc.name(), |fresh| {
                    if fresh.meta().uid != rc.meta().uid {
                        return false;
                    }
                    let mut s = status.clone();
                    s.conditions = merge_conditions(fresh.status.as_ref(), &status);
                    fresh.status = Some(s);
                    true
                })
                .await;
                match r {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(error::api(format!("updating the status of rc {}", key_of(rc)))(e)),
                }
            }
            Err(e) => Err(error::api(format!("updating the status of rc {}", key_of(rc)))(e)),
        }
    }
}

/// Runs `count` calls of `call` in batches of 1, 2, 4, … (from `initial`),
/// stopping after the first batch with a failure. Returns what was created
/// and the first failure.
pub async fn slow_start<F, Fut, T>(count: usize, initial: usize, call: F) -> (Vec<T>, Option<berth_client::Error>)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, berth_client::Error>>,
{
    let mut done = Vec::with_capacity(count);
    let mut remaining = count;
    let mut batch = initial.max(1).min(remaining);
    while batch > 0 {
        let results = join_all((0..batch).map(|_| call())).await;
        let mut failure = None;
        for r in results {
            match r {
                Ok(t) => done.push(t),
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if failure.is_some() {
            return (done, failure);
        }
        remaining -= batch;
        batch = (batch * 2).min(remaining);
    }
    (done, None)
}

/// The ownerReference an RC puts on its pods.
fn owner_ref(rc: &ReplicationController) -> OwnerReference {
    OwnerReference {
        api_version: ReplicationController::INFO.api_version.into(),
        kind: ReplicationController::INFO.kind.into(),
        name: rc.name().into(),
        uid: rc.meta().uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A new pod from the RC's template, named `<rc>-<random>`.
fn pod_from_template(rc: &ReplicationController) -> Pod {
    let template = rc.spec.as_ref().and_then(|s| s.template.clone()).unwrap_or_default();
    let tmeta = template.metadata.unwrap_or_default();
    Pod {
        metadata: Some(ObjectMeta {
            generate_name: format!("{}-", rc.name()),
            namespace: rc.namespace().into(),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            owner_references: vec![owner_ref(rc)],
            ..Default::default()
        }),
        spec: template.spec,
        ..Default::default()
    }
}

/// The RC's status from its active pods.
fn status_of(
    rc: &ReplicationController,
    active: &[Arc<Pod>],
    failure: Option<&(&'static str, Error)>,
    min_ready_seconds: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> ReplicationControllerStatus {
    let template_labels =
        rc.spec.as_ref().and_then(|s| s.template.as_ref()).and_then(|t| t.metadata.as_ref()).map(|m| m.labels.clone()).unwrap_or_default();
    let fully_labeled = active.iter().filter(|p| template_labels.iter().all(|(k, v)| p.meta().labels.get(k) == Some(v))).count();
    let ready = active.iter().filter(|p| pods::is_ready(p)).count();
    let available = active.iter().filter(|p| pods::is_available(p, min_ready_seconds, now)).count();
    let old = rc.status.clone().unwrap_or_default();
    let mut conditions: Vec<ReplicationControllerCondition> = old.conditions.into_iter().filter(|c| c.r#type != "ReplicaFailure").collect();
    if let Some((reason, e)) = failure {
        let previous = rc.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.r#type == "ReplicaFailure"));
        conditions.push(ReplicationControllerCondition {
            r#type: "ReplicaFailure".into(),
            status: "True".into(),
            last_transition_time: previous.map(|c| c.last_transition_time.clone()).unwrap_or_else(now_rfc3339),
            reason: (*reason).into(),
            message: e.client().map(|c| c.to_string()).unwrap_or_else(|| e.to_string()),
        });
    }
    ReplicationControllerStatus {
        replicas: active.len() as i32,
        fully_labeled_replicas: fully_labeled as i32,
        ready_replicas: ready as i32,
        available_replicas: available as i32,
        observed_generation: rc.meta().generation,
        conditions,
    }
}

fn same_status(old: Option<&ReplicationControllerStatus>, new: &ReplicationControllerStatus) -> bool {
    old.is_some_and(|o| o == new)
}

/// Our conditions onto the current status's.
fn merge_conditions(
    current: Option<&ReplicationControllerStatus>,
    ours: &ReplicationControllerStatus,
) -> Vec<ReplicationControllerCondition> {
    let mut c: Vec<_> =
        current.map(|s| s.conditions.clone()).unwrap_or_default().into_iter().filter(|c| c.r#type != "ReplicaFailure").collect();
    c.extend(ours.conditions.iter().filter(|c| c.r#type == "ReplicaFailure").cloned());
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn should_create_in_doubling_batches_and_stop_at_the_first_failing_batch() {
        let calls = AtomicUsize::new(0);
        let (done, failure) = slow_start(20, 1, || {
            let i = calls.fetch_add(1, Ordering::SeqCst);
            async move { if i >= 5 { Err(berth_client::Error::BadToken) } else { Ok(i) } }
        })
        .await;
        // Batches of 1, 2, 4: the third batch fails (calls 3..7), nothing after it.
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(done.len(), 5);
        assert!(failure.is_some());
    }

    #[tokio::test]
    async fn should_create_everything_when_nothing_fails() {
        let calls = AtomicUsize::new(0);
        let (done, failure) = slow_start(1000, 1, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .await;
        assert_eq!(done.len(), 1000);
        assert!(failure.is_none());
    }
}
