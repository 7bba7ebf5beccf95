//! The `dns` scenario: what the cluster DNS answers from inside a pod, how
//! fast, beside a resolver on the host, and how soon a Service change shows.
//!
//! The benchmark starts its own berth-dns (`--listen GATEWAY:PORT`, the
//! cluster bridge's gateway, so pods reach it) on the cluster given by
//! `--server`, with a resolv.conf naming a dnsmasq it also starts on
//! `GATEWAY:53`: dnsmasq is the host resolver both for the comparison and
//! for berth-dns' forwarded names, so no query leaves the machine. One pod
//! (busybox `sleep`) per `--pods` is bound to `--node`; its network namespace is entered
//! to open the query sockets, so the load comes from the pod's address
//! through the pod's routes. `--concurrency` sockets, spread over `--pods`
//! pods (berth-dns limits each client address to
//! `--max-queries-per-client`), each keep one query in flight for
//! `--duration` per path:
//! - `cluster_direct`: a Service's name, asked of berth-dns directly;
//! - `cluster_via_service`: the same, through a ClusterIP Service in front
//!   of berth-dns (as pods ask `kube-dns`; needs a berth-proxy on the node);
//! - `forward`: names under `bench.example`, which berth-dns forwards to
//!   dnsmasq (and then answers from its bounded cache, as CoreDNS would);
//! - `host_resolver`: the same Service name, answered by dnsmasq from a
//!   host record: the floor a resolver on this host sets.
//!
//! A query counts when its answer arrives with the right id and NOERROR;
//! one with no answer within a second is `lost`. Change visibility: a
//! Service is created `--changes` times, and berth-dns is asked for its name
//! every millisecond from when the create returns until the ClusterIP is
//! answered. CPU per query comes from /proc for berth-dns and dnsmasq.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use berth_api::pb::core::{
    Container, EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, Pod, PodSpec, Service, ServicePort, ServiceSpec,
};
use berth_base::duration::parse_duration;
use berth_client::{Client, DeleteParams};
use hdrhistogram::Histogram;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use tokio::net::UdpSocket;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tracing::{info, warn};

use super::{connect_pool, create_namespace, delete_namespace};
use crate::Ctx;
use crate::phase::{histogram, max_ms, quantile_ms, record};
use crate::report::Figures;
use crate::{netns, procfs};

/// Flags of the `dns` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The node whose kubelet runs the client pod (bound directly, no scheduler).
    #[arg(long)]
    pub node: String,
    /// The cluster bridge's gateway on this host, where pods reach host daemons.
    #[arg(long, default_value = "172.30.0.1")]
    pub gateway: Ipv4Addr,
    /// The berth-dns binary (default: next to this program).
    #[arg(long)]
    pub dns_bin: Option<PathBuf>,
    /// The host resolver to compare with (Debian: apt-get install dnsmasq-base).
    #[arg(long, default_value = "dnsmasq")]
    pub dnsmasq: PathBuf,
    /// The client pod's image (deploy/test-image.sh builds it).
    #[arg(long, default_value = "berth/busybox:1")]
    pub image: String,
    /// Client pods; the sockets are spread over them (berth-dns limits each client address).
    #[arg(long, default_value_t = 8)]
    pub pods: usize,
    /// Sockets in all, each with one query in flight.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// berth-dns' --max-queries-per-client (default: berth-dns' own default).
    #[arg(long)]
    pub max_queries_per_client: Option<u32>,
    /// How long each path is loaded.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Services created to time how soon berth-dns answers a new name.
    #[arg(long, default_value_t = 20)]
    pub changes: usize,
    /// The cluster domain berth-dns serves.
    #[arg(long, default_value = "cluster.local")]
    pub cluster_domain: String,
}

/// What one path's load gave.
struct Load {
    answered: u64,
    lost: u64,
    wrong: u64,
    wall: Duration,
    latency: Histogram<u64>,
}

/// The daemons and objects a run made, removed on every exit path.
#[derive(Default)]
struct Cleanup {
    children: Vec<Child>,
    pods: Vec<String>,
    dir: Option<tempfile::TempDir>,
}

impl Cleanup {
    async fn run(&mut self, client: &Client, ns: &str) {
        for mut c in self.children.drain(..) {
            let _ = c.kill().await;
        }
        for pod in self.pods.drain(..) {
            let params = DeleteParams { grace_period_seconds: Some(0), ..Default::default() };
            if let Err(e) = client.delete::<Pod>(ns, &pod, &params).await {
                warn!(pod, error = %e, "cannot delete a benchmark client pod");
            }
        }
        self.dir = None;
    }
}

pub async fn run(ctx: &Ctx, args: &Args) -> anyhow::Result<Figures> {
    anyhow::ensure!(args.concurrency > 0 && args.pods > 0, "--concurrency and --pods must be at least 1");
    let client = connect_pool(ctx, 1).await?.remove(0);
    let (ns, _) = create_namespace(&client, ctx.deadline).await?;
    let mut cleanup = Cleanup::default();
    let result = measure(ctx, args, &client, &ns, &mut cleanup).await;
    cleanup.run(&client, &ns).await;
    delete_namespace(&client, &ns, ctx.cleanup_deadline()).await;
    result
}

fn meta(ns: &str, name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() })
}

fn free_port(ip: Ipv4Addr) -> anyhow::Result<u16> {
    for _ in 0..100 {
        let udp =
            std::net::UdpSocket::bind((ip, 0)).with_context(|| format!("cannot bind {ip}: is the cluster bridge up (a kubelet Ready)?"))?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port of {ip} is free for both UDP and TCP")
}

async fn measure(ctx: &Ctx, args: &Args, client: &Client, ns: &str, cleanup: &mut Cleanup) -> anyhow::Result<Figures> {
    let domain = args.cluster_domain.trim_end_matches('.');
    // A Service whose name the paths ask for.
    let web = client
        .create(Service {
            metadata: meta(ns, "web"),
            spec: Some(ServiceSpec { ports: vec![port("http", 80, 80, "TCP")], ..Default::default() }),
            ..Default::default()
        })
        .await
        .context("cannot create the benchmark's Service")?;
    let web_ip: Ipv4Addr = web.spec.unwrap_or_default().cluster_ip.parse().context("the Service got no IPv4 ClusterIP")?;
    let web_name = format!("web.{ns}.svc.{domain}.");

    // dnsmasq: the host resolver, and berth-dns' upstream.
    let dir = tempfile::tempdir().context("temporary folder")?;
    let dnsmasq = Command::new(&args.dnsmasq)
        .args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces", "--port=53", "--user=root", "--pid-file="])
        .arg(format!("--listen-address={}", args.gateway))
        .arg("--log-facility=-")
        .arg("--address=/bench.example/192.0.2.1")
        .arg(format!("--host-record={},{web_ip}", web_name.trim_end_matches('.')))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} (Debian: apt-get install dnsmasq-base)", args.dnsmasq.display()))?;
    let dnsmasq_pid = dnsmasq.id();
    cleanup.children.push(dnsmasq);
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {}\n", args.gateway)).context("write resolv.conf")?;

    // berth-dns on the gateway, reading the cluster through --server.
    let dns_port = free_port(args.gateway)?;
    let health = free_port(Ipv4Addr::LOCALHOST)?;
    let bin = match &args.dns_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("where is berth-bench")?.with_file_name("berth-dns"),
    };
    let mut dns = Command::new(&bin);
    dns.arg("--server").arg(ctx.client_config().server);
    if let Some(t) = &ctx.common.token {
        dns.arg("--token").arg(t);
    }
    if let Some(n) = args.max_queries_per_client {
        dns.arg("--max-queries-per-client").arg(n.to_string());
    }
    let dns = dns
        .arg("--listen")
        .arg(format!("{}:{dns_port}", args.gateway))
        .arg("--health-listen")
        .arg(format!("127.0.0.1:{health}"))
        .arg("--cluster-domain")
        .arg(domain)
        .arg("--resolv-conf")
        .arg(&resolv)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("berth-dns.log")).context("log file")?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let dns_pid = dns.id();
    cleanup.children.push(dns);
    cleanup.dir = Some(dir);
    let direct = SocketAddr::from((args.gateway, dns_port));
    let host_resolver = SocketAddr::from((args.gateway, 53));

    // A ClusterIP Service in front of berth-dns, as kube-dns is.
    let front = client
        .create(Service {
            metadata: meta(ns, "dns"),
            spec: Some(ServiceSpec { ports: vec![port("dns", 53, i32::from(dns_port), "UDP")], ..Default::default() }),
            ..Default::default()
        })
        .await
        .context("cannot create the DNS Service")?;
    client
        .create(Endpoints {
            metadata: meta(ns, "dns"),
            subsets: vec![EndpointSubset {
                addresses: vec![EndpointAddress { ip: args.gateway.to_string(), ..Default::default() }],
                ports: vec![EndpointPort { name: "dns".into(), port: i32::from(dns_port), protocol: "UDP".into(), ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .context("cannot create the DNS Service's Endpoints")?;
    let front_ip: Ipv4Addr = front.spec.unwrap_or_default().cluster_ip.parse().context("the DNS Service got no ClusterIP")?;
    let via_service = SocketAddr::from((front_ip, 53));

    // The client pods, and sockets in their network namespaces.
    let names: Vec<String> = (0..args.pods).map(|i| format!("dns-client-{i}")).collect();
    for name in &names {
        client
            .create(Pod {
                metadata: meta(ns, name),
                spec: Some(PodSpec {
                    node_name: args.node.clone(),
                    termination_grace_period_seconds: Some(0),
                    containers: vec![Container {
                        name: "app".into(),
                        image: args.image.clone(),
                        command: vec!["sleep".into(), "3600".into()],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create the client pod {name}"))?;
        cleanup.pods.push(name.clone());
    }
    let mut pids = Vec::new();
    for name in &names {
        pids.push(loop {
            let pod: Pod = client.get(ns, name).await.with_context(|| format!("get the client pod {name}"))?;
            if pod.status.as_ref().is_some_and(|s| s.phase == "Running")
                && let Ok(pid) = netns::pod_sandbox_pid(&args.node, ns, name)
            {
                break pid;
            }
            if Instant::now() > ctx.deadline {
                bail!("the client pod {name} did not run on node {} in time (is its kubelet up?)", args.node);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
    }
    let sockets = (0..args.concurrency)
        .map(|i| {
            netns::udp_socket(pids[i % pids.len()], SocketAddr::from(([0, 0, 0, 0], 0))).and_then(|s| {
                UdpSocket::from_std(s).map_err(|source| netns::Error::Bind { addr: SocketAddr::from(([0, 0, 0, 0], 0)), source })
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .context("cannot open sockets in the client pods")?;
    let sockets: Vec<Arc<UdpSocket>> = sockets.into_iter().map(Arc::new).collect();

    // Every path answers before it is loaded.
    let forward_names: Arc<Vec<Name>> =
        Arc::new((0..100).map(|i| Name::from_str(&format!("n{i}.bench.example.")).expect("a valid name")).collect());
    let web_names: Arc<Vec<Name>> = Arc::new(vec![Name::from_str(&web_name).context("Service name")?]);
    for (what, to, names) in [
        ("berth-dns (is it up? see its log)", direct, &web_names),
        ("dnsmasq (is port 53 of the gateway free?)", host_resolver, &web_names),
        ("the DNS Service's ClusterIP (is berth-proxy running on this node?)", via_service, &web_names),
        ("berth-dns for a forwarded name", direct, &forward_names),
    ] {
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            if ask(&sockets[0], to, &names[0], 1).await.is_some() {
                break;
            }
            if Instant::now() > until.min(ctx.deadline) {
                bail!("no answer from {what} at {to} from inside the pod");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    let mut f = Figures::new();
    let mut loads = Vec::new();
    for (path, to, names, pid) in [
        ("cluster_direct", direct, &web_names, dns_pid),
        ("cluster_via_service", via_service, &web_names, dns_pid),
        ("forward", direct, &forward_names, dns_pid),
        ("host_resolver", host_resolver, &web_names, dnsmasq_pid),
    ] {
        let cpu0 = pid.and_then(|p| procfs::cpu_seconds(p).ok());
        let load = load(&sockets, to, names.clone(), args.duration).await;
        let cpu1 = pid.and_then(|p| procfs::cpu_seconds(p).ok());
        let qps = load.answered as f64 / load.wall.as_secs_f64().max(1e-9);
        info!(path, qps, p99_ms = quantile_ms(&load.latency, 0.99), lost = load.lost, wrong = load.wrong, "path measured");
        f.measure(format!("{path}_queries_per_s"), qps);
        f.measure(format!("{path}_p50_ms"), quantile_ms(&load.latency, 0.50));
        f.measure(format!("{path}_p99_ms"), quantile_ms(&load.latency, 0.99));
        f.count(format!("{path}_lost"), load.lost);
        f.count(format!("{path}_wrong"), load.wrong);
        if let (Some(a), Some(b)) = (cpu0, cpu1)
            && load.answered > 0
        {
            f.measure(format!("{path}_server_cpu_us_per_query"), (b - a) * 1e6 / load.answered as f64);
        }
        loads.push((path, qps, quantile_ms(&load.latency, 0.99)));
    }
    let of = |p: &str| loads.iter().find(|l| l.0 == p).map(|l| (l.1, l.2)).unwrap_or((f64::NAN, f64::NAN));
    let (host_qps, host_p99) = of("host_resolver");
    for p in ["cluster_direct", "cluster_via_service", "forward"] {
        let (qps, p99) = of(p);
        f.measure(format!("{p}_to_host_resolver_qps_ratio"), qps / host_qps.max(1e-9));
        f.measure(format!("{p}_to_host_resolver_p99_ratio"), p99 / host_p99.max(1e-9));
    }

    // How soon a new Service is answered.
    let host_socket = UdpSocket::bind("0.0.0.0:0").await.context("a host socket")?;
    let mut visible = histogram();
    for i in 0..args.changes {
        let name = format!("chg-{i}");
        let created = client
            .create(Service {
                metadata: meta(ns, &name),
                spec: Some(ServiceSpec { ports: vec![port("http", 80, 80, "TCP")], ..Default::default() }),
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create Service {name}"))?;
        let t0 = Instant::now();
        let ip: Ipv4Addr = created.spec.unwrap_or_default().cluster_ip.parse().context("no ClusterIP")?;
        let qname = Name::from_str(&format!("{name}.{ns}.svc.{domain}.")).context("name")?;
        loop {
            if let Some(answer) = ask(&host_socket, direct, &qname, 0).await
                && answer.answers().iter().any(|r| matches!(r.data(), RData::A(a) if a.0 == ip))
            {
                record(&mut visible, t0.elapsed());
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("berth-dns did not answer the new Service {name} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let _ = client.delete::<Service>(ns, &name, &DeleteParams::default()).await;
    }
    if args.changes > 0 {
        f.count("changes", args.changes as u64);
        f.measure("change_visible_p50_ms", quantile_ms(&visible, 0.50));
        f.measure("change_visible_p99_ms", quantile_ms(&visible, 0.99));
        f.measure("change_visible_max_ms", max_ms(&visible));
    }
    Ok(f)
}

fn port(name: &str, port: i32, target: i32, protocol: &str) -> ServicePort {
    ServicePort { name: name.into(), port, protocol: protocol.into(), target_port: target.to_string(), ..Default::default() }
}

fn query(name: &Name, id: u16) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    m.add_query(Query::query(name.clone(), RecordType::A));
    m.to_vec().unwrap_or_default()
}

/// One query over `socket`: the answer (NOERROR, matching id) within a second.
async fn ask(socket: &UdpSocket, to: SocketAddr, name: &Name, id: u16) -> Option<Message> {
    socket.send_to(&query(name, id), to).await.ok()?;
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (len, _) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await.ok()?.ok()?;
        match Message::from_vec(&buf[..len]) {
            Ok(m) if m.id() == id => return (m.response_code() == ResponseCode::NoError && !m.answers().is_empty()).then_some(m),
            _ => continue, // a late answer to an earlier query
        }
    }
}

/// Closed-loop load: every socket keeps one query in flight until `duration` is over.
async fn load(sockets: &[Arc<UdpSocket>], to: SocketAddr, names: Arc<Vec<Name>>, duration: Duration) -> Load {
    let start = Instant::now();
    let end = start + duration;
    let tasks: Vec<_> = sockets
        .iter()
        .enumerate()
        .map(|(w, socket)| {
            let (socket, names) = (socket.clone(), names.clone());
            tokio::spawn(async move {
                let mut l = Load { answered: 0, lost: 0, wrong: 0, wall: Duration::ZERO, latency: histogram() };
                let mut i: usize = w;
                while Instant::now() < end {
                    i += 1;
                    let id = (i % 65_536) as u16;
                    let name = &names[i % names.len()];
                    let t0 = Instant::now();
                    let bytes = query(name, id);
                    if socket.send_to(&bytes, to).await.is_err() {
                        l.lost += 1;
                        continue;
                    }
                    let mut buf = [0u8; 1500];
                    let deadline = t0 + Duration::from_secs(1);
                    loop {
                        match tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
                            Ok(Ok((len, _))) => match Message::from_vec(&buf[..len]) {
                                Ok(m) if m.id() == id => {
                                    if m.response_code() == ResponseCode::NoError && !m.answers().is_empty() {
                                        l.answered += 1;
                                        record(&mut l.latency, t0.elapsed());
                                    } else {
                                        l.wrong += 1;
                                    }
                                    break;
                                }
                                _ => continue,
                            },
                            _ => {
                                l.lost += 1;
                                break;
                            }
                        }
                    }
                }
                l
            })
        })
        .collect();
    let mut total = Load { answered: 0, lost: 0, wrong: 0, wall: Duration::ZERO, latency: histogram() };
    for t in tasks {
        if let Ok(l) = t.await {
            total.answered += l.answered;
            total.lost += l.lost;
            total.wrong += l.wrong;
            let _ = total.latency.add(&l.latency);
        }
    }
    total.wall = start.elapsed();
    total
}
