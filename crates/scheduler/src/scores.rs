//! The scores: how good each feasible node is for a pod, each from 0 to
//! [`MAX_SCORE`], summed with the weights of the configuration file. Scores
//! that compare nodes with each other (spreading, preferred affinity,
//! PreferNoSchedule taints) are normalized over the candidates, as Kubernetes does.

use berth_api::labels::Selector;
use berth_api::pb::core::Pod;

use crate::affinity;
use crate::cache::{Cache, NodeInfo};
use crate::config::Profile;
use crate::podinfo::PodInfo;
use crate::taints;

/// The best score a node can get from one scorer.
pub const MAX_SCORE: i64 = 100;

/// Image locality counts images from this size on (Kubernetes' 23 MB)...
const IMAGE_MIN_BYTES: i64 = 23 * 1024 * 1024;
/// ...up to this size per container (Kubernetes' 1000 MB).
const IMAGE_MAX_BYTES_PER_CONTAINER: i64 = 1000 * 1024 * 1024;

/// Prefer nodes with the most CPU and memory left once the pod is there
/// (Kubernetes' LeastAllocated, with non-zero requests).
pub fn least_allocated(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let left = |requested: i64, capacity: i64| {
        if capacity <= 0 || requested > capacity { 0 } else { (capacity - requested) * MAX_SCORE / capacity }
    };
    let cpu = left(node.non_zero_cpu + pod.account.non_zero_cpu, node.allocatable.milli_cpu);
    let memory = left(node.non_zero_memory + pod.account.non_zero_memory, node.allocatable.memory);
    (cpu + memory) / 2
}

/// Prefer nodes whose CPU and memory would be used in the same proportion
/// (Kubernetes' BalancedAllocation: one minus the standard deviation of the fractions).
pub fn balanced_allocation(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let fraction = |requested: i64, capacity: i64| {
        if capacity <= 0 { 1.0 } else { (requested as f64 / capacity as f64).min(1.0) }
    };
    let cpu = fraction(node.non_zero_cpu + pod.account.non_zero_cpu, node.allocatable.milli_cpu);
    let memory = fraction(node.non_zero_memory + pod.account.non_zero_memory, node.allocatable.memory);
    let std_dev = (cpu - memory).abs() / 2.0;
    ((1.0 - std_dev) * MAX_SCORE as f64) as i64
}

/// Prefer nodes that already have the pod's images, weighted by how widely
/// each image is spread (Kubernetes' ImageLocality).
pub fn image_locality(pod: &PodInfo, node: &NodeInfo, cache: &Cache) -> i64 {
    let total = cache.node_count().max(1) as f64;
    let sum: f64 = pod
        .images
        .iter()
        .filter_map(|image| node.images.get(image).map(|size| *size as f64 * cache.nodes_with_image(image) as f64 / total))
        .sum();
    let max = IMAGE_MAX_BYTES_PER_CONTAINER * pod.images.len().max(1) as i64;
    let sum = (sum as i64).clamp(IMAGE_MIN_BYTES, max);
    MAX_SCORE * (sum - IMAGE_MIN_BYTES) / (max - IMAGE_MIN_BYTES)
}

/// Avoid nodes whose real usage, as kubelets report it, leaves little
/// room: the predicted usage with the pod over allocatable less a safety
/// `margin`. Nodes without a report score as if idle.
pub fn load_aware(pod: &PodInfo, node: &NodeInfo, margin: f64) -> i64 {
    let Some((cpu, memory)) = node.predicted_usage() else { return MAX_SCORE };
    let room = |used: i64, want: i64, capacity: i64| {
        let usable = capacity as f64 * (1.0 - margin);
        if usable <= 0.0 {
            return 0.0;
        }
        (1.0 - (used + want) as f64 / usable).clamp(0.0, 1.0)
    };
    let cpu = room(cpu, pod.account.non_zero_cpu, node.allocatable.milli_cpu);
    let memory = room(memory, pod.account.non_zero_memory, node.allocatable.memory);
    // The scarcer resource decides: a node busy on either is busy.
    (cpu.min(memory) * MAX_SCORE as f64) as i64
}

/// How many pods on the node, in the pod's namespace, any of `selectors`
/// (of the Services and ReplicationControllers selecting the pod) matches.
pub fn spread_count(pod: &Pod, node: &NodeInfo, selectors: &[Selector]) -> i64 {
    if selectors.is_empty() {
        return 0;
    }
    let namespace = &pod.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or_default();
    node.pods
        .values()
        .filter(|p| {
            let m = p.pod.metadata.as_ref();
            m.is_some_and(|m| {
                m.namespace == *namespace && m.deletion_timestamp.is_empty() && selectors.iter().any(|s| s.matches(&m.labels))
            })
        })
        .count() as i64
}

/// Scales raw values to 0..=[`MAX_SCORE`] by the largest; `reverse` makes
/// the smallest best (Kubernetes' DefaultNormalizeScore).
pub fn normalize(raw: &mut [i64], reverse: bool) {
    let max = raw.iter().copied().max().unwrap_or(0);
    if max <= 0 {
        let value = if reverse { MAX_SCORE } else { 0 };
        raw.iter_mut().for_each(|s| *s = value);
        return;
    }
    for s in raw.iter_mut() {
        let scaled = MAX_SCORE * *s / max;
        *s = if reverse { MAX_SCORE - scaled } else { scaled };
    }
}

/// The weighted sum of every enabled score for each candidate, in order.
pub fn score(pod: &PodInfo, candidates: &[&NodeInfo], cache: &Cache, profile: &Profile, selectors: &[Selector]) -> Vec<i64> {
    let w = &profile.weights;
    let mut total = vec![0i64; candidates.len()];
    let mut add = |weight: i64, f: &dyn Fn(&NodeInfo) -> i64| {
        if weight != 0 {
            for (t, n) in total.iter_mut().zip(candidates) {
                *t += weight * f(n);
            }
        }
    };
    add(w.least_allocated, &|n| least_allocated(pod, n));
    add(w.balanced_allocation, &|n| balanced_allocation(pod, n));
    if !pod.images.is_empty() {
        add(w.image_locality, &|n| image_locality(pod, n, cache));
    }
    if profile.load_aware.enabled {
        add(w.load_aware, &|n| load_aware(pod, n, profile.load_aware.margin));
    }

    let mut normalized = |weight: i64, reverse: bool, f: &dyn Fn(&NodeInfo) -> i64| {
        if weight == 0 {
            return;
        }
        let mut raw: Vec<i64> = candidates.iter().map(|n| f(n)).collect();
        normalize(&mut raw, reverse);
        for (t, s) in total.iter_mut().zip(raw) {
            *t += weight * s;
        }
    };
    if !selectors.is_empty() {
        normalized(w.selector_spread, true, &|n| spread_count(pod.pod, n, selectors));
    }
    let preferred = affinity::preferred_terms(pod.spec.affinity.as_ref());
    if !preferred.is_empty() {
        normalized(w.node_affinity, false, &|n| affinity::preferred_weight(preferred, n.labels(), &n.name));
    }
    let tolerations = &pod.spec.tolerations;
    if candidates.iter().any(|n| n.taints().iter().any(|t| t.effect == taints::PREFER_NO_SCHEDULE)) {
        normalized(w.taint_toleration, true, &|n| taints::intolerable_preferences(n.taints(), tolerations));
    }
    total
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use berth_api::pb::core::{ContainerImage, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, PreferredSchedulingTerm, Taint};

    use super::*;
    use crate::cache::tests::{node, pod};
    use crate::cache::{CPU_USAGE_ANNOTATION, MEMORY_USAGE_ANNOTATION};

    fn info(n: berth_api::pb::core::Node) -> NodeInfo {
        NodeInfo::new(Arc::new(n))
    }

    #[test]
    fn should_prefer_the_least_allocated_node() {
        let p = pod("a", "", "1", "1Gi");
        let mut busy = info(node("busy", "4", "4Gi"));
        busy.add_pod("default/x".into(), Arc::new(pod("x", "busy", "2", "2Gi")), false);
        let idle = info(node("idle", "4", "4Gi"));
        let pi = PodInfo::new(&p);
        assert_eq!(least_allocated(&pi, &idle), 75);
        assert_eq!(least_allocated(&pi, &busy), 25);
    }

    #[test]
    fn should_count_pods_without_requests_with_non_zero_defaults() {
        let p = pod("a", "", "0", "0");
        let mut p2 = p.clone();
        p2.spec.as_mut().unwrap().containers[0].resources = None;
        let n = info(node("n", "1", "1Gi"));
        assert!(least_allocated(&PodInfo::new(&p2), &n) < MAX_SCORE, "100m and 200Mi count for scoring");
    }

    #[test]
    fn should_prefer_balanced_use_of_cpu_and_memory() {
        let p = pod("a", "", "1", "1Gi");
        let pi = PodInfo::new(&p);
        let balanced = info(node("b", "2", "2Gi"));
        let lopsided = info(node("l", "2", "64Gi"));
        assert_eq!(balanced_allocation(&pi, &balanced), MAX_SCORE);
        assert!(balanced_allocation(&pi, &lopsided) < 80);
    }

    #[test]
    fn should_prefer_nodes_with_big_images_already_there() {
        let mut with = node("with", "4", "8Gi");
        with.status.as_mut().unwrap().images = vec![ContainerImage { names: vec!["busybox:latest".into()], size_bytes: 500 << 20 }];
        let without = node("without", "4", "8Gi");
        let mut cache = Cache::new();
        cache.set_node(Arc::new(with));
        cache.set_node(Arc::new(without));
        let p = pod("a", "", "1", "1Gi");
        let pi = PodInfo::new(&p);
        let s_with = image_locality(&pi, cache.node("with").unwrap(), &cache);
        let s_without = image_locality(&pi, cache.node("without").unwrap(), &cache);
        assert_eq!(s_without, 0);
        assert!(s_with > 0 && s_with < MAX_SCORE, "{s_with}");
    }

    #[test]
    fn should_avoid_nodes_busy_for_real_even_with_low_requests() {
        let p = pod("a", "", "100m", "128Mi");
        let pi = PodInfo::new(&p);
        let mut busy = node("busy", "4", "8Gi");
        busy.metadata.as_mut().unwrap().annotations = [(CPU_USAGE_ANNOTATION, "3500"), (MEMORY_USAGE_ANNOTATION, "1073741824")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let quiet = node("quiet", "4", "8Gi");
        assert_eq!(load_aware(&pi, &info(busy), 0.2), 0, "3.5 of 4 cores in use is past the 20% margin");
        assert_eq!(load_aware(&pi, &info(quiet), 0.2), MAX_SCORE);
    }

    #[test]
    fn should_spread_pods_matching_the_same_selectors() {
        let mut n = info(node("n", "4", "8Gi"));
        let mut mate = pod("m", "n", "1", "1Gi");
        mate.metadata.as_mut().unwrap().labels.insert("app".into(), "web".into());
        let mut other_ns = mate.clone();
        other_ns.metadata.as_mut().unwrap().namespace = "other".into();
        n.add_pod("default/m".into(), Arc::new(mate.clone()), false);
        n.add_pod("other/m".into(), Arc::new(other_ns), false);
        let selectors = vec![Selector::parse("app=web").unwrap()];
        assert_eq!(spread_count(&mate, &n, &selectors), 1);
        assert_eq!(spread_count(&mate, &n, &[]), 0);
    }

    #[test]
    fn should_normalize_like_kubernetes() {
        let mut raw = vec![0, 2, 4];
        normalize(&mut raw, true);
        assert_eq!(raw, vec![100, 50, 0]);
        let mut raw = vec![0, 5, 10];
        normalize(&mut raw, false);
        assert_eq!(raw, vec![0, 50, 100]);
        let mut zeros = vec![0, 0];
        normalize(&mut zeros, true);
        assert_eq!(zeros, vec![100, 100]);
    }

    #[test]
    fn should_prefer_preferred_affinity_and_avoid_prefer_no_schedule_taints() {
        let mut p = pod("a", "", "100m", "1Mi");
        p.spec.as_mut().unwrap().affinity = Some(berth_api::pb::core::Affinity {
            node_affinity: Some(NodeAffinity {
                preferred_during_scheduling_ignored_during_execution: vec![PreferredSchedulingTerm {
                    weight: 50,
                    preference: Some(NodeSelectorTerm {
                        match_expressions: vec![NodeSelectorRequirement {
                            key: "disk".into(),
                            operator: "In".into(),
                            values: vec!["ssd".into()],
                        }],
                        match_fields: vec![],
                    }),
                }],
                ..Default::default()
            }),
        });
        let mut ssd = node("ssd", "4", "8Gi");
        ssd.metadata.as_mut().unwrap().labels.insert("disk".into(), "ssd".into());
        let plain = node("plain", "4", "8Gi");
        let mut tainted = node("tainted", "4", "8Gi");
        tainted.metadata.as_mut().unwrap().labels.insert("disk".into(), "ssd".into());
        tainted.spec.as_mut().unwrap().taints = vec![Taint { key: "old".into(), effect: "PreferNoSchedule".into(), ..Default::default() }];
        let mut cache = Cache::new();
        for n in [ssd, plain, tainted] {
            cache.set_node(Arc::new(n));
        }
        let profile = Profile::default();
        let candidates: Vec<&NodeInfo> = ["ssd", "plain", "tainted"].iter().map(|n| cache.node(n).unwrap()).collect();
        let s = score(&PodInfo::new(&p), &candidates, &cache, &profile, &[]);
        assert!(s[0] > s[1], "the preferred label wins: {s:?}");
        assert!(s[0] > s[2], "the PreferNoSchedule taint loses: {s:?}");
    }

    #[test]
    fn should_leave_out_scores_with_zero_weight() {
        let p = pod("a", "", "1", "1Gi");
        let profile = Profile {
            weights: crate::config::Weights {
                least_allocated: 0,
                balanced_allocation: 0,
                selector_spread: 0,
                image_locality: 0,
                node_affinity: 0,
                taint_toleration: 0,
                load_aware: 0,
            },
            ..Profile::default()
        };
        let mut cache = Cache::new();
        cache.set_node(Arc::new(node("n", "4", "8Gi")));
        let s = score(&PodInfo::new(&p), &[cache.node("n").unwrap()], &cache, &profile, &[]);
        assert_eq!(s, vec![0]);
    }
}
