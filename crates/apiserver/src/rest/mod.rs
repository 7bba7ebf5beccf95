//! Kubernetes' REST API on the API port, beside gRPC: the transport that
//! kubectl, client-go and the Python client speak. It parses Kubernetes'
//! URLs, query parameters and bodies, calls the same [`Handlers`] as gRPC
//! (so authentication, authorization, admission, validation, audit and
//! storage are one code path), and answers Kubernetes-shaped JSON:
//! objects, lists, Tables, watch streams and `metav1.Status` errors.
//! `../shared/k8s-rest/FINDINGS.md` (in the design repository) records what
//! real clients send and expect.
//!
//! - [`discovery`]: `/version`, `/api`, `/apis`, the resource lists.
//! - [`body`]: request bodies (JSON, YAML, kubectl's protobuf) to objects.
//! - [`status`]: errors as `metav1.Status`.
//! - [`objects`]: CRUD, patch, delete, subresources.
//! - [`watch`]: watch streams (objects or Table rows).
//! - [`reviews`]: access reviews and `auth whoami`.
//! - [`exec`]: `pods/log` and `pods/exec` (WebSocket) relayed to the kubelet.

pub mod body;
pub mod discovery;
pub mod exec;
pub mod objects;
pub mod reviews;
pub mod status;
pub mod watch;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use berth_api::KindInfo;
use berth_base::shutdown::Stop;
use http::{HeaderMap, Method};

use crate::authn::Authenticated;
use crate::error::Error;
use crate::handlers::Handlers;
use status::Problem;

/// The REST transport's shared state.
pub struct Rest {
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) openapi: berth_api::openapi::OpenApi,
    /// Becomes true when the server shuts down (ends watch streams).
    pub(crate) stopping: Stop,
}

/// The REST routes, merged into the API port's one router.
pub fn router(handlers: Arc<Handlers>, stopping: Stop) -> Router {
    let served: Vec<&'static KindInfo> = berth_api::resource::KINDS.iter().filter(|k| handlers.serves(k)).collect();
    let rest = Arc::new(Rest { openapi: berth_api::openapi::OpenApi::new(&served), handlers, stopping });
    Router::new()
        .route("/version", get(discovery::version))
        .route("/version/", get(discovery::version))
        .route("/api", get(discovery::api_versions))
        .route("/api/", get(discovery::api_versions))
        .route("/apis", get(discovery::api_groups))
        .route("/apis/", get(discovery::api_groups))
        .route("/openapi/v3", get(discovery::openapi_index))
        .route("/openapi/v3/{*path}", get(discovery::openapi_document))
        .route("/api/{*path}", any(dispatch))
        .route("/apis/{*path}", any(dispatch))
        .with_state(rest)
}

/// The query parameters of a request, parsed as Kubernetes does: unknown
/// ones are ignored, booleans parse as Go's `strconv.ParseBool`.
#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
        Query { pairs }
    }

    /// The first value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter (`command=a&command=b`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }

    /// The parameter as a string, empty when absent.
    pub fn string(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// A boolean parameter (absent: false).
    pub fn flag(&self, key: &str) -> Result<bool, Error> {
        match self.get(key) {
            None | Some("") => Ok(false),
            Some("1" | "t" | "T" | "TRUE" | "true" | "True") => Ok(true),
            Some("0" | "f" | "F" | "FALSE" | "false" | "False") => Ok(false),
            Some(other) => Err(Error::BadRequest(format!("{key}: invalid boolean value {other:?}"))),
        }
    }

    /// An integer parameter.
    pub fn int(&self, key: &str) -> Result<Option<i64>, Error> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| Error::BadRequest(format!("{key}: invalid integer value {v:?}"))),
        }
    }

    /// `resourceVersion` as a revision ("" and "0": any).
    pub fn resource_version(&self) -> Result<u64, Error> {
        match self.get("resourceVersion") {
            None | Some("") => Ok(0),
            Some(v) => v.parse().map_err(|_| Error::BadRequest(format!("resourceVersion: invalid value {v:?}: must be a revision number"))),
        }
    }

    /// `dryRun`: only `All` is defined; anything else is refused as Kubernetes does.
    pub fn dry_run(&self) -> Result<bool, Error> {
        let values = self.all("dryRun");
        for v in &values {
            if v != "All" {
                return Err(Error::BadRequest(format!("dryRun: Unsupported value: {v:?}: supported values: \"All\"")));
            }
        }
        Ok(!values.is_empty())
    }
}

/// Where a request under `/api` or `/apis` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `v1`, `rbac.authorization.k8s.io/v1`.
    pub group_version: String,
    /// The namespace in the URL, if any.
    pub namespace: Option<String>,
    /// The resource (plural), empty for the group-version's resource list.
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Target {
    /// Parses the path after `/api/` or `/apis/` (`v1/namespaces/default/pods/web/log`).
    pub fn parse(legacy: bool, path: &str) -> Option<Target> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        let (group_version, rest) = if legacy {
            let (v, rest) = segments.split_first()?;
            (v.to_string(), rest)
        } else {
            if segments.len() < 2 {
                return None;
            }
            (format!("{}/{}", segments[0], segments[1]), &segments[2..])
        };
        if rest.iter().any(|s| s.is_empty()) {
            return None;
        }
        let mut t = Target { group_version, namespace: None, resource: String::new(), name: None, subresource: None };
        let rest: &[&str] = match rest {
            // The Namespace object itself and its subresources.
            ["namespaces", name] => {
                t.resource = "namespaces".into();
                t.name = Some(name.to_string());
                return Some(t);
            }
            ["namespaces", name, sub @ ("status" | "finalize")] => {
                t.resource = "namespaces".into();
                t.name = Some(name.to_string());
                t.subresource = Some(sub.to_string());
                return Some(t);
            }
            ["namespaces", ns, more @ ..] if !more.is_empty() => {
                t.namespace = Some(ns.to_string());
                more
            }
            other => other,
        };
        match rest {
            [] => {}
            [resource] => t.resource = resource.to_string(),
            [resource, name] => {
                t.resource = resource.to_string();
                t.name = Some(name.to_string());
            }
            [resource, name, sub] => {
                t.resource = resource.to_string();
                t.name = Some(name.to_string());
                t.subresource = Some(sub.to_string());
            }
            _ => return None,
        }
        Some(t)
    }
}

/// Every request under `/api/` and `/apis/`.
async fn dispatch(State(rest): State<Arc<Rest>>, req: Request) -> Response {
    let legacy = req.uri().path().starts_with("/api/");
    let path = req.uri().path().trim_start_matches(if legacy { "/api/" } else { "/apis/" }).to_string();
    let Some(target) = Target::parse(legacy, &path) else {
        return Problem::not_found_path(req.uri().path()).into_response();
    };
    let query = Query::parse(req.uri().query());
    let who = req.extensions().get::<Authenticated>().cloned();
    if target.resource.is_empty() {
        return match *req.method() {
            Method::GET => discovery::resource_list(&rest, who.as_ref(), &target.group_version).await,
            _ => Problem::method_not_allowed().into_response(),
        };
    }
    match reviews::route(&rest, &target, who.as_ref(), req).await {
        Ok(response) => response,
        Err(req) => objects::route(&rest, target, query, who, req).await,
    }
}

/// Whether the client asked for a Table (`kubectl get`'s Accept header).
pub fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| m.split(';').map(str::trim).collect::<Vec<_>>())
        .find(|parts| matches!(parts.first(), Some(&("application/json" | "*/*" | "application/*"))) || parts.contains(&"as=Table"))
        .is_some_and(|parts| parts.contains(&"as=Table") && parts.contains(&"g=meta.k8s.io"))
}

/// A JSON answer with Kubernetes' content type.
pub fn json(code: http::StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (code, [(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(legacy: bool, p: &str) -> Option<Target> {
        Target::parse(legacy, p)
    }

    #[test]
    fn should_parse_kubernetes_paths() {
        let pod = t(true, "v1/namespaces/default/pods/web").expect("pod");
        assert_eq!(
            (pod.group_version.as_str(), pod.namespace.as_deref(), pod.resource.as_str(), pod.name.as_deref()),
            ("v1", Some("default"), "pods", Some("web"))
        );
        let log = t(true, "v1/namespaces/default/pods/web/log").expect("log");
        assert_eq!(log.subresource.as_deref(), Some("log"));
        let ns = t(true, "v1/namespaces/team-a").expect("namespace");
        assert_eq!((ns.resource.as_str(), ns.name.as_deref(), ns.namespace), ("namespaces", Some("team-a"), None));
        let fin = t(true, "v1/namespaces/team-a/finalize").expect("finalize");
        assert_eq!(fin.subresource.as_deref(), Some("finalize"));
        let all = t(true, "v1/pods").expect("all pods");
        assert_eq!((all.resource.as_str(), all.namespace), ("pods", None));
        let roles = t(false, "rbac.authorization.k8s.io/v1/namespaces/x/roles").expect("roles");
        assert_eq!((roles.group_version.as_str(), roles.resource.as_str()), ("rbac.authorization.k8s.io/v1", "roles"));
        assert_eq!(t(true, "v1").map(|t| t.resource), Some(String::new()));
        assert!(t(true, "v1/namespaces/a/pods/b/c/d").is_none());
        assert!(t(false, "rbac.authorization.k8s.io").is_none());
    }

    #[test]
    fn should_parse_booleans_as_go_does() {
        let q = Query::parse(Some("watch=True&a=1&b=false&c=yes&command=ls&command=-l"));
        assert!(q.flag("watch").expect("True"));
        assert!(q.flag("a").expect("1"));
        assert!(!q.flag("b").expect("false"));
        assert!(!q.flag("missing").expect("absent"));
        assert!(q.flag("c").is_err());
        assert_eq!(q.all("command"), vec!["ls", "-l"]);
    }

    #[test]
    fn should_tell_table_requests() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .expect("header"),
        );
        assert!(wants_table(&h));
        h.insert(http::header::ACCEPT, "application/json".parse().expect("header"));
        assert!(!wants_table(&h));
        assert!(!wants_table(&HeaderMap::new()));
    }
}
