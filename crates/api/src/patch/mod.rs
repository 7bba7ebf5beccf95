//! Patches as Kubernetes applies them: the PATCH request's body applied to
//! an object's Kubernetes JSON, for each patch content type kubectl and the
//! Python client send (JSON merge patch, JSON patch, strategic merge patch;
//! server-side apply is refused), with the HTTP status of each failure.
//! The patch metadata of every list field is [`meta`], one table shared by
//! the strategic merge and the OpenAPI documents' `x-kubernetes-patch-*`
//! extensions.

pub mod meta;
mod schema;
mod strategic;

use serde_json::Value;

use crate::KindInfo;

/// The media types a PATCH may carry (besides server-side apply), as
/// kube-apiserver lists them in its 415 answer to any other Content-Type.
pub const ACCEPTED_MEDIA_TYPES: &str = "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json";

/// The kind of patch a request's Content-Type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/strategic-merge-patch+json`: Kubernetes' merge, lists by merge key.
    Strategic,
    /// `application/merge-patch+json`: RFC 7396.
    Merge,
    /// `application/json-patch+json`: RFC 6902 operations.
    Json,
    /// `application/apply-patch+yaml`: server-side apply (not supported).
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header (`; charset=utf-8` and other
    /// parameters ignored); None for any other media type.
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        match media_type.as_str() {
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch is malformed (bad JSON, bad directive, an item without its merge key): HTTP 400.
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but cannot apply to this object (a failed JSON patch `test`, a missing path): HTTP 422.
    #[error("{0}")]
    Invalid(String),
    /// Server-side apply was asked for: HTTP 415, which kubectl reports as
    /// "Server-side apply not available on the server".
    #[error(
        "server-side apply (application/apply-patch+yaml) is not supported; the body of the request was in an unknown format - accepted media types include: {ACCEPTED_MEDIA_TYPES}"
    )]
    UnsupportedApply,
}

impl PatchError {
    /// The HTTP status the REST API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Invalid(_) => 422,
            PatchError::UnsupportedApply => 415,
        }
    }
}

/// Applies `patch` (raw request body) to `current` (the object's Kubernetes JSON, as Object::to_json_value gives it)
/// of kind `info`, returning the new JSON.
pub fn apply(info: &KindInfo, patch_type: PatchType, current: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Apply => Err(PatchError::UnsupportedApply),
        PatchType::Merge => {
            let patch = Value::Object(parse_object(patch, "merge patch")?);
            let mut patched = current.clone();
            json_patch::merge(&mut patched, &patch);
            Ok(patched)
        }
        PatchType::Json => {
            let operations: json_patch::Patch =
                serde_json::from_slice(patch).map_err(|e| PatchError::BadRequest(format!("the JSON patch is not valid: {e}")))?;
            let mut patched = current.clone();
            // `patch_unsafe` leaves a half-patched document on failure; it
            // is a copy, dropped then.
            json_patch::patch_unsafe(&mut patched, &operations)
                .map_err(|e| PatchError::Invalid(format!("the JSON patch's operation {} ({}) failed: {}", e.operation, e.path, e.kind)))?;
            Ok(patched)
        }
        PatchType::Strategic => {
            let patch = parse_object(patch, "strategic merge patch")?;
            let schema = schema::DescriptorSchema::get();
            strategic::apply(schema, schema.kind_message(info.kind), current, patch)
        }
    }
}

/// The body as a JSON object.
fn parse_object(body: &[u8], what: &str) -> Result<serde_json::Map<String, Value>, PatchError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| PatchError::BadRequest(format!("the {what} is not valid JSON: {e}")))?;
    match value {
        Value::Object(object) => Ok(object),
        other => Err(PatchError::BadRequest(format!("the {what} must be a JSON object, not {other}"))),
    }
}

#[cfg(test)]
mod tests;
