//! Giving disk space back: the data directory's layout, when a rebuild is due, and the atomic
//! switch to a store rebuilt in a fresh directory.
//!
//! sled 0.34 reuses the space of removed records but gives file space back only from the tail
//! of its log, so after churn (history compaction, deleted objects) its file stays several
//! times the size of the live data. Measured (`storage_defrag` test, `measure` case): 300
//! objects of 1 KiB updated 50,000 times with a 1,000-event history hold 2.3 MiB of live data
//! and 16–19 MiB on disk, which stays at 16 MiB when idle and after a reopen. The only way to
//! get that space back is to write the live data into a new sled directory and drop the old
//! one; this module owns doing that safely.
//!
//! # Layout
//! In the data directory, the symbolic link `store` names the live sled directory
//! `store.<N>`, N counting rebuilds. A data directory written before this layout has sled's
//! files (`conf`, `db`, `blobs/`, `snap.*`) at its top; it keeps working and moves into the
//! layout at its first rebuild.
//!
//! # Crash safety
//! A rebuild runs in the store's writer thread between two group commits, so no write is
//! acknowledged while it runs, and the old directory holds every acknowledged write until the
//! switch. The steps:
//! 1. write the objects, the kept history and the revision into a new `store.<N>` that nothing
//!    names yet; flush sled, fsync every file and directory in it, fsync the data directory;
//! 2. make the link `store.tmp` → `store.<N>` and rename it over `store` (rename replaces
//!    atomically), then fsync the data directory: the commit point;
//! 3. switch the writer to the new sled and delete the old directory.
//!
//! A crash before the rename leaves `store` naming the old, complete directory; the new one is
//! named by nothing and [`prepare`] deletes it at the next start. After the rename, `store`
//! names a directory that was complete and durable before the rename, and the old one is
//! deleted at the next start. If the rename itself was not yet durable, a restart sees one name
//! or the other, and both directories hold every acknowledged write at the same revision. If
//! anything fails after the rename (the data directory's fsync), the writer cannot know which
//! name a crash would leave, so it stops taking writes, as after any failed commit.
//!
//! The cleanup at start deletes directories that nothing names, so it must never run while
//! another process is rebuilding: the file `store-lock` in the data directory is locked
//! (`flock`) for as long as a store uses the directory.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{Error, Result};

/// The link naming the live sled directory.
const LINK: &str = "store";
/// The link being prepared to replace [`LINK`].
const LINK_TMP: &str = "store.tmp";
/// Prefix of sled directories; the rest is their sequence number.
const GENERATION_PREFIX: &str = "store.";
/// Locked while a store uses the data directory.
const LOCK: &str = "store-lock";
/// How long [`prepare`] waits for the lock: a store closed a moment ago in this process may
/// still be releasing it; another live process keeps it and is named in the error.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// What sled 0.34 writes at the top of a directory (a pre-layout data directory).
const LEGACY_FILES: [&str; 3] = ["conf", "db", "blobs"];
const LEGACY_SNAPSHOT_PREFIX: &str = "snap.";

/// When the store rebuilds itself to give disk space back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefragPolicy {
    /// Rebuild when the size on disk exceeds this many times the live data; 0 turns rebuilds off.
    pub ratio: f64,
    /// ... and is at least this many bytes, so small stores are left alone.
    pub min_bytes: u64,
}

impl Default for DefragPolicy {
    fn default() -> Self {
        Self { ratio: 4.0, min_bytes: 64 * 1024 * 1024 }
    }
}

/// The smallest ratio accepted besides 0: sled's own overhead keeps a fresh store above 1×.
pub const MIN_RATIO: f64 = 1.5;

impl DefragPolicy {
    /// Rejects a ratio that would rebuild all the time (or never mean anything).
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.ratio == 0.0 || (self.ratio.is_finite() && self.ratio >= MIN_RATIO) {
            Ok(())
        } else {
            Err(format!("defrag ratio {} must be 0 (off) or a number of at least {MIN_RATIO}", self.ratio))
        }
    }

    /// Whether a store of `disk` bytes holding `live()` bytes of data should be rebuilt. The
    /// caller raises `floor` (to twice the size) after a failed attempt, or after a rebuild
    /// whose fresh store was itself over the ratio, so that such a store does not rebuild over
    /// and over.
    pub fn due(&self, disk: u64, floor: u64, live: impl FnOnce() -> u64) -> bool {
        self.ratio != 0.0 && disk >= self.min_bytes && disk >= floor && self.over_ratio(disk, live())
    }

    /// Whether `disk` bytes exceed the ratio for `live` bytes of data.
    pub fn over_ratio(&self, disk: u64, live: u64) -> bool {
        self.ratio != 0.0 && disk as f64 > self.ratio * live as f64
    }
}

/// The data directory's lock; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Locks the data directory for this process, waiting briefly for a store closing in this
/// process; fails naming the directory if another process holds it.
pub fn lock(data_dir: &Path) -> Result<DirLock> {
    fs::create_dir_all(data_dir).map_err(|err| io_error("cannot create", data_dir, err))?;
    let path = data_dir.join(LOCK);
    let file = File::options().create(true).truncate(false).write(true).open(&path).map_err(|err| io_error("cannot open", &path, err))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(fs::TryLockError::WouldBlock) => {
                return Err(Error::backend(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!("data directory {} is in use by another process (cannot lock {LOCK})", data_dir.display()),
                )));
            }
            Err(fs::TryLockError::Error(err)) => return Err(io_error("cannot lock", &path, err)),
        }
    }
}

/// The sled directory `store` names now (None without the link: a pre-layout store).
pub fn current(data_dir: &Path) -> Option<PathBuf> {
    fs::read_link(data_dir.join(LINK)).ok().map(|target| data_dir.join(target))
}

/// Readies the data directory, which the caller has locked, and returns the sled directory to
/// open: follows `store` where it exists, and deletes whatever an interrupted rebuild or a
/// finished migration left behind; an empty data directory gets the layout at once.
pub fn prepare(data_dir: &Path, _locked: &DirLock) -> Result<PathBuf> {
    remove_link_tmp(data_dir)?;
    let link = data_dir.join(LINK);
    match fs::read_link(&link) {
        Ok(target) => {
            let name = target.to_str().filter(|name| sequence(name).is_some()).ok_or_else(|| {
                Error::corrupt(link.display().to_string(), format!("links to {}, expected a sibling store.<N>", target.display()))
            })?;
            let current = data_dir.join(name);
            if !current.is_dir() {
                return Err(Error::corrupt(link.display().to_string(), format!("links to {name}, which is not a directory")));
            }
            remove_generations(data_dir, Some(&current));
            remove_legacy_files(data_dir);
            Ok(current)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            remove_generations(data_dir, None);
            if data_dir.join("db").exists() {
                // A store from before this layout: used where it is until its first rebuild.
                return Ok(data_dir.to_path_buf());
            }
            let (current, ()) = install(data_dir, data_dir, |_| Ok(()))?;
            Ok(current)
        }
        Err(err) => Err(io_error("cannot read the link", &link, err)),
    }
}

/// Step 1 and 2 of a rebuild (see the module doc): makes the next `store.<N>` after `current`,
/// lets `write` fill it (returning whatever it opened there), makes it durable and switches
/// `store` to it. On failure the new directory is removed and `store` is unchanged.
pub fn install<T>(data_dir: &Path, current: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<(PathBuf, T)> {
    let next = current.file_name().and_then(|n| n.to_str()).and_then(sequence).map_or(1, |n| n + 1);
    let name = format!("{GENERATION_PREFIX}{next}");
    let dir = data_dir.join(&name);
    let written = (|| {
        if dir.exists() {
            // Named by nothing (prepare removes strays, and `current` is older): a leftover.
            fs::remove_dir_all(&dir).map_err(|err| io_error("cannot remove", &dir, err))?;
        }
        fs::create_dir(&dir).map_err(|err| io_error("cannot create", &dir, err))?;
        let value = write(&dir)?;
        sync_tree(&dir)?;
        sync_dir(data_dir)?;
        Ok(value)
    })();
    let value = match written {
        Ok(value) => value,
        Err(err) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(err);
        }
    };
    remove_link_tmp(data_dir)?;
    let tmp = data_dir.join(LINK_TMP);
    std::os::unix::fs::symlink(&name, &tmp).map_err(|err| io_error("cannot create the link", &tmp, err))?;
    let link = data_dir.join(LINK);
    fs::rename(&tmp, &link).map_err(|err| io_error("cannot switch the link", &link, err))?;
    sync_dir(data_dir)?;
    Ok((dir, value))
}

/// Step 3: deletes the directory a rebuild replaced (the data directory's top-level sled files
/// for a pre-layout store). A failure only costs space until the next start.
pub fn remove_replaced(data_dir: &Path, replaced: &Path) {
    if replaced == data_dir {
        remove_legacy_files(data_dir);
    } else if let Err(err) = fs::remove_dir_all(replaced) {
        warn!(cause = %err, dir = %replaced.display(), "cannot remove the replaced store; the next start retries");
    }
}

/// The N of `store.<N>`.
fn sequence(name: &str) -> Option<u64> {
    name.strip_prefix(GENERATION_PREFIX)?.parse().ok()
}

fn remove_link_tmp(data_dir: &Path) -> Result<()> {
    let tmp = data_dir.join(LINK_TMP);
    match fs::remove_file(&tmp) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(io_error("cannot remove", &tmp, err)),
        _ => Ok(()),
    }
}

/// Deletes every `store.<N>` except `keep`: directories named by nothing.
fn remove_generations(data_dir: &Path, keep: Option<&Path>) {
    let Ok(entries) = fs::read_dir(data_dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_generation = entry.file_name().to_str().and_then(sequence).is_some();
        if is_generation && Some(path.as_path()) != keep && path.is_dir() {
            info!(dir = %path.display(), "removing a store directory left by an interrupted rebuild");
            if let Err(err) = fs::remove_dir_all(&path) {
                warn!(cause = %err, dir = %path.display(), "cannot remove a stray store directory");
            }
        }
    }
}

/// Deletes sled's files from the top of the data directory, once `store` has replaced them.
fn remove_legacy_files(data_dir: &Path) {
    let Ok(entries) = fs::read_dir(data_dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !LEGACY_FILES.contains(&name) && !name.starts_with(LEGACY_SNAPSHOT_PREFIX) {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        if let Err(err) = removed {
            warn!(cause = %err, file = %path.display(), "cannot remove a replaced sled file");
        }
    }
}

/// fsyncs every file and directory under `dir`, and `dir` itself.
fn sync_tree(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|err| io_error("cannot read", dir, err))? {
        let path = entry.map_err(|err| io_error("cannot read", dir, err))?.path();
        if path.is_dir() {
            sync_tree(&path)?;
        } else {
            File::open(&path).and_then(|f| f.sync_all()).map_err(|err| io_error("cannot fsync", &path, err))?;
        }
    }
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).map_err(|err| io_error("cannot fsync", dir, err))
}

fn io_error(what: &str, path: &Path, err: std::io::Error) -> Error {
    Error::backend(std::io::Error::new(err.kind(), format!("{what} {}: {err}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_rebuild_only_past_ratio_minimum_and_doubling() {
        let policy = DefragPolicy { ratio: 4.0, min_bytes: 1_000 };
        assert!(policy.due(10_000, 0, || 2_000));
        assert!(!policy.due(10_000, 0, || 3_000), "under the ratio");
        assert!(!policy.due(900, 0, || 1), "under the minimum");
        assert!(!policy.due(10_000, 12_000, || 1), "under the floor");
        assert!(!DefragPolicy { ratio: 0.0, min_bytes: 0 }.due(10_000, 0, || 1), "off");
    }

    #[test]
    fn should_refuse_a_ratio_that_would_rebuild_all_the_time() {
        assert!(DefragPolicy { ratio: 1.0, min_bytes: 0 }.check().unwrap_err().contains("ratio 1"));
        assert!(DefragPolicy { ratio: f64::NAN, min_bytes: 0 }.check().is_err());
        assert!(DefragPolicy { ratio: 0.0, min_bytes: 0 }.check().is_ok());
        assert!(DefragPolicy::default().check().is_ok());
    }

    #[test]
    fn should_switch_the_link_and_clean_up_on_prepare() {
        let data = tempfile::tempdir().unwrap();
        let locked = lock(data.path()).unwrap();
        let first = prepare(data.path(), &locked).unwrap();
        assert_eq!(first, data.path().join("store.1"));
        // A rebuild that fails leaves the link alone and no directory behind.
        let failed: Result<(PathBuf, ())> = install(data.path(), &first, |_| Err(Error::Closed));
        assert!(failed.is_err());
        assert!(!data.path().join("store.2").exists());
        let (second, ()) = install(data.path(), &first, |dir| fs::write(dir.join("db"), b"x").map_err(Error::backend)).unwrap();
        assert_eq!(fs::read_link(data.path().join(LINK)).unwrap(), PathBuf::from("store.2"));
        // The replaced directory is still there (a crash before step 3): prepare removes it.
        assert_eq!(prepare(data.path(), &locked).unwrap(), second);
        assert!(!first.exists());
    }
}
