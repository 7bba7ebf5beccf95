//! Helpers for the end-to-end tests: find the built binaries, start daemons
//! as real processes on free loopback ports, and run berthctl.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_client::{Client, ClientConfig};

/// The workspace's target directory for this profile (`target/debug`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug
    exe.parent().and_then(Path::parent).map(Path::to_path_buf).expect("target dir")
}

/// The path of a workspace binary, building its package if it is missing.
pub fn bin(name: &str, package: &str) -> PathBuf {
    let path = target_dir().join(name);
    if !path.exists() {
        let status = Command::new(env!("CARGO")).args(["build", "-p", package, "--bin", name]).status().expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    path
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A berth-apiserver process; killed when dropped.
pub struct Apiserver {
    pub child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
}

impl Apiserver {
    /// Starts `berth-apiserver` on `port` with `data_dir` and waits until it serves.
    pub async fn start(data_dir: &Path, port: u16, extra: &[&str]) -> Apiserver {
        let log = std::fs::File::create(data_dir.with_extension("log")).expect("log file");
        let child = Command::new(bin("berth-apiserver", "berth-apiserver"))
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth-apiserver");
        let server = Apiserver { child, port, data_dir: data_dir.to_path_buf() };
        server.client().await;
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A connected client, waiting (bounded) for the server to answer.
    pub async fn client(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        let config = ClientConfig::new(self.url());
        loop {
            if let Ok(c) = Client::connect(&config).await
                && c.list::<berth_api::Namespace>("", &Default::default()).await.is_ok()
            {
                return c;
            }
            assert!(Instant::now() < deadline, "apiserver on port {} did not come up", self.port);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().expect("wait for apiserver")
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs berthctl against a server, returning its output.
pub fn berthctl(server: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut all = vec!["--server", server];
    all.extend_from_slice(args);
    berthctl_with_env(&all, &[], stdin)
}

/// Runs berthctl with `args` and extra environment (BERTH_SERVER removed,
/// so only what is given decides where it goes), feeding `stdin`.
pub fn berthctl_with_env(args: &[&str], env: &[(&str, &Path)], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(bin("berthctl", "berthctl"));
    cmd.args(args).env_remove("BERTH_SERVER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run berthctl");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("berthctl output")
}

/// The shared conformance manifests (`BERTH_CONFORMANCE_DIR`; the tests
/// that read them are `#[ignore]`d and run by `.ci/run` with `--ignored`).
pub fn conformance_dir() -> PathBuf {
    berth_api::manifest::conformance_dir().unwrap_or_else(|e| panic!("{e}"))
}
