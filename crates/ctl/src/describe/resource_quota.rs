//! The resource quota view, and its used-and-hard table (which the namespace view shows too).

use berth_api::pb::core::{ObjectMeta, ResourceQuota};

use super::Doc;

pub(super) fn view(d: &mut Doc, q: &ResourceQuota) {
    let empty = ObjectMeta::default();
    let m = q.metadata.as_ref().unwrap_or(&empty);
    let spec = q.spec.clone().unwrap_or_default();
    d.kv(0, "Name", &m.name);
    d.kv(0, "Namespace", &m.namespace);
    if !spec.scopes.is_empty() {
        d.kv(0, "Scopes", spec.scopes.join(", "));
    }
    table(d, 0, q);
}

/// Resource, Used, Hard: one line per resource the quota limits.
pub(super) fn table(d: &mut Doc, indent: usize, q: &ResourceQuota) {
    let spec = q.spec.clone().unwrap_or_default();
    let status = q.status.clone().unwrap_or_default();
    d.line(indent, "Resource\tUsed\tHard");
    d.line(indent, "--------\t----\t----");
    let hard = if status.hard.is_empty() { &spec.hard } else { &status.hard };
    for (resource, h) in hard {
        let used = status.used.get(resource).map(String::as_str).unwrap_or("0");
        d.line(indent, format!("{resource}\t{used}\t{h}"));
    }
}

#[cfg(test)]
mod tests {
    use berth_api::manifest::parse;

    use crate::describe::{Related, describe, test_now as now};

    #[test]
    fn should_describe_a_quota_as_a_used_and_hard_table() {
        let objs = parse(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, namespace: default}\nspec: {hard: {pods: \"10\", cpu: \"2\"}}\nstatus: {hard: {pods: \"10\", cpu: \"2\"}, used: {pods: \"3\"}}\n",
        )
        .expect("parses");
        let text = describe(&objs[0], &Related::default(), now());
        assert_eq!(
            text,
            "Name:       q\nNamespace:  default\nResource    Used  Hard\n--------    ----  ----\ncpu         0     2\npods        3     10\nEvents:     <none>\n"
        );
    }
}
