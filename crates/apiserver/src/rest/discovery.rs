//! Discovery as Kubernetes serves it (the legacy, unaggregated format, which
//! kubectl falls back to): `/version`, `/api`, `/apis`, each group-version's
//! resource list with verbs, short names, categories and subresources, and
//! the OpenAPI v3 documents. Every answer comes from the one kind table
//! ([`berth_api::resource::KINDS`], less what `--disable-api` hides).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use berth_api::KindInfo;
use http::StatusCode;
use serde_json::{Value, json};

use super::status::Problem;
use super::{Rest, json};
use crate::authn::Authenticated;

/// The Kubernetes version Berth's API corresponds to (kubectl warns beyond ±1 minor).
pub const KUBERNETES_VERSION: &str = "v1.32.0";

/// The verbs of every stored kind.
const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/// Groups served beside the stored kinds' own: access reviews and `auth whoami`.
const REVIEW_GROUPS: &[&str] = &["authorization.k8s.io/v1", "authentication.k8s.io/v1"];

fn who(req: &Request) -> Option<Authenticated> {
    req.extensions().get::<Authenticated>().cloned()
}

/// Checks a non-resource GET and answers `value`, or the refusal.
fn answer(rest: &Rest, req: &Request, value: impl FnOnce() -> Value) -> Response {
    match rest.handlers.non_resource(who(req).as_ref(), req.uri().path()) {
        Ok(_) => json(StatusCode::OK, &value()),
        Err(e) => Problem::from_error(e, None).into_response(),
    }
}

pub async fn version(State(rest): State<Arc<Rest>>, req: Request) -> Response {
    answer(&rest, &req, || {
        json!({
            "major": "1",
            "minor": "32",
            "gitVersion": format!("{KUBERNETES_VERSION}+berth.{}", env!("CARGO_PKG_VERSION")),
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": "none (berth is written in Rust)",
            "compiler": "rustc",
            "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
        })
    })
}

/// The machine as Go names it (`amd64`, `arm64`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub async fn api_versions(State(rest): State<Arc<Rest>>, req: Request) -> Response {
    let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()));
    let host = host.unwrap_or("").to_string();
    answer(&rest, &req, || {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
        })
    })
}

/// The non-core group-versions served, in a stable order.
fn group_versions(rest: &Rest) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for k in berth_api::resource::KINDS.iter().filter(|k| rest.handlers.serves(k)) {
        if k.api_version.contains('/') && !out.contains(&k.api_version) {
            out.push(k.api_version);
        }
    }
    out.extend(REVIEW_GROUPS);
    out
}

pub async fn api_groups(State(rest): State<Arc<Rest>>, req: Request) -> Response {
    let groups: Vec<Value> = group_versions(&rest)
        .into_iter()
        .filter_map(|gv| {
            let (group, version) = gv.split_once('/')?;
            let v = json!({"groupVersion": gv, "version": version});
            Some(json!({"name": group, "versions": [v.clone()], "preferredVersion": v}))
        })
        .collect();
    answer(&rest, &req, || json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

/// One resource of a list.
fn resource(name: &str, singular: &str, namespaced: bool, kind: &str, verbs: &[&str]) -> Value {
    json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs})
}

/// The resources of a stored kind: itself and its subresources.
fn kind_resources(k: &KindInfo) -> Vec<Value> {
    let mut main = resource(k.plural, k.singular, k.namespaced, k.kind, VERBS);
    if !k.short_names.is_empty() {
        main["shortNames"] = json!(k.short_names);
    }
    if matches!(k.kind, "Pod" | "ReplicationController" | "Service") {
        main["categories"] = json!(["all"]);
    }
    let mut out = vec![main];
    if k.has_status {
        out.push(resource(&format!("{}/status", k.plural), "", k.namespaced, k.kind, &["get", "patch", "update"]));
    }
    match k.kind {
        "Pod" => {
            out.push(resource("pods/log", "", true, "Pod", &["get"]));
            out.push(resource("pods/exec", "", true, "PodExecOptions", &["create", "get"]));
            out.push(resource("pods/binding", "", true, "Binding", &["create"]));
            out.push(resource("bindings", "binding", true, "Binding", &["create"]));
        }
        "ReplicationController" => {
            let mut scale = resource("replicationcontrollers/scale", "", true, "Scale", &["get", "patch", "update"]);
            scale["group"] = json!("autoscaling");
            scale["version"] = json!("v1");
            out.push(scale);
        }
        _ => {}
    }
    out
}

/// `GET /api/v1` and `GET /apis/{group}/{version}`.
pub async fn resource_list(rest: &Rest, who: Option<&Authenticated>, group_version: &str) -> Response {
    let path = if group_version.contains('/') { format!("/apis/{group_version}") } else { format!("/api/{group_version}") };
    if let Err(e) = rest.handlers.non_resource(who, &path) {
        return Problem::from_error(e, None).into_response();
    }
    let resources: Vec<Value> = match group_version {
        "authorization.k8s.io/v1" => vec![
            resource("selfsubjectaccessreviews", "selfsubjectaccessreview", false, "SelfSubjectAccessReview", &["create"]),
            resource("subjectaccessreviews", "subjectaccessreview", false, "SubjectAccessReview", &["create"]),
        ],
        "authentication.k8s.io/v1" => {
            vec![resource("selfsubjectreviews", "selfsubjectreview", false, "SelfSubjectReview", &["create"])]
        }
        gv => {
            berth_api::resource::KINDS.iter().filter(|k| k.api_version == gv && rest.handlers.serves(k)).flat_map(kind_resources).collect()
        }
    };
    if resources.is_empty() {
        return Problem::not_found_path(&path).into_response();
    }
    json(StatusCode::OK, &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

pub async fn openapi_index(State(rest): State<Arc<Rest>>, req: Request) -> Response {
    if let Err(e) = rest.handlers.non_resource(who(&req).as_ref(), "/openapi/v3") {
        return Problem::from_error(e, None).into_response();
    }
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], rest.openapi.index().to_vec()).into_response()
}

pub async fn openapi_document(State(rest): State<Arc<Rest>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    if let Err(e) = rest.handlers.non_resource(who(&req).as_ref(), &path) {
        return Problem::from_error(e, None).into_response();
    }
    match rest.openapi.document(path.trim_start_matches("/openapi/v3/")) {
        Some((bytes, hash)) => (
            StatusCode::OK,
            [
                (http::header::CONTENT_TYPE, "application/json".to_string()),
                (http::header::ETAG, format!("\"{hash}\"")),
                (http::header::CACHE_CONTROL, "public, immutable".to_string()),
            ],
            bytes.to_vec(),
        )
            .into_response(),
        None => Problem::not_found_path(&path).into_response(),
    }
}
