//! The tables of pods (with kubectl's derived status) and replication controllers.

use chrono::{DateTime, Utc};

use super::{AGE, Cell, Column, NAME, NONE, age, column, labels_column, meta, or_none, wide};
use crate::pb::core::{ContainerStatus, Pod, ReplicationController};

pub(super) const POD_COLUMNS: &[Column] = &[
    NAME,
    column("Ready", "string", "How many of the pod's containers are ready, of how many."),
    column("Status", "string", "The pod's state as kubectl sums it up from its phase and its containers' states."),
    column("Restarts", "string", "How many times the pod's containers have restarted, and how long ago the last one did."),
    AGE,
    wide("IP", "string", "The pod's IP address (status.podIP)."),
    wide("Node", "string", "The node the pod is bound to (spec.nodeName)."),
    wide("Nominated Node", "string", "The node a preempting pod is expected to run on (status.nominatedNodeName)."),
    wide("Readiness Gates", "string", "How many of the pod's readiness gates are satisfied, of how many."),
];

pub(super) fn pod_row(pod: &Pod, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&pod.metadata);
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let summary = pod_summary(pod);
    let mut restarts = summary.restarts.to_string();
    if let Some(last) = summary.last_restart.filter(|_| summary.restarts > 0) {
        restarts = format!("{restarts} ({} ago)", age(&last, now));
    }
    vec![
        m.name.clone().into(),
        format!("{}/{}", summary.ready, spec.containers.len()).into(),
        summary.status.into(),
        restarts.into(),
        age(&m.creation_timestamp, now).into(),
        or_none(&status.pod_ip).into(),
        or_none(&spec.node_name).into(),
        or_none(&status.nominated_node_name).into(),
        // Berth's pods have no readiness gates.
        NONE.into(),
    ]
}

/// What `kubectl get pods` derives from a pod's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSummary {
    /// Running, Pending, ContainerCreating, CrashLoopBackOff, Init:0/1, Terminating, ...
    pub status: String,
    pub ready: usize,
    pub restarts: i64,
    /// When a container last terminated (RFC 3339), for "3 (5m ago)".
    pub last_restart: Option<String>,
}

/// kubectl's pod status column: the most telling reason among the pod's,
/// its init containers' and its containers'.
pub fn pod_summary(pod: &Pod) -> PodSummary {
    let m = meta(&pod.metadata);
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let mut reason = if status.reason.is_empty() { status.phase.clone() } else { status.reason.clone() };
    let mut restarts: i64 = 0;
    let mut ready = 0;
    let mut last_restart: Option<String> = None;
    let mut note_restart = |cs: &ContainerStatus| {
        let finished = cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.finished_at.as_str());
        if let Some(f) = finished.filter(|f| !f.is_empty() && last_restart.as_deref().is_none_or(|l| *f > l)) {
            last_restart = Some(f.to_string());
        }
    };

    let mut initializing = false;
    for (i, cs) in status.init_container_statuses.iter().enumerate() {
        restarts += i64::from(cs.restart_count);
        note_restart(cs);
        let state = cs.state.clone().unwrap_or_default();
        if let Some(t) = &state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            reason = if !t.reason.is_empty() {
                format!("Init:{}", t.reason)
            } else if t.signal != 0 {
                format!("Init:Signal:{}", t.signal)
            } else {
                format!("Init:ExitCode:{}", t.exit_code)
            };
        } else if let Some(w) = state.waiting.as_ref().filter(|w| !w.reason.is_empty() && w.reason != "PodInitializing") {
            reason = format!("Init:{}", w.reason);
        } else {
            reason = format!("Init:{}/{}", i, spec.init_containers.len());
        }
        initializing = true;
        break;
    }

    if !initializing {
        restarts = 0;
        let mut has_running = false;
        for cs in status.container_statuses.iter().rev() {
            restarts += i64::from(cs.restart_count);
            note_restart(cs);
            let state = cs.state.clone().unwrap_or_default();
            if let Some(w) = state.waiting.as_ref().filter(|w| !w.reason.is_empty()) {
                reason = w.reason.clone();
            } else if let Some(t) = &state.terminated {
                reason = if !t.reason.is_empty() {
                    t.reason.clone()
                } else if t.signal != 0 {
                    format!("Signal:{}", t.signal)
                } else {
                    format!("ExitCode:{}", t.exit_code)
                };
            } else if cs.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = status.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True");
            reason = if pod_ready { "Running".into() } else { "NotReady".into() };
        }
    }

    if !m.deletion_timestamp.is_empty() {
        reason = if status.reason == "NodeLost" { "Unknown".into() } else { "Terminating".into() };
    }
    if reason.is_empty() {
        reason = "Pending".into();
    }
    PodSummary { status: reason, ready, restarts, last_restart }
}

pub(super) const RC_COLUMNS: &[Column] = &[
    NAME,
    column("Desired", "integer", "How many pods the controller keeps running (spec.replicas)."),
    column("Current", "integer", "How many pods the controller has now (status.replicas)."),
    column("Ready", "integer", "How many of its pods are ready (status.readyReplicas)."),
    AGE,
    wide("Containers", "string", "The names of the containers in the pod template."),
    wide("Images", "string", "The images of the containers in the pod template."),
    wide("Selector", "string", "The labels the controller's pods carry (spec.selector)."),
];

pub(super) fn rc_row(rc: &ReplicationController, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&rc.metadata);
    let spec = rc.spec.clone().unwrap_or_default();
    let status = rc.status.clone().unwrap_or_default();
    let containers = spec.template.as_ref().and_then(|t| t.spec.as_ref()).map(|s| s.containers.clone()).unwrap_or_default();
    vec![
        m.name.clone().into(),
        Cell::Int(i64::from(spec.replicas.unwrap_or(1))),
        Cell::Int(i64::from(status.replicas)),
        Cell::Int(i64::from(status.ready_replicas)),
        age(&m.creation_timestamp, now).into(),
        containers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(",").into(),
        containers.iter().map(|c| c.image.as_str()).collect::<Vec<_>>().join(",").into(),
        labels_column(Some(&spec.selector)).into(),
    ]
}
