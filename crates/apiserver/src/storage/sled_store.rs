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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use super::defrag::{self, DefragPolicy};
use super::watch_cache::{DEFAULT_HISTORY, Entry, WatchCache};
use super::{Error, Event, EventType, KeyValue, Result, Revision, Store, StoreStats, WatchStream};

/// Most requests committed in one group; bounds one batch's size and the latency of the
/// requests that wait behind it.
const MAX_GROUP: usize = 1_024;

/// Log compaction runs after this many writes (in the writer thread, so it never races).
const COMPACT_EVERY: u64 = 1_000;

/// Most log records one compaction removes, so that a store reopened with a much smaller
/// `history` trims its backlog gradually instead of in one huge batch.
const COMPACT_MAX_REMOVALS: u64 = 16 * COMPACT_EVERY;

/// How long `open` waits for a lock that sled has not yet released (see
/// `open_waiting_for_lock`).
const OPEN_LOCK_WAIT: Duration = Duration::from_secs(3);

/// The disk-size gauge is refreshed after a commit at most this often, and otherwise once the
/// store has been quiet this long: sled measures it by walking its directory, a dozen system
/// calls that every group paid for before.
const DISK_MEASURE_EVERY: Duration = Duration::from_secs(1);

/// How long `list_at_least` waits for the store to catch up.
const LIST_WAIT: Duration = Duration::from_secs(3);

/// The object records of formats 1 and 2, read only to move such a store to format 3.
const OBJECT_PREFIX: u8 = b'k';
const LOG_PREFIX: u8 = b'l';
const META_REVISION: &[u8] = b"m/revision";
const META_HORIZON: &[u8] = b"m/horizon";
const META_FORMAT: &[u8] = b"m/format";

/// The layout this code writes (see the module documentation). Format 1 had no `m/format`.
const FORMAT: u64 = 3;

/// Size of a format-2 object record, or of the header before a format-1 value: mod revision
/// and create revision.
const OBJECT_HEADER: usize = 16;

/// Records per batch when a whole store is written at once (restore, rebuild).
const FRESH_BATCH: usize = 4_096;

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

/// The commit delay applies only after a group of at least this many writes: a sign of
/// enough concurrent writers that waiting fills the next group. A lone writer, or a few,
/// never wait (PostgreSQL's `commit_siblings` plays the same part). With 8, 16 clients each
/// waiting for its write lost about a tenth of their throughput to the delay (the host had CPU
/// to spare, so the waiting bought nothing); with 16 they lost none, and 64 gained as much.
const COMMIT_SIBLINGS: usize = 16;

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

enum Command {
    Write(WriteRequest),
    /// Finish what is queued before this, then stop.
    Shutdown,
}

struct WriteRequest {
    key: String,
    op: Op,
    reply: oneshot::Sender<Result<Outcome>>,
}

enum Op {
    Create { value: Bytes },
    Update { value: Bytes, expected: Option<Revision> },
    Delete { expected: Option<Revision> },
}

/// The revision of a successful write, and for a delete the key-value it removed.
type Outcome = (Revision, Option<KeyValue>);

impl SledStore {
    /// Opens (or creates) the store in directory `path`: loads every object into memory, the
    /// newest `options.history` log records into the watch ring, and the revision, then starts
    /// the writer thread.
    pub fn open(path: &Path, options: SledOptions) -> Result<SledStore> {
        // With no history every watcher would be too old as soon as anything is written.
        let options = SledOptions { history: options.history.max(1), ..options };
        let locked = defrag::lock(path)?;
        let sled_dir = defrag::prepare(path, &locked)?;
        let db = open_waiting_for_lock(&sled_config(&sled_dir, options.cache_capacity_bytes))?;

        let format = match read_meta(&db, META_FORMAT)? {
            Some(format) => format,
            None if db.is_empty() => {
                db.insert(META_FORMAT, &FORMAT.to_be_bytes()).and_then(|_| db.flush()).map_err(Error::backend)?;
                FORMAT
            }
            None => 1,
        };
        if format > FORMAT {
            return Err(Error::corrupt("m/format", format!("the store has format {format}; this apiserver reads formats 1 to {FORMAT}")));
        }
        let revision = read_meta(&db, META_REVISION)?.unwrap_or(0);
        let objects = if format < FORMAT { load_indexed_objects(&db, format, revision)? } else { replay_log(&db, revision)? };

        let (history, compacted) = load_history(&db, revision, options.history)?;
        let horizon = match read_meta(&db, META_HORIZON)? {
            Some(horizon) => horizon,
            None => match db.scan_prefix([LOG_PREFIX]).next() {
                Some(item) => {
                    let (raw_key, _) = item.map_err(Error::backend)?;
                    log_revision(&raw_key)?
                }
                None => revision + 1,
            },
        };

        info!(
            path = %sled_dir.display(),
            objects = objects.len(),
            revision,
            compacted,
            history = history.len(),
            "opened sled store"
        );

        let cache = Arc::new(WatchCache::restore(options.history, objects, revision, compacted, history));
        let counters = Arc::new(Counters::default());
        counters.disk_bytes.store(db.size_on_disk().unwrap_or(0), Ordering::Relaxed);
        let (requests, queue) = mpsc::channel();
        let mut writer = Writer {
            db,
            data_dir: path.to_path_buf(),
            _locked: locked,
            sled_dir,
            cache_capacity_bytes: options.cache_capacity_bytes,
            cache: Arc::clone(&cache),
            counters: Arc::clone(&counters),
            history: options.history as u64,
            horizon,
            since_compaction: 0,
            defrag: options.defrag,
            defrag_check_due: false,
            defrag_floor: 0,
            disk_measured: Instant::now(),
            disk_stale: false,
            commit_delay: options.commit_delay,
        };
        if format < FORMAT {
            // Everything is in memory now; write it again in the current layout.
            writer.rebuild()?;
            info!(path = %writer.sled_dir.display(), "moved the store from format {format} to format {FORMAT}");
        }
        let handle = thread::Builder::new().name("berth-sled-writer".into()).spawn(move || writer.run(queue)).map_err(Error::backend)?;

        Ok(SledStore { cache, requests, writer: Mutex::new(Some(handle)), counters })
    }

    /// Stops the store: the writer finishes every request queued before this call, flushes and
    /// exits; watch streams then end (returning `None` once drained), and later writes and
    /// watches get [`Error::Closed`]. Reads keep answering from memory. Blocks until the writer
    /// has stopped (at most one group commit); idempotent; also run on drop.
    pub fn close(&self) {
        let handle = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
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

    /// Writes `snapshot` as a new store in directory `path`, keeping every
    /// object's revisions and the store's revision, so that clients' cached
    /// resourceVersions stay meaningful (watches from before it are "too
    /// old": the history is not in a snapshot). Refuses a directory that
    /// already holds anything, so a restore never mixes with or overwrites
    /// a store.
    pub fn restore(path: &Path, snapshot: &berth_api::snapshot::Snapshot) -> Result<()> {
        let occupied = std::fs::read_dir(path).map(|mut d| d.next().is_some()).unwrap_or(false);
        if occupied {
            return Err(Error::backend(std::io::Error::other(format!(
                "{} is not empty: restore into a new directory (nothing was changed)",
                path.display()
            ))));
        }
        let _locked = defrag::lock(path)?;
        let objects = snapshot.records.iter().map(|r| (r.key.as_str(), r.mod_revision, r.create_revision, r.value.as_ref()));
        let history = std::iter::empty::<Result<(sled::IVec, sled::IVec)>>();
        let (_, db) = defrag::install(path, path, |dir| {
            write_fresh(sled_config(dir, 0), objects, history, snapshot.revision, snapshot.revision + 1)
        })?;
        drop(db);
        info!(path = %path.display(), objects = snapshot.records.len(), revision = snapshot.revision, "restored a snapshot");
        Ok(())
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

/// The writer thread's state: the only code that assigns revisions or writes to sled.
struct Writer {
    db: sled::Db,
    /// The directory the store was opened in, and the sled directory inside it now in use.
    data_dir: PathBuf,
    sled_dir: PathBuf,
    /// Held while the writer runs: no other process may clean up or rebuild the directory.
    _locked: defrag::DirLock,
    cache_capacity_bytes: u64,
    cache: Arc<WatchCache>,
    counters: Arc<Counters>,
    history: u64,
    /// The first revision compaction has not passed: log records from here on are kept (the
    /// history and what is not yet compacted); older ones exist only while they hold an
    /// object's current value.
    horizon: Revision,
    since_compaction: u64,
    defrag: DefragPolicy,
    /// Set with each compaction: the next quiet moment checks whether a rebuild is due.
    defrag_check_due: bool,
    /// No rebuild below this size: set after a failed attempt, or after a rebuild whose fresh
    /// store was itself over the ratio, so such a store does not rebuild over and over.
    defrag_floor: u64,
    /// When the disk-size gauge was last refreshed, and whether writes came since.
    disk_measured: Instant,
    disk_stale: bool,
    commit_delay: Duration,
}

impl Writer {
    fn run(mut self, queue: mpsc::Receiver<Command>) {
        let mut group = Vec::with_capacity(MAX_GROUP);
        let mut stopping = false;
        let mut last_group = 0;
        while !stopping {
            // Block for the first request, then take whatever else is already queued: under
            // load the queue fills while the previous group flushes, so groups grow by
            // themselves and no timer is needed.
            let first = if self.disk_stale {
                match queue.recv_timeout(DISK_MEASURE_EVERY) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        // Quiet: bring the gauge up to date with the last writes.
                        self.measure_disk();
                        continue;
                    }
                    received => received.ok(),
                }
            } else {
                queue.recv().ok()
            };
            match first {
                Some(Command::Write(request)) => group.push(request),
                Some(Command::Shutdown) | None => break,
            }
            if last_group >= COMMIT_SIBLINGS && !self.commit_delay.is_zero() {
                // A sleep, not a timed receive: the writers that queue meanwhile need not
                // wake this thread, one by one.
                thread::sleep(self.commit_delay);
            }
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(Command::Write(request)) => group.push(request),
                    Ok(Command::Shutdown) => {
                        stopping = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            last_group = group.len();
            if let Err(err) = self.commit(&mut group) {
                // Memory and disk may now disagree about this group, so take no more writes;
                // a restart reloads the truth from disk.
                error!(cause = %err, "sled write failed; the store stops accepting writes");
                break;
            }
            // After the group's replies, so no acknowledgement waits for a rebuild.
            if self.defrag_check_due && !stopping {
                self.defrag_check_due = false;
                if let Err(err) = self.maybe_defrag() {
                    error!(cause = %err, "store rebuild failed after switching directories; the store stops accepting writes");
                    break;
                }
            }
        }
        // Requests still queued are dropped with the queue, so their callers get Closed.
        self.cache.close();
        if let Err(err) = self.db.flush() {
            error!(cause = %err, "final flush failed");
        }
        debug!("sled writer stopped");
    }

    /// Checks, writes, flushes and publishes one group, then answers its requests.
    fn commit(&mut self, group: &mut Vec<WriteRequest>) -> Result<()> {
        let committed = self.cache.current_revision();
        let mut revision = committed;
        // Keys written earlier in this group: their state is not in the cache yet.
        let mut overlay: HashMap<String, Option<KeyValue>> = HashMap::new();
        let mut batch = sled::Batch::default();
        let mut events = Vec::with_capacity(group.len());
        let mut replies = Vec::with_capacity(group.len());

        for request in group.drain(..) {
            let current = match overlay.get(&request.key) {
                Some(state) => state.clone(),
                None => self.cache.get(&request.key),
            };
            let key = request.key;
            let replaced = current.as_ref().map(|kv| kv.mod_revision);
            let planned = plan(&key, request.op, current, revision + 1);
            let event = match planned {
                Ok((event, outcome)) => {
                    replies.push((request.reply, Ok(outcome)));
                    event
                }
                Err(err) => {
                    // Answered with the group, not now: a failure caused by an earlier write
                    // in this group must not be seen before that write is.
                    replies.push((request.reply, Err(err)));
                    continue;
                }
            };
            revision = event.revision;
            if let Some(replaced) = replaced
                && replaced < self.horizon
            {
                // Compaction has passed the record holding the value this write replaces; it
                // was kept only for that value.
                batch.remove(log_key(replaced).to_vec());
            }
            match event.event_type {
                EventType::Deleted => {
                    overlay.insert(key, None);
                }
                EventType::Added | EventType::Modified => {
                    overlay.insert(
                        key,
                        Some(KeyValue {
                            key: event.key.clone(),
                            value: event.value.clone(),
                            mod_revision: event.revision,
                            create_revision: event.create_revision,
                        }),
                    );
                }
            }
            batch.insert(log_key(event.revision).to_vec(), encode_log(&event));
            events.push(event);
        }

        if !events.is_empty() {
            let written = events.len() as u64;
            batch.insert(META_REVISION, revision.to_be_bytes().to_vec());
            let durable = self
                .compact_into(&mut batch, committed, revision, written, &overlay)
                .and_then(|()| self.db.apply_batch(batch).and_then(|()| self.db.flush()).map_err(Error::backend));
            if let Err(err) = durable {
                for (reply, _) in replies {
                    let _ = reply.send(Err(err.clone()));
                }
                return Err(err);
            }
            self.counters.flushes.fetch_add(1, Ordering::Relaxed);
            self.counters.writes.fetch_add(written, Ordering::Relaxed);
            if self.disk_measured.elapsed() >= DISK_MEASURE_EVERY {
                self.measure_disk();
            } else {
                self.disk_stale = true;
            }
            // Publish before replying, so a writer that reads back sees its own write.
            self.cache.apply(events);
        }

        for (reply, outcome) in replies {
            // The caller may have stopped waiting; the write stands anyway.
            let _ = reply.send(outcome);
        }
        Ok(())
    }

    /// Every `COMPACT_EVERY` writes, adds to `batch` the removal of the log records older than
    /// the retained history that hold no current value, so disk use stays bounded. Only
    /// records up to `committed` (the revision before this group) are on disk to look at;
    /// `overlay` has the keys this group writes.
    fn compact_into(
        &mut self,
        batch: &mut sled::Batch,
        committed: Revision,
        revision: Revision,
        written: u64,
        overlay: &HashMap<String, Option<KeyValue>>,
    ) -> Result<()> {
        self.since_compaction += written;
        if self.since_compaction < COMPACT_EVERY {
            return Ok(());
        }
        self.since_compaction = 0;
        let cutoff = revision.saturating_sub(self.history).min(self.horizon.saturating_add(COMPACT_MAX_REMOVALS - 1)).min(committed);
        if cutoff < self.horizon {
            return Ok(());
        }
        let mut removed = 0u64;
        for item in self.db.range(log_key(self.horizon)..=log_key(cutoff)) {
            let (raw_key, raw) = item.map_err(Error::backend)?;
            let old = log_revision(&raw_key)?;
            let record = LogRecord::parse(old, &raw)?;
            let holds_current = record.holds_value() && current_revision_of(overlay, &self.cache, record.key) == Some(old);
            if !holds_current {
                batch.remove(raw_key);
                removed += 1;
            }
        }
        debug!(from = self.horizon, to = cutoff, removed, "compacting sled history log");
        self.horizon = cutoff + 1;
        batch.insert(META_HORIZON, self.horizon.to_be_bytes().to_vec());
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        self.defrag_check_due = true;
        Ok(())
    }

    fn measure_disk(&mut self) -> u64 {
        self.disk_measured = Instant::now();
        self.disk_stale = false;
        let bytes = self.db.size_on_disk().unwrap_or_else(|err| {
            debug!(cause = %err, "cannot measure sled size on disk");
            0
        });
        self.counters.disk_bytes.store(bytes, Ordering::Relaxed);
        bytes
    }

    /// Rebuilds the store if the policy says its file has outgrown the live data. A failed
    /// rebuild leaves the store as it was (writes go on in the old directory) and is retried
    /// only once the file has doubled. An error means the rebuild failed after `store` was
    /// switched to the new directory, where this writer is not writing: the caller must stop.
    fn maybe_defrag(&mut self) -> Result<()> {
        let before = self.measure_disk();
        if !self.defrag.due(before, self.defrag_floor, || self.cache.data_bytes()) {
            return Ok(());
        }
        let started = Instant::now();
        match self.rebuild() {
            Ok(()) => {
                let elapsed = started.elapsed();
                let after = self.measure_disk();
                let over_ratio = self.defrag.over_ratio(after, self.cache.data_bytes());
                self.defrag_floor = if over_ratio { after.saturating_mul(2) } else { 0 };
                self.counters.defrags.fetch_add(1, Ordering::Relaxed);
                self.counters.defrag_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
                info!(before, after, dir = %self.sled_dir.display(), millis = elapsed.as_millis() as u64, "rebuilt the store to give disk space back");
            }
            Err(err) => {
                let named = defrag::current(&self.data_dir).unwrap_or_else(|| self.data_dir.clone());
                if named != self.sled_dir {
                    return Err(err);
                }
                self.defrag_floor = before.saturating_mul(2);
                warn!(cause = %err, "store rebuild failed; carrying on with the current directory");
            }
        }
        Ok(())
    }

    /// Writes the objects, the kept history and the revision into a fresh sled directory,
    /// switches to it and removes the old one. Only the writer writes, and it is here, so
    /// memory and disk agree on everything up to the current revision.
    fn rebuild(&mut self) -> Result<()> {
        let (objects, revision) = self.cache.list("");
        let keep_from = self.horizon.max(revision.saturating_sub(self.history) + 1);
        let history = self.db.range(log_key(keep_from)..=log_key(revision)).map(|item| item.map_err(Error::backend));
        let objects = objects.iter().map(|kv| (kv.key.as_str(), kv.mod_revision, kv.create_revision, kv.value.as_ref()));
        let config = |dir: &Path| sled_config(dir, self.cache_capacity_bytes);
        let (dir, db) =
            defrag::install(&self.data_dir, &self.sled_dir, |dir| write_fresh(config(dir), objects, history, revision, keep_from))?;
        let replaced = std::mem::replace(&mut self.sled_dir, dir);
        // sled's files close when its last handle goes; deleting them first is fine on Unix.
        drop(std::mem::replace(&mut self.db, db));
        defrag::remove_replaced(&self.data_dir, &replaced);
        self.horizon = keep_from;
        Ok(())
    }
}

/// sled's configuration for a store directory.
fn sled_config(dir: &Path, cache_capacity_bytes: u64) -> sled::Config {
    let config = sled::Config::new()
        .path(dir)
        // We flush before every acknowledgement; sled's timer would only add fsyncs.
        .flush_every_ms(None);
    if cache_capacity_bytes > 0 { config.cache_capacity(cache_capacity_bytes) } else { config }
}

/// Writes a whole store in the current format (objects, raw history log records, revision,
/// horizon) into the empty sled directory of `config` and flushes it: what a snapshot restore
/// and a rebuild both do. An object whose value is not in a copied history record gets a
/// "value" record at its mod revision. Returns the open database.
fn write_fresh<'a>(
    config: sled::Config,
    objects: impl Iterator<Item = (&'a str, Revision, Revision, &'a [u8])>,
    history: impl Iterator<Item = Result<(sled::IVec, sled::IVec)>>,
    revision: Revision,
    horizon: Revision,
) -> Result<sled::Db> {
    let db = open_waiting_for_lock(&config)?;
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    let apply = |batch: &mut sled::Batch, pending: &mut usize| {
        *pending = 0;
        db.apply_batch(std::mem::take(batch)).map_err(Error::backend)
    };
    let mut copied = HashSet::new();
    for record in history {
        let (key, value) = record?;
        copied.insert(log_revision(&key)?);
        batch.insert(key, value);
        pending += 1;
        if pending == FRESH_BATCH {
            apply(&mut batch, &mut pending)?;
        }
    }
    for (key, mod_revision, create_revision, value) in objects {
        if !copied.contains(&mod_revision) {
            batch.insert(log_key(mod_revision).to_vec(), encode_value_record(key, create_revision, value));
            pending += 1;
        }
        if pending >= FRESH_BATCH {
            apply(&mut batch, &mut pending)?;
        }
    }
    batch.insert(META_FORMAT, &FORMAT.to_be_bytes());
    batch.insert(META_HORIZON, &horizon.to_be_bytes());
    batch.insert(META_REVISION, &revision.to_be_bytes());
    apply(&mut batch, &mut pending)?;
    db.flush().map_err(Error::backend)?;
    Ok(db)
}

/// Opens sled, retrying for a short while if its directory lock is still held.
///
/// sled 0.34 releases the lock only when its last internal reference goes, which its background
/// threads and deferred (epoch-based) cleanup may hold a little after the `Db` is dropped
/// (sled issues #1234, #1289); so reopening a directory in the same process right after
/// closing it can fail spuriously. A second live process keeps the lock and still fails, only
/// `OPEN_LOCK_WAIT` later.
fn open_waiting_for_lock(config: &sled::Config) -> Result<sled::Db> {
    let deadline = Instant::now() + OPEN_LOCK_WAIT;
    let mut pause = Duration::from_millis(5);
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            Err(err) if is_lock_contention(&err) && Instant::now() < deadline => {
                debug!(cause = %err, "sled directory still locked; retrying");
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(err) => return Err(Error::backend(err)),
        }
    }
}

fn is_lock_contention(err: &sled::Error) -> bool {
    match err {
        // sled wraps flock's EWOULDBLOCK in an `Other` error carrying this message.
        sled::Error::Io(io) => io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock"),
        _ => false,
    }
}

/// Checks one request against the key's current state and, if it passes, returns the event it
/// produces (at `revision`) and the caller's outcome.
fn plan(key: &str, op: Op, current: Option<KeyValue>, revision: Revision) -> Result<(Event, Outcome)> {
    let check = |current: &KeyValue, expected: Option<Revision>| match expected {
        Some(expected) if expected != current.mod_revision => {
            Err(Error::Conflict { key: key.to_owned(), expected, actual: current.mod_revision })
        }
        _ => Ok(()),
    };
    let not_found = || Error::NotFound { key: key.to_owned() };
    // History records store lengths as u32; refuse what they cannot describe rather than write
    // a record that would read back corrupt. (The API's message limits keep real objects far
    // smaller.)
    let too_large = |bytes: usize| Error::backend(RecordTooLarge { key: key.to_owned(), bytes });
    let value_len = match &op {
        Op::Create { value } | Op::Update { value, .. } => value.len(),
        Op::Delete { .. } => 0,
    };
    let largest = key.len().max(value_len);
    if largest > MAX_FIELD_BYTES {
        return Err(too_large(largest));
    }
    match op {
        Op::Create { value } => {
            if current.is_some() {
                return Err(Error::AlreadyExists { key: key.to_owned() });
            }
            let event = Event::new(revision, EventType::Added, key.to_owned(), value, None, revision);
            Ok((event, (revision, None)))
        }
        Op::Update { value, expected } => {
            let current = current.ok_or_else(not_found)?;
            check(&current, expected)?;
            let event = Event::new(revision, EventType::Modified, key.to_owned(), value, Some(current.value), current.create_revision);
            Ok((event, (revision, None)))
        }
        Op::Delete { expected } => {
            let current = current.ok_or_else(not_found)?;
            check(&current, expected)?;
            let event = Event::new(
                revision,
                EventType::Deleted,
                key.to_owned(),
                current.value.clone(),
                Some(current.value.clone()),
                current.create_revision,
            );
            Ok((event, (revision, Some(current))))
        }
    }
}

/// The largest key or value a record can hold (lengths are stored as u32).
const MAX_FIELD_BYTES: usize = u32::MAX as usize;

/// A key or value too large to store; carried inside [`Error::Backend`].
#[derive(thiserror::Error, Debug)]
#[error("key {key}: {bytes} bytes is over the storage limit of {MAX_FIELD_BYTES} bytes")]
pub struct RecordTooLarge {
    /// The key written.
    pub key: String,
    /// The size of the oversized key or value.
    pub bytes: usize,
}

/// Reads the newest `keep` log records, returning them in revision order with the compacted
/// revision they imply. Only the contiguous run of events ending at `revision` is usable: a
/// watch must never silently skip a revision.
fn load_history(db: &sled::Db, revision: Revision, keep: usize) -> Result<(Vec<Event>, Revision)> {
    let mut newest_first = Vec::with_capacity(keep.min(1 << 16));
    let mut expected = revision;
    for item in db.scan_prefix([LOG_PREFIX]).rev() {
        if newest_first.len() >= keep {
            break;
        }
        let (raw_key, raw) = item.map_err(Error::backend)?;
        let log_rev = log_revision(&raw_key)?;
        if log_rev == 0 || log_rev > revision {
            return Err(Error::corrupt(format!("log/{log_rev}"), format!("history record outside the store's revisions 1..={revision}")));
        }
        if log_rev != expected {
            // Compaction leaves gaps below the history; they end it.
            debug!(missing = expected, found = log_rev, "gap in sled history log; older history is unavailable");
            break;
        }
        let Some(event) = LogRecord::parse(log_rev, &raw)?.event() else {
            // A value written by a restore or rebuild, not an event: the history starts after it.
            break;
        };
        newest_first.push(event);
        expected -= 1;
    }
    newest_first.reverse();
    // Every revision after `expected` is in the history.
    Ok((newest_first, expected))
}

fn log_key(revision: Revision) -> [u8; 9] {
    let mut key = [LOG_PREFIX; 9];
    key[1..].copy_from_slice(&revision.to_be_bytes());
    key
}

fn log_revision(raw_key: &[u8]) -> Result<Revision> {
    raw_key.get(1..).and_then(read_u64).ok_or_else(|| Error::corrupt(format!("{raw_key:?}"), "malformed history log key"))
}

fn read_u64(raw: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(raw.try_into().ok()?))
}

fn decode_key(raw: &[u8]) -> Result<String> {
    String::from_utf8(raw.to_vec()).map_err(|_| Error::corrupt(String::from_utf8_lossy(raw), "key is not UTF-8"))
}

fn read_meta(db: &sled::Db, name: &[u8]) -> Result<Option<u64>> {
    let Some(raw) = db.get(name).map_err(Error::backend)? else { return Ok(None) };
    read_u64(&raw).map(Some).ok_or_else(|| Error::corrupt(String::from_utf8_lossy(name), "not an 8-byte number"))
}

/// The objects of a format-3 store: its log replayed in revision order.
fn replay_log(db: &sled::Db, revision: Revision) -> Result<BTreeMap<String, Entry>> {
    let mut objects = BTreeMap::new();
    for item in db.scan_prefix([LOG_PREFIX]) {
        let (raw_key, raw) = item.map_err(Error::backend)?;
        let log_rev = log_revision(&raw_key)?;
        if log_rev == 0 || log_rev > revision {
            return Err(Error::corrupt(format!("log/{log_rev}"), format!("log record outside the store's revisions 1..={revision}")));
        }
        let record = LogRecord::parse(log_rev, &raw)?;
        if record.holds_value() {
            let entry =
                Entry { value: Bytes::copy_from_slice(record.value), mod_revision: log_rev, create_revision: record.create_revision };
            objects.insert(record.key.to_owned(), entry);
        } else {
            objects.remove(record.key);
        }
    }
    Ok(objects)
}

/// The objects of a format-1 or format-2 store, from its `k` records.
fn load_indexed_objects(db: &sled::Db, format: u64, revision: Revision) -> Result<BTreeMap<String, Entry>> {
    let mut objects = BTreeMap::new();
    for item in db.scan_prefix([OBJECT_PREFIX]) {
        let (raw_key, raw) = item.map_err(Error::backend)?;
        let key = decode_key(&raw_key[1..])?;
        let entry = if format == 1 { decode_inline_object(&key, &raw)? } else { load_object(db, &key, &raw)? };
        if entry.mod_revision > revision {
            return Err(Error::corrupt(key, format!("mod revision {} is newer than the store's {revision}", entry.mod_revision)));
        }
        objects.insert(key, entry);
    }
    Ok(objects)
}

/// The mod and create revisions at the start of an object record.
fn decode_object_header(key: &str, raw: &[u8]) -> Result<(Revision, Revision)> {
    let header = raw.get(..OBJECT_HEADER).ok_or_else(|| Error::corrupt(key, "object record shorter than its header"))?;
    let (Some(mod_revision), Some(create_revision)) = (read_u64(&header[..8]), read_u64(&header[8..])) else {
        return Err(Error::corrupt(key, "object record header unreadable"));
    };
    Ok((mod_revision, create_revision))
}

/// A format-1 object record, with its value after the header.
fn decode_inline_object(key: &str, raw: &[u8]) -> Result<Entry> {
    let (mod_revision, create_revision) = decode_object_header(key, raw)?;
    Ok(Entry { value: Bytes::copy_from_slice(&raw[OBJECT_HEADER..]), mod_revision, create_revision })
}

/// A format-2 object record, with its value read from the log record at its mod revision.
fn load_object(db: &sled::Db, key: &str, raw: &[u8]) -> Result<Entry> {
    let (mod_revision, create_revision) = decode_object_header(key, raw)?;
    if raw.len() != OBJECT_HEADER {
        return Err(Error::corrupt(key, format!("object record of {} bytes, expected {OBJECT_HEADER}", raw.len())));
    }
    let missing = || Error::corrupt(key, format!("the log record at its revision {mod_revision} holding its value is missing"));
    let log = db.get(log_key(mod_revision)).map_err(Error::backend)?.ok_or_else(missing)?;
    let record = LogRecord::parse(mod_revision, &log)?;
    if record.key != key || !record.holds_value() {
        return Err(Error::corrupt(key, format!("the log record at its revision {mod_revision} is not a write of it")));
    }
    Ok(Entry { value: Bytes::copy_from_slice(record.value), mod_revision, create_revision })
}

/// The current revision of `key` as a group being committed sees it: its own earlier writes
/// first, then the cache.
fn current_revision_of(overlay: &HashMap<String, Option<KeyValue>>, cache: &WatchCache, key: &str) -> Option<Revision> {
    match overlay.get(key) {
        Some(state) => state.as_ref().map(|kv| kv.mod_revision),
        None => cache.get(key).map(|kv| kv.mod_revision),
    }
}

// Log record layout:
//   [type u8][create_revision u64 BE][key len u32 BE][key][value len u32 BE][value][prev]
// `prev` (the rest of the record) is present only for Modified; a Deleted event's previous
// value is its value, and an Added event has none, so neither is stored twice. A "value"
// record holds an object's value without being an event (restore, rebuild).
const TYPE_ADDED: u8 = 1;
const TYPE_MODIFIED: u8 = 2;
const TYPE_DELETED: u8 = 3;
const TYPE_VALUE: u8 = 4;

/// The log record of a write.
fn encode_log(event: &Event) -> Vec<u8> {
    let (record_type, prev) = match event.event_type {
        EventType::Added => (TYPE_ADDED, &[][..]),
        EventType::Modified => (TYPE_MODIFIED, event.prev_value.as_deref().unwrap_or_default()),
        EventType::Deleted => (TYPE_DELETED, &[][..]),
    };
    encode_record(record_type, event.create_revision, &event.key, &event.value, prev)
}

/// A "value" record: `key`'s value, written at its mod revision by a restore or rebuild.
fn encode_value_record(key: &str, create_revision: Revision, value: &[u8]) -> Vec<u8> {
    encode_record(TYPE_VALUE, create_revision, key, value, &[])
}

fn encode_record(record_type: u8, create_revision: Revision, key: &str, value: &[u8], prev: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + 8 + 4 + key.len() + 4 + value.len() + prev.len());
    out.push(record_type);
    out.extend_from_slice(&create_revision.to_be_bytes());
    // `plan` refused keys and values over u32::MAX bytes, so these casts do not truncate.
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
    out.extend_from_slice(value);
    out.extend_from_slice(prev);
    out
}

/// One log record, borrowed from its raw bytes.
struct LogRecord<'a> {
    revision: Revision,
    record_type: u8,
    create_revision: Revision,
    key: &'a str,
    value: &'a [u8],
    /// The previous value of a Modified record; empty otherwise.
    prev: &'a [u8],
}

impl<'a> LogRecord<'a> {
    fn parse(revision: Revision, raw: &'a [u8]) -> Result<LogRecord<'a>> {
        let name = || format!("log/{revision}");
        let corrupt = |reason: &str| Error::corrupt(name(), reason);
        let mut reader = Reader(raw);
        let record_type = reader.take(1).ok_or_else(|| corrupt("empty log record"))?[0];
        if !matches!(record_type, TYPE_ADDED | TYPE_MODIFIED | TYPE_DELETED | TYPE_VALUE) {
            return Err(corrupt(&format!("unknown record type {record_type}")));
        }
        let create_revision = reader.take(8).and_then(read_u64).ok_or_else(|| corrupt("truncated create revision"))?;
        let key = reader.take_sized().ok_or_else(|| corrupt("truncated key"))?;
        let key = std::str::from_utf8(key).map_err(|_| corrupt("key is not UTF-8"))?;
        let value = reader.take_sized().ok_or_else(|| Error::corrupt(format!("{} ({key})", name()), "truncated value"))?;
        Ok(LogRecord { revision, record_type, create_revision, key, value, prev: reader.0 })
    }

    /// Whether the write this record describes left a value (everything but a deletion).
    fn holds_value(&self) -> bool {
        self.record_type != TYPE_DELETED
    }

    /// The watch event this record describes; None for a "value" record.
    fn event(&self) -> Option<Event> {
        let event_type = match self.record_type {
            TYPE_ADDED => EventType::Added,
            TYPE_MODIFIED => EventType::Modified,
            TYPE_DELETED => EventType::Deleted,
            _ => return None,
        };
        let value = Bytes::copy_from_slice(self.value);
        let prev_value = match event_type {
            EventType::Added => None,
            EventType::Modified => Some(Bytes::copy_from_slice(self.prev)),
            EventType::Deleted => Some(value.clone()),
        };
        Some(Event::new(self.revision, event_type, self.key.to_owned(), value, prev_value, self.create_revision))
    }
}

/// A cursor over a record that returns None instead of panicking on short input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// A u32 BE length followed by that many bytes.
    fn take_sized(&mut self) -> Option<&'a [u8]> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_round_trip_history_records() {
        let event = Event::new(
            7,
            EventType::Modified,
            "/registry/pods/ns/a".into(),
            Bytes::from_static(b"new"),
            Some(Bytes::from_static(b"old")),
            3,
        );
        let raw = encode_log(&event);
        let decoded = LogRecord::parse(7, &raw).unwrap().event().expect("an event");
        assert_eq!(decoded.key, event.key);
        assert_eq!(decoded.value, event.value);
        assert_eq!(decoded.prev_value, event.prev_value);
        assert_eq!((decoded.event_type, decoded.create_revision), (EventType::Modified, 3));
    }

    #[test]
    fn should_name_the_key_of_a_corrupt_object() {
        let err = decode_inline_object("/registry/pods/ns/a", b"short").unwrap_err();
        let Error::Backend(source) = err else { panic!("expected a backend error") };
        assert!(source.to_string().contains("/registry/pods/ns/a"));
    }

    #[test]
    fn should_reject_truncated_history_records() {
        let mut raw = encode_log(&Event::new(2, EventType::Added, "/k".into(), Bytes::from_static(b"value"), None, 2));
        raw.truncate(raw.len() - 2);
        assert!(matches!(LogRecord::parse(2, &raw), Err(Error::Backend(_))));
    }

    #[test]
    fn should_read_a_value_record_as_a_value_and_not_as_an_event() {
        let raw = encode_value_record("/registry/pods/ns/a", 3, b"value");
        let record = LogRecord::parse(9, &raw).unwrap();
        assert_eq!((record.key, record.value, record.create_revision), ("/registry/pods/ns/a", &b"value"[..], 3));
        assert!(record.holds_value());
        assert!(record.event().is_none(), "a value record must end the history, not join it");
    }
}
