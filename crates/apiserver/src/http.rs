//! Health beside the gRPC API on the same port, as kube-apiserver serves it:
//! `/livez`, `/readyz`, `/healthz` (with `?verbose`) and the gRPC health
//! service, through the shared checks of `berth_base::health`, with the
//! apiserver's own checks (the store answers and can write, the watch cache
//! serves watches); and Prometheus `/metrics`. The health endpoints answer
//! anyone; `/metrics` needs a user RBAC lets `get` the path `/metrics`
//! (when authentication is on).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use berth_base::health::{self, Checks};

use crate::authn::Authenticated;
use crate::authz::Attributes;
use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::storage::Store;

/// What `/metrics` needs.
#[derive(Clone)]
pub struct MetricsState {
    pub metrics: Arc<Metrics>,
    pub store: Arc<dyn Store>,
    /// Who may read `/metrics`.
    pub gate: Arc<Gate>,
}

/// The apiserver's readiness checks over `store`, whose files live in `data_dir`.
pub fn checks(store: Arc<dyn Store>, data_dir: PathBuf) -> Checks {
    let reads = store.clone();
    Checks::builder()
        .ready("store", move || {
            reads.get("/registry/namespaces/default").map(drop).map_err(|e| format!("the store does not answer reads: {e}"))
        })
        .ready_async("store-writable", move || {
            let dir = data_dir.clone();
            async move {
                let probe = dir.clone();
                tokio::task::spawn_blocking(move || probe_write(&probe))
                    .await
                    .map_err(|e| format!("the write probe failed: {e}"))?
                    .map_err(|e| format!("cannot write to the data directory {}: {e}", dir.display()))
            }
        })
        .ready("watch-cache", move || {
            // A watch from the newest revision must be servable from memory.
            store.watch("/registry/", store.current_revision()).map(drop).map_err(|e| format!("cannot open a watch: {e}"))
        })
        .build()
}

/// A write the way the store writes: a file created, synced and removed
/// beside its data, so that a full or read-only disk shows.
fn probe_write(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let path = dir.join(".readyz-probe");
    let mut f = std::fs::File::create(&path)?;
    f.write_all(b"ok")?;
    f.sync_all()?;
    std::fs::remove_file(&path)
}

/// The plain HTTP health routes and `/metrics` (the gRPC health service,
/// `checks.grpc()`, goes beside the API service).
pub fn router(checks: &Checks, state: MetricsState) -> Router {
    checks.router().merge(Router::new().route("/metrics", get(metrics)).with_state(state))
}

async fn metrics(State(s): State<MetricsState>, who: Option<Extension<Authenticated>>) -> axum::response::Response {
    let allowed = s.gate.authenticate(who.as_ref().map(|w| &w.0)).map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string())).and_then(|user| {
        s.gate.authorize(&user, &Attributes::non_resource("get", "/metrics")).map_err(|e| (StatusCode::FORBIDDEN, e.to_string()))
    });
    match allowed {
        Ok(()) => ([(header::CONTENT_TYPE, health::METRICS_CONTENT_TYPE)], s.metrics.render(&s.store)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}
