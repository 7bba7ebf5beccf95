//! The scheduler's Prometheus metrics (`berth_scheduler_*`): attempts by
//! result, decision, binding and end-to-end latencies, queue depths, the
//! cache's size and leadership.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::queue::Depths;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    /// scheduled, unschedulable or error.
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    /// active, backoff, unschedulable or in_flight.
    queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// What an attempt ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Scheduled,
    Unschedulable,
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Scheduled => "scheduled",
            Outcome::Unschedulable => "unschedulable",
            Outcome::Error => "error",
        }
    }
}

/// Every metric the scheduler exports.
pub struct Metrics {
    registry: Arc<Registry>,
    attempts: Family<ResultLabels, Counter>,
    attempt_duration: Family<ResultLabels, Histogram>,
    binding_duration: Histogram,
    e2e_duration: Histogram,
    bindings: Family<ResultLabels, Counter>,
    pending: Family<QueueLabels, Gauge>,
    cache_nodes: Gauge,
    cache_pods: Gauge,
    cache_assumed: Gauge,
    leader: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("berth_scheduler");
        let attempts = Family::<ResultLabels, Counter>::default();
        registry.register("schedule_attempts", "Scheduling attempts by result (scheduled, unschedulable, error)", attempts.clone());
        let attempt_duration =
            Family::<ResultLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_01, 2.0, 20)));
        registry.register(
            "scheduling_attempt_duration_seconds",
            "Time to decide on one pod (filters, scores, assume) by result",
            attempt_duration.clone(),
        );
        let binding_duration = Histogram::new(exponential_buckets(0.000_1, 2.0, 18));
        registry.register("binding_duration_seconds", "Time of one pods/binding call", binding_duration.clone());
        let e2e_duration = Histogram::new(exponential_buckets(0.001, 2.0, 18));
        registry.register(
            "pod_scheduling_duration_seconds",
            "From a pod entering the queue to its binding, over every attempt",
            e2e_duration.clone(),
        );
        let bindings = Family::<ResultLabels, Counter>::default();
        registry.register("bindings", "pods/binding calls by result (scheduled, error)", bindings.clone());
        let pending = Family::<QueueLabels, Gauge>::default();
        registry.register("pending_pods", "Pods in each part of the scheduling queue", pending.clone());
        let cache_nodes = Gauge::default();
        registry.register("cache_nodes", "Nodes in the scheduler's cache", cache_nodes.clone());
        let cache_pods = Gauge::default();
        registry.register("cache_pods", "Pods counted on nodes, assumed ones included", cache_pods.clone());
        let cache_assumed = Gauge::default();
        registry.register("cache_assumed_pods", "Pods placed whose binding is not confirmed yet", cache_assumed.clone());
        let leader = Gauge::default();
        registry.register("is_leader", "1 while this instance leads and schedules", leader.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        registry.register("build_info", "Build information (always 1)", build);
        Arc::new(Metrics {
            registry: Arc::new(registry),
            attempts,
            attempt_duration,
            binding_duration,
            e2e_duration,
            bindings,
            pending,
            cache_nodes,
            cache_pods,
            cache_assumed,
            leader,
        })
    }

    /// The registry to serve on `/metrics`.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    pub fn attempt(&self, outcome: Outcome, took: Duration) {
        let labels = ResultLabels { result: outcome.label().into() };
        self.attempts.get_or_create(&labels).inc();
        self.attempt_duration.get_or_create(&labels).observe(took.as_secs_f64());
    }

    pub fn bound(&self, took: Duration, since_queued: Duration) {
        self.bindings.get_or_create(&ResultLabels { result: Outcome::Scheduled.label().into() }).inc();
        self.binding_duration.observe(took.as_secs_f64());
        self.e2e_duration.observe(since_queued.as_secs_f64());
    }

    pub fn binding_failed(&self) {
        self.bindings.get_or_create(&ResultLabels { result: Outcome::Error.label().into() }).inc();
    }

    pub fn set_depths(&self, d: Depths) {
        for (queue, n) in [("active", d.active), ("backoff", d.backoff), ("unschedulable", d.unschedulable), ("in_flight", d.in_flight)] {
            self.pending.get_or_create(&QueueLabels { queue: queue.into() }).set(n as i64);
        }
    }

    pub fn set_cache(&self, nodes: usize, pods: usize, assumed: usize) {
        self.cache_nodes.set(nodes as i64);
        self.cache_pods.set(pods as i64);
        self.cache_assumed.set(assumed as i64);
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_export_attempts_queue_depths_and_build_info() {
        let m = Metrics::new();
        m.attempt(Outcome::Scheduled, Duration::from_micros(300));
        m.set_depths(Depths { active: 2, ..Default::default() });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &m.registry()).unwrap();
        assert!(text.contains("berth_scheduler_schedule_attempts_total{result=\"scheduled\"} 1"), "{text}");
        assert!(text.contains("berth_scheduler_pending_pods{queue=\"active\"} 2"), "{text}");
        assert!(text.contains("berth_scheduler_build_info{version="), "{text}");
        assert!(text.contains("berth_scheduler_scheduling_attempt_duration_seconds_bucket"), "{text}");
    }
}
