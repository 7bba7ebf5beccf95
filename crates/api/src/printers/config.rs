//! The tables of secrets, config maps, service accounts, resource quotas,
//! limit ranges and the RBAC kinds.

use chrono::{DateTime, Utc};

use super::{AGE, CREATED_AT, Cell, Column, NAME, age, column, count, meta, wide};
use crate::pb::core::{ConfigMap, ObjectMeta, ResourceQuota, Secret, ServiceAccount};
use crate::{RoleRef, Subject};

// ----------------------------------------------- secrets and config maps

pub(super) const SECRET_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "string", "What the secret holds, e.g. Opaque or kubernetes.io/service-account-token (type)."),
    column("Data", "integer", "How many keys the secret has."),
    AGE,
];

pub(super) fn secret_row(secret: &Secret, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&secret.metadata);
    let extra = secret.string_data.keys().filter(|k| !secret.data.contains_key(*k)).count();
    vec![
        m.name.clone().into(),
        if secret.r#type.is_empty() { "Opaque".to_string() } else { secret.r#type.clone() }.into(),
        count(secret.data.len() + extra),
        age(&m.creation_timestamp, now).into(),
    ]
}

pub(super) const CONFIG_MAP_COLUMNS: &[Column] =
    &[NAME, column("Data", "integer", "How many keys the config map has (data and binaryData)."), AGE];

pub(super) fn config_map_row(cm: &ConfigMap, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&cm.metadata);
    vec![m.name.clone().into(), count(cm.data.len() + cm.binary_data.len()), age(&m.creation_timestamp, now).into()]
}

// ---------------------------------------------------- service accounts

pub(super) const SERVICE_ACCOUNT_COLUMNS: &[Column] =
    &[NAME, column("Secrets", "integer", "How many secrets the service account lists (secrets)."), AGE];

pub(super) fn service_account_row(sa: &ServiceAccount, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&sa.metadata);
    vec![m.name.clone().into(), count(sa.secrets.len()), age(&m.creation_timestamp, now).into()]
}

// ------------------------------------------------- quotas and limit ranges

pub(super) const QUOTA_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    column("Request", "string", "Used of hard, for each quota'd resource other than limits."),
    column("Limit", "string", "Used of hard, for each quota'd limits.* resource."),
];

pub(super) fn quota_row(q: &ResourceQuota, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&q.metadata);
    let status = q.status.clone().unwrap_or_default();
    let hard = if status.hard.is_empty() { q.spec.clone().unwrap_or_default().hard } else { status.hard.clone() };
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for (name, h) in &hard {
        let used = status.used.get(name).map(String::as_str).unwrap_or("0");
        let cell = format!("{name}: {used}/{h}");
        if name.starts_with("limits") { limits.push(cell) } else { requests.push(cell) }
    }
    vec![m.name.clone().into(), age(&m.creation_timestamp, now).into(), requests.join(", ").into(), limits.join(", ").into()]
}

/// Name and Created At: limit ranges, roles and cluster roles.
pub(super) const CREATED_AT_COLUMNS: &[Column] = &[NAME, CREATED_AT];

/// The name and the creation time (RFC 3339 in UTC).
pub(super) fn created_at_row(m: &Option<ObjectMeta>) -> Vec<Cell> {
    let m = meta(m);
    let created = match crate::time::parse_rfc3339(&m.creation_timestamp) {
        Some(t) => crate::time::format_rfc3339(t),
        None => "<unknown>".to_string(),
    };
    vec![m.name.clone().into(), created.into()]
}

// ---------------------------------------------------------------- RBAC

pub(super) const BINDING_COLUMNS: &[Column] = &[
    NAME,
    column("Role", "string", "The role the binding grants, as kind/name (roleRef)."),
    AGE,
    wide("Users", "string", "The users the role is granted to."),
    wide("Groups", "string", "The groups the role is granted to."),
    wide("ServiceAccounts", "string", "The service accounts the role is granted to, as namespace/name."),
];

/// A (cluster) role binding's cells.
pub(super) fn binding_row(m: &Option<ObjectMeta>, role: Option<&RoleRef>, subjects: &[Subject], now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(m);
    let role = role.map(|r| format!("{}/{}", r.kind, r.name)).unwrap_or_default();
    let of = |kind: &str| {
        subjects
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| if kind == "ServiceAccount" { format!("{}/{}", s.namespace, s.name) } else { s.name.clone() })
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        m.name.clone().into(),
        role.into(),
        age(&m.creation_timestamp, now).into(),
        of("User").into(),
        of("Group").into(),
        of("ServiceAccount").into(),
    ]
}
