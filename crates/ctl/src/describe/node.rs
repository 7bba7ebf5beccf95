//! The node view: taints, conditions, addresses, capacity, system info, and the pods on it
//! with what they request of the node.

use std::collections::BTreeMap;

use berth_api::Resource as _;
use berth_api::pb::core::{Node, ObjectMeta, Pod};
use berth_api::printers::{age, node_roles};
use berth_api::quantity::Quantity;
use chrono::{DateTime, Utc};

use super::{Doc, Related, labels_and_annotations, list, or_none, time};

pub(super) fn view(d: &mut Doc, n: &Node, related: &Related, now: DateTime<Utc>) {
    let empty = ObjectMeta::default();
    let m = n.metadata.as_ref().unwrap_or(&empty);
    let spec = n.spec.clone().unwrap_or_default();
    let status = n.status.clone().unwrap_or_default();
    d.kv(0, "Name", &m.name);
    d.kv(0, "Roles", node_roles(&m.labels));
    labels_and_annotations(d, m);
    d.kv(0, "CreationTimestamp", time(&m.creation_timestamp));
    let taints: Vec<String> = spec
        .taints
        .iter()
        .map(|t| if t.value.is_empty() { format!("{}:{}", t.key, t.effect) } else { format!("{}={}:{}", t.key, t.value, t.effect) })
        .collect();
    list(d, 0, "Taints", &taints);
    d.kv(0, "Unschedulable", spec.unschedulable.unwrap_or(false));
    if status.conditions.is_empty() {
        d.kv(0, "Conditions", "<none>");
    } else {
        d.line(0, "Conditions:");
        d.line(2, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage");
        d.line(2, "----\t------\t-----------------\t------------------\t------\t-------");
        for c in &status.conditions {
            d.line(
                2,
                format!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    c.r#type,
                    c.status,
                    time(&c.last_heartbeat_time),
                    time(&c.last_transition_time),
                    c.reason,
                    c.message
                ),
            );
        }
    }
    if status.addresses.is_empty() {
        d.kv(0, "Addresses", "<none>");
    } else {
        d.line(0, "Addresses:");
        for a in &status.addresses {
            d.kv(2, &a.r#type, &a.address);
        }
    }
    if !status.capacity.is_empty() {
        d.section(0, "Capacity", &status.capacity);
    }
    if !status.allocatable.is_empty() {
        d.section(0, "Allocatable", &status.allocatable);
    }
    if let Some(i) = &status.node_info {
        d.line(0, "System Info:");
        for (k, v) in [
            ("Machine ID", &i.machine_id),
            ("System UUID", &i.system_uuid),
            ("Boot ID", &i.boot_id),
            ("Kernel Version", &i.kernel_version),
            ("OS Image", &i.os_image),
            ("Operating System", &i.operating_system),
            ("Architecture", &i.architecture),
            ("Container Runtime Version", &i.container_runtime_version),
            ("Kubelet Version", &i.kubelet_version),
            ("Kube-Proxy Version", &i.kube_proxy_version),
        ] {
            d.kv(2, k, v);
        }
    }
    d.kv(0, "PodCIDR", or_none(&spec.pod_cidr));
    if let Some(pods) = &related.pods {
        node_pods(d, pods, &status.allocatable, now);
    }
}

/// kubectl's `Non-terminated Pods` and `Allocated resources`: what each pod
/// on the node requests and is limited to, and the sums, as a share of the
/// node's allocatable resources.
fn node_pods(d: &mut Doc, pods: &[Pod], allocatable: &BTreeMap<String, String>, now: DateTime<Utc>) {
    let share = |q: &Quantity, resource: &str| {
        let of = allocatable.get(resource).and_then(|a| Quantity::parse(a).ok()).map(|a| a.milli_value()).unwrap_or(0);
        let percent = (q.milli_value() as i128 * 100).checked_div(of as i128).unwrap_or(0);
        format!("{q} ({percent}%)")
    };
    const COLUMNS: [(&str, &str); 4] =
        [("requests.cpu", "cpu"), ("limits.cpu", "cpu"), ("requests.memory", "memory"), ("limits.memory", "memory")];
    d.kv(0, "Non-terminated Pods", format!("({} in total)", pods.len()));
    d.line(2, "Namespace\tName\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge");
    d.line(2, "---------\t----\t------------\t----------\t---------------\t-------------\t---");
    let mut total = berth_api::quota::Usage::new();
    for p in pods {
        let compute = p.spec.as_ref().map(berth_api::quota::pod_compute).unwrap_or_default();
        let cells: Vec<String> = COLUMNS.iter().map(|(key, res)| share(&compute.get(*key).cloned().unwrap_or_default(), res)).collect();
        for (k, q) in compute {
            *total.entry(k).or_default() += q;
        }
        let m = p.meta();
        d.line(2, format!("{}\t{}\t{}\t{}", m.namespace, m.name, cells.join("\t"), age(&m.creation_timestamp, now)));
    }
    d.line(0, "Allocated resources:");
    d.line(2, "(Total limits may be over 100 percent, i.e., overcommitted.)");
    d.line(2, "Resource\tRequests\tLimits");
    d.line(2, "--------\t--------\t------");
    for res in ["cpu", "memory"] {
        let get = |kind: &str| total.get(&format!("{kind}.{res}")).cloned().unwrap_or_default();
        d.line(2, format!("{res}\t{}\t{}", share(&get("requests"), res), share(&get("limits"), res)));
    }
}
