//! ResourceQuotas and LimitRanges: the resource names each may limit,
//! non-negative (and for counted resources, integer) quantities, quota
//! scopes, and the order a LimitRange's min, defaultRequest, default, max and
//! maxLimitRequestRatio must keep.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::meta::{NameRule, object_meta};
use super::resources::{is_extended_resource, is_standard_container_resource};
use super::{Check, at, idx, key};
use crate::names;
use crate::pb::core::{LimitRange, ResourceQuota};
use crate::quantity::Quantity;

/// Resource names a quota may limit without a domain.
const QUOTA_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "ephemeral-storage",
    "storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "requests.storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

/// Quota resources counted in whole objects.
fn is_integer_quota_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "services"
            | "replicationcontrollers"
            | "resourcequotas"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || name.starts_with("count/")
}

fn quota_list(c: &mut Check, m: &BTreeMap<String, String>, p: &str) {
    for (k, v) in m {
        let kp = key(p, k);
        let msgs = names::qualified_name(k);
        if !msgs.is_empty() {
            c.invalid_all(&kp, k, msgs);
        } else if !k.contains('/')
            && !QUOTA_RESOURCES.contains(&k.as_str())
            && !k.starts_with("hugepages-")
            && !k.starts_with("requests.hugepages-")
        {
            c.invalid(&kp, k, "must be a standard resource for quota");
        }
        if let Some(q) = c.non_negative_quantity(&kp, v)
            && (is_integer_quota_resource(k) || is_extended_resource(k))
            && q.nano_value() % 1_000_000_000 != 0
        {
            c.invalid(&kp, v, "must be an integer");
        }
    }
}

pub(super) fn resource_quota(c: &mut Check, q: &ResourceQuota) {
    object_meta(c, q.metadata.as_ref(), true, NameRule::Subdomain);
    if let Some(s) = &q.spec {
        quota_list(c, &s.hard, "spec.hard");
        const SCOPES: &[&str] =
            &["Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity"];
        for (i, scope) in s.scopes.iter().enumerate() {
            c.one_of(&idx("spec.scopes", i), scope, SCOPES, true);
        }
    }
    if let Some(s) = &q.status {
        quota_list(c, &s.hard, "status.hard");
        quota_list(c, &s.used, "status.used");
    }
}

pub(super) fn limit_range(c: &mut Check, l: &LimitRange) {
    object_meta(c, l.metadata.as_ref(), true, NameRule::Subdomain);
    let Some(spec) = &l.spec else { return };
    let mut types = HashSet::new();
    for (i, item) in spec.limits.iter().enumerate() {
        let ip = idx("spec.limits", i);
        let tp = at(&ip, "type");
        c.one_of(&tp, &item.r#type, &["Container", "Pod", "PersistentVolumeClaim"], true);
        if !item.r#type.is_empty() && !types.insert(item.r#type.as_str()) {
            c.duplicate(&tp, &item.r#type);
        }
        let pvc = item.r#type == "PersistentVolumeClaim";
        if item.r#type == "Pod" {
            if !item.default.is_empty() {
                c.forbidden(&at(&ip, "default"), "may not be specified when `type` is 'Pod'");
            }
            if !item.default_request.is_empty() {
                c.forbidden(&at(&ip, "defaultRequest"), "may not be specified when `type` is 'Pod'");
            }
        }
        if pvc && !item.min.contains_key("storage") && !item.max.contains_key("storage") {
            c.required(&at(&ip, "limits"), "either minimum or maximum storage value is required, but neither was provided");
        }
        let mut parse = |field: &str, m: &BTreeMap<String, String>| -> BTreeMap<String, Quantity> {
            let fp = at(&ip, field);
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let kp = key(&fp, k);
                let msgs = names::qualified_name(k);
                if !msgs.is_empty() {
                    c.invalid_all(&kp, k, msgs);
                } else if pvc && k != "storage" && !k.contains('/') {
                    c.invalid(&kp, k, "must be a standard resource for persistent volume claims");
                } else if !pvc && !k.contains('/') && !is_standard_container_resource(k) {
                    c.invalid(&kp, k, "must be a standard resource for containers");
                }
                if let Some(q) = c.non_negative_quantity(&kp, v) {
                    out.insert(k.clone(), q);
                }
            }
            out
        };
        let max = parse("max", &item.max);
        let min = parse("min", &item.min);
        let default = parse("default", &item.default);
        let default_request = parse("defaultRequest", &item.default_request);
        let ratio = parse("maxLimitRequestRatio", &item.max_limit_request_ratio);
        let keys: BTreeSet<&String> =
            max.keys().chain(min.keys()).chain(default.keys()).chain(default_request.keys()).chain(ratio.keys()).collect();
        for k in keys {
            let (mx, mn, d, dr, r) = (max.get(k), min.get(k), default.get(k), default_request.get(k), ratio.get(k));
            let path = |field: &str| key(&at(&ip, field), k);
            if let (Some(mn), Some(mx)) = (mn, mx)
                && mn > mx
            {
                c.invalid(&path("min"), mn.to_string(), format!("min value {mn} is greater than max value {mx}"));
            }
            if let Some(dr) = dr {
                if let Some(mn) = mn
                    && mn > dr
                {
                    c.invalid(
                        &path("defaultRequest"),
                        dr.to_string(),
                        format!("min value {mn} is greater than default request value {dr}"),
                    );
                }
                if let Some(mx) = mx
                    && dr > mx
                {
                    c.invalid(
                        &path("defaultRequest"),
                        dr.to_string(),
                        format!("default request value {dr} is greater than max value {mx}"),
                    );
                }
                if let Some(d) = d
                    && dr > d
                {
                    c.invalid(
                        &path("defaultRequest"),
                        dr.to_string(),
                        format!("default request value {dr} is greater than default limit value {d}"),
                    );
                }
            }
            if let Some(d) = d {
                if let Some(mn) = mn
                    && mn > d
                {
                    c.invalid(&path("default"), d.to_string(), format!("min value {mn} is greater than default value {d}"));
                }
                if let Some(mx) = mx
                    && d > mx
                {
                    c.invalid(&path("default"), d.to_string(), format!("default value {d} is greater than max value {mx}"));
                }
            }
            if let Some(r) = r {
                if *r < Quantity::from_value(1) {
                    c.invalid(&path("maxLimitRequestRatio"), r.to_string(), format!("ratio {r} is less than 1"));
                }
                if let (Some(mn), Some(mx)) = (mn, mx)
                    && !mn.is_zero()
                {
                    let limit = mx.nano_value() as f64 / mn.nano_value() as f64;
                    let ratio = r.nano_value() as f64 / 1e9;
                    if ratio > limit {
                        c.invalid(&path("maxLimitRequestRatio"), r.to_string(), format!("ratio {r} is greater than max/min = {limit:.6}"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::api::Object;
    use crate::pb::core::{LimitRangeItem, LimitRangeSpec, ResourceQuotaSpec};
    use crate::validation::test_support::*;

    fn quota(hard: &[(&str, &str)]) -> Object {
        ResourceQuota {
            metadata: meta("quota"),
            spec: Some(ResourceQuotaSpec { hard: map(hard), ..Default::default() }),
            ..Default::default()
        }
        .into_object()
    }

    fn limits(item: LimitRangeItem) -> Object {
        LimitRange { metadata: meta("limits"), spec: Some(LimitRangeSpec { limits: vec![item] }), ..Default::default() }.into_object()
    }

    #[test]
    fn should_check_quota_resource_names_and_values() {
        assert_valid(&quota(&[
            ("pods", "10"),
            ("requests.cpu", "4"),
            ("limits.memory", "8Gi"),
            ("count/configmaps", "5"),
            ("services.nodeports", "0"),
        ]));
        assert_eq!(
            assert_error_at(&quota(&[("widgets", "1")]), "spec.hard[widgets]"),
            "spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource for quota"
        );
        assert_error_at(&quota(&[("pods", "-1")]), "spec.hard[pods]");
        assert!(assert_error_at(&quota(&[("pods", "1500m")]), "spec.hard[pods]").contains("must be an integer"));
        assert_error_at(&quota(&[("cpu", "x")]), "spec.hard[cpu]");
        let scope = ResourceQuota {
            metadata: meta("q"),
            spec: Some(ResourceQuotaSpec { scopes: vec!["Everything".into()], ..Default::default() }),
            ..Default::default()
        };
        assert_error_at(&scope.into_object(), "spec.scopes[0]");
    }

    fn item(ty: &str, f: impl FnOnce(&mut LimitRangeItem)) -> Object {
        let mut i = LimitRangeItem { r#type: ty.into(), ..Default::default() };
        f(&mut i);
        limits(i)
    }

    #[test]
    fn should_check_limit_range_types_and_order() {
        assert_valid(&item("Container", |i| {
            i.min = map(&[("cpu", "100m")]);
            i.default_request = map(&[("cpu", "200m")]);
            i.default = map(&[("cpu", "500m")]);
            i.max = map(&[("cpu", "1")]);
            i.max_limit_request_ratio = map(&[("cpu", "4")]);
        }));
        assert_valid(&item("PersistentVolumeClaim", |i| i.max = map(&[("storage", "10Gi")])));
        assert_error_at(&item("Volume", |_| {}), "spec.limits[0].type");
        assert_eq!(
            assert_error_at(
                &item("Container", |i| {
                    i.min = map(&[("cpu", "2")]);
                    i.max = map(&[("cpu", "1")]);
                }),
                "spec.limits[0].min[cpu]"
            ),
            "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1"
        );
        assert_error_at(
            &item("Container", |i| {
                i.default = map(&[("memory", "2Gi")]);
                i.max = map(&[("memory", "1Gi")]);
            }),
            "spec.limits[0].default[memory]",
        );
        assert_error_at(
            &item("Container", |i| {
                i.default = map(&[("cpu", "1")]);
                i.default_request = map(&[("cpu", "2")]);
            }),
            "spec.limits[0].defaultRequest[cpu]",
        );
        assert_error_at(
            &item("Container", |i| {
                i.min = map(&[("cpu", "1")]);
                i.default_request = map(&[("cpu", "500m")]);
            }),
            "spec.limits[0].defaultRequest[cpu]",
        );
        assert!(
            assert_error_at(
                &item("Container", |i| i.max_limit_request_ratio = map(&[("cpu", "500m")])),
                "spec.limits[0].maxLimitRequestRatio[cpu]"
            )
            .contains("is less than 1")
        );
        assert_error_at(
            &item("Container", |i| {
                i.min = map(&[("cpu", "1")]);
                i.max = map(&[("cpu", "2")]);
                i.max_limit_request_ratio = map(&[("cpu", "3")]);
            }),
            "spec.limits[0].maxLimitRequestRatio[cpu]",
        );
        assert_error_at(&item("Pod", |i| i.default = map(&[("cpu", "1")])), "spec.limits[0].default");
        assert_error_at(&item("Container", |i| i.max = map(&[("widgets", "1")])), "spec.limits[0].max[widgets]");
        assert_error_at(&item("Container", |i| i.max = map(&[("cpu", "-1")])), "spec.limits[0].max[cpu]");
        assert_error_at(&item("PersistentVolumeClaim", |_| {}), "spec.limits[0].limits");
    }
}
