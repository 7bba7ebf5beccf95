//! The harness of the controller-manager's integration tests: a real
//! apiserver in this process on a temporary sled directory, the manager's
//! own `run` with the controllers a test chooses, and bounded polling.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::*;
use berth_client::{Client, ClientConfig, ListParams};
use berth_controller_manager::{Config, Selection};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long any one condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Shows the logs of a failing test (`RUST_LOG` picks what, default `info`).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// An apiserver and a controller-manager, both in this process.
pub struct Cluster {
    pub client: Client,
    pub url: String,
    pub health: std::net::SocketAddr,
    api_stop: Option<oneshot::Sender<()>>,
    api_task: Option<JoinHandle<anyhow::Result<()>>>,
    cm_stop: Option<oneshot::Sender<()>>,
    pub cm_task: Option<JoinHandle<berth_controller_manager::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts both, with the controllers in `controllers` (a `--controllers` value).
    pub async fn start(controllers: &str) -> Cluster {
        Self::start_with(controllers, |_| {}).await
    }

    /// Like [`Cluster::start`], letting the test adjust the manager's config.
    pub async fn start_with(controllers: &str, f: impl FnOnce(&mut Config)) -> Cluster {
        init_logs();
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind apiserver");
        let addr = listener.local_addr().expect("apiserver address");
        let config = berth_apiserver::Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
        let (api_stop, stopped) = oneshot::channel::<()>();
        let api_task = tokio::spawn(berth_apiserver::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let url = format!("http://{addr}");
        let client = connect(&url).await;
        let mut cluster = Cluster {
            client,
            url,
            health: "127.0.0.1:0".parse().expect("addr"),
            api_stop: Some(api_stop),
            api_task: Some(api_task),
            cm_stop: None,
            cm_task: None,
            _dir: dir,
        };
        cluster.start_manager(controllers, f).await;
        cluster
    }

    /// Starts (another) controller-manager against this apiserver.
    pub async fn start_manager(&mut self, controllers: &str, f: impl FnOnce(&mut Config)) {
        let mut config = Config {
            client: ClientConfig::new(self.url.clone()),
            controllers: Selection::parse(controllers).expect("controllers"),
            ..Default::default()
        };
        config.leader.enabled = false;
        config.resync = Duration::from_secs(30);
        f(&mut config);
        let health = TcpListener::bind("127.0.0.1:0").await.expect("bind health");
        self.health = health.local_addr().expect("health address");
        let (stop, stopped) = oneshot::channel::<()>();
        self.cm_stop = Some(stop);
        self.cm_task = Some(tokio::spawn(berth_controller_manager::run(config, health, async move {
            let _ = stopped.await;
        })));
    }

    /// Takes the running manager out of the cluster's hands (so another can
    /// start); the handle stops it later.
    pub fn detach_manager(&mut self) -> Manager {
        Manager { stop: self.cm_stop.take(), task: self.cm_task.take() }
    }

    /// Stops the controller-manager (the apiserver keeps running).
    pub async fn stop_manager(&mut self) {
        if let Some(s) = self.cm_stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.cm_task.take() {
            let _ = tokio::time::timeout(DEADLINE, t).await;
        }
    }

    /// Stops everything cleanly.
    pub async fn stop(mut self) {
        self.stop_manager().await;
        if let Some(s) = self.api_stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.api_task.take() {
            let _ = tokio::time::timeout(DEADLINE, t).await;
        }
    }

    /// GET on the manager's health port.
    pub async fn http_get(&self, path: &str) -> (u16, String) {
        http_get(self.health, path).await
    }
}

/// A manager detached from its cluster.
pub struct Manager {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<berth_controller_manager::Result<()>>>,
}

impl Manager {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(DEADLINE, t).await;
        }
    }
}

/// A minimal HTTP/1.0 GET, returning the status code and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect health");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    let code = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

pub async fn connect(url: &str) -> Client {
    let config = ClientConfig::new(url);
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(c) = Client::connect(&config).await
            && c.list::<Namespace>("", &ListParams::default()).await.is_ok()
        {
            return c;
        }
        assert!(Instant::now() < deadline, "apiserver at {url} did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `check` until it gives Some, failing the test with `what` after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(t) = check().await {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lists `R` in `namespace` with a label selector.
pub async fn list<R: Resource>(client: &Client, namespace: &str, labels: &str) -> Vec<R> {
    client.list::<R>(namespace, &ListParams::default().labels(labels)).await.expect("list").0
}

pub fn meta(name: &str, namespace: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), namespace: namespace.into(), ..Default::default() })
}

pub fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A pod spec with one container.
pub fn pod_spec(image: &str) -> PodSpec {
    PodSpec { containers: vec![Container { name: "app".into(), image: image.into(), ..Default::default() }], ..Default::default() }
}

/// An RC of `replicas` pods labelled `app=<name>`.
pub fn rc(name: &str, namespace: &str, replicas: i32) -> ReplicationController {
    let l = labels(&[("app", name)]);
    ReplicationController {
        metadata: meta(name, namespace),
        spec: Some(ReplicationControllerSpec {
            replicas: Some(replicas),
            selector: l.clone(),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: l, ..Default::default() }),
                spec: Some(pod_spec("busybox:1")),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A namespace of its own for a test.
pub async fn namespace(client: &Client, name: &str) {
    client.create(Namespace { metadata: meta(name, ""), ..Default::default() }).await.expect("create namespace");
}

/// Sets a pod's phase, readiness and IP as a kubelet would.
pub async fn set_pod_status(client: &Client, pod: &Pod, phase: &str, ready: bool, ip: &str) {
    for _ in 0..10 {
        let mut p: Pod = client.get(pod.namespace(), pod.name()).await.expect("get pod");
        let s = p.status.get_or_insert_with(Default::default);
        s.phase = phase.into();
        s.pod_ip = ip.into();
        s.conditions.retain(|c| c.r#type != "Ready");
        s.conditions.push(PodCondition {
            r#type: "Ready".into(),
            status: if ready { "True" } else { "False" }.into(),
            last_transition_time: berth_api::time::now_rfc3339(),
            ..Default::default()
        });
        match client.update_status(p).await {
            Ok(_) => return,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("cannot set pod status: {e}"),
        }
    }
    panic!("cannot set pod status: too many conflicts");
}

/// Confirms the graceful deletion of pods being deleted, as their kubelet would.
pub async fn confirm_deletions(client: &Client, namespace: &str) {
    for p in list::<Pod>(client, namespace, "").await {
        if !p.meta().deletion_timestamp.is_empty() {
            let params = berth_client::DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
            let _ = client.delete::<Pod>(namespace, p.name(), &params).await;
        }
    }
}
