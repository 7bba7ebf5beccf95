//! Asking the server about access: `authorization.k8s.io/v1`
//! SelfSubjectAccessReview (`kubectl auth can-i`) and SubjectAccessReview,
//! and `authentication.k8s.io/v1` SelfSubjectReview (`kubectl auth
//! whoami`). They answer from the same authorizer every request passes.

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use berth_api::pb::api::AccessReviewRequest;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::status::Problem;
use super::{Rest, Target, body, json};
use crate::authn::Authenticated;

/// Answers a review request, or gives the request back when it is not one.
pub async fn route(rest: &Rest, target: &Target, who: Option<&Authenticated>, req: Request) -> Result<Response, Request> {
    let kind = match (target.group_version.as_str(), target.resource.as_str()) {
        ("authorization.k8s.io/v1", "selfsubjectaccessreviews") => "SelfSubjectAccessReview",
        ("authorization.k8s.io/v1", "subjectaccessreviews") => "SubjectAccessReview",
        ("authentication.k8s.io/v1", "selfsubjectreviews") => "SelfSubjectReview",
        _ => return Err(req),
    };
    if req.method() != Method::POST || target.name.is_some() {
        return Ok(Problem::method_not_allowed().into_response());
    }
    Ok(review(rest, kind, &target.group_version, who, req).await.unwrap_or_else(IntoResponse::into_response))
}

async fn review(rest: &Rest, kind: &str, group_version: &str, who: Option<&Authenticated>, req: Request) -> Result<Response, Problem> {
    let (parts, bytes) = req.into_parts();
    let bytes = axum::body::to_bytes(bytes, 1 << 20).await.map_err(|e| Problem::bad_request(format!("the body could not be read: {e}")))?;
    let mut v = body::to_value(&parts.headers, &bytes)?;
    body::prune_nulls(&mut v);
    if kind == "SelfSubjectReview" {
        let user = rest.handlers.caller(who).map_err(|e| Problem::from_error(e, None))?;
        return Ok(json(
            StatusCode::CREATED,
            &json!({
                "kind": kind,
                "apiVersion": group_version,
                "metadata": {"creationTimestamp": null},
                "status": {"userInfo": {"username": user.name, "uid": user.uid, "groups": user.groups}},
            }),
        ));
    }
    let spec = v.get("spec").cloned().unwrap_or(Value::Null);
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut request = AccessReviewRequest::default();
    if let Some(ra) = spec.get("resourceAttributes") {
        let resource = s(ra, "resource");
        let sub = s(ra, "subresource");
        request.verb = s(ra, "verb");
        request.namespace = s(ra, "namespace");
        request.name = s(ra, "name");
        request.resource = if sub.is_empty() { resource } else { format!("{resource}/{sub}") };
    } else if let Some(nra) = spec.get("nonResourceAttributes") {
        request.verb = s(nra, "verb");
        request.non_resource_path = s(nra, "path");
    } else {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!(
                "{kind}.authorization.k8s.io \"\" is invalid: spec: Invalid value: exactly one of nonResourceAttributes or resourceAttributes must be specified"
            ),
        ));
    }
    if kind == "SubjectAccessReview" {
        request.user = s(&spec, "user");
        request.groups = spec
            .get("groups")
            .and_then(Value::as_array)
            .map(|g| g.iter().filter_map(|x| x.as_str().map(String::from)).collect())
            .unwrap_or_default();
        if request.user.is_empty() {
            return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", "spec.user: Required value"));
        }
    }
    let answer = rest.handlers.access_review(who, &request).map_err(|e| Problem::from_error(e, None))?;
    let mut out = v;
    if !out.is_object() {
        out = json!({});
    }
    out["kind"] = json!(kind);
    out["apiVersion"] = json!(group_version);
    out["metadata"] = json!({"creationTimestamp": null});
    let mut status = json!({"allowed": answer.allowed});
    // kubectl prints a denial's reason after "no"; Kubernetes gives none when no rule applies.
    if !answer.reason.is_empty() && answer.reason != crate::handlers::NO_RULE {
        status["reason"] = json!(answer.reason);
    }
    out["status"] = status;
    Ok(json(StatusCode::CREATED, &out))
}
