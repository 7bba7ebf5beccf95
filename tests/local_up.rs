//! The README's first command: `deploy/local-up.sh` brings up every daemon
//! (TLS, one certificate identity each) with this host as a node, a pod created with berthctl gets scheduled and
//! runs in Docker, a service gets its VIP on the proxy's interface, `down`
//! stops everything and leaves no container, VIP, interface, iptables chain
//! or nftables table behind, and a second `up` (proxy in the nftables mode)
//! serves the same objects from the kept store and is taken down as cleanly.
//! In both proxy modes the pod finds Services by name through the cluster
//! DNS the launcher starts. And every line of the README's tour runs, in
//! order, against a launched cluster, with the manifests of `examples/`.

mod proxy_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_e2e::{berthctl_with_env, bin, free_port};
use proxy_support::{interface_addresses, interface_exists};

/// What the launcher's proxy installs under its default names
/// (`--interface`, `--chain-prefix`, `--table-name` of berth-proxy).
const VIP_INTERFACE: &str = "berth-vips";
const CHAIN_PREFIX: &str = "KUBE";
const NFT_TABLE: &str = "berth";

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels: {app: hello}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: berth/busybox:1
    command: [sleep, '3600']
";

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector: {app: hello}
  ports:
  - port: 80
    targetPort: 8080
";

/// A cluster brought up by the launcher in a temporary folder; taken down
/// when dropped, so a failing test leaves nothing running.
struct Launched {
    state: tempfile::TempDir,
    listen: String,
    bin_dir: PathBuf,
}

impl Launched {
    /// A cluster to launch, with the binaries under test, in a fresh state folder.
    fn new() -> Launched {
        let berthctl_path = bin("berthctl", "berthctl");
        for (name, package) in [
            ("berth-apiserver", "berth-apiserver"),
            ("berth-controller-manager", "berth-controller-manager"),
            ("berth-scheduler", "berth-scheduler"),
            ("berth-kubelet", "berth-kubelet"),
            ("berth-proxy", "berth-proxy"),
            ("berth-dns", "berth-dns"),
        ] {
            bin(name, package);
        }
        Launched {
            state: tempfile::tempdir().expect("temp dir"),
            listen: format!("127.0.0.1:{}", free_port()),
            bin_dir: berthctl_path.parent().expect("target dir").to_path_buf(),
        }
    }

    fn launcher(&self, args: &[&str]) -> Output {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local-up.sh");
        Command::new("bash")
            .arg(script)
            .args(args)
            .env("BERTH_BIN_DIR", &self.bin_dir)
            .env("BERTH_STATE_DIR", self.state.path())
            .env("BERTH_LISTEN", &self.listen)
            .env("BERTHCONFIG", self.state.path().join("berthconfig"))
            .output()
            .expect("run deploy/local-up.sh")
    }

    /// `up --detach` with `flags`.
    fn up(&self, flags: &[&str]) {
        let mut args = vec!["up", "--detach"];
        args.extend_from_slice(flags);
        let out = self.launcher(&args);
        assert!(
            out.status.success(),
            "local-up.sh up failed:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Berth is up"), "{text}");
    }

    fn down(&self) -> Output {
        self.launcher(&["down"])
    }

    /// berthctl as the user runs it after `up`: through the current
    /// context the launcher wrote (TLS, the admin's certificate).
    fn berthctl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        berthctl_with_env(args, &[("BERTHCONFIG", &self.state.path().join("berthconfig"))], stdin)
    }

    fn nodes(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.state.path().join("run/nodes")).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    /// Every daemon's log, for a failure message.
    fn logs(&self) -> String {
        let mut all = String::new();
        if let Ok(dir) = std::fs::read_dir(self.state.path().join("logs")) {
            for entry in dir.flatten() {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                all.push_str(&format!("--- {} ---\n", entry.path().display()));
                for line in tail.iter().rev() {
                    all.push_str(line);
                    all.push('\n');
                }
            }
        }
        all
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        let _ = self.down();
    }
}

fn containers_of(node: &str) -> Vec<String> {
    let out = Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=berth.io/node={node}")]).output().expect("docker ps");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// What is left on the host of the proxy's rules: iptables chains with the
/// prefix (either backend, any table) and the nftables table.
fn proxy_rules_left() -> Vec<String> {
    let mut left = Vec::new();
    for tool in ["iptables-save", "iptables-legacy-save"] {
        // A host without this backend has nothing of it to leave.
        let Ok(out) = Command::new(tool).output() else { continue };
        let prefix = format!(":{CHAIN_PREFIX}-");
        left.extend(String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with(&prefix)).map(|l| format!("{tool}: {l}")));
    }
    if let Ok(out) = Command::new("nft").args(["list", "tables"]).output() {
        let table = format!("table ip {NFT_TABLE}");
        left.extend(String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.trim() == table).map(|l| format!("nft: {l}")));
    }
    left
}

fn cluster_ip(cluster: &Launched) -> Option<std::net::Ipv4Addr> {
    let out = cluster.berthctl(&["get", "service", "hello", "-o", "json"], None);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    value["spec"]["clusterIP"].as_str()?.parse().ok()
}

/// Checks that `down` left nothing of the cluster on the host.
fn assert_nothing_left(node: &str) {
    assert_eq!(containers_of(node), Vec::<String>::new(), "down leaves no containers");
    assert!(
        interface_addresses(VIP_INTERFACE).is_empty(),
        "down leaves no VIPs on {VIP_INTERFACE}: {:?}",
        interface_addresses(VIP_INTERFACE)
    );
    assert!(!interface_exists(VIP_INTERFACE), "down removes the VIP interface {VIP_INTERFACE}");
    assert_eq!(proxy_rules_left(), Vec::<String>::new(), "down leaves no proxy chains or tables");
}

/// Asks the cluster DNS for `name` from inside pod hello (busybox
/// `nslookup`, through the resolv.conf the kubelet wrote) until `want` is
/// among the answers (bounded: the DNS Service may not be forwarded yet).
fn resolves_in_pod(cluster: &Launched, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = cluster.berthctl(&["exec", "hello", "--", "nslookup", name], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        if text.lines().any(|l| l.starts_with("Address") && l.split_whitespace().any(|w| w == want)) {
            return;
        }
        assert!(Instant::now() < deadline, "nslookup {name} in pod hello does not answer {want} after 60 s:\n{text}\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn wait_running(cluster: &Launched) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while pod_phase(cluster).as_deref() != Some("Running") {
        assert!(Instant::now() < deadline, "pod hello is not Running after 90 s: {:?}\n{}", pod_phase(cluster), cluster.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn pod_phase(cluster: &Launched) -> Option<String> {
    let out = cluster.berthctl(&["get", "pod", "hello", "-o", "json"], None);
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    value["status"]["phase"].as_str().map(str::to_string)
}

/// The launcher's daemons use fixed ports and host names (health ports, the
/// VIP interface, berth-dns on the bridge's gateway): one cluster at a time.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn should_bring_up_a_cluster_that_runs_a_pod_and_take_it_down_cleanly() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Launched::new();
    cluster.up(&[]);
    let nodes = cluster.nodes();
    assert_eq!(nodes.len(), 1, "one node for this host");

    // berthctl's current context points at the cluster: no --server needed.
    let out = cluster.berthctl(&["get", "nodes"], None);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().any(|l| l.starts_with(&nodes[0]) && l.contains(" Ready ")), "{table}");

    // kubectl, through the kubeconfig the launcher wrote, sees the same cluster.
    let kubeconfig = cluster.state.path().join("kubeconfig");
    let kubectl = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(cluster.state.path().join("kubectl-cache"))
        .args(["get", "nodes"])
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is installed (the launcher's kubeconfig is checked with the real kubectl)");
    let table = String::from_utf8_lossy(&kubectl.stdout);
    assert!(
        table.lines().any(|l| l.starts_with(&nodes[0]) && l.contains(" Ready ")),
        "kubectl get nodes: {table}{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );

    let out = cluster.berthctl(&["apply", "-f", "-"], Some(POD));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_running(&cluster);
    assert!(!containers_of(&nodes[0]).is_empty(), "the pod runs in Docker");

    // A service, so that the proxy binds a VIP that `down` must remove.
    let out = cluster.berthctl(&["apply", "-f", "-"], Some(SERVICE));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let vip = cluster_ip(&cluster).expect("the service has a ClusterIP");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !interface_addresses(VIP_INTERFACE).contains(&vip) {
        assert!(Instant::now() < deadline, "VIP {vip} is not on {VIP_INTERFACE} after 60 s\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
    // The pod finds both services by name through the cluster DNS the
    // launcher started (berth-dns behind kube-dns, relayed by the proxy).
    resolves_in_pod(&cluster, "hello", &vip.to_string());
    // (busybox 1.35's nslookup asks a dotted name as it is, without the search path.)
    resolves_in_pod(&cluster, "kubernetes.default.svc.cluster.local", "10.96.0.1");

    let out = cluster.down();
    assert!(out.status.success(), "down failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_nothing_left(&nodes[0]);
    assert!(!kubeconfig.exists(), "down removes the kubeconfig it wrote");
    let contexts = cluster.berthctl(&["config", "get-contexts", "-o", "name"], None);
    assert!(!String::from_utf8_lossy(&contexts.stdout).contains("berth-local"), "down removes the berthctl context it made");
    assert!(!String::from_utf8_lossy(&cluster.berthctl(&["get", "nodes"], None).stdout).contains("Ready"), "the apiserver is stopped");

    // A second `up` serves the same objects from the kept store; its proxy
    // programs the service in the nftables mode, whose table `down` removes.
    cluster.up(&["--proxy-mode", "nftables"]);
    let out = cluster.berthctl(&["get", "pod", "hello", "-o", "name"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "pod/hello", "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxy_rules_left().is_empty() || !interface_addresses(VIP_INTERFACE).contains(&vip) {
        assert!(Instant::now() < deadline, "the nftables mode did not program {vip} within 60 s\n{}", cluster.logs());
        std::thread::sleep(Duration::from_millis(250));
    }
    // The kubelet starts the pod again; in this mode the kernel forwards
    // its DNS queries (DNAT to berth-dns on the bridge's gateway).
    wait_running(&cluster);
    resolves_in_pod(&cluster, "hello.default.svc.cluster.local", &vip.to_string());
    assert!(cluster.down().status.success());
    assert_nothing_left(&nodes[0]);
}

/// The sh block under the README's "A short berthctl tour" heading, line by line.
fn readme_tour() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).expect("README.md");
    let section = readme.split("## A short berthctl tour").nth(1).expect("the README has a tour section");
    let block = section.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).expect("the tour section has an sh block");
    block.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

/// Copies `from` into `to`, folders included.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn should_run_every_line_of_the_readme_tour() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let cluster = Launched::new();
    cluster.up(&[]);
    // A folder like a fresh clone's, as far as the tour reads it: examples/.
    let work = tempfile::tempdir().expect("work dir");
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"), &work.path().join("examples"));
    let mut script = String::from("set -eo pipefail\nset -x\n");
    let lines = readme_tour();
    assert!(lines.len() > 20, "the tour has its lines: {lines:?}");
    for line in &lines {
        if line.starts_with("export PATH=") {
            // The binaries under test are first on PATH already.
            continue;
        }
        if line.contains(" -w ") {
            // A watch runs until interrupted: a few seconds of it.
            let command = line.split("  #").next().unwrap_or(line);
            script.push_str(&format!("timeout 5 {command} || [ $? = 124 ]\n"));
            continue;
        }
        script.push_str(line);
        script.push('\n');
    }
    let path = format!("{}:{}", cluster.bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(work.path())
        .env("PATH", path)
        .env("BERTHCONFIG", cluster.state.path().join("berthconfig"))
        .env("KUBECONFIG", cluster.state.path().join("kubeconfig"))
        .env_remove("BERTH_SERVER")
        .output()
        .expect("run the tour");
    assert!(
        out.status.success(),
        "the README's tour failed (the last + line is the command):\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    assert!(work.path().join("backup.snap").exists(), "the tour's snapshot was saved");
    assert!(cluster.down().status.success());
}
