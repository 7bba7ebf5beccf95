//! The systemd units in `deploy/systemd` pass `systemd-analyze verify`
//! (with ExecStart pointed at the built binaries), keep the promised shape
//! (Type=notify, Restart=on-failure, an EnvironmentFile, a watchdog), and
//! the control-plane daemons really speak the notify protocol: READY=1 once
//! they serve, STOPPING=1 on SIGTERM, then a clean exit.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use berth_e2e::{Apiserver, bin, free_port};

const UNITS: [(&str, &str); 6] = [
    ("berth-apiserver", "berth-apiserver"),
    ("berth-controller-manager", "berth-controller-manager"),
    ("berth-scheduler", "berth-scheduler"),
    ("berth-dns", "berth-dns"),
    ("berth-kubelet", "berth-kubelet"),
    ("berth-proxy", "berth-proxy"),
];

fn unit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd")
}

#[test]
fn should_pass_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, package) in UNITS {
        let text = std::fs::read_to_string(unit_dir().join(format!("{name}.service"))).expect("unit file");
        for line in ["Type=notify", "Restart=on-failure", "WatchdogSec=", "EnvironmentFile=/etc/berth/", "KillSignal=SIGTERM"] {
            assert!(text.lines().any(|l| l.starts_with(line)), "{name}.service has no {line} line");
        }
        let installed = format!("/usr/local/bin/{name}");
        assert!(text.contains(&format!("ExecStart={installed} ")), "{name}.service runs {installed}");
        // verify checks that ExecStart exists: point it at the built binary.
        let binary = bin(name, package);
        let unit = dir.path().join(format!("{name}.service"));
        std::fs::write(&unit, text.replace(&installed, &binary.display().to_string())).expect("write unit");
        let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("systemd-analyze is installed");
        let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .chain(String::from_utf8_lossy(&out.stdout).lines())
            .filter(|l| l.contains(name))
            .map(str::to_string)
            .collect();
        assert!(out.status.success() && complaints.is_empty(), "systemd-analyze verify {name}.service: {complaints:#?}");
    }
}

/// A NOTIFY_SOCKET for one daemon.
struct NotifySocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    socket: UnixDatagram,
}

impl NotifySocket {
    fn new() -> NotifySocket {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
        NotifySocket { _dir: dir, path, socket }
    }

    /// The next message that carries `state`, or a panic after 60 s of silence.
    fn expect(&self, state: &str, daemon: &str) {
        let mut buf = [0u8; 4096];
        loop {
            let n = self.socket.recv(&mut buf).unwrap_or_else(|e| panic!("{daemon} sent no {state}: {e}"));
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.lines().any(|l| l == state) {
                return;
            }
        }
    }
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(name: &str, args: &[String], notify: &NotifySocket) -> Daemon {
    let child = Command::new(bin(name, name))
        .args(args)
        .env("NOTIFY_SOCKET", &notify.path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    Daemon(child)
}

fn terminate(daemon: &mut Daemon, notify: &NotifySocket, name: &str) {
    let _ = Command::new("kill").arg("-TERM").arg(daemon.0.id().to_string()).status();
    notify.expect("STOPPING=1", name);
    let status = daemon.0.wait().expect("wait");
    assert!(status.success(), "{name} exits cleanly on SIGTERM: {status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn should_notify_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().expect("temp dir");

    let notify = NotifySocket::new();
    let port = free_port();
    let args =
        vec!["--listen".to_string(), format!("127.0.0.1:{port}"), "--data-dir".into(), dir.path().join("data").display().to_string()];
    let mut apiserver = spawn("berth-apiserver", &args, &notify);
    notify.expect("READY=1", "berth-apiserver");
    notify.expect("WATCHDOG=1", "berth-apiserver");
    // The rest need an API to talk to: a second apiserver, started the usual way.
    let api = Apiserver::start(&dir.path().join("api"), free_port(), &[]).await;

    for name in ["berth-controller-manager", "berth-scheduler"] {
        let notify = NotifySocket::new();
        let args = vec![
            "--server".to_string(),
            api.url(),
            "--health-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--leader-elect=false".into(),
        ];
        let mut daemon = spawn(name, &args, &notify);
        notify.expect("READY=1", name);
        notify.expect("WATCHDOG=1", name);
        terminate(&mut daemon, &notify, name);
    }
    {
        let notify = NotifySocket::new();
        let resolv_conf = dir.path().join("resolv.conf");
        std::fs::write(&resolv_conf, "nameserver 127.0.0.1\n").expect("resolv.conf");
        let args = vec![
            "--server".to_string(),
            api.url(),
            "--health-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--resolv-conf".into(),
            resolv_conf.display().to_string(),
        ];
        let mut daemon = spawn("berth-dns", &args, &notify);
        notify.expect("READY=1", "berth-dns");
        notify.expect("WATCHDOG=1", "berth-dns");
        terminate(&mut daemon, &notify, "berth-dns");
    }
    terminate(&mut apiserver, &notify, "berth-apiserver");
}

#[test]
fn should_install_binaries_units_and_keep_existing_flags() {
    let bin_dir = bin("berthctl", "berthctl").parent().expect("target dir").to_path_buf();
    for (name, package) in UNITS {
        bin(name, package);
    }
    let root = tempfile::tempdir().expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/install.sh");
    let install = |components: &str| {
        let out = Command::new("bash")
            .arg(&script)
            .args(["--root", &root.path().display().to_string(), "--bin-dir", &bin_dir.display().to_string()])
            .args(["--components", components])
            .output()
            .expect("run install.sh");
        assert!(out.status.success(), "install.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let said = install("node");
    assert!(said.contains("installed berth-kubelet") && said.contains("installed berth-proxy"), "{said}");
    assert!(!root.path().join("usr/local/bin/berth-apiserver").exists(), "a node gets no control plane");
    let env = root.path().join("etc/berth/kubelet.env");
    std::fs::write(&env, "BERTH_ARGS=--node-name mine\n").expect("edit flags");
    let said = install("all");
    assert!(said.contains(&format!("kept {}", env.display())), "{said}");
    assert_eq!(std::fs::read_to_string(&env).expect("env"), "BERTH_ARGS=--node-name mine\n", "flags never overwritten");
    for (name, _) in UNITS {
        assert!(root.path().join("usr/local/bin").join(name).exists(), "{name} installed");
        assert!(root.path().join(format!("etc/systemd/system/{name}.service")).exists(), "{name}.service installed");
    }
    let out = Command::new("bash").arg(&script).args(["--components", "etcd"]).output().expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown component 'etcd'"));
}
