//! ClusterIP and NodePort allocation for Services: an IPv4 range and a
//! port range, each a set of taken values guarded by one lock.
//!
//! The authoritative record of an allocation is the stored Service itself
//! (its `spec.clusterIP` and `nodePort`s, written durably with it); the
//! in-memory sets are rebuilt from the stored Services at startup, which is
//! also the repair Kubernetes runs when its bitmap and the services disagree.
//!
//! As in Kubernetes, the first address of the range is reserved for the
//! apiserver's own `kubernetes` Service in `default` ([`KUBERNETES_SERVICE`]),
//! and addresses are handed out from the upper part of the range first, so
//! that the lower part (a sixteenth of the range, 16 to 256 addresses) stays
//! free for Services that ask for a specific address, such as the cluster
//! DNS Service's 10.96.0.10.

use berth_base::sync::MutexExt;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use berth_api::pb::core::Service;

/// Why an allocation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The requested value is taken by another Service.
    #[error("Invalid value: {value}: provided {what} is already allocated")]
    Taken { what: &'static str, value: String },
    /// The requested value lies outside the configured range.
    #[error("Invalid value: {value}: provided {what} is not in the valid range. The range of valid {what}s is {range}")]
    OutOfRange { what: &'static str, value: String, range: String },
    /// The address is reserved for another Service.
    #[error("Invalid value: {value}: provided {what} is reserved for the Service {owner}")]
    Reserved { what: &'static str, value: String, owner: &'static str },
    /// Every value of the range is taken.
    #[error("range is full: no {what} left in {range}")]
    Full { what: &'static str, range: String },
    /// The configured range is malformed.
    #[error("invalid range {0:?}")]
    BadRange(String),
}

/// An IPv4 CIDR such as `10.96.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = Error;
    fn from_str(s: &str) -> Result<Cidr, Error> {
        let (ip, len) = s.split_once('/').ok_or_else(|| Error::BadRange(s.into()))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| Error::BadRange(s.into()))?;
        let prefix: u8 = len.parse().map_err(|_| Error::BadRange(s.into()))?;
        if !(8..=30).contains(&prefix) {
            return Err(Error::BadRange(format!("{s}: the prefix must be between /8 and /30")));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Cidr { base: u32::from(ip) & mask, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

impl Cidr {
    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }
    /// Whether `ip` is a usable host address of the range (not the network
    /// or broadcast address).
    fn contains_host(&self, ip: u32) -> bool {
        ip > self.base && ip < self.base + self.size() - 1
    }

    /// The first host address (10.96.0.1 of 10.96.0.0/16): the `kubernetes` Service's.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }

    /// How many host addresses at the bottom of the range are kept for
    /// explicit requests (Kubernetes' static subrange: a sixteenth of the
    /// range, at least 16 and at most 256; none for ranges under 16).
    fn static_band(&self) -> u32 {
        let size = self.size();
        if size < 16 { 0 } else { (size / 16).clamp(16, 256) }
    }
}

/// The Service (`namespace/name`) the first address of the range is reserved for.
pub const KUBERNETES_SERVICE: &str = "default/kubernetes";

/// A port range such as `30000-32767`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl std::str::FromStr for PortRange {
    type Err = Error;
    fn from_str(s: &str) -> Result<PortRange, Error> {
        let (a, b) = s.split_once('-').ok_or_else(|| Error::BadRange(s.into()))?;
        let first: u16 = a.trim().parse().map_err(|_| Error::BadRange(s.into()))?;
        let last: u16 = b.trim().parse().map_err(|_| Error::BadRange(s.into()))?;
        if first == 0 || first > last {
            return Err(Error::BadRange(s.into()));
        }
        Ok(PortRange { first, last })
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// The values a Service holds, as allocated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub cluster_ip: Option<u32>,
    pub node_ports: Vec<u16>,
}

impl Held {
    /// What a stored Service holds.
    pub fn of(svc: &Service) -> Held {
        let spec = svc.spec.clone().unwrap_or_default();
        Held {
            cluster_ip: spec.cluster_ip.parse::<Ipv4Addr>().ok().map(u32::from),
            node_ports: spec.ports.iter().filter(|p| p.node_port > 0).filter_map(|p| u16::try_from(p.node_port).ok()).collect(),
        }
    }
}

/// Allocates ClusterIPs and NodePorts.
pub struct Allocator {
    cidr: Cidr,
    ports: PortRange,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    ips: BTreeSet<u32>,
    ports: BTreeSet<u16>,
}

impl Allocator {
    pub fn new(cidr: Cidr, ports: PortRange) -> Allocator {
        Allocator { cidr, ports, state: Mutex::new(State::default()) }
    }

    pub fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// Rebuilds the taken sets from the stored Services (startup repair).
    /// Returns the values that two services claim at once, for a warning.
    pub fn restore<'a>(&self, held: impl IntoIterator<Item = &'a Held>) -> Vec<String> {
        let mut s = self.state.lock_or_recover();
        s.ips.clear();
        s.ports.clear();
        let mut dup = Vec::new();
        for h in held {
            if let Some(ip) = h.cluster_ip
                && self.cidr.contains_host(ip)
                && !s.ips.insert(ip)
            {
                dup.push(Ipv4Addr::from(ip).to_string());
            }
            for p in &h.node_ports {
                if !s.ports.insert(*p) {
                    dup.push(p.to_string());
                }
            }
        }
        dup
    }

    /// Takes a specific ClusterIP for the Service `service` (`namespace/name`):
    /// the range's first address only for [`KUBERNETES_SERVICE`].
    pub fn take_ip(&self, ip: &str, service: &str) -> Result<u32, Error> {
        let parsed: Ipv4Addr = ip.parse().map_err(|_| Error::OutOfRange { what: "IP", value: ip.into(), range: self.cidr.to_string() })?;
        let n = u32::from(parsed);
        if !self.cidr.contains_host(n) {
            return Err(Error::OutOfRange { what: "IP", value: ip.into(), range: self.cidr.to_string() });
        }
        if parsed == self.cidr.first_host() && service != KUBERNETES_SERVICE {
            return Err(Error::Reserved { what: "IP", value: ip.into(), owner: KUBERNETES_SERVICE });
        }
        if !self.state.lock_or_recover().ips.insert(n) {
            return Err(Error::Taken { what: "IP", value: ip.into() });
        }
        Ok(n)
    }

    /// Takes any free ClusterIP but the reserved first one: from a random
    /// point of the upper band first, then of the lower (static) band.
    pub fn next_ip(&self) -> Result<u32, Error> {
        // Host addresses base+2 ..= base+size-2 (base+1 is reserved).
        let first = self.cidr.base + 2;
        let hosts = (self.cidr.size() - 2).saturating_sub(1);
        let band = self.cidr.static_band().saturating_sub(1).min(hosts);
        let mut s = self.state.lock_or_recover();
        for (start, len) in [(first + band, hosts - band), (first, band)] {
            if len == 0 {
                continue;
            }
            let offset = rand_below(len);
            for i in 0..len {
                let ip = start + (offset + i) % len;
                if s.ips.insert(ip) {
                    return Ok(ip);
                }
            }
        }
        Err(Error::Full { what: "IP", range: self.cidr.to_string() })
    }

    /// Takes a specific NodePort.
    pub fn take_port(&self, port: i32) -> Result<u16, Error> {
        let p = u16::try_from(port).ok().filter(|p| (self.ports.first..=self.ports.last).contains(p));
        let p = p.ok_or_else(|| Error::OutOfRange { what: "port", value: port.to_string(), range: self.ports.to_string() })?;
        if !self.state.lock_or_recover().ports.insert(p) {
            return Err(Error::Taken { what: "port", value: port.to_string() });
        }
        Ok(p)
    }

    /// Takes any free NodePort.
    pub fn next_port(&self) -> Result<u16, Error> {
        let n = u32::from(self.ports.last - self.ports.first) + 1;
        let start = rand_below(n);
        let mut s = self.state.lock_or_recover();
        for i in 0..n {
            let p = self.ports.first + ((start + i) % n) as u16;
            if s.ports.insert(p) {
                return Ok(p);
            }
        }
        Err(Error::Full { what: "port", range: self.ports.to_string() })
    }

    /// Gives values back.
    pub fn release(&self, held: &Held) {
        let mut s = self.state.lock_or_recover();
        if let Some(ip) = held.cluster_ip {
            s.ips.remove(&ip);
        }
        for p in &held.node_ports {
            s.ports.remove(p);
        }
    }

    /// How many values are taken (for metrics and tests).
    pub fn taken(&self) -> (usize, usize) {
        let s = self.state.lock_or_recover();
        (s.ips.len(), s.ports.len())
    }
}

fn rand_below(n: u32) -> u32 {
    use rand::Rng;
    if n == 0 { 0 } else { rand::rng().random_range(0..n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc() -> Allocator {
        Allocator::new("10.96.0.0/29".parse().expect("cidr"), "30000-30002".parse().expect("ports"))
    }

    #[test]
    fn should_hand_out_every_host_address_but_the_reserved_first_once_then_report_full() {
        let a = alloc();
        let mut got: Vec<u32> = (0..5).map(|_| a.next_ip().expect("free")).collect();
        got.sort();
        let want: Vec<u32> = (2..7).map(|i| u32::from(Ipv4Addr::new(10, 96, 0, i))).collect();
        assert_eq!(got, want);
        assert!(matches!(a.next_ip(), Err(Error::Full { .. })));
        a.take_ip("10.96.0.1", KUBERNETES_SERVICE).expect("the reserved address is the kubernetes Service's");
    }

    #[test]
    fn should_reserve_the_first_address_for_the_kubernetes_service_only() {
        let a = alloc();
        assert!(matches!(a.take_ip("10.96.0.1", "default/web"), Err(Error::Reserved { .. })));
        assert!(matches!(a.take_ip("10.96.0.1", "kube-system/kubernetes"), Err(Error::Reserved { .. })));
        a.take_ip("10.96.0.1", KUBERNETES_SERVICE).expect("free");
        assert!(matches!(a.take_ip("10.96.0.1", KUBERNETES_SERVICE), Err(Error::Taken { .. })));
    }

    #[test]
    fn should_keep_the_static_band_for_explicit_requests_while_the_upper_band_lasts() {
        // /24: 254 hosts, a static band of 16 (10.96.0.1-16), the first reserved.
        let a = Allocator::new("10.96.0.0/24".parse().expect("cidr"), "30000-30002".parse().expect("ports"));
        let dynamic: Vec<u32> = (0..238).map(|_| a.next_ip().expect("free")).collect();
        assert!(dynamic.iter().all(|ip| *ip > u32::from(Ipv4Addr::new(10, 96, 0, 16))), "the upper band is used first");
        a.take_ip("10.96.0.10", "kube-system/kube-dns").expect("the cluster DNS address is still free");
        let lower: Vec<u32> = (0..14).map(|_| a.next_ip().expect("the lower band once the upper is full")).collect();
        assert!(!lower.contains(&u32::from(Ipv4Addr::new(10, 96, 0, 1))));
        assert!(matches!(a.next_ip(), Err(Error::Full { .. })));
    }

    #[test]
    fn should_refuse_taken_and_out_of_range_requests() {
        let a = alloc();
        a.take_ip("10.96.0.3", "default/a").expect("free");
        assert!(matches!(a.take_ip("10.96.0.3", "default/b"), Err(Error::Taken { .. })));
        assert!(matches!(a.take_ip("10.96.0.0", "default/b"), Err(Error::OutOfRange { .. })));
        assert!(matches!(a.take_ip("10.97.0.3", "default/b"), Err(Error::OutOfRange { .. })));
        a.take_port(30001).expect("free");
        assert!(matches!(a.take_port(30001), Err(Error::Taken { .. })));
        assert!(matches!(a.take_port(80), Err(Error::OutOfRange { .. })));
    }

    #[test]
    fn should_reuse_released_values_and_rebuild_from_services() {
        let a = alloc();
        let ip = a.take_ip("10.96.0.2", "default/a").expect("free");
        let port = a.take_port(30000).expect("free");
        a.release(&Held { cluster_ip: Some(ip), node_ports: vec![port] });
        a.take_ip("10.96.0.2", "default/a").expect("released");
        let dup = a.restore(&[Held { cluster_ip: Some(ip), node_ports: vec![30002] }, Held { cluster_ip: Some(ip), node_ports: vec![] }]);
        assert_eq!(dup, ["10.96.0.2"]);
        assert_eq!(a.taken(), (1, 1));
        assert!(matches!(a.take_port(30002), Err(Error::Taken { .. })));
    }
}
