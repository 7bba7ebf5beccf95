//! The namespace controller and the garbage collector against a real
//! apiserver: a deleted namespace is emptied and disappears; owners deleted
//! with each propagation policy take their dependents along, wait for them,
//! or leave them behind.

mod common;

use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::*;
use berth_client::{DeleteParams, ListParams};
use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn should_empty_a_deleted_namespace_then_remove_it() {
    let cl = Cluster::start("namespace").await;
    let c = &cl.client;
    namespace(c, "doomed").await;
    for i in 0..3 {
        c.create(ConfigMap { metadata: meta(&format!("cm-{i}"), "doomed"), ..Default::default() }).await.expect("configmap");
    }
    c.create(Pod { metadata: meta("loose", "doomed"), spec: Some(pod_spec("busybox:1")), ..Default::default() }).await.expect("pod");
    c.create(Pod { metadata: meta("bound", "doomed"), spec: Some(pod_spec("busybox:1")), ..Default::default() }).await.expect("pod");
    c.bind("doomed", "bound", "node-1").await.expect("bind");
    c.create(rc("web", "doomed", 0)).await.expect("rc");

    c.delete::<Namespace>("", "doomed", &DeleteParams::default()).await.expect("delete namespace");
    let ns: Namespace = c.get("", "doomed").await.expect("still there while terminating");
    assert_eq!(ns.status.as_ref().map(|s| s.phase.as_str()), Some("Terminating"));
    let refused = c.create(ConfigMap { metadata: meta("late", "doomed"), ..Default::default() }).await.expect_err("terminating refuses");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");

    // The bound pod is deleted gracefully: it waits for its kubelet's confirmation.
    let bound = eventually("the bound pod marked for deletion", || async {
        let p: Pod = c.get("doomed", "bound").await.ok()?;
        (!p.meta().deletion_timestamp.is_empty()).then_some(p)
    })
    .await;
    assert!(c.get::<Namespace>("", "doomed").await.is_ok(), "the namespace waits for the pod");
    let remaining = eventually("the namespace says what remains", || async {
        let ns: Namespace = c.get("", "doomed").await.ok()?;
        ns.status?
            .conditions
            .into_iter()
            .find(|c| c.r#type == "NamespaceContentRemaining" && c.status == "True" && c.message.ends_with("pods has 1 resource instances"))
    })
    .await;
    assert_eq!(remaining.reason, "SomeResourcesRemain");
    c.delete::<Pod>("doomed", bound.name(), &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .expect("kubelet confirms");

    eventually("namespace gone", || async { c.get::<Namespace>("", "doomed").await.err().filter(|e| e.is_not_found()).map(|_| ()) }).await;
    let (left, _) = c.list::<ConfigMap>("doomed", &ListParams::default()).await.expect("list");
    assert!(left.is_empty());

    // The system namespaces cannot be deleted.
    let err = c.delete::<Namespace>("", "default", &DeleteParams::default()).await.expect_err("default is protected");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    cl.stop().await;
}

async fn rc_with_pods(c: &berth_client::Client, ns: &str, name: &str, n: i32) -> (ReplicationController, Vec<Pod>) {
    let rc = c.create(rc(name, ns, n)).await.expect("create rc");
    let uid = rc.meta().uid.clone();
    let pods = eventually("pods created", || async {
        let p: Vec<Pod> = list::<Pod>(c, ns, &format!("app={name}"))
            .await
            .into_iter()
            .filter(|p| p.meta().owner_references.iter().any(|r| r.uid == uid))
            .collect();
        (p.len() == n as usize).then_some(p)
    })
    .await;
    (rc, pods)
}

#[tokio::test(flavor = "multi_thread")]
async fn should_delete_dependents_in_the_background() {
    let cl = Cluster::start("replication,garbagecollector").await;
    let c = &cl.client;
    namespace(c, "gc1").await;
    let (_, pods) = rc_with_pods(c, "gc1", "bg", 3).await;
    c.delete::<ReplicationController>("gc1", "bg", &DeleteParams { propagation_policy: "Background".into(), ..Default::default() })
        .await
        .expect("delete rc");
    // The owner goes at once, its pods after.
    assert!(c.get::<ReplicationController>("gc1", "bg").await.is_err_and(|e| e.is_not_found()));
    eventually("pods collected", || async {
        let left = list::<Pod>(c, "gc1", "app=bg").await;
        left.iter().all(|p| pods.iter().all(|o| o.meta().uid != p.meta().uid)).then_some(())
    })
    .await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_a_foreground_owner_until_its_dependents_are_gone() {
    let cl = Cluster::start("replication,garbagecollector").await;
    let c = &cl.client;
    namespace(c, "gc2").await;
    let (_, pods) = rc_with_pods(c, "gc2", "fg", 2).await;
    // One pod is on a node: its deletion waits for the kubelet, and so does the owner.
    c.bind("gc2", pods[0].name(), "node-1").await.expect("bind");
    c.delete::<ReplicationController>("gc2", "fg", &DeleteParams { propagation_policy: "Foreground".into(), ..Default::default() })
        .await
        .expect("delete rc");
    let rc: ReplicationController = c.get("gc2", "fg").await.expect("owner waits");
    assert!(rc.meta().finalizers.iter().any(|f| f == "foregroundDeletion"));
    eventually("bound pod marked for deletion", || async {
        let p: Pod = c.get("gc2", pods[0].name()).await.ok()?;
        (!p.meta().deletion_timestamp.is_empty()).then_some(())
    })
    .await;
    eventually("unbound pod gone", || async { c.get::<Pod>("gc2", pods[1].name()).await.err().filter(|e| e.is_not_found()).map(|_| ()) })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(c.get::<ReplicationController>("gc2", "fg").await.is_ok(), "the owner stays while a dependent remains");
    c.delete::<Pod>("gc2", pods[0].name(), &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .expect("kubelet confirms");
    eventually("owner gone after its dependents", || async {
        c.get::<ReplicationController>("gc2", "fg").await.err().filter(|e| e.is_not_found()).map(|_| ())
    })
    .await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_orphan_dependents_and_let_a_new_owner_adopt_them() {
    let cl = Cluster::start("replication,garbagecollector").await;
    let c = &cl.client;
    namespace(c, "gc3").await;
    let (_, pods) = rc_with_pods(c, "gc3", "or", 3).await;
    c.delete::<ReplicationController>("gc3", "or", &DeleteParams { propagation_policy: "Orphan".into(), ..Default::default() })
        .await
        .expect("delete rc");
    eventually("owner gone", || async { c.get::<ReplicationController>("gc3", "or").await.err().filter(|e| e.is_not_found()).map(|_| ()) })
        .await;
    for p in &pods {
        let now: Pod = c.get("gc3", p.name()).await.expect("orphaned pod stays");
        assert!(now.meta().owner_references.is_empty(), "{} still has owners", p.name());
        assert!(now.meta().deletion_timestamp.is_empty());
    }
    // A new RC with the same selector adopts them instead of creating pods.
    let rc = c.create(rc("or", "gc3", 3)).await.expect("new rc");
    eventually("adopted", || async {
        let all = list::<Pod>(c, "gc3", "app=or").await;
        (all.len() == 3 && all.iter().all(|p| p.meta().owner_references.iter().any(|r| r.uid == rc.meta().uid))).then_some(())
    })
    .await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_collect_objects_whose_owner_never_existed_and_keep_those_with_a_live_owner() {
    let cl = Cluster::start("garbagecollector").await;
    let c = &cl.client;
    namespace(c, "gc4").await;
    let owner = c.create(ConfigMap { metadata: meta("owner", "gc4"), ..Default::default() }).await.expect("owner");
    let reference = |name: &str, uid: &str| OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: name.into(),
        uid: uid.into(),
        ..Default::default()
    };
    let mut kept = ConfigMap { metadata: meta("kept", "gc4"), ..Default::default() };
    kept.metadata_mut().owner_references = vec![reference("owner", &owner.meta().uid), reference("ghost", "no-such-uid")];
    c.create(kept).await.expect("kept");
    let mut dangling = ConfigMap { metadata: meta("dangling", "gc4"), ..Default::default() };
    dangling.metadata_mut().owner_references = vec![reference("ghost", "no-such-uid")];
    c.create(dangling).await.expect("dangling");
    eventually("dangling collected", || async {
        c.get::<ConfigMap>("gc4", "dangling").await.err().filter(|e| e.is_not_found()).map(|_| ())
    })
    .await;
    // The one with a live owner stays, without the reference to the ghost.
    let kept = eventually("ghost reference dropped", || async {
        let k: ConfigMap = c.get("gc4", "kept").await.ok()?;
        (k.meta().owner_references.len() == 1).then_some(k)
    })
    .await;
    assert_eq!(kept.meta().owner_references[0].uid, owner.meta().uid);
    cl.stop().await;
}
