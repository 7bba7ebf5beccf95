//! `berthctl config kubeconfig`: the kubeconfig it writes for kubectl, read back with serde_yaml
//! and by the real kubectl (/usr/bin/kubectl, which this test requires), and the config verbs
//! `deploy/local-up.sh down` uses to remove what `up` added.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use serde_yaml::Value;

/// Runs berthctl on the config file `config`; returns (exit code, stdout, stderr).
fn berthctl(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berthctl"))
        .arg("--berthconfig")
        .arg(config)
        .args(args)
        .env_remove("BERTH_TOKEN")
        .output()
        .expect("berthctl runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A Berth config with two contexts: `local` (client certificate, CA given relative to the
/// config file, as kubectl resolves it) and `remote` (a token, no CA, a namespace).
const CONFIG: &str = "apiVersion: v1
kind: Config
current-context: local
clusters:
- name: local-cluster
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: pki/ca.crt
- name: remote-cluster
  cluster:
    server: http://10.0.0.9:8080
users:
- name: local-admin
  user:
    client-certificate: pki/admin.crt
    client-key: pki/admin.key
- name: remote-user
  user:
    token: s3cret
contexts:
- name: local
  context:
    cluster: local-cluster
    user: local-admin
- name: remote
  context:
    cluster: remote-cluster
    user: remote-user
    namespace: web
";

fn decode(v: &Value) -> Vec<u8> {
    let text = v.as_str().unwrap_or_else(|| panic!("a base64 string: {v:?}"));
    base64::engine::general_purpose::STANDARD.decode(text).expect("valid base64")
}

#[test]
fn should_write_a_kubeconfig_kubectl_reads_with_the_files_embedded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    std::fs::write(&config, CONFIG).expect("write config");
    std::fs::create_dir(dir.path().join("pki")).expect("pki dir");
    // Not UTF-8 and with newlines: the bytes must come back exactly.
    let ca = b"-----BEGIN CERTIFICATE-----\nCA\xff\x00\n-----END CERTIFICATE-----\n".to_vec();
    let cert = b"-----BEGIN CERTIFICATE-----\nADMIN\n-----END CERTIFICATE-----\n".to_vec();
    let key = b"-----BEGIN PRIVATE KEY-----\nKEY\x01\x02\n-----END PRIVATE KEY-----\n".to_vec();
    std::fs::write(dir.path().join("pki/ca.crt"), &ca).expect("ca");
    std::fs::write(dir.path().join("pki/admin.crt"), &cert).expect("cert");
    std::fs::write(dir.path().join("pki/admin.key"), &key).expect("key");

    let kubeconfig = dir.path().join("out/kubeconfig");
    let (code, stdout, stderr) = berthctl(&config, &["config", "kubeconfig", "-o", kubeconfig.to_str().expect("utf-8 path")]);
    assert_eq!((code, stdout.as_str(), stderr.as_str()), (0, "", ""));
    let mode = std::fs::metadata(&kubeconfig).expect("written").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "it holds a private key");

    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&kubeconfig).expect("read")).expect("YAML");
    assert_eq!(doc["apiVersion"], "v1");
    assert_eq!(doc["kind"], "Config");
    assert_eq!(doc["current-context"], "local");
    assert_eq!(doc["clusters"].as_sequence().map(Vec::len), Some(1), "only the context's cluster: {doc:?}");
    assert_eq!(doc["clusters"][0]["name"], "local-cluster");
    assert_eq!(doc["clusters"][0]["cluster"]["server"], "https://127.0.0.1:6443");
    assert_eq!(decode(&doc["clusters"][0]["cluster"]["certificate-authority-data"]), ca);
    assert_eq!(doc["users"].as_sequence().map(Vec::len), Some(1));
    assert_eq!(doc["users"][0]["name"], "local-admin");
    assert_eq!(decode(&doc["users"][0]["user"]["client-certificate-data"]), cert);
    assert_eq!(decode(&doc["users"][0]["user"]["client-key-data"]), key);
    assert_eq!(doc["users"][0]["user"].get("token"), None);
    assert_eq!(doc["contexts"][0]["name"], "local");
    assert_eq!(doc["contexts"][0]["context"]["cluster"], "local-cluster");
    assert_eq!(doc["contexts"][0]["context"]["user"], "local-admin");
    for path_field in ["certificate-authority", "client-certificate", "client-key"] {
        assert!(!std::fs::read_to_string(&kubeconfig).expect("read").contains(&format!("{path_field}:")), "no file paths: {doc:?}");
    }

    // The real kubectl reads it (and finds the context current).
    let out = Command::new("/usr/bin/kubectl")
        .args(["config", "view", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["-o", "jsonpath={.current-context}"])
        .output()
        .expect("kubectl is installed at /usr/bin/kubectl");
    assert!(out.status.success(), "kubectl config view failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "local");
    let out = Command::new("/usr/bin/kubectl")
        .args(["config", "view", "--raw", "--kubeconfig"])
        .arg(&kubeconfig)
        .args(["-o", "jsonpath={.users[0].user.client-key-data}"])
        .output()
        .expect("kubectl runs");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(&out.stdout).expect("base64"), key);
}

#[test]
fn should_write_a_named_context_with_its_token_and_namespace_to_stdout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    std::fs::write(&config, CONFIG).expect("write config");
    let (code, stdout, stderr) = berthctl(&config, &["--context", "remote", "config", "kubeconfig"]);
    assert_eq!(code, 0, "{stderr}");
    let doc: Value = serde_yaml::from_str(&stdout).expect("YAML");
    assert_eq!(doc["current-context"], "remote");
    assert_eq!(doc["clusters"][0]["cluster"]["server"], "http://10.0.0.9:8080");
    assert_eq!(doc["clusters"][0]["cluster"].get("certificate-authority-data"), None);
    assert_eq!(doc["users"][0]["user"]["token"], "s3cret");
    assert_eq!(doc["contexts"][0]["context"]["namespace"], "web");

    // A missing file is named; an unknown context too.
    std::fs::write(&config, CONFIG.replace("current-context: local", "current-context: nowhere")).expect("write config");
    let (code, _, stderr) = berthctl(&config, &["config", "kubeconfig"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("context \"nowhere\" not found"), "{stderr}");
    let (code, _, stderr) = berthctl(&config, &["--context", "local", "config", "kubeconfig"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("pki/ca.crt"), "{stderr}");
}

#[test]
fn should_delete_clusters_and_users() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    std::fs::write(&config, CONFIG).expect("write config");
    assert_eq!(berthctl(&config, &["config", "delete-context", "local"]).0, 0);
    assert_eq!(berthctl(&config, &["config", "delete-cluster", "local-cluster"]).0, 0);
    assert_eq!(berthctl(&config, &["config", "delete-user", "local-admin"]).0, 0);
    let doc: Value = serde_yaml::from_str(&std::fs::read_to_string(&config).expect("read")).expect("YAML");
    assert_eq!(
        doc["clusters"].as_sequence().map(|c| c.iter().map(|c| c["name"].clone()).collect::<Vec<_>>()),
        Some(vec!["remote-cluster".into()])
    );
    assert_eq!(
        doc["users"].as_sequence().map(|u| u.iter().map(|u| u["name"].clone()).collect::<Vec<_>>()),
        Some(vec!["remote-user".into()])
    );
    assert_eq!(doc["current-context"], "");
    let (code, _, stderr) = berthctl(&config, &["config", "delete-user", "local-admin"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("cannot delete user local-admin"), "{stderr}");
}
