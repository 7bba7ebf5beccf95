//! The TCP relay of one listening address: accept, pick an endpoint (the next one when a connect fails), and copy bytes both ways until either side closes.

use std::net::{IpAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use berth_base::shutdown::Stop;
use prometheus_client::metrics::counter::Counter;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, trace};

use super::balancer::Balancer;

/// Connect timeouts of successive attempts, as Kubernetes' userspace proxy
/// had them; one endpoint per attempt.
const CONNECT_TIMEOUTS: [Duration; 4] =
    [Duration::from_millis(250), Duration::from_millis(500), Duration::from_secs(1), Duration::from_secs(2)];

/// Buffer per direction of a relayed connection: allocated (and zeroed)
/// per connection, so kept small for the many short connections services see.
const BUFFER: usize = 16 * 1024;

/// Counters the relays share.
#[derive(Clone, Debug, Default)]
pub struct RelayCounters {
    /// Client connections (TCP) or sessions (UDP) relayed to an endpoint.
    pub relayed: Counter,
    /// Connections to an endpoint that failed (then the next is tried).
    pub connect_errors: Counter,
    /// Clients turned away because no endpoint could be reached.
    pub rejected: Counter,
}

/// Accepts on `listener` until `stop` changes, relaying each connection.
pub async fn serve(listener: TcpListener, balancer: Arc<Balancer>, counters: RelayCounters, mut stop: Stop) {
    // Accepted connections inherit TCP_NODELAY from the listener: one system call less per connection.
    if let Err(e) = rustix::net::sockopt::set_tcp_nodelay(&listener, true) {
        debug!(cause = %e, "cannot set TCP_NODELAY on the listener");
    }
    loop {
        tokio::select! {
            biased;
            () = stop.stopped() => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let (balancer, counters) = (balancer.clone(), counters.clone());
                    tokio::spawn(relay(client, peer.ip(), balancer, counters));
                }
                Err(e) => {
                    // Out of file descriptors, usually: don't spin.
                    debug!(cause = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Connects `client` to an endpoint and copies until both directions end.
async fn relay(mut client: TcpStream, peer: IpAddr, balancer: Arc<Balancer>, counters: RelayCounters) {
    let Some(mut upstream) = connect(peer, &balancer, &counters).await else {
        counters.rejected.inc();
        return;
    };
    counters.relayed.inc();
    match tokio::io::copy_bidirectional_with_sizes(&mut client, &mut upstream, BUFFER, BUFFER).await {
        Ok((up, down)) => trace!(client = %peer, up, down, "connection closed"),
        Err(e) => trace!(client = %peer, cause = %e, "connection ended with an error"),
    }
}

/// The first endpoint that accepts a connection, trying the next one on
/// failure (bounded by the attempts and the endpoints).
pub async fn connect(peer: IpAddr, balancer: &Balancer, counters: &RelayCounters) -> Option<TcpStream> {
    let mut tried: Vec<SocketAddrV4> = Vec::new();
    for timeout in CONNECT_TIMEOUTS {
        let ep = balancer.pick(peer, &tried)?;
        match tokio::time::timeout(timeout, TcpStream::connect(ep)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Ok(Err(e)) => debug!(endpoint = %ep, cause = %e, "connect failed; trying the next endpoint"),
            Err(_) => debug!(endpoint = %ep, ?timeout, "connect timed out; trying the next endpoint"),
        }
        counters.connect_errors.inc();
        balancer.failed(peer, ep);
        tried.push(ep);
    }
    None
}
