//! What a pod's containers see of name resolution and service discovery,
//! on the real Docker engine, read back from the containers' own output
//! (`cat /etc/resolv.conf; cat /etc/hosts; env`) through the apiserver's
//! pods/log: the resolv.conf of each dnsPolicy (ClusterFirst with the pod's
//! namespace, None with exactly its dnsConfig, Default with the node's
//! resolvers from --resolv-conf), /etc/hosts with the pod's FQDN, and the
//! Service environment variables, present by default and absent with
//! `enableServiceLinks: false`.

mod kubelet_support;

use std::collections::BTreeMap;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::*;
use berth_api::pb::kubelet::LogsRequest;
use berth_client::Client;
use futures::StreamExt;
use kubelet_support::*;

const LIMIT: Duration = Duration::from_secs(90);

/// What a container printed, split: resolv.conf, /etc/hosts, the environment.
struct Seen {
    resolv_conf: String,
    hosts: String,
    env: BTreeMap<String, String>,
}

const SCRIPT: &str = "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; env";

/// A pod in `ns` on `node` whose one container prints what it sees and exits.
fn probe_pod(ns: &str, name: &str, node: &str, f: impl FnOnce(&mut PodSpec)) -> Pod {
    let mut p = pod(name, node, vec![sh("show", SCRIPT)]);
    p.metadata_mut().namespace = ns.into();
    let spec = p.spec.as_mut().expect("spec");
    spec.restart_policy = "Never".into();
    f(spec);
    p
}

async fn create_namespace(client: &Client, name: &str) {
    client
        .create(Namespace { metadata: Some(ObjectMeta { name: name.into(), ..Default::default() }), ..Default::default() })
        .await
        .expect("create namespace");
}

/// Waits until the pod's container has run to completion, then reads its
/// output through the apiserver (pods/log).
async fn seen(client: &Client, k: &Kubelet, ns: &str, name: &str) -> Seen {
    let what = format!("pod {ns}/{name} Succeeded\n--- kubelet log ---\n{}", k.logs());
    wait_for(LIMIT, &what, || {
        let (client, ns, name) = (client.clone(), ns.to_string(), name.to_string());
        async move {
            let p = client.get::<Pod>(&ns, &name).await.ok()?;
            assert_ne!(phase(&p), "Failed", "pod {ns}/{name} failed: {:#?}", p.status);
            (phase(&p) == "Succeeded").then_some(())
        }
    })
    .await;
    let req = LogsRequest { namespace: ns.into(), pod: name.into(), container: "show".into(), ..Default::default() };
    let mut stream = client.pod_logs(req).await.expect("pods/log");
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend(chunk.expect("log chunk").data);
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let parts: Vec<&str> = text.splitn(3, "---\n").collect();
    assert_eq!(parts.len(), 3, "unexpected output of {ns}/{name}:\n{text}");
    let env = parts[2].lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Seen { resolv_conf: parts[0].to_string(), hosts: parts[1].to_string(), env }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_write_resolv_conf_by_dns_policy_and_hosts_with_the_fqdn() {
    let cluster = Cluster::start().await;
    // The node's resolvers, as --resolv-conf gives them (this host's own
    // may name only a loopback resolver).
    let node_resolv = tempfile::NamedTempFile::new().expect("temp resolv.conf");
    std::fs::write(node_resolv.path(), "# the node's resolvers\nnameserver 192.0.2.53\nsearch corp.example\noptions timeout:2\n")
        .expect("write resolv.conf");
    let resolv_flag = node_resolv.path().to_string_lossy().into_owned();
    let k = cluster.kubelet("dns", &["--resolv-conf", &resolv_flag]).await;
    let c = &cluster.client;
    create_namespace(c, "shop").await;

    // ClusterFirst (the apiserver's default), with a hostname and a subdomain.
    c.create(probe_pod("shop", "cluster-first", &k.node, |s| {
        s.dns_policy.clear();
        s.hostname = "db-0".into();
        s.subdomain = "db".into();
    }))
    .await
    .expect("create cluster-first pod");
    // None: exactly the pod's dnsConfig.
    c.create(probe_pod("default", "none", &k.node, |s| {
        s.dns_policy = "None".into();
        s.dns_config = Some(PodDnsConfig {
            nameservers: vec!["192.0.2.1".into()],
            searches: vec!["ns1.svc.cluster-domain.example".into(), "my.dns.search.suffix".into()],
            options: vec![
                PodDnsConfigOption { name: "ndots".into(), value: Some("2".into()) },
                PodDnsConfigOption { name: "edns0".into(), value: None },
            ],
        });
    }))
    .await
    .expect("create none pod");
    // Default: the node's resolvers.
    c.create(probe_pod("default", "node-dns", &k.node, |s| s.dns_policy = "Default".into())).await.expect("create default pod");

    let cf = seen(c, &k, "shop", "cluster-first").await;
    assert_eq!(
        cf.resolv_conf,
        "nameserver 10.96.0.10\nsearch shop.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:5\n"
    );
    let ip = c.get::<Pod>("shop", "cluster-first").await.expect("pod").status.unwrap_or_default().pod_ip;
    assert!(!ip.is_empty());
    assert!(cf.hosts.starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"), "{}", cf.hosts);
    assert!(cf.hosts.ends_with(&format!("\n{ip}\tdb-0.db.shop.svc.cluster.local\tdb-0\n")), "{}", cf.hosts);
    assert_eq!(cf.env.get("HOSTNAME").map(String::as_str), Some("db-0"));

    let none = seen(c, &k, "default", "none").await;
    assert_eq!(
        none.resolv_conf,
        "nameserver 192.0.2.1\nsearch ns1.svc.cluster-domain.example my.dns.search.suffix\noptions ndots:2 edns0\n"
    );
    let ip = c.get::<Pod>("default", "none").await.expect("pod").status.unwrap_or_default().pod_ip;
    assert!(none.hosts.ends_with(&format!("\n{ip}\tnone\n")), "{}", none.hosts);

    let node_dns = seen(c, &k, "default", "node-dns").await;
    assert_eq!(node_dns.resolv_conf, "nameserver 192.0.2.53\nsearch corp.example\noptions timeout:2\n");
}

/// Creates a Service in `ns` and returns its ClusterIP.
async fn service(client: &Client, ns: &str, name: &str, ports: &[(&str, i32)]) -> String {
    let svc = Service {
        metadata: Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() }),
        spec: Some(ServiceSpec {
            selector: [("app".to_string(), name.to_string())].into(),
            ports: ports
                .iter()
                .map(|(n, p)| ServicePort {
                    name: n.to_string(),
                    port: *p,
                    protocol: "TCP".into(),
                    target_port: p.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = match client.create(svc).await {
        Ok(s) => s,
        // The apiserver may create `kubernetes` itself.
        Err(e) if e.is_already_exists() => client.get::<Service>(ns, name).await.expect("get service"),
        Err(e) => panic!("create service {ns}/{name}: {e}"),
    };
    let ip = created.spec.unwrap_or_default().cluster_ip;
    assert!(!ip.is_empty() && ip != "None", "service {ns}/{name} has no ClusterIP");
    ip
}

#[tokio::test(flavor = "multi_thread")]
async fn should_give_service_variables_unless_service_links_are_off() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("svcenv", &[]).await;
    let c = &cluster.client;
    let web_ip = service(c, "default", "web", &[("http", 80), ("metrics-port", 9090)]).await;
    let (api_ip, api_port) = match c.get::<Service>("default", "kubernetes").await {
        Ok(s) => {
            let spec = s.spec.unwrap_or_default();
            (spec.cluster_ip, spec.ports.first().map(|p| p.port).unwrap_or(0))
        }
        Err(_) => (service(c, "default", "kubernetes", &[("https", 443)]).await, 443),
    };
    create_namespace(c, "other").await;

    c.create(probe_pod("default", "linked", &k.node, |s| {
        s.containers[0].env = vec![
            EnvVar { name: "WEB_SERVICE_PORT_HTTP".into(), value: "mine".into(), value_from: None },
            EnvVar { name: "WEB_URL".into(), value: "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)/".into(), value_from: None },
        ];
    }))
    .await
    .expect("create linked pod");
    c.create(probe_pod("default", "unlinked", &k.node, |s| s.enable_service_links = Some(false))).await.expect("create unlinked pod");
    c.create(probe_pod("other", "elsewhere", &k.node, |_| {})).await.expect("create pod in another namespace");

    let linked = seen(c, &k, "default", "linked").await.env;
    let get = |k: &str| linked.get(k).cloned().unwrap_or_else(|| panic!("{k} is not set: {linked:?}"));
    assert_eq!(get("WEB_SERVICE_HOST"), web_ip);
    assert_eq!(get("WEB_SERVICE_PORT"), "80");
    assert_eq!(get("WEB_SERVICE_PORT_METRICS_PORT"), "9090");
    assert_eq!(get("WEB_PORT"), format!("tcp://{web_ip}:80"));
    assert_eq!(get("WEB_PORT_80_TCP"), format!("tcp://{web_ip}:80"));
    assert_eq!(get("WEB_PORT_80_TCP_PROTO"), "tcp");
    assert_eq!(get("WEB_PORT_80_TCP_PORT"), "80");
    assert_eq!(get("WEB_PORT_80_TCP_ADDR"), web_ip);
    assert_eq!(get("WEB_PORT_9090_TCP"), format!("tcp://{web_ip}:9090"));
    // The pod's own variables win, and may name the Service ones.
    assert_eq!(get("WEB_SERVICE_PORT_HTTP"), "mine");
    assert_eq!(get("WEB_URL"), format!("http://{web_ip}:80/"));
    assert_eq!(get("KUBERNETES_SERVICE_HOST"), api_ip);
    assert_eq!(get("KUBERNETES_SERVICE_PORT"), api_port.to_string());

    let unlinked = seen(c, &k, "default", "unlinked").await.env;
    assert!(!unlinked.keys().any(|k| k.starts_with("WEB_")), "enableServiceLinks: false still has WEB_*: {unlinked:?}");
    assert_eq!(unlinked.get("KUBERNETES_SERVICE_HOST"), Some(&api_ip), "{unlinked:?}");
    assert_eq!(unlinked.get("KUBERNETES_PORT"), Some(&format!("tcp://{api_ip}:{api_port}")));

    // Another namespace: not default's Services, but the kubernetes one.
    let elsewhere = seen(c, &k, "other", "elsewhere").await.env;
    assert!(!elsewhere.contains_key("WEB_SERVICE_HOST"), "{elsewhere:?}");
    assert_eq!(elsewhere.get("KUBERNETES_SERVICE_HOST"), Some(&api_ip));
}
