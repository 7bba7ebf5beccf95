//! `certs`: makes a cluster's certificates — a CA, the apiserver's serving
//! certificate, a client certificate per user and component (CN the user,
//! O the groups), and one per node for its kubelet — so that the cluster
//! runs with TLS and client certificates.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use berth_client::pki::{Ca, Issued, Usage};

use super::out;

#[derive(Debug, clap::Args)]
pub struct CertsArgs {
    /// Where to write the certificates and keys (an existing ca.crt/ca.key there is reused).
    #[arg(long, default_value = "./.berth/pki")]
    pub dir: PathBuf,
    /// Names and addresses the apiserver is reached at (its certificate's SANs).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1,localhost")]
    pub hosts: Vec<String>,
    /// Nodes to make kubelet certificates for (CN system:node:NAME, O system:nodes).
    #[arg(long, value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Replace certificates that exist already (the CA is always kept).
    #[arg(long)]
    pub force: bool,
}

/// The client identities every cluster has: file name, user (CN), groups (O).
const IDENTITIES: &[(&str, &str, &[&str])] = &[
    ("admin", "admin", &["system:masters"]),
    ("kube-controller-manager", "system:kube-controller-manager", &[]),
    ("kube-scheduler", "system:kube-scheduler", &[]),
    ("kube-proxy", "system:kube-proxy", &[]),
    ("berth-dns", "system:berth-dns", &[]),
    // The apiserver's identity towards kubelets, the only client their endpoint accepts.
    ("apiserver-kubelet-client", "system:apiserver", &["system:masters"]),
];

pub fn run(args: CertsArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("cannot create {}", args.dir.display()))?;
    let ca_cert = args.dir.join("ca.crt");
    let ca_key = args.dir.join("ca.key");
    let ca = if ca_cert.exists() && ca_key.exists() {
        let cert = std::fs::read_to_string(&ca_cert).with_context(|| format!("cannot read {}", ca_cert.display()))?;
        let key = std::fs::read_to_string(&ca_key).with_context(|| format!("cannot read {}", ca_key.display()))?;
        Ca::from_pem(&cert, &key).with_context(|| format!("{} is not a usable CA", ca_cert.display()))?
    } else {
        let ca = Ca::generate("berth-ca")?;
        write(&ca_cert, ca.cert_pem(), false)?;
        write(&ca_key, ca.key_pem(), true)?;
        out(&format!("wrote {}\n", ca_cert.display()));
        ca
    };
    let mut made = Vec::new();
    let mut issue = |name: &str, cn: &str, orgs: &[&str], sans: &[String], usage: Usage| -> Result<()> {
        let cert = args.dir.join(format!("{name}.crt"));
        if cert.exists() && !args.force {
            return Ok(());
        }
        let issued: Issued = ca.issue(cn, orgs, sans, usage).with_context(|| format!("cannot issue {name}"))?;
        write(&cert, &issued.cert_pem, false)?;
        write(&args.dir.join(format!("{name}.key")), &issued.key_pem, true)?;
        made.push(format!("{name} ({cn})"));
        Ok(())
    };
    issue("apiserver", "berth-apiserver", &[], &args.hosts, Usage::Server)?;
    for (name, cn, orgs) in IDENTITIES {
        issue(name, cn, orgs, &[], Usage::Client)?;
    }
    for node in &args.nodes {
        let mut sans = args.hosts.clone();
        sans.push(node.clone());
        issue(&format!("node-{node}"), &format!("system:node:{node}"), &["system:nodes"], &sans, Usage::Both)?;
    }
    for m in &made {
        out(&format!("issued {m}\n"));
    }
    let d = args.dir.display();
    out(&format!(
        "\nberth-apiserver --tls-cert-file {d}/apiserver.crt --tls-private-key-file {d}/apiserver.key --client-ca-file {d}/ca.crt \
         --kubelet-client-certificate {d}/apiserver-kubelet-client.crt --kubelet-client-key {d}/apiserver-kubelet-client.key \
         --kubelet-certificate-authority {d}/ca.crt ...\n\
         berth-kubelet --node-name NODE --tls-cert-file {d}/node-NODE.crt --tls-private-key-file {d}/node-NODE.key --client-ca-file {d}/ca.crt ...\n\
         berthctl --server https://{host}:6443 --ca-file {d}/ca.crt --client-certificate {d}/admin.crt --client-key {d}/admin.key get nodes\n",
        host = args.hosts.first().map(String::as_str).unwrap_or("127.0.0.1")
    ));
    Ok(())
}

/// Writes a file; keys are readable by their owner only.
fn write(path: &Path, text: &str, private: bool) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
