//! berth-apiserver: parses flags, starts logging and runs the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_client::duration::parse_duration;
use berth_client::telemetry::{self, LogArgs};
use clap::Parser;

/// The Berth API server: the only door to the cluster state.
#[derive(Parser, Debug)]
#[command(name = "berth-apiserver", version)]
struct Args {
    /// Address to serve the API (gRPC) and /healthz, /metrics on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory of the sled store.
    #[arg(long, default_value = "/var/lib/berth/apiserver")]
    data_dir: PathBuf,
    /// Number of recent events the watch history keeps.
    #[arg(long, default_value_t = 10_000)]
    watch_history: usize,
    /// How often watches get a BOOKMARK event.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    watch_bookmark_interval: Duration,
    /// The range ClusterIPs are allocated from.
    #[arg(long, default_value = berth_apiserver::registry::DEFAULT_SERVICE_CIDR)]
    service_cidr: String,
    /// The range NodePorts are allocated from.
    #[arg(long, default_value = "30000-32767")]
    service_node_port_range: String,
    /// sled's page cache, in MiB.
    #[arg(long, default_value_t = 64)]
    storage_cache_mib: u64,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(&args.log);
    if !args.listen.ip().is_loopback() {
        bail!(
            "refusing to serve plaintext on {}: without TLS the API is served only on a loopback address (use --listen 127.0.0.1:PORT)",
            args.listen
        );
    }
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("cannot create --data-dir {}", args.data_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    let config = berth_apiserver::Config {
        data_dir: args.data_dir,
        history: args.watch_history,
        bookmark_interval: args.watch_bookmark_interval,
        cache_capacity_bytes: args.storage_cache_mib * 1024 * 1024,
        service_cidr: args.service_cidr,
        node_port_range: args.service_node_port_range,
    };
    berth_apiserver::run(config, listener, berth_client::signal::shutdown()).await
}
