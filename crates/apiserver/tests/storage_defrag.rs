//! Disk space after churn: the sled store gives space back by rebuilding itself into a fresh
//! directory, keeping every object, the revision and the watch history.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use berth_apiserver::storage::{DefragPolicy, EventType, Revision, SledOptions, SledStore, Store, WatchStream};
use bytes::Bytes;

/// Only a guard against a hung test, never an assertion about speed.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// (sum of file lengths, bytes of blocks allocated) under `dir`.
fn dir_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut total = (0, 0);
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("dir entry");
        let meta = std::fs::symlink_metadata(entry.path()).expect("metadata");
        if meta.is_dir() {
            let (len, blocks) = dir_size(&entry.path());
            total.0 += len;
            total.1 += blocks;
        } else {
            total.0 += meta.len();
            total.1 += meta.blocks() * 512;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement: prints sizes"]
async fn measure_sled_space_after_churn() {
    let dir = tempfile::tempdir().unwrap();
    let no_defrag = SledOptions { history: 1_000, defrag: DefragPolicy { ratio: 0.0, min_bytes: 0 }, ..SledOptions::default() };
    let store = SledStore::open(dir.path(), no_defrag).unwrap();
    let value = Bytes::from(vec![b'x'; 1024]);
    let print = |label: &str, store: &SledStore| {
        let (len, blocks) = dir_size(dir.path());
        println!("{label}: size_on_disk={} files={len} allocated={blocks} rev={}", store.stats().disk_bytes, store.current_revision());
    };
    for k in 0..300 {
        store.create(&format!("/registry/configmaps/ns/c{k}"), value.clone()).await.unwrap();
    }
    print("created 300", &store);
    let keys: Vec<String> = (0..300).map(|k| format!("/registry/configmaps/ns/c{k}")).collect();
    for round in 0..5 {
        let mut tasks = Vec::new();
        for i in 0..10_000 {
            tasks.push(store.update(&keys[i % 300], value.clone(), None));
            if tasks.len() == 64 {
                futures::future::join_all(tasks.drain(..)).await;
            }
        }
        futures::future::join_all(tasks).await;
        print(&format!("after {} updates", (round + 1) * 10_000), &store);
    }
    for i in 0..20_000 {
        let key = format!("/registry/events/ns/e{i}");
        store.create(&key, value.clone()).await.unwrap();
        store.delete(&key, None).await.unwrap();
    }
    print("after 20k create+delete", &store);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    print("5 s idle", &store);
    store.close();
    drop(store);
    let store = SledStore::open(dir.path(), no_defrag).unwrap();
    print("reopened", &store);
}

/// Runs `ops` with up to 64 in flight, so group commit keeps the test short.
async fn concurrently<F: std::future::Future>(ops: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    use futures::StreamExt;
    futures::stream::iter(ops).buffered(64).collect().await
}

async fn next_revision(stream: &mut WatchStream) -> (Revision, EventType, String) {
    let event = tokio::time::timeout(HANG_GUARD, stream.next()).await.expect("watch hung").expect("watch ended").expect("watch failed");
    (event.revision, event.event_type, event.key.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn should_give_disk_space_back_after_churn_keeping_objects_revision_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let history = 1_000;
    let options = SledOptions { history, defrag: DefragPolicy { ratio: 3.0, min_bytes: 8 << 20 }, ..SledOptions::default() };
    let store = SledStore::open(dir.path(), options).unwrap();
    let kept: Vec<String> = (0..300).map(|k| format!("/registry/configmaps/ns/keep-{k}")).collect();
    let value = |tag: &str| Bytes::from(format!("{tag:-<1024}"));
    concurrently(kept.iter().map(|k| store.create(k, value("v0")))).await.into_iter().for_each(|r| {
        r.expect("create");
    });
    // A watcher of the kept objects that reads along through the churn and the rebuilds.
    let mut early = store.watch("/registry/configmaps/", store.current_revision()).unwrap();
    let expected_changes = 5 * 300 + 1_000;
    let reader = tokio::spawn(async move {
        let mut seen = Vec::with_capacity(expected_changes);
        while seen.len() < expected_changes {
            seen.push(next_revision(&mut early).await);
        }
        seen
    });

    // Churn: 10,000 objects of 2 KiB created and deleted, with updates to the kept ones
    // between, so the file grows far beyond the live data.
    let mut peak = 0;
    for round in 0..5 {
        let churn: Vec<String> = (0..2_000).map(|i| format!("/registry/events/ns/r{round}-{i}")).collect();
        let big = Bytes::from(vec![b'e'; 2048]);
        concurrently(churn.iter().map(|k| store.create(k, big.clone()))).await.into_iter().for_each(|r| {
            r.expect("create churn");
        });
        peak = peak.max(dir_size(dir.path()).1);
        concurrently(churn.iter().map(|k| store.delete(k, None))).await.into_iter().for_each(|r| {
            r.expect("delete churn");
        });
        peak = peak.max(dir_size(dir.path()).1);
        let tag = format!("v{}", round + 1);
        concurrently(kept.iter().map(|k| store.update(k, value(&tag), None))).await.into_iter().for_each(|r| {
            r.expect("update");
        });
        peak = peak.max(dir_size(dir.path()).1);
    }
    // A little more writing after the churn, so the last compaction sees the deletions.
    for i in 0..1_000 {
        store.update(&kept[i % kept.len()], value("v5"), None).await.expect("update");
    }
    let stats = store.stats();
    let (_, after) = dir_size(dir.path());
    println!(
        "peak {peak} bytes, after {after} bytes, live {} bytes, {} rebuilds taking {:.2} s in all",
        stats.live_bytes, stats.defrags, stats.defrag_seconds
    );
    assert!(stats.defrags >= 1, "no rebuild happened: {stats:?}");
    assert!(after * 2 < peak, "the directory did not shrink: peak {peak} bytes, now {after} bytes ({stats:?})");
    let generations: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("store."))
        .collect();
    assert_eq!(generations.len(), 1, "replaced store directories left behind: {generations:?}");

    // Every object, with its value and revisions; the revision sequence carries on.
    let revision = store.current_revision();
    assert_eq!(revision, 300 + 5 * (2 * 2_000 + 300) + 1_000);
    let (items, at) = store.list("/registry/").unwrap();
    assert_eq!(at, revision);
    assert_eq!(items.len(), kept.len(), "churned objects came back or kept ones were lost");
    let before: BTreeMap<String, (Bytes, Revision, Revision)> =
        items.into_iter().map(|kv| (kv.key, (kv.value, kv.mod_revision, kv.create_revision))).collect();
    for (i, key) in kept.iter().enumerate() {
        let (v, _, create) = &before[key];
        assert_eq!(create, &(i as Revision + 1), "{key}");
        assert!(v.starts_with(b"v5") || v.starts_with(b"v4"), "{key}");
    }

    // A watch opened before the churn still delivers every later change to its prefix in order.
    let seen = reader.await.expect("watch reader");
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "events out of order");
    assert!(seen.iter().all(|(_, kind, key)| *kind == EventType::Modified && key.starts_with("/registry/configmaps/")));
    assert_eq!(seen.last().map(|e| e.0), Some(revision));
    // A watch from a kept revision, started now, gets the kept history.
    let from = revision - 500;
    let mut late = store.watch("/registry/", from).unwrap();
    for expected in from + 1..=revision {
        assert_eq!(next_revision(&mut late).await.0, expected);
    }
    let write = store.update(&kept[0], value("after"), None).await.expect("write after rebuild");
    assert_eq!(write, revision + 1);

    // The rebuilt directory is what a restart opens, with its history.
    store.close();
    drop(store);
    let store = SledStore::open(dir.path(), options).unwrap();
    assert_eq!(store.current_revision(), revision + 1);
    let (items, _) = store.list("/registry/").unwrap();
    assert_eq!(items.len(), kept.len());
    let mut resumed = store.watch("/registry/", from).unwrap();
    assert_eq!(next_revision(&mut resumed).await.0, from + 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_move_a_store_written_before_the_layout_into_it() {
    let dir = tempfile::tempdir().unwrap();
    // A pre-layout store: sled's files directly in the data directory.
    {
        let db = sled::open(dir.path()).unwrap();
        let mut record = Vec::new();
        record.extend_from_slice(&1u64.to_be_bytes());
        record.extend_from_slice(&1u64.to_be_bytes());
        record.extend_from_slice(b"old");
        db.insert(b"k/registry/configmaps/ns/old", record).unwrap();
        // Its history record (format 1 kept values in both).
        let mut log = vec![1u8];
        log.extend_from_slice(&1u64.to_be_bytes());
        let key = b"/registry/configmaps/ns/old";
        log.extend_from_slice(&(key.len() as u32).to_be_bytes());
        log.extend_from_slice(key);
        log.extend_from_slice(&3u32.to_be_bytes());
        log.extend_from_slice(b"old");
        let mut log_key = b"l".to_vec();
        log_key.extend_from_slice(&1u64.to_be_bytes());
        db.insert(log_key, log).unwrap();
        db.insert(b"m/revision", &1u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    std::fs::write(dir.path().join("service-account.key"), b"not sled's").unwrap();
    let options = SledOptions { history: 100, defrag: DefragPolicy { ratio: 1.5, min_bytes: 0 }, ..SledOptions::default() };
    let mut deadline = 0;
    let store = loop {
        // sled may hold its lock a moment after the handle is dropped.
        match SledStore::open(dir.path(), options) {
            Ok(store) => break store,
            Err(err) if deadline < 300 => {
                deadline += 1;
                let _ = err;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => panic!("open: {err}"),
        }
    };
    assert_eq!(store.get("/registry/configmaps/ns/old").unwrap().expect("old object").value, Bytes::from_static(b"old"));
    // Its history came along into the new layout.
    let mut watch = store.watch("/registry/", 0).unwrap();
    assert_eq!(next_revision(&mut watch).await.0, 1);
    for i in 0..2_000 {
        store.create(&format!("/registry/configmaps/ns/c{i}"), Bytes::from_static(b"x")).await.expect("create");
    }
    assert!(store.stats().defrags >= 1, "{:?}", store.stats());
    assert!(!dir.path().join("db").exists() && !dir.path().join("conf").exists(), "sled files left at the top");
    assert!(dir.path().join("service-account.key").exists(), "a file that is not sled's was removed");
    store.close();
    drop(store);
    let store = SledStore::open(dir.path(), options).unwrap();
    assert_eq!(store.current_revision(), 2_001);
    assert_eq!(store.get("/registry/configmaps/ns/old").unwrap().expect("old object").value, Bytes::from_static(b"old"));
}

/// Copies a directory tree (a sled store that is closed).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

async fn write_and_close(dir: &Path, options: SledOptions, n: usize) -> Revision {
    let store = SledStore::open(dir, options).unwrap();
    for i in 0..n {
        store.create(&format!("/registry/configmaps/ns/c{i}"), Bytes::from(format!("v{i}"))).await.unwrap();
    }
    let revision = store.current_revision();
    store.close();
    drop(store);
    revision
}

fn assert_store(dir: &Path, options: SledOptions, n: usize, revision: Revision) {
    let store = SledStore::open(dir, options).unwrap();
    assert_eq!(store.current_revision(), revision);
    let (items, _) = store.list("/registry/").unwrap();
    assert_eq!(items.len(), n);
    assert!(items.iter().all(|kv| kv.value == format!("v{}", &kv.key["/registry/configmaps/ns/c".len()..])));
}

/// The on-disk states a crash can leave at each step of a rebuild all open as the full store,
/// and what the rebuild left behind is removed.
#[tokio::test(flavor = "multi_thread")]
async fn should_open_the_full_store_from_every_state_a_crashed_rebuild_leaves() {
    let options = SledOptions { history: 100, defrag: DefragPolicy { ratio: 0.0, min_bytes: 0 }, ..SledOptions::default() };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let revision = write_and_close(data, options, 50).await;
    assert_eq!(std::fs::read_link(data.join("store")).unwrap(), Path::new("store.1"));

    // Crash while writing the new directory (and its link): `store` still names the old one.
    std::fs::create_dir(data.join("store.2")).unwrap();
    std::fs::write(data.join("store.2").join("db"), b"half a sled file").unwrap();
    std::os::unix::fs::symlink("store.2", data.join("store.tmp")).unwrap();
    assert_store(data, options, 50, revision);
    assert!(!data.join("store.2").exists() && !data.join("store.tmp").exists(), "leftovers of the crashed rebuild");

    // Crash after the switch, before the old directory was removed: the new one is used.
    copy_dir(&data.join("store.1"), &data.join("store.2"));
    std::os::unix::fs::symlink("store.2", data.join("store.tmp")).unwrap();
    std::fs::rename(data.join("store.tmp"), data.join("store")).unwrap();
    assert_store(data, options, 50, revision);
    assert!(!data.join("store.1").exists(), "the replaced directory was not removed");
    assert_eq!(std::fs::read_link(data.join("store")).unwrap(), Path::new("store.2"));

    // While a store uses the directory, nothing else may clean it up or open it.
    let open = SledStore::open(data, options).unwrap();
    std::fs::create_dir(data.join("store.7")).unwrap();
    let err = SledStore::open(data, options).err().expect("a second open must be refused").to_string();
    assert!(err.contains("in use by another process"), "{err}");
    assert!(data.join("store.7").exists(), "the refused open cleaned up a directory in use");
    drop(open);
    assert_store(data, options, 50, revision);
    assert!(!data.join("store.7").exists());

    // A link to something that is not a store directory is refused, naming it.
    std::fs::remove_file(data.join("store")).unwrap();
    std::os::unix::fs::symlink("/etc", data.join("store")).unwrap();
    let err = SledStore::open(data, options).err().expect("a foreign link must be refused").to_string();
    assert!(err.contains("links to /etc"), "{err}");
}
