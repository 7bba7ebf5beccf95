//! The patch metadata of Berth's kinds, as Kubernetes' Go struct tags give it
//! (`patchStrategy`, `patchMergeKey`, `listType`): which lists merge item by
//! item (and on which key), which keep only the keys a patch names
//! (`retainKeys`), and which are atomic. This one table is read by the
//! strategic merge patch and by the OpenAPI documents' extensions, so what
//! kubectl computes from the documents is what the server applies.
//!
//! Fields are named by the proto message that holds them (without package)
//! and the field's JSON name. Every list not in the table is atomic
//! (replaced whole by a patch); every map merges key by key.

/// How a field behaves under a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldMeta {
    /// Items of a list of objects merge by this key; None for a list of
    /// primitives that merges as a set (`finalizers`).
    pub merge_key: Option<&'static str>,
    /// `patchStrategy:"merge,retainKeys"`: a patch may carry `$retainKeys`.
    pub retain_keys: bool,
    /// `listType` in the OpenAPI documents: `map` for keyed lists, `set` for merged primitives.
    pub list_type: &'static str,
}

const fn keyed(key: &'static str) -> FieldMeta {
    FieldMeta { merge_key: Some(key), retain_keys: false, list_type: "map" }
}

const fn keyed_retain(key: &'static str) -> FieldMeta {
    FieldMeta { merge_key: Some(key), retain_keys: true, list_type: "map" }
}

const SET: FieldMeta = FieldMeta { merge_key: None, retain_keys: false, list_type: "set" };

/// (message, JSON field name) → how it merges. From k8s.io/api core/v1
/// types.go and apimachinery meta/v1 types.go (v0.32).
pub const TABLE: &[(&str, &str, FieldMeta)] = &[
    ("ObjectMeta", "finalizers", SET),
    ("ObjectMeta", "ownerReferences", keyed("uid")),
    ("PodSpec", "containers", keyed("name")),
    ("PodSpec", "initContainers", keyed("name")),
    ("PodSpec", "ephemeralContainers", keyed("name")),
    ("PodSpec", "volumes", keyed_retain("name")),
    ("PodSpec", "imagePullSecrets", keyed("name")),
    ("PodSpec", "hostAliases", keyed("ip")),
    ("PodSpec", "topologySpreadConstraints", keyed("topologyKey")),
    ("Container", "ports", keyed("containerPort")),
    ("Container", "env", keyed("name")),
    ("Container", "volumeMounts", keyed("mountPath")),
    ("Container", "volumeDevices", keyed("devicePath")),
    ("PodStatus", "conditions", keyed("type")),
    ("PodStatus", "podIPs", keyed("ip")),
    ("PodStatus", "hostIPs", keyed("ip")),
    ("ReplicationControllerStatus", "conditions", keyed("type")),
    ("ServiceStatus", "conditions", keyed("type")),
    ("NodeStatus", "conditions", keyed("type")),
    ("NodeStatus", "addresses", keyed("type")),
    ("NamespaceStatus", "conditions", keyed("type")),
    ("NodeSpec", "podCIDRs", SET),
    ("ServiceSpec", "ports", keyed("port")),
    ("ServiceAccount", "secrets", keyed("name")),
];

/// How the field `json_name` of message `message` (e.g. `PodSpec`,
/// `containers`) merges; None: atomic list or not a list.
pub fn field(message: &str, json_name: &str) -> Option<FieldMeta> {
    TABLE.iter().find(|(m, f, _)| *m == message && *f == json_name).map(|(_, _, meta)| *meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_know_kubernetes_merge_keys() {
        assert_eq!(field("PodSpec", "containers").and_then(|m| m.merge_key), Some("name"));
        assert_eq!(field("Container", "ports").and_then(|m| m.merge_key), Some("containerPort"));
        assert!(field("PodSpec", "volumes").is_some_and(|m| m.retain_keys));
        assert_eq!(field("ObjectMeta", "finalizers"), Some(SET));
        // Atomic lists are not in the table.
        assert_eq!(field("PodSpec", "tolerations"), None);
        assert_eq!(field("Container", "command"), None);
    }
}
