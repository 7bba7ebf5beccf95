//! Where a strategic merge patch is in an object: the proto message each
//! JSON object of a kind is (read from [`crate::pb::DESCRIPTOR`], decoded
//! once), and, with [`super::meta`], how each of its fields merges.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

use super::meta::{self, FieldMeta};

/// The packages whose messages are API objects.
const PACKAGES: &[&str] = &["berth.core.v1", "berth.rbac.v1"];

/// What the merge needs to know about one field of a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FieldSchema<'a> {
    /// The message the field's value is (or its list's items are); None for
    /// scalars, maps of scalars and fields the schema does not know.
    pub message: Option<&'a str>,
    /// How the field merges when it is a list; None: atomic.
    pub meta: Option<FieldMeta>,
}

/// The field lookups the strategic merge makes; messages are named by their
/// short name (`PodSpec`).
pub(crate) trait Schema {
    /// The field `json_name` of `message`; the default for an unknown field.
    fn field<'a>(&'a self, message: &str, json_name: &str) -> FieldSchema<'a>;
}

/// Berth's messages from the proto descriptor, with the metadata table.
#[derive(Debug, Default)]
pub(crate) struct DescriptorSchema {
    /// Message short name → JSON field name → the message the field holds.
    messages: HashMap<String, HashMap<String, Option<String>>>,
}

impl DescriptorSchema {
    /// The schema of Berth's API, decoded from the descriptor on first use.
    pub(crate) fn get() -> &'static DescriptorSchema {
        static SCHEMA: OnceLock<DescriptorSchema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            // The descriptor is built into the binary by build.rs: failing to
            // decode it is a build defect (a test below guards it); the patch
            // then merges every map and replaces every list.
            FileDescriptorSet::decode(crate::pb::DESCRIPTOR).map(|fds| Self::from_descriptor(&fds)).unwrap_or_default()
        })
    }

    fn from_descriptor(fds: &FileDescriptorSet) -> DescriptorSchema {
        let mut messages = HashMap::new();
        for file in fds.file.iter().filter(|f| PACKAGES.contains(&f.package())) {
            for msg in &file.message_type {
                messages.insert(msg.name().to_string(), fields_of(msg));
            }
        }
        DescriptorSchema { messages }
    }

    /// The message of a kind (`Pod`), if the descriptor has it.
    pub(crate) fn kind_message(&self, kind: &str) -> Option<&str> {
        self.messages.get_key_value(kind).map(|(name, _)| name.as_str())
    }

    /// Whether `message` has a field named `json_name`.
    #[cfg(test)]
    pub(crate) fn has_field(&self, message: &str, json_name: &str) -> bool {
        self.messages.get(message).is_some_and(|fields| fields.contains_key(json_name))
    }
}

impl Schema for DescriptorSchema {
    fn field<'a>(&'a self, message: &str, json_name: &str) -> FieldSchema<'a> {
        let Some(held) = self.messages.get(message).and_then(|fields| fields.get(json_name)) else {
            return FieldSchema::default();
        };
        FieldSchema { message: held.as_deref(), meta: meta::field(message, json_name) }
    }
}

/// JSON name → the short name of the message the field holds (None for
/// scalars and proto maps, whose JSON is an object of scalars).
fn fields_of(msg: &DescriptorProto) -> HashMap<String, Option<String>> {
    msg.field
        .iter()
        .map(|f| {
            let short = f.type_name().rsplit('.').next().unwrap_or_default();
            let is_map = f.label() == Label::Repeated
                && msg.nested_type.iter().any(|n| n.name() == short && n.options.as_ref().is_some_and(|o| o.map_entry()));
            let held = (f.r#type() == Type::Message && !is_map).then(|| short.to_string());
            (f.json_name().to_string(), held)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_follow_fields_to_the_messages_they_hold() {
        let schema = DescriptorSchema::get();
        assert_eq!(schema.kind_message("ReplicationController"), Some("ReplicationController"));
        assert_eq!(schema.field("ReplicationController", "spec").message, Some("ReplicationControllerSpec"));
        let containers = schema.field("PodSpec", "containers");
        assert_eq!(containers.message, Some("Container"));
        assert_eq!(containers.meta.and_then(|m| m.merge_key), Some("name"));
        // A proto map is an object of scalars, not a message.
        assert_eq!(schema.field("ObjectMeta", "labels"), FieldSchema { message: None, meta: None });
        assert_eq!(schema.field("PodSpec", "tolerations").meta, None);
        assert_eq!(schema.field("PodSpec", "noSuchField"), FieldSchema::default());
    }

    #[test]
    fn should_find_every_merge_key_in_the_items_of_its_list() {
        let schema = DescriptorSchema::get();
        for (message, field, meta) in meta::TABLE {
            // The table also names Kubernetes fields Berth does not have (yet).
            if !schema.has_field(message, field) {
                continue;
            }
            let item = schema.field(message, field).message;
            match (meta.merge_key, item) {
                (Some(key), Some(item)) => assert!(schema.has_field(item, key), "{message}.{field}: {item} has no field {key}"),
                (Some(key), None) => panic!("{message}.{field} merges by {key} but is not a list of objects"),
                (None, item) => assert_eq!(item, None, "{message}.{field} is a set of scalars"),
            }
        }
    }
}
