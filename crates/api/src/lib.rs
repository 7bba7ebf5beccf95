//! Berth's API: the types generated from `proto/`, and the helpers every
//! component shares to work with them.
//!
//! # Layout
//! - [`pb`]: generated prost messages, the tonic `Api` service and the kubelet's `Kubelet` service.
//! - [`resource`]: the [`Resource`] trait, the kind table and [`pb::api::Object`] helpers.
//! - [`manifest`]: YAML/JSON manifests to objects and back, with errors naming the field.
//! - [`labels`], [`fields`]: label and field selectors.
//! - [`k8s_protobuf`]: Kubernetes' protobuf request bodies (kubectl's typed clients), read into Kubernetes JSON.
//! - [`docs`]: the field documentation from proto/'s comments (what `berthctl explain` prints).
//! - [`openapi`]: the OpenAPI v3 documents the REST API serves at `/openapi/v3` (kubectl's apply, validation and explain).
//! - [`quantity`]: resource quantities (`500m`, `128Mi`).
//! - [`quota`]: what an object uses of a ResourceQuota (shared by quota admission and the quota controller).
//! - [`names`]: DNS-1123 names and label syntax.
//! - [`patch`]: patches as Kubernetes applies them, and the patch metadata table.
//! - [`printers`]: each kind's table columns and cells as `kubectl get` shows them, and the meta.k8s.io/v1 Table.
//! - [`validation`]: per-kind validation, run by the apiserver before anything is stored.
//! - [`serde_util`]: the serde helpers the generated code uses.
//! - [`wire`]: List and Watch responses encoded from stored bytes, and the apiserver's side of the service.
//! - [`time`]: timestamps as Kubernetes writes them (RFC 3339, UTC, `Z`).
//! - [`snapshot`]: the snapshot file of `berthctl snapshot save` and `berth-apiserver --restore`.

pub mod docs;
pub mod fields;
pub mod k8s_protobuf;
pub mod labels;
pub mod manifest;
pub mod names;
pub mod openapi;
pub mod patch;
pub mod printers;
pub mod quantity;
pub mod quota;
pub mod resource;
pub mod serde_util;
pub mod snapshot;
mod special_fields;
pub mod time;
pub mod validation;
pub mod wire;

pub use resource::{KindInfo, Resource};

/// Generated code, one module per proto package.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    pub mod berth {
        pub mod core {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/berth.core.v1.rs"));
            }
        }
        pub mod rbac {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/berth.rbac.v1.rs"));
            }
        }
        pub mod api {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/berth.api.v1.rs"));
            }
        }
        pub mod kubelet {
            pub mod v1 {
                include!(concat!(env!("OUT_DIR"), "/berth.kubelet.v1.rs"));
            }
        }
    }
    /// The API service and its messages.
    pub use berth::api::v1 as api;
    /// The core/v1 resources.
    pub use berth::core::v1 as core;
    /// The kubelet's own service (logs, exec, stats), proxied by the apiserver.
    pub use berth::kubelet::v1 as kubelet;
    /// The rbac.authorization.k8s.io/v1 resources.
    pub use berth::rbac::v1 as rbac;

    /// The encoded FileDescriptorSet of all of proto/, with comments
    /// (for `berthctl explain`).
    pub const DESCRIPTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth_descriptor.bin"));
}

pub use pb::api::Object;
pub use pb::core::*;
pub use pb::rbac::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
