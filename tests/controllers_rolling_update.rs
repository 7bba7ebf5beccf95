//! `berthctl rolling-update` end to end, on a real kubelet: an update to a
//! new image never has fewer ready pods than `replicas - maxUnavailable`;
//! an update to an image that cannot start rolls itself back with
//! `--auto-rollback`, saying why.

mod controllers_support;
mod kubelet_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use berth_api::pb::core::{Namespace, ObjectMeta, ReplicationController};
use controllers_support::{ControlPlane, eventually, image, pods, rc, serving_pods, tag_image};

const LIMIT: Duration = Duration::from_secs(120);

fn images(rc: &ReplicationController) -> Vec<String> {
    rc.spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| s.containers.iter().map(|c| c.image.clone()).collect())
        .unwrap_or_default()
}

async fn setup(what: &str, ns: &str) -> (ControlPlane, kubelet_support::Kubelet) {
    let cp = ControlPlane::start(&[]).await;
    let kubelet = cp.kubelet(what).await;
    cp.client()
        .create(Namespace { metadata: Some(ObjectMeta { name: ns.into(), ..Default::default() }), ..Default::default() })
        .await
        .expect("namespace");
    cp.client().create(rc("web", ns, 4, image())).await.expect("rc");
    eventually(LIMIT, "4 pods serving", || async { (serving_pods(cp.client(), ns, "app=web").await.len() == 4).then_some(()) }).await;
    (cp, kubelet)
}

/// Counts the ready pods of `app=web` every 100 ms; returns the smallest count seen.
fn watch_min_ready(cp: &ControlPlane, ns: &'static str) -> (Arc<AtomicUsize>, Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let min = Arc::new(AtomicUsize::new(usize::MAX));
    let stop = Arc::new(AtomicBool::new(false));
    let client = cp.client().clone();
    let task = {
        let (min, stop) = (min.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let n = serving_pods(&client, ns, "app=web").await.len();
                min.fetch_min(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    (min, stop, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn should_update_the_image_without_dropping_below_the_availability_floor() {
    let (cp, _kubelet) = setup("ru-image", "e2e-ru1").await;
    let v2 = "berth/busybox:rolling-update-e2e";
    tag_image(v2);
    let (min, stop, watcher) = watch_min_ready(&cp, "e2e-ru1");
    let url = cp.url();
    let out = tokio::task::spawn_blocking(move || {
        berth_e2e::berthctl(
            &url,
            &[
                "rolling-update",
                "web",
                "-n",
                "e2e-ru1",
                &format!("--image={v2}"),
                "--max-unavailable=1",
                "--max-surge=1",
                "--update-period=2s",
                "--poll-interval=500ms",
                "--timeout=2m",
            ],
            None,
        )
    })
    .await
    .expect("berthctl");
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "rolling-update failed:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("replicationcontroller/web rolling updated"), "{stdout}");
    // Progress goes to stderr, leaving stdout to the steps.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(" of 4 pods updated and ready, "), "progress on stderr:\n{stderr}");
    assert!(!stdout.contains("pods updated and ready"), "{stdout}");
    let lowest = min.load(Ordering::SeqCst);
    assert!(lowest >= 3, "ready pods fell to {lowest}, below replicas - maxUnavailable = 3");

    // The RC keeps its name, runs the new image, and its pods are the new ones.
    let rc: ReplicationController = cp.client().get("e2e-ru1", "web").await.expect("rc web");
    assert_eq!(images(&rc), vec![v2.to_string()]);
    eventually(LIMIT, "4 new pods serving, the old ones gone", || async {
        let all = pods(cp.client(), "e2e-ru1", "app=web").await;
        let new = all.iter().filter(|p| p.spec.as_ref().is_some_and(|s| s.containers[0].image == v2)).count();
        (all.len() == 4 && new == 4 && serving_pods(cp.client(), "e2e-ru1", "app=web").await.len() == 4).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_roll_back_by_itself_when_new_pods_never_become_ready() {
    let (cp, _kubelet) = setup("ru-broken", "e2e-ru2").await;
    // A registry on a closed loopback port: the pull fails at once, without leaving the host.
    let broken = "127.0.0.1:1/berth/broken:1";
    let url = cp.url();
    let out = tokio::task::spawn_blocking(move || {
        berth_e2e::berthctl(
            &url,
            &[
                "rolling-update",
                "web",
                "-n",
                "e2e-ru2",
                &format!("--image={broken}"),
                "--update-period=2s",
                "--poll-interval=500ms",
                "--auto-rollback",
                "--progress-deadline=15s",
            ],
            None,
        )
    })
    .await
    .expect("berthctl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a rolled-back update is a failure");
    assert!(stderr.contains("did not become Ready within --progress-deadline"), "the reason is given:\n{stderr}");
    assert!(stderr.contains("rolled back"), "{stderr}");

    // Back to the old template: the old RC with its image, no new RC, 4 pods serving.
    let (rcs, _) = cp.client().list::<ReplicationController>("e2e-ru2", &Default::default()).await.expect("list rcs");
    assert_eq!(rcs.len(), 1, "{:?}", rcs.iter().map(|r| r.metadata.as_ref().map(|m| m.name.clone())).collect::<Vec<_>>());
    assert_eq!(images(&rcs[0]), vec![image().to_string()]);
    assert!(rcs[0].metadata.as_ref().is_some_and(|m| m.annotations.is_empty()), "the update's annotations are cleared");
    eventually(LIMIT, "4 pods serving the old image", || async {
        let s = serving_pods(cp.client(), "e2e-ru2", "app=web").await;
        let all = pods(cp.client(), "e2e-ru2", "app=web").await;
        let old = all.iter().filter(|p| p.spec.as_ref().is_some_and(|s| s.containers[0].image == image())).count();
        (s.len() == 4 && old == all.len()).then_some(())
    })
    .await;
}
