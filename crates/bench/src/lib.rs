//! Berth's benchmark program: drives a running apiserver (and, for
//! comparison, etcd) with a fixed workload and reports each figure with its
//! unit, as a table or as one JSON object (DESIGN.md §7).
//!
//! # Layout
//! - [`scenarios`]: one module per scenario (`api`, `watch`, `store`, ...), each turning its
//!   flags into one run's [`report::Figures`].
//! - [`phase`]: runs N operations with C concurrent workers under a deadline
//!   and records their latencies in an HdrHistogram.
//! - [`report`]: medians (and min/max) over `--repeat` runs, printed as a
//!   table or JSON.
//! - [`etcd`]: the generated etcd `KV.Put` client.
//! - [`rest`]: a Kubernetes REST/JSON client over HTTP/2 (`api --rest`).
//! - [`netns`]: sockets inside a pod's network namespace (`dns`).
//! - [`procfs`]: a process's resident memory and CPU time from `/proc`.

pub mod etcd;
pub mod netns;
pub mod phase;
pub mod procfs;
pub mod report;
pub mod rest;
pub mod scenarios;

use std::time::Duration;

use anyhow::Context as _;
use berth_base::duration::parse_duration;
use berth_base::telemetry::LogArgs;
use berth_client::ClientConfig;
use clap::{Parser, Subcommand};
use tokio::time::Instant;
use tracing::info;

use crate::report::Report;

/// Benchmarks a Berth control plane: `berth-bench SCENARIO --server URL [--json]`.
#[derive(Parser, Debug)]
#[command(name = "berth-bench", version)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
    #[command(flatten)]
    pub common: Common,
}

/// The scenarios; each reports its own figures.
#[derive(Subcommand, Debug, Clone)]
pub enum Scenario {
    /// Create, get, list, update and delete ~1 KiB ConfigMaps with concurrent
    /// clients; with --etcd, the same creates as durable etcd puts.
    Api(scenarios::api::Args),
    /// Open many watches on one namespace, write paced events and measure
    /// how long each takes to reach every watcher.
    Watch(scenarios::watch::Args),
    /// Bind M pods to N kubelet-less nodes with the real scheduler: binds
    /// per second and latency from creation to binding.
    Schedule(scenarios::schedule::Args),
    /// Pod startup latency on one real node (kubelet and Docker).
    PodStartup(scenarios::pod_startup::Args),
    /// An RC of many replicas on hollow nodes: time until all run, and gone.
    Converge(scenarios::converge::Args),
    /// berth-proxy per mode: throughput and latency against direct, and
    /// the time to sync thousands of services.
    Proxy(scenarios::proxy::Args),
    /// berth-dns from inside a pod: queries per second and p99 for cluster
    /// and forwarded names beside a host resolver, and how soon a new
    /// Service is answered.
    Dns(scenarios::dns::Args),
    /// Durable creates straight into the sled store (no server) at several
    /// numbers of concurrent writers: CPU per create and writes per flush.
    Store(scenarios::store::Args),
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::Api(_) => "api",
            Scenario::Watch(_) => "watch",
            Scenario::Schedule(_) => "schedule",
            Scenario::PodStartup(_) => "pod-startup",
            Scenario::Converge(_) => "converge",
            Scenario::Proxy(_) => "proxy",
            Scenario::Store(_) => "store",
            Scenario::Dns(_) => "dns",
        }
    }
}

/// Flags every scenario shares.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// API server address, e.g. http://127.0.0.1:6443 (for `api`, optional
    /// when --etcd is given).
    #[arg(long, env = "BERTH_SERVER", global = true)]
    pub server: Option<String>,
    /// Bearer token.
    #[arg(long, env = "BERTH_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print one JSON object whose keys name each figure with its unit.
    #[arg(long, global = true)]
    pub json: bool,
    /// Run the measurement N times and report the median of each figure.
    #[arg(long, default_value_t = 1, global = true, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Give up after this long (all repetitions together); cleanup gets a
    /// short grace period on top.
    #[arg(long, default_value = "300s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
    #[command(flatten)]
    pub log: LogArgs,
}

/// What every scenario run gets: the shared flags and the deadline.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub common: Common,
    /// When measurement must stop.
    pub deadline: Instant,
}

/// How long cleanup may take beyond the deadline.
pub const CLEANUP_GRACE: Duration = Duration::from_secs(30);

impl Ctx {
    /// The API server's connection settings; the default server when none was given.
    pub fn client_config(&self) -> ClientConfig {
        let server = self.common.server.clone().unwrap_or_else(|| berth_client::config::DEFAULT_SERVER.to_string());
        ClientConfig { server, token: self.common.token.clone(), ..ClientConfig::default() }
    }

    /// Cleanup's own deadline: a little longer than measurement's, so that
    /// a run that timed out still removes what it created.
    pub fn cleanup_deadline(&self) -> Instant {
        std::cmp::max(self.deadline, Instant::now()) + CLEANUP_GRACE
    }
}

/// Runs the scenario `--repeat` times and prints the report.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let timeout = cli.common.timeout;
    let ctx = Ctx { common: cli.common.clone(), deadline: Instant::now() + timeout };
    // The loops stop at the deadline on their own; this is the backstop.
    let report = tokio::time::timeout(timeout + 2 * CLEANUP_GRACE, measure(&ctx, &cli.scenario))
        .await
        .with_context(|| format!("berth-bench {} did not finish within --timeout {timeout:?}", cli.scenario.name()))??;
    if ctx.common.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

async fn measure(ctx: &Ctx, scenario: &Scenario) -> anyhow::Result<Report> {
    let repeat = ctx.common.repeat;
    let mut runs = Vec::with_capacity(repeat as usize);
    for i in 1..=repeat {
        info!(scenario = scenario.name(), run = i, of = repeat, "starting run");
        let load = procfs::loadavg_1m();
        let mut figures = match scenario {
            Scenario::Api(a) => scenarios::api::run(ctx, a).await,
            Scenario::Watch(a) => scenarios::watch::run(ctx, a).await,
            Scenario::Schedule(a) => scenarios::schedule::run(ctx, a).await,
            Scenario::PodStartup(a) => scenarios::pod_startup::run(ctx, a).await,
            Scenario::Converge(a) => scenarios::converge::run(ctx, a).await,
            Scenario::Proxy(a) => scenarios::proxy::run(ctx, a).await,
            Scenario::Store(a) => scenarios::store::run(ctx, a).await,
            Scenario::Dns(a) => scenarios::dns::run(ctx, a).await,
        }
        .with_context(|| format!("run {i} of {repeat} of the {} scenario failed", scenario.name()))?;
        // Other work on the host skews every figure; say how busy it was.
        if let Some(load) = load {
            figures.measure("host_loadavg_1m", load);
        }
        figures.count("host_cpus", std::thread::available_parallelism().map_or(0, |n| n.get() as u64));
        runs.push(figures);
    }
    Ok(Report::new(scenario.name(), runs))
}
