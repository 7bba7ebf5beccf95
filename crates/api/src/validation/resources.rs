//! Compute resources: the resource names a container may request (standard
//! or extended), their quantities, and requests against limits. Quotas and
//! LimitRanges share the name rules.

use std::collections::BTreeMap;

use super::{Check, at, key};
use crate::names;
use crate::pb::core::ResourceRequirements;
use crate::quantity::Quantity;

/// Whether a resource name is an extended resource (a domain other than
/// kubernetes.io): integer quantities, requests equal to limits.
pub(super) fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

pub(super) fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// A container resource name: a standard one, or a qualified name with a domain.
fn container_resource_name(c: &mut Check, p: &str, name: &str) -> bool {
    let msgs = names::qualified_name(name);
    if !msgs.is_empty() {
        c.invalid_all(p, name, msgs);
        return false;
    }
    if !is_extended_resource(name) && !is_standard_container_resource(name) {
        c.invalid(p, name, "must be a standard resource for containers");
        return false;
    }
    true
}

/// A map of container resources to quantities, checked; the parsed ones.
fn resource_list<'a>(c: &mut Check, m: &'a BTreeMap<String, String>, p: &str) -> BTreeMap<&'a str, Quantity> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let kp = key(p, k);
        let name_ok = container_resource_name(c, &kp, k);
        let Some(q) = c.non_negative_quantity(&kp, v) else { continue };
        if is_extended_resource(k) && q.nano_value() % 1_000_000_000 != 0 {
            c.invalid(&kp, v, "must be an integer");
            continue;
        }
        if name_ok {
            out.insert(k.as_str(), q);
        }
    }
    out
}

pub(super) fn resources(c: &mut Check, r: &ResourceRequirements, p: &str) {
    let (lp, rp) = (at(p, "limits"), at(p, "requests"));
    let limits = resource_list(c, &r.limits, &lp);
    let requests = resource_list(c, &r.requests, &rp);
    for (name, req) in &requests {
        let fp = key(&rp, name);
        let raw = r.requests.get(*name).map(String::as_str).unwrap_or("");
        match limits.get(name) {
            Some(lim) if is_extended_resource(name) && req != lim => {
                c.invalid(&fp, raw, format!("must be equal to {name} limit of {lim}"));
            }
            Some(lim) if req > lim => {
                c.invalid(&fp, raw, format!("must be less than or equal to {name} limit of {lim}"));
            }
            None if is_extended_resource(name) => {
                c.required(&key(&lp, name), "Limit must be set for non overcommitable resources");
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::api::Object;
    use crate::validation::test_support::*;

    fn resources(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Object {
        ctr_with(|c| c.resources = Some(ResourceRequirements { limits: map(limits), requests: map(requests) }))
    }

    #[test]
    fn should_check_resource_names_and_quantities() {
        assert_valid(&resources(&[("cpu", "2"), ("ephemeral-storage", "1Gi")], &[("cpu", "0.5")]));
        assert!(
            assert_error_at(&resources(&[("gpu", "1")], &[]), "spec.containers[0].resources.limits[gpu]")
                .contains("must be a standard resource for containers")
        );
        assert_error_at(&resources(&[("cpu", "lots")], &[]), "spec.containers[0].resources.limits[cpu]");
        assert_eq!(
            assert_error_at(&resources(&[], &[("memory", "-1Mi")]), "spec.containers[0].resources.requests[memory]"),
            "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Mi\": must be greater than or equal to 0"
        );
        assert!(
            assert_error_at(&resources(&[("example.com/gpu", "500m")], &[]), "spec.containers[0].resources.limits[example.com/gpu]")
                .contains("must be an integer")
        );
    }

    #[test]
    fn should_refuse_requests_above_limits() {
        assert_eq!(
            assert_error_at(&resources(&[("cpu", "500m")], &[("cpu", "1")]), "spec.containers[0].resources.requests[cpu]"),
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"1\": must be less than or equal to cpu limit of 500m"
        );
        assert_valid(&resources(&[("memory", "1Gi")], &[("memory", "1024Mi")]));
        assert_error_at(
            &resources(&[("example.com/gpu", "2")], &[("example.com/gpu", "1")]),
            "spec.containers[0].resources.requests[example.com/gpu]",
        );
        assert_error_at(&resources(&[], &[("example.com/gpu", "1")]), "spec.containers[0].resources.limits[example.com/gpu]");
    }
}
