//! Shared by the kubelet's end-to-end tests: a real apiserver and real
//! `berth-kubelet` processes on the real Docker engine, each kubelet with a
//! unique node name and its own /24 of the cluster network, so that test
//! binaries and tests run in parallel without touching each other's
//! containers. Every container a test's kubelet started is removed when the
//! test's `Kubelet` is dropped, even when the test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use berth_api::Resource;
use berth_api::pb::core::{Container, Node, ObjectMeta, Pod, PodSpec};
use berth_client::{Client, ListParams};
use berth_e2e::{Apiserver, bin, free_port};

/// The image pods run (built by deploy/test-image.sh).
pub const IMAGE: &str = "berth/busybox:1";

/// Builds the test images once per process (the script is idempotent and locked).
pub fn ensure_test_image() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/test-image.sh");
        let out = Command::new("bash").arg(&script).output().expect("run deploy/test-image.sh");
        assert!(out.status.success(), "deploy/test-image.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    });
}

/// A /24 of 172.30.0.0/16 held by this process until dropped: a lock file
/// per slice, taken over when the process that held it is gone.
pub struct CidrLease {
    pub cidr: String,
    file: PathBuf,
}

impl CidrLease {
    pub fn take() -> CidrLease {
        let dir = std::env::temp_dir().join("berth-kubelet-test-cidrs");
        std::fs::create_dir_all(&dir).expect("cidr lock dir");
        let me = std::process::id().to_string();
        // 172.30.0.0/24 holds the bridge's gateway: start at 10; leave the
        // top of the range to developers' local clusters.
        for third in 10..200u32 {
            let file = dir.join(format!("{third}"));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&file) {
                Ok(_) => {
                    std::fs::write(&file, &me).expect("write cidr lock");
                    return CidrLease { cidr: format!("172.30.{third}.0/24"), file };
                }
                Err(_) => {
                    let holder = std::fs::read_to_string(&file).unwrap_or_default();
                    let alive = !holder.is_empty() && Path::new(&format!("/proc/{}", holder.trim())).exists();
                    if !alive
                        && std::fs::remove_file(&file).is_ok()
                        && std::fs::OpenOptions::new().write(true).create_new(true).open(&file).is_ok()
                    {
                        std::fs::write(&file, &me).expect("write cidr lock");
                        return CidrLease { cidr: format!("172.30.{third}.0/24"), file };
                    }
                }
            }
        }
        panic!("no free /24 for a test kubelet");
    }
}

impl Drop for CidrLease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// A unique node name for a test: `kt-<what>-<pid>-<n>`.
pub fn node_name(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("kt-{what}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// Removes every container (running or not) a node's kubelet started.
pub fn remove_node_containers(node: &str) {
    let out = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=berth.io/node={node}")]).output();
    if let Ok(out) = out {
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
        if !ids.is_empty() {
            let _ = Command::new("docker").arg("rm").arg("-f").args(&ids).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// The containers (running or not) of a node, as `docker ps` names them.
pub fn node_containers(node: &str, all: bool) -> Vec<String> {
    let mut args = vec!["ps", "--format", "{{.Names}}"];
    if all {
        args.push("-a");
    }
    let filter = format!("label=berth.io/node={node}");
    args.extend(["--filter", &filter]);
    let out = Command::new("docker").args(&args).output().expect("docker ps");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// A berth-kubelet process; killed when dropped, and its containers removed.
pub struct Kubelet {
    child: Option<Child>,
    pub node: String,
    pub cidr: CidrLease,
    pub root: tempfile::TempDir,
    pub log: PathBuf,
    /// The port of `--health-listen` (/readyz, /metrics) on 127.0.0.1.
    pub health: u16,
    server: String,
    extra: Vec<String>,
}

impl Kubelet {
    /// Starts a kubelet for a new unique node against `server`.
    pub fn start(server: &str, what: &str, extra: &[&str]) -> Kubelet {
        ensure_test_image();
        let node = node_name(what);
        // Leftovers of an earlier run that had the same process id.
        remove_node_containers(&node);
        let root = tempfile::tempdir().expect("kubelet root dir");
        let log = root.path().with_extension("kubelet.log");
        let mut k = Kubelet {
            child: None,
            node,
            cidr: CidrLease::take(),
            root,
            log,
            health: free_port(),
            server: server.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        k.spawn();
        k
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("kubelet log");
        let child = Command::new(bin("berth-kubelet", "berth-kubelet"))
            .args(["--server", &self.server, "--node-name", &self.node, "--pod-cidr", &self.cidr.cidr])
            .arg("--root-dir")
            .arg(self.root.path())
            .args(["--health-listen", &format!("127.0.0.1:{}", self.health), "--port", "0"])
            .args(["--node-status-update-frequency", "1s", "--housekeeping-interval", "1s", "--sync-frequency", "2s"])
            .args(&self.extra)
            .env("RUST_LOG", "info,berth_kubelet=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth-kubelet");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to clean up (its containers keep running).
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the kubelet again with the same node, root and podCIDR.
    pub fn restart(&mut self) {
        self.kill_9();
        self.spawn();
    }

    /// The kubelet's log so far (for failure messages).
    pub fn logs(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Waits until the node reports Ready.
    pub async fn wait_ready(&self, client: &Client) -> Node {
        let node = self.node.clone();
        wait_for(Duration::from_secs(60), &format!("node {node} Ready\n{}", self.logs()), || {
            let (client, node) = (client.clone(), node.clone());
            async move {
                let n = client.get::<Node>("", &node).await.ok()?;
                let ready = n.status.as_ref()?.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True");
                ready.then_some(n)
            }
        })
        .await
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.kill_9();
        remove_node_containers(&self.node);
        if std::thread::panicking() {
            eprintln!("--- kubelet {} log ---\n{}", self.node, self.logs());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// An apiserver on a temporary directory.
pub struct Cluster {
    pub api: Apiserver,
    pub client: Client,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data");
        std::fs::create_dir_all(&dir).expect("data dir");
        let api = Apiserver::start(&dir, free_port(), &[]).await;
        let client = api.client().await;
        Cluster { api, client, _tmp: tmp }
    }

    pub fn url(&self) -> String {
        self.api.url()
    }

    /// A kubelet registered and Ready.
    pub async fn kubelet(&self, what: &str, extra: &[&str]) -> Kubelet {
        let k = Kubelet::start(&self.url(), what, extra);
        k.wait_ready(&self.client).await;
        k
    }
}

/// Polls `f` until it gives a value, or panics with `what` after `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A container running `sh -c script` in the test image.
pub fn sh(name: &str, script: &str) -> Container {
    Container { name: name.into(), image: IMAGE.into(), command: vec!["sh".into(), "-c".into(), script.into()], ..Default::default() }
}

/// A pod bound to `node` (no scheduler needed).
pub fn pod(name: &str, node: &str, containers: Vec<Container>) -> Pod {
    Pod {
        metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
        spec: Some(PodSpec { node_name: node.into(), containers, termination_grace_period_seconds: Some(2), ..Default::default() }),
        ..Default::default()
    }
}

/// Waits until the pod satisfies `f`, returning it.
pub async fn wait_pod(client: &Client, k: &Kubelet, name: &str, what: &str, limit: Duration, f: impl Fn(&Pod) -> bool) -> Pod {
    let mut last = None;
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(p) = client.get::<Pod>("default", name).await {
            if f(&p) {
                return p;
            }
            last = Some(p);
        }
        if Instant::now() >= deadline {
            let status = last.and_then(|p| p.status).map(|s| format!("{s:#?}")).unwrap_or_default();
            panic!("timed out after {limit:?} waiting for pod {name}: {what}\nlast status: {status}\n--- kubelet log ---\n{}", k.logs());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn phase(p: &Pod) -> &str {
    p.status.as_ref().map(|s| s.phase.as_str()).unwrap_or("")
}

pub fn condition(p: &Pod, kind: &str) -> bool {
    p.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.r#type == kind && c.status == "True"))
}

/// The status of one container of the pod.
pub fn container_status<'a>(p: &'a Pod, name: &str) -> Option<&'a berth_api::pb::core::ContainerStatus> {
    p.status.as_ref()?.container_statuses.iter().find(|c| c.name == name)
}

pub fn waiting_reason(p: &Pod, name: &str) -> String {
    container_status(p, name).and_then(|c| c.state.as_ref()).and_then(|s| s.waiting.as_ref()).map(|w| w.reason.clone()).unwrap_or_default()
}

pub fn running(p: &Pod, name: &str) -> bool {
    container_status(p, name).and_then(|c| c.state.as_ref()).is_some_and(|s| s.running.is_some())
}

pub fn restarts(p: &Pod, name: &str) -> i32 {
    container_status(p, name).map(|c| c.restart_count).unwrap_or(0)
}

/// Runs a command in a running container of the node (through Docker,
/// to check from outside what a pod sees).
pub fn docker_exec(node: &str, pod: &str, container: &str, cmd: &[&str]) -> (i32, String) {
    let names = node_containers(node, false);
    let prefix = format!("berth_{node}_default_{pod}_{container}_");
    let mut candidates: Vec<&String> = names.iter().filter(|n| n.starts_with(&prefix)).collect();
    candidates.sort();
    let Some(name) = candidates.last() else { return (-1, format!("no running container {prefix}*")) };
    let out = Command::new("docker").arg("exec").arg(name.as_str()).args(cmd).output().expect("docker exec");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// Lists the node's pods.
pub async fn pods_on(client: &Client, node: &str) -> Vec<Pod> {
    client.list::<Pod>("", &ListParams::default().fields(format!("spec.nodeName={node}"))).await.map(|(p, _)| p).unwrap_or_default()
}

pub fn name_of(p: &Pod) -> &str {
    p.name()
}
