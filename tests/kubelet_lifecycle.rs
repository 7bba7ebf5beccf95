//! A pod's life around the kubelet: graceful deletion (SIGTERM first, then
//! the containers and data removed and the pod gone from the API); a
//! kubelet killed and restarted adopts its running pods without duplicates
//! and removes the containers of pods deleted meanwhile; a missing image
//! shows ErrImagePull / ImagePullBackOff and the pod recovers once the
//! image exists.

mod kubelet_support;

use std::process::Command;
use std::time::Duration;

use berth_api::pb::core::*;
use berth_client::DeleteParams;
use kubelet_support::*;

const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread")]
async fn should_send_sigterm_first_when_a_pod_is_deleted() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("term", &[]).await;
    let out = tempfile::tempdir().expect("tempdir");
    let mut app = sh("app", "trap 'echo TERM > /out/signal; exit 0' TERM; while true; do sleep 0.2; done");
    app.volume_mounts = vec![VolumeMount { name: "out".into(), mount_path: "/out".into(), ..Default::default() }];
    let mut p = pod("graceful", &k.node, vec![app]);
    let spec = p.spec.as_mut().unwrap();
    spec.termination_grace_period_seconds = Some(20);
    spec.volumes = vec![Volume {
        name: "out".into(),
        host_path: Some(HostPathVolumeSource { path: out.path().display().to_string(), r#type: String::new() }),
        ..Default::default()
    }];
    let created = cluster.client.create(p).await.expect("create pod");
    let uid = created.metadata.as_ref().map(|m| m.uid.clone()).unwrap_or_default();
    wait_pod(&cluster.client, &k, "graceful", "Running", LIMIT, |p| running(p, "app")).await;
    let data = k.root.path().join("pods").join(&uid);
    assert!(data.is_dir(), "no pod data directory {}", data.display());

    cluster.client.delete::<Pod>("default", "graceful", &DeleteParams::default()).await.expect("delete pod");
    wait_for(LIMIT, "the pod gone from the API", || async {
        match cluster.client.get::<Pod>("default", "graceful").await {
            Err(e) if e.is_not_found() => Some(()),
            _ => None,
        }
    })
    .await;
    let signal = std::fs::read_to_string(out.path().join("signal")).unwrap_or_default();
    assert_eq!(signal.trim(), "TERM", "the container did not get SIGTERM");
    assert!(node_containers(&k.node, true).is_empty(), "containers left: {:?}", node_containers(&k.node, true));
    assert!(!data.exists(), "the pod's data directory was left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_adopt_running_pods_after_a_restart_and_remove_deleted_ones() {
    let cluster = Cluster::start().await;
    let mut k = cluster.kubelet("adopt", &[]).await;
    let c = &cluster.client;
    c.create(pod("keep", &k.node, vec![sh("app", "exec sleep 3600")])).await.expect("create keep");
    c.create(pod("drop", &k.node, vec![sh("app", "exec sleep 3600")])).await.expect("create drop");
    let keep = wait_pod(c, &k, "keep", "Running", LIMIT, |p| running(p, "app")).await;
    wait_pod(c, &k, "drop", "Running", LIMIT, |p| running(p, "app")).await;
    let keep_id = container_status(&keep, "app").map(|s| s.container_id.clone()).unwrap_or_default();
    let keep_ip = keep.status.as_ref().map(|s| s.pod_ip.clone()).unwrap_or_default();

    k.kill_9();
    // While the kubelet is down, "drop" is force-deleted from the API.
    let force = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
    c.delete::<Pod>("default", "drop", &force).await.expect("delete drop");
    k.restart();
    k.wait_ready(c).await;

    // A pod created after the restart runs: the kubelet has synced.
    c.create(pod("after", &k.node, vec![sh("app", "exec sleep 3600")])).await.expect("create after");
    wait_pod(c, &k, "after", "Running", LIMIT, |p| running(p, "app")).await;
    wait_for(LIMIT, "the deleted pod's containers removed", || async {
        node_containers(&k.node, true).iter().all(|n| !n.contains("_drop_")).then_some(())
    })
    .await;
    let names = node_containers(&k.node, true);
    // keep (sandbox + app) and after (sandbox + app): no duplicates.
    assert_eq!(names.len(), 4, "{names:?}");
    let keep = c.get::<Pod>("default", "keep").await.expect("get keep");
    assert_eq!(container_status(&keep, "app").map(|s| s.container_id.clone()), Some(keep_id), "keep's container was replaced");
    assert_eq!(restarts(&keep, "app"), 0);
    assert_eq!(keep.status.as_ref().map(|s| s.pod_ip.clone()), Some(keep_ip.clone()));
    let after = c.get::<Pod>("default", "after").await.expect("get after");
    assert_ne!(after.status.map(|s| s.pod_ip), Some(keep_ip), "an address was handed out twice");
}

/// Removes an image tag when dropped.
struct ImageTag(String);

impl Drop for ImageTag {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", &self.0]).output();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_report_err_image_pull_and_recover_once_the_image_exists() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("image", &[]).await;
    let image = format!("berth/missing-{}:1", k.node);
    let tag = ImageTag(image.clone());
    let mut app = sh("app", "exec sleep 3600");
    app.image = image.clone();
    cluster.client.create(pod("pull", &k.node, vec![app])).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "pull", "ErrImagePull or ImagePullBackOff", LIMIT, |p| {
        matches!(waiting_reason(p, "app").as_str(), "ErrImagePull" | "ImagePullBackOff")
    })
    .await;
    let msg = container_status(&p, "app").and_then(|c| c.state.clone()).and_then(|s| s.waiting).map(|w| w.message).unwrap_or_default();
    assert!(!msg.is_empty(), "no message from the engine");
    assert_eq!(phase(&p), "Pending");
    wait_pod(&cluster.client, &k, "pull", "ImagePullBackOff", LIMIT, |p| waiting_reason(p, "app") == "ImagePullBackOff").await;

    let out = Command::new("docker").args(["tag", IMAGE, &tag.0]).output().expect("docker tag");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_pod(&cluster.client, &k, "pull", "Running once the image exists", LIMIT, |p| running(p, "app")).await;
    // Remove the pod before the tag (an image in use cannot be removed).
    cluster.client.delete::<Pod>("default", "pull", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.ok();
    drop(k);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_replace_a_pod_whose_sandbox_died() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("sandbox", &[]).await;
    cluster.client.create(pod("phoenix", &k.node, vec![sh("app", "exec sleep 3600")])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "phoenix", "Running", LIMIT, |p| running(p, "app")).await;
    let sandbox = node_containers(&k.node, false).into_iter().find(|n| n.contains("_POD_")).expect("sandbox");
    let out = Command::new("docker").args(["kill", &sandbox]).output().expect("docker kill");
    assert!(out.status.success());
    let p =
        wait_pod(&cluster.client, &k, "phoenix", "running again in a new sandbox", LIMIT, |p| running(p, "app") && restarts(p, "app") >= 1)
            .await;
    assert!(!p.status.map(|s| s.pod_ip).unwrap_or_default().is_empty());
    let running_sandboxes = node_containers(&k.node, false).into_iter().filter(|n| n.contains("_POD_")).count();
    assert_eq!(running_sandboxes, 1);
}
