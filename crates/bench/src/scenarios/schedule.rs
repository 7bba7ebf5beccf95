//! The `schedule` scenario: scheduler throughput and latency. Creates N
//! Node objects (no kubelets) with realistic capacity, starts the real
//! `berth-scheduler` process, creates M pods with requests, and times each
//! pod from its create request to its binding as a watch on the namespace
//! sees it (`bind_latency_*`; `bind_after_ack_*` from the create's
//! acknowledgement instead); reports pods bound per second, the scheduler's
//! CPU time and memory.
//!
//! The run is isolated from whatever else uses the apiserver: its scheduler
//! has its own `--scheduler-name`, the pods name it, and the nodes carry a
//! NoSchedule taint only the benchmark's pods tolerate. Run it against an
//! apiserver without a controller-manager, whose node controller would mark
//! the kubelet-less nodes NotReady.
//!
//! With `--precreate` every pod exists before the scheduler starts, which
//! measures the scheduler alone (latency then includes the wait).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use berth_api::pb::core::{
    Container, Node, NodeCondition, NodeSpec, NodeStatus, ObjectMeta, Pod, PodSpec, ResourceRequirements, Taint, Toleration,
};
use berth_client::{Client, ListParams};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{connect_pool, create_namespace, delete_all, delete_namespace};
use crate::phase::{self, histogram, quantile_ms, record};
use crate::report::Figures;
use crate::{Ctx, procfs};

/// Flags of the `schedule` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Node objects to create (16, 32 or 64 CPUs with 4 GiB per CPU, 110 pods each).
    #[arg(long, default_value_t = 5000)]
    pub nodes: usize,
    /// Pods to create and schedule (requests of 100m/128Mi, 200m/256Mi or 500m/512Mi).
    #[arg(long, default_value_t = 30_000)]
    pub pods: usize,
    /// Concurrent pod creators.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// HTTP/2 connections the creators share.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// The berth-scheduler binary (default: next to this program).
    #[arg(long)]
    pub scheduler_bin: Option<PathBuf>,
    /// An extra flag for the scheduler (repeatable), e.g. --scheduler-arg=--config=sched.yaml.
    #[arg(long = "scheduler-arg", allow_hyphen_values = true)]
    pub scheduler_args: Vec<String>,
    /// Create every pod before starting the scheduler: measures the scheduler alone.
    #[arg(long)]
    pub precreate: bool,
}

impl Args {
    pub fn connections(&self) -> usize {
        self.connections.clamp(1, self.clients.max(1))
    }
}

/// One run.
pub async fn run(ctx: &Ctx, args: &Args) -> anyhow::Result<Figures> {
    anyhow::ensure!(args.nodes > 0 && args.pods > 0, "--nodes and --pods must be at least 1");
    let bin = match &args.scheduler_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find this program's path")?.with_file_name("berth-scheduler"),
    };
    anyhow::ensure!(bin.exists(), "no scheduler binary at {} (build it, or give --scheduler-bin)", bin.display());
    let pool = connect_pool(ctx, args.connections()).await?;
    let (ns, ns_rv) = create_namespace(&pool[0], ctx.deadline).await?;
    info!(server = %pool[0].server(), namespace = %ns, nodes = args.nodes, pods = args.pods, precreate = args.precreate, "schedule: starting");
    let mut created = Created::default();
    let result = measure(ctx, args, &bin, &pool, &ns, ns_rv, &mut created).await;

    let cleanup = ctx.cleanup_deadline();
    let workers = args.clients.max(16);
    let p = delete_all(&pool, workers, "Pod", &ns, (0..created.pods).map(pod_name).collect(), cleanup).await;
    let n = delete_all(&pool, workers, "Node", "", (0..created.nodes).map(|i| node_name(&ns, i)).collect(), cleanup).await;
    if p.errors + n.errors > 0 {
        warn!(pods = p.errors, nodes = n.errors, "some benchmark objects were not deleted");
    }
    delete_namespace(&pool[0], &ns, cleanup).await;
    result
}

#[derive(Default)]
struct Created {
    nodes: usize,
    pods: usize,
}

fn pod_name(i: usize) -> String {
    format!("pod-{i:06}")
}

fn pod_index(name: &str) -> Option<usize> {
    name.strip_prefix("pod-")?.parse().ok()
}

fn node_name(ns: &str, i: usize) -> String {
    format!("{ns}-node-{i:05}")
}

const TAINT_KEY: &str = "berth.io/bench";

/// A node of 16, 32 or 64 CPUs with 4 GiB per CPU and 110 pod slots, Ready.
fn node(ns: &str, i: usize) -> Node {
    let cpus = [16, 32, 64][i % 3];
    let resources: BTreeMap<String, String> =
        BTreeMap::from([("cpu".into(), cpus.to_string()), ("memory".into(), format!("{}Gi", cpus * 4)), ("pods".into(), "110".into())]);
    Node {
        metadata: Some(ObjectMeta {
            name: node_name(ns, i),
            labels: BTreeMap::from([
                (TAINT_KEY.into(), ns.into()),
                ("kubernetes.io/hostname".into(), node_name(ns, i)),
                ("topology.kubernetes.io/zone".into(), format!("zone-{}", i % 4)),
            ]),
            ..Default::default()
        }),
        spec: Some(NodeSpec {
            taints: vec![Taint { key: TAINT_KEY.into(), value: ns.into(), effect: "NoSchedule".into(), ..Default::default() }],
            ..Default::default()
        }),
        status: Some(NodeStatus {
            capacity: resources.clone(),
            allocatable: resources,
            conditions: vec![NodeCondition {
                r#type: "Ready".into(),
                status: "True".into(),
                reason: "KubeletReady".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A pod asking 100m/128Mi, 200m/256Mi or 500m/512Mi, for the benchmark's scheduler.
fn pod(ns: &str, scheduler: &str, i: usize) -> Pod {
    let (cpu, memory) = [("100m", "128Mi"), ("200m", "256Mi"), ("500m", "512Mi")][i % 3];
    Pod {
        metadata: Some(ObjectMeta {
            name: pod_name(i),
            namespace: ns.into(),
            labels: BTreeMap::from([("app".into(), format!("app-{}", i % 50))]),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            scheduler_name: scheduler.into(),
            tolerations: vec![Toleration {
                key: TAINT_KEY.into(),
                operator: "Equal".into(),
                value: ns.into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            }],
            containers: vec![Container {
                name: "app".into(),
                image: "registry.example.com/app:1.0".into(),
                resources: Some(ResourceRequirements {
                    requests: BTreeMap::from([("cpu".into(), cpu.into()), ("memory".into(), memory.into())]),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Microseconds since `base`, never 0 (0 marks "not yet").
fn stamp(base: Instant) -> u64 {
    (base.elapsed().as_micros() as u64).max(1)
}

/// The scheduler process; killed when dropped.
struct SchedulerProcess {
    child: tokio::process::Child,
    health: SocketAddr,
}

impl SchedulerProcess {
    fn start(bin: &PathBuf, ctx: &Ctx, name: &str, extra: &[String]) -> anyhow::Result<SchedulerProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).context("no free port")?.port();
        let health: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = tokio::process::Command::new(bin);
        cmd.arg("--server").arg(ctx.client_config().server);
        if let Some(token) = &ctx.common.token {
            cmd.env("BERTH_TOKEN", token);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        cmd.args(["--scheduler-name", name, "--leader-elect=false", "--health-listen", &health.to_string()])
            .args(extra)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(SchedulerProcess { child, health })
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until /readyz answers 200 (its caches are synced).
    async fn wait_ready(&mut self, deadline: Instant) -> anyhow::Result<()> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the scheduler exited at start: {status}");
            }
            if http_get(self.health, "/readyz").await.is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "the scheduler did not become ready before the --timeout");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}

/// VmRSS and VmHWM (peak) of a process, in MiB.
fn memory_mib(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| status.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse::<u64>().ok();
    Some((procfs::mib(kib("VmRSS:")?), procfs::mib(kib("VmHWM:")?)))
}

/// CPU time (user + system, all threads) a process has used, in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks as f64 / 100.0)
}

/// A value from the scheduler's /metrics (e.g. attempts by result).
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

async fn measure(
    ctx: &Ctx,
    args: &Args,
    bin: &PathBuf,
    pool: &[Client],
    ns: &str,
    ns_rv: u64,
    created: &mut Created,
) -> anyhow::Result<Figures> {
    let deadline = ctx.deadline;
    let scheduler_name = format!("{ns}-scheduler");
    let workers = args.clients.max(1);

    // nodes
    let nodes = {
        let (pool, ns) = (pool.to_vec(), Arc::<str>::from(ns));
        phase::run("create-nodes", workers, args.nodes, deadline, move |w, i| {
            let client = pool[w % pool.len()].clone();
            let n = node(&ns, i);
            async move { client.create(n).await.map(|_| ()) }
        })
        .await
    };
    created.nodes = args.nodes;
    nodes.ensure_finished()?;
    info!(nodes = nodes.done, per_s = nodes.per_s(), "schedule: nodes created");

    // The watch that sees each binding, opened before any pod exists.
    let base = Instant::now();
    let bound_at: Arc<Vec<AtomicU64>> = Arc::new((0..args.pods).map(|_| AtomicU64::new(0)).collect());
    let bound_count = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut stream = tokio::time::timeout_at(deadline, pool[0].watch::<Pod>(ns, &ListParams::default(), ns_rv))
        .await
        .context("timed out opening the pod watch")?
        .context("cannot watch the benchmark's pods")?;
    let watcher = {
        let (bound_at, bound_count, mut stop_rx) = (bound_at.clone(), bound_count.clone(), stop_rx.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    ev = stream.next() => match ev {
                        Some(Ok(berth_client::WatchEvent::Modified(p) | berth_client::WatchEvent::Added(p))) => {
                            let node = p.spec.as_ref().map_or("", |s| s.node_name.as_str());
                            let name = p.metadata.as_ref().map_or("", |m| m.name.as_str());
                            if let (false, Some(i)) = (node.is_empty(), pod_index(name))
                                && i < bound_at.len()
                                && bound_at[i].compare_exchange(0, stamp(base), Ordering::Relaxed, Ordering::Relaxed).is_ok()
                            {
                                bound_count.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return Err(anyhow::anyhow!("the pod watch failed: {e}")),
                        None => return Err(anyhow::anyhow!("the server ended the pod watch")),
                    },
                    _ = stop_rx.changed() => return Ok(()),
                }
            }
        })
    };

    let mut scheduler = None;
    if !args.precreate {
        let mut s = SchedulerProcess::start(bin, ctx, &scheduler_name, &args.scheduler_args)?;
        s.wait_ready(deadline).await?;
        scheduler = Some(s);
    }

    // pods
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..args.pods).map(|_| AtomicU64::new(0)).collect());
    let acked_at: Arc<Vec<AtomicU64>> = Arc::new((0..args.pods).map(|_| AtomicU64::new(0)).collect());
    let creating = Instant::now();
    let pods = {
        let (pool, ns, name) = (pool.to_vec(), Arc::<str>::from(ns), Arc::<str>::from(scheduler_name.as_str()));
        let (sent_at, acked_at) = (sent_at.clone(), acked_at.clone());
        phase::run("create-pods", workers, args.pods, deadline, move |w, i| {
            let client = pool[w % pool.len()].clone();
            let (p, sent_at, acked_at) = (pod(&ns, &name, i), sent_at.clone(), acked_at.clone());
            async move {
                sent_at[i].store(stamp(base), Ordering::Relaxed);
                client.create(p).await?;
                acked_at[i].store(stamp(base), Ordering::Relaxed);
                Ok::<_, berth_client::Error>(())
            }
        })
        .await
    };
    created.pods = args.pods;
    pods.ensure_finished()?;
    info!(pods = pods.done, per_s = pods.per_s(), "schedule: pods created");

    let scheduling_from = if args.precreate {
        let start = Instant::now();
        let mut s = SchedulerProcess::start(bin, ctx, &scheduler_name, &args.scheduler_args)?;
        s.wait_ready(deadline).await?;
        scheduler = Some(s);
        start
    } else {
        creating
    };
    let Some(mut scheduler) = scheduler else { anyhow::bail!("the scheduler was not started") };

    // wait for every binding (or the deadline), sampling the scheduler's memory
    let want = pods.done as usize;
    let mut peak_rss = 0.0f64;
    let mut last_progress = (0usize, Instant::now());
    loop {
        let n = bound_count.load(Ordering::Relaxed);
        if let Some((rss, _)) = scheduler.pid().and_then(memory_mib) {
            peak_rss = peak_rss.max(rss);
        }
        if n >= want {
            break;
        }
        if n > last_progress.0 {
            last_progress = (n, Instant::now());
        }
        if watcher.is_finished() || Instant::now() >= deadline || last_progress.1.elapsed() > Duration::from_secs(60) {
            warn!(bound = n, of = want, "schedule: stopped waiting for bindings");
            break;
        }
        if let Some(status) = scheduler.child.try_wait()? {
            anyhow::bail!("the scheduler exited during the run: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rss, hwm) = scheduler.pid().and_then(memory_mib).unwrap_or((f64::NAN, f64::NAN));
    let cpu = scheduler.pid().and_then(cpu_seconds).unwrap_or(f64::NAN);
    let scheduler_metrics = http_get(scheduler.health, "/metrics").await.unwrap_or_default();
    let _ = stop_tx.send(true);
    let _ = scheduler.child.kill().await;
    match watcher.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "schedule: watch ended early"),
        Err(e) => warn!(error = %e, "schedule: watch task failed"),
    }

    // figures
    let from = scheduling_from.duration_since(base).as_micros() as u64;
    // The pod exists from some moment between its create being sent and
    // acknowledged: time from both. On a loaded machine the binding often
    // shows up before the acknowledgement does (then 0 from the ack).
    let (mut from_send, mut from_ack) = (histogram(), histogram());
    let mut binds: Vec<u64> = Vec::with_capacity(want);
    for i in 0..args.pods {
        let bound = bound_at[i].load(Ordering::Relaxed);
        if bound == 0 {
            continue;
        }
        binds.push(bound);
        let (sent, acked) = (sent_at[i].load(Ordering::Relaxed), acked_at[i].load(Ordering::Relaxed));
        if sent != 0 && acked != 0 {
            record(&mut from_send, Duration::from_micros(bound.saturating_sub(sent)));
            record(&mut from_ack, Duration::from_micros(bound.saturating_sub(acked)));
        }
    }
    binds.sort_unstable();
    let bound = binds.len();
    let secs = |us: u64| us as f64 / 1e6;
    let mut f = Figures::new();
    f.count("nodes", args.nodes as u64);
    f.count("pods", args.pods as u64);
    f.count("bound", bound as u64);
    f.measure("node_creates_per_s", nodes.per_s());
    f.measure("pod_creates_per_s", pods.per_s());
    if let (Some(first), Some(last)) = (binds.first(), binds.last()) {
        f.measure("binds_per_s", bound as f64 / secs(last.saturating_sub(from)).max(1e-6));
        // The middle 80% of bindings, without ramp-up and tail.
        let (p10, p90) = (binds[bound / 10], binds[(bound * 9 / 10).min(bound - 1)]);
        if p90 > p10 {
            f.measure("sustained_binds_per_s", (bound * 8 / 10) as f64 / secs(p90 - p10));
        }
        f.measure("first_bind_s", secs(first.saturating_sub(from)));
        f.measure("last_bind_s", secs(last.saturating_sub(from)));
    }
    f.measure("bind_latency_p50_ms", quantile_ms(&from_send, 0.50));
    f.measure("bind_latency_p99_ms", quantile_ms(&from_send, 0.99));
    f.measure("bind_latency_max_ms", phase::max_ms(&from_send));
    f.measure("bind_after_ack_p50_ms", quantile_ms(&from_ack, 0.50));
    f.measure("bind_after_ack_p99_ms", quantile_ms(&from_ack, 0.99));
    f.measure("scheduler_rss_mib", rss);
    f.measure("scheduler_peak_rss_mib", hwm.max(peak_rss));
    f.measure("scheduler_cpu_s", cpu);
    f.measure("scheduler_cpu_ms_per_pod", cpu * 1000.0 / bound.max(1) as f64);
    let mean_ms = |name: &str, labels: &str| {
        let sum = metric(&scheduler_metrics, &format!("{name}_sum{labels} "))?;
        let count = metric(&scheduler_metrics, &format!("{name}_count{labels} "))?;
        (count > 0.0).then(|| sum * 1000.0 / count)
    };
    if let Some(ms) = mean_ms("berth_scheduler_scheduling_attempt_duration_seconds", "{result=\"scheduled\"}") {
        f.measure("decision_mean_ms", ms);
    }
    if let Some(ms) = mean_ms("berth_scheduler_binding_duration_seconds", "") {
        f.measure("binding_call_mean_ms", ms);
    }
    if let Some(n) = metric(&scheduler_metrics, "berth_scheduler_schedule_attempts_total{result=\"unschedulable\"} ") {
        f.count("unschedulable_attempts", n as u64);
    }
    if let Some(n) = metric(&scheduler_metrics, "berth_scheduler_bindings_total{result=\"error\"} ") {
        f.count("binding_errors", n as u64);
    }
    anyhow::ensure!(bound > 0, "no pod was bound");
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_the_pod_index_back_from_the_name() {
        assert_eq!(pod_index(&pod_name(42)), Some(42));
        assert_eq!(pod_index("cm-000042"), None);
    }

    #[test]
    fn should_give_every_pod_room_on_500_nodes() {
        let cpu_m: i64 = (0..30_000).map(|i| [100, 200, 500][i % 3]).sum();
        let node_m: i64 = (0..500).map(|i| [16_000, 32_000, 64_000][i % 3]).sum();
        assert!(cpu_m < node_m / 2, "{cpu_m} of {node_m}");
    }

    #[test]
    fn should_read_a_metric_value() {
        let text = "# HELP x\nberth_scheduler_bindings_total{result=\"error\"} 3\n";
        assert_eq!(metric(text, "berth_scheduler_bindings_total{result=\"error\"} "), Some(3.0));
        let text = "berth_scheduler_binding_duration_seconds_sum 1.5\nberth_scheduler_binding_duration_seconds_count 3\n";
        assert_eq!(metric(text, "berth_scheduler_binding_duration_seconds_count "), Some(3.0));
    }
}
