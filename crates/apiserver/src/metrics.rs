//! The apiserver's Prometheus metrics: requests by verb, kind and code with
//! latency histograms, in-flight requests, watchers, storage operations and
//! their latency (through [`MeteredStore`]), and the store's size, revisions,
//! compactions and rebuilds.

use berth_base::sync::MutexExt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::storage::{self, KeyValue, Revision, Store, StoreStats, WatchStream};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: String,
    kind: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerbKindLabels {
    verb: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Every metric the apiserver exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<VerbKindLabels, Histogram>,
    storage_operations: Family<OperationLabels, Counter>,
    storage_operation_errors: Family<OperationLabels, Counter>,
    storage_latency: Family<OperationLabels, Histogram>,
    store_writes: Counter,
    inflight: Gauge,
    watchers: Family<KindLabels, Gauge>,
    store_objects: Gauge,
    store_revision: Gauge,
    store_compacted_revision: Gauge,
    store_size_bytes: Gauge,
    store_live_bytes: Gauge,
    store_flushes: Counter,
    store_compactions: Counter,
    store_defrags: Counter,
    store_defrag_seconds: Counter<f64, AtomicU64>,
    /// Serialises copying the store's running totals into the counters above.
    store_sync: Mutex<()>,
    refused_connections: Counter,
    authentication_failures: Counter,
    authorization_denials: Counter,
}

/// Decrements a gauge when dropped.
pub struct GaugeGuard(Gauge);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("berth_apiserver");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("request", "API requests by verb, kind and gRPC code", requests.clone());
        let latency = Family::<VerbKindLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 18)));
        registry.register("request_duration_seconds", "API request latency by verb and kind", latency.clone());
        let storage_operations = Family::<OperationLabels, Counter>::default();
        registry.register("storage_operations", "Calls to the store by operation", storage_operations.clone());
        let storage_operation_errors = Family::<OperationLabels, Counter>::default();
        registry.register("storage_operation_errors", "Calls to the store that failed, by operation", storage_operation_errors.clone());
        let storage_latency =
            Family::<OperationLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_01, 2.0, 20)));
        registry.register("storage_operation_duration_seconds", "How long calls to the store took, by operation", storage_latency.clone());
        let store_writes = Counter::default();
        registry.register("storage_writes", "Successful writes since the store was opened", store_writes.clone());
        let inflight = Gauge::default();
        registry.register("inflight_requests", "Requests being served", inflight.clone());
        let watchers = Family::<KindLabels, Gauge>::default();
        registry.register("watchers", "Open watch streams by kind", watchers.clone());
        let store_objects = Gauge::default();
        registry.register("storage_objects", "Objects in the store", store_objects.clone());
        let store_revision = Gauge::default();
        registry.register("storage_revision", "The store's current revision", store_revision.clone());
        let store_compacted_revision = Gauge::default();
        registry.register("storage_compacted_revision", "The newest revision no longer in the history", store_compacted_revision.clone());
        let store_size_bytes = Gauge::default();
        registry.register("storage_size_bytes", "Size of the store on disk", store_size_bytes.clone());
        let store_live_bytes = Gauge::default();
        registry.register("storage_live_bytes", "Live data in the store: objects and the kept watch history", store_live_bytes.clone());
        let store_flushes = Counter::default();
        registry.register("storage_flushes", "Group-commit flushes since the store was opened", store_flushes.clone());
        let store_compactions = Counter::default();
        registry.register(
            "storage_compactions",
            "History compactions (removal of events older than the kept history)",
            store_compactions.clone(),
        );
        let store_defrags = Counter::default();
        registry.register(
            "storage_defrags",
            "Rebuilds of the store into a fresh directory that gave disk space back",
            store_defrags.clone(),
        );
        let store_defrag_seconds = Counter::<f64, AtomicU64>::default();
        registry.register(
            "storage_defrag_duration_seconds",
            "Time spent rebuilding the store (writes wait meanwhile)",
            store_defrag_seconds.clone(),
        );
        let refused_connections = Counter::default();
        registry.register(
            "refused_connections",
            "Connections closed before TLS because the client is outside --allow-hosts",
            refused_connections.clone(),
        );
        let authentication_failures = Counter::default();
        registry.register("authentication_failures", "Requests refused as Unauthenticated", authentication_failures.clone());
        let authorization_denials = Counter::default();
        registry.register("authorization_denials", "Requests refused by authorization (PermissionDenied)", authorization_denials.clone());
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register("build_info", "Build information", build.clone());
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        Arc::new(Metrics {
            registry,
            requests,
            latency,
            storage_operations,
            storage_operation_errors,
            storage_latency,
            store_writes,
            inflight,
            watchers,
            store_objects,
            store_revision,
            store_compacted_revision,
            store_size_bytes,
            store_live_bytes,
            store_flushes,
            store_compactions,
            store_defrags,
            store_defrag_seconds,
            store_sync: Mutex::new(()),
            refused_connections,
            authentication_failures,
            authorization_denials,
        })
    }

    pub fn observe_request(&self, verb: &str, kind: &str, code: tonic::Code, elapsed: Duration) {
        let code = format!("{code:?}");
        self.requests.get_or_create(&RequestLabels { verb: verb.into(), kind: kind.into(), code }).inc();
        self.latency.get_or_create(&VerbKindLabels { verb: verb.into(), kind: kind.into() }).observe(elapsed.as_secs_f64());
    }

    /// Counts and times one call to the store.
    pub fn observe_storage(&self, operation: &str, ok: bool, elapsed: Duration) {
        let labels = OperationLabels { operation: operation.into() };
        self.storage_operations.get_or_create(&labels).inc();
        if !ok {
            self.storage_operation_errors.get_or_create(&labels).inc();
        }
        self.storage_latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Counts a connection refused by the allowlist.
    pub fn refused_connection(&self) {
        self.refused_connections.inc();
    }

    /// Counts a request that could not be authenticated.
    pub fn authentication_failure(&self) {
        self.authentication_failures.inc();
    }

    /// Counts a request authorization refused.
    pub fn authorization_denial(&self) {
        self.authorization_denials.inc();
    }

    /// Counts a request in flight until the guard drops.
    pub fn inflight(&self) -> GaugeGuard {
        self.inflight.inc();
        GaugeGuard(self.inflight.clone())
    }

    /// Counts an open watch until the guard drops.
    pub fn watcher(&self, kind: &str) -> GaugeGuard {
        let g = self.watchers.get_or_create(&KindLabels { kind: kind.into() }).clone();
        g.inc();
        GaugeGuard(g)
    }

    /// The Prometheus text exposition, with the store's figures read now.
    pub fn render(&self, store: &Arc<dyn Store>) -> String {
        let s = store.stats();
        self.store_objects.set(s.objects as i64);
        self.store_revision.set(s.current_revision as i64);
        self.store_compacted_revision.set(s.compacted_revision as i64);
        self.store_size_bytes.set(s.disk_bytes as i64);
        self.store_live_bytes.set(s.live_bytes as i64);
        {
            // The store keeps running totals; counters only go up by the difference.
            let _serial = self.store_sync.lock_or_recover();
            catch_up(&self.store_flushes, s.flushes);
            catch_up(&self.store_writes, s.writes);
            catch_up(&self.store_compactions, s.compactions);
            catch_up(&self.store_defrags, s.defrags);
            let seconds = s.defrag_seconds - self.store_defrag_seconds.get();
            if seconds > 0.0 {
                self.store_defrag_seconds.inc_by(seconds);
            }
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Brings a counter mirroring a store figure up to `total`.
fn catch_up(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

/// A store whose every call is counted and timed in [`Metrics`].
pub struct MeteredStore {
    inner: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl MeteredStore {
    pub fn wrap(inner: Arc<dyn Store>, metrics: Arc<Metrics>) -> Arc<dyn Store> {
        Arc::new(MeteredStore { inner, metrics })
    }

    fn observe<T>(&self, operation: &str, start: std::time::Instant, r: &storage::Result<T>) {
        self.metrics.observe_storage(operation, r.is_ok(), start.elapsed());
    }
}

#[async_trait::async_trait]
impl Store for MeteredStore {
    async fn create(&self, key: &str, value: bytes::Bytes) -> storage::Result<Revision> {
        let start = std::time::Instant::now();
        let r = self.inner.create(key, value).await;
        self.observe("create", start, &r);
        r
    }

    async fn update(&self, key: &str, value: bytes::Bytes, expected: Option<Revision>) -> storage::Result<Revision> {
        let start = std::time::Instant::now();
        let r = self.inner.update(key, value, expected).await;
        self.observe("update", start, &r);
        r
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> storage::Result<(Revision, KeyValue)> {
        let start = std::time::Instant::now();
        let r = self.inner.delete(key, expected).await;
        self.observe("delete", start, &r);
        r
    }

    fn get(&self, key: &str) -> storage::Result<Option<KeyValue>> {
        let start = std::time::Instant::now();
        let r = self.inner.get(key);
        self.observe("get", start, &r);
        r
    }

    fn list(&self, prefix: &str) -> storage::Result<(Vec<KeyValue>, Revision)> {
        let start = std::time::Instant::now();
        let r = self.inner.list(prefix);
        self.observe("list", start, &r);
        r
    }

    async fn list_at_least(&self, prefix: &str, min: Revision) -> storage::Result<(Vec<KeyValue>, Revision)> {
        let start = std::time::Instant::now();
        let r = self.inner.list_at_least(prefix, min).await;
        self.observe("list", start, &r);
        r
    }

    fn watch(&self, prefix: &str, from: Revision) -> storage::Result<WatchStream> {
        let start = std::time::Instant::now();
        let r = self.inner.watch(prefix, from);
        self.observe("watch", start, &r);
        r
    }

    fn current_revision(&self) -> Revision {
        self.inner.current_revision()
    }

    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }

    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}
