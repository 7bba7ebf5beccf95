//! The built-in host load balancer (like k3s's ServiceLB): each
//! LoadBalancer service gets an address from `--lb-address-pool`, made
//! local to this host (addresses not yet local are added to
//! `--lb-interface`), and every TCP port of the service is relayed in user
//! space from that address to the service's NodePort on a ready node.

use berth_base::sync::RwLockExt;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use berth_api::pb::core::{LoadBalancerIngress, Service};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::pool::Pool;
use super::provider::Provider;
use crate::error::{Error, Result};

/// How long a relay waits for a node to accept before trying the next one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

type Backends = Arc<RwLock<Vec<IpAddr>>>;

struct Relay {
    node_port: u16,
    task: JoinHandle<()>,
}

struct Lb {
    ip: Ipv4Addr,
    /// Whether we added the address to the interface (and so remove it).
    added: bool,
    backends: Backends,
    relays: HashMap<u16, Relay>,
}

#[derive(Default)]
struct State {
    lbs: HashMap<String, Lb>,
    taken: BTreeSet<Ipv4Addr>,
}

/// The host provider.
pub struct HostProvider {
    pool: Pool,
    interface: String,
    state: Mutex<State>,
}

impl HostProvider {
    pub fn new(pool: Pool, interface: impl Into<String>) -> HostProvider {
        HostProvider { pool, interface: interface.into(), state: Mutex::default() }
    }

    /// The address for a new load balancer: the one asked for, or the one
    /// the service already shows (after a restart), or the first free one.
    fn choose(&self, state: &State, svc: &Service) -> Option<Ipv4Addr> {
        let free = |a: &Ipv4Addr| self.pool.contains(*a) && !state.taken.contains(a);
        let asked = svc.spec.as_ref().and_then(|s| s.load_balancer_ip.parse::<Ipv4Addr>().ok());
        let shown = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.first())
            .and_then(|i| i.ip.parse::<Ipv4Addr>().ok());
        asked.filter(free).or(shown.filter(free)).or_else(|| self.pool.first_free(&state.taken))
    }
}

#[async_trait::async_trait]
impl Provider for HostProvider {
    fn name(&self) -> &'static str {
        "host"
    }

    async fn ensure(&self, key: &str, svc: &Service, backends: &[IpAddr]) -> Result<Vec<LoadBalancerIngress>> {
        let mut state = self.state.lock().await;
        if !state.lbs.contains_key(key) {
            let ip = self
                .choose(&state, svc)
                .ok_or_else(|| Error::Config(format!("no free address left in --lb-address-pool {}", self.pool)))?;
            let added = make_local(ip, &self.interface).await?;
            state.taken.insert(ip);
            info!(service = key, %ip, added_to = if added { self.interface.as_str() } else { "" }, "load balancer address assigned");
            state.lbs.insert(key.to_string(), Lb { ip, added, backends: Arc::default(), relays: HashMap::new() });
        }
        let Some(lb) = state.lbs.get_mut(key) else { return Ok(Vec::new()) };
        *lb.backends.write_or_recover() = backends.to_vec();
        let wanted: HashMap<u16, u16> = svc
            .spec
            .as_ref()
            .map(|s| {
                s.ports
                    .iter()
                    .filter(|p| p.protocol.is_empty() || p.protocol == "TCP")
                    .filter_map(|p| Some((u16::try_from(p.port).ok()?, u16::try_from(p.node_port).ok().filter(|n| *n > 0)?)))
                    .collect()
            })
            .unwrap_or_default();
        lb.relays.retain(|port, relay| {
            let keep = wanted.get(port) == Some(&relay.node_port);
            if !keep {
                relay.task.abort();
            }
            keep
        });
        for (port, node_port) in wanted {
            if lb.relays.contains_key(&port) {
                continue;
            }
            let addr = SocketAddr::new(IpAddr::V4(lb.ip), port);
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Io { action: format!("listening on {addr} for service {key}"), source })?;
            debug!(service = key, %addr, node_port, "relaying");
            let task = tokio::spawn(relay(listener, node_port, lb.backends.clone()));
            lb.relays.insert(port, Relay { node_port, task });
        }
        Ok(vec![LoadBalancerIngress { ip: lb.ip.to_string(), hostname: String::new() }])
    }

    async fn release(&self, key: &str) -> Result<()> {
        let mut state = self.state.lock().await;
        let Some(lb) = state.lbs.remove(key) else { return Ok(()) };
        for r in lb.relays.values() {
            r.task.abort();
        }
        state.taken.remove(&lb.ip);
        if lb.added {
            remove_local(lb.ip, &self.interface).await;
        }
        info!(service = key, ip = %lb.ip, "load balancer address released");
        Ok(())
    }

    async fn has(&self, key: &str) -> bool {
        self.state.lock().await.lbs.contains_key(key)
    }

    async fn keys(&self) -> Vec<String> {
        self.state.lock().await.lbs.keys().cloned().collect()
    }
}

/// Makes `ip` an address of this host: Ok(true) if it had to be added to `interface`.
async fn make_local(ip: Ipv4Addr, interface: &str) -> Result<bool> {
    match std::net::TcpListener::bind((ip, 0)) {
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {}
        Err(source) => return Err(Error::Io { action: format!("checking whether {ip} is local"), source }),
    }
    let out = tokio::process::Command::new("ip")
        .args(["addr", "add", &format!("{ip}/32"), "dev", interface])
        .output()
        .await
        .map_err(|source| Error::Io { action: format!("running `ip addr add {ip}/32 dev {interface}`"), source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Config(format!("cannot add {ip} to {interface}: {}", stderr.trim())));
    }
    Ok(true)
}

async fn remove_local(ip: Ipv4Addr, interface: &str) {
    let r = tokio::process::Command::new("ip").args(["addr", "del", &format!("{ip}/32"), "dev", interface]).output().await;
    if !r.as_ref().is_ok_and(|o| o.status.success()) {
        warn!(%ip, interface, "cannot remove the load balancer address from the interface");
    }
}

/// Accepts connections and relays each to `node_port` on the first
/// backend that answers, starting with the next one in turn.
async fn relay(listener: TcpListener, node_port: u16, backends: Backends) {
    let turn = Arc::new(AtomicUsize::new(0));
    loop {
        let (mut inbound, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                debug!(cause = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let targets = backends.read_or_recover().clone();
        let start = turn.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            for i in 0..targets.len() {
                let target = SocketAddr::new(targets[(start + i) % targets.len()], node_port);
                match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
                    Ok(Ok(mut outbound)) => {
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                    _ => debug!(%target, "node port did not answer; trying the next node"),
                }
            }
            debug!(%peer, "no node answered; closing the connection");
        });
    }
}
