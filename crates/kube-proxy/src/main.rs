//! berth-proxy: parses flags, starts logging and runs the proxy (or, with `--cleanup`, removes what it installed).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use berth_base::duration::parse_duration;
use berth_base::telemetry::{self, LogArgs};
use berth_client::{Client, ClientConfig, ConnectArgs};
use berth_proxy::{Cidr, Config, IptablesBackend, Mode};
use clap::Parser;

/// The Berth service proxy: forwards each Service's ClusterIP and NodePorts to its ready endpoints.
#[derive(Parser, Debug)]
#[command(name = "berth-proxy", version)]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
    /// How service traffic is forwarded.
    #[arg(long, value_enum, default_value_t = Mode::Userspace)]
    mode: Mode,
    /// The shortest time between two syncs; changes in between are batched.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    min_sync_period: Duration,
    /// How often everything is rewritten from scratch.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    sync_period: Duration,
    /// Remove everything berth-proxy installed (with these names) and exit.
    #[arg(long)]
    cleanup: bool,
    /// Address to serve /healthz, /livez, /readyz and /metrics on.
    #[arg(long, default_value = "127.0.0.1:10256")]
    health_listen: SocketAddr,
    /// The interface that holds the VIPs (created if missing; at most 15 characters).
    #[arg(long, default_value = berth_proxy::vip::DEFAULT_INTERFACE)]
    interface: String,
    /// Prefix of the iptables chains (iptables mode).
    #[arg(long, default_value = "KUBE")]
    chain_prefix: String,
    /// The nftables table, family ip (nftables mode).
    #[arg(long, default_value = "berth")]
    table_name: String,
    /// Which iptables the iptables mode drives.
    #[arg(long, value_enum, default_value_t = IptablesBackend::Nft)]
    iptables_backend: IptablesBackend,
    /// Addresses NodePorts answer on, comma-separated. Loopback addresses are
    /// served by relays in this process in every mode; others by the mode.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1")]
    nodeport_addresses: Vec<Ipv4Addr>,
    /// The pods' network: traffic to a VIP from outside it is masqueraded
    /// ("" to masquerade nothing but NodePort traffic).
    #[arg(long, default_value = "172.30.0.0/16")]
    cluster_cidr: String,
    /// The fwmark bit that marks packets for masquerading.
    #[arg(long, default_value_t = 14)]
    masquerade_bit: u8,
    /// How long a UDP relay session lives without traffic.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    udp_idle_timeout: Duration,
    #[command(flatten)]
    log: LogArgs,
}

impl Args {
    fn config(&self) -> anyhow::Result<Config> {
        let cluster_cidr = if self.cluster_cidr.trim().is_empty() {
            None
        } else {
            Some(self.cluster_cidr.parse::<Cidr>().map_err(anyhow::Error::msg).context("--cluster-cidr")?)
        };
        let config = Config {
            mode: self.mode,
            min_sync_period: self.min_sync_period,
            sync_period: self.sync_period,
            interface: self.interface.clone(),
            chain_prefix: self.chain_prefix.clone(),
            table: self.table_name.clone(),
            iptables_backend: self.iptables_backend,
            nodeport_addresses: self.nodeport_addresses.clone(),
            cluster_cidr,
            masquerade_bit: self.masquerade_bit,
            udp_idle_timeout: self.udp_idle_timeout,
        };
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(config)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(&args.log);
    let config = args.config()?;
    if args.cleanup {
        let exec = Arc::new(berth_proxy::exec::System);
        let result = tokio::task::spawn_blocking(move || berth_proxy::cleanup(&config, exec)).await.context("cleanup task")?;
        if let Err(errors) = result {
            bail!("cleanup incomplete:\n  {}", errors.join("\n  "));
        }
        return Ok(());
    }
    let client = Client::connect_lazy(&ClientConfig::from(&args.connect)).with_context(|| format!("--server {}", args.connect.server))?;
    let health = tokio::net::TcpListener::bind(args.health_listen)
        .await
        .with_context(|| format!("cannot listen on --health-listen {}", args.health_listen))?;
    // Serving from here on: READY=1 (and watchdog pings) for a Type=notify
    // unit, STOPPING=1 once SIGTERM arrives.
    let (_watchdog, shutdown) = berth_base::systemd::serving();
    berth_proxy::run(config, client, health, shutdown).await.context("berth-proxy")?;
    Ok(())
}
