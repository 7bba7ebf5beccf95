//! berthctl's everyday verbs end to end against a real apiserver (no
//! kubelet: pods are bound by their manifest's spec.nodeName and their
//! status is written by the test): cordon and uncordon, drain refusing and
//! then evicting, wait for a condition or a deletion, get -o jsonpath and
//! -o custom-columns, api-resources and completion. Each check compares
//! what the user sees: stdout, stderr and the exit code.

use std::process::Output;
use std::time::Duration;

use berth_api::pb::core::{Pod, PodCondition, PodStatus};
use berth_client::Client;
use berth_e2e::{Apiserver, berthctl, free_port};

struct Cluster {
    _dir: tempfile::TempDir,
    server: Apiserver,
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Apiserver::start(&dir.path().join("data"), free_port(), &[]).await;
        Cluster { _dir: dir, server }
    }

    fn run(&self, args: &[&str]) -> Output {
        berthctl(&self.server.url(), args, None)
    }

    /// Runs berthctl in the background (for `wait`, which blocks).
    fn spawn(&self, args: &[&str]) -> tokio::task::JoinHandle<Output> {
        let url = self.server.url();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            berthctl(&url, &args, None)
        })
    }

    /// Succeeds and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "berthctl {args:?} failed: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn apply(&self, yaml: &str) {
        let out = berthctl(&self.server.url(), &["apply", "-f", "-"], Some(yaml));
        assert!(out.status.success(), "apply failed: {}", text(&out.stderr));
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a failure with exactly this stderr and nothing on stdout.
fn assert_fails(out: &Output, stderr: &str) {
    assert_eq!(out.status.code(), Some(1), "stdout: {} stderr: {}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stderr), stderr);
}

fn node(name: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n---\n")
}

/// A pod bound to `node_name` (unbound when empty), owned by the RC `owner` (name, uid) when given.
fn pod(name: &str, node_name: &str, owner: Option<(&str, &str)>, empty_dir: bool) -> String {
    let mut y = format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels:\n    app: web\n");
    if let Some((rc, uid)) = owner {
        y += &format!(
            "  ownerReferences:\n  - apiVersion: v1\n    kind: ReplicationController\n    name: {rc}\n    uid: {uid}\n    controller: true\n"
        );
    }
    y += "spec:\n";
    if !node_name.is_empty() {
        y += &format!("  nodeName: {node_name}\n");
    }
    y += "  containers:\n  - name: app\n    image: busybox\n";
    if empty_dir {
        y += "    volumeMounts:\n    - name: scratch\n      mountPath: /scratch\n  volumes:\n  - name: scratch\n    emptyDir: {}\n";
    }
    y + "---\n"
}

const RC: &str = "apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 3
  selector:
    app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: busybox
";

/// Writes a pod's status as its kubelet would.
async fn set_status(client: &Client, name: &str, ip: &str, ready: &str) {
    let mut p: Pod = client.get("default", name).await.expect("get pod");
    p.status = Some(PodStatus {
        phase: "Running".into(),
        pod_ip: ip.into(),
        conditions: vec![PodCondition { r#type: "Ready".into(), status: ready.into(), ..Default::default() }],
        ..Default::default()
    });
    client.update_status(p).await.expect("update pod status");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_cordon_and_uncordon_nodes() {
    let c = Cluster::start().await;
    c.apply(&node("n1"));

    assert_eq!(c.ok(&["cordon", "n1"]), "node/n1 cordoned\n");
    assert_eq!(c.ok(&["get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}"]), "true");
    assert!(c.ok(&["get", "nodes"]).contains("SchedulingDisabled"));
    assert_eq!(c.ok(&["cordon", "node/n1"]), "node/n1 already cordoned\n");

    assert_eq!(c.ok(&["uncordon", "n1"]), "node/n1 uncordoned\n");
    assert_eq!(c.ok(&["get", "node", "n1", "-o", "jsonpath={.spec.unschedulable}"]), "");
    assert_eq!(c.ok(&["uncordon", "n1"]), "node/n1 already uncordoned\n");

    assert_fails(&c.run(&["cordon", "nope"]), "Error from server (NotFound): nodes \"nope\" not found\n");
    assert_fails(&c.run(&["cordon"]), "error: you must specify a node: give its name (or -l SELECTOR)\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_refuse_to_drain_unmanaged_pods_then_evict_with_force() {
    let c = Cluster::start().await;
    c.apply(&format!("{}{}{RC}", node("n1"), node("n2")));
    let uid = c.ok(&["get", "rc", "web", "-o", "jsonpath={.metadata.uid}"]);
    let owner = Some(("web", uid.as_str()));
    c.apply(
        &[
            pod("bare", "n1", None, false),
            pod("scratch", "n1", owner, true),
            pod("web-1", "n1", owner, false),
            pod("web-2", "n1", owner, false),
            pod("elsewhere", "n2", owner, false),
        ]
        .concat(),
    );

    // Refused: nothing is evicted, but the node stays cordoned (as kubectl leaves it).
    let out = c.run(&["drain", "n1"]);
    assert_eq!(text(&out.stdout), "node/n1 cordoned\n");
    assert_fails(
        &out,
        "error: unable to drain node \"n1\": [cannot delete Pods declare no controller (use --force to override): default/bare, \
         cannot delete Pods with local storage (use --delete-emptydir-data to override): default/scratch]\n",
    );
    assert_fails(
        &c.run(&["drain", "n1", "--force"]),
        "error: unable to drain node \"n1\": cannot delete Pods with local storage (use --delete-emptydir-data to override): default/scratch\n",
    );
    let columns = ["get", "pods", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName"];
    assert_eq!(c.ok(&columns), "NAME        NODE\nbare        n1\nelsewhere   n2\nscratch     n1\nweb-1       n1\nweb-2       n1\n");

    // Allowed: one pod of the RC per round, each waited for.
    let out = c.run(&["drain", "n1", "--force", "--delete-emptydir-data", "--ignore-daemonsets", "--grace-period=0", "--timeout=60s"]);
    assert!(out.status.success(), "drain failed: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "node/n1 already cordoned\n\
         evicting pod default/bare\n\
         evicting pod default/scratch\n\
         pod/bare evicted\n\
         pod/scratch evicted\n\
         evicting pod default/web-1\n\
         pod/web-1 evicted\n\
         evicting pod default/web-2\n\
         pod/web-2 evicted\n\
         node/n1 drained\n"
    );
    // Progress on stderr, a line per pod awaited.
    assert_eq!(
        text(&out.stderr),
        "Warning: deleting Pods that declare no controller: default/bare\nWarning: deleting Pods with local storage: default/scratch\n\
         node/n1: waiting for pod default/bare to terminate (0 of 4 pods evicted, round 1 of 3)\n\
         node/n1: waiting for pod default/scratch to terminate (1 of 4 pods evicted, round 1 of 3)\n\
         node/n1: waiting for pod default/web-1 to terminate (2 of 4 pods evicted, round 2 of 3)\n\
         node/n1: waiting for pod default/web-2 to terminate (3 of 4 pods evicted, round 3 of 3)\n"
    );
    assert_eq!(c.ok(&columns), "NAME        NODE\nelsewhere   n2\n");
    assert_eq!(c.ok(&["drain", "n1"]), "node/n1 already cordoned\nnode/n1 drained\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_name_the_pods_left_when_a_drain_times_out() {
    let c = Cluster::start().await;
    c.apply(&format!("{}{}", node("n1"), pod("bare", "n1", None, false)));
    // Without a kubelet to confirm, a graceful delete never completes.
    let out = c.run(&["drain", "n1", "--force", "--timeout=2s"]);
    assert_eq!(text(&out.stdout), "node/n1 cordoned\nevicting pod default/bare\n");
    assert_fails(
        &out,
        "Warning: deleting Pods that declare no controller: default/bare\n\
         node/n1: waiting for pod default/bare to terminate (0 of 1 pods evicted, round 1 of 1)\n\
         error: unable to drain node \"n1\": timed out after 2s with 1 pod(s) left: default/bare: their kubelet has not finished them; \
         wait longer (--timeout) or remove them at once (--grace-period=0)\n",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn should_wait_for_conditions_and_deletion() {
    let c = Cluster::start().await;
    let client = c.server.client().await;
    c.apply(&format!("{}{}", pod("web", "", None, false), pod("db", "", None, false)));

    // The condition arrives while berthctl waits.
    let waiting = c.spawn(&["wait", "--for=condition=Ready", "pod/web", "--timeout", "60s"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    set_status(&client, "web", "172.30.0.5", "True").await;
    let out = waiting.await.expect("berthctl wait");
    assert!(out.status.success(), "wait failed: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "pod/web condition met\n");

    // Already met; a JSONPath test; a condition that does not come.
    assert_eq!(c.ok(&["wait", "--for=condition=ready", "pods", "web"]), "pod/web condition met\n");
    assert_eq!(c.ok(&["wait", "--for=jsonpath={.status.phase}=Running", "pod/web"]), "pod/web condition met\n");
    assert_fails(
        &c.run(&["wait", "--for=condition=Ready=False", "pod/web", "--timeout=1s"]),
        // What the pod shows is reported on stderr while berthctl waits.
        "waiting for pod/web: condition Ready is True\nerror: timed out waiting for the condition on pods/web\n",
    );
    assert_fails(&c.run(&["wait", "--for=condition=Ready", "pod/nope"]), "Error from server (NotFound): pods \"nope\" not found\n");
    assert_fails(
        &c.run(&["wait", "--for=ready", "pod/web"]),
        "error: invalid value 'ready' for '--for <CONDITION>': unrecognized condition: \"ready\": use delete, condition=NAME[=VALUE] or jsonpath={PATH}[=VALUE]\n",
    );

    // A deletion while berthctl waits.
    let waiting = c.spawn(&["wait", "--for=delete", "pod/db", "--timeout=60s"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.ok(&["delete", "pod", "db"]), "pod \"db\" deleted\n");
    let out = waiting.await.expect("berthctl wait");
    assert!(out.status.success(), "wait failed: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "pod/db condition met\n");
    // Gone already: nothing to wait for.
    assert_eq!(c.ok(&["wait", "--for=delete", "pod/db"]), "");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_print_jsonpath_and_custom_columns() {
    let c = Cluster::start().await;
    let client = c.server.client().await;
    c.apply(&format!("{}{}{}", node("n1"), pod("a", "n1", None, false), pod("b", "n1", None, false)));
    set_status(&client, "a", "172.30.0.5", "True").await;
    set_status(&client, "b", "172.30.0.6", "False").await;

    assert_eq!(c.ok(&["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]), "a b");
    assert_eq!(c.ok(&["get", "pods", "-o", "jsonpath={.items[0].status.podIP}"]), "172.30.0.5");
    assert_eq!(c.ok(&["get", "pod", "b", "-o", "jsonpath={.status.podIP}"]), "172.30.0.6");
    assert_eq!(c.ok(&["get", "pods", "-o=jsonpath=kind={.kind} first={.items[0].metadata.name}"]), "kind=PodList first=a");
    assert_eq!(
        c.ok(&["get", "pods", "-o", r#"jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.podIP}{"\n"}{end}"#]),
        "a\t172.30.0.5\nb\t172.30.0.6\n"
    );
    assert_eq!(c.ok(&["get", "pods", "-o", r#"jsonpath={.items[?(@.status.conditions[0].status=="True")].metadata.name}"#]), "a");
    assert_eq!(c.ok(&["get", "node", "n1", "-o", "jsonpath={.metadata.name}"]), "n1");

    assert_eq!(
        c.ok(&[
            "get",
            "pods",
            "-o",
            "custom-columns=NAME:.metadata.name,IP:.status.podIP,NODE:.spec.nodeName,READY:.status.conditions[0].status"
        ]),
        "NAME   IP           NODE   READY\na      172.30.0.5   n1     True\nb      172.30.0.6   n1     False\n"
    );
    assert_eq!(
        c.ok(&["get", "pods", "--no-headers", "-o", "custom-columns=NAME:.metadata.name,HOST:.status.hostIP"]),
        "a     <none>\nb     <none>\n"
    );

    assert_fails(
        &c.run(&["get", "pods", "-o", "custom-columns=NAME"]),
        "error: invalid value 'custom-columns=NAME' for '--output <OUTPUT>': unexpected custom-columns spec: NAME, expected <header>:<json-path-expr>\n",
    );
    assert_fails(
        &c.run(&["get", "pods", "-o", "yml"]),
        "error: invalid value 'yml' for '--output <OUTPUT>': unable to match a printer suitable for the output format \"yml\", allowed formats are: custom-columns,json,jsonpath,name,wide,yaml\n",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn should_list_api_resources_and_print_completion() {
    let c = Cluster::start().await;
    let out = c.ok(&["api-resources"]);
    let rows: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]);
    assert!(rows.contains(&vec!["pods", "po", "v1", "true", "Pod"]), "{out}");
    assert!(rows.contains(&vec!["nodes", "no", "v1", "false", "Node"]), "{out}");
    assert!(rows.contains(&vec!["leases", "coordination.k8s.io/v1", "true", "Lease"]), "{out}");
    // Core kinds first, each group sorted by name.
    let at = |name: &str| rows.iter().position(|r| r[0] == name).unwrap_or(usize::MAX);
    assert!(at("namespaces") < at("pods") && at("pods") < at("leases") && at("leases") < at("clusterroles"), "{out}");
    let names = c.ok(&["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(names.starts_with("namespaces\nnodes\n"), "{names}");
    assert!(names.contains("clusterroles.rbac.authorization.k8s.io\n"), "{names}");

    let script = c.ok(&["completion", "bash"]);
    assert!(script.contains("_berthctl()") && script.contains("complete -F _berthctl"), "{script}");
    assert!(script.contains("drain") && script.contains("api-resources"), "{script}");
    assert!(c.ok(&["completion", "zsh"]).starts_with("#compdef berthctl"));
    assert!(c.ok(&["completion", "fish"]).contains("complete -c berthctl"));
}
