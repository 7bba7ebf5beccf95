//! The proxy's settings: the mode, sync periods, the names of what it installs (interface, chain prefix, table), NodePort addresses and the cluster CIDR.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

/// How service traffic is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Mode {
    /// A relay in this process per service port (TCP and UDP).
    #[default]
    Userspace,
    /// NAT chains in Kubernetes' shape, written with iptables-restore.
    Iptables,
    /// An IPVS virtual server per service port (needs the ip_vs module).
    Ipvs,
    /// One nftables table with verdict maps keyed by VIP and port.
    Nftables,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Userspace => "userspace",
            Mode::Iptables => "iptables",
            Mode::Ipvs => "ipvs",
            Mode::Nftables => "nftables",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which iptables the iptables mode drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IptablesBackend {
    /// iptables-nft (`iptables-nft-restore`): the rules land in nftables'
    /// `ip nat` table, next to Docker's.
    #[default]
    Nft,
    /// iptables-legacy (`iptables-legacy-restore`): the x_tables kernel
    /// interface; much faster for large rule sets.
    Legacy,
}

impl IptablesBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            IptablesBackend::Nft => "nft",
            IptablesBackend::Legacy => "legacy",
        }
    }
}

/// An IPv4 network such as `172.30.0.0/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("invalid CIDR {s:?}: write it like 172.30.0.0/16");
        let (ip, len) = s.split_once('/').unwrap_or((s, "32"));
        let addr: Ipv4Addr = ip.trim().parse().map_err(|_| bad())?;
        let prefix: u8 = len.trim().parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
        Ok(Cidr { addr: Ipv4Addr::from(u32::from(addr) & mask), prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Everything `run` needs besides the client and the health listener.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    /// The shortest time between two syncs; changes in between are batched.
    pub min_sync_period: Duration,
    /// How often everything is rewritten from scratch (repairing drift).
    pub sync_period: Duration,
    /// The interface that holds the VIPs.
    pub interface: String,
    /// Prefix of the iptables chains (`KUBE` gives `KUBE-SERVICES`, …).
    pub chain_prefix: String,
    /// The nftables table (family ip).
    pub table: String,
    pub iptables_backend: IptablesBackend,
    /// Where NodePorts answer. Loopback addresses are served by a relay in
    /// this process in every mode; the others by the mode's kernel rules.
    pub nodeport_addresses: Vec<Ipv4Addr>,
    /// Traffic to a VIP from outside this range is masqueraded.
    pub cluster_cidr: Option<Cidr>,
    /// The fwmark bit that marks packets for masquerading (Kubernetes: 14).
    pub masquerade_bit: u8,
    /// How long a UDP relay session lives without traffic.
    pub udp_idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Userspace,
            min_sync_period: Duration::from_secs(1),
            sync_period: Duration::from_secs(30),
            interface: crate::vip::DEFAULT_INTERFACE.into(),
            chain_prefix: "KUBE".into(),
            table: "berth".into(),
            iptables_backend: IptablesBackend::Nft,
            nodeport_addresses: vec![Ipv4Addr::LOCALHOST],
            cluster_cidr: Some(Cidr { addr: Ipv4Addr::new(172, 30, 0, 0), prefix: 16 }),
            masquerade_bit: 14,
            udp_idle_timeout: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// The fwmark of `masquerade_bit`.
    pub fn masquerade_mark(&self) -> u32 {
        1u32 << self.masquerade_bit.min(31)
    }

    /// NodePort addresses served by the kernel rules of iptables, ipvs and nftables.
    pub fn kernel_nodeport_addresses(&self) -> Vec<Ipv4Addr> {
        self.nodeport_addresses.iter().copied().filter(|a| !a.is_loopback()).collect()
    }

    /// Checks the names and values before anything is installed.
    pub fn validate(&self) -> Result<(), String> {
        crate::vip::check_name(&self.interface).map_err(|e| e.to_string())?;
        crate::iptables::check_prefix(&self.chain_prefix)?;
        crate::nftables::check_table(&self.table)?;
        if self.masquerade_bit > 31 {
            return Err(format!("--masquerade-bit {} is not a bit of a 32-bit mark (0-31)", self.masquerade_bit));
        }
        if self.nodeport_addresses.iter().any(|a| a.is_unspecified()) {
            return Err("--nodeport-addresses: give addresses, not 0.0.0.0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_parse_cidrs_and_mask_host_bits() {
        let c: Cidr = "172.30.1.7/16".parse().unwrap();
        assert_eq!(c.to_string(), "172.30.0.0/16");
        assert!(c.contains("172.30.255.1".parse().unwrap()));
        assert!(!c.contains("172.31.0.1".parse().unwrap()));
        assert_eq!("10.0.0.1".parse::<Cidr>().unwrap().prefix, 32);
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn should_split_loopback_node_port_addresses_from_kernel_ones() {
        let c = Config { nodeport_addresses: vec![Ipv4Addr::LOCALHOST, "172.29.0.1".parse().unwrap()], ..Default::default() };
        assert_eq!(c.kernel_nodeport_addresses(), vec!["172.29.0.1".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(c.masquerade_mark(), 0x4000);
    }
}
