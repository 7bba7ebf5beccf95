//! The replication controller against a real apiserver: replicas kept,
//! replaced, scaled in the right order, orphans adopted, non-matching pods
//! released, never over-created, status reported.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::*;
use berth_client::{DeleteParams, ListParams, WatchEvent};
use common::*;
use futures::StreamExt;

async fn owned_pods(c: &berth_client::Client, ns: &str, rc: &ReplicationController) -> Vec<Pod> {
    let uid = rc.meta().uid.clone();
    list::<Pod>(c, ns, "")
        .await
        .into_iter()
        .filter(|p| p.meta().owner_references.iter().any(|r| r.uid == uid && r.controller == Some(true)))
        .collect()
}

async fn active_owned(c: &berth_client::Client, ns: &str, rc: &ReplicationController) -> Vec<Pod> {
    owned_pods(c, ns, rc).await.into_iter().filter(|p| p.meta().deletion_timestamp.is_empty()).collect()
}

async fn scale(c: &berth_client::Client, ns: &str, name: &str, replicas: i32) {
    for _ in 0..10 {
        let mut rc: ReplicationController = c.get(ns, name).await.expect("get rc");
        rc.spec.as_mut().expect("spec").replicas = Some(replicas);
        match c.update(rc).await {
            Ok(_) => return,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("scale: {e}"),
        }
    }
    panic!("scale: too many conflicts");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_create_replicas_owned_by_the_rc_and_report_status() {
    let cl = Cluster::start("replication").await;
    let c = &cl.client;
    namespace(c, "rc1").await;
    let rc = c.create(rc("web", "rc1", 3)).await.expect("create rc");
    let pods = eventually("3 pods", || async {
        let p = active_owned(c, "rc1", &rc).await;
        (p.len() == 3).then_some(p)
    })
    .await;
    for p in &pods {
        assert!(p.name().starts_with("web-"), "{}", p.name());
        assert_eq!(p.meta().labels.get("app").map(String::as_str), Some("web"));
        let owner = &p.meta().owner_references[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str(), owner.block_owner_deletion), ("ReplicationController", "web", Some(true)));
    }
    let status = eventually("status replicas 3", || async {
        let rc: ReplicationController = c.get("rc1", "web").await.ok()?;
        let generation = rc.meta().generation;
        rc.status.filter(|s| s.replicas == 3 && s.observed_generation == generation)
    })
    .await;
    assert_eq!(status.fully_labeled_replicas, 3);
    assert_eq!(status.ready_replicas, 0);

    // Pods become ready: the status follows.
    for p in &pods {
        set_pod_status(c, p, "Running", true, "10.0.0.1").await;
    }
    eventually("ready and available replicas 3", || async {
        let rc: ReplicationController = c.get("rc1", "web").await.ok()?;
        rc.status.filter(|s| s.ready_replicas == 3 && s.available_replicas == 3).map(|_| ())
    })
    .await;

    // Events say what was done.
    eventually("SuccessfulCreate events", || async {
        let (events, _) = c.list::<Event>("rc1", &ListParams::default()).await.ok()?;
        (events.iter().filter(|e| e.reason == "SuccessfulCreate").count() >= 3).then_some(())
    })
    .await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_replace_a_deleted_pod_and_never_over_create() {
    let cl = Cluster::start("replication").await;
    let c = &cl.client;
    namespace(c, "rc2").await;
    // Count every pod ever created in the namespace.
    let mut watch = c.watch::<Pod>("rc2", &ListParams::default(), 0).await.expect("watch");
    let rc = c.create(rc("many", "rc2", 50)).await.expect("create rc");
    eventually("50 pods", || async { (active_owned(c, "rc2", &rc).await.len() == 50).then_some(()) }).await;
    let victim = active_owned(c, "rc2", &rc).await.remove(0);
    c.delete::<Pod>("rc2", victim.name(), &DeleteParams::default()).await.expect("delete pod");
    let pods = eventually("50 pods again, without the deleted one", || async {
        let p = active_owned(c, "rc2", &rc).await;
        (p.len() == 50 && p.iter().all(|p| p.name() != victim.name())).then_some(p)
    })
    .await;
    // Let any stray creation arrive, then count: 50 + 1 replacement, nothing more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut added = BTreeSet::new();
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(500), watch.next()).await {
        if let Ok(WatchEvent::Added(p)) = ev {
            added.insert(p.name().to_string());
        }
    }
    assert_eq!(added.len(), 51, "pods ever created: {added:?}");
    assert_eq!(active_owned(c, "rc2", &rc).await.len(), pods.len());
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_scale_up_then_down_removing_the_least_valuable_pods() {
    let cl = Cluster::start("replication").await;
    let c = &cl.client;
    namespace(c, "rc3").await;
    let rc = c.create(rc("sc", "rc3", 3)).await.expect("create rc");
    let first = eventually("3 pods", || async {
        let p = active_owned(c, "rc3", &rc).await;
        (p.len() == 3).then_some(p)
    })
    .await;
    // Two of them run on a node and are ready; the third stays pending.
    for p in &first[..2] {
        c.bind("rc3", p.name(), "node-a").await.expect("bind");
        set_pod_status(c, p, "Running", true, "10.0.0.2").await;
    }
    let keep: BTreeSet<String> = first[..2].iter().map(|p| p.name().to_string()).collect();
    scale(c, "rc3", "sc", 10).await;
    eventually("10 pods", || async { (active_owned(c, "rc3", &rc).await.len() == 10).then_some(()) }).await;
    scale(c, "rc3", "sc", 2).await;
    let left = eventually("2 pods", || async {
        confirm_deletions(c, "rc3").await;
        let p = active_owned(c, "rc3", &rc).await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let left: BTreeSet<String> = left.iter().map(|p| p.name().to_string()).collect();
    assert_eq!(left, keep, "scale-down must keep the scheduled, running, ready pods");
    eventually("status replicas 2", || async {
        let rc: ReplicationController = c.get("rc3", "sc").await.ok()?;
        rc.status.filter(|s| s.replicas == 2 && s.ready_replicas == 2).map(|_| ())
    })
    .await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_adopt_matching_orphans_and_release_pods_that_stop_matching() {
    let cl = Cluster::start("replication").await;
    let c = &cl.client;
    namespace(c, "rc4").await;
    let orphan = Pod { metadata: meta("orphan", "rc4"), spec: Some(pod_spec("busybox:1")), ..Default::default() };
    let mut orphan = orphan;
    orphan.metadata_mut().labels = labels(&[("app", "ad")]);
    c.create(orphan).await.expect("create orphan");
    let rc = c.create(rc("ad", "rc4", 2)).await.expect("create rc");
    let pods = eventually("2 pods, the orphan adopted", || async {
        let p = active_owned(c, "rc4", &rc).await;
        (p.len() == 2 && p.iter().any(|p| p.name() == "orphan")).then_some(p)
    })
    .await;
    assert!(pods.iter().any(|p| p.name() != "orphan"));

    // The orphan's label changes: it is released and replaced.
    let mut p: Pod = c.get("rc4", "orphan").await.expect("get");
    p.metadata_mut().labels.insert("app".into(), "other".into());
    c.update(p).await.expect("relabel");
    eventually("orphan released and replaced", || async {
        let released: Pod = c.get("rc4", "orphan").await.ok()?;
        let owned = active_owned(c, "rc4", &rc).await;
        (released.meta().owner_references.is_empty() && owned.len() == 2 && owned.iter().all(|p| p.name() != "orphan")).then_some(())
    })
    .await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_resume_after_a_restart_without_duplicating_pods() {
    let mut cl = Cluster::start("replication").await;
    let c = cl.client.clone();
    namespace(&c, "rc5").await;
    let rc = c.create(rc("rs", "rc5", 5)).await.expect("create rc");
    eventually("5 pods", || async { (active_owned(&c, "rc5", &rc).await.len() == 5).then_some(()) }).await;
    cl.stop_manager().await;
    scale(&c, "rc5", "rs", 7).await;
    cl.start_manager("replication", |_| {}).await;
    eventually("7 pods after the restart", || async { (active_owned(&c, "rc5", &rc).await.len() == 7).then_some(()) }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(owned_pods(&c, "rc5", &rc).await.len(), 7);
    cl.stop().await;
}
