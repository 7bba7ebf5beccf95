//! ClusterIP and NodePort allocation for Services: an IPv4 range and a
//! port range, each a set of taken values guarded by one lock.
//!
//! The authoritative record of an allocation is the stored Service itself
//! (its `spec.clusterIP` and `nodePort`s, written durably with it); the
//! in-memory sets are rebuilt from the stored Services at startup, which is
//! also the repair Kubernetes runs when its bitmap and the services disagree.

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
}

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

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rebuilds the taken sets from the stored Services (startup repair).
    /// Returns the values that two services claim at once, for a warning.
    pub fn restore<'a>(&self, held: impl IntoIterator<Item = &'a Held>) -> Vec<String> {
        let mut s = self.state();
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

    /// Takes a specific ClusterIP.
    pub fn take_ip(&self, ip: &str) -> Result<u32, Error> {
        let parsed: Ipv4Addr = ip.parse().map_err(|_| Error::OutOfRange { what: "IP", value: ip.into(), range: self.cidr.to_string() })?;
        let n = u32::from(parsed);
        if !self.cidr.contains_host(n) {
            return Err(Error::OutOfRange { what: "IP", value: ip.into(), range: self.cidr.to_string() });
        }
        if !self.state().ips.insert(n) {
            return Err(Error::Taken { what: "IP", value: ip.into() });
        }
        Ok(n)
    }

    /// Takes any free ClusterIP, starting from a random point of the range.
    pub fn next_ip(&self) -> Result<u32, Error> {
        let hosts = self.cidr.size() - 2;
        let start = rand_below(hosts);
        let mut s = self.state();
        for i in 0..hosts {
            let ip = self.cidr.base + 1 + (start + i) % hosts;
            if s.ips.insert(ip) {
                return Ok(ip);
            }
        }
        Err(Error::Full { what: "IP", range: self.cidr.to_string() })
    }

    /// Takes a specific NodePort.
    pub fn take_port(&self, port: i32) -> Result<u16, Error> {
        let p = u16::try_from(port).ok().filter(|p| (self.ports.first..=self.ports.last).contains(p));
        let p = p.ok_or_else(|| Error::OutOfRange { what: "port", value: port.to_string(), range: self.ports.to_string() })?;
        if !self.state().ports.insert(p) {
            return Err(Error::Taken { what: "port", value: port.to_string() });
        }
        Ok(p)
    }

    /// Takes any free NodePort.
    pub fn next_port(&self) -> Result<u16, Error> {
        let n = u32::from(self.ports.last - self.ports.first) + 1;
        let start = rand_below(n);
        let mut s = self.state();
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
        let mut s = self.state();
        if let Some(ip) = held.cluster_ip {
            s.ips.remove(&ip);
        }
        for p in &held.node_ports {
            s.ports.remove(p);
        }
    }

    /// How many values are taken (for metrics and tests).
    pub fn taken(&self) -> (usize, usize) {
        let s = self.state();
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
    fn should_hand_out_every_host_address_once_then_report_full() {
        let a = alloc();
        let mut got: Vec<u32> = (0..6).map(|_| a.next_ip().expect("free")).collect();
        got.sort();
        let want: Vec<u32> = (1..7).map(|i| u32::from(Ipv4Addr::new(10, 96, 0, i))).collect();
        assert_eq!(got, want);
        assert!(matches!(a.next_ip(), Err(Error::Full { .. })));
    }

    #[test]
    fn should_refuse_taken_and_out_of_range_requests() {
        let a = alloc();
        a.take_ip("10.96.0.3").expect("free");
        assert!(matches!(a.take_ip("10.96.0.3"), Err(Error::Taken { .. })));
        assert!(matches!(a.take_ip("10.96.0.0"), Err(Error::OutOfRange { .. })));
        assert!(matches!(a.take_ip("10.97.0.3"), Err(Error::OutOfRange { .. })));
        a.take_port(30001).expect("free");
        assert!(matches!(a.take_port(30001), Err(Error::Taken { .. })));
        assert!(matches!(a.take_port(80), Err(Error::OutOfRange { .. })));
    }

    #[test]
    fn should_reuse_released_values_and_rebuild_from_services() {
        let a = alloc();
        let ip = a.take_ip("10.96.0.2").expect("free");
        let port = a.take_port(30000).expect("free");
        a.release(&Held { cluster_ip: Some(ip), node_ports: vec![port] });
        a.take_ip("10.96.0.2").expect("released");
        let dup = a.restore(&[Held { cluster_ip: Some(ip), node_ports: vec![30002] }, Held { cluster_ip: Some(ip), node_ports: vec![] }]);
        assert_eq!(dup, ["10.96.0.2"]);
        assert_eq!(a.taken(), (1, 1));
        assert!(matches!(a.take_port(30002), Err(Error::Taken { .. })));
    }
}
