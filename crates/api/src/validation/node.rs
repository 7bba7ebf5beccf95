//! Nodes: taints, pod CIDRs, capacity and addresses; and the pod CIDRs and
//! provider ID an update may not change once set.

use std::collections::HashSet;

use super::meta::{NameRule, object_meta};
use super::{Check, TAINT_EFFECTS, at, idx, is_cidr, key};
use crate::names;
use crate::pb::core::{Node, NodeSpec};

pub(super) fn node(c: &mut Check, n: &Node) {
    object_meta(c, n.metadata.as_ref(), false, NameRule::Subdomain);
    if let Some(spec) = &n.spec {
        let mut seen = HashSet::new();
        for (i, t) in spec.taints.iter().enumerate() {
            let p = idx("spec.taints", i);
            c.invalid_all(&at(&p, "key"), &t.key, names::qualified_name(&t.key));
            let msgs = names::label_value(&t.value);
            if !msgs.is_empty() {
                c.invalid(&at(&p, "value"), &t.value, msgs.join(";"));
            }
            c.one_of(&at(&p, "effect"), &t.effect, TAINT_EFFECTS, true);
            if !seen.insert((t.key.as_str(), t.effect.as_str())) {
                c.duplicate(&p, format!("{}:{}", t.key, t.effect));
            }
        }
        if !spec.pod_cidr.is_empty() && !is_cidr(&spec.pod_cidr) {
            c.invalid("spec.podCIDR", &spec.pod_cidr, "must be a valid CIDR");
        }
        for (i, cidr) in spec.pod_cidrs.iter().enumerate() {
            if !is_cidr(cidr) {
                c.invalid(&idx("spec.podCIDRs", i), cidr, "must be a valid CIDR");
            }
        }
        if let Some(first) = spec.pod_cidrs.first()
            && !spec.pod_cidr.is_empty()
            && *first != spec.pod_cidr
        {
            c.invalid("spec.podCIDRs[0]", first, "must match spec.podCIDR");
        }
    }
    if let Some(status) = &n.status {
        for (path, m) in [("status.capacity", &status.capacity), ("status.allocatable", &status.allocatable)] {
            for (k, v) in m {
                let p = key(path, k);
                c.invalid_all(&p, k, names::qualified_name(k));
                c.non_negative_quantity(&p, v);
            }
        }
        for (i, a) in status.addresses.iter().enumerate() {
            if a.address.is_empty() {
                c.required(&at(&idx("status.addresses", i), "address"), "");
            }
        }
    }
}

pub(super) fn node_update(c: &mut Check, old: &Node, new: &Node) {
    let empty = NodeSpec::default();
    let (o, n) = (old.spec.as_ref().unwrap_or(&empty), new.spec.as_ref().unwrap_or(&empty));
    if !o.pod_cidr.is_empty() && o.pod_cidr != n.pod_cidr {
        c.forbidden("spec.podCIDR", "node updates may not change podCIDR except from \"\" to valid");
    }
    if !o.pod_cidrs.is_empty() && o.pod_cidrs != n.pod_cidrs {
        c.forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid");
    }
    if !o.provider_id.is_empty() && o.provider_id != n.provider_id {
        c.forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::core::Taint;
    use crate::validation::test_support::*;
    use crate::validation::validate_update;

    #[test]
    fn should_check_node_taints_cidrs_and_capacity() {
        let taint = |key: &str, effect: &str| {
            node_with(|n| {
                n.spec.get_or_insert_with(Default::default).taints =
                    vec![Taint { key: key.into(), effect: effect.into(), ..Default::default() }]
            })
        };
        assert_valid(&taint("node.kubernetes.io/unreachable", "NoExecute"));
        assert_error_at(&taint("bad key", "NoSchedule"), "spec.taints[0].key");
        assert_eq!(assert_error_at(&taint("k", ""), "spec.taints[0].effect"), "spec.taints[0].effect: Required value");
        assert_error_at(&taint("k", "Sometimes"), "spec.taints[0].effect");
        let dup = node_with(|n| {
            let t = Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() };
            n.spec.get_or_insert_with(Default::default).taints = vec![t.clone(), t];
        });
        assert_error_at(&dup, "spec.taints[1]");
        assert_error_at(&node_with(|n| n.spec.get_or_insert_with(Default::default).pod_cidr = "172.30.1.0".into()), "spec.podCIDR");
        assert_error_at(&node_with(|n| n.spec.get_or_insert_with(Default::default).pod_cidr = "172.30.1.0/33".into()), "spec.podCIDR");
        assert_valid(&node_with(|n| n.spec.get_or_insert_with(Default::default).pod_cidr = "fd00::/64".into()));
        assert_error_at(
            &node_with(|n| n.status.get_or_insert_with(Default::default).capacity = map(&[("cpu", "four")])),
            "status.capacity[cpu]",
        );
        assert_error_at(
            &node_with(|n| n.status.get_or_insert_with(Default::default).allocatable = map(&[("memory", "-1Gi")])),
            "status.allocatable[memory]",
        );
    }

    #[test]
    fn should_keep_a_node_pod_cidr_once_set() {
        let unset = node_with(|n| n.spec = Some(NodeSpec::default()));
        let set = node_with(|_| {});
        assert!(validate_update(&unset, &set).is_ok());
        let changed = node_with(|n| n.spec.get_or_insert_with(Default::default).pod_cidr = "172.30.2.0/24".into());
        assert_eq!(
            error_at(&update_errors(&set, &changed), "spec.podCIDR"),
            "spec.podCIDR: Forbidden: node updates may not change podCIDR except from \"\" to valid"
        );
        let tainted = node_with(|n| {
            n.spec.get_or_insert_with(Default::default).taints =
                vec![Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() }]
        });
        assert!(validate_update(&set, &tainted).is_ok());
    }
}
