//! Plain HTTP beside the gRPC API on the same port: `/livez`, `/readyz`,
//! `/healthz` and Prometheus `/metrics`, as kube-apiserver serves them. The
//! health endpoints answer anyone; `/metrics` needs a user RBAC lets `get`
//! the path `/metrics` (when authentication is on).

use std::sync::Arc;

use axum::Extension;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::authn::Authenticated;
use crate::authz::Attributes;
use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::storage::Store;

/// What the health endpoints look at.
#[derive(Clone)]
pub struct HealthState {
    pub metrics: Arc<Metrics>,
    pub store: Arc<dyn Store>,
    /// False once shutdown has begun.
    pub ready: watch::Receiver<bool>,
    /// Who may read `/metrics`.
    pub gate: Arc<Gate>,
}

pub fn router(state: HealthState) -> Router {
    Router::new()
        .route("/livez", get(live))
        .route("/healthz", get(ready))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn live() -> &'static str {
    "ok"
}

async fn ready(State(s): State<HealthState>) -> impl IntoResponse {
    if *s.ready.borrow() { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "shutting down") }
}

async fn metrics(State(s): State<HealthState>, who: Option<Extension<Authenticated>>) -> axum::response::Response {
    let allowed = s.gate.authenticate(who.as_ref().map(|w| &w.0)).map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string())).and_then(|user| {
        s.gate.authorize(&user, &Attributes::non_resource("get", "/metrics")).map_err(|e| (StatusCode::FORBIDDEN, e.to_string()))
    });
    match allowed {
        Ok(()) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.render(&s.store)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}
