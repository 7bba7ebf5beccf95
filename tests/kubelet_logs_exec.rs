//! The kubelet's own API (what the apiserver proxies for `berthctl logs`,
//! `exec` and `top`), against a real kubelet and real containers: logs with
//! tail, follow and the previous instance; the logs of a deleted pod; exec
//! with stdin and exit codes; usage statistics per pod and container.

mod kubelet_support;

use std::time::Duration;

use berth_api::pb::core::*;
use berth_api::pb::kubelet::kubelet_client::KubeletClient;
use berth_api::pb::kubelet::{ExecInput, ExecStart, LogsRequest, StatsRequest};
use berth_client::DeleteParams;
use futures::StreamExt;
use kubelet_support::*;
use tonic::transport::Channel;

const LIMIT: Duration = Duration::from_secs(90);

/// A client of the kubelet's API at the address and port its Node reports.
async fn kubelet_api(cluster: &Cluster, k: &Kubelet) -> KubeletClient<Channel> {
    let node = k.wait_ready(&cluster.client).await;
    let status = node.status.unwrap_or_default();
    let ip = status.addresses.iter().find(|a| a.r#type == "InternalIP").map(|a| a.address.clone()).expect("InternalIP");
    let port = status.daemon_endpoints.and_then(|d| d.kubelet_endpoint).map(|e| e.port).expect("kubelet port");
    KubeletClient::connect(format!("http://{ip}:{port}")).await.expect("connect to the kubelet API")
}

async fn read_logs(api: &mut KubeletClient<Channel>, req: LogsRequest) -> Result<String, tonic::Status> {
    let mut stream = api.logs(req).await?.into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend(chunk?.data);
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn logs_req(pod: &str) -> LogsRequest {
    LogsRequest { namespace: "default".into(), pod: pod.into(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_serve_logs_with_tail_follow_previous_and_after_deletion() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("logs", &[]).await;
    let mut api = kubelet_api(&cluster, &k).await;
    let script = "echo oops >&2; sleep 0.3; for i in 1 2 3; do echo line $i; done; if [ -f /d/second ]; then while true; do echo tick; sleep 0.3; done; fi; touch /d/second; exit 1";
    let mut app = sh("app", script);
    app.volume_mounts = vec![VolumeMount { name: "d".into(), mount_path: "/d".into(), ..Default::default() }];
    let mut p = pod("chatty", &k.node, vec![app]);
    p.spec.as_mut().unwrap().volumes = vec![Volume { name: "d".into(), empty_dir: Some(Default::default()), ..Default::default() }];
    cluster.client.create(p).await.expect("create pod");
    wait_pod(&cluster.client, &k, "chatty", "running its second instance", LIMIT, |p| restarts(p, "app") == 1 && running(p, "app")).await;

    // The previous instance: its whole output, stdout and stderr.
    let previous = read_logs(&mut api, LogsRequest { previous: true, ..logs_req("chatty") }).await.expect("previous logs");
    assert_eq!(previous, "oops\nline 1\nline 2\nline 3\n");
    let tail = read_logs(&mut api, LogsRequest { previous: true, tail_lines: Some(2), ..logs_req("chatty") }).await.expect("tail");
    assert_eq!(tail, "line 2\nline 3\n");
    // Following the current one: new lines keep coming.
    let mut follow = api.logs(LogsRequest { follow: true, ..logs_req("chatty") }).await.expect("follow").into_inner();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.matches("tick").count() < 3 {
        let chunk = tokio::time::timeout_at(deadline, follow.next()).await.expect("ticks within 30 s");
        seen.push_str(&String::from_utf8_lossy(&chunk.expect("stream open").expect("chunk").data));
    }
    drop(follow);
    // A container name that does not exist is refused, naming it.
    let err = read_logs(&mut api, LogsRequest { container: "nope".into(), ..logs_req("chatty") }).await.unwrap_err();
    assert!(err.message().contains("nope"), "{err:?}");

    // Deleted: the logs stay on the node.
    cluster
        .client
        .delete::<Pod>("default", "chatty", &DeleteParams { grace_period_seconds: Some(1), ..Default::default() })
        .await
        .expect("delete");
    wait_for(LIMIT, "the pod gone", || async {
        matches!(cluster.client.get::<Pod>("default", "chatty").await, Err(e) if e.is_not_found()).then_some(())
    })
    .await;
    let kept = read_logs(&mut api, LogsRequest { deleted: true, ..logs_req("chatty") }).await.expect("deleted pod's logs");
    assert!(kept.starts_with("oops\nline 1\n") && kept.contains("tick"), "{kept}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_exec_with_stdin_and_report_exit_codes() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("exec", &[]).await;
    let mut api = kubelet_api(&cluster, &k).await;
    cluster.client.create(pod("shell", &k.node, vec![sh("app", "exec sleep 3600")])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "shell", "Running", LIMIT, |p| running(p, "app")).await;

    let start = |cmd: &[&str], stdin: bool| ExecInput {
        start: Some(ExecStart {
            namespace: "default".into(),
            pod: "shell".into(),
            container: String::new(),
            command: cmd.iter().map(|s| s.to_string()).collect(),
            stdin,
            tty: false,
        }),
        ..Default::default()
    };
    let input = futures::stream::iter(vec![
        start(&["sh", "-c", "tr a-z A-Z; echo err >&2; exit 3"], true),
        ExecInput { stdin: b"hello kubelet\n".to_vec(), ..Default::default() },
        ExecInput { stdin_eof: true, ..Default::default() },
    ]);
    let mut out = api.exec(input).await.expect("exec").into_inner();
    let (mut stdout, mut stderr, mut code) = (Vec::new(), Vec::new(), None);
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(30), out.next()).await.expect("exec output in time") {
        let msg = msg.expect("exec message");
        stdout.extend(msg.stdout);
        stderr.extend(msg.stderr);
        if msg.exit_code.is_some() {
            code = msg.exit_code;
        }
    }
    assert_eq!(String::from_utf8_lossy(&stdout), "HELLO KUBELET\n");
    assert_eq!(String::from_utf8_lossy(&stderr), "err\n");
    assert_eq!(code, Some(3));

    let input = futures::stream::iter(vec![start(&["hostname"], false)]);
    let mut out = api.exec(input).await.expect("exec").into_inner();
    let mut text = Vec::new();
    let mut code = None;
    while let Some(msg) = out.next().await {
        let msg = msg.expect("message");
        text.extend(msg.stdout);
        code = msg.exit_code.or(code);
    }
    assert_eq!(String::from_utf8_lossy(&text), "shell\n");
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_report_usage_per_pod_and_container() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("stats", &[]).await;
    let mut api = kubelet_api(&cluster, &k).await;
    // Burns CPU and holds 20 MB in a shell variable for as long as it runs
    // (a pipe through `tail` held it only until tail exited: a flaky test).
    let app = sh("app", "x=$(head -c 20000000 /dev/zero | tr '\\0' a); while true; do :; done");
    cluster.client.create(pod("busy", &k.node, vec![app])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "busy", "Running", LIMIT, |p| running(p, "app")).await;
    let stats = wait_for(LIMIT, "usage of the busy pod", || {
        let mut api = api.clone();
        async move {
            let r = api.stats(StatsRequest { namespace: "default".into(), pod: "busy".into() }).await.ok()?.into_inner();
            let p = r.pods.into_iter().find(|p| p.name == "busy")?;
            (p.cpu_usage_nano_cores > 0 && p.memory_working_set_bytes > 0).then_some((r.node, p))
        }
    })
    .await;
    let (node, pod) = stats;
    let c = pod.containers.iter().find(|c| c.name == "app").expect("container stats");
    assert!(c.memory_working_set_bytes >= 10 << 20, "{c:?}");
    assert!(c.cpu_usage_nano_cores > 100_000_000, "a busy loop uses more than 0.1 CPU: {c:?}");
    let node = node.expect("node stats");
    assert_eq!(node.node_name, k.node);
    assert!(node.memory_capacity_bytes > 0 && node.cpu_capacity_millis >= 1000);
    let _ = api.stats(StatsRequest::default()).await.expect("all pods");
}
