//! Tables as `kubectl get` prints them: the columns of each kind, one row
//! per object, aligned like Go's tabwriter (padding 3, no trailing blanks).

use std::collections::BTreeMap;

use berth_api::pb::api::object::Kind as K;
use berth_api::pb::core::{
    ConfigMap, Endpoints, Event, LimitRange, Namespace, Node, ObjectMeta, Pod, ReplicationController, ResourceQuota, Secret, Service,
};
use berth_api::pb::core::{Lease, ServiceAccount};
use berth_api::{KindInfo, Object, RoleRef, Subject};
use chrono::{DateTime, Utc};

/// Shown where a value is absent, as kubectl does.
const NONE: &str = "<none>";

/// How a table is laid out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `-o wide`: the kind's extra columns.
    pub wide: bool,
    /// `-A`: a leading NAMESPACE column (namespaced kinds only).
    pub namespace_column: bool,
    /// `--show-labels`: a trailing LABELS column.
    pub show_labels: bool,
}

/// Rows of one kind under their headers.
#[derive(Debug, Clone)]
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    options: Options,
}

impl Table {
    /// An empty table with the columns of `info`'s kind.
    pub fn new(info: &KindInfo, options: Options) -> Table {
        let options = Options { namespace_column: options.namespace_column && info.namespaced, ..options };
        let mut headers: Vec<String> = Vec::new();
        if options.namespace_column {
            headers.push("NAMESPACE".into());
        }
        headers.extend(columns(info, options.wide).iter().map(|s| s.to_string()));
        if options.show_labels {
            headers.push("LABELS".into());
        }
        Table { headers, rows: Vec::new(), options }
    }

    /// The row of one object (with the namespace and labels columns the
    /// options ask for), without adding it.
    pub fn row(&self, object: &Object, now: DateTime<Utc>) -> Vec<String> {
        let mut row = Vec::new();
        if self.options.namespace_column {
            row.push(object.namespace().to_string());
        }
        row.extend(row_of(object, now, self.options.wide));
        if self.options.show_labels {
            row.push(labels_column(object.metadata().map(|m| &m.labels)));
        }
        row
    }

    pub fn push(&mut self, object: &Object, now: DateTime<Utc>) {
        let row = self.row(object, now);
        self.rows.push(row);
    }

    /// The width of each column: its widest cell plus padding (at least
    /// kubectl's minimum), the headers counted unless hidden.
    pub fn widths(&self, no_headers: bool) -> Vec<usize> {
        widths(&self.headers, &self.rows, no_headers)
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self, no_headers: bool) -> String {
        render_table(&self.headers, &self.rows, no_headers)
    }
}

/// The width of each column: its widest cell plus padding (at least
/// kubectl's minimum), the headers counted unless hidden.
pub fn widths(headers: &[String], rows: &[Vec<String>], no_headers: bool) -> Vec<usize> {
    let mut widths = vec![0; headers.len()];
    let header = (!no_headers).then_some(headers);
    for row in header.into_iter().chain(rows.iter().map(Vec::as_slice)) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    widths.iter().map(|w| (w + PADDING).max(MIN_WIDTH)).collect()
}

/// Any table as text (headers unless hidden, then the rows), aligned like
/// kubectl's: one line per row, each ending in a newline.
pub fn render_table(headers: &[String], rows: &[Vec<String>], no_headers: bool) -> String {
    let widths = widths(headers, rows, no_headers);
    let mut out = String::new();
    if !no_headers {
        out.push_str(&render_row(headers, &widths));
    }
    for row in rows {
        out.push_str(&render_row(row, &widths));
    }
    out
}

/// Spaces between columns, and the narrowest a column gets (kubectl's
/// tabwriter settings).
const PADDING: usize = 3;
const MIN_WIDTH: usize = 6;

/// One line of a table: every cell but the last padded to its column's width.
pub fn render_row(row: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, cell) in row.iter().enumerate() {
        line.push_str(cell);
        if i + 1 < row.len() {
            let width = widths.get(i).copied().unwrap_or(0).max(cell.chars().count() + PADDING);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
    }
    let trimmed = line.trim_end().len();
    line.truncate(trimmed);
    line.push('\n');
    line
}

/// The columns of a kind (without NAMESPACE and LABELS).
pub fn columns(info: &KindInfo, wide: bool) -> &'static [&'static str] {
    match (info.kind, wide) {
        ("Pod", false) => &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ("Pod", true) => &["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"],
        ("Node", false) => &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
        ("Node", true) => {
            &["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        }
        ("ReplicationController", false) => &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        ("ReplicationController", true) => &["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
        ("Service", false) => &["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
        ("Service", true) => &["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
        ("Endpoints", _) => &["NAME", "ENDPOINTS", "AGE"],
        ("Secret", _) => &["NAME", "TYPE", "DATA", "AGE"],
        ("ConfigMap", _) => &["NAME", "DATA", "AGE"],
        ("Namespace", _) => &["NAME", "STATUS", "AGE"],
        ("ResourceQuota", _) => &["NAME", "AGE", "REQUEST", "LIMIT"],
        ("LimitRange", _) => &["NAME", "CREATED AT"],
        ("Event", false) => &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        ("Event", true) => &["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE", "FIRST SEEN", "COUNT", "NAME"],
        ("Lease", _) => &["NAME", "HOLDER", "AGE"],
        ("ServiceAccount", _) => &["NAME", "SECRETS", "AGE"],
        ("Role" | "ClusterRole", _) => &["NAME", "CREATED AT"],
        ("RoleBinding" | "ClusterRoleBinding", false) => &["NAME", "ROLE", "AGE"],
        ("RoleBinding" | "ClusterRoleBinding", true) => &["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"],
        _ => &["NAME", "AGE"],
    }
}

/// The cells of one object under [`columns`].
pub fn row_of(object: &Object, now: DateTime<Utc>, wide: bool) -> Vec<String> {
    match &object.kind {
        Some(K::Pod(x)) => pod_row(x, now, wide),
        Some(K::Node(x)) => node_row(x, now, wide),
        Some(K::ReplicationController(x)) => rc_row(x, now, wide),
        Some(K::Service(x)) => service_row(x, now, wide),
        Some(K::Endpoints(x)) => endpoints_row(x, now),
        Some(K::Secret(x)) => secret_row(x, now),
        Some(K::ConfigMap(x)) => config_map_row(x, now),
        Some(K::Namespace(x)) => namespace_row(x, now),
        Some(K::ResourceQuota(x)) => quota_row(x, now),
        Some(K::LimitRange(x)) => limit_range_row(x),
        Some(K::Event(x)) => event_row(x, now, wide),
        Some(K::Lease(x)) => lease_row(x, now),
        Some(K::ServiceAccount(x)) => service_account_row(x, now),
        Some(K::Role(x)) => created_at_row(&x.metadata),
        Some(K::ClusterRole(x)) => created_at_row(&x.metadata),
        Some(K::RoleBinding(x)) => binding_row(&x.metadata, x.role_ref.as_ref(), &x.subjects, now, wide),
        Some(K::ClusterRoleBinding(x)) => binding_row(&x.metadata, x.role_ref.as_ref(), &x.subjects, now, wide),
        // Kinds added later without a table of their own: NAME, AGE.
        #[allow(unreachable_patterns)]
        Some(_) => {
            let created = object.metadata().map(|m| m.creation_timestamp.as_str()).unwrap_or("");
            vec![object.name().to_string(), age(created, now)]
        }
        None => vec![String::new(), String::new()],
    }
}

fn meta(m: &Option<ObjectMeta>) -> &ObjectMeta {
    static EMPTY: std::sync::OnceLock<ObjectMeta> = std::sync::OnceLock::new();
    m.as_ref().unwrap_or_else(|| EMPTY.get_or_init(ObjectMeta::default))
}

fn or_none(s: &str) -> String {
    if s.is_empty() { NONE.to_string() } else { s.to_string() }
}

/// `k=v,k2=v2`, or `<none>`.
pub fn labels_column(labels: Option<&BTreeMap<String, String>>) -> String {
    match labels {
        Some(l) if !l.is_empty() => l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        _ => NONE.to_string(),
    }
}

// ---------------------------------------------------------------- pods

pub fn pod_row(pod: &Pod, now: DateTime<Utc>, wide: bool) -> Vec<String> {
    let m = meta(&pod.metadata);
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let summary = pod_summary(pod);
    let mut restarts = summary.restarts.to_string();
    if let Some(last) = summary.last_restart.filter(|_| summary.restarts > 0) {
        restarts = format!("{restarts} ({} ago)", age(&last, now));
    }
    let mut row = vec![
        m.name.clone(),
        format!("{}/{}", summary.ready, spec.containers.len()),
        summary.status,
        restarts,
        age(&m.creation_timestamp, now),
    ];
    if wide {
        row.push(or_none(&status.pod_ip));
        row.push(or_none(&spec.node_name));
    }
    row
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
    let mut note_restart = |cs: &berth_api::pb::core::ContainerStatus| {
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

// --------------------------------------------------------------- nodes

pub fn node_row(node: &Node, now: DateTime<Utc>, wide: bool) -> Vec<String> {
    let m = meta(&node.metadata);
    let status = node.status.clone().unwrap_or_default();
    let info = status.node_info.clone().unwrap_or_default();
    let mut row =
        vec![m.name.clone(), node_status(node), node_roles(&m.labels), age(&m.creation_timestamp, now), info.kubelet_version.clone()];
    if wide {
        let address = |t: &str| {
            let a: Vec<_> = status.addresses.iter().filter(|a| a.r#type == t).map(|a| a.address.as_str()).collect();
            if a.is_empty() { NONE.to_string() } else { a.join(",") }
        };
        row.push(address("InternalIP"));
        row.push(address("ExternalIP"));
        row.push(or_unknown(&info.os_image));
        row.push(or_unknown(&info.kernel_version));
        row.push(or_unknown(&info.container_runtime_version));
    }
    row
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

fn node_roles(labels: &BTreeMap<String, String>) -> String {
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

// ------------------------------------------------ replication controllers

pub fn rc_row(rc: &ReplicationController, now: DateTime<Utc>, wide: bool) -> Vec<String> {
    let m = meta(&rc.metadata);
    let spec = rc.spec.clone().unwrap_or_default();
    let status = rc.status.clone().unwrap_or_default();
    let mut row = vec![
        m.name.clone(),
        spec.replicas.unwrap_or(1).to_string(),
        status.replicas.to_string(),
        status.ready_replicas.to_string(),
        age(&m.creation_timestamp, now),
    ];
    if wide {
        let containers = spec.template.as_ref().and_then(|t| t.spec.as_ref()).map(|s| s.containers.clone()).unwrap_or_default();
        row.push(containers.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(","));
        row.push(containers.iter().map(|c| c.image.as_str()).collect::<Vec<_>>().join(","));
        row.push(labels_column(Some(&spec.selector)));
    }
    row
}

// ------------------------------------------------------------ services

pub fn service_row(svc: &Service, now: DateTime<Utc>, wide: bool) -> Vec<String> {
    let m = meta(&svc.metadata);
    let spec = svc.spec.clone().unwrap_or_default();
    let ty = if spec.r#type.is_empty() { "ClusterIP".to_string() } else { spec.r#type.clone() };
    let external = match ty.as_str() {
        "ExternalName" => or_none(&spec.external_name),
        "LoadBalancer" => {
            let mut ips: Vec<String> = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .map(|lb| lb.ingress.iter().map(|i| if i.ip.is_empty() { i.hostname.clone() } else { i.ip.clone() }).collect())
                .unwrap_or_default();
            ips.extend(spec.external_ips.iter().cloned());
            if ips.is_empty() { "<pending>".to_string() } else { ips.join(",") }
        }
        _ => {
            if spec.external_ips.is_empty() {
                NONE.to_string()
            } else {
                spec.external_ips.join(",")
            }
        }
    };
    let ports: Vec<String> = spec
        .ports
        .iter()
        .map(|p| {
            let proto = if p.protocol.is_empty() { "TCP" } else { p.protocol.as_str() };
            if p.node_port != 0 { format!("{}:{}/{}", p.port, p.node_port, proto) } else { format!("{}/{}", p.port, proto) }
        })
        .collect();
    let mut row = vec![
        m.name.clone(),
        ty,
        or_none(&spec.cluster_ip),
        external,
        if ports.is_empty() { NONE.to_string() } else { ports.join(",") },
        age(&m.creation_timestamp, now),
    ];
    if wide {
        row.push(labels_column(Some(&spec.selector)));
    }
    row
}

// ----------------------------------------------------------- endpoints

pub fn endpoints_row(ep: &Endpoints, now: DateTime<Utc>) -> Vec<String> {
    let m = meta(&ep.metadata);
    vec![m.name.clone(), format_endpoints(ep), age(&m.creation_timestamp, now)]
}

/// `ip:port,ip:port,ip:port + 2 more...` (ready addresses only, as kubectl).
pub fn format_endpoints(ep: &Endpoints) -> String {
    const MAX: usize = 3;
    let mut list = Vec::new();
    let mut count = 0;
    for ss in &ep.subsets {
        if ss.ports.is_empty() {
            for a in &ss.addresses {
                if list.len() < MAX {
                    list.push(a.ip.clone());
                }
                count += 1;
            }
        } else {
            for p in &ss.ports {
                for a in &ss.addresses {
                    if list.len() < MAX {
                        list.push(if a.ip.contains(':') { format!("[{}]:{}", a.ip, p.port) } else { format!("{}:{}", a.ip, p.port) });
                    }
                    count += 1;
                }
            }
        }
    }
    let mut s = list.join(",");
    if count > MAX {
        s.push_str(&format!(" + {} more...", count - MAX));
    }
    if s.is_empty() { NONE.to_string() } else { s }
}

// ----------------------------------------------- secrets and config maps

pub fn secret_row(secret: &Secret, now: DateTime<Utc>) -> Vec<String> {
    let m = meta(&secret.metadata);
    let extra = secret.string_data.keys().filter(|k| !secret.data.contains_key(*k)).count();
    vec![
        m.name.clone(),
        if secret.r#type.is_empty() { "Opaque".to_string() } else { secret.r#type.clone() },
        (secret.data.len() + extra).to_string(),
        age(&m.creation_timestamp, now),
    ]
}

pub fn config_map_row(cm: &ConfigMap, now: DateTime<Utc>) -> Vec<String> {
    let m = meta(&cm.metadata);
    vec![m.name.clone(), (cm.data.len() + cm.binary_data.len()).to_string(), age(&m.creation_timestamp, now)]
}

// ---------------------------------------------------------- namespaces

pub fn namespace_row(ns: &Namespace, now: DateTime<Utc>) -> Vec<String> {
    let m = meta(&ns.metadata);
    let phase = ns.status.as_ref().map(|s| s.phase.as_str()).filter(|p| !p.is_empty()).unwrap_or("Active");
    vec![m.name.clone(), phase.to_string(), age(&m.creation_timestamp, now)]
}

// ------------------------------------------------- quotas and limit ranges

pub fn quota_row(q: &ResourceQuota, now: DateTime<Utc>) -> Vec<String> {
    let m = meta(&q.metadata);
    let status = q.status.clone().unwrap_or_default();
    let hard = if status.hard.is_empty() { q.spec.clone().unwrap_or_default().hard } else { status.hard.clone() };
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for (name, h) in &hard {
        let used = status.used.get(name).map(String::as_str).unwrap_or("0");
        let cell = format!("{name}: {used}/{h}");
        if name.starts_with("limits") { limits.push(cell) } else { requests.push(cell) }
    }
    vec![m.name.clone(), age(&m.creation_timestamp, now), requests.join(", "), limits.join(", ")]
}

pub fn limit_range_row(lr: &LimitRange) -> Vec<String> {
    created_at_row(&lr.metadata)
}

/// NAME and CREATED AT (an RFC 3339 time in UTC), for limit ranges and roles.
fn created_at_row(m: &Option<ObjectMeta>) -> Vec<String> {
    let m = meta(m);
    let created = match DateTime::parse_from_rfc3339(&m.creation_timestamp) {
        Ok(t) => t.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => "<unknown>".to_string(),
    };
    vec![m.name.clone(), created]
}

// ------------------------------------------ service accounts and RBAC

pub fn service_account_row(sa: &ServiceAccount, now: DateTime<Utc>) -> Vec<String> {
    let m = meta(&sa.metadata);
    vec![m.name.clone(), sa.secrets.len().to_string(), age(&m.creation_timestamp, now)]
}

/// NAME ROLE AGE (wide: USERS GROUPS SERVICEACCOUNTS) of a (cluster) role binding.
pub fn binding_row(m: &Option<ObjectMeta>, role: Option<&RoleRef>, subjects: &[Subject], now: DateTime<Utc>, wide: bool) -> Vec<String> {
    let m = meta(m);
    let role = role.map(|r| format!("{}/{}", r.kind, r.name)).unwrap_or_default();
    let mut row = vec![m.name.clone(), role, age(&m.creation_timestamp, now)];
    if wide {
        let of = |kind: &str| {
            subjects
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| if kind == "ServiceAccount" { format!("{}/{}", s.namespace, s.name) } else { s.name.clone() })
                .collect::<Vec<_>>()
                .join(", ")
        };
        row.extend([of("User"), of("Group"), of("ServiceAccount")]);
    }
    row
}

// -------------------------------------------------------------- events

pub fn event_row(ev: &Event, now: DateTime<Utc>, wide: bool) -> Vec<String> {
    let m = meta(&ev.metadata);
    let io = ev.involved_object.clone().unwrap_or_default();
    let last = event_last_seen(ev);
    let mut last_seen = age(last, now);
    if ev.count > 1 && !ev.first_timestamp.is_empty() {
        last_seen = format!("{last_seen} (x{} over {})", ev.count, age(&ev.first_timestamp, now));
    }
    let object = format!("{}/{}", io.kind.to_ascii_lowercase(), io.name);
    if !wide {
        return vec![last_seen, ev.r#type.clone(), ev.reason.clone(), object, ev.message.trim().to_string()];
    }
    let source = ev.source.clone().unwrap_or_default();
    let source = match (source.component.is_empty(), source.host.is_empty()) {
        (false, false) => format!("{}, {}", source.component, source.host),
        (false, true) => source.component,
        _ => ev.reporting_component.clone(),
    };
    vec![
        last_seen,
        ev.r#type.clone(),
        ev.reason.clone(),
        object,
        io.field_path,
        source,
        ev.message.trim().to_string(),
        age(if ev.first_timestamp.is_empty() { last } else { &ev.first_timestamp }, now),
        ev.count.max(1).to_string(),
        m.name.clone(),
    ]
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

pub fn lease_row(lease: &Lease, now: DateTime<Utc>) -> Vec<String> {
    let m = meta(&lease.metadata);
    let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
    vec![m.name.clone(), holder, age(&m.creation_timestamp, now)]
}

// ----------------------------------------------------------------- age

/// The age of an RFC 3339 timestamp at `now`, as kubectl prints it.
pub fn age(timestamp: &str, now: DateTime<Utc>) -> String {
    match DateTime::parse_from_rfc3339(timestamp) {
        Ok(t) => human_duration(now.signed_duration_since(t.with_timezone(&Utc))),
        Err(_) => "<unknown>".to_string(),
    }
}

/// kubectl's `duration.HumanDuration`: two significant units while they
/// matter (`3m2s`, `4h30m`, `2d3h`), one after (`15m`, `20h`, `30d`).
pub fn human_duration(d: chrono::TimeDelta) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{dy}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::Resource;
    use berth_api::manifest::parse;
    use chrono::TimeDelta;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z").expect("valid").with_timezone(&Utc)
    }

    fn objects(yaml: &str) -> Vec<Object> {
        parse(yaml).expect("test manifest parses")
    }

    fn render(info: &KindInfo, objs: &[Object], options: Options) -> String {
        let mut t = Table::new(info, options);
        for o in objs {
            t.push(o, now());
        }
        t.render(false)
    }

    #[test]
    fn should_print_durations_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (182, "3m2s"),
            (600, "10m"),
            (3 * 3600, "3h"),
            (4 * 3600 + 30 * 60, "4h30m"),
            (20 * 3600, "20h"),
            (2 * 86400, "2d"),
            (2 * 86400 + 3 * 3600, "2d3h"),
            (30 * 86400, "30d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
            (10 * 365 * 86400, "10y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(TimeDelta::seconds(secs)), want, "{secs}s");
        }
        assert_eq!(human_duration(TimeDelta::seconds(-1)), "0s");
        assert_eq!(human_duration(TimeDelta::seconds(-5)), "<invalid>");
        assert_eq!(age("", now()), "<unknown>");
        assert_eq!(age("2024-05-01T11:57:00Z", now()), "3m");
    }

    #[test]
    fn should_print_pods_with_ready_status_and_restarts() {
        let objs = objects(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, creationTimestamp: "2024-05-01T11:59:55Z"}
spec:
  nodeName: n1
  containers: [{name: a, image: busybox}, {name: b, image: busybox}]
status:
  phase: Running
  podIP: 172.30.0.5
  containerStatuses:
  - {name: a, ready: true, restartCount: 0, state: {running: {startedAt: "2024-05-01T11:59:58Z"}}}
  - name: b
    ready: false
    restartCount: 3
    state: {waiting: {reason: CrashLoopBackOff}}
    lastState: {terminated: {exitCode: 1, finishedAt: "2024-05-01T11:58:00Z"}}
---
apiVersion: v1
kind: Pod
metadata: {name: pending-one, namespace: default, creationTimestamp: "2024-05-01T09:00:00Z"}
spec:
  containers: [{name: a, image: busybox}]
"#,
        );
        let out = render(Pod::INFO_REF, &objs, Options::default());
        assert_eq!(
            out,
            "NAME          READY   STATUS             RESTARTS     AGE\n\
             web           1/2     CrashLoopBackOff   3 (2m ago)   5s\n\
             pending-one   0/1     Pending            0            3h\n"
        );
        let wide = render(Pod::INFO_REF, &objs, Options { wide: true, ..Default::default() });
        let lines: Vec<&str> = wide.lines().collect();
        assert!(lines[0].ends_with("AGE   IP           NODE"), "{wide}");
        assert!(lines[1].ends_with("5s    172.30.0.5   n1"), "{wide}");
        assert!(lines[2].ends_with("3h    <none>       <none>"), "{wide}");
    }

    #[test]
    fn should_derive_pod_status_like_kubectl() {
        let pod = |status: &str, deleting: bool| -> Pod {
            let del = if deleting { ", deletionTimestamp: \"2024-05-01T11:00:00Z\"" } else { "" };
            let y = format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{del}}}\nspec:\n  initContainers: [{{name: i, image: x}}]\n  containers: [{{name: a, image: x}}]\nstatus:\n{status}"
            );
            objects(&y).remove(0).into_resource().expect("a pod")
        };
        let init = pod("  phase: Pending\n  initContainerStatuses: [{name: i, state: {running: {}}}]\n", false);
        assert_eq!(pod_summary(&init).status, "Init:0/1");
        let init_fail = pod("  phase: Pending\n  initContainerStatuses: [{name: i, state: {terminated: {exitCode: 2}}}]\n", false);
        assert_eq!(pod_summary(&init_fail).status, "Init:ExitCode:2");
        let done = pod(
            "  phase: Succeeded\n  initContainerStatuses: [{name: i, state: {terminated: {exitCode: 0, reason: Completed}}}]\n  containerStatuses: [{name: a, state: {terminated: {exitCode: 0, reason: Completed}}}]\n",
            false,
        );
        assert_eq!(pod_summary(&done).status, "Completed");
        let creating = pod("  phase: Pending\n  containerStatuses: [{name: a, state: {waiting: {reason: ContainerCreating}}}]\n", false);
        assert_eq!(pod_summary(&creating).status, "ContainerCreating");
        let deleting = pod("  phase: Running\n", true);
        assert_eq!(pod_summary(&deleting).status, "Terminating");
    }

    #[test]
    fn should_print_services_with_ports_and_external_ips() {
        let objs = objects(
            r#"
apiVersion: v1
kind: Service
metadata: {name: web, creationTimestamp: "2024-05-01T11:00:00Z"}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{port: 80, nodePort: 30080}, {port: 53, protocol: UDP}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, creationTimestamp: "2024-05-01T11:00:00Z"}
spec: {clusterIP: None}
---
apiVersion: v1
kind: Service
metadata: {name: lb, creationTimestamp: "2024-05-01T11:00:00Z"}
spec: {type: LoadBalancer, clusterIP: 10.96.0.11, ports: [{port: 443}]}
"#,
        );
        let out = render(Service::INFO_REF, &objs, Options { wide: true, ..Default::default() });
        assert_eq!(
            out,
            "NAME       TYPE           CLUSTER-IP   EXTERNAL-IP   PORT(S)               AGE   SELECTOR\n\
             web        NodePort       10.96.0.10   <none>        80:30080/TCP,53/UDP   60m   app=web\n\
             headless   ClusterIP      None         <none>        <none>                60m   <none>\n\
             lb         LoadBalancer   10.96.0.11   <pending>     443/TCP               60m   <none>\n"
        );
    }

    #[test]
    fn should_print_namespace_and_labels_columns() {
        let objs = objects(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: kube-system, labels: {a: b, c: d}, creationTimestamp: \"2024-05-01T11:59:00Z\"}\ndata: {x: y, z: w}\n",
        );
        let out = render(ConfigMap::INFO_REF, &objs, Options { namespace_column: true, show_labels: true, wide: false });
        assert_eq!(out, "NAMESPACE     NAME   DATA   AGE   LABELS\nkube-system   c      2      60s   a=b,c=d\n");
        // cluster-scoped kinds have no NAMESPACE column even with -A
        let ns = objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: prod, creationTimestamp: \"2024-04-29T12:00:00Z\"}\n");
        let out = render(Namespace::INFO_REF, &ns, Options { namespace_column: true, ..Default::default() });
        assert_eq!(out, "NAME   STATUS   AGE\nprod   Active   2d\n");
    }

    #[test]
    fn should_print_nodes_rcs_endpoints_and_secrets() {
        let node = objects(
            r#"
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {node-role.kubernetes.io/control-plane: ""}, creationTimestamp: "2024-05-01T07:00:00Z"}
spec: {unschedulable: true}
status:
  conditions: [{type: Ready, status: "True"}]
  nodeInfo: {kubeletVersion: v0.1.0}
  addresses: [{type: InternalIP, address: 10.0.0.1}]
"#,
        );
        assert_eq!(
            render(Node::INFO_REF, &node, Options::default()),
            "NAME   STATUS                     ROLES           AGE   VERSION\n\
             n1     Ready,SchedulingDisabled   control-plane   5h    v0.1.0\n"
        );
        let rc = objects(
            "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: r, creationTimestamp: \"2024-05-01T11:00:00Z\"}\nspec: {replicas: 3, selector: {app: r}}\nstatus: {replicas: 2, readyReplicas: 1}\n",
        );
        assert_eq!(
            render(ReplicationController::INFO_REF, &rc, Options::default()),
            "NAME   DESIRED   CURRENT   READY   AGE\nr      3         2         1       60m\n"
        );
        let ep = objects(
            "apiVersion: v1\nkind: Endpoints\nmetadata: {name: e}\nsubsets:\n- addresses: [{ip: 1.1.1.1}, {ip: 1.1.1.2}, {ip: 1.1.1.3}, {ip: 1.1.1.4}]\n  ports: [{port: 80}]\n",
        );
        let ep: Endpoints = ep[0].clone().into_resource().expect("endpoints");
        assert_eq!(format_endpoints(&ep), "1.1.1.1:80,1.1.1.2:80,1.1.1.3:80 + 1 more...");
        assert_eq!(format_endpoints(&Endpoints::default()), "<none>");
        let secret = objects(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, creationTimestamp: \"2024-05-01T11:59:30Z\"}\ndata: {k: aGVsbG8=}\n",
        );
        assert_eq!(render(Secret::INFO_REF, &secret, Options::default()), "NAME   TYPE     DATA   AGE\ns      Opaque   1      30s\n");
    }

    #[test]
    fn should_print_quotas_limits_events_and_leases() {
        let q = objects(
            "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: q, creationTimestamp: \"2024-05-01T11:59:00Z\"}\nspec: {hard: {pods: \"10\", limits.cpu: \"2\"}}\nstatus: {hard: {pods: \"10\", limits.cpu: \"2\"}, used: {pods: \"3\"}}\n",
        );
        assert_eq!(
            render(ResourceQuota::INFO_REF, &q, Options::default()),
            "NAME   AGE   REQUEST      LIMIT\nq      60s   pods: 3/10   limits.cpu: 0/2\n"
        );
        let lr = objects("apiVersion: v1\nkind: LimitRange\nmetadata: {name: l, creationTimestamp: \"2024-05-01T11:59:00+00:00\"}\n");
        assert_eq!(render(LimitRange::INFO_REF, &lr, Options::default()), "NAME   CREATED AT\nl      2024-05-01T11:59:00Z\n");
        let ev = objects(
            "apiVersion: v1\nkind: Event\nmetadata: {name: web.1, namespace: default}\ninvolvedObject: {kind: Pod, name: web}\nreason: Scheduled\nmessage: assigned to n1\ntype: Normal\ncount: 2\nfirstTimestamp: \"2024-05-01T11:50:00Z\"\nlastTimestamp: \"2024-05-01T11:59:50Z\"\n",
        );
        assert_eq!(
            render(Event::INFO_REF, &ev, Options::default()),
            "LAST SEEN           TYPE     REASON      OBJECT    MESSAGE\n10s (x2 over 10m)   Normal   Scheduled   pod/web   assigned to n1\n"
        );
        let lease = objects(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: sched, creationTimestamp: \"2024-05-01T11:59:00Z\"}\nspec: {holderIdentity: host-1}\n",
        );
        assert_eq!(render(Lease::INFO_REF, &lease, Options::default()), "NAME    HOLDER   AGE\nsched   host-1   60s\n");
    }

    #[test]
    fn should_print_service_accounts_and_rbac_kinds() {
        let objs = objects(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: read-pods, namespace: default, creationTimestamp: "2024-05-01T11:59:00Z"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: User, name: jane, apiGroup: rbac.authorization.k8s.io}
- {kind: ServiceAccount, name: default, namespace: default}
"#,
        );
        let info = objs[0].info().expect("kind");
        assert_eq!(
            render(info, &objs, Options { wide: true, ..Default::default() }),
            "NAME        ROLE              AGE   USERS   GROUPS   SERVICEACCOUNTS\n\
             read-pods   Role/pod-reader   60s   jane             default/default\n"
        );
        let sa = objects("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, creationTimestamp: \"2024-05-01T11:00:00Z\"}\n");
        assert_eq!(render(sa[0].info().expect("kind"), &sa, Options::default()), "NAME      SECRETS   AGE\ndefault   0         60m\n");
        let role = objects(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: admin, creationTimestamp: \"2024-05-01T11:00:00Z\"}\n",
        );
        assert_eq!(render(role[0].info().expect("kind"), &role, Options::default()), "NAME    CREATED AT\nadmin   2024-05-01T11:00:00Z\n");
    }

    #[test]
    fn should_hide_headers_and_keep_widths_for_later_rows() {
        let objs = objects("apiVersion: v1\nkind: Namespace\nmetadata: {name: a-long-name}\n");
        let mut t = Table::new(Namespace::INFO_REF, Options::default());
        t.push(&objs[0], now());
        assert_eq!(t.render(true), "a-long-name   Active   <unknown>\n");
        let widths = t.widths(false);
        let later = render_row(&["b".into(), "Terminating".into(), "1s".into()], &widths);
        assert_eq!(later, "b             Terminating   1s\n");
    }

    /// `&'static KindInfo` of a type, for the table constructor.
    trait InfoRef {
        const INFO_REF: &'static KindInfo;
    }
    impl<R: Resource> InfoRef for R {
        const INFO_REF: &'static KindInfo = &R::INFO;
    }
}
