//! The API's field documentation, read from the comments in `proto/` (kept in
//! [`crate::pb::DESCRIPTOR`]), under the fields' JSON names, with each field's
//! JSON shape: what `berthctl explain` prints and what the OpenAPI documents
//! ([`crate::openapi`]) are generated from.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};

use crate::KindInfo;
use crate::special_fields::{INT_OR_STRING, QUANTITY_MAPS, QUANTITY_STRINGS};

/// The packages whose messages are API objects (and so are documented).
const PACKAGES: &[&str] = &["berth.core.v1", "berth.rbac.v1"];

/// What went wrong looking up documentation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocsError {
    /// The kind has no message in the descriptor.
    #[error("no documentation for kind {0:?}")]
    UnknownKind(String),
    /// A path segment names no field of the message it is looked up in.
    #[error("field {field:?} does not exist in {path}; its fields are: {}", known.join(", "))]
    UnknownField {
        /// The segment that did not match.
        field: String,
        /// `Pod.spec`: where it was looked up.
        path: String,
        /// The JSON names of the fields that exist there.
        known: Vec<String>,
    },
    /// A path goes below a field that has no fields (a string, a number...).
    #[error("{path} is a {type_name} and has no field {field:?}")]
    NotAnObject {
        /// The segment after the scalar.
        field: String,
        /// `Pod.metadata.name`
        path: String,
        /// `<string>`
        type_name: String,
    },
}

/// One documented message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDoc {
    /// `PodSpec`
    pub name: String,
    /// The proto package it is declared in: `berth.core.v1`.
    pub package: String,
    /// The message's comment (may be empty).
    pub description: String,
    /// Its fields in declaration order.
    pub fields: Vec<FieldDoc>,
}

/// One documented field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDoc {
    /// The JSON (Kubernetes) name: `nodeName`.
    pub name: String,
    /// kubectl's notation: `<string>`, `<integer>`, `<boolean>`, `<[]Container>`, `<map[string]string>`, `<PodSpec>`.
    pub type_name: String,
    /// The field's comment.
    pub description: String,
    /// The message this field holds (or holds a list of), if any: `PodSpec`.
    pub message: Option<String>,
    /// What the field holds in JSON.
    pub shape: Shape,
}

/// The JSON shape of a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// One value.
    One(ValueType),
    /// An array of values (a `repeated` field).
    List(ValueType),
    /// An object from string keys to values (a `map<string, _>` field).
    Map(ValueType),
}

/// What one value of a field (or one item, or one map value) is in JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueType {
    String,
    /// A base64 string.
    Bytes,
    Boolean,
    Int32,
    Int64,
    /// A floating-point number.
    Number,
    /// A port number or a port name (`8080`, `http`).
    IntOrString,
    /// A resource quantity, a string that may also be written as a number (`500m`, `128Mi`, `1`).
    Quantity,
    /// A message, by its short name: `PodSpec`.
    Message(String),
}

impl ValueType {
    /// kubectl's name of the type, as in `<[]Container>`: `string`, `integer`, `Quantity`, `PodSpec`.
    pub fn type_name(&self) -> &str {
        match self {
            ValueType::String | ValueType::Bytes => "string",
            ValueType::Boolean => "boolean",
            ValueType::Int32 | ValueType::Int64 => "integer",
            ValueType::Number => "number",
            ValueType::IntOrString => "IntOrString",
            ValueType::Quantity => "Quantity",
            ValueType::Message(m) => m,
        }
    }
}

impl Shape {
    /// kubectl's notation: `<string>`, `<[]Container>`, `<map[string]string>`, `<PodSpec>`.
    pub fn type_name(&self) -> String {
        match self {
            Shape::One(v) => format!("<{}>", v.type_name()),
            Shape::List(v) => format!("<[]{}>", v.type_name()),
            Shape::Map(v) => format!("<map[string]{}>", v.type_name()),
        }
    }

    /// The value (or item, or map value) type.
    pub fn value(&self) -> &ValueType {
        match self {
            Shape::One(v) | Shape::List(v) | Shape::Map(v) => v,
        }
    }
}

/// The answer to `explain KIND.a.b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The field the path ends at (None for the kind itself).
    pub field: Option<FieldDoc>,
    /// The field's description, or the kind's for an empty path.
    pub description: String,
    /// The fields below, when the path ends at a message.
    pub fields: Vec<FieldDoc>,
}

/// Every documented message by its short name (`Pod`, `PodSpec`, `PolicyRule`).
pub fn types() -> &'static BTreeMap<String, TypeDoc> {
    static TYPES: OnceLock<BTreeMap<String, TypeDoc>> = OnceLock::new();
    TYPES.get_or_init(|| {
        // The descriptor is built into the binary by build.rs: failing to
        // decode it is a build defect, and then there are simply no docs.
        let fds = FileDescriptorSet::decode(crate::pb::DESCRIPTOR).unwrap_or_default();
        let mut types = BTreeMap::new();
        for file in fds.file.iter().filter(|f| PACKAGES.contains(&f.package())) {
            let comments: BTreeMap<Vec<i32>, String> = file
                .source_code_info
                .iter()
                .flat_map(|s| &s.location)
                .filter_map(|l| l.leading_comments.as_ref().map(|c| (l.path.clone(), clean(c))))
                .collect();
            for (i, msg) in file.message_type.iter().enumerate() {
                let path = vec![4, i as i32];
                types.insert(msg.name().to_string(), type_doc(file.package(), msg, &path, &comments));
            }
        }
        types
    })
}

fn type_doc(package: &str, msg: &DescriptorProto, path: &[i32], comments: &BTreeMap<Vec<i32>, String>) -> TypeDoc {
    let fields = msg
        .field
        .iter()
        .enumerate()
        .map(|(j, f)| {
            let mut fpath = path.to_vec();
            fpath.extend([2, j as i32]);
            let description = comments.get(&fpath).cloned().unwrap_or_default();
            let shape = field_shape(package, msg, f);
            let message = match shape.value() {
                ValueType::Message(m) if !matches!(shape, Shape::Map(_)) => Some(m.clone()),
                _ => None,
            };
            FieldDoc { name: f.json_name().to_string(), type_name: shape.type_name(), description, message, shape }
        })
        .collect();
    TypeDoc {
        name: msg.name().to_string(),
        package: package.to_string(),
        description: comments.get(path).cloned().unwrap_or_default(),
        fields,
    }
}

/// A comment's lines trimmed and joined into one paragraph.
fn clean(comment: &str) -> String {
    comment.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

fn field_shape(package: &str, msg: &DescriptorProto, f: &FieldDescriptorProto) -> Shape {
    let proto_path = format!(".{package}.{}.{}", msg.name(), f.name());
    let special = |scalar: ValueType| {
        if INT_OR_STRING.contains(&proto_path.as_str()) {
            ValueType::IntOrString
        } else if QUANTITY_STRINGS.contains(&proto_path.as_str()) || QUANTITY_MAPS.contains(&proto_path.as_str()) {
            ValueType::Quantity
        } else {
            scalar
        }
    };
    if f.label() == Label::Repeated && f.r#type() == Type::Message {
        let entry = short(f.type_name());
        if let Some(entry) = msg.nested_type.iter().find(|n| n.name() == entry && n.options.as_ref().is_some_and(|o| o.map_entry())) {
            let value = entry.field.iter().find(|v| v.name() == "value").map(value_type).unwrap_or(ValueType::String);
            return Shape::Map(special(value));
        }
    }
    let value = special(value_type(f));
    if f.label() == Label::Repeated { Shape::List(value) } else { Shape::One(value) }
}

/// The JSON value of one proto value of the field's type.
fn value_type(f: &FieldDescriptorProto) -> ValueType {
    match f.r#type() {
        Type::Message | Type::Group => ValueType::Message(short(f.type_name())),
        Type::String | Type::Enum => ValueType::String,
        Type::Bytes => ValueType::Bytes,
        Type::Bool => ValueType::Boolean,
        Type::Double | Type::Float => ValueType::Number,
        Type::Int64 | Type::Uint64 | Type::Sint64 | Type::Fixed64 | Type::Sfixed64 => ValueType::Int64,
        Type::Int32 | Type::Uint32 | Type::Sint32 | Type::Fixed32 | Type::Sfixed32 => ValueType::Int32,
    }
}

/// `.berth.core.v1.PodSpec` → `PodSpec`
fn short(type_name: &str) -> String {
    type_name.rsplit('.').next().unwrap_or(type_name).to_string()
}

/// The documentation of a message by its short name.
pub fn type_doc_of(name: &str) -> Option<&'static TypeDoc> {
    types().get(name)
}

/// Looks up `path` (JSON field names) below `kind`.
pub fn explain(kind: &KindInfo, path: &[&str]) -> Result<Explanation, DocsError> {
    let top = type_doc_of(kind.kind).ok_or_else(|| DocsError::UnknownKind(kind.kind.to_string()))?;
    let mut current = top;
    let mut at = kind.kind.to_string();
    let mut field: Option<FieldDoc> = None;
    for segment in path {
        if let Some(f) = &field {
            match f.message.as_deref().and_then(type_doc_of) {
                Some(t) => current = t,
                None => {
                    return Err(DocsError::NotAnObject { field: segment.to_string(), path: at, type_name: f.type_name.clone() });
                }
            }
        }
        let found = current.fields.iter().find(|f| f.name == *segment).ok_or_else(|| DocsError::UnknownField {
            field: segment.to_string(),
            path: at.clone(),
            known: current.fields.iter().map(|f| f.name.clone()).collect(),
        })?;
        at = format!("{at}.{segment}");
        field = Some(found.clone());
    }
    Ok(match field {
        None => Explanation { field: None, description: top.description.clone(), fields: top.fields.clone() },
        Some(f) => {
            let fields = f.message.as_deref().and_then(type_doc_of).map(|t| t.fields.clone()).unwrap_or_default();
            Explanation { description: f.description.clone(), fields, field: Some(f) }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::resource::KINDS;

    #[test]
    fn should_document_every_served_kind_and_every_field_reachable_from_it() {
        let mut missing = Vec::new();
        let mut seen = BTreeSet::new();
        for kind in KINDS {
            let Some(t) = type_doc_of(kind.kind) else {
                missing.push(format!("kind {}", kind.kind));
                continue;
            };
            if t.description.is_empty() {
                missing.push(format!("message {}", t.name));
            }
            let mut todo = vec![t];
            while let Some(t) = todo.pop() {
                if !seen.insert(t.name.clone()) {
                    continue;
                }
                for f in &t.fields {
                    if f.description.is_empty() {
                        missing.push(format!("{}.{}", t.name, f.name));
                    }
                    if let Some(m) = f.message.as_deref() {
                        match type_doc_of(m) {
                            Some(child) => todo.push(child),
                            None => missing.push(format!("message {m} (of {}.{})", t.name, f.name)),
                        }
                    }
                }
            }
        }
        assert!(missing.is_empty(), "fields without a doc comment in proto/ ({}):\n{}", missing.len(), missing.join("\n"));
    }

    #[test]
    fn should_explain_a_nested_field_under_its_json_name() {
        let pod = KINDS.iter().find(|k| k.kind == "Pod").expect("Pod is served");
        let e = explain(pod, &["spec", "nodeName"]).expect("exists");
        let f = e.field.expect("a field");
        assert_eq!((f.name.as_str(), f.type_name.as_str()), ("nodeName", "<string>"));
        assert!(e.fields.is_empty());
        let e = explain(pod, &["spec", "containers"]).expect("exists");
        assert_eq!(e.field.expect("a field").type_name, "<[]Container>");
        assert!(e.fields.iter().any(|f| f.name == "image"));
        let e = explain(pod, &["metadata", "labels"]).expect("exists");
        assert_eq!(e.field.expect("a field").type_name, "<map[string]string>");
    }

    #[test]
    fn should_give_each_field_the_json_shape_its_serde_attributes_give_it() {
        let shape = |message: &str, field: &str| {
            let t = type_doc_of(message).unwrap_or_else(|| panic!("no {message}"));
            t.fields.iter().find(|f| f.name == field).unwrap_or_else(|| panic!("no {message}.{field}")).clone()
        };
        let limits = shape("ResourceRequirements", "limits");
        assert_eq!((limits.shape, limits.type_name.as_str()), (Shape::Map(ValueType::Quantity), "<map[string]Quantity>"));
        assert_eq!(shape("EmptyDirVolumeSource", "sizeLimit").shape, Shape::One(ValueType::Quantity));
        let target_port = shape("ServicePort", "targetPort");
        assert_eq!((target_port.shape, target_port.type_name.as_str()), (Shape::One(ValueType::IntOrString), "<IntOrString>"));
        assert_eq!(shape("Secret", "data").shape, Shape::Map(ValueType::Bytes));
        assert_eq!(shape("ObjectMeta", "labels").shape, Shape::Map(ValueType::String));
        assert_eq!(shape("ObjectMeta", "generation").shape, Shape::One(ValueType::Int64));
        assert_eq!(shape("ContainerPort", "containerPort").shape, Shape::One(ValueType::Int32));
        let containers = shape("PodSpec", "containers");
        assert_eq!(containers.shape, Shape::List(ValueType::Message("Container".into())));
        assert_eq!(containers.message.as_deref(), Some("Container"));
        assert_eq!(type_doc_of("PolicyRule").map(|t| t.package.as_str()), Some("berth.rbac.v1"));
    }

    #[test]
    fn should_name_the_unknown_field_and_list_the_known_ones() {
        let pod = KINDS.iter().find(|k| k.kind == "Pod").expect("Pod is served");
        match explain(pod, &["spec", "nodename"]) {
            Err(DocsError::UnknownField { field, path, known }) => {
                assert_eq!((field.as_str(), path.as_str()), ("nodename", "Pod.spec"));
                assert!(known.contains(&"nodeName".to_string()));
            }
            other => panic!("want UnknownField, got {other:?}"),
        }
        assert!(matches!(explain(pod, &["metadata", "name", "x"]), Err(DocsError::NotAnObject { .. })));
    }
}
