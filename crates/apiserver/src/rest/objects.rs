//! The object endpoints: GET, LIST (JSON or Table), WATCH, POST, PUT,
//! PATCH (strategic merge, merge, JSON patch), DELETE and DELETE collection
//! of every stored kind, and the `status`, `scale`, `binding` and
//! `eviction` subresources. Each maps onto one [`Handlers`] call.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use berth_api::patch::{self, PatchType};
use berth_api::pb::core::Binding;
use berth_api::printers::IncludeObject;
use berth_api::{KindInfo, Object};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};

use super::body::{self, FieldValidation};
use super::status::{Problem, success};
use super::{Query, Rest, Target, json, wants_table};
use crate::authn::Authenticated;
use crate::error::Error;
use crate::handlers::{Change, ListQuery};
use crate::registry::DeleteOptions;

/// The largest request body accepted (kube-apiserver's limit is 3 MiB).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// What a request asks of an object endpoint, decided from its method and URL.
pub async fn route(rest: &Rest, target: Target, query: Query, who: Option<Authenticated>, req: Request) -> Response {
    let who = who.as_ref();
    if target.group_version == "v1" && target.resource == "bindings" && target.name.is_none() {
        return match *req.method() {
            Method::POST => bind(rest, who, target.namespace.as_deref().unwrap_or("default"), None, req).await,
            _ => Problem::method_not_allowed().into_response(),
        };
    }
    let Some(info) = berth_api::resource::KINDS
        .iter()
        .find(|k| k.plural == target.resource && k.api_version == target.group_version && rest.handlers.serves(k))
    else {
        return Problem::not_found_path(req.uri().path()).into_response();
    };
    if !info.namespaced && target.namespace.is_some() {
        return Problem::not_found_path(req.uri().path()).into_response();
    }
    let ns = target.namespace.clone().unwrap_or_default();
    let result = match (target.name.clone(), target.subresource.as_deref(), req.method().clone()) {
        (None, None, Method::GET) if query.flag("watch").unwrap_or(false) => {
            return super::watch::serve(rest, who, info, &ns, &query, req.headers()).await;
        }
        (None, None, Method::GET) => list(rest, who, info, &ns, &query, req.headers()).await,
        (None, None, Method::POST) => create(rest, who, info, &ns, &query, req).await,
        (None, None, Method::DELETE) => delete_collection(rest, who, info, &ns, &query, req).await,
        (Some(name), None, Method::GET) => get(rest, who, info, &ns, &name, "", &query, req.headers()).await,
        (Some(name), None | Some("status" | "finalize"), Method::PUT) => {
            let status_only = target.subresource.as_deref() == Some("status");
            update(rest, who, info, &ns, &name, status_only, &query, req).await
        }
        (Some(name), None, Method::PATCH) => patch_object(rest, who, info, &ns, &name, false, &query, req).await,
        (Some(name), None, Method::DELETE) => delete(rest, who, info, &ns, &name, &query, req).await,
        (Some(name), Some("status"), Method::GET) => get(rest, who, info, &ns, &name, "status", &query, req.headers()).await,
        (Some(name), Some("status"), Method::PATCH) => patch_object(rest, who, info, &ns, &name, true, &query, req).await,
        (Some(name), Some("scale"), m) if info.kind == "ReplicationController" => scale(rest, who, info, &ns, &name, m, &query, req).await,
        (Some(name), Some("binding"), Method::POST) if info.kind == "Pod" => {
            return bind(rest, who, &ns, Some(&name), req).await;
        }
        (Some(name), Some("eviction"), Method::POST) if info.kind == "Pod" => evict(rest, who, info, &ns, &name, &query, req).await,
        (Some(name), Some("log"), Method::GET) if info.kind == "Pod" => return super::exec::logs(rest, who, &ns, &name, &query).await,
        (Some(name), Some("exec"), _) if info.kind == "Pod" => return super::exec::exec(rest, who.cloned(), &ns, &name, query, req).await,
        (_, Some("status" | "scale" | "binding" | "eviction" | "log" | "exec" | "finalize"), _) | (_, None, _) => {
            Err(Problem::method_not_allowed())
        }
        (_, Some(_), _) => Err(Problem::not_found_path(req.uri().path())),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

type Answer = Result<Response, Problem>;

fn problem(info: &KindInfo) -> impl Fn(Error) -> Problem + '_ {
    move |e| Problem::from_error(e, Some(info))
}

async fn read_body(req: Request) -> Result<(HeaderMap, Bytes), Problem> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", format!("the request body could not be read: {e}"))
    })?;
    Ok((parts.headers, bytes))
}

/// An object, or a one-row Table when the client asked for Tables.
fn object_answer(code: StatusCode, info: &KindInfo, o: &Object, query: &Query, headers: &HeaderMap, warnings: &[String]) -> Response {
    let value = if wants_table(headers) {
        let rv = o.metadata().map(|m| m.resource_version.clone()).unwrap_or_default();
        berth_api::printers::table(
            info,
            std::slice::from_ref(o),
            &rv,
            IncludeObject::parse(query.string("includeObject")),
            true,
            chrono::Utc::now(),
        )
    } else {
        o.to_json_value()
    };
    let mut r = json(code, &value);
    add_warnings(&mut r, warnings);
    r
}

fn add_warnings(r: &mut Response, warnings: &[String]) {
    for w in warnings {
        let text = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append("warning", v);
        }
    }
}

/// A list as Kubernetes answers it (`items` always present).
pub fn list_value(info: &KindInfo, items: &[Object], resource_version: u64) -> Value {
    json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": info.api_version,
        "metadata": {"resourceVersion": resource_version.to_string()},
        "items": items.iter().map(Object::to_json_value).collect::<Vec<_>>(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn get(
    rest: &Rest,
    who: Option<&Authenticated>,
    info: &KindInfo,
    ns: &str,
    name: &str,
    sub: &'static str,
    query: &Query,
    headers: &HeaderMap,
) -> Answer {
    let o = if sub.is_empty() {
        rest.handlers.get(who, info.kind, ns, name).await
    } else {
        rest.handlers.get_sub(who, info.kind, ns, name, sub).await
    }
    .map_err(problem(info))?;
    Ok(object_answer(StatusCode::OK, info, &o, query, headers, &[]))
}

async fn list(rest: &Rest, who: Option<&Authenticated>, info: &KindInfo, ns: &str, query: &Query, headers: &HeaderMap) -> Answer {
    let rv = query.resource_version().map_err(problem(info))?;
    let q = ListQuery {
        kind: info.kind,
        namespace: ns,
        label_selector: query.string("labelSelector"),
        field_selector: query.string("fieldSelector"),
        min_resource_version: rv,
    };
    let (items, rev) = rest.handlers.list(who, &q).await.map_err(problem(info))?;
    let value = if wants_table(headers) {
        let include = IncludeObject::parse(query.string("includeObject"));
        berth_api::printers::table(info, &items, &rev.to_string(), include, true, chrono::Utc::now())
    } else {
        list_value(info, &items, rev)
    };
    Ok(json(StatusCode::OK, &value))
}

/// Reads a write's body as an object of `info` at the URL's place.
async fn read_object(
    info: &KindInfo,
    ns: &str,
    name: Option<&str>,
    query: &Query,
    req: Request,
) -> Result<(body::Decoded, HeaderMap), Problem> {
    let validation = FieldValidation::from_query(query)?;
    let field_manager = query.string("fieldManager");
    if field_manager.len() > 128 || field_manager.chars().any(|c| c.is_control()) {
        return Err(Problem::bad_request("fieldManager: Invalid value: must be at most 128 printable characters"));
    }
    let (headers, bytes) = read_body(req).await?;
    let value = body::to_value(&headers, &bytes)?;
    let url_ns = if info.namespaced { Some(if ns.is_empty() { "default" } else { ns }) } else { None };
    Ok((body::decode_object(info, value, url_ns, name, validation)?, headers))
}

async fn create(rest: &Rest, who: Option<&Authenticated>, info: &KindInfo, ns: &str, query: &Query, req: Request) -> Answer {
    let dry_run = query.dry_run().map_err(problem(info))?;
    let (decoded, headers) = read_object(info, ns, None, query, req).await?;
    let created = rest.handlers.create(who, decoded.object, dry_run).await.map_err(problem(info))?;
    Ok(object_answer(StatusCode::CREATED, info, &created, query, &headers, &decoded.warnings))
}

#[allow(clippy::too_many_arguments)]
async fn update(
    rest: &Rest,
    who: Option<&Authenticated>,
    info: &KindInfo,
    ns: &str,
    name: &str,
    status_only: bool,
    query: &Query,
    req: Request,
) -> Answer {
    let dry_run = query.dry_run().map_err(problem(info))?;
    let (decoded, headers) = read_object(info, ns, Some(name), query, req).await?;
    let updated = rest.handlers.update(who, decoded.object, status_only, dry_run).await.map_err(problem(info))?;
    Ok(object_answer(StatusCode::OK, info, &updated, query, &headers, &decoded.warnings))
}

/// The patch type of a PATCH request, or 415 naming the ones accepted.
fn patch_type(headers: &HeaderMap) -> Result<PatchType, Problem> {
    match PatchType::from_content_type(&body::content_type(headers)) {
        Some(t) => Ok(t),
        None => Err(Problem::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: {}",
            patch::ACCEPTED_MEDIA_TYPES
        ))),
    }
}

fn patch_problem(e: patch::PatchError) -> Problem {
    let code = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let reason = match code.as_u16() {
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        _ => "BadRequest",
    };
    Problem::new(code, reason, e.to_string())
}

#[allow(clippy::too_many_arguments)]
async fn patch_object(
    rest: &Rest,
    who: Option<&Authenticated>,
    info: &'static KindInfo,
    ns: &str,
    name: &str,
    status_only: bool,
    query: &Query,
    req: Request,
) -> Answer {
    let dry_run = query.dry_run().map_err(problem(info))?;
    let validation = FieldValidation::from_query(query)?;
    let (headers, bytes) = read_body(req).await?;
    let ptype = patch_type(&headers)?;
    let mut warnings = Vec::new();
    let mut failure: Option<Problem> = None;
    let sub = if status_only { "status" } else { "" };
    let result = rest
        .handlers
        .modify(who, "patch", info.kind, ns, name, sub, dry_run, |current| {
            let patched = patch::apply(info, ptype, &current.to_json_value(), &bytes).map_err(|e| {
                let msg = e.to_string();
                failure = Some(patch_problem(e));
                Error::BadRequest(msg)
            })?;
            let decoded = body::decode_checked(info, patched, validation).map_err(|p| {
                let msg = p.message.clone();
                failure = Some(p);
                Error::BadRequest(msg)
            })?;
            warnings = decoded.warnings;
            Ok(Change { object: decoded.object, status_only })
        })
        .await;
    match result {
        Ok(o) => Ok(object_answer(StatusCode::OK, info, &o, query, &headers, &warnings)),
        Err(e) => Err(failure.take().unwrap_or_else(|| Problem::from_error(e, Some(info)))),
    }
}

/// DeleteOptions from the query and the body (kubectl sends a JSON body,
/// the Python client query parameters).
fn delete_options(query: &Query, body: &[u8], headers: &HeaderMap) -> Result<(DeleteOptions, bool), Problem> {
    let mut opts = DeleteOptions {
        grace_period_seconds: query.int("gracePeriodSeconds").map_err(|e| Problem::from_error(e, None))?,
        propagation_policy: query.string("propagationPolicy").to_string(),
        ..Default::default()
    };
    let mut dry_run = query.dry_run().map_err(|e| Problem::from_error(e, None))?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let mut v = body::to_value(headers, body)?;
        body::prune_nulls(&mut v);
        // An Eviction carries its options under deleteOptions.
        let v = v.get("deleteOptions").cloned().unwrap_or(v);
        if let Some(g) = v.get("gracePeriodSeconds").and_then(Value::as_i64) {
            opts.grace_period_seconds = Some(g);
        }
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation_policy = p.to_string();
        }
        if v.get("orphanDependents").and_then(Value::as_bool) == Some(true) && opts.propagation_policy.is_empty() {
            opts.propagation_policy = "Orphan".into();
        }
        if let Some(pre) = v.get("preconditions") {
            opts.uid = pre.get("uid").and_then(Value::as_str).unwrap_or("").to_string();
            opts.resource_version = pre.get("resourceVersion").and_then(Value::as_str).unwrap_or("").to_string();
        }
        if let Some(d) = v.get("dryRun").and_then(Value::as_array) {
            for x in d {
                if x.as_str() != Some("All") {
                    return Err(Problem::bad_request(format!("dryRun: Unsupported value: {x}: supported values: \"All\"")));
                }
            }
            dry_run |= !d.is_empty();
        }
    }
    Ok((opts, dry_run))
}

/// Whether a deleted object is still there (graceful deletion, finalizers).
fn still_present(o: &Object) -> bool {
    o.metadata().is_some_and(|m| !m.deletion_timestamp.is_empty() || !m.finalizers.is_empty())
}

#[allow(clippy::too_many_arguments)]
async fn delete(rest: &Rest, who: Option<&Authenticated>, info: &KindInfo, ns: &str, name: &str, query: &Query, req: Request) -> Answer {
    let (headers, bytes) = read_body(req).await?;
    let (opts, dry_run) = delete_options(query, &bytes, &headers)?;
    let ns = if info.namespaced && ns.is_empty() { "default" } else { ns };
    let o = rest.handlers.delete(who, info.kind, ns, name, &opts, dry_run).await.map_err(problem(info))?;
    // These kinds answer a delete with the object (their clients' return types say so); the others with a Status.
    if dry_run || still_present(&o) || matches!(info.kind, "Pod" | "Service" | "ServiceAccount" | "ResourceQuota") {
        let pending = matches!(opts.propagation_policy.as_str(), "Foreground" | "Orphan") && still_present(&o);
        let code = if pending { StatusCode::ACCEPTED } else { StatusCode::OK };
        return Ok(json(code, &o.to_json_value()));
    }
    let uid = o.metadata().map(|m| m.uid.clone()).unwrap_or_default();
    Ok(json(StatusCode::OK, &success(info, name, &uid)))
}

async fn delete_collection(rest: &Rest, who: Option<&Authenticated>, info: &KindInfo, ns: &str, query: &Query, req: Request) -> Answer {
    let (headers, bytes) = read_body(req).await?;
    let (opts, dry_run) = delete_options(query, &bytes, &headers)?;
    let (items, rev) = rest
        .handlers
        .delete_collection(who, info.kind, ns, query.string("labelSelector"), query.string("fieldSelector"), &opts, dry_run)
        .await
        .map_err(problem(info))?;
    Ok(json(StatusCode::OK, &list_value(info, &items, rev)))
}

/// pods/{name}/eviction: the pod is deleted with the eviction's options
/// (there are no PodDisruptionBudgets to consult yet).
async fn evict(rest: &Rest, who: Option<&Authenticated>, info: &KindInfo, ns: &str, name: &str, query: &Query, req: Request) -> Answer {
    let (headers, bytes) = read_body(req).await?;
    let (opts, dry_run) = delete_options(query, &bytes, &headers)?;
    rest.handlers.evict(who, ns, name, &opts, dry_run).await.map_err(problem(info))?;
    Ok(json(StatusCode::CREATED, &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})))
}

/// pods/{name}/binding and bindings: assigns a pod to a node.
async fn bind(rest: &Rest, who: Option<&Authenticated>, ns: &str, pod: Option<&str>, req: Request) -> Response {
    let answer = async {
        let (headers, bytes) = read_body(req).await?;
        let mut v = body::to_value(&headers, &bytes)?;
        body::prune_nulls(&mut v);
        if let Some(m) = v.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
        }
        let mut binding: Binding =
            serde_json::from_value(v).map_err(|e| Problem::bad_request(format!("the body is not a Binding: {e}")))?;
        let meta = binding.metadata.get_or_insert_with(Default::default);
        if let Some(pod) = pod {
            if !meta.name.is_empty() && meta.name != pod {
                return Err(Problem::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({pod})",
                    meta.name
                )));
            }
            meta.name = pod.to_string();
        }
        rest.handlers.bind(who, ns, binding).await.map_err(|e| Problem::from_error(e, None))?;
        Ok::<_, Problem>(json(
            StatusCode::CREATED,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ))
    };
    answer.await.unwrap_or_else(IntoResponse::into_response)
}

/// The autoscaling/v1 Scale of a ReplicationController.
fn scale_of(o: &Object) -> Value {
    let (replicas, selector, status_replicas) = match &o.kind {
        Some(berth_api::pb::api::object::Kind::ReplicationController(rc)) => {
            let spec = rc.spec.clone().unwrap_or_default();
            let selector = spec.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            (spec.replicas.unwrap_or(1), selector, rc.status.as_ref().map(|s| s.replicas).unwrap_or(0))
        }
        _ => (0, String::new(), 0),
    };
    let meta = o.metadata().cloned().unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta.name, "namespace": meta.namespace, "uid": meta.uid,
            "resourceVersion": meta.resource_version, "creationTimestamp": meta.creation_timestamp,
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": status_replicas, "selector": selector},
    })
}

#[allow(clippy::too_many_arguments)]
async fn scale(
    rest: &Rest,
    who: Option<&Authenticated>,
    info: &'static KindInfo,
    ns: &str,
    name: &str,
    method: Method,
    query: &Query,
    req: Request,
) -> Answer {
    let dry_run = query.dry_run().map_err(problem(info))?;
    let verb = match method {
        Method::GET => {
            let o = rest.handlers.get_sub(who, info.kind, ns, name, "scale").await.map_err(problem(info))?;
            return Ok(json(StatusCode::OK, &scale_of(&o)));
        }
        Method::PUT => "update",
        Method::PATCH => "patch",
        _ => return Err(Problem::method_not_allowed()),
    };
    let (headers, bytes) = read_body(req).await?;
    let ptype = if verb == "patch" { Some(patch_type(&headers)?) } else { None };
    let put_body = if verb == "update" { Some(body::to_value(&headers, &bytes)?) } else { None };
    let mut failure: Option<Problem> = None;
    let result = rest
        .handlers
        .modify(who, verb, info.kind, ns, name, "scale", dry_run, |current| {
            let mut fail = |p: Problem| {
                let e = Error::BadRequest(p.message.clone());
                failure = Some(p);
                e
            };
            let scale = match (&ptype, &put_body) {
                (Some(t), _) => patch::apply(info, *t, &scale_of(current), &bytes).map_err(|e| fail(patch_problem(e)))?,
                (None, Some(v)) => v.clone(),
                (None, None) => return Err(Error::BadRequest("no scale given".into())),
            };
            let replicas = scale.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0);
            if replicas < 0 {
                return Err(fail(Problem::from_error(
                    Error::Invalid {
                        kind: "Scale".into(),
                        name: name.into(),
                        message: format!("spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"),
                        causes: Vec::new(),
                    },
                    Some(info),
                )));
            }
            let mut o = current.clone();
            if let Some(berth_api::pb::api::object::Kind::ReplicationController(rc)) = &mut o.kind {
                rc.spec.get_or_insert_with(Default::default).replicas = Some(replicas as i32);
            }
            if let (Some(rv), Some(m)) = (scale.pointer("/metadata/resourceVersion").and_then(Value::as_str), o.metadata_mut())
                && !rv.is_empty()
            {
                m.resource_version = rv.to_string();
            }
            Ok(Change { object: o, status_only: false })
        })
        .await;
    match result {
        Ok(o) => Ok(json(StatusCode::OK, &scale_of(&o))),
        Err(e) => Err(failure.take().unwrap_or_else(|| Problem::from_error(e, Some(info)))),
    }
}
