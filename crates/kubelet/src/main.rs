//! berth-kubelet: parses the flags, starts logging and runs the kubelet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use berth_base::duration::parse_duration;
use berth_base::telemetry::{self, LogArgs};
use berth_client::ConnectArgs;
use berth_kubelet::config::{self, ApiTls, Config, RuntimeKind};
use clap::{ArgAction, Parser};

/// The node agent: registers a Node and runs the pods bound to it on the
/// Docker engine.
#[derive(Parser, Debug)]
#[command(name = "berth-kubelet", version)]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    log: LogArgs,
    /// The name of the Node to register and whose pods to run (default: the hostname).
    #[arg(long)]
    node_name: Option<String>,
    /// Create the Node object (false: it must exist).
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    register_node: bool,
    /// Labels to add to the Node at registration: k=v,k2=v2.
    #[arg(long, default_value = "", value_parser = config::parse_key_values)]
    node_labels: BTreeMap<String, String>,
    /// The node's address: reported as its InternalIP and the pods' hostIP.
    #[arg(long, default_value = "127.0.0.1")]
    node_ip: String,
    /// The node's slice of the cluster network where no node controller assigns one, e.g. 172.30.1.0/24.
    #[arg(long)]
    pod_cidr: Option<String>,
    /// Where pod data and deleted pods' logs live.
    #[arg(long, default_value = "/var/lib/berth/kubelet")]
    root_dir: PathBuf,
    /// How often the Lease is renewed and the node status computed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    node_status_update_frequency: Duration,
    /// The node status is written at least this often.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    node_status_report_frequency: Duration,
    /// Resources held back from pods: cpu=100m,memory=256Mi.
    #[arg(long, default_value = "cpu=100m,memory=256Mi", value_parser = config::parse_reserved)]
    kube_reserved: BTreeMap<String, String>,
    /// The most pods this node runs.
    #[arg(long, default_value_t = 110)]
    max_pods: u32,
    /// The container runtime: docker, or fake (hollow nodes for scale tests only).
    #[arg(long, value_enum, default_value_t = RuntimeKind::Docker)]
    runtime: RuntimeKind,
    /// With --runtime fake: run N hollow nodes named NAME-0..NAME-(N-1) in this process.
    #[arg(long, default_value_t = 0)]
    hollow_nodes: u32,
    /// Where /healthz, /livez, /readyz and /metrics are served.
    #[arg(long, default_value = "127.0.0.1:10248")]
    health_listen: String,
    /// The address of the kubelet API (logs, exec, stats); default: the node IP.
    /// Without --client-ca-file it has no authentication: keep it on loopback or the node's address.
    #[arg(long)]
    address: Option<String>,
    /// Serve the kubelet API over TLS with this certificate (PEM; with --tls-private-key-file).
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    /// The private key of --tls-cert-file (PEM).
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    /// Require client certificates signed by this CA on the kubelet API, and
    /// serve only group system:masters (the apiserver's apiserver-kubelet-client).
    #[arg(long, requires = "tls_cert_file")]
    client_ca_file: Option<PathBuf>,
    /// The port of the kubelet API (0: any free port, reported in the Node's daemonEndpoints).
    #[arg(long, default_value_t = 10250)]
    port: u16,
    /// The cluster's shared Docker bridge network.
    #[arg(long, default_value = config::CLUSTER_NETWORK)]
    cluster_network: String,
    /// The cluster network's subnet.
    #[arg(long, default_value = config::CLUSTER_CIDR)]
    cluster_cidr: String,
    /// The image of the pods' sandbox ("pause") container.
    #[arg(long, default_value = config::PAUSE_IMAGE)]
    pause_image: String,
    /// How often every pod is synced even without a change.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    sync_frequency: Duration,
    /// How often container usage is sampled.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    housekeeping_interval: Duration,
    /// When the node reports pressure: memory.available<100Mi,nodefs.available<10%,pid.available<10%
    /// (Kubernetes' defaults; signals not named keep theirs).
    #[arg(long, default_value = "", value_parser = berth_kubelet::host::Thresholds::parse)]
    eviction_hard: berth_kubelet::host::Thresholds,
    /// How long a deleted pod's logs stay on the node (0: not kept).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    deleted_pod_logs_ttl: Duration,
    /// The cluster DNS server(s), IP[,IP], written as the nameservers of ClusterFirst pods ("": none;
    /// such pods then use the node's resolvers).
    #[arg(long, default_value = config::CLUSTER_DNS, value_parser = |s: &str| config::parse_ips(s).map(|_| s.to_string()))]
    cluster_dns: String,
    /// The cluster's DNS domain: ClusterFirst pods search NAMESPACE.svc.DOMAIN, svc.DOMAIN and DOMAIN.
    #[arg(long, default_value = config::CLUSTER_DOMAIN, value_parser = config::parse_domain)]
    cluster_domain: String,
    /// The resolv.conf whose resolvers dnsPolicy Default pods get and whose search domains ClusterFirst
    /// pods add ("": none). Name one with resolvers pods can reach: not systemd-resolved's 127.0.0.53
    /// (use /run/systemd/resolve/resolv.conf there).
    #[arg(long, default_value = config::RESOLV_CONF)]
    resolv_conf: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(&args.log);
    let node_name = args.node_name.clone().unwrap_or_else(berth_kubelet::host::hostname);
    let config = Config {
        client: (&args.connect).into(),
        node_name,
        register_node: args.register_node,
        node_labels: args.node_labels,
        node_ip: args.node_ip.clone(),
        pod_cidr: args.pod_cidr,
        root_dir: args.root_dir,
        node_status_update_frequency: args.node_status_update_frequency,
        node_status_report_frequency: args.node_status_report_frequency,
        kube_reserved: args.kube_reserved,
        max_pods: args.max_pods,
        runtime: args.runtime,
        cluster_network: args.cluster_network,
        cluster_cidr: args.cluster_cidr,
        pause_image: args.pause_image,
        sync_frequency: args.sync_frequency.max(Duration::from_millis(100)),
        housekeeping_interval: args.housekeeping_interval.max(Duration::from_millis(100)),
        deleted_pod_logs_ttl: args.deleted_pod_logs_ttl,
        hollow_nodes: args.hollow_nodes,
        eviction_hard: args.eviction_hard,
        api_tls: match (args.tls_cert_file, args.tls_private_key_file) {
            (Some(cert_file), Some(key_file)) => Some(ApiTls { cert_file, key_file, client_ca_file: args.client_ca_file }),
            _ => None,
        },
        cluster_dns: config::parse_ips(&args.cluster_dns).map_err(anyhow::Error::msg).context("--cluster-dns")?,
        cluster_domain: args.cluster_domain,
        resolv_conf: Some(args.resolv_conf).filter(|p| !p.is_empty()).map(PathBuf::from),
    };
    let health = tokio::net::TcpListener::bind(&args.health_listen)
        .await
        .with_context(|| format!("cannot listen on --health-listen {}", args.health_listen))?;
    let api = if args.hollow_nodes > 0 {
        None
    } else {
        let address = args.address.unwrap_or(args.node_ip);
        let addr = format!("{address}:{}", args.port);
        Some(tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("cannot listen on {addr} for the kubelet API"))?)
    };
    // Serving from here on: READY=1 (and watchdog pings) for a Type=notify
    // unit, STOPPING=1 once SIGTERM arrives.
    let (_watchdog, shutdown) = berth_base::systemd::serving();
    berth_kubelet::run(config, health, api, shutdown).await.context("berth-kubelet failed")
}
