//! The nftables mode end to end against a recorder: the scripts and element batches full and
//! partial syncs write.

use std::sync::Arc;

use super::{NftConfig, Nftables};
use crate::exec::Recorder;
use crate::model::tests::{endpoints, service};
use crate::model::{Changed, State, service_ports};
use crate::proxier::{Proxier, short_hash};

fn nft(r: &Arc<Recorder>, nodeports: &[&str]) -> Nftables<Recorder> {
    let cfg = NftConfig {
        table: "bt".into(),
        cluster_cidr: Some("172.30.0.0/16".parse().unwrap()),
        nodeport_addresses: nodeports.iter().map(|a| a.parse().unwrap()).collect(),
        mark: 0x4000,
    };
    Nftables::new(cfg, r.clone()).unwrap()
}

fn state_with(svcs: &[(&str, &str, &[&str])]) -> (State, Vec<Changed>) {
    let mut state = State::new();
    let mut changes = Vec::new();
    for (i, (name, ip, eps)) in svcs.iter().enumerate() {
        let svc = service(name, ip, &[("http", "TCP", 80, 30080 + i as i32)]);
        let e = endpoints(name, eps, &[], &[("http", "TCP", 8080)]);
        changes.extend(state.set(&format!("default/{name}"), service_ports(&svc, Some(&e)).unwrap()));
    }
    (state, changes)
}

/// The scripts and element batches of the calls recorded, in order.
fn last_script(r: &Recorder) -> String {
    r.calls().into_iter().filter(|c| c.args == ["-f", "-"] || c.program == "netlink").map(|c| c.stdin).collect()
}

#[test]
fn should_write_one_map_element_per_service_and_slot_in_a_full_sync() {
    let r = Arc::new(Recorder::new());
    let mut p = nft(&r, &["172.29.0.1"]);
    let (state, _) = state_with(&[("web", "10.96.0.10", &["172.30.0.2", "172.30.0.3"]), ("api", "10.96.0.11", &["172.30.0.4"])]);
    p.sync_full(&state).unwrap();
    let script = last_script(&r);
    assert!(script.contains("add table ip bt\n"), "{script}");
    assert!(script.contains("add rule ip bt services ip daddr . meta l4proto . th dport vmap @service-ips\n"), "{script}");
    assert!(script.contains("10.96.0.10 . tcp . 80 : goto lb-2"), "{script}");
    assert!(script.contains("10.96.0.11 . tcp . 80 : goto lb-1"), "{script}");
    assert!(script.contains("10.96.0.10 . 80 . 0 : 172.30.0.2 . 8080, 10.96.0.10 . 80 . 1 : 172.30.0.3 . 8080"), "{script}");
    assert!(script.contains("tcp . 30080 : goto nodeport-lb-2"), "{script}");
    assert!(script.contains("30080 . 0 : 172.30.0.2 . 8080"), "{script}");
    assert!(script.contains("add rule ip bt lb-2 ip saddr != 172.30.0.0/16 jump mark-for-masquerade\n"), "{script}");
    assert!(
        script.contains("meta l4proto tcp dnat ip addr . port to ip daddr . tcp dport . numgen random mod 2 map @backends-tcp"),
        "{script}"
    );
    assert!(script.contains("add element ip bt nodeport-ips { 172.29.0.1 }"), "{script}");
    assert!(script.contains("172.30.0.2 . 172.30.0.2"), "hairpin: {script}");
    // No per-service chain without affinity: the lookup is one map access.
    assert!(!script.contains("svc-"), "{script}");
}

#[test]
fn should_remove_chains_and_sets_left_by_an_earlier_run() {
    let r = Arc::new(Recorder::new());
    r.answer(
        "nft list chains",
        Ok("table ip nat {\n\tchain lb-9 {\n\t}\n}\ntable ip bt {\n\tchain lb-7 {\n\t}\n\tchain services {\n\t}\n}\n"),
    );
    r.answer("nft -t list sets", Ok("table ip bt {\n\tset aff-OLD {\n\t\ttype ipv4_addr\n\t}\n}\n"));
    r.answer("nft -t list maps", Ok("table ip bt {\n\tmap backends-tcp {\n\t}\n}\n"));
    let mut p = nft(&r, &[]);
    p.sync_full(&State::new()).unwrap();
    let script = last_script(&r);
    assert!(script.contains("flush chain ip bt lb-7\n"), "{script}");
    assert!(script.contains("delete chain ip bt lb-7\n"), "{script}");
    assert!(script.contains("delete set ip bt aff-OLD\n"), "{script}");
    assert!(!script.contains("delete chain ip bt services"), "{script}");
    assert!(!script.contains("delete set ip bt backends-tcp"), "{script}");
    assert!(!script.contains("lb-9"), "another table's chain is not ours: {script}");
}

#[test]
fn should_rewrite_only_the_changed_elements_in_a_partial_sync() {
    let r = Arc::new(Recorder::new());
    let mut p = nft(&r, &[]);
    let (mut state, _) = state_with(&[("web", "10.96.0.10", &["172.30.0.2", "172.30.0.3"]), ("api", "10.96.0.11", &["172.30.0.4"])]);
    p.sync_full(&state).unwrap();
    r.clear();
    // web loses an endpoint; api is untouched.
    let svc = service("web", "10.96.0.10", &[("http", "TCP", 80, 30080)]);
    let e = endpoints("web", &["172.30.0.2"], &["172.30.0.3"], &[("http", "TCP", 8080)]);
    let change = state.set("default/web", service_ports(&svc, Some(&e)).unwrap()).unwrap();
    p.sync_changes(&state, &[change]).unwrap();
    let script = last_script(&r);
    assert!(!script.contains("10.96.0.11"), "api must not be rewritten: {script}");
    assert!(script.contains("delete element ip bt service-ips { 10.96.0.10 . tcp . 80 }"), "{script}");
    assert!(script.contains("delete element ip bt backends-tcp { 10.96.0.10 . 80 . 0, 10.96.0.10 . 80 . 1 }"), "{script}");
    assert!(script.contains("delete element ip bt hairpin { 172.30.0.3 . 172.30.0.3 }"), "{script}");
    assert!(script.contains("add element ip bt service-ips { 10.96.0.10 . tcp . 80 : goto lb-1 }"), "{script}");
    assert!(script.contains("add element ip bt backends-tcp { 10.96.0.10 . 80 . 0 : 172.30.0.2 . 8080 }"), "{script}");
    assert!(!script.contains("add chain ip bt lb-1"), "lb-1 exists already: {script}");
}

#[test]
fn should_build_affinity_services_with_a_set_per_endpoint() {
    let r = Arc::new(Recorder::new());
    let mut p = nft(&r, &["172.29.0.1"]);
    let mut svc = service("sticky", "10.96.0.20", &[("", "TCP", 80, 30090)]);
    svc.spec.as_mut().unwrap().session_affinity = "ClientIP".into();
    let e = endpoints("sticky", &["172.30.0.2", "172.30.0.3"], &[], &[("", "TCP", 80)]);
    let mut state = State::new();
    let change = state.set("default/sticky", service_ports(&svc, Some(&e)).unwrap()).unwrap();
    p.sync_changes(&state, std::slice::from_ref(&change)).unwrap();
    let script = last_script(&r);
    let svc_chain = format!("svc-{}-default/sticky/tcp/p80", short_hash("default/sticky/tcp/p80", 8));
    assert!(script.contains(&format!("10.96.0.20 . tcp . 80 : goto {svc_chain}")), "{script}");
    assert!(script.contains("flags dynamic,timeout; timeout 10800s;"), "{script}");
    assert!(script.contains("update @aff-"), "{script}");
    assert!(script.contains("meta l4proto tcp dnat to 172.30.0.3:80"), "{script}");
    assert!(script.contains("numgen random mod 2 vmap { 0 : goto ep-"), "{script}");
    assert!(script.contains("jump mark-for-masquerade\nadd rule ip bt nodeport-"), "{script}");
    // Endpoint chains exist before the service chain refers to them.
    let first_ep = script.find("add chain ip bt ep-").unwrap();
    let first_svc = script.find(&format!("add chain ip bt {svc_chain}")).unwrap();
    assert!(first_ep < first_svc);

    r.clear();
    let gone = state.set("default/sticky", Vec::new()).unwrap();
    p.sync_changes(&state, &[gone]).unwrap();
    let script = last_script(&r);
    assert!(script.contains(&format!("delete chain ip bt {svc_chain}")), "{script}");
    assert!(script.contains("delete set ip bt aff-"), "{script}");
    let flush = script.find(&format!("flush chain ip bt {svc_chain}")).unwrap();
    let delete_ep = script.find("delete chain ip bt ep-").unwrap();
    assert!(flush < delete_ep, "the service chain is emptied before its endpoint chains go: {script}");
}

#[test]
fn should_write_ten_thousand_services_in_one_transaction() {
    let r = Arc::new(Recorder::new());
    let mut p = nft(&r, &[]);
    let mut state = State::new();
    for i in 0..10_000u32 {
        let ip = std::net::Ipv4Addr::from(0x0a60_0000 + i + 1).to_string();
        let eps: Vec<String> = (0..10u32).map(|e| std::net::Ipv4Addr::from(0xac1e_0000 + i * 10 + e).to_string()).collect();
        let eps: Vec<&str> = eps.iter().map(String::as_str).collect();
        let svc = service(&format!("s{i}"), &ip, &[("http", "TCP", 80, 0)]);
        let e = endpoints(&format!("s{i}"), &eps, &[], &[("http", "TCP", 8080)]);
        state.set(&format!("default/s{i}"), service_ports(&svc, Some(&e)).unwrap());
    }
    let programmed = p.sync_full(&state).unwrap();
    // Hairpin elements only for the 65,536 endpoints inside 172.30.0.0/16.
    assert_eq!(programmed.rules, 10_000 + 100_000 + 65_536 + 3, "elements and lb-10 rules");
    let script = last_script(&r);
    assert_eq!(script.matches(" : goto lb-10").count(), 10_000);
    let batch = r.calls().into_iter().filter(|c| c.program == "netlink").count();
    assert_eq!(batch, 1, "the elements go in one netlink batch");
}

#[test]
fn should_leave_endpoints_outside_the_cluster_cidr_out_of_the_hairpin_set() {
    let r = Arc::new(Recorder::new());
    let mut p = nft(&r, &[]);
    let (state, _) = state_with(&[("web", "10.96.0.10", &["172.30.0.2", "100.64.0.3"])]);
    p.sync_full(&state).unwrap();
    let script = last_script(&r);
    assert!(script.contains("add element ip bt hairpin { 172.30.0.2 . 172.30.0.2 }"), "{script}");
    assert!(!script.contains("100.64.0.3 . 100.64.0.3"), "masqueraded by lb-2 already: {script}");
    assert!(script.contains("10.96.0.10 . 80 . 0 : 100.64.0.3 . 8080"), "{script}");
}
