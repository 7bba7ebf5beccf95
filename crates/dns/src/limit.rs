//! Per-client fairness over UDP: a token bucket per client, so that one
//! client flooding the server (a pod in a resolve loop, a broken library)
//! has its excess dropped before any parsing, while every other client
//! keeps being answered. A client is a source address; queries from this
//! host's own addresses are relayed ones (berth-proxy's userspace mode
//! relays every pod's queries from the node's address, one socket per pod
//! session), so there a client is the address and port. Kept by the UDP
//! loop alone, so it needs no lock; idle clients are forgotten so memory
//! stays bounded.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Clients remembered before idle ones are swept.
const SWEEP_AT: usize = 16_384;
/// A client idle this long starts again with a full bucket.
const IDLE: Duration = Duration::from_secs(2);

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Who a bucket belongs to: a remote address, or one socket of this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    Address(IpAddr),
    Relayed(SocketAddr),
}

/// Token buckets by client: `rate` queries per second, bursts of up to one second's worth.
pub struct ClientLimiter {
    rate: f64,
    buckets: HashMap<Client, Bucket>,
    /// Whether an address is this host's own (a bind to it succeeds), remembered.
    local: HashMap<IpAddr, bool>,
}

impl ClientLimiter {
    /// `rate` queries per second per client; 0 means no limit.
    pub fn new(rate: u32) -> ClientLimiter {
        ClientLimiter { rate: f64::from(rate), buckets: HashMap::new(), local: HashMap::new() }
    }

    fn client(&mut self, peer: SocketAddr) -> Client {
        if self.local.len() >= SWEEP_AT {
            self.local.clear();
        }
        let local = *self.local.entry(peer.ip()).or_insert_with(|| std::net::UdpSocket::bind((peer.ip(), 0)).is_ok());
        if local { Client::Relayed(peer) } else { Client::Address(peer.ip()) }
    }

    /// Whether a query from `peer` arriving `now` is answered (and takes a token).
    pub fn allow(&mut self, peer: SocketAddr, now: Instant) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        let client = self.client(peer);
        if self.buckets.len() >= SWEEP_AT && !self.buckets.contains_key(&client) {
            self.buckets.retain(|_, b| now.saturating_duration_since(b.last) < IDLE);
        }
        let rate = self.rate;
        let bucket = self.buckets.entry(client).or_insert(Bucket { tokens: rate, last: now });
        let refill = now.saturating_duration_since(bucket.last).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refill).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Clients currently remembered.
    pub fn clients(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A remote address (TEST-NET-2: never this host's).
    fn ip(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, last], 5353))
    }

    #[test]
    fn should_drop_one_clients_excess_and_not_anothers() {
        let mut l = ClientLimiter::new(100);
        let t = Instant::now();
        let flood = (0..1000).filter(|_| l.allow(ip(2), t)).count();
        assert_eq!(flood, 100, "a burst of one second's worth, then nothing");
        assert!(l.allow(ip(3), t), "another client is still answered");
        // Half a second later half the rate is back.
        let later = (0..1000).filter(|_| l.allow(ip(2), t + Duration::from_millis(500))).count();
        assert_eq!(later, 50);
    }

    #[test]
    fn should_limit_this_hosts_relayed_queries_per_socket() {
        let mut l = ClientLimiter::new(10);
        let t = Instant::now();
        let relay = |port| SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!((0..100).filter(|_| l.allow(relay(4000), t)).count(), 10);
        assert!(l.allow(relay(4001), t), "another relay session is another client");
        // A remote address is one client whatever its port.
        assert_eq!((0..100).filter(|i| l.allow(SocketAddr::from(([198, 51, 100, 9], 1000 + i)), t)).count(), 10);
    }

    #[test]
    fn should_not_limit_at_rate_zero() {
        let mut l = ClientLimiter::new(0);
        let t = Instant::now();
        assert!((0..100_000).all(|_| l.allow(ip(2), t)));
        assert_eq!(l.clients(), 0);
    }

    #[test]
    fn should_forget_idle_clients_when_many() {
        let mut l = ClientLimiter::new(10);
        let t = Instant::now();
        for i in 0..SWEEP_AT {
            l.allow(SocketAddr::from(((0x0a00_0000 + i as u32).to_be_bytes(), 53)), t);
        }
        assert_eq!(l.clients(), SWEEP_AT);
        l.allow(ip(9), t + IDLE + Duration::from_millis(1));
        assert_eq!(l.clients(), 1, "only the new client is left");
    }
}
