//! The proxy's Prometheus metrics (`berth_proxy_…`): sync durations and outcomes, what is programmed, the relays' connections, and the build.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::userspace::RelayCounters;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// `full` or `partial`.
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub kind: String,
    /// `success` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    mode: String,
}

/// Every metric the proxy exports.
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub sync_duration: Family<SyncLabels, Histogram>,
    pub syncs: Family<ResultLabels, Counter>,
    pub programmed_rules: Gauge,
    pub services: Gauge,
    pub service_ports: Gauge,
    pub endpoints: Gauge,
    pub vips: Gauge,
    pub relays: Gauge,
    /// Unix time of the end of the last successful sync.
    pub last_sync: Gauge<f64, AtomicU64>,
    pub relay: RelayCounters,
}

impl Metrics {
    pub fn new(mode: &str) -> Metrics {
        let mut registry = Registry::with_prefix("berth_proxy");
        let sync_duration = Family::<SyncLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16)));
        registry.register("sync_duration_seconds", "How long a sync of the rules took, full or partial", sync_duration.clone());
        let syncs = Family::<ResultLabels, Counter>::default();
        registry.register("syncs", "Syncs by kind and result", syncs.clone());
        let programmed_rules = Gauge::default();
        registry.register("programmed_rules", "Rules, map elements or real servers the mode has installed", programmed_rules.clone());
        let services = Gauge::default();
        registry.register("services", "Services proxied", services.clone());
        let service_ports = Gauge::default();
        registry.register("service_ports", "Service ports proxied", service_ports.clone());
        let endpoints = Gauge::default();
        registry.register("endpoints", "Ready endpoints, counted once per service port", endpoints.clone());
        let vips = Gauge::default();
        registry.register("vips", "ClusterIPs bound to the VIP interface", vips.clone());
        let relays = Gauge::default();
        registry.register("relays", "Addresses the in-process relays listen on", relays.clone());
        let last_sync = Gauge::<f64, AtomicU64>::default();
        registry.register("last_sync_timestamp_seconds", "When the last successful sync ended (Unix time)", last_sync.clone());
        let relay = RelayCounters::default();
        registry.register("relay_connections", "Connections (TCP) and sessions (UDP) the relays forwarded", relay.relayed.clone());
        registry.register("relay_connect_errors", "Connects from a relay to an endpoint that failed", relay.connect_errors.clone());
        registry.register("relay_rejected", "Clients a relay turned away: no endpoint could be reached", relay.rejected.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").into(), mode: mode.into() }).set(1);
        registry.register("build_info", "The running build and mode", build);
        Metrics {
            registry: Arc::new(registry),
            sync_duration,
            syncs,
            programmed_rules,
            services,
            service_ports,
            endpoints,
            vips,
            relays,
            last_sync,
            relay,
        }
    }

    /// Records one sync.
    pub fn observe_sync(&self, kind: &str, seconds: f64, ok: bool) {
        self.sync_duration.get_or_create(&SyncLabels { kind: kind.into() }).observe(seconds);
        let result = if ok { "success" } else { "error" };
        self.syncs.get_or_create(&ResultLabels { kind: kind.into(), result: result.into() }).inc();
    }
}
