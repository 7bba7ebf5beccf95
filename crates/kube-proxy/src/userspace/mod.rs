//! The relays in this process: every service port's VIP and NodePorts in the userspace mode, and in every mode the NodePorts on loopback addresses (which kernel NAT cannot serve without `route_localnet`). One listener per address, port and protocol; the listeners of one service port share its balancer.
//!
//! # Layout
//! - [`balancer`]: round robin and ClientIP affinity over a port's endpoints.
//! - [`tcp`]: the TCP relay, retrying the next endpoint when a connect fails.
//! - [`udp`]: the UDP relay, a session per client.

pub mod balancer;
pub mod tcp;
pub mod udp;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use berth_base::shutdown::Trigger;
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::model::{Changed, PortName, Protocol, ServicePort, State};
pub use balancer::Balancer;
pub use tcp::RelayCounters;

/// Where relays listen for a service port.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Listen on the VIP itself (the userspace mode).
    pub vips: bool,
    /// Addresses whose NodePorts the relays serve.
    pub nodeport_addresses: Vec<Ipv4Addr>,
}

/// One listening address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Listen {
    pub protocol: Protocol,
    pub addr: SocketAddrV4,
}

struct Listener {
    port: PortName,
    stop: Trigger,
    task: JoinHandle<()>,
}

/// The relays and their balancers.
pub struct Relays {
    plan: Plan,
    udp_idle: Duration,
    counters: RelayCounters,
    listeners: BTreeMap<Listen, Listener>,
    balancers: HashMap<PortName, Arc<Balancer>>,
}

impl Relays {
    pub fn new(plan: Plan, udp_idle: Duration, counters: RelayCounters) -> Relays {
        Relays { plan, udp_idle, counters, listeners: BTreeMap::new(), balancers: HashMap::new() }
    }

    /// Whether this plan serves anything at all.
    pub fn is_idle(&self) -> bool {
        !self.plan.vips && self.plan.nodeport_addresses.is_empty()
    }

    /// The addresses relays listen on now.
    pub fn listening(&self) -> Vec<Listen> {
        self.listeners.keys().copied().collect()
    }

    fn listens(&self, p: &ServicePort) -> Vec<Listen> {
        let mut out = Vec::new();
        if self.plan.vips {
            out.push(Listen { protocol: p.protocol(), addr: p.vip() });
        }
        if let Some(np) = p.node_port {
            for a in &self.plan.nodeport_addresses {
                out.push(Listen { protocol: p.protocol(), addr: SocketAddrV4::new(*a, np) });
            }
        }
        out
    }

    /// Makes the relays match `state`; returns the addresses that could not
    /// be bound (they are retried on the next call).
    pub async fn sync_full(&mut self, state: &State) -> Vec<String> {
        let mut wanted: BTreeMap<Listen, &ServicePort> = BTreeMap::new();
        for p in state.ports() {
            for l in self.listens(p) {
                wanted.insert(l, p);
            }
        }
        let gone: Vec<Listen> =
            self.listeners.iter().filter(|(l, lis)| wanted.get(l).is_none_or(|p| p.name != lis.port)).map(|(l, _)| *l).collect();
        for l in gone {
            self.stop(l).await;
        }
        let mut ports: HashMap<PortName, &ServicePort> = HashMap::new();
        for p in state.ports() {
            ports.insert(p.name.clone(), p);
        }
        self.balancers.retain(|name, _| ports.contains_key(name));
        for p in ports.values() {
            self.balancer(p);
        }
        let mut errors = Vec::new();
        for (l, p) in wanted {
            if !self.listeners.contains_key(&l)
                && let Err(e) = self.start(l, p).await
            {
                errors.push(e);
            }
        }
        errors
    }

    /// Applies only `changes`; returns the addresses that could not be bound.
    pub async fn apply(&mut self, changes: &[Changed]) -> Vec<String> {
        let mut errors = Vec::new();
        for change in changes {
            let new_listens: BTreeMap<Listen, &ServicePort> =
                change.new.iter().flat_map(|p| self.listens(p).into_iter().map(move |l| (l, p))).collect();
            for p in &change.old {
                for l in self.listens(p) {
                    if new_listens.get(&l).is_none_or(|n| n.name != p.name) {
                        self.stop(l).await;
                    }
                }
                if !change.new.iter().any(|n| n.name == p.name) {
                    self.balancers.remove(&p.name);
                }
            }
            for p in &change.new {
                self.balancer(p);
            }
            for (l, p) in new_listens {
                if !self.listeners.contains_key(&l)
                    && let Err(e) = self.start(l, p).await
                {
                    errors.push(e);
                }
            }
        }
        errors
    }

    /// The balancer of `p`, created or updated with its endpoints.
    fn balancer(&mut self, p: &ServicePort) -> Arc<Balancer> {
        let b = self.balancers.entry(p.name.clone()).or_insert_with(|| Arc::new(Balancer::new(&p.endpoints, p.affinity))).clone();
        b.update(&p.endpoints, p.affinity);
        b
    }

    async fn start(&mut self, l: Listen, p: &ServicePort) -> Result<(), String> {
        let balancer = self.balancer(p);
        let (stop, stopped) = berth_base::shutdown::channel();
        let counters = self.counters.clone();
        let task = match l.protocol {
            Protocol::Tcp => {
                let listener = TcpListener::bind(l.addr).await.map_err(|e| format!("tcp {}: {e}", l.addr))?;
                tokio::spawn(tcp::serve(listener, balancer, counters, stopped))
            }
            Protocol::Udp => {
                let socket = UdpSocket::bind(l.addr).await.map_err(|e| format!("udp {}: {e}", l.addr))?;
                tokio::spawn(udp::serve(socket, balancer, counters, self.udp_idle, stopped))
            }
        };
        debug!(port = %p.name, protocol = %l.protocol, addr = %l.addr, "relay listening");
        self.listeners.insert(l, Listener { port: p.name.clone(), stop, task });
        Ok(())
    }

    /// Stops listening on `l` (open connections carry on) and waits until
    /// the socket is closed, so that the address can be bound again.
    async fn stop(&mut self, l: Listen) {
        if let Some(lis) = self.listeners.remove(&l) {
            lis.stop.fire();
            let _ = lis.task.await;
            debug!(port = %lis.port, protocol = %l.protocol, addr = %l.addr, "relay stopped");
        }
    }

    /// Stops every relay.
    pub async fn shutdown(&mut self) {
        let all: Vec<Listen> = self.listeners.keys().copied().collect();
        let n = all.len();
        for l in all {
            self.stop(l).await;
        }
        if n > 0 {
            info!(relays = n, "relays stopped");
        }
    }
}
