//! Expectations (client-go's UIDTrackingControllerExpectations): how many
//! pod creations and which pod deletions a controller is still waiting to
//! see in its cache, so that it never acts twice on one decision while the
//! watch lags behind its own writes. Expectations expire after a while so
//! that a lost event cannot stall a controller for good.

use berth_base::sync::MutexExt;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How long expectations hold before a controller acts again regardless.
pub const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug)]
struct Entry {
    adds: i64,
    deletes: HashSet<String>,
    set_at: Instant,
}

/// Expectations per controller key.
#[derive(Debug, Default)]
pub struct Expectations {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Expectations {
    /// Whether the controller may act on its cache: nothing outstanding,
    /// or the expectations are too old to trust.
    pub fn satisfied(&self, key: &str) -> bool {
        match self.entries.lock_or_recover().get(key) {
            None => true,
            Some(e) => (e.adds <= 0 && e.deletes.is_empty()) || e.set_at.elapsed() > TTL,
        }
    }

    /// Expects `adds` creations.
    pub fn expect_creations(&self, key: &str, adds: usize) {
        let entry = Entry { adds: adds as i64, deletes: HashSet::new(), set_at: Instant::now() };
        self.entries.lock_or_recover().insert(key.to_string(), entry);
    }

    /// Expects the deletion of each pod in `pods` (pod cache keys).
    pub fn expect_deletions(&self, key: &str, pods: impl IntoIterator<Item = String>) {
        let entry = Entry { adds: 0, deletes: pods.into_iter().collect(), set_at: Instant::now() };
        self.entries.lock_or_recover().insert(key.to_string(), entry);
    }

    /// One expected creation was seen (or will never happen).
    pub fn creation_observed(&self, key: &str) {
        if let Some(e) = self.entries.lock_or_recover().get_mut(key) {
            e.adds -= 1;
        }
    }

    /// `n` expected creations will never happen (their calls failed or were skipped).
    pub fn lower_creations(&self, key: &str, n: usize) {
        if let Some(e) = self.entries.lock_or_recover().get_mut(key) {
            e.adds -= n as i64;
        }
    }

    /// The deletion of `pod` was seen (or its call failed).
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Some(e) = self.entries.lock_or_recover().get_mut(key) {
            e.deletes.remove(pod);
        }
    }

    /// Forgets the controller (it was deleted).
    pub fn forget(&self, key: &str) {
        self.entries.lock_or_recover().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_be_satisfied_once_every_creation_is_observed() {
        let e = Expectations::default();
        assert!(e.satisfied("ns/rc"));
        e.expect_creations("ns/rc", 3);
        e.creation_observed("ns/rc");
        assert!(!e.satisfied("ns/rc"));
        e.lower_creations("ns/rc", 2);
        assert!(e.satisfied("ns/rc"));
    }

    #[test]
    fn should_count_a_pods_deletion_once() {
        let e = Expectations::default();
        e.expect_deletions("ns/rc", ["ns/a".to_string(), "ns/b".to_string()]);
        e.deletion_observed("ns/rc", "ns/a");
        e.deletion_observed("ns/rc", "ns/a");
        assert!(!e.satisfied("ns/rc"));
        e.deletion_observed("ns/rc", "ns/b");
        assert!(e.satisfied("ns/rc"));
    }

    #[tokio::test(start_paused = true)]
    async fn should_expire_expectations_that_never_arrive() {
        let e = Expectations::default();
        e.expect_creations("ns/rc", 1);
        tokio::time::sleep(TTL + Duration::from_secs(1)).await;
        assert!(e.satisfied("ns/rc"));
    }
}
