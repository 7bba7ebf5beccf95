//! The nftables mode: one table whose verdict and NAT maps are keyed by VIP, protocol and port, so that a lookup costs the same with 10 or 10,000 services and an update rewrites only the changed map elements.
//!
//! A sync is up to three transactions, each of which leaves a working
//! table: an `nft -f` script that declares what is missing and (re)writes
//! chains, one netlink batch that changes the map elements (no `nft` parser
//! for 100,000 elements: see [`crate::nfnetlink`]), and an `nft -f` script
//! that deletes the chains and sets nothing refers to any more. A partial
//! sync that only changes elements is the netlink batch alone.
//!
//! Layout of the table (family `ip`, default name `berth`):
//!
//! ```text
//! nat-prerouting, nat-output  → services
//! services:    ip daddr . l4proto . th dport  vmap @service-ips
//!              ip daddr @nodeport-ips  l4proto . th dport  vmap @service-nodeports
//! lb-N:        (masquerade off-cluster clients) dnat to the slot `numgen random mod N`
//!              of the service in @backends-tcp/udp    — one chain per endpoint count
//! nodeport-lb-N: the same for NodePorts, from @nodeport-backends-tcp/udp
//! svc-<hash>-…, nodeport-<hash>-…, ep-<hash>-…, set aff-<hash>:
//!              ClientIP affinity services only, as Kubernetes' nftables mode
//!              builds them (an affinity set per endpoint)
//! nat-postrouting → masquerading: masquerade marked packets and hairpin
//!              traffic (a pod reaching itself through its service, @hairpin)
//! ```
//!
//! The hairpin set holds the endpoints inside `--cluster-cidr` only: the
//! `lb-N` and affinity chains masquerade every client outside it already.
//!
//! A service without ready endpoints has no element: its VIP is a local
//! address with nothing listening, so clients get a reset at once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use tracing::{debug, warn};

use crate::config::Cidr;
use crate::exec::{self, ElementBatch, Exec};
use crate::model::{Changed, Protocol, ServicePort, State};
use crate::nfnetlink::{self, Batch, Data, Op};
use crate::proxier::{Error, Programmed, Proxier, Result, short_hash};

/// Checks a table name: nft's identifier syntax, kept short and simple.
pub fn check_table(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok { Ok(()) } else { Err(format!("invalid --table-name {name:?}: a letter, then up to 31 letters, digits, '-' or '_'")) }
}

/// What the nftables mode needs to know.
#[derive(Debug, Clone)]
pub struct NftConfig {
    pub table: String,
    /// Traffic to a VIP from outside this range is masqueraded.
    pub cluster_cidr: Option<Cidr>,
    /// Non-loopback addresses NodePorts answer on.
    pub nodeport_addresses: Vec<Ipv4Addr>,
    /// The fwmark bit that asks for masquerading.
    pub mark: u32,
}

/// The maps whose elements describe the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Map {
    ServiceIps,
    ServiceNodeports,
    BackendsTcp,
    BackendsUdp,
    NodeportBackendsTcp,
    NodeportBackendsUdp,
    Hairpin,
}

impl Map {
    fn name(self) -> &'static str {
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

    fn all() -> [Map; 7] {
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
    fn backends(protocol: Protocol) -> (Map, Map) {
        match protocol {
            Protocol::Tcp => (Map::BackendsTcp, Map::NodeportBackendsTcp),
            Protocol::Udp => (Map::BackendsUdp, Map::NodeportBackendsUdp),
        }
    }

    /// `map` or `set`, and the declaration. The backend maps are per
    /// protocol and name `tcp dport`/`udp dport` rather than `th dport`: nft
    /// 1.0.6 cannot read back a `th` key after a protocol match.
    fn declaration(self) -> (&'static str, &'static str) {
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
struct Element {
    map: Map,
    key: Key,
    value: Option<Value>,
}

/// The key of an element, by map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
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
enum Value {
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
fn port_bytes(port: u16) -> [u8; 4] {
    let [hi, lo] = port.to_be_bytes();
    [hi, lo, 0, 0]
}

impl Key {
    /// The key as nft sends it; returns its length in `out`.
    fn encode(&self, out: &mut [u8; 12]) -> usize {
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

/// The element changes of one sync: flushed maps, then deletions, then
/// additions, in one netlink batch.
struct ElementTx<'a> {
    table: &'a str,
    flush: Vec<Map>,
    delete: Vec<Element>,
    add: Vec<Element>,
}

impl ElementTx<'_> {
    fn is_empty(&self) -> bool {
        self.flush.is_empty() && self.delete.is_empty() && self.add.is_empty()
    }
}

impl ElementBatch for ElementTx<'_> {
    fn encode(&self) -> nfnetlink::Finished {
        let mut b = Batch::with_capacity(256 + (self.delete.len() + self.add.len()) * 64);
        for m in &self.flush {
            b.flush(self.table, m.name());
        }
        let mut key = [0u8; 12];
        let mut chain = String::new();
        for (op, list) in [(Op::Delete, &self.delete), (Op::Add, &self.add)] {
            for map in Map::all() {
                for e in list.iter().filter(|e| e.map == map) {
                    let len = e.key.encode(&mut key);
                    let mut value = [0u8; 8];
                    let data = match (&e.value, op) {
                        (_, Op::Delete) | (None, _) => Data::None,
                        (Some(Value::Endpoint(ep)), _) => {
                            value[..4].copy_from_slice(&ep.ip().octets());
                            value[4..].copy_from_slice(&port_bytes(ep.port()));
                            Data::Value(&value)
                        }
                        (Some(Value::Goto(c)), _) => Data::Goto(c.as_str()),
                        (Some(Value::Lb(n)), _) => {
                            chain.clear();
                            chain.push_str(&lb_chain(*n));
                            Data::Goto(&chain)
                        }
                        (Some(Value::NodePortLb(n)), _) => {
                            chain.clear();
                            chain.push_str(&nodeport_lb_chain(*n));
                            Data::Goto(&chain)
                        }
                    };
                    b.element(op, self.table, map.name(), &key[..len], data);
                }
            }
        }
        b.finish()
    }

    fn describe(&self) -> String {
        let t = self.table;
        let mut out = String::new();
        for m in &self.flush {
            let _ = writeln!(out, "flush {} ip {t} {}", m.declaration().0, m.name());
        }
        for (verb, list) in [("delete", &self.delete), ("add", &self.add)] {
            for map in Map::all() {
                let mut first = true;
                for e in list.iter().filter(|e| e.map == map) {
                    let _ = if first { write!(out, "{verb} element ip {t} {} {{ ", map.name()) } else { write!(out, ", ") };
                    first = false;
                    let _ = write!(out, "{}", e.key);
                    if let (Some(v), "add") = (&e.value, verb) {
                        let _ = write!(out, " : {v}");
                    }
                }
                if !first {
                    out.push_str(" }\n");
                }
            }
        }
        out
    }
}

/// A regular chain with its rules.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chain {
    name: String,
    rules: Vec<String>,
}

/// An affinity set: the clients an endpoint served recently.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AffinitySet {
    name: String,
    timeout_secs: u64,
}

/// What one service port needs in the table.
#[derive(Debug, Default)]
struct PortObjects {
    elements: Vec<Element>,
    chains: Vec<Chain>,
    sets: Vec<AffinitySet>,
    /// Endpoint counts whose shared `lb-N` / `nodeport-lb-N` chains it uses.
    lb: Option<usize>,
    nodeport_lb: Option<usize>,
}

/// Readable and unique suffix of a port's chains: `ns/name/tcp/port`.
fn port_label(p: &ServicePort) -> String {
    let port = if p.name.port.is_empty() { format!("p{}", p.port) } else { p.name.port.clone() };
    format!("{}/{}/{}/{}", p.name.namespace, p.name.name, p.protocol(), port)
}

fn svc_chain(p: &ServicePort) -> String {
    let label = port_label(p);
    format!("svc-{}-{label}", short_hash(&label, 8))
}

fn nodeport_chain(p: &ServicePort) -> String {
    let label = port_label(p);
    format!("nodeport-{}-{label}", short_hash(&label, 8))
}

fn ep_chain(p: &ServicePort, ep: SocketAddrV4) -> String {
    let label = port_label(p);
    format!("ep-{}-{label}__{}/{}", short_hash(&format!("{label}__{ep}"), 8), ep.ip(), ep.port())
}

fn affinity_set(p: &ServicePort, ep: SocketAddrV4, timeout: u64) -> String {
    format!("aff-{}", short_hash(&format!("{}__{ep}__{timeout}", port_label(p)), 13))
}

fn lb_chain(n: usize) -> String {
    format!("lb-{n}")
}

fn nodeport_lb_chain(n: usize) -> String {
    format!("nodeport-lb-{n}")
}

/// The nftables mode's rule writer.
pub struct Nftables<E: Exec> {
    cfg: NftConfig,
    exec: Arc<E>,
    /// How many service ports use each endpoint IP (its hairpin element exists while > 0).
    hairpin: HashMap<Ipv4Addr, usize>,
    /// `lb-N` chains written, with how many service ports use each.
    lb: BTreeMap<usize, usize>,
    /// `nodeport-lb-N` chains written, with how many NodePorts use each.
    nodeport_lb: BTreeMap<usize, usize>,
    /// Elements and rules installed, for the metrics.
    programmed: usize,
}

impl<E: Exec> Nftables<E> {
    pub fn new(cfg: NftConfig, exec: Arc<E>) -> Result<Self> {
        check_table(&cfg.table).map_err(Error::Config)?;
        Ok(Nftables { cfg, exec, hairpin: HashMap::new(), lb: BTreeMap::new(), nodeport_lb: BTreeMap::new(), programmed: 0 })
    }

    fn masquerade_rule(&self) -> Option<String> {
        self.cfg.cluster_cidr.map(|c| format!("ip saddr != {c} jump mark-for-masquerade"))
    }

    fn lb_rules(&self, n: usize) -> Vec<String> {
        let mut rules: Vec<String> = self.masquerade_rule().into_iter().collect();
        for proto in ["tcp", "udp"] {
            rules.push(format!(
                "meta l4proto {proto} dnat ip addr . port to ip daddr . {proto} dport . numgen random mod {n} map @backends-{proto}"
            ));
        }
        rules
    }

    fn nodeport_lb_rules(n: usize) -> Vec<String> {
        let mut rules = vec!["jump mark-for-masquerade".to_string()];
        for proto in ["tcp", "udp"] {
            rules.push(format!(
                "meta l4proto {proto} dnat ip addr . port to {proto} dport . numgen random mod {n} map @nodeport-backends-{proto}"
            ));
        }
        rules
    }

    /// The elements, chains and sets one service port needs.
    fn port_objects(&self, p: &ServicePort) -> PortObjects {
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
    fn write_skeleton(&self, tx: &mut Tx) {
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

    /// Reads the names of the chains and sets in the table (none if it is
    /// missing). Listing the table itself would fetch every element
    /// (seconds with 100,000 of them); these listings do not.
    fn list_objects(&self) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
        let mut out = String::new();
        for args in [&["list", "chains", "ip"][..], &["-t", "list", "sets", "ip"], &["-t", "list", "maps", "ip"]] {
            out.push_str(&self.exec.run("nft", args, None)?);
            out.push('\n');
        }
        Ok(parse_objects(&out, &self.cfg.table))
    }

    /// Runs a sync's transactions: the script that declares and rewrites
    /// chains, the element batch, and the script that removes what nothing
    /// refers to any more (each only when it has something to do).
    fn apply(&self, tx: Tx, elements: &ElementTx<'_>) -> Result<()> {
        let (first, last) = tx.finish();
        let started = std::time::Instant::now();
        if !first.is_empty() {
            self.exec.run("nft", &["-f", "-"], Some(first.as_bytes()))?;
        }
        let scripted = started.elapsed();
        if !elements.is_empty() {
            self.exec.nft_elements(elements)?;
        }
        let batched = started.elapsed();
        if !last.is_empty() {
            self.exec.run("nft", &["-f", "-"], Some(last.as_bytes()))?;
        }
        debug!(
            table = %self.cfg.table,
            script_bytes = first.len() + last.len(),
            script_ms = scripted.as_secs_f64() * 1000.0,
            elements_ms = (batched - scripted).as_secs_f64() * 1000.0,
            cleanup_ms = (started.elapsed() - batched).as_secs_f64() * 1000.0,
            "nft transactions"
        );
        Ok(())
    }

    /// Whether traffic from `ip` to its own service needs the hairpin
    /// element: clients outside the cluster CIDR are masqueraded anyway.
    fn needs_hairpin(&self, ip: Ipv4Addr) -> bool {
        self.cfg.cluster_cidr.is_none_or(|c| c.contains(ip))
    }
}

/// The chains and sets/maps of table `table` in nft listings (which may
/// hold several tables, one `table ip NAME {` block each).
fn parse_objects(out: &str, table: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut chains = BTreeSet::new();
    let mut sets = BTreeSet::new();
    let mut inside = false;
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["table", _family, name, "{"] => inside = *name == table,
            ["chain", name, "{", ..] if inside => {
                chains.insert(name.to_string());
            }
            ["set" | "map", name, "{", ..] if inside => {
                sets.insert(name.to_string());
            }
            _ => {}
        }
    }
    (chains, sets)
}

/// Where a statement goes. nft resolves names as it reads, so everything
/// is declared before any rule refers to it; removals go in a second
/// script, after the elements that referred to them are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// Declarations of the table, chains, maps and sets; flushes of chains.
    Head,
    /// Rules.
    Body,
    /// Emptying and deleting chains and sets nothing refers to any more.
    Post,
}

/// The `nft -f` scripts of a sync being written.
struct Tx {
    head: String,
    body: String,
    post: String,
}

impl Tx {
    fn new() -> Tx {
        Tx { head: String::with_capacity(1 << 12), body: String::with_capacity(1 << 12), post: String::new() }
    }

    fn section(&mut self, s: Section) -> &mut String {
        match s {
            Section::Head => &mut self.head,
            Section::Body => &mut self.body,
            Section::Post => &mut self.post,
        }
    }

    fn line(&mut self, s: Section, args: std::fmt::Arguments<'_>) {
        let out = self.section(s);
        let _ = out.write_fmt(args);
        out.push('\n');
    }

    fn len(&self) -> usize {
        self.head.len() + self.body.len() + self.post.len()
    }

    /// The script that runs before the elements change, and the one after.
    fn finish(self) -> (String, String) {
        let mut first = self.head;
        first.push_str(&self.body);
        (first, self.post)
    }

    /// Declares (if needed) and flushes a chain, and writes its rules.
    fn chain(&mut self, table: &str, name: &str, rules: &[String]) {
        self.line(Section::Head, format_args!("add chain ip {table} {name}"));
        self.line(Section::Head, format_args!("flush chain ip {table} {name}"));
        for r in rules {
            self.line(Section::Body, format_args!("add rule ip {table} {name} {r}"));
        }
    }
}

fn hairpin_element(ip: Ipv4Addr) -> Element {
    Element { map: Map::Hairpin, key: Key::Hairpin(ip), value: None }
}

impl<E: Exec> Proxier for Nftables<E> {
    fn mode(&self) -> &'static str {
        "nftables"
    }

    fn sync_full(&mut self, state: &State) -> Result<Programmed> {
        self.sync_full_or_recreate(state, true)
    }

    fn sync_changes(&mut self, _state: &State, changes: &[Changed]) -> Result<Programmed> {
        let t = self.cfg.table.clone();
        let mut del_elements = Vec::new();
        let mut add_elements = Vec::new();
        let mut old_chains: BTreeSet<String> = BTreeSet::new();
        let mut old_sets: BTreeSet<String> = BTreeSet::new();
        let mut new_chains: Vec<Chain> = Vec::new();
        let mut new_sets: Vec<AffinitySet> = Vec::new();
        let mut hairpin = self.hairpin.clone();
        let mut lb = self.lb.clone();
        let mut nodeport_lb = self.nodeport_lb.clone();
        let mut old_rules = 0;

        for change in changes {
            for p in change.removed_or_changed() {
                let o = self.port_objects(p);
                del_elements.extend(o.elements);
                old_rules += o.chains.iter().map(|c| c.rules.len()).sum::<usize>();
                old_chains.extend(o.chains.into_iter().map(|c| c.name));
                old_sets.extend(o.sets.into_iter().map(|s| s.name));
                for (counts, n) in [(&mut lb, o.lb), (&mut nodeport_lb, o.nodeport_lb)] {
                    if let Some(c) = n.and_then(|n| counts.get_mut(&n)) {
                        *c = c.saturating_sub(1);
                    }
                }
                for ep in p.endpoints.iter().filter(|ep| self.needs_hairpin(*ep.ip())) {
                    if let Some(n) = hairpin.get_mut(ep.ip()) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            for p in change.added_or_changed() {
                let o = self.port_objects(p);
                add_elements.extend(o.elements);
                new_chains.extend(o.chains);
                new_sets.extend(o.sets);
                for (counts, n) in [(&mut lb, o.lb), (&mut nodeport_lb, o.nodeport_lb)] {
                    if let Some(n) = n {
                        *counts.entry(n).or_default() += 1;
                    }
                }
                for ep in p.endpoints.iter().filter(|ep| self.needs_hairpin(*ep.ip())) {
                    *hairpin.entry(*ep.ip()).or_default() += 1;
                }
            }
        }
        // Hairpin elements follow the count of ports using each endpoint IP.
        for (ip, n) in &hairpin {
            let before = self.hairpin.get(ip).copied().unwrap_or(0);
            if before > 0 && *n == 0 {
                del_elements.push(hairpin_element(*ip));
            } else if before == 0 && *n > 0 {
                add_elements.push(hairpin_element(*ip));
            }
        }
        hairpin.retain(|_, n| *n > 0);
        // Shared lb chains come when first used and go when last unused.
        let mut new_lb_chains: Vec<(String, Vec<String>)> = Vec::new();
        let mut gone_lb_chains: Vec<(String, usize)> = Vec::new();
        for nodeport in [false, true] {
            let (after, before) = if nodeport { (&nodeport_lb, &self.nodeport_lb) } else { (&lb, &self.lb) };
            for (&n, &count) in after {
                let (name, rules) =
                    if nodeport { (nodeport_lb_chain(n), Self::nodeport_lb_rules(n)) } else { (lb_chain(n), self.lb_rules(n)) };
                match (before.get(&n).copied().unwrap_or(0), count) {
                    (0, c) if c > 0 => new_lb_chains.push((name, rules)),
                    (w, 0) if w > 0 => gone_lb_chains.push((name, rules.len())),
                    _ => {}
                }
            }
        }
        lb.retain(|_, c| *c > 0);
        nodeport_lb.retain(|_, c| *c > 0);
        old_rules += gone_lb_chains.iter().map(|(_, r)| r).sum::<usize>();
        old_chains.extend(gone_lb_chains.into_iter().map(|(n, _)| n));
        let new_chain_names: BTreeSet<String> = new_chains.iter().map(|c| c.name.clone()).collect();
        let new_set_names: BTreeSet<String> = new_sets.iter().map(|s| s.name.clone()).collect();

        let mut tx = Tx::new();
        let gone_chains: Vec<&String> = old_chains.difference(&new_chain_names).collect();
        for c in &gone_chains {
            tx.line(Section::Post, format_args!("flush chain ip {t} {c}"));
        }
        for c in &gone_chains {
            tx.line(Section::Post, format_args!("delete chain ip {t} {c}"));
        }
        for s in old_sets.difference(&new_set_names) {
            tx.line(Section::Post, format_args!("delete set ip {t} {s}"));
        }
        for s in &new_sets {
            tx.line(
                Section::Head,
                format_args!("add set ip {t} {} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; }}", s.name, s.timeout_secs),
            );
        }
        for (name, rules) in &new_lb_chains {
            tx.chain(&t, name, rules);
        }
        new_chains.sort_by_key(|c| !c.name.starts_with("ep-"));
        for c in &new_chains {
            tx.chain(&t, &c.name, &c.rules);
        }
        let (removed, added) = (del_elements.len(), add_elements.len());
        let elements = ElementTx { table: &t, flush: Vec::new(), delete: del_elements, add: add_elements };
        if tx.len() == 0 && elements.is_empty() {
            return Ok(Programmed { rules: self.programmed });
        }
        debug!(table = %t, bytes = tx.len(), removed, added, "nft partial sync");
        self.apply(tx, &elements)?;
        let new_rules = new_chains.iter().map(|c| c.rules.len()).sum::<usize>() + new_lb_chains.iter().map(|(_, r)| r.len()).sum::<usize>();
        self.programmed = (self.programmed + added + new_rules).saturating_sub(removed + old_rules);
        self.hairpin = hairpin;
        self.lb = lb;
        self.nodeport_lb = nodeport_lb;
        Ok(Programmed { rules: self.programmed })
    }

    fn cleanup(&mut self) -> Result<()> {
        match self.exec.run("nft", &["delete", "table", "ip", &self.cfg.table], None) {
            Ok(_) => Ok(()),
            Err(e @ exec::Error::Failed { .. }) if e.stderr().contains("No such file or directory") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl<E: Exec> Nftables<E> {
    /// A full sync; when the table cannot be amended and `recreate` is
    /// set, the table is deleted and written once more from nothing.
    fn sync_full_or_recreate(&mut self, state: &State, recreate: bool) -> Result<Programmed> {
        let t = self.cfg.table.clone();
        let (existing_chains, existing_sets) = self.list_objects()?;
        let mut tx = Tx::new();
        self.write_skeleton(&mut tx);
        tx.line(Section::Head, format_args!("flush set ip {t} nodeport-ips"));
        if !self.cfg.nodeport_addresses.is_empty() {
            let ips: Vec<String> = self.cfg.nodeport_addresses.iter().map(|a| a.to_string()).collect();
            tx.line(Section::Body, format_args!("add element ip {t} nodeport-ips {{ {} }}", ips.join(", ")));
        }

        let mut elements = Vec::with_capacity(state.port_count() + state.endpoint_count() * 2);
        let mut chains: Vec<Chain> = Vec::new();
        let mut sets: Vec<AffinitySet> = Vec::new();
        let mut lb: BTreeMap<usize, usize> = BTreeMap::new();
        let mut nodeport_lb: BTreeMap<usize, usize> = BTreeMap::new();
        let mut hairpin: HashMap<Ipv4Addr, usize> = HashMap::new();
        for p in state.ports() {
            let o = self.port_objects(p);
            elements.extend(o.elements);
            chains.extend(o.chains);
            sets.extend(o.sets);
            for (counts, n) in [(&mut lb, o.lb), (&mut nodeport_lb, o.nodeport_lb)] {
                if let Some(n) = n {
                    *counts.entry(n).or_default() += 1;
                }
            }
            for ep in p.endpoints.iter().filter(|ep| self.needs_hairpin(*ep.ip())) {
                *hairpin.entry(*ep.ip()).or_default() += 1;
            }
        }
        elements.extend(hairpin.keys().map(|ip| hairpin_element(*ip)));

        let mut wanted_chains: BTreeSet<String> =
            ["nat-prerouting", "nat-output", "nat-postrouting", "services", "mark-for-masquerade", "masquerading"].map(String::from).into();
        let mut rules = 0;
        for set in &sets {
            tx.line(
                Section::Head,
                format_args!("add set ip {t} {} {{ type ipv4_addr; flags dynamic,timeout; timeout {}s; }}", set.name, set.timeout_secs),
            );
        }
        for n in lb.keys() {
            let chain_rules = self.lb_rules(*n);
            rules += chain_rules.len();
            tx.chain(&t, &lb_chain(*n), &chain_rules);
            wanted_chains.insert(lb_chain(*n));
        }
        for n in nodeport_lb.keys() {
            let chain_rules = Self::nodeport_lb_rules(*n);
            rules += chain_rules.len();
            tx.chain(&t, &nodeport_lb_chain(*n), &chain_rules);
            wanted_chains.insert(nodeport_lb_chain(*n));
        }
        // Endpoint chains before the service chains that jump to them.
        chains.sort_by_key(|c| !c.name.starts_with("ep-"));
        for c in &chains {
            rules += c.rules.len();
            tx.chain(&t, &c.name, &c.rules);
            wanted_chains.insert(c.name.clone());
        }
        // What an earlier run left and nobody wants any more: flush every
        // such chain first, so that none is still referenced when deleted.
        let stale_chains: Vec<&String> = existing_chains.difference(&wanted_chains).collect();
        for c in &stale_chains {
            tx.line(Section::Post, format_args!("flush chain ip {t} {c}"));
        }
        for c in &stale_chains {
            tx.line(Section::Post, format_args!("delete chain ip {t} {c}"));
        }
        let fixed_sets: BTreeSet<String> = Map::all().iter().map(|m| m.name().to_string()).chain(["nodeport-ips".to_string()]).collect();
        let wanted_sets: BTreeSet<String> = sets.iter().map(|s| s.name.clone()).collect();
        for s in existing_sets.iter().filter(|s| !fixed_sets.contains(*s) && !wanted_sets.contains(*s)) {
            tx.line(Section::Post, format_args!("delete set ip {t} {s}"));
        }

        let count = elements.len();
        debug!(table = %t, bytes = tx.len(), elements = count, chains = wanted_chains.len(), "nft full sync");
        let elements = ElementTx { table: &t, flush: Map::all().to_vec(), delete: Vec::new(), add: elements };
        if let Err(e) = self.apply(tx, &elements) {
            // A table in a shape this version cannot amend (another version's
            // map types, say): start it again from nothing, once.
            if !recreate {
                return Err(e);
            }
            warn!(table = %t, cause = %e, "cannot amend the table; recreating it");
            self.exec.run("nft", &["delete", "table", "ip", &t], None).ok();
            return self.sync_full_or_recreate(state, false);
        }
        self.hairpin = hairpin;
        self.lb = lb;
        self.nodeport_lb = nodeport_lb;
        self.programmed = rules + count;
        Ok(Programmed { rules: self.programmed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::Recorder;
    use crate::model::tests::{endpoints, service};
    use crate::model::{State, service_ports};

    fn nft(r: &Arc<Recorder>, nodeports: &[&str]) -> Nftables<Recorder> {
        let cfg = NftConfig {
            table: "bt".into(),
            cluster_cidr: Some("172.30.0.0/16".parse().unwrap()),
            nodeport_addresses: nodeports.iter().map(|a| a.parse().unwrap()).collect(),
            mark: 0x4000,
        };
        Nftables::new(cfg, r.clone()).unwrap()
    }

    fn state_with(svcs: &[(&str, &str, &[&str])]) -> (State, Vec<Changed>) {
        let mut state = State::new();
        let mut changes = Vec::new();
        for (i, (name, ip, eps)) in svcs.iter().enumerate() {
            let svc = service(name, ip, &[("http", "TCP", 80, 30080 + i as i32)]);
            let e = endpoints(name, eps, &[], &[("http", "TCP", 8080)]);
            changes.extend(state.set(&format!("default/{name}"), service_ports(&svc, Some(&e)).unwrap()));
        }
        (state, changes)
    }

    /// The scripts and element batches of the calls recorded, in order.
    fn last_script(r: &Recorder) -> String {
        r.calls().into_iter().filter(|c| c.args == ["-f", "-"] || c.program == "netlink").map(|c| c.stdin).collect()
    }

    #[test]
    fn should_write_one_map_element_per_service_and_slot_in_a_full_sync() {
        let r = Arc::new(Recorder::new());
        let mut p = nft(&r, &["172.29.0.1"]);
        let (state, _) = state_with(&[("web", "10.96.0.10", &["172.30.0.2", "172.30.0.3"]), ("api", "10.96.0.11", &["172.30.0.4"])]);
        p.sync_full(&state).unwrap();
        let script = last_script(&r);
        assert!(script.contains("add table ip bt\n"), "{script}");
        assert!(script.contains("add rule ip bt services ip daddr . meta l4proto . th dport vmap @service-ips\n"), "{script}");
        assert!(script.contains("10.96.0.10 . tcp . 80 : goto lb-2"), "{script}");
        assert!(script.contains("10.96.0.11 . tcp . 80 : goto lb-1"), "{script}");
        assert!(script.contains("10.96.0.10 . 80 . 0 : 172.30.0.2 . 8080, 10.96.0.10 . 80 . 1 : 172.30.0.3 . 8080"), "{script}");
        assert!(script.contains("tcp . 30080 : goto nodeport-lb-2"), "{script}");
        assert!(script.contains("30080 . 0 : 172.30.0.2 . 8080"), "{script}");
        assert!(script.contains("add rule ip bt lb-2 ip saddr != 172.30.0.0/16 jump mark-for-masquerade\n"), "{script}");
        assert!(
            script.contains("meta l4proto tcp dnat ip addr . port to ip daddr . tcp dport . numgen random mod 2 map @backends-tcp"),
            "{script}"
        );
        assert!(script.contains("add element ip bt nodeport-ips { 172.29.0.1 }"), "{script}");
        assert!(script.contains("172.30.0.2 . 172.30.0.2"), "hairpin: {script}");
        // No per-service chain without affinity: the lookup is one map access.
        assert!(!script.contains("svc-"), "{script}");
    }

    #[test]
    fn should_remove_chains_and_sets_left_by_an_earlier_run() {
        let r = Arc::new(Recorder::new());
        r.answer(
            "nft list chains",
            Ok("table ip nat {\n\tchain lb-9 {\n\t}\n}\ntable ip bt {\n\tchain lb-7 {\n\t}\n\tchain services {\n\t}\n}\n"),
        );
        r.answer("nft -t list sets", Ok("table ip bt {\n\tset aff-OLD {\n\t\ttype ipv4_addr\n\t}\n}\n"));
        r.answer("nft -t list maps", Ok("table ip bt {\n\tmap backends-tcp {\n\t}\n}\n"));
        let mut p = nft(&r, &[]);
        p.sync_full(&State::new()).unwrap();
        let script = last_script(&r);
        assert!(script.contains("flush chain ip bt lb-7\n"), "{script}");
        assert!(script.contains("delete chain ip bt lb-7\n"), "{script}");
        assert!(script.contains("delete set ip bt aff-OLD\n"), "{script}");
        assert!(!script.contains("delete chain ip bt services"), "{script}");
        assert!(!script.contains("delete set ip bt backends-tcp"), "{script}");
        assert!(!script.contains("lb-9"), "another table's chain is not ours: {script}");
    }

    #[test]
    fn should_rewrite_only_the_changed_elements_in_a_partial_sync() {
        let r = Arc::new(Recorder::new());
        let mut p = nft(&r, &[]);
        let (mut state, _) = state_with(&[("web", "10.96.0.10", &["172.30.0.2", "172.30.0.3"]), ("api", "10.96.0.11", &["172.30.0.4"])]);
        p.sync_full(&state).unwrap();
        r.clear();
        // web loses an endpoint; api is untouched.
        let svc = service("web", "10.96.0.10", &[("http", "TCP", 80, 30080)]);
        let e = endpoints("web", &["172.30.0.2"], &["172.30.0.3"], &[("http", "TCP", 8080)]);
        let change = state.set("default/web", service_ports(&svc, Some(&e)).unwrap()).unwrap();
        p.sync_changes(&state, &[change]).unwrap();
        let script = last_script(&r);
        assert!(!script.contains("10.96.0.11"), "api must not be rewritten: {script}");
        assert!(script.contains("delete element ip bt service-ips { 10.96.0.10 . tcp . 80 }"), "{script}");
        assert!(script.contains("delete element ip bt backends-tcp { 10.96.0.10 . 80 . 0, 10.96.0.10 . 80 . 1 }"), "{script}");
        assert!(script.contains("delete element ip bt hairpin { 172.30.0.3 . 172.30.0.3 }"), "{script}");
        assert!(script.contains("add element ip bt service-ips { 10.96.0.10 . tcp . 80 : goto lb-1 }"), "{script}");
        assert!(script.contains("add element ip bt backends-tcp { 10.96.0.10 . 80 . 0 : 172.30.0.2 . 8080 }"), "{script}");
        assert!(!script.contains("add chain ip bt lb-1"), "lb-1 exists already: {script}");
    }

    #[test]
    fn should_build_affinity_services_with_a_set_per_endpoint() {
        let r = Arc::new(Recorder::new());
        let mut p = nft(&r, &["172.29.0.1"]);
        let mut svc = service("sticky", "10.96.0.20", &[("", "TCP", 80, 30090)]);
        svc.spec.as_mut().unwrap().session_affinity = "ClientIP".into();
        let e = endpoints("sticky", &["172.30.0.2", "172.30.0.3"], &[], &[("", "TCP", 80)]);
        let mut state = State::new();
        let change = state.set("default/sticky", service_ports(&svc, Some(&e)).unwrap()).unwrap();
        p.sync_changes(&state, std::slice::from_ref(&change)).unwrap();
        let script = last_script(&r);
        let svc_chain = format!("svc-{}-default/sticky/tcp/p80", short_hash("default/sticky/tcp/p80", 8));
        assert!(script.contains(&format!("10.96.0.20 . tcp . 80 : goto {svc_chain}")), "{script}");
        assert!(script.contains("flags dynamic,timeout; timeout 10800s;"), "{script}");
        assert!(script.contains("update @aff-"), "{script}");
        assert!(script.contains("meta l4proto tcp dnat to 172.30.0.3:80"), "{script}");
        assert!(script.contains("numgen random mod 2 vmap { 0 : goto ep-"), "{script}");
        assert!(script.contains("jump mark-for-masquerade\nadd rule ip bt nodeport-"), "{script}");
        // Endpoint chains exist before the service chain refers to them.
        let first_ep = script.find("add chain ip bt ep-").unwrap();
        let first_svc = script.find(&format!("add chain ip bt {svc_chain}")).unwrap();
        assert!(first_ep < first_svc);

        r.clear();
        let gone = state.set("default/sticky", Vec::new()).unwrap();
        p.sync_changes(&state, &[gone]).unwrap();
        let script = last_script(&r);
        assert!(script.contains(&format!("delete chain ip bt {svc_chain}")), "{script}");
        assert!(script.contains("delete set ip bt aff-"), "{script}");
        let flush = script.find(&format!("flush chain ip bt {svc_chain}")).unwrap();
        let delete_ep = script.find("delete chain ip bt ep-").unwrap();
        assert!(flush < delete_ep, "the service chain is emptied before its endpoint chains go: {script}");
    }

    #[test]
    fn should_write_ten_thousand_services_in_one_transaction() {
        let r = Arc::new(Recorder::new());
        let mut p = nft(&r, &[]);
        let mut state = State::new();
        for i in 0..10_000u32 {
            let ip = std::net::Ipv4Addr::from(0x0a60_0000 + i + 1).to_string();
            let eps: Vec<String> = (0..10u32).map(|e| std::net::Ipv4Addr::from(0xac1e_0000 + i * 10 + e).to_string()).collect();
            let eps: Vec<&str> = eps.iter().map(String::as_str).collect();
            let svc = service(&format!("s{i}"), &ip, &[("http", "TCP", 80, 0)]);
            let e = endpoints(&format!("s{i}"), &eps, &[], &[("http", "TCP", 8080)]);
            state.set(&format!("default/s{i}"), service_ports(&svc, Some(&e)).unwrap());
        }
        let programmed = p.sync_full(&state).unwrap();
        // Hairpin elements only for the 65,536 endpoints inside 172.30.0.0/16.
        assert_eq!(programmed.rules, 10_000 + 100_000 + 65_536 + 3, "elements and lb-10 rules");
        let script = last_script(&r);
        assert_eq!(script.matches(" : goto lb-10").count(), 10_000);
        let batch = r.calls().into_iter().filter(|c| c.program == "netlink").count();
        assert_eq!(batch, 1, "the elements go in one netlink batch");
    }

    #[test]
    fn should_leave_endpoints_outside_the_cluster_cidr_out_of_the_hairpin_set() {
        let r = Arc::new(Recorder::new());
        let mut p = nft(&r, &[]);
        let (state, _) = state_with(&[("web", "10.96.0.10", &["172.30.0.2", "100.64.0.3"])]);
        p.sync_full(&state).unwrap();
        let script = last_script(&r);
        assert!(script.contains("add element ip bt hairpin { 172.30.0.2 . 172.30.0.2 }"), "{script}");
        assert!(!script.contains("100.64.0.3 . 100.64.0.3"), "masqueraded by lb-2 already: {script}");
        assert!(script.contains("10.96.0.10 . 80 . 0 : 100.64.0.3 . 8080"), "{script}");
    }

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

    #[test]
    fn should_parse_chain_and_set_names_of_our_table_from_listings() {
        let (chains, sets) =
            parse_objects("table ip t {\n\tmap service-ips {\n\t\ttype x\n\t}\n\tchain svc-AB-ns/a/tcp/p80 {\n\t}\n}\n", "t");
        assert_eq!(chains.into_iter().collect::<Vec<_>>(), vec!["svc-AB-ns/a/tcp/p80"]);
        assert_eq!(sets.into_iter().collect::<Vec<_>>(), vec!["service-ips"]);
    }
}
