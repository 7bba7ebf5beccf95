//! The rule writers against the real kernel: what nftables and iptables
//! (both backends) accept, what a listing shows after full and partial
//! syncs, and that cleanup leaves nothing. Each test uses its own table or
//! chain prefix, so they run beside each other and beside a real cluster;
//! no packet is sent.

use std::sync::Arc;

use berth_api::pb::core::{
    ClientIpConfig, EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectMeta, Service, ServicePort as ApiPort, ServiceSpec,
    SessionAffinityConfig,
};
use berth_proxy::config::IptablesBackend;
use berth_proxy::exec::{Exec, System};
use berth_proxy::iptables::{IptConfig, Iptables};
use berth_proxy::model::{State, service_ports};
use berth_proxy::nfnetlink::{Batch, Data, Op};
use berth_proxy::nftables::{NftConfig, Nftables};
use berth_proxy::proxier::Proxier;

fn unique(prefix: &str) -> String {
    let n = std::process::id() % 100_000;
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos() % 1000).unwrap_or(0);
    format!("{prefix}{n}{t}")
}

fn service(name: &str, ip: &str, node_port: i32, affinity: bool) -> Service {
    Service {
        metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
        spec: Some(ServiceSpec {
            cluster_ip: ip.into(),
            r#type: if node_port > 0 { "NodePort".into() } else { "ClusterIP".into() },
            session_affinity: if affinity { "ClientIP".into() } else { "None".into() },
            session_affinity_config: affinity
                .then_some(SessionAffinityConfig { client_ip: Some(ClientIpConfig { timeout_seconds: Some(60) }) }),
            ports: vec![
                ApiPort { name: "http".into(), protocol: "TCP".into(), port: 80, node_port, ..Default::default() },
                ApiPort { name: "dns".into(), protocol: "UDP".into(), port: 53, ..Default::default() },
            ],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn endpoints(name: &str, ready: &[&str]) -> Endpoints {
    Endpoints {
        metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() }),
        subsets: vec![EndpointSubset {
            addresses: ready.iter().map(|ip| EndpointAddress { ip: (*ip).into(), ..Default::default() }).collect(),
            ports: vec![
                EndpointPort { name: "http".into(), protocol: "TCP".into(), port: 8080, ..Default::default() },
                EndpointPort { name: "dns".into(), protocol: "UDP".into(), port: 5353, ..Default::default() },
            ],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn set(state: &mut State, svc: &Service, eps: &[&str]) -> Option<berth_proxy::model::Changed> {
    let name = svc.metadata.as_ref().unwrap().name.clone();
    state.set(&format!("default/{name}"), service_ports(svc, Some(&endpoints(&name, eps))).unwrap())
}

fn nft_list(table: &str) -> String {
    System.run("nft", &["list", "table", "ip", table], None).unwrap_or_default()
}

/// Deletes the table even when the test fails.
struct NftGuard(String);
impl Drop for NftGuard {
    fn drop(&mut self) {
        let _ = System.run("nft", &["delete", "table", "ip", &self.0], None);
    }
}

#[test]
fn should_program_nftables_that_the_kernel_accepts_and_clean_up() {
    let table = unique("bt");
    let _guard = NftGuard(table.clone());
    let cfg = NftConfig {
        table: table.clone(),
        cluster_cidr: Some("172.30.0.0/16".parse().unwrap()),
        nodeport_addresses: vec!["172.29.200.1".parse().unwrap()],
        mark: 0x4000,
    };
    let mut p = Nftables::new(cfg.clone(), Arc::new(System)).unwrap();
    let mut state = State::new();
    set(&mut state, &service("web", "10.96.250.10", 30080, false), &["172.30.9.2", "172.30.9.3"]);
    set(&mut state, &service("sticky", "10.96.250.11", 30081, true), &["172.30.9.4", "172.30.9.5"]);
    set(&mut state, &service("empty", "10.96.250.12", 0, false), &[]);
    p.sync_full(&state).expect("full sync accepted by nft");
    let listing = nft_list(&table);
    assert!(listing.contains("10.96.250.10 . tcp . 80 : goto lb-2"), "{listing}");
    assert!(listing.contains("10.96.250.10 . udp . 53 : goto lb-2"), "{listing}");
    assert!(listing.contains("10.96.250.10 . 80 . 1 : 172.30.9.3 . 8080"), "{listing}");
    assert!(listing.contains("tcp . 30080 : goto nodeport-lb-2"), "{listing}");
    assert!(listing.contains("flags dynamic,timeout"), "{listing}");
    assert!(!listing.contains("10.96.250.12"), "a service without endpoints has no element: {listing}");

    // Partial: web loses an endpoint, sticky goes away, empty gets one.
    let mut changes = Vec::new();
    changes.extend(set(&mut state, &service("web", "10.96.250.10", 30080, false), &["172.30.9.2"]));
    changes.extend(state.set("default/sticky", Vec::new()));
    changes.extend(set(&mut state, &service("empty", "10.96.250.12", 0, false), &["172.30.9.6"]));
    p.sync_changes(&state, &changes).expect("partial sync accepted by nft");
    let listing = nft_list(&table);
    assert!(listing.contains("10.96.250.10 . tcp . 80 : goto lb-1"), "{listing}");
    assert!(!listing.contains("172.30.9.3"), "{listing}");
    assert!(!listing.contains("10.96.250.11"), "{listing}");
    assert!(!listing.contains("svc-"), "the affinity chains are gone: {listing}");
    assert!(!listing.contains("aff-"), "the affinity sets are gone: {listing}");
    assert!(listing.contains("10.96.250.12 . tcp . 80 : goto lb-1"), "{listing}");

    // A second writer (a restarted proxy) rebuilds the same table from the same state.
    let before = nft_list(&table);
    let mut restarted = Nftables::new(cfg, Arc::new(System)).unwrap();
    restarted.sync_full(&state).expect("full sync over an existing table");
    let after = nft_list(&table);
    let normalize = |s: &str| {
        let mut v: Vec<String> = s.split([',', '\n']).map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
        v.sort();
        v
    };
    assert_eq!(normalize(&before), normalize(&after));

    // A full sync reads the maps back and repairs what was changed behind its back.
    for args in [
        &["delete", "element", "ip", &table, "backends-tcp", "{ 10.96.250.10 . 80 . 0 }"][..],
        &["delete", "element", "ip", &table, "backends-tcp", "{ 10.96.250.12 . 80 . 0 }"],
        &["add", "element", "ip", &table, "backends-tcp", "{ 10.96.250.12 . 80 . 0 : 172.30.9.99 . 8080 }"],
        &["add", "element", "ip", &table, "service-ips", "{ 10.96.250.99 . tcp . 80 : goto lb-1 }"],
    ] {
        System.run("nft", args, None).expect("nft accepts the tampering");
    }
    assert_ne!(normalize(&nft_list(&table)), normalize(&after));
    restarted.sync_full(&state).expect("full sync repairs the maps");
    assert_eq!(normalize(&nft_list(&table)), normalize(&after));

    restarted.cleanup().unwrap();
    assert_eq!(nft_list(&table), "", "the table is gone");
}

#[test]
fn should_name_the_message_the_kernel_rejects_in_an_element_batch() {
    let table = unique("bt");
    let _guard = NftGuard(table.clone());
    System.run("nft", &["add", "table", "ip", &table], None).expect("nft add table");
    System.run("nft", &["add", "set", "ip", &table, "ips", "{ type ipv4_addr; }"], None).expect("nft add set");
    let mut batch = Batch::default();
    batch.element(Op::Add, &table, "ips", &[10, 96, 0, 1], Data::None);
    batch.element(Op::Add, &table, "missing", &[10, 96, 0, 2], Data::None);
    let err = batch.finish().send().expect_err("a set that does not exist");
    assert!(err.to_string().contains(&format!("add elements to {table} missing")), "{err}");
    assert!(!nft_list(&table).contains("10.96.0.1"), "nothing of a rejected batch is committed");

    let mut batch = Batch::default();
    batch.element(Op::Add, &table, "ips", &[10, 96, 0, 1], Data::None);
    batch.finish().send().expect("the same element alone");
    assert!(nft_list(&table).contains("10.96.0.1"), "{}", nft_list(&table));
}

/// Removes the chains even when the test fails.
struct IptGuard(IptConfig);
impl Drop for IptGuard {
    fn drop(&mut self) {
        if let Ok(mut p) = Iptables::new(self.0.clone(), Arc::new(System)) {
            let _ = p.cleanup();
        }
    }
}

fn save(backend: IptablesBackend, prefix: &str) -> Vec<String> {
    let out = System.run(&format!("iptables-{}-save", backend.as_str()), &["-t", "nat"], None).unwrap_or_default();
    out.lines().filter(|l| l.contains(&format!("{prefix}-"))).map(str::to_string).collect()
}

fn iptables_round_trip(backend: IptablesBackend) {
    let prefix = unique("B");
    let cfg = IptConfig {
        prefix: prefix.clone(),
        backend,
        cluster_cidr: Some("172.30.0.0/16".parse().unwrap()),
        nodeport_addresses: vec!["172.29.200.1".parse().unwrap()],
        mark: 0x4000,
    };
    let _guard = IptGuard(cfg.clone());
    let mut p = Iptables::new(cfg.clone(), Arc::new(System)).unwrap();
    let mut state = State::new();
    set(&mut state, &service("web", "10.96.250.20", 30082, false), &["172.30.9.2", "172.30.9.3"]);
    set(&mut state, &service("sticky", "10.96.250.21", 0, true), &["172.30.9.4"]);
    p.sync_full(&state).expect("full sync accepted by iptables-restore");
    let rules = save(backend, &prefix);
    let joined = rules.join("\n");
    assert!(joined.contains(&format!("-A OUTPUT -m comment --comment \"berth service portals\" -j {prefix}-SERVICES")), "{joined}");
    assert!(
        joined.contains(&format!(
            "-d 10.96.250.20/32 -p tcp -m comment --comment \"default/web:http cluster IP\" -m tcp --dport 80 -j {prefix}-SVC-"
        )),
        "{joined}"
    );
    assert!(joined.contains("--probability 0.50000000000"), "{joined}");
    assert!(joined.contains("--to-destination 172.30.9.3:8080"), "{joined}");
    assert!(joined.contains("--dport 30082"), "{joined}");
    assert!(joined.contains("--rcheck --seconds 60 --reap"), "{joined}");

    let mut changes = Vec::new();
    changes.extend(set(&mut state, &service("web", "10.96.250.20", 30082, false), &["172.30.9.2"]));
    changes.extend(state.set("default/sticky", Vec::new()));
    p.sync_changes(&state, &changes).expect("partial sync accepted by iptables-restore");
    let joined = save(backend, &prefix).join("\n");
    assert!(!joined.contains("172.30.9.3"), "{joined}");
    assert!(!joined.contains("10.96.250.21"), "{joined}");
    assert!(!joined.contains("--probability"), "{joined}");

    p.cleanup().unwrap();
    assert_eq!(save(backend, &prefix), Vec::<String>::new(), "no chain or jump is left");
}

#[test]
fn should_program_iptables_nft_that_the_kernel_accepts_and_clean_up() {
    iptables_round_trip(IptablesBackend::Nft);
}

#[test]
fn should_program_iptables_legacy_that_the_kernel_accepts_and_clean_up() {
    iptables_round_trip(IptablesBackend::Legacy);
}
