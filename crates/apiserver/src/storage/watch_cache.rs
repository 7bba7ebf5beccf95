//! In-memory current state and a bounded ring of recent events, serving get/list/watch from memory.
//!
//! The cache knows nothing about the backend: a backend applies each committed group of events
//! with [`WatchCache::apply`] (in revision order, from one writer) and the cache does the rest.
//!
//! Watchers have no channels of their own. Each [`WatchStream`] remembers the revision it has
//! scanned to, sleeps on one shared `tokio::sync::watch` channel that announces the newest
//! revision, and on waking reads the ring under a read lock from its position. So a write costs
//! one notification however many watchers there are, and a slow watcher costs nothing until the
//! ring drops events it has not read, at which point it gets [`Error::TooOld`] and relists.

use berth_base::sync::RwLockExt;
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::{Error, Event, EventType, KeyValue, Result, Revision};

/// Events kept for watchers unless configured otherwise.
pub const DEFAULT_HISTORY: usize = 10_000;

/// How many matching events a watcher takes per read-lock acquisition; bounds the time a far
/// behind watcher holds the lock (the writer waits for it).
const SCAN_BATCH: usize = 1_024;

/// The stored state of one key; the key itself is the map key, so it is not stored twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The encoded object.
    pub value: Bytes,
    /// The revision of the last write to the key.
    pub mod_revision: Revision,
    /// The revision at which the key was created.
    pub create_revision: Revision,
}

/// Current state plus recent history, shared by the backend's writer and every reader.
pub struct WatchCache {
    state: RwLock<State>,
    /// Announces the newest applied revision; watchers and `wait_for_revision` sleep on it.
    notify: watch::Sender<Revision>,
    /// Set once by `close`; checked after every wake-up.
    closed: AtomicBool,
    /// Open watch streams, for metrics.
    watchers: Arc<AtomicU64>,
}

/// Everything behind the one lock, so a list and its revision are one snapshot.
struct State {
    objects: BTreeMap<String, Entry>,
    /// Recent events in revision order.
    ring: VecDeque<Arc<Event>>,
    capacity: usize,
    revision: Revision,
    /// The highest revision no longer retained in `ring`.
    compacted: Revision,
}

impl State {
    /// Drops the oldest events beyond the capacity, raising the compacted revision.
    fn trim(&mut self) {
        while self.ring.len() > self.capacity {
            if let Some(dropped) = self.ring.pop_front() {
                self.compacted = dropped.revision;
            }
        }
    }
}

impl WatchCache {
    /// An empty cache at revision 0 that keeps `history` recent events.
    pub fn new(history: usize) -> Self {
        Self::restore(history, BTreeMap::new(), 0, 0, Vec::new())
    }

    /// A cache loaded from a backend: its objects, its current revision, the highest revision
    /// it no longer has history for, and its retained history in revision order (all newer
    /// than `compacted`). History beyond `capacity` is dropped from the front.
    pub fn restore(
        capacity: usize,
        objects: BTreeMap<String, Entry>,
        revision: Revision,
        compacted: Revision,
        history: Vec<Event>,
    ) -> Self {
        let mut state =
            State { objects, ring: history.into_iter().map(Arc::new).collect(), capacity, revision, compacted: compacted.min(revision) };
        state.trim();
        let (notify, _) = watch::channel(revision);
        Self { state: RwLock::new(state), notify, closed: AtomicBool::new(false), watchers: Arc::new(AtomicU64::new(0)) }
    }

    /// The current value of a key.
    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.state.read_or_recover().objects.get(key).map(|e| KeyValue {
            key: key.to_owned(),
            value: e.value.clone(),
            mod_revision: e.mod_revision,
            create_revision: e.create_revision,
        })
    }

    /// Every key starting with `prefix`, sorted, and the revision this snapshot reflects.
    pub fn list(&self, prefix: &str) -> (Vec<KeyValue>, Revision) {
        let state = self.state.read_or_recover();
        let items = state
            .objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| KeyValue {
                key: k.clone(),
                value: e.value.clone(),
                mod_revision: e.mod_revision,
                create_revision: e.create_revision,
            })
            .collect();
        (items, state.revision)
    }

    /// Applies committed events, in revision order, each newer than the current revision; then
    /// wakes watchers. Only the backend's single writer calls this.
    pub fn apply(&self, events: impl IntoIterator<Item = Event>) {
        let revision = {
            let mut state = self.state.write_or_recover();
            for event in events {
                debug_assert!(event.revision > state.revision, "events out of order");
                match event.event_type {
                    EventType::Added | EventType::Modified => {
                        state.objects.insert(
                            event.key.clone(),
                            Entry { value: event.value.clone(), mod_revision: event.revision, create_revision: event.create_revision },
                        );
                    }
                    EventType::Deleted => {
                        state.objects.remove(&event.key);
                    }
                }
                state.revision = event.revision;
                state.ring.push_back(Arc::new(event));
            }
            state.trim();
            state.revision
        };
        // Outside the lock, so woken watchers do not immediately block on it.
        self.notify.send_replace(revision);
    }

    /// Bytes of live data: every object's key and value plus every retained event's key, value
    /// and previous value. The backend compares its size on disk with this to decide when a
    /// rebuild would give space back. Walks everything under the read lock; call it rarely.
    pub fn data_bytes(&self) -> u64 {
        let state = self.state.read_or_recover();
        let objects: usize = state.objects.iter().map(|(key, entry)| key.len() + entry.value.len()).sum();
        let history: usize =
            state.ring.iter().map(|event| event.key.len() + event.value.len() + event.prev_value.as_ref().map_or(0, Bytes::len)).sum();
        (objects + history) as u64
    }

    /// Starts a watch of keys under `prefix` after revision `from`.
    pub fn watch(self: &Arc<Self>, prefix: &str, from: Revision) -> Result<WatchStream> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let compacted = self.state.read_or_recover().compacted;
        if from < compacted {
            return Err(Error::TooOld { requested: from, oldest: compacted });
        }
        self.watchers.fetch_add(1, Ordering::Relaxed);
        Ok(WatchStream {
            cache: Arc::clone(self),
            wake: self.notify.subscribe(),
            prefix: prefix.to_owned(),
            position: from,
            pending: VecDeque::new(),
            finished: false,
        })
    }

    /// Waits until the cache has reached revision `min`, at most `timeout`.
    pub async fn wait_for_revision(&self, min: Revision, timeout: Duration) -> Result<Revision> {
        let mut rx = self.notify.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|&rev| rev >= min || self.is_closed())).await;
        match reached {
            Err(_) => Err(Error::Timeout { revision: min }),
            // The sender lives as long as `self`, so this cannot be a closed channel in
            // practice; treat it as shutdown anyway.
            Ok(Err(_)) => Err(Error::Closed),
            Ok(Ok(rev)) => {
                let rev = *rev;
                if rev >= min { Ok(rev) } else { Err(Error::Closed) }
            }
        }
    }

    /// The newest applied revision.
    pub fn current_revision(&self) -> Revision {
        self.state.read_or_recover().revision
    }

    /// The highest revision no longer retained.
    pub fn compacted_revision(&self) -> Revision {
        self.state.read_or_recover().compacted
    }

    /// Objects currently held.
    pub fn len(&self) -> usize {
        self.state.read_or_recover().objects.len()
    }

    /// True when no objects are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events currently retained for watchers.
    pub fn history_len(&self) -> usize {
        self.state.read_or_recover().ring.len()
    }

    /// Open watch streams.
    pub fn watchers(&self) -> u64 {
        self.watchers.load(Ordering::Relaxed)
    }

    /// Ends every watch stream (after it has read what is already in the ring) and refuses new
    /// ones. Idempotent.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // send_modify wakes every receiver even though the revision does not change.
        self.notify.send_modify(|_| {});
    }

    /// Whether `close` has been called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

/// A watch over one key prefix, reading the shared ring from its own position.
///
/// `next` is cancel-safe: position and buffered events change only in synchronous sections,
/// so a caller may `select!` between `next` and a bookmark timer without losing events.
pub struct WatchStream {
    cache: Arc<WatchCache>,
    wake: watch::Receiver<Revision>,
    prefix: String,
    /// The newest revision scanned (whether it matched the prefix or not).
    position: Revision,
    /// Matching events scanned but not yet returned.
    pending: VecDeque<Arc<Event>>,
    /// Set after TooOld or shutdown; the stream then only returns None.
    finished: bool,
}

impl WatchStream {
    /// Next event, waiting for it; `Err(TooOld)` when this watcher fell so far behind that the
    /// ring dropped events it had not seen (then it ends); `None` when the store shuts down.
    pub async fn next(&mut self) -> Option<Result<Arc<Event>>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            if self.finished {
                return None;
            }
            // Mark the current announcement seen before reading the ring: a write published
            // after this point wakes `changed` below, one published before is in the ring.
            self.wake.borrow_and_update();
            if let Err(err) = self.scan() {
                self.finished = true;
                return Some(Err(err));
            }
            if !self.pending.is_empty() {
                continue;
            }
            if self.cache.is_closed() {
                self.finished = true;
                return None;
            }
            if self.wake.changed().await.is_err() {
                self.finished = true;
                return None;
            }
        }
    }

    /// The newest revision this stream has scanned (including events skipped by prefix), so a
    /// BOOKMARK can report progress. Buffered events not yet returned are not counted.
    pub fn progress(&self) -> Revision {
        match self.pending.front() {
            Some(event) => event.revision - 1,
            None => self.position,
        }
    }

    /// The prefix this stream watches.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Reads matching events after `position` from the ring into `pending`.
    fn scan(&mut self) -> Result<()> {
        let state = self.cache.state.read_or_recover();
        if self.position < state.compacted {
            return Err(Error::TooOld { requested: self.position, oldest: state.compacted });
        }
        let start = state.ring.partition_point(|e| e.revision <= self.position);
        for event in state.ring.range(start..) {
            if event.key.starts_with(&self.prefix) {
                if self.pending.len() == SCAN_BATCH {
                    break;
                }
                self.pending.push_back(Arc::clone(event));
            }
            self.position = event.revision;
        }
        Ok(())
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.cache.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchStream")
            .field("prefix", &self.prefix)
            .field("position", &self.position)
            .field("pending", &self.pending.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(rev: Revision, key: &str) -> Event {
        Event::new(rev, EventType::Added, key.into(), Bytes::from_static(b"v"), None, rev)
    }

    #[tokio::test]
    async fn should_deliver_matching_events_after_position() {
        let cache = Arc::new(WatchCache::new(100));
        cache.apply([added(1, "/a/1"), added(2, "/b/1"), added(3, "/a/2")]);
        let mut w = cache.watch("/a/", 1).unwrap();
        let e = w.next().await.unwrap().unwrap();
        assert_eq!((e.revision, e.key.as_str()), (3, "/a/2"));
        assert_eq!(w.progress(), 3);
    }

    #[tokio::test]
    async fn should_report_too_old_when_ring_overtakes_watcher() {
        let cache = Arc::new(WatchCache::new(2));
        let mut w = cache.watch("", 0).unwrap();
        cache.apply((1..=5).map(|r| added(r, &format!("/k/{r}"))));
        assert!(matches!(w.next().await, Some(Err(Error::TooOld { requested: 0, oldest: 3 }))));
        assert!(w.next().await.is_none());
        assert!(matches!(cache.watch("", 2), Err(Error::TooOld { .. })));
        assert!(cache.watch("", 3).is_ok());
    }

    #[tokio::test]
    async fn should_end_streams_on_close_after_draining() {
        let cache = Arc::new(WatchCache::new(10));
        let mut w = cache.watch("", 0).unwrap();
        cache.apply([added(1, "/k")]);
        cache.close();
        assert_eq!(w.next().await.unwrap().unwrap().revision, 1);
        assert!(w.next().await.is_none());
        assert_eq!(cache.watchers(), 1);
        drop(w);
        assert_eq!(cache.watchers(), 0);
    }

    #[tokio::test]
    async fn should_keep_progress_below_buffered_events() {
        let cache = Arc::new(WatchCache::new(10));
        let mut w = cache.watch("", 0).unwrap();
        cache.apply([added(1, "/a"), added(2, "/b")]);
        assert_eq!(w.next().await.unwrap().unwrap().revision, 1);
        assert_eq!(w.progress(), 1);
        assert_eq!(w.next().await.unwrap().unwrap().revision, 2);
        assert_eq!(w.progress(), 2);
    }
}
