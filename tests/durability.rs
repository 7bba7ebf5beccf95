//! A write acknowledged by the apiserver survives `kill -9`: kill a real
//! apiserver process while clients are writing, restart it on the same sled
//! directory, and find every acknowledged write, with the revision sequence
//! continuing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{ConfigMap, ObjectMeta};
use berth_client::ListParams;
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
    let (items, _) = client.list::<ConfigMap>("default", &ListParams::default()).await.expect("list after restart");
    let stored: BTreeMap<String, (u64, String)> = items
        .iter()
        .map(|c| (c.name().to_string(), (c.meta().resource_version.parse().unwrap_or(0), c.data.get("v").cloned().unwrap_or_default())))
        .collect();
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
