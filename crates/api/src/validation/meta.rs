//! ObjectMeta, checked alike for every kind: the name (by the rule of the
//! kind), generateName, namespace, labels, annotations, owner references and
//! finalizers; and the name, namespace and uid an update may not change.

use std::collections::BTreeMap;

use super::rbac::path_segment;
use super::{Check, Rendered, at, idx};
use crate::names;
use crate::pb::core::ObjectMeta;

/// The most bytes the annotations of one object may hold (keys and values).
pub const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;

/// How a kind's object names are checked.
#[derive(Clone, Copy)]
pub(super) enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    /// RBAC names (`system:node`): any path segment.
    PathSegment,
}

impl NameRule {
    fn check(self, s: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => names::dns1123_subdomain(s),
            NameRule::Label => names::dns1123_label(s),
            NameRule::Dns1035 => names::dns1035_label(s),
            NameRule::PathSegment => path_segment(s),
        }
    }
}

pub(super) static EMPTY_META: ObjectMeta = ObjectMeta {
    name: String::new(),
    generate_name: String::new(),
    namespace: String::new(),
    uid: String::new(),
    resource_version: String::new(),
    generation: 0,
    creation_timestamp: String::new(),
    deletion_timestamp: String::new(),
    deletion_grace_period_seconds: None,
    labels: BTreeMap::new(),
    annotations: BTreeMap::new(),
    owner_references: Vec::new(),
    finalizers: Vec::new(),
};

pub(super) fn object_meta(c: &mut Check, meta: Option<&ObjectMeta>, namespaced: bool, rule: NameRule) {
    let m = meta.unwrap_or(&EMPTY_META);
    if m.name.is_empty() {
        c.required("metadata.name", "name or generateName is required");
    } else {
        c.invalid_all("metadata.name", &m.name, rule.check(&m.name));
    }
    if !m.generate_name.is_empty() {
        // As Kubernetes: a trailing dash is fine in a prefix.
        let prefix = match m.generate_name.strip_suffix('-') {
            Some(p) if !p.is_empty() => format!("{p}a"),
            _ => m.generate_name.clone(),
        };
        c.invalid_all("metadata.generateName", &m.generate_name, rule.check(&prefix));
    }
    if namespaced {
        if m.namespace.is_empty() {
            c.required("metadata.namespace", "");
        } else {
            c.invalid_all("metadata.namespace", &m.namespace, names::dns1123_label(&m.namespace));
        }
    } else if !m.namespace.is_empty() {
        c.forbidden("metadata.namespace", "not allowed on this type");
    }
    c.non_negative("metadata.generation", m.generation);
    labels(c, "metadata.labels", &m.labels);
    annotations(c, "metadata.annotations", &m.annotations);
    let mut controllers = 0;
    for (i, r) in m.owner_references.iter().enumerate() {
        let p = idx("metadata.ownerReferences", i);
        for (name, v) in [("apiVersion", &r.api_version), ("kind", &r.kind), ("name", &r.name), ("uid", &r.uid)] {
            if v.is_empty() {
                c.required(&at(&p, name), "");
            }
        }
        if r.controller == Some(true) {
            controllers += 1;
        }
    }
    if controllers > 1 {
        c.invalid(
            "metadata.ownerReferences",
            Rendered(format!("{controllers} controllers")),
            "Only one reference can have Controller set to true",
        );
    }
    for (i, f) in m.finalizers.iter().enumerate() {
        c.invalid_all(&idx("metadata.finalizers", i), f, names::qualified_name(f));
    }
    if m.finalizers.iter().any(|f| f == "orphan") && m.finalizers.iter().any(|f| f == "foregroundDeletion") {
        c.invalid(
            "metadata.finalizers",
            Rendered(format!("{:?}", m.finalizers)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        );
    }
}

/// Label keys are qualified names, values label values (also node selectors
/// and map selectors).
pub(super) fn labels(c: &mut Check, path: &str, m: &BTreeMap<String, String>) {
    for (k, v) in m {
        c.invalid_all(path, k, names::qualified_name(k));
        c.invalid_all(path, v, names::label_value(v));
    }
}

pub(super) fn annotations(c: &mut Check, path: &str, m: &BTreeMap<String, String>) {
    let mut size = 0;
    for (k, v) in m {
        c.invalid_all(path, k, names::qualified_name(&k.to_lowercase()));
        size += k.len() + v.len();
    }
    if size > MAX_ANNOTATIONS_SIZE {
        c.too_long(path, MAX_ANNOTATIONS_SIZE);
    }
}

pub(super) fn meta_update(c: &mut Check, old: Option<&ObjectMeta>, new: Option<&ObjectMeta>) {
    let (o, n) = (old.unwrap_or(&EMPTY_META), new.unwrap_or(&EMPTY_META));
    if o.name != n.name {
        c.invalid("metadata.name", &n.name, "field is immutable");
    }
    if o.namespace != n.namespace {
        c.invalid("metadata.namespace", &n.namespace, "field is immutable");
    }
    if !o.uid.is_empty() && !n.uid.is_empty() && o.uid != n.uid {
        c.invalid("metadata.uid", &n.uid, "field is immutable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::core::{Namespace, OwnerReference};
    use crate::validation::test_support::*;

    #[test]
    fn should_require_a_name() {
        let mut p = pod_of(pod_spec());
        p.metadata = Some(ObjectMeta { namespace: "default".into(), ..Default::default() });
        assert_eq!(assert_error_at(&p.into_object(), "metadata.name"), "metadata.name: Required value: name or generateName is required");
    }

    #[test]
    fn should_refuse_uppercase_names_with_kubernetes_message() {
        let mut p = pod_of(pod_spec());
        p.metadata = meta("Web");
        let msg = assert_error_at(&p.into_object(), "metadata.name");
        assert!(msg.starts_with("metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of"), "{msg}");
    }

    #[test]
    fn should_check_names_by_the_rule_of_each_kind() {
        // Namespace: DNS-1123 label, no dots.
        let ns = |name: &str| Namespace { metadata: cluster_meta(name), ..Default::default() }.into_object();
        assert_valid(&ns("dev-1"));
        assert!(assert_error_at(&ns("dev.example"), "metadata.name").contains("must not contain dots"));
        // Service: DNS-1035 label, starts with a letter.
        let svc = |name: &str| {
            let mut o = svc_with(|_| {});
            if let Some(m) = o.metadata_mut() {
                m.name = name.into();
            }
            o
        };
        assert_valid(&svc("web-1"));
        assert!(assert_error_at(&svc("1web"), "metadata.name").contains("DNS-1035 label"));
        assert_error_at(&svc("web.example"), "metadata.name");
        // Node, Secret, ConfigMap, Pod: subdomains, dots allowed.
        assert_valid(&node_with(|_| {}));
        assert_valid(&cm_with(|m| m.metadata = meta("app.config")));
        assert_error_at(&cm_with(|m| m.metadata = meta("app_config")), "metadata.name");
        assert_error_at(&node_with(|n| n.metadata = cluster_meta(&"a".repeat(254))), "metadata.name");
    }

    #[test]
    fn should_check_generate_name_as_a_prefix() {
        let mut p = pod_of(pod_spec());
        p.metadata =
            Some(ObjectMeta { name: "web-x7k2p".into(), generate_name: "web-".into(), namespace: "default".into(), ..Default::default() });
        assert_valid(&p.clone().into_object());
        p.metadata =
            Some(ObjectMeta { name: "web-x7k2p".into(), generate_name: "Web-".into(), namespace: "default".into(), ..Default::default() });
        assert_error_at(&p.into_object(), "metadata.generateName");
    }

    #[test]
    fn should_require_a_namespace_for_namespaced_kinds_only() {
        let mut p = pod_of(pod_spec());
        p.metadata = cluster_meta("web");
        assert_eq!(assert_error_at(&p.clone().into_object(), "metadata.namespace"), "metadata.namespace: Required value");
        p.metadata = Some(ObjectMeta { name: "web".into(), namespace: "Prod".into(), ..Default::default() });
        assert_error_at(&p.into_object(), "metadata.namespace");
        let n = node_with(|n| n.metadata = meta("node-1"));
        assert_eq!(assert_error_at(&n, "metadata.namespace"), "metadata.namespace: Forbidden: not allowed on this type");
    }

    #[test]
    fn should_check_label_keys_and_values() {
        let mut p = pod_of(pod_spec());
        let m = p.metadata.get_or_insert_with(Default::default);
        m.labels = map(&[("app.kubernetes.io/name", "web"), ("tier", "")]);
        assert_valid(&p.clone().into_object());
        let m = p.metadata.get_or_insert_with(Default::default);
        m.labels = map(&[("bad key", "web")]);
        assert!(assert_error_at(&p.clone().into_object(), "metadata.labels").starts_with("metadata.labels: Invalid value: \"bad key\""));
        let m = p.metadata.get_or_insert_with(Default::default);
        m.labels = map(&[("app", "-web-")]);
        assert!(assert_error_at(&p.into_object(), "metadata.labels").contains("a valid label must be an empty string"));
    }

    #[test]
    fn should_check_annotation_keys_and_total_size() {
        let mut p = pod_of(pod_spec());
        let m = p.metadata.get_or_insert_with(Default::default);
        m.annotations = map(&[("Example.com/Owner", "any value at all: ✓")]);
        assert_valid(&p.clone().into_object());
        let m = p.metadata.get_or_insert_with(Default::default);
        m.annotations = map(&[("a/b/c", "x")]);
        assert_error_at(&p.clone().into_object(), "metadata.annotations");
        let m = p.metadata.get_or_insert_with(Default::default);
        m.annotations = BTreeMap::from([("big".to_string(), "x".repeat(MAX_ANNOTATIONS_SIZE))]);
        assert_eq!(
            assert_error_at(&p.into_object(), "metadata.annotations"),
            "metadata.annotations: Too long: must have at most 262144 bytes"
        );
    }

    #[test]
    fn should_require_owner_reference_fields_and_one_controller() {
        let mut p = pod_of(pod_spec());
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: "web".into(),
            uid: "u1".into(),
            controller: Some(true),
            ..Default::default()
        };
        p.metadata.get_or_insert_with(Default::default).owner_references = vec![owner.clone()];
        assert_valid(&p.clone().into_object());
        p.metadata.get_or_insert_with(Default::default).owner_references = vec![OwnerReference { uid: String::new(), ..owner.clone() }];
        assert_eq!(
            assert_error_at(&p.clone().into_object(), "metadata.ownerReferences[0].uid"),
            "metadata.ownerReferences[0].uid: Required value"
        );
        p.metadata.get_or_insert_with(Default::default).owner_references =
            vec![owner.clone(), OwnerReference { name: "other".into(), ..owner }];
        assert_error_at(&p.into_object(), "metadata.ownerReferences");
    }

    #[test]
    fn should_refuse_bad_or_conflicting_finalizers() {
        let mut p = pod_of(pod_spec());
        p.metadata.get_or_insert_with(Default::default).finalizers = vec!["example.com/cleanup".into(), "orphan".into()];
        assert_valid(&p.clone().into_object());
        p.metadata.get_or_insert_with(Default::default).finalizers = vec!["bad finalizer".into()];
        assert_error_at(&p.clone().into_object(), "metadata.finalizers[0]");
        p.metadata.get_or_insert_with(Default::default).finalizers = vec!["orphan".into(), "foregroundDeletion".into()];
        assert_error_at(&p.into_object(), "metadata.finalizers");
    }
}
