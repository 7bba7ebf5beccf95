//! Exponential back-off between restarts of a crashing container (and
//! between pulls of an image that cannot be had), as Kubernetes' kubelet
//! keeps it: 10 s doubling to 5 min, forgotten once the thing ran (or
//! stayed quiet) long enough.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Restart back-off: the first delay.
pub const INITIAL: Duration = Duration::from_secs(10);
/// Restart back-off: the longest delay.
pub const MAX: Duration = Duration::from_secs(300);
/// A container that ran this long starts its back-off afresh.
pub const RESET_AFTER_RUNNING: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    /// When the last failure happened that the delay counts from.
    since: Instant,
}

/// Delays per key (e.g. pod uid + container name).
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff { initial, max, entries: HashMap::new() }
    }

    /// How long `key` must still wait after a failure at `failed_at`; None
    /// when it may go now.
    pub fn remaining(&self, key: &str, failed_at: Instant, now: Instant) -> Option<Duration> {
        let e = self.entries.get(key)?;
        let until = failed_at.max(e.since) + e.delay;
        (until > now).then(|| until - now)
    }

    /// Records a retry after a failure at `failed_at`: the next delay doubles
    /// (up to the maximum), or starts afresh when the last one is long past.
    pub fn next(&mut self, key: &str, failed_at: Instant) {
        let (initial, max) = (self.initial, self.max);
        let e = self.entries.entry(key.to_string()).or_insert(Entry { delay: Duration::ZERO, since: failed_at });
        let stale = failed_at.saturating_duration_since(e.since) > 2 * max;
        e.delay = if e.delay.is_zero() || stale { initial } else { (e.delay * 2).min(max) };
        e.since = failed_at;
    }

    /// The current delay of `key` (zero if none).
    pub fn delay(&self, key: &str) -> Duration {
        self.entries.get(key).map(|e| e.delay).unwrap_or_default()
    }

    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets every key starting with `prefix` (a pod's uid).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_restart_at_once_then_double_up_to_five_minutes() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        // Never failed before: go at once.
        assert_eq!(b.remaining("p/c", t0, t0), None);
        b.next("p/c", t0);
        let mut failed = t0;
        let mut delays = Vec::new();
        for _ in 0..7 {
            failed += Duration::from_secs(1);
            let wait = b.remaining("p/c", failed, failed).expect("backing off");
            delays.push(wait.as_secs());
            failed += wait;
            assert_eq!(b.remaining("p/c", failed - wait, failed), None);
            b.next("p/c", failed);
        }
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn should_start_afresh_when_the_last_failure_is_long_past() {
        let mut b = Backoff::default();
        let t0 = Instant::now();
        for i in 0..4 {
            b.next("k", t0 + Duration::from_secs(i));
        }
        assert_eq!(b.delay("k"), Duration::from_secs(80));
        b.next("k", t0 + Duration::from_secs(3600));
        assert_eq!(b.delay("k"), INITIAL);
        b.reset("k");
        assert_eq!(b.delay("k"), Duration::ZERO);
    }
}
