//! The sled store against a real directory: CRUD and preconditions, revisions, watch, history
//! compaction, restart and group commit.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use berth_apiserver::storage::{Error, Event, EventType, Revision, SledOptions, SledStore, Store, WatchStream};
use bytes::Bytes;

/// Only a guard against a hung test, never an assertion about speed.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn open(dir: &tempfile::TempDir, history: usize) -> SledStore {
    let options = SledOptions { history, ..SledOptions::default() };
    SledStore::open(dir.path(), options).expect("open store")
}

fn val(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Opens the directory with plain sled, waiting out the lock sled may hold briefly after a
/// close (sled issues #1234, #1289).
fn open_raw_sled(path: &std::path::Path) -> sled::Db {
    let mut attempts = 0;
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) if attempts < 300 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => panic!("open sled directly: {err}"),
        }
    }
}

/// Opens a store that must be refused, waiting out the lock sled may hold a moment after the
/// last handle is dropped; returns the refusal.
fn open_refused(dir: &tempfile::TempDir) -> Error {
    for _ in 0..300 {
        match SledStore::open(dir.path(), SledOptions::default()) {
            Err(Error::Backend(err)) if err.to_string().contains("lock") => std::thread::sleep(Duration::from_millis(10)),
            Err(err) => return err,
            Ok(_) => panic!("the store opened"),
        }
    }
    panic!("the store stayed locked");
}

async fn next_event(stream: &mut WatchStream) -> Arc<Event> {
    tokio::time::timeout(HANG_GUARD, stream.next())
        .await
        .expect("watch event within the hang guard")
        .expect("stream still open")
        .expect("no watch error")
}

#[tokio::test(flavor = "multi_thread")]
async fn should_create_get_and_list_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 100);
    let r2 = store.create("/registry/pods/ns/b", val("b")).await.unwrap();
    let r1 = store.create("/registry/pods/ns/a", val("a")).await.unwrap();
    store.create("/registry/services/ns/a", val("svc")).await.unwrap();

    let kv = store.get("/registry/pods/ns/a").unwrap().unwrap();
    assert_eq!(kv.value, val("a"));
    assert_eq!((kv.mod_revision, kv.create_revision), (r1, r1));
    assert!(store.get("/registry/pods/ns/missing").unwrap().is_none());

    let (items, rev) = store.list("/registry/pods/").unwrap();
    let keys: Vec<_> = items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/registry/pods/ns/a", "/registry/pods/ns/b"]);
    assert_eq!(items[1].mod_revision, r2);
    assert_eq!(rev, store.current_revision());
    assert_eq!(store.stats().objects, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_create_of_existing_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 100);
    let rev = store.create("/registry/pods/ns/a", val("one")).await.unwrap();
    let err = store.create("/registry/pods/ns/a", val("two")).await.unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { ref key } if key == "/registry/pods/ns/a"));
    let kv = store.get("/registry/pods/ns/a").unwrap().unwrap();
    assert_eq!((kv.value, kv.mod_revision), (val("one"), rev));
    assert_eq!(store.current_revision(), rev);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_reject_stale_update_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 100);
    let created = store.create("/registry/pods/ns/a", val("v1")).await.unwrap();
    let updated = store.update("/registry/pods/ns/a", val("v2"), Some(created)).await.unwrap();
    assert!(updated > created);

    let err = store.update("/registry/pods/ns/a", val("v3"), Some(created)).await.unwrap_err();
    assert!(matches!(
        err,
        Error::Conflict { expected, actual, .. } if expected == created && actual == updated
    ));
    let kv = store.get("/registry/pods/ns/a").unwrap().unwrap();
    assert_eq!((kv.value, kv.mod_revision, kv.create_revision), (val("v2"), updated, created));
    assert_eq!(store.current_revision(), updated);

    // An unconditional update succeeds; an update of a missing key does not.
    store.update("/registry/pods/ns/a", val("v4"), None).await.unwrap();
    let err = store.update("/registry/pods/ns/zz", val("x"), None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_delete_only_when_precondition_holds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 100);
    let created = store.create("/registry/pods/ns/a", val("v1")).await.unwrap();

    let err = store.delete("/registry/pods/ns/a", Some(created + 100)).await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }));
    assert!(store.get("/registry/pods/ns/a").unwrap().is_some());

    let (rev, kv) = store.delete("/registry/pods/ns/a", Some(created)).await.unwrap();
    assert!(rev > created);
    assert_eq!((kv.key.as_str(), kv.value, kv.mod_revision), ("/registry/pods/ns/a", val("v1"), created));
    assert!(store.get("/registry/pods/ns/a").unwrap().is_none());

    let err = store.delete("/registry/pods/ns/a", None).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_increase_revisions_strictly_across_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 100);
    let mut last = store.current_revision();
    for i in 0..10 {
        for kind in ["pods", "services", "nodes"] {
            let key = format!("/registry/{kind}/n{i}");
            let rev = store.create(&key, val("x")).await.unwrap();
            assert!(rev > last, "{rev} after {last}");
            last = rev;
            let rev = store.update(&key, val("y"), Some(rev)).await.unwrap();
            assert!(rev > last);
            last = rev;
        }
    }
    assert_eq!(store.current_revision(), last);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_watch_every_event_after_list_exactly_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir, 1_000));
    store.create("/registry/pods/ns/before", val("old")).await.unwrap();
    let (items, listed) = store.list("/registry/pods/").unwrap();
    assert_eq!(items.len(), 1);

    // Writes race with the watch's start: none may be lost or repeated.
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let a = store.create("/registry/pods/ns/a", val("a1")).await.unwrap();
            store.update("/registry/pods/ns/a", val("a2"), Some(a)).await.unwrap();
            store.delete("/registry/pods/ns/before", None).await.unwrap();
            for i in 0..50 {
                store.create(&format!("/registry/pods/ns/p{i}"), val("p")).await.unwrap();
            }
            store.current_revision()
        })
    };
    let mut stream = store.watch("/registry/pods/", listed).unwrap();
    let last = writer.await.unwrap();

    let mut events = Vec::new();
    while stream.progress() < last {
        events.push(next_event(&mut stream).await);
    }
    let revisions: Vec<Revision> = events.iter().map(|e| e.revision).collect();
    let expected: Vec<Revision> = (listed + 1..=last).collect();
    assert_eq!(revisions, expected);

    let (added, modified, deleted) = (&events[0], &events[1], &events[2]);
    assert_eq!((added.event_type, added.key.as_str()), (EventType::Added, "/registry/pods/ns/a"));
    assert_eq!(added.prev_value, None);
    assert_eq!(modified.event_type, EventType::Modified);
    assert_eq!((modified.value.clone(), modified.prev_value.clone()), (val("a2"), Some(val("a1"))));
    assert_eq!(modified.create_revision, added.revision);
    assert_eq!(deleted.event_type, EventType::Deleted);
    assert_eq!(deleted.key, "/registry/pods/ns/before");
    assert_eq!((deleted.value.clone(), deleted.prev_value.clone()), (val("old"), Some(val("old"))));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_filter_watch_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 100);
    let from = store.current_revision();
    let mut pods_in_a = store.watch("/registry/pods/a/", from).unwrap();
    store.create("/registry/pods/b/x", val("1")).await.unwrap();
    store.create("/registry/services/a/x", val("2")).await.unwrap();
    let wanted = store.create("/registry/pods/a/x", val("3")).await.unwrap();
    let skipped_after = store.create("/registry/pods/ab/x", val("4")).await.unwrap();

    let event = next_event(&mut pods_in_a).await;
    assert_eq!((event.revision, event.key.as_str()), (wanted, "/registry/pods/a/x"));
    // The stream scanned everything committed before it was polled, so its progress (what a
    // BOOKMARK reports) includes the later event it skipped.
    assert_eq!(pods_in_a.progress(), skipped_after);

    // The next matching event comes after all the skipped ones.
    store.create("/registry/pods/b/y", val("5")).await.unwrap();
    let last = store.create("/registry/pods/a/y", val("6")).await.unwrap();
    let event = next_event(&mut pods_in_a).await;
    assert_eq!((event.revision, event.key.as_str()), (last, "/registry/pods/a/y"));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_answer_too_old_for_compacted_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 10);
    for i in 0..25 {
        store.create(&format!("/registry/pods/ns/p{i}"), val("x")).await.unwrap();
    }
    let compacted = store.compacted_revision();
    assert_eq!(compacted, 15);
    let err = store.watch("/registry/pods/", compacted - 1).unwrap_err();
    assert!(matches!(err, Error::TooOld { requested: 14, oldest: 15 }));

    // From exactly the compacted revision every retained event is still there.
    let mut stream = store.watch("/registry/pods/", compacted).unwrap();
    assert_eq!(next_event(&mut stream).await.revision, compacted + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_end_slow_watcher_with_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 10);
    let mut slow = store.watch("/registry/", store.current_revision()).unwrap();
    for i in 0..30 {
        store.create(&format!("/registry/pods/ns/p{i}"), val("x")).await.unwrap();
    }
    let got = tokio::time::timeout(HANG_GUARD, slow.next()).await.unwrap();
    assert!(matches!(got, Some(Err(Error::TooOld { .. }))), "{got:?}");
    assert!(slow.next().await.is_none(), "the stream ends after TooOld");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_objects_and_history_across_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (before_restart, last_before) = {
        let store = open(&dir, 100);
        let a = store.create("/registry/pods/ns/a", val("a1")).await.unwrap();
        let before_restart = store.current_revision();
        store.update("/registry/pods/ns/a", val("a2"), Some(a)).await.unwrap();
        store.create("/registry/pods/ns/b", val("b")).await.unwrap();
        store.create("/registry/nodes/n1", val("n")).await.unwrap();
        store.delete("/registry/pods/ns/b", None).await.unwrap();
        (before_restart, store.current_revision())
        // Dropped here: closes and releases the directory.
    };

    let store = open(&dir, 100);
    assert_eq!(store.current_revision(), last_before);
    let (items, _) = store.list("/registry/").unwrap();
    let got: Vec<_> = items.iter().map(|kv| (kv.key.as_str(), kv.value.clone())).collect();
    assert_eq!(got, [("/registry/nodes/n1", val("n")), ("/registry/pods/ns/a", val("a2"))]);

    let next = store.create("/registry/pods/ns/c", val("c")).await.unwrap();
    assert_eq!(next, last_before + 1);

    // A watcher that saw revision `before_restart` resumes without a relist.
    let mut stream = store.watch("/registry/pods/", before_restart).unwrap();
    let mut seen = Vec::new();
    while stream.progress() < next {
        let e = next_event(&mut stream).await;
        seen.push((e.event_type, e.key.clone(), e.prev_value.clone()));
    }
    assert_eq!(
        seen,
        [
            (EventType::Modified, "/registry/pods/ns/a".to_owned(), Some(val("a1"))),
            (EventType::Added, "/registry/pods/ns/b".to_owned(), None),
            (EventType::Deleted, "/registry/pods/ns/b".to_owned(), Some(val("b"))),
            (EventType::Added, "/registry/pods/ns/c".to_owned(), None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_the_history_log_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let history = 50;
    {
        let store = open(&dir, history);
        let mut rev = store.create("/registry/configmaps/ns/c", val("0")).await.unwrap();
        for i in 0..3_000 {
            rev = store.update("/registry/configmaps/ns/c", val(&i.to_string()), Some(rev)).await.unwrap();
        }
        assert_eq!(store.compacted_revision(), rev - history as u64);
    }
    // Count the history records left on disk; the store compacts every 1,000 writes.
    let db = open_raw_sled(&dir.path().join("store"));
    let log_records = db.scan_prefix(b"l").count();
    assert!(log_records >= history && log_records <= history + 1_000, "{log_records}");
    drop(db);

    let store = open(&dir, history);
    assert_eq!(store.compacted_revision(), store.current_revision() - history as u64);
    assert_eq!(store.stats().history_events, history as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_group_commit_concurrent_creates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir, 10_000));
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut revisions = Vec::with_capacity(200);
                for i in 0..200 {
                    let key = format!("/registry/pods/ns{t}/p{i}");
                    revisions.push(store.create(&key, val("pod")).await.unwrap());
                }
                revisions
            })
        })
        .collect();
    let mut all = HashSet::new();
    for task in tasks {
        for rev in task.await.unwrap() {
            assert!(all.insert(rev), "revision {rev} given twice");
        }
    }
    assert_eq!(all.len(), 64 * 200);
    let stats = store.stats();
    assert_eq!(stats.objects, 64 * 200);
    assert_eq!(stats.writes, 64 * 200);
    assert_eq!(stats.current_revision, 64 * 200);
    // Concurrent writes share flushes; one flush per write would mean no group commit.
    assert!(stats.flushes * 4 <= stats.writes, "{} flushes for {} writes", stats.flushes, stats.writes);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_wait_in_list_at_least_for_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(&dir, 100));
    let target = store.current_revision() + 1;
    let waiter = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { store.list_at_least("/registry/pods/", target).await })
    };
    store.create("/registry/pods/ns/a", val("a")).await.unwrap();
    let (items, rev) = waiter.await.unwrap().unwrap();
    assert!(rev >= target);
    assert_eq!(items.len(), 1);

    let err = store.list_at_least("/registry/pods/", rev + 1_000).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_end_watches_and_refuse_writes_after_close() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 100);
    let mut stream = store.watch("/registry/", 0).unwrap();
    let rev = store.create("/registry/pods/ns/a", val("a")).await.unwrap();
    store.close();
    // What was committed before close is still delivered, then the stream ends.
    assert_eq!(next_event(&mut stream).await.revision, rev);
    let end = tokio::time::timeout(HANG_GUARD, stream.next()).await.unwrap();
    assert!(end.is_none());
    assert!(matches!(store.create("/registry/pods/ns/b", val("b")).await, Err(Error::Closed)));
    assert!(matches!(store.watch("/registry/", rev), Err(Error::Closed)));
    // Reads keep answering from memory while the server drains.
    assert!(store.get("/registry/pods/ns/a").unwrap().is_some());
}

/// Objects written long before the kept history keep their values across compactions, a
/// restart and a later update; and the records that held replaced values go away, so the log
/// holds the history plus one record per object, not every value ever written.
#[tokio::test(flavor = "multi_thread")]
async fn should_keep_old_objects_values_through_compaction_restart_and_update() {
    let dir = tempfile::tempdir().unwrap();
    let history = 50;
    let old: Vec<String> = (0..20).map(|i| format!("/registry/configmaps/ns/old-{i}")).collect();
    let churn = "/registry/configmaps/ns/churn";
    let short_lived = "/registry/configmaps/ns/short-lived";
    {
        let store = open(&dir, history);
        for (i, key) in old.iter().enumerate() {
            store.create(key, val(&format!("old {i}"))).await.unwrap();
        }
        // Created and deleted before the compactions, which remove both its records: the
        // replay on reopening must not bring it back.
        store.create(short_lived, val("brief")).await.unwrap();
        store.delete(short_lived, None).await.unwrap();
        let mut rev = store.create(churn, val("0")).await.unwrap();
        // Several compactions pass the old objects' revisions.
        for i in 0..2_500 {
            rev = store.update(churn, val(&i.to_string()), Some(rev)).await.unwrap();
        }
        assert!(store.compacted_revision() > old.len() as u64);
    }

    let store = open(&dir, history);
    for (i, key) in old.iter().enumerate() {
        assert_eq!(store.get(key).unwrap().expect("old object").value, val(&format!("old {i}")), "{key}");
    }
    assert!(store.get(short_lived).unwrap().is_none(), "a deleted object came back");
    // Replacing and deleting values that only old records held.
    let first = store.get(&old[0]).unwrap().unwrap();
    store.update(&old[0], val("new 0"), Some(first.mod_revision)).await.unwrap();
    store.delete(&old[1], None).await.unwrap();
    let last = store.current_revision();
    store.close();
    drop(store);

    let db = open_raw_sled(&dir.path().join("store"));
    let log_records = db.scan_prefix(b"l").count();
    // The kept history, up to one compaction's worth of records not yet compacted, and one
    // record per object whose value is older than that.
    assert!(log_records <= history + 1_000 + old.len(), "{log_records} log records");
    let log_record = |revision: u64| db.get(log_key(revision)).unwrap().is_some();
    // old-0 and old-1 were written at revisions 1 and 2, replaced and deleted since; old-2's
    // record at revision 3 still holds its value.
    assert!(!log_record(1) && !log_record(2), "records of replaced values are left on disk");
    assert!(log_record(3), "the record holding old-2's value is gone");
    assert_eq!(format_of(&db), 3);
    drop(db);

    let store = open(&dir, history);
    assert_eq!(store.current_revision(), last);
    assert_eq!(store.get(&old[0]).unwrap().unwrap().value, val("new 0"));
    assert!(store.get(&old[1]).unwrap().is_none());
    assert_eq!(store.get(&old[2]).unwrap().unwrap().value, val("old 2"));
    assert_eq!(store.list("/registry/configmaps/").unwrap().0.len(), old.len());
}

fn format_of(db: &sled::Db) -> u64 {
    let format = db.get(b"m/format").unwrap().expect("m/format");
    u64::from_be_bytes(format.as_ref().try_into().unwrap())
}

fn log_key(revision: u64) -> Vec<u8> {
    let mut key = b"l".to_vec();
    key.extend_from_slice(&revision.to_be_bytes());
    key
}

/// Turns the store in `dir` (format 3: the log alone) into what format 2 wrote: the same log
/// plus a `k` record per object (its mod and create revisions).
fn downgrade_to_format_2(dir: &tempfile::TempDir, objects: &[(&str, u64, u64)]) {
    let db = open_raw_sled(&dir.path().join("store"));
    for (key, mod_revision, create_revision) in objects {
        let mut record = mod_revision.to_be_bytes().to_vec();
        record.extend_from_slice(&create_revision.to_be_bytes());
        db.insert([b"k".as_slice(), key.as_bytes()].concat(), record).unwrap();
    }
    db.insert(b"m/format", &2u64.to_be_bytes()).unwrap();
    db.flush().unwrap();
}

/// A format-2 store (an index of objects beside the log) opens with its objects, revisions and
/// history, and is rewritten as format 3: the index is gone.
#[tokio::test(flavor = "multi_thread")]
async fn should_move_a_format_2_store_to_format_3() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, b2, c, gone) = {
        let store = open(&dir, 100);
        let a = store.create("/registry/configmaps/ns/a", val("a")).await.unwrap();
        let b = store.create("/registry/configmaps/ns/b", val("b")).await.unwrap();
        let b2 = store.update("/registry/configmaps/ns/b", val("b2"), Some(b)).await.unwrap();
        let c = store.create("/registry/configmaps/ns/c", val("c")).await.unwrap();
        let (gone, _) = store.delete("/registry/configmaps/ns/c", None).await.unwrap();
        (a, b, b2, c, gone)
    };
    downgrade_to_format_2(&dir, &[("/registry/configmaps/ns/a", a, a), ("/registry/configmaps/ns/b", b2, b)]);

    let store = open(&dir, 100);
    assert_eq!(store.current_revision(), gone);
    let (items, _) = store.list("/registry/configmaps/").unwrap();
    let got: Vec<(&str, &[u8], u64, u64)> =
        items.iter().map(|kv| (kv.key.as_str(), kv.value.as_ref(), kv.mod_revision, kv.create_revision)).collect();
    assert_eq!(got, vec![("/registry/configmaps/ns/a", &b"a"[..], a, a), ("/registry/configmaps/ns/b", &b"b2"[..], b2, b)]);
    // The history came along: a watch from before the first write sees every change.
    let mut watch = store.watch("/registry/", 0).unwrap();
    let mut revisions = Vec::new();
    for _ in 0..5 {
        revisions.push(next_event(&mut watch).await.revision);
    }
    assert_eq!(revisions, vec![a, b, b2, c, gone]);
    drop(watch);
    store.close();
    drop(store);
    let db = open_raw_sled(&dir.path().join("store"));
    assert_eq!(format_of(&db), 3);
    assert_eq!(db.scan_prefix(b"k").count(), 0, "the format-2 index is still there");
}

/// A format-2 store is refused, naming the object, when the log record holding an object's
/// value is missing.
#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_a_format_2_store_whose_object_lost_its_value_record() {
    let dir = tempfile::tempdir().unwrap();
    let rev = {
        let store = open(&dir, 100);
        store.create("/registry/configmaps/ns/a", val("a")).await.unwrap()
    };
    downgrade_to_format_2(&dir, &[("/registry/configmaps/ns/a", rev, rev)]);
    {
        let db = open_raw_sled(&dir.path().join("store"));
        db.remove(log_key(rev)).unwrap();
        db.flush().unwrap();
    }
    let err = open_refused(&dir);
    let message = err.to_string();
    assert!(message.contains("/registry/configmaps/ns/a") && message.contains("missing"), "{message}");
}

/// A store written by a newer Berth (a format this one does not know) is refused, naming the
/// format, and left as it was.
#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_a_store_of_a_newer_format() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(&dir, 100);
        store.create("/registry/configmaps/ns/a", val("a")).await.unwrap();
    }
    {
        let db = open_raw_sled(&dir.path().join("store"));
        db.insert(b"m/format", &4u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let err = open_refused(&dir);
    let message = err.to_string();
    assert!(message.contains("m/format") && message.contains("format 4"), "{message}");
    let db = open_raw_sled(&dir.path().join("store"));
    assert_eq!(format_of(&db), 4, "the refused store was changed");
    assert!(db.get(log_key(1)).unwrap().is_some(), "the refused store was changed");
}

/// Under a commit delay, busy concurrent writers share flushes: once a group is large, the
/// writer waits for the rest before flushing, so 32 writers whose next writes come a few
/// milliseconds apart still write in one group per round. With no delay each round is cut
/// into many groups. (The delay here is long so that the outcome does not hang on the host's
/// speed; the default is 200 µs.)
#[tokio::test(flavor = "multi_thread")]
async fn should_gather_busy_writers_into_large_groups_under_a_commit_delay() {
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions { history: 1_000, commit_delay: Duration::from_millis(300), ..SledOptions::default() };
    let store = Arc::new(SledStore::open(dir.path(), options).expect("open store"));
    let (writers, each) = (32, 6);
    let tasks: Vec<_> = (0..writers)
        .map(|t| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for i in 0..each {
                    if i > 0 {
                        // The writers come back spread over 35 ms, as clients would.
                        tokio::time::sleep(Duration::from_millis(5 * (t % 8))).await;
                    }
                    store.create(&format!("/registry/pods/ns{t}/p{i}"), val("pod")).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(HANG_GUARD, task).await.expect("writers finish").unwrap();
    }
    let stats = store.stats();
    assert_eq!(stats.writes, writers * each);
    // At most a couple of small groups before the first large one; after it, each group waits
    // for all the writers.
    assert!(stats.flushes <= each + 3, "{} flushes for {} writes", stats.flushes, stats.writes);
}

/// The disk-size gauge is refreshed at most once a second while writes go on, and catches up
/// with the last of them once the store is quiet.
#[tokio::test(flavor = "multi_thread")]
async fn should_bring_the_disk_size_gauge_up_to_date_after_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, 100);
    let before = store.stats().disk_bytes;
    let value = Bytes::from(vec![b'x'; 64 * 1024]);
    // 4 MiB, written well within a second of opening (when the gauge was last measured).
    for i in 0..64 {
        store.create(&format!("/registry/configmaps/ns/big-{i}"), value.clone()).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    while store.stats().disk_bytes < before + 2 * 1024 * 1024 {
        assert!(tokio::time::Instant::now() < deadline, "the gauge stayed at {} bytes", store.stats().disk_bytes);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
