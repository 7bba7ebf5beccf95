//! The filters: whether a node can take a pod at all, and if not, why, in
//! the words Kubernetes uses (`Insufficient cpu`, `node(s) had untolerated
//! taint {dedicated: db}`). They run in Kubernetes' order and stop at the
//! first that fails; the resource filter names every resource that is short.

use std::fmt;

use crate::affinity;
use crate::cache::NodeInfo;
use crate::podinfo::PodInfo;
use crate::resources::{CPU, MEMORY};
use crate::taints;

/// Why a node cannot take a pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The node's Ready condition is not True.
    NotReady,
    /// The node is cordoned.
    Unschedulable,
    /// A NoSchedule or NoExecute taint the pod does not tolerate.
    UntoleratedTaint { key: String, value: String },
    /// nodeSelector or required node affinity.
    NodeAffinity,
    /// A host port the pod wants is taken.
    HostPorts,
    /// Not enough of a resource left (`cpu`, `memory`, `example.com/gpu`).
    Insufficient(String),
    /// No pod slot left.
    TooManyPods,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotReady => f.write_str("node(s) were not ready"),
            Reason::Unschedulable => f.write_str("node(s) were unschedulable"),
            Reason::UntoleratedTaint { key, value } => write!(f, "node(s) had untolerated taint {{{key}: {value}}}"),
            Reason::NodeAffinity => f.write_str("node(s) didn't match Pod's node affinity/selector"),
            Reason::HostPorts => f.write_str("node(s) didn't have free ports for the requested pod ports"),
            Reason::Insufficient(name) => write!(f, "Insufficient {name}"),
            Reason::TooManyPods => f.write_str("Too many pods"),
        }
    }
}

/// Runs every filter; false (with the reasons pushed onto `reasons`) when
/// the node cannot take the pod.
pub fn feasible(pod: &PodInfo, node: &NodeInfo, reasons: &mut Vec<Reason>) -> bool {
    let failed = node_condition(pod, node)
        .or_else(|| taint_toleration(pod, node))
        .or_else(|| node_affinity(pod, node))
        .or_else(|| host_ports(pod, node));
    if let Some(reason) = failed {
        reasons.push(reason);
        return false;
    }
    resources_fit(pod, node, reasons)
}

/// Ready and not cordoned, unless the pod tolerates the matching taint.
pub fn node_condition(pod: &PodInfo, node: &NodeInfo) -> Option<Reason> {
    if node.unschedulable && !pod.tolerates_unschedulable {
        return Some(Reason::Unschedulable);
    }
    if !node.ready && !pod.tolerates_not_ready {
        return Some(Reason::NotReady);
    }
    None
}

/// Every NoSchedule and NoExecute taint is tolerated.
pub fn taint_toleration(pod: &PodInfo, node: &NodeInfo) -> Option<Reason> {
    taints::first_untolerated(node.taints(), &pod.spec.tolerations)
        .map(|t| Reason::UntoleratedTaint { key: t.key.clone(), value: t.value.clone() })
}

/// nodeSelector and required node affinity hold.
pub fn node_affinity(pod: &PodInfo, node: &NodeInfo) -> Option<Reason> {
    (!affinity::required_matches(pod.spec, node.labels(), &node.name)).then_some(Reason::NodeAffinity)
}

/// None of the pod's host ports is taken on the node.
pub fn host_ports(pod: &PodInfo, node: &NodeInfo) -> Option<Reason> {
    let taken = pod.account.ports.iter().any(|want| node.ports.iter().any(|held| want.conflicts(held)));
    taken.then_some(Reason::HostPorts)
}

/// The pod's requests fit in allocatable minus what the node has committed;
/// pushes a reason for every resource that does not.
pub fn resources_fit(pod: &PodInfo, node: &NodeInfo, reasons: &mut Vec<Reason>) -> bool {
    let want = &pod.account.requests;
    let (have, used) = (&node.allocatable, &node.requested);
    let before = reasons.len();
    if used.pods.saturating_add(1) > have.pods {
        reasons.push(Reason::TooManyPods);
    }
    if want.milli_cpu > 0 && used.milli_cpu.saturating_add(want.milli_cpu) > have.milli_cpu {
        reasons.push(Reason::Insufficient(CPU.into()));
    }
    if want.memory > 0 && used.memory.saturating_add(want.memory) > have.memory {
        reasons.push(Reason::Insufficient(MEMORY.into()));
    }
    for (name, amount) in &want.scalar {
        if *amount > 0 && used.scalar(name).saturating_add(*amount) > have.scalar(name) {
            reasons.push(Reason::Insufficient(name.clone()));
        }
    }
    reasons.len() == before
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use berth_api::pb::core::{ContainerPort, Pod, Taint, Toleration};

    use super::*;
    use crate::cache::Cache;
    use crate::cache::tests::{node, pod};

    fn check(p: &Pod, cache: &Cache, name: &str) -> Result<(), Vec<String>> {
        let mut reasons = Vec::new();
        if feasible(&PodInfo::new(p), cache.node(name).unwrap(), &mut reasons) {
            Ok(())
        } else {
            Err(reasons.iter().map(ToString::to_string).collect())
        }
    }

    fn one_node(n: berth_api::pb::core::Node) -> Cache {
        let mut cache = Cache::new();
        cache.set_node(Arc::new(n));
        cache
    }

    #[test]
    fn should_fit_requests_into_allocatable_minus_committed() {
        let mut cache = one_node(node("n1", "2", "4Gi"));
        assert_eq!(check(&pod("a", "", "1500m", "1Gi"), &cache, "n1"), Ok(()));
        cache.set_bound_pod("default/b", Arc::new(pod("b", "n1", "1", "3Gi")));
        assert_eq!(check(&pod("a", "", "1500m", "2Gi"), &cache, "n1"), Err(vec!["Insufficient cpu".into(), "Insufficient memory".into()]));
        assert_eq!(check(&pod("a", "", "1", "1Gi"), &cache, "n1"), Ok(()), "exactly full is a fit");
    }

    #[test]
    fn should_refuse_a_node_without_a_pod_slot() {
        let mut n = node("n1", "4", "8Gi");
        n.status.as_mut().unwrap().allocatable.insert("pods".into(), "1".into());
        let mut cache = one_node(n);
        cache.set_bound_pod("default/b", Arc::new(pod("b", "n1", "0", "0")));
        assert_eq!(check(&pod("a", "", "0", "0"), &cache, "n1"), Err(vec!["Too many pods".into()]));
    }

    #[test]
    fn should_check_extended_resources() {
        let mut p = pod("a", "", "100m", "1Mi");
        p.spec.as_mut().unwrap().containers[0].resources.as_mut().unwrap().requests.insert("example.com/gpu".into(), "1".into());
        let cache = one_node(node("n1", "4", "8Gi"));
        assert_eq!(check(&p, &cache, "n1"), Err(vec!["Insufficient example.com/gpu".into()]));
    }

    #[test]
    fn should_skip_cordoned_and_not_ready_nodes_unless_tolerated() {
        let mut n = node("n1", "4", "8Gi");
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        let cache = one_node(n.clone());
        let p = pod("a", "", "100m", "1Mi");
        assert_eq!(check(&p, &cache, "n1"), Err(vec!["node(s) were unschedulable".into()]));
        let mut tolerant = p.clone();
        tolerant.spec.as_mut().unwrap().tolerations = vec![Toleration {
            key: taints::UNSCHEDULABLE_TAINT.into(),
            operator: "Exists".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }];
        assert_eq!(check(&tolerant, &cache, "n1"), Ok(()));

        n.spec.as_mut().unwrap().unschedulable = None;
        n.status.as_mut().unwrap().conditions[0].status = "False".into();
        assert_eq!(check(&p, &one_node(n), "n1"), Err(vec!["node(s) were not ready".into()]));
    }

    #[test]
    fn should_refuse_untolerated_hard_taints_only() {
        let mut n = node("n1", "4", "8Gi");
        n.spec.as_mut().unwrap().taints = vec![
            Taint { key: "soft".into(), effect: "PreferNoSchedule".into(), ..Default::default() },
            Taint { key: "dedicated".into(), value: "db".into(), effect: "NoSchedule".into(), ..Default::default() },
        ];
        let cache = one_node(n);
        let p = pod("a", "", "100m", "1Mi");
        assert_eq!(check(&p, &cache, "n1"), Err(vec!["node(s) had untolerated taint {dedicated: db}".into()]));
        let mut tolerant = p.clone();
        tolerant.spec.as_mut().unwrap().tolerations = vec![Toleration {
            key: "dedicated".into(),
            operator: "Equal".into(),
            value: "db".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }];
        assert_eq!(check(&tolerant, &cache, "n1"), Ok(()));
    }

    #[test]
    fn should_refuse_nodes_not_matching_the_node_selector() {
        let mut n = node("n1", "4", "8Gi");
        n.metadata.as_mut().unwrap().labels.insert("disk".into(), "ssd".into());
        let cache = one_node(n);
        let mut p = pod("a", "", "100m", "1Mi");
        p.spec.as_mut().unwrap().node_selector.insert("disk".into(), "hdd".into());
        assert_eq!(check(&p, &cache, "n1"), Err(vec!["node(s) didn't match Pod's node affinity/selector".into()]));
        p.spec.as_mut().unwrap().node_selector.insert("disk".into(), "ssd".into());
        assert_eq!(check(&p, &cache, "n1"), Ok(()));
    }

    #[test]
    fn should_refuse_a_node_where_the_host_port_is_taken() {
        let mut cache = one_node(node("n1", "4", "8Gi"));
        let with_port = |name: &str, node: &str| {
            let mut p = pod(name, node, "100m", "1Mi");
            p.spec.as_mut().unwrap().containers[0].ports =
                vec![ContainerPort { host_port: 8080, container_port: 80, ..Default::default() }];
            p
        };
        assert_eq!(check(&with_port("a", ""), &cache, "n1"), Ok(()));
        cache.set_bound_pod("default/b", Arc::new(with_port("b", "n1")));
        assert_eq!(
            check(&with_port("a", ""), &cache, "n1"),
            Err(vec!["node(s) didn't have free ports for the requested pod ports".into()])
        );
    }
}
