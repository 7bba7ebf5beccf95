//! The readable multi-line view of `describe`: metadata, the fields that
//! matter for each kind (every kind the API serves has its own view), and the
//! object's events, aligned like kubectl's.
//!
//! # Layout
//! - `mod.rs`: what `describe` is given ([`Related`]), the dispatch to each kind's view, the
//!   document the views write into (`Doc`) with the sections they share (header, labels and
//!   annotations, lists, timestamps) and the events section every view ends with.
//! - one module per kind's view, named after the kind: `pod` (with `container`, the
//!   containers section it shares with `replication_controller`), `service`, `endpoints`,
//!   `node`, `namespace`, `resource_quota`, `limit_range`, `secret`, `config_map`, `event`,
//!   `lease`, `service_account`, and `rbac` for roles and their bindings. Each has a `view`
//!   (`rbac`: `role` and `binding`) that writes the kind's fields into the `Doc`.

mod config_map;
mod container;
mod endpoints;
mod event;
mod lease;
mod limit_range;
mod namespace;
mod node;
mod pod;
mod rbac;
mod replication_controller;
mod resource_quota;
mod secret;
mod service;
mod service_account;

use std::collections::BTreeMap;
use std::fmt::Display;

use berth_api::Object;
use berth_api::pb::api::object::Kind as K;
use berth_api::pb::core::{Endpoints, Event, LimitRange, ObjectMeta, Pod, ResourceQuota};
use berth_api::printers::event_age;
use chrono::{DateTime, Utc};

use crate::merge::LAST_APPLIED;
use crate::tabwriter;

/// What `describe` shows besides the object itself.
#[derive(Debug, Clone, Default)]
pub struct Related {
    /// Events about the object, oldest first.
    pub events: Vec<Event>,
    /// For a replication controller: the pods its selector matches; for a
    /// node: the pods bound to it that have not finished.
    pub pods: Option<Vec<Pod>>,
    /// For a service: its endpoints.
    pub endpoints: Option<Endpoints>,
    /// For a namespace: its resource quotas and limit ranges.
    pub quotas: Vec<ResourceQuota>,
    pub limit_ranges: Vec<LimitRange>,
}

/// Whether an event is about `object`.
pub fn is_about(ev: &Event, object: &Object) -> bool {
    let Some(io) = &ev.involved_object else { return false };
    let uid = object.metadata().map(|m| m.uid.as_str()).unwrap_or("");
    io.kind == object.kind_name()
        && io.name == object.name()
        && (io.namespace.is_empty() || io.namespace == object.namespace())
        && (io.uid.is_empty() || uid.is_empty() || io.uid == uid)
}

/// The description of one object.
pub fn describe(object: &Object, related: &Related, now: DateTime<Utc>) -> String {
    let mut d = Doc::default();
    let empty = ObjectMeta::default();
    let meta = object.metadata().unwrap_or(&empty);
    match &object.kind {
        Some(K::Pod(p)) => pod::view(&mut d, p, now),
        Some(K::ReplicationController(rc)) => replication_controller::view(&mut d, rc, related),
        Some(K::Service(s)) => service::view(&mut d, s, related),
        Some(K::Node(n)) => node::view(&mut d, n, related, now),
        Some(K::Namespace(n)) => namespace::view(&mut d, n, related),
        Some(K::Secret(s)) => secret::view(&mut d, s),
        Some(K::ConfigMap(c)) => config_map::view(&mut d, c),
        Some(K::Endpoints(e)) => endpoints::view(&mut d, e),
        Some(K::ResourceQuota(q)) => resource_quota::view(&mut d, q),
        Some(K::LimitRange(l)) => limit_range::view(&mut d, l),
        Some(K::Event(e)) => event::view(&mut d, e),
        Some(K::Lease(l)) => lease::view(&mut d, l),
        Some(K::ServiceAccount(sa)) => service_account::view(&mut d, sa),
        Some(K::Role(r)) => rbac::role(&mut d, meta, &r.rules),
        Some(K::ClusterRole(r)) => rbac::role(&mut d, meta, &r.rules),
        Some(K::RoleBinding(b)) => rbac::binding(&mut d, meta, b.role_ref.as_ref(), &b.subjects),
        Some(K::ClusterRoleBinding(b)) => rbac::binding(&mut d, meta, b.role_ref.as_ref(), &b.subjects),
        None => header(&mut d, meta),
    }
    events(&mut d, &related.events, now);
    tabwriter::align(&d.text, 2)
}

/// Lines with tab-separated cells, aligned at the end.
#[derive(Default)]
struct Doc {
    text: String,
}

impl Doc {
    fn line(&mut self, indent: usize, s: impl Display) {
        self.text.push_str(&format!("{:indent$}{s}\n", ""));
    }
    fn kv(&mut self, indent: usize, key: &str, value: impl Display) {
        self.text.push_str(&format!("{:indent$}{key}:\t{value}\n", ""));
    }
    /// `Key:` then `k=v` lines (or `<none>`), each value in the value column.
    fn map(&mut self, indent: usize, key: &str, map: &BTreeMap<String, String>, sep: &str) {
        if map.is_empty() {
            return self.kv(indent, key, "<none>");
        }
        for (i, (k, v)) in map.iter().enumerate() {
            let cell = if i == 0 { format!("{key}:") } else { String::new() };
            self.text.push_str(&format!("{:indent$}{cell}\t{k}{sep}{v}\n", ""));
        }
    }
    /// `Key:` then `name:  value` lines one level deeper (or `Key:  <none>`).
    fn section(&mut self, indent: usize, key: &str, map: &BTreeMap<String, String>) {
        if map.is_empty() {
            return self.kv(indent, key, "<none>");
        }
        self.line(indent, format!("{key}:"));
        for (k, v) in map {
            self.kv(indent + 2, k, v);
        }
    }
}

fn header(d: &mut Doc, m: &ObjectMeta) {
    d.kv(0, "Name", &m.name);
    if !m.namespace.is_empty() {
        d.kv(0, "Namespace", &m.namespace);
    }
    labels_and_annotations(d, m);
}

fn labels_and_annotations(d: &mut Doc, m: &ObjectMeta) {
    d.map(0, "Labels", &m.labels, "=");
    let mut ann = m.annotations.clone();
    ann.remove(LAST_APPLIED);
    d.map(0, "Annotations", &ann, ": ");
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

/// A timestamp as kubectl's describe prints it (`Wed, 01 May 2024 12:00:00 +0000`).
fn time(ts: &str) -> String {
    match DateTime::parse_from_rfc3339(ts) {
        Ok(t) => t.format("%a, %d %b %Y %H:%M:%S %z").to_string(),
        Err(_) => ts.to_string(),
    }
}

fn selector_text(selector: &BTreeMap<String, String>) -> String {
    let s = selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    if s.is_empty() { "<none>".into() } else { s }
}

/// `Key:  first` then the others under it, or `Key:  <none>`.
fn list(d: &mut Doc, indent: usize, key: &str, items: &[String]) {
    if items.is_empty() {
        return d.kv(indent, key, "<none>");
    }
    for (i, item) in items.iter().enumerate() {
        let cell = if i == 0 { format!("{key}:") } else { String::new() };
        d.line(indent, format!("{cell}\t{item}"));
    }
}

fn events(d: &mut Doc, events: &[Event], now: DateTime<Utc>) {
    if events.is_empty() {
        return d.kv(0, "Events", "<none>");
    }
    d.line(0, "Events:");
    d.line(2, "Type\tReason\tAge\tFrom\tMessage");
    d.line(2, "----\t------\t----\t----\t-------");
    for ev in events {
        let when = event_age(ev, now);
        let from =
            ev.source.as_ref().map(|s| s.component.clone()).filter(|c| !c.is_empty()).unwrap_or_else(|| ev.reporting_component.clone());
        d.line(2, format!("{}\t{}\t{when}\t{from}\t{}", ev.r#type, ev.reason, ev.message.trim().replace('\t', " ")));
    }
}

/// The fixed "now" the views' tests describe objects at.
#[cfg(test)]
fn test_now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("valid").with_timezone(&Utc)
}
