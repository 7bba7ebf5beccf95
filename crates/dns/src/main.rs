//! berth-dns: parses flags, starts logging, binds the DNS and health sockets and runs the cluster DNS server.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use berth_base::telemetry::{self, LogArgs};
use berth_client::{Client, ClientConfig, ConnectArgs};
use clap::Parser;

/// The Berth cluster DNS server: answers Services' names (Kubernetes' DNS specification) and forwards the rest.
#[derive(Parser, Debug)]
#[command(name = "berth-dns", version)]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Where DNS is served, UDP and TCP.
    #[arg(long, default_value = berth_dns::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// The cluster domain; names under it are answered from Services and Endpoints.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Other names are forwarded to this file's nameservers ("" to refuse them).
    #[arg(long, default_value = "/etc/resolv.conf")]
    resolv_conf: String,
    /// How many forwarded answers are cached (honouring their TTLs).
    #[arg(long, default_value_t = 4096)]
    forward_cache_size: usize,
    /// The cluster DNS Service's address, answered for ns.dns.<cluster-domain>.
    #[arg(long, default_value = "10.96.0.10")]
    cluster_dns_ip: Ipv4Addr,
    /// UDP queries per second answered per client, the excess dropped and counted (0: no limit). A client is a
    /// source address, or, for queries from this host's own addresses (relayed by berth-proxy's userspace mode), a source socket.
    #[arg(long, default_value_t = berth_dns::DEFAULT_MAX_QUERIES_PER_CLIENT)]
    max_queries_per_client: u32,
    /// Where to serve /healthz, /livez, /readyz and /metrics.
    #[arg(long, default_value = berth_dns::DEFAULT_HEALTH_LISTEN)]
    health_listen: SocketAddr,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(&args.log);
    let config = berth_dns::Config {
        listen: args.listen,
        cluster_domain: args.cluster_domain.clone(),
        resolv_conf: Some(args.resolv_conf.clone()).filter(|p| !p.is_empty()).map(PathBuf::from),
        forward_cache_size: args.forward_cache_size,
        cluster_dns_ip: Some(args.cluster_dns_ip),
        max_queries_per_client: args.max_queries_per_client,
    };
    let client = Client::connect_lazy(&ClientConfig::from(&args.connect)).with_context(|| format!("--server {}", args.connect.server))?;
    let sockets = berth_dns::bind(args.listen).await.context("--listen")?;
    let health = tokio::net::TcpListener::bind(args.health_listen)
        .await
        .with_context(|| format!("cannot listen on --health-listen {}", args.health_listen))?;
    // Serving from here on: READY=1 (and watchdog pings) for a Type=notify
    // unit, STOPPING=1 once SIGTERM arrives.
    let (_watchdog, shutdown) = berth_base::systemd::serving();
    berth_dns::run(config, client, sockets, health, shutdown).await.context("berth-dns")?;
    Ok(())
}
