//! The tables of nodes, namespaces, events and leases.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{AGE, Cell, Column, NAME, NONE, age, column, meta, wide};
use crate::pb::core::{Event, Lease, Namespace, Node};

// --------------------------------------------------------------- nodes

pub(super) const NODE_COLUMNS: &[Column] = &[
    NAME,
    column("Status", "string", "Whether the node is ready, and whether it is cordoned."),
    column("Roles", "string", "The node's roles, from its node-role.kubernetes.io/ labels."),
    AGE,
    column("Version", "string", "The version of the node's kubelet (status.nodeInfo.kubeletVersion)."),
    wide("Internal-IP", "string", "The node's InternalIP addresses (status.addresses)."),
    wide("External-IP", "string", "The node's ExternalIP addresses (status.addresses)."),
    wide("OS-Image", "string", "The node's operating system (status.nodeInfo.osImage)."),
    wide("Kernel-Version", "string", "The node's kernel version (status.nodeInfo.kernelVersion)."),
    wide("Container-Runtime", "string", "The node's container runtime and its version (status.nodeInfo.containerRuntimeVersion)."),
];

pub(super) fn node_row(node: &Node, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&node.metadata);
    let status = node.status.clone().unwrap_or_default();
    let info = status.node_info.clone().unwrap_or_default();
    let address = |t: &str| {
        let a: Vec<_> = status.addresses.iter().filter(|a| a.r#type == t).map(|a| a.address.as_str()).collect();
        if a.is_empty() { NONE.to_string() } else { a.join(",") }
    };
    vec![
        m.name.clone().into(),
        node_status(node).into(),
        node_roles(&m.labels).into(),
        age(&m.creation_timestamp, now).into(),
        info.kubelet_version.clone().into(),
        address("InternalIP").into(),
        address("ExternalIP").into(),
        or_unknown(&info.os_image).into(),
        or_unknown(&info.kernel_version).into(),
        or_unknown(&info.container_runtime_version).into(),
    ]
}

fn or_unknown(s: &str) -> String {
    if s.is_empty() { "<unknown>".to_string() } else { s.to_string() }
}

/// Ready, NotReady or Unknown, with `,SchedulingDisabled` for a cordoned node.
pub fn node_status(node: &Node) -> String {
    let status = node.status.clone().unwrap_or_default();
    let mut s = match status.conditions.iter().find(|c| c.r#type == "Ready").map(|c| c.status.as_str()) {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        s.push_str(",SchedulingDisabled");
    }
    s
}

/// The roles of a node from its labels (`node-role.kubernetes.io/<role>`,
/// `kubernetes.io/role=<role>`), sorted and comma-separated, or `<none>`.
pub fn node_roles(labels: &BTreeMap<String, String>) -> String {
    let mut roles: Vec<&str> = Vec::new();
    for (k, v) in labels {
        if let Some(r) = k.strip_prefix("node-role.kubernetes.io/") {
            if !r.is_empty() {
                roles.push(r);
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.push(v);
        }
    }
    roles.sort();
    roles.dedup();
    if roles.is_empty() { NONE.to_string() } else { roles.join(",") }
}

// ---------------------------------------------------------- namespaces

pub(super) const NAMESPACE_COLUMNS: &[Column] =
    &[NAME, column("Status", "string", "Active, or Terminating while the namespace's objects are deleted (status.phase)."), AGE];

pub(super) fn namespace_row(ns: &Namespace, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&ns.metadata);
    let phase = ns.status.as_ref().map(|s| s.phase.as_str()).filter(|p| !p.is_empty()).unwrap_or("Active");
    vec![m.name.clone().into(), phase.into(), age(&m.creation_timestamp, now).into()]
}

// -------------------------------------------------------------- events

pub(super) const EVENT_COLUMNS: &[Column] = &[
    column("Last Seen", "string", "How long ago the event last happened, and how often over how long when it repeated."),
    column("Type", "string", "Normal or Warning."),
    column("Reason", "string", "Why the event happened, in one CamelCase word."),
    column("Object", "string", "The object the event is about, as kind/name."),
    wide("Subobject", "string", "The part of the object the event is about (involvedObject.fieldPath)."),
    wide("Source", "string", "The component (and host) that reported the event."),
    column("Message", "string", "What happened, for humans."),
    wide("First Seen", "string", "How long ago the event first happened."),
    wide("Count", "integer", "How many times the event happened."),
    Column { priority: 1, ..NAME },
];

pub(super) fn event_row(ev: &Event, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&ev.metadata);
    let io = ev.involved_object.clone().unwrap_or_default();
    let last = event_last_seen(ev);
    let object = format!("{}/{}", io.kind.to_ascii_lowercase(), io.name);
    let source = ev.source.clone().unwrap_or_default();
    let source = match (source.component.is_empty(), source.host.is_empty()) {
        (false, false) => format!("{}, {}", source.component, source.host),
        (false, true) => source.component,
        _ => ev.reporting_component.clone(),
    };
    vec![
        event_age(ev, now).into(),
        ev.r#type.clone().into(),
        ev.reason.clone().into(),
        object.into(),
        io.field_path.into(),
        source.into(),
        ev.message.trim().into(),
        age(if ev.first_timestamp.is_empty() { last } else { &ev.first_timestamp }, now).into(),
        Cell::Int(i64::from(ev.count.max(1))),
        m.name.clone().into(),
    ]
}

/// How long ago an event was last seen, with how often over how long when
/// it repeated: `10s`, `10s (x2 over 10m)` (the Last Seen cell, and
/// describe's Age).
pub fn event_age(ev: &Event, now: DateTime<Utc>) -> String {
    let last_seen = age(event_last_seen(ev), now);
    if ev.count > 1 && !ev.first_timestamp.is_empty() {
        format!("{last_seen} (x{} over {})", ev.count, age(&ev.first_timestamp, now))
    } else {
        last_seen
    }
}

/// When an event was last seen: lastTimestamp, else eventTime, else its creation.
pub fn event_last_seen(ev: &Event) -> &str {
    if !ev.last_timestamp.is_empty() {
        &ev.last_timestamp
    } else if !ev.event_time.is_empty() {
        &ev.event_time
    } else {
        ev.metadata.as_ref().map(|m| m.creation_timestamp.as_str()).unwrap_or("")
    }
}

// -------------------------------------------------------------- leases

pub(super) const LEASE_COLUMNS: &[Column] = &[NAME, column("Holder", "string", "Who holds the lease (spec.holderIdentity)."), AGE];

pub(super) fn lease_row(lease: &Lease, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&lease.metadata);
    let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
    vec![m.name.clone().into(), holder.into(), age(&m.creation_timestamp, now).into()]
}
