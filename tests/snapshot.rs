//! `berthctl snapshot save` under writes and `berth-apiserver --restore`:
//! the restored server serves exactly the objects of one revision (a prefix
//! of a sequential writer's objects, each as it was), and a restore never
//! writes over an existing store or accepts a damaged file.

use std::collections::BTreeMap;
use std::process::Command;

use berth_api::Resource;
use berth_api::pb::core::{ConfigMap, ObjectMeta};
use berth_client::{Client, ListParams};
use berth_e2e::{Apiserver, berthctl, bin, free_port};

const WRITES: usize = 300;

fn config_map(i: usize) -> ConfigMap {
    ConfigMap {
        metadata: Some(ObjectMeta { name: format!("cm-{i:04}"), namespace: "default".into(), ..Default::default() }),
        data: [("i".to_string(), i.to_string())].into(),
        ..Default::default()
    }
}

async fn config_maps(client: &Client) -> (BTreeMap<String, (String, BTreeMap<String, String>)>, u64) {
    let (items, revision) = client.list::<ConfigMap>("default", &ListParams::default()).await.expect("list");
    let map = items.into_iter().map(|c| (c.meta().name.clone(), (c.meta().resource_version.clone(), c.data.clone()))).collect();
    (map, revision)
}

#[tokio::test(flavor = "multi_thread")]
async fn should_restore_a_snapshot_taken_under_writes_to_one_consistent_revision() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = Apiserver::start(&dir.path().join("source"), free_port(), &[]).await;
    let client = source.client().await;
    for i in 0..20 {
        client.create(config_map(i)).await.expect("create");
    }
    // A sequential writer: any consistent snapshot holds cm-0000..cm-k.
    let writer = {
        let client = client.clone();
        tokio::spawn(async move {
            for i in 20..WRITES {
                client.create(config_map(i)).await.expect("create");
            }
        })
    };
    let file = dir.path().join("cluster.snap");
    let url = source.url();
    let file_arg = file.display().to_string();
    let out = tokio::task::spawn_blocking(move || berthctl(&url, &["snapshot", "save", &file_arg], None)).await.expect("berthctl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.starts_with(&format!("Snapshot saved at {} (revision ", file.display())), "{said}");
    writer.await.expect("writer");

    let status = berthctl(&source.url(), &["snapshot", "status", &file.display().to_string()], None);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(String::from_utf8_lossy(&status.stdout).contains("configmaps"), "{}", String::from_utf8_lossy(&status.stdout));

    // Restore into a new directory and compare with the source.
    let restored = Apiserver::start(&dir.path().join("restored"), free_port(), &["--restore", &file.display().to_string()]).await;
    let (after, _) = config_maps(&source.client().await).await;
    let (got, revision) = config_maps(&restored.client().await).await;
    assert!(got.len() >= 20 && got.len() <= WRITES, "{} config maps", got.len());
    let prefix: Vec<String> = (0..got.len()).map(|i| format!("cm-{i:04}")).collect();
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), prefix, "one revision: a prefix of the writer's objects");
    for (name, value) in &got {
        assert_eq!(Some(value), after.get(name), "{name} restored as it was, resourceVersion included");
    }
    assert!(said.contains(&format!("(revision {revision},")), "the restored store is at the snapshot's revision: {said} vs {revision}");
    // The restored server goes on from there.
    restored.client().await.create(config_map(WRITES)).await.expect("writes after a restore");

    // A restore never writes over a store, and refuses a damaged file.
    let apiserver = bin("berth-apiserver", "berth-apiserver");
    let run = |args: &[&str]| {
        let out = Command::new(&apiserver)
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(args)
            .output()
            .expect("run berth-apiserver");
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let occupied = dir.path().join("source").display().to_string();
    let err = run(&["--data-dir", &occupied, "--restore", &file.display().to_string()]);
    assert!(err.contains("is not empty: restore into a new directory (nothing was changed)"), "{err}");
    let mut bytes = std::fs::read(&file).expect("snapshot");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let damaged = dir.path().join("damaged.snap");
    std::fs::write(&damaged, bytes).expect("write");
    let fresh = dir.path().join("fresh").display().to_string();
    let err = run(&["--data-dir", &fresh, "--restore", &damaged.display().to_string()]);
    assert!(err.contains("checksum does not match"), "{err}");
    assert!(!dir.path().join("fresh").exists(), "nothing written for a damaged snapshot");
}
