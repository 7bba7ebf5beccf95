//! The fields whose JSON differs from what their proto type says, named by
//! proto path: read by build.rs (serde attributes on the generated types) and
//! by [`crate::docs`] (so `explain` and the OpenAPI documents describe the
//! same JSON the types read and write).

/// Maps whose values are quantities ("500m", "128Mi"), which manifests may
/// write as YAML numbers (`cpu: 1`).
pub const QUANTITY_MAPS: &[&str] = &[
    ".berth.core.v1.ResourceRequirements.limits",
    ".berth.core.v1.ResourceRequirements.requests",
    ".berth.core.v1.NodeStatus.capacity",
    ".berth.core.v1.NodeStatus.allocatable",
    ".berth.core.v1.ResourceQuotaSpec.hard",
    ".berth.core.v1.ResourceQuotaStatus.hard",
    ".berth.core.v1.ResourceQuotaStatus.used",
    ".berth.core.v1.LimitRangeItem.max",
    ".berth.core.v1.LimitRangeItem.min",
    ".berth.core.v1.LimitRangeItem.default",
    ".berth.core.v1.LimitRangeItem.default_request",
    ".berth.core.v1.LimitRangeItem.max_limit_request_ratio",
];

/// Single quantity strings.
pub const QUANTITY_STRINGS: &[&str] = &[".berth.core.v1.EmptyDirVolumeSource.size_limit", ".berth.core.v1.ResourceFieldSelector.divisor"];

/// Int-or-string fields: a port number or a port name.
pub const INT_OR_STRING: &[&str] =
    &[".berth.core.v1.ServicePort.target_port", ".berth.core.v1.HTTPGetAction.port", ".berth.core.v1.TCPSocketAction.port"];
