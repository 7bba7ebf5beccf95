//! The scheduler's own view of every node: what it offers and what it has
//! committed, counting bound pods and pods assumed onto it whose binding is
//! not confirmed yet, so that bindings in flight never double-book a node.
//! Kept up to date incrementally from the informers and the scheduler's own
//! decisions.

use std::collections::HashMap;
use std::sync::Arc;

use berth_api::Resource;
use berth_api::pb::core::{Node, Pod, Taint};

use crate::podinfo::{self, Account, HostPort};
use crate::resources::{self, Resources};

/// Node annotation where the kubelet reports the CPU its pods really use.
pub const CPU_USAGE_ANNOTATION: &str = "berth.io/cpu-usage-millis";
/// Node annotation where the kubelet reports the memory its pods really use.
pub const MEMORY_USAGE_ANNOTATION: &str = "berth.io/memory-usage-bytes";

/// A pod the cache counts on a node.
#[derive(Debug, Clone)]
pub struct PlacedPod {
    pub pod: Arc<Pod>,
    pub account: Account,
    /// Placed by this scheduler, binding not yet seen through the informer.
    pub assumed: bool,
}

/// What a kubelet last reported its node really uses, and what the pods
/// on it requested at that moment: pods placed since then are not in the
/// report yet, so their requests are added to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub non_zero_cpu_at_report: i64,
    pub non_zero_memory_at_report: i64,
}

/// One node and what it has committed.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    /// None while pods are known to be bound to a node the informer has not
    /// delivered (or has deleted): such a node is never a candidate.
    pub node: Option<Arc<Node>>,
    pub allocatable: Resources,
    /// The requests of the pods on the node, assumed ones included.
    pub requested: Resources,
    /// The same with non-zero defaults, for scoring.
    pub non_zero_cpu: i64,
    pub non_zero_memory: i64,
    /// `Ready` condition is `True`.
    pub ready: bool,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    /// Images present on the node (normalized name → size in bytes).
    pub images: HashMap<String, i64>,
    pub usage: Option<Usage>,
    /// Host ports held by the pods on the node.
    pub ports: Vec<HostPort>,
    pub pods: HashMap<String, PlacedPod>,
}

static NO_TAINTS: Vec<Taint> = Vec::new();
static NO_LABELS: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();

impl NodeInfo {
    fn empty(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_string(),
            node: None,
            allocatable: Resources::default(),
            requested: Resources::default(),
            non_zero_cpu: 0,
            non_zero_memory: 0,
            ready: false,
            unschedulable: false,
            images: HashMap::new(),
            usage: None,
            ports: Vec::new(),
            pods: HashMap::new(),
        }
    }

    /// A node with nothing on it (for tests and benchmarks of the filters).
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut info = NodeInfo::empty(node.name());
        info.set_node(node);
        info
    }

    pub fn taints(&self) -> &[Taint] {
        self.node.as_ref().and_then(|n| n.spec.as_ref()).map_or(&NO_TAINTS, |s| &s.taints)
    }

    pub fn labels(&self) -> &std::collections::BTreeMap<String, String> {
        self.node.as_ref().and_then(|n| n.metadata.as_ref()).map_or(&NO_LABELS, |m| &m.labels)
    }

    /// Reads what the scheduler needs from a new version of the node.
    fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = resources::node_allocatable(&node);
        let status = node.status.as_ref();
        self.ready = status.is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"));
        self.unschedulable = node.spec.as_ref().is_some_and(|s| s.unschedulable == Some(true));
        self.images.clear();
        for image in status.map(|s| s.images.as_slice()).unwrap_or_default() {
            for name in &image.names {
                let size = self.images.entry(podinfo::normalize_image(name)).or_insert(0);
                *size = (*size).max(image.size_bytes);
            }
        }
        let annotation = |key: &str| node.meta().annotations.get(key).and_then(|v| v.trim().parse::<i64>().ok());
        let reported = match (annotation(CPU_USAGE_ANNOTATION), annotation(MEMORY_USAGE_ANNOTATION)) {
            (None, None) => None,
            (cpu, memory) => Some((cpu.unwrap_or(0).max(0), memory.unwrap_or(0).max(0))),
        };
        self.usage = match (reported, self.usage) {
            (None, _) => None,
            // The same report again: the pods placed since still count on top of it.
            (Some((cpu, memory)), Some(u)) if u.cpu_millis == cpu && u.memory_bytes == memory => Some(u),
            (Some((cpu, memory)), _) => Some(Usage {
                cpu_millis: cpu,
                memory_bytes: memory,
                non_zero_cpu_at_report: self.non_zero_cpu,
                non_zero_memory_at_report: self.non_zero_memory,
            }),
        };
        self.node = Some(node);
    }

    /// Adds a pod's account to the node's sums (the pod must not be there yet).
    pub fn add_pod(&mut self, key: String, pod: Arc<Pod>, assumed: bool) {
        let account = Account::of(pod.spec.as_ref().unwrap_or(&Default::default()));
        self.requested.add(&account.requests);
        self.non_zero_cpu = self.non_zero_cpu.saturating_add(account.non_zero_cpu);
        self.non_zero_memory = self.non_zero_memory.saturating_add(account.non_zero_memory);
        self.ports.extend(account.ports.iter().cloned());
        self.pods.insert(key, PlacedPod { pod, account, assumed });
    }

    fn remove_pod(&mut self, key: &str) -> Option<PlacedPod> {
        let placed = self.pods.remove(key)?;
        let a = &placed.account;
        self.requested.sub(&a.requests);
        self.non_zero_cpu = self.non_zero_cpu.saturating_sub(a.non_zero_cpu);
        self.non_zero_memory = self.non_zero_memory.saturating_sub(a.non_zero_memory);
        for p in &a.ports {
            if let Some(i) = self.ports.iter().position(|x| x == p) {
                self.ports.swap_remove(i);
            }
        }
        Some(placed)
    }

    /// Real usage predicted for the node: the last report plus the
    /// (non-zero) requests of the pods placed since. None without a report.
    pub fn predicted_usage(&self) -> Option<(i64, i64)> {
        let u = self.usage?;
        let cpu = u.cpu_millis + (self.non_zero_cpu - u.non_zero_cpu_at_report).max(0);
        let memory = u.memory_bytes + (self.non_zero_memory - u.non_zero_memory_at_report).max(0);
        Some((cpu, memory))
    }
}

/// What a node update changed, for deciding whether to retry pods that
/// did not fit anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeChange {
    Added,
    /// A change that may let a pod fit (capacity, labels, taints, readiness, cordon).
    MayHelp,
    /// A change no filter looks at (a heartbeat).
    Irrelevant,
}

/// Every node, indexed by name, with the pods placed on each.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    /// Pod key → the node it is placed on.
    placed: HashMap<String, String>,
    /// Normalized image name → how many nodes have it.
    image_nodes: HashMap<String, usize>,
    /// Nodes with a Node object (not only pods waiting for one).
    real_nodes: usize,
    assumed: usize,
}

impl Cache {
    pub fn new() -> Cache {
        Cache::default()
    }

    /// Every node entry, in a stable order between changes; entries
    /// without a Node object must be skipped.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// Nodes known through the informer.
    pub fn node_count(&self) -> usize {
        self.real_nodes
    }

    /// Pods placed on nodes, assumed ones included.
    pub fn pod_count(&self) -> usize {
        self.placed.len()
    }

    /// Pods placed by this scheduler whose binding is not confirmed yet.
    pub fn assumed_count(&self) -> usize {
        self.assumed
    }

    /// How many nodes report having this (normalized) image.
    pub fn nodes_with_image(&self, image: &str) -> usize {
        self.image_nodes.get(image).copied().unwrap_or(0)
    }

    fn entry(&mut self, name: &str) -> &mut NodeInfo {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.nodes.push(NodeInfo::empty(name));
                self.index.insert(name.to_string(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[i]
    }

    fn count_images(&mut self, images: &HashMap<String, i64>, add: bool) {
        for name in images.keys() {
            if add {
                *self.image_nodes.entry(name.clone()).or_insert(0) += 1;
            } else if let Some(n) = self.image_nodes.get_mut(name) {
                *n -= 1;
                if *n == 0 {
                    self.image_nodes.remove(name);
                }
            }
        }
    }

    /// Adds or updates a node.
    pub fn set_node(&mut self, node: Arc<Node>) -> NodeChange {
        let name = node.name().to_string();
        let old_images = std::mem::take(&mut self.entry(&name).images);
        self.count_images(&old_images, false);
        let info = self.entry(&name);
        let before = (info.allocatable.clone(), info.ready, info.unschedulable);
        let old = info.node.take();
        info.set_node(node);
        let change = match &old {
            None => NodeChange::Added,
            Some(old) => {
                let old_taints = old.spec.as_ref().map_or(NO_TAINTS.as_slice(), |s| s.taints.as_slice());
                let may_help = before != (info.allocatable.clone(), info.ready, info.unschedulable)
                    || info.taints() != old_taints
                    || info.labels() != &old.meta().labels;
                if may_help { NodeChange::MayHelp } else { NodeChange::Irrelevant }
            }
        };
        let images = info.images.clone();
        self.count_images(&images, true);
        if old.is_none() {
            self.real_nodes += 1;
        }
        change
    }

    /// Removes a node; its pods stay counted until they are deleted.
    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.index.get(name) else { return };
        if self.nodes[i].node.take().is_some() {
            self.real_nodes -= 1;
        }
        let images = std::mem::take(&mut self.nodes[i].images);
        self.count_images(&images, false);
        self.nodes[i].usage = None;
        if self.nodes[i].pods.is_empty() {
            self.drop_entry(name);
        }
    }

    fn drop_entry(&mut self, name: &str) {
        let Some(i) = self.index.remove(name) else { return };
        self.nodes.swap_remove(i);
        if i < self.nodes.len() {
            let moved = self.nodes[i].name.clone();
            self.index.insert(moved, i);
        }
    }

    /// Records a pod the informer reports bound to a node: confirms it if
    /// it was assumed there, moves it if it was assumed elsewhere, and
    /// stops counting it once it has finished.
    pub fn set_bound_pod(&mut self, key: &str, pod: Arc<Pod>) {
        if podinfo::is_terminal(&pod) {
            self.remove_pod(key);
            return;
        }
        let node = podinfo::node_name(&pod).to_string();
        match self.placed.get(key) {
            Some(current) if *current == node => {
                let mut confirmed = false;
                if let Some(p) = self.entry(&node).pods.get_mut(key) {
                    confirmed = p.assumed;
                    p.assumed = false;
                    p.pod = pod;
                }
                if confirmed {
                    self.assumed -= 1;
                }
            }
            _ => {
                self.remove_pod(key);
                self.entry(&node).add_pod(key.to_string(), pod, false);
                self.placed.insert(key.to_string(), node);
            }
        }
    }

    /// Stops counting a pod (deleted, finished, or its assumption forgotten).
    pub fn remove_pod(&mut self, key: &str) {
        let Some(node) = self.placed.remove(key) else { return };
        let Some(&i) = self.index.get(&node) else { return };
        if let Some(p) = self.nodes[i].remove_pod(key)
            && p.assumed
        {
            self.assumed -= 1;
        }
        if self.nodes[i].node.is_none() && self.nodes[i].pods.is_empty() {
            self.drop_entry(&node);
        }
    }

    /// Counts a pod on `node` before its binding is confirmed.
    pub fn assume(&mut self, key: &str, pod: Arc<Pod>, node: &str) {
        self.remove_pod(key);
        self.entry(node).add_pod(key.to_string(), pod, true);
        self.placed.insert(key.to_string(), node.to_string());
        self.assumed += 1;
    }

    /// Undoes [`Cache::assume`] after a failed binding; a pod whose binding
    /// the informer has confirmed in the meantime stays.
    pub fn forget(&mut self, key: &str) {
        if self.is_assumed(key) {
            self.remove_pod(key);
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.placed.get(key).and_then(|n| self.node(n)).and_then(|info| info.pods.get(key)).is_some_and(|p| p.assumed)
    }

    /// Whether the pod is counted on some node (bound or assumed).
    pub fn is_placed(&self, key: &str) -> bool {
        self.placed.contains_key(key)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use berth_api::pb::core::{
        Container, ContainerPort, NodeCondition, NodeSpec, NodeStatus, ObjectMeta, PodSpec, PodStatus, ResourceRequirements,
    };

    use super::*;

    pub fn node(name: &str, cpu: &str, memory: &str) -> Node {
        Node {
            metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: [("cpu", cpu), ("memory", memory), ("pods", "110")]
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                conditions: vec![NodeCondition { r#type: "Ready".into(), status: "True".into(), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub fn pod(name: &str, node: &str, cpu: &str, memory: &str) -> Pod {
        Pod {
            metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
            spec: Some(PodSpec {
                node_name: node.into(),
                containers: vec![Container {
                    name: "c".into(),
                    image: "busybox".into(),
                    resources: Some(ResourceRequirements {
                        requests: [("cpu", cpu), ("memory", memory)].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn should_count_assumed_pods_until_forgotten() {
        let mut cache = Cache::new();
        cache.set_node(Arc::new(node("n1", "4", "8Gi")));
        cache.assume("default/a", Arc::new(pod("a", "", "1", "1Gi")), "n1");
        let n = cache.node("n1").unwrap();
        assert_eq!((n.requested.milli_cpu, n.requested.memory, n.requested.pods), (1000, 1 << 30, 1));
        assert_eq!(cache.assumed_count(), 1);
        cache.forget("default/a");
        assert_eq!(cache.node("n1").unwrap().requested, Resources::default());
        assert_eq!(cache.assumed_count(), 0);
    }

    #[test]
    fn should_confirm_an_assumed_pod_without_counting_it_twice() {
        let mut cache = Cache::new();
        cache.set_node(Arc::new(node("n1", "4", "8Gi")));
        cache.assume("default/a", Arc::new(pod("a", "", "1", "1Gi")), "n1");
        cache.set_bound_pod("default/a", Arc::new(pod("a", "n1", "1", "1Gi")));
        assert_eq!(cache.node("n1").unwrap().requested.milli_cpu, 1000);
        assert!(!cache.is_assumed("default/a"));
        cache.forget("default/a");
        assert_eq!(cache.node("n1").unwrap().requested.milli_cpu, 1000, "a confirmed pod is not forgotten");
    }

    #[test]
    fn should_move_a_pod_assumed_on_one_node_but_bound_to_another() {
        let mut cache = Cache::new();
        cache.set_node(Arc::new(node("n1", "4", "8Gi")));
        cache.set_node(Arc::new(node("n2", "4", "8Gi")));
        cache.assume("default/a", Arc::new(pod("a", "", "1", "1Gi")), "n1");
        cache.set_bound_pod("default/a", Arc::new(pod("a", "n2", "1", "1Gi")));
        assert_eq!(cache.node("n1").unwrap().requested.milli_cpu, 0);
        assert_eq!(cache.node("n2").unwrap().requested.milli_cpu, 1000);
        assert_eq!(cache.assumed_count(), 0);
    }

    #[test]
    fn should_stop_counting_finished_pods() {
        let mut cache = Cache::new();
        cache.set_node(Arc::new(node("n1", "4", "8Gi")));
        let mut p = pod("a", "n1", "1", "1Gi");
        cache.set_bound_pod("default/a", Arc::new(p.clone()));
        p.status = Some(PodStatus { phase: "Succeeded".into(), ..Default::default() });
        cache.set_bound_pod("default/a", Arc::new(p));
        assert_eq!(cache.node("n1").unwrap().requested.milli_cpu, 0);
        assert_eq!(cache.pod_count(), 0);
    }

    #[test]
    fn should_keep_pods_of_a_node_seen_later_or_removed() {
        let mut cache = Cache::new();
        cache.set_bound_pod("default/a", Arc::new(pod("a", "n1", "1", "1Gi")));
        assert_eq!(cache.node_count(), 0);
        assert!(cache.node("n1").unwrap().node.is_none());
        assert_eq!(cache.set_node(Arc::new(node("n1", "4", "8Gi"))), NodeChange::Added);
        assert_eq!(cache.node("n1").unwrap().requested.milli_cpu, 1000);
        cache.remove_node("n1");
        assert_eq!(cache.node_count(), 0);
        assert!(cache.node("n1").is_some(), "kept while a pod is counted on it");
        cache.remove_pod("default/a");
        assert!(cache.node("n1").is_none());
    }

    #[test]
    fn should_release_host_ports_with_the_pod() {
        let mut cache = Cache::new();
        cache.set_node(Arc::new(node("n1", "4", "8Gi")));
        let mut p = pod("a", "n1", "1", "1Gi");
        p.spec.as_mut().unwrap().containers[0].ports = vec![ContainerPort { host_port: 80, container_port: 80, ..Default::default() }];
        cache.set_bound_pod("default/a", Arc::new(p));
        assert_eq!(cache.node("n1").unwrap().ports.len(), 1);
        cache.remove_pod("default/a");
        assert!(cache.node("n1").unwrap().ports.is_empty());
    }

    #[test]
    fn should_tell_heartbeats_from_changes_that_may_help() {
        let mut cache = Cache::new();
        let mut n = node("n1", "4", "8Gi");
        cache.set_node(Arc::new(n.clone()));
        n.status.as_mut().unwrap().conditions[0].last_heartbeat_time = "2024-01-01T00:00:00Z".into();
        assert_eq!(cache.set_node(Arc::new(n.clone())), NodeChange::Irrelevant);
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        assert_eq!(cache.set_node(Arc::new(n.clone())), NodeChange::MayHelp);
        n.status.as_mut().unwrap().allocatable.insert("cpu".into(), "8".into());
        assert_eq!(cache.set_node(Arc::new(n)), NodeChange::MayHelp);
    }

    #[test]
    fn should_add_requests_placed_since_the_last_usage_report() {
        let mut cache = Cache::new();
        let mut n = node("n1", "4", "8Gi");
        n.metadata.as_mut().unwrap().annotations = [(CPU_USAGE_ANNOTATION, "3000"), (MEMORY_USAGE_ANNOTATION, "1073741824")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        cache.set_node(Arc::new(n.clone()));
        assert_eq!(cache.node("n1").unwrap().predicted_usage(), Some((3000, 1 << 30)));
        cache.assume("default/a", Arc::new(pod("a", "", "500m", "1Gi")), "n1");
        assert_eq!(cache.node("n1").unwrap().predicted_usage(), Some((3500, 2 << 30)));
        // The same report again (a heartbeat) keeps counting the pod on top.
        cache.set_node(Arc::new(n.clone()));
        assert_eq!(cache.node("n1").unwrap().predicted_usage(), Some((3500, 2 << 30)));
        // A new report includes it.
        n.metadata.as_mut().unwrap().annotations.insert(CPU_USAGE_ANNOTATION.into(), "3600".into());
        cache.set_node(Arc::new(n));
        assert_eq!(cache.node("n1").unwrap().predicted_usage(), Some((3600, 1 << 30)));
    }

    #[test]
    fn should_count_nodes_per_image() {
        let mut cache = Cache::new();
        let mut n = node("n1", "4", "8Gi");
        n.status.as_mut().unwrap().images =
            vec![berth_api::pb::core::ContainerImage { names: vec!["busybox:latest".into()], size_bytes: 5 << 20 }];
        cache.set_node(Arc::new(n.clone()));
        cache.set_node(Arc::new(n));
        assert_eq!(cache.nodes_with_image("busybox:latest"), 1, "an update does not count the node twice");
        cache.remove_node("n1");
        assert_eq!(cache.nodes_with_image("busybox:latest"), 0);
    }
}
