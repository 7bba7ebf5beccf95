//! The service view: type, addresses, and each port with its target and endpoints.

use berth_api::pb::core::{ObjectMeta, Service};
use berth_api::printers::format_endpoints;

use super::{Doc, Related, header, or_none, selector_text};

pub(super) fn view(d: &mut Doc, s: &Service, related: &Related) {
    let empty = ObjectMeta::default();
    let m = s.metadata.as_ref().unwrap_or(&empty);
    let spec = s.spec.clone().unwrap_or_default();
    header(d, m);
    d.kv(0, "Selector", selector_text(&spec.selector));
    d.kv(0, "Type", if spec.r#type.is_empty() { "ClusterIP" } else { &spec.r#type });
    d.kv(0, "IP", or_none(&spec.cluster_ip));
    if !spec.external_ips.is_empty() {
        d.kv(0, "External IPs", spec.external_ips.join(","));
    }
    if !spec.external_name.is_empty() {
        d.kv(0, "External Name", &spec.external_name);
    }
    let endpoints = related.endpoints.as_ref().map(format_endpoints).unwrap_or_else(|| "<none>".into());
    for p in &spec.ports {
        let proto = if p.protocol.is_empty() { "TCP" } else { &p.protocol };
        let name = if p.name.is_empty() { "<unset>" } else { &p.name };
        d.kv(0, "Port", format!("{name}  {}/{proto}", p.port));
        let target = if p.target_port.is_empty() { p.port.to_string() } else { p.target_port.clone() };
        d.kv(0, "TargetPort", format!("{target}/{proto}"));
        if p.node_port != 0 {
            d.kv(0, "NodePort", format!("{name}  {}/{proto}", p.node_port));
        }
        d.kv(0, "Endpoints", &endpoints);
    }
    if spec.ports.is_empty() {
        d.kv(0, "Endpoints", &endpoints);
    }
    d.kv(0, "Session Affinity", if spec.session_affinity.is_empty() { "None" } else { &spec.session_affinity });
}
