//! The scheduler against a real apiserver (in-process, on a temporary sled
//! directory): where pods land, what a pod that fits nowhere shows, and that
//! nodes are never overcommitted.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use berth_api::pb::core::*;
use berth_client::{Client, ClientConfig, ListParams};
use berth_scheduler::config::Profile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const WAIT: Duration = Duration::from_secs(30);

/// An apiserver and a scheduler, both in this process; stopped when dropped.
struct Cluster {
    client: Client,
    client_config: ClientConfig,
    health: Option<std::net::SocketAddr>,
    stops: Vec<oneshot::Sender<()>>,
    scheduler: Option<JoinHandle<berth_scheduler::Result<()>>>,
    _api: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// An apiserver and a scheduler with the default profile.
    async fn start() -> Cluster {
        let mut cluster = Cluster::apiserver().await;
        cluster.start_scheduler(Profile::default()).await;
        cluster
    }

    /// Only the apiserver: objects created now are in the scheduler's
    /// caches as soon as it is ready.
    async fn apiserver() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = berth_apiserver::Config { data_dir: dir.path().to_path_buf(), ..Default::default() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (api_stop, api_stopped) = oneshot::channel::<()>();
        let api = tokio::spawn(berth_apiserver::run(config, listener, async move {
            let _ = api_stopped.await;
        }));
        let client_config = ClientConfig::new(format!("http://{addr}"));
        let client = connect(&client_config).await;
        Cluster { client, client_config, health: None, stops: vec![api_stop], scheduler: None, _api: api, _dir: dir }
    }

    /// Starts the scheduler and waits until it is ready (caches synced).
    async fn start_scheduler(&mut self, profile: Profile) {
        let health = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind health");
        self.health = Some(health.local_addr().expect("health addr"));
        let (sched_stop, sched_stopped) = oneshot::channel::<()>();
        let config = berth_scheduler::Config { profile, ..berth_scheduler::Config::new(self.client_config.clone()) };
        self.scheduler = Some(tokio::spawn(berth_scheduler::run(config, health, async move {
            let _ = sched_stopped.await;
        })));
        self.stops.insert(0, sched_stop);
        self.wait_ready().await;
    }

    fn health(&self) -> std::net::SocketAddr {
        self.health.expect("scheduler started")
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + WAIT;
        while !http_get(self.health(), "/readyz").await.is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
            assert!(Instant::now() < deadline, "the scheduler did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the scheduler cleanly and says how it ended.
    async fn stop_scheduler(&mut self) -> berth_scheduler::Result<()> {
        let _ = self.stops.remove(0).send(());
        self.scheduler.take().expect("running").await.expect("scheduler task")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
    }
}

async fn connect(config: &ClientConfig) -> Client {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(c) = Client::connect(config).await
            && c.list::<Namespace>("", &ListParams::default()).await.is_ok()
        {
            return c;
        }
        assert!(Instant::now() < deadline, "apiserver did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A plain HTTP/1.1 GET; the whole response, or None if nothing answers.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn node(name: &str, cpu: &str, memory: &str) -> Node {
    Node {
        metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }),
        spec: Some(NodeSpec::default()),
        status: Some(NodeStatus {
            capacity: map(&[("cpu", cpu), ("memory", memory), ("pods", "110")]),
            allocatable: map(&[("cpu", cpu), ("memory", memory), ("pods", "110")]),
            conditions: vec![NodeCondition { r#type: "Ready".into(), status: "True".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod(name: &str, cpu: &str, memory: &str) -> Pod {
    Pod {
        metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: "busybox".into(),
                resources: Some(ResourceRequirements { requests: map(&[("cpu", cpu), ("memory", memory)]), ..Default::default() }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn with_spec(mut p: Pod, f: impl FnOnce(&mut PodSpec)) -> Pod {
    f(p.spec.get_or_insert_with(Default::default));
    p
}

fn labelled(mut p: Pod, labels: &[(&str, &str)]) -> Pod {
    p.metadata.get_or_insert_with(Default::default).labels = map(labels);
    p
}

async fn create_nodes(c: &Client, nodes: Vec<Node>) {
    for n in nodes {
        c.create(n).await.expect("create node");
    }
}

/// Waits until the pod has a node and returns it.
async fn bound_node(c: &Client, name: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let p: Pod = c.get("default", name).await.expect("get pod");
        let node = p.spec.as_ref().map(|s| s.node_name.clone()).unwrap_or_default();
        if !node.is_empty() {
            return node;
        }
        assert!(Instant::now() < deadline, "pod {name} was not bound");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `name` has a PodScheduled=False Unschedulable condition
/// and a FailedScheduling Warning event, both saying `message`. (A pod can
/// first fail for another reason, e.g. when the scheduler hears of it before
/// of the nodes; it is retried when they arrive.)
async fn wait_unschedulable(c: &Client, name: &str, message: &str) {
    let deadline = Instant::now() + WAIT;
    let mut seen = String::new();
    loop {
        let p: Pod = c.get("default", name).await.expect("get pod");
        assert!(p.spec.as_ref().is_some_and(|s| s.node_name.is_empty()), "pod {name} was bound");
        let condition = p.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.r#type == "PodScheduled").cloned());
        let (events, _) = c.list::<Event>("default", &ListParams::default()).await.expect("list events");
        let event = events
            .into_iter()
            .find(|e| e.reason == "FailedScheduling" && e.message == message && e.involved_object.as_ref().is_some_and(|o| o.name == name));
        if let Some(cond) = condition {
            seen = format!("{} {} {:?}", cond.status, cond.reason, cond.message);
            if cond.status == "False"
                && cond.reason == "Unschedulable"
                && cond.message == message
                && let Some(e) = event
            {
                assert_eq!(e.r#type, "Warning");
                return;
            }
        }
        assert!(Instant::now() < deadline, "pod {name} did not get condition and event {message:?}; last condition: {seen}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_bind_a_pod_to_the_only_node_it_fits() {
    let cluster = Cluster::start().await;
    let c = &cluster.client;
    create_nodes(c, vec![node("small-1", "1", "2Gi"), node("small-2", "2", "2Gi"), node("big", "8", "32Gi")]).await;
    c.create(pod("needs-4-cpus", "4", "1Gi")).await.unwrap();
    c.create(pod("needs-16-gib", "100m", "16Gi")).await.unwrap();
    assert_eq!(bound_node(c, "needs-4-cpus").await, "big");
    assert_eq!(bound_node(c, "needs-16-gib").await, "big");
    let p: Pod = c.get("default", "needs-4-cpus").await.unwrap();
    let scheduled = p.status.unwrap().conditions.into_iter().find(|c| c.r#type == "PodScheduled").unwrap();
    assert_eq!(scheduled.status, "True");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_skip_a_cordoned_node() {
    let cluster = Cluster::start().await;
    let c = &cluster.client;
    let mut cordoned = node("cordoned", "16", "64Gi");
    cordoned.spec.as_mut().unwrap().unschedulable = Some(true);
    create_nodes(c, vec![cordoned, node("open", "2", "4Gi")]).await;
    for i in 0..5 {
        c.create(pod(&format!("p{i}"), "100m", "64Mi")).await.unwrap();
    }
    for i in 0..5 {
        assert_eq!(bound_node(c, &format!("p{i}")).await, "open");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_keep_pods_off_tainted_nodes_unless_they_tolerate_the_taint() {
    let cluster = Cluster::start().await;
    let c = &cluster.client;
    let mut db = node("db", "8", "16Gi");
    db.spec.as_mut().unwrap().taints =
        vec![Taint { key: "dedicated".into(), value: "db".into(), effect: "NoSchedule".into(), ..Default::default() }];
    create_nodes(c, vec![db]).await;

    c.create(pod("web", "100m", "64Mi")).await.unwrap();
    wait_unschedulable(c, "web", "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}.").await;

    let tolerant = with_spec(pod("postgres", "100m", "64Mi"), |s| {
        s.tolerations = vec![Toleration {
            key: "dedicated".into(),
            operator: "Equal".into(),
            value: "db".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        }];
    });
    c.create(tolerant).await.unwrap();
    assert_eq!(bound_node(c, "postgres").await, "db");

    // Once an untainted node exists, the intolerant pod goes there.
    create_nodes(c, vec![node("plain", "2", "4Gi")]).await;
    assert_eq!(bound_node(c, "web").await, "plain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_follow_node_selectors_and_node_affinity() {
    let cluster = Cluster::start().await;
    let c = &cluster.client;
    let labelled_node = |name: &str, labels: &[(&str, &str)]| {
        let mut n = node(name, "4", "8Gi");
        n.metadata.as_mut().unwrap().labels = map(labels);
        n
    };
    create_nodes(
        c,
        vec![
            labelled_node("ssd-a", &[("disk", "ssd"), ("zone", "a"), ("cores", "4")]),
            labelled_node("hdd-b", &[("disk", "hdd"), ("zone", "b"), ("cores", "8")]),
            labelled_node("ssd-c", &[("disk", "ssd"), ("zone", "c"), ("cores", "16")]),
        ],
    )
    .await;

    c.create(with_spec(pod("on-hdd", "100m", "64Mi"), |s| s.node_selector = map(&[("disk", "hdd")]))).await.unwrap();
    let req = |key: &str, op: &str, values: &[&str]| NodeSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    };
    let required = |terms: Vec<Vec<NodeSelectorRequirement>>| {
        Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms
                        .into_iter()
                        .map(|e| NodeSelectorTerm { match_expressions: e, match_fields: vec![] })
                        .collect(),
                }),
                ..Default::default()
            }),
        })
    };
    // ssd, not zone a, more than 8 cores: only ssd-c.
    c.create(with_spec(pod("ssd-big", "100m", "64Mi"), |s| {
        s.affinity = required(vec![vec![req("disk", "In", &["ssd"]), req("zone", "NotIn", &["a"]), req("cores", "Gt", &["8"])]]);
    }))
    .await
    .unwrap();
    // Fewer than 8 cores, and a zone label: only ssd-a.
    c.create(with_spec(pod("small-zoned", "100m", "64Mi"), |s| {
        s.affinity = required(vec![vec![req("cores", "Lt", &["8"]), req("zone", "Exists", &[])]]);
    }))
    .await
    .unwrap();
    // No gpu label anywhere, and not ssd: only hdd-b.
    c.create(with_spec(pod("no-gpu", "100m", "64Mi"), |s| {
        s.affinity = required(vec![vec![req("gpu", "DoesNotExist", &[]), req("disk", "NotIn", &["ssd"])]]);
    }))
    .await
    .unwrap();
    // Matches nothing: waits.
    c.create(with_spec(pod("nowhere", "100m", "64Mi"), |s| {
        s.affinity = required(vec![vec![req("disk", "In", &["nvme"])]]);
    }))
    .await
    .unwrap();

    assert_eq!(bound_node(c, "on-hdd").await, "hdd-b");
    assert_eq!(bound_node(c, "ssd-big").await, "ssd-c");
    assert_eq!(bound_node(c, "small-zoned").await, "ssd-a");
    assert_eq!(bound_node(c, "no-gpu").await, "hdd-b");
    wait_unschedulable(c, "nowhere", "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_spread_the_pods_of_a_replication_controller_over_nodes() {
    let mut cluster = Cluster::apiserver().await;
    let c = cluster.client.clone();
    let c = &c;
    // One node is far bigger: without spreading, least-allocated would put every pod there.
    create_nodes(c, vec![node("huge", "64", "256Gi"), node("small-1", "4", "16Gi"), node("small-2", "4", "16Gi")]).await;
    let template = labelled(pod("template", "100m", "128Mi"), &[("app", "web")]);
    let rc = ReplicationController {
        metadata: Some(ObjectMeta { name: "web".into(), namespace: "default".into(), ..Default::default() }),
        spec: Some(ReplicationControllerSpec {
            replicas: Some(6),
            selector: map(&[("app", "web")]),
            template: Some(PodTemplateSpec { metadata: template.metadata.clone(), spec: template.spec.clone() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.create(rc).await.unwrap();
    cluster.start_scheduler(Profile::default()).await;
    for i in 0..6 {
        c.create(labelled(pod(&format!("web-{i}"), "100m", "128Mi"), &[("app", "web")])).await.unwrap();
    }
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for i in 0..6 {
        *per_node.entry(bound_node(c, &format!("web-{i}")).await).or_default() += 1;
    }
    assert_eq!(per_node.len(), 3, "every node got some: {per_node:?}");
    assert!(per_node.values().all(|n| *n == 2), "two pods on each node: {per_node:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_report_a_pod_that_fits_nowhere_then_schedule_it_when_a_big_node_appears() {
    let cluster = Cluster::start().await;
    let c = &cluster.client;
    let mut db = node("db", "16", "64Gi");
    db.spec.as_mut().unwrap().taints =
        vec![Taint { key: "dedicated".into(), value: "db".into(), effect: "NoSchedule".into(), ..Default::default() }];
    create_nodes(c, vec![node("small-1", "1", "4Gi"), node("small-2", "2", "4Gi"), db]).await;
    c.create(pod("big-job", "4", "1Gi")).await.unwrap();
    wait_unschedulable(c, "big-job", "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: db}.").await;

    create_nodes(c, vec![node("big", "8", "16Gi")]).await;
    assert_eq!(bound_node(c, "big-job").await, "big");
    let p: Pod = c.get("default", "big-job").await.unwrap();
    let scheduled = p.status.unwrap().conditions.into_iter().find(|c| c.r#type == "PodScheduled").unwrap();
    assert_eq!(scheduled.status, "True");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_never_overcommit_a_node_when_500_pods_arrive_at_once() {
    let cluster = Cluster::start().await;
    let c = &cluster.client;
    // 10 nodes × 4 CPUs; pods of 250m: exactly 160 fit.
    create_nodes(c, (0..10).map(|i| node(&format!("n{i}"), "4", "64Gi")).collect()).await;
    let mut creators = tokio::task::JoinSet::new();
    for w in 0..10 {
        let c = c.clone();
        creators.spawn(async move {
            for i in (w..500).step_by(10) {
                c.create(pod(&format!("p{i:03}"), "250m", "100Mi")).await.expect("create pod");
            }
        });
    }
    while let Some(r) = creators.join_next().await {
        r.unwrap();
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut stable_since: Option<(usize, Instant)> = None;
    loop {
        let (pods, _) = c.list::<Pod>("default", &ListParams::default()).await.unwrap();
        let mut cpu: HashMap<String, i64> = HashMap::new();
        for p in &pods {
            let spec = p.spec.as_ref().unwrap();
            if !spec.node_name.is_empty() {
                *cpu.entry(spec.node_name.clone()).or_default() += 250;
            }
        }
        for (n, used) in &cpu {
            assert!(*used <= 4000, "node {n} is overcommitted: {used}m of 4000m");
        }
        let bound: usize = pods.iter().filter(|p| !p.spec.as_ref().unwrap().node_name.is_empty()).count();
        assert!(bound <= 160, "{bound} pods bound, only 160 fit");
        if bound == 160 {
            match stable_since {
                Some((160, since)) if since.elapsed() > Duration::from_secs(2) => break,
                Some((160, _)) => {}
                _ => stable_since = Some((160, Instant::now())),
            }
        }
        assert!(Instant::now() < deadline, "only {bound} of the 160 pods that fit were bound");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = http_get(cluster.health(), "/metrics").await.unwrap();
    assert!(metrics.contains("berth_scheduler_schedule_attempts_total{result=\"scheduled\"} 160"), "{metrics}");
    assert!(metrics.contains("berth_scheduler_pending_pods{queue=\"unschedulable\"}"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_avoid_a_node_busy_for_real_when_load_aware() {
    let mut profile = Profile::default();
    profile.load_aware.enabled = true;
    profile.weights.load_aware = 10;
    let mut cluster = Cluster::apiserver().await;
    let c = cluster.client.clone();
    let c = &c;
    let mut busy = node("busy", "4", "8Gi");
    busy.metadata.as_mut().unwrap().annotations =
        map(&[("berth.io/cpu-usage-millis", "3800"), ("berth.io/memory-usage-bytes", "1073741824")]);
    let mut quiet = node("quiet", "4", "8Gi");
    quiet.metadata.as_mut().unwrap().annotations =
        map(&[("berth.io/cpu-usage-millis", "200"), ("berth.io/memory-usage-bytes", "1073741824")]);
    // Requests say the opposite: "quiet" already has a pod with big requests.
    create_nodes(c, vec![busy, quiet]).await;
    let placed = with_spec(pod("placed", "2", "2Gi"), |s| s.node_name = "quiet".into());
    c.create(placed).await.unwrap();
    cluster.start_scheduler(profile).await;
    for i in 0..3 {
        c.create(pod(&format!("p{i}"), "100m", "64Mi")).await.unwrap();
        assert_eq!(bound_node(c, &format!("p{i}")).await, "quiet");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn should_leave_alone_pods_with_a_node_or_another_scheduler() {
    let mut cluster = Cluster::start().await;
    let c = &cluster.client;
    create_nodes(c, vec![node("n1", "4", "8Gi"), node("n2", "4", "8Gi")]).await;
    c.create(with_spec(pod("pinned", "100m", "64Mi"), |s| s.node_name = "n2".into())).await.unwrap();
    c.create(with_spec(pod("other", "100m", "64Mi"), |s| s.scheduler_name = "my-scheduler".into())).await.unwrap();
    c.create(pod("mine", "100m", "64Mi")).await.unwrap();
    bound_node(c, "mine").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other: Pod = c.get("default", "other").await.unwrap();
    assert_eq!(other.spec.unwrap().node_name, "", "another scheduler's pod is not ours");
    assert_eq!(bound_node(c, "pinned").await, "n2");
    cluster.stop_scheduler().await.expect("clean stop");
}
