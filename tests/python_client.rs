//! The official Python client (PyPI `kubernetes`, installed by `.ci/run`)
//! against berth-apiserver's Kubernetes REST API, as a Python program meets
//! it: a TLS apiserver with client certificates made by `berthctl certs`,
//! the kubeconfig `berthctl config kubeconfig` writes, read by
//! `config.load_kube_config`, and the scripts in
//! `tests/python/` doing CRUD, each patch type, watches with bookmarks and
//! a 410 relist, and logs and exec through a real kubelet. Each script
//! asserts itself and exits non-zero on the first failed check; a missing
//! Python client fails these tests (it does not skip them).

mod kubelet_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_api::pb::core::Node;
use berth_client::{Client, ClientConfig, ListParams};
use berth_e2e::{bin, free_port};
use kubelet_support::{CidrLease, IMAGE, ensure_test_image, node_name, remove_node_containers};

/// How long one script may run before it is killed and the test fails.
const SCRIPT_LIMIT: Duration = Duration::from_secs(150);

/// A daemon process, killed when dropped (its log printed if the test is failing).
struct Daemon {
    child: Child,
    what: String,
    log: PathBuf,
}

impl Daemon {
    fn spawn(what: &str, mut cmd: Command, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).expect("daemon log file");
        let child = cmd.stdout(Stdio::null()).stderr(file).spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        Daemon { child, what: what.to_string(), log }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log (last lines) ---\n{}", self.what, self.tail());
        }
    }
}

/// A TLS apiserver with its PKI and a kubeconfig for the admin identity.
struct Cluster {
    // Dropped first: stopped (its log printed on failure) before `tmp` goes.
    apiserver: Daemon,
    server: String,
    kubeconfig: PathBuf,
    tmp: tempfile::TempDir,
}

impl Cluster {
    /// Makes certificates (with kubelet certificates for `nodes`), starts the
    /// apiserver with `extra` flags, waits until it serves, writes the kubeconfig.
    async fn start(extra: &[&str], nodes: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pki = tmp.path().join("pki");
        let mut certs = Command::new(bin("berthctl", "berthctl"));
        certs.arg("certs").arg("--dir").arg(&pki).env_remove("BERTH_SERVER");
        if !nodes.is_empty() {
            certs.arg("--nodes").arg(nodes.join(","));
        }
        let made = certs.stdin(Stdio::null()).output().expect("run berthctl certs");
        assert!(made.status.success(), "berthctl certs: {}", String::from_utf8_lossy(&made.stderr));

        let port = free_port();
        let mut cmd = Command::new(bin("berth-apiserver", "berth-apiserver"));
        cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(tmp.path().join("data"))
            .arg("--tls-cert-file")
            .arg(pki.join("apiserver.crt"))
            .arg("--tls-private-key-file")
            .arg(pki.join("apiserver.key"))
            .arg("--client-ca-file")
            .arg(pki.join("ca.crt"))
            .arg("--kubelet-client-certificate")
            .arg(pki.join("apiserver-kubelet-client.crt"))
            .arg("--kubelet-client-key")
            .arg(pki.join("apiserver-kubelet-client.key"))
            .arg("--kubelet-certificate-authority")
            .arg(pki.join("ca.crt"))
            .args(extra);
        let apiserver = Daemon::spawn("berth-apiserver", cmd, tmp.path().join("apiserver.log"));
        let server = format!("https://127.0.0.1:{port}");
        let cluster = Cluster { kubeconfig: tmp.path().join("kubeconfig"), server, apiserver, tmp };
        cluster.client().await;
        cluster.write_kubeconfig();
        cluster
    }

    fn pki(&self, file: &str) -> PathBuf {
        self.tmp.path().join("pki").join(file)
    }

    /// A Berth client as admin, once the server answers (bounded).
    async fn client(&self) -> Client {
        let config = ClientConfig::new(&self.server)
            .with_ca_file(self.pki("ca.crt"))
            .with_client_certificate(self.pki("admin.crt"), self.pki("admin.key"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = Client::connect(&config).await
                && c.list::<berth_api::Namespace>("", &ListParams::default()).await.is_ok()
            {
                return c;
            }
            assert!(Instant::now() < deadline, "the TLS apiserver did not come up\n{}", self.apiserver.tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The kubeconfig the Python client reads, as Berth writes it: a berthctl
    /// context for this cluster and the admin identity, exported with
    /// `berthctl config kubeconfig` (the CA, certificate and key embedded).
    fn write_kubeconfig(&self) {
        let berthconfig = self.tmp.path().join("berthconfig");
        let ctl = |args: &[&str]| {
            let out = Command::new(bin("berthctl", "berthctl"))
                .arg("--berthconfig")
                .arg(&berthconfig)
                .args(args)
                .env_remove("BERTH_SERVER")
                .env_remove("BERTHCONFIG")
                .stdin(Stdio::null())
                .output()
                .expect("run berthctl");
            assert!(
                out.status.success(),
                "berthctl {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let path = |f: &str| self.pki(f).to_str().expect("utf-8 path").to_string();
        ctl(&["config", "set-cluster", "berth", "--server", &self.server, "--ca-file", &path("ca.crt")]);
        ctl(&["config", "set-credentials", "admin", "--client-certificate", &path("admin.crt"), "--client-key", &path("admin.key")]);
        ctl(&["config", "set-context", "berth", "--cluster", "berth", "--user", "admin"]);
        ctl(&["config", "use-context", "berth"]);
        ctl(&["config", "kubeconfig", "-o", self.kubeconfig.to_str().expect("utf-8 path")]);
    }

    /// Runs `tests/python/<script>` with the kubeconfig and `args`; fails
    /// the test (printing its output; the server's log follows as the
    /// cluster is dropped) unless it exits 0 having printed `<marker>`.
    fn python(&self, script: &str, args: &[&str], marker: &str) -> String {
        let output = run_python(script, &self.kubeconfig, args, self.tmp.path());
        let text = match output {
            Ok(text) => text,
            Err(text) => panic!("{script} failed:\n{text}"),
        };
        assert!(text.contains(marker), "{script} ended without {marker:?}:\n{text}");
        println!("--- {script} ---\n{text}");
        text
    }
}

/// Fails the test, saying what to do, when the Python client cannot be imported.
fn require_python_client() {
    let out = Command::new("python3")
        .args(["-c", "import kubernetes; print(kubernetes.__version__)"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 must be installed to run the Python client tests");
    assert!(
        out.status.success(),
        "the official Python client is not installed (`pip install kubernetes`, which .ci/run does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("Python client kubernetes {}", String::from_utf8_lossy(&out.stdout).trim());
}

/// Runs a script with a time limit, stdout and stderr together in one file
/// (so their order is kept). Ok(output) when it exited 0, else Err(output).
fn run_python(script: &str, kubeconfig: &Path, args: &[&str], scratch: &Path) -> Result<String, String> {
    require_python_client();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python").join(script);
    let out_path = scratch.join(format!("{script}.out"));
    let out = std::fs::File::create(&out_path).expect("script output file");
    let err = out.try_clone().expect("clone output file");
    let mut child = Command::new("python3")
        .arg(&path)
        .arg(kubeconfig)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("run python3");
    let deadline = Instant::now() + SCRIPT_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python3") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(text),
        Some(s) => Err(format!("{text}\n(exit status: {s})")),
        None => Err(format!("{text}\n(killed after {SCRIPT_LIMIT:?})")),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_create_read_list_replace_and_delete_with_the_python_client() {
    let cluster = Cluster::start(&[], &[]).await;
    cluster.python("crud.py", &[], "crud: all checks passed");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_apply_each_patch_type_and_scale_with_the_python_client() {
    let cluster = Cluster::start(&[], &[]).await;
    cluster.python("patches.py", &[], "patches: all checks passed");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_watch_with_bookmarks_with_the_python_client() {
    let cluster = Cluster::start(&["--watch-bookmark-interval", "1s"], &[]).await;
    cluster.python("watch.py", &[], "watch: all checks passed");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_answer_410_to_a_too_old_watch_and_let_the_python_client_relist() {
    // A history of 20 events: 60 writes push the first revision out of it.
    let cluster = Cluster::start(&["--watch-history", "20"], &[]).await;
    cluster.python("watch_expired.py", &["60"], "watch_expired: all checks passed");
}

/// A berth-kubelet with its own node certificate, serving its API over TLS;
/// killed when dropped, and every container it started removed.
struct TlsKubelet {
    node: String,
    daemon: Option<Daemon>,
    _cidr: CidrLease,
    _root: tempfile::TempDir,
}

impl TlsKubelet {
    fn start(cluster: &Cluster, node: &str) -> TlsKubelet {
        ensure_test_image();
        remove_node_containers(node);
        let root = tempfile::tempdir().expect("kubelet root dir");
        let cidr = CidrLease::take();
        let cert = cluster.pki(&format!("node-{node}.crt"));
        let key = cluster.pki(&format!("node-{node}.key"));
        let mut cmd = Command::new(bin("berth-kubelet", "berth-kubelet"));
        cmd.args(["--server", &cluster.server])
            .arg("--ca-file")
            .arg(cluster.pki("ca.crt"))
            .arg("--client-certificate")
            .arg(&cert)
            .arg("--client-key")
            .arg(&key)
            .args(["--node-name", node, "--pod-cidr", &cidr.cidr])
            .arg("--root-dir")
            .arg(root.path())
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-private-key-file")
            .arg(&key)
            .arg("--client-ca-file")
            .arg(cluster.pki("ca.crt"))
            .args(["--health-listen", &format!("127.0.0.1:{}", free_port()), "--port", "0"])
            .args(["--node-status-update-frequency", "1s", "--housekeeping-interval", "1s", "--sync-frequency", "2s"])
            .env("RUST_LOG", "info,berth_kubelet=debug")
            .env_remove("BERTH_SERVER")
            .env_remove("BERTH_TOKEN")
            .env_remove("BERTH_CA_FILE")
            .env_remove("BERTH_CLIENT_CERTIFICATE")
            .env_remove("BERTH_CLIENT_KEY");
        let daemon = Daemon::spawn("berth-kubelet", cmd, cluster.tmp.path().join("kubelet.log"));
        TlsKubelet { node: node.to_string(), daemon: Some(daemon), _cidr: cidr, _root: root }
    }

    async fn wait_ready(&self, client: &Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(n) = client.get::<Node>("", &self.node).await
                && n.status.is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
            {
                return;
            }
            let log = self.daemon.as_ref().map(Daemon::tail).unwrap_or_default();
            assert!(Instant::now() < deadline, "node {} did not become Ready\n--- berth-kubelet log ---\n{log}", self.node);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for TlsKubelet {
    fn drop(&mut self) {
        // Kill the kubelet first, so that it starts no container after the cleanup.
        drop(self.daemon.take());
        remove_node_containers(&self.node);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn should_read_logs_and_exec_with_the_python_client() {
    require_python_client();
    let node = node_name("py");
    let cluster = Cluster::start(&[], &[&node]).await;
    let kubelet = TlsKubelet::start(&cluster, &node);
    kubelet.wait_ready(&cluster.client().await).await;
    cluster.python("logs_exec.py", &[&node, IMAGE], "logs_exec: all checks passed");
    drop(kubelet);
}
