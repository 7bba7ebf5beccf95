//! One scheduling decision: filter the nodes (round-robin from where the
//! last decision stopped, and only until enough feasible ones are found, as
//! Kubernetes' percentageOfNodesToScore does), score the feasible ones and
//! pick the best, breaking ties at random. When nothing fits, say why per node.

use std::collections::BTreeMap;
use std::fmt;

use berth_api::labels::Selector;
use rand::Rng;

use crate::cache::{Cache, NodeInfo};
use crate::config::Profile;
use crate::filters::{self, Reason};
use crate::podinfo::PodInfo;
use crate::scores;

/// Below this many nodes, every node is filtered and scored (Kubernetes' minFeasibleNodesToFind).
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// The adaptive percentage never goes below this (Kubernetes' minFeasibleNodesPercentageToFind).
const MIN_FEASIBLE_PERCENTAGE: usize = 5;

/// Why no node can take a pod: the reasons counted over every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitError {
    pub nodes: usize,
    pub reasons: BTreeMap<Reason, usize>,
}

impl fmt::Display for FitError {
    /// `0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: db}.`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nodes == 0 {
            return f.write_str("0/0 nodes are available: no nodes available to schedule pods.");
        }
        let mut counts: Vec<(usize, String)> = self.reasons.iter().map(|(r, n)| (*n, r.to_string())).collect();
        // Most common first, then alphabetically, so the message is stable.
        counts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let parts: Vec<String> = counts.iter().map(|(n, r)| format!("{n} {r}")).collect();
        write!(f, "0/{} nodes are available: {}.", self.nodes, parts.join(", "))
    }
}

/// How many feasible nodes to look for among `all` before scoring:
/// everything below 100 nodes, else `percentage` of them (0: adaptive,
/// 50% minus one per 125 nodes, at least 5%), but at least 100.
pub fn feasible_nodes_to_find(all: usize, percentage: u32) -> usize {
    let percentage = percentage as usize;
    if all < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return all;
    }
    let percentage = if percentage == 0 { 50usize.saturating_sub(all / 125).max(MIN_FEASIBLE_PERCENTAGE) } else { percentage };
    (all * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Makes decisions; remembers where the last search stopped so that
/// successive pods start their search on different nodes.
#[derive(Debug, Default)]
pub struct Algorithm {
    next_start: usize,
    /// Reused between decisions to avoid allocating per pod.
    reasons: Vec<Reason>,
}

/// What a decision found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub node: String,
    /// Nodes evaluated and found feasible (for logs and metrics).
    pub evaluated: usize,
    pub feasible: usize,
}

impl Algorithm {
    pub fn new() -> Algorithm {
        Algorithm::default()
    }

    /// Picks the node for `pod`, or says why none fits.
    pub fn schedule(&mut self, pod: &PodInfo, cache: &Cache, profile: &Profile, selectors: &[Selector]) -> Result<Decision, FitError> {
        let entries = cache.nodes();
        let all = cache.node_count();
        if all == 0 {
            return Err(FitError { nodes: 0, reasons: BTreeMap::new() });
        }
        let want = feasible_nodes_to_find(all, profile.percentage_of_nodes_to_score).max(1);
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(entries.len()));
        let mut failures: BTreeMap<Reason, usize> = BTreeMap::new();
        let len = entries.len();
        let start = self.next_start % len;
        let mut visited = 0;
        let mut evaluated = 0;
        while visited < len && feasible.len() < want {
            let node = &entries[(start + visited) % len];
            visited += 1;
            if node.node.is_none() {
                continue;
            }
            evaluated += 1;
            self.reasons.clear();
            if filters::feasible(pod, node, &mut self.reasons) {
                feasible.push(node);
            } else {
                for r in self.reasons.drain(..) {
                    *failures.entry(r).or_insert(0) += 1;
                }
            }
        }
        self.next_start = (start + visited) % len;
        let chosen = match feasible.len() {
            0 => return Err(FitError { nodes: all, reasons: failures }),
            1 => feasible[0],
            _ => {
                let totals = scores::score(pod, &feasible, cache, profile, selectors);
                feasible[pick_best(&totals, &mut rand::rng())]
            }
        };
        Ok(Decision { node: chosen.name.clone(), evaluated, feasible: feasible.len() })
    }
}

/// The index of the highest score, a uniformly random one among equals
/// (reservoir sampling, as Kubernetes' selectHost).
pub fn pick_best(totals: &[i64], rng: &mut impl Rng) -> usize {
    let mut best = 0;
    let mut ties = 0u32;
    for (i, &s) in totals.iter().enumerate() {
        if i == 0 || s > totals[best] {
            best = i;
            ties = 1;
        } else if s == totals[best] {
            ties += 1;
            if rng.random_range(0..ties) == 0 {
                best = i;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use berth_api::pb::core::Taint;

    use super::*;
    use crate::cache::tests::{node, pod};

    #[test]
    fn should_score_a_sample_of_large_clusters_like_kubernetes() {
        assert_eq!(feasible_nodes_to_find(50, 0), 50);
        assert_eq!(feasible_nodes_to_find(500, 0), 500 * 46 / 100);
        assert_eq!(feasible_nodes_to_find(5000, 0), 500);
        assert_eq!(feasible_nodes_to_find(100_000, 0), 5000, "never below 5%");
        assert_eq!(feasible_nodes_to_find(1000, 100), 1000);
        assert_eq!(feasible_nodes_to_find(1000, 1), 100, "at least 100 nodes");
    }

    #[test]
    fn should_explain_why_no_node_fits_per_node() {
        let mut cache = Cache::new();
        cache.set_node(Arc::new(node("small-1", "1", "8Gi")));
        cache.set_node(Arc::new(node("small-2", "1", "8Gi")));
        let mut tainted = node("db", "8", "8Gi");
        tainted.spec.as_mut().unwrap().taints =
            vec![Taint { key: "dedicated".into(), value: "db".into(), effect: "NoSchedule".into(), ..Default::default() }];
        cache.set_node(Arc::new(tainted));
        let p = pod("a", "", "2", "1Gi");
        let err = Algorithm::new().schedule(&PodInfo::new(&p), &cache, &Profile::default(), &[]).unwrap_err();
        assert_eq!(err.to_string(), "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: db}.");
    }

    #[test]
    fn should_say_when_there_are_no_nodes() {
        let p = pod("a", "", "1", "1Gi");
        let err = Algorithm::new().schedule(&PodInfo::new(&p), &Cache::new(), &Profile::default(), &[]).unwrap_err();
        assert_eq!(err.to_string(), "0/0 nodes are available: no nodes available to schedule pods.");
    }

    #[test]
    fn should_pick_the_only_node_that_fits() {
        let mut cache = Cache::new();
        for i in 0..20 {
            cache.set_node(Arc::new(node(&format!("small-{i}"), "1", "1Gi")));
        }
        cache.set_node(Arc::new(node("big", "16", "64Gi")));
        let p = pod("a", "", "4", "8Gi");
        let mut algorithm = Algorithm::new();
        for _ in 0..5 {
            let d = algorithm.schedule(&PodInfo::new(&p), &cache, &Profile::default(), &[]).unwrap();
            assert_eq!(d.node, "big");
        }
    }

    #[test]
    fn should_never_overcommit_when_assuming_one_pod_after_another() {
        let mut cache = Cache::new();
        for i in 0..3 {
            cache.set_node(Arc::new(node(&format!("n{i}"), "2", "4Gi")));
        }
        let mut algorithm = Algorithm::new();
        let mut placed = 0;
        for i in 0..10 {
            let p = pod(&format!("p{i}"), "", "500m", "512Mi");
            match algorithm.schedule(&PodInfo::new(&p), &cache, &Profile::default(), &[]) {
                Ok(d) => {
                    cache.assume(&format!("default/p{i}"), Arc::new(p), &d.node);
                    placed += 1;
                }
                Err(e) => assert!(e.to_string().contains("Insufficient cpu"), "{e}"),
            }
        }
        assert_eq!(placed, 10, "3 nodes of 4 such pods each take all 10");
        for n in cache.nodes() {
            assert!(n.requested.milli_cpu <= n.allocatable.milli_cpu);
        }
    }

    #[test]
    fn should_break_ties_at_random() {
        let mut rng = rand::rng();
        let picked: HashSet<usize> = (0..200).map(|_| pick_best(&[5, 9, 9, 1, 9], &mut rng)).collect();
        assert_eq!(picked, HashSet::from([1, 2, 4]));
        assert_eq!(pick_best(&[1, 2, 3], &mut rng), 2);
    }

    #[test]
    fn should_stop_filtering_once_enough_feasible_nodes_are_found() {
        let mut cache = Cache::new();
        for i in 0..1000 {
            cache.set_node(Arc::new(node(&format!("n{i:04}"), "4", "8Gi")));
        }
        let p = pod("a", "", "100m", "1Mi");
        let mut algorithm = Algorithm::new();
        let first = algorithm.schedule(&PodInfo::new(&p), &cache, &Profile::default(), &[]).unwrap();
        assert_eq!(first.evaluated, feasible_nodes_to_find(1000, 0));
        let all = Profile { percentage_of_nodes_to_score: 100, ..Profile::default() };
        assert_eq!(algorithm.schedule(&PodInfo::new(&p), &cache, &all, &[]).unwrap().evaluated, 1000);
    }
}
