//! Each security promise of the apiserver, checked with authentication ON
//! by a test that tries to break it: no credentials, a wrong token, a user
//! bound in one namespace reading another, a kubelet reaching past its node,
//! a pod refused by PodSecurity, a hidden kind, the audit log, Secrets at
//! rest and ServiceAccount tokens.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::api::AccessReviewRequest;
use berth_api::pb::core::*;
use berth_api::pb::rbac::{RoleBinding, RoleRef, Subject};
use berth_apiserver::Config;
use berth_client::{Client, ClientConfig, ListParams};
use futures::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::Code;

const TOKENS: &str = "admin-token,admin,1,\"system:masters\"\nalice-token,alice,2,\"dev\"\nn1-token,system:node:n1,3,\"system:nodes\"\nn2-token,system:node:n2,4,\"system:nodes\"\n";

/// An apiserver with authentication on (static tokens), stopped on drop.
struct Server {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    async fn start(f: impl FnOnce(&mut Config, &Path)) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        std::fs::write(dir.join("tokens.csv"), TOKENS).expect("token file");
        Self::start_in(tmp, dir, f).await
    }

    async fn start_in(tmp: tempfile::TempDir, dir: PathBuf, f: impl FnOnce(&mut Config, &Path)) -> Server {
        let mut config = Config { data_dir: dir.join("data"), token_auth_file: Some(dir.join("tokens.csv")), ..Default::default() };
        f(&mut config, &dir);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(berth_apiserver::run(config, listener, async move {
            let _ = rx.await;
        }));
        let s = Server { addr, stop: Some(tx), task: Some(task), dir, _tmp: Some(tmp) };
        s.admin().await;
        s
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client with this token (None: no credentials), connected at once.
    async fn client(&self, token: Option<&str>) -> Client {
        let mut config = ClientConfig::new(self.url());
        config.token = token.map(str::to_string);
        for _ in 0..100 {
            if let Ok(c) = Client::connect(&config).await {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("apiserver did not come up at {}", self.addr);
    }

    async fn admin(&self) -> Client {
        for _ in 0..100 {
            let c = self.client(Some("admin-token")).await;
            if c.list::<Namespace>("", &ListParams::default()).await.is_ok() {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("admin cannot list namespaces");
    }

    async fn stop(mut self) -> (tempfile::TempDir, PathBuf) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("server ran");
        }
        (self._tmp.take().expect("temp dir"), self.dir.clone())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn meta(ns: &str, name: &str) -> Option<ObjectMeta> {
    Some(ObjectMeta { name: name.into(), namespace: ns.into(), ..Default::default() })
}

fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    let mut ns = Namespace { metadata: meta("", name), ..Default::default() };
    ns.metadata_mut().labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ns
}

fn pod(ns: &str, name: &str) -> Pod {
    Pod {
        metadata: meta(ns, name),
        spec: Some(PodSpec {
            containers: vec![Container { name: "app".into(), image: "busybox:1".into(), ..Default::default() }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn secret(ns: &str, name: &str, value: &str) -> Secret {
    Secret { metadata: meta(ns, name), data: [("password".to_string(), value.as_bytes().to_vec())].into(), ..Default::default() }
}

fn bind_role(ns: &str, name: &str, cluster_role: &str, subject_kind: &str, subject: &str) -> RoleBinding {
    RoleBinding {
        metadata: meta(ns, name),
        subjects: vec![Subject {
            kind: subject_kind.into(),
            api_group: if subject_kind == "ServiceAccount" { String::new() } else { "rbac.authorization.k8s.io".into() },
            name: subject.into(),
            namespace: String::new(),
        }],
        role_ref: Some(RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "ClusterRole".into(), name: cluster_role.into() }),
        ..Default::default()
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, berth_client::Error>) -> Code {
    r.expect_err("the request must be refused").code()
}

async fn http_get(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_requests_without_credentials_or_with_a_wrong_token() {
    let s = Server::start(|_, _| {}).await;
    let nobody = s.client(None).await;
    assert_eq!(code(nobody.list::<Pod>("default", &ListParams::default()).await), Code::Unauthenticated);
    let wrong = s.client(Some("not-a-token")).await;
    assert_eq!(code(wrong.list::<Pod>("default", &ListParams::default()).await), Code::Unauthenticated);
    assert_eq!(code(wrong.create(pod("default", "sneaky")).await), Code::Unauthenticated);
    let admin = s.admin().await;
    assert!(admin.get::<Pod>("default", "sneaky").await.expect_err("nothing was written").is_not_found());
    // Health answers anyone; metrics need a user allowed to read them.
    assert!(http_get(s.addr, "/readyz", None).await.starts_with("HTTP/1.1 200"));
    assert!(http_get(s.addr, "/metrics", None).await.starts_with("HTTP/1.1 401"));
    assert!(http_get(s.addr, "/metrics", Some("alice-token")).await.starts_with("HTTP/1.1 403"));
    let metrics = http_get(s.addr, "/metrics", Some("admin-token")).await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(metrics.contains("berth_apiserver_authentication_failures_total"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_a_user_bound_in_one_namespace_out_of_another() {
    let s = Server::start(|_, _| {}).await;
    let admin = s.admin().await;
    admin.create(namespace("a", &[])).await.expect("ns a");
    admin.create(namespace("b", &[])).await.expect("ns b");
    admin.create(secret("b", "db", "pw")).await.expect("secret in b");
    admin.create(bind_role("a", "alice-edit", "edit", "User", "alice")).await.expect("binding");
    let alice = s.client(Some("alice-token")).await;
    alice.create(pod("a", "web")).await.expect("alice may create pods in a");
    alice.list::<Pod>("a", &ListParams::default()).await.expect("alice may list pods in a");
    let err = alice.list::<Pod>("b", &ListParams::default()).await.expect_err("not in b");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.to_string().contains("User \"alice\" cannot list resource \"pods\""), "{err}");
    assert!(err.to_string().contains("\"b\""), "{err}");
    assert_eq!(code(alice.get::<Secret>("b", "db").await), Code::PermissionDenied);
    assert_eq!(
        code(alice.list::<Pod>("", &ListParams::default()).await),
        Code::PermissionDenied,
        "all namespaces need a cluster-wide grant"
    );
    assert_eq!(code(alice.create(pod("b", "web")).await), Code::PermissionDenied);
    assert!(admin.get::<Pod>("b", "web").await.expect_err("nothing written in b").is_not_found());
    // A group binding works the same way; RBAC objects are not alice's to change.
    assert_eq!(code(alice.create(bind_role("a", "alice-admin", "cluster-admin", "User", "alice")).await), Code::PermissionDenied);
    // roleRef cannot change.
    let mut b: RoleBinding = admin.get("a", "alice-edit").await.expect("binding");
    b.role_ref = Some(RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "ClusterRole".into(), name: "admin".into() });
    let err = admin.update(b).await.expect_err("roleRef is immutable");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.to_string().contains("roleRef"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_let_anonymous_requests_in_only_when_allowed_and_only_with_what_rbac_grants() {
    let s = Server::start(|c, _| c.anonymous_auth = true).await;
    let admin = s.admin().await;
    admin.create(namespace("public", &[])).await.expect("ns");
    let anon = s.client(None).await;
    assert_eq!(code(anon.list::<Pod>("public", &ListParams::default()).await), Code::PermissionDenied);
    admin.create(bind_role("public", "anon-view", "view", "User", "system:anonymous")).await.expect("binding");
    anon.list::<Pod>("public", &ListParams::default()).await.expect("anonymous may view public");
    assert_eq!(code(anon.create(pod("public", "x")).await), Code::PermissionDenied);
    assert_eq!(code(anon.list::<Pod>("default", &ListParams::default()).await), Code::PermissionDenied);
    // A wrong token is still refused, not treated as anonymous.
    let wrong = s.client(Some("nope")).await;
    assert_eq!(code(wrong.list::<Pod>("public", &ListParams::default()).await), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_a_kubelet_to_its_own_node_pods_and_secrets() {
    let s = Server::start(|_, _| {}).await;
    let admin = s.admin().await;
    let n1 = s.client(Some("n1-token")).await;
    let mut node = Node { metadata: meta("", "n1"), ..Default::default() };
    node = n1.create(node).await.expect("a kubelet registers its own node");
    n1.update_status(node.clone()).await.expect("and writes its status");
    let other = Node { metadata: meta("", "n2"), ..Default::default() };
    assert_eq!(code(n1.create(other.clone()).await), Code::PermissionDenied);
    admin.create(other).await.expect("admin creates n2");
    let n2: Node = admin.get("", "n2").await.expect("n2");
    assert_eq!(code(n1.update_status(n2.clone()).await), Code::PermissionDenied);
    assert_eq!(code(n1.delete::<Node>("", "n2", &Default::default()).await), Code::PermissionDenied);

    for (name, node_name, secret_name) in [("p1", "n1", "s1"), ("p2", "n2", "s2")] {
        admin.create(secret("default", secret_name, "pw")).await.expect("secret");
        let mut p = pod("default", name);
        let spec = p.spec.as_mut().expect("spec");
        spec.volumes.push(Volume {
            name: "creds".into(),
            secret: Some(SecretVolumeSource { secret_name: secret_name.into(), ..Default::default() }),
            ..Default::default()
        });
        admin.create(p).await.expect("pod");
        admin.bind("default", name, node_name).await.expect("bind");
    }
    admin.create(secret("default", "unused", "pw")).await.expect("secret");
    n1.get::<Secret>("default", "s1").await.expect("the secret of a pod on n1");
    let err = n1.get::<Secret>("default", "s2").await.expect_err("the secret of a pod on n2");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.to_string().contains("runs no pod"), "{err}");
    assert_eq!(code(n1.get::<Secret>("default", "unused").await), Code::PermissionDenied);
    assert_eq!(code(n1.list::<Secret>("default", &ListParams::default()).await), Code::PermissionDenied);
    n1.list::<Pod>("", &ListParams::default()).await.expect("kubelets watch pods");
    let p1: Pod = n1.get("default", "p1").await.expect("p1");
    n1.update_status(p1).await.expect("status of its own pod");
    let p2: Pod = n1.get("default", "p2").await.expect("p2 is readable");
    assert_eq!(code(n1.update_status(p2).await), Code::PermissionDenied);
    assert_eq!(code(n1.delete::<Pod>("default", "p2", &Default::default()).await), Code::PermissionDenied);
    assert_eq!(code(n1.create(pod("default", "mirror")).await), Code::PermissionDenied);
    let lease = |name: &str| Lease { metadata: meta("kube-node-lease", name), ..Default::default() };
    n1.create(lease("n1")).await.expect("its own lease");
    assert_eq!(code(n1.create(lease("n2")).await), Code::PermissionDenied);
    assert!(admin.get::<Lease>("kube-node-lease", "n2").await.expect_err("not written").is_not_found());
}

#[tokio::test(flavor = "multi_thread")]
async fn should_answer_can_i_and_refuse_exec_without_pods_exec() {
    let s = Server::start(|_, _| {}).await;
    let admin = s.admin().await;
    admin.create(namespace("a", &[])).await.expect("ns");
    admin.create(bind_role("a", "alice-view", "view", "User", "alice")).await.expect("binding");
    let alice = s.client(Some("alice-token")).await;
    let ask = |verb: &str, resource: &str, ns: &str| AccessReviewRequest {
        verb: verb.into(),
        resource: resource.into(),
        namespace: ns.into(),
        ..Default::default()
    };
    assert!(alice.access_review(ask("list", "pods", "a")).await.expect("review").allowed);
    assert!(!alice.access_review(ask("list", "pods", "b")).await.expect("review").allowed);
    assert!(!alice.access_review(ask("create", "pods/exec", "a")).await.expect("review").allowed, "view does not exec");
    assert!(!alice.access_review(ask("get", "secrets", "a")).await.expect("review").allowed, "view does not read secrets");
    // Another user's answer needs the right to review others.
    let mut as_bob = ask("list", "pods", "a");
    as_bob.user = "alice".into();
    assert_eq!(code(alice.access_review(as_bob.clone()).await), Code::PermissionDenied);
    assert!(admin.access_review(as_bob).await.expect("admin may ask for alice").allowed);
    admin.create(bind_role("a", "alice-edit", "edit", "User", "alice")).await.expect("edit");
    assert!(alice.access_review(ask("create", "pods/exec", "a")).await.expect("review").allowed, "edit may exec");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_pods_beyond_the_namespace_security_level_and_write_nothing() {
    let s = Server::start(|_, _| {}).await;
    let admin = s.admin().await;
    admin.create(namespace("base", &[("pod-security.berth.io/enforce", "baseline")])).await.expect("ns");
    admin.create(namespace("strict", &[("pod-security.berth.io/enforce", "restricted")])).await.expect("ns");
    let mut p = pod("base", "root");
    p.spec.as_mut().expect("spec").containers[0].security_context = Some(SecurityContext { privileged: Some(true), ..Default::default() });
    let err = admin.create(p).await.expect_err("privileged pod in a baseline namespace");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.to_string().contains("PodSecurity") && err.to_string().contains("privileged"), "{err}");
    assert!(admin.get::<Pod>("base", "root").await.expect_err("nothing written").is_not_found());
    let mut h = pod("base", "hostnet");
    h.spec.as_mut().expect("spec").host_network = Some(true);
    assert_eq!(code(admin.create(h).await), Code::PermissionDenied);
    admin.create(pod("base", "plain")).await.expect("a plain pod meets baseline");
    let err = admin.create(pod("strict", "plain")).await.expect_err("restricted needs runAsNonRoot");
    assert!(err.to_string().contains("runAsNonRoot"), "{err}");
    admin.create(pod("default", "anything")).await.expect("an unlabelled namespace is privileged");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_hide_disabled_kinds_entirely() {
    let s = Server::start(|c, _| c.disabled_kinds = vec!["Event".into()]).await;
    let admin = s.admin().await;
    let err = admin.list::<Event>("default", &ListParams::default()).await.expect_err("events are not served");
    assert!(err.is_not_found(), "{err}");
    let ev = Event {
        metadata: meta("default", "e"),
        involved_object: Some(ObjectReference { kind: "Pod".into(), name: "p".into(), namespace: "default".into(), ..Default::default() }),
        ..Default::default()
    };
    assert!(admin.create(ev).await.expect_err("nor created").is_not_found());
    let kinds: Vec<String> = admin.discovery().await.expect("discovery").resources.into_iter().map(|r| r.kind).collect();
    assert!(!kinds.contains(&"Event".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"Pod".to_string()) && kinds.contains(&"ClusterRole".to_string()), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_audit_every_request_without_secret_data() {
    let s = Server::start(|c, dir| {
        c.audit = Some(berth_apiserver::audit::AuditConfig { path: dir.join("audit/audit.log"), max_size_bytes: 1 << 20, max_backups: 2 })
    })
    .await;
    let admin = s.admin().await;
    admin.create(secret("default", "db", "correct-horse-battery")).await.expect("secret");
    let alice = s.client(Some("alice-token")).await;
    let _ = alice.get::<Secret>("default", "db").await;
    let log = std::fs::read_to_string(s.dir.join("audit/audit.log")).expect("audit log");
    assert!(!log.contains("correct-horse-battery") && !log.contains("Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5"), "secret data in the audit log");
    let lines: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let create = lines.iter().find(|l| l["verb"] == "create" && l["kind"] == "Secret").expect("the create is audited");
    assert_eq!(create["user"], "admin");
    assert_eq!(create["namespace"], "default");
    assert_eq!(create["name"], "db");
    assert_eq!(create["code"], 200);
    assert_eq!(create["level"], "Request");
    assert_eq!(create["requestObject"]["metadata"]["name"], "db", "the Request level carries the object sent: {create}");
    assert_eq!(create["sourceIP"], "127.0.0.1");
    assert!(create["groups"].as_array().is_some_and(|g| g.iter().any(|g| g == "system:masters")));
    let denied = lines.iter().find(|l| l["verb"] == "get" && l["user"] == "alice").expect("the refused read is audited");
    assert_eq!(denied["code"], 403);
    assert_eq!(denied["level"], "Metadata");
}

/// Whether any file under `dir` contains `needle`.
fn found_in_files(dir: &Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() { found_in_files(&p, needle) } else { std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn should_keep_secret_values_out_of_the_store_files_and_rotate_keys() {
    use base64::Engine as _;
    let key = |n: u8| base64::engine::general_purpose::STANDARD.encode([n; 32]);
    let s = Server::start(|c, dir| {
        std::fs::write(dir.join("keys"), format!("k1:{}\n", key(1))).expect("keys");
        c.encryption_key_file = Some(dir.join("keys"));
    })
    .await;
    let admin = s.admin().await;
    let value = "zebra-quantum-marmalade";
    admin.create(secret("default", "vault", value)).await.expect("secret");
    // List and watch answer with stored bytes (berth_api::wire): a Secret's
    // must be opened first, both for the initial events and for live ones.
    let (items, list_rv) = admin.list::<Secret>("default", &ListParams::default()).await.expect("list secrets");
    let listed = items.iter().find(|s| s.metadata.as_ref().is_some_and(|m| m.name == "vault")).expect("listed");
    assert_eq!(listed.data.get("password").map(Vec::as_slice), Some(value.as_bytes()));
    let mut from_start = admin.watch::<Secret>("default", &ListParams::default(), 0).await.expect("watch from 0");
    let mut live = admin.watch::<Secret>("default", &ListParams::default(), list_rv).await.expect("watch from list");
    admin.create(secret("default", "vault-2", value)).await.expect("second secret");
    for (stream, name) in [(&mut from_start, "vault"), (&mut live, "vault-2")] {
        // The namespace's service-account token Secret comes too.
        let got = loop {
            let ev = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("event in time").expect("open").expect("ok");
            let berth_client::WatchEvent::Added(got) = ev else { panic!("expected ADDED events, got {ev:?}") };
            if got.metadata.as_ref().is_some_and(|m| m.name == name) {
                break got;
            }
        };
        assert_eq!(got.data.get("password").map(Vec::as_slice), Some(value.as_bytes()), "{name} watched in the clear");
    }
    drop((from_start, live));
    let marker = "plain-configmap-marker";
    let cm = ConfigMap { metadata: meta("default", "c"), data: [("k".to_string(), marker.to_string())].into(), ..Default::default() };
    admin.create(cm).await.expect("configmap");
    let (tmp, dir) = s.stop().await;
    assert!(found_in_files(&dir.join("data"), marker.as_bytes()), "the search does find what is stored in the clear");
    assert!(!found_in_files(&dir.join("data"), value.as_bytes()), "the secret value is in the store's files");
    // Rotate: the new key first, the old one still listed; everything is rewritten with k2.
    std::fs::write(dir.join("keys"), format!("k2:{}\nk1:{}\n", key(2), key(1))).expect("keys");
    let s = Server::start_in(tmp, dir.clone(), |c, dir| c.encryption_key_file = Some(dir.join("keys"))).await;
    let got: Secret = s.admin().await.get("default", "vault").await.expect("readable after rotation");
    assert_eq!(got.data.get("password").map(Vec::as_slice), Some(value.as_bytes()));
    let (tmp, dir) = s.stop().await;
    // Old key gone: still readable, so the rewrite happened.
    std::fs::write(dir.join("keys"), format!("k2:{}\n", key(2))).expect("keys");
    let s = Server::start_in(tmp, dir.clone(), |c, dir| c.encryption_key_file = Some(dir.join("keys"))).await;
    let got: Secret = s.admin().await.get("default", "vault").await.expect("readable with only the new key");
    assert_eq!(got.data.get("password").map(Vec::as_slice), Some(value.as_bytes()));
    let (_tmp, dir) = s.stop().await;
    assert!(!found_in_files(&dir.join("data"), value.as_bytes()));
}

#[tokio::test(flavor = "multi_thread")]
async fn should_mount_service_account_tokens_that_die_with_their_account() {
    let s = Server::start(|_, _| {}).await;
    let admin = s.admin().await;
    admin.create(namespace("apps", &[])).await.expect("ns");
    admin.get::<ServiceAccount>("apps", "default").await.expect("every namespace gets a default account");
    let p = admin.create(pod("apps", "web")).await.expect("pod");
    let spec = p.spec.expect("spec");
    assert_eq!(spec.service_account_name, "default");
    let mount = spec.containers[0]
        .volume_mounts
        .iter()
        .find(|m| m.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount")
        .expect("token mounted");
    let volume = spec.volumes.iter().find(|v| v.name == mount.name).expect("token volume");
    assert_eq!(volume.secret.as_ref().map(|s| s.secret_name.as_str()), Some("default-token"));
    let sa = ServiceAccount { metadata: meta("apps", "robot"), ..Default::default() };
    admin.create(sa).await.expect("account");
    let mut token = None;
    for _ in 0..50 {
        if let Ok(s) = admin.get::<Secret>("apps", "robot-token").await {
            token = s.data.get("token").cloned();
            assert_eq!(s.data.get("namespace").map(Vec::as_slice), Some(&b"apps"[..]));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token = String::from_utf8(token.expect("token secret")).expect("utf-8 token");
    let robot = s.client(Some(&token)).await;
    let me = robot
        .access_review(AccessReviewRequest { verb: "list".into(), resource: "pods".into(), namespace: "apps".into(), ..Default::default() })
        .await
        .expect("authenticated");
    assert_eq!(me.user, "system:serviceaccount:apps:robot");
    assert!(!me.allowed);
    admin.create(bind_role("apps", "robot-view", "view", "ServiceAccount", "robot")).await.expect("binding");
    robot.list::<Pod>("apps", &ListParams::default()).await.expect("the account's token works");
    admin.delete::<ServiceAccount>("apps", "robot", &Default::default()).await.expect("delete account");
    assert_eq!(code(robot.list::<Pod>("apps", &ListParams::default()).await), Code::Unauthenticated, "the token dies with its account");
    admin.create(ServiceAccount { metadata: meta("apps", "robot"), ..Default::default() }).await.expect("recreate");
    assert_eq!(
        code(robot.list::<Pod>("apps", &ListParams::default()).await),
        Code::Unauthenticated,
        "a recreated account does not revive old tokens"
    );
    let err = admin
        .create({
            let mut p = pod("apps", "ghost");
            p.spec.as_mut().expect("spec").service_account_name = "nobody".into();
            p
        })
        .await
        .expect_err("a missing account");
    assert!(err.to_string().contains("ServiceAccount"), "{err}");
}
