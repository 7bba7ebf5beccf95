//! The namespace controller: once a namespace is being deleted (the
//! apiserver has set it Terminating and refuses new objects in it), deletes
//! every object in it — pods gracefully — reports what remains in the
//! namespace's conditions, and when nothing is left removes its
//! `kubernetes` finalizer so that the apiserver removes the namespace.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{Namespace, NamespaceCondition};
use berth_api::resource::KINDS;
use berth_client::{Client, DeleteParams, ListParams};
use berth_runtime::events::{Recorder, reference};
use berth_runtime::{Reader, key_of};
use tracing::{debug, info};

use crate::controller::{self, Next, now_rfc3339, run_workers};
use crate::error::{self, Error, Result};
use crate::informers::Informers;
use berth_client::modify;

use crate::{Ctx, pods};

/// The controller's name, in `--controllers`, metrics and queue names.
pub const NAME: &str = "namespace";

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespaces emptied at once (`--concurrent-namespace-syncs`).
    pub workers: usize,
    /// How often a namespace still holding objects is looked at again.
    pub recheck: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { workers: 5, recheck: Duration::from_secs(1) }
    }
}

struct Controller {
    client: Client,
    namespaces: Reader<Namespace>,
    recorder: Recorder,
    recheck: Duration,
}

/// Registers the controller's informer and handlers; the returned future
/// runs it until the manager stops.
pub fn start(ctx: &Ctx, informers: &mut Informers, settings: Settings) -> impl Future<Output = Result<()>> + Send + 'static {
    let queue = controller::queue(NAME, &ctx.metrics);
    let namespaces = informers.of::<Namespace>();
    let q = queue.clone();
    namespaces.on_add(move |ns| {
        if pods::is_deleting(ns.metadata.as_ref()) {
            q.add(key_of(&**ns));
        }
    });
    let q = queue.clone();
    namespaces.on_update(move |_, ns| {
        if pods::is_deleting(ns.metadata.as_ref()) {
            q.add(key_of(&**ns));
        }
    });
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        namespaces: namespaces.reader(),
        recorder: Recorder::new(ctx.client.clone(), "namespace-controller", &ctx.host),
        recheck: settings.recheck,
    });
    let (metrics, stop) = (ctx.metrics.clone(), ctx.stop.clone());
    async move {
        c.namespaces.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Namespace", source })?;
        info!(controller = NAME, workers = settings.workers, "caches synced, starting workers");
        run_workers(NAME, queue, settings.workers, metrics, stop, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    }
}

impl Controller {
    async fn sync(&self, name: &str) -> Result<Next> {
        let Some(ns) = self.namespaces.get("", name) else { return Ok(Next::Done) };
        if !pods::is_deleting(ns.metadata.as_ref()) {
            return Ok(Next::Done);
        }
        let finalizers = ns.spec.as_ref().map(|s| s.finalizers.clone()).unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            return Ok(Next::Done);
        }
        let remaining = self.delete_content(name).await?;
        if !remaining.is_empty() {
            let total: usize = remaining.values().sum();
            let what: Vec<String> = remaining.iter().map(|(k, n)| format!("{k} has {n} resource instances")).collect();
            let message = format!("Some resources are remaining: {}", what.join(", "));
            debug!(namespace = name, remaining = total, "waiting for the namespace's objects to go");
            self.set_condition(&ns, "NamespaceContentRemaining", "True", "SomeResourcesRemain", &message).await;
            return Ok(Next::After(self.recheck));
        }
        self.set_condition(&ns, "NamespaceContentRemaining", "False", "ContentRemoved", "All content successfully removed").await;
        let removed = modify::update::<Namespace>(&self.client, "", name, |n| {
            let spec = n.spec.get_or_insert_with(Default::default);
            let before = spec.finalizers.len();
            spec.finalizers.retain(|f| f != FINALIZER);
            spec.finalizers.len() != before
        })
        .await;
        match removed {
            Ok(_) => {
                info!(namespace = name, "namespace emptied; finalizer removed");
                self.recorder.normal(&reference(&*ns), "NamespaceFinalized", format!("All content of namespace {name} was deleted"));
                Ok(Next::Done)
            }
            Err(e) if e.is_not_found() => Ok(Next::Done),
            Err(e) => Err(error::api(format!("removing the finalizer of namespace {name}"))(e)),
        }
    }

    /// Deletes every object in the namespace that is not being deleted yet;
    /// returns the kinds (plural) that still have objects, with their count.
    async fn delete_content(&self, namespace: &str) -> Result<BTreeMap<&'static str, usize>> {
        let mut remaining = BTreeMap::new();
        for info in KINDS.iter().filter(|k| k.namespaced) {
            let list = self
                .client
                .list_objects(info.kind, namespace, &ListParams::default())
                .await
                .map_err(error::api(format!("listing {} in namespace {namespace}", info.plural)))?;
            if list.items.is_empty() {
                continue;
            }
            remaining.insert(info.plural, list.items.len());
            for o in list.items {
                if pods::is_deleting(o.metadata()) {
                    continue;
                }
                let params = DeleteParams { uid: o.metadata().map(|m| m.uid.clone()).unwrap_or_default(), ..Default::default() };
                match self.client.delete_object(info.kind, namespace, o.name(), &params).await {
                    Ok(_) => debug!(namespace, kind = info.kind, name = o.name(), "deleted"),
                    Err(e) if e.is_not_found() || e.is_conflict() => {}
                    Err(e) => return Err(error::api(format!("deleting {} {namespace}/{}", info.plural, o.name()))(e)),
                }
            }
        }
        Ok(remaining)
    }

    /// Sets one condition in the namespace's status (best effort: the
    /// condition only informs).
    async fn set_condition(&self, ns: &Namespace, kind: &str, status: &str, reason: &str, message: &str) {
        let current = ns.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.r#type == kind));
        if current.is_some_and(|c| c.status == status && c.message == message) {
            return;
        }
        let r = modify::update_status::<Namespace>(&self.client, "", ns.name(), |n| {
            let s = n.status.get_or_insert_with(Default::default);
            s.conditions.retain(|c| c.r#type != kind);
            s.conditions.push(NamespaceCondition {
                r#type: kind.into(),
                status: status.into(),
                last_transition_time: now_rfc3339(),
                reason: reason.into(),
                message: message.into(),
            });
            true
        })
        .await;
        if let Err(e) = r {
            debug!(namespace = ns.name(), cause = %e, "cannot set the namespace's condition");
        }
    }
}
