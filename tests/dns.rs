//! berth-dns end to end: an apiserver and berth-dns as real processes on
//! loopback, asked real DNS questions over UDP and TCP. Cluster names follow
//! Services and Endpoints (A, headless ready endpoints only, SRV, PTR,
//! ExternalName CNAME, NXDOMAIN with the zone's SOA); other names go to a
//! resolver this test runs on a loopback address (nothing leaves the
//! machine); malformed packets get no answer and are counted; one client's
//! flood is cut to its per-client rate while another is answered; after a
//! restart the first query once /readyz is OK is answered. Also: the
//! apiserver's own `kubernetes` Service and its Endpoints, and the kube-dns
//! Service's explicit ClusterIP 10.96.0.10.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_api::pb::core::{EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, Service, ServicePort, ServiceSpec};
use berth_e2e::{Apiserver, bin, free_port};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A UDP socket on a free port of 127.0.0.1 whose TCP twin is free too.
fn free_dns_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn query_message(name: &str, qtype: RecordType, id: u16) -> Message {
    let mut m = Message::new();
    m.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_str(name).expect("name"), qtype));
    m
}

/// Asks `server` over UDP; `None` when no answer comes within two seconds.
async fn ask_udp(server: SocketAddr, name: &str, qtype: RecordType) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("client socket");
    let id = rand_id();
    socket.send_to(&query_message(name, qtype, id).to_vec().expect("encode"), server).await.expect("send");
    let mut buf = vec![0u8; 4096];
    let len = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await.ok()?.expect("recv");
    let response = Message::from_vec(&buf[..len]).expect("a DNS response");
    assert_eq!(response.id(), id);
    Some(response)
}

async fn ask(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    ask_udp(server, name, qtype).await.unwrap_or_else(|| panic!("no answer to {name} {qtype}"))
}

async fn ask_tcp(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.expect("connect TCP");
    let bytes = query_message(name, qtype, 7).to_vec().expect("encode");
    stream.write_all(&(bytes.len() as u16).to_be_bytes()).await.expect("write");
    stream.write_all(&bytes).await.expect("write");
    let len = tokio::time::timeout(Duration::from_secs(5), stream.read_u16()).await.expect("TCP answer in time").expect("length");
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await.expect("read");
    Message::from_vec(&buf).expect("a DNS response")
}

fn rand_id() -> u16 {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").subsec_nanos() % 65_000) as u16
}

/// The answers' data, as text, sorted.
fn data(m: &Message) -> Vec<String> {
    let mut out: Vec<String> = m.answers().iter().map(|r| r.data().to_string()).collect();
    out.sort();
    out
}

fn meta(ns: &str, name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() })
}

fn service(ns: &str, name: &str, spec: ServiceSpec) -> Service {
    Service { metadata: meta(ns, name), spec: Some(spec), ..Default::default() }
}

fn addr(ip: &str, hostname: &str) -> EndpointAddress {
    EndpointAddress { ip: ip.into(), hostname: hostname.into(), ..Default::default() }
}

/// A resolver on `addr`:53 standing in for the node's: `external.example.` has
/// A 192.0.2.7, every other name is NXDOMAIN.
async fn upstream(addr: Ipv4Addr) -> tokio::task::JoinHandle<()> {
    let socket = UdpSocket::bind((addr, 53)).await.expect("bind the test's upstream resolver on port 53 (needs root)");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else { return };
            let Ok(request) = Message::from_vec(&buf[..len]) else { continue };
            let mut response = Message::new();
            response.set_id(request.id()).set_message_type(MessageType::Response).set_recursion_available(true);
            response.add_queries(request.queries().iter().cloned());
            let q = &request.queries()[0];
            if q.name().to_lowercase() == Name::from_str("external.example.").expect("name") && q.query_type() == RecordType::A {
                response.add_answer(Record::from_rdata(q.name().clone(), 60, RData::A(A::new(192, 0, 2, 7))));
            } else {
                response.set_response_code(ResponseCode::NXDomain);
            }
            let _ = socket.send_to(&response.to_vec().expect("encode"), peer).await;
        }
    })
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect health");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).expect("read");
    out
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().last()).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// Polls `name qtype` until its sorted answer data is `want` (bounded, for liveness only).
async fn eventually(server: SocketAddr, name: &str, qtype: RecordType, want: &[&str]) -> Duration {
    let start = Instant::now();
    loop {
        if let Some(m) = ask_udp(server, name, qtype).await
            && data(&m) == want
        {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{name} {qtype} never answered {want:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_answer_cluster_names_from_services_and_forward_the_rest() {
    let dir = tempfile::tempdir().expect("temp dir");
    let api = Apiserver::start(&dir.path().join("api"), free_port(), &[]).await;
    let client = api.client().await;

    // The apiserver's own Service: the first ClusterIP, 443 onto its port, Endpoints naming it.
    let kubernetes: Service = client.get("default", "kubernetes").await.expect("the kubernetes Service exists after start");
    let spec = kubernetes.spec.clone().expect("spec");
    assert_eq!(spec.cluster_ip, "10.96.0.1");
    assert_eq!((spec.ports[0].name.as_str(), spec.ports[0].port, spec.ports[0].target_port.clone()), ("https", 443, api.port.to_string()));
    let eps: Endpoints = client.get("default", "kubernetes").await.expect("its Endpoints exist");
    assert_eq!(eps.subsets[0].addresses[0].ip, "127.0.0.1");
    assert_eq!(eps.subsets[0].ports[0].port, i32::from(api.port));
    // Nobody else gets 10.96.0.1.
    let err = client
        .create(service(
            "default",
            "thief",
            ServiceSpec { cluster_ip: "10.96.0.1".into(), ports: vec![port("p", 1, "TCP")], ..Default::default() },
        ))
        .await
        .expect_err("10.96.0.1 is reserved");
    assert!(err.to_string().contains("reserved"), "{err}");

    // The node's resolver, on a loopback address of its own.
    let upstream_ip = Ipv4Addr::new(127, 53, (std::process::id() % 250) as u8 + 1, (rand_id() % 250) as u8 + 1);
    let _upstream = upstream(upstream_ip).await;
    let resolv_conf = dir.path().join("resolv.conf");
    std::fs::write(&resolv_conf, format!("search example.org\nnameserver {upstream_ip}\noptions ndots:2\n")).expect("resolv.conf");

    let dns_port = free_dns_port();
    let dns: SocketAddr = ([127, 0, 0, 1], dns_port).into();
    let health: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let start_dns = || {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("dns.log")).expect("log");
        Daemon(
            Command::new(bin("berth-dns", "berth-dns"))
                .args(["--server", &api.url(), "--listen", &dns.to_string(), "--health-listen", &health.to_string()])
                .args(["--max-queries-per-client", &PER_CLIENT.to_string()])
                .arg("--resolv-conf")
                .arg(&resolv_conf)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start berth-dns"),
        )
    };
    let mut dns_daemon = start_dns();

    // The kubernetes Service by FQDN, once the informers have synced.
    eventually(dns, "kubernetes.default.svc.cluster.local.", RecordType::A, &["10.96.0.1"]).await;
    assert!(http_get(health, "/readyz").starts_with("HTTP/1.0 200") || http_get(health, "/readyz").starts_with("HTTP/1.1 200"));

    // The kube-dns Service asks for 10.96.0.10 and gets it; A, SRV and PTR answer it.
    client
        .create(service(
            "kube-system",
            "kube-dns",
            ServiceSpec {
                cluster_ip: "10.96.0.10".into(),
                ports: vec![port("dns", 53, "UDP"), port("dns-tcp", 53, "TCP")],
                ..Default::default()
            },
        ))
        .await
        .expect("a Service may ask for 10.96.0.10");
    eventually(dns, "kube-dns.kube-system.svc.cluster.local.", RecordType::A, &["10.96.0.10"]).await;
    let a = ask(dns, "kube-dns.kube-system.svc.cluster.local.", RecordType::A).await;
    assert!(a.authoritative() && a.answers()[0].ttl() == 5, "authoritative, TTL 5: {a:?}");
    assert_eq!(
        data(&ask(dns, "_dns._udp.kube-dns.kube-system.svc.cluster.local.", RecordType::SRV).await),
        ["0 100 53 kube-dns.kube-system.svc.cluster.local."]
    );
    assert_eq!(
        data(&ask(dns, "_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local.", RecordType::SRV).await),
        ["0 100 53 kube-dns.kube-system.svc.cluster.local."]
    );
    assert_eq!(data(&ask(dns, "10.0.96.10.in-addr.arpa.", RecordType::PTR).await), ["kube-dns.kube-system.svc.cluster.local."]);
    // Over TCP too (hickory-server).
    assert_eq!(data(&ask_tcp(dns, "kube-dns.kube-system.svc.cluster.local.", RecordType::A).await), ["10.96.0.10"]);

    // A headless Service answers its ready endpoints only, each also by its own name.
    client
        .create(service(
            "default",
            "db",
            ServiceSpec { cluster_ip: "None".into(), ports: vec![port("pg", 5432, "TCP")], ..Default::default() },
        ))
        .await
        .expect("db");
    let mut endpoints = Endpoints {
        metadata: meta("default", "db"),
        subsets: vec![EndpointSubset {
            addresses: vec![addr("172.30.0.5", "db-0"), addr("172.30.0.6", "")],
            not_ready_addresses: vec![addr("172.30.0.7", "db-2")],
            ports: vec![EndpointPort { name: "pg".into(), port: 5432, protocol: "TCP".into(), app_protocol: None }],
        }],
        ..Default::default()
    };
    endpoints = client.create(endpoints).await.expect("db endpoints");
    eventually(dns, "db.default.svc.cluster.local.", RecordType::A, &["172.30.0.5", "172.30.0.6"]).await;
    assert_eq!(data(&ask(dns, "db-0.db.default.svc.cluster.local.", RecordType::A).await), ["172.30.0.5"]);
    assert_eq!(
        data(&ask(dns, "_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV).await),
        ["0 100 5432 172-30-0-6.db.default.svc.cluster.local.", "0 100 5432 db-0.db.default.svc.cluster.local."]
    );
    assert_eq!(data(&ask(dns, "5.0.30.172.in-addr.arpa.", RecordType::PTR).await), ["db-0.db.default.svc.cluster.local."]);
    let not_ready = ask(dns, "db-2.db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(not_ready.response_code(), ResponseCode::NXDomain, "a not-ready endpoint has no name");

    // An endpoint turning not-ready leaves the answers.
    let subset = &mut endpoints.subsets[0];
    let gone = subset.addresses.pop().expect("172.30.0.6");
    subset.not_ready_addresses.push(gone);
    client.update(endpoints).await.expect("update endpoints");
    let took = eventually(dns, "db.default.svc.cluster.local.", RecordType::A, &["172.30.0.5"]).await;
    eprintln!("an endpoint turning not-ready left the answers after {took:?}");

    // ExternalName: a CNAME, its target resolved upstream.
    client
        .create(service(
            "default",
            "ext",
            ServiceSpec { r#type: "ExternalName".into(), external_name: "external.example".into(), ..Default::default() },
        ))
        .await
        .expect("ext");
    eventually(dns, "ext.default.svc.cluster.local.", RecordType::CNAME, &["external.example."]).await;
    let chased = ask(dns, "ext.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(data(&chased), ["192.0.2.7", "external.example."]);

    // Names in the cluster domain that do not exist: NXDOMAIN with the zone's SOA.
    let nx = ask(dns, "nope.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(nx.response_code(), ResponseCode::NXDomain);
    assert!(nx.authoritative());
    let soa = &nx.name_servers()[0];
    assert_eq!(soa.name().to_string(), "cluster.local.");
    let RData::SOA(soa) = soa.data() else { panic!("no SOA in the authority section: {nx:?}") };
    assert_eq!(
        (soa.mname().to_string(), soa.rname().to_string(), soa.minimum()),
        ("ns.dns.cluster.local.".to_string(), "hostmaster.cluster.local.".to_string(), 5)
    );
    let nodata = ask(dns, "kube-dns.kube-system.svc.cluster.local.", RecordType::AAAA).await;
    assert_eq!((nodata.response_code(), nodata.answers().len(), nodata.name_servers().len()), (ResponseCode::NoError, 0, 1));

    // Everything else goes to the node's resolver (the test's, on loopback).
    let forwarded = ask(dns, "external.example.", RecordType::A).await;
    assert_eq!((forwarded.response_code(), data(&forwarded)), (ResponseCode::NoError, vec!["192.0.2.7".to_string()]));
    assert!(!forwarded.authoritative());
    assert_eq!(ask(dns, "missing.example.", RecordType::A).await.response_code(), ResponseCode::NXDomain);

    // Services deleted leave the answers.
    client.delete_object("Service", "default", "ext", &Default::default()).await.expect("delete ext");
    let start = Instant::now();
    while ask(dns, "ext.default.svc.cluster.local.", RecordType::CNAME).await.response_code() != ResponseCode::NXDomain {
        assert!(start.elapsed() < Duration::from_secs(20), "a deleted Service keeps answering");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Malformed packets: no answer, and counted.
    let before = metric(&http_get(health, "/metrics"), "berth_dns_malformed_queries_total");
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("socket"));
    let mut header_only = query_message("x.example.", RecordType::A, 9).to_vec().expect("encode");
    header_only.truncate(14); // a header that promises a question, and half a name
    let mut response = query_message("x.example.", RecordType::A, 10);
    response.set_message_type(MessageType::Response);
    for packet in [b"hello, not DNS".to_vec(), header_only, response.to_vec().expect("encode")] {
        socket.send_to(&packet, dns).await.expect("send");
        let mut buf = [0u8; 512];
        let answered = tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf)).await;
        assert!(answered.is_err(), "a malformed packet got an answer");
    }
    let after = metric(&http_get(health, "/metrics"), "berth_dns_malformed_queries_total");
    assert_eq!(after - before, 3.0, "each malformed packet counted");
    // ...and the server still answers.
    assert_eq!(data(&ask(dns, "kubernetes.default.svc.cluster.local.", RecordType::A).await), ["10.96.0.1"]);
    let metrics = http_get(health, "/metrics");
    for series in [
        "berth_dns_queries_total{qtype=\"SRV\",source=\"cluster\",rcode=\"NoError\",transport=\"udp\"}",
        "berth_dns_queries_total{qtype=\"A\",source=\"cluster\",rcode=\"NXDomain\",transport=\"udp\"}",
        "berth_dns_queries_total{qtype=\"A\",source=\"forward\",rcode=\"NoError\",transport=\"udp\"}",
        "berth_dns_queries_total{qtype=\"A\",source=\"cluster\",rcode=\"NoError\",transport=\"tcp\"}",
    ] {
        assert!(metric(&metrics, series) >= 1.0, "{series} missing from {metrics}");
    }

    // A flood from one client (bounded: a burst of 20 times its per-second
    // allowance) has its excess dropped and counted, and another client is
    // answered meanwhile.
    let flood = UdpSocket::bind("127.0.0.1:0").await.expect("flood socket");
    let packet = query_message("db.default.svc.cluster.local.", RecordType::A, 11).to_vec().expect("encode");
    for _ in 0..PER_CLIENT * 20 {
        flood.send_to(&packet, dns).await.expect("send");
    }
    // The other client asks as resolvers do: a second attempt after a
    // second without answer (the burst still queued in the socket when it
    // starts may cost its first datagram, which the kernel drops whoever
    // sent it).
    let other = UdpSocket::bind("127.0.0.2:0").await.expect("a second client address");
    let mut answered = 0;
    for i in 0..20u16 {
        let query = query_message("db.default.svc.cluster.local.", RecordType::A, 100 + i).to_vec().expect("encode");
        for _attempt in 0..3 {
            other.send_to(&query, dns).await.expect("send");
            let mut buf = [0u8; 512];
            if let Ok(Ok(len)) = tokio::time::timeout(Duration::from_secs(1), other.recv(&mut buf)).await
                && Message::from_vec(&buf[..len]).is_ok_and(|m| m.id() == 100 + i && data(&m) == ["172.30.0.5"])
            {
                answered += 1;
                break;
            }
        }
    }
    assert_eq!(answered, 20, "another client is answered during a flood");
    let limited = metric(&http_get(health, "/metrics"), "berth_dns_rate_limited_queries_total");
    // (The kernel may drop part of the burst before berth-dns reads it.)
    assert!(limited >= f64::from(PER_CLIENT), "the flood's excess is dropped and counted: {limited}");

    // A restart: SIGTERM stops it cleanly; started again, it answers
    // cluster names as soon as /readyz says its caches synced.
    let pid = dns_daemon.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let status = dns_daemon.0.wait().expect("wait for berth-dns");
    assert!(status.success(), "berth-dns exits cleanly on SIGTERM: {status}");
    let restarted_at = Instant::now();
    dns_daemon = start_dns();
    let ready_at = loop {
        let ready = std::net::TcpStream::connect(health).is_ok() && http_get(health, "/readyz").contains(" 200 ");
        if ready {
            break Instant::now();
        }
        assert!(restarted_at.elapsed() < Duration::from_secs(30), "berth-dns not ready 30 s after a restart");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let first = ask(dns, "db.default.svc.cluster.local.", RecordType::A).await;
    assert_eq!(data(&first), ["172.30.0.5"], "the first query after /readyz is answered from the synced caches");
    eprintln!("berth-dns restarted: ready after {:?}, answering {:?} later", ready_at - restarted_at, ready_at.elapsed());
    drop(dns_daemon);
}

/// The per-client UDP rate berth-dns runs with here (small, so that a bounded flood exceeds it).
const PER_CLIENT: u32 = 1000;

fn port(name: &str, port: i32, protocol: &str) -> ServicePort {
    ServicePort { name: name.into(), port, protocol: protocol.into(), ..Default::default() }
}
