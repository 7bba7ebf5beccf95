//! The service controller's host load balancer end to end: a LoadBalancer
//! service gets an address from `--lb-address-pool` (loopback addresses, so
//! nothing leaves the host), and that address answers with the service's
//! pods — through the controller's relay to the NodePort that berth-proxy
//! serves, to httpd pods on a real kubelet. Deleting the service frees it.

mod controllers_support;
mod kubelet_support;
mod proxy_support;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use berth_api::pb::core::{Namespace, ObjectMeta, Service, ServicePort, ServiceSpec};
use berth_client::DeleteParams;
use controllers_support::{ControlPlane, eventually, image, rc, serving_pods};

const LIMIT: Duration = Duration::from_secs(90);

fn ingress(s: &Service) -> Option<Ipv4Addr> {
    s.status.as_ref()?.load_balancer.as_ref()?.ingress.first()?.ip.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn should_answer_on_the_assigned_address() {
    let lease = proxy_support::Lease::take();
    let pool = format!("127.77.{n}.10-127.77.{n}.20", n = lease.n);
    let cp = ControlPlane::start_with(&["--service-cidr", &lease.service_cidr()], &["--lb-address-pool", &pool]).await;
    let mut proxy = proxy_support::Proxy::start(&cp.url(), "userspace", &lease, cp.dir(), &[]);
    proxy.wait_ready().await;
    let _kubelet = cp.kubelet("lb").await;
    let c = cp.client();
    c.create(Namespace { metadata: Some(ObjectMeta { name: "e2e-lb".into(), ..Default::default() }), ..Default::default() })
        .await
        .expect("namespace");
    c.create(rc("web", "e2e-lb", 2, image())).await.expect("rc");
    let names: Vec<String> = eventually(LIMIT, "2 pods serving", || async {
        let s = serving_pods(c, "e2e-lb", "app=web").await;
        (s.len() == 2).then(|| s.into_iter().map(|(n, _)| n).collect())
    })
    .await;
    let svc = Service {
        metadata: Some(ObjectMeta { name: "web".into(), namespace: "e2e-lb".into(), ..Default::default() }),
        spec: Some(ServiceSpec {
            r#type: "LoadBalancer".into(),
            selector: [("app".to_string(), "web".to_string())].into(),
            ports: vec![ServicePort {
                name: "http".into(),
                port: 80,
                target_port: "8080".into(),
                protocol: "TCP".into(),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    c.create(svc).await.expect("service");
    let ip = eventually(LIMIT, "an address from the pool", || async { ingress(&c.get::<Service>("e2e-lb", "web").await.ok()?) }).await;
    assert_eq!(ip.octets()[..3], [127, 77, lease.n], "{ip} is from the pool {pool}");
    let out = cp.berthctl_ok(&["get", "svc", "web", "-n", "e2e-lb"]);
    assert!(out.contains(&ip.to_string()), "berthctl shows the external address:\n{out}");

    let addr = SocketAddrV4::new(ip, 80);
    let body = eventually(LIMIT, "the address answers", || async { proxy_support::http_get_path(addr, "/index.html").await.ok() }).await;
    assert!(names.iter().any(|n| body.trim() == n), "answered by a pod of the service: {body:?} not in {names:?}");

    c.delete::<Service>("e2e-lb", "web", &DeleteParams::default()).await.expect("delete service");
    eventually(LIMIT, "the address is released", || async {
        proxy_support::http_get_path(addr, "/index.html").await.is_err().then_some(())
    })
    .await;
}
