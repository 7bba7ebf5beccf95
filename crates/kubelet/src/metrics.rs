//! The kubelet's Prometheus metrics (`berth_kubelet_*`), served on
//! `--health-listen` `/metrics`: pods and containers running, pod syncs and
//! start latency, probe results, runtime operations and their latency.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe: String,
    pub result: String,
}

/// Every metric, cheap to clone (each is an `Arc` inside).
#[derive(Clone)]
pub struct Metrics {
    pub pods: Gauge,
    pub running_containers: Gauge,
    pub pod_syncs: Counter,
    pub pod_sync_errors: Counter,
    pub pod_sync_duration: Histogram,
    /// From the pod's creation to all its containers running, as this kubelet saw it.
    pub pod_start_duration: Histogram,
    pub container_starts: Counter,
    pub image_pulls: Family<ResultLabels, Counter>,
    pub probes: Family<ProbeLabels, Counter>,
    pub node_status_updates: Counter,
    pub lease_renewals: Family<ResultLabels, Counter>,
    pub runtime_operations: Family<OperationLabels, Counter>,
    pub runtime_operation_errors: Family<OperationLabels, Counter>,
    pub runtime_operation_duration: Family<OperationLabels, Histogram>,
}

impl Metrics {
    /// Registers the metrics of one kubelet (or of all hollow kubelets of a process).
    pub fn register(registry: &mut Registry) -> Metrics {
        let m = Metrics {
            pods: Gauge::default(),
            running_containers: Gauge::default(),
            pod_syncs: Counter::default(),
            pod_sync_errors: Counter::default(),
            pod_sync_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            pod_start_duration: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            container_starts: Counter::default(),
            image_pulls: Family::default(),
            probes: Family::default(),
            node_status_updates: Counter::default(),
            lease_renewals: Family::default(),
            runtime_operations: Family::default(),
            runtime_operation_errors: Family::default(),
            runtime_operation_duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))),
        };
        let build = Family::<VersionLabels, Gauge>::default();
        build.get_or_create(&VersionLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        let r = registry.sub_registry_with_prefix("berth_kubelet");
        r.register("build_info", "The kubelet's version; always 1", build);
        r.register("running_pods", "Pods this kubelet runs", m.pods.clone());
        r.register("running_containers", "Containers running for this kubelet's pods", m.running_containers.clone());
        r.register("pod_syncs", "Syncs of a pod with its containers", m.pod_syncs.clone());
        r.register("pod_sync_errors", "Syncs of a pod that failed and will be retried", m.pod_sync_errors.clone());
        r.register("pod_sync_duration_seconds", "How long one sync of a pod took", m.pod_sync_duration.clone());
        r.register("pod_start_duration_seconds", "From a pod's creation to all its containers running", m.pod_start_duration.clone());
        r.register("container_starts", "Containers started (first starts and restarts)", m.container_starts.clone());
        r.register("image_pulls", "Image pulls by result", m.image_pulls.clone());
        r.register("probes", "Probe runs by probe and result", m.probes.clone());
        r.register("node_status_updates", "Writes of the node's status", m.node_status_updates.clone());
        r.register("lease_renewals", "Renewals of the node's Lease by result", m.lease_renewals.clone());
        r.register("runtime_operations", "Calls to the container runtime by operation", m.runtime_operations.clone());
        r.register(
            "runtime_operations_errors",
            "Calls to the container runtime that failed, by operation",
            m.runtime_operation_errors.clone(),
        );
        r.register(
            "runtime_operations_duration_seconds",
            "How long calls to the container runtime took, by operation",
            m.runtime_operation_duration.clone(),
        );
        m
    }

    /// Counts and times one call to the runtime.
    pub fn runtime_operation(&self, operation: &str, took: std::time::Duration, ok: bool) {
        let labels = OperationLabels { operation_type: operation.into() };
        self.runtime_operations.get_or_create(&labels).inc();
        if !ok {
            self.runtime_operation_errors.get_or_create(&labels).inc();
        }
        self.runtime_operation_duration.get_or_create(&labels).observe(took.as_secs_f64());
    }
}
