//! What an object uses of a ResourceQuota (object counts and compute
//! requests/limits), as Kubernetes' quota evaluators count it; shared by the
//! apiserver's quota admission and the controller-manager's quota controller
//! so that both always agree.

use std::collections::BTreeMap;

use crate::pb::api::Object;
use crate::pb::api::object::Kind;
use crate::pb::core::{Pod, PodSpec, ResourceRequirements, Service};
use crate::quantity::Quantity;

/// Resource names, as `spec.hard` spells them.
pub const PODS: &str = "pods";
pub const SERVICES: &str = "services";
pub const REPLICATION_CONTROLLERS: &str = "replicationcontrollers";
pub const SECRETS: &str = "secrets";
pub const CONFIG_MAPS: &str = "configmaps";
pub const RESOURCE_QUOTAS: &str = "resourcequotas";
pub const SERVICES_NODE_PORTS: &str = "services.nodeports";
pub const SERVICES_LOAD_BALANCERS: &str = "services.loadbalancers";
pub const REQUESTS_CPU: &str = "requests.cpu";
pub const REQUESTS_MEMORY: &str = "requests.memory";
pub const LIMITS_CPU: &str = "limits.cpu";
pub const LIMITS_MEMORY: &str = "limits.memory";

/// Every resource name a quota may limit (`cpu` and `memory` are the
/// historical names of `requests.cpu` and `requests.memory`).
pub const SUPPORTED: &[&str] = &[
    PODS,
    SERVICES,
    REPLICATION_CONTROLLERS,
    SECRETS,
    CONFIG_MAPS,
    RESOURCE_QUOTAS,
    SERVICES_NODE_PORTS,
    SERVICES_LOAD_BALANCERS,
    REQUESTS_CPU,
    REQUESTS_MEMORY,
    LIMITS_CPU,
    LIMITS_MEMORY,
    "cpu",
    "memory",
];

/// What one object uses, by canonical resource name.
pub type Usage = BTreeMap<String, Quantity>;

/// The canonical name of a quota resource: `cpu` is `requests.cpu`,
/// `memory` is `requests.memory`; the others are themselves.
pub fn canonical(resource: &str) -> &str {
    match resource {
        "cpu" => REQUESTS_CPU,
        "memory" => REQUESTS_MEMORY,
        other => other,
    }
}

/// Whether a pod still counts against quotas: it has not finished, and its
/// graceful deletion (if any) has not run out.
pub fn pod_counts(pod: &Pod, now: chrono::DateTime<chrono::Utc>) -> bool {
    let phase = pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("");
    if matches!(phase, "Succeeded" | "Failed") {
        return false;
    }
    let deletion = pod.metadata.as_ref().map(|m| m.deletion_timestamp.as_str()).unwrap_or("");
    match chrono::DateTime::parse_from_rfc3339(deletion) {
        Ok(t) => t.with_timezone(&chrono::Utc) > now,
        Err(_) => true,
    }
}

/// What `object` uses of a quota. Kinds that quotas do not count use nothing;
/// a pod that no longer counts (see [`pod_counts`]) uses nothing.
pub fn usage(object: &Object) -> Usage {
    let mut u = Usage::new();
    let one = Quantity::from_value(1);
    match &object.kind {
        Some(Kind::Pod(p)) if pod_counts(p, chrono::Utc::now()) => {
            u.insert(PODS.into(), one);
            let spec = p.spec.clone().unwrap_or_default();
            for (name, q) in pod_compute(&spec) {
                u.insert(name, q);
            }
        }
        Some(Kind::Service(s)) => {
            u.insert(SERVICES.into(), one);
            let (node_ports, lbs) = service_counts(s);
            u.insert(SERVICES_NODE_PORTS.into(), Quantity::from_value(node_ports));
            u.insert(SERVICES_LOAD_BALANCERS.into(), Quantity::from_value(lbs));
        }
        Some(Kind::ReplicationController(_)) => {
            u.insert(REPLICATION_CONTROLLERS.into(), one);
        }
        Some(Kind::Secret(_)) => {
            u.insert(SECRETS.into(), one);
        }
        Some(Kind::ConfigMap(_)) => {
            u.insert(CONFIG_MAPS.into(), one);
        }
        Some(Kind::ResourceQuota(_)) => {
            u.insert(RESOURCE_QUOTAS.into(), one);
        }
        _ => {}
    }
    u
}

/// How many node ports and load balancers a service holds.
fn service_counts(s: &Service) -> (i64, i64) {
    let spec = s.spec.clone().unwrap_or_default();
    match spec.r#type.as_str() {
        "NodePort" => (spec.ports.len() as i64, 0),
        "LoadBalancer" => (spec.ports.len() as i64, 1),
        _ => (0, 0),
    }
}

/// A pod's compute: the sum over its containers, or the largest init
/// container where that is more (init containers run one at a time).
/// Quantities that do not parse count as zero (validation refuses them).
pub fn pod_compute(spec: &PodSpec) -> Usage {
    let mut total = Usage::new();
    for c in &spec.containers {
        for (name, q) in container_compute(c.resources.as_ref()) {
            *total.entry(name).or_default() += q;
        }
    }
    for c in &spec.init_containers {
        for (name, q) in container_compute(c.resources.as_ref()) {
            let e = total.entry(name).or_default();
            if q > *e {
                *e = q;
            }
        }
    }
    total
}

fn container_compute(r: Option<&ResourceRequirements>) -> Usage {
    let mut u = Usage::new();
    let Some(r) = r else { return u };
    for (prefix, map) in [("requests", &r.requests), ("limits", &r.limits)] {
        for res in ["cpu", "memory"] {
            if let Some(q) = map.get(res).and_then(|v| Quantity::parse(v).ok()) {
                u.insert(format!("{prefix}.{res}"), q);
            }
        }
    }
    u
}

/// For a quota that limits compute resources, the pod must say what it
/// needs: the `(resource, container)` pairs it leaves unspecified among
/// `constrained` (canonical names such as `requests.cpu`).
pub fn unspecified_compute(spec: &PodSpec, constrained: &[&str]) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    for resource in constrained {
        let Some((prefix, res)) = resource.split_once('.') else { continue };
        if !matches!(prefix, "requests" | "limits") || !matches!(res, "cpu" | "memory") {
            continue;
        }
        for c in spec.init_containers.iter().chain(&spec.containers) {
            let r = c.resources.clone().unwrap_or_default();
            let map = if prefix == "requests" { &r.requests } else { &r.limits };
            if !map.contains_key(res) {
                missing.push(((*resource).to_string(), c.name.clone()));
            }
        }
    }
    missing
}

/// The usage of `hard`'s resources (by the names `hard` uses) summed over `objects`.
pub fn sum_for<'a>(hard: &BTreeMap<String, String>, usages: impl Iterator<Item = &'a Usage>) -> Usage {
    let mut used: Usage = hard.keys().map(|k| (k.clone(), Quantity::default())).collect();
    for u in usages {
        for (k, total) in used.iter_mut() {
            if let Some(q) = u.get(canonical(k)) {
                *total += *q;
            }
        }
    }
    used
}

/// `kind`'s resources that a quota can count, so that a reader knows which
/// kinds to look at for `hard`.
pub fn kinds_counted(hard: &BTreeMap<String, String>) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for k in hard.keys() {
        let kind = match canonical(k) {
            PODS | REQUESTS_CPU | REQUESTS_MEMORY | LIMITS_CPU | LIMITS_MEMORY => "Pod",
            SERVICES | SERVICES_NODE_PORTS | SERVICES_LOAD_BALANCERS => "Service",
            REPLICATION_CONTROLLERS => "ReplicationController",
            SECRETS => "Secret",
            CONFIG_MAPS => "ConfigMap",
            RESOURCE_QUOTAS => "ResourceQuota",
            _ => continue,
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::core::{Container, PodStatus};

    fn pod(cpu_req: &str, mem_lim: &str) -> Pod {
        let mut r = ResourceRequirements::default();
        r.requests.insert("cpu".into(), cpu_req.into());
        r.limits.insert("memory".into(), mem_lim.into());
        Pod {
            spec: Some(PodSpec {
                containers: vec![
                    Container { name: "a".into(), resources: Some(r.clone()), ..Default::default() },
                    Container { name: "b".into(), resources: Some(r), ..Default::default() },
                ],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn should_count_a_pods_containers_and_compute() {
        let u = usage(&pod("250m", "64Mi").into_object());
        assert_eq!(u[PODS], Quantity::from_value(1));
        assert_eq!(u[REQUESTS_CPU], Quantity::parse("500m").unwrap());
        assert_eq!(u[LIMITS_MEMORY], Quantity::parse("128Mi").unwrap());
        assert!(!u.contains_key(LIMITS_CPU));
    }

    #[test]
    fn should_not_count_finished_pods() {
        let mut p = pod("1", "1Gi");
        p.status = Some(PodStatus { phase: "Succeeded".into(), ..Default::default() });
        assert!(usage(&p.into_object()).is_empty());
    }

    #[test]
    fn should_sum_usage_under_the_names_the_quota_uses() {
        let hard: BTreeMap<String, String> = [("cpu".to_string(), "2".to_string()), ("pods".into(), "3".into())].into();
        let usages = [usage(&pod("250m", "1Mi").into_object()), usage(&pod("500m", "1Mi").into_object())];
        let used = sum_for(&hard, usages.iter());
        assert_eq!(used["cpu"], Quantity::parse("1500m").unwrap());
        assert_eq!(used["pods"], Quantity::from_value(2));
    }

    #[test]
    fn should_name_containers_that_leave_constrained_compute_unset() {
        let mut p = pod("250m", "1Mi");
        p.metadata_mut().name = "x".into();
        let missing = unspecified_compute(p.spec.as_ref().unwrap(), &[LIMITS_CPU, REQUESTS_CPU]);
        assert_eq!(missing, vec![(LIMITS_CPU.to_string(), "a".to_string()), (LIMITS_CPU.to_string(), "b".to_string())]);
    }
}
