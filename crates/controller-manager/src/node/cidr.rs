//! IPv4 CIDRs and the allocator that hands out each node's podCIDR from the
//! cluster CIDR: a bitmap of the cluster's subnets of the node mask size,
//! with a rotating cursor so that a released subnet is not reused at once.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 network such as `172.30.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    fn mask(prefix: u8) -> u32 {
        if prefix == 0 { 0 } else { u32::MAX << (32 - prefix as u32) }
    }

    /// The network's first address as a number.
    pub fn base(&self) -> u32 {
        u32::from(self.addr) & Self::mask(self.prefix)
    }

    /// Whether `other` lies entirely inside this network.
    pub fn contains(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && (other.base() & Self::mask(self.prefix)) == self.base()
    }

    /// Whether the address lies inside this network.
    pub fn contains_addr(&self, a: Ipv4Addr) -> bool {
        (u32::from(a) & Self::mask(self.prefix)) == self.base()
    }

    /// How many addresses the network has.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix as u32)
    }

    /// The `i`-th address of the network.
    pub fn nth(&self, i: u64) -> Option<Ipv4Addr> {
        (i < self.size()).then(|| Ipv4Addr::from(self.base().wrapping_add(i as u32)))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) =
            s.split_once('/').ok_or_else(|| format!("invalid CIDR {s:?}: expected an address and a prefix length, like 172.30.0.0/16"))?;
        let addr: Ipv4Addr = a.parse().map_err(|_| format!("invalid CIDR {s:?}: {a:?} is not an IPv4 address"))?;
        let prefix: u8 =
            p.parse().ok().filter(|p| *p <= 32).ok_or_else(|| format!("invalid CIDR {s:?}: the prefix length must be 0 to 32"))?;
        Ok(Cidr { addr: Ipv4Addr::from(u32::from(addr) & Cidr::mask(prefix)), prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Hands out the subnets of a cluster CIDR.
#[derive(Debug)]
pub struct Allocator {
    cluster: Cidr,
    mask: u8,
    used: Vec<bool>,
    next: usize,
}

impl Allocator {
    /// Subnets of `/mask` from `cluster`; `mask` must not be shorter than
    /// the cluster's prefix, nor make more than 65,536 subnets.
    pub fn new(cluster: Cidr, mask: u8) -> Result<Allocator, String> {
        if mask < cluster.prefix || mask > 32 {
            return Err(format!("--node-cidr-mask-size {mask} must be between the cluster CIDR's prefix ({}) and 32", cluster.prefix));
        }
        if mask - cluster.prefix > 16 {
            return Err(format!("--node-cidr-mask-size {mask} makes more than 65536 node subnets of {cluster}"));
        }
        Ok(Allocator { cluster, mask, used: vec![false; 1 << (mask - cluster.prefix)], next: 0 })
    }

    fn subnet(&self, i: usize) -> Cidr {
        let step = 1u32 << (32 - self.mask as u32);
        Cidr { addr: Ipv4Addr::from(self.cluster.base().wrapping_add(step.wrapping_mul(i as u32))), prefix: self.mask }
    }

    fn index(&self, c: &Cidr) -> Option<usize> {
        (c.prefix == self.mask && self.cluster.contains(c)).then(|| ((c.base() - self.cluster.base()) >> (32 - self.mask as u32)) as usize)
    }

    /// The next free subnet, now marked used; None when all are taken.
    pub fn allocate(&mut self) -> Option<Cidr> {
        let n = self.used.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if !self.used[i] {
                self.used[i] = true;
                self.next = (i + 1) % n;
                return Some(self.subnet(i));
            }
        }
        None
    }

    /// Marks a subnet used (a node that already has it); false when it is
    /// not one of this allocator's subnets.
    pub fn occupy(&mut self, c: &Cidr) -> bool {
        match self.index(c) {
            Some(i) => {
                self.used[i] = true;
                true
            }
            None => false,
        }
    }

    /// Takes the subnet holding the cluster network's first address (the
    /// bridge gateway on a one-host cluster) out of circulation.
    pub fn reserve_gateway(&mut self) {
        if let Some(first) = self.used.first_mut() {
            *first = true;
        }
    }

    /// Frees a subnet.
    pub fn release(&mut self, c: &Cidr) {
        if let Some(i) = self.index(c) {
            self.used[i] = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_parse_and_print_cidrs() {
        let c: Cidr = "172.30.5.7/16".parse().unwrap();
        assert_eq!(c.to_string(), "172.30.0.0/16");
        assert!("172.30.0.0".parse::<Cidr>().is_err());
        assert!("172.30.0.0/33".parse::<Cidr>().is_err());
        assert!(c.contains(&"172.30.9.0/24".parse().unwrap()));
        assert!(!c.contains(&"172.31.0.0/24".parse().unwrap()));
    }

    #[test]
    fn should_hand_out_each_subnet_once_until_released() {
        let mut a = Allocator::new("10.0.0.0/22".parse().unwrap(), 24).unwrap();
        assert!(a.occupy(&"10.0.1.0/24".parse().unwrap()));
        let got: Vec<String> = (0..3).filter_map(|_| a.allocate()).map(|c| c.to_string()).collect();
        assert_eq!(got, ["10.0.0.0/24", "10.0.2.0/24", "10.0.3.0/24"]);
        assert_eq!(a.allocate(), None);
        a.release(&"10.0.2.0/24".parse().unwrap());
        assert_eq!(a.allocate().map(|c| c.to_string()).as_deref(), Some("10.0.2.0/24"));
        assert!(!a.occupy(&"192.168.0.0/24".parse().unwrap()));
    }

    #[test]
    fn should_never_hand_out_the_gateways_subnet() {
        let mut a = Allocator::new("172.30.0.0/16".parse().unwrap(), 24).unwrap();
        a.reserve_gateway();
        assert_eq!(a.allocate().map(|c| c.to_string()).as_deref(), Some("172.30.1.0/24"));
    }
}
