//! The resource quota controller and the service controller against a real
//! apiserver: `status.used` follows what exists; a LoadBalancer service
//! gets an address from the pool that relays to its NodePort, released when
//! the service goes or changes type.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use berth_api::pb::core::*;
use berth_client::DeleteParams;
use berth_controller_manager::service::pool::Pool;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn pod_with(name: &str, cpu: &str, mem: &str) -> Pod {
    let mut spec = pod_spec("busybox:1");
    let r = ResourceRequirements {
        requests: [("cpu".to_string(), cpu.to_string()), ("memory".to_string(), mem.to_string())].into(),
        limits: [("cpu".to_string(), cpu.to_string()), ("memory".to_string(), mem.to_string())].into(),
    };
    spec.containers[0].resources = Some(r);
    Pod { metadata: meta(name, "q1"), spec: Some(spec), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_quota_usage_up_to_date() {
    let cl = Cluster::start("resourcequota").await;
    let c = &cl.client;
    namespace(c, "q1").await;
    let hard = labels(&[
        ("pods", "10"),
        ("requests.cpu", "4"),
        ("limits.memory", "1Gi"),
        ("configmaps", "5"),
        ("services", "2"),
        ("services.nodeports", "3"),
    ]);
    c.create(ResourceQuota {
        metadata: meta("compute", "q1"),
        spec: Some(ResourceQuotaSpec { hard: hard.clone(), ..Default::default() }),
        ..Default::default()
    })
    .await
    .expect("quota");
    c.create(pod_with("a", "500m", "128Mi")).await.expect("pod a");
    c.create(pod_with("b", "250m", "64Mi")).await.expect("pod b");
    c.create(ConfigMap { metadata: meta("cm", "q1"), ..Default::default() }).await.expect("configmap");
    let svc = Service {
        metadata: meta("np", "q1"),
        spec: Some(ServiceSpec {
            r#type: "NodePort".into(),
            ports: vec![ServicePort { port: 80, node_port: 30_123, protocol: "TCP".into(), ..Default::default() }],
            selector: labels(&[("app", "x")]),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.create(svc).await.expect("service");
    let used = |want: &'static [(&'static str, &'static str)]| {
        let c = c.clone();
        async move {
            eventually(&format!("used {want:?}"), || async {
                let q: ResourceQuota = c.get("q1", "compute").await.ok()?;
                let s = q.status?;
                want.iter().all(|(k, v)| s.used.get(*k).map(String::as_str) == Some(*v)).then_some(s)
            })
            .await
        }
    };
    let s = used(&[
        ("pods", "2"),
        ("requests.cpu", "750m"),
        ("limits.memory", "192Mi"),
        ("configmaps", "1"),
        ("services", "1"),
        ("services.nodeports", "1"),
    ])
    .await;
    assert_eq!(s.hard, hard);
    // A finished pod stops counting; a deleted one too.
    let b: Pod = c.get("q1", "b").await.expect("b");
    set_pod_status(c, &b, "Succeeded", false, "").await;
    c.delete::<ConfigMap>("q1", "cm", &DeleteParams::default()).await.expect("delete cm");
    used(&[("pods", "1"), ("requests.cpu", "500m"), ("limits.memory", "128Mi"), ("configmaps", "0")]).await;
    cl.stop().await;
}

/// A TCP server that answers every connection with `reply`, standing in for kube-proxy's NodePort.
async fn node_port_server(reply: &'static str) -> u16 {
    for _ in 0..200 {
        let port = 30_000 + (rand_u16() % 2_700);
        if let Ok(l) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            tokio::spawn(async move {
                while let Ok((mut s, _)) = l.accept().await {
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        let _ = s.write_all(format!("{reply}:{}", String::from_utf8_lossy(&buf[..n])).as_bytes()).await;
                    });
                }
            });
            return port;
        }
    }
    panic!("no free port for the node port server");
}

fn rand_u16() -> u16 {
    use std::time::SystemTime;
    let n = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(7);
    (n ^ std::process::id()) as u16
}

async fn ask(addr: SocketAddr, msg: &str) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await.ok()?.ok()?;
    s.write_all(msg.as_bytes()).await.ok()?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_string(&mut out)).await.ok()?.ok()?;
    Some(out)
}

fn ingress_ip(s: &Service) -> Option<Ipv4Addr> {
    s.status.as_ref()?.load_balancer.as_ref()?.ingress.first()?.ip.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn should_give_a_load_balancer_service_an_address_that_answers() {
    // Loopback addresses are local without touching any interface.
    let base = 100 + (rand_u16() % 100) as u8;
    let pool: Pool = format!("127.77.{base}.10-127.77.{base}.11").parse().expect("pool");
    let cl = Cluster::start_with("service", |c| c.service.pool = Some(pool.clone())).await;
    let c = &cl.client;
    namespace(c, "lb").await;
    let node_port = node_port_server("hello").await;
    let svc = Service {
        metadata: meta("web", "lb"),
        spec: Some(ServiceSpec {
            r#type: "LoadBalancer".into(),
            ports: vec![ServicePort {
                name: "http".into(),
                port: 8080,
                node_port: node_port as i32,
                protocol: "TCP".into(),
                ..Default::default()
            }],
            selector: labels(&[("app", "web")]),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.create(svc).await.expect("service");
    let ip = eventually("an ingress address", || async { ingress_ip(&c.get::<Service>("lb", "web").await.ok()?) }).await;
    assert!(pool.contains(ip), "{ip} is not from {pool}");
    let answer = eventually("the address answers", || async { ask(SocketAddr::from((ip, 8080)), "ping").await }).await;
    assert_eq!(answer, "hello:ping");

    // A second service gets the other address; a third finds the pool empty.
    let node_port2 = node_port_server("hello2").await;
    let second = Service {
        metadata: meta("web2", "lb"),
        spec: Some(ServiceSpec {
            r#type: "LoadBalancer".into(),
            ports: vec![ServicePort {
                name: "http".into(),
                port: 8080,
                node_port: node_port2 as i32,
                protocol: "TCP".into(),
                ..Default::default()
            }],
            selector: labels(&[("app", "web")]),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.create(second).await.expect("second service");
    let ip2 = eventually("second address", || async { ingress_ip(&c.get::<Service>("lb", "web2").await.ok()?) }).await;
    assert_ne!(ip, ip2);
    let answer = eventually("the second address answers", || async { ask(SocketAddr::from((ip2, 8080)), "ping").await }).await;
    assert_eq!(answer, "hello2:ping");

    // Changing type releases the address (and stops answering); it goes to nobody else until asked.
    let mut s: Service = c.get("lb", "web").await.expect("svc");
    s.spec.as_mut().expect("spec").r#type = "NodePort".into();
    c.update(s).await.expect("to NodePort");
    eventually("status cleared", || async {
        let s: Service = c.get("lb", "web").await.ok()?;
        ingress_ip(&s).is_none().then_some(())
    })
    .await;
    eventually("address stops answering", || async { ask(SocketAddr::from((ip, 8080)), "ping").await.is_none().then_some(()) }).await;

    // Deleting the other releases its address too.
    c.delete::<Service>("lb", "web2", &DeleteParams::default()).await.expect("delete");
    eventually("second address stops answering", || async { ask(SocketAddr::from((ip2, 8080)), "ping").await.is_none().then_some(()) })
        .await;
    cl.stop().await;
}

async fn quota(c: &berth_client::Client, ns: &str, name: &str, hard: &[(&str, &str)]) {
    c.create(ResourceQuota {
        metadata: meta(name, ns),
        spec: Some(ResourceQuotaSpec { hard: labels(hard), ..Default::default() }),
        ..Default::default()
    })
    .await
    .expect("quota");
}

fn plain_pod(name: &str, ns: &str) -> Pod {
    Pod { metadata: meta(name, ns), spec: Some(pod_spec("busybox:1")), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_what_exceeds_a_quota_naming_it_and_write_nothing() {
    let cl = Cluster::start("resourcequota,replication").await;
    let c = &cl.client;
    namespace(c, "q2").await;
    quota(c, "q2", "pod-count", &[("pods", "2"), ("configmaps", "1")]).await;
    c.create(plain_pod("a", "q2")).await.expect("first pod");
    c.create(plain_pod("b", "q2")).await.expect("second pod");
    let err = c.create(plain_pod("c", "q2")).await.expect_err("third pod exceeds the quota");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert_eq!(err.to_string(), "pods \"c\" is forbidden: exceeded quota: pod-count, requested: pods=1, used: pods=2, limited: pods=2");
    assert!(c.get::<Pod>("q2", "c").await.is_err_and(|e| e.is_not_found()), "a refused pod is not written");

    // Deleting a pod frees its share.
    c.delete::<Pod>("q2", "a", &DeleteParams::default()).await.expect("delete");
    eventually("room again", || async { c.create(plain_pod("c", "q2")).await.ok() }).await;

    // An RC cannot create past the quota either: it says so in its status and events.
    c.create(rc("web", "q2", 3)).await.expect("rc");
    let cond = eventually("ReplicaFailure", || async {
        let rc: ReplicationController = c.get("q2", "web").await.ok()?;
        rc.status?.conditions.into_iter().find(|c| c.r#type == "ReplicaFailure")
    })
    .await;
    assert_eq!(cond.reason, "FailedCreate");
    assert!(cond.message.contains("exceeded quota: pod-count"), "{}", cond.message);
    let pods = list::<Pod>(c, "q2", "").await;
    assert_eq!(
        pods.len(),
        2,
        "the quota holds: {:?}",
        pods.iter().map(|p| p.metadata.as_ref().map(|m| m.name.clone())).collect::<Vec<_>>()
    );
    eventually("FailedCreate event", || async {
        let (events, _) = c.list::<Event>("q2", &Default::default()).await.ok()?;
        events.into_iter().find(|e| e.reason == "FailedCreate" && e.message.contains("exceeded quota"))
    })
    .await;
    cl.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_default_container_resources_from_a_limit_range_and_enforce_its_bounds() {
    let cl = Cluster::start("resourcequota").await;
    let c = &cl.client;
    namespace(c, "lr").await;
    let item = LimitRangeItem {
        r#type: "Container".into(),
        default: labels(&[("cpu", "500m"), ("memory", "128Mi")]),
        default_request: labels(&[("cpu", "100m"), ("memory", "64Mi")]),
        max: labels(&[("cpu", "1")]),
        ..Default::default()
    };
    c.create(LimitRange { metadata: meta("limits", "lr"), spec: Some(LimitRangeSpec { limits: vec![item] }), ..Default::default() })
        .await
        .expect("limitrange");
    quota(c, "lr", "compute", &[("requests.cpu", "1"), ("limits.memory", "2Gi")]).await;

    // A pod that says nothing gets the defaults, which the quota then counts.
    let p = c.create(plain_pod("defaulted", "lr")).await.expect("pod");
    let r = p.spec.as_ref().and_then(|s| s.containers[0].resources.clone()).expect("resources set");
    assert_eq!(r.requests.get("cpu").map(String::as_str), Some("100m"));
    assert_eq!(r.limits.get("memory").map(String::as_str), Some("128Mi"));
    assert!(p.metadata.as_ref().is_some_and(|m| {
        m.annotations.get("kubernetes.io/limit-ranger").is_some_and(|a| a.contains("cpu, memory request for container app"))
    }));
    eventually("quota counts the defaults", || async {
        let q: ResourceQuota = c.get("lr", "compute").await.ok()?;
        let used = q.status?.used;
        (used.get("requests.cpu").map(String::as_str) == Some("100m") && used.get("limits.memory").map(String::as_str) == Some("128Mi"))
            .then_some(())
    })
    .await;

    // Above the max: refused, with the rule in the message.
    let mut big = plain_pod("big", "lr");
    big.spec.as_mut().expect("spec").containers[0].resources =
        Some(ResourceRequirements { limits: labels(&[("cpu", "2")]), requests: labels(&[("cpu", "2")]) });
    let err = c.create(big).await.expect_err("above max");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert!(err.to_string().contains("maximum cpu usage per Container is 1, but limit is 2"), "{err}");

    // Within the LimitRange but beyond the quota's requests.cpu: refused by the quota.
    for i in 0..9 {
        let _ = c.create(plain_pod(&format!("fill-{i}"), "lr")).await;
    }
    let err = c.create(plain_pod("one-too-many", "lr")).await.expect_err("quota exhausted");
    assert!(
        err.to_string().contains("exceeded quota: compute, requested: requests.cpu=100m, used: requests.cpu=1, limited: requests.cpu=1"),
        "{err}"
    );
    cl.stop().await;
}
