//! Opening a store directory: sled's configuration, the format check, loading the objects and
//! the watch history into memory, moving an older format to the current one, and writing a
//! whole store afresh (what a snapshot restore and a rebuild both do).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info};

use super::old_formats::load_indexed_objects;
use super::record::{
    FORMAT, LOG_PREFIX, LogRecord, META_FORMAT, META_HORIZON, META_REVISION, encode_value_record, log_key, log_revision, read_u64,
};
use super::writer::Writer;
use super::{Counters, SledOptions, SledStore};
use crate::storage::defrag;
use crate::storage::watch_cache::{Entry, WatchCache};
use crate::storage::{Error, Event, Result, Revision};

/// How long `open` waits for a lock that sled has not yet released (see
/// `open_waiting_for_lock`).
const OPEN_LOCK_WAIT: Duration = Duration::from_secs(3);

/// Records per batch when a whole store is written at once (restore, rebuild).
const FRESH_BATCH: usize = 4_096;

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
}

/// sled's configuration for a store directory.
pub(super) fn sled_config(dir: &Path, cache_capacity_bytes: u64) -> sled::Config {
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
pub(super) fn write_fresh<'a>(
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
pub(super) fn open_waiting_for_lock(config: &sled::Config) -> Result<sled::Db> {
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

pub(super) fn read_meta(db: &sled::Db, name: &[u8]) -> Result<Option<u64>> {
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
