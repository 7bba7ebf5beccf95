//! The `proxy` scenario: what berth-proxy costs on the data path and how
//! fast it programs large clusters, per mode.
//!
//! Data path: busybox `httpd` pods in containers on a Docker network of the
//! benchmark, one Service in front of them; the same load from this one
//! process (`--concurrency` connections, each one HTTP/1.0 request) goes
//! directly to the pod IPs (round robin), then through the ClusterIP, with
//! the proxy in each mode. Reported: requests per second, p50/p99 latency,
//! and their ratio to direct (`*_throughput_ratio` ≥ 0.8 for userspace and
//! ≥ 0.95 for the kernel modes is the target).
//!
//! Sync: `--sync-services` Services (1,000 and 10,000 by default) with
//! `--sync-endpoints` ready endpoints each (addresses that no packet is
//! sent to); for each mode a fresh berth-proxy starts, and its own
//! `berth_proxy_sync_duration_seconds` gives the first full sync
//! (`*_cold_sync_*`: VIPs bound, rules written, relays listening), one
//! partial sync (one Endpoints object changed), and, after a restart over
//! what it installed, the full sync a restart or a periodic resync does
//! (`*_full_sync_*`). `*_ready_*_ms` adds the informers' list to the cold one.
//!
//! Each proxy gets its own interface, table and chain prefix, and is
//! removed with `--cleanup` afterwards; packets go only to the benchmark's
//! Docker network and to VIPs the proxy has bound.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use berth_api::pb::core::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, Service, ServicePort, ServiceSpec};
use berth_base::duration::parse_duration;
use berth_client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{connect_pool, create_namespace, delete_all, delete_namespace};
use crate::Ctx;
use crate::phase::{self, quantile_ms};
use crate::report::Figures;

/// Flags of the `proxy` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Modes to measure, comma-separated (ipvs is skipped where the kernel has no ip_vs).
    #[arg(long, value_delimiter = ',', default_value = "userspace,iptables,nftables,ipvs")]
    pub modes: Vec<String>,
    /// The berth-proxy binary (default: next to this program).
    #[arg(long)]
    pub proxy_bin: Option<PathBuf>,
    /// Backend pods (containers of --image running busybox httpd).
    #[arg(long, default_value_t = 3)]
    pub pods: u8,
    /// The pods' image (deploy/test-image.sh builds it).
    #[arg(long, default_value = "berth/busybox:1")]
    pub image: String,
    /// The Docker network the pods run on (created and removed by the benchmark).
    #[arg(long, default_value = "172.28.250.0/24")]
    pub subnet: String,
    /// Requests in flight at once, each on its own connection.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Requests per measurement (direct, then through the ClusterIP).
    #[arg(long, default_value_t = 4000)]
    pub requests: usize,
    /// Cluster sizes whose sync is timed, comma-separated (0 or empty: none).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    pub sync_services: Vec<usize>,
    /// Ready endpoints per Service in the sync measurement.
    #[arg(long, default_value_t = 10)]
    pub sync_endpoints: usize,
    /// Which iptables the iptables mode drives (passed to the proxy).
    #[arg(long, default_value = "nft")]
    pub iptables_backend: String,
    /// iptables-nft-restore slows down sharply with size (minutes at a few
    /// thousand services): sizes above this are skipped with that backend.
    #[arg(long, default_value_t = 2000)]
    pub iptables_nft_max_services: usize,
    /// The proxies' `--cluster-cidr` (default: `--subnet`). The sync
    /// measurement's endpoints are in 100.64.0.0/10, outside it, so the
    /// nftables mode writes no hairpin element for them; give
    /// `100.64.0.0/10` to measure them as the pods of a real cluster are.
    #[arg(long)]
    pub cluster_cidr: Option<String>,
    /// How long one proxy may take to become ready.
    #[arg(long, default_value = "180s", value_parser = parse_duration)]
    pub ready_timeout: Duration,
}

/// The names one benchmark proxy installs under.
const INTERFACE: &str = "bbench-vips";
const TABLE: &str = "bbench";
const CHAIN_PREFIX: &str = "BBENCH";
const NETWORK: &str = "berth-bench-proxy";

/// One run.
pub async fn run(ctx: &Ctx, args: &Args) -> anyhow::Result<Figures> {
    anyhow::ensure!(args.pods > 0 && args.pods <= 200, "--pods must be between 1 and 200");
    let bin = match &args.proxy_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find this program's path")?.with_file_name("berth-proxy"),
    };
    anyhow::ensure!(bin.exists(), "no proxy binary at {} (build it, or give --proxy-bin)", bin.display());
    let subnet: (Ipv4Addr, u8) = parse_subnet(&args.subnet)?;
    let pool = connect_pool(ctx, 4).await?;
    let (ns, _) = create_namespace(&pool[0], ctx.deadline).await?;
    let mut cleanup = Cleanup { bin: bin.clone(), containers: Vec::new(), network: false, services: Vec::new() };
    let result = measure(ctx, args, &bin, subnet, &pool, &ns, &mut cleanup).await;

    let deadline = ctx.cleanup_deadline();
    cleanup.proxy().await;
    let names = std::mem::take(&mut cleanup.services);
    let e = delete_all(&pool, 32, "Endpoints", &ns, names.clone(), deadline).await;
    let s = delete_all(&pool, 32, "Service", &ns, names, deadline).await;
    if e.errors + s.errors > 0 {
        warn!(endpoints = e.errors, services = s.errors, "some benchmark objects were not deleted");
    }
    delete_namespace(&pool[0], &ns, deadline).await;
    cleanup.backends().await;
    result
}

/// What the benchmark leaves behind until it is removed.
struct Cleanup {
    bin: PathBuf,
    containers: Vec<String>,
    network: bool,
    services: Vec<String>,
}

impl Cleanup {
    /// `berth-proxy --cleanup` with the benchmark's names.
    async fn proxy(&self) {
        let out = Command::new(&self.bin)
            .args(["--cleanup", "--interface", INTERFACE, "--table-name", TABLE, "--chain-prefix", CHAIN_PREFIX])
            .output()
            .await;
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => warn!(stderr = %String::from_utf8_lossy(&o.stderr), "berth-proxy --cleanup failed"),
            Err(e) => warn!(error = %e, "cannot run berth-proxy --cleanup"),
        }
    }

    async fn backends(&mut self) {
        for c in self.containers.drain(..) {
            let _ = docker(&["rm", "-f", &c]).await;
        }
        if self.network {
            let _ = docker(&["network", "rm", NETWORK]).await;
            self.network = false;
        }
    }
}

fn parse_subnet(s: &str) -> anyhow::Result<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/').context("--subnet: write it like 172.28.250.0/24")?;
    let ip: Ipv4Addr = ip.parse().context("--subnet address")?;
    let len: u8 = len.parse().context("--subnet prefix")?;
    anyhow::ensure!((16..=24).contains(&len), "--subnet: the prefix must be /16 to /24");
    Ok((ip, len))
}

/// The n-th host address of the subnet (1 is the gateway).
fn host(subnet: (Ipv4Addr, u8), n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.0) + n)
}

async fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().await.context("cannot run docker")?;
    if !out.status.success() {
        bail!("docker {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn measure(
    ctx: &Ctx,
    args: &Args,
    bin: &PathBuf,
    subnet: (Ipv4Addr, u8),
    pool: &[Client],
    ns: &str,
    cleanup: &mut Cleanup,
) -> anyhow::Result<Figures> {
    let mut f = Figures::new();
    let modes: Vec<String> = args
        .modes
        .iter()
        .filter(|m| {
            let ok = m.as_str() != "ipvs" || std::path::Path::new("/proc/net/ip_vs").exists();
            if !ok {
                warn!("skipping the ipvs mode: this kernel has no ip_vs (berth-proxy refuses to start without it)");
            }
            ok
        })
        .cloned()
        .collect();

    // Backends.
    docker(&["image", "inspect", &args.image])
        .await
        .with_context(|| format!("no image {} (deploy/test-image.sh builds it)", args.image))?;
    let _ = docker(&["network", "rm", NETWORK]).await;
    docker(&[
        "network",
        "create",
        "--subnet",
        &args.subnet,
        "--gateway",
        &host(subnet, 1).to_string(),
        "--label",
        "berth-bench=proxy",
        NETWORK,
    ])
    .await?;
    cleanup.network = true;
    let mut pods = Vec::new();
    for i in 0..args.pods {
        let name = format!("berth-bench-proxy-{i}");
        let ip = host(subnet, 10 + u32::from(i));
        let _ = docker(&["rm", "-f", &name]).await;
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--hostname",
            &format!("pod-{i}"),
            "--label",
            "berth-bench=proxy",
            "--network",
            NETWORK,
            "--ip",
            &ip.to_string(),
            &args.image,
            "sh",
            "-c",
            "hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www",
        ])
        .await?;
        cleanup.containers.push(name);
        pods.push(SocketAddrV4::new(ip, 80));
    }
    for p in &pods {
        wait_serving(*p, ctx.deadline).await?;
    }

    // The data path, per mode.
    let svc = pool[0].create(service(ns, "web", None)).await.context("cannot create the benchmark service")?;
    cleanup.services.push("web".into());
    pool[0].create(endpoints(ns, "web", &pods.iter().map(|p| *p.ip()).collect::<Vec<_>>(), 80)).await.context("create endpoints")?;
    let vip: Ipv4Addr = svc.spec.unwrap_or_default().cluster_ip.parse().context("the service got no IPv4 ClusterIP")?;
    let front = SocketAddrV4::new(vip, 80);
    for mode in &modes {
        let mut proxy = ProxyProcess::start(bin, ctx, mode, args, subnet)?;
        proxy.wait_ready(ctx.deadline.min(Instant::now() + args.ready_timeout)).await?;
        wait_bound(vip, ctx.deadline).await?;
        wait_serving(front, ctx.deadline).await?;
        let (direct, through) = compare(args, ctx, &pods, front).await?;
        let (d_rps, t_rps) = (direct.per_s(), through.per_s());
        let (d50, d99) = (quantile_ms(&direct.latency, 0.5), quantile_ms(&direct.latency, 0.99));
        let (t50, t99) = (quantile_ms(&through.latency, 0.5), quantile_ms(&through.latency, 0.99));
        info!(mode, direct_rps = d_rps, clusterip_rps = t_rps, direct_p99_ms = d99, clusterip_p99_ms = t99, "data path measured");
        f.measure(format!("{mode}_direct_requests_per_s"), d_rps);
        f.measure(format!("{mode}_requests_per_s"), t_rps);
        f.measure(format!("{mode}_throughput_ratio"), t_rps / d_rps.max(1e-9));
        f.measure(format!("{mode}_direct_p50_ms"), d50);
        f.measure(format!("{mode}_p50_ms"), t50);
        f.measure(format!("{mode}_p50_ratio"), t50 / d50.max(1e-9));
        f.measure(format!("{mode}_direct_p99_ms"), d99);
        f.measure(format!("{mode}_p99_ms"), t99);
        f.measure(format!("{mode}_p99_ratio"), t99 / d99.max(1e-9));
        proxy.stop().await;
        cleanup.proxy().await;
    }
    // From here on no packet goes to the pods.
    cleanup.backends().await;

    // Sync of large clusters, per mode.
    for &n in args.sync_services.iter().filter(|n| **n > 0) {
        let names = create_services(ctx, args, pool, ns, n).await?;
        cleanup.services.extend(names.iter().cloned());
        for mode in &modes {
            if mode == "iptables" && args.iptables_backend == "nft" && n > args.iptables_nft_max_services {
                warn!(
                    services = n,
                    "skipping iptables (nft backend) at this size: iptables-nft-restore takes minutes; see --iptables-backend legacy"
                );
                continue;
            }
            let started = Instant::now();
            let mut proxy = ProxyProcess::start(bin, ctx, mode, args, subnet)?;
            let ready = proxy.wait_ready(ctx.deadline.min(started + args.ready_timeout)).await;
            if let Err(e) = ready {
                warn!(mode, services = n, error = %e, "the proxy did not become ready; no figure");
                proxy.stop().await;
                cleanup.proxy().await;
                continue;
            }
            let ready_ms = started.elapsed().as_secs_f64() * 1000.0;
            let metrics = proxy.metrics().await.unwrap_or_default();
            let full = metric(&metrics, "berth_proxy_sync_duration_seconds_sum{kind=\"full\"}");
            let partial_before = metric(&metrics, "berth_proxy_sync_duration_seconds_sum{kind=\"partial\"}").unwrap_or(0.0);
            let partials_before = metric(&metrics, "berth_proxy_sync_duration_seconds_count{kind=\"partial\"}").unwrap_or(0.0);
            // One partial sync: the first service gets one more endpoint, then loses it.
            let mut changed = endpoints(ns, &names[0], &fake_endpoints(0, args.sync_endpoints + 1), 8080);
            let current: Endpoints = pool[0].get(ns, &names[0]).await.context("get endpoints")?;
            changed.metadata = current.metadata;
            pool[0].update(changed).await.context("update endpoints")?;
            let mut partial = None;
            let until = ctx.deadline.min(Instant::now() + Duration::from_secs(30));
            while Instant::now() < until {
                let text = proxy.metrics().await.unwrap_or_default();
                let count = metric(&text, "berth_proxy_sync_duration_seconds_count{kind=\"partial\"}").unwrap_or(0.0);
                if count > partials_before {
                    let sum = metric(&text, "berth_proxy_sync_duration_seconds_sum{kind=\"partial\"}").unwrap_or(0.0);
                    partial = Some((sum - partial_before) / (count - partials_before));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut restore = endpoints(ns, &names[0], &fake_endpoints(0, args.sync_endpoints), 8080);
            let current: Endpoints = pool[0].get(ns, &names[0]).await.context("get endpoints")?;
            restore.metadata = current.metadata;
            pool[0].update(restore).await.context("update endpoints")?;
            // A restart over what the first process installed: the full sync
            // that a periodic resync or a restart does (VIPs already bound).
            proxy.stop().await;
            let mut proxy = ProxyProcess::start(bin, ctx, mode, args, subnet)?;
            let warm = match proxy.wait_ready(ctx.deadline.min(Instant::now() + args.ready_timeout)).await {
                Ok(()) => metric(&proxy.metrics().await.unwrap_or_default(), "berth_proxy_sync_duration_seconds_sum{kind=\"full\"}"),
                Err(e) => {
                    warn!(mode, services = n, error = %e, "the restarted proxy did not become ready");
                    None
                }
            };
            info!(mode, services = n, cold_s = ?full, warm_s = ?warm, partial_s = ?partial, ready_ms, "sync measured");
            if let Some(warm) = warm {
                f.measure(format!("{mode}_full_sync_{n}_ms"), warm * 1000.0);
            }
            if let Some(full) = full {
                f.measure(format!("{mode}_cold_sync_{n}_ms"), full * 1000.0);
            }
            if let Some(p) = partial {
                f.measure(format!("{mode}_partial_sync_{n}_ms"), p * 1000.0);
            }
            f.measure(format!("{mode}_ready_{n}_ms"), ready_ms);
            proxy.stop().await;
            cleanup.proxy().await;
        }
        let deadline = ctx.cleanup_deadline();
        delete_all(pool, 32, "Endpoints", ns, names.clone(), deadline).await;
        delete_all(pool, 32, "Service", ns, names.clone(), deadline).await;
        let gone: BTreeSet<String> = names.into_iter().collect();
        cleanup.services.retain(|s| !gone.contains(s));
    }
    Ok(f)
}

fn service(ns: &str, name: &str, target_port: Option<i32>) -> Service {
    Service {
        metadata: Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() }),
        spec: Some(ServiceSpec {
            ports: vec![ServicePort {
                protocol: "TCP".into(),
                port: 80,
                target_port: target_port.unwrap_or(80).to_string(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn endpoints(ns: &str, name: &str, ips: &[Ipv4Addr], port: i32) -> Endpoints {
    Endpoints {
        metadata: Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() }),
        subsets: vec![EndpointSubset {
            addresses: ips.iter().map(|ip| EndpointAddress { ip: ip.to_string(), ..Default::default() }).collect(),
            ports: vec![EndpointPort { port, protocol: "TCP".into(), ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Endpoint addresses of service `i`, distinct for up to 250,000 services
/// of 16 endpoints, in 100.64.0.0/10: written into rules, never sent a packet.
fn fake_endpoints(i: usize, n: usize) -> Vec<Ipv4Addr> {
    (0..n).map(|e| Ipv4Addr::from(0x6440_0000u32 + ((i * 16 + e) as u32 % 0x003f_fffe) + 1)).collect()
}

async fn create_services(ctx: &Ctx, args: &Args, pool: &[Client], ns: &str, n: usize) -> anyhow::Result<Vec<String>> {
    let names: Arc<Vec<String>> = Arc::new((0..n).map(|i| format!("sync-{i:05}")).collect());
    let (pool, ns_owned, per) = (pool.to_vec(), ns.to_string(), args.sync_endpoints);
    let names2 = names.clone();
    let started = Instant::now();
    let phase = phase::run("create", 32, n, ctx.deadline, move |w, i| {
        let client = pool[w % pool.len()].clone();
        let (ns, name) = (ns_owned.clone(), names2[i].clone());
        async move {
            client.create(service(&ns, &name, Some(8080))).await?;
            client.create(endpoints(&ns, &name, &fake_endpoints(i, per), 8080)).await?;
            Ok::<(), berth_client::Error>(())
        }
    })
    .await;
    phase.ensure_finished()?;
    info!(services = n, took_s = started.elapsed().as_secs_f64(), "sync services created");
    Ok(names.to_vec())
}

/// Rounds of alternating direct and ClusterIP load: the machine's other
/// work drifts, and alternating spreads the drift over both sides.
const ROUNDS: usize = 6;

/// Requests and latencies of one side of the comparison.
struct Side {
    done: u64,
    wall: Duration,
    latency: hdrhistogram::Histogram<u64>,
}

impl Side {
    fn new() -> Side {
        Side { done: 0, wall: Duration::ZERO, latency: phase::histogram() }
    }

    fn add(&mut self, p: &phase::Phase) {
        self.done += p.done;
        self.wall += p.wall;
        let _ = self.latency.add(&p.latency);
    }

    fn per_s(&self) -> f64 {
        self.done as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// The same load directly to the pods (round robin) and through the ClusterIP.
async fn compare(args: &Args, ctx: &Ctx, pods: &[SocketAddrV4], front: SocketAddrV4) -> anyhow::Result<(Side, Side)> {
    let pods: Arc<Vec<SocketAddrV4>> = Arc::new(pods.to_vec());
    let direct_target = move |i: usize| pods[i % pods.len()];
    let per_round = (args.requests / ROUNDS).max(1);
    let (mut direct, mut through) = (Side::new(), Side::new());
    // Warm up (connection tracking, ARP, caches) without measuring.
    load("warmup", args.concurrency * 20, args.concurrency, ctx, direct_target.clone()).await?;
    load("warmup", args.concurrency * 20, args.concurrency, ctx, move |_| front).await?;
    for round in 0..ROUNDS {
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            if side == 0 {
                direct.add(&load("direct", per_round, args.concurrency, ctx, direct_target.clone()).await?);
            } else {
                through.add(&load("clusterip", per_round, args.concurrency, ctx, move |_| front).await?);
            }
        }
    }
    Ok((direct, through))
}

/// `requests` HTTP/1.0 GETs from this process, `concurrency` at a time.
async fn load(
    name: &'static str,
    requests: usize,
    concurrency: usize,
    ctx: &Ctx,
    target: impl Fn(usize) -> SocketAddrV4 + Send + Sync + 'static,
) -> anyhow::Result<phase::Phase> {
    let p = phase::run(name, concurrency, requests, ctx.deadline, move |_, i| get(target(i))).await;
    p.ensure_finished()?;
    if p.errors > 0 {
        warn!(phase = name, errors = p.errors, "requests failed");
    }
    Ok(p)
}

async fn get(addr: SocketAddrV4) -> anyhow::Result<()> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
    let mut buf = Vec::with_capacity(512);
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await??;
    anyhow::ensure!(buf.starts_with(b"HTTP/1.") && buf.windows(5).any(|w| w == b" 200 "), "not a 200 response");
    Ok(())
}

async fn wait_serving(addr: SocketAddrV4, deadline: Instant) -> anyhow::Result<()> {
    let until = deadline.min(Instant::now() + Duration::from_secs(60));
    loop {
        match get(addr).await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= until => bail!("{addr} does not answer: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until the proxy has bound `vip` to its interface: only then may a packet go to it.
async fn wait_bound(vip: Ipv4Addr, deadline: Instant) -> anyhow::Result<()> {
    let until = deadline.min(Instant::now() + Duration::from_secs(60));
    loop {
        let out = Command::new("ip").args(["-o", "-4", "addr", "show", "dev", INTERFACE]).output().await.context("cannot run ip")?;
        if String::from_utf8_lossy(&out.stdout).contains(&format!("inet {vip}/32")) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < until, "the proxy did not bind {vip} to {INTERFACE}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A value of the proxy's /metrics, by the line's start (name and labels).
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

/// A berth-proxy process; killed when dropped.
struct ProxyProcess {
    child: tokio::process::Child,
    health: SocketAddr,
}

impl ProxyProcess {
    fn start(bin: &PathBuf, ctx: &Ctx, mode: &str, args: &Args, subnet: (Ipv4Addr, u8)) -> anyhow::Result<ProxyProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).context("no free port")?.port();
        let health: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut cmd = Command::new(bin);
        cmd.arg("--server").arg(ctx.client_config().server);
        if let Some(token) = &ctx.common.token {
            cmd.env("BERTH_TOKEN", token);
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        cmd.args(["--mode", mode, "--health-listen", &health.to_string(), "--min-sync-period", "10ms", "--sync-period", "10m"])
            .args(["--interface", INTERFACE, "--table-name", TABLE, "--chain-prefix", CHAIN_PREFIX])
            .args(["--iptables-backend", &args.iptables_backend, "--nodeport-addresses", "127.0.0.1"])
            .args(["--cluster-cidr", &args.cluster_cidr.clone().unwrap_or_else(|| format!("{}/{}", subnet.0, subnet.1))])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(ProxyProcess { child, health })
    }

    async fn wait_ready(&mut self, until: Instant) -> anyhow::Result<()> {
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("berth-proxy exited at start: {status}");
            }
            if http_get(self.health, "/readyz").await.is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < until, "berth-proxy did not become ready in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn metrics(&self) -> Option<String> {
        http_get(self.health, "/metrics").await
    }

    /// SIGTERM, then (after 10 s) SIGKILL.
    async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

async fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await.ok()?.ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_a_labelled_metric() {
        let text = "# HELP x\nberth_proxy_sync_duration_seconds_sum{kind=\"full\"} 0.25\nberth_proxy_sync_duration_seconds_count{kind=\"full\"} 1\n";
        assert_eq!(metric(text, "berth_proxy_sync_duration_seconds_sum{kind=\"full\"}"), Some(0.25));
        assert_eq!(metric(text, "berth_proxy_sync_duration_seconds_sum{kind=\"partial\"}"), None);
    }

    #[test]
    fn should_spread_fake_endpoints_over_distinct_addresses() {
        let a = fake_endpoints(0, 10);
        let b = fake_endpoints(1, 10);
        assert_eq!(a.len(), 10);
        assert!(a.iter().all(|ip| !b.contains(ip)));
        assert_eq!(host(("172.28.250.0".parse().unwrap(), 24), 10), Ipv4Addr::new(172, 28, 250, 10));
    }
}
