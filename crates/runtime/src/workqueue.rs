//! A rate-limited work queue of keys: dedup, no concurrent processing of one key, per-key exponential backoff.
//!
//! This is client-go's `RateLimitingInterface` (workqueue `Type` + `DelayingQueue`
//! + `ItemExponentialFailureRateLimiter`) for Berth's controllers:
//!
//! - a key sits in the queue at most once however often it is added (`dirty`),
//! - a key handed out by [`WorkQueue::get`] is not handed out again until the
//!   worker calls [`WorkQueue::done`]; adds in between are remembered and the
//!   key is queued again by `done` (`processing`),
//! - [`WorkQueue::add_after`] queues a key later, and
//!   [`WorkQueue::add_rate_limited`] queues it after a per-key exponential
//!   backoff that [`WorkQueue::forget`] resets.
//!
//! A typical worker:
//!
//! ```ignore
//! while let Some(key) = queue.get().await {
//!     match reconcile(&key).await {
//!         Ok(()) => queue.forget(&key),
//!         Err(_) => queue.add_rate_limited(key.clone()),
//!     }
//!     queue.done(&key);
//! }
//! ```

use berth_base::sync::MutexExt;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The first retry delay of [`WorkQueue::new`], as client-go's default controller rate limiter.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(5);
/// The longest retry delay of [`WorkQueue::new`], as client-go's default controller rate limiter.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(1000);

/// A rate-limited queue of keys shared by the workers of one controller.
///
/// Cloning is cheap (an `Arc`); all clones are the same queue. Time is
/// `tokio::time`, so tests can pause it.
pub struct WorkQueue<K> {
    shared: Arc<Shared<K>>,
}

/// A snapshot of a queue's metrics, for the caller to export to Prometheus
/// (client-go's `workqueue_*` metrics, labelled by `name`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueMetrics {
    /// The queue's name, as given to [`WorkQueue::new`].
    pub name: String,
    /// Keys waiting to be handed out (`workqueue_depth`).
    pub depth: usize,
    /// Keys being processed: handed out by `get` and not yet `done`.
    pub processing: usize,
    /// Keys accepted into the queue; an add of a key already queued is not counted (`workqueue_adds_total`).
    pub adds_total: u64,
    /// Calls to [`WorkQueue::add_rate_limited`] (`workqueue_retries_total`).
    pub retries_total: u64,
    /// How long the oldest key still being processed has been processing
    /// (`workqueue_longest_running_processor_seconds`); zero when none is.
    pub longest_running_processor: Duration,
    /// Time from a key's add to its `get` (`workqueue_queue_duration_seconds`).
    pub queue_latency: LatencySummary,
    /// Time from a key's `get` to its `done` (`workqueue_work_duration_seconds`).
    pub work_duration: LatencySummary,
}

/// Count, sum and maximum of observed durations: enough for a Prometheus summary without quantiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Number of observations.
    pub count: u64,
    /// Sum of all observations.
    pub sum: Duration,
    /// Largest observation.
    pub max: Duration,
}

impl LatencySummary {
    fn observe(&mut self, d: Duration) {
        self.count = self.count.saturating_add(1);
        self.sum = self.sum.saturating_add(d);
        self.max = self.max.max(d);
    }
}

struct Shared<K> {
    name: String,
    base_delay: Duration,
    max_delay: Duration,
    state: Mutex<State<K>>,
    /// Wakes `get` waiters: one per queued key, all on shut down.
    ready: Notify,
    /// Wakes the timer task when an earlier deadline arrives, on shut down,
    /// and when the queue is dropped. Shared with the task, which holds only
    /// a `Weak` to the rest so that dropping every clone frees the queue.
    timer_wake: Arc<Notify>,
}

struct State<K> {
    /// Keys to hand out, in order; each is also in `dirty` and never in `processing`.
    queue: VecDeque<K>,
    /// Keys that need processing (queued, or added while processing), with
    /// the time of the add that made them dirty, for the queue latency.
    dirty: HashMap<K, Instant>,
    /// Keys handed out and not yet done, with the time they were handed out.
    processing: HashMap<K, Instant>,
    /// Failures per key since its last `forget`: the backoff exponent.
    failures: HashMap<K, u32>,
    /// Delayed keys and their deadline; one entry (so one timer) per key.
    waiting: HashMap<K, (Instant, u64)>,
    /// The same delayed keys ordered by deadline; the `u64` breaks ties.
    deadlines: BTreeMap<(Instant, u64), K>,
    next_seq: u64,
    timer_started: bool,
    shutting_down: bool,
    adds_total: u64,
    retries_total: u64,
    queue_latency: LatencySummary,
    work_duration: LatencySummary,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        Self { shared: Arc::clone(&self.shared) }
    }
}

impl<K> fmt::Debug for WorkQueue<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkQueue").field("name", &self.shared.name).finish_non_exhaustive()
    }
}

impl<K> Drop for Shared<K> {
    fn drop(&mut self) {
        // The timer task may be parked with no deadline; let it see the queue is gone.
        self.timer_wake.notify_one();
    }
}

impl<K> State<K>
where
    K: Clone + Eq + Hash,
{
    /// Marks `key` dirty and queues it unless it is queued or being processed.
    /// Returns whether a waiter should be woken.
    fn add(&mut self, key: K, now: Instant) -> bool {
        if self.shutting_down || self.dirty.contains_key(&key) {
            return false;
        }
        self.adds_total = self.adds_total.saturating_add(1);
        let processing = self.processing.contains_key(&key);
        self.dirty.insert(key.clone(), now);
        if processing {
            // `done` queues it, so no worker sees it while another has it.
            return false;
        }
        self.queue.push_back(key);
        true
    }

    /// Moves delayed keys whose deadline has passed into the queue; returns
    /// how many were queued and the next deadline.
    fn release_due(&mut self, now: Instant) -> (usize, Option<Instant>) {
        let mut woken = 0;
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                return (woken, Some(entry.key().0));
            }
            let key = entry.remove();
            self.waiting.remove(&key);
            if self.add(key, now) {
                woken += 1;
            }
        }
        (woken, None)
    }
}

/// `base * 2^failures`, capped at `max`, without overflowing.
fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    2u32.checked_pow(failures).and_then(|factor| base.checked_mul(factor)).map_or(max, |d| d.min(max))
}

impl<K> WorkQueue<K>
where
    K: Clone + Eq + Hash + Send + Sync + fmt::Debug + 'static,
{
    /// A queue whose retry delay starts at 5 ms and doubles up to 1000 s.
    pub fn new(name: &str) -> Self {
        Self::with_backoff(name, DEFAULT_BASE_DELAY, DEFAULT_MAX_DELAY)
    }

    /// A queue whose retry delay starts at `base` and doubles up to `max`.
    pub fn with_backoff(name: &str, base: Duration, max: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                base_delay: base.min(max),
                max_delay: max,
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashMap::new(),
                    processing: HashMap::new(),
                    failures: HashMap::new(),
                    waiting: HashMap::new(),
                    deadlines: BTreeMap::new(),
                    next_seq: 0,
                    timer_started: false,
                    shutting_down: false,
                    adds_total: 0,
                    retries_total: 0,
                    queue_latency: LatencySummary::default(),
                    work_duration: LatencySummary::default(),
                }),
                ready: Notify::new(),
                timer_wake: Arc::new(Notify::new()),
            }),
        }
    }

    /// The queue's name, as given at construction.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Queues `key`. A key already queued is not queued twice; a key being
    /// processed is queued again when its worker calls [`done`](Self::done).
    /// Ignored after [`shut_down`](Self::shut_down).
    pub fn add(&self, key: K) {
        let wake = self.shared.state.lock_or_recover().add(key, Instant::now());
        if wake {
            self.shared.ready.notify_one();
        }
    }

    /// Queues `key` once `delay` has passed. If the key is already waiting,
    /// the earlier deadline wins. A zero delay adds it now.
    ///
    /// Delays are kept by one timer task per queue, started on first use on
    /// the current tokio runtime. Called outside a runtime, the key is added
    /// now (with a warning) rather than lost.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let now = Instant::now();
        let deadline = now.checked_add(delay).unwrap_or_else(far_future);
        let mut state = self.shared.state.lock_or_recover();
        if state.shutting_down {
            return;
        }
        if !state.timer_started {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                drop(state);
                tracing::warn!(queue = %self.shared.name, ?key, "add_after outside a tokio runtime; adding now");
                return self.add(key);
            };
            state.timer_started = true;
            runtime.spawn(run_timer(Arc::downgrade(&self.shared), Arc::clone(&self.shared.timer_wake)));
        }
        if let Some(&(existing, seq)) = state.waiting.get(&key) {
            if existing <= deadline {
                return;
            }
            state.deadlines.remove(&(existing, seq));
        }
        let seq = state.next_seq;
        state.next_seq = state.next_seq.wrapping_add(1);
        let earliest = state.deadlines.first_key_value().is_none_or(|(&(first, _), _)| deadline < first);
        state.waiting.insert(key.clone(), (deadline, seq));
        state.deadlines.insert((deadline, seq), key);
        drop(state);
        if earliest {
            // The timer is sleeping towards a later deadline (or none).
            self.shared.timer_wake.notify_one();
        }
    }

    /// Queues `key` after its backoff, `base * 2^failures` capped at the
    /// maximum, and counts one more failure for it.
    pub fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut state = self.shared.state.lock_or_recover();
            if state.shutting_down {
                return;
            }
            state.retries_total = state.retries_total.saturating_add(1);
            let failures = state.failures.entry(key.clone()).or_insert(0);
            let exponent = *failures;
            *failures = failures.saturating_add(1);
            backoff(self.shared.base_delay, self.shared.max_delay, exponent)
        };
        self.add_after(key, delay);
    }

    /// Forgets `key`'s failures, so its next backoff starts from the base
    /// again. Call it when the key was processed successfully.
    pub fn forget(&self, key: &K) {
        self.shared.state.lock_or_recover().failures.remove(key);
    }

    /// How many times `key` was rate-limited since its last `forget`.
    pub fn num_requeues(&self, key: &K) -> u32 {
        self.shared.state.lock_or_recover().failures.get(key).copied().unwrap_or(0)
    }

    /// Waits for a key and marks it as being processed; the caller must call
    /// [`done`](Self::done) with it. Returns `None` once the queue is shut
    /// down and no key is left queued.
    ///
    /// Cancel-safe: a key is taken only in the poll that returns it.
    pub async fn get(&self) -> Option<K> {
        loop {
            // Register before looking, so an add between the look and the
            // await still wakes us.
            let notified = self.shared.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.shared.state.lock_or_recover();
                if let Some(key) = state.queue.pop_front() {
                    let now = Instant::now();
                    if let Some(added) = state.dirty.remove(&key) {
                        state.queue_latency.observe(now.saturating_duration_since(added));
                    }
                    state.processing.insert(key.clone(), now);
                    if !state.queue.is_empty() {
                        // Several keys may have been queued with one stored
                        // permit; pass the word on to the next waiter.
                        self.shared.ready.notify_one();
                    }
                    return Some(key);
                }
                if state.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` as processed. If it was added meanwhile, it is queued again.
    pub fn done(&self, key: &K) {
        let wake = {
            let mut state = self.shared.state.lock_or_recover();
            let Some(started) = state.processing.remove(key) else {
                return;
            };
            let now = Instant::now();
            state.work_duration.observe(now.saturating_duration_since(started));
            if state.dirty.contains_key(key) {
                state.queue.push_back(key.clone());
                true
            } else {
                false
            }
        };
        if wake {
            self.shared.ready.notify_one();
        }
    }

    /// Keys waiting to be handed out (not those being processed or delayed).
    pub fn len(&self) -> usize {
        self.shared.state.lock_or_recover().queue.len()
    }

    /// Whether no key is waiting to be handed out.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether [`shut_down`](Self::shut_down) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.state.lock_or_recover().shutting_down
    }

    /// Stops the queue: later adds are ignored, delayed keys are dropped, and
    /// `get` hands out the keys still queued, then returns `None` to every
    /// waiter.
    pub fn shut_down(&self) {
        {
            let mut state = self.shared.state.lock_or_recover();
            if state.shutting_down {
                return;
            }
            state.shutting_down = true;
            state.waiting.clear();
            state.deadlines.clear();
        }
        tracing::debug!(queue = %self.shared.name, "work queue shut down");
        self.shared.ready.notify_waiters();
        self.shared.timer_wake.notify_one();
    }

    /// A snapshot of the queue's metrics.
    pub fn metrics(&self) -> QueueMetrics {
        let state = self.shared.state.lock_or_recover();
        let now = Instant::now();
        let longest_running_processor =
            state.processing.values().map(|&started| now.saturating_duration_since(started)).max().unwrap_or_default();
        QueueMetrics {
            name: self.shared.name.clone(),
            depth: state.queue.len(),
            processing: state.processing.len(),
            adds_total: state.adds_total,
            retries_total: state.retries_total,
            longest_running_processor,
            queue_latency: state.queue_latency,
            work_duration: state.work_duration,
        }
    }
}

/// A deadline for delays too long to represent: about thirty years away.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365 * 30)
}

/// Moves delayed keys into the queue as their deadlines pass. Holds the queue
/// only weakly, so it ends when the queue is dropped or shut down.
async fn run_timer<K>(shared: Weak<Shared<K>>, wake: Arc<Notify>)
where
    K: Clone + Eq + Hash,
{
    loop {
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let mut state = shared.state.lock_or_recover();
            if state.shutting_down {
                return;
            }
            let (woken, next) = state.release_due(Instant::now());
            drop(state);
            for _ in 0..woken {
                shared.ready.notify_one();
            }
            next
        };
        // A new earlier deadline, shut down or drop stores a permit in
        // `wake` if it comes before we await it, so none is missed.
        match next {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = wake.notified() => {}
                }
            }
            None => wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const MS: Duration = Duration::from_millis(1);

    /// `get`, or `None` if nothing arrives within a (paused, so instant) minute.
    async fn try_get(q: &WorkQueue<&'static str>) -> Option<&'static str> {
        tokio::time::timeout(Duration::from_secs(60), q.get()).await.ok().flatten()
    }

    #[tokio::test(start_paused = true)]
    async fn should_queue_a_key_once_however_often_it_is_added() {
        let q = WorkQueue::new("test");
        q.add("a");
        q.add("b");
        q.add("a");
        q.add("a");
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, Some("b"));
        assert!(q.is_empty());
        assert_eq!(try_get(&q).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn should_requeue_a_key_added_while_processing_when_done() {
        let q = WorkQueue::new("test");
        q.add("a");
        assert_eq!(q.get().await, Some("a"));
        q.add("a");
        q.add("a");
        assert_eq!(q.len(), 0, "not handed out while being processed");
        assert_eq!(try_get(&q).await, None);
        q.done(&"a");
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        assert!(q.is_empty());
        assert_eq!(try_get(&q).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn should_not_requeue_a_key_done_without_a_new_add() {
        let q = WorkQueue::new("test");
        q.add("a");
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        q.done(&"a");
        assert!(q.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn should_make_a_second_worker_wait_for_a_key_being_processed() {
        let q = WorkQueue::new("test");
        q.add("a");
        assert_eq!(q.get().await, Some("a"));
        let second = tokio::spawn({
            let q = q.clone();
            async move { q.get().await }
        });
        q.add("a");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!second.is_finished(), "second worker got a key being processed");
        q.done(&"a");
        assert_eq!(second.await.ok().flatten(), Some("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn should_never_hand_one_key_to_two_workers() {
        let q = WorkQueue::new("test");
        let in_flight = Arc::new(Mutex::new(HashSet::new()));
        let handled = Arc::new(Mutex::new(0usize));
        let mut workers = Vec::new();
        for _ in 0..4 {
            let (q, in_flight, handled) = (q.clone(), in_flight.clone(), handled.clone());
            workers.push(tokio::spawn(async move {
                while let Some(key) = q.get().await {
                    let fresh = in_flight.lock_or_recover().insert(key);
                    assert!(fresh, "{key} handed to two workers");
                    tokio::time::sleep(3 * MS).await;
                    in_flight.lock_or_recover().remove(&key);
                    *handled.lock_or_recover() += 1;
                    q.done(&key);
                }
            }));
        }
        for round in 0..50 {
            for key in ["a", "b", "c"] {
                q.add(key);
            }
            if round % 2 == 0 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(MS).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        q.shut_down();
        for worker in workers {
            assert!(worker.await.is_ok(), "a worker panicked");
        }
        let handled = *handled.lock_or_recover();
        assert!(handled >= 3, "handled {handled}");
        assert_eq!(q.metrics().processing, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn should_wake_one_worker_per_queued_key() {
        let q = WorkQueue::new("test");
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.get().await })
            })
            .collect();
        tokio::task::yield_now().await;
        q.add("a");
        q.add("b");
        q.add("c");
        let mut got = HashSet::new();
        for worker in workers {
            let key = tokio::time::timeout(Duration::from_secs(1), worker).await;
            got.insert(key.ok().and_then(|r| r.ok()).flatten());
        }
        assert_eq!(got, HashSet::from([Some("a"), Some("b"), Some("c")]));
    }

    #[tokio::test(start_paused = true)]
    async fn should_add_after_the_delay_has_passed() {
        let q = WorkQueue::new("test");
        let start = Instant::now();
        q.add_after("a", Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(q.is_empty());
        assert_eq!(q.get().await, Some("a"));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(10) && waited < Duration::from_secs(10) + 2 * MS, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn should_keep_the_earliest_deadline_when_added_after_again() {
        let q = WorkQueue::new("test");
        let start = Instant::now();
        q.add_after("a", Duration::from_secs(10));
        q.add_after("a", Duration::from_secs(2));
        q.add_after("a", Duration::from_secs(5));
        assert_eq!(q.get().await, Some("a"));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(2) + 2 * MS, "{waited:?}");
        q.done(&"a");
        assert_eq!(try_get(&q).await, None, "the superseded deadlines fired too");
    }

    #[tokio::test(start_paused = true)]
    async fn should_add_now_when_added_after_zero() {
        let q = WorkQueue::new("test");
        q.add_after("a", Duration::ZERO);
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn should_fire_delayed_keys_in_deadline_order() {
        let q = WorkQueue::new("test");
        q.add_after("late", Duration::from_secs(3));
        q.add_after("early", Duration::from_secs(1));
        q.add_after("middle", Duration::from_secs(2));
        assert_eq!(q.get().await, Some("early"));
        assert_eq!(q.get().await, Some("middle"));
        assert_eq!(q.get().await, Some("late"));
    }

    #[test]
    fn should_add_now_when_added_after_outside_a_runtime() {
        let q = WorkQueue::new("test");
        q.add_after("a", Duration::from_secs(1));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn should_double_backoff_and_cap_it_without_overflow() {
        let (base, max) = (5 * MS, Duration::from_secs(1000));
        assert_eq!(backoff(base, max, 0), 5 * MS);
        assert_eq!(backoff(base, max, 1), 10 * MS);
        assert_eq!(backoff(base, max, 10), 5120 * MS);
        assert_eq!(backoff(base, max, 20), max);
        assert_eq!(backoff(base, max, 40), max);
        assert_eq!(backoff(base, max, u32::MAX), max);
    }

    #[tokio::test(start_paused = true)]
    async fn should_double_the_retry_delay_cap_it_and_reset_it_on_forget() {
        let q = WorkQueue::with_backoff("test", 10 * MS, 50 * MS);
        for expected in [10, 20, 40, 50, 50] {
            let start = Instant::now();
            q.add_rate_limited("a");
            assert_eq!(q.get().await, Some("a"));
            let waited = start.elapsed();
            assert!(waited >= expected * MS && waited < (expected + 2) * MS, "expected {expected} ms, waited {waited:?}");
            q.done(&"a");
        }
        assert_eq!(q.num_requeues(&"a"), 5);
        assert_eq!(q.num_requeues(&"b"), 0);
        q.forget(&"a");
        assert_eq!(q.num_requeues(&"a"), 0);
        let start = Instant::now();
        q.add_rate_limited("a");
        assert_eq!(q.get().await, Some("a"));
        assert!(start.elapsed() < 12 * MS, "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn should_wake_every_waiter_with_none_on_shut_down() {
        let q: WorkQueue<&'static str> = WorkQueue::new("test");
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let q = q.clone();
                tokio::spawn(async move { q.get().await })
            })
            .collect();
        tokio::task::yield_now().await;
        q.shut_down();
        for waiter in waiters {
            let got = tokio::time::timeout(Duration::from_secs(1), waiter).await;
            assert!(matches!(got, Ok(Ok(None))), "{got:?}");
        }
        assert_eq!(q.get().await, None);
        assert!(q.is_shutting_down());
    }

    #[tokio::test(start_paused = true)]
    async fn should_drain_queued_keys_then_ignore_adds_after_shut_down() {
        let q = WorkQueue::new("test");
        q.add("a");
        q.add_after("later", Duration::from_secs(1));
        q.shut_down();
        q.add("b");
        q.add_rate_limited("c");
        q.add_after("d", Duration::from_secs(1));
        assert_eq!(q.get().await, Some("a"));
        assert_eq!(q.get().await, None);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(q.get().await, None, "a delayed key fired after shut down");
        assert_eq!(q.num_requeues(&"c"), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn should_report_depth_adds_retries_and_latencies() {
        let q = WorkQueue::with_backoff("pods", 10 * MS, Duration::from_secs(1));
        q.add("a");
        q.add("a");
        q.add("b");
        tokio::time::sleep(100 * MS).await;
        assert_eq!(q.get().await, Some("a"));
        tokio::time::sleep(30 * MS).await;
        let m = q.metrics();
        assert_eq!(m.name, "pods");
        assert_eq!(m.depth, 1);
        assert_eq!(m.processing, 1);
        assert_eq!(m.adds_total, 2);
        assert_eq!(m.longest_running_processor, 30 * MS);
        assert_eq!(m.queue_latency, LatencySummary { count: 1, sum: 100 * MS, max: 100 * MS });
        q.done(&"a");
        q.add_rate_limited("a");
        assert_eq!(q.get().await, Some("b"));
        let m = q.metrics();
        assert_eq!(m.retries_total, 1);
        assert_eq!(m.adds_total, 2, "the retry is not added until its delay passes");
        assert_eq!(m.work_duration, LatencySummary { count: 1, sum: 30 * MS, max: 30 * MS });
        assert_eq!(m.queue_latency.count, 2);
        assert_eq!(m.queue_latency.max, 130 * MS);
    }

    #[tokio::test(start_paused = true)]
    async fn should_stop_the_timer_task_when_the_queue_is_dropped() {
        let runtime = tokio::runtime::Handle::current().metrics();
        let before = runtime.num_alive_tasks();
        let q = WorkQueue::new("test");
        q.add_after("a", Duration::from_secs(3600));
        assert_eq!(runtime.num_alive_tasks(), before + 1);
        // Let the timer task park on its hour-long sleep first.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(runtime.num_alive_tasks(), before + 1);
        drop(q);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(runtime.num_alive_tasks(), before, "the timer task outlived its queue");
    }
}
