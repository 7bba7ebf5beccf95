//! The scheduling queue, as kube-scheduler's: pods waiting for a node sit
//! in the active queue (higher priority first, then first come), in the
//! back-off queue after a failed attempt (1 s, doubling up to 10 s), or in
//! the unschedulable set when no node could take them, until something
//! that could help changes (a node added or updated, a pod deleted) or a
//! while has passed.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use berth_api::pb::core::Pod;
use tokio::time::Instant;

/// Back-off after the first failed attempt; doubles with each failure.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried after this long even if nothing
/// announced a change that could help (a safety net, as Kubernetes' 5 minutes).
pub const UNSCHEDULABLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The same reason for a pod not fitting is repeated to the user at most this often.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Backoff {
        until: Instant,
    },
    Unschedulable {
        since: Instant,
    },
    /// Popped: being decided on or being bound.
    InFlight,
}

#[derive(Debug)]
struct Entry {
    pod: Arc<Pod>,
    state: State,
    /// Failed attempts so far.
    attempts: u32,
    /// When the pod first entered the queue (for the end-to-end latency).
    added: Instant,
    /// When the last attempt failed.
    failed_at: Option<Instant>,
    /// Identifies the entry's current place in a heap (older heap items are stale).
    seq: u64,
    /// What the user was last told about why the pod waits, and when.
    reported: Option<(String, Instant)>,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveItem {
    priority: i32,
    seq: u64,
    key: String,
}

impl Ord for ActiveItem {
    fn cmp(&self, other: &Self) -> Ordering {
        // Max-heap: higher priority first, then the lower sequence (earlier).
        self.priority.cmp(&other.priority).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveItem {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// How many pods are in each place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depths {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub in_flight: usize,
}

/// A pod handed out for a scheduling attempt.
#[derive(Debug, Clone)]
pub struct Popped {
    pub key: String,
    pub pod: Arc<Pod>,
    /// Failed attempts before this one.
    pub attempts: u32,
    /// When it first entered the queue.
    pub added: Instant,
}

/// The queue of pods waiting for a node, by key (`namespace/name`).
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    pods: HashMap<String, Entry>,
    active: BinaryHeap<ActiveItem>,
    backoff: BinaryHeap<Reverse<(Instant, u64, String)>>,
    seq: u64,
    depths: Depths,
}

/// The back-off after `attempts` failed attempts.
pub fn backoff_for(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    INITIAL_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

fn priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// Whether an update of a pending pod may change where it fits (spec or labels).
fn may_fit_differently(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec || old.metadata.as_ref().map(|m| &m.labels) != new.metadata.as_ref().map(|m| &m.labels)
}

impl SchedulingQueue {
    pub fn new() -> SchedulingQueue {
        SchedulingQueue::default()
    }

    pub fn depths(&self) -> Depths {
        self.depths
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Pods waiting in the active queue (a cheap check for the loop).
    pub fn has_active(&self) -> bool {
        self.depths.active > 0
    }

    fn count(&mut self, state: State, delta: isize) {
        let d = &mut self.depths;
        let slot = match state {
            State::Active => &mut d.active,
            State::Backoff { .. } => &mut d.backoff,
            State::Unschedulable { .. } => &mut d.unschedulable,
            State::InFlight => &mut d.in_flight,
        };
        *slot = slot.saturating_add_signed(delta);
    }

    /// Moves an entry to `state`, putting it into the matching heap.
    fn set_state(&mut self, key: &str, state: State) {
        let Some(entry) = self.pods.get_mut(key) else { return };
        let old = entry.state;
        self.seq += 1;
        entry.seq = self.seq;
        entry.state = state;
        let prio = priority(&entry.pod);
        match state {
            State::Active => self.active.push(ActiveItem { priority: prio, seq: self.seq, key: key.to_string() }),
            State::Backoff { until } => self.backoff.push(Reverse((until, self.seq, key.to_string()))),
            State::Unschedulable { .. } | State::InFlight => {}
        }
        self.count(old, -1);
        self.count(state, 1);
    }

    /// Adds a new pending pod to the active queue, or updates a queued one
    /// (an unschedulable pod whose spec or labels changed is retried).
    pub fn add_or_update(&mut self, key: &str, pod: Arc<Pod>, now: Instant) {
        match self.pods.get_mut(key) {
            Some(entry) => {
                let retry = matches!(entry.state, State::Unschedulable { .. }) && may_fit_differently(&entry.pod, &pod);
                entry.pod = pod;
                if retry {
                    self.wake(key, now);
                }
            }
            None => {
                let entry = Entry { pod, state: State::InFlight, attempts: 0, added: now, failed_at: None, seq: 0, reported: None };
                self.pods.insert(key.to_string(), entry);
                self.count(State::InFlight, 1);
                self.set_state(key, State::Active);
            }
        }
    }

    /// Forgets a pod: deleted, bound, or no longer ours to schedule.
    pub fn remove(&mut self, key: &str) {
        if let Some(entry) = self.pods.remove(key) {
            self.count(entry.state, -1);
        }
    }

    /// The next pod to schedule, marked in flight until [`SchedulingQueue::backoff`],
    /// [`SchedulingQueue::unschedulable`] or [`SchedulingQueue::remove`].
    pub fn pop(&mut self) -> Option<Popped> {
        while let Some(item) = self.active.pop() {
            let valid = self.pods.get(&item.key).is_some_and(|e| e.seq == item.seq && e.state == State::Active);
            if valid {
                self.set_state(&item.key, State::InFlight);
                let e = &self.pods[&item.key];
                return Some(Popped { key: item.key, pod: e.pod.clone(), attempts: e.attempts, added: e.added });
            }
        }
        None
    }

    fn fail(&mut self, key: &str, now: Instant) -> Option<u32> {
        let entry = self.pods.get_mut(key)?;
        entry.attempts = entry.attempts.saturating_add(1);
        entry.failed_at = Some(now);
        Some(entry.attempts)
    }

    /// An attempt failed for a passing reason (a binding error): retry after the back-off.
    pub fn backoff(&mut self, key: &str, now: Instant) {
        if let Some(attempts) = self.fail(key, now) {
            self.set_state(key, State::Backoff { until: now + backoff_for(attempts) });
        }
    }

    /// No node could take the pod: park it until a change may help.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        if self.fail(key, now).is_some() {
            self.set_state(key, State::Unschedulable { since: now });
        }
    }

    /// Retries an unschedulable pod: active if its back-off has passed, else back-off.
    fn wake(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.pods.get(key) else { return };
        let until = entry.failed_at.map_or(now, |at| at + backoff_for(entry.attempts));
        self.set_state(key, if until <= now { State::Active } else { State::Backoff { until } });
    }

    /// Something changed that may let unschedulable pods fit: retry them all.
    pub fn move_all_unschedulable(&mut self, now: Instant) -> usize {
        let keys: Vec<String> =
            self.pods.iter().filter(|(_, e)| matches!(e.state, State::Unschedulable { .. })).map(|(k, _)| k.clone()).collect();
        for key in &keys {
            self.wake(key, now);
        }
        keys.len()
    }

    /// Moves pods whose back-off has passed to the active queue, and
    /// retries pods unschedulable for longer than [`UNSCHEDULABLE_TIMEOUT`].
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((until, seq, _))) = self.backoff.peek() {
            if *until > now {
                break;
            }
            let seq = *seq;
            let Some(Reverse((_, _, key))) = self.backoff.pop() else { break };
            let valid = self.pods.get(&key).is_some_and(|e| e.seq == seq && matches!(e.state, State::Backoff { .. }));
            if valid {
                self.set_state(&key, State::Active);
            }
        }
        if self.depths.unschedulable > 0 {
            let stale: Vec<String> = self
                .pods
                .iter()
                .filter(|(_, e)| matches!(e.state, State::Unschedulable { since } if since + UNSCHEDULABLE_TIMEOUT <= now))
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                self.wake(&key, now);
            }
        }
    }

    /// When the earliest back-off ends (for the loop's timer).
    pub fn next_backoff_expiry(&mut self) -> Option<Instant> {
        // Drop stale items so the timer does not fire for nothing.
        while let Some(Reverse((until, seq, key))) = self.backoff.peek() {
            let valid = self.pods.get(key).is_some_and(|e| e.seq == *seq && matches!(e.state, State::Backoff { .. }));
            if valid {
                return Some(*until);
            }
            self.backoff.pop();
        }
        None
    }

    /// Whether to tell the user (event, condition) why the pod does not
    /// fit: when the reason changed, or [`REPORT_INTERVAL`] has passed since
    /// it was last said. Retries triggered by every cluster change would
    /// otherwise repeat it many times a minute.
    pub fn should_report(&mut self, key: &str, message: &str, now: Instant) -> bool {
        let Some(entry) = self.pods.get_mut(key) else { return false };
        let repeat = entry.reported.as_ref().is_some_and(|(m, at)| m == message && now < *at + REPORT_INTERVAL);
        if !repeat {
            entry.reported = Some((message.to_string(), now));
        }
        !repeat
    }

    /// The queued version of a pod.
    pub fn pod(&self, key: &str) -> Option<&Arc<Pod>> {
        self.pods.get(key).map(|e| &e.pod)
    }
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::{ObjectMeta, PodSpec};

    use super::*;

    fn pod(name: &str, priority: Option<i32>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
            spec: Some(PodSpec { priority, ..Default::default() }),
            ..Default::default()
        })
    }

    fn keys(q: &mut SchedulingQueue) -> Vec<String> {
        std::iter::from_fn(|| q.pop().map(|p| p.key)).collect()
    }

    #[test]
    fn should_pop_by_priority_then_arrival() {
        let mut q = SchedulingQueue::new();
        let now = Instant::now();
        q.add_or_update("a", pod("a", None), now);
        q.add_or_update("b", pod("b", Some(10)), now);
        q.add_or_update("c", pod("c", None), now);
        assert_eq!(keys(&mut q), vec!["b", "a", "c"]);
        assert_eq!(q.depths(), Depths { in_flight: 3, ..Default::default() });
    }

    #[test]
    fn should_double_the_backoff_up_to_ten_seconds() {
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(2), Duration::from_secs(2));
        assert_eq!(backoff_for(4), Duration::from_secs(8));
        assert_eq!(backoff_for(5), Duration::from_secs(10));
        assert_eq!(backoff_for(100), Duration::from_secs(10));
    }

    #[test]
    fn should_retry_a_failed_pod_only_after_its_backoff() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add_or_update("a", pod("a", None), t0);
        assert!(q.pop().is_some());
        q.backoff("a", t0);
        assert_eq!(q.next_backoff_expiry(), Some(t0 + Duration::from_secs(1)));
        q.flush(t0 + Duration::from_millis(500));
        assert!(q.pop().is_none());
        q.flush(t0 + Duration::from_secs(1));
        let again = q.pop().unwrap();
        assert_eq!(again.attempts, 1);
        q.backoff("a", t0 + Duration::from_secs(1));
        assert_eq!(q.next_backoff_expiry(), Some(t0 + Duration::from_secs(3)), "the second failure waits 2 s");
    }

    #[test]
    fn should_park_unschedulable_pods_until_something_changes() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add_or_update("a", pod("a", None), t0);
        q.pop().unwrap();
        q.unschedulable("a", t0);
        assert_eq!(q.depths().unschedulable, 1);
        q.flush(t0 + Duration::from_secs(5));
        assert!(q.pop().is_none(), "nothing changed");
        // A change 5 s later: the 1 s back-off has passed, straight to active.
        assert_eq!(q.move_all_unschedulable(t0 + Duration::from_secs(5)), 1);
        assert_eq!(q.pop().map(|p| p.key), Some("a".into()));
    }

    #[test]
    fn should_send_a_woken_pod_to_backoff_while_its_backoff_runs() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add_or_update("a", pod("a", None), t0);
        q.pop().unwrap();
        q.unschedulable("a", t0);
        q.move_all_unschedulable(t0 + Duration::from_millis(100));
        assert_eq!(q.depths().backoff, 1);
        assert!(q.pop().is_none());
        q.flush(t0 + Duration::from_secs(1));
        assert!(q.pop().is_some());
    }

    #[test]
    fn should_retry_unschedulable_pods_after_a_while_anyway() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add_or_update("a", pod("a", None), t0);
        q.pop().unwrap();
        q.unschedulable("a", t0);
        q.flush(t0 + UNSCHEDULABLE_TIMEOUT);
        assert!(q.pop().is_some());
    }

    #[test]
    fn should_retry_an_unschedulable_pod_when_its_spec_changes() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add_or_update("a", pod("a", None), t0);
        q.pop().unwrap();
        q.unschedulable("a", t0);
        q.add_or_update("a", pod("a", None), t0 + Duration::from_secs(2));
        assert_eq!(q.depths().unschedulable, 1, "an identical update changes nothing");
        q.add_or_update("a", pod("a", Some(5)), t0 + Duration::from_secs(2));
        assert_eq!(q.pop().map(|p| p.key), Some("a".into()));
    }

    #[test]
    fn should_repeat_the_same_reason_only_after_a_while() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add_or_update("a", pod("a", None), t0);
        assert!(q.should_report("a", "0/1 nodes", t0));
        assert!(!q.should_report("a", "0/1 nodes", t0 + Duration::from_secs(5)));
        assert!(q.should_report("a", "0/2 nodes", t0 + Duration::from_secs(6)), "a new reason is said at once");
        assert!(q.should_report("a", "0/2 nodes", t0 + Duration::from_secs(6) + REPORT_INTERVAL));
        assert!(!q.should_report("b", "0/1 nodes", t0), "not a queued pod");
    }

    #[test]
    fn should_forget_removed_pods_wherever_they_are() {
        let mut q = SchedulingQueue::new();
        let t0 = Instant::now();
        q.add_or_update("a", pod("a", None), t0);
        q.add_or_update("b", pod("b", None), t0);
        q.remove("a");
        q.pop().unwrap();
        q.backoff("b", t0);
        q.remove("b");
        q.flush(t0 + Duration::from_secs(30));
        assert!(q.pop().is_none());
        assert_eq!(q.depths(), Depths::default());
        assert_eq!(q.next_backoff_expiry(), None);
    }
}
