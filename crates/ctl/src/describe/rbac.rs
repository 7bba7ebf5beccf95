//! The RBAC views: a role's (or cluster role's) rule table, and a binding's role and subjects.

use berth_api::pb::core::ObjectMeta;
use berth_api::pb::rbac::{PolicyRule, RoleRef, Subject};

use super::{Doc, header};

/// kubectl's PolicyRule table: one row per rule and resource.
pub(super) fn role(d: &mut Doc, m: &ObjectMeta, rules: &[PolicyRule]) {
    header(d, m);
    d.line(0, "PolicyRule:");
    d.line(2, "Resources\tNon-Resource URLs\tResource Names\tVerbs");
    d.line(2, "---------\t-----------------\t--------------\t-----");
    let bracket = |v: &[String]| format!("[{}]", v.join(" "));
    for r in rules {
        let mut resources: Vec<String> = Vec::new();
        for res in &r.resources {
            if r.api_groups.is_empty() {
                resources.push(res.clone());
            }
            for g in &r.api_groups {
                resources.push(if g.is_empty() { res.clone() } else { format!("{res}.{g}") });
            }
        }
        if resources.is_empty() {
            resources.push(String::new());
        }
        for res in resources {
            d.line(2, format!("{res}\t{}\t{}\t{}", bracket(&r.non_resource_urls), bracket(&r.resource_names), bracket(&r.verbs)));
        }
    }
}

pub(super) fn binding(d: &mut Doc, m: &ObjectMeta, role_ref: Option<&RoleRef>, subjects: &[Subject]) {
    header(d, m);
    let r = role_ref.cloned().unwrap_or_default();
    d.line(0, "Role:");
    d.kv(2, "Kind", &r.kind);
    d.kv(2, "Name", &r.name);
    d.line(0, "Subjects:");
    d.line(2, "Kind\tName\tNamespace");
    d.line(2, "----\t----\t---------");
    for s in subjects {
        d.line(2, format!("{}\t{}\t{}", s.kind, s.name, s.namespace));
    }
}

#[cfg(test)]
mod tests {
    use berth_api::manifest::parse;

    use crate::describe::{Related, describe, test_now as now};

    #[test]
    fn should_describe_a_cluster_role_as_a_rule_table() {
        let objs = parse(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules:\n- {apiGroups: [\"\"], resources: [pods, pods/log], verbs: [get, list]}\n",
        )
        .expect("parses");
        let text = describe(&objs[0], &Related::default(), now());
        assert_eq!(
            text,
            "Name:         r\nLabels:       <none>\nAnnotations:  <none>\nPolicyRule:\n  Resources  Non-Resource URLs  Resource Names  Verbs\n  ---------  -----------------  --------------  -----\n  pods       []                 []              [get list]\n  pods/log   []                 []              [get list]\nEvents:      <none>\n"
        );
    }
}
