//! The ruleset model: the maps whose elements describe the services (with each element's key
//! and value, as nft prints them and as netlink sends them), the chains and affinity sets a
//! service port may need, and the names they get.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::model::{Protocol, ServicePort};
use crate::proxier::short_hash;

/// The maps whose elements describe the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Map {
    ServiceIps,
    ServiceNodeports,
    BackendsTcp,
    BackendsUdp,
    NodeportBackendsTcp,
    NodeportBackendsUdp,
    Hairpin,
}

impl Map {
    pub(super) fn name(self) -> &'static str {
        match self {
            Map::ServiceIps => "service-ips",
            Map::ServiceNodeports => "service-nodeports",
            Map::BackendsTcp => "backends-tcp",
            Map::BackendsUdp => "backends-udp",
            Map::NodeportBackendsTcp => "nodeport-backends-tcp",
            Map::NodeportBackendsUdp => "nodeport-backends-udp",
            Map::Hairpin => "hairpin",
        }
    }

    pub(super) fn all() -> [Map; 7] {
        [
            Map::ServiceIps,
            Map::ServiceNodeports,
            Map::BackendsTcp,
            Map::BackendsUdp,
            Map::NodeportBackendsTcp,
            Map::NodeportBackendsUdp,
            Map::Hairpin,
        ]
    }

    /// The backend maps of a protocol: (ClusterIP, NodePort).
    pub(super) fn backends(protocol: Protocol) -> (Map, Map) {
        match protocol {
            Protocol::Tcp => (Map::BackendsTcp, Map::NodeportBackendsTcp),
            Protocol::Udp => (Map::BackendsUdp, Map::NodeportBackendsUdp),
        }
    }

    /// `map` or `set`, and the declaration. The backend maps are per
    /// protocol and name `tcp dport`/`udp dport` rather than `th dport`: nft
    /// 1.0.6 cannot read back a `th` key after a protocol match.
    pub(super) fn declaration(self) -> (&'static str, &'static str) {
        match self {
            Map::ServiceIps => ("map", "type ipv4_addr . inet_proto . inet_service : verdict;"),
            Map::ServiceNodeports => ("map", "type inet_proto . inet_service : verdict;"),
            Map::BackendsTcp => ("map", "typeof ip daddr . tcp dport . numgen random mod 1 : ip daddr . tcp dport;"),
            Map::BackendsUdp => ("map", "typeof ip daddr . udp dport . numgen random mod 1 : ip daddr . udp dport;"),
            Map::NodeportBackendsTcp => ("map", "typeof tcp dport . numgen random mod 1 : ip daddr . tcp dport;"),
            Map::NodeportBackendsUdp => ("map", "typeof udp dport . numgen random mod 1 : ip daddr . udp dport;"),
            Map::Hairpin => ("set", "type ipv4_addr . ipv4_addr;"),
        }
    }
}

/// One element of a map: its key and, for maps, its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Element {
    pub(super) map: Map,
    pub(super) key: Key,
    pub(super) value: Option<Value>,
}

/// The key of an element, by map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    /// `service-ips`: VIP . protocol . port
    Service(Ipv4Addr, Protocol, u16),
    /// `service-nodeports`: protocol . NodePort
    NodePort(Protocol, u16),
    /// `backends-*`: VIP . port . slot
    Backend(Ipv4Addr, u16, u32),
    /// `nodeport-backends-*`: NodePort . slot
    NodePortBackend(u16, u32),
    /// `hairpin`: endpoint . endpoint
    Hairpin(Ipv4Addr),
}

/// What an element maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    /// `goto lb-N`
    Lb(usize),
    /// `goto nodeport-lb-N`
    NodePortLb(usize),
    /// `goto CHAIN`
    Goto(String),
    /// An endpoint: address . port
    Endpoint(SocketAddrV4),
}

fn proto_number(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

/// Padded to a 4-byte register, as nft concatenates fields.
pub(super) fn port_bytes(port: u16) -> [u8; 4] {
    let [hi, lo] = port.to_be_bytes();
    [hi, lo, 0, 0]
}

impl Key {
    /// The key as nft sends it; returns its length in `out`.
    pub(super) fn encode(&self, out: &mut [u8; 12]) -> usize {
        let mut put = |at: usize, b: [u8; 4]| out[at..at + 4].copy_from_slice(&b);
        match *self {
            Key::Service(ip, proto, port) => {
                put(0, ip.octets());
                put(4, [proto_number(proto), 0, 0, 0]);
                put(8, port_bytes(port));
                12
            }
            Key::NodePort(proto, port) => {
                put(0, [proto_number(proto), 0, 0, 0]);
                put(4, port_bytes(port));
                8
            }
            Key::Backend(ip, port, slot) => {
                put(0, ip.octets());
                put(4, port_bytes(port));
                // numgen's result is a host-order register.
                put(8, slot.to_ne_bytes());
                12
            }
            Key::NodePortBackend(port, slot) => {
                put(0, port_bytes(port));
                put(4, slot.to_ne_bytes());
                8
            }
            Key::Hairpin(ip) => {
                put(0, ip.octets());
                put(4, ip.octets());
                8
            }
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Service(ip, proto, port) => write!(f, "{ip} . {proto} . {port}", proto = proto.as_str()),
            Key::NodePort(proto, port) => write!(f, "{} . {port}", proto.as_str()),
            Key::Backend(ip, port, slot) => write!(f, "{ip} . {port} . {slot}"),
            Key::NodePortBackend(port, slot) => write!(f, "{port} . {slot}"),
            Key::Hairpin(ip) => write!(f, "{ip} . {ip}"),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Lb(n) => write!(f, "goto {}", lb_chain(*n)),
            Value::NodePortLb(n) => write!(f, "goto {}", nodeport_lb_chain(*n)),
            Value::Goto(chain) => write!(f, "goto {chain}"),
            Value::Endpoint(ep) => write!(f, "{} . {}", ep.ip(), ep.port()),
        }
    }
}

/// A regular chain with its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chain {
    pub(super) name: String,
    pub(super) rules: Vec<String>,
}

/// An affinity set: the clients an endpoint served recently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AffinitySet {
    pub(super) name: String,
    pub(super) timeout_secs: u64,
}

/// What one service port needs in the table.
#[derive(Debug, Default)]
pub(super) struct PortObjects {
    pub(super) elements: Vec<Element>,
    pub(super) chains: Vec<Chain>,
    pub(super) sets: Vec<AffinitySet>,
    /// Endpoint counts whose shared `lb-N` / `nodeport-lb-N` chains it uses.
    pub(super) lb: Option<usize>,
    pub(super) nodeport_lb: Option<usize>,
}

/// Readable and unique suffix of a port's chains: `ns/name/tcp/port`.
fn port_label(p: &ServicePort) -> String {
    let port = if p.name.port.is_empty() { format!("p{}", p.port) } else { p.name.port.clone() };
    format!("{}/{}/{}/{}", p.name.namespace, p.name.name, p.protocol(), port)
}

pub(super) fn svc_chain(p: &ServicePort) -> String {
    let label = port_label(p);
    format!("svc-{}-{label}", short_hash(&label, 8))
}

pub(super) fn nodeport_chain(p: &ServicePort) -> String {
    let label = port_label(p);
    format!("nodeport-{}-{label}", short_hash(&label, 8))
}

pub(super) fn ep_chain(p: &ServicePort, ep: SocketAddrV4) -> String {
    let label = port_label(p);
    format!("ep-{}-{label}__{}/{}", short_hash(&format!("{label}__{ep}"), 8), ep.ip(), ep.port())
}

pub(super) fn affinity_set(p: &ServicePort, ep: SocketAddrV4, timeout: u64) -> String {
    format!("aff-{}", short_hash(&format!("{}__{ep}__{timeout}", port_label(p)), 13))
}

pub(super) fn lb_chain(n: usize) -> String {
    format!("lb-{n}")
}

pub(super) fn nodeport_lb_chain(n: usize) -> String {
    format!("nodeport-lb-{n}")
}

pub(super) fn hairpin_element(ip: Ipv4Addr) -> Element {
    Element { map: Map::Hairpin, key: Key::Hairpin(ip), value: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_encode_keys_as_nft_does() {
        // The bytes `nft --debug=netlink add element` sends for the same elements.
        let mut k = [0u8; 12];
        let ip: Ipv4Addr = "10.96.0.10".parse().unwrap();
        let n = Key::Service(ip, Protocol::Tcp, 80).encode(&mut k);
        assert_eq!(&k[..n], &[10, 96, 0, 10, 6, 0, 0, 0, 0, 80, 0, 0]);
        let n = Key::Backend(ip, 80, 3).encode(&mut k);
        assert_eq!(&k[..8], &[10, 96, 0, 10, 0, 80, 0, 0]);
        assert_eq!(&k[8..n], &3u32.to_ne_bytes(), "numgen's register is in host order");
        let n = Key::NodePort(Protocol::Udp, 30080).encode(&mut k);
        assert_eq!(&k[..n], &[17, 0, 0, 0, 0x75, 0x80, 0, 0]);
        let n = Key::NodePortBackend(30080, 1).encode(&mut k);
        assert_eq!(&k[..4], &[0x75, 0x80, 0, 0]);
        assert_eq!(&k[4..n], &1u32.to_ne_bytes());
        let n = Key::Hairpin("1.2.3.4".parse().unwrap()).encode(&mut k);
        assert_eq!(&k[..n], &[1, 2, 3, 4, 1, 2, 3, 4]);
    }
}
