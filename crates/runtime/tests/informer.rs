//! The informer against a real in-process apiserver on a temporary sled directory: convergence, indexes, restarts and compaction.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_api::{ConfigMap, Container, ObjectMeta, Pod, PodSpec, Resource};
use berth_client::{Client, ClientConfig, DeleteParams, ListParams};
use berth_runtime::informer::Informer;
use berth_runtime::reflector::{Reader, key_of};
use berth_runtime::watcher::{self, Backoff, Event};
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long any one condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// Shows the logs of a failing test (`RUST_LOG` picks what, default `info`).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// An apiserver running in this process.
struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Starts an apiserver on `data_dir`, on `addr` (port 0: any free port).
    async fn start(data_dir: &Path, addr: SocketAddr, history: Option<usize>) -> Server {
        let listener = bind(addr).await;
        let addr = listener.local_addr().expect("listener address");
        let mut config = berth_apiserver::Config { data_dir: data_dir.to_path_buf(), ..Default::default() };
        if let Some(h) = history {
            config.history = h;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(berth_apiserver::run(config, listener, async move {
            let _ = stopped.await;
        }));
        Server { addr, stop, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn client(&self) -> Client {
        let config = ClientConfig::new(self.url());
        let deadline = Instant::now() + DEADLINE;
        loop {
            match Client::connect(&config).await {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("waiting for the apiserver: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot connect to the apiserver at {}: {e}", self.addr),
            }
        }
    }

    /// Stops the server through its shutdown future and waits until it has
    /// released its port and data directory.
    async fn stop(self) {
        let _ = self.stop.send(());
        match tokio::time::timeout(DEADLINE, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("apiserver failed: {e:#}"),
            Ok(Err(e)) => panic!("apiserver task panicked: {e}"),
            Err(_) => panic!("apiserver did not stop within {DEADLINE:?} of shutdown (open watch streams must end)"),
        }
    }
}

/// Binds `addr`, retrying while the previous server's socket goes away.
async fn bind(addr: SocketAddr) -> TcpListener {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(e) if Instant::now() < deadline => {
                eprintln!("binding {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot bind {addr}: {e}"),
        }
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn config_map(name: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
        data: BTreeMap::from([("value".to_string(), value.to_string())]),
        ..Default::default()
    }
}

fn pod(name: &str, node: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
        spec: Some(PodSpec {
            node_name: node.into(),
            containers: vec![Container { name: "main".into(), image: "busybox".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn by_node(p: &Pod) -> Vec<String> {
    p.spec.iter().map(|s| s.node_name.clone()).filter(|n| !n.is_empty()).collect()
}

async fn update_value(client: &Client, name: &str, value: &str) {
    let mut cm: ConfigMap = client.get("default", name).await.expect("get");
    cm.data.insert("value".into(), value.into());
    client.update(cm).await.expect("update");
}

async fn delete_now<R: Resource>(client: &Client, name: &str) {
    let params = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
    client.delete::<R>("default", name, &params).await.expect("delete");
}

/// How many times each handler saw each key.
#[derive(Clone, Default)]
struct Counts {
    adds: Arc<Mutex<HashMap<String, usize>>>,
    updates: Arc<Mutex<HashMap<String, usize>>>,
    deletes: Arc<Mutex<HashMap<String, usize>>>,
}

impl Counts {
    fn record<R: Resource>(&self, informer: Informer<R>) -> Informer<R> {
        let (a, u, d) = (self.adds.clone(), self.updates.clone(), self.deletes.clone());
        informer
            .on_add(move |o| *a.lock().unwrap().entry(key_of(&**o)).or_default() += 1)
            .on_update(move |_, o| *u.lock().unwrap().entry(key_of(&**o)).or_default() += 1)
            .on_delete(move |o| *d.lock().unwrap().entry(key_of(&**o)).or_default() += 1)
    }

    fn adds(&self) -> BTreeMap<String, usize> {
        self.adds.lock().unwrap().clone().into_iter().collect()
    }

    fn deletes(&self) -> BTreeMap<String, usize> {
        self.deletes.lock().unwrap().clone().into_iter().collect()
    }
}

fn once(keys: &[&str]) -> BTreeMap<String, usize> {
    keys.iter().map(|k| (format!("default/{k}"), 1)).collect()
}

/// Runs an informer until the returned sender is dropped or fired.
fn spawn_informer<R: Resource>(informer: Informer<R>) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(informer.run(async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

async fn stop_informer((stop, task): (oneshot::Sender<()>, JoinHandle<()>)) {
    let _ = stop.send(());
    tokio::time::timeout(DEADLINE, task).await.expect("informer stops on shutdown").expect("informer task");
}

/// key → resourceVersion of a reader's cache.
fn cached<R: Resource>(reader: &Reader<R>) -> BTreeMap<String, String> {
    reader.list().iter().map(|o| (key_of(&**o), o.meta().resource_version.clone())).collect()
}

/// key → resourceVersion of the server's objects.
async fn listed<R: Resource>(client: &Client) -> BTreeMap<String, String> {
    let (items, _) = client.list::<R>("default", &ListParams::default()).await.expect("list");
    items.iter().map(|o| (key_of(o), o.meta().resource_version.clone())).collect()
}

/// Waits until the cache holds exactly the server's objects at the server's versions.
async fn converge<R: Resource>(client: &Client, reader: &Reader<R>) -> BTreeMap<String, String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let want = listed::<R>(client).await;
        let have = cached(reader);
        if want == have {
            return have;
        }
        assert!(Instant::now() < deadline, "cache did not converge:\n  server: {want:?}\n  cache:  {have:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `cond` until it holds, failing after the deadline.
async fn eventually<F: Fn() -> Fut, Fut: Future<Output = bool>>(what: &str, cond: F) {
    let deadline = Instant::now() + DEADLINE;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_backoff() -> Backoff {
    Backoff::new(Duration::from_millis(20), Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread")]
async fn should_converge_to_server_objects_after_creates_updates_deletes() {
    init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), any_port(), None).await;
    let client = server.client().await;
    for name in ["a", "b", "c"] {
        client.create(config_map(name, "1")).await.expect("create");
    }

    let counts = Counts::default();
    let informer = counts.record(Informer::<ConfigMap>::new(client.clone(), "default", ListParams::default()));
    let reader = informer.reader();
    let running = spawn_informer(informer);
    tokio::time::timeout(DEADLINE, reader.wait_until_ready()).await.expect("ready in time").expect("ready");
    assert_eq!(converge(&client, &reader).await.len(), 3);

    for name in ["d", "e"] {
        client.create(config_map(name, "1")).await.expect("create");
    }
    update_value(&client, "a", "2").await;
    update_value(&client, "d", "2").await;
    delete_now::<ConfigMap>(&client, "b").await;
    delete_now::<ConfigMap>(&client, "e").await;

    let have = converge(&client, &reader).await;
    assert_eq!(have.keys().cloned().collect::<Vec<_>>(), vec!["default/a", "default/c", "default/d"]);
    let a = reader.get("default", "a").expect("a cached");
    assert_eq!(a.data.get("value").map(String::as_str), Some("2"));
    eventually("every delete is announced", || async { counts.deletes() == once(&["b", "e"]) }).await;
    assert_eq!(counts.adds(), once(&["a", "b", "c", "d", "e"]));

    stop_informer(running).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_index_pods_by_node_name() {
    init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), any_port(), None).await;
    let client = server.client().await;
    client.create(pod("p1", "n1")).await.expect("create p1");
    client.create(pod("p2", "")).await.expect("create p2");

    let informer = Informer::<Pod>::new(client.clone(), "", ListParams::default()).with_index("node", by_node);
    let reader = informer.reader();
    let running = spawn_informer(informer);
    tokio::time::timeout(DEADLINE, reader.wait_until_ready()).await.expect("ready in time").expect("ready");

    client.create(pod("p3", "n1")).await.expect("create p3");
    client.create(pod("p4", "n2")).await.expect("create p4");
    client.bind("default", "p2", "n2").await.expect("bind p2");
    converge(&client, &reader).await;
    assert_eq!(reader.keys_by_index("node", "n1"), vec!["default/p1", "default/p3"]);
    assert_eq!(reader.keys_by_index("node", "n2"), vec!["default/p2", "default/p4"]);
    let on_n2 = reader.by_index("node", "n2");
    assert!(on_n2.iter().all(|p| p.spec.as_ref().is_some_and(|s| s.node_name == "n2")));

    delete_now::<Pod>(&client, "p1").await;
    delete_now::<Pod>(&client, "p4").await;
    converge(&client, &reader).await;
    assert_eq!(reader.keys_by_index("node", "n1"), vec!["default/p3"]);
    assert_eq!(reader.keys_by_index("node", "n2"), vec!["default/p2"]);

    stop_informer(running).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_reconnect_after_apiserver_restart_without_duplicate_adds() {
    init_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), any_port(), None).await;
    let addr = server.addr;
    let client = server.client().await;
    for name in ["x1", "x2", "x3"] {
        client.create(config_map(name, "1")).await.expect("create");
    }

    let counts = Counts::default();
    let informer = counts.record(Informer::<ConfigMap>::new(client.clone(), "default", ListParams::default())).with_backoff(fast_backoff());
    let reader = informer.reader();
    let running = spawn_informer(informer);
    tokio::time::timeout(DEADLINE, reader.wait_until_ready()).await.expect("ready in time").expect("ready");
    client.create(config_map("x4", "1")).await.expect("create");
    converge(&client, &reader).await;

    // Restart on the same data directory and port; the informer keeps its client.
    server.stop().await;
    let server = Server::start(dir.path(), addr, None).await;
    let admin = server.client().await;
    update_value(&admin, "x1", "2").await;
    delete_now::<ConfigMap>(&admin, "x2").await;
    admin.create(config_map("y1", "1")).await.expect("create");

    let have = converge(&admin, &reader).await;
    assert_eq!(have.keys().cloned().collect::<Vec<_>>(), vec!["default/x1", "default/x3", "default/x4", "default/y1"]);
    eventually("the delete is announced", || async { counts.deletes() == once(&["x2"]) }).await;
    assert_eq!(counts.adds(), once(&["x1", "x2", "x3", "x4", "y1"]), "each object is announced as added once");

    // Another restart with nothing changed in between: nothing is re-announced.
    server.stop().await;
    let server = Server::start(dir.path(), addr, None).await;
    let admin = server.client().await;
    admin.create(config_map("y2", "1")).await.expect("create");
    converge(&admin, &reader).await;
    assert_eq!(counts.adds(), once(&["x1", "x2", "x3", "x4", "y1", "y2"]));
    assert_eq!(counts.deletes(), once(&["x2"]));

    stop_informer(running).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_relist_and_converge_when_watch_revision_is_compacted() {
    init_logs();
    const HISTORY: usize = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path(), any_port(), Some(HISTORY)).await;
    let addr = server.addr;
    let client = server.client().await;
    for name in ["k1", "k2", "k3"] {
        client.create(config_map(name, "1")).await.expect("create");
    }

    let counts = Counts::default();
    let informer = counts.record(Informer::<ConfigMap>::new(client.clone(), "default", ListParams::default())).with_backoff(fast_backoff());
    let reader = informer.reader();
    let running = spawn_informer(informer);

    // A bare watcher beside the informer, to see the relist happen.
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let watching = tokio::spawn({
        let seen = seen.clone();
        let mut events = watcher::watcher_with_backoff::<ConfigMap>(client.clone(), "default", ListParams::default(), fast_backoff());
        async move {
            while let Some(e) = events.next().await {
                let e = match e {
                    Ok(Event::Init) => "init",
                    Ok(Event::InitDone) => "init-done",
                    Err(watcher::Error::TooOld { .. }) => "too-old",
                    _ => continue,
                };
                seen.lock().unwrap().push(e.to_string());
            }
        }
    });

    tokio::time::timeout(DEADLINE, reader.wait_until_ready()).await.expect("ready in time").expect("ready");
    converge(&client, &reader).await;
    eventually("the watcher has listed", || async { seen.lock().unwrap().contains(&"init-done".to_string()) }).await;

    // While the informer cannot reach its server, another server on the same
    // data writes more changes than the history keeps.
    server.stop().await;
    let other = Server::start(dir.path(), any_port(), Some(HISTORY)).await;
    let admin = other.client().await;
    for i in 0..(2 * HISTORY) {
        update_value(&admin, "k1", &format!("{}", i + 2)).await;
    }
    delete_now::<ConfigMap>(&admin, "k2").await;
    admin.create(config_map("k4", "1")).await.expect("create");
    other.stop().await;

    // Back on the informer's address: its revision is compacted away.
    let server = Server::start(dir.path(), addr, Some(HISTORY)).await;
    let admin = server.client().await;
    let have = converge(&admin, &reader).await;
    assert_eq!(have.keys().cloned().collect::<Vec<_>>(), vec!["default/k1", "default/k3", "default/k4"]);
    let k1 = reader.get("default", "k1").expect("k1 cached");
    assert_eq!(k1.data.get("value").map(String::as_str), Some(format!("{}", 2 * HISTORY + 1).as_str()));
    eventually("the watcher relists", || async {
        let seen = seen.lock().unwrap();
        let after = seen.iter().skip_while(|e| *e != "too-old").collect::<Vec<_>>();
        after.contains(&&"init".to_string()) && after.contains(&&"init-done".to_string())
    })
    .await;
    eventually("the delete is announced", || async { counts.deletes() == once(&["k2"]) }).await;
    assert_eq!(counts.adds(), once(&["k1", "k2", "k3", "k4"]), "the relist adds only what is new");

    watching.abort();
    stop_informer(running).await;
    server.stop().await;
}
