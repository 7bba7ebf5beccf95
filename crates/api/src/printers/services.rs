//! The tables of services and endpoints.

use chrono::{DateTime, Utc};

use super::{AGE, Cell, Column, NAME, NONE, age, column, labels_column, meta, or_none, wide};
use crate::pb::core::{Endpoints, Service};

// ------------------------------------------------------------ services

pub(super) const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    column("Type", "string", "ClusterIP, NodePort, LoadBalancer or ExternalName (spec.type)."),
    column("Cluster-IP", "string", "The service's virtual IP, or None for a headless service (spec.clusterIP)."),
    column("External-IP", "string", "The addresses the service is reachable at from outside the cluster."),
    column("Port(s)", "string", "The service's ports, with their node ports, as port[:nodePort]/protocol."),
    AGE,
    wide("Selector", "string", "The labels of the pods the service sends traffic to (spec.selector)."),
];

pub(super) fn service_row(svc: &Service, now: DateTime<Utc>) -> Vec<Cell> {
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
    vec![
        m.name.clone().into(),
        ty.into(),
        or_none(&spec.cluster_ip).into(),
        external.into(),
        if ports.is_empty() { NONE.to_string() } else { ports.join(",") }.into(),
        age(&m.creation_timestamp, now).into(),
        labels_column(Some(&spec.selector)).into(),
    ]
}

// ----------------------------------------------------------- endpoints

pub(super) const ENDPOINTS_COLUMNS: &[Column] =
    &[NAME, column("Endpoints", "string", "The ready addresses behind the service, as ip:port (the first three)."), AGE];

pub(super) fn endpoints_row(ep: &Endpoints, now: DateTime<Utc>) -> Vec<Cell> {
    let m = meta(&ep.metadata);
    vec![m.name.clone().into(), format_endpoints(ep).into(), age(&m.creation_timestamp, now).into()]
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
