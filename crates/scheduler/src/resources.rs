//! Resource amounts the scheduler adds up: what a pod requests (with
//! Kubernetes' init-container rule and non-zero defaults) and what a node
//! can give (allocatable, else capacity).

use std::collections::BTreeMap;

use berth_api::pb::core::{Container, Node, PodSpec};
use berth_api::quantity::{Quantity, parse_cpu_millis};

/// CPU a container without a CPU request is taken to use, for scoring
/// only (Kubernetes' `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory a container without a memory request is taken to use, for
/// scoring only (Kubernetes' `DefaultMemoryRequest`, 200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;
/// Pod slots of a node that reports none (the kubelet's `--max-pods` default).
pub const DEFAULT_MAX_PODS: i64 = 110;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const PODS: &str = "pods";

/// An amount of every resource the scheduler tracks. CPU is in millicores,
/// memory in bytes, pods in slots, other resources (`ephemeral-storage`,
/// extended resources such as `example.com/gpu`) in their base unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub pods: i64,
    /// Other resources by name, sorted, without zero entries.
    pub scalar: Vec<(String, i64)>,
}

impl Resources {
    /// The amount of an "other" resource (0 when absent).
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.iter().find(|(n, _)| n == name).map_or(0, |(_, v)| *v)
    }

    fn scalar_mut(&mut self, name: &str) -> &mut i64 {
        let pos = match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(p) => p,
            Err(p) => {
                self.scalar.insert(p, (name.to_string(), 0));
                p
            }
        };
        &mut self.scalar[pos].1
    }

    /// Sets one resource by its API name.
    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            CPU => self.milli_cpu = value,
            MEMORY => self.memory = value,
            PODS => self.pods = value,
            _ => *self.scalar_mut(name) = value,
        }
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.pods = self.pods.saturating_add(other.pods);
        for (name, v) in &other.scalar {
            let s = self.scalar_mut(name);
            *s = s.saturating_add(*v);
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.pods = self.pods.saturating_sub(other.pods);
        for (name, v) in &other.scalar {
            let s = self.scalar_mut(name);
            *s = s.saturating_sub(*v);
        }
        self.scalar.retain(|(_, v)| *v != 0);
    }

    /// Raises each resource to at least `other`'s amount.
    fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.pods = self.pods.max(other.pods);
        for (name, v) in &other.scalar {
            let s = self.scalar_mut(name);
            *s = (*s).max(*v);
        }
    }

    /// Reads a `requests`/`allocatable`-style map. Values the API would
    /// not have accepted count as zero.
    pub fn from_map(map: &BTreeMap<String, String>) -> Resources {
        let mut r = Resources::default();
        for (name, value) in map {
            if let Some(v) = parse_amount(name, value).filter(|v| *v != 0) {
                r.set(name, v);
            }
        }
        r
    }
}

/// One resource's amount in its base unit: millicores for `cpu`, whole
/// units (bytes, counts) for everything else, rounded up.
pub fn parse_amount(name: &str, value: &str) -> Option<i64> {
    if name == CPU { parse_cpu_millis(value).ok() } else { Quantity::parse(value).ok().map(|q| q.value()) }
}

/// What a pod asks of a node: the sum of its containers' requests, or the
/// largest init container's when that is more (init containers run one at
/// a time, before the others), and one pod slot.
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut sum = Resources::default();
    for c in &spec.containers {
        sum.add(&container_requests(c));
    }
    for c in &spec.init_containers {
        sum.max_with(&container_requests(c));
    }
    sum.pods = 1;
    sum
}

/// CPU (millicores) and memory (bytes) of a pod for scoring: like
/// [`pod_requests`], but a container that requests no CPU or no memory
/// counts [`DEFAULT_MILLI_CPU_REQUEST`] / [`DEFAULT_MEMORY_REQUEST`], so that
/// pods without requests still spread.
pub fn pod_non_zero_requests(spec: &PodSpec) -> (i64, i64) {
    let non_zero = |c: &Container| {
        let requests = c.resources.as_ref().map(|r| &r.requests);
        let get = |name: &str, default: i64| match requests.and_then(|r| r.get(name)) {
            Some(v) => parse_amount(name, v).unwrap_or(0),
            None => default,
        };
        (get(CPU, DEFAULT_MILLI_CPU_REQUEST), get(MEMORY, DEFAULT_MEMORY_REQUEST))
    };
    let (mut cpu, mut memory) = (0i64, 0i64);
    for c in &spec.containers {
        let (c, m) = non_zero(c);
        cpu = cpu.saturating_add(c);
        memory = memory.saturating_add(m);
    }
    for c in &spec.init_containers {
        let (c, m) = non_zero(c);
        cpu = cpu.max(c);
        memory = memory.max(m);
    }
    (cpu, memory)
}

fn container_requests(c: &Container) -> Resources {
    c.resources.as_ref().map(|r| Resources::from_map(&r.requests)).unwrap_or_default()
}

/// What a node can give to pods: each resource from `status.allocatable`,
/// else from `status.capacity`; pod slots default to [`DEFAULT_MAX_PODS`].
pub fn node_allocatable(node: &Node) -> Resources {
    let Some(status) = &node.status else {
        return Resources { pods: DEFAULT_MAX_PODS, ..Default::default() };
    };
    let mut r = Resources::from_map(&status.capacity);
    for (name, value) in &status.allocatable {
        if let Some(v) = parse_amount(name, value) {
            r.set(name, v);
        }
    }
    r.scalar.retain(|(_, v)| *v != 0);
    if !status.capacity.contains_key(PODS) && !status.allocatable.contains_key(PODS) {
        r.pods = DEFAULT_MAX_PODS;
    }
    r
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::{NodeStatus, ResourceRequirements};

    use super::*;

    fn container(requests: &[(&str, &str)]) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: requests.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn should_sum_container_requests_and_count_one_pod() {
        let spec = PodSpec {
            containers: vec![container(&[("cpu", "250m"), ("memory", "64Mi")]), container(&[("cpu", "1"), ("example.com/gpu", "1")])],
            ..Default::default()
        };
        let r = pod_requests(&spec);
        assert_eq!((r.milli_cpu, r.memory, r.pods), (1250, 64 << 20, 1));
        assert_eq!(r.scalar("example.com/gpu"), 1);
    }

    #[test]
    fn should_take_the_largest_init_container_when_it_asks_more() {
        let spec = PodSpec {
            init_containers: vec![container(&[("cpu", "2")]), container(&[("memory", "1Gi")])],
            containers: vec![container(&[("cpu", "500m"), ("memory", "128Mi")])],
            ..Default::default()
        };
        let r = pod_requests(&spec);
        assert_eq!((r.milli_cpu, r.memory), (2000, 1 << 30));
    }

    #[test]
    fn should_give_containers_without_requests_non_zero_defaults_for_scoring() {
        let spec = PodSpec { containers: vec![container(&[]), container(&[("cpu", "0"), ("memory", "1Gi")])], ..Default::default() };
        assert_eq!(pod_non_zero_requests(&spec), (DEFAULT_MILLI_CPU_REQUEST, DEFAULT_MEMORY_REQUEST + (1 << 30)));
        let r = pod_requests(&spec);
        assert_eq!((r.milli_cpu, r.memory, r.pods), (0, 1 << 30, 1));
    }

    #[test]
    fn should_prefer_allocatable_over_capacity_per_resource() {
        let node = Node {
            status: Some(NodeStatus {
                capacity: [("cpu", "4"), ("memory", "8Gi"), ("pods", "20")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                allocatable: [("cpu", "3500m")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = node_allocatable(&node);
        assert_eq!((r.milli_cpu, r.memory, r.pods), (3500, 8 << 30, 20));
    }

    #[test]
    fn should_default_pod_slots_when_a_node_reports_none() {
        assert_eq!(node_allocatable(&Node::default()).pods, DEFAULT_MAX_PODS);
    }

    #[test]
    fn should_subtract_back_to_nothing() {
        let a = Resources { milli_cpu: 100, memory: 10, pods: 1, scalar: vec![("x".into(), 2)] };
        let mut total = Resources::default();
        total.add(&a);
        total.add(&a);
        total.sub(&a);
        total.sub(&a);
        assert_eq!(total, Resources::default());
    }
}
