//! Restarts and probes on the real Docker engine: a crash-looping container
//! backs off and shows CrashLoopBackOff; OnFailure and Never behave as in
//! Kubernetes; a failing liveness probe restarts the container; a readiness
//! probe gates Ready; an exceeded memory limit ends in OOMKilled; init
//! containers run in order before the app.

mod kubelet_support;

use std::time::Duration;

use berth_api::pb::core::*;
use kubelet_support::*;

const LIMIT: Duration = Duration::from_secs(90);

fn with_policy(mut p: Pod, policy: &str) -> Pod {
    p.spec.as_mut().unwrap().restart_policy = policy.into();
    p
}

fn terminated(p: &Pod, name: &str) -> Option<ContainerStateTerminated> {
    container_status(p, name)?.state.clone()?.terminated
}

fn last_terminated(p: &Pod, name: &str) -> Option<ContainerStateTerminated> {
    container_status(p, name)?.last_state.clone()?.terminated
}

#[tokio::test(flavor = "multi_thread")]
async fn should_back_off_a_crash_looping_container() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("crash", &[]).await;
    cluster.client.create(pod("crasher", &k.node, vec![sh("app", "echo boom; exit 1")])).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "crasher", "CrashLoopBackOff", LIMIT, |p| waiting_reason(p, "app") == "CrashLoopBackOff").await;
    let c = container_status(&p, "app").expect("status");
    assert!(c.restart_count >= 1, "{c:?}");
    let last = last_terminated(&p, "app").expect("last state");
    assert_eq!(last.exit_code, 1);
    assert_eq!(last.reason, "Error");
    let msg = c.state.clone().and_then(|s| s.waiting).map(|w| w.message).unwrap_or_default();
    assert!(msg.contains("back-off"), "{msg}");
    assert_eq!(phase(&p), "Running");
    assert!(!condition(&p, "Ready"));
    // Backing off: no restart storm (the delay doubles from 10 s).
    let before = restarts(&p, "app");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = cluster.client.get::<Pod>("default", "crasher").await.expect("get");
    assert!(restarts(&now, "app") <= before + 1, "restarted {} times in 3 s", restarts(&now, "app") - before);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_restart_on_failure_only_with_on_failure() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("onfail", &[]).await;
    // Fails the first time, succeeds the second (the emptyDir survives restarts).
    let mut app = sh("app", "if [ -f /data/once ]; then exit 0; fi; touch /data/once; exit 3");
    app.volume_mounts = vec![VolumeMount { name: "data".into(), mount_path: "/data".into(), ..Default::default() }];
    let mut p = with_policy(pod("flaky", &k.node, vec![app]), "OnFailure");
    p.spec.as_mut().unwrap().volumes = vec![Volume { name: "data".into(), empty_dir: Some(Default::default()), ..Default::default() }];
    cluster.client.create(p).await.expect("create flaky");
    let p = wait_pod(&cluster.client, &k, "flaky", "Succeeded", LIMIT, |p| phase(p) == "Succeeded").await;
    assert_eq!(restarts(&p, "app"), 1);
    assert_eq!(terminated(&p, "app").map(|t| (t.exit_code, t.reason)), Some((0, "Completed".into())));
    assert_eq!(last_terminated(&p, "app").map(|t| t.exit_code), Some(3));

    // Success at once: never restarted.
    cluster.client.create(with_policy(pod("ok", &k.node, vec![sh("app", "exit 0")]), "OnFailure")).await.expect("create ok");
    let p = wait_pod(&cluster.client, &k, "ok", "Succeeded", LIMIT, |p| phase(p) == "Succeeded").await;
    assert_eq!(restarts(&p, "app"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_never_restart_with_never() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("never", &[]).await;
    cluster.client.create(with_policy(pod("once", &k.node, vec![sh("app", "exit 2")]), "Never")).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "once", "Failed", LIMIT, |p| phase(p) == "Failed").await;
    assert_eq!(restarts(&p, "app"), 0);
    assert_eq!(terminated(&p, "app").map(|t| (t.exit_code, t.reason)), Some((2, "Error".into())));
    // And it stays so.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = cluster.client.get::<Pod>("default", "once").await.expect("get");
    assert_eq!((phase(&p), restarts(&p, "app")), ("Failed", 0));

    cluster.client.create(with_policy(pod("done", &k.node, vec![sh("app", "exit 0")]), "Never")).await.expect("create pod");
    wait_pod(&cluster.client, &k, "done", "Succeeded", LIMIT, |p| phase(p) == "Succeeded").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_restart_a_container_whose_liveness_probe_fails() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("live", &[]).await;
    let mut app = sh("app", "touch /tmp/healthy; exec sleep 3600");
    app.liveness_probe = Some(Probe {
        exec: Some(ExecAction { command: vec!["cat".into(), "/tmp/healthy".into()] }),
        period_seconds: Some(1),
        failure_threshold: Some(2),
        ..Default::default()
    });
    cluster.client.create(pod("alive", &k.node, vec![app])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "alive", "Running", LIMIT, |p| running(p, "app")).await;
    // Healthy for a while: no restart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = cluster.client.get::<Pod>("default", "alive").await.expect("get");
    assert_eq!(restarts(&p, "app"), 0);
    // The probe starts failing: the container is killed and started again.
    let (code, out) = docker_exec(&k.node, "alive", "app", &["rm", "/tmp/healthy"]);
    assert_eq!(code, 0, "{out}");
    let p = wait_pod(&cluster.client, &k, "alive", "restarted and running", LIMIT, |p| restarts(p, "app") >= 1 && running(p, "app")).await;
    assert!(last_terminated(&p, "app").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn should_gate_ready_on_the_readiness_probe() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("ready", &[]).await;
    let mut app = sh("app", "exec sleep 3600");
    app.readiness_probe = Some(Probe {
        exec: Some(ExecAction { command: vec!["cat".into(), "/tmp/ready".into()] }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    });
    cluster.client.create(pod("gated", &k.node, vec![app])).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "gated", "Running", LIMIT, |p| running(p, "app")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let p2 = cluster.client.get::<Pod>("default", "gated").await.expect("get");
    assert!(!condition(&p, "Ready") && !condition(&p2, "Ready"), "ready before the probe succeeded");
    assert!(container_status(&p2, "app").is_some_and(|c| !c.ready));

    docker_exec(&k.node, "gated", "app", &["touch", "/tmp/ready"]);
    wait_pod(&cluster.client, &k, "gated", "Ready", LIMIT, |p| condition(p, "Ready") && condition(p, "ContainersReady")).await;
    docker_exec(&k.node, "gated", "app", &["rm", "/tmp/ready"]);
    let p = wait_pod(&cluster.client, &k, "gated", "not Ready again", LIMIT, |p| !condition(p, "Ready")).await;
    // Readiness never restarts anything.
    assert_eq!(restarts(&p, "app"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_end_in_oom_killed_when_the_memory_limit_is_exceeded() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("oom", &[]).await;
    // tail keeps its whole (newline-free) input in memory.
    let mut app = sh("app", "head -c 64m /dev/zero | tail");
    app.resources = Some(ResourceRequirements {
        limits: [("memory".to_string(), "16Mi".to_string()), ("cpu".to_string(), "1".to_string())].into(),
        ..Default::default()
    });
    cluster.client.create(with_policy(pod("hog", &k.node, vec![app]), "Never")).await.expect("create pod");
    // Filling a cgroup up to its limit is slow when the host is busy (reclaim
    // runs first): give this one twice the usual time.
    let p = wait_pod(&cluster.client, &k, "hog", "Failed", LIMIT * 2, |p| phase(p) == "Failed").await;
    let t = terminated(&p, "app").expect("terminated");
    assert_eq!(t.reason, "OOMKilled", "{t:?}");
    assert_eq!(p.status.as_ref().map(|s| s.qos_class.as_str()), Some("Guaranteed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_run_init_containers_in_order_before_the_app() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("init", &[]).await;
    let mount = vec![VolumeMount { name: "work".into(), mount_path: "/work".into(), ..Default::default() }];
    let mut first = sh("first", "echo one >> /work/order");
    first.volume_mounts = mount.clone();
    let mut second = sh("second", "echo two >> /work/order");
    second.volume_mounts = mount.clone();
    let mut app = sh("app", "exec sleep 3600");
    app.volume_mounts = mount;
    let mut p = pod("ordered", &k.node, vec![app]);
    let spec = p.spec.as_mut().unwrap();
    spec.init_containers = vec![first, second];
    spec.volumes = vec![Volume { name: "work".into(), empty_dir: Some(Default::default()), ..Default::default() }];
    cluster.client.create(p).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "ordered", "Running", LIMIT, |p| running(p, "app")).await;
    assert!(condition(&p, "Initialized"));
    let inits = &p.status.as_ref().unwrap().init_container_statuses;
    assert!(inits.iter().all(|s| s.state.as_ref().and_then(|x| x.terminated.as_ref()).is_some_and(|t| t.exit_code == 0)), "{inits:?}");
    assert_eq!(docker_exec(&k.node, "ordered", "app", &["cat", "/work/order"]), (0, "one\ntwo\n".into()));

    // A failing init container holds the pod in Init and is retried.
    let mut p = pod("stuck", &k.node, vec![sh("app", "exec sleep 3600")]);
    p.spec.as_mut().unwrap().init_containers = vec![sh("setup", "exit 1")];
    cluster.client.create(p).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "stuck", "init retried", LIMIT, |p| {
        p.status.as_ref().is_some_and(|s| s.init_container_statuses.first().is_some_and(|c| c.restart_count >= 1))
    })
    .await;
    assert_eq!(phase(&p), "Pending");
    assert!(!condition(&p, "Initialized"));
    assert!(node_containers(&k.node, true).iter().all(|n| !n.contains("_stuck_app_")));
}
