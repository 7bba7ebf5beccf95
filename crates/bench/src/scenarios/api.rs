//! The `api` scenario: CRUD throughput and latency of the apiserver with
//! concurrent clients on ~1 KiB ConfigMaps in a throwaway namespace, the
//! apiserver's memory, and (with `--etcd`) the same creates as durable etcd
//! puts for comparison.
//!
//! Phases, each timed on its own: create all N objects, get N random ones,
//! a few full lists of the namespace, update all N (each with its
//! resourceVersion as precondition), optionally create `--rss-pods` pods to
//! measure memory per pod, then delete everything. A watch's initial sync
//! (every object as ADDED on one stream) is timed between list and update.
//! With `--rest`, the same phases (without pods) run again over Kubernetes'
//! REST API with JSON bodies, for the REST/gRPC ratios.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use berth_api::Resource;
use berth_api::pb::core::{ConfigMap, Container, ContainerPort, Namespace, ObjectMeta, Pod, PodSpec, ResourceRequirements};
use berth_client::{Client, ListParams};
use futures::StreamExt as _;
use hyper::{Method, StatusCode};
use prost::Message as _;
use rand::Rng;
use tracing::{info, warn};

use super::{connect_pool, create_namespace, delete_all, delete_namespace, random_namespace, random_text};
use crate::Ctx;
use crate::etcd::{self, pb::PutRequest};
use crate::phase::{self, Phase};
use crate::procfs;
use crate::report::Figures;
use crate::rest::{RestClient, RestError};

/// Flags of the `api` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// HTTP/2 connections the clients share, round-robin (0: one per
    /// client). On the 2-core machine (medians of 4 alternating runs, 64
    /// clients) etcd put 22,466/s on one connection, 22,230/s on two and
    /// 21,294/s on four; Berth created 21,990/s, 24,838/s and 23,723/s (one
    /// connection is one HTTP/2 task in the apiserver, on one core). Two is
    /// the best for Berth and within noise of the best for etcd; one per
    /// client was the slowest for both.
    #[arg(long, default_value_t = 2)]
    pub connections: usize,
    /// ConfigMaps to create, get and update.
    #[arg(long, default_value_t = 20_000)]
    pub objects: usize,
    /// Size of each ConfigMap's data value, in bytes.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    /// Full lists of the namespace to time (one after another).
    #[arg(long, default_value_t = 5)]
    pub lists: usize,
    /// Also run the create phase against etcd at this URL
    /// (e.g. http://127.0.0.1:2379) and report ratio_to_etcd.
    #[arg(long)]
    pub etcd: Option<String>,
    /// The apiserver's process id: report its resident memory and its CPU
    /// time per create.
    #[arg(long, visible_alias = "apiserver-pid")]
    pub pid: Option<u32>,
    /// etcd's process id (with --etcd): report its CPU time per put.
    #[arg(long)]
    pub etcd_pid: Option<u32>,
    /// After the phases, create this many pods and report the memory they
    /// add (needs --pid to report memory).
    #[arg(long, default_value_t = 0)]
    pub rss_pods: usize,
    /// After the gRPC phases, run the same workload over Kubernetes' REST
    /// API (JSON over HTTP/2 with prior knowledge, plaintext; same clients,
    /// connections and objects) and report `rest_*` figures and the
    /// REST/gRPC ratios (`rest_to_grpc_creates`, ...).
    #[arg(long)]
    pub rest: bool,
}

impl Args {
    fn connections(&self) -> usize {
        if self.connections == 0 { self.clients } else { self.connections.min(self.clients) }.max(1)
    }
}

/// One run: Berth (unless only --etcd was given), with etcd's put phase right after Berth's
/// create phase, so that the two rates are taken seconds apart: a shared host's speed drifts
/// over the tens of seconds the other phases take.
pub async fn run(ctx: &Ctx, args: &Args) -> anyhow::Result<Figures> {
    anyhow::ensure!(args.clients > 0 && args.objects > 0, "--clients and --objects must be at least 1");
    let mut f = Figures::new();
    f.count("clients", args.clients as u64);
    f.count("connections", args.connections() as u64);
    f.count("objects", args.objects as u64);
    let value: Arc<str> = random_text(args.value_bytes).into();
    f.count("object_bytes", config_map("bench-xxxxxx", 0, &value, None, 1).into_object().encoded_len() as u64);

    let berth = ctx.common.server.is_some() || args.etcd.is_none();
    if berth {
        f.extend(run_berth(ctx, args, value.clone()).await?);
    } else if let Some(url) = &args.etcd {
        f.extend(run_etcd(ctx, args, url, value.clone()).await?);
    }
    if let (Some(b), Some(e)) = (f.get("creates_per_s"), f.get("etcd_puts_per_s")) {
        f.measure("ratio_to_etcd", b / e);
    }
    if args.rest && berth {
        f.extend(run_rest(ctx, args, value).await?);
        for (ratio, grpc, rest) in REST_RATIOS {
            if let (Some(g), Some(r)) = (f.get(grpc), f.get(rest)) {
                f.measure(*ratio, r / g);
            }
        }
    }
    Ok(f)
}

/// The REST/gRPC ratios `--rest` reports: (ratio, gRPC figure, REST figure).
const REST_RATIOS: &[(&str, &str, &str)] = &[
    ("rest_to_grpc_creates", "creates_per_s", "rest_creates_per_s"),
    ("rest_to_grpc_gets", "gets_per_s", "rest_gets_per_s"),
    ("rest_to_grpc_lists", "lists_per_s", "rest_lists_per_s"),
    ("rest_to_grpc_watch_events", "watch_events_per_s", "rest_watch_events_per_s"),
    ("rest_to_grpc_updates", "updates_per_s", "rest_updates_per_s"),
    ("rest_to_grpc_deletes", "deletes_per_s", "rest_deletes_per_s"),
];

fn cm_name(i: usize) -> String {
    format!("cm-{i:06}")
}

fn pod_name(i: usize) -> String {
    format!("pod-{i:06}")
}

/// The benchmark's ConfigMap: one ~1 KiB value and a generation marker
/// that updates change.
fn config_map(namespace: &str, i: usize, value: &str, resource_version: Option<&str>, generation: u32) -> ConfigMap {
    ConfigMap {
        metadata: Some(ObjectMeta {
            name: cm_name(i),
            namespace: namespace.into(),
            resource_version: resource_version.unwrap_or_default().into(),
            labels: BTreeMap::from([("app".into(), "berth-bench".into())]),
            ..Default::default()
        }),
        data: BTreeMap::from([("value".into(), value.into()), ("generation".into(), generation.to_string())]),
        ..Default::default()
    }
}

/// A small realistic pod: one container with a port, labels and requests.
fn pod(namespace: &str, i: usize) -> Pod {
    let app = format!("web-{}", i % 100);
    Pod {
        metadata: Some(ObjectMeta {
            name: pod_name(i),
            namespace: namespace.into(),
            labels: BTreeMap::from([("app".into(), app.clone()), ("tier".into(), "frontend".into())]),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: "registry.example.com/web:1.4.2".into(),
                ports: vec![ContainerPort { name: "http".into(), container_port: 8080, protocol: "TCP".into(), ..Default::default() }],
                resources: Some(ResourceRequirements {
                    requests: BTreeMap::from([("cpu".into(), "100m".into()), ("memory".into(), "64Mi".into())]),
                    limits: BTreeMap::from([("memory".into(), "128Mi".into())]),
                }),
                ..Default::default()
            }],
            restart_policy: "Always".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// CPU time of a server (when its pid is known) and of this benchmark
/// process since `start`: what a phase's throughput costs each side, less
/// sensitive than the rate to what else the host is doing. The two sides
/// share the host's cores, so a cheaper client leaves more to its server.
struct CpuMeter {
    server: Option<(u32, f64)>,
    client: f64,
}

impl CpuMeter {
    fn start(server_pid: Option<u32>) -> anyhow::Result<Self> {
        let server = server_pid.map(|pid| procfs::cpu_seconds(pid).map(|s| (pid, s))).transpose()?;
        Ok(Self { server, client: procfs::cpu_seconds(std::process::id())? })
    }

    /// Adds the microseconds of CPU per operation, for `ops` operations, of the server (if
    /// known) as `server_figure` and of this process as `client_figure`.
    fn add_to(&self, f: &mut Figures, ops: u64, server_figure: &str, client_figure: &str) -> anyhow::Result<()> {
        let per_op = |seconds: f64| seconds * 1e6 / ops.max(1) as f64;
        if let Some((pid, before)) = self.server {
            f.measure(server_figure, per_op(procfs::cpu_seconds(pid)? - before));
        }
        f.measure(client_figure, per_op(procfs::cpu_seconds(std::process::id())? - self.client));
        Ok(())
    }
}

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    procfs::rss_kib(pid).map(procfs::mib)
}

async fn run_berth(ctx: &Ctx, args: &Args, value: Arc<str>) -> anyhow::Result<Figures> {
    let pool = connect_pool(ctx, args.connections()).await?;
    let (ns, _) = create_namespace(&pool[0], ctx.deadline).await?;
    info!(server = %pool[0].server(), namespace = %ns, clients = args.clients, connections = pool.len(), objects = args.objects, "api: running against Berth");
    let mut pods_created = 0;
    let result = berth_phases(ctx, args, &pool, &ns, value, &mut pods_created).await;

    // Whatever happened, leave nothing behind.
    let cleanup = ctx.cleanup_deadline();
    if pods_created > 0 {
        let p = delete_all(&pool, args.clients, "Pod", &ns, (0..pods_created).map(pod_name).collect(), cleanup).await;
        if p.errors > 0 {
            warn!(errors = p.errors, "some pods were not deleted");
        }
    }
    if result.is_err() {
        delete_all(&pool, args.clients, "ConfigMap", &ns, (0..args.objects).map(cm_name).collect(), cleanup).await;
    }
    delete_namespace(&pool[0], &ns, cleanup).await;
    result
}

async fn berth_phases(
    ctx: &Ctx,
    args: &Args,
    pool: &[Client],
    ns: &str,
    value: Arc<str>,
    pods_created: &mut usize,
) -> anyhow::Result<Figures> {
    let mut f = Figures::new();
    let n = args.objects;
    let workers = args.clients;
    let deadline = ctx.deadline;
    let ns: Arc<str> = ns.into();
    let rvs: Arc<Vec<OnceLock<String>>> = Arc::new((0..n).map(|_| OnceLock::new()).collect());
    // What the server held before this run: a fresh server's own size, or
    // what earlier runs left behind (the allocator keeps freed memory).
    let rss_before = args.pid.map(rss_mib).transpose()?;
    let cpu_before = CpuMeter::start(args.pid)?;

    // create
    let create = {
        let (pool, ns, value, rvs) = (pool.to_vec(), ns.clone(), value.clone(), rvs.clone());
        phase::run("create", workers, n, deadline, move |w, i| {
            let client = pool[w % pool.len()].clone();
            let (cm, rvs) = (config_map(&ns, i, &value, None, 1), rvs.clone());
            async move {
                let created = client.create(cm).await?;
                let _ = rvs[i].set(created.meta().resource_version.clone());
                Ok::<_, berth_client::Error>(())
            }
        })
        .await
    };
    create.ensure_finished()?;
    create.add_to(&mut f, "creates", "create");
    cpu_before.add_to(&mut f, create.done, "apiserver_cpu_us_per_create", "client_cpu_us_per_create")?;
    info!(per_s = create.per_s(), "api: create phase done");
    if let (Some(pid), Some(before)) = (args.pid, rss_before) {
        f.measure("apiserver_rss_mib_before", before);
        f.measure("apiserver_rss_mib", rss_mib(pid)?);
    }
    if let Some(url) = &args.etcd {
        f.extend(run_etcd(ctx, args, url, value.clone()).await?);
    }

    // get
    let picks: Arc<Vec<usize>> = {
        let mut rng = rand::rng();
        Arc::new((0..n).map(|_| rng.random_range(0..n)).collect())
    };
    let cpu = CpuMeter::start(args.pid)?;
    let get = {
        let (pool, ns) = (pool.to_vec(), ns.clone());
        phase::run("get", workers, n, deadline, move |w, i| {
            let client = pool[w % pool.len()].clone();
            let (ns, name) = (ns.clone(), cm_name(picks[i]));
            async move { client.get::<ConfigMap>(&ns, &name).await.map(drop) }
        })
        .await
    };
    get.ensure_finished()?;
    get.add_to(&mut f, "gets", "get");
    cpu.add_to(&mut f, get.done, "apiserver_cpu_us_per_get", "client_cpu_us_per_get")?;

    // list: one at a time, each a full list of the namespace
    let items = Arc::new(AtomicUsize::new(usize::MAX));
    let cpu = CpuMeter::start(args.pid)?;
    let list = {
        let (client, ns, items) = (pool[0].clone(), ns.clone(), items.clone());
        phase::run("list", 1, args.lists, deadline, move |_, _| {
            let (client, ns, items) = (client.clone(), ns.clone(), items.clone());
            async move {
                let resp = client.list_objects("ConfigMap", &ns, &ListParams::default()).await?;
                items.fetch_min(resp.items.len(), Ordering::Relaxed);
                Ok::<_, berth_client::Error>(())
            }
        })
        .await
    };
    list.ensure_finished()?;
    if args.lists > 0 {
        report_lists(&mut f, &list, &cpu, items.load(Ordering::Relaxed), n, "")?;
    }

    // watch: an informer's initial sync, every object as ADDED on one stream
    let cpu = CpuMeter::start(args.pid)?;
    let sync = {
        let client = pool[0].clone();
        let ns = ns.clone();
        timed_watch_sync(deadline, n, async move {
            let mut events = client.watch_objects("ConfigMap", &ns, &ListParams::default(), 0).await?;
            let mut added = 0;
            while let Some(event) = events.next().await {
                if event?.r#type == "ADDED" {
                    added += 1;
                    if added == n {
                        return Ok(());
                    }
                }
            }
            anyhow::bail!("the watch ended after {added} of {n} ADDED events")
        })
        .await?
    };
    sync.add_to(&mut f, "");
    cpu.add_to(&mut f, n as u64, "apiserver_cpu_us_per_watch_event", "client_cpu_us_per_watch_event")?;

    // update, each with the resourceVersion its create returned
    let update = {
        let (pool, ns, value, rvs) = (pool.to_vec(), ns.clone(), value.clone(), rvs.clone());
        phase::run("update", workers, n, deadline, move |w, i| {
            let client = pool[w % pool.len()].clone();
            let rv = rvs[i].get().cloned();
            let cm = config_map(&ns, i, &value, rv.as_deref(), 2);
            async move {
                anyhow::ensure!(rv.is_some_and(|rv| !rv.is_empty()), "create returned no resourceVersion for {}", cm_name(i));
                client.update(cm).await?;
                Ok(())
            }
        })
        .await
    };
    update.ensure_finished()?;
    update.add_to(&mut f, "updates", "update");

    // pods, to see what holding them costs in memory
    let mut pod_errors = 0;
    if args.rss_pods > 0 {
        let before = args.pid.map(procfs::rss_kib).transpose()?;
        let pods = {
            let (pool, ns) = (pool.to_vec(), ns.clone());
            phase::run("pod create", workers, args.rss_pods, deadline, move |w, i| {
                let client = pool[w % pool.len()].clone();
                let p = pod(&ns, i);
                async move { client.create(p).await.map(drop) }
            })
            .await
        };
        *pods_created = args.rss_pods;
        pods.ensure_finished()?;
        pod_errors = pods.errors;
        f.count("rss_pods", args.rss_pods as u64);
        f.measure("pod_creates_per_s", pods.per_s());
        if let (Some(pid), Some(before)) = (args.pid, before) {
            let after = procfs::rss_kib(pid)?;
            f.measure("apiserver_rss_mib_with_pods", procfs::mib(after));
            f.measure("rss_kib_per_pod", (after as f64 - before as f64) / args.rss_pods as f64);
        }
    }

    // delete the ConfigMaps, timed like the other phases
    let delete = delete_all(pool, workers, "ConfigMap", &ns, (0..n).map(cm_name).collect(), deadline).await;
    delete.ensure_finished()?;
    delete.add_to(&mut f, "deletes", "delete");
    f.count("errors", [&create, &get, &list, &update, &delete].iter().map(|p: &&Phase| p.errors).sum::<u64>() + pod_errors);
    Ok(f)
}

/// The create phase against etcd: the same count, concurrency, connections
/// and payload (the encoded object Berth's client sends), as durable puts
/// under keys shaped like Berth's. The keys stay: run it on a throwaway etcd.
async fn run_etcd(ctx: &Ctx, args: &Args, url: &str, value: Arc<str>) -> anyhow::Result<Figures> {
    let pool = etcd::connect(url, args.connections()).await?;
    let ns: Arc<str> = random_namespace().into();
    let cpu_before = CpuMeter::start(args.etcd_pid)?;
    info!(etcd = url, prefix = %format!("/registry/configmaps/{ns}/"), clients = args.clients, connections = pool.len(), objects = args.objects, "api: running against etcd");
    let put = phase::run("etcd put", args.clients, args.objects, ctx.deadline, move |w, i| {
        let mut client = pool[w % pool.len()].clone();
        let req = PutRequest {
            key: format!("/registry/configmaps/{ns}/{}", cm_name(i)).into_bytes(),
            value: config_map(&ns, i, &value, None, 1).into_object().encode_to_vec(),
            ..Default::default()
        };
        async move { client.put(req).await.map(drop) }
    })
    .await;
    put.ensure_finished().context("etcd")?;
    let mut f = Figures::new();
    put.add_to(&mut f, "etcd_puts", "etcd_put");
    cpu_before.add_to(&mut f, put.done, "etcd_cpu_us_per_put", "etcd_client_cpu_us_per_put")?;
    f.count("etcd_errors", put.errors);
    info!(per_s = put.per_s(), "api: etcd put phase done");
    Ok(f)
}

/// How long one watch took to deliver every object as ADDED (from
/// sending the watch to parsing the last event).
struct WatchSync {
    events: usize,
    elapsed: std::time::Duration,
}

impl WatchSync {
    /// Adds `{prefix}watch_sync_ms` and `{prefix}watch_events_per_s`.
    fn add_to(&self, f: &mut Figures, prefix: &str) {
        f.measure(format!("{prefix}watch_sync_ms"), self.elapsed.as_secs_f64() * 1e3);
        f.measure(format!("{prefix}watch_events_per_s"), self.events as f64 / self.elapsed.as_secs_f64().max(1e-9));
    }
}

/// The list phase's figures (`prefix` names the transport: "" for gRPC, "rest_").
fn report_lists(f: &mut Figures, list: &Phase, cpu: &CpuMeter, items: usize, n: usize, prefix: &str) -> anyhow::Result<()> {
    list.add_to(f, &format!("{prefix}lists"), &format!("{prefix}list"));
    cpu.add_to(f, list.done, &format!("{prefix}apiserver_cpu_us_per_list"), &format!("{prefix}client_cpu_us_per_list"))?;
    f.count(format!("{prefix}items_per_list"), items as u64);
    if items != n {
        warn!(items, objects = n, transport = if prefix.is_empty() { "gRPC" } else { "REST" }, "a list did not return every object");
    }
    Ok(())
}

async fn timed_watch_sync(
    deadline: tokio::time::Instant,
    events: usize,
    watch: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<WatchSync> {
    let start = tokio::time::Instant::now();
    tokio::time::timeout_at(deadline, watch).await.context("the watch phase hit the --timeout")?.context("watch")?;
    Ok(WatchSync { events, elapsed: start.elapsed() })
}

/// A ConfigMap (or any object) as the JSON body a Kubernetes client sends:
/// the same object the gRPC phases send, in Kubernetes' JSON shape.
fn json_body(object: impl Resource) -> Vec<u8> {
    // Serializing a serde_json::Value cannot fail.
    serde_json::to_vec(&object.into_object().to_json_value()).unwrap_or_default()
}

fn configmaps_path(ns: &str) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps")
}

fn configmap_path(ns: &str, i: usize) -> String {
    format!("/api/v1/namespaces/{ns}/configmaps/{}", cm_name(i))
}

/// The same phases as [`berth_phases`] (without pods) over REST/JSON, in
/// a fresh namespace of their own, with figures prefixed `rest_`.
async fn run_rest(ctx: &Ctx, args: &Args, value: Arc<str>) -> anyhow::Result<Figures> {
    let server = ctx.client_config().server;
    let token = ctx.common.token.as_deref();
    let mut pool = Vec::with_capacity(args.connections());
    for _ in 0..args.connections() {
        let client = tokio::time::timeout_at(ctx.deadline, RestClient::connect(&server, token))
            .await
            .context("timed out connecting to the API server over REST")??;
        pool.push(client);
    }
    let ns = random_namespace();
    let namespace = Namespace { metadata: Some(ObjectMeta { name: ns.clone(), ..Default::default() }), ..Default::default() };
    tokio::time::timeout_at(ctx.deadline, pool[0].json(Method::POST, "/api/v1/namespaces", Some(json_body(namespace))))
        .await
        .context("timed out creating the REST benchmark namespace")?
        .with_context(|| format!("cannot create namespace {ns} over REST"))?;
    info!(server = %server, namespace = %ns, clients = args.clients, connections = pool.len(), objects = args.objects, "api: running over REST");
    let result = rest_phases(ctx, args, &pool, &ns, value).await;

    let cleanup = ctx.cleanup_deadline();
    if result.is_err() {
        rest_delete_all(&pool, args.clients, &ns, args.objects, cleanup).await;
    }
    match tokio::time::timeout_at(cleanup, pool[0].json(Method::DELETE, &format!("/api/v1/namespaces/{ns}"), None)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(namespace = %ns, error = %e, "cannot delete the REST benchmark namespace"),
        Err(_) => warn!(namespace = %ns, "timed out deleting the REST benchmark namespace"),
    }
    result
}

/// Deletes ConfigMaps `0..n` over REST, immediately; a missing one counts as deleted.
async fn rest_delete_all(pool: &[RestClient], workers: usize, ns: &str, n: usize, deadline: tokio::time::Instant) -> Phase {
    let (pool, ns) = (pool.to_vec(), ns.to_string());
    phase::run("rest delete", workers, n, deadline, move |w, i| {
        let client = pool[w % pool.len()].clone();
        let path = format!("{}?gracePeriodSeconds=0", configmap_path(&ns, i));
        async move {
            match client.json(Method::DELETE, &path, None).await {
                Ok(_) | Err(RestError::Status { status: StatusCode::NOT_FOUND, .. }) => Ok(()),
                Err(e) => Err(e),
            }
        }
    })
    .await
}

async fn rest_phases(ctx: &Ctx, args: &Args, pool: &[RestClient], ns: &str, value: Arc<str>) -> anyhow::Result<Figures> {
    let mut f = Figures::new();
    let n = args.objects;
    let workers = args.clients;
    let deadline = ctx.deadline;
    let ns: Arc<str> = ns.into();
    let rvs: Arc<Vec<OnceLock<String>>> = Arc::new((0..n).map(|_| OnceLock::new()).collect());
    let cpu_before = CpuMeter::start(args.pid)?;

    // create: POST the JSON of the object the gRPC phase creates
    let create = {
        let (pool, ns, value, rvs) = (pool.to_vec(), ns.clone(), value.clone(), rvs.clone());
        let path: Arc<str> = configmaps_path(&ns).into();
        phase::run("rest create", workers, n, deadline, move |w, i| {
            let client = pool[w % pool.len()].clone();
            let (body, rvs, path) = (json_body(config_map(&ns, i, &value, None, 1)), rvs.clone(), path.clone());
            async move {
                let created = client.json(Method::POST, &path, Some(body)).await?;
                let _ = rvs[i].set(resource_version(&created).to_string());
                Ok::<_, RestError>(())
            }
        })
        .await
    };
    create.ensure_finished().context("REST")?;
    create.add_to(&mut f, "rest_creates", "rest_create");
    cpu_before.add_to(&mut f, create.done, "rest_apiserver_cpu_us_per_create", "rest_client_cpu_us_per_create")?;
    info!(per_s = create.per_s(), "api: REST create phase done");

    // get
    let picks: Arc<Vec<usize>> = {
        let mut rng = rand::rng();
        Arc::new((0..n).map(|_| rng.random_range(0..n)).collect())
    };
    let cpu = CpuMeter::start(args.pid)?;
    let get = {
        let (pool, ns) = (pool.to_vec(), ns.clone());
        phase::run("rest get", workers, n, deadline, move |w, i| {
            let client = pool[w % pool.len()].clone();
            let path = configmap_path(&ns, picks[i]);
            async move { client.json(Method::GET, &path, None).await.map(drop) }
        })
        .await
    };
    get.ensure_finished().context("REST")?;
    get.add_to(&mut f, "rest_gets", "rest_get");
    cpu.add_to(&mut f, get.done, "rest_apiserver_cpu_us_per_get", "rest_client_cpu_us_per_get")?;

    // list: one at a time, each a full list of the namespace
    let items = Arc::new(AtomicUsize::new(usize::MAX));
    let cpu = CpuMeter::start(args.pid)?;
    let list = {
        let (client, path, items) = (pool[0].clone(), configmaps_path(&ns), items.clone());
        phase::run("rest list", 1, args.lists, deadline, move |_, _| {
            let (client, path, items) = (client.clone(), path.clone(), items.clone());
            async move {
                let list = client.json(Method::GET, &path, None).await?;
                let count = list["items"].as_array().map_or(0, Vec::len);
                items.fetch_min(count, Ordering::Relaxed);
                Ok::<_, RestError>(())
            }
        })
        .await
    };
    list.ensure_finished().context("REST")?;
    if args.lists > 0 {
        report_lists(&mut f, &list, &cpu, items.load(Ordering::Relaxed), n, "rest_")?;
    }

    // watch: an informer's initial sync, every object as ADDED on one stream
    let cpu = CpuMeter::start(args.pid)?;
    let sync = {
        let (client, path) = (pool[0].clone(), format!("{}?watch=true&resourceVersion=0", configmaps_path(&ns)));
        timed_watch_sync(deadline, n, async move {
            let mut added = 0;
            client
                .watch_until(&path, |event| {
                    added += usize::from(event["type"] == "ADDED");
                    added == n
                })
                .await?;
            Ok(())
        })
        .await?
    };
    sync.add_to(&mut f, "rest_");
    cpu.add_to(&mut f, n as u64, "rest_apiserver_cpu_us_per_watch_event", "rest_client_cpu_us_per_watch_event")?;

    // update: PUT, each with the resourceVersion its create returned
    let update = {
        let (pool, ns, value, rvs) = (pool.to_vec(), ns.clone(), value.clone(), rvs.clone());
        phase::run("rest update", workers, n, deadline, move |w, i| {
            let client = pool[w % pool.len()].clone();
            let rv = rvs[i].get().cloned();
            let body = json_body(config_map(&ns, i, &value, rv.as_deref(), 2));
            let path = configmap_path(&ns, i);
            async move {
                anyhow::ensure!(rv.is_some_and(|rv| !rv.is_empty()), "create returned no resourceVersion for {}", cm_name(i));
                client.json(Method::PUT, &path, Some(body)).await?;
                Ok(())
            }
        })
        .await
    };
    update.ensure_finished().context("REST")?;
    update.add_to(&mut f, "rest_updates", "rest_update");

    let delete = rest_delete_all(pool, workers, &ns, n, deadline).await;
    delete.ensure_finished().context("REST")?;
    delete.add_to(&mut f, "rest_deletes", "rest_delete");
    f.count("rest_errors", [&create, &get, &list, &update, &delete].iter().map(|p: &&Phase| p.errors).sum::<u64>());
    Ok(f)
}

/// `metadata.resourceVersion` of a JSON object ("" when absent).
fn resource_version(object: &serde_json::Value) -> &str {
    object["metadata"]["resourceVersion"].as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_build_about_one_kib_objects() {
        let value = random_text(1024);
        let len = config_map("bench-abcdef", 12, &value, None, 1).into_object().encoded_len();
        assert!((1024..1200).contains(&len), "{len}");
    }

    #[test]
    fn should_send_over_rest_the_object_grpc_sends() {
        let cm = config_map("bench-abcdef", 7, "payload", Some("42"), 2);
        let body: serde_json::Value = serde_json::from_slice(&json_body(cm.clone())).unwrap();
        assert_eq!(body["apiVersion"], "v1");
        assert_eq!(body["kind"], "ConfigMap");
        assert_eq!(body["metadata"]["name"], "cm-000007");
        assert_eq!(body["metadata"]["namespace"], "bench-abcdef");
        assert_eq!(resource_version(&body), "42");
        assert_eq!(body["data"]["value"], "payload");
        assert_eq!(body["data"]["generation"], "2");
        let mut sent = berth_api::manifest::from_json(body).unwrap();
        sent.set_type_meta();
        let mut expected = cm.into_object();
        expected.set_type_meta();
        assert_eq!(sent, expected);
        assert_eq!(configmap_path("bench-abcdef", 7), "/api/v1/namespaces/bench-abcdef/configmaps/cm-000007");
    }

    #[test]
    fn should_share_connections_round_robin() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(flatten)]
            a: Args,
        }
        let t = T::parse_from(["t", "--clients", "8", "--connections", "0"]);
        assert_eq!(t.a.connections(), 8);
        let t = T::parse_from(["t", "--clients", "2", "--connections", "4"]);
        assert_eq!(t.a.connections(), 2);
    }
}
