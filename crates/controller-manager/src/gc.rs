//! The garbage collector: a graph of ownerReferences over every kind that
//! can own or be owned, fed by the shared informers. An object whose owners
//! are all gone is deleted (Background propagation, the default); an owner
//! deleted with Foreground propagation keeps its `foregroundDeletion`
//! finalizer until its blocking dependents are gone; one deleted with
//! Orphan propagation has the reference removed from its dependents, then
//! loses its `orphan` finalizer. The apiserver removes an object once its
//! last finalizer is gone.

use berth_base::sync::MutexExt;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{
    ConfigMap, Endpoints, Lease, LimitRange, Node, ObjectMeta, OwnerReference, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use berth_api::resource::{KindInfo, find_kind};
use berth_client::{Client, DeleteParams};
use berth_runtime::WorkQueue;
use berth_runtime::events::Recorder;
use futures::FutureExt;
use futures::future::BoxFuture;
use tracing::{debug, info};

use crate::controller::{self, Next, run_workers};
use crate::error::{self, Error, Result};
use crate::informers::Informers;
use berth_client::modify;

use crate::Ctx;

/// The controller's name, in `--controllers`, metrics and queue names.
pub const NAME: &str = "garbagecollector";

/// The finalizers of the propagation policies.
pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// How the collector runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Objects processed at once (`--concurrent-gc-syncs`).
    pub workers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { workers: 10 }
    }
}

/// One object of the graph.
#[derive(Debug, Clone)]
struct Item {
    kind: &'static KindInfo,
    namespace: String,
    name: String,
    owners: Vec<OwnerReference>,
    deleting: bool,
    foreground: bool,
    orphan: bool,
}

/// Who owns whom, by uid.
#[derive(Debug, Default)]
struct Graph {
    items: HashMap<String, Item>,
    /// owner uid → dependents' uids (the owner need not be in `items`).
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn dependents_of(&self, uid: &str) -> Vec<(String, Item)> {
        self.dependents
            .get(uid)
            .map(|d| d.iter().filter_map(|u| self.items.get(u).map(|i| (u.clone(), i.clone()))).collect())
            .unwrap_or_default()
    }

    fn unlink(&mut self, uid: &str, owners: &[OwnerReference]) {
        for o in owners {
            if let Some(d) = self.dependents.get_mut(&o.uid) {
                d.remove(uid);
                if d.is_empty() {
                    self.dependents.remove(&o.uid);
                }
            }
        }
    }
}

type Shared = Arc<Mutex<Graph>>;

/// Work item keys: what to do with which uid.
mod key {
    pub const DELETE: &str = "delete/";
    pub const ORPHAN: &str = "orphan/";
    pub const FOREGROUND: &str = "foreground/";
}

type ReadyWait = Box<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>;

struct Controller {
    client: Client,
    graph: Shared,
    recorder: Recorder,
}

/// Registers the collector's informers; the returned future runs it until the manager stops.
pub fn start(ctx: &Ctx, informers: &mut Informers, settings: Settings) -> impl Future<Output = Result<()>> + Send + 'static {
    let queue = controller::queue(NAME, &ctx.metrics);
    let graph: Shared = Arc::default();
    let mut waits: Vec<ReadyWait> = Vec::new();
    observe::<Pod>(informers, &graph, &queue, &mut waits);
    observe::<ReplicationController>(informers, &graph, &queue, &mut waits);
    observe::<Service>(informers, &graph, &queue, &mut waits);
    observe::<Endpoints>(informers, &graph, &queue, &mut waits);
    observe::<Secret>(informers, &graph, &queue, &mut waits);
    observe::<ConfigMap>(informers, &graph, &queue, &mut waits);
    observe::<ResourceQuota>(informers, &graph, &queue, &mut waits);
    observe::<LimitRange>(informers, &graph, &queue, &mut waits);
    observe::<Lease>(informers, &graph, &queue, &mut waits);
    observe::<Node>(informers, &graph, &queue, &mut waits);
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        graph,
        recorder: Recorder::new(ctx.client.clone(), "garbage-collector-controller", &ctx.host),
    });
    let (metrics, stop) = (ctx.metrics.clone(), ctx.stop.clone());
    async move {
        for w in &waits {
            w().await?;
        }
        info!(
            controller = NAME,
            workers = settings.workers,
            objects = c.graph.lock_or_recover().items.len(),
            "graph synced, starting workers"
        );
        run_workers(NAME, queue, settings.workers, metrics, stop, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    }
}

/// Feeds the graph from the informer of kind `R`.
fn observe<R: Resource>(informers: &mut Informers, graph: &Shared, queue: &WorkQueue<String>, waits: &mut Vec<ReadyWait>) {
    let slot = informers.of::<R>();
    let (g, q) = (graph.clone(), queue.clone());
    slot.on_add(move |o| changed(&g, &q, &R::INFO, o.meta()));
    let (g, q) = (graph.clone(), queue.clone());
    slot.on_update(move |_, o| changed(&g, &q, &R::INFO, o.meta()));
    let (g, q) = (graph.clone(), queue.clone());
    slot.on_delete(move |o| deleted(&g, &q, o.meta()));
    let reader = slot.reader();
    waits.push(Box::new(move || {
        let r = reader.clone();
        async move { r.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: R::INFO.kind, source }) }.boxed()
    }));
}

fn changed(graph: &Shared, queue: &WorkQueue<String>, kind: &'static KindInfo, meta: &ObjectMeta) {
    let uid = meta.uid.clone();
    if uid.is_empty() {
        return;
    }
    let item = Item {
        kind,
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
        owners: meta.owner_references.clone(),
        deleting: !meta.deletion_timestamp.is_empty(),
        foreground: meta.finalizers.iter().any(|f| f == FOREGROUND),
        orphan: meta.finalizers.iter().any(|f| f == ORPHAN),
    };
    let mut g = graph.lock_or_recover();
    let old = g.items.insert(uid.clone(), item.clone());
    let owners_changed = old.as_ref().is_none_or(|o| o.owners != item.owners);
    if let Some(o) = &old
        && owners_changed
    {
        let owners = o.owners.clone();
        g.unlink(&uid, &owners);
    }
    for o in &item.owners {
        g.dependents.entry(o.uid.clone()).or_default().insert(uid.clone());
    }
    // An owner that becomes foreground-deleting changes what its dependents must do.
    let became_waiting = item.deleting && item.foreground && old.as_ref().is_none_or(|o| !(o.deleting && o.foreground));
    let dependents: Vec<String> =
        if became_waiting { g.dependents.get(&uid).map(|d| d.iter().cloned().collect()).unwrap_or_default() } else { Vec::new() };
    drop(g);
    if item.deleting && item.orphan {
        queue.add(format!("{}{uid}", key::ORPHAN));
    }
    if item.deleting && item.foreground {
        queue.add(format!("{}{uid}", key::FOREGROUND));
    }
    if !item.owners.is_empty() && owners_changed {
        queue.add(format!("{}{uid}", key::DELETE));
    }
    for d in dependents {
        queue.add(format!("{}{d}", key::DELETE));
    }
}

fn deleted(graph: &Shared, queue: &WorkQueue<String>, meta: &ObjectMeta) {
    let uid = meta.uid.clone();
    let mut g = graph.lock_or_recover();
    let Some(item) = g.items.remove(&uid) else { return };
    g.unlink(&uid, &item.owners);
    let dependents: Vec<String> = g.dependents.get(&uid).map(|d| d.iter().cloned().collect()).unwrap_or_default();
    let waiting_owners: Vec<String> =
        item.owners.iter().filter(|o| g.items.get(&o.uid).is_some_and(|i| i.deleting && i.foreground)).map(|o| o.uid.clone()).collect();
    drop(g);
    for d in dependents {
        queue.add(format!("{}{d}", key::DELETE));
    }
    for o in waiting_owners {
        queue.add(format!("{}{o}", key::FOREGROUND));
    }
}

/// What became of one owner reference.
enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner is gone (or was replaced by another object of that name).
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Next> {
        if let Some(uid) = key.strip_prefix(key::DELETE) {
            self.attempt_delete(uid).await
        } else if let Some(uid) = key.strip_prefix(key::ORPHAN) {
            self.orphan_dependents(uid).await
        } else if let Some(uid) = key.strip_prefix(key::FOREGROUND) {
            self.delete_dependents(uid).await
        } else {
            Ok(Next::Done)
        }
    }

    fn item(&self, uid: &str) -> Option<Item> {
        self.graph.lock_or_recover().items.get(uid).cloned()
    }

    /// Deletes the object if none of its owners remains; drops references
    /// to owners that are gone when some remain.
    async fn attempt_delete(&self, uid: &str) -> Result<Next> {
        let Some(item) = self.item(uid) else { return Ok(Next::Done) };
        if item.deleting || item.owners.is_empty() {
            return Ok(Next::Done);
        }
        let (mut solid, mut dangling, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
        for owner in &item.owners {
            match self.owner_state(&item, owner).await? {
                OwnerState::Solid => solid.push(owner.uid.clone()),
                OwnerState::Dangling => dangling.push(owner.uid.clone()),
                OwnerState::Waiting => waiting.push(owner.uid.clone()),
            }
        }
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(Next::Done);
            }
            let drop: HashSet<String> = dangling.into_iter().chain(waiting).collect();
            let r = modify::update_object(&self.client, item.kind.kind, &item.namespace, &item.name, |o| {
                let Some(m) = o.metadata_mut() else { return false };
                if m.uid != uid {
                    return false;
                }
                let before = m.owner_references.len();
                m.owner_references.retain(|r| !drop.contains(&r.uid));
                m.owner_references.len() != before
            })
            .await;
            return match r {
                Ok(_) => {
                    debug!(kind = item.kind.kind, namespace = %item.namespace, name = %item.name, "removed references to owners that are gone");
                    Ok(Next::Done)
                }
                Err(e) if e.is_not_found() => Ok(Next::Done),
                Err(e) => Err(error::api(format!("updating the owners of {} {}/{}", item.kind.plural, item.namespace, item.name))(e)),
            };
        }
        let has_dependents = !self.graph.lock_or_recover().dependents_of(uid).is_empty();
        let policy = if !waiting.is_empty() && has_dependents { "Foreground" } else { "Background" };
        let params = DeleteParams { uid: uid.to_string(), propagation_policy: policy.into(), ..Default::default() };
        match self.client.delete_object(item.kind.kind, &item.namespace, &item.name, &params).await {
            Ok(_) => {
                info!(kind = item.kind.kind, namespace = %item.namespace, name = %item.name, policy, "deleted an object whose owners are gone");
                Ok(Next::Done)
            }
            Err(e) if e.is_not_found() || e.is_conflict() => Ok(Next::Done),
            Err(e) => Err(error::api(format!("deleting {} {}/{}", item.kind.plural, item.namespace, item.name))(e)),
        }
    }

    /// Looks the owner up in the graph, and in the API when the graph does
    /// not know it (it may not have been observed yet).
    async fn owner_state(&self, item: &Item, owner: &OwnerReference) -> Result<OwnerState> {
        if let Some(o) = self.item(&owner.uid) {
            return Ok(if o.deleting && o.foreground { OwnerState::Waiting } else { OwnerState::Solid });
        }
        let Some(info) = find_kind(&owner.kind) else {
            // A kind this API does not serve: never guess that it is gone.
            return Ok(OwnerState::Solid);
        };
        let namespace = if info.namespaced { item.namespace.as_str() } else { "" };
        match self.client.get_object(info.kind, namespace, &owner.name).await {
            Ok(o) => {
                let Some(m) = o.metadata() else { return Ok(OwnerState::Dangling) };
                if m.uid != owner.uid {
                    Ok(OwnerState::Dangling)
                } else if !m.deletion_timestamp.is_empty() && m.finalizers.iter().any(|f| f == FOREGROUND) {
                    Ok(OwnerState::Waiting)
                } else {
                    Ok(OwnerState::Solid)
                }
            }
            Err(e) if e.is_not_found() => Ok(OwnerState::Dangling),
            Err(e) => Err(error::api(format!("looking up owner {} {namespace}/{}", owner.kind, owner.name))(e)),
        }
    }

    /// Orphan propagation: removes the owner from its dependents' references, then its `orphan` finalizer.
    async fn orphan_dependents(&self, uid: &str) -> Result<Next> {
        let Some(owner) = self.item(uid) else { return Ok(Next::Done) };
        if !(owner.deleting && owner.orphan) {
            return Ok(Next::Done);
        }
        let dependents = self.graph.lock_or_recover().dependents_of(uid);
        for (_, d) in &dependents {
            let r = modify::update_object(&self.client, d.kind.kind, &d.namespace, &d.name, |o| {
                let Some(m) = o.metadata_mut() else { return false };
                let before = m.owner_references.len();
                m.owner_references.retain(|r| r.uid != uid);
                m.owner_references.len() != before
            })
            .await;
            match r {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(error::api(format!("orphaning {} {}/{}", d.kind.plural, d.namespace, d.name))(e)),
            }
        }
        self.remove_finalizer(&owner, uid, ORPHAN).await?;
        info!(kind = owner.kind.kind, namespace = %owner.namespace, name = %owner.name, dependents = dependents.len(), "orphaned the dependents");
        self.record(&owner, uid, "OrphanedDependents", format!("Removed the owner reference from {} dependents", dependents.len()));
        Ok(Next::Done)
    }

    /// Foreground propagation: deletes the dependents and, once no blocking
    /// dependent is left, removes the owner's `foregroundDeletion` finalizer.
    async fn delete_dependents(&self, uid: &str) -> Result<Next> {
        let Some(owner) = self.item(uid) else { return Ok(Next::Done) };
        if !(owner.deleting && owner.foreground) {
            return Ok(Next::Done);
        }
        let dependents = self.graph.lock_or_recover().dependents_of(uid);
        let blocking: Vec<&(String, Item)> =
            dependents.iter().filter(|(_, d)| d.owners.iter().any(|r| r.uid == uid && r.block_owner_deletion == Some(true))).collect();
        if blocking.is_empty() {
            self.remove_finalizer(&owner, uid, FOREGROUND).await?;
            info!(kind = owner.kind.kind, namespace = %owner.namespace, name = %owner.name, "dependents gone; foreground deletion finished");
            // Dependents that did not block are collected once the owner is gone.
            return Ok(Next::Done);
        }
        for (duid, d) in &dependents {
            if d.deleting {
                continue;
            }
            let has_own = !self.graph.lock_or_recover().dependents_of(duid).is_empty();
            let policy = if has_own { "Foreground" } else { "Background" };
            let params = DeleteParams { uid: duid.clone(), propagation_policy: policy.into(), ..Default::default() };
            match self.client.delete_object(d.kind.kind, &d.namespace, &d.name, &params).await {
                Ok(_) => {
                    debug!(kind = d.kind.kind, namespace = %d.namespace, name = %d.name, "deleted a dependent of a foreground deletion")
                }
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(error::api(format!("deleting {} {}/{}", d.kind.plural, d.namespace, d.name))(e)),
            }
        }
        // Dependents' deletions bring this key back; look again anyway in case one is missed.
        Ok(Next::After(Duration::from_secs(5)))
    }

    async fn remove_finalizer(&self, item: &Item, uid: &str, finalizer: &str) -> Result<()> {
        let r = modify::update_object(&self.client, item.kind.kind, &item.namespace, &item.name, |o| {
            let Some(m) = o.metadata_mut() else { return false };
            if m.uid != uid {
                return false;
            }
            let before = m.finalizers.len();
            m.finalizers.retain(|f| f != finalizer);
            m.finalizers.len() != before
        })
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => {
                Err(error::api(format!("removing finalizer {finalizer} of {} {}/{}", item.kind.plural, item.namespace, item.name))(e))
            }
        }
    }

    fn record(&self, item: &Item, uid: &str, reason: &str, message: String) {
        let r = berth_api::pb::core::ObjectReference {
            kind: item.kind.kind.into(),
            namespace: item.namespace.clone(),
            name: item.name.clone(),
            uid: uid.into(),
            api_version: item.kind.api_version.into(),
            ..Default::default()
        };
        self.recorder.normal(&r, reason, message);
    }
}
