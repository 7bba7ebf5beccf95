//! The node controllers against a real apiserver, with short periods: a node
//! whose heartbeats stop becomes Unknown and tainted, its pods not ready,
//! then evicted and recreated by their RC; a node that reports again is
//! untainted; every node gets its own podCIDR.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::*;
use berth_client::Client;
use common::*;

fn now() -> String {
    berth_api::time::now_rfc3339_micros()
}

/// Registers a node reporting Ready, with its heartbeat Lease.
async fn register(c: &Client, name: &str) {
    c.create(Node { metadata: meta(name, ""), ..Default::default() }).await.expect("create node");
    heartbeat(c, name, "True").await;
    let lease = Lease {
        metadata: meta(name, "kube-node-lease"),
        spec: Some(LeaseSpec {
            holder_identity: Some(name.into()),
            lease_duration_seconds: Some(40),
            renew_time: now(),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.create(lease).await.expect("create lease");
}

/// What a kubelet does every few seconds: renew its Lease and post its Ready condition.
async fn heartbeat(c: &Client, name: &str, ready: &str) {
    for _ in 0..10 {
        let Ok(mut n) = c.get::<Node>("", name).await else { return };
        let s = n.status.get_or_insert_with(Default::default);
        s.addresses = vec![NodeAddress { r#type: "InternalIP".into(), address: "127.0.0.1".into() }];
        let t = now();
        match s.conditions.iter_mut().find(|c| c.r#type == "Ready") {
            Some(cond) => {
                if cond.status != ready {
                    cond.last_transition_time = t.clone();
                }
                cond.status = ready.into();
                cond.last_heartbeat_time = t;
                cond.reason = "KubeletReady".into();
            }
            None => s.conditions.push(NodeCondition {
                r#type: "Ready".into(),
                status: ready.into(),
                last_heartbeat_time: t.clone(),
                last_transition_time: t,
                ..Default::default()
            }),
        }
        match c.update_status(n).await {
            Ok(_) => break,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("heartbeat: {e}"),
        }
    }
    if let Ok(mut l) = c.get::<Lease>("kube-node-lease", name).await {
        l.spec.get_or_insert_with(Default::default).renew_time = now();
        let _ = c.update(l).await;
    }
}

fn taint_keys(n: &Node) -> BTreeSet<String> {
    n.spec.as_ref().map(|s| s.taints.iter().map(|t| format!("{}:{}", t.key, t.effect)).collect()).unwrap_or_default()
}

fn ready_status(n: &Node) -> String {
    n.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready")).map(|c| c.status.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn should_taint_a_silent_node_evict_its_pods_and_untaint_it_when_it_reports_again() {
    let cl = Cluster::start_with("node,nodeipam,replication", |c| {
        c.node.monitor_period = Duration::from_millis(200);
        c.node.grace_period = Duration::from_secs(2);
        c.node.pod_eviction_timeout = Duration::from_secs(2);
        c.node.eviction_rate = 10.0;
    })
    .await;
    let c = cl.client.clone();
    register(&c, "alive").await;
    register(&c, "lost").await;
    // Kubelets: "alive" keeps beating; "lost" beats until told to stop.
    let lost_beats = Arc::new(AtomicBool::new(true));
    let beating = {
        let (c, lost_beats) = (c.clone(), lost_beats.clone());
        tokio::spawn(async move {
            loop {
                heartbeat(&c, "alive", "True").await;
                if lost_beats.load(Ordering::SeqCst) {
                    heartbeat(&c, "lost", "True").await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };

    // Every node gets a distinct podCIDR from the cluster CIDR.
    let cidrs = eventually("podCIDRs allocated", || async {
        let a: Node = c.get("", "alive").await.ok()?;
        let l: Node = c.get("", "lost").await.ok()?;
        let (a, l) = (a.spec?.pod_cidr, l.spec?.pod_cidr);
        (!a.is_empty() && !l.is_empty()).then_some((a, l))
    })
    .await;
    assert_ne!(cidrs.0, cidrs.1);
    assert!(cidrs.0 != "172.30.0.0/24" && cidrs.1 != "172.30.0.0/24", "the gateway's subnet is reserved");
    assert!(cidrs.0.starts_with("172.30.") && cidrs.0.ends_with("/24"), "{}", cidrs.0);

    // An RC's pods run on the node that will be lost.
    let rc = c.create(rc("web", "default", 2)).await.expect("rc");
    let pods = eventually("2 pods", || async {
        let p: Vec<Pod> = list::<Pod>(&c, "default", "app=web").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    for p in &pods {
        c.bind("default", p.name(), "lost").await.expect("bind");
        set_pod_status(&c, p, "Running", true, "172.30.1.5").await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let n: Node = c.get("", "lost").await.expect("node");
    assert_eq!(ready_status(&n), "True");
    assert!(taint_keys(&n).is_empty(), "{:?}", taint_keys(&n));

    // The kubelet dies.
    lost_beats.store(false, Ordering::SeqCst);
    let n = eventually("lost node Unknown and tainted unreachable", || async {
        let n: Node = c.get("", "lost").await.ok()?;
        (ready_status(&n) == "Unknown" && taint_keys(&n).contains("node.kubernetes.io/unreachable:NoExecute")).then_some(n)
    })
    .await;
    assert!(taint_keys(&n).contains("node.kubernetes.io/unreachable:NoSchedule"));
    let alive: Node = c.get("", "alive").await.expect("alive");
    assert_eq!(ready_status(&alive), "True");
    assert!(taint_keys(&alive).is_empty());

    // Its pods are evicted, and the RC replaces them.
    eventually("pods evicted and replaced", || async {
        let all: Vec<Pod> = list::<Pod>(&c, "default", "app=web").await;
        let old_marked = pods.iter().all(|p| all.iter().any(|q| q.meta().uid == p.meta().uid && !q.meta().deletion_timestamp.is_empty()));
        let fresh = all
            .iter()
            .filter(|q| q.meta().deletion_timestamp.is_empty() && q.meta().owner_references.iter().any(|r| r.uid == rc.meta().uid))
            .count();
        (old_marked && fresh == 2).then_some(())
    })
    .await;

    // The kubelet comes back: Ready, untainted.
    heartbeat(&c, "lost", "True").await;
    lost_beats.store(true, Ordering::SeqCst);
    eventually("node ready and untainted", || async {
        let n: Node = c.get("", "lost").await.ok()?;
        (ready_status(&n) == "True" && taint_keys(&n).is_empty()).then_some(())
    })
    .await;
    beating.abort();
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_not_evict_when_every_node_is_down() {
    let cl = Cluster::start_with("node", |c| {
        c.node.monitor_period = Duration::from_millis(200);
        c.node.grace_period = Duration::from_secs(1);
        c.node.pod_eviction_timeout = Duration::from_secs(1);
        c.node.eviction_rate = 10.0;
    })
    .await;
    let c = cl.client.clone();
    register(&c, "only").await;
    c.create(Pod { metadata: meta("p", "default"), spec: Some(pod_spec("busybox:1")), ..Default::default() }).await.expect("pod");
    c.bind("default", "p", "only").await.expect("bind");
    eventually("node Unknown", || async {
        let n: Node = c.get("", "only").await.ok()?;
        (ready_status(&n) == "Unknown").then_some(())
    })
    .await;
    // The whole cluster looks down: most likely it is us who are cut off; nothing is evicted.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p: Pod = c.get("default", "p").await.expect("pod");
    assert!(p.meta().deletion_timestamp.is_empty(), "a fully disrupted cluster must not evict");
    cl.stop().await;
}
