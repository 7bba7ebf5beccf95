//! The Node authorizer: a kubelet (user `system:node:NAME` in group
//! `system:nodes`) may read only the secrets and configMaps that pods bound
//! to its node use, and write only its own Node, its own Lease and its own
//! pods (their status, and confirming their deletion). Reads of other kinds
//! are left to RBAC (the `system:node` role).

use berth_api::Resource;
use berth_api::pb::api::object::Kind;
use berth_api::pb::core::{Pod, PodSpec};

use super::{Attributes, Decision};
use crate::lister::Lister;
use crate::user::{NODE_LEASE_NAMESPACE, UserInfo};

const READS: &[&str] = &["get", "list", "watch"];

pub fn authorize(lister: &Lister, user: &UserInfo, a: &Attributes) -> Decision {
    let Some(node) = user.node_name() else { return Decision::NoOpinion };
    if !a.path.is_empty() || !a.api_group.is_empty() && a.api_group != "coordination.k8s.io" {
        return Decision::NoOpinion;
    }
    let deny = |why: String| Decision::Deny(format!("node {node:?} {why}"));
    let allow = |why: String| Decision::Allow(format!("node {node:?} {why}"));
    match (a.resource.as_str(), a.subresource.as_str()) {
        ("nodes", _) if READS.contains(&a.verb.as_str()) => Decision::NoOpinion,
        ("nodes", _) if a.name == node => allow("may write its own Node".into()),
        ("nodes", _) => deny(format!("may not {} Node {:?}: a node writes only its own Node object", a.verb, a.name)),
        ("leases", "") if a.namespace == NODE_LEASE_NAMESPACE && a.name == node => allow("may use its own Lease".into()),
        ("leases", _) => deny(format!("may use only its own Lease {NODE_LEASE_NAMESPACE}/{node}")),
        ("secrets" | "configmaps", "") => {
            if a.verb != "get" {
                return deny(format!("may only get the {} its pods use, not {} them", a.resource, a.verb));
            }
            if referenced(lister, node, &a.namespace, &a.resource, &a.name) {
                allow(format!("runs a pod that uses {} {}/{}", a.resource, a.namespace, a.name))
            } else {
                deny(format!("runs no pod that uses {} {}/{}", a.resource, a.namespace, a.name))
            }
        }
        ("pods", "") if READS.contains(&a.verb.as_str()) => Decision::NoOpinion,
        ("pods", "") | ("pods", "status") if matches!(a.verb.as_str(), "delete" | "update" | "patch") => {
            if a.subresource.is_empty() && a.verb != "delete" {
                return deny("may not change a pod's spec".into());
            }
            match bound_node(lister, &a.namespace, &a.name) {
                Some(n) if n == node => allow(format!("runs pod {}/{}", a.namespace, a.name)),
                _ => deny(format!("does not run pod {}/{}", a.namespace, a.name)),
            }
        }
        ("pods", _) => deny(format!("may not {} {}", a.verb, a.full_resource())),
        _ => Decision::NoOpinion,
    }
}

fn bound_node(lister: &Lister, namespace: &str, name: &str) -> Option<String> {
    match lister.get("Pod", namespace, name).ok()?.kind {
        Some(Kind::Pod(p)) => p.spec.map(|s| s.node_name),
        _ => None,
    }
}

/// Whether a pod bound to `node` in `namespace` uses the secret or configMap.
fn referenced(lister: &Lister, node: &str, namespace: &str, resource: &str, name: &str) -> bool {
    let Ok(pods) = lister.list_readable(&Pod::INFO, namespace) else { return false };
    pods.into_iter().any(|o| match o.kind {
        Some(Kind::Pod(p)) => p.spec.as_ref().is_some_and(|s| s.node_name == node && uses(s, resource, name)),
        _ => false,
    })
}

/// Whether a pod spec uses a secret (`resource == "secrets"`) or configMap by name.
pub fn uses(spec: &PodSpec, resource: &str, name: &str) -> bool {
    let secret = resource == "secrets";
    if secret && spec.image_pull_secrets.iter().any(|r| r.name == name) {
        return true;
    }
    let volumes = spec.volumes.iter().any(|v| {
        if secret {
            v.secret.as_ref().is_some_and(|s| s.secret_name == name)
        } else {
            v.config_map.as_ref().is_some_and(|c| c.name == name)
        }
    });
    let containers = spec.containers.iter().chain(spec.init_containers.iter()).any(|c| {
        c.env.iter().filter_map(|e| e.value_from.as_ref()).any(|f| {
            if secret {
                f.secret_key_ref.as_ref().is_some_and(|r| r.name == name)
            } else {
                f.config_map_key_ref.as_ref().is_some_and(|r| r.name == name)
            }
        }) || c.env_from.iter().any(|e| {
            if secret {
                e.secret_ref.as_ref().is_some_and(|r| r.name == name)
            } else {
                e.config_map_ref.as_ref().is_some_and(|r| r.name == name)
            }
        })
    });
    volumes || containers
}
