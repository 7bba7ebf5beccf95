//! The service controller: a Service of type LoadBalancer gets a load
//! balancer from the [`provider`] — by default the [`host`] provider, with
//! addresses from `--lb-address-pool` — and its address in
//! `status.loadBalancer.ingress`; the load balancer is released when the
//! service is deleted or stops being a LoadBalancer.

pub mod host;
pub mod pool;
pub mod provider;

use berth_base::sync::MutexExt;
use std::collections::HashSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{LoadBalancerStatus, Node, Service, ServiceStatus};
use berth_client::Client;
use berth_runtime::events::{Recorder, reference};
use berth_runtime::{Reader, WorkQueue, key_of};
use tracing::{info, warn};

use self::pool::Pool;
use self::provider::Provider;
use crate::controller::{self, Next, run_workers};
use crate::error::{self, Error, Result};
use crate::informers::Informers;
use berth_client::modify;

use crate::Ctx;

/// The controller's name, in `--controllers`, metrics and queue names.
pub const NAME: &str = "service";

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Addresses for the host provider (`--lb-address-pool`); None: no provider.
    pub pool: Option<Pool>,
    /// Where the host provider adds addresses that are not local yet (`--lb-interface`).
    pub interface: String,
    /// Services synced at once (`--concurrent-service-syncs`).
    pub workers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { pool: None, interface: "lo".into(), workers: 1 }
    }
}

struct Controller {
    client: Client,
    services: Reader<Service>,
    nodes: Reader<Node>,
    provider: Option<Arc<dyn Provider>>,
    recorder: Recorder,
    /// Services already told that there is no provider (told once).
    warned: Mutex<HashSet<String>>,
}

fn is_lb(s: &Service) -> bool {
    s.spec.as_ref().is_some_and(|s| s.r#type == "LoadBalancer")
}

/// Registers the controller's informers; the returned future runs it until the manager stops.
pub fn start(ctx: &Ctx, informers: &mut Informers, settings: Settings) -> impl Future<Output = Result<()>> + Send + 'static {
    let provider: Option<Arc<dyn Provider>> =
        settings.pool.clone().map(|p| Arc::new(host::HostProvider::new(p, settings.interface.clone())) as Arc<dyn Provider>);
    let queue = controller::queue(NAME, &ctx.metrics);
    let services = informers.of::<Service>();
    let q = queue.clone();
    services.on_add(move |s| q.add(key_of(&**s)));
    let q = queue.clone();
    services.on_update(move |old, s| {
        if old.spec != s.spec || old.status != s.status {
            q.add(key_of(&**s));
        }
    });
    let q = queue.clone();
    services.on_delete(move |s| q.add(key_of(&**s)));
    let svc_reader = services.reader();
    let nodes = informers.of::<Node>();
    // The set of nodes to forward to changed: every load balancer is refreshed.
    let enqueue_all = {
        let (q, s) = (queue.clone(), svc_reader.clone());
        move || enqueue_lbs(&q, &s)
    };
    let e = enqueue_all.clone();
    nodes.on_add(move |_| e());
    let e = enqueue_all.clone();
    nodes.on_update(move |old, n| {
        if backend_of(old) != backend_of(n) {
            e();
        }
    });
    let e = enqueue_all;
    nodes.on_delete(move |_| e());
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        services: svc_reader,
        nodes: nodes.reader(),
        provider,
        recorder: Recorder::new(ctx.client.clone(), "service-controller", &ctx.host),
        warned: Mutex::default(),
    });
    let (metrics, stop) = (ctx.metrics.clone(), ctx.stop.clone());
    async move {
        c.services.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Service", source })?;
        c.nodes.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Node", source })?;
        match &settings.pool {
            Some(p) => info!(controller = NAME, pool = %p, interface = %settings.interface, "caches synced; host load balancer provider"),
            None => info!(controller = NAME, "caches synced; no --lb-address-pool, LoadBalancer services get no address"),
        }
        let worker = c.clone();
        run_workers(NAME, queue, settings.workers, metrics, stop, move |key| {
            let c = worker.clone();
            async move { c.sync(&key).await }
        })
        .await;
        // Our listeners end with us: free their addresses.
        if let Some(p) = &c.provider {
            for key in p.keys().await {
                let _ = p.release(&key).await;
            }
        }
        Ok(())
    }
}

fn enqueue_lbs(q: &WorkQueue<String>, services: &Reader<Service>) {
    for s in services.list() {
        if is_lb(&s) {
            q.add(key_of(&*s));
        }
    }
}

/// A node's address for load balancers, if it is ready.
fn backend_of(n: &Node) -> Option<IpAddr> {
    let status = n.status.as_ref()?;
    if !status.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True") {
        return None;
    }
    let pick = |kind: &str| status.addresses.iter().find(|a| a.r#type == kind).and_then(|a| a.address.parse().ok());
    pick("InternalIP").or_else(|| pick("ExternalIP")).or(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Next> {
        let svc = self.services.get_by_key(key);
        let Some(svc) = svc.filter(|s| is_lb(s)) else {
            return self.cleanup(key).await;
        };
        let Some(provider) = &self.provider else {
            if self.warned.lock_or_recover().insert(key.to_string()) {
                self.recorder.warning(
                    &reference(&*svc),
                    "NoLoadBalancerProvider",
                    "No load balancer provider: start the controller-manager with --lb-address-pool",
                );
            }
            return Ok(Next::Done);
        };
        let ports = svc.spec.as_ref().map(|s| s.ports.clone()).unwrap_or_default();
        if ports.iter().any(|p| p.node_port == 0 && (p.protocol.is_empty() || p.protocol == "TCP")) {
            // The apiserver allocates node ports; look again shortly.
            return Ok(Next::After(Duration::from_secs(1)));
        }
        let mut backends: Vec<IpAddr> = self.nodes.list().iter().filter_map(|n| backend_of(n)).collect();
        backends.sort();
        backends.dedup();
        if backends.is_empty() && self.nodes.is_empty() {
            // A cluster without registered nodes: this host serves the node ports itself.
            backends.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let had = provider.has(key).await;
        let ingress = match provider.ensure(key, &svc, &backends).await {
            Ok(i) => i,
            Err(e) => {
                self.recorder.warning(&reference(&*svc), "SyncLoadBalancerFailed", format!("Error syncing load balancer: {e}"));
                return Err(e);
            }
        };
        let current = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).map(|l| l.ingress.clone()).unwrap_or_default();
        if current != ingress {
            self.write_ingress(&svc, ingress.clone()).await?;
        }
        if !had {
            let ips: Vec<&str> = ingress.iter().map(|i| i.ip.as_str()).collect();
            info!(service = key, address = ?ips, provider = provider.name(), "load balancer ensured");
            self.recorder.normal(&reference(&*svc), "EnsuredLoadBalancer", format!("Ensured load balancer at {}", ips.join(", ")));
        }
        Ok(Next::Done)
    }

    /// The service is gone or no longer a LoadBalancer: release its load
    /// balancer and clear its status.
    async fn cleanup(&self, key: &str) -> Result<Next> {
        if let Some(p) = &self.provider
            && p.has(key).await
        {
            p.release(key).await?;
            if let Some(svc) = self.services.get_by_key(key) {
                self.recorder.normal(&reference(&*svc), "DeletedLoadBalancer", "Deleted load balancer");
            }
        }
        self.warned.lock_or_recover().remove(key);
        if let Some(svc) = self.services.get_by_key(key)
            && svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()).is_some_and(|l| !l.ingress.is_empty())
        {
            self.write_ingress(&svc, Vec::new()).await?;
        }
        Ok(Next::Done)
    }

    async fn write_ingress(&self, svc: &Service, ingress: Vec<berth_api::pb::core::LoadBalancerIngress>) -> Result<()> {
        let r = modify::update_status::<Service>(&self.client, svc.namespace(), svc.name(), |fresh| {
            if fresh.meta().uid != svc.meta().uid {
                return false;
            }
            let current = fresh.status.as_ref().and_then(|s| s.load_balancer.as_ref()).map(|l| l.ingress.clone()).unwrap_or_default();
            if current == ingress {
                return false;
            }
            let lb = if ingress.is_empty() { None } else { Some(LoadBalancerStatus { ingress: ingress.clone() }) };
            fresh.status = Some(ServiceStatus { load_balancer: lb });
            true
        })
        .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => {
                warn!(service = %key_of(svc), cause = %e, "cannot write the load balancer status");
                Err(error::api(format!("updating the status of service {}", key_of(svc)))(e))
            }
        }
    }
}
