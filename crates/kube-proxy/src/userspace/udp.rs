//! The UDP relay of one listening address: a session per client address, each with its own socket connected to the endpoint chosen for it, ending after an idle timeout.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use berth_base::shutdown::Stop;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::debug;

use super::balancer::Balancer;
use super::tcp::RelayCounters;

/// Largest datagram relayed.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams queued for one session before further ones are dropped (UDP may drop).
const QUEUE: usize = 256;

/// Relays datagrams arriving on `socket` until `stop` changes.
pub async fn serve(socket: UdpSocket, balancer: Arc<Balancer>, counters: RelayCounters, idle: Duration, mut stop: Stop) {
    let socket = Arc::new(socket);
    let mut sessions: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = tokio::select! {
            biased;
            () = stop.stopped() => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(e) => {
                    debug!(cause = %e, "udp receive failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let datagram = buf[..n].to_vec();
        if let Some(tx) = sessions.get(&client) {
            match tx.try_send(datagram) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(_)) => continue,
                // The session ended (idle): start a new one with this datagram.
                Err(mpsc::error::TrySendError::Closed(d)) => {
                    sessions.remove(&client);
                    start(&socket, &balancer, &counters, idle, client, d, &mut sessions).await;
                }
            }
        } else {
            start(&socket, &balancer, &counters, idle, client, datagram, &mut sessions).await;
        }
        if sessions.len() > 1024 {
            sessions.retain(|_, tx| !tx.is_closed());
        }
    }
}

/// Opens a session for `client` towards a chosen endpoint and sends it `first`.
async fn start(
    listen: &Arc<UdpSocket>,
    balancer: &Arc<Balancer>,
    counters: &RelayCounters,
    idle: Duration,
    client: SocketAddr,
    first: Vec<u8>,
    sessions: &mut HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
) {
    let Some(ep) = balancer.pick(client.ip(), &[]) else {
        counters.rejected.inc();
        return;
    };
    let upstream = match UdpSocket::bind(SocketAddr::from((IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))).await {
        Ok(s) => s,
        Err(e) => {
            debug!(cause = %e, "cannot open a udp socket for a session");
            return;
        }
    };
    if let Err(e) = upstream.connect(ep).await {
        counters.connect_errors.inc();
        balancer.failed(client.ip(), ep);
        debug!(endpoint = %ep, cause = %e, "cannot reach the endpoint");
        return;
    }
    counters.relayed.inc();
    let (tx, rx) = mpsc::channel(QUEUE);
    let _ = tx.try_send(first);
    sessions.insert(client, tx);
    tokio::spawn(session(listen.clone(), upstream, client, rx, idle));
}

/// Moves datagrams between one client and its endpoint until idle.
async fn session(listen: Arc<UdpSocket>, upstream: UdpSocket, client: SocketAddr, mut rx: mpsc::Receiver<Vec<u8>>, idle: Duration) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        tokio::select! {
            from_client = rx.recv() => match from_client {
                Some(d) => {
                    let _ = upstream.send(&d).await;
                }
                None => break,
            },
            from_endpoint = upstream.recv(&mut buf) => {
                // An error (ICMP port unreachable from the endpoint, say)
                // keeps the session until it is idle.
                if let Ok(n) = from_endpoint {
                    let _ = listen.send_to(&buf[..n], client).await;
                }
            }
            () = tokio::time::sleep(idle) => break,
        }
    }
}
