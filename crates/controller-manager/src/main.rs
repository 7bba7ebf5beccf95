//! berth-controller-manager: parses flags, starts logging, and runs the
//! controllers until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use berth_base::duration::parse_duration;
use berth_base::telemetry::{self, LogArgs};
use berth_client::ConnectArgs;
use berth_controller_manager::node::cidr::Cidr;
use berth_controller_manager::service::pool::Pool;
use berth_controller_manager::{Config, LeaderSettings, Selection, endpoints, gc, namespace, node, replication, resourcequota, service};
use clap::Parser;

/// Runs the controllers that drive the cluster towards its declared state.
#[derive(Parser, Debug)]
#[command(name = "berth-controller-manager", version)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    log: LogArgs,
    /// Controllers to run: `*` for all, names to choose (replication,
    /// endpoints, namespace, garbagecollector, node, nodeipam,
    /// resourcequota, service), `-name` to leave one out.
    #[arg(long, default_value = "*", value_parser = Selection::parse)]
    controllers: Selection,
    /// Where /healthz, /livez, /readyz and /metrics are served.
    #[arg(long, default_value = "127.0.0.1:10257")]
    health_listen: SocketAddr,
    /// Run only while holding the leader Lease (kube-system/berth-controller-manager).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_elect_lease_duration: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    leader_elect_renew_deadline: Duration,
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    leader_elect_retry_period: Duration,
    /// How often informers re-announce every cached object.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    min_resync_period: Duration,
    /// ReplicationControllers synced at once.
    #[arg(long, default_value_t = 5)]
    concurrent_rc_syncs: usize,
    /// Services whose Endpoints are synced at once.
    #[arg(long, default_value_t = 5)]
    concurrent_endpoint_syncs: usize,
    /// Namespaces emptied at once.
    #[arg(long, default_value_t = 5)]
    concurrent_namespace_syncs: usize,
    /// Objects the garbage collector processes at once.
    #[arg(long, default_value_t = 10)]
    concurrent_gc_syncs: usize,
    /// ResourceQuotas recomputed at once.
    #[arg(long, default_value_t = 5)]
    concurrent_resource_quota_syncs: usize,
    /// How often every ResourceQuota is recomputed regardless of changes.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    resource_quota_sync_period: Duration,
    /// How often every node's heartbeats are checked.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    node_monitor_period: Duration,
    /// Silence after which a node is marked Ready=Unknown and tainted unreachable.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    node_monitor_grace_period: Duration,
    /// Silence allowed to a node that never reported.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    node_startup_grace_period: Duration,
    /// How long a node may be not ready before its pods are evicted.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pod_eviction_timeout: Duration,
    /// Nodes whose pods are evicted per second in a healthy zone.
    #[arg(long, default_value_t = 0.1)]
    node_eviction_rate: f64,
    /// Nodes whose pods are evicted per second when a large zone is mostly unhealthy.
    #[arg(long, default_value_t = 0.01)]
    secondary_node_eviction_rate: f64,
    /// Fraction of not-ready nodes from which a zone counts as unhealthy.
    #[arg(long, default_value_t = 0.55)]
    unhealthy_zone_threshold: f64,
    /// Zones of at most this many nodes stop evicting when unhealthy.
    #[arg(long, default_value_t = 50)]
    large_cluster_size_threshold: usize,
    /// Allocate each node's podCIDR from --cluster-cidr.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    allocate_node_cidrs: bool,
    /// The pods' network, split into one podCIDR per node.
    #[arg(long, default_value = "172.30.0.0/16")]
    cluster_cidr: Cidr,
    /// The prefix length of each node's podCIDR.
    #[arg(long, default_value_t = 24)]
    node_cidr_mask_size: u8,
    /// Addresses for LoadBalancer services: a CIDR or a range a.b.c.d-e.f.g.h,
    /// served on this host (the built-in host provider).
    #[arg(long)]
    lb_address_pool: Option<Pool>,
    /// Interface the host provider adds pool addresses to when they are not local yet.
    #[arg(long, default_value = "lo")]
    lb_interface: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(&cli.log);
    let config = Config {
        client: (&cli.connect).into(),
        controllers: cli.controllers,
        leader: LeaderSettings {
            enabled: cli.leader_elect,
            lease_duration: cli.leader_elect_lease_duration,
            renew_deadline: cli.leader_elect_renew_deadline,
            retry_period: cli.leader_elect_retry_period,
            ..Default::default()
        },
        resync: cli.min_resync_period,
        replication: replication::Settings { workers: cli.concurrent_rc_syncs, ..Default::default() },
        endpoints: endpoints::Settings { workers: cli.concurrent_endpoint_syncs },
        namespace: namespace::Settings { workers: cli.concurrent_namespace_syncs, ..Default::default() },
        gc: gc::Settings { workers: cli.concurrent_gc_syncs },
        node: node::Settings {
            monitor_period: cli.node_monitor_period,
            grace_period: cli.node_monitor_grace_period,
            startup_grace_period: cli.node_startup_grace_period,
            pod_eviction_timeout: cli.pod_eviction_timeout,
            eviction_rate: cli.node_eviction_rate,
            secondary_eviction_rate: cli.secondary_node_eviction_rate,
            unhealthy_zone_threshold: cli.unhealthy_zone_threshold,
            large_cluster_threshold: cli.large_cluster_size_threshold,
            cluster_cidr: cli.allocate_node_cidrs.then_some(cli.cluster_cidr),
            node_cidr_mask_size: cli.node_cidr_mask_size,
        },
        quota: resourcequota::Settings { workers: cli.concurrent_resource_quota_syncs, full_resync: cli.resource_quota_sync_period },
        service: service::Settings { pool: cli.lb_address_pool, interface: cli.lb_interface, ..Default::default() },
    };
    let health = tokio::net::TcpListener::bind(cli.health_listen)
        .await
        .with_context(|| format!("cannot listen on --health-listen {}", cli.health_listen))?;
    // Serving from here on: READY=1 (and watchdog pings) for a Type=notify
    // unit, STOPPING=1 once SIGTERM arrives.
    let (_watchdog, shutdown) = berth_base::systemd::serving();
    berth_controller_manager::run(config, health, shutdown).await.context("berth-controller-manager failed")
}
