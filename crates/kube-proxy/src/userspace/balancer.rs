//! Choosing an endpoint for a new connection: round robin over the ready endpoints of one service port, with `sessionAffinity: ClientIP` keeping a client on its endpoint until the affinity times out.

use berth_base::sync::MutexExt;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddrV4};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Past this many remembered clients, expired ones are swept on the next pick.
const SWEEP_AT: usize = 4096;

#[derive(Debug, Default)]
struct Inner {
    endpoints: Vec<SocketAddrV4>,
    /// Where the round robin goes next.
    next: usize,
    affinity: Option<Duration>,
    /// Client → (its endpoint, last time it was sent there).
    sessions: HashMap<IpAddr, (SocketAddrV4, Instant)>,
}

/// The endpoints of one service port and how connections are spread over them.
#[derive(Debug, Default)]
pub struct Balancer {
    inner: Mutex<Inner>,
}

impl Balancer {
    pub fn new(endpoints: &[SocketAddrV4], affinity: Option<Duration>) -> Balancer {
        let b = Balancer::default();
        b.update(endpoints, affinity);
        b
    }

    /// Replaces the endpoints (and the affinity). Clients whose endpoint is
    /// gone lose their affinity; connections already open are not touched.
    pub fn update(&self, endpoints: &[SocketAddrV4], affinity: Option<Duration>) {
        let mut inner = self.inner.lock_or_recover();
        if inner.endpoints != endpoints {
            inner.endpoints = endpoints.to_vec();
            let kept = inner.endpoints.clone();
            inner.sessions.retain(|_, (ep, _)| kept.contains(ep));
            if inner.next >= kept.len() {
                inner.next = 0;
            }
        }
        if inner.affinity != affinity {
            inner.affinity = affinity;
            inner.sessions.clear();
        }
    }

    /// The ready endpoints.
    pub fn endpoints(&self) -> Vec<SocketAddrV4> {
        self.inner.lock_or_recover().endpoints.clone()
    }

    /// The endpoint for a new connection from `client`, skipping those in
    /// `tried` (which failed to connect for this connection).
    pub fn pick(&self, client: IpAddr, tried: &[SocketAddrV4]) -> Option<SocketAddrV4> {
        let now = Instant::now();
        let mut inner = self.inner.lock_or_recover();
        if let Some(timeout) = inner.affinity {
            if inner.sessions.len() >= SWEEP_AT {
                inner.sessions.retain(|_, (_, last)| now.saturating_duration_since(*last) < timeout);
            }
            if let Some((ep, last)) = inner.sessions.get_mut(&client)
                && now.saturating_duration_since(*last) < timeout
                && !tried.contains(ep)
            {
                *last = now;
                return Some(*ep);
            }
        }
        let n = inner.endpoints.len();
        let start = inner.next;
        let chosen = (0..n).map(|i| (start + i) % n).find(|i| !tried.contains(&inner.endpoints[*i]))?;
        inner.next = (chosen + 1) % n;
        let ep = inner.endpoints[chosen];
        if inner.affinity.is_some() {
            inner.sessions.insert(client, (ep, now));
        }
        Some(ep)
    }

    /// `client` could not connect to `ep`: forget that it was sent there.
    pub fn failed(&self, client: IpAddr, ep: SocketAddrV4) {
        let mut inner = self.inner.lock_or_recover();
        if inner.sessions.get(&client).is_some_and(|(e, _)| *e == ep) {
            inner.sessions.remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(n: u8) -> Vec<SocketAddrV4> {
        (1..=n).map(|i| SocketAddrV4::new([172, 30, 0, i].into(), 80)).collect()
    }

    fn client(i: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, i])
    }

    #[test]
    fn should_go_round_robin_over_the_endpoints() {
        let b = Balancer::new(&eps(3), None);
        let picks: Vec<_> = (0..6).map(|_| b.pick(client(1), &[]).unwrap()).collect();
        assert_eq!(picks, [eps(3), eps(3)].concat());
    }

    #[test]
    fn should_skip_endpoints_that_failed_for_this_connection() {
        let b = Balancer::new(&eps(3), None);
        let all = eps(3);
        assert_eq!(b.pick(client(1), &[all[0]]), Some(all[1]));
        assert_eq!(b.pick(client(1), &all), None);
        assert_eq!(Balancer::new(&[], None).pick(client(1), &[]), None);
    }

    #[tokio::test(start_paused = true)]
    async fn should_keep_a_client_on_its_endpoint_until_affinity_times_out() {
        let b = Balancer::new(&eps(3), Some(Duration::from_secs(10)));
        let first = b.pick(client(1), &[]).unwrap();
        let other = b.pick(client(2), &[]).unwrap();
        assert_ne!(first, other);
        for _ in 0..5 {
            assert_eq!(b.pick(client(1), &[]), Some(first));
            tokio::time::advance(Duration::from_secs(9)).await;
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        // Expired: the round robin decides again (the next one in turn).
        assert_ne!(b.pick(client(1), &[]), Some(first));
    }

    #[test]
    fn should_drop_affinity_to_an_endpoint_that_is_gone_or_failed() {
        let all = eps(3);
        let b = Balancer::new(&all, Some(Duration::from_secs(100)));
        let first = b.pick(client(1), &[]).unwrap();
        let rest: Vec<_> = all.iter().copied().filter(|e| *e != first).collect();
        b.update(&rest, Some(Duration::from_secs(100)));
        let second = b.pick(client(1), &[]).unwrap();
        assert_ne!(second, first);
        assert_eq!(b.pick(client(1), &[]), Some(second));
        b.failed(client(1), second);
        assert_ne!(b.pick(client(1), &[second]), Some(second));
    }
}
