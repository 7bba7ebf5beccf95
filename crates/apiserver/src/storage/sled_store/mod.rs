//! The embedded sled backend: durable group-committed writes and a compacted history log.
//!
//! # On disk (format 3)
//! One sled tree holds these records:
//! - `l` + revision (u64 BE) → a log record: what the write at that revision stored (event
//!   type, create revision, key, value, and for a modification the previous value);
//! - `m/revision` → the current revision; `m/horizon` → the first revision compaction has not
//!   passed yet; `m/format` → 3.
//!
//! The log is the whole state: replaying its records in revision order (a write sets its
//! key's value, a deletion removes it) gives every object with its revisions, which is how a
//! store opens. Each value is written once, in the record of its write (etcd keeps its values
//! by revision the same way), and a write is one insert into sled.
//!
//! A log record is kept while it is in the watch history or while it holds some object's
//! current value; so a record older than the horizon is always its key's latest write, and
//! the records compaction removes (replaced values, deletions) are never needed by the replay.
//! The newest contiguous run of records is the history a restarted store serves to watchers;
//! records written only to hold a value (restore, rebuild: type "value") end that run, since
//! they are not events. Older formats are rebuilt into this one when opened: format 1 kept
//! each value in a `k` + key record as well as in the log, format 2 kept there a
//! `[mod_revision][create_revision]` index into the log: an extra insert per write, about 30%
//! of the store's CPU per create in `berth-bench store` at 64 writers (18.5 against 13 µs).
//!
//! # Writes
//! sled 0.34 is beta software whose default is to flush every 500 ms, so we flush ourselves
//! before acknowledging (DESIGN.md §4). One writer thread owns revision assignment and
//! preconditions: it takes every request queued at that moment (group commit), checks each
//! against the cache plus the earlier writes of the same group, writes the group as one atomic
//! `sled::Batch`, flushes once, publishes the events to the watch cache and only then replies.
//! So a write is visible to readers before its writer hears about it, and concurrent writes
//! share one fsync. Each flush has a fixed cost (sled hands the write to its I/O thread pool
//! and wakes every idle thread of it), so under concurrent load (the previous group held at
//! least `COMMIT_SIBLINGS` writes) the writer first waits `commit_delay` for more writes to
//! queue, as PostgreSQL's `commit_delay` does: fewer, larger groups, for a little latency.
//!
//! # Giving space back
//! Every `COMPACT_EVERY` writes the writer removes log records older than the kept history
//! that no longer hold a current value (and a write that replaces a value held by such an old
//! record removes that record in its own batch), and asks [`DefragPolicy`] whether sled's
//! file has grown far beyond the live data; if so it rebuilds the store into a fresh
//! directory and switches to it ([`super::defrag`] has the layout and the crash-safety
//! argument). Writes wait meanwhile (the rebuild writes only the
//! live data); reads and watches are served from memory throughout, and the revision sequence
//! and the watch history carry on unchanged.
//!
//! # Layout
//! - `mod.rs`: [`SledOptions`], the [`SledStore`] handle and its [`Store`] implementation (the
//!   read side: get, list and watch answer from the [`WatchCache`]; writes go to the writer).
//! - `open`: opening a store directory (sled's configuration, the format check, loading the
//!   objects and the history) and restoring a snapshot; `write_fresh` there writes a whole
//!   store, for a restore and for a rebuild.
//! - `old_formats`: reading the object records of formats 1 and 2, to move them to format 3.
//! - `record`: the record codec: the keys of the log and meta records and how a log record
//!   lays out its event.
//! - `writer`: the writer thread: group commit, preconditions, compaction and rebuilds.

mod old_formats;
mod open;
mod record;
mod writer;

use berth_base::sync::MutexExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tracing::{error, info};

use super::defrag::DefragPolicy;
use super::watch_cache::{DEFAULT_HISTORY, WatchCache};
use super::{Error, KeyValue, Result, Revision, Store, StoreStats, WatchStream};
use writer::{Command, Op, Outcome, WriteRequest};

pub use writer::RecordTooLarge;

/// How long `list_at_least` waits for the store to catch up.
const LIST_WAIT: Duration = Duration::from_secs(3);

/// How a [`SledStore`] is configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SledOptions {
    /// Events kept for watches, in memory and in the on-disk log (default 10,000; at least 1).
    pub history: usize,
    /// sled's page cache size in bytes (default 64 MiB).
    pub cache_capacity_bytes: u64,
    /// When to rebuild the store to give disk space back.
    pub defrag: DefragPolicy,
    /// Under concurrent load, how long the writer waits for more writes before committing a
    /// group (see "Writes" above; default 200 µs; zero commits at once).
    pub commit_delay: Duration,
}

/// The default [`SledOptions::commit_delay`]. Measured with `berth-bench api` (64 clients,
/// README: Performance): 200 µs grew groups from 18 to 28 writes per flush and cut the
/// apiserver's CPU per create by a tenth; 400 µs grew them further but lost throughput to the
/// added latency.
pub const DEFAULT_COMMIT_DELAY: Duration = Duration::from_micros(200);

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            history: DEFAULT_HISTORY,
            cache_capacity_bytes: 64 * 1024 * 1024,
            defrag: DefragPolicy::default(),
            commit_delay: DEFAULT_COMMIT_DELAY,
        }
    }
}

/// The embedded store: sled on disk, a [`WatchCache`] in memory, one writer thread.
///
/// Reads never touch sled. Close it with [`SledStore::close`] (dropping it does the same).
pub struct SledStore {
    cache: Arc<WatchCache>,
    requests: mpsc::Sender<Command>,
    /// Taken by `close`, which joins the writer.
    writer: Mutex<Option<thread::JoinHandle<()>>>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    flushes: AtomicU64,
    /// sled's size on disk after the last commit or rebuild.
    disk_bytes: AtomicU64,
    /// History compactions that removed log records.
    compactions: AtomicU64,
    /// Rebuilds that gave space back, and the time they took (microseconds, summed).
    defrags: AtomicU64,
    defrag_micros: AtomicU64,
}

impl SledStore {
    /// Stops the store: the writer finishes every request queued before this call, flushes and
    /// exits; watch streams then end (returning `None` once drained), and later writes and
    /// watches get [`Error::Closed`]. Reads keep answering from memory. Blocks until the writer
    /// has stopped (at most one group commit); idempotent; also run on drop.
    pub fn close(&self) {
        let handle = self.writer.lock_or_recover().take();
        let Some(handle) = handle else { return };
        // If the writer already stopped (after a backend failure) the send fails; fine.
        let _ = self.requests.send(Command::Shutdown);
        if handle.join().is_err() {
            error!("sled writer thread panicked");
        }
        // The writer closes the cache and flushes on its way out; this covers a panicked writer.
        self.cache.close();
        info!(revision = self.cache.current_revision(), "closed sled store");
    }

    /// The watch cache serving reads (for diagnostics and tests).
    pub fn cache(&self) -> &Arc<WatchCache> {
        &self.cache
    }

    /// Sends one write to the writer thread and waits for its durable outcome. If the caller
    /// stops waiting, the write still happens (as with etcd).
    async fn submit(&self, key: &str, op: Op) -> Result<Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.requests.send(Command::Write(WriteRequest { key: key.to_owned(), op, reply })).map_err(|_| Error::Closed)?;
        // A dropped reply means the writer stopped before reaching this request.
        outcome.await.map_err(|_| Error::Closed)?
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait::async_trait]
impl Store for SledStore {
    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        Ok(self.submit(key, Op::Create { value }).await?.0)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Option<Revision>) -> Result<Revision> {
        Ok(self.submit(key, Op::Update { value, expected }).await?.0)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(Revision, KeyValue)> {
        match self.submit(key, Op::Delete { expected }).await? {
            (revision, Some(kv)) => Ok((revision, kv)),
            // The writer always returns the removed key-value for a delete.
            (_, None) => Err(Error::NotFound { key: key.to_owned() }),
        }
    }

    fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.cache.get(key))
    }

    fn list(&self, prefix: &str) -> Result<(Vec<KeyValue>, Revision)> {
        Ok(self.cache.list(prefix))
    }

    async fn list_at_least(&self, prefix: &str, min: Revision) -> Result<(Vec<KeyValue>, Revision)> {
        self.cache.wait_for_revision(min, LIST_WAIT).await?;
        Ok(self.cache.list(prefix))
    }

    fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        self.cache.watch(prefix, from)
    }

    fn current_revision(&self) -> Revision {
        self.cache.current_revision()
    }

    fn compacted_revision(&self) -> Revision {
        self.cache.compacted_revision()
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            objects: self.cache.len() as u64,
            disk_bytes: self.counters.disk_bytes.load(Ordering::Relaxed),
            live_bytes: self.cache.data_bytes(),
            current_revision: self.cache.current_revision(),
            compacted_revision: self.cache.compacted_revision(),
            history_events: self.cache.history_len() as u64,
            watchers: self.cache.watchers(),
            writes: self.counters.writes.load(Ordering::Relaxed),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
            compactions: self.counters.compactions.load(Ordering::Relaxed),
            defrags: self.counters.defrags.load(Ordering::Relaxed),
            defrag_seconds: Duration::from_micros(self.counters.defrag_micros.load(Ordering::Relaxed)).as_secs_f64(),
        }
    }
}
