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

/// The protobuf messages, with Kubernetes' field numbers and JSON names.
pub mod messages {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use crate::serde_util::some_or_default;

    /// An `omitempty` string: left out when absent or empty.
    fn absent_or_empty(v: &Option<String>) -> bool {
        v.as_deref().is_none_or(str::is_empty)
    }

    /// An `omitempty` bool: left out when absent or false.
    fn absent_or_false(v: &Option<bool>) -> bool {
        !v.unwrap_or(false)
    }

    /// apimachinery pkg/runtime: the envelope after the magic.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Unknown {
        #[prost(message, optional, tag = "1")]
        pub type_meta: Option<TypeMeta>,
        #[prost(bytes = "vec", optional, tag = "2")]
        pub raw: Option<Vec<u8>>,
        #[prost(string, optional, tag = "3")]
        pub content_encoding: Option<String>,
        #[prost(string, optional, tag = "4")]
        pub content_type: Option<String>,
    }

    /// apimachinery pkg/runtime TypeMeta.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeMeta {
        #[prost(string, optional, tag = "1")]
        pub api_version: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub kind: Option<String>,
    }

    /// meta/v1 ObjectMeta: what a client may set.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct ObjectMeta {
        #[prost(string, optional, tag = "1")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "2")]
        #[serde(rename = "generateName", skip_serializing_if = "absent_or_empty")]
        pub generate_name: Option<String>,
        #[prost(string, optional, tag = "3")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub namespace: Option<String>,
        #[prost(string, optional, tag = "5")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub uid: Option<String>,
        #[prost(string, optional, tag = "6")]
        #[serde(rename = "resourceVersion", skip_serializing_if = "absent_or_empty")]
        pub resource_version: Option<String>,
        #[prost(btree_map = "string, string", tag = "11")]
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub labels: BTreeMap<String, String>,
        #[prost(btree_map = "string, string", tag = "12")]
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub annotations: BTreeMap<String, String>,
        #[prost(message, repeated, tag = "13")]
        #[serde(rename = "ownerReferences", skip_serializing_if = "Vec::is_empty")]
        pub owner_references: Vec<OwnerReference>,
        #[prost(string, repeated, tag = "14")]
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub finalizers: Vec<String>,
    }

    /// meta/v1 OwnerReference.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct OwnerReference {
        #[prost(string, optional, tag = "5")]
        #[serde(rename = "apiVersion", serialize_with = "some_or_default")]
        pub api_version: Option<String>,
        #[prost(string, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub kind: Option<String>,
        #[prost(string, optional, tag = "3")]
        #[serde(serialize_with = "some_or_default")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "4")]
        #[serde(serialize_with = "some_or_default")]
        pub uid: Option<String>,
        #[prost(bool, optional, tag = "6")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub controller: Option<bool>,
        #[prost(bool, optional, tag = "7")]
        #[serde(rename = "blockOwnerDeletion", skip_serializing_if = "Option::is_none")]
        pub block_owner_deletion: Option<bool>,
    }

    /// authorization/v1 SelfSubjectAccessReview.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct SelfSubjectAccessReview {
        #[prost(message, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub metadata: Option<ObjectMeta>,
        #[prost(message, optional, tag = "2")]
        #[serde(serialize_with = "some_or_default")]
        pub spec: Option<SelfSubjectAccessReviewSpec>,
        #[prost(message, optional, tag = "3")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub status: Option<SubjectAccessReviewStatus>,
    }

    /// authorization/v1 SelfSubjectAccessReviewSpec.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct SelfSubjectAccessReviewSpec {
        #[prost(message, optional, tag = "1")]
        #[serde(rename = "resourceAttributes", skip_serializing_if = "Option::is_none")]
        pub resource_attributes: Option<ResourceAttributes>,
        #[prost(message, optional, tag = "2")]
        #[serde(rename = "nonResourceAttributes", skip_serializing_if = "Option::is_none")]
        pub non_resource_attributes: Option<NonResourceAttributes>,
    }

    /// authorization/v1 ResourceAttributes (without the field and label selectors, which kubectl does
    /// not send).
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct ResourceAttributes {
        #[prost(string, optional, tag = "1")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub namespace: Option<String>,
        #[prost(string, optional, tag = "2")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub verb: Option<String>,
        #[prost(string, optional, tag = "3")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub group: Option<String>,
        #[prost(string, optional, tag = "4")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub version: Option<String>,
        #[prost(string, optional, tag = "5")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub resource: Option<String>,
        #[prost(string, optional, tag = "6")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub subresource: Option<String>,
        #[prost(string, optional, tag = "7")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub name: Option<String>,
    }

    /// authorization/v1 NonResourceAttributes.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct NonResourceAttributes {
        #[prost(string, optional, tag = "1")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub path: Option<String>,
        #[prost(string, optional, tag = "2")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub verb: Option<String>,
    }

    /// authorization/v1 SubjectAccessReviewStatus (kubectl sends an empty one).
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct SubjectAccessReviewStatus {
        #[prost(bool, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub allowed: Option<bool>,
        #[prost(string, optional, tag = "2")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub reason: Option<String>,
        #[prost(string, optional, tag = "3")]
        #[serde(rename = "evaluationError", skip_serializing_if = "absent_or_empty")]
        pub evaluation_error: Option<String>,
        #[prost(bool, optional, tag = "4")]
        #[serde(skip_serializing_if = "absent_or_false")]
        pub denied: Option<bool>,
    }

    /// authentication/v1 SelfSubjectReview.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct SelfSubjectReview {
        #[prost(message, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub metadata: Option<ObjectMeta>,
        #[prost(message, optional, tag = "2")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub status: Option<SelfSubjectReviewStatus>,
    }

    /// authentication/v1 SelfSubjectReviewStatus.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct SelfSubjectReviewStatus {
        #[prost(message, optional, tag = "1")]
        #[serde(rename = "userInfo", skip_serializing_if = "Option::is_none")]
        pub user_info: Option<UserInfo>,
    }

    /// authentication/v1 UserInfo.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct UserInfo {
        #[prost(string, optional, tag = "1")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub username: Option<String>,
        #[prost(string, optional, tag = "2")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub uid: Option<String>,
        #[prost(string, repeated, tag = "3")]
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub groups: Vec<String>,
        #[prost(btree_map = "string, message", tag = "4")]
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub extra: BTreeMap<String, ExtraValue>,
    }

    /// authentication/v1 ExtraValue: a list of strings in JSON.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    #[serde(transparent)]
    pub struct ExtraValue {
        #[prost(string, repeated, tag = "1")]
        pub items: Vec<String>,
    }

    /// core/v1 Namespace.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct Namespace {
        #[prost(message, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub metadata: Option<ObjectMeta>,
        #[prost(message, optional, tag = "2")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub spec: Option<NamespaceSpec>,
        #[prost(message, optional, tag = "3")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub status: Option<NamespaceStatus>,
    }

    /// core/v1 NamespaceSpec.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct NamespaceSpec {
        #[prost(string, repeated, tag = "1")]
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub finalizers: Vec<String>,
    }

    /// core/v1 NamespaceStatus (without conditions, which only the server writes).
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct NamespaceStatus {
        #[prost(string, optional, tag = "1")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub phase: Option<String>,
    }

    /// core/v1 ConfigMap.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct ConfigMap {
        #[prost(message, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub metadata: Option<ObjectMeta>,
        #[prost(btree_map = "string, string", tag = "2")]
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        pub data: BTreeMap<String, String>,
        #[prost(btree_map = "string, bytes", tag = "3")]
        #[serde(
            rename = "binaryData",
            skip_serializing_if = "BTreeMap::is_empty",
            serialize_with = "crate::serde_util::base64_map::serialize"
        )]
        pub binary_data: BTreeMap<String, Vec<u8>>,
        #[prost(bool, optional, tag = "4")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub immutable: Option<bool>,
    }

    /// core/v1 Secret.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct Secret {
        #[prost(message, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub metadata: Option<ObjectMeta>,
        #[prost(btree_map = "string, bytes", tag = "2")]
        #[serde(skip_serializing_if = "BTreeMap::is_empty", serialize_with = "crate::serde_util::base64_map::serialize")]
        pub data: BTreeMap<String, Vec<u8>>,
        #[prost(string, optional, tag = "3")]
        #[serde(rename = "type", skip_serializing_if = "absent_or_empty")]
        pub r#type: Option<String>,
        #[prost(btree_map = "string, string", tag = "4")]
        #[serde(rename = "stringData", skip_serializing_if = "BTreeMap::is_empty")]
        pub string_data: BTreeMap<String, String>,
        #[prost(bool, optional, tag = "5")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub immutable: Option<bool>,
    }

    /// core/v1 ServiceAccount.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct ServiceAccount {
        #[prost(message, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub metadata: Option<ObjectMeta>,
        #[prost(message, repeated, tag = "2")]
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pub secrets: Vec<ObjectReference>,
        #[prost(message, repeated, tag = "3")]
        #[serde(rename = "imagePullSecrets", skip_serializing_if = "Vec::is_empty")]
        pub image_pull_secrets: Vec<LocalObjectReference>,
        #[prost(bool, optional, tag = "4")]
        #[serde(rename = "automountServiceAccountToken", skip_serializing_if = "Option::is_none")]
        pub automount_service_account_token: Option<bool>,
    }

    /// core/v1 ObjectReference.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct ObjectReference {
        #[prost(string, optional, tag = "1")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub kind: Option<String>,
        #[prost(string, optional, tag = "2")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub namespace: Option<String>,
        #[prost(string, optional, tag = "3")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "4")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub uid: Option<String>,
        #[prost(string, optional, tag = "5")]
        #[serde(rename = "apiVersion", skip_serializing_if = "absent_or_empty")]
        pub api_version: Option<String>,
        #[prost(string, optional, tag = "6")]
        #[serde(rename = "resourceVersion", skip_serializing_if = "absent_or_empty")]
        pub resource_version: Option<String>,
        #[prost(string, optional, tag = "7")]
        #[serde(rename = "fieldPath", skip_serializing_if = "absent_or_empty")]
        pub field_path: Option<String>,
    }

    /// core/v1 LocalObjectReference.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct LocalObjectReference {
        #[prost(string, optional, tag = "1")]
        #[serde(skip_serializing_if = "absent_or_empty")]
        pub name: Option<String>,
    }

    /// policy/v1 Eviction.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct Eviction {
        #[prost(message, optional, tag = "1")]
        #[serde(serialize_with = "some_or_default")]
        pub metadata: Option<ObjectMeta>,
        #[prost(message, optional, tag = "2")]
        #[serde(rename = "deleteOptions", skip_serializing_if = "Option::is_none")]
        pub delete_options: Option<DeleteOptions>,
    }

    /// meta/v1 DeleteOptions.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct DeleteOptions {
        #[prost(int64, optional, tag = "1")]
        #[serde(rename = "gracePeriodSeconds", skip_serializing_if = "Option::is_none")]
        pub grace_period_seconds: Option<i64>,
        #[prost(message, optional, tag = "2")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub preconditions: Option<Preconditions>,
        #[prost(bool, optional, tag = "3")]
        #[serde(rename = "orphanDependents", skip_serializing_if = "Option::is_none")]
        pub orphan_dependents: Option<bool>,
        #[prost(string, optional, tag = "4")]
        #[serde(rename = "propagationPolicy", skip_serializing_if = "Option::is_none")]
        pub propagation_policy: Option<String>,
        #[prost(string, repeated, tag = "5")]
        #[serde(rename = "dryRun", skip_serializing_if = "Vec::is_empty")]
        pub dry_run: Vec<String>,
    }

    /// meta/v1 Preconditions.
    #[derive(Clone, PartialEq, prost::Message, Serialize)]
    pub struct Preconditions {
        #[prost(string, optional, tag = "1")]
        #[serde(skip_serializing_if = "Option::is_none")]
        pub uid: Option<String>,
        #[prost(string, optional, tag = "2")]
        #[serde(rename = "resourceVersion", skip_serializing_if = "Option::is_none")]
        pub resource_version: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use prost::Message as _;
    use serde_json::json;

    use super::*;

    /// What kubectl 1.32.4 sent (captured from its requests to a recording server).
    fn captured(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/k8s-protobuf/{name}.bin", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn meta(name: &str, namespace: &str) -> Option<messages::ObjectMeta> {
        Some(messages::ObjectMeta { name: Some(name.into()), namespace: Some(namespace.into()), ..Default::default() })
    }

    /// `kubectl auth can-i create pods --subresource=exec -n default`, written out field by field; kubectl's
    /// encoder writes every proto2 field of the Go structs, the empty ones too.
    #[rustfmt::skip]
    const SSAR_EXEC: &[u8] = &[
        b'k', b'8', b's', 0,
        0x0a, 0x32, // typeMeta, 50 bytes
            0x0a, 0x17, b'a', b'u', b't', b'h', b'o', b'r', b'i', b'z', b'a', b't', b'i', b'o', b'n', b'.', b'k', b'8', b's',
                b'.', b'i', b'o', b'/', b'v', b'1', // apiVersion
            0x12, 0x17, b'S', b'e', b'l', b'f', b'S', b'u', b'b', b'j', b'e', b'c', b't', b'A', b'c', b'c', b'e', b's', b's',
                b'R', b'e', b'v', b'i', b'e', b'w', // kind
        0x12, 0x43, // raw, 67 bytes: the SelfSubjectAccessReview
            0x0a, 0x10, // metadata, 16 bytes
                0x0a, 0x00, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, // name ... resourceVersion: ""
                0x38, 0x00, // generation: 0
                0x42, 0x00, // creationTimestamp: {} (not decoded)
            0x12, 0x25, // spec, 37 bytes
                0x0a, 0x23, // resourceAttributes, 35 bytes
                    0x0a, 0x07, b'd', b'e', b'f', b'a', b'u', b'l', b't', // namespace
                    0x12, 0x06, b'c', b'r', b'e', b'a', b't', b'e', // verb
                    0x1a, 0x00, // group
                    0x22, 0x00, // version
                    0x2a, 0x04, b'p', b'o', b'd', b's', // resource
                    0x32, 0x04, b'e', b'x', b'e', b'c', // subresource
                    0x3a, 0x00, // name
            0x1a, 0x08, // status, 8 bytes
                0x08, 0x00, // allowed: false
                0x12, 0x00, // reason
                0x1a, 0x00, // evaluationError
                0x20, 0x00, // denied: false
        0x1a, 0x00, // contentEncoding
        0x22, 0x00, // contentType
    ];

    #[test]
    fn should_read_kubectls_self_subject_access_review() {
        assert_eq!(SSAR_EXEC, captured("ssar-resource").as_slice(), "the bytes written out are what kubectl sends");
        assert_eq!(
            decode(SSAR_EXEC).unwrap(),
            json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "metadata": {},
                "spec": {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pods", "subresource": "exec"}},
                "status": {"allowed": false}
            })
        );
        assert_eq!(
            decode(&captured("ssar-nonresource")).unwrap(),
            json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "metadata": {},
                "spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}},
                "status": {"allowed": false}
            })
        );
    }

    #[test]
    fn should_read_what_kubectl_create_sends() {
        assert_eq!(
            decode(&captured("namespace")).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "capns"}, "spec": {}, "status": {}})
        );
        assert_eq!(
            decode(&captured("configmap")).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "capcm", "namespace": "default"},
                "data": {"a": "b"}, "binaryData": {"bin": "/wAB"}
            })
        );
        assert_eq!(
            decode(&captured("secret")).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "capsec", "namespace": "default"},
                "data": {"k": "dg=="}, "type": "Opaque"
            })
        );
        assert_eq!(
            decode(&captured("serviceaccount")).unwrap(),
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "capsa", "namespace": "default"}})
        );
        assert_eq!(
            decode(&captured("selfsubjectreview")).unwrap(),
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}, "status": {"userInfo": {}}})
        );
    }

    #[test]
    fn should_give_json_that_berth_reads_as_its_own_objects() {
        for name in ["namespace", "configmap", "secret", "serviceaccount"] {
            let json = decode(&captured(name)).unwrap();
            let objects = crate::manifest::parse(&json.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(objects.len(), 1);
            assert_eq!(objects[0].to_json_value()["metadata"]["name"], json["metadata"]["name"], "{name}");
        }
    }

    #[test]
    fn should_transcode_every_field_of_object_meta() {
        let metadata = messages::ObjectMeta {
            name: Some("web".into()),
            generate_name: Some("web-".into()),
            namespace: Some("prod".into()),
            uid: Some("u-1".into()),
            resource_version: Some("42".into()),
            labels: BTreeMap::from([("app".into(), "web".into())]),
            annotations: BTreeMap::from([("note".into(), "x".into())]),
            owner_references: vec![messages::OwnerReference {
                api_version: Some("v1".into()),
                kind: Some("ReplicationController".into()),
                name: Some("rc".into()),
                uid: Some("u-0".into()),
                controller: Some(true),
                block_owner_deletion: Some(false),
            }],
            finalizers: vec!["example.com/f".into()],
        };
        let cm = messages::ConfigMap { metadata: Some(metadata), immutable: Some(true), ..Default::default() };
        assert_eq!(
            decode(&envelope("v1", "ConfigMap", cm.encode_to_vec())).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {
                    "name": "web", "generateName": "web-", "namespace": "prod", "uid": "u-1", "resourceVersion": "42",
                    "labels": {"app": "web"}, "annotations": {"note": "x"},
                    "ownerReferences": [{
                        "apiVersion": "v1", "kind": "ReplicationController", "name": "rc", "uid": "u-0",
                        "controller": true, "blockOwnerDeletion": false
                    }],
                    "finalizers": ["example.com/f"]
                },
                "immutable": true
            })
        );
        // An owner reference's four identifying fields are always printed, as in Kubernetes.
        let cm = messages::ConfigMap {
            metadata: Some(messages::ObjectMeta { owner_references: vec![Default::default()], ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(
            decode(&envelope("v1", "ConfigMap", cm.encode_to_vec())).unwrap()["metadata"],
            json!({"ownerReferences": [{"apiVersion": "", "kind": "", "name": "", "uid": ""}]})
        );
    }

    #[test]
    fn should_transcode_secrets_service_accounts_and_reviews() {
        let secret = messages::Secret {
            metadata: meta("tls", "prod"),
            data: BTreeMap::from([("tls.key".into(), vec![0, 1, 255])]),
            r#type: Some("kubernetes.io/tls".into()),
            string_data: BTreeMap::from([("note".into(), "plain".into())]),
            immutable: Some(false),
        };
        assert_eq!(
            decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", "namespace": "prod"},
                "data": {"tls.key": "AAH/"}, "stringData": {"note": "plain"}, "type": "kubernetes.io/tls", "immutable": false
            })
        );
        let account = messages::ServiceAccount {
            metadata: meta("robot", "prod"),
            secrets: vec![messages::ObjectReference { name: Some("robot-token".into()), kind: Some(String::new()), ..Default::default() }],
            image_pull_secrets: vec![messages::LocalObjectReference { name: Some("registry".into()) }],
            automount_service_account_token: Some(false),
        };
        assert_eq!(
            decode(&envelope("v1", "ServiceAccount", account.encode_to_vec())).unwrap(),
            json!({
                "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot", "namespace": "prod"},
                "secrets": [{"name": "robot-token"}], "imagePullSecrets": [{"name": "registry"}],
                "automountServiceAccountToken": false
            })
        );
        let review = messages::SelfSubjectReview {
            metadata: None,
            status: Some(messages::SelfSubjectReviewStatus {
                user_info: Some(messages::UserInfo {
                    username: Some("alice".into()),
                    uid: None,
                    groups: vec!["dev".into()],
                    extra: BTreeMap::from([("scopes".into(), messages::ExtraValue { items: vec!["a".into(), "b".into()] })]),
                }),
            }),
        };
        assert_eq!(
            decode(&envelope("authentication.k8s.io/v1", "SelfSubjectReview", review.encode_to_vec())).unwrap(),
            json!({
                "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {},
                "status": {"userInfo": {"username": "alice", "groups": ["dev"], "extra": {"scopes": ["a", "b"]}}}
            })
        );
        let ssar = messages::SelfSubjectAccessReview {
            metadata: None,
            spec: Some(messages::SelfSubjectAccessReviewSpec {
                resource_attributes: Some(messages::ResourceAttributes {
                    group: Some("rbac.authorization.k8s.io".into()),
                    version: Some("v1".into()),
                    resource: Some("roles".into()),
                    name: Some("admin".into()),
                    verb: Some("get".into()),
                    ..Default::default()
                }),
                non_resource_attributes: None,
            }),
            status: None,
        };
        assert_eq!(
            decode(&envelope("authorization.k8s.io/v1", "SelfSubjectAccessReview", ssar.encode_to_vec())).unwrap(),
            json!({
                "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
                "spec": {"resourceAttributes": {"group": "rbac.authorization.k8s.io", "version": "v1", "resource": "roles", "name": "admin", "verb": "get"}}
            })
        );
    }

    #[test]
    fn should_transcode_evictions_with_their_delete_options() {
        let eviction = messages::Eviction {
            metadata: meta("web-1", "prod"),
            delete_options: Some(messages::DeleteOptions {
                grace_period_seconds: Some(0),
                preconditions: Some(messages::Preconditions { uid: Some("u-7".into()), resource_version: Some("9".into()) }),
                orphan_dependents: None,
                propagation_policy: Some("Foreground".into()),
                dry_run: vec!["All".into()],
            }),
        };
        assert_eq!(
            decode(&envelope("policy/v1", "Eviction", eviction.encode_to_vec())).unwrap(),
            json!({
                "apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "prod"},
                "deleteOptions": {
                    "gracePeriodSeconds": 0, "preconditions": {"uid": "u-7", "resourceVersion": "9"},
                    "propagationPolicy": "Foreground", "dryRun": ["All"]
                }
            })
        );
        let bare = messages::Eviction { metadata: meta("web-1", "prod"), delete_options: None };
        assert_eq!(
            decode(&envelope("policy/v1", "Eviction", bare.encode_to_vec())).unwrap(),
            json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-1", "namespace": "prod"}})
        );
    }

    #[test]
    fn should_refuse_bodies_that_are_not_kubernetes_protobuf() {
        let json_body = br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}"#;
        assert!(matches!(decode(json_body), Err(ProtobufError::BadMagic)));
        assert!(matches!(decode(b""), Err(ProtobufError::BadMagic)));
        assert!(matches!(decode(b"k8s"), Err(ProtobufError::BadMagic)));
        assert!(matches!(decode(b"k8s\0"), Err(ProtobufError::NoKind)));
        let err = decode(json_body).unwrap_err().to_string();
        assert_eq!(err, "the body is not Kubernetes protobuf: it does not start with the 4 bytes \"k8s\\0\"");
    }

    #[test]
    fn should_refuse_truncated_bodies() {
        let body = captured("namespace");
        // The envelope ends inside raw (and, earlier, inside typeMeta): its length prefixes overrun.
        for cut in [6, 12, 30, 40, body.len() - 5] {
            let err = decode(&body[..cut]).unwrap_err();
            assert!(matches!(err, ProtobufError::Envelope(_)), "cut at {cut}: {err:?}");
            assert!(err.to_string().starts_with("the protobuf envelope (runtime.Unknown) is malformed: "), "{err}");
        }
        // A whole envelope around a broken object: metadata claims 5 bytes and has 1.
        let err = decode(&envelope("v1", "Namespace", vec![0x0a, 0x05, b'x'])).unwrap_err();
        assert!(matches!(&err, ProtobufError::Object { kind, .. } if kind == "Namespace"), "{err:?}");
        assert!(err.to_string().starts_with("the Namespace (v1) in the protobuf body is malformed: "), "{err}");
    }

    #[test]
    fn should_refuse_other_kinds_and_say_to_send_json() {
        let pod = envelope("v1", "Pod", meta("web", "default").unwrap().encode_to_vec());
        let err = decode(&pod).unwrap_err();
        assert!(matches!(&err, ProtobufError::Unsupported { api_version, kind } if api_version == "v1" && kind == "Pod"), "{err:?}");
        assert_eq!(
            err.to_string(),
            "protobuf request bodies are supported only for SelfSubjectAccessReview (authorization.k8s.io/v1), \
             SelfSubjectReview (authentication.k8s.io/v1), Namespace (v1), ConfigMap (v1), Secret (v1), ServiceAccount (v1), \
             Eviction (policy/v1); send Pod (v1) as JSON (Content-Type: application/json)"
        );
        // The kind alone is not enough: a Namespace of another group is another kind.
        let err = decode(&envelope("example.com/v1", "Namespace", Vec::new())).unwrap_err();
        assert!(matches!(err, ProtobufError::Unsupported { .. }), "{err:?}");
    }

    #[test]
    fn should_refuse_encoded_content() {
        let unknown = messages::Unknown {
            type_meta: Some(messages::TypeMeta { api_version: Some("v1".into()), kind: Some("Namespace".into()) }),
            raw: Some(vec![1, 2, 3]),
            content_encoding: Some("gzip".into()),
            content_type: None,
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        let err = decode(&body).unwrap_err();
        assert_eq!(err.to_string(), "the protobuf body of Namespace is encoded with \"gzip\"; send it unencoded, or as JSON");
    }
}
