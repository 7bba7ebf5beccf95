//! The columns `kubectl get` shows for each kind and the cells of one object
//! under them, as Kubernetes' server-side printers compute them: the one
//! implementation behind berthctl's tables and the apiserver's
//! meta.k8s.io/v1 Tables (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`).
//!
//! [`columns`] lists every column of a kind, `-o wide`'s included (priority
//! 1); [`row`] gives one [`Cell`] per column; [`table`] builds the Table JSON.
//! Rendering (widths, upper-cased headers, NAMESPACE and LABELS columns) is
//! the client's business.
//!
//! The kinds are grouped by file: [`workloads`] (pods, replication
//! controllers), [`cluster`] (nodes, namespaces, events, leases), [`services`]
//! (services, endpoints), [`config`] (secrets, config maps, service accounts,
//! quotas, limit ranges, RBAC).

mod cluster;
mod config;
mod services;
mod workloads;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::pb::api::object::Kind as K;
use crate::pb::core::ObjectMeta;
use crate::{KindInfo, Object};

pub use cluster::{event_age, event_last_seen, node_roles, node_status};
pub use services::format_endpoints;
pub use workloads::{PodSummary, pod_summary};

/// Shown where a value is absent, as kubectl does.
pub const NONE: &str = "<none>";

/// One column of a kind's table (meta.k8s.io/v1 `TableColumnDefinition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// As Kubernetes names it (`Name`, `Nominated Node`); kubectl prints it upper-cased.
    pub name: &'static str,
    /// `string`, `integer` or `date`: the JSON type of the column's cells.
    pub r#type: &'static str,
    /// `name` for the column holding the object's name, else empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: shown with `-o wide` only.
    pub priority: i32,
}

/// A column that is neither the name column nor wide-only.
const fn column(name: &'static str, r#type: &'static str, description: &'static str) -> Column {
    Column { name, r#type, format: "", description, priority: 0 }
}

/// A column shown with `-o wide` only.
const fn wide(name: &'static str, r#type: &'static str, description: &'static str) -> Column {
    Column { name, r#type, format: "", description, priority: 1 }
}

/// The object's name: every kind's first column (events' last, wide-only).
const NAME: Column = Column {
    name: "Name",
    r#type: "string",
    format: "name",
    description: "The object's name, unique among objects of its kind in its namespace (or in the cluster, for cluster-scoped kinds).",
    priority: 0,
};

/// How long ago the object was created.
const AGE: Column = column("Age", "string", "How long ago the object was created (its metadata.creationTimestamp), as a duration.");

/// When the object was created, in UTC (limit ranges and roles).
const CREATED_AT: Column = column("Created At", "date", "When the object was created (its metadata.creationTimestamp), in UTC.");

/// The columns of kinds without a table of their own.
const DEFAULT_COLUMNS: &[Column] = &[NAME, AGE];

/// One cell of a row: a string, or a number under an `integer` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Int(i64),
}

impl Cell {
    /// The cell as the Table's JSON has it.
    pub fn to_json(&self) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(n) => Value::from(*n),
        }
    }
}

/// The cell as kubectl prints it.
impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Int(n) => write!(f, "{n}"),
        }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }
}

/// A count as an integer cell.
fn count(n: usize) -> Cell {
    Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Every column of a kind, `-o wide`'s included (priority 1).
pub fn columns(info: &KindInfo) -> &'static [Column] {
    match info.kind {
        "Pod" => workloads::POD_COLUMNS,
        "ReplicationController" => workloads::RC_COLUMNS,
        "Node" => cluster::NODE_COLUMNS,
        "Namespace" => cluster::NAMESPACE_COLUMNS,
        "Event" => cluster::EVENT_COLUMNS,
        "Lease" => cluster::LEASE_COLUMNS,
        "Service" => services::SERVICE_COLUMNS,
        "Endpoints" => services::ENDPOINTS_COLUMNS,
        "Secret" => config::SECRET_COLUMNS,
        "ConfigMap" => config::CONFIG_MAP_COLUMNS,
        "ServiceAccount" => config::SERVICE_ACCOUNT_COLUMNS,
        "ResourceQuota" => config::QUOTA_COLUMNS,
        "LimitRange" | "Role" | "ClusterRole" => config::CREATED_AT_COLUMNS,
        "RoleBinding" | "ClusterRoleBinding" => config::BINDING_COLUMNS,
        _ => DEFAULT_COLUMNS,
    }
}

/// The cells of one object, one per column of [`columns`] of its kind.
pub fn row(object: &Object, now: DateTime<Utc>) -> Vec<Cell> {
    match &object.kind {
        Some(K::Pod(x)) => workloads::pod_row(x, now),
        Some(K::ReplicationController(x)) => workloads::rc_row(x, now),
        Some(K::Node(x)) => cluster::node_row(x, now),
        Some(K::Namespace(x)) => cluster::namespace_row(x, now),
        Some(K::Event(x)) => cluster::event_row(x, now),
        Some(K::Lease(x)) => cluster::lease_row(x, now),
        Some(K::Service(x)) => services::service_row(x, now),
        Some(K::Endpoints(x)) => services::endpoints_row(x, now),
        Some(K::Secret(x)) => config::secret_row(x, now),
        Some(K::ConfigMap(x)) => config::config_map_row(x, now),
        Some(K::ServiceAccount(x)) => config::service_account_row(x, now),
        Some(K::ResourceQuota(x)) => config::quota_row(x, now),
        Some(K::LimitRange(x)) => config::created_at_row(&x.metadata),
        Some(K::Role(x)) => config::created_at_row(&x.metadata),
        Some(K::ClusterRole(x)) => config::created_at_row(&x.metadata),
        Some(K::RoleBinding(x)) => config::binding_row(&x.metadata, x.role_ref.as_ref(), &x.subjects, now),
        Some(K::ClusterRoleBinding(x)) => config::binding_row(&x.metadata, x.role_ref.as_ref(), &x.subjects, now),
        // Kinds added later without a table of their own: Name, Age.
        #[allow(unreachable_patterns)]
        Some(_) => {
            let created = object.metadata().map(|m| m.creation_timestamp.as_str()).unwrap_or("");
            vec![object.name().into(), age(created, now).into()]
        }
        None => vec![Cell::from(""), Cell::from("")],
    }
}

/// What each row of a Table carries besides its cells (the `includeObject`
/// query parameter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No `object`.
    None,
    /// A PartialObjectMetadata: the object's kind-independent metadata.
    #[default]
    Metadata,
    /// The whole object, kind and apiVersion included.
    Object,
}

impl IncludeObject {
    /// The value of `?includeObject=`: `None`, `Metadata` or `Object` (as
    /// Kubernetes spells them); anything else is the default, `Metadata`.
    pub fn parse(query_value: &str) -> IncludeObject {
        match query_value {
            "None" => IncludeObject::None,
            "Object" => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// A column's definition as the Table's JSON has it (all five fields, always).
fn column_json(c: &Column) -> Value {
    json!({"name": c.name, "type": c.r#type, "format": c.format, "description": c.description, "priority": c.priority})
}

/// The meta.k8s.io/v1 Table of `objects` (all of kind `info`), as
/// kube-apiserver answers it: `{"kind":"Table","apiVersion":"meta.k8s.io/v1",
/// "metadata":{"resourceVersion":..},"columnDefinitions":[..],"rows":[{"cells":[..],"object":{..}}]}`.
/// Without `with_columns` (a watch's events after the first) the
/// `columnDefinitions` key is left out. An empty list has `rows: []`.
pub fn table(
    info: &KindInfo,
    objects: &[Object],
    resource_version: &str,
    include: IncludeObject,
    with_columns: bool,
    now: DateTime<Utc>,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut r = serde_json::Map::new();
            r.insert("cells".into(), Value::Array(row(o, now).iter().map(Cell::to_json).collect()));
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    let metadata = o.metadata().and_then(|m| serde_json::to_value(m).ok()).unwrap_or_else(|| json!({}));
                    r.insert(
                        "object".into(),
                        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata}),
                    );
                }
                IncludeObject::Object => {
                    r.insert("object".into(), o.to_json_value());
                }
            }
            Value::Object(r)
        })
        .collect();
    let mut t = serde_json::Map::new();
    t.insert("kind".into(), "Table".into());
    t.insert("apiVersion".into(), "meta.k8s.io/v1".into());
    t.insert("metadata".into(), json!({"resourceVersion": resource_version}));
    if with_columns {
        t.insert("columnDefinitions".into(), Value::Array(columns(info).iter().map(column_json).collect()));
    }
    t.insert("rows".into(), Value::Array(rows));
    Value::Object(t)
}

// ------------------------------------------------------------- helpers

/// The metadata of an object, empty when absent.
fn meta(m: &Option<ObjectMeta>) -> &ObjectMeta {
    static EMPTY: std::sync::OnceLock<ObjectMeta> = std::sync::OnceLock::new();
    m.as_ref().unwrap_or_else(|| EMPTY.get_or_init(ObjectMeta::default))
}

/// The string, or `<none>` when empty.
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
mod tests;
