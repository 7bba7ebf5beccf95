//! Rate-limited eviction: nodes whose pods must go wait in one queue per
//! zone and leave it at that zone's rate (a token bucket of one), which
//! drops to the secondary rate — or to zero — when most of the zone (or of
//! the cluster) is unhealthy, so that a network split does not empty the
//! cluster.

use std::collections::{BTreeMap, VecDeque};

use tokio::time::Instant;

/// A zone's health, as Kubernetes' node lifecycle controller grades it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    /// Many nodes are down: evict slowly, or not at all in a small cluster.
    PartialDisruption,
    /// Every node of the zone is down.
    FullDisruption,
}

/// How the eviction rates are chosen.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Nodes per second in a healthy zone.
    pub normal: f64,
    /// Nodes per second in a partially disrupted zone of a large cluster.
    pub secondary: f64,
    /// The fraction of not-ready nodes from which a zone is partially disrupted.
    pub unhealthy_threshold: f64,
    /// Zones with at most this many nodes stop evicting when partially disrupted.
    pub large_cluster_threshold: usize,
}

/// The state of a zone of `total` nodes of which `not_ready` are not ready.
pub fn zone_state(total: usize, not_ready: usize, threshold: f64) -> ZoneState {
    if total > 0 && not_ready == total {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / total.max(1) as f64 >= threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// The rate for a zone in `state`, given whether every zone is fully disrupted.
pub fn rate(state: ZoneState, zone_size: usize, all_fully_disrupted: bool, rates: &Rates) -> f64 {
    match state {
        // The whole cluster is down: most likely the controller is the one cut off.
        _ if all_fully_disrupted => 0.0,
        ZoneState::Normal | ZoneState::FullDisruption => rates.normal,
        ZoneState::PartialDisruption if zone_size > rates.large_cluster_threshold => rates.secondary,
        ZoneState::PartialDisruption => 0.0,
    }
}

#[derive(Debug)]
struct Zone {
    queue: VecDeque<String>,
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

/// The per-zone eviction queues.
#[derive(Debug, Default)]
pub struct Queues {
    zones: BTreeMap<String, Zone>,
}

impl Queues {
    fn zone(&mut self, zone: &str) -> &mut Zone {
        self.zones.entry(zone.to_string()).or_insert_with(|| Zone {
            queue: VecDeque::new(),
            rate: 0.0,
            tokens: 1.0,
            refilled: Instant::now(),
        })
    }

    /// Queues `node` of `zone` for eviction (once).
    pub fn add(&mut self, zone: &str, node: &str) {
        let z = self.zone(zone);
        if !z.queue.iter().any(|n| n == node) {
            z.queue.push_back(node.to_string());
        }
    }

    /// Takes `node` out of every queue (it became ready again).
    pub fn remove(&mut self, node: &str) {
        for z in self.zones.values_mut() {
            z.queue.retain(|n| n != node);
        }
    }

    pub fn contains(&self, node: &str) -> bool {
        self.zones.values().any(|z| z.queue.iter().any(|n| n == node))
    }

    /// Sets a zone's rate (nodes per second).
    pub fn set_rate(&mut self, zone: &str, rate: f64) {
        let now = Instant::now();
        let z = self.zone(zone);
        refill(z, now);
        z.rate = rate;
    }

    /// The nodes whose turn has come, at most one per available token.
    pub fn take_due(&mut self) -> Vec<String> {
        let now = Instant::now();
        let mut due = Vec::new();
        for z in self.zones.values_mut() {
            refill(z, now);
            while z.tokens >= 1.0 && !z.queue.is_empty() && z.rate > 0.0 {
                z.tokens -= 1.0;
                if let Some(n) = z.queue.pop_front() {
                    due.push(n);
                }
            }
        }
        due
    }
}

/// A bucket of one token, refilled at the zone's rate.
fn refill(z: &mut Zone, now: Instant) {
    let elapsed = now.saturating_duration_since(z.refilled).as_secs_f64();
    z.tokens = (z.tokens + elapsed * z.rate).min(1.0);
    z.refilled = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RATES: Rates = Rates { normal: 0.1, secondary: 0.01, unhealthy_threshold: 0.55, large_cluster_threshold: 50 };

    #[test]
    fn should_grade_zones_like_kubernetes() {
        assert_eq!(zone_state(10, 0, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(10, 2, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(10, 6, 0.55), ZoneState::PartialDisruption);
        assert_eq!(zone_state(3, 3, 0.55), ZoneState::FullDisruption);
        // Few nodes down in a tiny zone is not a disruption.
        assert_eq!(zone_state(4, 2, 0.55), ZoneState::Normal);
    }

    #[test]
    fn should_slow_down_or_stop_when_most_nodes_are_unhealthy() {
        assert_eq!(rate(ZoneState::Normal, 10, false, &RATES), 0.1);
        assert_eq!(rate(ZoneState::PartialDisruption, 100, false, &RATES), 0.01);
        assert_eq!(rate(ZoneState::PartialDisruption, 10, false, &RATES), 0.0);
        assert_eq!(rate(ZoneState::FullDisruption, 10, false, &RATES), 0.1);
        assert_eq!(rate(ZoneState::FullDisruption, 10, true, &RATES), 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn should_release_nodes_at_the_zone_rate() {
        let mut q = Queues::default();
        q.set_rate("", 0.1);
        for n in ["a", "b", "c"] {
            q.add("", n);
        }
        q.add("", "a");
        assert_eq!(q.take_due(), ["a"]);
        assert!(q.take_due().is_empty());
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(q.take_due(), ["b"]);
        q.remove("c");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(q.take_due().is_empty());
    }
}
