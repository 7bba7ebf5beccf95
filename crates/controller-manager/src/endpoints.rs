//! The endpoints controller: for each Service with a selector, an Endpoints
//! object of the same name listing the addresses of its ready pods (with
//! node name and a reference to the pod) and, as notReadyAddresses, the
//! others; each service port resolved per pod (a named targetPort is looked
//! up in that pod's containers). Rewritten on every relevant pod or service
//! change, deleted with its Service.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use berth_api::Resource;
use berth_api::labels::Selector;
use berth_api::pb::core::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, ObjectReference, Pod, Service, ServicePort,
};
use berth_client::{Client, DeleteParams};
use berth_runtime::events::{Recorder, reference};
use berth_runtime::{Reader, WorkQueue, key_of};
use tracing::{debug, info};

use crate::controller::{self, Next, run_workers, split_key};
use crate::error::{self, Error, Result};
use crate::informers::{Informers, index};
use crate::{Ctx, pods};

/// The controller's name, in `--controllers`, metrics and queue names.
pub const NAME: &str = "endpoints";

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Services synced at once (`--concurrent-endpoint-syncs`).
    pub workers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { workers: 5 }
    }
}

struct Controller {
    client: Client,
    services: Reader<Service>,
    pods: Reader<Pod>,
    endpoints: Reader<Endpoints>,
    recorder: Recorder,
}

/// Registers the controller's informers and handlers; the returned future
/// runs it until the manager stops.
pub fn start(ctx: &Ctx, informers: &mut Informers, settings: Settings) -> impl Future<Output = Result<()>> + Send + 'static {
    let queue = controller::queue(NAME, &ctx.metrics);
    let services = informers.of::<Service>();
    services.index(index::NAMESPACE, index::by_namespace);
    {
        let q = queue.clone();
        services.on_add(move |s| q.add(key_of(&**s)));
        let q = queue.clone();
        services.on_update(move |_, s| q.add(key_of(&**s)));
        let q = queue.clone();
        services.on_delete(move |s| q.add(key_of(&**s)));
    }
    let svc_reader = services.reader();
    let pods = informers.of::<Pod>();
    pods.index(index::NAMESPACE, index::by_namespace);
    {
        let (q, s) = (queue.clone(), svc_reader.clone());
        pods.on_add(move |p| enqueue_services_of(&q, &s, p, None));
        let (q, s) = (queue.clone(), svc_reader.clone());
        pods.on_update(move |old, new| {
            if old.meta().resource_version != new.meta().resource_version {
                enqueue_services_of(&q, &s, new, Some(old));
            }
        });
        let (q, s) = (queue.clone(), svc_reader.clone());
        pods.on_delete(move |p| enqueue_services_of(&q, &s, p, None));
    }
    let pod_reader = pods.reader();
    let endpoints = informers.of::<Endpoints>();
    {
        // Someone else changed or removed an Endpoints we own: put it right.
        let q = queue.clone();
        endpoints.on_update(move |old, new| {
            if old.meta().resource_version != new.meta().resource_version {
                q.add(key_of(&**new));
            }
        });
        let q = queue.clone();
        endpoints.on_delete(move |e| q.add(key_of(&**e)));
    }
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        services: svc_reader,
        pods: pod_reader,
        endpoints: endpoints.reader(),
        recorder: Recorder::new(ctx.client.clone(), "endpoint-controller", &ctx.host),
    });
    let (metrics, stop) = (ctx.metrics.clone(), ctx.stop.clone());
    async move {
        c.services.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Service", source })?;
        c.pods.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Pod", source })?;
        c.endpoints.wait_until_ready().await.map_err(|source| Error::CacheSync { kind: "Endpoints", source })?;
        info!(controller = NAME, workers = settings.workers, "caches synced, starting workers");
        // Endpoints whose Service went away while nobody watched.
        for e in c.endpoints.list() {
            if c.services.get(e.namespace(), e.name()).is_none() {
                queue.add(key_of(&*e));
            }
        }
        run_workers(NAME, queue, settings.workers, metrics, stop, move |key| {
            let c = c.clone();
            async move { c.sync(&key).await }
        })
        .await;
        Ok(())
    }
}

/// Queues every service of the pod's namespace whose selector matches the
/// pod now or matched it before.
fn enqueue_services_of(q: &WorkQueue<String>, services: &Reader<Service>, pod: &Pod, old: Option<&Arc<Pod>>) {
    for s in services.by_index(index::NAMESPACE, pod.namespace()) {
        let Some(sel) = s.spec.as_ref().map(|sp| &sp.selector).filter(|m| !m.is_empty()) else { continue };
        let sel = Selector::from_map(sel);
        if sel.matches(&pod.meta().labels) || old.is_some_and(|o| sel.matches(&o.meta().labels)) {
            q.add(key_of(&*s));
        }
    }
}

impl Controller {
    async fn sync(&self, key: &str) -> Result<Next> {
        let (ns, name) = split_key(key);
        let Some(svc) = self.services.get_by_key(key) else {
            // The service is gone: so is its Endpoints.
            if self.endpoints.get_by_key(key).is_some() {
                match self.client.delete::<Endpoints>(ns, name, &DeleteParams::default()).await {
                    Ok(_) => info!(endpoints = %key, "deleted the endpoints of a deleted service"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(error::api(format!("deleting endpoints {key}"))(e)),
                }
            }
            return Ok(Next::Done);
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.selector.is_empty() {
            // Without a selector the user manages the Endpoints.
            return Ok(Next::Done);
        }
        let selector = Selector::from_map(&spec.selector);
        let mut pods: Vec<Arc<Pod>> =
            self.pods.by_index(index::NAMESPACE, ns).into_iter().filter(|p| selector.matches(&p.meta().labels)).collect();
        pods.sort_by(|a, b| a.name().cmp(b.name()));
        let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
        let subsets = subsets_for(name, &spec.ports, &pods, publish_not_ready);
        let labels = svc.meta().labels.clone();
        match self.endpoints.get_by_key(key) {
            Some(current) if current.subsets == subsets && current.meta().labels == labels => Ok(Next::Done),
            Some(current) => {
                let mut next = (*current).clone();
                next.subsets = subsets;
                next.metadata_mut().labels = labels;
                match self.client.update(next).await {
                    Ok(_) => {
                        debug!(endpoints = %key, "updated");
                        Ok(Next::Done)
                    }
                    // The cache was stale; the informer brings the new copy and a new sync.
                    Err(e) if e.is_conflict() || e.is_not_found() => Err(error::api(format!("updating endpoints {key}"))(e)),
                    Err(e) => {
                        self.recorder.warning(&reference(&*svc), "FailedToUpdateEndpoint", format!("Failed to update endpoint {key}: {e}"));
                        Err(error::api(format!("updating endpoints {key}"))(e))
                    }
                }
            }
            None => {
                let ep = Endpoints {
                    metadata: Some(ObjectMeta { name: name.into(), namespace: ns.into(), labels, ..Default::default() }),
                    subsets,
                    ..Default::default()
                };
                match self.client.create(ep).await {
                    Ok(_) => {
                        debug!(endpoints = %key, "created");
                        Ok(Next::Done)
                    }
                    Err(e) if e.is_already_exists() => Err(error::api(format!("creating endpoints {key}"))(e)),
                    // A namespace being deleted refuses new objects: nothing to do.
                    Err(e) if e.code() == tonic::Code::PermissionDenied => {
                        debug!(endpoints = %key, cause = %e, "endpoints refused");
                        Ok(Next::Done)
                    }
                    Err(e) => {
                        self.recorder.warning(&reference(&*svc), "FailedToCreateEndpoint", format!("Failed to create endpoint {key}: {e}"));
                        Err(error::api(format!("creating endpoints {key}"))(e))
                    }
                }
            }
        }
    }
}

/// A resolved port: name, number, protocol.
type PortKey = (String, i32, String);

/// The subsets for `ports` over `pods`: pods grouped by the ports they
/// resolve to, ready ones as addresses and the rest as notReadyAddresses,
/// all sorted so that equal states compare equal. A pod whose `subdomain`
/// is `service` and that has a `hostname` gives its address that hostname
/// (the name cluster DNS answers for it), as Kubernetes does.
pub fn subsets_for(service: &str, ports: &[ServicePort], pods: &[Arc<Pod>], publish_not_ready: bool) -> Vec<EndpointSubset> {
    // ports of a subset → (ready, not ready)
    let mut groups: BTreeMap<Vec<PortKey>, (Vec<EndpointAddress>, Vec<EndpointAddress>)> = BTreeMap::new();
    for pod in pods {
        let Some(ip) = pod.status.as_ref().map(|s| s.pod_ip.clone()).filter(|ip| !ip.is_empty()) else { continue };
        if pods::is_deleting(pod.metadata.as_ref()) || pods::is_terminal(pod) {
            continue;
        }
        let mut resolved: Vec<PortKey> = ports
            .iter()
            .filter_map(|sp| {
                target_port(sp, pod).map(|p| (sp.name.clone(), p, if sp.protocol.is_empty() { "TCP".into() } else { sp.protocol.clone() }))
            })
            .collect();
        if resolved.is_empty() && !ports.is_empty() {
            continue;
        }
        resolved.sort();
        let hostname = match pod.spec.as_ref() {
            Some(spec) if !spec.hostname.is_empty() && spec.subdomain == service => spec.hostname.clone(),
            _ => String::new(),
        };
        let address = EndpointAddress {
            ip,
            hostname,
            node_name: Some(pods::node_name(pod).to_string()).filter(|n| !n.is_empty()),
            target_ref: Some(ObjectReference {
                kind: "Pod".into(),
                namespace: pod.namespace().into(),
                name: pod.name().into(),
                uid: pod.meta().uid.clone(),
                ..Default::default()
            }),
        };
        let group = groups.entry(resolved).or_default();
        if publish_not_ready || pods::is_ready(pod) {
            group.0.push(address);
        } else {
            group.1.push(address);
        }
    }
    groups
        .into_iter()
        .map(|(ports, (mut ready, mut not_ready))| {
            ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            not_ready.sort_by(|a, b| a.ip.cmp(&b.ip));
            EndpointSubset {
                addresses: ready,
                not_ready_addresses: not_ready,
                ports: ports.into_iter().map(|(name, port, protocol)| EndpointPort { name, port, protocol, app_protocol: None }).collect(),
            }
        })
        .collect()
}

/// The port a service port reaches on `pod`: a number as is, a name looked
/// up among the pod's container ports with the same protocol.
fn target_port(sp: &ServicePort, pod: &Pod) -> Option<i32> {
    let target = if sp.target_port.is_empty() { sp.port.to_string() } else { sp.target_port.clone() };
    if let Ok(n) = target.parse::<i32>() {
        return Some(n);
    }
    let protocol = if sp.protocol.is_empty() { "TCP" } else { sp.protocol.as_str() };
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| &c.ports)
        .find(|p| p.name == target && (p.protocol.is_empty() && protocol == "TCP" || p.protocol == protocol))
        .map(|p| p.container_port)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::pb::core::{Container, ContainerPort, PodCondition, PodSpec, PodStatus};

    fn pod(name: &str, ip: &str, ready: bool, http_port: i32) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: Some(ObjectMeta { name: name.into(), namespace: "ns".into(), ..Default::default() }),
            spec: Some(PodSpec {
                node_name: "n1".into(),
                containers: vec![Container {
                    ports: vec![ContainerPort {
                        name: "http".into(),
                        container_port: http_port,
                        protocol: "TCP".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                pod_ip: ip.into(),
                conditions: vec![PodCondition {
                    r#type: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn should_split_ready_and_not_ready_and_resolve_named_ports_per_pod() {
        let ports =
            vec![ServicePort { name: "web".into(), port: 80, target_port: "http".into(), protocol: "TCP".into(), ..Default::default() }];
        let pods = vec![
            pod("a", "10.0.0.2", true, 8080),
            pod("b", "10.0.0.1", false, 8080),
            pod("c", "10.0.0.3", true, 9090),
            pod("d", "", true, 8080),
        ];
        let subsets = subsets_for("web", &ports, &pods, false);
        assert_eq!(subsets.len(), 2);
        let s8080 = subsets.iter().find(|s| s.ports[0].port == 8080).unwrap();
        assert_eq!(s8080.addresses.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>(), ["10.0.0.2"]);
        assert_eq!(s8080.not_ready_addresses.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>(), ["10.0.0.1"]);
        assert_eq!(s8080.addresses[0].node_name.as_deref(), Some("n1"));
        assert_eq!(s8080.addresses[0].target_ref.as_ref().unwrap().name, "a");
        let s9090 = subsets.iter().find(|s| s.ports[0].port == 9090).unwrap();
        assert_eq!(s9090.addresses[0].ip, "10.0.0.3");
    }

    #[test]
    fn should_name_an_address_by_the_pods_hostname_when_its_subdomain_is_the_service() {
        let ports = vec![ServicePort { name: "web".into(), port: 80, target_port: "8080".into(), ..Default::default() }];
        let with = |p: Arc<Pod>, hostname: &str, subdomain: &str| {
            let mut p = (*p).clone();
            if let Some(spec) = p.spec.as_mut() {
                spec.hostname = hostname.into();
                spec.subdomain = subdomain.into();
            }
            Arc::new(p)
        };
        let pods = vec![
            with(pod("a", "10.0.0.1", true, 8080), "db-0", "db"),
            with(pod("b", "10.0.0.2", true, 8080), "db-1", "other"),
            with(pod("c", "10.0.0.3", true, 8080), "", "db"),
        ];
        let subsets = subsets_for("db", &ports, &pods, false);
        let names: Vec<(&str, &str)> = subsets[0].addresses.iter().map(|a| (a.ip.as_str(), a.hostname.as_str())).collect();
        assert_eq!(names, [("10.0.0.1", "db-0"), ("10.0.0.2", ""), ("10.0.0.3", "")]);
    }
}
