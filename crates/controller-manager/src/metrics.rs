//! The controller-manager's Prometheus metrics (`berth_controller_manager_*`):
//! syncs per controller and result with their duration, every work queue's
//! depth, adds, retries and latencies (read from the queues at scrape time),
//! leadership, node evictions, and build information.

use berth_base::sync::MutexExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_runtime::WorkQueue;
use berth_runtime::workqueue::QueueMetrics;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// One queue figure: name, help and how to read it from a snapshot.
type Figure = (&'static str, &'static str, fn(&QueueMetrics) -> f64);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabels {
    controller: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Every metric of the manager; shared by the controllers.
#[derive(Debug)]
pub struct Metrics {
    syncs: Family<SyncLabels, Counter>,
    sync_duration: Family<ControllerLabels, Histogram>,
    /// 1 while this instance holds the leader lease.
    pub leader: Gauge,
    /// Pods deleted by the node controller because their node was lost.
    pub evictions: Counter,
    queues: Arc<Queues>,
}

/// The queues whose metrics are read at each scrape.
#[derive(Debug, Default)]
struct Queues(Mutex<Vec<WorkQueue<String>>>);

impl Metrics {
    /// Registers every metric in `registry` (which should carry the
    /// `berth_controller_manager` prefix).
    pub fn new(registry: &mut Registry) -> Arc<Metrics> {
        let syncs = Family::<SyncLabels, Counter>::default();
        registry.register("syncs", "Syncs per controller and result (success, error)", syncs.clone());
        let sync_duration =
            Family::<ControllerLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        registry.register("sync_duration_seconds", "How long one sync of one key took, per controller", sync_duration.clone());
        let leader = Gauge::default();
        registry.register("is_leader", "1 while this instance holds the leader lease", leader.clone());
        let evictions = Counter::default();
        registry.register("node_evictions", "Pods deleted because their node stopped reporting", evictions.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register("build_info", "Build information", build.clone());
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        let queues = Arc::new(Queues::default());
        registry.register_collector(Box::new(queues.clone()));
        Arc::new(Metrics { syncs, sync_duration, leader, evictions, queues })
    }

    /// Exports `queue`'s depth, adds, retries and latencies.
    pub fn register_queue(&self, queue: &WorkQueue<String>) {
        self.queues.0.lock_or_recover().push(queue.clone());
    }

    /// Counts one sync of `controller`.
    pub fn observe_sync(&self, controller: &str, ok: bool, elapsed: Duration) {
        let result = if ok { "success" } else { "error" };
        self.syncs.get_or_create(&SyncLabels { controller: controller.into(), result: result.into() }).inc();
        self.sync_duration.get_or_create(&ControllerLabels { controller: controller.into() }).observe(elapsed.as_secs_f64());
    }
}

impl Collector for Queues {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshots: Vec<_> = self.0.lock_or_recover().iter().map(|q| q.metrics()).collect();
        let gauges: [Figure; 5] = [
            ("workqueue_depth", "Keys waiting in the work queue", |m| m.depth as f64),
            ("workqueue_unfinished", "Keys being processed", |m| m.processing as f64),
            ("workqueue_longest_running_processor_seconds", "How long the oldest key in process has been processing", |m| {
                m.longest_running_processor.as_secs_f64()
            }),
            ("workqueue_queue_duration_max_seconds", "Longest wait of a key between add and processing", |m| {
                m.queue_latency.max.as_secs_f64()
            }),
            ("workqueue_work_duration_max_seconds", "Longest processing of a key", |m| m.work_duration.max.as_secs_f64()),
        ];
        for (name, help, value) in gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for m in &snapshots {
                let labels = [("name", m.name.as_str())];
                ConstGauge::new(value(m)).encode(family.encode_family(&labels)?)?;
            }
        }
        let counters: [Figure; 6] = [
            ("workqueue_adds", "Keys added to the work queue", |m| m.adds_total as f64),
            ("workqueue_retries", "Keys re-queued with backoff after a failed sync", |m| m.retries_total as f64),
            ("workqueue_dequeues", "Keys handed to a worker", |m| m.queue_latency.count as f64),
            (
                "workqueue_queue_duration_seconds",
                "Total time keys waited between add and processing (divide by dequeues for the mean)",
                |m| m.queue_latency.sum.as_secs_f64(),
            ),
            ("workqueue_work_duration_seconds", "Total time spent processing keys", |m| m.work_duration.sum.as_secs_f64()),
            ("workqueue_completions", "Keys whose processing finished", |m| m.work_duration.count as f64),
        ];
        for (name, help, value) in counters {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for m in &snapshots {
                let labels = [("name", m.name.as_str())];
                ConstCounter::new(value(m)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
