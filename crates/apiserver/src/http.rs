//! Plain HTTP beside the gRPC API on the same port: `/livez`, `/readyz`,
//! `/healthz` and Prometheus `/metrics`, as kube-apiserver serves them.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::watch;

use crate::metrics::Metrics;
use crate::storage::Store;

/// What the health endpoints look at.
#[derive(Clone)]
pub struct HealthState {
    pub metrics: Arc<Metrics>,
    pub store: Arc<dyn Store>,
    /// False once shutdown has begun.
    pub ready: watch::Receiver<bool>,
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
    if *s.ready.borrow() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down")
    }
}

async fn metrics(State(s): State<HealthState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], s.metrics.render(&s.store))
}
