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
//!
//! # Layout
//! - `mod.rs`: the configuration and the [`Nftables`] proxier's state.
//! - `model`: the ruleset model: the maps and their elements (keys and values, and their
//!   netlink encoding), chains, affinity sets and the names they get.
//! - `objects`: what the table should hold: its fixed skeleton and each service port's
//!   elements, chains and sets.
//! - `tx`: a sync's transactions being written: the `nft -f` scripts and the element batch.
//! - `apply`: running those transactions, and listing what the table holds.
//! - `sync`: the [`Proxier`](crate::proxier::Proxier) implementation: full and partial syncs,
//!   and cleanup.

mod apply;
mod model;
mod objects;
mod sync;
mod tx;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::config::Cidr;
use crate::exec::Exec;
use crate::proxier::{Error, Result};

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
}
