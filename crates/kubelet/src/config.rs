//! The kubelet's settings, as its flags give them, and the parsing of the
//! flags' compound values (`--kube-reserved cpu=100m,memory=256Mi`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use berth_client::ClientConfig;

/// The cluster's shared bridge network (DESIGN.md §5): every node's pods
/// get addresses from their node's slice (podCIDR) of it.
pub const CLUSTER_NETWORK: &str = "berth";
/// The cluster network's subnet; each node gets a /24 of it.
pub const CLUSTER_CIDR: &str = "172.30.0.0/16";
/// The image of the container that holds a pod's network namespace
/// (`deploy/test-image.sh` builds it).
pub const PAUSE_IMAGE: &str = "berth/pause:1";
/// The cluster DNS: the tenth address of the default service CIDR
/// 10.96.0.0/16 (the `kube-dns` Service in `kube-system`).
pub const CLUSTER_DNS: &str = "10.96.0.10";
pub const CLUSTER_DOMAIN: &str = "cluster.local";
/// The node's resolvers, for dnsPolicy Default and the host's search domains.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Which container runtime runs the pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RuntimeKind {
    /// The Docker engine, through its local socket.
    #[default]
    Docker,
    /// Nothing runs: pods are reported Running with made-up addresses. For
    /// hollow nodes in scale tests of the control plane only.
    Fake,
}

/// Everything the kubelet needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// How to reach the API server.
    pub client: ClientConfig,
    /// The Node this kubelet registers and whose pods it runs.
    pub node_name: String,
    /// Whether to create the Node object (false: it must exist).
    pub register_node: bool,
    /// Labels added to the Node at registration.
    pub node_labels: BTreeMap<String, String>,
    /// The node's address: reported as InternalIP and pods' hostIP.
    pub node_ip: String,
    /// The node's slice of the cluster network, when no node controller
    /// assigns one.
    pub pod_cidr: Option<String>,
    /// Pod data (volumes) and the logs of deleted pods live here.
    pub root_dir: PathBuf,
    /// How often the Lease is renewed and the node status computed.
    pub node_status_update_frequency: Duration,
    /// The node status is written at least this often even when nothing changed.
    pub node_status_report_frequency: Duration,
    /// Resources held back from pods for the system (`cpu`, `memory`).
    pub kube_reserved: BTreeMap<String, String>,
    /// The most pods this node runs.
    pub max_pods: u32,
    pub runtime: RuntimeKind,
    /// The cluster's bridge network and its subnet.
    pub cluster_network: String,
    pub cluster_cidr: String,
    pub pause_image: String,
    /// How often every pod is synced even when nothing announced a change
    /// (e.g. to refresh mounted secrets and configMaps).
    pub sync_frequency: Duration,
    /// How often container usage is sampled.
    pub housekeeping_interval: Duration,
    /// How long the logs of a deleted pod are kept on the node.
    pub deleted_pod_logs_ttl: Duration,
    /// With the fake runtime: run this many hollow nodes named `NAME-0`..`NAME-(N-1)`.
    pub hollow_nodes: u32,
    /// When the node reports MemoryPressure, DiskPressure and PIDPressure.
    pub eviction_hard: crate::host::Thresholds,
    /// Serve the kubelet API over TLS (none: plaintext).
    pub api_tls: Option<ApiTls>,
    /// The nameservers of ClusterFirst pods (empty: none, such pods use the node's).
    pub cluster_dns: Vec<IpAddr>,
    /// The cluster's DNS domain: pods search `<namespace>.svc.<domain>`.
    pub cluster_domain: String,
    /// The resolv.conf of the node's resolvers (None: the node has none to give).
    pub resolv_conf: Option<PathBuf>,
}

/// TLS of the kubelet API (`--tls-cert-file`, `--tls-private-key-file`,
/// `--client-ca-file`).
#[derive(Debug, Clone)]
pub struct ApiTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// Require client certificates signed by this CA, and serve only those
    /// of group `system:masters` (the apiserver's `apiserver-kubelet-client`).
    pub client_ca_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client: ClientConfig::default(),
            node_name: String::new(),
            register_node: true,
            node_labels: BTreeMap::new(),
            node_ip: "127.0.0.1".into(),
            pod_cidr: None,
            root_dir: PathBuf::from("/var/lib/berth/kubelet"),
            node_status_update_frequency: Duration::from_secs(10),
            node_status_report_frequency: Duration::from_secs(60),
            kube_reserved: parse_key_values("cpu=100m,memory=256Mi").unwrap_or_default(),
            max_pods: 110,
            runtime: RuntimeKind::Docker,
            cluster_network: CLUSTER_NETWORK.into(),
            cluster_cidr: CLUSTER_CIDR.into(),
            pause_image: PAUSE_IMAGE.into(),
            sync_frequency: Duration::from_secs(10),
            housekeeping_interval: Duration::from_secs(10),
            deleted_pod_logs_ttl: Duration::from_secs(3600),
            hollow_nodes: 0,
            eviction_hard: crate::host::Thresholds::default(),
            api_tls: None,
            cluster_dns: parse_ips(CLUSTER_DNS).unwrap_or_default(),
            cluster_domain: CLUSTER_DOMAIN.into(),
            resolv_conf: Some(PathBuf::from(RESOLV_CONF)),
        }
    }
}

/// Parses `k=v,k2=v2` (empty: nothing).
pub fn parse_key_values(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("{part:?} is not key=value"))?;
        if k.trim().is_empty() {
            return Err(format!("{part:?} has an empty key"));
        }
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(out)
}

/// Parses `--cluster-dns`: IP addresses separated by commas (empty: none).
pub fn parse_ips(s: &str) -> Result<Vec<IpAddr>, String> {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(|p| p.parse().map_err(|_| format!("{p:?} is not an IP address"))).collect()
}

/// Parses `--cluster-domain`: a DNS name without a trailing dot.
pub fn parse_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_end_matches('.');
    let problems = berth_api::names::dns1123_subdomain(d);
    if problems.is_empty() { Ok(d.to_string()) } else { Err(problems.join("; ")) }
}

/// Parses `--kube-reserved`: only `cpu` and `memory`, each a valid quantity.
pub fn parse_reserved(s: &str) -> Result<BTreeMap<String, String>, String> {
    let kv = parse_key_values(s)?;
    for (k, v) in &kv {
        match k.as_str() {
            "cpu" => {
                berth_api::quantity::parse_cpu_millis(v).map_err(|e| format!("cpu={v}: {e}"))?;
            }
            "memory" | "ephemeral-storage" => {
                berth_api::quantity::parse_bytes(v).map_err(|e| format!("{k}={v}: {e}"))?;
            }
            other => return Err(format!("unknown resource {other:?}: use cpu, memory or ephemeral-storage")),
        }
    }
    Ok(kv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_parse_reserved_resources() {
        let r = parse_reserved("cpu=100m, memory=256Mi").unwrap();
        assert_eq!(r.get("cpu").map(String::as_str), Some("100m"));
        assert_eq!(r.get("memory").map(String::as_str), Some("256Mi"));
        assert!(parse_reserved("gpu=1").is_err());
        assert!(parse_reserved("cpu=lots").is_err());
        assert!(parse_reserved("").unwrap().is_empty());
    }

    #[test]
    fn should_parse_cluster_dns_addresses_and_domain() {
        assert_eq!(parse_ips("10.96.0.10, fd00::a").unwrap(), ["10.96.0.10".parse::<IpAddr>().unwrap(), "fd00::a".parse().unwrap()]);
        assert!(parse_ips("").unwrap().is_empty());
        assert!(parse_ips("10.96.0.300").is_err());
        assert_eq!(parse_domain("cluster.local.").unwrap(), "cluster.local");
        assert!(parse_domain("Cluster_Local").is_err());
    }
}
