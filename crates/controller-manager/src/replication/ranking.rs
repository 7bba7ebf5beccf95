//! Which pods a scale-down removes first: the least valuable ones —
//! unscheduled before scheduled, pending before running, not ready before
//! ready, most restarts first, newest first (Kubernetes' ActivePods order).

use std::cmp::Ordering;
use std::sync::Arc;

use berth_api::Resource;
use berth_api::pb::core::Pod;

use crate::pods;

fn phase_rank(pod: &Pod) -> u8 {
    match pods::phase(pod) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

/// Orders `a` before `b` when `a` should be deleted first.
pub fn delete_first(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| !pods::node_name(p).is_empty();
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| pods::is_ready(a).cmp(&pods::is_ready(b)))
        .then_with(|| pods::restarts(b).cmp(&pods::restarts(a)))
        .then_with(|| created(b).cmp(&created(a)))
        .then_with(|| a.name().cmp(b.name()))
}

fn created(p: &Pod) -> i64 {
    crate::controller::parse_time(&p.meta().creation_timestamp).map(|t| t.timestamp()).unwrap_or(0)
}

/// The `n` pods to delete, least valuable first.
pub fn victims(mut pods: Vec<Arc<Pod>>, n: usize) -> Vec<Arc<Pod>> {
    pods.sort_by(|a, b| delete_first(a, b));
    pods.truncate(n);
    pods
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::pb::core::{ContainerStatus, ObjectMeta, PodCondition, PodSpec, PodStatus};

    fn pod(name: &str, node: &str, phase: &str, ready: bool, restarts: i32, created: &str) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: Some(ObjectMeta { name: name.into(), creation_timestamp: created.into(), ..Default::default() }),
            spec: Some(PodSpec { node_name: node.into(), ..Default::default() }),
            status: Some(PodStatus {
                phase: phase.into(),
                conditions: vec![PodCondition {
                    r#type: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }],
                container_statuses: vec![ContainerStatus { restart_count: restarts, ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn should_remove_the_least_valuable_pods_first() {
        let t0 = "2024-01-01T00:00:00Z";
        let t1 = "2024-01-01T00:01:00Z";
        let all = vec![
            pod("ready-old", "n1", "Running", true, 0, t0),
            pod("ready-new", "n1", "Running", true, 0, t1),
            pod("ready-restarting", "n1", "Running", true, 5, t0),
            pod("running-not-ready", "n1", "Running", false, 0, t0),
            pod("pending", "n1", "Pending", false, 0, t0),
            pod("unscheduled", "", "Pending", false, 0, t0),
        ];
        let order: Vec<String> = victims(all, 6).iter().map(|p| p.name().to_string()).collect();
        assert_eq!(order, ["unscheduled", "pending", "running-not-ready", "ready-restarting", "ready-new", "ready-old"]);
    }
}
