//! What the scheduler reads from a pod, once per attempt: what it takes
//! from a node (requests, pod slot, host ports), the images it runs, and
//! whether it opts into cordoned or not-ready nodes.

use berth_api::pb::core::{Pod, PodSpec};

use crate::resources::{self, Resources};
use crate::taints;

/// A host port a pod holds on its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// `0.0.0.0` when the pod binds every address.
    pub ip: String,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    pub port: i32,
}

impl HostPort {
    /// Whether two pods holding these ports cannot share a node: same
    /// protocol and port, on the same address or one of them on every address.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port && self.protocol == other.protocol && (self.ip == other.ip || self.ip == ANY_IP || other.ip == ANY_IP)
    }
}

const ANY_IP: &str = "0.0.0.0";

/// The host ports a pod's containers ask for (with host networking, every
/// container port is a host port).
pub fn host_ports(spec: &PodSpec) -> Vec<HostPort> {
    let host_network = spec.host_network == Some(true);
    let mut ports = Vec::new();
    for c in &spec.containers {
        for p in &c.ports {
            let port = if p.host_port > 0 {
                p.host_port
            } else if host_network {
                p.container_port
            } else {
                0
            };
            if port <= 0 {
                continue;
            }
            ports.push(HostPort {
                ip: if p.host_ip.is_empty() { ANY_IP.into() } else { p.host_ip.clone() },
                protocol: if p.protocol.is_empty() { "TCP".into() } else { p.protocol.clone() },
                port,
            });
        }
    }
    ports
}

/// What a pod takes from its node while it is there: kept with the pod in
/// the cache, so that removing it gives back exactly what adding it took.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Account {
    /// Requests, with one pod slot.
    pub requests: Resources,
    /// CPU (millicores) and memory (bytes) for scoring, with non-zero defaults.
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    pub ports: Vec<HostPort>,
}

impl Account {
    pub fn of(spec: &PodSpec) -> Account {
        let (non_zero_cpu, non_zero_memory) = resources::pod_non_zero_requests(spec);
        Account { requests: resources::pod_requests(spec), non_zero_cpu, non_zero_memory, ports: host_ports(spec) }
    }
}

/// A pod as the filters and scores see it.
pub struct PodInfo<'a> {
    pub pod: &'a Pod,
    pub spec: &'a PodSpec,
    pub account: Account,
    /// Its containers' images, normalized (see [`normalize_image`]).
    pub images: Vec<String>,
    /// It tolerates `node.kubernetes.io/unschedulable:NoSchedule` (may go to cordoned nodes).
    pub tolerates_unschedulable: bool,
    /// It tolerates `node.kubernetes.io/not-ready:NoSchedule`.
    pub tolerates_not_ready: bool,
}

static EMPTY_SPEC: std::sync::LazyLock<PodSpec> = std::sync::LazyLock::new(PodSpec::default);

impl<'a> PodInfo<'a> {
    pub fn new(pod: &'a Pod) -> PodInfo<'a> {
        let spec = pod.spec.as_ref().unwrap_or(&EMPTY_SPEC);
        PodInfo {
            pod,
            spec,
            account: Account::of(spec),
            images: spec.containers.iter().filter(|c| !c.image.is_empty()).map(|c| normalize_image(&c.image)).collect(),
            tolerates_unschedulable: taints::tolerates_no_schedule_key(&spec.tolerations, taints::UNSCHEDULABLE_TAINT),
            tolerates_not_ready: taints::tolerates_no_schedule_key(&spec.tolerations, taints::NOT_READY_TAINT),
        }
    }
}

/// An image reference in the form nodes report it: without Docker Hub's
/// default registry prefixes, with `:latest` when it names no tag or digest.
pub fn normalize_image(image: &str) -> String {
    let short = image.strip_prefix("docker.io/library/").or_else(|| image.strip_prefix("docker.io/")).unwrap_or(image);
    let last = short.rsplit('/').next().unwrap_or(short);
    if short.contains('@') || last.contains(':') { short.to_string() } else { format!("{short}:latest") }
}

/// Whether a pod has finished for good and no longer holds anything on its node.
pub fn is_terminal(pod: &Pod) -> bool {
    pod.status.as_ref().is_some_and(|s| s.phase == "Succeeded" || s.phase == "Failed")
}

/// The node a pod is bound to ("" when none).
pub fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().map_or("", |s| s.node_name.as_str())
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::{Container, ContainerPort};

    use super::*;

    fn port(host_ip: &str, protocol: &str, host_port: i32) -> HostPort {
        HostPort { ip: host_ip.into(), protocol: protocol.into(), port: host_port }
    }

    #[test]
    fn should_conflict_on_the_same_port_and_protocol_unless_addresses_differ() {
        assert!(port("0.0.0.0", "TCP", 80).conflicts(&port("10.0.0.1", "TCP", 80)));
        assert!(port("10.0.0.1", "TCP", 80).conflicts(&port("10.0.0.1", "TCP", 80)));
        assert!(!port("10.0.0.1", "TCP", 80).conflicts(&port("10.0.0.2", "TCP", 80)));
        assert!(!port("0.0.0.0", "TCP", 80).conflicts(&port("0.0.0.0", "UDP", 80)));
        assert!(!port("0.0.0.0", "TCP", 80).conflicts(&port("0.0.0.0", "TCP", 81)));
    }

    #[test]
    fn should_collect_host_ports_with_defaults() {
        let spec = PodSpec {
            containers: vec![Container {
                ports: vec![
                    ContainerPort { host_port: 8080, container_port: 80, ..Default::default() },
                    ContainerPort { container_port: 9090, ..Default::default() },
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(host_ports(&spec), vec![port("0.0.0.0", "TCP", 8080)]);
        let host_net = PodSpec { host_network: Some(true), ..spec };
        assert_eq!(host_ports(&host_net).len(), 2, "with host networking every container port is a host port");
    }

    #[test]
    fn should_normalize_images_as_nodes_report_them() {
        assert_eq!(normalize_image("busybox"), "busybox:latest");
        assert_eq!(normalize_image("docker.io/library/busybox:1.36"), "busybox:1.36");
        assert_eq!(normalize_image("registry:5000/team/app"), "registry:5000/team/app:latest");
        assert_eq!(normalize_image("app@sha256:abc"), "app@sha256:abc");
    }
}
