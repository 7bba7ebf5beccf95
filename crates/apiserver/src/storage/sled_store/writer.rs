//! The writer thread: the only code that assigns revisions or writes to sled. It commits
//! queued writes in groups (see "Writes" in the parent module), checks each against its key's
//! state, compacts the history log and rebuilds the store when the defrag policy says so.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use super::Counters;
use super::open::{sled_config, write_fresh};
use super::record::{LogRecord, META_HORIZON, META_REVISION, encode_log, log_key, log_revision};
use crate::storage::defrag::{self, DefragPolicy};
use crate::storage::watch_cache::WatchCache;
use crate::storage::{Error, Event, EventType, KeyValue, Result, Revision};

/// Most requests committed in one group; bounds one batch's size and the latency of the
/// requests that wait behind it.
const MAX_GROUP: usize = 1_024;

/// Log compaction runs after this many writes (in the writer thread, so it never races).
const COMPACT_EVERY: u64 = 1_000;

/// Most log records one compaction removes, so that a store reopened with a much smaller
/// `history` trims its backlog gradually instead of in one huge batch.
const COMPACT_MAX_REMOVALS: u64 = 16 * COMPACT_EVERY;

/// The disk-size gauge is refreshed after a commit at most this often, and otherwise once the
/// store has been quiet this long: sled measures it by walking its directory, a dozen system
/// calls that every group paid for before.
const DISK_MEASURE_EVERY: Duration = Duration::from_secs(1);

/// The commit delay applies only after a group of at least this many writes: a sign of
/// enough concurrent writers that waiting fills the next group. A lone writer, or a few,
/// never wait (PostgreSQL's `commit_siblings` plays the same part). With 8, 16 clients each
/// waiting for its write lost about a tenth of their throughput to the delay (the host had CPU
/// to spare, so the waiting bought nothing); with 16 they lost none, and 64 gained as much.
const COMMIT_SIBLINGS: usize = 16;

pub(super) enum Command {
    Write(WriteRequest),
    /// Finish what is queued before this, then stop.
    Shutdown,
}

pub(super) struct WriteRequest {
    pub(super) key: String,
    pub(super) op: Op,
    pub(super) reply: oneshot::Sender<Result<Outcome>>,
}

pub(super) enum Op {
    Create { value: Bytes },
    Update { value: Bytes, expected: Option<Revision> },
    Delete { expected: Option<Revision> },
}

/// The revision of a successful write, and for a delete the key-value it removed.
pub(super) type Outcome = (Revision, Option<KeyValue>);

/// The writer thread's state: the only code that assigns revisions or writes to sled.
pub(super) struct Writer {
    pub(super) db: sled::Db,
    /// The directory the store was opened in, and the sled directory inside it now in use.
    pub(super) data_dir: PathBuf,
    pub(super) sled_dir: PathBuf,
    /// Held while the writer runs: no other process may clean up or rebuild the directory.
    pub(super) _locked: defrag::DirLock,
    pub(super) cache_capacity_bytes: u64,
    pub(super) cache: Arc<WatchCache>,
    pub(super) counters: Arc<Counters>,
    pub(super) history: u64,
    /// The first revision compaction has not passed: log records from here on are kept (the
    /// history and what is not yet compacted); older ones exist only while they hold an
    /// object's current value.
    pub(super) horizon: Revision,
    pub(super) since_compaction: u64,
    pub(super) defrag: DefragPolicy,
    /// Set with each compaction: the next quiet moment checks whether a rebuild is due.
    pub(super) defrag_check_due: bool,
    /// No rebuild below this size: set after a failed attempt, or after a rebuild whose fresh
    /// store was itself over the ratio, so such a store does not rebuild over and over.
    pub(super) defrag_floor: u64,
    /// When the disk-size gauge was last refreshed, and whether writes came since.
    pub(super) disk_measured: Instant,
    pub(super) disk_stale: bool,
    pub(super) commit_delay: Duration,
}

impl Writer {
    pub(super) fn run(mut self, queue: mpsc::Receiver<Command>) {
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
    pub(super) fn rebuild(&mut self) -> Result<()> {
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

/// The current revision of `key` as a group being committed sees it: its own earlier writes
/// first, then the cache.
fn current_revision_of(overlay: &HashMap<String, Option<KeyValue>>, cache: &WatchCache, key: &str) -> Option<Revision> {
    match overlay.get(key) {
        Some(state) => state.as_ref().map(|kv| kv.mod_revision),
        None => cache.get(key).map(|kv| kv.mod_revision),
    }
}
