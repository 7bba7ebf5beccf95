//! The OpenAPI v3 documents the REST API serves at `/openapi/v3` (the index)
//! and `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`, built once
//! from the served kinds, the proto descriptor's field docs ([`crate::docs`])
//! and the patch metadata table ([`crate::patch::meta`]).
//!
//! kubectl reads them three ways: a PATCH operation per kind declaring the
//! `fieldValidation` query parameter tells it that the server validates
//! fields (else `apply` fails); the schemas' `x-kubernetes-patch-*`
//! extensions drive the strategic merge patches `apply` computes (so they come
//! from the same table the server merges by, and every field an object can
//! carry is in its schema); and `explain` walks the schemas from the one whose
//! `x-kubernetes-group-version-kind` names the kind.
//!
//! Split by what each part holds: `schemas` turns the proto descriptor's
//! messages into schemas (with the patch extensions), `fixed_schemas` holds
//! the hand-written ones (Scale, ListMeta, Status, Quantity, IntOrString),
//! `paths` the operations per kind; this module assembles the documents.

mod fixed_schemas;
mod paths;
mod schemas;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::KindInfo;
use fixed_schemas::{add_common_schemas, add_scale_schemas};
use paths::add_paths;
use schemas::add_kind_schemas;

/// What `$ref`s point into.
const REF_PREFIX: &str = "#/components/schemas/";
const META_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// Kinds with a `/scale` subresource (autoscaling/v1 Scale).
const SCALED_KINDS: &[&str] = &["ReplicationController"];

/// The documents for one set of served kinds, serialized once.
#[derive(Debug, Clone)]
pub struct OpenApi {
    /// `GET /openapi/v3`.
    index: Vec<u8>,
    /// `api/v1`, `apis/rbac.authorization.k8s.io/v1` → (the document, the sha256 of it in hex).
    documents: BTreeMap<String, (Vec<u8>, String)>,
}

impl OpenApi {
    /// Documents for the given served kinds (kinds disabled with --disable-api are left out).
    pub fn new(kinds: &[&'static KindInfo]) -> OpenApi {
        let mut by_group_version: BTreeMap<&str, Vec<&KindInfo>> = BTreeMap::new();
        for kind in kinds {
            by_group_version.entry(kind.api_version).or_default().push(kind);
        }
        let documents: BTreeMap<String, (Vec<u8>, String)> = by_group_version
            .into_iter()
            .map(|(api_version, kinds)| {
                let bytes = to_bytes(&document(&kinds));
                let hash = Sha256::digest(&bytes).iter().map(|b| format!("{b:02X}")).collect::<String>();
                (document_path(api_version), (bytes, hash))
            })
            .collect();
        let paths: Map<String, Value> = documents
            .iter()
            .map(|(path, (_, hash))| (path.clone(), json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}") })))
            .collect();
        OpenApi { index: to_bytes(&json!({ "paths": paths })), documents }
    }

    /// GET /openapi/v3: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=<HASH>"}, ...}}` as JSON bytes.
    pub fn index(&self) -> &[u8] {
        &self.index
    }

    /// GET /openapi/v3/<path> where path is "api/v1" or "apis/<group>/<version>": the JSON bytes and its hash (used as ETag), or None.
    pub fn document(&self, path: &str) -> Option<(&[u8], &str)> {
        self.documents.get(path.trim_matches('/')).map(|(bytes, hash)| (bytes.as_slice(), hash.as_str()))
    }
}

/// A JSON value as bytes. Serializing a `Value` fails only for maps with
/// non-string keys, which a `Value` cannot have.
fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// `v1` → `api/v1`; `rbac.authorization.k8s.io/v1` → `apis/rbac.authorization.k8s.io/v1`.
fn document_path(api_version: &str) -> String {
    if api_version.contains('/') { format!("apis/{api_version}") } else { format!("api/{api_version}") }
}

/// `(group, version)` of an apiVersion.
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

/// The document of one group-version: every served kind's paths and the
/// schemas they reach.
fn document(kinds: &[&KindInfo]) -> Value {
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for kind in kinds {
        add_paths(&mut paths, kind);
        add_kind_schemas(&mut schemas, kind);
        if SCALED_KINDS.contains(&kind.kind) {
            add_scale_schemas(&mut schemas);
        }
    }
    add_common_schemas(&mut schemas);
    json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.32.0" },
        "paths": paths,
        "components": { "schemas": schemas },
    })
}

fn reference(schema: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{schema}") })
}

/// A field holding another schema, in Kubernetes' style (what `explain` prints as `<PodSpec>`).
fn all_of(schema: &str) -> Value {
    json!({ "allOf": [reference(schema)] })
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!({ "group": group, "kind": kind, "version": version })
}

fn kind_gvk(kind: &KindInfo) -> Value {
    let (group, version) = group_version(kind.api_version);
    gvk(group, version, kind.kind)
}
