//! The endpoints controller against a real apiserver: addresses follow the
//! service's pods and their readiness, named ports resolve per pod, and the
//! Endpoints go with their Service.

mod common;

use berth_api::Resource;
use berth_api::pb::core::*;
use berth_client::DeleteParams;
use common::*;

fn service(name: &str, ns: &str, selector: &[(&str, &str)], target: &str) -> Service {
    Service {
        metadata: meta(name, ns),
        spec: Some(ServiceSpec {
            selector: labels(selector),
            ports: vec![ServicePort {
                name: "web".into(),
                port: 80,
                target_port: target.into(),
                protocol: "TCP".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod(name: &str, ns: &str, app: &str, http_port: i32) -> Pod {
    let mut spec = pod_spec("busybox:1");
    spec.containers[0].ports =
        vec![ContainerPort { name: "http".into(), container_port: http_port, protocol: "TCP".into(), ..Default::default() }];
    Pod {
        metadata: Some(ObjectMeta { name: name.into(), namespace: ns.into(), labels: labels(&[("app", app)]), ..Default::default() }),
        spec: Some(spec),
        ..Default::default()
    }
}

/// (ip, port) pairs.
type Pairs = Vec<(String, i32)>;

/// The ready and not-ready (ip, port) pairs of an Endpoints.
fn addresses(e: &Endpoints) -> (Pairs, Pairs) {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in &e.subsets {
        for p in &s.ports {
            ready.extend(s.addresses.iter().map(|a| (a.ip.clone(), p.port)));
            not_ready.extend(s.not_ready_addresses.iter().map(|a| (a.ip.clone(), p.port)));
        }
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

async fn endpoints_where(c: &berth_client::Client, ns: &str, name: &str, what: &str, f: impl Fn(&Endpoints) -> bool) -> Endpoints {
    eventually(what, || async {
        let e: Endpoints = c.get(ns, name).await.ok()?;
        f(&e).then_some(e)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn should_list_ready_and_not_ready_pods_with_their_resolved_ports() {
    let cl = Cluster::start("endpoints").await;
    let c = &cl.client;
    namespace(c, "ep1").await;
    c.create(service("web", "ep1", &[("app", "web")], "http")).await.expect("create service");
    let a = c.create(pod("a", "ep1", "web", 8080)).await.expect("pod a");
    let b = c.create(pod("b", "ep1", "web", 9090)).await.expect("pod b");
    c.create(pod("other", "ep1", "db", 8080)).await.expect("other pod");
    c.bind("ep1", "a", "node-1").await.expect("bind");
    set_pod_status(c, &a, "Running", true, "10.1.0.1").await;
    set_pod_status(c, &b, "Running", false, "10.1.0.2").await;

    let e = endpoints_where(c, "ep1", "web", "a ready, b not ready", |e| {
        addresses(e) == (vec![("10.1.0.1".into(), 8080)], vec![("10.1.0.2".into(), 9090)])
    })
    .await;
    let addr = e.subsets.iter().flat_map(|s| &s.addresses).next().expect("address");
    assert_eq!(addr.node_name.as_deref(), Some("node-1"));
    let target = addr.target_ref.as_ref().expect("targetRef");
    assert_eq!((target.kind.as_str(), target.name.as_str(), target.uid.as_str()), ("Pod", "a", a.meta().uid.as_str()));
    assert_eq!(e.subsets.iter().flat_map(|s| &s.ports).next().map(|p| p.name.as_str()), Some("web"));

    // b becomes ready, a goes away.
    set_pod_status(c, &b, "Running", true, "10.1.0.2").await;
    c.delete::<Pod>("ep1", "a", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.expect("delete a");
    let _ = c.delete::<Pod>("ep1", "a", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await;
    endpoints_where(c, "ep1", "web", "only b, ready", |e| addresses(e) == (vec![("10.1.0.2".into(), 9090)], vec![])).await;

    // The selector changes to nothing that exists: no addresses.
    let mut svc: Service = c.get("ep1", "web").await.expect("get svc");
    svc.spec.as_mut().expect("spec").selector = labels(&[("app", "none")]);
    c.update(svc).await.expect("update svc");
    endpoints_where(c, "ep1", "web", "no subsets", |e| e.subsets.is_empty()).await;

    // Deleting the service deletes its endpoints.
    c.delete::<Service>("ep1", "web", &DeleteParams::default()).await.expect("delete svc");
    eventually("endpoints gone", || async { c.get::<Endpoints>("ep1", "web").await.err().filter(|e| e.is_not_found()).map(|_| ()) }).await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_restore_endpoints_someone_deleted_and_leave_selectorless_services_alone() {
    let cl = Cluster::start("endpoints").await;
    let c = &cl.client;
    namespace(c, "ep2").await;
    c.create(service("web", "ep2", &[("app", "web")], "8080")).await.expect("create service");
    let p = c.create(pod("a", "ep2", "web", 8080)).await.expect("pod");
    set_pod_status(c, &p, "Running", true, "10.2.0.1").await;
    endpoints_where(c, "ep2", "web", "a ready", |e| addresses(e).0 == vec![("10.2.0.1".to_string(), 8080)]).await;
    c.delete::<Endpoints>("ep2", "web", &DeleteParams::default()).await.expect("delete endpoints");
    endpoints_where(c, "ep2", "web", "endpoints restored", |e| addresses(e).0 == vec![("10.2.0.1".to_string(), 8080)]).await;

    // A service without selector: the user's Endpoints are left as they are.
    c.create(service("manual", "ep2", &[], "80")).await.expect("selectorless service");
    let manual = Endpoints {
        metadata: meta("manual", "ep2"),
        subsets: vec![EndpointSubset {
            addresses: vec![EndpointAddress { ip: "192.0.2.1".into(), ..Default::default() }],
            ports: vec![EndpointPort { port: 80, protocol: "TCP".into(), ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    c.create(manual).await.expect("manual endpoints");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let e: Endpoints = c.get("ep2", "manual").await.expect("manual endpoints still there");
    assert_eq!(e.subsets[0].addresses[0].ip, "192.0.2.1");
    cl.stop().await;
}
