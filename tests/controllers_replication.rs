//! The replication controller and the garbage collector end to end: the
//! apiserver, scheduler and controller-manager as processes, a real kubelet
//! on Docker, and berthctl as the user. An RC of 3 replaces a pod whose
//! container was killed and a pod that was deleted; scale 3 → 10 → 2 keeps
//! the right pods; deleting an RC with each cascade policy does what it says.

mod controllers_support;
mod kubelet_support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{Namespace, ObjectMeta, Pod, ReplicationController};
use controllers_support::{ControlPlane, eventually, image, pods, rc, serving, serving_pods};

const LIMIT: Duration = Duration::from_secs(90);

async fn namespace(cp: &ControlPlane, name: &str) {
    cp.client()
        .create(Namespace { metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }), ..Default::default() })
        .await
        .expect("namespace");
}

async fn serving_count(cp: &ControlPlane, ns: &str, n: usize, what: &str) -> Vec<(String, String)> {
    eventually(LIMIT, what, || async {
        let s = serving_pods(cp.client(), ns, "app=web").await;
        let all = pods(cp.client(), ns, "app=web").await.into_iter().filter(|p| p.meta().deletion_timestamp.is_empty()).count();
        (s.len() == n && all == n).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn should_replace_a_killed_container_and_a_deleted_pod() {
    let cp = ControlPlane::start(&[]).await;
    let kubelet = cp.kubelet("rc-replace").await;
    namespace(&cp, "e2e-rc1").await;
    cp.client().create(rc("web", "e2e-rc1", 3, image())).await.expect("rc");
    let first = serving_count(&cp, "e2e-rc1", 3, "3 pods serving").await;

    // Kill the container of one pod: the pod comes back (restarted in place).
    let (victim, _) = first[0].clone();
    let prefix = format!("berth_{}_e2e-rc1_{victim}_app_", kubelet.node);
    let out =
        Command::new("docker").args(["ps", "--format", "{{.Names}}", "--filter", &format!("name={prefix}")]).output().expect("docker ps");
    let container =
        String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string).unwrap_or_else(|| panic!("no container {prefix}*"));
    let killed = Command::new("docker").args(["kill", &container]).output().expect("docker kill");
    assert!(killed.status.success(), "docker kill: {}", String::from_utf8_lossy(&killed.stderr));
    eventually(LIMIT, "the killed container restarted and the pod serves again", || async {
        let p: Pod = cp.client().get("e2e-rc1", &victim).await.ok()?;
        let restarted = p.status.as_ref()?.container_statuses.iter().any(|c| c.restart_count >= 1);
        (restarted && serving(&p)).then_some(())
    })
    .await;
    serving_count(&cp, "e2e-rc1", 3, "still 3 pods").await;

    // Delete another pod: the RC replaces it.
    let (deleted, _) = first[1].clone();
    cp.berthctl_ok(&["delete", "pod", &deleted, "-n", "e2e-rc1"]);
    let now = serving_count(&cp, "e2e-rc1", 3, "3 pods again, one of them new").await;
    assert!(now.iter().all(|(n, _)| *n != deleted), "{now:?}");
    let events = cp.berthctl_ok(&["describe", "rc", "web", "-n", "e2e-rc1"]);
    assert!(events.contains("SuccessfulCreate"), "describe shows what the controller did:\n{events}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_scale_3_to_10_to_2_keeping_the_oldest_ready_pods() {
    let cp = ControlPlane::start(&[]).await;
    let _kubelet = cp.kubelet("rc-scale").await;
    namespace(&cp, "e2e-rc2").await;
    cp.client().create(rc("web", "e2e-rc2", 3, image())).await.expect("rc");
    let original: BTreeSet<String> = serving_count(&cp, "e2e-rc2", 3, "3 pods serving").await.into_iter().map(|(n, _)| n).collect();
    // Creation times have a one-second resolution: let the new pods be newer.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cp.berthctl_ok(&["scale", "--replicas=10", "rc/web", "-n", "e2e-rc2"]);
    serving_count(&cp, "e2e-rc2", 10, "10 pods serving").await;
    cp.berthctl_ok(&["scale", "--replicas=2", "rc/web", "-n", "e2e-rc2"]);
    let left: BTreeSet<String> = serving_count(&cp, "e2e-rc2", 2, "2 pods left").await.into_iter().map(|(n, _)| n).collect();
    assert!(left.is_subset(&original), "scale-down removes the newest pods first: left {left:?}, original {original:?}");
    eventually(LIMIT, "status reports 2 ready replicas", || async {
        let rc: ReplicationController = cp.client().get("e2e-rc2", "web").await.ok()?;
        rc.status.filter(|s| s.replicas == 2 && s.ready_replicas == 2).map(|_| ())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_delete_an_rc_with_each_cascade_policy() {
    let cp = ControlPlane::start(&[]).await;
    let _kubelet = cp.kubelet("rc-cascade").await;
    namespace(&cp, "e2e-rc3").await;
    let c = cp.client();
    for name in ["bg", "fg", "or"] {
        c.create(rc(name, "e2e-rc3", 2, image())).await.expect("rc");
    }
    for name in ["bg", "fg", "or"] {
        eventually(LIMIT, &format!("rc {name} serving"), || async {
            (serving_pods(c, "e2e-rc3", &format!("app={name}")).await.len() == 2).then_some(())
        })
        .await;
    }

    // Background: the RC goes at once, its pods after it.
    cp.berthctl_ok(&["delete", "rc", "bg", "-n", "e2e-rc3", "--cascade=background"]);
    eventually(LIMIT, "background: pods collected", || async { pods(c, "e2e-rc3", "app=bg").await.is_empty().then_some(()) }).await;

    // Foreground: the RC is gone only once its pods are.
    cp.berthctl_ok(&["delete", "rc", "fg", "-n", "e2e-rc3", "--cascade=foreground"]);
    assert!(c.get::<ReplicationController>("e2e-rc3", "fg").await.is_err_and(|e| e.is_not_found()));
    assert!(pods(c, "e2e-rc3", "app=fg").await.is_empty(), "a foreground deletion ends after the dependents are gone");

    // Orphan: the RC goes, its pods stay, running and ownerless.
    cp.berthctl_ok(&["delete", "rc", "or", "-n", "e2e-rc3", "--cascade=orphan"]);
    assert!(c.get::<ReplicationController>("e2e-rc3", "or").await.is_err_and(|e| e.is_not_found()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let orphans = pods(c, "e2e-rc3", "app=or").await;
    assert_eq!(orphans.len(), 2);
    assert!(orphans.iter().all(|p| serving(p) && p.meta().owner_references.is_empty()), "orphans keep running without owner");
}
