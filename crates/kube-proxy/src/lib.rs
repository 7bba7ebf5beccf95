//! berth-proxy: makes every Service reachable on its ClusterIP (and NodePorts) by forwarding to the ready endpoints, in one of four modes.
//!
//! # Layout
//! - [`config`]: the settings, the modes and CIDRs.
//! - [`model`]: service ports with their ready endpoints, built from Services and Endpoints, and their changes.
//! - [`sync`]: informers → work queue → rate-limited partial syncs and periodic full ones.
//! - [`vip`]: the interface that holds the VIPs (a dummy, or a bridge with no ports).
//! - [`proxier`]: the rule writers' trait; [`iptables`], [`ipvs`] and [`nftables`] implement it.
//! - [`userspace`]: relays in this process (the userspace mode, and loopback NodePorts in every mode).
//! - [`exec`]: running `ip`, `nft`, `iptables-restore` and `ipvsadm`, or recording the calls.
//! - [`nfnetlink`]: nf_tables set and map elements in one netlink batch (the nftables mode's bulk writes).
//! - [`metrics`]: `berth_proxy_…` metrics.

pub mod config;
pub mod exec;
pub mod iptables;
pub mod ipvs;
pub mod metrics;
pub mod model;
pub mod nfnetlink;
pub mod nftables;
pub mod proxier;
pub mod sync;
pub mod userspace;
pub mod vip;

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};

use berth_base::health::Checks;
use berth_client::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{info, warn};

pub use config::{Cidr, Config, IptablesBackend, Mode};

use crate::exec::{Exec, System};
use crate::iptables::{IptConfig, Iptables};
use crate::ipvs::{Ipvs, IpvsConfig};
use crate::metrics::Metrics;
use crate::nftables::{NftConfig, Nftables};
use crate::proxier::Proxier;
use crate::sync::{Kernel, Syncer};
use crate::userspace::{Plan, Relays};
use crate::vip::VipInterface;

/// Why the proxy could not start or clean up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The mode cannot run on this machine (e.g. no ip_vs for ipvs).
    #[error(transparent)]
    Proxier(#[from] proxier::Error),
    /// The VIP interface cannot be managed.
    #[error(transparent)]
    Vip(#[from] vip::Error),
    /// The health endpoint failed.
    #[error("health endpoint: {0}")]
    Health(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The rule writer of `config.mode` (none for userspace). For ipvs this is
/// where a kernel without `ip_vs` is refused.
pub fn proxier_for<E: Exec>(config: &Config, exec: Arc<E>) -> Result<Option<Box<dyn Proxier>>> {
    let nodeports = config.kernel_nodeport_addresses();
    let mark = config.masquerade_mark();
    Ok(match config.mode {
        Mode::Userspace => None,
        Mode::Nftables => Some(Box::new(Nftables::new(
            NftConfig { table: config.table.clone(), cluster_cidr: config.cluster_cidr, nodeport_addresses: nodeports, mark },
            exec,
        )?)),
        Mode::Iptables => Some(Box::new(Iptables::new(
            IptConfig {
                prefix: config.chain_prefix.clone(),
                backend: config.iptables_backend,
                cluster_cidr: config.cluster_cidr,
                nodeport_addresses: nodeports,
                mark,
            },
            exec,
        )?)),
        Mode::Ipvs => Some(Box::new(Ipvs::new(
            IpvsConfig { interface: config.interface.clone(), nodeport_addresses: nodeports, scheduler: "rr".into() },
            exec,
            Path::new(ipvs::PROC_IP_VS),
        )?)),
    })
}

/// Where the relays listen in `config.mode`.
pub fn relay_plan(config: &Config) -> Plan {
    match config.mode {
        Mode::Userspace => Plan { vips: true, nodeport_addresses: config.nodeport_addresses.clone() },
        _ => Plan { vips: false, nodeport_addresses: config.nodeport_addresses.iter().copied().filter(|a| a.is_loopback()).collect() },
    }
}

/// Proxies services until `shutdown` resolves, serving health and metrics
/// on `health`. Rules stay installed on exit (a restart picks them up);
/// [`cleanup`] removes them.
pub async fn run(config: Config, client: Client, health: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
    config.validate().map_err(Error::Config)?;
    let exec = Arc::new(System);
    let proxier = proxier_for(&config, exec.clone())?;
    let vip = VipInterface::new(&config.interface, exec)?;
    let metrics = Arc::new(Metrics::new(config.mode.as_str()));
    let relays = Relays::new(relay_plan(&config), config.udp_idle_timeout, metrics.relay.clone());

    let (ready_tx, ready_rx) = watch::channel(false);
    let (trigger, stop) = berth_base::shutdown::channel();
    let interface = config.interface.clone();
    let checks = Checks::builder()
        .ready("synced", move || if *ready_rx.borrow() { Ok(()) } else { Err("the first full sync has not succeeded yet".into()) })
        .ready("interface", move || {
            // The full sync creates it; it must stay there to hold the VIPs.
            if std::path::Path::new("/sys/class/net").join(&interface).exists() {
                Ok(())
            } else {
                Err(format!("the VIP interface {interface} does not exist"))
            }
        })
        .build();
    let health_task = tokio::spawn(berth_base::health::serve(health, metrics.registry.clone(), checks, stop.wait()));
    info!(
        mode = %config.mode,
        interface = %config.interface,
        nodeport_addresses = ?config.nodeport_addresses,
        server = %client.server(),
        "berth-proxy starting"
    );
    let syncer = Syncer {
        kernel: Arc::new(Mutex::new(Kernel { vip, proxier })),
        relays,
        metrics,
        min_sync_period: config.min_sync_period,
        sync_period: config.sync_period.max(config.min_sync_period),
    };
    syncer.run(client, ready_tx, shutdown).await;
    trigger.fire();
    match health_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Error::Health(e)),
        Err(e) => warn!(cause = %e, "health task ended abnormally"),
    }
    info!("berth-proxy stopped");
    Ok(())
}

/// Removes everything the proxy installs with these names, in every mode:
/// IPVS virtual servers on its VIPs (when the kernel has IPVS), the
/// nftables table, the iptables chains (both backends) and the VIP
/// interface. Blocking. Returns what failed, if anything.
pub fn cleanup<E: Exec>(config: &Config, exec: Arc<E>) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let nodeports = config.kernel_nodeport_addresses();
    if Path::new(ipvs::PROC_IP_VS).exists() {
        let cfg = IpvsConfig { interface: config.interface.clone(), nodeport_addresses: nodeports.clone(), scheduler: "rr".into() };
        match Ipvs::new(cfg, exec.clone(), Path::new(ipvs::PROC_IP_VS)) {
            Ok(mut p) => {
                if let Err(e) = p.cleanup() {
                    errors.push(format!("ipvs: {e}"));
                }
            }
            Err(e) => info!(cause = %e, "no IPVS cleanup"),
        }
    }
    let nft = NftConfig { table: config.table.clone(), cluster_cidr: None, nodeport_addresses: Vec::new(), mark: config.masquerade_mark() };
    match Nftables::new(nft, exec.clone()).and_then(|mut p| p.cleanup()) {
        Ok(()) => {}
        Err(proxier::Error::Exec(exec::Error::Spawn { .. })) => info!("no nft tool: nothing of the nftables mode to remove"),
        Err(e) => errors.push(format!("nftables: {e}")),
    }
    for backend in [IptablesBackend::Nft, IptablesBackend::Legacy] {
        let cfg = IptConfig {
            prefix: config.chain_prefix.clone(),
            backend,
            cluster_cidr: None,
            nodeport_addresses: Vec::new(),
            mark: config.masquerade_mark(),
        };
        match Iptables::new(cfg, exec.clone()).and_then(|mut p| p.cleanup()) {
            Ok(()) => {}
            Err(proxier::Error::Exec(exec::Error::Spawn { .. })) => {
                info!(backend = backend.as_str(), "no such iptables: nothing to remove")
            }
            Err(e) => errors.push(format!("iptables ({}): {e}", backend.as_str())),
        }
    }
    match VipInterface::delete(exec.as_ref(), &config.interface) {
        Ok(true) => info!(interface = %config.interface, "removed the VIP interface"),
        Ok(false) => {}
        Err(e) => errors.push(format!("interface {}: {e}", config.interface)),
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}
