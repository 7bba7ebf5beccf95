//! berthctl against a real in-process apiserver on a temporary sled
//! directory: runs the built binary and checks what a user sees.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

/// An apiserver serving on 127.0.0.1 in its own thread and runtime,
/// stopped when dropped.
struct Server {
    url: String,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data_dir = dir.path().join("data");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (port_tx, port_rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                port_tx.send(listener.local_addr().expect("local addr").port()).expect("send port");
                let config = berth_apiserver::Config { data_dir, ..Default::default() };
                berth_apiserver::run(config, listener, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("apiserver runs");
            });
        });
        let port = port_rx.recv().expect("apiserver bound a port");
        Server { url: format!("http://127.0.0.1:{port}"), dir, stop: Some(stop), thread: Some(thread) }
    }

    /// Runs berthctl with `args` against this server.
    fn ctl(&self, args: &[&str]) -> Out {
        self.ctl_stdin(args, None)
    }

    fn ctl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berthctl"))
            .arg("--server")
            .arg(&self.url)
            .args(args)
            .env_remove("BERTH_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("berthctl starts");
        {
            let mut input = child.stdin.take().expect("stdin");
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).expect("write stdin");
            }
        }
        let out = child.wait_with_output().expect("berthctl runs");
        Out {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// Writes a manifest into the test's directory and returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write manifest");
        path.display().to_string()
    }

    /// `get -o json`, which must succeed.
    fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        let out = self.ctl(&a).ok();
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("get -o json prints JSON ({e}): {}", out.stdout))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug)]
struct Out {
    stdout: String,
    stderr: String,
    code: i32,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "berthctl failed: {self:?}");
        self
    }
    /// A failure: exit code 1 and one line on stderr, returned.
    #[track_caller]
    fn fails(self) -> String {
        assert_eq!(self.code, 1, "berthctl should fail: {self:?}");
        assert_eq!(self.stderr.lines().count(), 1, "one error line: {self:?}");
        self.stderr.trim_end().to_string()
    }
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: c
    image: busybox
    command: [sleep, '3600']
";

fn pod(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  containers:\n  - name: c\n    image: busybox\n"
    )
}

const RC: &str = "apiVersion: v1
kind: ReplicationController
metadata: {name: web}
spec:
  replicas: 1
  selector: {app: web}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: busybox}]
";

#[test]
fn should_create_then_configure_then_report_unchanged_on_apply() {
    let s = Server::start();
    let f = s.file("web.yaml", POD);
    assert_eq!(s.ctl(&["apply", "-f", &f]).ok().stdout, "pod/web created\n");
    assert_eq!(s.ctl(&["apply", "-f", &f]).ok().stdout, "pod/web unchanged\n");
    let rv = s.json(&["pod", "web"])["metadata"]["resourceVersion"].clone();

    s.file("web.yaml", &POD.replace("labels: {app: web}", "labels: {app: web, tier: fe}"));
    assert_eq!(s.ctl(&["apply", "-f", &f]).ok().stdout, "pod/web configured\n");
    let pod = s.json(&["pod", "web"]);
    assert_eq!(pod["metadata"]["labels"]["tier"], "fe");
    assert_ne!(pod["metadata"]["resourceVersion"], rv);
    assert_eq!(s.ctl(&["apply", "-f", &f]).ok().stdout, "pod/web unchanged\n");

    // A label the last apply set and the manifest dropped is removed.
    s.file("web.yaml", POD);
    assert_eq!(s.ctl(&["apply", "-f", &f]).ok().stdout, "pod/web configured\n");
    assert!(s.json(&["pod", "web"])["metadata"]["labels"].get("tier").is_none());
}

#[test]
fn should_apply_multi_document_files_directories_and_stdin() {
    let s = Server::start();
    let docs = format!(
        "{POD}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\nspec:\n  selector: {{app: web}}\n  ports: [{{port: 80}}]\n"
    );
    let out = s.ctl_stdin(&["apply", "-f", "-"], Some(&docs)).ok();
    assert_eq!(out.stdout, "pod/web created\nservice/web created\n");
    // Re-applying keeps what the server filled in (the ClusterIP) and changes nothing.
    let out = s.ctl_stdin(&["apply", "-f", "-"], Some(&docs)).ok();
    assert_eq!(out.stdout, "pod/web unchanged\nservice/web unchanged\n");

    s.file("dir/b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata: {k: v}\n");
    s.file("dir/a.json", r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}"#);
    s.file("dir/ignored.txt", "not a manifest");
    let dir = s.dir.path().join("dir").display().to_string();
    assert_eq!(s.ctl(&["apply", "-f", &dir]).ok().stdout, "configmap/a created\nconfigmap/b created\n");
}

#[test]
fn should_refuse_a_stale_resource_version_on_apply() {
    let s = Server::start();
    let f = s.file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: one}\n");
    s.ctl(&["apply", "-f", &f]).ok();
    let old = s.json(&["cm", "c"])["metadata"]["resourceVersion"].as_str().expect("resourceVersion").to_string();
    s.file("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: two}\n");
    s.ctl(&["apply", "-f", &f]).ok();

    let stale = s.file(
        "stale.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, resourceVersion: \"{old}\"}}\ndata: {{k: three}}\n"),
    );
    let err = s.ctl(&["apply", "-f", &stale]).fails();
    assert!(err.starts_with("Error from server (Conflict): "), "{err}");
    assert!(err.contains("configmap/c"), "{err}");
    assert_eq!(s.json(&["cm", "c"])["data"]["k"], "two");

    // The current resourceVersion is accepted.
    let rv = s.json(&["cm", "c"])["metadata"]["resourceVersion"].as_str().expect("resourceVersion").to_string();
    let fresh = s.file(
        "fresh.yaml",
        &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c, resourceVersion: \"{rv}\"}}\ndata: {{k: three}}\n"),
    );
    assert_eq!(s.ctl(&["apply", "-f", &fresh]).ok().stdout, "configmap/c configured\n");
    assert_eq!(s.json(&["cm", "c"])["data"]["k"], "three");
}

#[test]
fn should_print_json_yaml_names_and_tables() {
    let s = Server::start();
    let f = s.file("pods.yaml", &format!("{}---\n{}", pod("web", "app: web"), pod("db", "app: db")));
    s.ctl(&["apply", "-f", &f]).ok();

    let one = s.json(&["pods", "web"]);
    assert_eq!(one["apiVersion"], "v1");
    assert_eq!(one["kind"], "Pod");
    assert_eq!(one["metadata"]["name"], "web");
    assert_eq!(one["metadata"]["namespace"], "default");
    assert_eq!(one["spec"]["containers"][0]["image"], "busybox");

    let list = s.json(&["po"]);
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["apiVersion"], "v1");
    let names: Vec<&str> = list["items"].as_array().expect("items").iter().map(|i| i["metadata"]["name"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["db", "web"]);
    assert_eq!(list["items"][0]["kind"], "Pod");

    let yaml = s.ctl(&["get", "Pod", "web", "-o", "yaml"]).ok().stdout;
    let parsed: Value = serde_yaml::from_str(&yaml).expect("YAML");
    assert_eq!(parsed["kind"], "Pod");
    assert_eq!(parsed["metadata"]["name"], "web");
    let yaml_list: Value = serde_yaml::from_str(&s.ctl(&["get", "pods", "-o", "yaml"]).ok().stdout).expect("YAML");
    assert_eq!(yaml_list["kind"], "PodList");

    assert_eq!(s.ctl(&["get", "pods", "-o", "name"]).ok().stdout, "pod/db\npod/web\n");
    assert_eq!(s.ctl(&["get", "pod/web", "-o", "name"]).ok().stdout, "pod/web\n");
    assert_eq!(s.ctl(&["get", "po,rc", "-o", "name"]).ok().stdout, "pod/db\npod/web\n");

    let table = s.ctl(&["get", "pods"]).ok().stdout;
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
    assert_eq!(&lines[1][..4], ["db", "0/1", "Pending", "0"]);
    assert_eq!(&lines[2][..4], ["web", "0/1", "Pending", "0"]);

    let wide = s.ctl(&["get", "pods", "web", "-o", "wide", "--show-labels"]).ok().stdout;
    let header: Vec<&str> = wide.lines().next().expect("header").split_whitespace().collect();
    assert_eq!(header, ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "LABELS"]);
    assert!(wide.lines().nth(1).is_some_and(|l| l.ends_with("<none>   <none>   app=web")), "{wide}");

    let all = s.ctl(&["get", "pods", "-A", "--no-headers"]).ok().stdout;
    assert!(all.lines().all(|l| l.starts_with("default ")), "{all}");
    assert_eq!(all.lines().count(), 2);

    s.ctl_stdin(&["create", "-f", "-"], Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: empty}\n")).ok();
    let none = s.ctl(&["-n", "empty", "get", "pods"]).ok();
    assert_eq!((none.stdout.as_str(), none.stderr.as_str()), ("", "No resources found in empty namespace.\n"));
}

#[test]
fn should_report_missing_objects_and_unknown_kinds() {
    let s = Server::start();
    let err = s.ctl(&["get", "pods", "x"]).fails();
    assert_eq!(err, "Error from server (NotFound): pods \"x\" not found");
    let err = s.ctl(&["get"]).fails();
    assert!(err.starts_with("error: the following required arguments were not provided"), "{err}");
    let err = s.ctl(&["get", "foo"]).fails();
    assert_eq!(err, "error: the server doesn't have a resource type \"foo\"");
    let err = s.ctl(&["describe", "svc", "nope"]).fails();
    assert_eq!(err, "Error from server (NotFound): services \"nope\" not found");
    // A found object is still printed when another is missing.
    s.ctl_stdin(&["apply", "-f", "-"], Some(POD)).ok();
    let out = s.ctl(&["get", "pods", "web", "x", "-o", "name"]);
    assert_eq!(out.stdout, "pod/web\n");
    assert_eq!(out.fails(), "Error from server (NotFound): pods \"x\" not found");
}

#[test]
fn should_select_by_labels_and_fields() {
    let s = Server::start();
    let docs = [pod("web-1", "app: web, env: prod"), pod("web-2", "app: web, env: dev"), pod("db", "app: db, env: prod")].join("---\n");
    s.ctl_stdin(&["apply", "-f", "-"], Some(&docs)).ok();
    let names = |args: &[&str]| {
        let mut a = vec!["get", "pods", "-o", "name"];
        a.extend_from_slice(args);
        s.ctl(&a).ok().stdout
    };
    assert_eq!(names(&["-l", "app=web"]), "pod/web-1\npod/web-2\n");
    assert_eq!(names(&["-l", "app!=web"]), "pod/db\n");
    assert_eq!(names(&["-l", "env in (prod),app=web"]), "pod/web-1\n");
    assert_eq!(names(&["-l", "!env"]), "");
    assert_eq!(names(&["--field-selector", "metadata.name=db"]), "pod/db\n");
    let err = s.ctl(&["get", "pods", "-l", "a in (b"]).fails();
    assert!(err.starts_with("Error from server (Invalid)") || err.starts_with("Error from server (BadRequest)"), "{err}");
    let err = s.ctl(&["get", "pods", "db", "-l", "app=db"]).fails();
    assert_eq!(err, "error: name cannot be provided when a selector is specified");
}

#[test]
fn should_delete_by_name_selector_and_manifest() {
    let s = Server::start();
    let docs = [pod("a", "app: x"), pod("b", "app: x"), pod("c", "app: y")].join("---\n");
    let f = s.file("pods.yaml", &docs);
    s.ctl(&["apply", "-f", &f]).ok();

    assert_eq!(s.ctl(&["delete", "pod", "a", "--grace-period=0"]).ok().stdout, "pod \"a\" deleted\n");
    assert_eq!(s.ctl(&["get", "pod", "a"]).fails(), "Error from server (NotFound): pods \"a\" not found");
    assert_eq!(s.ctl(&["delete", "pod", "a"]).fails(), "Error from server (NotFound): pods \"a\" not found");
    let quiet = s.ctl(&["delete", "pod", "a", "--ignore-not-found"]).ok();
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));

    assert_eq!(s.ctl(&["delete", "pods", "-l", "app=x", "--grace-period=0"]).ok().stdout, "pod \"b\" deleted\n");
    assert_eq!(s.ctl(&["get", "pods", "-o", "name"]).ok().stdout, "pod/c\n");

    // kubectl goes on past missing objects, reporting each.
    let out = s.ctl(&["delete", "-f", &f, "--grace-period=0"]);
    assert_eq!(out.stdout, "pod \"c\" deleted\n");
    assert_eq!(out.code, 1);
    assert_eq!(out.stderr, "Error from server (NotFound): pods \"a\" not found\nError from server (NotFound): pods \"b\" not found\n");
    assert_eq!(s.ctl(&["get", "pods", "-o", "name"]).ok().stdout, "");

    // Orphaning waits for the garbage collector (not running here) to drop
    // its finalizer: the pods stay, terminating.
    s.ctl(&["apply", "-f", &f]).ok();
    assert_eq!(
        s.ctl(&["delete", "-f", &f, "--cascade=orphan", "--wait=false"]).ok().stdout,
        "pod \"a\" deleted\npod \"b\" deleted\npod \"c\" deleted\n"
    );
    let a = s.json(&["pod", "a"]);
    assert_eq!(a["metadata"]["finalizers"], serde_json::json!(["orphan"]));
    assert!(a["metadata"]["deletionTimestamp"].is_string(), "{a}");
    let table = s.ctl(&["get", "pods", "--no-headers"]).ok().stdout;
    assert!(table.lines().all(|l| l.split_whitespace().nth(2) == Some("Terminating")), "{table}");
}

#[test]
fn should_label_like_kubectl() {
    let s = Server::start();
    s.ctl_stdin(&["apply", "-f", "-"], Some(POD)).ok();
    assert_eq!(s.ctl(&["label", "pods", "web", "tier=fe"]).ok().stdout, "pod/web labeled\n");
    assert_eq!(s.json(&["pod", "web"])["metadata"]["labels"]["tier"], "fe");

    let err = s.ctl(&["label", "pod", "web", "app=db"]).fails();
    assert_eq!(err, "error: 'app' already has a value (web), and --overwrite is false");
    assert_eq!(s.json(&["pod", "web"])["metadata"]["labels"]["app"], "web");
    assert_eq!(s.ctl(&["label", "pod/web", "app=db", "--overwrite"]).ok().stdout, "pod/web labeled\n");
    assert_eq!(s.json(&["pod", "web"])["metadata"]["labels"]["app"], "db");

    assert_eq!(s.ctl(&["label", "pod", "web", "tier-"]).ok().stdout, "pod/web unlabeled\n");
    assert!(s.json(&["pod", "web"])["metadata"]["labels"].get("tier").is_none());
    assert_eq!(s.ctl(&["label", "pod", "web", "app=db"]).ok().stdout, "pod/web not labeled\n");
    let err = s.ctl(&["label", "pod", "web", "bad key=x"]).fails();
    assert!(err.starts_with("error: invalid label spec"), "{err}");
    assert_eq!(s.ctl(&["label", "pod", "nope", "a=b"]).fails(), "Error from server (NotFound): pods \"nope\" not found");
}

#[test]
fn should_scale_replication_controllers() {
    let s = Server::start();
    s.ctl_stdin(&["apply", "-f", "-"], Some(RC)).ok();
    assert_eq!(s.ctl(&["scale", "--replicas=3", "rc/web"]).ok().stdout, "replicationcontroller/web scaled\n");
    let rc = s.json(&["rc", "web"]);
    assert_eq!(rc["spec"]["replicas"], 3);
    assert_eq!(s.ctl(&["scale", "replicationcontrollers", "web", "--replicas", "0"]).ok().stdout, "replicationcontroller/web scaled\n");
    assert_eq!(s.json(&["rc", "web"])["spec"]["replicas"], 0);
    let err = s.ctl(&["scale", "rc", "web", "--replicas=2", "--current-replicas=5"]).fails();
    assert_eq!(err, "error: Expected replicas to be 5, was 0");
    let err = s.ctl(&["scale", "rc/nope", "--replicas=2"]).fails();
    assert_eq!(err, "Error from server (NotFound): replicationcontrollers \"nope\" not found");
    let table = s.ctl(&["get", "rc"]).ok().stdout;
    assert!(table.starts_with("NAME   DESIRED   CURRENT   READY   AGE\nweb    0 "), "{table}");
}

#[test]
fn should_refuse_invalid_manifests_and_write_nothing() {
    let s = Server::start();
    let unknown_field = s.file("unknown.yaml", &POD.replace("image: busybox", "imagee: busybox"));
    let err = s.ctl(&["apply", "-f", &unknown_field]).fails();
    assert!(err.starts_with("error: error parsing") && err.contains("spec.containers[0]") && err.contains("imagee"), "{err}");

    let malformed = s.file("malformed.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n");
    let err = s.ctl(&["apply", "-f", &malformed]).fails();
    assert!(err.contains("malformed.yaml") && err.contains("malformed YAML"), "{err}");

    let unknown_kind = s.file("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n");
    let err = s.ctl(&["create", "-f", &unknown_kind]).fails();
    assert!(err.contains("Deployment") && err.contains("not served"), "{err}");

    // The first document is fine, the second is not: nothing is written.
    let two = s.file(
        "two.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: first}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: second}\ndata: {k: v}\nbogus: 1\n",
    );
    let err = s.ctl(&["apply", "-f", &two]).fails();
    assert!(err.contains("document 2") && err.contains("bogus"), "{err}");
    assert_eq!(s.ctl(&["get", "cm", "first"]).fails(), "Error from server (NotFound): configmaps \"first\" not found");

    // The server's validation names the field.
    let no_image = s.file("noimage.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c}]\n");
    let err = s.ctl(&["apply", "-f", &no_image]).fails();
    assert!(err.starts_with("Error from server (Invalid): ") && err.contains("spec.containers[0].image"), "{err}");

    assert_eq!(s.ctl(&["get", "pods", "-A", "-o", "name"]).ok().stdout, "");
    assert_eq!(s.ctl(&["get", "cm", "-A", "-o", "name"]).ok().stdout, "");
}

#[test]
fn should_create_only_once() {
    let s = Server::start();
    let f = s.file("web.yaml", POD);
    assert_eq!(s.ctl(&["create", "-f", &f]).ok().stdout, "pod/web created\n");
    assert_eq!(s.ctl(&["create", "-f", &f]).fails(), "Error from server (AlreadyExists): pods \"web\" already exists");
    // -n puts objects without a namespace there (which must exist); a contradicting one is refused.
    let err = s.ctl(&["-n", "other", "create", "-f", &f]).fails();
    assert_eq!(err, "Error from server (NotFound): namespaces \"other\" not found");
    s.ctl_stdin(&["create", "-f", "-"], Some("apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n")).ok();
    assert_eq!(s.ctl(&["-n", "other", "create", "-f", &f]).ok().stdout, "pod/web created\n");
    assert_eq!(s.json(&["-n", "other", "pod", "web"])["metadata"]["namespace"], "other");
    let in_ns = s.file("in-ns.yaml", &POD.replace("name: web", "name: web\n  namespace: third"));
    let err = s.ctl(&["-n", "other", "apply", "-f", &in_ns]).fails();
    assert!(err.contains("does not match the namespace"), "{err}");
}

#[test]
fn should_describe_objects_with_their_events() {
    let s = Server::start();
    let event = "apiVersion: v1
kind: Event
metadata: {name: web.1}
involvedObject: {kind: Pod, name: web, namespace: default}
reason: Scheduled
message: Successfully assigned default/web to n1
type: Normal
source: {component: default-scheduler}
";
    s.ctl_stdin(&["apply", "-f", "-"], Some(&format!("{POD}---\n{event}"))).ok();
    let text = s.ctl(&["describe", "pod", "web"]).ok().stdout;
    for want in ["Name:", "app=web", "Containers:", "    Image:", "busybox", "Events:", "Scheduled", "default-scheduler"] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Namespace:", "default"]), "no namespace line in:\n{text}");
    assert!(!text.contains("last-applied-configuration"), "{text}");
    let rc = s.ctl_stdin(&["apply", "-f", "-"], Some(RC)).ok();
    assert_eq!(rc.stdout, "replicationcontroller/web created\n");
    let text = s.ctl(&["describe", "rc/web"]).ok().stdout;
    assert!(text.contains("Replicas:") && text.contains("Pods Status:") && text.contains("Events:"), "{text}");
}

#[test]
fn should_watch_from_the_listed_revision() {
    let s = Server::start();
    s.ctl_stdin(&["apply", "-f", "-"], Some(POD)).ok();
    let mut child = Command::new(env!("CARGO_BIN_EXE_berthctl"))
        .args(["--server", &s.url, "get", "pods", "-w", "--no-headers", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("berthctl starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    // Generous bound so a broken watch fails the test instead of hanging it.
    let next = || rx.recv_timeout(Duration::from_secs(60)).expect("a line from the watch");
    assert_eq!(next(), "pod/web");
    s.ctl(&["label", "pod", "web", "x=y"]).ok();
    assert_eq!(next(), "pod/web");
    s.ctl_stdin(&["apply", "-f", "-"], Some(&pod("db", "app: db"))).ok();
    assert_eq!(next(), "pod/db");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn should_print_the_client_version_without_a_server() {
    let out = Command::new(env!("CARGO_BIN_EXE_berthctl")).args(["--server", "http://127.0.0.1:1", "version"]).output().expect("runs");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("Client Version: v{}\n", env!("CARGO_PKG_VERSION")));
    let out = Command::new(env!("CARGO_BIN_EXE_berthctl")).args(["--server", "http://127.0.0.1:1", "get", "pods"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: cannot reach the API server at http://127.0.0.1:1") && err.lines().count() == 1, "{err}");
}
