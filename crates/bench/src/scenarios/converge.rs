//! The `converge` scenario: how fast the control plane converges. One
//! ReplicationController of R replicas (default 1,000) is created in a fresh
//! namespace on a cluster of hollow nodes (`berth-kubelet --runtime fake
//! --hollow-nodes 100`, with the scheduler and the controller-manager
//! running); a watch on the namespace times how long until every pod was
//! created, scheduled and Running. Then the RC is scaled to 0 and the watch
//! times how long until every pod is gone. With `--controller-manager-pid`,
//! the controller-manager's resident memory is read with every pod running
//! and again after the scale-down. The RC and its namespace are deleted
//! afterwards.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context as _, bail};
use berth_api::Resource;
use berth_api::pb::core::{Container, Node, ObjectMeta, Pod, PodSpec, PodTemplateSpec, ReplicationController, ReplicationControllerSpec};
use berth_base::duration::parse_duration;
use berth_client::{Client, DeleteParams, ListParams, WatchEvent};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{connect_pool, create_namespace, delete_namespace};
use crate::Ctx;
use crate::procfs;
use crate::report::Figures;

/// Flags of the `converge` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Replicas of the RC.
    #[arg(long, default_value_t = 1000)]
    pub replicas: i32,
    /// Ready nodes to wait for before starting (the hollow nodes).
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// The pods' image (hollow nodes run nothing; it only has to be valid).
    #[arg(long, default_value = "berth/busybox:1")]
    pub image: String,
    /// The controller-manager's process id, to report its resident memory.
    #[arg(long)]
    pub controller_manager_pid: Option<u32>,
    /// How long each phase (scale up, scale down) may take.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub wait: Duration,
}

/// What the watch has seen of the namespace's pods.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    existing: usize,
    scheduled: usize,
    running: usize,
    created_total: usize,
}

#[derive(Default, Clone, Copy)]
struct PodState {
    scheduled: bool,
    running: bool,
}

impl Counts {
    fn of(pods: &HashMap<String, PodState>, created_total: usize) -> Counts {
        Counts {
            existing: pods.len(),
            scheduled: pods.values().filter(|p| p.scheduled).count(),
            running: pods.values().filter(|p| p.running).count(),
            created_total,
        }
    }
}

pub async fn run(ctx: &Ctx, args: &Args) -> anyhow::Result<Figures> {
    anyhow::ensure!(args.replicas > 0, "--replicas must be at least 1");
    let clients = connect_pool(ctx, 2).await?;
    let client = clients[0].clone();
    wait_for_nodes(&client, args.nodes, ctx.deadline).await?;
    let (ns, rv) = create_namespace(&client, ctx.deadline).await?;
    let result = measure(ctx, args, &clients, &ns, rv).await;
    let cleanup = ctx.cleanup_deadline();
    let _ = tokio::time::timeout_at(cleanup, client.delete::<ReplicationController>(&ns, "converge", &DeleteParams::default())).await;
    delete_namespace(&client, &ns, cleanup).await;
    result
}

/// Waits until at least `n` nodes report Ready.
async fn wait_for_nodes(client: &Client, n: usize, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let (nodes, _) = client.list::<Node>("", &ListParams::default()).await.context("cannot list nodes")?;
        let ready = nodes
            .iter()
            .filter(|node| node.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True")))
            .count();
        if ready >= n {
            info!(ready, "nodes ready");
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {ready} of {n} nodes are Ready: start hollow nodes with `berth-kubelet --runtime fake --hollow-nodes {n}`");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn rc(ns: &str, replicas: i32, image: &str) -> ReplicationController {
    let labels: BTreeMap<String, String> = [("app".to_string(), "converge".to_string())].into();
    ReplicationController {
        metadata: Some(ObjectMeta { name: "converge".into(), namespace: ns.into(), ..Default::default() }),
        spec: Some(ReplicationControllerSpec {
            replicas: Some(replicas),
            selector: labels.clone(),
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta { labels, ..Default::default() }),
                spec: Some(PodSpec {
                    termination_grace_period_seconds: Some(0),
                    containers: vec![Container {
                        name: "app".into(),
                        image: image.into(),
                        command: vec!["sleep".into(), "3600".into()],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn measure(ctx: &Ctx, args: &Args, clients: &[Client], ns: &str, rv: u64) -> anyhow::Result<Figures> {
    let mut events = clients[1].watch::<Pod>(ns, &ListParams::default(), rv).await.context("cannot watch the benchmark namespace")?;
    let (counts_tx, mut counts) = watch::channel(Counts::default());
    let watcher = tokio::spawn(async move {
        let mut pods: HashMap<String, PodState> = HashMap::new();
        let mut created_total = 0;
        while let Some(ev) = events.next().await {
            match ev {
                Ok(WatchEvent::Added(p)) | Ok(WatchEvent::Modified(p)) => {
                    let name = p.name().to_string();
                    if !pods.contains_key(&name) {
                        created_total += 1;
                    }
                    let scheduled = p.spec.as_ref().is_some_and(|s| !s.node_name.is_empty());
                    let running = p.status.as_ref().is_some_and(|s| s.phase == "Running") && p.meta().deletion_timestamp.is_empty();
                    pods.insert(name, PodState { scheduled, running });
                }
                Ok(WatchEvent::Deleted(p)) => {
                    pods.remove(p.name());
                }
                Ok(WatchEvent::Bookmark(_)) => continue,
                Err(e) => {
                    warn!(error = %e, "the benchmark's watch failed");
                    break;
                }
            }
            let _ = counts_tx.send(Counts::of(&pods, created_total));
        }
    });

    let replicas = args.replicas as usize;
    info!(namespace = %ns, replicas, "converge: creating the replication controller");
    let start = Instant::now();
    clients[0].create(rc(ns, args.replicas, &args.image)).await.context("cannot create the benchmark's replication controller")?;
    let limit = (start + args.wait).min(ctx.deadline);
    let (mut created_at, mut scheduled_at, mut running_at) = (None, None, None);
    while running_at.is_none() {
        let c = *counts.borrow_and_update();
        let now = Instant::now();
        if created_at.is_none() && c.created_total >= replicas {
            created_at = Some(now);
        }
        if scheduled_at.is_none() && c.scheduled >= replicas {
            scheduled_at = Some(now);
        }
        if c.running >= replicas {
            running_at = Some(now);
            break;
        }
        if tokio::time::timeout_at(limit, counts.changed()).await.is_err() {
            watcher.abort();
            bail!(
                "after {:?}: {} of {replicas} pods created, {} scheduled, {} Running",
                args.wait,
                c.created_total,
                c.scheduled,
                c.running
            );
        }
    }
    let secs = |t: Option<Instant>, from: Instant| t.map(|t| t.duration_since(from).as_secs_f64()).unwrap_or(f64::NAN);
    let running_s = secs(running_at, start);
    let mut f = Figures::new();
    f.count("replicas", replicas as u64);
    f.measure("created_s", secs(created_at, start));
    f.measure("scheduled_s", secs(scheduled_at, start));
    f.measure("running_s", running_s);
    f.measure("running_pods_per_s", replicas as f64 / running_s);
    if let Some(pid) = args.controller_manager_pid {
        f.measure("controller_manager_rss_mib", procfs::mib(procfs::rss_kib(pid)?));
    }
    info!(running_s, "converge: every pod Running; scaling to 0");

    let down = Instant::now();
    scale(&clients[0], ns, 0).await?;
    let limit = (down + args.wait).min(ctx.deadline);
    loop {
        let c = *counts.borrow_and_update();
        if c.existing == 0 {
            break;
        }
        if tokio::time::timeout_at(limit, counts.changed()).await.is_err() {
            watcher.abort();
            bail!("after {:?}: {} pods still exist after scaling to 0", args.wait, c.existing);
        }
    }
    let gone_s = down.elapsed().as_secs_f64();
    f.measure("scale_down_s", gone_s);
    if let Some(pid) = args.controller_manager_pid {
        f.measure("controller_manager_rss_mib_after", procfs::mib(procfs::rss_kib(pid)?));
    }
    info!(gone_s, "converge: every pod gone");
    watcher.abort();
    Ok(f)
}

async fn scale(client: &Client, ns: &str, replicas: i32) -> anyhow::Result<()> {
    for _ in 0..10 {
        let mut rc: ReplicationController =
            client.get(ns, "converge").await.context("cannot read the benchmark's replication controller")?;
        rc.spec.get_or_insert_with(Default::default).replicas = Some(replicas);
        match client.update(rc).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(e).context("cannot scale the benchmark's replication controller"),
        }
    }
    bail!("cannot scale the benchmark's replication controller: too many conflicting writes")
}
