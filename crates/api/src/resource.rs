//! The [`Resource`] trait every kind implements, the table of kinds the API
//! serves, and helpers to handle any [`Object`] without knowing its kind.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::pb::api::{Object, object};
use crate::pb::core::*;
use crate::pb::rbac::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

/// What the API knows about a kind: its names and how it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    /// `Pod`
    pub kind: &'static str,
    /// `v1`, `coordination.k8s.io/v1`
    pub api_version: &'static str,
    /// `pods`: also the key segment in the store.
    pub plural: &'static str,
    /// `pod`
    pub singular: &'static str,
    /// `po`
    pub short_names: &'static [&'static str],
    pub namespaced: bool,
    /// Whether the kind has a status written only through update-status.
    pub has_status: bool,
    /// Whether the kind has a spec whose changes bump metadata.generation.
    pub has_spec: bool,
}

impl KindInfo {
    /// The API group (`""` for core, `coordination.k8s.io` for Lease).
    pub fn group(&self) -> &'static str {
        match self.api_version.rsplit_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }

    /// The store key of an object of this kind.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("/registry/{}/{}/{}", self.plural, namespace, name)
        } else {
            format!("/registry/{}/{}", self.plural, name)
        }
    }

    /// The store prefix of every object of this kind in a namespace (or all
    /// namespaces when `namespace` is empty).
    pub fn prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("/registry/{}/{}/", self.plural, namespace)
        } else {
            format!("/registry/{}/", self.plural)
        }
    }

    /// Whether `name` (any case) names this kind: Kind, plural, singular or short name.
    pub fn is_named(&self, name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        n == self.kind.to_ascii_lowercase() || n == self.plural || n == self.singular || self.short_names.contains(&n.as_str())
    }
}

/// A kind of object the API serves.
pub trait Resource: prost::Message + Default + Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind's names and storage facts.
    const INFO: KindInfo;

    fn metadata(&self) -> Option<&ObjectMeta>;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;
    /// Wraps the object for the wire.
    fn into_object(self) -> Object;
    /// Unwraps an object of this kind, or gives it back.
    #[allow(clippy::result_large_err)] // giving the object back whole is the point
    fn from_object(object: Object) -> Result<Self, Object>;

    /// The metadata, or an empty one.
    fn meta(&self) -> &ObjectMeta {
        self.metadata().unwrap_or(&EMPTY_META)
    }
    fn name(&self) -> &str {
        &self.meta().name
    }
    fn namespace(&self) -> &str {
        &self.meta().namespace
    }
}

static EMPTY_META: ObjectMeta = ObjectMeta {
    name: String::new(),
    generate_name: String::new(),
    namespace: String::new(),
    uid: String::new(),
    resource_version: String::new(),
    generation: 0,
    creation_timestamp: String::new(),
    deletion_timestamp: String::new(),
    deletion_grace_period_seconds: None,
    labels: std::collections::BTreeMap::new(),
    annotations: std::collections::BTreeMap::new(),
    owner_references: Vec::new(),
    finalizers: Vec::new(),
};

/// Declares every kind once: its KindInfo, its Resource impl and the
/// dispatch of [`Object`]'s generic helpers.
macro_rules! kinds {
    ($( $ty:ident => $variant:ident {
        api_version: $av:expr, plural: $plural:expr, singular: $singular:expr,
        short: [$($short:expr),*], namespaced: $ns:expr, status: $status:tt, spec: $spec:tt $(,)?
    } ),* $(,)?) => {
        $(
            impl Resource for $ty {
                const INFO: KindInfo = KindInfo {
                    kind: stringify!($ty),
                    api_version: $av,
                    plural: $plural,
                    singular: $singular,
                    short_names: &[$($short),*],
                    namespaced: $ns,
                    has_status: kinds!(@bool $status),
                    has_spec: kinds!(@bool $spec),
                };
                fn metadata(&self) -> Option<&ObjectMeta> { self.metadata.as_ref() }
                fn metadata_mut(&mut self) -> &mut ObjectMeta { self.metadata.get_or_insert_with(Default::default) }
                fn into_object(self) -> Object { Object { kind: Some(object::Kind::$variant(self)) } }
                fn from_object(o: Object) -> Result<Self, Object> {
                    match o.kind {
                        Some(object::Kind::$variant(x)) => Ok(x),
                        other => Err(Object { kind: other }),
                    }
                }
            }
        )*

        /// Every kind the API serves, in a stable order.
        pub const KINDS: &[KindInfo] = &[$(<$ty as Resource>::INFO),*];

        impl Object {
            /// The kind of this object, or None for an empty object.
            pub fn info(&self) -> Option<&'static KindInfo> {
                match &self.kind {
                    $(Some(object::Kind::$variant(_)) => Some(&<$ty as Resource>::INFO),)*
                    None => None,
                }
            }
            /// An empty object of the given kind, with apiVersion and kind set.
            pub fn empty(info: &KindInfo) -> Option<Object> {
                $(
                    if info.kind == stringify!($ty) {
                        let mut o = <$ty>::default().into_object();
                        o.set_type_meta();
                        return Some(o);
                    }
                )*
                None
            }
            /// The metadata, if the object has a kind.
            pub fn metadata(&self) -> Option<&ObjectMeta> {
                match &self.kind {
                    $(Some(object::Kind::$variant(x)) => x.metadata.as_ref(),)*
                    None => None,
                }
            }
            /// The metadata, created if absent. Panics never: an empty object gets a throwaway.
            pub fn metadata_mut(&mut self) -> Option<&mut ObjectMeta> {
                match &mut self.kind {
                    $(Some(object::Kind::$variant(x)) => Some(x.metadata.get_or_insert_with(Default::default)),)*
                    None => None,
                }
            }
            /// Sets apiVersion and kind as Kubernetes writes them.
            pub fn set_type_meta(&mut self) {
                match &mut self.kind {
                    $(Some(object::Kind::$variant(x)) => {
                        x.api_version = $av.to_string();
                        x.kind = stringify!($ty).to_string();
                    })*
                    None => {}
                }
            }
            /// The object as Kubernetes-shaped JSON (apiVersion and kind included).
            pub fn to_json_value(&self) -> serde_json::Value {
                let mut o = self.clone();
                o.set_type_meta();
                let v = match &o.kind {
                    $(Some(object::Kind::$variant(x)) => serde_json::to_value(x),)*
                    None => Ok(serde_json::Value::Null),
                };
                v.unwrap_or(serde_json::Value::Null)
            }
            /// Decodes a Kubernetes-shaped JSON or YAML value of the given kind.
            /// Errors name the field path (`spec.containers[0].image`).
            pub(crate) fn from_value_of<'de, D: serde::Deserializer<'de>>(info: &KindInfo, d: D) -> Result<Object, serde_path_to_error::Error<D::Error>> {
                $(
                    if info.kind == stringify!($ty) {
                        let x: $ty = serde_path_to_error::deserialize(d)?;
                        return Ok(x.into_object());
                    }
                )*
                unreachable!("kind table and decoder disagree")
            }
            /// Splits the object into a copy without status and its status
            /// encoded, so spec and status writers never overwrite each other.
            pub fn take_status(&mut self) -> Option<Vec<u8>> {
                match &mut self.kind {
                    $(Some(object::Kind::$variant(x)) => kinds!(@take_status $status x),)*
                    None => None,
                }
            }
            /// Puts back a status taken with [`Object::take_status`] (from the
            /// same kind); an undecodable status is dropped.
            pub fn put_status(&mut self, status: Option<Vec<u8>>) {
                match &mut self.kind {
                    $(Some(object::Kind::$variant(x)) => kinds!(@put_status $status x status),)*
                    None => {}
                }
            }
            /// The encoded spec (for kinds with a spec), to tell spec changes
            /// from metadata-only changes.
            pub fn spec_bytes(&self) -> Option<Vec<u8>> {
                match &self.kind {
                    $(Some(object::Kind::$variant(x)) => kinds!(@spec_bytes $spec x),)*
                    None => None,
                }
            }
        }
    };
    (@bool true) => { true };
    (@bool false) => { false };
    (@take_status true $x:ident) => { $x.status.take().map(|s| prost::Message::encode_to_vec(&s)) };
    (@take_status false $x:ident) => { { let _ = $x; None } };
    (@put_status true $x:ident $s:ident) => { $x.status = $s.and_then(|b| prost::Message::decode(b.as_slice()).ok()) };
    (@put_status false $x:ident $s:ident) => { { let _ = ($x, $s); } };
    (@spec_bytes true $x:ident) => { $x.spec.as_ref().map(prost::Message::encode_to_vec) };
    (@spec_bytes false $x:ident) => { { let _ = $x; None } };
}

kinds! {
    Namespace => Namespace { api_version: "v1", plural: "namespaces", singular: "namespace", short: ["ns"], namespaced: false, status: true, spec: true },
    Node => Node { api_version: "v1", plural: "nodes", singular: "node", short: ["no"], namespaced: false, status: true, spec: true },
    Pod => Pod { api_version: "v1", plural: "pods", singular: "pod", short: ["po"], namespaced: true, status: true, spec: true },
    ReplicationController => ReplicationController { api_version: "v1", plural: "replicationcontrollers", singular: "replicationcontroller", short: ["rc"], namespaced: true, status: true, spec: true },
    Service => Service { api_version: "v1", plural: "services", singular: "service", short: ["svc"], namespaced: true, status: true, spec: true },
    Endpoints => Endpoints { api_version: "v1", plural: "endpoints", singular: "endpoints", short: ["ep"], namespaced: true, status: false, spec: false },
    Secret => Secret { api_version: "v1", plural: "secrets", singular: "secret", short: [], namespaced: true, status: false, spec: false },
    ConfigMap => ConfigMap { api_version: "v1", plural: "configmaps", singular: "configmap", short: ["cm"], namespaced: true, status: false, spec: false },
    ResourceQuota => ResourceQuota { api_version: "v1", plural: "resourcequotas", singular: "resourcequota", short: ["quota"], namespaced: true, status: true, spec: true },
    LimitRange => LimitRange { api_version: "v1", plural: "limitranges", singular: "limitrange", short: ["limits"], namespaced: true, status: false, spec: true },
    Event => Event { api_version: "v1", plural: "events", singular: "event", short: ["ev"], namespaced: true, status: false, spec: false },
    Lease => Lease { api_version: "coordination.k8s.io/v1", plural: "leases", singular: "lease", short: [], namespaced: true, status: false, spec: true },
    ServiceAccount => ServiceAccount { api_version: "v1", plural: "serviceaccounts", singular: "serviceaccount", short: ["sa"], namespaced: true, status: false, spec: false },
    Role => Role { api_version: "rbac.authorization.k8s.io/v1", plural: "roles", singular: "role", short: [], namespaced: true, status: false, spec: false },
    ClusterRole => ClusterRole { api_version: "rbac.authorization.k8s.io/v1", plural: "clusterroles", singular: "clusterrole", short: [], namespaced: false, status: false, spec: false },
    RoleBinding => RoleBinding { api_version: "rbac.authorization.k8s.io/v1", plural: "rolebindings", singular: "rolebinding", short: [], namespaced: true, status: false, spec: false },
    ClusterRoleBinding => ClusterRoleBinding { api_version: "rbac.authorization.k8s.io/v1", plural: "clusterrolebindings", singular: "clusterrolebinding", short: [], namespaced: false, status: false, spec: false },
}

/// Looks a kind up by Kind, plural, singular or short name (any case).
pub fn find_kind(name: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.is_named(name))
}

impl Object {
    pub fn name(&self) -> &str {
        self.metadata().map(|m| m.name.as_str()).unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        self.metadata().map(|m| m.namespace.as_str()).unwrap_or("")
    }
    /// The Kind name, or "" for an empty object.
    pub fn kind_name(&self) -> &'static str {
        self.info().map(|i| i.kind).unwrap_or("")
    }
    /// Unwraps an object of kind `R`, or gives it back.
    #[allow(clippy::result_large_err)] // giving the object back whole is the point
    pub fn into_resource<R: Resource>(self) -> Result<R, Object> {
        R::from_object(self)
    }
    /// The object as Kubernetes-shaped YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(&self.to_json_value()).unwrap_or_default()
    }
}

/// The field paths a field selector may use for a kind, as Kubernetes
/// allows them.
pub fn selectable_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.schedulerName",
            "spec.restartPolicy",
            "status.phase",
            "status.podIP",
        ],
        "Node" => &["metadata.name", "spec.unschedulable"],
        "Namespace" => &["metadata.name", "status.phase"],
        "Secret" => &["metadata.name", "metadata.namespace", "type"],
        "Event" => &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "reason",
            "type",
        ],
        "ReplicationController" => &["metadata.name", "metadata.namespace", "status.replicas"],
        _ => &["metadata.name", "metadata.namespace"],
    }
}

impl Object {
    /// The value of a selectable field (see [`selectable_fields`]), or None
    /// when the kind has no such field.
    pub fn field(&self, path: &str) -> Option<String> {
        use crate::pb::api::object::Kind as K;
        let meta = self.metadata();
        match path {
            "metadata.name" => return Some(meta.map(|m| m.name.clone()).unwrap_or_default()),
            "metadata.namespace" => return Some(meta.map(|m| m.namespace.clone()).unwrap_or_default()),
            _ => {}
        }
        match (&self.kind, path) {
            (Some(K::Pod(p)), _) => {
                let spec = p.spec.as_ref();
                let status = p.status.as_ref();
                let s = |f: fn(&PodSpec) -> &String| spec.map(f).cloned().unwrap_or_default();
                let st = |f: fn(&PodStatus) -> &String| status.map(f).cloned().unwrap_or_default();
                match path {
                    "spec.nodeName" => Some(s(|x| &x.node_name)),
                    "spec.schedulerName" => Some(s(|x| &x.scheduler_name)),
                    "spec.restartPolicy" => Some(s(|x| &x.restart_policy)),
                    "status.phase" => Some(st(|x| &x.phase)),
                    "status.podIP" => Some(st(|x| &x.pod_ip)),
                    _ => None,
                }
            }
            (Some(K::Node(n)), "spec.unschedulable") => Some(n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false).to_string()),
            (Some(K::Namespace(n)), "status.phase") => Some(n.status.as_ref().map(|s| s.phase.clone()).unwrap_or_default()),
            (Some(K::Secret(s)), "type") => Some(s.r#type.clone()),
            (Some(K::ReplicationController(r)), "status.replicas") => Some(r.status.as_ref().map(|s| s.replicas).unwrap_or(0).to_string()),
            (Some(K::Event(e)), _) => {
                let io = e.involved_object.clone().unwrap_or_default();
                match path {
                    "involvedObject.kind" => Some(io.kind),
                    "involvedObject.namespace" => Some(io.namespace),
                    "involvedObject.name" => Some(io.name),
                    "involvedObject.uid" => Some(io.uid),
                    "reason" => Some(e.reason.clone()),
                    "type" => Some(e.r#type.clone()),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_find_kinds_by_any_name() {
        for n in ["Pod", "pods", "pod", "po", "PODS"] {
            assert_eq!(find_kind(n).map(|k| k.kind), Some("Pod"), "{n}");
        }
        assert_eq!(find_kind("rc").map(|k| k.kind), Some("ReplicationController"));
        assert_eq!(find_kind("limits").map(|k| k.kind), Some("LimitRange"));
        assert!(find_kind("deployment").is_none());
    }

    #[test]
    fn should_build_store_keys() {
        assert_eq!(Pod::INFO.key("default", "web"), "/registry/pods/default/web");
        assert_eq!(Node::INFO.key("", "n1"), "/registry/nodes/n1");
        assert_eq!(Pod::INFO.prefix(""), "/registry/pods/");
        assert_eq!(Lease::INFO.group(), "coordination.k8s.io");
    }
}
