//! Facts about pods and owner references that several controllers read
//! the same way: readiness, activity, restarts, the controller owner.

use berth_api::pb::core::{ObjectMeta, OwnerReference, Pod, PodCondition};

/// The pod's Ready condition, if it has one.
pub fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status.as_ref()?.conditions.iter().find(|c| c.r#type == "Ready")
}

/// Whether the pod reports Ready=True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// Whether the pod has been Ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i64, now: chrono::DateTime<chrono::Utc>) -> bool {
    let Some(c) = ready_condition(pod).filter(|c| c.status == "True") else { return false };
    if min_ready_seconds <= 0 {
        return true;
    }
    match crate::controller::parse_time(&c.last_transition_time) {
        Some(since) => since + chrono::Duration::seconds(min_ready_seconds) <= now,
        None => false,
    }
}

/// The pod's phase ("" when unknown to the server yet).
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("")
}

/// Whether the pod has finished for good (Succeeded or Failed).
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Whether deletion of the object has been requested.
pub fn is_deleting(meta: Option<&ObjectMeta>) -> bool {
    meta.is_some_and(|m| !m.deletion_timestamp.is_empty())
}

/// Whether the pod counts as one of its controller's replicas: not
/// finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && !is_deleting(pod.metadata.as_ref())
}

/// The sum of the pod's container restarts.
pub fn restarts(pod: &Pod) -> i64 {
    pod.status.as_ref().map(|s| s.container_statuses.iter().map(|c| c.restart_count as i64).sum()).unwrap_or(0)
}

/// The pod's node, "" when unscheduled.
pub fn node_name(pod: &Pod) -> &str {
    pod.spec.as_ref().map(|s| s.node_name.as_str()).unwrap_or("")
}

/// The owner reference marked `controller: true`, if any.
pub fn controller_ref(meta: Option<&ObjectMeta>) -> Option<&OwnerReference> {
    meta?.owner_references.iter().find(|r| r.controller == Some(true))
}
