//! The resource quota controller: recomputes each ResourceQuota's
//! `status.used` (and copies `spec.hard` to `status.hard`) from what exists
//! in its namespace, counted exactly as the apiserver's quota admission
//! counts it ([`berth_api::quota`]), whenever a counted object changes and
//! at every full resync.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{ConfigMap, Pod, ReplicationController, ResourceQuota, ResourceQuotaStatus, Secret, Service};
use berth_api::quota::{self, Usage};
use berth_client::Client;
use berth_runtime::events::{Recorder, reference};
use berth_runtime::{Reader, WorkQueue, key_of};
use tracing::{debug, info};

use crate::controller::{self, Next, run_workers};
use crate::error::{self, Error, Result};
use crate::informers::{Informers, index};
use berth_client::modify;

use crate::Ctx;

/// The controller's name, in `--controllers`, metrics and queue names.
pub const NAME: &str = "resourcequota";

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Quotas synced at once (`--concurrent-resource-quota-syncs`).
    pub workers: usize,
    /// How often every quota is recomputed regardless (`--resource-quota-sync-period`).
    pub full_resync: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { workers: 5, full_resync: Duration::from_secs(5 * 60) }
    }
}

struct Controller {
    client: Client,
    quotas: Reader<ResourceQuota>,
    pods: Reader<Pod>,
    services: Reader<Service>,
    rcs: Reader<ReplicationController>,
    secrets: Reader<Secret>,
    configmaps: Reader<ConfigMap>,
    recorder: Recorder,
    full_resync: Duration,
}

/// Registers the controller's informers; the returned future runs it until the manager stops.
pub fn start(ctx: &Ctx, informers: &mut Informers, settings: Settings) -> impl Future<Output = Result<()>> + Send + 'static {
    let queue = controller::queue(NAME, &ctx.metrics);
    let quotas = informers.of::<ResourceQuota>();
    quotas.index(index::NAMESPACE, index::by_namespace);
    let q = queue.clone();
    quotas.on_add(move |rq| q.add(key_of(&**rq)));
    let q = queue.clone();
    quotas.on_update(move |old, rq| {
        if old.spec != rq.spec || old.status.as_ref().map(|s| &s.used) != rq.status.as_ref().map(|s| &s.used) {
            q.add(key_of(&**rq));
        }
    });
    let quota_reader = quotas.reader();
    let pods = watch_counted::<Pod>(informers, &queue, &quota_reader);
    let services = watch_counted::<Service>(informers, &queue, &quota_reader);
    let rcs = watch_counted::<ReplicationController>(informers, &queue, &quota_reader);
    let secrets = watch_counted::<Secret>(informers, &queue, &quota_reader);
    let configmaps = watch_counted::<ConfigMap>(informers, &queue, &quota_reader);
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        quotas: quota_reader,
        pods,
        services,
        rcs,
        secrets,
        configmaps,
        recorder: Recorder::new(ctx.client.clone(), "resourcequota-controller", &ctx.host),
        full_resync: settings.full_resync,
    });
    let (metrics, stop) = (ctx.metrics.clone(), ctx.stop.clone());
    async move {
        let sync = |kind: &'static str| move |source| Error::CacheSync { kind, source };
        c.quotas.wait_until_ready().await.map_err(sync("ResourceQuota"))?;
        c.pods.wait_until_ready().await.map_err(sync("Pod"))?;
        c.services.wait_until_ready().await.map_err(sync("Service"))?;
        c.rcs.wait_until_ready().await.map_err(sync("ReplicationController"))?;
        c.secrets.wait_until_ready().await.map_err(sync("Secret"))?;
        c.configmaps.wait_until_ready().await.map_err(sync("ConfigMap"))?;
        info!(controller = NAME, workers = settings.workers, "caches synced, starting workers");
        run_workers(NAME, queue, settings.workers, metrics, stop, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    }
}

/// Queues the quotas of an object's namespace when what it counts for changes.
fn watch_counted<R: Resource>(informers: &mut Informers, queue: &WorkQueue<String>, quotas: &Reader<ResourceQuota>) -> Reader<R> {
    let slot = informers.of::<R>();
    slot.index(index::NAMESPACE, index::by_namespace);
    let enqueue = {
        let (q, quotas) = (queue.clone(), quotas.clone());
        move |ns: &str| {
            for rq in quotas.by_index(index::NAMESPACE, ns) {
                q.add(key_of(&*rq));
            }
        }
    };
    let e = enqueue.clone();
    slot.on_add(move |o| e(o.namespace()));
    let e = enqueue.clone();
    slot.on_update(move |old, new| {
        if old.meta().resource_version != new.meta().resource_version
            && quota::usage(&(**old).clone().into_object()) != quota::usage(&(**new).clone().into_object())
        {
            e(new.namespace());
        }
    });
    let e = enqueue;
    slot.on_delete(move |o| e(o.namespace()));
    slot.reader()
}

fn usages<R: Resource>(reader: &Reader<R>, namespace: &str) -> Vec<Usage> {
    reader.by_index(index::NAMESPACE, namespace).iter().map(|o| quota::usage(&(**o).clone().into_object())).collect()
}

impl Controller {
    /// The namespace's usage of `hard`'s resources, counted from the caches.
    fn used(&self, namespace: &str, hard: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut all = Vec::new();
        for kind in quota::kinds_counted(hard) {
            match kind {
                "Pod" => all.extend(usages(&self.pods, namespace)),
                "Service" => all.extend(usages(&self.services, namespace)),
                "ReplicationController" => all.extend(usages(&self.rcs, namespace)),
                "Secret" => all.extend(usages(&self.secrets, namespace)),
                "ConfigMap" => all.extend(usages(&self.configmaps, namespace)),
                "ResourceQuota" => all.extend(usages(&self.quotas, namespace)),
                _ => {}
            }
        }
        quota::sum_for(hard, all.iter()).into_iter().map(|(k, v)| (k, v.to_string())).collect()
    }

    async fn sync(&self, key: &str) -> Result<Next> {
        let Some(rq) = self.quotas.get_by_key(key) else { return Ok(Next::Done) };
        let hard = rq.spec.as_ref().map(|s| s.hard.clone()).unwrap_or_default();
        let unknown: Vec<&String> = hard.keys().filter(|k| !quota::SUPPORTED.contains(&k.as_str())).collect();
        if !unknown.is_empty() {
            self.recorder.warning(
                &reference(&*rq),
                "UnsupportedResource",
                format!("Resources not counted by this quota controller: {unknown:?}"),
            );
        }
        let status = ResourceQuotaStatus { hard: hard.clone(), used: self.used(rq.namespace(), &hard) };
        if rq.status.as_ref() == Some(&status) {
            return Ok(Next::After(self.full_resync));
        }
        let r = modify::update_status::<ResourceQuota>(&self.client, rq.namespace(), rq.name(), |fresh| {
            if fresh.meta().uid != rq.meta().uid || fresh.status.as_ref() == Some(&status) {
                return false;
            }
            fresh.status = Some(status.clone());
            true
        })
        .await;
        match r {
            Ok(_) => {
                debug!(quota = %key, used = ?status.used, "status updated");
                Ok(Next::After(self.full_resync))
            }
            Err(e) if e.is_not_found() => Ok(Next::Done),
            Err(e) => Err(error::api(format!("updating the status of resourcequota {key}"))(e)),
        }
    }
}
