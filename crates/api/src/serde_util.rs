//! Serde helpers used by the generated types: zero-skipping (and printing the
//! fields Kubernetes always prints), base64 maps, quantities that may be
//! written as numbers, and int-or-string values.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use serde::Serialize;
use serde::de::{self, Deserializer, Visitor};
use serde::ser::Serializer;

/// True when an i32 is zero (omitted from output like Kubernetes' omitempty).
pub fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

/// True when an i64 is zero.
pub fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// True when a bool is false (omitted like Kubernetes' omitempty).
pub fn is_false(v: &bool) -> bool {
    !*v
}

/// Serializes an absent message as its default (an object of its always-printed fields), for message
/// fields Kubernetes always prints (`roleRef`, an Event's `involvedObject`).
pub fn some_or_default<T: Serialize + Default, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => v.serialize(s),
        None => T::default().serialize(s),
    }
}

/// A string that manifests may also write as a number or a boolean
/// (quantities: `cpu: 1`, `cpu: 0.5`).
struct StringOrNumber;

impl<'de> Visitor<'de> for StringOrNumber {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(format_float(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
}

/// Prints a float as the shortest decimal that reads back the same
/// (`0.3`, not `0.30000000000000004`).
fn format_float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('e') || s.contains('E') { format!("{v:?}") } else { s }
}

/// Deserializes a quantity string that may be written as a number.
pub fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(StringOrNumber)
}

/// Deserializes a map of quantities whose values may be written as numbers.
pub fn quantity_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    struct Q(String);
    impl<'de> de::Deserialize<'de> for Q {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StringOrNumber).map(Q)
        }
    }
    let m: Option<BTreeMap<String, Q>> = de::Deserialize::deserialize(d)?;
    Ok(m.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// Int-or-string values (`targetPort: 8080` or `targetPort: http`), stored
/// as a string and written back as a number when they are one.
pub mod int_or_string {
    use super::*;

    pub fn serialize<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
        match v.parse::<i64>() {
            Ok(n) if !(v.starts_with('+') || v.starts_with('0') && v.len() > 1) => s.serialize_i64(n),
            _ => s.serialize_str(v),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_unit<E: de::Error>(self) -> Result<String, E> {
                Ok(String::new())
            }
        }
        d.deserialize_any(V)
    }
}

/// `map<string, bytes>` as base64 strings, as Kubernetes writes Secret data.
pub mod base64_map {
    use super::*;
    use serde::ser::SerializeMap;

    pub fn serialize<S: Serializer>(m: &BTreeMap<String, Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(m.len()))?;
        for (k, v) in m {
            map.serialize_entry(k, &base64::engine::general_purpose::STANDARD.encode(v))?;
        }
        map.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let m: Option<BTreeMap<String, String>> = de::Deserialize::deserialize(d)?;
        m.unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact.as_bytes())
                    .map(|b| (k.clone(), b))
                    .map_err(|e| de::Error::custom(format_args!("value of key {k:?} is not valid base64: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pb::core::*;
    use crate::pb::rbac::{ClusterRoleBinding, PolicyRule, RoleBinding, RoleRef, Subject};
    use serde_json::{Value, json};

    fn to_json<T: Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn should_print_the_fields_kubernetes_always_prints_when_they_are_zero() {
        // Exactly these keys: the required ones appear, the omitempty ones (containerID, started,
        // state, lastState) stay out.
        assert_eq!(
            to_json(&ContainerStatus::default()),
            json!({"name": "", "ready": false, "restartCount": 0, "image": "", "imageID": ""})
        );
        assert_eq!(
            to_json(&NodeSystemInfo::default()),
            json!({
                "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "",
                "containerRuntimeVersion": "", "kubeletVersion": "", "kubeProxyVersion": "",
                "operatingSystem": "", "architecture": ""
            })
        );
        assert_eq!(to_json(&PodCondition::default()), json!({"type": "", "status": ""}));
        assert_eq!(to_json(&NodeCondition::default()), json!({"type": "", "status": ""}));
        assert_eq!(to_json(&NamespaceCondition::default()), json!({"type": "", "status": ""}));
        assert_eq!(to_json(&ReplicationControllerCondition::default()), json!({"type": "", "status": ""}));
        assert_eq!(to_json(&NodeAddress::default()), json!({"type": "", "address": ""}));
        assert_eq!(to_json(&ContainerPort::default()), json!({"containerPort": 0}));
        assert_eq!(to_json(&ServicePort::default()), json!({"port": 0}));
        assert_eq!(to_json(&EndpointPort::default()), json!({"port": 0}));
        assert_eq!(to_json(&EndpointAddress::default()), json!({"ip": ""}));
        assert_eq!(to_json(&OwnerReference::default()), json!({"apiVersion": "", "kind": "", "name": "", "uid": ""}));
        assert_eq!(to_json(&Taint::default()), json!({"key": "", "effect": ""}));
        assert_eq!(to_json(&ContainerStateTerminated::default()), json!({"exitCode": 0}));
        assert_eq!(to_json(&ReplicationControllerStatus::default()), json!({"replicas": 0}));
        assert_eq!(to_json(&DaemonEndpoint::default()), json!({"Port": 0}));
        assert_eq!(to_json(&LimitRangeItem::default()), json!({"type": ""}));
        assert_eq!(to_json(&LimitRangeSpec::default()), json!({"limits": []}));
        assert_eq!(to_json(&PodSpec::default()), json!({"containers": []}));
        assert_eq!(to_json(&Container::default()), json!({"name": ""}));
        assert_eq!(to_json(&PolicyRule::default()), json!({"verbs": []}));
        assert_eq!(to_json(&Subject::default()), json!({"kind": "", "name": ""}));
        assert_eq!(to_json(&RoleRef::default()), json!({"apiGroup": "", "kind": "", "name": ""}));
    }

    #[test]
    fn should_print_absent_always_printed_messages_as_their_defaults() {
        let role_ref = json!({"apiGroup": "", "kind": "", "name": ""});
        assert_eq!(to_json(&RoleBinding::default()), json!({"roleRef": role_ref}));
        assert_eq!(to_json(&ClusterRoleBinding::default()), json!({"roleRef": role_ref}));
        assert_eq!(to_json(&Event::default()), json!({"metadata": {}, "involvedObject": {}}));
    }

    #[test]
    fn should_still_omit_other_zero_fields() {
        let node_status = to_json(&NodeStatus { node_info: Some(NodeSystemInfo::default()), ..Default::default() });
        assert_eq!(node_status.as_object().unwrap().keys().collect::<Vec<_>>(), ["nodeInfo"]);
        assert_eq!(to_json(&ObjectMeta::default()), json!({}));
        assert_eq!(to_json(&ContainerStateWaiting::default()), json!({}));
    }

    #[test]
    fn should_print_set_always_printed_fields_with_their_values() {
        let status =
            ContainerStatus { name: "web".into(), ready: true, restart_count: 2, container_id: "docker://1".into(), ..Default::default() };
        assert_eq!(
            to_json(&status),
            json!({"name": "web", "ready": true, "restartCount": 2, "image": "", "imageID": "", "containerID": "docker://1"})
        );
        let binding = RoleBinding {
            role_ref: Some(RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: "r".into() }),
            ..Default::default()
        };
        assert_eq!(to_json(&binding), json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}));
    }

    #[test]
    fn should_read_back_what_it_prints() {
        let status: ContainerStatus = serde_json::from_value(to_json(&ContainerStatus::default())).unwrap();
        assert_eq!(status, ContainerStatus::default());
        let binding: RoleBinding = serde_json::from_value(to_json(&RoleBinding::default())).unwrap();
        assert_eq!(binding.role_ref, Some(RoleRef::default()));
    }

    #[test]
    fn should_print_floats_shortest() {
        assert_eq!(format_float(0.3), "0.3");
        assert_eq!(format_float(1.5), "1.5");
    }
}
