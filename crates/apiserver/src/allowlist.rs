//! `--allow-hosts`: the client addresses (CIDRs) the API port accepts
//! connections from; others are closed before TLS and counted.

use std::net::IpAddr;

/// A CIDR that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid CIDR {0:?}: write it like 10.0.0.0/8, 127.0.0.1 or ::1/128")]
pub struct Error(pub String);

/// The allowed networks; empty allows everyone.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    nets: Vec<(IpAddr, u8)>,
}

impl Allowlist {
    /// Parses CIDRs (a bare address is a /32 or /128).
    pub fn parse<S: AsRef<str>>(cidrs: &[S]) -> Result<Allowlist, Error> {
        let mut nets = Vec::new();
        for c in cidrs {
            let c = c.as_ref().trim();
            if c.is_empty() {
                continue;
            }
            let (addr, prefix) = match c.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (c, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| Error(c.into()))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| Error(c.into()))?,
                None => max,
            };
            nets.push((ip, prefix));
        }
        Ok(Allowlist { nets })
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether a client at `ip` may connect.
    pub fn permits(&self, ip: IpAddr) -> bool {
        if self.nets.is_empty() {
            return true;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.nets.iter().any(|(net, prefix)| contains(*net, *prefix, ip))
    }
}

fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_allow_only_addresses_inside_the_networks() {
        let a = Allowlist::parse(&["127.0.0.1/32", "10.0.0.0/8"]).expect("parse");
        assert!(a.permits("127.0.0.1".parse().expect("ip")));
        assert!(a.permits("10.20.30.40".parse().expect("ip")));
        assert!(!a.permits("127.0.0.2".parse().expect("ip")));
        assert!(a.permits("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(Allowlist::parse(&["127.0.0.1/33"]).is_err());
        assert!(Allowlist::parse(&["nonsense"]).is_err());
        assert!(Allowlist::default().permits("192.0.2.1".parse().expect("ip")));
    }
}
