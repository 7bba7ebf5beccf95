//! The load balancer address pool (`--lb-address-pool`): a CIDR or an
//! inclusive range `a.b.c.d-e.f.g.h`, and which of its addresses are taken.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::node::cidr::Cidr;

/// The most addresses a pool may hold.
const MAX_POOL: u64 = 65_536;

/// A set of addresses to hand out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    first: u32,
    last: u32,
    spec: String,
}

impl FromStr for Pool {
    type Err = String;

    fn from_str(s: &str) -> Result<Pool, String> {
        let s = s.trim();
        let (first, last) = if let Some((a, b)) = s.split_once('-') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| format!("invalid address pool {s:?}: {a:?} is not an IPv4 address"))?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| format!("invalid address pool {s:?}: {b:?} is not an IPv4 address"))?;
            (u32::from(a), u32::from(b))
        } else if s.contains('/') {
            let c: Cidr = s.parse()?;
            let (base, size) = (c.base(), c.size());
            // A network's own and broadcast addresses are not handed out, except for /31 and /32.
            if size <= 2 { (base, base + (size as u32 - 1)) } else { (base + 1, base + (size as u32 - 2)) }
        } else {
            let a: Ipv4Addr = s
                .parse()
                .map_err(|_| format!("invalid address pool {s:?}: write a CIDR (10.0.0.0/28) or a range (10.0.0.10-10.0.0.20)"))?;
            (u32::from(a), u32::from(a))
        };
        if last < first {
            return Err(format!("invalid address pool {s:?}: the range ends before it starts"));
        }
        if (last - first) as u64 + 1 > MAX_POOL {
            return Err(format!("invalid address pool {s:?}: more than {MAX_POOL} addresses"));
        }
        Ok(Pool { first, last, spec: s.to_string() })
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

impl Pool {
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(a))
    }

    /// The first address not in `taken`.
    pub fn first_free(&self, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        (self.first..=self.last).map(Ipv4Addr::from).find(|a| !taken.contains(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_parse_ranges_and_cidrs() {
        let p: Pool = "127.0.10.1-127.0.10.3".parse().unwrap();
        let mut taken = BTreeSet::new();
        taken.insert("127.0.10.1".parse().unwrap());
        assert_eq!(p.first_free(&taken), Some("127.0.10.2".parse().unwrap()));
        let c: Pool = "10.0.0.0/30".parse().unwrap();
        assert!(
            !c.contains("10.0.0.0".parse().unwrap()) && c.contains("10.0.0.1".parse().unwrap()) && !c.contains("10.0.0.3".parse().unwrap())
        );
        let one: Pool = "10.0.0.7/32".parse().unwrap();
        assert_eq!(one.first_free(&BTreeSet::new()), Some("10.0.0.7".parse().unwrap()));
        assert!("10.0.0.9-10.0.0.1".parse::<Pool>().is_err());
        assert!("nonsense".parse::<Pool>().is_err());
    }
}
