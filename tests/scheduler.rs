//! berth-scheduler as a real process: two instances run active/standby
//! through the Lease, and the standby takes over when the leader is killed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_api::pb::core::*;
use berth_client::Client;
use berth_e2e::{Apiserver, bin, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A berth-scheduler process; killed when dropped.
struct Scheduler {
    child: Child,
    health: SocketAddr,
}

impl Scheduler {
    fn start(server: &str, dir: &Path, name: &str) -> Scheduler {
        let health: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(bin("berth-scheduler", "berth-scheduler"))
            .args(["--server", server, "--health-listen", &health.to_string()])
            // Short lease timings keep the takeover quick; the semantics are the same.
            .args(["--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "500ms"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth-scheduler");
        Scheduler { child, health }
    }

    /// Whether this instance says it leads (None while it does not answer).
    async fn is_leader(&self) -> Option<bool> {
        let metrics = http_get(self.health, "/metrics").await?;
        let line = metrics.lines().find(|l| l.starts_with("berth_scheduler_is_leader "))?;
        Some(line.ends_with(" 1"))
    }

    fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.kill_9();
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn node(name: &str) -> Node {
    let resources = map(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]);
    Node {
        metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
        status: Some(NodeStatus {
            capacity: resources.clone(),
            allocatable: resources,
            conditions: vec![NodeCondition { r#type: "Ready".into(), status: "True".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: "busybox".into(),
                resources: Some(ResourceRequirements { requests: map(&[("cpu", "100m"), ("memory", "64Mi")]), ..Default::default() }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn wait_bound(c: &Client, name: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let p: Pod = c.get("default", name).await.expect("get pod");
        let node = p.spec.map(|s| s.node_name).unwrap_or_default();
        if !node.is_empty() {
            return node;
        }
        assert!(Instant::now() < deadline, "pod {name} was not bound within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until exactly one of `schedulers` leads; returns its index.
async fn wait_one_leader(schedulers: &[&Scheduler], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let mut leaders = Vec::new();
        for (i, s) in schedulers.iter().enumerate() {
            if s.is_leader().await == Some(true) {
                leaders.push(i);
            }
        }
        assert!(leaders.len() <= 1, "two schedulers lead at once: {leaders:?}");
        if let [one] = leaders.as_slice() {
            return *one;
        }
        assert!(Instant::now() < deadline, "no scheduler became leader within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_let_the_standby_take_over_when_the_leader_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Apiserver::start(&dir.path().join("data"), free_port(), &[]).await;
    let client = api.client().await;
    client.create(node("node-1")).await.expect("create node");

    let mut a = Scheduler::start(&api.url(), dir.path(), "scheduler-a");
    let mut b = Scheduler::start(&api.url(), dir.path(), "scheduler-b");
    let first = wait_one_leader(&[&a, &b], Duration::from_secs(60)).await;
    client.create(pod("before")).await.expect("create pod");
    assert_eq!(wait_bound(&client, "before", Duration::from_secs(30)).await, "node-1");
    // The standby stays standby while the leader renews.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(wait_one_leader(&[&a, &b], Duration::from_secs(5)).await, first);

    let (leader, standby) = if first == 0 { (&mut a, &b) } else { (&mut b, &a) };
    leader.kill_9();
    client.create(pod("after")).await.expect("create pod");
    // Lease of 3 s, retries every 500 ms: well within 30 s, even on a busy machine.
    assert_eq!(wait_bound(&client, "after", Duration::from_secs(30)).await, "node-1");
    assert_eq!(standby.is_leader().await, Some(true), "the standby leads now");
}
