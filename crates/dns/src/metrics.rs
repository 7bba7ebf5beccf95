//! berth-dns' Prometheus metrics (`berth_dns_…`): queries by type, where they were answered and the response code; malformed packets; queries shed under load; the index's size and rebuilds.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// The query type (`A`, `SRV`, `PTR`, …).
    pub qtype: String,
    /// `cluster` (answered from the informers) or `forward` (asked upstream).
    pub source: String,
    /// The response code (`NoError`, `NXDomain`, `ServFail`, …).
    pub rcode: String,
    /// `udp` or `tcp`.
    pub transport: String,
}

/// Every metric berth-dns exports.
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub queries: Family<QueryLabels, Counter>,
    pub malformed: Counter,
    pub dropped: Counter,
    pub records: Gauge,
    pub rebuilds: Counter,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("berth_dns");
        let queries = Family::<QueryLabels, Counter>::default();
        registry.register(
            "queries",
            "Queries answered, by type, source (cluster or forward), response code and transport",
            queries.clone(),
        );
        let malformed = Counter::default();
        registry.register("malformed_queries", "Packets dropped unanswered because they are not a DNS query", malformed.clone());
        let dropped = Counter::default();
        registry.register("dropped_queries", "Queries dropped because too many were in flight", dropped.clone());
        let records = Gauge::default();
        registry.register("records", "Records in the cluster zone (and its reverse names)", records.clone());
        let rebuilds = Counter::default();
        registry.register("index_rebuilds", "Times the records were rebuilt after Services or Endpoints changed", rebuilds.clone());
        Metrics { registry: Arc::new(registry), queries, malformed, dropped, records, rebuilds }
    }

    /// Counts one answered query.
    pub fn observe(&self, qtype: &str, source: &str, rcode: &str, transport: &str) {
        self.queries
            .get_or_create(&QueryLabels { qtype: qtype.into(), source: source.into(), rcode: rcode.into(), transport: transport.into() })
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
