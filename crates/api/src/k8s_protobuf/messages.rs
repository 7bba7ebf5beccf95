//! The protobuf messages, with Kubernetes' field numbers and JSON names.

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
