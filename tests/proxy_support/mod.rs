//! What the berth-proxy end-to-end tests share: a lease on a slice of
//! addresses and names per test (so tests run in parallel with each other
//! and with a developer's own cluster), backends in containers on a Docker
//! network the test creates, the proxy as a real process with a cleanup
//! guard, a small HTTP client, and the scenario every mode goes through.
//!
//! Traffic goes only to loopback, to the test's own Docker network, and to
//! a VIP once the proxy has bound it to its interface.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_api::pb::core::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, Service, ServicePort, ServiceSpec};
use berth_client::{Client, DeleteParams};
use berth_e2e::{Apiserver, bin, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const IMAGE: &str = "berth/busybox:1";

fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("run {cmd}: {e}"))
}

fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(out.status.success(), "{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A slot `n` (100–249) held through a lock file: the test's service CIDR
/// is 10.96.n.0/24, its pods live in 172.29.n.0/24, its interface, table
/// and chains carry `n` in their names.
pub struct Lease {
    pub n: u8,
    path: PathBuf,
}

impl Lease {
    pub fn take() -> Lease {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let start = (std::process::id() as usize + nanos as usize) % 150;
        for i in 0..150 {
            let n = 100 + ((start + i) % 150) as u8;
            let path = std::env::temp_dir().join(format!("berth-proxy-e2e-{n}.lock"));
            if let Ok(pid) = std::fs::read_to_string(&path) {
                // A lock left by a test process that died is free again.
                if pid.trim().parse::<u32>().is_ok_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
                    let _ = std::fs::remove_file(&path);
                }
            }
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                use std::io::Write;
                let _ = write!(f, "{}", std::process::id());
                return Lease { n, path };
            }
        }
        panic!("no free proxy test slot in {}", std::env::temp_dir().display());
    }

    pub fn service_cidr(&self) -> String {
        format!("10.96.{}.0/24", self.n)
    }
    pub fn pod_subnet(&self) -> String {
        format!("172.29.{}.0/24", self.n)
    }
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(172, 29, self.n, 1)
    }
    pub fn pod_ip(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(172, 29, self.n, 10 + i)
    }
    pub fn interface(&self) -> String {
        format!("bpx-vips-{}", self.n)
    }
    pub fn table(&self) -> String {
        format!("bpxt{}", self.n)
    }
    pub fn chain_prefix(&self) -> String {
        format!("BPX{}", self.n)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// busybox httpd containers, each serving its own hostname, on a Docker
/// network of the test; all removed on drop.
pub struct Backends {
    pub network: String,
    names: Vec<String>,
    n: u8,
}

impl Backends {
    pub fn new(lease: &Lease) -> Backends {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/test-image.sh");
        run_ok("bash", &[script.to_str().unwrap_or_default()]);
        let network = format!("bpx-net-{}", lease.n);
        // A network left by a killed run of this slot.
        let _ = run("docker", &["network", "rm", &network]);
        run_ok(
            "docker",
            &[
                "network",
                "create",
                "--subnet",
                &lease.pod_subnet(),
                "--gateway",
                &lease.gateway().to_string(),
                "--label",
                "berth-e2e=proxy",
                &network,
            ],
        );
        Backends { network, names: Vec::new(), n: lease.n }
    }

    /// Starts pod `i` (hostname `pod-i`, IP 172.29.n.(10+i)) and waits until it serves.
    pub fn start(&mut self, lease: &Lease, i: u8) {
        let name = format!("bpx-{}-pod-{i}", self.n);
        let _ = run("docker", &["rm", "-f", &name]);
        run_ok(
            "docker",
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--hostname",
                &format!("pod-{i}"),
                "--label",
                "berth-e2e=proxy",
                "--network",
                &self.network,
                "--ip",
                &lease.pod_ip(i).to_string(),
                IMAGE,
                "sh",
                "-c",
                "hostname > /var/www/index.html; exec httpd -f -p 80 -h /var/www",
            ],
        );
        self.names.push(name);
    }

    pub fn stop(&mut self, i: u8) {
        let name = format!("bpx-{}-pod-{i}", self.n);
        let _ = run("docker", &["rm", "-f", &name]);
        self.names.retain(|n| *n != name);
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = run("docker", &["rm", "-f", name]);
        }
        let _ = run("docker", &["network", "rm", &self.network]);
    }
}

/// A berth-proxy process; on drop it is killed and `--cleanup` removes
/// what it installed.
pub struct Proxy {
    child: Option<Child>,
    args: Vec<String>,
    naming: Vec<String>,
    pub health: u16,
    log: PathBuf,
}

impl Proxy {
    pub fn start(server: &str, mode: &str, lease: &Lease, log_dir: &std::path::Path, extra: &[String]) -> Proxy {
        let naming = vec![
            "--interface".to_string(),
            lease.interface(),
            "--table-name".into(),
            lease.table(),
            "--chain-prefix".into(),
            lease.chain_prefix(),
        ];
        let health = free_port();
        let mut args = vec![
            "--server".to_string(),
            server.to_string(),
            "--mode".into(),
            mode.into(),
            "--min-sync-period".into(),
            "100ms".into(),
            "--sync-period".into(),
            "30s".into(),
            "--health-listen".into(),
            format!("127.0.0.1:{health}"),
            "--nodeport-addresses".into(),
            format!("127.0.0.1,{}", lease.gateway()),
            "--cluster-cidr".into(),
            lease.pod_subnet(),
            "-v".into(),
        ];
        args.extend(naming.iter().cloned());
        args.extend(extra.iter().cloned());
        let mut p = Proxy { child: None, args, naming, health, log: log_dir.join(format!("proxy-{mode}.log")) };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("proxy log");
        let child = Command::new(bin("berth-proxy", "berth-proxy"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth-proxy");
        self.child = Some(child);
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (bounded) until /readyz answers 200.
    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("berth-proxy exited ({status}):\n{}", self.log());
            }
            if let Ok(body) = http_get_path(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.health), "/readyz").await
                && body.trim() == "ok"
            {
                return;
            }
            assert!(Instant::now() < deadline, "berth-proxy not ready within 60 s:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn metrics(&self) -> String {
        http_get_path(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.health), "/metrics").await.unwrap_or_default()
    }

    /// SIGTERM and wait for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running proxy");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let status = child.wait().expect("wait for berth-proxy");
        self.child = None;
        status
    }

    /// Starts the process again (after [`Proxy::terminate`]).
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "terminate first");
        self.spawn();
        self.wait_ready().await;
    }

    /// `berth-proxy --cleanup` with the same names.
    pub fn cleanup(&self) -> std::process::Output {
        let mut args = vec!["--cleanup".to_string()];
        args.extend(self.naming.iter().cloned());
        Command::new(bin("berth-proxy", "berth-proxy")).args(&args).output().expect("berth-proxy --cleanup")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cleanup();
    }
}

/// GET `path` over HTTP/1.0; the body (10 s at most).
pub async fn http_get_path(addr: SocketAddrV4, path: &str) -> std::io::Result<String> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return Err(std::io::Error::other(format!("no HTTP response: {text:?}")));
        };
        if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
            return Err(std::io::Error::other(format!("HTTP error: {head}")));
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// The hostname of the pod that served `addr`.
pub async fn who(addr: SocketAddrV4) -> std::io::Result<String> {
    Ok(http_get_path(addr, "/").await?.trim().to_string())
}

/// Polls `f` until it holds, for at most `secs` seconds.
pub async fn eventually<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f().await {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => panic!("{what}: not within {secs} s: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// IPv4 addresses on `interface` (empty if it does not exist).
pub fn interface_addresses(interface: &str) -> BTreeSet<Ipv4Addr> {
    let out = run("ip", &["-o", "-4", "addr", "show", "dev", interface]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.find(|x| *x == "inet")?;
            w.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

pub fn interface_exists(interface: &str) -> bool {
    run("ip", &["link", "show", "dev", interface]).status.success()
}

/// What a mode has installed, as a sorted list of lines: the interface's
/// addresses plus the nft table, our iptables chains or the listening relays.
pub fn installed(mode: &str, lease: &Lease) -> Vec<String> {
    let mut lines: Vec<String> = interface_addresses(&lease.interface()).into_iter().map(|a| format!("vip {a}")).collect();
    match mode {
        "nftables" => {
            let out = run("nft", &["list", "table", "ip", &lease.table()]);
            lines.extend(String::from_utf8_lossy(&out.stdout).split([',', '\n']).map(|l| l.trim().to_string()).filter(|l| !l.is_empty()));
        }
        "iptables" => {
            let out = run("iptables-nft-save", &["-t", "nat"]);
            let prefix = format!("{}-", lease.chain_prefix());
            lines.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.contains(&prefix))
                    .map(|l| l.split(" [").next().unwrap_or(l).to_string()),
            );
        }
        "ipvs" => {
            let out = run("ipvsadm", &["-S", "-n"]);
            let vip_prefix = format!("10.96.{}.", lease.n);
            let gateway = format!("{}:", lease.gateway());
            lines.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.contains(&vip_prefix) || l.contains(&gateway))
                    .map(str::to_string),
            );
        }
        _ => {
            let out = run("ss", &["-H", "-l", "-n", "-t", "-u"]);
            let vip_prefix = format!("10.96.{}.", lease.n);
            lines.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
                    .filter(|local| local.starts_with(&vip_prefix) || local.starts_with(&format!("{}:", lease.gateway()))),
            );
        }
    }
    lines.sort();
    lines
}

fn service(node_port: bool) -> Service {
    Service {
        metadata: Some(ObjectMeta { name: "web".into(), namespace: "default".into(), ..Default::default() }),
        spec: Some(ServiceSpec {
            r#type: if node_port { "NodePort".into() } else { "ClusterIP".into() },
            ports: vec![ServicePort {
                name: "http".into(),
                protocol: "TCP".into(),
                port: 80,
                target_port: "80".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn endpoints(lease: &Lease, ready: &[u8], not_ready: &[u8]) -> Endpoints {
    let addr = |i: &u8| EndpointAddress { ip: lease.pod_ip(*i).to_string(), hostname: format!("pod-{i}"), ..Default::default() };
    Endpoints {
        metadata: Some(ObjectMeta { name: "web".into(), namespace: "default".into(), ..Default::default() }),
        subsets: vec![EndpointSubset {
            addresses: ready.iter().map(addr).collect(),
            not_ready_addresses: not_ready.iter().map(addr).collect(),
            ports: vec![EndpointPort { name: "http".into(), port: 80, protocol: "TCP".into(), ..Default::default() }],
        }],
        ..Default::default()
    }
}

async fn set_endpoints(client: &Client, lease: &Lease, ready: &[u8], not_ready: &[u8]) {
    let mut eps = endpoints(lease, ready, not_ready);
    match client.get::<Endpoints>("default", "web").await {
        Ok(current) => {
            eps.metadata = current.metadata;
            client.update(eps).await.expect("update endpoints");
        }
        Err(_) => {
            client.create(eps).await.expect("create endpoints");
        }
    }
}

async fn set_affinity(client: &Client, on: bool) {
    let mut svc: Service = client.get("default", "web").await.expect("get service");
    let spec = svc.spec.get_or_insert_with(Default::default);
    spec.session_affinity = if on { "ClientIP".into() } else { "None".into() };
    if !on {
        spec.session_affinity_config = None;
    }
    client.update(svc).await.expect("update service affinity");
}

/// `n` requests to `addr`: the pods that answered, in order.
async fn sample(addr: SocketAddrV4, n: usize) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(who(addr).await.map_err(|e| format!("request to {addr} failed: {e}"))?);
    }
    Ok(out)
}

/// What every mode is put through, as the issue lists it.
pub async fn scenario(mode: &str) {
    let lease = Lease::take();
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let api = Apiserver::start(&data, free_port(), &["--service-cidr", &lease.service_cidr()]).await;
    let client = api.client().await;
    let mut pods = Backends::new(&lease);
    for i in 0..3 {
        pods.start(&lease, i);
    }

    let svc = client.create(service(true)).await.expect("create service");
    let spec = svc.spec.clone().unwrap_or_default();
    let vip: Ipv4Addr = spec.cluster_ip.parse().expect("a ClusterIP was allocated");
    let node_port = u16::try_from(spec.ports[0].node_port).expect("a NodePort was allocated");
    assert!(vip.octets()[2] == lease.n, "ClusterIP {vip} from the test's CIDR {}", lease.service_cidr());
    set_endpoints(&client, &lease, &[0, 1, 2], &[]).await;

    let mut proxy = Proxy::start(&api.url(), mode, &lease, tmp.path(), &[]);
    proxy.wait_ready().await;
    let iface = lease.interface();
    eventually("the VIP is bound to the proxy's interface", 30, || {
        let result = if interface_addresses(&iface).contains(&vip) { Ok(()) } else { Err(format!("{vip} not on {iface}")) };
        async move { result }
    })
    .await;
    let front = SocketAddrV4::new(vip, 80);

    // Repeated requests to the ClusterIP reach each of the 3 pods.
    eventually("requests to the ClusterIP reach all 3 pods", 60, || async move {
        let seen: BTreeSet<String> = sample(front, 30).await?.into_iter().collect();
        if seen.len() == 3 { Ok(()) } else { Err(format!("reached {seen:?}")) }
    })
    .await;

    // The NodePort answers on 127.0.0.1 and on the network's gateway address.
    for host in [Ipv4Addr::LOCALHOST, lease.gateway()] {
        let addr = SocketAddrV4::new(host, node_port);
        eventually(&format!("NodePort {addr} answers"), 30, || async move { sample(addr, 3).await.map(|_| ()) }).await;
    }

    // A pod that turns unready stops being served.
    set_endpoints(&client, &lease, &[1, 2], &[0]).await;
    eventually("the unready pod-0 is no longer served", 30, || async move {
        let seen = sample(front, 20).await?;
        if seen.iter().any(|p| p == "pod-0") { Err(format!("pod-0 still served: {seen:?}")) } else { Ok(()) }
    })
    .await;
    set_endpoints(&client, &lease, &[0, 1, 2], &[]).await;

    // ClientIP affinity keeps one client on one pod.
    set_affinity(&client, true).await;
    eventually("affinity keeps the client on one pod", 30, || async move {
        let seen: BTreeSet<String> = sample(front, 15).await?.into_iter().collect();
        if seen.len() == 1 { Ok(()) } else { Err(format!("spread over {seen:?}")) }
    })
    .await;
    let seen: BTreeSet<String> = sample(front, 30).await.expect("requests with affinity").into_iter().collect();
    assert_eq!(seen.len(), 1, "one client, one pod: {seen:?}");
    set_affinity(&client, false).await;
    eventually("without affinity the pods share the load again", 30, || async move {
        let seen: BTreeSet<String> = sample(front, 30).await?.into_iter().collect();
        if seen.len() == 3 { Ok(()) } else { Err(format!("reached {seen:?}")) }
    })
    .await;

    // Scaling adds and removes backends while requests keep succeeding.
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        tokio::spawn(async move {
            let mut errors = Vec::new();
            // Bounded: stops when told, or after 3000 requests.
            for _ in 0..3000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match who(front).await {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        errors.push(e.to_string());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        })
    };
    pods.start(&lease, 3);
    eventually("pod-3 serves the running container before it is added", 30, || {
        let addr = SocketAddrV4::new(lease.pod_ip(3), 80);
        async move { who(addr).await.map(|_| ()).map_err(|e| e.to_string()) }
    })
    .await;
    set_endpoints(&client, &lease, &[0, 1, 2, 3], &[]).await;
    eventually("the new pod-3 is served", 30, || async move {
        let seen = sample(front, 20).await?;
        if seen.iter().any(|p| p == "pod-3") { Ok(()) } else { Err(format!("{seen:?}")) }
    })
    .await;
    set_endpoints(&client, &lease, &[0, 2, 3], &[]).await;
    eventually("the removed pod-1 is no longer served", 30, || async move {
        let seen = sample(front, 20).await?;
        if seen.iter().any(|p| p == "pod-1") { Err(format!("{seen:?}")) } else { Ok(()) }
    })
    .await;
    pods.stop(1);
    stop.store(true, Ordering::Relaxed);
    let errors = load.await.expect("load task");
    assert!(ok.load(Ordering::Relaxed) > 10, "the load ran: {} requests", ok.load(Ordering::Relaxed));
    assert_eq!(failed.load(Ordering::Relaxed), 0, "requests failed while scaling: {errors:?}");

    // A restart rebuilds the same state, from nothing: stop, remove
    // everything with --cleanup, start again.
    let before = installed(mode, &lease);
    assert!(before.iter().any(|l| l == &format!("vip {vip}")), "{before:?}");
    let status = proxy.terminate();
    assert!(status.success(), "berth-proxy exits cleanly on SIGTERM: {status}\n{}", proxy.log());
    let out = proxy.cleanup();
    assert!(out.status.success(), "cleanup: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(installed(mode, &lease), Vec::<String>::new(), "--cleanup left nothing");
    proxy.start_again().await;
    eventually("the restarted proxy has rebuilt the same state", 30, || {
        let now = installed(mode, &lease);
        let before = before.clone();
        async move { if now == before { Ok(()) } else { Err(format!("before {before:#?}\nafter {now:#?}")) } }
    })
    .await;
    eventually("the service answers after the restart", 30, || async move { sample(front, 5).await.map(|_| ()) }).await;
    assert!(proxy.metrics().await.contains("berth_proxy_sync_duration_seconds"), "metrics are served");

    // Deleting the service removes the VIP and every rule.
    client.delete::<Service>("default", "web", &DeleteParams::default()).await.expect("delete service");
    client.delete::<Endpoints>("default", "web", &DeleteParams::default()).await.expect("delete endpoints");
    // The apiserver's own `kubernetes` Service goes too, so that no rule at all is left.
    let _ = client.delete::<Service>("default", "kubernetes", &DeleteParams::default()).await;
    let _ = client.delete::<Endpoints>("default", "kubernetes", &DeleteParams::default()).await;
    eventually("the VIP and every rule of the service are gone", 30, || {
        let now = installed(mode, &lease);
        let vip_text = vip.to_string();
        let np_text = format!("{node_port}");
        async move {
            let left: Vec<&String> = now
                .iter()
                .filter(|l| {
                    l.contains(&vip_text)
                        || l.contains(&np_text)
                        || l.contains("-SVC-")
                        || l.contains("-SEP-")
                        || l.contains("goto")
                        || l.contains("lb-")
                })
                .collect();
            if left.is_empty() { Ok(()) } else { Err(format!("still installed: {left:?}")) }
        }
    })
    .await;
    let local = SocketAddrV4::new(Ipv4Addr::LOCALHOST, node_port);
    assert!(who(local).await.is_err(), "the NodePort on 127.0.0.1 is closed");

    // --cleanup removes the interface and whatever the mode installed.
    let status = proxy.terminate();
    assert!(status.success(), "berth-proxy exits cleanly on SIGTERM: {status}\n{}", proxy.log());
    let out = proxy.cleanup();
    assert!(out.status.success(), "cleanup: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!interface_exists(&iface), "the interface is gone");
    assert_eq!(installed(mode, &lease), Vec::<String>::new(), "nothing is left installed");
}
