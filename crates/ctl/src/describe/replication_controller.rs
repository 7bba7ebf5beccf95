//! The replication controller view: replicas, the pods it selects, and its pod template.

use berth_api::pb::core::{ObjectMeta, ReplicationController};

use super::container::containers;
use super::{Doc, Related, labels_and_annotations, selector_text};

pub(super) fn view(d: &mut Doc, rc: &ReplicationController, related: &Related) {
    let empty = ObjectMeta::default();
    let m = rc.metadata.as_ref().unwrap_or(&empty);
    let spec = rc.spec.clone().unwrap_or_default();
    let status = rc.status.clone().unwrap_or_default();
    d.kv(0, "Name", &m.name);
    d.kv(0, "Namespace", &m.namespace);
    d.kv(0, "Selector", selector_text(&spec.selector));
    labels_and_annotations(d, m);
    d.kv(0, "Replicas", format!("{} current / {} desired", status.replicas, spec.replicas.unwrap_or(1)));
    if let Some(pods) = &related.pods {
        let count = |phase: &str| pods.iter().filter(|p| p.status.as_ref().is_some_and(|s| s.phase == phase)).count();
        let waiting = pods.iter().filter(|p| p.status.as_ref().is_none_or(|s| s.phase.is_empty() || s.phase == "Pending")).count();
        d.kv(
            0,
            "Pods Status",
            format!("{} Running / {} Waiting / {} Succeeded / {} Failed", count("Running"), waiting, count("Succeeded"), count("Failed")),
        );
    }
    let template = spec.template.clone().unwrap_or_default();
    let tmeta = template.metadata.clone().unwrap_or_default();
    let tspec = template.spec.clone().unwrap_or_default();
    d.line(0, "Pod Template:");
    d.map(2, "Labels", &tmeta.labels, "=");
    if !tmeta.annotations.is_empty() {
        d.map(2, "Annotations", &tmeta.annotations, ": ");
    }
    if !tspec.init_containers.is_empty() {
        containers(d, 2, "Init Containers", &tspec.init_containers, &[]);
    }
    containers(d, 2, "Containers", &tspec.containers, &[]);
    if !status.conditions.is_empty() {
        d.line(0, "Conditions:");
        d.line(2, "Type\tStatus\tReason");
        for c in &status.conditions {
            d.line(2, format!("{}\t{}\t{}", c.r#type, c.status, c.reason));
        }
    }
}
