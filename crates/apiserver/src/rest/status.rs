//! Errors as Kubernetes answers them: a `metav1.Status` with the HTTP code,
//! the reason clients switch on (NotFound, AlreadyExists, Conflict, Invalid
//! with one cause per field, Forbidden, Expired…) and kube-apiserver's
//! wording, which kubectl prints as it is.

use axum::response::{IntoResponse, Response};
use berth_api::KindInfo;
use berth_api::validation::{ErrorKind, FieldError};
use http::StatusCode;
use serde_json::{Value, json};

use crate::error::Error;

/// A refused request, ready to be answered.
#[derive(Debug)]
pub struct Problem {
    pub code: StatusCode,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl Problem {
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Problem {
        Problem { code, reason, message: message.into(), details: Value::Null }
    }

    pub fn bad_request(message: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn not_found_path(path: &str) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    pub fn method_not_allowed() -> Problem {
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", message)
    }

    /// An [`Error`] from the request core, about an object of `info` (when known).
    pub fn from_error(e: Error, info: Option<&KindInfo>) -> Problem {
        let resource = |plural: &str| match info.map(|i| i.group()).filter(|g| !g.is_empty()) {
            Some(g) => format!("{plural}.{g}"),
            None => plural.to_string(),
        };
        let group = info.map(|i| i.group()).unwrap_or("");
        match e {
            Error::NotFound { plural, name } => Problem {
                code: StatusCode::NOT_FOUND,
                reason: "NotFound",
                message: format!("{} {name:?} not found", resource(&plural)),
                details: json!({"name": name, "group": group, "kind": plural}),
            },
            Error::AlreadyExists { plural, name } => Problem {
                code: StatusCode::CONFLICT,
                reason: "AlreadyExists",
                message: format!("{} {name:?} already exists", resource(&plural)),
                details: json!({"name": name, "group": group, "kind": plural}),
            },
            Error::Conflict { plural, name, reason } => Problem {
                code: StatusCode::CONFLICT,
                reason: "Conflict",
                message: format!("Operation cannot be fulfilled on {} {name:?}: {reason}", resource(&plural)),
                details: json!({"name": name, "group": group, "kind": plural}),
            },
            Error::Invalid { kind, name, message, causes } => {
                let causes: Vec<Value> = if causes.is_empty() {
                    vec![json!({"reason": "FieldValueInvalid", "message": message})]
                } else {
                    causes.iter().map(cause).collect()
                };
                Problem {
                    code: StatusCode::UNPROCESSABLE_ENTITY,
                    reason: "Invalid",
                    message: format!("{kind} {name:?} is invalid: {message}"),
                    details: json!({"name": name, "group": group, "kind": kind, "causes": causes}),
                }
            }
            Error::BadRequest(m) | Error::Precondition(m) => Problem::bad_request(m),
            Error::Gone { requested, oldest } => {
                Problem::new(StatusCode::GONE, "Expired", format!("too old resource version: {requested} ({oldest})"))
            }
            Error::Unauthenticated(_) => Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized"),
            Error::Forbidden(m) => Problem::new(StatusCode::FORBIDDEN, "Forbidden", m),
            Error::Unavailable(m) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", m),
            Error::Kubelet { code, message } => {
                let (status, reason) = match code {
                    tonic::Code::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
                    tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => (StatusCode::BAD_REQUEST, "BadRequest"),
                    tonic::Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
                    tonic::Code::PermissionDenied => (StatusCode::FORBIDDEN, "Forbidden"),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
                };
                Problem::new(status, reason, message)
            }
            Error::Internal(m) => Problem {
                code: StatusCode::INTERNAL_SERVER_ERROR,
                reason: "InternalError",
                message: format!("Internal error occurred: {m}"),
                details: json!({"causes": [{"message": m}]}),
            },
        }
    }

    /// The `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if !self.details.is_null() {
            s["details"] = self.details.clone();
        }
        s
    }
}

/// One field's error as a `StatusCause` (kubectl prints `field: message`).
fn cause(e: &FieldError) -> Value {
    let reason = match e.kind {
        ErrorKind::Required => "FieldValueRequired",
        ErrorKind::Invalid(_) => "FieldValueInvalid",
        ErrorKind::NotSupported(_) => "FieldValueNotSupported",
        ErrorKind::Duplicate(_) => "FieldValueDuplicate",
        ErrorKind::Forbidden => "FieldValueForbidden",
        ErrorKind::TooLong => "FieldValueTooLong",
    };
    let full = e.to_string();
    let message = full.strip_prefix(&format!("{}: ", e.field)).unwrap_or(&full).to_string();
    json!({"reason": reason, "message": message, "field": e.field})
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        super::json(self.code, &self.to_status())
    }
}

/// The Status of a successful delete that removed the object at once.
pub fn success(info: &KindInfo, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": info.group(), "kind": info.plural, "uid": uid},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_answer_kubernetes_status_objects() {
        let p = Problem::from_error(Error::NotFound { plural: "pods".into(), name: "nope".into() }, None);
        let s = p.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "pods \"nope\" not found");

        let invalid = Error::Invalid {
            kind: "Pod".into(),
            name: "bad".into(),
            message: "spec.containers[0].image: Required value".into(),
            causes: vec![FieldError { field: "spec.containers[0].image".into(), kind: ErrorKind::Required, detail: String::new() }],
        };
        let s = Problem::from_error(invalid, None).to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["message"], "Pod \"bad\" is invalid: spec.containers[0].image: Required value");
        assert_eq!(s["details"]["kind"], "Pod");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"})
        );

        let role = berth_api::resource::find_kind("roles").expect("roles");
        let s = Problem::from_error(Error::AlreadyExists { plural: "roles".into(), name: "r".into() }, Some(role)).to_status();
        assert_eq!(s["message"], "roles.rbac.authorization.k8s.io \"r\" already exists");
        assert_eq!(Problem::from_error(Error::Gone { requested: 1, oldest: 5 }, None).to_status()["reason"], "Expired");
    }
}
