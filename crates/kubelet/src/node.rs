//! The node's registration and heartbeat: the Node object with capacity,
//! allocatable, addresses, nodeInfo, images and daemon endpoints; a Lease
//! renewed every `--node-status-update-frequency` (cheap); the NodeStatus
//! written when something changed or at least every
//! `node_status_report_frequency`; the conditions Ready, MemoryPressure,
//! DiskPressure and PIDPressure; and the node's usage as annotations the
//! scheduler reads.

use berth_base::shutdown::Stop;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{
    ContainerImage, DaemonEndpoint, Lease, LeaseSpec, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, ObjectMeta,
};
use berth_api::quantity::{Quantity, parse_bytes, parse_cpu_millis};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::agent::Agent;
use crate::host::{Pressure, Thresholds, go_arch};

/// The namespace of the nodes' Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a Lease holds without renewal (Kubernetes' default).
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// The node's CPU usage of its pods, in millicores (read by the scheduler).
pub const CPU_USAGE_ANNOTATION: &str = "berth.io/cpu-usage-millis";
/// The node's memory working set of its pods, in bytes (read by the scheduler).
pub const MEMORY_USAGE_ANNOTATION: &str = "berth.io/memory-usage-bytes";

fn now() -> String {
    berth_api::time::now_rfc3339()
}

/// The node's labels as Kubernetes sets them, plus `--node-labels`.
fn node_labels(a: &Agent) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert("kubernetes.io/hostname".to_string(), a.node_name().to_string());
    l.insert("kubernetes.io/os".to_string(), "linux".to_string());
    l.insert("kubernetes.io/arch".to_string(), go_arch().to_string());
    l.extend(a.config.node_labels.clone());
    l
}

/// Capacity and allocatable (capacity less `--kube-reserved`).
fn resources(a: &Agent) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let cpu_millis = i64::from(a.host.cpus) * 1000;
    let memory = a.host.memory_bytes as i64;
    let mut capacity = BTreeMap::new();
    capacity.insert("cpu".to_string(), Quantity::from_milli(cpu_millis).to_string());
    capacity.insert("memory".to_string(), format!("{}Ki", memory / 1024));
    capacity.insert("pods".to_string(), a.config.max_pods.to_string());
    let reserved_cpu = a.config.kube_reserved.get("cpu").and_then(|c| parse_cpu_millis(c).ok()).unwrap_or(0);
    let reserved_mem = a.config.kube_reserved.get("memory").and_then(|m| parse_bytes(m).ok()).unwrap_or(0);
    let mut allocatable = capacity.clone();
    allocatable.insert("cpu".to_string(), Quantity::from_milli((cpu_millis - reserved_cpu).max(0)).to_string());
    allocatable.insert("memory".to_string(), format!("{}Ki", (memory - reserved_mem).max(0) / 1024));
    (capacity, allocatable)
}

/// The node's conditions, with transition times kept from `old` where the
/// status did not change.
fn conditions(old: &[NodeCondition], ready: Result<(), (String, String)>, p: &Pressure, t: &Thresholds) -> Vec<NodeCondition> {
    let now = now();
    let cond = |kind: &str, on: bool, reason: &str, message: String| {
        let status = if on { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c.r#type == kind && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            r#type: kind.into(),
            status: status.into(),
            last_heartbeat_time: now.clone(),
            last_transition_time: since,
            reason: reason.into(),
            message,
        }
    };
    let mem = if p.memory(t) {
        cond("MemoryPressure", true, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available".into())
    } else {
        cond("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available".into())
    };
    let disk = if p.disk(t) {
        cond("DiskPressure", true, "KubeletHasDiskPressure", "kubelet has disk pressure".into())
    } else {
        cond("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure".into())
    };
    let pid = if p.pids(t) {
        cond("PIDPressure", true, "KubeletHasInsufficientPID", "kubelet has insufficient PID available".into())
    } else {
        cond("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available".into())
    };
    let ready = match ready {
        Ok(()) => cond("Ready", true, "KubeletReady", "kubelet is posting ready status".into()),
        Err((reason, message)) => cond("Ready", false, &reason, message),
    };
    vec![mem, disk, pid, ready]
}

/// Whether two statuses differ in more than heartbeat times.
fn changed(old: &NodeStatus, new: &NodeStatus) -> bool {
    let strip = |s: &NodeStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_heartbeat_time.clear();
        }
        s
    };
    strip(old) != strip(new)
}

/// Computes and writes the node's status; keeps the Lease.
pub struct NodeAgent {
    a: Arc<Agent>,
    last_report: Option<Instant>,
    /// The last usage written to the annotations, and when.
    last_usage: Option<(u64, u64, Instant)>,
}

impl NodeAgent {
    pub fn new(a: Arc<Agent>) -> NodeAgent {
        NodeAgent { a, last_report: None, last_usage: None }
    }

    /// Why the node is not ready, if it is not.
    async fn readiness(&self) -> Result<(), (String, String)> {
        let a = &self.a;
        match tokio::time::timeout(Duration::from_secs(5), a.runtime.version()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(("KubeletNotReady".into(), format!("container runtime is down: {e}"))),
            Err(_) => return Err(("KubeletNotReady".into(), "container runtime is not answering".into())),
        }
        if a.runtime.needs_pod_cidr() {
            match a.pod_cidr() {
                None => {
                    return Err((
                        "KubeletNotReady".into(),
                        "network not ready: the node has no podCIDR yet (the node controller assigns one, or give the kubelet --pod-cidr)"
                            .into(),
                    ));
                }
                Some(c) => {
                    if let Err(e) = crate::ipam::Cidr::parse(&c) {
                        return Err(("KubeletNotReady".into(), format!("network not ready: {e}")));
                    }
                }
            }
            if let Err(e) = ensure_network(a).await {
                return Err(("KubeletNotReady".into(), format!("network not ready: {e}")));
            }
        }
        Ok(())
    }

    async fn status(&self, old: &NodeStatus) -> NodeStatus {
        let a = &self.a;
        let (capacity, allocatable) = resources(a);
        let ready = self.readiness().await;
        let pressure = Pressure::read(a.root_dir());
        let runtime_version = a.runtime.version().await.map(|v| v.version).unwrap_or_default();
        let mut images: Vec<ContainerImage> = a
            .runtime
            .list_images()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|i| !i.names.is_empty())
            .map(|i| ContainerImage { names: i.names, size_bytes: i.size_bytes })
            .collect();
        images.sort_by(|x, y| y.size_bytes.cmp(&x.size_bytes).then(x.names.cmp(&y.names)));
        images.truncate(50);
        let h = &a.host;
        NodeStatus {
            capacity,
            allocatable,
            phase: String::new(),
            conditions: conditions(&old.conditions, ready, &pressure, &a.config.eviction_hard),
            addresses: vec![
                NodeAddress { r#type: "InternalIP".into(), address: a.config.node_ip.clone() },
                NodeAddress { r#type: "Hostname".into(), address: a.node_name().into() },
            ],
            daemon_endpoints: Some(NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: i32::from(a.port) }) }),
            node_info: Some(NodeSystemInfo {
                machine_id: h.machine_id.clone(),
                system_uuid: h.system_uuid.clone(),
                boot_id: h.boot_id.clone(),
                kernel_version: h.kernel_version.clone(),
                os_image: h.os_image.clone(),
                container_runtime_version: runtime_version,
                kubelet_version: format!("v{}", env!("CARGO_PKG_VERSION")),
                kube_proxy_version: String::new(),
                operating_system: "linux".into(),
                architecture: h.architecture.clone(),
            }),
            images,
        }
    }

    /// Creates the Node (or brings an existing one up to date); retries
    /// until it succeeds or `stop` says so.
    pub async fn register(&mut self, mut stop: Stop) -> bool {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.try_register().await {
                Ok(()) => return true,
                Err(e) => warn!(node = %self.a.node_name(), cause = %e, "registering the node failed, retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                () = stop.stopped() => return false,
            }
            delay = (delay * 2).min(Duration::from_secs(7));
        }
    }

    async fn try_register(&mut self) -> Result<(), berth_client::Error> {
        let a = self.a.clone();
        let name = a.node_name().to_string();
        let existing = match a.client.get::<Node>("", &name).await {
            Ok(n) => Some(n),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let node = match existing {
            None if !a.config.register_node => {
                return Err(berth_client::Error::Api(tonic::Status::not_found(format!(
                    "node {name} does not exist and --register-node=false"
                ))));
            }
            None => {
                let node = Node {
                    metadata: Some(ObjectMeta { name: name.clone(), labels: node_labels(&a), ..Default::default() }),
                    spec: Some(NodeSpec { pod_cidr: a.config.pod_cidr.clone().unwrap_or_default(), ..Default::default() }),
                    status: Some(self.status(&NodeStatus::default()).await),
                    ..Default::default()
                };
                match a.client.create(node).await {
                    Ok(n) => {
                        info!(node = %name, "node registered");
                        n
                    }
                    Err(e) if e.is_already_exists() => a.client.get::<Node>("", &name).await?,
                    Err(e) => return Err(e),
                }
            }
            Some(mut n) => {
                // Bring labels and (when nothing assigned one) the podCIDR up to date.
                let mut want = n.clone();
                want.metadata_mut().labels.extend(node_labels(&a));
                let spec = want.spec.get_or_insert_with(Default::default);
                if spec.pod_cidr.is_empty()
                    && let Some(c) = &a.config.pod_cidr
                {
                    spec.pod_cidr = c.clone();
                }
                if want != n {
                    n = a.client.update(want).await?;
                }
                info!(node = %name, "node already registered, updating it");
                n
            }
        };
        self.write_status(node).await?;
        Ok(())
    }

    async fn write_status(&mut self, mut node: Node) -> Result<Node, berth_client::Error> {
        let old = node.status.clone().unwrap_or_default();
        let status = self.status(&old).await;
        node.status = Some(status);
        node.metadata_mut().resource_version.clear();
        let n = self.a.client.update_status(node).await?;
        self.a.metrics.node_status_updates.inc();
        self.last_report = Some(Instant::now());
        Ok(n)
    }

    /// Renews the Lease, creating it if needed.
    async fn renew_lease(&self) -> Result<(), berth_client::Error> {
        let a = &self.a;
        let name = a.node_name();
        let now = berth_api::time::now_rfc3339_micros();
        match a.client.get::<Lease>(LEASE_NAMESPACE, name).await {
            Ok(mut lease) => {
                let spec = lease.spec.get_or_insert_with(Default::default);
                spec.holder_identity = Some(name.to_string());
                spec.lease_duration_seconds = Some(LEASE_DURATION_SECONDS);
                spec.renew_time = now;
                a.client.update(lease).await?;
            }
            Err(e) if e.is_not_found() => {
                let lease = Lease {
                    metadata: Some(ObjectMeta { name: name.into(), namespace: LEASE_NAMESPACE.into(), ..Default::default() }),
                    spec: Some(LeaseSpec {
                        holder_identity: Some(name.into()),
                        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
                        acquire_time: now.clone(),
                        renew_time: now,
                        lease_transitions: Some(0),
                    }),
                    ..Default::default()
                };
                a.client.create(lease).await?;
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Writes the node's usage annotations when they moved noticeably (or a minute passed).
    async fn report_usage(&mut self) -> Result<(), berth_client::Error> {
        let a = self.a.clone();
        let snap = a.stats.latest();
        if snap.timestamp.is_none() {
            return Ok(());
        }
        let cpu_millis = snap.cpu_nano_cores / 1_000_000;
        let mem = snap.memory_working_set_bytes;
        if let Some((c, m, at)) = self.last_usage {
            let moved = c.abs_diff(cpu_millis) > 10.max(c / 10) || m.abs_diff(mem) > (16 << 20).max(m / 10);
            if !moved && at.elapsed() < a.config.node_status_report_frequency {
                return Ok(());
            }
        }
        for _ in 0..3 {
            let mut node = a.client.get::<Node>("", a.node_name()).await?;
            let ann = &mut node.metadata_mut().annotations;
            ann.insert(CPU_USAGE_ANNOTATION.into(), cpu_millis.to_string());
            ann.insert(MEMORY_USAGE_ANNOTATION.into(), mem.to_string());
            match a.client.update(node).await {
                Ok(_) => {
                    self.last_usage = Some((cpu_millis, mem, Instant::now()));
                    return Ok(());
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// One heartbeat: the Lease, and the status if it changed or is due.
    async fn heartbeat(&mut self) {
        let a = self.a.clone();
        let result = match self.renew_lease().await {
            Ok(()) => "success",
            Err(e) => {
                warn!(node = %a.node_name(), cause = %e, "renewing the node's lease failed");
                "failure"
            }
        };
        a.metrics.lease_renewals.get_or_create(&crate::metrics::ResultLabels { result: result.into() }).inc();
        let node = match a.client.get::<Node>("", a.node_name()).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                // Someone deleted the Node: register it again.
                warn!(node = %a.node_name(), "the node was deleted, registering it again");
                if let Err(e) = self.try_register().await {
                    warn!(cause = %e, "registering the node again failed");
                }
                return;
            }
            Err(e) => {
                warn!(node = %a.node_name(), cause = %e, "reading the node failed");
                return;
            }
        };
        let old = node.status.clone().unwrap_or_default();
        let new = self.status(&old).await;
        let due = self.last_report.is_none_or(|t| t.elapsed() >= a.config.node_status_report_frequency);
        if changed(&old, &new) || due {
            debug!(node = %a.node_name(), due, "writing the node status");
            let mut next = node.clone();
            next.status = Some(new);
            next.metadata_mut().resource_version.clear();
            match a.client.update_status(next).await {
                Ok(_) => {
                    a.metrics.node_status_updates.inc();
                    self.last_report = Some(Instant::now());
                }
                Err(e) => warn!(node = %a.node_name(), cause = %e, "writing the node status failed"),
            }
        }
        if let Err(e) = self.report_usage().await {
            debug!(cause = %e, "writing the node's usage failed");
        }
    }

    /// Heartbeats every `--node-status-update-frequency` (sooner when the
    /// Node changes, e.g. gets its podCIDR) until `stop`.
    pub async fn run(mut self, mut stop: Stop) {
        loop {
            self.heartbeat().await;
            tokio::select! {
                _ = tokio::time::sleep(self.a.config.node_status_update_frequency) => {}
                _ = self.a.node_changed.notified() => {}
                () = stop.stopped() => return,
            }
        }
    }
}

/// Makes sure the cluster's bridge network exists.
pub async fn ensure_network(a: &Agent) -> Result<String, crate::runtime::Error> {
    let cidr =
        crate::ipam::Cidr::parse(&a.config.cluster_cidr).map_err(|e| crate::runtime::Error::Engine(format!("--cluster-cidr: {e}")))?;
    a.runtime.ensure_network(&a.config.cluster_network, &cidr.to_string(), &cidr.first_host().to_string()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_keep_transition_times_and_say_why_not_ready() {
        let p = Pressure {
            memory_available_bytes: 1 << 40,
            memory_total_bytes: 1 << 41,
            disk_available_bytes: 50,
            disk_capacity_bytes: 100,
            threads: 10,
            pid_max: 1000,
        };
        let t = Thresholds::default();
        let first = conditions(&[], Err(("KubeletNotReady".into(), "network not ready: no podCIDR".into())), &p, &t);
        let ready = first.iter().find(|c| c.r#type == "Ready").unwrap();
        assert_eq!(ready.status, "False");
        assert!(ready.message.contains("podCIDR"));
        let mut old = first.clone();
        for c in &mut old {
            c.last_transition_time = "2020-01-01T00:00:00Z".into();
        }
        let second = conditions(&old, Err(("KubeletNotReady".into(), "x".into())), &p, &t);
        assert!(second.iter().all(|c| c.last_transition_time == "2020-01-01T00:00:00Z"));
        let third = conditions(&old, Ok(()), &p, &t);
        let ready = third.iter().find(|c| c.r#type == "Ready").unwrap();
        assert_eq!(ready.status, "True");
        assert_ne!(ready.last_transition_time, "2020-01-01T00:00:00Z");
    }

    #[test]
    fn should_see_pressure_at_kubernetes_thresholds() {
        let t = Thresholds::default();
        let mut p = Pressure {
            memory_available_bytes: 50 << 20,
            memory_total_bytes: 1 << 30,
            disk_available_bytes: 5,
            disk_capacity_bytes: 100,
            threads: 950,
            pid_max: 1000,
        };
        assert!(p.memory(&t) && p.disk(&t) && p.pids(&t));
        p = Pressure {
            memory_available_bytes: 1 << 30,
            memory_total_bytes: 1 << 31,
            disk_available_bytes: 50,
            disk_capacity_bytes: 100,
            threads: 10,
            pid_max: 1000,
        };
        assert!(!p.memory(&t) && !p.disk(&t) && !p.pids(&t));
        let lenient = Thresholds::parse("nodefs.available<1%").unwrap();
        p.disk_available_bytes = 5;
        assert!(!p.disk(&lenient));
    }
}
