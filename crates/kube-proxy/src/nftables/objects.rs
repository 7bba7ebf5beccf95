//! What the table should hold: its fixed skeleton (hooks, maps, the `services` dispatch and
//! masquerading), the shared `lb-N` chains, and the elements, chains and sets of each service
//! port.

use std::net::Ipv4Addr;

use super::Nftables;
use super::model::{AffinitySet, Chain, Element, Key, Map, PortObjects, Value, affinity_set, ep_chain, nodeport_chain, svc_chain};
use super::tx::{Section, Tx};
use crate::exec::Exec;
use crate::model::ServicePort;

impl<E: Exec> Nftables<E> {
    fn masquerade_rule(&self) -> Option<String> {
        self.cfg.cluster_cidr.map(|c| format!("ip saddr != {c} jump mark-for-masquerade"))
    }

    pub(super) fn lb_rules(&self, n: usize) -> Vec<String> {
        let mut rules: Vec<String> = self.masquerade_rule().into_iter().collect();
        for proto in ["tcp", "udp"] {
            rules.push(format!(
                "meta l4proto {proto} dnat ip addr . port to ip daddr . {proto} dport . numgen random mod {n} map @backends-{proto}"
            ));
        }
        rules
    }

    pub(super) fn nodeport_lb_rules(n: usize) -> Vec<String> {
        let mut rules = vec!["jump mark-for-masquerade".to_string()];
        for proto in ["tcp", "udp"] {
            rules.push(format!(
                "meta l4proto {proto} dnat ip addr . port to {proto} dport . numgen random mod {n} map @nodeport-backends-{proto}"
            ));
        }
        rules
    }

    /// The elements, chains and sets one service port needs.
    pub(super) fn port_objects(&self, p: &ServicePort) -> PortObjects {
        let mut o = PortObjects::default();
        let n = p.endpoints.len();
        if n == 0 {
            return o;
        }
        let proto = p.protocol().as_str();
        let vip_key = Key::Service(p.cluster_ip, p.protocol(), p.port);
        let np_key = p.node_port.filter(|_| !self.cfg.nodeport_addresses.is_empty()).map(|np| Key::NodePort(p.protocol(), np));
        let (backends, nodeport_backends) = Map::backends(p.protocol());
        match p.affinity_seconds() {
            None => {
                o.elements.reserve(1 + n + if np_key.is_some() { 1 + n } else { 0 });
                o.elements.push(Element { map: Map::ServiceIps, key: vip_key, value: Some(Value::Lb(n)) });
                o.lb = Some(n);
                for (slot, ep) in p.endpoints.iter().enumerate() {
                    o.elements.push(Element {
                        map: backends,
                        key: Key::Backend(p.cluster_ip, p.port, slot as u32),
                        value: Some(Value::Endpoint(*ep)),
                    });
                }
                if let (Some(np_key), Some(np)) = (np_key, p.node_port) {
                    o.elements.push(Element { map: Map::ServiceNodeports, key: np_key, value: Some(Value::NodePortLb(n)) });
                    o.nodeport_lb = Some(n);
                    for (slot, ep) in p.endpoints.iter().enumerate() {
                        o.elements.push(Element {
                            map: nodeport_backends,
                            key: Key::NodePortBackend(np, slot as u32),
                            value: Some(Value::Endpoint(*ep)),
                        });
                    }
                }
            }
            Some(timeout) => {
                let svc = svc_chain(p);
                o.elements.push(Element { map: Map::ServiceIps, key: vip_key, value: Some(Value::Goto(svc.clone())) });
                let mut rules: Vec<String> = self.masquerade_rule().into_iter().collect();
                let mut choices = Vec::with_capacity(n);
                for (slot, ep) in p.endpoints.iter().enumerate() {
                    let chain = ep_chain(p, *ep);
                    let set = affinity_set(p, *ep, timeout);
                    rules.push(format!("ip saddr @{set} goto {chain}"));
                    choices.push(format!("{slot} : goto {chain}"));
                    o.chains.push(Chain {
                        name: chain,
                        rules: vec![format!("update @{set} {{ ip saddr }}"), format!("meta l4proto {proto} dnat to {ep}")],
                    });
                    o.sets.push(AffinitySet { name: set, timeout_secs: timeout });
                }
                rules.push(format!("numgen random mod {n} vmap {{ {} }}", choices.join(", ")));
                if let Some(np_key) = np_key {
                    let np = nodeport_chain(p);
                    o.elements.push(Element { map: Map::ServiceNodeports, key: np_key, value: Some(Value::Goto(np.clone())) });
                    o.chains.push(Chain { name: np, rules: vec!["jump mark-for-masquerade".into(), format!("goto {svc}")] });
                }
                o.chains.push(Chain { name: svc, rules });
            }
        }
        o
    }

    /// The table's fixed skeleton: declarations (idempotent), then the fixed
    /// chains flushed and written again.
    pub(super) fn write_skeleton(&self, tx: &mut Tx) {
        let t = &self.cfg.table;
        tx.line(Section::Head, format_args!("add table ip {t}"));
        for (chain, hook, prio) in
            [("nat-prerouting", "prerouting", -100), ("nat-output", "output", -100), ("nat-postrouting", "postrouting", 100)]
        {
            tx.line(Section::Head, format_args!("add chain ip {t} {chain} {{ type nat hook {hook} priority {prio}; policy accept; }}"));
        }
        for map in Map::all() {
            let (what, decl) = map.declaration();
            tx.line(Section::Head, format_args!("add {what} ip {t} {} {{ {decl} }}", map.name()));
        }
        tx.line(Section::Head, format_args!("add set ip {t} nodeport-ips {{ type ipv4_addr; }}"));
        let mark = self.cfg.mark;
        let fixed: [(&str, Vec<String>); 6] = [
            ("nat-prerouting", vec!["jump services".into()]),
            ("nat-output", vec!["jump services".into()]),
            ("nat-postrouting", vec!["jump masquerading".into()]),
            (
                "services",
                vec![
                    "ip daddr . meta l4proto . th dport vmap @service-ips".into(),
                    "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports".into(),
                ],
            ),
            ("mark-for-masquerade", vec![format!("meta mark set meta mark or {mark:#x}")]),
            (
                "masquerading",
                vec![
                    "ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade".into(),
                    format!("meta mark and {mark:#x} == 0 return"),
                    format!("meta mark set meta mark xor {mark:#x}"),
                    "masquerade fully-random".into(),
                ],
            ),
        ];
        for (chain, rules) in fixed {
            tx.chain(t, chain, &rules);
        }
    }

    /// Whether traffic from `ip` to its own service needs the hairpin
    /// element: clients outside the cluster CIDR are masqueraded anyway.
    pub(super) fn needs_hairpin(&self, ip: Ipv4Addr) -> bool {
        self.cfg.cluster_cidr.is_none_or(|c| c.contains(ip))
    }
}
