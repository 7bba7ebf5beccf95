//! Compiles proto/ with protox (no system protoc) and generates prost types
//! and the tonic service, adding serde attributes so that the same types read
//! and write Kubernetes-shaped YAML and JSON.

use std::path::PathBuf;

use prost_types::field_descriptor_proto::{Label, Type};

#[path = "src/special_fields.rs"]
mod special_fields;

use special_fields::{INT_OR_STRING, QUANTITY_MAPS, QUANTITY_STRINGS};

/// Numbers that Kubernetes always prints, even when zero.
const ALWAYS_EMIT: &[&str] = &[".berth.core.v1.ContainerStatus.restart_count", ".berth.core.v1.ReplicationControllerStatus.replicas"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "berth/core/v1/meta.proto",
        "berth/core/v1/core.proto",
        "berth/rbac/v1/rbac.proto",
        "berth/api/v1/api.proto",
        "berth/kubelet/v1/kubelet.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    println!("cargo:rerun-if-changed=src/special_fields.rs");
    let fds = protox::compile(files, [&root])?;

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("berth_descriptor.bin"), prost::Message::encode_to_vec(&fds))?;

    let mut builder = tonic_prost_build::configure().btree_map(".").build_client(true).build_server(true);

    for file in &fds.file {
        let package = file.package();
        if package != "berth.core.v1" && package != "berth.rbac.v1" {
            continue;
        }
        for msg in &file.message_type {
            let path = format!(".{package}.{}", msg.name());
            builder =
                builder.type_attribute(&path, "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]");
            for field in &msg.field {
                let fpath = format!("{path}.{}", field.name());
                let mut attrs = vec![format!("rename = \"{}\"", field.json_name())];
                let is_map = field.r#type() == Type::Message && field.type_name().ends_with("Entry") && field.label() == Label::Repeated;
                let optional = field.proto3_optional() || field.r#type() == Type::Message && field.label() != Label::Repeated;
                if is_map {
                    attrs.push("skip_serializing_if = \"std::collections::BTreeMap::is_empty\"".into());
                    let value_is_bytes = map_value_type(msg, field.type_name()) == Some(Type::Bytes);
                    if value_is_bytes {
                        attrs.push("with = \"crate::serde_util::base64_map\"".into());
                    }
                } else if field.label() == Label::Repeated {
                    attrs.push("skip_serializing_if = \"Vec::is_empty\"".into());
                } else if optional {
                    attrs.push("skip_serializing_if = \"Option::is_none\"".into());
                } else if !ALWAYS_EMIT.contains(&fpath.as_str()) {
                    match field.r#type() {
                        Type::String => attrs.push("skip_serializing_if = \"String::is_empty\"".into()),
                        Type::Int32 => attrs.push("skip_serializing_if = \"crate::serde_util::is_zero_i32\"".into()),
                        Type::Int64 => attrs.push("skip_serializing_if = \"crate::serde_util::is_zero_i64\"".into()),
                        _ => {}
                    }
                }
                if QUANTITY_MAPS.contains(&fpath.as_str()) {
                    attrs.push("deserialize_with = \"crate::serde_util::quantity_map\"".into());
                }
                if QUANTITY_STRINGS.contains(&fpath.as_str()) {
                    attrs.push("deserialize_with = \"crate::serde_util::string_or_number\"".into());
                }
                if INT_OR_STRING.contains(&fpath.as_str()) {
                    attrs.push("with = \"crate::serde_util::int_or_string\"".into());
                }
                if field.proto3_optional() && matches!(field.r#type(), Type::String) {
                    // optional strings keep their presence; nothing extra
                }
                builder = builder.field_attribute(&fpath, format!("#[serde({})]", attrs.join(", ")));
            }
        }
    }

    builder.compile_fds(fds.clone())?;

    // The apiserver's side of the Api service (berth_api::wire): the same RPCs
    // over the types above, except that List and Watch answer with
    // pre-encoded messages. Nothing but the service is generated here.
    let wire = out.join("wire");
    std::fs::create_dir_all(&wire)?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .out_dir(&wire)
        .extern_path(".berth.core.v1", "crate::pb::core")
        .extern_path(".berth.rbac.v1", "crate::pb::rbac")
        .extern_path(".berth.kubelet.v1", "crate::pb::kubelet")
        .extern_path(".berth.api.v1", "crate::pb::api")
        .extern_path(".berth.api.v1.ListResponse", "crate::wire::EncodedList")
        .extern_path(".berth.api.v1.WatchEvent", "crate::wire::EncodedWatchEvent")
        .compile_fds(fds)?;
    Ok(())
}

/// The value type of a map field, read from its synthetic `...Entry` message.
fn map_value_type(msg: &prost_types::DescriptorProto, type_name: &str) -> Option<Type> {
    let entry_name = type_name.rsplit('.').next()?;
    let entry = msg.nested_type.iter().find(|n| n.name() == entry_name)?;
    entry.field.iter().find(|f| f.name() == "value").map(|f| f.r#type())
}
