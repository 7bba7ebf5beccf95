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

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::KindInfo;
use crate::docs::{self, Shape, TypeDoc, ValueType};
use crate::patch::meta;

/// What `$ref`s point into.
const REF_PREFIX: &str = "#/components/schemas/";
const META_V1: &str = "io.k8s.apimachinery.pkg.apis.meta.v1";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// Messages of `berth.core.v1` that Kubernetes keeps in apimachinery's meta/v1.
const META_MESSAGES: &[&str] = &["ObjectMeta", "OwnerReference", "LabelSelector", "LabelSelectorRequirement"];

/// Messages of `berth.core.v1` that Kubernetes keeps in coordination.k8s.io/v1.
const COORDINATION_MESSAGES: &[&str] = &["Lease", "LeaseSpec"];

/// Kinds with a `/scale` subresource (autoscaling/v1 Scale).
const SCALED_KINDS: &[&str] = &["ReplicationController"];

/// Fields Kubernetes marks required (`explain` prints `-required-`), as
/// (message, JSON name); from k8s.io/api's `+required` markers and
/// non-omitempty fields (v0.32).
const REQUIRED: &[(&str, &str)] = &[
    ("OwnerReference", "apiVersion"),
    ("OwnerReference", "kind"),
    ("OwnerReference", "name"),
    ("OwnerReference", "uid"),
    ("LabelSelectorRequirement", "key"),
    ("LabelSelectorRequirement", "operator"),
    ("PodSpec", "containers"),
    ("Container", "name"),
    ("ContainerPort", "containerPort"),
    ("EnvVar", "name"),
    ("VolumeMount", "name"),
    ("VolumeMount", "mountPath"),
    ("Volume", "name"),
    ("KeyToPath", "key"),
    ("KeyToPath", "path"),
    ("HostPathVolumeSource", "path"),
    ("ConfigMapKeySelector", "key"),
    ("SecretKeySelector", "key"),
    ("ObjectFieldSelector", "fieldPath"),
    ("ResourceFieldSelector", "resource"),
    ("HTTPGetAction", "port"),
    ("HTTPHeader", "name"),
    ("HTTPHeader", "value"),
    ("TCPSocketAction", "port"),
    ("NodeSelector", "nodeSelectorTerms"),
    ("NodeSelectorRequirement", "key"),
    ("NodeSelectorRequirement", "operator"),
    ("PreferredSchedulingTerm", "weight"),
    ("PreferredSchedulingTerm", "preference"),
    ("Taint", "key"),
    ("Taint", "effect"),
    ("PodCondition", "type"),
    ("PodCondition", "status"),
    ("NodeCondition", "type"),
    ("NodeCondition", "status"),
    ("NodeAddress", "type"),
    ("NodeAddress", "address"),
    ("NamespaceCondition", "type"),
    ("NamespaceCondition", "status"),
    ("ReplicationControllerCondition", "type"),
    ("ReplicationControllerCondition", "status"),
    ("ReplicationControllerStatus", "replicas"),
    ("ContainerStatus", "name"),
    ("ContainerStatus", "ready"),
    ("ContainerStatus", "restartCount"),
    ("ContainerStatus", "image"),
    ("ContainerStatus", "imageID"),
    ("ServicePort", "port"),
    ("EndpointAddress", "ip"),
    ("EndpointPort", "port"),
    ("LimitRangeSpec", "limits"),
    ("LimitRangeItem", "type"),
    ("Event", "metadata"),
    ("Event", "involvedObject"),
    ("PolicyRule", "verbs"),
    ("Subject", "kind"),
    ("Subject", "name"),
    ("RoleRef", "apiGroup"),
    ("RoleRef", "kind"),
    ("RoleRef", "name"),
    ("RoleBinding", "roleRef"),
    ("ClusterRoleBinding", "roleRef"),
];

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

// ------------------------------------------------------------------ schemas

/// Kubernetes' name of a message's schema: `io.k8s.api.core.v1.PodSpec`,
/// `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`, `io.k8s.api.rbac.v1.Role`.
fn schema_name(message: &str, package: &str) -> String {
    let prefix = if package == "berth.rbac.v1" {
        "io.k8s.api.rbac.v1"
    } else if META_MESSAGES.contains(&message) {
        META_V1
    } else if COORDINATION_MESSAGES.contains(&message) {
        "io.k8s.api.coordination.v1"
    } else {
        "io.k8s.api.core.v1"
    };
    format!("{prefix}.{message}")
}

/// The schema name of a documented message by its short name.
fn message_schema_name(message: &str) -> String {
    let package = docs::type_doc_of(message).map(|t| t.package.as_str()).unwrap_or("berth.core.v1");
    schema_name(message, package)
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

/// The schemas of a kind: its message and every message it reaches, and its List.
fn add_kind_schemas(schemas: &mut Map<String, Value>, kind: &KindInfo) {
    let mut todo = vec![kind.kind.to_string()];
    while let Some(message) = todo.pop() {
        let Some(t) = docs::type_doc_of(&message) else { continue };
        let name = schema_name(&t.name, &t.package);
        if schemas.contains_key(&name) {
            continue;
        }
        todo.extend(t.fields.iter().filter_map(|f| match f.shape.value() {
            ValueType::Message(m) => Some(m.clone()),
            _ => None,
        }));
        schemas.insert(name, message_schema(t));
    }
    let kind_schema = message_schema_name(kind.kind);
    if let Some(Value::Object(s)) = schemas.get_mut(&kind_schema) {
        s.insert("x-kubernetes-group-version-kind".into(), json!([kind_gvk(kind)]));
    }
    let (group, version) = group_version(kind.api_version);
    let list_kind = format!("{}List", kind.kind);
    schemas.insert(
        list_schema_name(kind),
        json!({
            "description": format!("{list_kind} is a list of {}.", kind.kind),
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": { "type": "string", "description": "The versioned schema of this representation of the object." },
                "items": { "type": "array", "items": all_of(&kind_schema), "description": format!("The {}.", kind.plural) },
                "kind": { "type": "string", "description": "The kind of object this is." },
                "metadata": { "allOf": [reference(&format!("{META_V1}.ListMeta"))], "description": "Standard list metadata." },
            },
            "x-kubernetes-group-version-kind": [gvk(group, version, &list_kind)],
        }),
    );
}

fn list_schema_name(kind: &KindInfo) -> String {
    format!("{}List", message_schema_name(kind.kind))
}

/// One message as an object schema, its properties keyed by JSON name.
fn message_schema(t: &TypeDoc) -> Value {
    let properties: Map<String, Value> = t.fields.iter().map(|f| (f.name.clone(), field_schema(&t.name, f))).collect();
    let mut schema = Map::new();
    if !t.description.is_empty() {
        schema.insert("description".into(), json!(t.description));
    }
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    let required: Vec<&str> =
        REQUIRED.iter().filter(|(m, f)| *m == t.name && t.fields.iter().any(|x| x.name == *f)).map(|(_, f)| *f).collect();
    if !required.is_empty() {
        schema.insert("required".into(), json!(required));
    }
    Value::Object(schema)
}

/// One field's schema, with the patch extensions the patch table gives it.
fn field_schema(message: &str, f: &docs::FieldDoc) -> Value {
    let mut schema = match &f.shape {
        Shape::One(v) => value_schema(v),
        Shape::List(v) => json!({ "type": "array", "items": value_schema(v) }),
        Shape::Map(v) => json!({ "type": "object", "additionalProperties": value_schema(v) }),
    };
    let Value::Object(s) = &mut schema else { return schema };
    if !f.description.is_empty() {
        s.insert("description".into(), json!(f.description));
    }
    if let Some(m) = meta::field(message, &f.name) {
        s.insert("x-kubernetes-patch-strategy".into(), json!(if m.retain_keys { "merge,retainKeys" } else { "merge" }));
        s.insert("x-kubernetes-list-type".into(), json!(m.list_type));
        if let Some(key) = m.merge_key {
            s.insert("x-kubernetes-patch-merge-key".into(), json!(key));
            s.insert("x-kubernetes-list-map-keys".into(), json!([key]));
        }
    }
    schema
}

/// The schema of one value (a field's, an item's or a map value's).
fn value_schema(v: &ValueType) -> Value {
    match v {
        ValueType::String => json!({ "type": "string" }),
        ValueType::Bytes => json!({ "type": "string", "format": "byte" }),
        ValueType::Boolean => json!({ "type": "boolean" }),
        ValueType::Int32 => json!({ "type": "integer", "format": "int32" }),
        ValueType::Int64 => json!({ "type": "integer", "format": "int64" }),
        ValueType::Number => json!({ "type": "number", "format": "double" }),
        ValueType::IntOrString => all_of(INT_OR_STRING),
        ValueType::Quantity => all_of(QUANTITY),
        ValueType::Message(m) => all_of(&message_schema_name(m)),
    }
}

fn string_property(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn int32_property(description: &str) -> Value {
    json!({ "type": "integer", "format": "int32", "description": description })
}

/// autoscaling/v1 Scale, what `/scale` reads and writes.
fn add_scale_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        SCALE.into(),
        json!({
            "description": "Scale represents a scaling request for a resource.",
            "type": "object",
            "properties": {
                "apiVersion": string_property("The versioned schema of this representation of the object: autoscaling/v1."),
                "kind": string_property("The kind of object this is: Scale."),
                "metadata": { "allOf": [reference(&format!("{META_V1}.ObjectMeta"))], "description": "The scaled object's metadata." },
                "spec": { "allOf": [reference(&format!("{SCALE}Spec"))], "description": "The desired number of replicas." },
                "status": { "allOf": [reference(&format!("{SCALE}Status"))], "description": "The current number of replicas; read-only." },
            },
            "x-kubernetes-group-version-kind": [gvk("autoscaling", "v1", "Scale")],
        }),
    );
    schemas.insert(
        format!("{SCALE}Spec"),
        json!({
            "description": "ScaleSpec describes the attributes of a scale subresource.",
            "type": "object",
            "properties": { "replicas": int32_property("The desired number of instances for the scaled object.") },
        }),
    );
    schemas.insert(
        format!("{SCALE}Status"),
        json!({
            "description": "ScaleStatus represents the current status of a scale subresource.",
            "type": "object",
            "required": ["replicas"],
            "properties": {
                "replicas": int32_property("The actual number of observed instances of the scaled object."),
                "selector": string_property("The label query over pods that should match the replicas count, in label selector syntax."),
            },
        }),
    );
}

/// The schemas every document refers to: list metadata, Status, quantities and int-or-string.
fn add_common_schemas(schemas: &mut Map<String, Value>) {
    schemas.insert(
        format!("{META_V1}.ListMeta"),
        json!({
            "description": "ListMeta describes metadata that synthetic resources must have, including lists.",
            "type": "object",
            "properties": {
                "continue": string_property("Set when the list is truncated (limit); pass it as the continue parameter to get the rest."),
                "remainingItemCount": { "type": "integer", "format": "int64", "description": "The number of items left after this page." },
                "resourceVersion": string_property("The revision of the store this list was read at; watch from it."),
                "selfLink": string_property("Deprecated; always empty."),
            },
        }),
    );
    schemas.insert(
        format!("{META_V1}.Status"),
        json!({
            "description": "Status is a return value for calls that don't return other objects.",
            "type": "object",
            "properties": {
                "apiVersion": string_property("The versioned schema of this representation of the object: v1."),
                "code": int32_property("The suggested HTTP return code for this status, 0 if not set."),
                "details": { "allOf": [reference(&format!("{META_V1}.StatusDetails"))], "description": "Extended data associated with the reason." },
                "kind": string_property("The kind of object this is: Status."),
                "message": string_property("A human-readable description of the status of this operation."),
                "metadata": { "allOf": [reference(&format!("{META_V1}.ListMeta"))], "description": "Standard list metadata." },
                "reason": string_property("A machine-readable description of why this operation is in the Failure status."),
                "status": string_property("Success or Failure."),
            },
            "x-kubernetes-group-version-kind": [gvk("", "v1", "Status")],
        }),
    );
    schemas.insert(
        format!("{META_V1}.StatusDetails"),
        json!({
            "description": "StatusDetails is a set of additional properties that MAY be set by the server to provide additional information about a response.",
            "type": "object",
            "properties": {
                "causes": {
                    "type": "array",
                    "items": all_of(&format!("{META_V1}.StatusCause")),
                    "description": "The causes of a StatusReason error, e.g. one per invalid field.",
                    "x-kubernetes-list-type": "atomic",
                },
                "group": string_property("The group attribute of the resource associated with the status."),
                "kind": string_property("The kind attribute of the resource associated with the status."),
                "name": string_property("The name attribute of the resource associated with the status."),
                "retryAfterSeconds": int32_property("The number of seconds before the client should attempt to retry."),
                "uid": string_property("The UID of the resource."),
            },
        }),
    );
    schemas.insert(
        format!("{META_V1}.StatusCause"),
        json!({
            "description": "StatusCause provides more information about an api.Status failure.",
            "type": "object",
            "properties": {
                "field": string_property("The field of the resource that caused this error, e.g. spec.containers[0].image."),
                "message": string_property("A human-readable description of the cause of the error."),
                "reason": string_property("A machine-readable description of the cause of the error."),
            },
        }),
    );
    schemas.insert(
        QUANTITY.into(),
        json!({
            "description": "A fixed-point number with an optional suffix: 500m, 128Mi, 1.5, 2Gi. Manifests may write it as a number.",
            "oneOf": [{ "type": "string" }, { "type": "number" }],
        }),
    );
    schemas.insert(
        INT_OR_STRING.into(),
        json!({
            "description": "A number or a string: a port number (8080) or a port name (http).",
            "format": "int-or-string",
            "x-kubernetes-int-or-string": true,
            "anyOf": [{ "type": "integer" }, { "type": "string" }],
        }),
    );
}

// -------------------------------------------------------------------- paths

/// One query parameter.
fn query(name: &str, type_name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "description": description, "schema": { "type": type_name, "uniqueItems": true } })
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string", "uniqueItems": true } })
}

fn dry_run() -> Value {
    query("dryRun", "string", "When present (All), the request is checked but nothing is stored.")
}

fn field_manager() -> Value {
    query("fieldManager", "string", "A name associated with the actor or entity that is making these changes.")
}

/// What kubectl looks for on a kind's PATCH to decide that the server validates fields.
fn field_validation() -> Value {
    query(
        "fieldValidation",
        "string",
        "How the server treats fields it does not know or finds twice: Ignore, Warn or Strict (the server rejects the request).",
    )
}

fn list_parameters() -> Vec<Value> {
    vec![
        query("allowWatchBookmarks", "boolean", "With watch, asks for BOOKMARK events that carry the latest resourceVersion."),
        query("continue", "string", "The continue token of the previous page."),
        query("fieldSelector", "string", "Restricts the list to objects whose fields match (metadata.name=x,status.phase!=Running)."),
        query("labelSelector", "string", "Restricts the list to objects whose labels match (app=web,tier in (a,b))."),
        query("limit", "integer", "The most items to return; the rest is behind the continue token."),
        query("resourceVersion", "string", "The revision to list at or watch from."),
        query("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
        query("timeoutSeconds", "integer", "How long a watch lasts."),
        query("watch", "boolean", "Watch for changes instead of listing: a stream of ADDED, MODIFIED and DELETED events."),
    ]
}

fn delete_parameters() -> Vec<Value> {
    vec![
        dry_run(),
        query("gracePeriodSeconds", "integer", "Seconds before the object is deleted; 0 deletes at once."),
        query("propagationPolicy", "string", "How dependents are collected: Orphan, Background or Foreground."),
    ]
}

/// A JSON body or reply of the given schema.
fn json_content(schema: &str) -> Value {
    json!({ "application/json": { "schema": reference(schema) } })
}

fn responses(ok_schema: &str, created: bool) -> Value {
    let mut r = json!({
        "200": { "description": "OK", "content": json_content(ok_schema) },
        "401": { "description": "Unauthorized" },
    });
    if created {
        r["201"] = json!({ "description": "Created", "content": json_content(ok_schema) });
    }
    r
}

/// One operation; `gvk` is what kubectl looks up operations by.
struct Operation<'a> {
    id: String,
    description: String,
    action: &'a str,
    gvk: Value,
    parameters: Vec<Value>,
    request_body: Option<Value>,
    responses: Value,
}

impl Operation<'_> {
    fn into_json(self) -> Value {
        let mut op = json!({
            "operationId": self.id,
            "description": self.description,
            "parameters": self.parameters,
            "responses": self.responses,
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk,
        });
        if let Some(body) = self.request_body {
            op["requestBody"] = body;
        }
        op
    }
}

/// The operation ID's middle: `CoreV1`, `RbacAuthorizationV1`, `CoordinationV1`.
fn operation_group(api_version: &str) -> String {
    let (group, version) = group_version(api_version);
    let group = if group.is_empty() { "core" } else { group.trim_end_matches(".k8s.io") };
    group.split('.').chain([version]).map(capitalize).collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|first| first.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The paths of one kind: its collection, its items (with `/status` and
/// `/scale` when it has them) and, for namespaced kinds, the list across
/// namespaces.
fn add_paths(paths: &mut Map<String, Value>, kind: &KindInfo) {
    let base = if kind.api_version.contains('/') { format!("/apis/{}", kind.api_version) } else { format!("/api/{}", kind.api_version) };
    let scope = if kind.namespaced { "/namespaces/{namespace}" } else { "" };
    let collection = format!("{base}{scope}/{}", kind.plural);
    let item = format!("{collection}/{{name}}");
    let k = kind.kind;
    let id = |verb: &str, suffix: &str| {
        let namespaced = if kind.namespaced { "Namespaced" } else { "" };
        format!("{verb}{}{namespaced}{k}{suffix}", operation_group(kind.api_version))
    };
    let schema = message_schema_name(k);
    let list_schema = list_schema_name(kind);
    let status = format!("{META_V1}.Status");
    let gvk = kind_gvk(kind);

    let mut collection_parameters = vec![query("pretty", "string", "If 'true', the output is pretty printed.")];
    let mut item_parameters = vec![path_parameter("name", &format!("name of the {k}")), collection_parameters[0].clone()];
    if kind.namespaced {
        let ns = path_parameter("namespace", "object name and auth scope, such as for teams and projects");
        collection_parameters.push(ns.clone());
        item_parameters.push(ns);
    }

    let op = |id: String, description: String, action: &'static str, parameters: Vec<Value>, body: Option<Value>, responses: Value| {
        Operation { id, description, action, gvk: gvk.clone(), parameters, request_body: body, responses }.into_json()
    };
    let write_body = || Some(json!({ "required": true, "content": json_content(&schema) }));
    let write_parameters = || vec![dry_run(), field_manager(), field_validation()];
    let patch = |id: String, description: String, target: &str| {
        op(id, description, "patch", patch_parameters(), Some(patch_body(target)), responses(target, true))
    };

    paths.insert(
        collection.clone(),
        json!({
            "parameters": collection_parameters,
            "get": op(id("list", ""), format!("list or watch objects of kind {k}"), "list", list_parameters(), None, responses(&list_schema, false)),
            "post": op(id("create", ""), format!("create a {k}"), "post", write_parameters(), write_body(), responses(&schema, true)),
            "delete": op(
                id("deleteCollection", ""),
                format!("delete collection of {k}"),
                "deletecollection",
                [list_parameters(), delete_parameters()].concat(),
                None,
                responses(&status, false),
            ),
        }),
    );
    paths.insert(
        item.clone(),
        json!({
            "parameters": item_parameters,
            "get": op(id("read", ""), format!("read the specified {k}"), "get", vec![], None, responses(&schema, false)),
            "put": op(id("replace", ""), format!("replace the specified {k}"), "put", write_parameters(), write_body(), responses(&schema, true)),
            "patch": patch(id("patch", ""), format!("partially update the specified {k}"), &schema),
            "delete": op(id("delete", ""), format!("delete a {k}"), "delete", delete_parameters(), None, responses(&status, false)),
        }),
    );
    if kind.namespaced {
        paths.insert(
            format!("{base}/{}", kind.plural),
            json!({
                "parameters": [collection_parameters[0].clone()],
                "get": op(
                    format!("list{}{k}ForAllNamespaces", operation_group(kind.api_version)),
                    format!("list or watch objects of kind {k} in all namespaces"),
                    "list",
                    list_parameters(),
                    None,
                    responses(&list_schema, false),
                ),
            }),
        );
    }
    if kind.has_status {
        paths.insert(
            format!("{item}/status"),
            json!({
                "parameters": item_parameters,
                "get": op(id("read", "Status"), format!("read status of the specified {k}"), "get", vec![], None, responses(&schema, false)),
                "put": op(id("replace", "Status"), format!("replace status of the specified {k}"), "put", write_parameters(), write_body(), responses(&schema, true)),
                "patch": patch(id("patch", "Status"), format!("partially update status of the specified {k}"), &schema),
            }),
        );
    }
    if SCALED_KINDS.contains(&k) {
        let scale_op = |id: String, description: String, action: &'static str, parameters: Vec<Value>, body: Option<Value>| {
            let gvk = gvk_of_scale();
            let created = action == "put";
            Operation { id, description, action, gvk, parameters, request_body: body, responses: responses(SCALE, created) }.into_json()
        };
        paths.insert(
            format!("{item}/scale"),
            json!({
                "parameters": item_parameters,
                "get": scale_op(id("read", "Scale"), format!("read scale of the specified {k}"), "get", vec![], None),
                "put": scale_op(
                    id("replace", "Scale"),
                    format!("replace scale of the specified {k}"),
                    "put",
                    write_parameters(),
                    Some(json!({ "required": true, "content": json_content(SCALE) })),
                ),
                "patch": scale_op(id("patch", "Scale"), format!("partially update scale of the specified {k}"), "patch", patch_parameters(), Some(patch_body(SCALE))),
            }),
        );
    }
}

fn gvk_of_scale() -> Value {
    gvk("autoscaling", "v1", "Scale")
}

/// A PATCH's query parameters: `fieldValidation` is what kubectl checks for.
fn patch_parameters() -> Vec<Value> {
    vec![
        dry_run(),
        field_manager(),
        field_validation(),
        query("force", "boolean", "Server-side apply: take over fields other managers own."),
    ]
}

/// A PATCH's body: the patch types the server takes. Listing strategic merge
/// patch makes kubectl compute `apply`'s patches from the schemas.
fn patch_body(schema: &str) -> Value {
    let content: Map<String, Value> = [
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    ]
    .into_iter()
    .map(|media_type| (media_type.to_string(), json!({ "schema": reference(schema) })))
    .collect();
    json!({ "required": true, "content": content })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::resource::KINDS;

    fn all_kinds() -> Vec<&'static KindInfo> {
        KINDS.iter().collect()
    }

    fn doc(api: &OpenApi, path: &str) -> Value {
        let (bytes, _) = api.document(path).unwrap_or_else(|| panic!("no document {path}"));
        serde_json::from_slice(bytes).expect("a document is JSON")
    }

    fn schema<'a>(d: &'a Value, name: &str) -> &'a Value {
        let s = &d["components"]["schemas"][name];
        assert!(s.is_object(), "no schema {name}");
        s
    }

    #[test]
    fn should_list_every_served_group_version_in_the_index_with_its_hash() {
        let api = OpenApi::new(&all_kinds());
        let index: Value = serde_json::from_slice(api.index()).expect("JSON");
        let paths = index["paths"].as_object().expect("paths");
        let keys: BTreeSet<&str> = paths.keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["api/v1", "apis/coordination.k8s.io/v1", "apis/rbac.authorization.k8s.io/v1"]));
        for (path, entry) in paths {
            let (bytes, hash) = api.document(path).expect("listed documents are served");
            let want = Sha256::digest(bytes).iter().map(|b| format!("{b:02X}")).collect::<String>();
            assert_eq!(hash, want);
            assert_eq!(entry["serverRelativeURL"], json!(format!("/openapi/v3/{path}?hash={hash}")));
        }
        assert!(api.document("apis/apps/v1").is_none());
        assert!(api.document("/api/v1").is_some(), "a leading slash is tolerated");
    }

    #[test]
    fn should_leave_out_disabled_kinds() {
        let served: Vec<&KindInfo> = KINDS.iter().filter(|k| k.kind != "Lease" && k.kind != "Secret").collect();
        let api = OpenApi::new(&served);
        let index: Value = serde_json::from_slice(api.index()).expect("JSON");
        assert!(index["paths"].get("apis/coordination.k8s.io/v1").is_none());
        assert!(api.document("apis/coordination.k8s.io/v1").is_none());
        let d = doc(&api, "api/v1");
        let paths = d["paths"].as_object().expect("paths");
        assert!(
            paths.keys().all(|p| !p.contains("/secrets")),
            "secrets paths left: {:?}",
            paths.keys().filter(|p| p.contains("secrets")).collect::<Vec<_>>()
        );
        assert!(d["components"]["schemas"].get("io.k8s.api.core.v1.Secret").is_none());
        assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods/{name}"));
    }

    #[test]
    fn should_declare_field_validation_and_strategic_merge_on_every_patch_of_every_kind() {
        let api = OpenApi::new(&all_kinds());
        for kind in KINDS {
            let d = doc(&api, &document_path(kind.api_version));
            // As kubectl's query parameter verifier does: the PATCH operations carrying the kind's GVK.
            let patches: Vec<&Value> = d["paths"]
                .as_object()
                .expect("paths")
                .values()
                .filter_map(|p| p.get("patch"))
                .filter(|op| op["x-kubernetes-group-version-kind"] == kind_gvk(kind))
                .collect();
            assert!(!patches.is_empty(), "no PATCH for {}", kind.kind);
            for op in patches {
                let params = op["parameters"].as_array().expect("parameters");
                assert!(params.iter().any(|p| p["name"] == "fieldValidation" && p["in"] == "query"), "{}: {op}", kind.kind);
                assert!(op["requestBody"]["content"].get("application/strategic-merge-patch+json").is_some());
            }
        }
        let d = doc(&api, "api/v1");
        let pod_patch = &d["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
        assert_eq!(pod_patch["x-kubernetes-action"], "patch");
        assert_eq!(pod_patch["x-kubernetes-group-version-kind"], json!({"group": "", "kind": "Pod", "version": "v1"}));
        let content = pod_patch["requestBody"]["content"].as_object().expect("content");
        for media_type in ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"] {
            assert_eq!(content[media_type]["schema"]["$ref"], "#/components/schemas/io.k8s.api.core.v1.Pod");
        }
        let names: Vec<&str> = pod_patch["parameters"].as_array().expect("parameters").iter().filter_map(|p| p["name"].as_str()).collect();
        assert_eq!(names, ["dryRun", "fieldManager", "fieldValidation", "force"]);
    }

    #[test]
    fn should_serve_cluster_scoped_status_and_scale_paths() {
        let api = OpenApi::new(&all_kinds());
        let d = doc(&api, "api/v1");
        let paths = &d["paths"];
        assert!(paths["/api/v1/nodes/{name}"]["patch"].is_object());
        assert!(paths["/api/v1/nodes/{name}/status"]["patch"].is_object());
        assert!(paths["/api/v1/namespaces/{name}"]["get"].is_object());
        assert!(paths["/api/v1/pods"]["get"].is_object(), "pods across namespaces");
        assert!(paths.get("/api/v1/namespaces/{namespace}/configmaps/{name}/status").is_none(), "config maps have no status");
        let scale = &paths["/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale"]["patch"];
        assert_eq!(scale["x-kubernetes-group-version-kind"], json!({"group": "autoscaling", "kind": "Scale", "version": "v1"}));
        let scale_schema = schema(&d, SCALE);
        assert_eq!(scale_schema["x-kubernetes-group-version-kind"], json!([{"group": "autoscaling", "kind": "Scale", "version": "v1"}]));
        assert!(schema(&d, "io.k8s.api.autoscaling.v1.ScaleStatus")["properties"]["selector"].is_object());

        let rbac = doc(&api, "apis/rbac.authorization.k8s.io/v1");
        assert_eq!(
            rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles/{name}"]["get"]["operationId"],
            "readRbacAuthorizationV1ClusterRole"
        );
        assert!(rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles/{name}"]["patch"].is_object());
        assert!(schema(&rbac, "io.k8s.api.rbac.v1.Role")["x-kubernetes-group-version-kind"].is_array());
        let lease = doc(&api, "apis/coordination.k8s.io/v1");
        assert_eq!(
            schema(&lease, "io.k8s.api.coordination.v1.Lease")["x-kubernetes-group-version-kind"],
            json!([{"group": "coordination.k8s.io", "kind": "Lease", "version": "v1"}])
        );
    }

    #[test]
    fn should_carry_the_patch_tables_merge_keys_and_strategies() {
        let api = OpenApi::new(&all_kinds());
        let d = doc(&api, "api/v1");
        let containers = &schema(&d, "io.k8s.api.core.v1.PodSpec")["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        assert_eq!(containers["items"]["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.core.v1.Container");
        let volumes = &schema(&d, "io.k8s.api.core.v1.PodSpec")["properties"]["volumes"];
        assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
        let finalizers = &schema(&d, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"]["finalizers"];
        assert_eq!((&finalizers["x-kubernetes-patch-strategy"], &finalizers["x-kubernetes-list-type"]), (&json!("merge"), &json!("set")));
        assert!(finalizers.get("x-kubernetes-patch-merge-key").is_none());
        let tolerations = &schema(&d, "io.k8s.api.core.v1.PodSpec")["properties"]["tolerations"];
        assert!(tolerations.get("x-kubernetes-patch-strategy").is_none(), "atomic lists carry no strategy");

        // Every entry of the table is in the documents that hold its message, the same.
        // (The table also holds Kubernetes fields Berth has not got, such as PodSpec.hostAliases.)
        let exists = |m: &str, f: &str| docs::type_doc_of(m).is_some_and(|t| t.fields.iter().any(|x| x.name == f));
        let mut checked = BTreeSet::new();
        for name in ["api/v1", "apis/rbac.authorization.k8s.io/v1", "apis/coordination.k8s.io/v1"] {
            let d = doc(&api, name);
            for (message, field, m) in meta::TABLE {
                let Some(s) = d["components"]["schemas"].get(message_schema_name(message)) else { continue };
                if !exists(message, field) {
                    continue;
                }
                let p = &s["properties"][*field];
                assert_eq!(p["x-kubernetes-patch-merge-key"].as_str(), m.merge_key, "{message}.{field}");
                assert_eq!(p["x-kubernetes-list-type"], m.list_type, "{message}.{field}");
                checked.insert((*message, *field));
            }
        }
        let unreachable: Vec<_> = meta::TABLE.iter().filter(|(m, f, _)| exists(m, f) && !checked.contains(&(*m, *f))).collect();
        assert!(unreachable.is_empty(), "table entries no served kind reaches: {unreachable:?}");
        assert!(checked.len() >= 15, "only {} table entries checked", checked.len());
    }

    /// Every `$ref` below `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn should_resolve_every_ref_within_its_document() {
        let api = OpenApi::new(&all_kinds());
        for name in ["api/v1", "apis/rbac.authorization.k8s.io/v1", "apis/coordination.k8s.io/v1"] {
            let d = doc(&api, name);
            let mut found = Vec::new();
            refs(&d, &mut found);
            assert!(found.len() > 20, "{name}: only {} refs", found.len());
            for r in found {
                let target = r.strip_prefix(REF_PREFIX).unwrap_or_else(|| panic!("{name}: {r} is not a schema ref"));
                assert!(d["components"]["schemas"].get(target).is_some(), "{name}: {r} resolves to nothing");
            }
        }
    }

    #[test]
    fn should_give_every_field_of_every_message_a_property() {
        let api = OpenApi::new(&all_kinds());
        let mut messages = 0;
        for name in ["api/v1", "apis/rbac.authorization.k8s.io/v1", "apis/coordination.k8s.io/v1"] {
            let d = doc(&api, name);
            for t in docs::types().values() {
                let Some(s) = d["components"]["schemas"].get(schema_name(&t.name, &t.package)) else { continue };
                messages += 1;
                let properties = s["properties"].as_object().unwrap_or_else(|| panic!("{} has no properties", t.name));
                let want: BTreeSet<&str> = t.fields.iter().map(|f| f.name.as_str()).collect();
                let got: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
                assert_eq!(got, want, "{}", t.name);
                for (field, p) in properties {
                    assert!(p["description"].as_str().is_some_and(|d| !d.is_empty()), "{}.{field} has no description", t.name);
                }
            }
        }
        assert!(messages > 60, "only {messages} message schemas");
        let d = doc(&api, "api/v1");
        let object_meta = &schema(&d, "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")["properties"];
        for map in ["labels", "annotations"] {
            assert_eq!(object_meta[map]["type"], "object");
            assert_eq!(object_meta[map]["additionalProperties"], json!({"type": "string"}));
        }
        assert_eq!(object_meta["generation"]["format"], "int64");
        let pod = schema(&d, "io.k8s.api.core.v1.Pod");
        assert_eq!(pod["x-kubernetes-group-version-kind"], json!([{"group": "", "kind": "Pod", "version": "v1"}]));
        assert_eq!(pod["properties"]["apiVersion"]["type"], "string");
        assert_eq!(pod["properties"]["kind"]["type"], "string");
        assert_eq!(pod["properties"]["spec"]["allOf"][0]["$ref"], "#/components/schemas/io.k8s.api.core.v1.PodSpec");
        assert!(schema(&d, "io.k8s.api.core.v1.PodSpec").get("x-kubernetes-group-version-kind").is_none());
        let limits = &schema(&d, "io.k8s.api.core.v1.ResourceRequirements")["properties"]["limits"];
        assert_eq!(limits["additionalProperties"]["allOf"][0]["$ref"], format!("{REF_PREFIX}{QUANTITY}"));
        let target_port = &schema(&d, "io.k8s.api.core.v1.ServicePort")["properties"]["targetPort"];
        assert_eq!(target_port["allOf"][0]["$ref"], format!("{REF_PREFIX}{INT_OR_STRING}"));
        assert_eq!(schema(&d, INT_OR_STRING)["x-kubernetes-int-or-string"], true);
        assert_eq!(schema(&d, "io.k8s.api.core.v1.Secret")["properties"]["data"]["additionalProperties"]["format"], "byte");
        assert_eq!(schema(&d, "io.k8s.api.core.v1.Container")["required"], json!(["name"]));
        assert_eq!(schema(&d, "io.k8s.api.core.v1.PodList")["x-kubernetes-group-version-kind"][0]["kind"], "PodList");
    }

    #[test]
    fn should_name_only_fields_that_exist_as_required() {
        for (message, field) in REQUIRED {
            let t = docs::type_doc_of(message).unwrap_or_else(|| panic!("no message {message}"));
            assert!(t.fields.iter().any(|f| f.name == *field), "{message} has no field {field}");
        }
    }
}
