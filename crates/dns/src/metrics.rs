//! berth-dns' Prometheus metrics (`berth_dns_…`): build information; queries by type, where they were answered and the response code; malformed packets; queries shed under load or over a client's rate; the index's size and rebuilds.

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// The query type (`A`, `SRV`, `PTR`, …).
    pub qtype: &'static str,
    /// `cluster` (answered from the informers) or `forward` (asked upstream).
    pub source: &'static str,
    /// The response code (`NoError`, `NXDomain`, `ServFail`, …).
    pub rcode: &'static str,
    /// `udp` or `tcp`.
    pub transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Every metric berth-dns exports.
pub struct Metrics {
    pub registry: Arc<Registry>,
    pub queries: Family<QueryLabels, Counter>,
    pub malformed: Counter,
    pub dropped: Counter,
    pub rate_limited: Counter,
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
        let rate_limited = Counter::default();
        registry.register(
            "rate_limited_queries",
            "UDP queries dropped because their client asked more than --max-queries-per-client per second",
            rate_limited.clone(),
        );
        let records = Gauge::default();
        registry.register("records", "Records in the cluster zone (and its reverse names)", records.clone());
        let rebuilds = Counter::default();
        registry.register("index_rebuilds", "Times the records were rebuilt after Services or Endpoints changed", rebuilds.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "Build information (always 1)", build);
        Metrics { registry: Arc::new(registry), queries, malformed, dropped, rate_limited, records, rebuilds }
    }

    /// Counts one answered query (labels are static strings: no allocation per query).
    pub fn observe(&self, qtype: RecordType, source: &'static str, rcode: ResponseCode, transport: &'static str) {
        let labels = QueryLabels { qtype: qtype.into(), source, rcode: rcode_label(rcode), transport };
        self.queries.get_or_create(&labels).inc();
    }
}

/// The response code as the `rcode` label (hickory's variant names).
fn rcode_label(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NoError",
        ResponseCode::FormErr => "FormErr",
        ResponseCode::ServFail => "ServFail",
        ResponseCode::NXDomain => "NXDomain",
        ResponseCode::NotImp => "NotImp",
        ResponseCode::Refused => "Refused",
        _ => "Other",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
