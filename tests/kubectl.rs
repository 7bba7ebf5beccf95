//! The real kubectl (v1.32, installed on the machine; these tests fail when
//! it is missing) against berth-apiserver's Kubernetes REST API, over HTTPS
//! with client certificates from `berthctl certs`, through the kubeconfig
//! berthctl writes: discovery, `get` of every kind in every output format,
//! apply/diff/label/annotate/patch/scale/delete, `get -w`, `explain`,
//! `auth can-i`, the errors kubectl prints for Kubernetes' failure reasons,
//! and logs and exec through a real kubelet on Docker.

mod kubelet_support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_client::{Client, ClientConfig, ListParams};
use berth_e2e::{bin, free_port};

/// Kills the child when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An apiserver with TLS and client certificates, and kubeconfigs for its identities.
struct TlsCluster {
    _server: Daemon,
    tmp: tempfile::TempDir,
    url: String,
    /// The admin's kubeconfig (system:masters).
    kubeconfig: PathBuf,
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn berthctl(args: &[&str]) -> Output {
    Command::new(bin("berthctl", "berthctl")).args(args).env_remove("BERTH_SERVER").stdin(Stdio::null()).output().expect("run berthctl")
}

impl TlsCluster {
    async fn start() -> TlsCluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = tmp.path().join("pki");
        let made = berthctl(&["certs", "--dir", pki.to_str().expect("utf-8")]);
        assert!(made.status.success(), "{}", text(&made));
        let p = |f: &str| pki.join(f).to_str().expect("utf-8").to_string();
        let port = free_port();
        let log = std::fs::File::create(tmp.path().join("apiserver.log")).expect("log");
        let server = Daemon(
            Command::new(bin("berth-apiserver", "berth-apiserver"))
                .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
                .arg(tmp.path().join("data"))
                .args([
                    "--tls-cert-file",
                    &p("apiserver.crt"),
                    "--tls-private-key-file",
                    &p("apiserver.key"),
                    "--client-ca-file",
                    &p("ca.crt"),
                ])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start berth-apiserver"),
        );
        let url = format!("https://127.0.0.1:{port}");
        let cluster = TlsCluster { _server: server, kubeconfig: tmp.path().join("admin.kubeconfig"), tmp, url };
        cluster.client("admin").await;
        cluster.write_kubeconfig("admin", &cluster.kubeconfig);
        cluster
    }

    fn pki(&self, file: &str) -> String {
        self.tmp.path().join("pki").join(file).to_str().expect("utf-8").to_string()
    }

    /// A gRPC client as the identity `who` (a file name of `berthctl certs`), waiting for the server.
    async fn client(&self, who: &str) -> Client {
        let config = ClientConfig::new(&self.url)
            .with_ca_file(self.pki("ca.crt"))
            .with_client_certificate(self.pki(&format!("{who}.crt")), self.pki(&format!("{who}.key")));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = Client::connect(&config).await
                && c.list::<berth_api::Namespace>("", &ListParams::default()).await.is_ok()
            {
                return c;
            }
            assert!(Instant::now() < deadline, "the TLS apiserver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a kubectl kubeconfig for the identity `who`, made by berthctl from a berthctl context.
    fn write_kubeconfig(&self, who: &str, path: &Path) {
        let berth_config = self.tmp.path().join(format!("{who}.berthconfig"));
        let ctl = |args: &[&str]| {
            let out = Command::new(bin("berthctl", "berthctl"))
                .args(args)
                .env("BERTHCONFIG", &berth_config)
                .env_remove("BERTH_SERVER")
                .stdin(Stdio::null())
                .output()
                .expect("run berthctl");
            assert!(out.status.success(), "berthctl {args:?}: {}", text(&out));
        };
        ctl(&["--server", &self.url, "config", "set-cluster", "test", "--certificate-authority", &self.pki("ca.crt")]);
        let (cert, key) = (self.pki(&format!("{who}.crt")), self.pki(&format!("{who}.key")));
        ctl(&["--client-certificate", &cert, "--client-key", &key, "config", "set-credentials", who]);
        ctl(&["config", "set-context", "test", "--cluster", "test", "--user", who]);
        ctl(&["config", "use-context", "test"]);
        ctl(&["config", "kubeconfig", "-o", path.to_str().expect("utf-8")]);
    }

    /// Runs kubectl as the admin.
    fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_as(&self.kubeconfig, args, None)
    }

    fn kubectl_as(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write as _;
        let mut child = kubectl_command(kubeconfig, &self.tmp.path().join("cache"))
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl is installed (these tests need the real kubectl v1.32)");
        if let (Some(s), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(s.as_bytes()).expect("kubectl stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// kubectl that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(out.status.success(), "kubectl {args:?} failed: {}", text(&out));
        stdout(&out)
    }

    /// kubectl that must fail; its stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(!out.status.success(), "kubectl {args:?} should have failed: {}", text(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn kubectl_command(kubeconfig: &Path, cache: &Path) -> Command {
    let mut c = Command::new("kubectl");
    c.arg("--kubeconfig").arg(kubeconfig).arg("--cache-dir").arg(cache).arg("--request-timeout=60s");
    c.env_remove("KUBECONFIG");
    c
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write manifest");
    p.to_str().expect("utf-8").to_string()
}

const RC: &str = r#"apiVersion: v1
kind: ReplicationController
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: berth/busybox:1
        command: ["httpd", "-f", "-p", "8080"]
        ports:
        - containerPort: 8080
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_discovers_the_api_and_gets_every_kind() {
    let c = TlsCluster::start().await;
    let version = c.ok(&["version"]);
    assert!(version.contains("Server Version: v1.32.0+berth"), "{version}");
    assert!(!version.contains("WARNING"), "{version}");
    let resources = c.ok(&["api-resources"]);
    for line in ["pods ", "replicationcontrollers ", "clusterrolebindings ", "leases "] {
        assert!(resources.contains(line), "api-resources lists {line}: {resources}");
    }
    assert!(resources.lines().any(|l| l.starts_with("pods") && l.contains(" po ") && l.contains("Pod")), "{resources}");

    c.ok(&["apply", "-f", &write(c.tmp.path(), "rc.yaml", RC)]);
    // Every kind the API serves, in every output format.
    for kind in berth_api::resource::KINDS {
        for format in [&["-A"][..], &["-A", "-o", "wide"], &["-A", "-o", "json"], &["-A", "-o", "yaml"], &["-A", "-o", "name"]] {
            let mut args = vec!["get", kind.plural];
            args.extend_from_slice(format);
            let out = c.kubectl(&args);
            assert!(out.status.success(), "kubectl {args:?}: {}", text(&out));
        }
    }
    // Server-side Tables: kubectl prints Kubernetes' columns.
    let namespaces = c.ok(&["get", "namespaces"]);
    assert!(namespaces.starts_with("NAME") && namespaces.contains("STATUS") && namespaces.contains("Active"), "{namespaces}");
    let rc = c.ok(&["get", "rc", "web", "-o", "wide"]);
    assert!(rc.contains("DESIRED") && rc.contains("SELECTOR") && rc.contains("app=web"), "{rc}");
    let all = c.ok(&["get", "rc", "-A", "--show-labels"]);
    assert!(all.contains("NAMESPACE") && all.contains("app=web"), "{all}");
    let json = c.ok(&["get", "rc", "web", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["spec"]["replicas"], 2);
    assert_eq!(c.ok(&["get", "rc", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"]), "berth/busybox:1");
    assert_eq!(c.ok(&["get", "rc", "-o", "name"]).trim(), "replicationcontroller/web");
    let all_kinds = c.ok(&["get", "all"]);
    assert!(all_kinds.contains("replicationcontroller/web"), "{all_kinds}");

    // explain reads the OpenAPI documents.
    let explain = c.ok(&["explain", "pods.spec.containers"]);
    assert!(explain.contains("KIND:") && explain.contains("Pod") && explain.contains("FIELDS:") && explain.contains("image"), "{explain}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_applies_patches_scales_and_deletes() {
    let c = TlsCluster::start().await;
    let dir = c.tmp.path();
    let rc = write(dir, "rc.yaml", RC);
    let created = c.ok(&["apply", "-f", &rc]);
    assert!(created.contains("replicationcontroller/web created"), "{created}");
    let again = c.ok(&["apply", "-f", &rc]);
    assert!(again.contains("replicationcontroller/web unchanged"), "{again}");
    // An edit that removes env B: configured, and B is gone from the stored object.
    let edited = RC.replace("        - {name: B, value: \"2\"}\n", "").replace("berth/busybox:1", "berth/busybox:2");
    let edited_path = write(dir, "rc-edited.yaml", &edited);
    let diff = c.kubectl(&["diff", "-f", &edited_path]);
    assert_eq!(diff.status.code(), Some(1), "diff finds the change: {}", text(&diff));
    assert!(stdout(&diff).contains("berth/busybox:2"), "{}", text(&diff));
    let configured = c.ok(&["apply", "-f", &edited_path]);
    assert!(configured.contains("replicationcontroller/web configured"), "{configured}");
    let env = c.ok(&["get", "rc", "web", "-o", "jsonpath={.spec.template.spec.containers[0].env[*].name}"]);
    assert_eq!(env, "A");
    let same = c.kubectl(&["diff", "-f", &edited_path]);
    assert_eq!(same.status.code(), Some(0), "no difference left: {}", text(&same));

    assert!(c.ok(&["label", "rc", "web", "tier=frontend"]).contains("labeled"));
    assert!(c.ok(&["annotate", "rc", "web", "owner=team-a"]).contains("annotated"));
    let meta = c.ok(&["get", "rc", "web", "-o", "jsonpath={.metadata.labels.tier} {.metadata.annotations.owner}"]);
    assert_eq!(meta, "frontend team-a");
    // The three patch types.
    c.ok(&[
        "patch",
        "rc",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","env":[{"name":"C","value":"3"}]}]}}}}"#,
    ]);
    let env = c.ok(&["get", "rc", "web", "-o", "jsonpath={.spec.template.spec.containers[0].env[*].name}"]);
    let mut names: Vec<&str> = env.split(' ').collect();
    names.sort();
    assert_eq!(names, ["A", "C"], "a strategic merge patch merges env by name: {env}");
    c.ok(&["patch", "rc", "web", "--type=merge", "-p", r#"{"metadata":{"labels":{"tier":null}}}"#]);
    assert_eq!(c.ok(&["get", "rc", "web", "-o", "jsonpath={.metadata.labels.tier}"]), "");
    c.ok(&["patch", "rc", "web", "--type=json", "-p", r#"[{"op":"add","path":"/spec/minReadySeconds","value":5}]"#]);
    assert_eq!(c.ok(&["get", "rc", "web", "-o", "jsonpath={.spec.minReadySeconds}"]), "5");
    let unchanged = c.ok(&["patch", "rc", "web", "--type=merge", "-p", r#"{"spec":{"minReadySeconds":5}}"#]);
    assert!(unchanged.contains("(no change)"), "{unchanged}");
    let bad = c.fails(&["patch", "rc", "web", "--type=json", "-p", r#"[{"op":"test","path":"/spec/replicas","value":7}]"#]);
    assert!(bad.contains("The request is invalid") && bad.contains("/spec/replicas"), "a failed test op is 422 Invalid: {bad}");

    assert!(c.ok(&["scale", "rc", "web", "--replicas=3"]).contains("scaled"));
    assert_eq!(c.ok(&["get", "rc", "web", "-o", "jsonpath={.spec.replicas}"]), "3");

    // get -w sees the changes as they happen. It lists first and watches from the list's
    // revision, so once the listed object is printed no later change can be missed.
    c.ok(&["create", "configmap", "listed", "--from-literal=k=v"]);
    let mut watch = kubectl_command(&c.kubeconfig, &dir.join("cache"))
        .args(["get", "configmaps", "-w", "--output-watch-events", "--request-timeout=60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let lines = BufReader::new(watch.stdout.take().expect("stdout"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let listed = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(30)).ok()).find(|l| l.contains("listed"));
    assert!(listed.is_some(), "get -w prints the listed object first");
    c.ok(&["create", "-f", &write(dir, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\ndata: {a: b}\n")]);
    c.ok(&["label", "configmap", "watched", "x=y"]);
    c.ok(&["delete", "configmap", "watched"]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !["ADDED", "MODIFIED", "DELETED"].iter().all(|e| seen.iter().any(|l: &String| l.starts_with(e) && l.contains("watched"))) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("get -w did not show ADDED, MODIFIED and DELETED: {seen:?}"),
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();

    // Server-side dry run leaves the object; delete removes it.
    assert!(c.ok(&["delete", "rc", "web", "--dry-run=server"]).contains("(server dry run)"));
    c.ok(&["get", "rc", "web"]);
    assert!(c.ok(&["delete", "rc", "web"]).contains("deleted"));
    let gone = c.fails(&["get", "rc", "web"]);
    assert!(gone.contains("Error from server (NotFound): replicationcontrollers \"web\" not found"), "{gone}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "reads the shared conformance corpus: set BERTH_CONFORMANCE_DIR and run with --ignored (.ci/run does)"]
async fn kubectl_applies_every_conformance_manifest() {
    let c = TlsCluster::start().await;
    let dir = berth_e2e::conformance_dir().join("manifests");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("conformance manifests in {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    // Namespaces first, as kubectl users apply them.
    files.sort_by_key(|p| !std::fs::read_to_string(p).unwrap_or_default().contains("kind: Namespace"));
    for f in &files {
        let path = f.to_str().expect("utf-8");
        let out = c.kubectl(&["apply", "-f", path]);
        assert!(out.status.success(), "kubectl apply -f {path}: {}", text(&out));
    }
    // Applied again: nothing changes. (kubectl may still say "configured" where a manifest
    // writes a quantity as a number, `cpu: 1`, which the server keeps as "1", as Kubernetes does;
    // diff then shows that nothing would change.)
    let mut unchanged = 0;
    for f in &files {
        let path = f.to_str().expect("utf-8");
        let out = c.kubectl(&["apply", "-f", path]);
        assert!(out.status.success(), "second apply of {path}: {}", text(&out));
        unchanged += stdout(&out).lines().filter(|l| l.ends_with(" unchanged")).count();
        let diff = c.kubectl(&["diff", "-f", path]);
        assert_eq!(diff.status.code(), Some(0), "after applying {path} twice, diff shows no change: {}", text(&diff));
    }
    assert!(unchanged * 2 > files.len(), "most second applies say unchanged ({unchanged} of {})", files.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_prints_kubernetes_errors_and_access_reviews() {
    let c = TlsCluster::start().await;
    let dir = c.tmp.path();
    let missing = c.fails(&["get", "pod", "nope"]);
    assert!(missing.contains("Error from server (NotFound): pods \"nope\" not found"), "{missing}");
    let cm = write(dir, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: twice}\ndata: {a: b}\n");
    c.ok(&["create", "-f", &cm]);
    let twice = c.fails(&["create", "-f", &cm]);
    assert!(twice.contains("Error from server (AlreadyExists)") && twice.contains("configmaps \"twice\" already exists"), "{twice}");
    let bad = write(dir, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: c\n");
    let invalid = c.fails(&["apply", "-f", &bad]);
    assert!(invalid.contains("The Pod \"bad\" is invalid: spec.containers[0].image: Required value"), "{invalid}");
    let unknown = write(dir, "unknown.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: u}\nbogus: 1\n");
    let strict = c.fails(&["apply", "-f", &unknown]);
    assert!(strict.contains("unknown field \"bogus\""), "{strict}");

    // kubectl's typed calls send protobuf: create namespace / configmap, auth can-i.
    assert!(c.ok(&["create", "namespace", "team-a"]).contains("namespace/team-a created"));
    assert!(c.ok(&["create", "configmap", "proto", "-n", "team-a", "--from-literal=k=v"]).contains("configmap/proto created"));
    assert_eq!(c.ok(&["get", "configmap", "proto", "-n", "team-a", "-o", "jsonpath={.data.k}"]), "v");
    assert_eq!(c.ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    let whoami = c.ok(&["auth", "whoami"]);
    assert!(whoami.contains("admin") && whoami.contains("system:masters"), "{whoami}");

    // The scheduler's identity may not read secrets: Forbidden, in Kubernetes' words.
    let scheduler = dir.join("scheduler.kubeconfig");
    c.write_kubeconfig("kube-scheduler", &scheduler);
    let no = c.kubectl_as(&scheduler, &["auth", "can-i", "list", "secrets"], None);
    assert_eq!(stdout(&no).trim(), "no", "{}", text(&no));
    assert_eq!(no.status.code(), Some(1));
    let forbidden = c.kubectl_as(&scheduler, &["get", "secrets"], None);
    assert!(!forbidden.status.success());
    let msg = String::from_utf8_lossy(&forbidden.stderr);
    assert!(
        msg.contains(
            "Error from server (Forbidden): secrets is forbidden: User \"system:kube-scheduler\" cannot list resource \"secrets\""
        ),
        "{msg}"
    );
    // pods/eviction: allowed to the admin, forbidden to the scheduler, and the evicted pod is gone.
    let pod = write(
        dir,
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: evictee}\nspec:\n  containers:\n  - {name: c, image: berth/busybox:1}\n",
    );
    c.ok(&["apply", "-f", &pod]);
    let eviction = write(
        dir,
        "eviction.json",
        r#"{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "evictee"}, "deleteOptions": {"gracePeriodSeconds": 0}}"#,
    );
    let path = "/api/v1/namespaces/default/pods/evictee/eviction";
    let refused = c.kubectl_as(&scheduler, &["create", "--raw", path, "-f", &eviction], None);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Forbidden"), "{}", text(&refused));
    c.ok(&["create", "--raw", path, "-f", &eviction]);
    let gone = c.fails(&["get", "pod", "evictee"]);
    assert!(gone.contains("NotFound"), "{gone}");
    // An ordinary user can still discover the API (system:discovery).
    let version = c.kubectl_as(&scheduler, &["version"], None);
    assert!(version.status.success() && stdout(&version).contains("Server Version"), "{}", text(&version));
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_follows_logs_and_execs_through_the_kubelet() {
    let c = TlsCluster::start().await;
    let admin = c.client("admin").await;
    let tls = [
        "--ca-file".to_string(),
        c.pki("ca.crt"),
        "--client-certificate".into(),
        c.pki("admin.crt"),
        "--client-key".into(),
        c.pki("admin.key"),
    ];
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let k = kubelet_support::Kubelet::start(&c.url, "kubectl", &tls);
    k.wait_ready(&admin).await;
    let script = "for i in 1 2 3; do echo line $i; done; while true; do echo tick; sleep 0.3; done";
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: talk}}\nspec:\n  nodeName: {node}\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {image}\n    command: [sh, -c, '{script}']\n",
        node = k.node,
        image = kubelet_support::IMAGE,
    );
    c.ok(&["apply", "-f", &write(c.tmp.path(), "pod.yaml", &pod)]);
    let waited = c.kubectl(&["wait", "--for=condition=Ready", "pod/talk", "--timeout=90s"]);
    assert!(waited.status.success(), "{}\n{}", text(&waited), k.logs());

    let logs = c.ok(&["logs", "talk", "--tail=-1"]);
    assert!(logs.starts_with("line 1\nline 2\nline 3\n"), "{logs}");
    let tail = c.ok(&["logs", "talk", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    // logs -f keeps streaming.
    let mut follow = kubectl_command(&c.kubeconfig, &c.tmp.path().join("cache"))
        .args(["logs", "-f", "talk"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl logs -f");
    let mut reader = BufReader::new(follow.stdout.take().expect("stdout"));
    let mut ticks = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while ticks < 5 && Instant::now() < deadline {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        ticks += usize::from(line.trim() == "tick");
    }
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(ticks >= 5, "logs -f streamed {ticks} ticks");

    // exec with stdin, and the command's exit code.
    let exec =
        c.kubectl_as(&c.kubeconfig, &["exec", "-i", "talk", "--", "sh", "-c", "tr a-z A-Z; echo err >&2; exit 3"], Some("hello kubectl\n"));
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "HELLO KUBECTL\n", "{}", text(&exec));
    assert!(String::from_utf8_lossy(&exec.stderr).contains("err"), "{}", text(&exec));
    assert_eq!(exec.status.code(), Some(3), "{}", text(&exec));
    let ok = c.ok(&["exec", "talk", "--", "echo", "fine"]);
    assert_eq!(ok, "fine\n");
    c.ok(&["delete", "pod", "talk", "--grace-period=1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_through_rest_is_refused_with_a_status_and_stores_nothing() {
    let c = TlsCluster::start().await;
    let dir = c.tmp.path();
    let post = |name: &str, path: &str, body: &str| {
        let f = write(dir, name, body);
        c.fails(&["create", "--raw", path, "-f", &f])
    };
    let cms = "/api/v1/namespaces/default/configmaps";
    let malformed = post("malformed.json", cms, r#"{"metadata": {"name": "m"}, "data": {"#);
    assert!(malformed.contains("Error from server (BadRequest)") && malformed.contains("not valid JSON"), "{malformed}");
    let strict =
        post("unknown.json", &format!("{cms}?fieldValidation=Strict"), r#"{"metadata": {"name": "u"}, "data": {"a": "b"}, "bogus": 1}"#);
    assert!(strict.contains("strict decoding error: unknown field \"bogus\""), "{strict}");
    let wrong_kind = post("kind.json", cms, r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}}"#);
    assert!(wrong_kind.contains("does not match the expected kind (ConfigMap)"), "{wrong_kind}");
    let wrong_ns = post("ns.json", cms, r#"{"metadata": {"name": "n", "namespace": "kube-system"}}"#);
    assert!(wrong_ns.contains("does not match the namespace sent on the request"), "{wrong_ns}");
    let wrong_type = post("type.json", cms, r#"{"metadata": {"name": "t"}, "data": ["not", "a", "map"]}"#);
    assert!(wrong_type.contains("BadRequest") && wrong_type.contains("data"), "{wrong_type}");
    // Nothing of that was stored, in either namespace.
    for ns in ["default", "kube-system"] {
        assert_eq!(c.ok(&["get", "configmaps", "-n", ns, "-o", "name"]).trim(), "", "nothing stored in {ns}");
    }
    // A patch that does not apply leaves the object as it was.
    c.ok(&["create", "configmap", "kept", "--from-literal=a=b"]);
    let rv = c.ok(&["get", "configmap", "kept", "-o", "jsonpath={.metadata.resourceVersion}"]);
    let bad_patch = c.fails(&["patch", "configmap", "kept", "--type=json", "-p", r#"[{"op":"remove","path":"/data/nope"}]"#]);
    assert!(bad_patch.contains("invalid"), "{bad_patch}");
    let not_json = c.fails(&["patch", "configmap", "kept", "--type=merge", "-p", "{not json"]);
    assert!(!not_json.is_empty());
    let smp = c.fails(&["patch", "configmap", "kept", "-p", r#"{"metadata":{"ownerReferences":[{"name":"no-uid"}]}}"#]);
    assert!(smp.contains("merge key"), "{smp}");
    assert_eq!(
        c.ok(&["get", "configmap", "kept", "-o", "jsonpath={.metadata.resourceVersion}"]),
        rv,
        "the refused patches changed nothing"
    );
}
