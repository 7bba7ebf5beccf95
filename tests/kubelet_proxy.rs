//! `berthctl logs`, `exec` and `top` as an operator uses them: through the
//! apiserver, which finds the pod's node and relays to its kubelet (a real
//! apiserver, a real kubelet, real containers on Docker). Also what goes
//! wrong, in kubectl's words: a missing pod, a pod not yet scheduled, a
//! user without the pods/exec permission. And the apiserver calling
//! kubelets over TLS with the certificates `berthctl certs` makes.

mod kubelet_support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_api::pb::core::*;
use berth_api::pb::kubelet::StatsRequest;
use berth_api::pb::kubelet::kubelet_client::KubeletClient;
use berth_client::{Client, ClientConfig};
use berth_e2e::{Apiserver, berthctl_with_env, bin, free_port};
use kubelet_support::*;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

const LIMIT: Duration = Duration::from_secs(90);

/// What berthctl printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_of(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Runs berthctl against `server` (with a token when given), feeding `stdin`.
fn ctl_as(server: &str, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Run {
    let mut all = vec!["--server", server];
    if let Some(t) = token {
        all.extend(["--token", t]);
    }
    all.extend_from_slice(args);
    run_of(berthctl_with_env(&all, &[], stdin))
}

fn ctl(cluster: &Cluster, args: &[&str]) -> Run {
    ctl_as(&cluster.url(), None, args, None)
}

/// Runs berthctl until `done` accepts what it printed (the kubelet may not
/// have the output or a usage sample yet).
async fn ctl_until(server: &str, token: Option<&str>, args: &[&str], what: &str, done: impl Fn(&Run) -> bool) -> Run {
    let deadline = Instant::now() + LIMIT;
    loop {
        let r = ctl_as(server, token, args, None);
        if done(&r) {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: berthctl {args:?} printed\n{}{}", r.stdout, r.stderr);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The row of a table whose first cells are `first`, split into cells.
fn row<'a>(table: &'a str, first: &[&str]) -> Option<Vec<&'a str>> {
    table.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).find(|cells| cells.starts_with(first))
}

/// A memory cell such as `21Mi`, in MiB.
fn mebibytes(cell: &str) -> u64 {
    cell.strip_suffix("Mi").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("not a memory cell: {cell:?}"))
}

fn never(mut p: Pod) -> Pod {
    if let Some(s) = p.spec.as_mut() {
        s.restart_policy = "Never".into();
    }
    p
}

#[tokio::test(flavor = "multi_thread")]
async fn should_print_a_pods_logs_with_tail_and_follow() {
    let cluster = Cluster::start().await;
    let mut k = cluster.kubelet("proxy-logs", &[]).await;
    let echoer = sh("app", "for i in 1 2 3 4 5; do echo line $i; done; exec sleep 3600");
    cluster.client.create(pod("echoer", &k.node, vec![echoer])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "echoer", "Running", LIMIT, |p| running(p, "app")).await;

    let all = "line 1\nline 2\nline 3\nline 4\nline 5\n";
    let logs = ctl_until(&cluster.url(), None, &["logs", "echoer"], "the pod's five lines", |r| r.stdout == all).await;
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    let tail = ctl(&cluster, &["logs", "pod/echoer", "-c", "app", "--tail", "2"]);
    assert_eq!((tail.code, tail.stdout.as_str()), (0, "line 4\nline 5\n"), "{}", tail.stderr);
    let stamped = ctl(&cluster, &["logs", "echoer", "--tail", "1", "--timestamps"]);
    assert!(stamped.stdout.ends_with(" line 5\n") && stamped.stdout.starts_with("20"), "{}{}", stamped.stdout, stamped.stderr);

    // Following a container that ends: every line, then berthctl returns.
    let follower = sh("app", "echo start; sleep 3; echo end");
    cluster.client.create(never(pod("follower", &k.node, vec![follower]))).await.expect("create pod");
    wait_pod(&cluster.client, &k, "follower", "started", LIMIT, |p| running(p, "app") || phase(p) == "Succeeded").await;
    let followed = ctl(&cluster, &["logs", "-f", "follower"]);
    assert_eq!((followed.code, followed.stdout.as_str()), (0, "start\nend\n"), "{}", followed.stderr);

    // What is wrong is named, on one line.
    let missing = ctl(&cluster, &["logs", "missing"]);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stderr.trim_end(), "Error from server (NotFound): pods \"missing\" not found");
    let container = ctl(&cluster, &["logs", "echoer", "-c", "nope"]);
    assert_eq!(container.code, 1);
    assert!(container.stderr.starts_with("Error from server") && container.stderr.contains("nope"), "{}", container.stderr);
    let other = ctl(&cluster, &["-n", "elsewhere", "logs", "echoer"]);
    assert_eq!(other.stderr.trim_end(), "Error from server (NotFound): pods \"echoer\" not found");

    // A deleted pod's logs stay on its node, and berthctl reads them there.
    let deleted = ctl(&cluster, &["delete", "pod", "follower"]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    ctl_until(&cluster.url(), None, &["get", "pods", "-o", "name"], "pod/follower gone", |r| !r.stdout.contains("pod/follower")).await;
    let kept = ctl(&cluster, &["logs", "--deleted", "follower"]);
    assert_eq!((kept.code, kept.stdout.as_str()), (0, "start\nend\n"), "{}", kept.stderr);
    let never_was = ctl(&cluster, &["logs", "--deleted", "never-was"]);
    assert_eq!(never_was.stderr.trim_end(), "Error from server (NotFound): logs of deleted pods \"default/never-was\" not found");

    // A kubelet that is gone (its node still looks Ready: no node controller runs here).
    let node = k.wait_ready(&cluster.client).await;
    let port = node.status.and_then(|s| s.daemon_endpoints).and_then(|d| d.kubelet_endpoint).map(|e| e.port).expect("kubelet port");
    k.kill_9();
    let gone = ctl(&cluster, &["logs", "echoer"]);
    assert_eq!(gone.code, 1);
    let expected = format!("Error from server (ServiceUnavailable): kubelet of node \"{}\" at 127.0.0.1:{port} is unreachable", k.node);
    assert!(gone.stderr.starts_with(&expected) && gone.stderr.lines().count() == 1, "{}", gone.stderr);
    let top = ctl(&cluster, &["top", "nodes"]);
    assert_eq!(top.code, 1);
    assert!(top.stderr.starts_with(&format!("error: kubelet of node \"{}\" at 127.0.0.1:{port} is unreachable", k.node)), "{}", top.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_exec_with_stdin_and_exit_with_the_commands_code() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("proxy-exec", &[]).await;
    cluster.client.create(pod("shell", &k.node, vec![sh("app", "exec sleep 3600")])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "shell", "Running", LIMIT, |p| running(p, "app")).await;

    let hi = ctl(&cluster, &["exec", "shell", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    assert_eq!(hi.stdout, "hi\n");
    assert_eq!(hi.code, 3, "{}", hi.stderr);
    assert_eq!(hi.stderr, "oops\ncommand terminated with exit code 3\n");

    let upper = ctl_as(&cluster.url(), None, &["exec", "-i", "shell", "--", "tr", "a-z", "A-Z"], Some("hello berth\nsecond line\n"));
    assert_eq!((upper.code, upper.stdout.as_str()), (0, "HELLO BERTH\nSECOND LINE\n"), "{}", upper.stderr);

    let host = ctl(&cluster, &["exec", "pod/shell", "-c", "app", "--", "hostname"]);
    assert_eq!((host.code, host.stdout.as_str()), (0, "shell\n"), "{}", host.stderr);
    // -t without a terminal: kubectl's warning, and the command still runs.
    let tty = ctl(&cluster, &["exec", "-t", "shell", "--", "echo", "ok"]);
    assert_eq!((tty.code, tty.stdout.as_str()), (0, "ok\n"), "{}", tty.stderr);
    assert!(tty.stderr.contains("Unable to use a TTY"), "{}", tty.stderr);

    // A pod no scheduler has placed yet (none runs here) has no kubelet to ask.
    let waiting = Pod {
        metadata: Some(ObjectMeta { name: "waiting".into(), namespace: "default".into(), ..Default::default() }),
        spec: Some(PodSpec { containers: vec![sh("app", "sleep 3600")], ..Default::default() }),
        ..Default::default()
    };
    cluster.client.create(waiting).await.expect("create unscheduled pod");
    let unscheduled = ctl(&cluster, &["exec", "waiting", "--", "true"]);
    assert_eq!(unscheduled.code, 1);
    assert_eq!(unscheduled.stderr.trim_end(), "Error from server (BadRequest): pod \"waiting\" is not scheduled to a node yet");
    let logs = ctl(&cluster, &["logs", "waiting"]);
    assert_eq!(logs.stderr.trim_end(), "Error from server (BadRequest): pod \"waiting\" is not scheduled to a node yet");

    let missing = ctl(&cluster, &["exec", "missing", "--", "true"]);
    assert_eq!((missing.code, missing.stderr.trim_end()), (1, "Error from server (NotFound): pods \"missing\" not found"));
    let no_command = ctl(&cluster, &["exec", "shell"]);
    assert_eq!((no_command.code, no_command.stderr.trim_end()), (1, "error: you must specify at least one command for the container"));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_show_the_usage_of_pods_containers_and_nodes() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("proxy-top", &[]).await;
    // Holds 20 MB in a shell variable for as long as it runs, idly.
    let app = sh("app", "x=$(head -c 20000000 /dev/zero | tr '\\0' a); while true; do sleep 1; done");
    cluster.client.create(pod("holder", &k.node, vec![app])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "holder", "Running", LIMIT, |p| running(p, "app")).await;

    let url = cluster.url();
    let pods = ctl_until(&url, None, &["top", "pods"], "the pod's memory", |r| {
        row(&r.stdout, &["holder"]).is_some_and(|cells| cells.len() == 3 && mebibytes(cells[2]) >= 10)
    })
    .await;
    assert!(pods.stdout.starts_with("NAME ") && pods.stdout.lines().next().is_some_and(|h| h.ends_with("CPU(cores)   MEMORY(bytes)")));
    let cells = row(&pods.stdout, &["holder"]).expect("holder row");
    assert!(cells[1].ends_with('m'), "millicores: {}", pods.stdout);

    let containers = ctl(&cluster, &["top", "pod", "holder", "--containers"]);
    let cells = row(&containers.stdout, &["holder", "app"]).unwrap_or_else(|| panic!("{}{}", containers.stdout, containers.stderr));
    assert!(mebibytes(cells[3]) >= 10, "{}", containers.stdout);
    assert!(containers.stdout.starts_with("POD "), "{}", containers.stdout);

    let everywhere = ctl(&cluster, &["top", "pods", "-A"]);
    assert!(everywhere.stdout.starts_with("NAMESPACE "), "{}", everywhere.stdout);
    assert!(row(&everywhere.stdout, &["default", "holder"]).is_some(), "{}", everywhere.stdout);
    let elsewhere = ctl(&cluster, &["top", "pods", "-n", "kube-system"]);
    assert_eq!((elsewhere.code, elsewhere.stdout.as_str()), (0, ""), "{}", elsewhere.stderr);
    assert_eq!(elsewhere.stderr.trim_end(), "No resources found in kube-system namespace.");

    let nodes = ctl_until(&url, None, &["top", "nodes"], "the node's memory", |r| {
        row(&r.stdout, &[k.node.as_str()]).is_some_and(|cells| cells.len() == 5 && mebibytes(cells[3]) > 0)
    })
    .await;
    assert!(nodes.stdout.starts_with("NAME ") && nodes.stdout.contains("CPU%") && nodes.stdout.contains("MEMORY%"), "{}", nodes.stdout);
    let cells = row(&nodes.stdout, &[k.node.as_str()]).expect("node row");
    assert!(cells[1].ends_with('m') && cells[2].ends_with('%') && cells[4].ends_with('%'), "{}", nodes.stdout);
    let one = ctl(&cluster, &["top", "node", &k.node]);
    assert!(row(&one.stdout, &[k.node.as_str()]).is_some(), "{}{}", one.stdout, one.stderr);

    let missing = ctl(&cluster, &["top", "pods", "missing"]);
    assert_eq!((missing.code, missing.stderr.trim_end()), (1, "Error from server (NotFound): pods \"missing\" not found"));
    let no_node = ctl(&cluster, &["top", "nodes", "no-such-node"]);
    assert_eq!(no_node.stderr.trim_end(), "Error from server (NotFound): nodes \"no-such-node\" not found");
}

/// Kills the apiserver when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const TOKENS: &str = "admin-token,admin,1,\"system:masters\"\nviewer-token,viewer,2,\"viewers\"\n";

const VIEWERS: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: viewers
  namespace: default
subjects:
- kind: Group
  apiGroup: rbac.authorization.k8s.io
  name: viewers
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
"#;

#[tokio::test(flavor = "multi_thread")]
async fn should_let_viewers_read_logs_but_not_exec() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("tokens.csv"), TOKENS).expect("token file");
    let port = free_port();
    let log = std::fs::File::create(tmp.path().join("apiserver.log")).expect("log");
    let _server = Daemon(
        Command::new(bin("berth-apiserver", "berth-apiserver"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(tmp.path().join("data"))
            .arg("--token-auth-file")
            .arg(tmp.path().join("tokens.csv"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth-apiserver"),
    );
    let url = format!("http://127.0.0.1:{port}");
    let admin = wait_for(Duration::from_secs(30), "the apiserver", || {
        let url = url.clone();
        async move {
            let c = Client::connect(&ClientConfig::new(url).with_token("admin-token")).await.ok()?;
            c.list::<Namespace>("", &Default::default()).await.ok().map(|_| c)
        }
    })
    .await;
    // The kubelet acts as an admin here: its node name is only known once it starts.
    let k = Kubelet::start(&url, "proxy-authz", &["--token", "admin-token"]);
    k.wait_ready(&admin).await;
    admin.create(pod("shell", &k.node, vec![sh("app", "echo ready; exec sleep 3600")])).await.expect("create pod");
    wait_pod(&admin, &k, "shell", "Running", LIMIT, |p| running(p, "app")).await;
    let bound = ctl_as(&url, Some("admin-token"), &["apply", "-f", "-"], Some(VIEWERS));
    assert_eq!(bound.code, 0, "{}", bound.stderr);

    let viewer = Some("viewer-token");
    ctl_until(&url, viewer, &["logs", "shell"], "the viewer reading the log", |r| r.stdout == "ready\n").await;
    let exec = ctl_as(&url, viewer, &["exec", "shell", "--", "true"], None);
    assert_eq!(exec.code, 1);
    assert_eq!(
        exec.stderr.trim_end(),
        "Error from server (Forbidden): pods/exec \"shell\" is forbidden: User \"viewer\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"default\""
    );
    // A namespace's viewers see its pods' usage, not the nodes'.
    let nodes = ctl_as(&url, viewer, &["top", "nodes"], None);
    assert_eq!(nodes.code, 1);
    assert!(nodes.stderr.starts_with("Error from server (Forbidden): nodes/stats is forbidden: User \"viewer\""), "{}", nodes.stderr);
    let admin_exec = ctl_as(&url, Some("admin-token"), &["exec", "shell", "--", "sh", "-c", "exit 0"], None);
    assert_eq!(admin_exec.code, 0, "{}", admin_exec.stderr);
}

/// The kubelet's API as someone other than the apiserver would call it,
/// with this client certificate (from the `berthctl certs` directory).
async fn kubelet_as(pki: &std::path::Path, node: &Node, identity: &str) -> Result<(), tonic::Status> {
    let status = node.status.clone().unwrap_or_default();
    let port = status.daemon_endpoints.and_then(|d| d.kubelet_endpoint).map(|e| e.port).expect("kubelet port");
    let read = |f: &str| std::fs::read(pki.join(f)).expect("pki file");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read("ca.crt")))
        .identity(Identity::from_pem(read(&format!("{identity}.crt")), read(&format!("{identity}.key"))));
    let endpoint = Endpoint::from_shared(format!("https://127.0.0.1:{port}")).expect("url").tls_config(tls).expect("tls");
    let channel = endpoint.connect().await.expect("TLS connection to the kubelet");
    KubeletClient::new(channel).stats(StatsRequest::default()).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn should_reach_kubelets_over_tls_with_the_apiservers_client_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path().join("pki");
    let made = Command::new(bin("berthctl", "berthctl"))
        .args(["certs", "--dir"])
        .arg(&pki)
        .args(["--nodes", "tls-node"])
        .output()
        .expect("berthctl certs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let p = |f: &str| pki.join(f).to_str().expect("utf-8 path").to_string();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let api = Apiserver::start(
        &data,
        free_port(),
        &[
            "--kubelet-client-certificate",
            &p("apiserver-kubelet-client.crt"),
            "--kubelet-client-key",
            &p("apiserver-kubelet-client.key"),
            "--kubelet-certificate-authority",
            &p("ca.crt"),
        ],
    )
    .await;
    let client = api.client().await;
    let url = api.url();
    let k = Kubelet::start(
        &url,
        "proxy-tls",
        &["--tls-cert-file", &p("node-tls-node.crt"), "--tls-private-key-file", &p("node-tls-node.key"), "--client-ca-file", &p("ca.crt")],
    );
    let node = k.wait_ready(&client).await;
    client.create(pod("secure", &k.node, vec![sh("app", "echo over tls; exec sleep 3600")])).await.expect("create pod");
    wait_pod(&client, &k, "secure", "Running", LIMIT, |p| running(p, "app")).await;

    ctl_until(&url, None, &["logs", "secure"], "the log over TLS", |r| r.stdout == "over tls\n").await;
    let exec = ctl_as(&url, None, &["exec", "secure", "--", "sh", "-c", "echo hi; exit 4"], None);
    assert_eq!((exec.code, exec.stdout.as_str()), (4, "hi\n"), "{}", exec.stderr);

    // The kubelet serves the apiserver's identity (and other system:masters), no one else.
    kubelet_as(&pki, &node, "admin").await.expect("an admin certificate is served");
    let refused = kubelet_as(&pki, &node, "kube-scheduler").await.expect_err("the scheduler's certificate is refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("system:kube-scheduler") && refused.message().contains("system:masters"), "{refused:?}");
}
