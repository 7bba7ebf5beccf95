//! The hand-written schemas no proto message describes: autoscaling/v1
//! Scale (for `/scale`), meta/v1 ListMeta, Status and its details, and the
//! Quantity and IntOrString value types.

use serde_json::{Map, Value, json};

use super::{INT_OR_STRING, META_V1, QUANTITY, SCALE, all_of, gvk, reference};

fn string_property(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn int32_property(description: &str) -> Value {
    json!({ "type": "integer", "format": "int32", "description": description })
}

/// autoscaling/v1 Scale, what `/scale` reads and writes.
pub(super) fn add_scale_schemas(schemas: &mut Map<String, Value>) {
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
pub(super) fn add_common_schemas(schemas: &mut Map<String, Value>) {
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
