//! The API's semantics (DESIGN.md §3), checked against a real apiserver on a
//! temporary sled directory through the real gRPC client.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::*;
use berth_apiserver::Config;
use berth_client::{Client, ClientConfig, DeleteParams, ListParams, WatchEvent};
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;

/// A running apiserver; stopped when dropped or through `stop`.
struct Server {
    client: Client,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    dir: std::path::PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    async fn start() -> Server {
        Self::start_with(|_| {}).await
    }

    async fn start_with(f: impl FnOnce(&mut Config)) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Self::start_in(dir, None, f).await;
        s._tmp = Some(tmp);
        s
    }

    async fn start_in(dir: std::path::PathBuf, port: Option<u16>, f: impl FnOnce(&mut Config)) -> Server {
        let mut config = Config { data_dir: dir.clone(), ..Default::default() };
        f(&mut config);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(0))).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(berth_apiserver::run(config, listener, async move {
            let _ = rx.await;
        }));
        let client = connect(addr).await;
        Server { client, addr, stop: Some(tx), task: Some(task), dir, _tmp: None }
    }

    /// Stops the server cleanly and gives back its data directory.
    async fn stop(mut self) -> (std::path::PathBuf, Option<tempfile::TempDir>, u16) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("server ran");
        }
        (self.dir.clone(), self._tmp.take(), self.addr.port())
    }
}

async fn connect(addr: std::net::SocketAddr) -> Client {
    let config = ClientConfig::new(format!("http://{addr}"));
    for _ in 0..100 {
        if let Ok(c) = Client::connect(&config).await
            && c.list::<Namespace>("", &ListParams::default()).await.is_ok()
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("apiserver did not come up at {addr}");
}

fn meta(name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), ..Default::default() })
}

fn pod(name: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            containers: vec![Container { name: "app".into(), image: "busybox:1".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn labelled(mut p: Pod, k: &str, v: &str) -> Pod {
    p.metadata_mut().labels.insert(k.into(), v.into());
    p
}

fn config_map(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: meta(name),
        data: data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        ..Default::default()
    }
}

fn rv<R: Resource>(r: &R) -> u64 {
    r.meta().resource_version.parse().expect("numeric resourceVersion")
}

#[tokio::test(flavor = "multi_thread")]
async fn should_set_server_fields_and_increase_revisions_across_kinds() {
    let s = Server::start().await;
    let p = s.client.create(pod("web")).await.expect("create pod");
    assert!(!p.meta().uid.is_empty());
    assert!(!p.meta().creation_timestamp.is_empty());
    assert_eq!(p.meta().generation, 1);
    assert_eq!(p.namespace(), "default");
    assert_eq!(p.status.as_ref().map(|s| s.phase.as_str()), Some("Pending"));
    let c = s.client.create(config_map("cfg", &[("a", "1")])).await.expect("create cm");
    assert!(rv(&c) > rv(&p));
    let got: Pod = s.client.get("default", "web").await.expect("get");
    assert_eq!(got.meta().uid, p.meta().uid);
    assert_eq!(rv(&got), rv(&p));
    let err = s.client.create(pod("web")).await.expect_err("duplicate");
    assert_eq!(err.code(), Code::AlreadyExists, "{err}");
    assert!(err.to_string().contains("\"web\" already exists"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_a_stale_resource_version_and_change_nothing() {
    let s = Server::start().await;
    let c = s.client.create(config_map("cfg", &[("a", "1")])).await.expect("create");
    let mut fresh = c.clone();
    fresh.data.insert("a".into(), "2".into());
    let updated = s.client.update(fresh).await.expect("update");
    assert!(rv(&updated) > rv(&c));
    let mut stale = c.clone();
    stale.data.insert("a".into(), "3".into());
    let err = s.client.update(stale).await.expect_err("stale update");
    assert_eq!(err.code(), Code::Aborted, "{err}");
    let now: ConfigMap = s.client.get("default", "cfg").await.expect("get");
    assert_eq!(now.data.get("a").map(String::as_str), Some("2"));
    let err = s
        .client
        .delete::<ConfigMap>("default", "cfg", &DeleteParams { resource_version: c.meta().resource_version.clone(), ..Default::default() })
        .await
        .expect_err("stale delete");
    assert_eq!(err.code(), Code::Aborted, "{err}");
    assert!(s.client.get::<ConfigMap>("default", "cfg").await.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_spec_and_status_writers_apart_and_bump_generation_on_spec_only() {
    let s = Server::start().await;
    let rc = ReplicationController {
        metadata: meta("rc"),
        spec: Some(ReplicationControllerSpec {
            replicas: Some(1),
            selector: [("app".to_string(), "x".to_string())].into(),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: [("app".to_string(), "x".to_string())].into(), ..Default::default() }),
                spec: pod("t").spec,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let rc = s.client.create(rc).await.expect("create");
    assert_eq!(rc.meta().generation, 1);
    // A status write cannot change the spec.
    let mut st = rc.clone();
    st.spec.as_mut().expect("spec").replicas = Some(9);
    st.status = Some(ReplicationControllerStatus { replicas: 1, observed_generation: 1, ..Default::default() });
    let after_status = s.client.update_status(st).await.expect("status");
    assert_eq!(after_status.spec.as_ref().and_then(|s| s.replicas), Some(1));
    assert_eq!(after_status.status.as_ref().map(|s| s.replicas), Some(1));
    assert_eq!(after_status.meta().generation, 1);
    // A spec write cannot change the status, and bumps generation.
    let mut sp = after_status.clone();
    sp.spec.as_mut().expect("spec").replicas = Some(3);
    sp.status = None;
    let after_spec = s.client.update(sp).await.expect("spec");
    assert_eq!(after_spec.meta().generation, 2);
    assert_eq!(after_spec.status.as_ref().map(|s| s.replicas), Some(1));
    // A label change is not a spec change.
    let mut lbl = after_spec.clone();
    lbl.metadata_mut().labels.insert("team".into(), "a".into());
    let after_label = s.client.update(lbl).await.expect("labels");
    assert_eq!(after_label.meta().generation, 2);
    // An update that changes nothing writes nothing.
    let same = s.client.update(after_label.clone()).await.expect("no-op");
    assert_eq!(rv(&same), rv(&after_label));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_watch_every_change_after_a_list_exactly_once_in_order() {
    let s = Server::start().await;
    s.client.create(config_map("before", &[])).await.expect("create");
    let (items, list_rv) = s.client.list::<ConfigMap>("default", &ListParams::default()).await.expect("list");
    assert_eq!(items.len(), 1);
    let mut w = s.client.watch::<ConfigMap>("default", &ListParams::default(), list_rv).await.expect("watch");
    let a = s.client.create(config_map("a", &[])).await.expect("a");
    let mut a2 = a.clone();
    a2.data.insert("k".into(), "v".into());
    s.client.update(a2).await.expect("update a");
    s.client.delete::<ConfigMap>("default", "a", &DeleteParams::default()).await.expect("delete a");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let ev = tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("event in time").expect("open").expect("ok");
        match ev {
            WatchEvent::Added(c) => seen.push(("ADDED", c.name().to_string(), rv(&c))),
            WatchEvent::Modified(c) => seen.push(("MODIFIED", c.name().to_string(), rv(&c))),
            WatchEvent::Deleted(c) => seen.push(("DELETED", c.name().to_string(), rv(&c))),
            WatchEvent::Bookmark(_) => {}
        }
    }
    let kinds: Vec<&str> = seen.iter().map(|s| s.0).collect();
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED"]);
    assert!(seen.iter().all(|s| s.1 == "a"));
    assert!(seen[0].2 > list_rv && seen[0].2 < seen[1].2 && seen[1].2 < seen[2].2);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_turn_selector_transitions_into_added_and_deleted() {
    let s = Server::start().await;
    let mut w = s.client.watch::<Pod>("default", &ListParams::default().labels("tier=web"), 0).await.expect("watch");
    let p = s.client.create(pod("p")).await.expect("create");
    let p = s.client.update(labelled(p, "tier", "web")).await.expect("label on");
    let mut off = p.clone();
    off.metadata_mut().labels.insert("tier".into(), "db".into());
    s.client.update(off).await.expect("label off");
    let mut got = Vec::new();
    while got.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("in time").expect("open").expect("ok") {
            WatchEvent::Added(_) => got.push("ADDED"),
            WatchEvent::Modified(_) => got.push("MODIFIED"),
            WatchEvent::Deleted(_) => got.push("DELETED"),
            WatchEvent::Bookmark(_) => {}
        }
    }
    assert_eq!(got, ["ADDED", "DELETED"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_answer_too_old_for_a_compacted_revision() {
    let s = Server::start_with(|c| c.history = 5).await;
    let first = s.client.create(config_map("c0", &[])).await.expect("create");
    for i in 1..40 {
        s.client.create(config_map(&format!("c{i}"), &[])).await.expect("create");
    }
    let mut w = s.client.watch::<ConfigMap>("default", &ListParams::default(), rv(&first)).await;
    let err = match &mut w {
        Err(e) => e.code(),
        Ok(stream) => match stream.next().await {
            Some(Err(e)) => e.code(),
            other => panic!("expected too old, got {other:?}"),
        },
    };
    assert_eq!(err, Code::OutOfRange);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_send_bookmarks_with_progress() {
    let s = Server::start_with(|c| c.bookmark_interval = Duration::from_millis(200)).await;
    let c = s.client.create(config_map("c", &[])).await.expect("create");
    let mut w = s.client.watch::<Pod>("default", &ListParams::default(), rv(&c)).await.expect("watch");
    let ev = tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("in time").expect("open").expect("ok");
    match ev {
        WatchEvent::Bookmark(r) => assert!(r >= rv(&c)),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_filter_lists_by_labels_and_fields_in_the_server() {
    let s = Server::start().await;
    s.client.create(labelled(labelled(pod("a"), "app", "web"), "env", "prod")).await.expect("a");
    s.client.create(labelled(pod("b"), "app", "db")).await.expect("b");
    s.client.create(pod("c")).await.expect("c");
    s.client.bind("default", "a", "node-1").await.expect("bind");
    let names = |v: Vec<Pod>| {
        let mut n: Vec<String> = v.iter().map(|p| p.name().to_string()).collect();
        n.sort();
        n
    };
    let q = |sel: &str| ListParams::default().labels(sel);
    assert_eq!(names(s.client.list::<Pod>("default", &q("app=web")).await.expect("l").0), ["a"]);
    assert_eq!(names(s.client.list::<Pod>("default", &q("app!=web")).await.expect("l").0), ["b", "c"]);
    assert_eq!(names(s.client.list::<Pod>("default", &q("app in (web,db)")).await.expect("l").0), ["a", "b"]);
    assert_eq!(names(s.client.list::<Pod>("default", &q("app notin (web)")).await.expect("l").0), ["b", "c"]);
    assert_eq!(names(s.client.list::<Pod>("default", &q("env")).await.expect("l").0), ["a"]);
    assert_eq!(names(s.client.list::<Pod>("default", &q("!app")).await.expect("l").0), ["c"]);
    let f = |sel: &str| ListParams::default().fields(sel);
    assert_eq!(names(s.client.list::<Pod>("", &f("spec.nodeName=node-1")).await.expect("l").0), ["a"]);
    assert_eq!(names(s.client.list::<Pod>("", &f("spec.nodeName=")).await.expect("l").0), ["b", "c"]);
    assert_eq!(names(s.client.list::<Pod>("", &f("metadata.name=b,status.phase=Pending")).await.expect("l").0), ["b"]);
    let err = s.client.list::<Pod>("", &f("spec.image=x")).await.expect_err("unsupported field");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.to_string().contains("spec.image"), "{err}");
    let err = s.client.list::<Pod>("", &q("a in x")).await.expect_err("bad selector");
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_delete_pods_gracefully_once_they_are_on_a_node() {
    let s = Server::start().await;
    s.client.create(pod("unbound")).await.expect("create");
    s.client.delete::<Pod>("default", "unbound", &DeleteParams::default()).await.expect("delete");
    assert!(s.client.get::<Pod>("default", "unbound").await.expect_err("gone").is_not_found());

    s.client.create(pod("bound")).await.expect("create");
    s.client.bind("default", "bound", "n1").await.expect("bind");
    let marked = s.client.delete::<Pod>("default", "bound", &DeleteParams::default()).await.expect("delete");
    assert!(!marked.meta().deletion_timestamp.is_empty());
    assert_eq!(marked.meta().deletion_grace_period_seconds, Some(30));
    let still: Pod = s.client.get("default", "bound").await.expect("still there");
    assert!(!still.meta().deletion_timestamp.is_empty());
    // The kubelet confirms with a zero grace period.
    s.client
        .delete::<Pod>("default", "bound", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .expect("confirm");
    assert!(s.client.get::<Pod>("default", "bound").await.expect_err("gone").is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn should_hold_objects_with_finalizers_until_they_are_removed() {
    let s = Server::start().await;
    let mut c = config_map("held", &[]);
    c.metadata_mut().finalizers.push("example.com/hold".into());
    s.client.create(c).await.expect("create");
    let marked = s.client.delete::<ConfigMap>("default", "held", &DeleteParams::default()).await.expect("delete");
    assert!(!marked.meta().deletion_timestamp.is_empty());
    let mut release: ConfigMap = s.client.get("default", "held").await.expect("held");
    release.metadata_mut().finalizers.clear();
    s.client.update(release).await.expect("remove finalizer");
    assert!(s.client.get::<ConfigMap>("default", "held").await.expect_err("gone").is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn should_require_namespaces_and_protect_system_ones() {
    let s = Server::start().await;
    for ns in ["default", "kube-system"] {
        s.client.get::<Namespace>("", ns).await.expect("system namespace exists");
        let err = s.client.delete::<Namespace>("", ns, &DeleteParams::default()).await.expect_err("protected");
        assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    }
    let mut p = pod("p");
    p.metadata_mut().namespace = "nope".into();
    let err = s.client.create(p.clone()).await.expect_err("no namespace");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.to_string().contains("namespaces \"nope\" not found"), "{err}");

    s.client.create(Namespace { metadata: meta("nope"), ..Default::default() }).await.expect("create ns");
    s.client.create(p.clone()).await.expect("now it exists");
    let ns = s.client.delete::<Namespace>("", "nope", &DeleteParams::default()).await.expect("delete ns");
    assert_eq!(ns.status.as_ref().map(|s| s.phase.as_str()), Some("Terminating"));
    p.metadata_mut().name = "q".into();
    let err = s.client.create(p).await.expect_err("terminating");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.to_string().contains("being terminated"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_invalid_objects_naming_the_field_and_write_nothing() {
    let s = Server::start().await;
    let before = s.client.list::<Pod>("", &ListParams::default()).await.expect("list").1;
    let err = s.client.create(pod("Web_1")).await.expect_err("bad name");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.to_string().contains("metadata.name"), "{err}");
    let mut p = pod("ok");
    p.spec.as_mut().expect("spec").containers[0].image.clear();
    let err = s.client.create(p).await.expect_err("no image");
    assert!(err.to_string().contains("spec.containers[0].image"), "{err}");
    let mut p = pod("ok");
    p.spec.as_mut().expect("spec").restart_policy = "Sometimes".into();
    let err = s.client.create(p).await.expect_err("bad policy");
    assert!(err.to_string().contains("spec.restartPolicy"), "{err}");
    let mut p = pod("ok");
    let r = ResourceRequirements { limits: [("memory".to_string(), "12xyz".to_string())].into(), ..Default::default() };
    p.spec.as_mut().expect("spec").containers[0].resources = Some(r);
    let err = s.client.create(p).await.expect_err("bad quantity");
    assert!(err.to_string().contains("resources.limits"), "{err}");
    let (items, after) = s.client.list::<Pod>("", &ListParams::default()).await.expect("list");
    assert!(items.is_empty());
    assert_eq!(before, after, "a refused request must not write");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_bind_a_pod_once() {
    let s = Server::start().await;
    s.client.create(pod("p")).await.expect("create");
    let bound: Pod = s.client.bind("default", "p", "n1").await.expect("bind").into_resource().expect("pod");
    assert_eq!(bound.spec.as_ref().map(|s| s.node_name.as_str()), Some("n1"));
    let scheduled = bound.status.as_ref().expect("status").conditions.iter().any(|c| c.r#type == "PodScheduled" && c.status == "True");
    assert!(scheduled);
    let err = s.client.bind("default", "p", "n2").await.expect_err("second bind");
    assert_eq!(err.code(), Code::Aborted);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_generate_names_and_honour_dry_run() {
    let s = Server::start().await;
    let mut p = pod("");
    p.metadata_mut().generate_name = "web-".into();
    let created = s.client.create(p).await.expect("create");
    assert!(created.name().starts_with("web-") && created.name().len() == 9, "{}", created.name());
    let dry = s.client.create_object(pod("dry").into_object(), true).await.expect("dry run");
    assert_eq!(dry.name(), "dry");
    assert!(s.client.get::<Pod>("default", "dry").await.expect_err("not stored").is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_everything_across_a_restart_and_continue_revisions() {
    let s = Server::start().await;
    let a = s.client.create(config_map("a", &[("k", "v")])).await.expect("a");
    let b = s.client.create(pod("b")).await.expect("b");
    let (dir, tmp, port) = s.stop().await;
    let s2 = Server::start_in(dir, Some(port), |_| {}).await;
    let a2: ConfigMap = s2.client.get("default", "a").await.expect("a survives");
    assert_eq!(a2.data, a.data);
    assert_eq!(a2.meta().uid, a.meta().uid);
    let b2: Pod = s2.client.get("default", "b").await.expect("b survives");
    assert_eq!(rv(&b2), rv(&b));
    let c = s2.client.create(config_map("c", &[])).await.expect("c");
    assert!(rv(&c) > rv(&b), "revisions continue after a restart");
    // A watcher can resume from a revision before the restart.
    let mut w = s2.client.watch::<ConfigMap>("default", &ListParams::default(), rv(&a)).await.expect("resume");
    let ev = tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("in time").expect("open").expect("ok");
    assert!(matches!(ev, WatchEvent::Added(ref o) if o.name() == "c"), "{ev:?}");
    drop(tmp);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_serve_health_and_metrics_over_http() {
    let s = Server::start().await;
    s.client.create(pod("m")).await.expect("create");
    let body = http_get(s.addr, "/healthz").await;
    assert!(body.starts_with("HTTP/1.1 200") && body.ends_with("ok"), "{body}");
    let metrics = http_get(s.addr, "/metrics").await;
    assert!(metrics.contains("berth_apiserver_request_total{verb=\"create\",kind=\"Pod\",code=\"Ok\"} 1"), "{metrics}");
    assert!(metrics.contains("berth_apiserver_storage_objects"), "{metrics}");
    assert!(metrics.contains("berth_apiserver_build_info"), "{metrics}");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

fn service(name: &str, ty: &str, cluster_ip: &str, node_port: i32) -> Service {
    Service {
        metadata: meta(name),
        spec: Some(ServiceSpec {
            r#type: ty.into(),
            cluster_ip: cluster_ip.into(),
            selector: [("app".to_string(), name.to_string())].into(),
            ports: vec![ServicePort { name: "http".into(), port: 80, node_port, ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn cluster_ip(s: &Service) -> String {
    s.spec.as_ref().map(|s| s.cluster_ip.clone()).unwrap_or_default()
}

fn node_port(s: &Service) -> i32 {
    s.spec.as_ref().and_then(|s| s.ports.first()).map(|p| p.node_port).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn should_allocate_distinct_cluster_ips_and_node_ports_and_refuse_taken_ones() {
    let s = Server::start_with(|c| {
        c.service_cidr = "10.96.0.0/28".into();
        c.node_port_range = "30000-30003".into();
    })
    .await;
    let a = s.client.create(service("a", "ClusterIP", "", 0)).await.expect("a");
    let b = s.client.create(service("b", "NodePort", "", 0)).await.expect("b");
    assert!(cluster_ip(&a).starts_with("10.96.0.") && cluster_ip(&a) != cluster_ip(&b));
    assert_eq!(node_port(&a), 0);
    assert!((30000..=30003).contains(&node_port(&b)));
    assert_eq!(a.spec.as_ref().map(|s| s.cluster_ips.clone()), Some(vec![cluster_ip(&a)]));
    let err = s.client.create(service("c", "ClusterIP", &cluster_ip(&a), 0)).await.expect_err("taken ip");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.to_string().contains("spec.clusterIP") && err.to_string().contains("already allocated"), "{err}");
    let err = s.client.create(service("c", "ClusterIP", "10.97.0.1", 0)).await.expect_err("outside");
    assert!(err.to_string().contains("not in the valid range"), "{err}");
    let err = s.client.create(service("c", "NodePort", "", node_port(&b))).await.expect_err("taken port");
    assert!(err.to_string().contains("spec.ports[0].nodePort"), "{err}");
    // A refused create gives back what it took: the range still has room.
    let headless = s.client.create(service("h", "ClusterIP", "None", 0)).await.expect("headless");
    assert_eq!(cluster_ip(&headless), "None");
    // An update that leaves clusterIP and nodePort out keeps them.
    let mut again = service("b", "NodePort", "", 0);
    again.metadata_mut().labels.insert("x".into(), "y".into());
    let b2 = s.client.update(again).await.expect("re-apply");
    assert_eq!((cluster_ip(&b2), node_port(&b2)), (cluster_ip(&b), node_port(&b)));
    // Deleting releases: the same IP and port can be asked for again.
    s.client.delete::<Service>("default", "b", &DeleteParams::default()).await.expect("delete");
    let c = s.client.create(service("c", "NodePort", &cluster_ip(&b), node_port(&b))).await.expect("reuse");
    assert_eq!((cluster_ip(&c), node_port(&c)), (cluster_ip(&b), node_port(&b)));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_allocations_across_a_restart() {
    let s = Server::start_with(|c| c.service_cidr = "10.96.0.0/29".into()).await;
    let a = s.client.create(service("a", "NodePort", "", 0)).await.expect("a");
    let (dir, tmp, port) = s.stop().await;
    let s2 = Server::start_in(dir, Some(port), |c| c.service_cidr = "10.96.0.0/29".into()).await;
    let err = s2.client.create(service("b", "NodePort", &cluster_ip(&a), 0)).await.expect_err("still taken");
    assert!(err.to_string().contains("already allocated"), "{err}");
    let err = s2.client.create(service("b", "NodePort", "", node_port(&a))).await.expect_err("port still taken");
    assert!(err.to_string().contains("already allocated"), "{err}");
    drop(tmp);
}
