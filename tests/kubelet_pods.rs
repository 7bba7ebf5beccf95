//! The kubelet runs pods on the real Docker engine: a registered node with
//! capacity, conditions and a Lease heartbeat; a pod that runs and reports
//! its IP; containers of one pod that share localhost; pods that reach each
//! other by pod IP, on one node and across two nodes of one host; secrets
//! and configMaps as files (followed when they change) and as env; the
//! downward API.

mod kubelet_support;

use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::*;
use kubelet_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn should_register_the_node_with_capacity_conditions_and_a_lease() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("node", &[]).await;
    let node = k.wait_ready(&cluster.client).await;
    let status = node.status.clone().unwrap_or_default();
    for r in ["cpu", "memory", "pods"] {
        assert!(status.capacity.contains_key(r), "capacity has no {r}: {:?}", status.capacity);
        assert!(status.allocatable.contains_key(r), "allocatable has no {r}");
    }
    assert_eq!(status.capacity["pods"], "110");
    let cpu = |q: &str| berth_api::quantity::parse_cpu_millis(q).unwrap();
    // --kube-reserved cpu=100m,memory=256Mi by default.
    assert_eq!(cpu(&status.capacity["cpu"]) - cpu(&status.allocatable["cpu"]), 100);
    let mem = |q: &str| berth_api::quantity::parse_bytes(q).unwrap();
    assert_eq!(mem(&status.capacity["memory"]) - mem(&status.allocatable["memory"]), 256 << 20);
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        let c = status.conditions.iter().find(|c| c.r#type == kind).unwrap_or_else(|| panic!("no {kind} condition"));
        // The host's disk may really be short (under 10% free): only the others are sure to be False here.
        assert!(c.status == "False" || kind == "DiskPressure" && c.status == "True", "{kind}: {c:?}");
        assert!(!c.reason.is_empty() && !c.last_heartbeat_time.is_empty(), "{c:?}");
    }
    assert!(status.addresses.iter().any(|a| a.r#type == "InternalIP" && a.address == "127.0.0.1"));
    let info = status.node_info.clone().unwrap_or_default();
    assert!(!info.kernel_version.is_empty());
    assert!(info.container_runtime_version.starts_with("docker://"), "{info:?}");
    assert!(status.images.iter().any(|i| i.names.iter().any(|n| n == IMAGE)), "images: {:?}", status.images);
    let port = status.daemon_endpoints.and_then(|d| d.kubelet_endpoint).map(|e| e.port).unwrap_or(0);
    assert!(port > 0, "no kubelet endpoint port");
    assert_eq!(node.spec.as_ref().map(|s| s.pod_cidr.as_str()), Some(k.cidr.cidr.as_str()));
    assert_eq!(node.meta().labels.get("kubernetes.io/hostname"), Some(&k.node));

    // The Lease is renewed (every second in tests).
    let lease = |c: berth_client::Client, n: String| async move {
        c.get::<Lease>("kube-node-lease", &n).await.ok().and_then(|l| l.spec).map(|s| s.renew_time)
    };
    let first = wait_for(LIMIT, "the node's lease", || lease(cluster.client.clone(), k.node.clone())).await;
    wait_for(LIMIT, "the lease renewed", || {
        let f = first.clone();
        let l = lease(cluster.client.clone(), k.node.clone());
        async move { l.await.filter(|t| *t != f) }
    })
    .await;
    // The node's usage for the scheduler.
    wait_for(LIMIT, "usage annotations", || {
        let c = cluster.client.clone();
        let n = k.node.clone();
        async move {
            let node = c.get::<Node>("", &n).await.ok()?;
            let a = &node.meta().annotations;
            (a.contains_key("berth.io/cpu-usage-millis") && a.contains_key("berth.io/memory-usage-bytes")).then_some(())
        }
    })
    .await;
}

/// GET / on ip:port from the host; the status line.
async fn http_get(ip: &str, port: u16) -> Option<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect((ip, port))).await.ok()?.ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf)).await.ok()?.ok()?;
    Some(String::from_utf8_lossy(&buf).lines().next()?.to_string())
}

fn httpd(name: &str, port: u16) -> Container {
    Container {
        ports: vec![ContainerPort { container_port: port.into(), ..Default::default() }],
        ..sh(name, &format!("exec httpd -f -p {port} -h /var/www"))
    }
}

fn exec_probe(cmd: &str) -> Option<Probe> {
    Some(Probe {
        exec: Some(ExecAction { command: vec!["sh".into(), "-c".into(), cmd.into()] }),
        period_seconds: Some(1),
        failure_threshold: Some(1),
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn should_run_a_pod_and_report_its_ip() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("ip", &[]).await;
    cluster.client.create(pod("web", &k.node, vec![httpd("web", 8080)])).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "web", "Running and Ready", LIMIT, |p| phase(p) == "Running" && condition(p, "Ready")).await;
    let s = p.status.clone().unwrap_or_default();
    let prefix = k.cidr.cidr.trim_end_matches("0/24");
    assert!(s.pod_ip.starts_with(prefix), "pod IP {} is not in {}", s.pod_ip, k.cidr.cidr);
    assert_eq!(s.host_ip, "127.0.0.1");
    assert!(!s.start_time.is_empty());
    let c = container_status(&p, "web").expect("container status");
    assert!(c.ready && c.container_id.starts_with("docker://") && c.image_id.starts_with("docker://"), "{c:?}");
    for kind in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert!(condition(&p, kind), "{kind} is not True");
    }
    // The reported IP is the pod's: its server answers there.
    let line = wait_for(LIMIT, "httpd on the pod IP", || http_get(&s.pod_ip, 8080)).await;
    assert!(line.contains("200"), "{line}");
    // One sandbox and one app container, labelled with the pod.
    let names = node_containers(&k.node, true);
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_publish_host_ports_on_the_node() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("hostport", &[]).await;
    let port = berth_e2e::free_port();
    let mut web = httpd("web", 8084);
    web.ports[0].host_port = port.into();
    cluster.client.create(pod("published", &k.node, vec![web])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "published", "Running", LIMIT, |p| running(p, "web")).await;
    let line = wait_for(LIMIT, "httpd on the host port", || http_get("127.0.0.1", port)).await;
    assert!(line.contains("200"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_let_containers_of_a_pod_talk_over_localhost() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("lo", &[]).await;
    let mut client = sh("client", "exec sleep 3600");
    // Ready only when the other container answers on localhost.
    client.readiness_probe = exec_probe("wget -q -O- http://127.0.0.1:8081/ | grep -q berth");
    cluster.client.create(pod("duo", &k.node, vec![httpd("server", 8081), client])).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "duo", "both containers ready", LIMIT, |p| condition(p, "Ready")).await;
    assert!(container_status(&p, "client").is_some_and(|c| c.ready));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_let_pods_reach_each_other_by_pod_ip() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("p2p", &[]).await;
    cluster.client.create(pod("server", &k.node, vec![httpd("web", 8082)])).await.expect("create server");
    let server = wait_pod(&cluster.client, &k, "server", "Running", LIMIT, |p| phase(p) == "Running").await;
    let ip = server.status.map(|s| s.pod_ip).unwrap_or_default();
    let mut c = sh("client", "exec sleep 3600");
    c.readiness_probe = exec_probe(&format!("wget -q -O- http://{ip}:8082/ | grep -q berth"));
    cluster.client.create(pod("client", &k.node, vec![c])).await.expect("create client");
    wait_pod(&cluster.client, &k, "client", "Ready (it reached the server)", LIMIT, |p| condition(p, "Ready")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_let_pods_on_two_nodes_of_one_host_reach_each_other() {
    let cluster = Cluster::start().await;
    let (k1, k2) = (cluster.kubelet("n1", &[]).await, cluster.kubelet("n2", &[]).await);
    cluster.client.create(pod("a", &k1.node, vec![httpd("web", 8083)])).await.expect("create a");
    let a = wait_pod(&cluster.client, &k1, "a", "Running", LIMIT, |p| phase(p) == "Running").await;
    let ip = a.status.map(|s| s.pod_ip).unwrap_or_default();
    let mut c = sh("client", "exec sleep 3600");
    c.readiness_probe = exec_probe(&format!("wget -q -O- http://{ip}:8083/ | grep -q berth"));
    cluster.client.create(pod("b", &k2.node, vec![c])).await.expect("create b");
    let b = wait_pod(&cluster.client, &k2, "b", "Ready (it reached pod a)", LIMIT, |p| condition(p, "Ready")).await;
    let b_ip = b.status.map(|s| s.pod_ip).unwrap_or_default();
    assert!(b_ip.starts_with(k2.cidr.cidr.trim_end_matches("0/24")), "{b_ip} not in {}", k2.cidr.cidr);
    // Each kubelet touches only its own containers.
    assert!(node_containers(&k1.node, true).iter().all(|n| n.contains(&k1.node)));
    assert_eq!(node_containers(&k2.node, true).len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_mount_secrets_and_config_maps_as_files_and_env() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("vol", &[]).await;
    let c = &cluster.client;
    c.create(Secret {
        metadata: Some(ObjectMeta { name: "creds".into(), namespace: "default".into(), ..Default::default() }),
        data: [("user".to_string(), b"admin".to_vec())].into(),
        ..Default::default()
    })
    .await
    .expect("create secret");
    let cm = c
        .create(ConfigMap {
            metadata: Some(ObjectMeta { name: "settings".into(), namespace: "default".into(), ..Default::default() }),
            data: [("mode".to_string(), "fast".to_string()), ("level".to_string(), "3".to_string())].into(),
            ..Default::default()
        })
        .await
        .expect("create configmap");
    let mut app = sh("app", "exec sleep 3600");
    app.volume_mounts = vec![
        VolumeMount { name: "creds".into(), mount_path: "/etc/creds".into(), ..Default::default() },
        VolumeMount { name: "settings".into(), mount_path: "/etc/settings".into(), ..Default::default() },
    ];
    app.env = vec![
        EnvVar {
            name: "USER_NAME".into(),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector { name: "creds".into(), key: "user".into(), optional: None }),
                ..Default::default()
            }),
            ..Default::default()
        },
        EnvVar {
            name: "MODE".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector { name: "settings".into(), key: "mode".into(), optional: None }),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    app.env_from = vec![EnvFromSource {
        prefix: "CFG_".into(),
        config_map_ref: Some(ConfigMapEnvSource { name: "settings".into(), optional: None }),
        secret_ref: None,
    }];
    let mut p = pod("vols", &k.node, vec![app]);
    p.spec.as_mut().unwrap().volumes = vec![
        Volume {
            name: "creds".into(),
            secret: Some(SecretVolumeSource { secret_name: "creds".into(), ..Default::default() }),
            ..Default::default()
        },
        Volume {
            name: "settings".into(),
            config_map: Some(ConfigMapVolumeSource { name: "settings".into(), ..Default::default() }),
            ..Default::default()
        },
    ];
    c.create(p).await.expect("create pod");
    wait_pod(c, &k, "vols", "Running", LIMIT, |p| phase(p) == "Running").await;

    assert_eq!(docker_exec(&k.node, "vols", "app", &["cat", "/etc/creds/user"]), (0, "admin".into()));
    assert_eq!(docker_exec(&k.node, "vols", "app", &["cat", "/etc/settings/mode"]), (0, "fast".into()));
    let (_, env) = docker_exec(&k.node, "vols", "app", &["env"]);
    for want in ["USER_NAME=admin", "MODE=fast", "CFG_level=3", "CFG_mode=fast"] {
        assert!(env.lines().any(|l| l == want), "{want} missing from the environment:\n{env}");
    }
    // Secret volumes are read-only inside the container.
    let (code, _) = docker_exec(&k.node, "vols", "app", &["sh", "-c", "echo x > /etc/creds/user"]);
    assert_ne!(code, 0, "the secret volume is writable");

    // A changed configMap reaches the mounted file.
    let mut next = cm.clone();
    next.data.insert("mode".into(), "slow".into());
    c.update(next).await.expect("update configmap");
    wait_for(LIMIT, "the changed configMap in the pod", || async {
        let (code, out) = docker_exec(&k.node, "vols", "app", &["cat", "/etc/settings/mode"]);
        (code == 0 && out == "slow").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn should_give_the_downward_api_and_a_missing_secret_reason() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("down", &[]).await;
    let field = |name: &str, path: &str| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut app = sh("app", "exec sleep 3600");
    app.working_dir = "/tmp".into();
    app.env = vec![
        field("POD_NAME", "metadata.name"),
        field("POD_NAMESPACE", "metadata.namespace"),
        field("POD_IP", "status.podIP"),
        field("NODE_NAME", "spec.nodeName"),
        EnvVar { name: "GREETING".into(), value: "hello $(POD_NAME)".into(), ..Default::default() },
    ];
    cluster.client.create(pod("downward", &k.node, vec![app])).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "downward", "Running", LIMIT, |p| phase(p) == "Running").await;
    let ip = p.status.map(|s| s.pod_ip).unwrap_or_default();
    let (_, env) = docker_exec(&k.node, "downward", "app", &["env"]);
    let node_env = format!("NODE_NAME={}", k.node);
    let ip_env = format!("POD_IP={ip}");
    for want in ["POD_NAME=downward", "POD_NAMESPACE=default", ip_env.as_str(), node_env.as_str(), "GREETING=hello downward"] {
        assert!(env.lines().any(|l| l == want), "{want} missing from the environment:\n{env}");
    }
    assert_eq!(docker_exec(&k.node, "downward", "app", &["pwd"]), (0, "/tmp\n".into()));

    // A secret that does not exist: the container waits with a reason that says so.
    let mut needs = sh("app", "exec sleep 3600");
    needs.env = vec![EnvVar {
        name: "TOKEN".into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector { name: "nope".into(), key: "t".into(), optional: None }),
            ..Default::default()
        }),
        ..Default::default()
    }];
    cluster.client.create(pod("needs-secret", &k.node, vec![needs])).await.expect("create pod");
    let p = wait_pod(&cluster.client, &k, "needs-secret", "CreateContainerConfigError", LIMIT, |p| {
        waiting_reason(p, "app") == "CreateContainerConfigError"
    })
    .await;
    let msg = container_status(&p, "app").and_then(|c| c.state.clone()).and_then(|s| s.waiting).map(|w| w.message).unwrap_or_default();
    assert!(msg.contains("nope"), "{msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_apply_the_security_context_and_resource_limits() {
    let cluster = Cluster::start().await;
    let k = cluster.kubelet("sec", &[]).await;
    let mut nobody = sh("nobody", "exec sleep 3600");
    nobody.security_context = Some(SecurityContext { run_as_user: Some(65534), ..Default::default() });
    nobody.resources = Some(ResourceRequirements {
        limits: [("cpu".to_string(), "250m".to_string()), ("memory".to_string(), "64Mi".to_string())].into(),
        requests: [("cpu".to_string(), "100m".to_string())].into(),
    });
    let mut bare = sh("bare", "exec sleep 3600");
    bare.security_context =
        Some(SecurityContext { capabilities: Some(Capabilities { add: vec![], drop: vec!["ALL".into()] }), ..Default::default() });
    // (privileged: the development machines' engine cannot start privileged
    // containers at all, so capabilities stand in for it here.)
    let mut admin = sh("admin", "exec sleep 3600");
    admin.security_context =
        Some(SecurityContext { capabilities: Some(Capabilities { add: vec!["NET_ADMIN".into()], drop: vec![] }), ..Default::default() });
    cluster.client.create(pod("secure", &k.node, vec![nobody, bare, admin])).await.expect("create pod");
    wait_pod(&cluster.client, &k, "secure", "Running", LIMIT, |p| phase(p) == "Running" && condition(p, "Ready")).await;

    assert_eq!(docker_exec(&k.node, "secure", "nobody", &["id", "-u"]), (0, "65534\n".into()));
    let cap_eff = |c: &str| {
        let (_, status) = docker_exec(&k.node, "secure", c, &["cat", "/proc/1/status"]);
        let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:")).map(str::trim).unwrap_or("").to_string();
        u64::from_str_radix(&hex, 16).unwrap_or_else(|_| panic!("no CapEff in {status}"))
    };
    assert_eq!(cap_eff("bare"), 0, "capabilities were not dropped");
    const CAP_NET_ADMIN: u64 = 1 << 12;
    assert_eq!(cap_eff("admin") & CAP_NET_ADMIN, CAP_NET_ADMIN, "NET_ADMIN was not added");
    assert_eq!(cap_eff("nobody") & CAP_NET_ADMIN, 0);
    // The limits are the engine's: quota from the CPU limit, shares from the request.
    let names = node_containers(&k.node, false);
    let name = names.iter().find(|n| n.contains("_secure_nobody_")).expect("container");
    let out = std::process::Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}} {{.HostConfig.CpuShares}} {{.HostConfig.Memory}}",
            name,
        ])
        .output()
        .expect("docker inspect");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("25000 100000 102 {}", 64 << 20));
}
