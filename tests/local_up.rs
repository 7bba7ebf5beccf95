//! The README's first command: `deploy/local-up.sh` brings up every daemon
//! (TLS, one certificate identity each) with this host as a node, a pod created with berthctl gets scheduled and
//! runs in Docker, a service gets its VIP on the proxy's interface, `down`
//! stops everything and leaves no container, VIP, interface, iptables chain
//! or nftables table behind, and a second `up` (proxy in the nftables mode)
//! serves the same objects from the kept store and is taken down as cleanly.
//! In both proxy modes the pod finds Services by name through the cluster
//! DNS the launcher starts.

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

#[test]
fn should_bring_up_a_cluster_that_runs_a_pod_and_take_it_down_cleanly() {
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
    let cluster = Launched {
        state: tempfile::tempdir().expect("temp dir"),
        listen: format!("127.0.0.1:{}", free_port()),
        bin_dir: berthctl_path.parent().expect("target dir").to_path_buf(),
    };
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
