//! The security promises as an operator meets them, with the real binaries:
//! `berthctl certs` makes the cluster's PKI, the apiserver serves TLS with
//! client certificates, berthctl talks to it with them and asks `auth
//! can-i`, and a plaintext listener outside loopback is refused at startup.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_client::{Client, ClientConfig, ListParams};
use berth_e2e::{bin, free_port};

fn berthctl(args: &[&str]) -> Output {
    Command::new(bin("berthctl", "berthctl")).args(args).stdin(Stdio::null()).output().expect("run berthctl")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Kills the child when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn should_refuse_to_serve_plaintext_on_a_non_loopback_address() {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut child = Command::new(bin("berth-apiserver", "berth-apiserver"))
        .args(["--listen", &format!("0.0.0.0:{port}"), "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start berth-apiserver");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth-apiserver kept running with plaintext on 0.0.0.0");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(!status.success());
    assert!(stderr.contains("--tls-cert-file"), "the refusal names the missing flag: {stderr}");
}

async fn wait_for_tls(config: &ClientConfig) -> Client {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(c) = Client::connect(config).await
            && c.list::<berth_api::Namespace>("", &ListParams::default()).await.is_ok()
        {
            return c;
        }
        assert!(Instant::now() < deadline, "the TLS apiserver did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).expect("file").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn should_run_a_tls_cluster_with_the_certificates_berthctl_makes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path().join("pki");
    let made = berthctl(&["certs", "--dir", pki.to_str().expect("utf-8"), "--nodes", "n1"]);
    assert!(made.status.success(), "{}", text(&made));
    for f in ["ca.crt", "apiserver.crt", "admin.crt", "kube-scheduler.crt", "node-n1.crt"] {
        assert!(pki.join(f).exists(), "{f} missing");
    }
    assert_eq!(mode(&pki.join("admin.key")), 0o600);
    assert_eq!(mode(&pki.join("ca.key")), 0o600);

    let port = free_port();
    let p = |f: &str| pki.join(f).to_str().expect("utf-8").to_string();
    let log = std::fs::File::create(tmp.path().join("apiserver.log")).expect("log");
    let _server = Daemon(
        Command::new(bin("berth-apiserver", "berth-apiserver"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(tmp.path().join("data"))
            .args(["--tls-cert-file", &p("apiserver.crt"), "--tls-private-key-file", &p("apiserver.key"), "--client-ca-file", &p("ca.crt")])
            .args(["--allow-hosts", "127.0.0.1/32"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth-apiserver"),
    );
    let server = format!("https://127.0.0.1:{port}");
    let admin_config = ClientConfig::new(&server).with_ca_file(p("ca.crt")).with_client_certificate(p("admin.crt"), p("admin.key"));
    wait_for_tls(&admin_config).await;

    let as_admin = |args: &[&str]| {
        let mut v: Vec<String> = vec!["--server".into(), server.clone(), "--ca-file".into(), p("ca.crt")];
        v.extend(["--client-certificate".to_string(), p("admin.crt"), "--client-key".to_string(), p("admin.key")]);
        v.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        berthctl(&refs)
    };
    let ns = as_admin(&["get", "namespaces"]);
    assert!(ns.status.success() && text(&ns).contains("kube-system"), "{}", text(&ns));
    let yes = as_admin(&["auth", "can-i", "delete", "nodes"]);
    assert!(yes.status.success() && text(&yes).trim() == "yes", "{}", text(&yes));
    let kubelet = |args: &[&str]| {
        let mut v: Vec<String> =
            ["--server", &server, "--ca-file", &p("ca.crt"), "--client-certificate", &p("node-n1.crt"), "--client-key", &p("node-n1.key")]
                .iter()
                .map(|s| s.to_string())
                .collect();
        v.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        berthctl(&refs)
    };
    let who = kubelet(&["auth", "whoami"]);
    assert!(text(&who).contains("system:node:n1") && text(&who).contains("system:nodes"), "{}", text(&who));
    let no = kubelet(&["auth", "can-i", "get", "secrets", "db"]);
    assert!(!no.status.success() && text(&no).trim() == "no", "{}", text(&no));
    let exec = kubelet(&["auth", "can-i", "create", "pods/exec"]);
    assert_eq!(text(&exec).trim(), "no");
    // Without a client certificate: refused as unauthenticated.
    let anonymous = berthctl(&["--server", &server, "--ca-file", &p("ca.crt"), "get", "pods"]);
    assert!(!anonymous.status.success(), "{}", text(&anonymous));
    // Without the CA, berthctl does not trust the server.
    let untrusted =
        berthctl(&["--server", &server, "--client-certificate", &p("admin.crt"), "--client-key", &p("admin.key"), "get", "pods"]);
    assert!(!untrusted.status.success(), "{}", text(&untrusted));
}
