//! Compiles proto/ with protox (no system protoc) and generates prost types
//! and the tonic service, adding serde attributes so that the same types read
//! and write Kubernetes-shaped YAML and JSON.

use std::path::PathBuf;

use prost_types::field_descriptor_proto::{Label, Type};

#[path = "src/special_fields.rs"]
mod special_fields;

use special_fields::{INT_OR_STRING, QUANTITY_MAPS, QUANTITY_STRINGS};

/// Fields that Kubernetes always prints, even when zero or empty: those its Go types do not mark
/// `omitempty` and that the official Python client requires (it raises when one is missing or null;
/// FINDINGS.md §14). Strings, numbers and bools are printed with their zero value, lists as `[]`, and
/// message fields as an object of their own always-printed fields (`{}` when they have none).
/// The build fails when an entry names no field.
const ALWAYS_EMIT: &[&str] = &[
    // A controller's status is printed before the controller has written it
    // (`status: {replicas: 0}`), as Go never omits a struct; clients read it at once.
    ".berth.core.v1.ReplicationController.status",
    // core/v1 Pod
    ".berth.core.v1.PodSpec.containers",
    ".berth.core.v1.Container.name",
    ".berth.core.v1.ContainerPort.container_port",
    ".berth.core.v1.PodCondition.type",
    ".berth.core.v1.PodCondition.status",
    ".berth.core.v1.ContainerStatus.name",
    ".berth.core.v1.ContainerStatus.ready",
    ".berth.core.v1.ContainerStatus.restart_count",
    ".berth.core.v1.ContainerStatus.image",
    ".berth.core.v1.ContainerStatus.image_id",
    ".berth.core.v1.ContainerStateTerminated.exit_code",
    // core/v1 Node
    ".berth.core.v1.Taint.key",
    ".berth.core.v1.Taint.effect",
    ".berth.core.v1.NodeCondition.type",
    ".berth.core.v1.NodeCondition.status",
    ".berth.core.v1.NodeAddress.type",
    ".berth.core.v1.NodeAddress.address",
    ".berth.core.v1.DaemonEndpoint.port",
    ".berth.core.v1.NodeSystemInfo.machine_id",
    ".berth.core.v1.NodeSystemInfo.system_uuid",
    ".berth.core.v1.NodeSystemInfo.boot_id",
    ".berth.core.v1.NodeSystemInfo.kernel_version",
    ".berth.core.v1.NodeSystemInfo.os_image",
    ".berth.core.v1.NodeSystemInfo.container_runtime_version",
    ".berth.core.v1.NodeSystemInfo.kubelet_version",
    ".berth.core.v1.NodeSystemInfo.kube_proxy_version",
    ".berth.core.v1.NodeSystemInfo.operating_system",
    ".berth.core.v1.NodeSystemInfo.architecture",
    // core/v1 Namespace, ReplicationController, Service, Endpoints
    ".berth.core.v1.NamespaceCondition.type",
    ".berth.core.v1.NamespaceCondition.status",
    ".berth.core.v1.ReplicationControllerStatus.replicas",
    ".berth.core.v1.ReplicationControllerCondition.type",
    ".berth.core.v1.ReplicationControllerCondition.status",
    ".berth.core.v1.ServicePort.port",
    ".berth.core.v1.EndpointAddress.ip",
    ".berth.core.v1.EndpointPort.port",
    // core/v1 LimitRange, Event; meta/v1 OwnerReference
    ".berth.core.v1.LimitRangeSpec.limits",
    ".berth.core.v1.LimitRangeItem.type",
    ".berth.core.v1.Event.metadata",
    ".berth.core.v1.Event.involved_object",
    ".berth.core.v1.OwnerReference.api_version",
    ".berth.core.v1.OwnerReference.kind",
    ".berth.core.v1.OwnerReference.name",
    ".berth.core.v1.OwnerReference.uid",
    // rbac.authorization.k8s.io/v1
    ".berth.rbac.v1.PolicyRule.verbs",
    ".berth.rbac.v1.Subject.kind",
    ".berth.rbac.v1.Subject.name",
    ".berth.rbac.v1.RoleRef.api_group",
    ".berth.rbac.v1.RoleRef.kind",
    ".berth.rbac.v1.RoleRef.name",
    ".berth.rbac.v1.RoleBinding.role_ref",
    ".berth.rbac.v1.ClusterRoleBinding.role_ref",
];

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
    let mut emitted_always = Vec::new();

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
                let always_emit = ALWAYS_EMIT.contains(&fpath.as_str());
                if always_emit {
                    emitted_always.push(fpath.clone());
                }
                if is_map {
                    if !always_emit {
                        attrs.push("skip_serializing_if = \"std::collections::BTreeMap::is_empty\"".into());
                    }
                    let value_is_bytes = map_value_type(msg, field.type_name()) == Some(Type::Bytes);
                    if value_is_bytes {
                        attrs.push("with = \"crate::serde_util::base64_map\"".into());
                    }
                } else if field.label() == Label::Repeated {
                    if !always_emit {
                        attrs.push("skip_serializing_if = \"Vec::is_empty\"".into());
                    }
                } else if always_emit {
                    if field.r#type() == Type::Message {
                        attrs.push("serialize_with = \"crate::serde_util::some_or_default\"".into());
                    } else if field.proto3_optional() {
                        return Err(format!("ALWAYS_EMIT names {fpath}, an optional scalar: absent and zero differ there").into());
                    }
                } else if optional {
                    attrs.push("skip_serializing_if = \"Option::is_none\"".into());
                } else {
                    match field.r#type() {
                        Type::String => attrs.push("skip_serializing_if = \"String::is_empty\"".into()),
                        Type::Int32 => attrs.push("skip_serializing_if = \"crate::serde_util::is_zero_i32\"".into()),
                        Type::Int64 => attrs.push("skip_serializing_if = \"crate::serde_util::is_zero_i64\"".into()),
                        Type::Bool => attrs.push("skip_serializing_if = \"crate::serde_util::is_false\"".into()),
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

    if let Some(unknown) = ALWAYS_EMIT.iter().find(|name| !emitted_always.iter().any(|seen| seen == *name)) {
        return Err(format!("ALWAYS_EMIT names {unknown}, which is no field of proto/").into());
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
