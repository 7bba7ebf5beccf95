//! The endpoints view: each subset's ready and not-ready addresses and its ports.

use berth_api::pb::core::{Endpoints, ObjectMeta};

use super::{Doc, header, or_none};

pub(super) fn view(d: &mut Doc, e: &Endpoints) {
    let empty = ObjectMeta::default();
    header(d, e.metadata.as_ref().unwrap_or(&empty));
    if e.subsets.is_empty() {
        d.kv(0, "Subsets", "");
    } else {
        d.line(0, "Subsets:");
    }
    for ss in &e.subsets {
        let ips = |addrs: &[berth_api::pb::core::EndpointAddress]| {
            let s = addrs.iter().map(|a| a.ip.as_str()).collect::<Vec<_>>().join(",");
            if s.is_empty() { "<none>".to_string() } else { s }
        };
        d.kv(2, "Addresses", ips(&ss.addresses));
        d.kv(2, "NotReadyAddresses", ips(&ss.not_ready_addresses));
        if ss.ports.is_empty() {
            d.kv(2, "Ports", "<none>");
        } else {
            d.line(2, "Ports:");
            d.line(4, "Name\tPort\tProtocol");
            d.line(4, "----\t----\t--------");
            for p in &ss.ports {
                let proto = if p.protocol.is_empty() { "TCP" } else { &p.protocol };
                d.line(4, format!("{}\t{}\t{proto}", or_none(&p.name).replace("<none>", "<unset>"), p.port));
            }
        }
        d.line(0, "");
    }
}
