//! Kubernetes' protobuf request bodies (`application/vnd.kubernetes.protobuf`), as kubectl 1.32's typed
//! clients send them for `auth can-i`, `auth whoami` and `create namespace|configmap|secret|serviceaccount`
//! (FINDINGS.md §10): the `k8s\0` envelope (runtime.Unknown) and the few kinds Berth accepts in it, transcoded
//! into the Kubernetes JSON of the object, which the REST handlers then read like any JSON body. Pure: bytes
//! in, JSON out.
//!
//! The messages in [`messages`] are written by hand with the field numbers of k8s.io/api and
//! k8s.io/apimachinery v0.32.4 (`generated.proto`); they hold only the fields a request carries. Fields
//! they leave out (creationTimestamp, managedFields...) are skipped when decoding. The JSON follows the Go
//! types' tags: `omitempty` fields that are empty are left out (kubectl's encoder writes every proto2
//! string, even empty ones), pointer fields appear exactly when the body has them.
//!
//! This module holds the envelope, the decoding of the accepted kinds into JSON and the building of
//! bodies; [`messages`] holds the messages; the tests are in `tests`.

pub mod messages;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use self::messages::*;

/// The media type of Kubernetes' protobuf encoding.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// The (apiVersion, kind) pairs [`decode`] accepts.
pub const SUPPORTED: &[(&str, &str)] = &[
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
    ("authentication.k8s.io/v1", "SelfSubjectReview"),
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("policy/v1", "Eviction"),
];

/// Why a protobuf body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("the body is not Kubernetes protobuf: it does not start with the 4 bytes \"k8s\\0\"")]
    BadMagic,
    #[error("the protobuf envelope (runtime.Unknown) is malformed: {0}")]
    Envelope(#[source] prost::DecodeError),
    #[error("the protobuf envelope names no apiVersion and kind")]
    NoKind,
    #[error("the protobuf body of {kind} is encoded with {encoding:?}; send it unencoded, or as JSON")]
    ContentEncoding { kind: String, encoding: String },
    #[error("the {kind} ({api_version}) in the protobuf body is malformed: {source}")]
    Object {
        api_version: String,
        kind: String,
        #[source]
        source: prost::DecodeError,
    },
    #[error("the {kind} in the protobuf body cannot be written as JSON: {source}")]
    Json {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "protobuf request bodies are supported only for {}; send {kind} ({api_version}) as JSON (Content-Type: application/json)",
        supported_list()
    )]
    Unsupported { api_version: String, kind: String },
}

/// "SelfSubjectAccessReview (authorization.k8s.io/v1), ...".
fn supported_list() -> String {
    SUPPORTED.iter().map(|(api_version, kind)| format!("{kind} ({api_version})")).collect::<Vec<_>>().join(", ")
}

/// Reads a Kubernetes protobuf body (`k8s\0` + runtime.Unknown) and returns the object it carries as
/// Kubernetes JSON, with `apiVersion` and `kind`. Only the kinds in [`SUPPORTED`] are understood; any
/// other is [`ProtobufError::Unsupported`] (answer 415: the client should send JSON).
pub fn decode(body: &[u8]) -> Result<Value, ProtobufError> {
    use prost::Message as _;
    let payload = body.strip_prefix(&MAGIC).ok_or(ProtobufError::BadMagic)?;
    let envelope = Unknown::decode(payload).map_err(ProtobufError::Envelope)?;
    let type_meta = envelope.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    if api_version.is_empty() && kind.is_empty() {
        return Err(ProtobufError::NoKind);
    }
    if !SUPPORTED.contains(&(api_version.as_str(), kind.as_str())) {
        return Err(ProtobufError::Unsupported { api_version, kind });
    }
    if let Some(encoding) = envelope.content_encoding.filter(|e| !e.is_empty()) {
        return Err(ProtobufError::ContentEncoding { kind, encoding });
    }
    let raw = envelope.raw.unwrap_or_default();
    let fields = match kind.as_str() {
        "SelfSubjectAccessReview" => transcode::<SelfSubjectAccessReview>(&raw, &api_version, &kind)?,
        "SelfSubjectReview" => transcode::<SelfSubjectReview>(&raw, &api_version, &kind)?,
        "Namespace" => transcode::<Namespace>(&raw, &api_version, &kind)?,
        "ConfigMap" => transcode::<ConfigMap>(&raw, &api_version, &kind)?,
        "Secret" => transcode::<Secret>(&raw, &api_version, &kind)?,
        "ServiceAccount" => transcode::<ServiceAccount>(&raw, &api_version, &kind)?,
        "Eviction" => transcode::<Eviction>(&raw, &api_version, &kind)?,
        _ => return Err(ProtobufError::Unsupported { api_version, kind }),
    };
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

/// Builds a body as kubectl sends it: `k8s\0` + runtime.Unknown around the encoded object `raw`.
pub fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    use prost::Message as _;
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: Some(api_version.into()), kind: Some(kind.into()) }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = MAGIC.to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// Decodes `raw` as `M` and returns its JSON fields.
fn transcode<M: prost::Message + Default + serde::Serialize>(
    raw: &[u8],
    api_version: &str,
    kind: &str,
) -> Result<Map<String, Value>, ProtobufError> {
    let message = M::decode(raw).map_err(|source| ProtobufError::Object { api_version: api_version.into(), kind: kind.into(), source })?;
    match serde_json::to_value(&message) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Ok(Map::new()),
        Err(source) => Err(ProtobufError::Json { kind: kind.into(), source }),
    }
}
