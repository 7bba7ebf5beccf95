//! The `api` scenario: CRUD throughput and latency of the apiserver with
//! concurrent clients on ~1 KiB ConfigMaps in a throwaway namespace, the
//! apiserver's memory, and (with `--etcd`) the same creates as durable etcd
//! puts for comparison.
//!
//! Phases, each timed on its own: create all N objects, get N random ones,
//! a few full lists of the namespace, update all N (each with its
//! resourceVersion as precondition), optionally create `--rss-pods` pods to
//! measure memory per pod, then delete everything.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;
use berth_api::Resource;
use berth_api::pb::core::{ConfigMap, Container, ContainerPort, ObjectMeta, Pod, PodSpec, ResourceRequirements};
use berth_client::{Client, ListParams};
use prost::Message as _;
use rand::Rng;
use tracing::{info, warn};

use super::{connect_pool, create_namespace, delete_all, delete_namespace, random_namespace, random_text};
use crate::Ctx;
use crate::etcd::{self, pb::PutRequest};
use crate::phase::{self, Phase};
use crate::procfs;
use crate::report::Figures;

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
        f.extend(run_etcd(ctx, args, url, value).await?);
    }
    if let (Some(b), Some(e)) = (f.get("creates_per_s"), f.get("etcd_puts_per_s")) {
        f.measure("ratio_to_etcd", b / e);
    }
    Ok(f)
}

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

    // list: one at a time, each a full list of the namespace
    let items = Arc::new(AtomicUsize::new(usize::MAX));
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
        list.add_to(&mut f, "lists", "list");
        let items = items.load(Ordering::Relaxed);
        f.count("items_per_list", items as u64);
        if items != n {
            warn!(items, objects = n, "a list did not return every object");
        }
    }

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
