//! berth-scheduler: parses flags, starts logging and runs the scheduler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use berth_base::duration::parse_duration;
use berth_base::telemetry::{self, LogArgs};
use berth_client::{ClientConfig, ConnectArgs};
use berth_runtime::leader::LeaderConfig;
use berth_scheduler::config::Profile;
use clap::Parser;

/// Binds pending pods to the best node.
#[derive(Parser, Debug)]
#[command(name = "berth-scheduler", version)]
struct Args {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Configuration file (YAML): score weights, percentageOfNodesToScore, loadAware.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Run only while holding the leader lease, so that several instances
    /// can run active/standby (`--leader-elect=false` to schedule alone).
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// How long a lease is valid without renewal; a standby takes over after it.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_elect_lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    leader_elect_renew_deadline: Duration,
    /// How often candidates try to take the lease and the leader renews it.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    leader_elect_retry_period: Duration,
    /// Name of the Lease object.
    #[arg(long, default_value = "berth-scheduler")]
    leader_elect_resource_name: String,
    /// Namespace of the Lease object.
    #[arg(long, default_value = "kube-system")]
    leader_elect_resource_namespace: String,
    /// Where to serve /healthz, /livez, /readyz and /metrics.
    #[arg(long, default_value = "127.0.0.1:10259")]
    health_listen: SocketAddr,
    /// Schedule the pods whose spec.schedulerName is this.
    #[arg(long, default_value = berth_scheduler::DEFAULT_SCHEDULER_NAME)]
    scheduler_name: String,
    #[command(flatten)]
    log: LogArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(&args.log);
    let profile = match &args.config {
        Some(path) => Profile::load(path).context("invalid --config")?,
        None => Profile::default(),
    };
    anyhow::ensure!(
        args.leader_elect_renew_deadline < args.leader_elect_lease_duration,
        "--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration"
    );
    let leader_election = args.leader_elect.then(|| {
        let mut l = LeaderConfig::new(&args.leader_elect_resource_name);
        l.namespace = args.leader_elect_resource_namespace.clone();
        l.lease_duration = args.leader_elect_lease_duration;
        l.renew_deadline = args.leader_elect_renew_deadline;
        l.retry_period = args.leader_elect_retry_period;
        l
    });
    let listener = tokio::net::TcpListener::bind(args.health_listen)
        .await
        .with_context(|| format!("cannot listen on --health-listen {}", args.health_listen))?;
    let config = berth_scheduler::Config {
        client: ClientConfig::from(&args.connect),
        scheduler_name: args.scheduler_name,
        profile,
        leader_election,
    };
    berth_scheduler::run(config, listener, berth_base::signal::shutdown()).await.context("berth-scheduler stopped")
}
