//! The RBAC kinds (Role, ClusterRole, RoleBinding, ClusterRoleBinding):
//! path-segment names, policy rules, role references and subjects.

use super::Check;

/// As Kubernetes' path segment names: anything but `.`, `..`, `/` and `%`.
pub(super) fn path_segment(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s == "." || s == ".." {
        out.push(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            out.push(format!("may not contain '{bad}'"));
        }
    }
    out
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub(super) fn policy_rules(c: &mut Check, rules: &[crate::pb::rbac::PolicyRule], namespaced: bool) {
    for (i, r) in rules.iter().enumerate() {
        let f = format!("rules[{i}]");
        if r.verbs.is_empty() {
            c.required(&format!("{f}.verbs"), "verbs must contain at least one value");
        }
        if !r.non_resource_urls.is_empty() {
            if namespaced {
                c.invalid(
                    &format!("{f}.nonResourceURLs"),
                    r.non_resource_urls.join(","),
                    "namespaced rules cannot apply to non-resource URLs",
                );
            }
            if !r.api_groups.is_empty() || !r.resources.is_empty() || !r.resource_names.is_empty() {
                c.invalid(
                    &format!("{f}.nonResourceURLs"),
                    r.non_resource_urls.join(","),
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            continue;
        }
        if r.api_groups.is_empty() {
            c.required(&format!("{f}.apiGroups"), "resource rules must supply at least one api group");
        }
        if r.resources.is_empty() {
            c.required(&format!("{f}.resources"), "resource rules must supply at least one resource");
        }
    }
}

pub(super) fn role_ref_text(r: Option<&crate::pb::rbac::RoleRef>) -> String {
    r.map(|r| format!("{}/{}", r.kind, r.name)).unwrap_or_default()
}

pub(super) fn role_binding(
    c: &mut Check,
    subjects: &[crate::pb::rbac::Subject],
    role_ref: Option<&crate::pb::rbac::RoleRef>,
    namespaced: bool,
) {
    match role_ref {
        None => c.required("roleRef", ""),
        Some(r) => {
            if r.api_group != RBAC_GROUP {
                c.not_supported("roleRef.apiGroup", &r.api_group, &[RBAC_GROUP]);
            }
            let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
            c.one_of("roleRef.kind", &r.kind, kinds, true);
            if r.name.is_empty() {
                c.required("roleRef.name", "");
            } else {
                c.invalid_all("roleRef.name", &r.name, path_segment(&r.name));
            }
        }
    }
    for (i, s) in subjects.iter().enumerate() {
        let f = format!("subjects[{i}]");
        c.one_of(&format!("{f}.kind"), &s.kind, &["User", "Group", "ServiceAccount"], true);
        if s.name.is_empty() {
            c.required(&format!("{f}.name"), "");
        }
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.api_group.is_empty() {
                    c.not_supported(&format!("{f}.apiGroup"), &s.api_group, &[""]);
                }
                if s.namespace.is_empty() && !namespaced {
                    c.required(&format!("{f}.namespace"), "");
                }
            }
            "User" | "Group" if !s.api_group.is_empty() && s.api_group != RBAC_GROUP => {
                c.not_supported(&format!("{f}.apiGroup"), &s.api_group, &[RBAC_GROUP])
            }
            _ => {}
        }
    }
}
