//! Pods: the pod spec and status, and the few fields an update may change.
//!
//! The parts of a pod spec have their own modules: `container` (one
//! container), `env` (its environment variables), `probe` (probes and
//! lifecycle handlers), `volume` (volumes, and the path rules mounts share)
//! and `scheduling` (tolerations, node affinity). This module holds the
//! pod-level fields (restart and DNS policies, dnsConfig, security context,
//! names of nodes, service accounts and schedulers), host ports unique across
//! containers, the status, and updates.

mod container;
mod env;
mod probe;
mod scheduling;
#[cfg(test)]
mod tests;
mod volume;

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use self::container::{ContainerCtx, container};
use self::scheduling::{node_affinity, tolerations};
use self::volume::volumes;
use super::meta::{NameRule, labels, object_meta};
use super::{Check, Rendered, at, idx};
use crate::names;
use crate::pb::core::{Pod, PodSpec, PodStatus};

pub(super) fn pod(c: &mut Check, p: &Pod) {
    object_meta(c, p.metadata.as_ref(), true, NameRule::Subdomain);
    let empty = PodSpec::default();
    pod_spec(c, p.spec.as_ref().unwrap_or(&empty), "spec");
    if let Some(s) = &p.status {
        pod_status(c, s);
    }
}

fn pod_status(c: &mut Check, s: &PodStatus) {
    c.one_of("status.phase", &s.phase, &["Pending", "Running", "Succeeded", "Failed", "Unknown"], false);
    c.one_of("status.qosClass", &s.qos_class, &["Guaranteed", "Burstable", "BestEffort"], false);
    for (path, ip) in [("status.podIP", &s.pod_ip), ("status.hostIP", &s.host_ip)] {
        if !ip.is_empty() {
            c.invalid_all(path, ip, names::ip_address(ip));
        }
    }
    let mut seen = HashSet::new();
    for (i, ip) in s.pod_ips.iter().enumerate() {
        let p = at(&idx("status.podIPs", i), "ip");
        c.invalid_all(&p, &ip.ip, names::ip_address(&ip.ip));
        if !seen.insert(ip.ip.as_str()) {
            c.duplicate(&p, &ip.ip);
        }
    }
    if !s.nominated_node_name.is_empty() {
        c.invalid_all("status.nominatedNodeName", &s.nominated_node_name, names::dns1123_subdomain(&s.nominated_node_name));
    }
}

pub(super) fn pod_spec(c: &mut Check, s: &PodSpec, p: &str) {
    let vols_path = at(p, "volumes");
    let volumes = volumes(c, &s.volumes, &vols_path);
    if s.containers.is_empty() {
        c.required(&at(p, "containers"), "");
    }
    let ctx = ContainerCtx { volumes: &volumes, volumes_path: &vols_path, host_network: s.host_network == Some(true) };
    let mut names_seen = HashSet::new();
    let mut host_ports = HashSet::new();
    let groups = [("initContainers", &s.init_containers, true), ("containers", &s.containers, false)];
    for (field, list, init) in groups {
        for (i, ctr) in list.iter().enumerate() {
            let cp = idx(&at(p, field), i);
            container(c, ctr, &cp, init, &ctx, &mut names_seen);
            // Host ports are unique across the pod's containers.
            for (j, port) in ctr.ports.iter().enumerate() {
                if port.host_port == 0 {
                    continue;
                }
                let k = format!("{}/{}/{}", port.protocol, port.host_ip, port.host_port);
                if !host_ports.insert(k.clone()) {
                    c.duplicate(&at(&idx(&at(&cp, "ports"), j), "hostPort"), k);
                }
            }
        }
    }
    c.one_of(&at(p, "restartPolicy"), &s.restart_policy, &["Always", "OnFailure", "Never"], true);
    c.one_of(&at(p, "dnsPolicy"), &s.dns_policy, &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"], false);
    if let Some(v) = s.termination_grace_period_seconds {
        c.non_negative(&at(p, "terminationGracePeriodSeconds"), v);
    }
    if let Some(v) = s.active_deadline_seconds
        && !(1..=MAX_INT32).contains(&v)
    {
        c.invalid(&at(p, "activeDeadlineSeconds"), v, "must be between 1 and 2147483647, inclusive");
    }
    labels(c, &at(p, "nodeSelector"), &s.node_selector);
    for (field, v) in [
        ("nodeName", &s.node_name),
        ("serviceAccountName", &s.service_account_name),
        ("schedulerName", &s.scheduler_name),
        ("priorityClassName", &s.priority_class_name),
    ] {
        if !v.is_empty() {
            c.invalid_all(&at(p, field), v, names::dns1123_subdomain(v));
        }
    }
    for (field, v) in [("hostname", &s.hostname), ("subdomain", &s.subdomain)] {
        if !v.is_empty() {
            c.invalid_all(&at(p, field), v, names::dns1123_label(v));
        }
    }
    for (i, r) in s.image_pull_secrets.iter().enumerate() {
        if r.name.is_empty() {
            c.required(&at(&idx(&at(p, "imagePullSecrets"), i), "name"), "");
        }
    }
    dns_config(c, s, p);
    if let Some(sc) = &s.security_context {
        let sp = at(p, "securityContext");
        id_range(c, &at(&sp, "runAsUser"), sc.run_as_user);
        id_range(c, &at(&sp, "runAsGroup"), sc.run_as_group);
        id_range(c, &at(&sp, "fsGroup"), sc.fs_group);
        for (i, g) in sc.supplemental_groups.iter().enumerate() {
            id_range(c, &idx(&at(&sp, "supplementalGroups"), i), Some(*g));
        }
    }
    if let Some(na) = s.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) {
        node_affinity(c, na, &at(&at(p, "affinity"), "nodeAffinity"));
    }
    tolerations(c, &s.tolerations, &at(p, "tolerations"));
}

/// The largest int32: the bound of user and group ids and of deadlines.
const MAX_INT32: i64 = i32::MAX as i64;

/// A user or group id: 0 to 2147483647.
fn id_range(c: &mut Check, field: &str, v: Option<i64>) {
    if let Some(v) = v
        && !(0..=MAX_INT32).contains(&v)
    {
        c.invalid(field, v, "must be between 0 and 2147483647, inclusive");
    }
}

/// Most nameservers and search domains a resolv.conf may have (Kubernetes' limits).
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCHES: usize = 32;
const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;

/// spec.dnsConfig, as Kubernetes checks it: required with at least one
/// nameserver under dnsPolicy None; at most 3 nameservers, each an IP; at
/// most 32 search domains (2048 characters in all), each a DNS subdomain;
/// options with names.
fn dns_config(c: &mut Check, s: &PodSpec, p: &str) {
    let dp = at(p, "dnsConfig");
    let Some(d) = &s.dns_config else {
        if s.dns_policy == "None" {
            c.required(&dp, "must provide `dnsConfig` when `dnsPolicy` is None");
        }
        return;
    };
    if s.dns_policy == "None" && d.nameservers.is_empty() {
        c.required(&at(&dp, "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None");
    }
    let list = |v: &[String]| Rendered(format!("[{}]", v.join(" ")));
    if d.nameservers.len() > MAX_DNS_NAMESERVERS {
        c.invalid(&at(&dp, "nameservers"), list(&d.nameservers), format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"));
    }
    for (i, ns) in d.nameservers.iter().enumerate() {
        if ns.parse::<IpAddr>().is_err() {
            c.invalid(&idx(&at(&dp, "nameservers"), i), ns, "must be a valid IP address");
        }
    }
    if d.searches.len() > MAX_DNS_SEARCHES {
        c.invalid(&at(&dp, "searches"), list(&d.searches), format!("must not have more than {MAX_DNS_SEARCHES} search paths"));
    }
    if d.searches.iter().map(|x| x.len() + 1).sum::<usize>().saturating_sub(1) > MAX_DNS_SEARCH_LIST_CHARS {
        c.invalid(
            &at(&dp, "searches"),
            list(&d.searches),
            format!("must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list"),
        );
    }
    for (i, search) in d.searches.iter().enumerate() {
        // A trailing dot (a fully qualified name) is allowed.
        let name = search.strip_suffix('.').unwrap_or(search);
        c.invalid_all(&idx(&at(&dp, "searches"), i), search, names::dns1123_subdomain(name));
    }
    for (i, o) in d.options.iter().enumerate() {
        if o.name.is_empty() {
            c.required(&at(&idx(&at(&dp, "options"), i), "name"), "");
        }
    }
}

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than spec.containers[*].image, spec.initContainers[*].image, spec.activeDeadlineSeconds, spec.tolerations (only additions to existing tolerations) or spec.terminationGracePeriodSeconds";

pub(super) fn pod_update(c: &mut Check, old: &Pod, new: &Pod) {
    let empty = PodSpec::default();
    let (o, n) = (old.spec.as_ref().unwrap_or(&empty), new.spec.as_ref().unwrap_or(&empty));
    // The old spec with what may change taken from the new one: anything
    // else that differs is forbidden.
    let mut munged = o.clone();
    if munged.containers.len() == n.containers.len() {
        for (m, x) in munged.containers.iter_mut().zip(&n.containers) {
            m.image = x.image.clone();
        }
    }
    if munged.init_containers.len() == n.init_containers.len() {
        for (m, x) in munged.init_containers.iter_mut().zip(&n.init_containers) {
            m.image = x.image.clone();
        }
    }
    munged.active_deadline_seconds = n.active_deadline_seconds;
    munged.tolerations = n.tolerations.clone();
    munged.termination_grace_period_seconds = n.termination_grace_period_seconds;
    if o.node_name.is_empty() {
        // Binding: nodeName may be set once.
        munged.node_name = n.node_name.clone();
    }
    if munged != *n {
        let changed = changed_fields(&munged, n);
        let detail = if changed.is_empty() {
            POD_UPDATE_FORBIDDEN.to_string()
        } else {
            format!("{POD_UPDATE_FORBIDDEN} (changed: {})", changed.join(", "))
        };
        c.forbidden("spec", detail);
    }
    match (o.active_deadline_seconds, n.active_deadline_seconds) {
        (Some(ov), Some(nv)) if nv > ov => c.invalid("spec.activeDeadlineSeconds", nv, "must be less than or equal to previous value"),
        (Some(_), None) => {
            c.invalid("spec.activeDeadlineSeconds", Rendered("null".into()), "must not update from a positive integer to nil value")
        }
        _ => {}
    }
    // Tolerations may be added; existing ones may change only tolerationSeconds.
    for ot in &o.tolerations {
        let kept =
            n.tolerations.iter().any(|nt| nt.key == ot.key && nt.operator == ot.operator && nt.value == ot.value && nt.effect == ot.effect);
        if !kept {
            c.forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds");
            break;
        }
    }
}

/// The top-level fields of two pod specs that differ, as `spec.<field>`.
fn changed_fields(a: &PodSpec, b: &PodSpec) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).map(|k| format!("spec.{k}")).collect()
}
