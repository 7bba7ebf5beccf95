//! Pod IP addresses from the node's podCIDR: one per pod, kept across
//! kubelet restarts (rebuilt from the sandboxes' labels), handed out in
//! turn so that a freed address is not reused at once.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// Why no address could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The node has no podCIDR yet.
    #[error("the node has no podCIDR yet: start the node controller or give the kubelet --pod-cidr")]
    NoCidr,
    /// The CIDR is malformed or not IPv4.
    #[error("invalid podCIDR {0:?}: expected an IPv4 CIDR such as 172.30.1.0/24")]
    BadCidr(String),
    /// Every address is taken.
    #[error("no free address left in the podCIDR {0}")]
    Exhausted(String),
}

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, Error> {
        let bad = || Error::BadCidr(s.to_string());
        let (ip, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 30 {
            return Err(bad());
        }
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        Ok(Cidr { base: u32::from(ip) & mask, prefix })
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) };
        u32::from(ip) & mask == self.base
    }

    /// The first usable address: the gateway of a network that is a whole bridge.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base + 1)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.prefix)
    }
}

/// The addresses of one node's pods.
#[derive(Debug, Default)]
pub struct Ipam {
    cidr: Option<Cidr>,
    /// Never handed out (the bridge's gateway).
    reserved: Vec<u32>,
    by_ip: HashMap<u32, String>,
    by_uid: HashMap<String, u32>,
    next: u32,
}

impl Ipam {
    /// An allocator for `cidr`, never handing out `reserved` addresses.
    pub fn new(reserved: Vec<Ipv4Addr>) -> Ipam {
        Ipam { reserved: reserved.into_iter().map(u32::from).collect(), ..Default::default() }
    }

    /// Sets (or changes) the range; addresses already handed out stay.
    pub fn set_cidr(&mut self, cidr: &str) -> Result<(), Error> {
        let c = Cidr::parse(cidr)?;
        if self.cidr != Some(c) {
            self.cidr = Some(c);
            self.next = 0;
        }
        Ok(())
    }

    pub fn cidr(&self) -> Option<Cidr> {
        self.cidr
    }

    /// Records an address already in use by a pod (found on a running sandbox).
    pub fn reserve(&mut self, uid: &str, ip: &str) {
        if let Ok(ip) = ip.parse::<Ipv4Addr>() {
            let ip = u32::from(ip);
            self.by_ip.insert(ip, uid.to_string());
            self.by_uid.insert(uid.to_string(), ip);
        }
    }

    /// The pod's address, allocating one if it has none.
    pub fn allocate(&mut self, uid: &str) -> Result<Ipv4Addr, Error> {
        if let Some(ip) = self.by_uid.get(uid) {
            return Ok(Ipv4Addr::from(*ip));
        }
        let cidr = self.cidr.ok_or(Error::NoCidr)?;
        let size = cidr.size();
        // Skip the network and broadcast addresses.
        for _ in 0..size {
            let offset = self.next % size;
            self.next = self.next.wrapping_add(1);
            if offset == 0 || offset == size - 1 {
                continue;
            }
            let ip = cidr.base + offset;
            if self.by_ip.contains_key(&ip) || self.reserved.contains(&ip) {
                continue;
            }
            self.by_ip.insert(ip, uid.to_string());
            self.by_uid.insert(uid.to_string(), ip);
            return Ok(Ipv4Addr::from(ip));
        }
        Err(Error::Exhausted(cidr.to_string()))
    }

    /// Frees the pod's address.
    pub fn release(&mut self, uid: &str) {
        if let Some(ip) = self.by_uid.remove(uid) {
            self.by_ip.remove(&ip);
        }
    }

    pub fn in_use(&self) -> usize {
        self.by_uid.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_hand_out_each_address_once_and_skip_the_gateway() {
        let mut ipam = Ipam::new(vec!["172.30.0.1".parse().unwrap()]);
        ipam.set_cidr("172.30.0.0/29").unwrap();
        let got: Vec<String> = (0..5).map(|i| ipam.allocate(&format!("p{i}")).unwrap().to_string()).collect();
        assert_eq!(got, ["172.30.0.2", "172.30.0.3", "172.30.0.4", "172.30.0.5", "172.30.0.6"]);
        assert_eq!(ipam.allocate("p6"), Err(Error::Exhausted("172.30.0.0/29".into())));
        // The same pod keeps its address.
        assert_eq!(ipam.allocate("p1").unwrap().to_string(), "172.30.0.3");
        ipam.release("p1");
        assert_eq!(ipam.allocate("p7").unwrap().to_string(), "172.30.0.3");
    }

    #[test]
    fn should_not_reuse_a_freed_address_at_once() {
        let mut ipam = Ipam::new(vec![]);
        ipam.set_cidr("10.0.0.0/24").unwrap();
        let a = ipam.allocate("a").unwrap();
        ipam.release("a");
        let b = ipam.allocate("b").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn should_keep_addresses_found_on_running_sandboxes() {
        let mut ipam = Ipam::new(vec![]);
        ipam.set_cidr("10.0.0.0/24").unwrap();
        ipam.reserve("old", "10.0.0.1");
        assert_eq!(ipam.allocate("old").unwrap().to_string(), "10.0.0.1");
        assert_eq!(ipam.allocate("new").unwrap().to_string(), "10.0.0.2");
    }

    #[test]
    fn should_refuse_without_a_cidr() {
        let mut ipam = Ipam::new(vec![]);
        assert_eq!(ipam.allocate("a"), Err(Error::NoCidr));
        assert!(ipam.set_cidr("nope").is_err());
        assert!(ipam.set_cidr("10.0.0.0/31").is_err());
    }
}
