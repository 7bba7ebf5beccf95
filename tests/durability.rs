//! A write acknowledged by the apiserver survives `kill -9`: kill a real
//! apiserver process while clients are writing, restart it on the same sled
//! directory, and find every acknowledged write, with the revision sequence
//! continuing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{ConfigMap, ObjectMeta};
use berth_client::{Client, DeleteParams, ListParams};
use berth_e2e::{Apiserver, free_port};

#[tokio::test(flavor = "multi_thread")]
async fn should_lose_no_acknowledged_write_to_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    let port = free_port();
    let mut server = Apiserver::start(&dir, port, &[]).await;

    // name -> (acknowledged resourceVersion, acknowledged value)
    let acked: Arc<Mutex<BTreeMap<String, (u64, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..16 {
        let client = server.client().await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..10_000 {
                let name = format!("w{w}-{i}");
                let cm = ConfigMap {
                    metadata: Some(ObjectMeta { name: name.clone(), ..Default::default() }),
                    data: [("v".to_string(), "created".to_string())].into(),
                    ..Default::default()
                };
                let Ok(created) = client.create(cm).await else { return };
                let rv: u64 = created.meta().resource_version.parse().unwrap_or(0);
                acked.lock().expect("lock").insert(name.clone(), (rv, "created".into()));
                // Every other object is also updated, so acknowledged updates are checked too.
                if i % 2 == 0 {
                    let mut next = created.clone();
                    next.data.insert("v".into(), "updated".into());
                    let Ok(updated) = client.update(next).await else { return };
                    let rv: u64 = updated.meta().resource_version.parse().unwrap_or(0);
                    acked.lock().expect("lock").insert(name, (rv, "updated".into()));
                }
            }
        }));
    }
    // Let writes flow, then pull the plug mid-stream.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().expect("lock").len() < 2_000 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill_9();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 100, "too few writes before the kill: {}", acked.len());

    let server = Apiserver::start(&dir, port, &[]).await;
    let client = server.client().await;
    let stored = stored_values(&client).await;
    let mut lost = Vec::new();
    for (name, (rv, value)) in &acked {
        match stored.get(name) {
            // A write may have landed after its acknowledgement was lost in the kill: never older.
            Some((srv, sval)) if srv >= rv && (sval == value || value == "created") => {}
            other => lost.push(format!("{name}: acknowledged rv {rv} {value:?}, found {other:?}")),
        }
    }
    assert!(lost.is_empty(), "{} acknowledged writes lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    let max_acked = acked.values().map(|v| v.0).max().unwrap_or(0);
    let next = client
        .create(ConfigMap { metadata: Some(ObjectMeta { name: "after".into(), ..Default::default() }), ..Default::default() })
        .await
        .expect("write after restart");
    let next_rv: u64 = next.meta().resource_version.parse().expect("rv");
    assert!(next_rv > max_acked, "revision went back: {next_rv} <= {max_acked}");
}

/// One figure from the apiserver's `/metrics` (0 if absent).
async fn metric(port: u16, name: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return 0.0 };
    if s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.is_err() {
        return 0.0;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0)
}

/// The store rebuilds itself to give disk space back while clients write; `kill -9` right as
/// rebuilds happen, three times over, loses no acknowledged write, and the rebuilds are visible
/// in `/metrics`.
#[tokio::test(flavor = "multi_thread")]
async fn should_lose_no_acknowledged_write_to_kill_9_around_store_rebuilds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).expect("data dir");
    let port = free_port();
    // Rebuild as often as the store allows (checked every 1,000 writes), so kills land near one.
    let flags = ["--storage-defrag-ratio", "1.5", "--storage-defrag-min-mib", "0", "--watch-history", "500"];
    let payload = "x".repeat(1024);
    // name -> (acknowledged resourceVersion, acknowledged value; "" for deleted)
    let acked: Arc<Mutex<BTreeMap<String, (u64, String)>>> = Arc::default();
    let mut server = Apiserver::start(&dir, port, &flags).await;

    for round in 0..3 {
        let mut writers = Vec::new();
        for w in 0..16 {
            let client = server.client().await;
            let acked = acked.clone();
            let payload = payload.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..100_000 {
                    let name = format!("r{round}-w{w}-{i}");
                    let cm = ConfigMap {
                        metadata: Some(ObjectMeta { name: name.clone(), ..Default::default() }),
                        data: [("v".to_string(), "created".to_string()), ("pad".to_string(), payload.clone())].into(),
                        ..Default::default()
                    };
                    let Ok(created) = client.create(cm).await else { return };
                    let rv: u64 = created.meta().resource_version.parse().unwrap_or(0);
                    acked.lock().expect("lock").insert(name.clone(), (rv, "created".into()));
                    // Churn: every object is updated and most are deleted, so there is space to give back.
                    let mut next = created.clone();
                    next.data.insert("v".into(), "updated".into());
                    let Ok(updated) = client.update(next).await else { return };
                    let rv: u64 = updated.meta().resource_version.parse().unwrap_or(0);
                    acked.lock().expect("lock").insert(name.clone(), (rv, "updated".into()));
                    if i % 4 != 0 {
                        let Ok(deleted) = client.delete::<ConfigMap>("default", &name, &DeleteParams::default()).await else { return };
                        let _ = deleted;
                        acked.lock().expect("lock").insert(name, (rv, String::new()));
                    }
                }
            }));
        }
        // Let writes flow until the store has rebuilt itself twice, then pull the plug at once.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while metric(port, "berth_apiserver_storage_defrags_total").await < 2.0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill_9();
        for w in writers {
            let _ = w.await;
        }
        let acked = acked.lock().expect("lock").clone();
        assert!(acked.len() >= 300 * (round + 1), "too few writes before kill {round}: {}", acked.len());

        server = Apiserver::start(&dir, port, &flags).await;
        let client = server.client().await;
        let stored = stored_values(&client).await;
        let mut lost = Vec::new();
        for (name, (rv, value)) in &acked {
            match (value.as_str(), stored.get(name)) {
                // Deleted and acknowledged: gone for good.
                ("", None) => {}
                // A write may have landed after its acknowledgement was lost in the kill: never older.
                ("created" | "updated", Some((srv, sval))) if srv >= rv && (sval == value || value == "created") => {}
                // The delete that followed may have landed unacknowledged.
                ("updated", None) => {}
                (_, other) => lost.push(format!("{name}: acknowledged rv {rv} {value:?}, found {other:?}")),
            }
        }
        assert!(lost.is_empty(), "kill {round}: {} acknowledged writes lost, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
        let max_acked = acked.values().map(|v| v.0).max().unwrap_or(0);
        let revision = metric(port, "berth_apiserver_storage_revision").await as u64;
        assert!(revision >= max_acked, "kill {round}: revision went back: {revision} < {max_acked}");
        // Exactly one store directory is left, the one `store` names.
        let stores: Vec<String> = std::fs::read_dir(&dir)
            .expect("data dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("store."))
            .collect();
        let linked = std::fs::read_link(dir.join("store")).expect("store link");
        assert_eq!(stores, vec![linked.to_string_lossy().into_owned()], "kill {round}: stray store directories after restart");
    }

    // The store's figures are exported (counters restart with the process; one more rebuild).
    let client = server.client().await;
    for i in 0..1_500 {
        let cm = ConfigMap { metadata: Some(ObjectMeta { name: format!("m{i}"), ..Default::default() }), ..Default::default() };
        client.create(cm).await.expect("create");
        client.delete::<ConfigMap>("default", &format!("m{i}"), &DeleteParams::default()).await.expect("delete");
    }
    assert!(metric(port, "berth_apiserver_storage_defrags_total").await >= 1.0);
    assert!(metric(port, "berth_apiserver_storage_defrag_duration_seconds_total").await > 0.0);
    assert!(metric(port, "berth_apiserver_storage_compactions_total").await >= 1.0);
    assert!(metric(port, "berth_apiserver_storage_size_bytes").await > 0.0);
    assert!(metric(port, "berth_apiserver_storage_live_bytes").await > 0.0);
    let compacted = metric(port, "berth_apiserver_storage_compacted_revision").await;
    assert!(compacted > 0.0 && metric(port, "berth_apiserver_storage_revision").await > compacted);
}

/// What a restarted server holds: each ConfigMap's resourceVersion and value `v`, by name.
async fn stored_values(client: &Client) -> BTreeMap<String, (u64, String)> {
    let (items, _) = client.list::<ConfigMap>("default", &ListParams::default()).await.expect("list after restart");
    items
        .iter()
        .map(|c| (c.name().to_string(), (c.meta().resource_version.parse().unwrap_or(0), c.data.get("v").cloned().unwrap_or_default())))
        .collect()
}
