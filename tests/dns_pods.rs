//! Pods find Services by name through the cluster DNS, end to end. Real
//! processes — the apiserver, the endpoints controller, a kubelet on the
//! real Docker engine, berth-proxy in the userspace mode and berth-dns —
//! wired as deploy/kube-dns.yaml does it: berth-dns listens on the cluster
//! bridge's gateway behind the selector-less kube-dns Service, whose ClusterIP
//! the kubelet writes into the pods' resolv.conf. Every question is asked from
//! inside a pod, with busybox's `nslookup` and with `wget`, whose resolver
//! (glibc) follows the pod's search path and `ndots:5` as applications do.
//!
//! Covered: a ClusterIP Service by its short name, `name.namespace` and FQDN,
//! reached over HTTP by name, and not found by its short name from another
//! namespace; a headless Service answering its ready pods only, following a
//! readiness probe both ways, and a pod's own `hostname.subdomain` name; SRV
//! and PTR records; a name outside the cluster forwarded to the node's
//! resolver (one this test runs on a loopback address); an application
//! started before the Service it needs, which finds it once the Service and
//! its backend exist (the guestbook's order), and the other order; a query
//! flood from one pod, cut to the per-client rate while another pod's
//! lookups are answered. Nothing
//! leaves the machine: the external name is only looked up, never contacted.

mod kubelet_support;
mod proxy_support;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_api::pb::core::*;
use berth_client::Client;
use berth_e2e::{Apiserver, bin, free_port};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use kubelet_support::{Kubelet, node_containers, phase, sh};
use proxy_support::{Lease, Proxy};

/// berth-dns' per-client rate here (small, so that a bounded flood exceeds it).
const PER_CLIENT: u32 = 2000;
/// The bound of every wait.
const LIMIT: Duration = Duration::from_secs(90);
/// The cluster bridge's gateway: where pods reach the host, and berth-dns listens.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(172, 30, 0, 1);
/// What `external.example` is upstream: a documentation address, looked up and never contacted.
const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const WEB_TEXT: &str = "hello from web";
const REDIS_TEXT: &str = "redis master here";
/// The guestbook frontend: retries the backend by name until it answers, then keeps what it got.
const FRONTEND: &str = "until timeout 2 wget -q -O- http://redis-master:6379/ > /tmp/got; do sleep 1; done; exec sleep 3600";

/// A daemon this test started; killed when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(name: &str, log: PathBuf, args: &[String]) -> Daemon {
        let file = std::fs::File::create(&log).expect("daemon log file");
        let child = Command::new(bin(name, name))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon { child, log }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of `text` that `keep` keeps.
fn tail(text: &str, keep: impl Fn(&str) -> bool, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The node's resolver, run by the test on `addr`:53 in a thread of its own:
/// `external.example.` has A [`EXTERNAL_IP`] and no AAAA; every other name is NXDOMAIN.
struct Upstream {
    stop: Arc<AtomicBool>,
}

impl Upstream {
    fn start(addr: Ipv4Addr) -> Upstream {
        let socket = UdpSocket::bind((addr, 53)).expect("bind the test's upstream resolver on port 53 (needs root)");
        socket.set_read_timeout(Some(Duration::from_millis(200))).expect("read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::Relaxed) {
                if let Ok((len, peer)) = socket.recv_from(&mut buf)
                    && let Some(response) = upstream_answer(&buf[..len])
                {
                    let _ = socket.send_to(&response, peer);
                }
            }
        });
        Upstream { stop }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn upstream_answer(packet: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    let query = request.queries().first()?.clone();
    let mut response = Message::new();
    response
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true);
    response.add_query(query.clone());
    if query.name().to_lowercase() != Name::from_str("external.example.").ok()? {
        response.set_response_code(ResponseCode::NXDomain);
    } else if query.query_type() == RecordType::A {
        response.add_answer(Record::from_rdata(query.name().clone(), 60, RData::A(A::from(EXTERNAL_IP))));
    }
    response.to_vec().ok()
}

/// A port free for both UDP and TCP on `ip`.
fn free_dns_port(ip: Ipv4Addr) -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind UDP on {ip} (the cluster bridge's gateway): {e}"));
        let port = udp.local_addr().expect("local address").port();
        if std::net::TcpListener::bind((ip, port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for UDP and TCP on {ip}");
}

/// The (name, address) pairs of an answer busybox `nslookup` printed, sorted
/// (its `Name:` and `Address:` lines; the server's own address comes before any name).
fn addresses(out: &str) -> Vec<(String, String)> {
    let mut name = None;
    let mut pairs = Vec::new();
    for line in out.lines() {
        if let Some(n) = line.strip_prefix("Name:") {
            name = Some(n.trim().to_string());
        } else if let (Some(a), Some(n)) = (line.strip_prefix("Address:"), &name) {
            pairs.push((n.clone(), a.trim().to_string()));
        }
    }
    pairs.sort();
    pairs
}

/// The values of `key = value` lines busybox `nslookup` printed (`service` for SRV, `name` for PTR), sorted.
fn values(out: &str, key: &str) -> Vec<String> {
    let mut v: Vec<String> = out.lines().filter_map(|l| l.split_once(&format!("\t{key} = ")).map(|(_, v)| v.trim().to_string())).collect();
    v.sort();
    v
}

fn pairs(name: &str, ips: &[&str]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = ips.iter().map(|ip| (name.to_string(), ip.to_string())).collect();
    v.sort();
    v
}

fn same<T: PartialEq + std::fmt::Debug>(got: T, want: &T) -> Result<(), String> {
    if &got == want { Ok(()) } else { Err(format!("got {got:?}, want {want:?}")) }
}

fn service(ns: &str, name: &str, cluster_ip: &str, app: Option<&str>, ports: Vec<ServicePort>) -> Service {
    Service {
        metadata: Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() }),
        spec: Some(ServiceSpec {
            cluster_ip: cluster_ip.into(),
            selector: app.map(|a| [("app".to_string(), a.to_string())].into()).unwrap_or_default(),
            ports,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn port(name: &str, protocol: &str, port: i32, target: u16) -> ServicePort {
    ServicePort { name: name.into(), protocol: protocol.into(), port, target_port: target.to_string(), ..Default::default() }
}

/// A container script serving `text` over HTTP on `port` with busybox httpd.
fn serve(text: &str, port: u16) -> String {
    format!("mkdir -p /www && echo '{text}' > /www/index.html && exec httpd -f -p {port} -h /www")
}

/// The whole cluster, one node; everything stopped and removed on drop.
struct Cluster {
    // Dropped first: the kubelet removes its containers, the proxy its VIPs.
    kubelet: Kubelet,
    proxy: Proxy,
    dns: Daemon,
    /// berth-dns' /readyz and /metrics.
    dns_health: SocketAddrV4,
    controller_manager: Daemon,
    _upstream: Upstream,
    _api: Apiserver,
    client: Client,
    /// The kube-dns Service's ClusterIP, 10.96.n.10.
    dns_ip: Ipv4Addr,
    /// Set once a failure message carried the logs.
    reported: AtomicBool,
    _lease: Lease,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Cluster {
        let lease = Lease::take();
        let dns_ip = Ipv4Addr::new(10, 96, lease.n, 10);
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let api = Apiserver::start(&data, free_port(), &["--service-cidr", &lease.service_cidr()]).await;
        let client = api.client().await;
        let server = api.url();
        let arg = |s: &str| s.to_string();
        let health = |port: u16| format!("127.0.0.1:{port}");
        let controller_manager = Daemon::start(
            "berth-controller-manager",
            dir.path().join("controller-manager.log"),
            &[
                arg("--server"),
                server.clone(),
                arg("--leader-elect=false"),
                arg("--controllers=endpoints"),
                arg("--health-listen"),
                health(free_port()),
            ],
        );

        // The node's resolver, on a loopback address of this test's slot; the
        // kubelet (for dnsPolicy Default) and berth-dns (for names it forwards) read it.
        let upstream_ip = Ipv4Addr::new(127, 54, lease.n, 1);
        let upstream = Upstream::start(upstream_ip);
        let resolv_conf = dir.path().join("node-resolv.conf");
        std::fs::write(&resolv_conf, format!("nameserver {upstream_ip}\n")).expect("write the node's resolv.conf");
        let resolv_conf = resolv_conf.to_string_lossy().into_owned();

        let dns_flag = dns_ip.to_string();
        let kubelet = Kubelet::start(&server, "dnspods", &["--cluster-dns", &dns_flag, "--resolv-conf", &resolv_conf]);
        kubelet.wait_ready(&client).await;

        // berth-dns on the bridge's gateway, which exists once the kubelet is Ready.
        let dns_port = free_dns_port(GATEWAY);
        let dns_health = SocketAddrV4::new(Ipv4Addr::LOCALHOST, free_port());
        let mut dns = Daemon::start(
            "berth-dns",
            dir.path().join("berth-dns.log"),
            &[
                arg("--server"),
                server.clone(),
                arg("--listen"),
                SocketAddrV4::new(GATEWAY, dns_port).to_string(),
                arg("--health-listen"),
                dns_health.to_string(),
                arg("--cluster-dns-ip"),
                dns_flag.clone(),
                arg("--max-queries-per-client"),
                PER_CLIENT.to_string(),
                arg("--resolv-conf"),
                resolv_conf,
            ],
        );
        let deadline = Instant::now() + LIMIT;
        while !proxy_support::http_get_path(dns_health, "/readyz").await.is_ok_and(|body| body.trim() == "ok") {
            let log = std::fs::read_to_string(&dns.log).unwrap_or_default();
            if let Ok(Some(status)) = dns.child.try_wait() {
                panic!("berth-dns exited ({status}):\n{log}");
            }
            assert!(Instant::now() < deadline, "berth-dns not ready within {LIMIT:?}:\n{}", tail(&log, |_| true, 40));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        // The kube-dns Service onto berth-dns, as deploy/kube-dns.yaml with this test's address and port.
        let kube_dns = service(
            "kube-system",
            "kube-dns",
            &dns_flag,
            None,
            vec![port("dns", "UDP", 53, dns_port), port("dns-tcp", "TCP", 53, dns_port)],
        );
        client.create(kube_dns).await.expect("create the kube-dns Service on its reserved ClusterIP");
        let endpoint_port = |name: &str, protocol: &str| EndpointPort {
            name: name.into(),
            port: i32::from(dns_port),
            protocol: protocol.into(),
            app_protocol: None,
        };
        let endpoints = Endpoints {
            metadata: Some(ObjectMeta { name: "kube-dns".into(), namespace: "kube-system".into(), ..Default::default() }),
            subsets: vec![EndpointSubset {
                addresses: vec![EndpointAddress { ip: GATEWAY.to_string(), ..Default::default() }],
                not_ready_addresses: vec![],
                ports: vec![endpoint_port("dns", "UDP"), endpoint_port("dns-tcp", "TCP")],
            }],
            ..Default::default()
        };
        client.create(endpoints).await.expect("create the kube-dns Endpoints");

        let mut proxy = Proxy::start(&server, "userspace", &lease, dir.path(), &[]);
        proxy.wait_ready().await;
        let iface = lease.interface();
        let deadline = Instant::now() + LIMIT;
        while !proxy_support::interface_addresses(&iface).contains(&dns_ip) {
            assert!(
                Instant::now() < deadline,
                "berth-proxy did not bind {dns_ip} on {iface}:\n{}",
                tail(&proxy.log(), |l| l.contains("berth_proxy"), 40)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Cluster {
            kubelet,
            proxy,
            dns,
            dns_health,
            controller_manager,
            _upstream: upstream,
            _api: api,
            client,
            dns_ip,
            reported: AtomicBool::new(false),
            _lease: lease,
            _dir: dir,
        }
    }

    /// The daemons' recent logs, for failure messages.
    fn logs(&self) -> String {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- berth-dns log ---\n{}\n--- berth-proxy log ---\n{}\n--- controller-manager log ---\n{}\n--- kubelet log ---\n{}",
            tail(&read(&self.dns.log), |_| true, 30),
            tail(&self.proxy.log(), |l| l.contains("berth_proxy"), 30),
            tail(&read(&self.controller_manager.log), |_| true, 20),
            // Without the test's own docker execs.
            tail(&read(&self.kubelet.log), |l| !l.contains("exec_"), 40)
        )
    }

    fn fail(&self, what: &str) -> ! {
        self.reported.store(true, Ordering::Relaxed);
        panic!("{what}\n{}", self.logs());
    }

    /// Polls `check` until it holds (bounded); panics with `what`, what was seen last and the logs.
    async fn eventually<T>(&self, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
        let deadline = Instant::now() + LIMIT;
        loop {
            match check() {
                Ok(v) => return v,
                Err(last) if Instant::now() >= deadline => {
                    self.fail(&format!("timed out after {LIMIT:?} waiting for {what}; last: {last}"))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }

    async fn namespace(&self, name: &str) {
        let ns = Namespace { metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }), ..Default::default() };
        self.client.create(ns).await.unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    }

    /// Creates pod `ns/name` (label `app`, when given) on the node, its one container `main` running `script`.
    async fn pod(&self, ns: &str, name: &str, app: Option<&str>, script: &str, f: impl FnOnce(&mut PodSpec)) {
        let mut p = kubelet_support::pod(name, &self.kubelet.node, vec![sh("main", script)]);
        let meta = p.metadata.as_mut().expect("metadata");
        meta.namespace = ns.into();
        if let Some(app) = app {
            meta.labels.insert("app".into(), app.into());
        }
        f(p.spec.as_mut().expect("spec"));
        self.client.create(p).await.unwrap_or_else(|e| panic!("create pod {ns}/{name}: {e}"));
    }

    /// Waits until pod `ns/name` runs; its IP.
    async fn pod_ip(&self, ns: &str, name: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let pod = self.client.get::<Pod>(ns, name).await;
            if let Ok(p) = &pod
                && phase(p) == "Running"
                && let Some(ip) = p.status.as_ref().map(|s| s.pod_ip.clone()).filter(|ip| !ip.is_empty())
            {
                return ip;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("timed out after {LIMIT:?} waiting for pod {ns}/{name} to run; last: {pod:#?}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Creates a Service; its ClusterIP ("None" for a headless one).
    async fn service(&self, svc: Service) -> String {
        let created = self.client.create(svc).await.expect("create service");
        created.spec.map(|s| s.cluster_ip).unwrap_or_default()
    }

    /// Runs `cmd` in the `main` container of pod `ns/name` through Docker: its exit code and output (stdout, then stderr).
    fn exec(&self, ns: &str, name: &str, cmd: &[&str]) -> (i32, String) {
        let prefix = format!("berth_{}_{ns}_{name}_main_", self.kubelet.node);
        let containers = node_containers(&self.kubelet.node, false);
        let Some(container) = containers.iter().filter(|c| c.starts_with(&prefix)).max() else {
            return (-1, format!("no running container {prefix}*"));
        };
        let out = Command::new("docker").arg("exec").arg(container).args(cmd).output().expect("docker exec");
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    }

    /// `nslookup ARGS` in pod `ns/name`: what it printed.
    fn nslookup(&self, ns: &str, name: &str, args: &[&str]) -> String {
        let mut cmd = vec!["nslookup"];
        cmd.extend_from_slice(args);
        self.exec(ns, name, &cmd).1
    }

    /// The (name, address) pairs the pod's `nslookup HOST` found.
    fn lookup(&self, ns: &str, name: &str, host: &str) -> Vec<(String, String)> {
        addresses(&self.nslookup(ns, name, &[host]))
    }

    /// Waits until the pod's `nslookup HOST` finds exactly `want`.
    async fn resolves(&self, what: &str, ns: &str, name: &str, host: &str, want: &[(String, String)]) {
        self.eventually(what, || {
            let out = self.nslookup(ns, name, &[host]);
            if addresses(&out) == want { Ok(()) } else { Err(format!("want {want:?}; nslookup {host} in {ns}/{name} printed:\n{out}")) }
        })
        .await
    }

    /// `wget -O- URL` (5 s at most) in the pod: the address its resolver gave
    /// the URL's host (busybox wget prints `Connecting to HOST (IP:PORT)`; none
    /// when the name did not resolve), and all it printed.
    fn wget(&self, ns: &str, name: &str, url: &str) -> (Option<String>, String) {
        let (_, out) = self.exec(ns, name, &["timeout", "5", "wget", "-O-", url]);
        let ip = out
            .lines()
            .find_map(|l| l.strip_prefix("Connecting to "))
            .and_then(|l| l.split_once(" (")?.1.split_once(':'))
            .map(|(ip, _)| ip.to_string());
        (ip, out)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() && !self.reported.load(Ordering::Relaxed) {
            eprintln!("{}", self.logs());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_let_pods_find_services_by_name_through_the_cluster_dns() {
    let started = Instant::now();
    let c = Cluster::start().await;
    eprintln!("cluster up in {:?} (kube-dns at {})", started.elapsed(), c.dns_ip);
    c.namespace("shop").await;
    c.namespace("other").await;
    c.pod("shop", "web-0", Some("web"), &serve(WEB_TEXT, 8080), |_| {}).await;
    c.pod("shop", "client", None, "exec sleep 3600", |_| {}).await;
    c.pod("other", "outsider", None, "exec sleep 3600", |_| {}).await;
    let web_ip = c.service(service("shop", "web", "", Some("web"), vec![port("http", "TCP", 80, 8080)])).await;
    for (ns, name) in [("shop", "web-0"), ("shop", "client"), ("other", "outsider")] {
        c.pod_ip(ns, name).await;
    }

    // A ClusterIP Service by its short name and its FQDN, from its namespace:
    // the pod's resolv.conf names the kube-dns ClusterIP, berth-proxy relays
    // to berth-dns, which answers from the Service.
    let web_fqdn = "web.shop.svc.cluster.local";
    let want = pairs(web_fqdn, &[&web_ip]);
    c.resolves("`nslookup web` in shop/client to answer the ClusterIP", "shop", "client", "web", &want).await;
    assert_eq!(c.lookup("shop", "client", web_fqdn), want, "nslookup {web_fqdn}");
    // And over HTTP by name, through the Service's port 80 onto the pod's 8080.
    let (ip, out) = c
        .eventually("wget http://web/ in shop/client to reach the pod", || {
            let (ip, out) = c.wget("shop", "client", "http://web/");
            if out.contains(WEB_TEXT) { Ok((ip, out)) } else { Err(out) }
        })
        .await;
    assert_eq!(ip.as_deref(), Some(web_ip.as_str()), "{out}");
    // `web.shop`: busybox's nslookup asks a dotted name as it is, without the
    // search path, so ask as an application does: glibc's resolver (wget's)
    // tries the search path first under ndots:5.
    for url in ["http://web.shop/", "http://web.shop.svc/"] {
        let (ip, out) = c.wget("shop", "client", url);
        assert_eq!(ip.as_deref(), Some(web_ip.as_str()), "{url} from shop/client: {out}");
        assert!(out.contains(WEB_TEXT), "{url} from shop/client: {out}");
    }
    // From another namespace the short name is not found, `web.shop` is.
    let out = c.nslookup("other", "outsider", &["web"]);
    assert!(
        addresses(&out).is_empty() && out.contains("can't find web.other.svc.cluster.local: NXDOMAIN"),
        "`nslookup web` in namespace other: {out}"
    );
    let (ip, out) = c.wget("other", "outsider", "http://web/");
    assert!(ip.is_none() && out.contains("bad address 'web'"), "http://web/ from namespace other: {out}");
    let (ip, out) = c.wget("other", "outsider", "http://web.shop/");
    assert_eq!(ip.as_deref(), Some(web_ip.as_str()), "http://web.shop/ from namespace other: {out}");
    assert!(out.contains(WEB_TEXT), "http://web.shop/ from namespace other: {out}");

    // SRV per named port; PTR from the ClusterIP back to the Service's name.
    let srv = c.nslookup("shop", "client", &["-type=SRV", &format!("_http._tcp.{web_fqdn}")]);
    assert_eq!(values(&srv, "service"), [format!("0 100 80 {web_fqdn}")], "{srv}");
    let ptr = c.nslookup("shop", "client", &[&web_ip]);
    assert_eq!(values(&ptr, "name"), [web_fqdn], "{ptr}");

    // A name outside the cluster: forwarded to the node's resolver.
    let external = c.nslookup("shop", "client", &["external.example"]);
    assert_eq!(addresses(&external), pairs("external.example", &[&EXTERNAL_IP.to_string()]), "{external}");

    // A headless Service: its ready pods' addresses, following readiness.
    let ready_probe = |s: &mut PodSpec| {
        s.containers[0].readiness_probe = Some(Probe {
            exec: Some(ExecAction { command: vec!["test".into(), "-f".into(), "/tmp/ready".into()] }),
            period_seconds: Some(1),
            ..Default::default()
        });
    };
    let db_script = "touch /tmp/ready; exec sleep 3600";
    c.pod("shop", "db-0", Some("db"), db_script, |s| {
        ready_probe(s);
        s.hostname = "h0".into();
        s.subdomain = "db".into();
    })
    .await;
    c.pod("shop", "db-1", Some("db"), db_script, ready_probe).await;
    let headless = c.service(service("shop", "db", "None", Some("db"), vec![port("pg", "TCP", 5432, 5432)])).await;
    assert_eq!(headless, "None");
    let (ip0, ip1) = (c.pod_ip("shop", "db-0").await, c.pod_ip("shop", "db-1").await);
    let db_fqdn = "db.shop.svc.cluster.local";
    let both = pairs(db_fqdn, &[&ip0, &ip1]);
    c.resolves("`nslookup db` to answer both ready pods", "shop", "client", "db", &both).await;
    // The pod with hostname h0 and subdomain db has a name of its own.
    let h0 = format!("h0.{db_fqdn}");
    assert_eq!(c.lookup("shop", "client", &h0), pairs(&h0, &[&ip0]), "nslookup {h0}");
    let srv = c.nslookup("shop", "client", &["-type=SRV", &format!("_pg._tcp.{db_fqdn}")]);
    let dashed = format!("{}.{db_fqdn}", ip1.replace('.', "-"));
    let mut want_srv = vec![format!("0 100 5432 {h0}"), format!("0 100 5432 {dashed}")];
    want_srv.sort();
    assert_eq!(values(&srv, "service"), want_srv, "{srv}");
    // db-1 turns unready: its address leaves the answer; ready again: back.
    assert_eq!(c.exec("shop", "db-1", &["rm", "/tmp/ready"]).0, 0, "rm /tmp/ready in db-1");
    let only0 = pairs(db_fqdn, &[&ip0]);
    c.resolves("the unready db-1 to leave the answer", "shop", "client", "db", &only0).await;
    assert_eq!(c.exec("shop", "db-1", &["touch", "/tmp/ready"]).0, 0, "touch /tmp/ready in db-1");
    c.resolves("db-1, ready again, to come back", "shop", "client", "db", &both).await;

    // The guestbook's order: the frontend starts before its backend's Service
    // exists and keeps retrying by name; it gets through once the Service and
    // its pod are there (berth-dns does not cache cluster names, nor does
    // the pod's resolver).
    c.pod("shop", "frontend", None, FRONTEND, |_| {}).await;
    c.pod_ip("shop", "frontend").await;
    c.eventually("the frontend to have tried and failed at least once", || {
        let (code, out) = c.exec("shop", "frontend", &["cat", "/tmp/got"]);
        if code == 0 { same(out, &String::new()) } else { Err(out) }
    })
    .await;
    c.pod("shop", "redis-master-0", Some("redis-master"), &serve(REDIS_TEXT, 6379), |_| {}).await;
    c.service(service("shop", "redis-master", "", Some("redis-master"), vec![port("redis", "TCP", 6379, 6379)])).await;
    let got = format!("{REDIS_TEXT}\n");
    c.eventually("the frontend started first to reach redis-master by name", || {
        same(c.exec("shop", "frontend", &["cat", "/tmp/got"]), &(0, got.clone()))
    })
    .await;
    // ...and the other order: Service and backend first, then the frontend.
    c.pod("shop", "frontend-late", None, FRONTEND, |_| {}).await;
    c.eventually("the frontend started last to reach redis-master by name", || {
        same(c.exec("shop", "frontend-late", &["cat", "/tmp/got"]), &(0, got.clone()))
    })
    .await;

    // A flood from one pod (bounded: 40,000 queries a second, twenty times
    // berth-dns' per-client rate here, for four seconds) is cut to that rate,
    // and another pod's lookups are answered meanwhile. (A flood faster than
    // the relay and berth-dns can read their sockets overflows them, and the
    // kernel then drops every client's datagrams alike.)
    c.pod("shop", "flooder", None, "exec sleep 3600", |_| {}).await;
    c.pod_ip("shop", "flooder").await;
    let sandbox = berth_bench::netns::pod_sandbox_pid(&c.kubelet.node, "shop", "flooder").expect("the flooder's pause container");
    let socket = berth_bench::netns::udp_socket(sandbox, "0.0.0.0:0".parse().expect("addr")).expect("a socket in the flooder pod");
    let mut query = Message::new();
    query.set_id(77).set_message_type(MessageType::Query).set_recursion_desired(true);
    query.add_query(hickory_proto::op::Query::query(Name::from_str(&format!("{web_fqdn}.")).expect("name"), RecordType::A));
    let packet = query.to_vec().expect("encode");
    let target = std::net::SocketAddr::from((c.dns_ip, 53));
    let flood = std::thread::spawn(move || {
        let mut sent = 0u64;
        // 400 queries every 10 ms.
        for _ in 0..400 {
            let tick = Instant::now();
            for _ in 0..400 {
                if socket.send_to(&packet, target).is_ok() {
                    sent += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(10).saturating_sub(tick.elapsed()));
        }
        sent
    });
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..3 {
        assert_eq!(c.lookup("shop", "client", "web"), want, "`nslookup web` in shop/client during the flood");
    }
    let sent = flood.join().expect("the flood thread");
    let metrics = proxy_support::http_get_path(c.dns_health, "/metrics").await.expect("berth-dns /metrics");
    let limited: f64 = metrics
        .lines()
        .find(|l| l.starts_with("berth_dns_rate_limited_queries_total"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
        .unwrap_or(0.0);
    eprintln!("flood: {sent} queries sent, {limited} dropped over the per-client rate");
    assert!(limited > 0.0, "the flood's excess is dropped and counted ({sent} sent):\n{metrics}");
    eprintln!("done in {:?}", started.elapsed());
}
