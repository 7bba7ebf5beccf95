//! Schemas generated from the proto descriptor's messages ([`crate::docs`]):
//! a kind's message and every message it reaches, its List, Kubernetes'
//! schema names, the fields Kubernetes marks required, and the
//! `x-kubernetes-patch-*` / `x-kubernetes-list-*` extensions the patch table
//! ([`crate::patch::meta`]) gives fields.

use serde_json::{Map, Value, json};

use super::{INT_OR_STRING, META_V1, QUANTITY, all_of, group_version, gvk, kind_gvk, reference};
use crate::KindInfo;
use crate::docs::{self, Shape, TypeDoc, ValueType};
use crate::patch::meta;

/// Messages of `berth.core.v1` that Kubernetes keeps in apimachinery's meta/v1.
const META_MESSAGES: &[&str] = &["ObjectMeta", "OwnerReference", "LabelSelector", "LabelSelectorRequirement"];

/// Messages of `berth.core.v1` that Kubernetes keeps in coordination.k8s.io/v1.
const COORDINATION_MESSAGES: &[&str] = &["Lease", "LeaseSpec"];

/// Fields Kubernetes marks required (`explain` prints `-required-`), as
/// (message, JSON name); from k8s.io/api's `+required` markers and
/// non-omitempty fields (v0.32).
pub(super) const REQUIRED: &[(&str, &str)] = &[
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

/// Kubernetes' name of a message's schema: `io.k8s.api.core.v1.PodSpec`,
/// `io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta`, `io.k8s.api.rbac.v1.Role`.
pub(super) fn schema_name(message: &str, package: &str) -> String {
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
pub(super) fn message_schema_name(message: &str) -> String {
    let package = docs::type_doc_of(message).map(|t| t.package.as_str()).unwrap_or("berth.core.v1");
    schema_name(message, package)
}

/// The schemas of a kind: its message and every message it reaches, and its List.
pub(super) fn add_kind_schemas(schemas: &mut Map<String, Value>, kind: &KindInfo) {
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

pub(super) fn list_schema_name(kind: &KindInfo) -> String {
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
