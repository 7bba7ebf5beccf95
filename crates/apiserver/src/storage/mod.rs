//! The storage interface the apiserver uses, independent of the backend.
//!
//! # Layout
//! - `mod.rs`: the [`Store`] trait and the types it speaks (keys, opaque values, revisions,
//!   events, errors).
//! - [`watch_cache`]: the in-memory current state and ring of recent events that serves
//!   get, list and watch for any backend.
//! - [`sled_store`]: the embedded sled backend, with group-committed durable writes.
//! - [`defrag`]: giving disk space back: the data directory's layout and the atomic switch to
//!   a store rebuilt in a fresh directory.
//!
//! Keys look like `/registry/{kind}/{namespace}/{name}` (cluster-scoped kinds:
//! `/registry/{kind}/{name}`); values are opaque bytes that the layer above encodes.
//! The revision is one cluster-wide counter, as in etcd: every successful write gets the next
//! one, and it is what the API calls `resourceVersion`.

pub mod defrag;
pub mod sled_store;
pub mod watch_cache;

use std::any::Any;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

pub use defrag::DefragPolicy;
pub use sled_store::{DEFAULT_COMMIT_DELAY, SledOptions, SledStore};
pub use watch_cache::{WatchCache, WatchStream};

/// A cluster-wide, strictly increasing revision (etcd's model); 0 means "nothing written yet".
pub type Revision = u64;

/// One stored object as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/pods/default/web-1`.
    pub key: String,
    /// The encoded object.
    pub value: Bytes,
    /// The revision of the last write to this key (the object's `resourceVersion`).
    pub mod_revision: Revision,
    /// The revision at which this key was created.
    pub create_revision: Revision,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The key was created.
    Added,
    /// The key's value was replaced.
    Modified,
    /// The key was removed.
    Deleted,
}

/// One change, as delivered to watchers.
#[derive(Debug)]
pub struct Event {
    /// The revision of this change; each change has its own.
    pub revision: Revision,
    /// What happened.
    pub event_type: EventType,
    /// The key that changed.
    pub key: String,
    /// The new value; for `Deleted`, the last value before deletion.
    pub value: Bytes,
    /// The value before this change, for `Modified` and `Deleted` (a watcher with a selector
    /// needs it to tell "stopped matching" from "never matched").
    pub prev_value: Option<Bytes>,
    /// The revision at which the key was created.
    pub create_revision: Revision,
    /// A memo slot for the layer above: the first watcher that decodes `value` stores it here,
    /// so 1,000 watchers decode an event once.
    pub decoded: OnceLock<Arc<dyn Any + Send + Sync>>,
}

impl Event {
    /// An event with an empty memo slot.
    pub fn new(
        revision: Revision,
        event_type: EventType,
        key: String,
        value: Bytes,
        prev_value: Option<Bytes>,
        create_revision: Revision,
    ) -> Self {
        Self { revision, event_type, key, value, prev_value, create_revision, decoded: OnceLock::new() }
    }
}

/// Errors of the storage layer.
#[derive(thiserror::Error, Debug, Clone)]
pub enum Error {
    /// The key does not exist (404).
    #[error("key {key} not found")]
    NotFound {
        /// The missing key.
        key: String,
    },
    /// A create found the key already present (409).
    #[error("key {key} already exists")]
    AlreadyExists {
        /// The existing key.
        key: String,
    },
    /// The precondition revision differs from the key's current one (409).
    #[error("conflict on key {key}: expected revision {expected}, current revision is {actual}")]
    Conflict {
        /// The key written.
        key: String,
        /// The revision the caller based its write on.
        expected: Revision,
        /// The key's current modification revision.
        actual: Revision,
    },
    /// A watch asked for history that is no longer retained (Kubernetes' 410 Gone); relist.
    #[error("revision {requested} is too old: the oldest revision still watchable is {oldest}")]
    TooOld {
        /// The revision the watcher had reached.
        requested: Revision,
        /// The oldest revision from which a watch can start now.
        oldest: Revision,
    },
    /// `list_at_least` gave up waiting for the store to reach a revision.
    #[error("timed out waiting for revision {revision}")]
    Timeout {
        /// The revision waited for.
        revision: Revision,
    },
    /// The backend failed (I/O error, corrupt record); the cause says which. The message
    /// repeats the cause because callers often keep only `to_string()`.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
    /// The store is shutting down (or stopped after a backend failure).
    #[error("store is closed")]
    Closed,
}

impl Error {
    /// A backend error from any error type.
    pub fn backend(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Arc::new(err))
    }

    /// A backend error for a record that cannot be decoded, naming its key.
    pub fn corrupt(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::backend(CorruptRecord { key: key.into(), reason: reason.into() })
    }
}

/// A record read from disk that does not decode; carried inside [`Error::Backend`].
#[derive(thiserror::Error, Debug)]
#[error("corrupt record for key {key}: {reason}")]
pub struct CorruptRecord {
    /// The key (or log position) of the record.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The storage layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Numbers for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StoreStats {
    /// Objects currently stored.
    pub objects: u64,
    /// Bytes the backend uses on disk (0 where it cannot tell).
    pub disk_bytes: u64,
    /// Bytes of live data: objects' keys and values and the kept history's.
    pub live_bytes: u64,
    /// The newest revision.
    pub current_revision: Revision,
    /// The highest revision no longer retained for watches.
    pub compacted_revision: Revision,
    /// Events retained in memory for watches.
    pub history_events: u64,
    /// Open watch streams.
    pub watchers: u64,
    /// Successful writes since the store was opened.
    pub writes: u64,
    /// Durable flushes since the store was opened; far fewer than `writes` under concurrency,
    /// because concurrent writes share one flush (group commit).
    pub flushes: u64,
    /// History compactions (removals of events older than the kept history) since opened.
    pub compactions: u64,
    /// Rebuilds into a fresh directory that gave disk space back, since opened.
    pub defrags: u64,
    /// Time those rebuilds took, in seconds, summed.
    pub defrag_seconds: f64,
}

/// The storage the apiserver uses: keys to opaque values, with a global revision and watches.
///
/// Writes are durable when they return. Reads (`get`, `list`, `watch`) are served from memory
/// and see every acknowledged write.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new key; [`Error::AlreadyExists`] if it is present. Returns its revision.
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision>;

    /// Replaces an existing key's value; [`Error::NotFound`] if absent, [`Error::Conflict`] if
    /// `expected` is given and differs from the key's current `mod_revision`.
    async fn update(&self, key: &str, value: Bytes, expected: Option<Revision>) -> Result<Revision>;

    /// Removes a key, with the same preconditions as `update`; returns the deletion's revision
    /// and the key-value as it was just before.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)>;

    /// The current value of a key.
    fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Every key starting with `prefix`, sorted by key, from one consistent snapshot, with the
    /// revision that snapshot reflects (a watch from it continues exactly where the list ends).
    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)>;

    /// Like `list`, once the store has reached revision `min` (waiting a bounded time, about 3
    /// seconds, then [`Error::Timeout`]); serves Kubernetes' "resourceVersion=N" lists.
    async fn list_at_least(&self, prefix: &str, min: Revision) -> Result<(Vec<KeyValue>, Revision)>;

    /// Every event with revision > `from` whose key starts with `prefix`, in order, exactly
    /// once; [`Error::TooOld`] if `from` is older than the retained history.
    fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream>;

    /// The newest revision.
    fn current_revision(&self) -> Revision;

    /// The highest revision no longer retained; watches must start at or after it.
    fn compacted_revision(&self) -> Revision;

    /// Numbers for `/metrics`.
    fn stats(&self) -> StoreStats;
}
