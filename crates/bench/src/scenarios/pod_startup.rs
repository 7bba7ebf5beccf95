//! The `pod-startup` scenario: pod startup latency on one real node.
//! N pods bound to `--node` (its kubelet running, the image present) are
//! created with C creates in flight; a watch on their namespace times each
//! pod from the moment its create was sent to the first event that shows it
//! Running, and Ready. With `--kubelet-pid`, the kubelet's resident memory
//! is read once every pod runs. The pods and their namespace are deleted
//! afterwards.

use berth_base::sync::MutexExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use berth_api::Resource;
use berth_api::pb::core::{Container, ObjectMeta, Pod, PodSpec};
use berth_base::duration::parse_duration;
use berth_client::{ListParams, WatchEvent};
use futures::StreamExt;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{connect_pool, create_namespace, delete_all, delete_namespace};
use crate::Ctx;
use crate::phase::{self, histogram, max_ms, quantile_ms, record};
use crate::procfs;
use crate::report::Figures;

/// Flags of the `pod-startup` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The node whose kubelet runs the pods (bound directly, no scheduler).
    #[arg(long)]
    pub node: String,
    /// Pods to start.
    #[arg(long, default_value_t = 100)]
    pub pods: usize,
    /// Creates in flight.
    #[arg(long, default_value_t = 20)]
    pub concurrency: usize,
    /// The pods' image; it must be present on the node (pinned tag: IfNotPresent).
    #[arg(long, default_value = "berth/busybox:1")]
    pub image: String,
    /// The kubelet's process id, to report its resident memory with the pods running.
    #[arg(long)]
    pub kubelet_pid: Option<u32>,
    /// How long to wait for every pod to be Ready.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub wait: Duration,
}

/// When each pod was first seen Running and Ready.
#[derive(Default, Clone, Copy)]
struct Seen {
    running: Option<Instant>,
    ready: Option<Instant>,
}

fn pod_name(i: usize) -> String {
    format!("startup-{i:05}")
}

pub async fn run(ctx: &Ctx, args: &Args) -> anyhow::Result<Figures> {
    let clients = connect_pool(ctx, args.concurrency.clamp(1, 8)).await?;
    let client = clients[0].clone();
    let (ns, rv) = create_namespace(&client, ctx.deadline).await?;
    let result = measure(ctx, args, &clients, &ns, rv).await;
    // Cleanup: the kubelet removes the containers once the pods are gone.
    let names: Vec<String> = (0..args.pods).map(pod_name).collect();
    let cleanup = ctx.cleanup_deadline();
    let p = delete_all(&clients, args.concurrency.max(1), "Pod", &ns, names, cleanup).await;
    if p.errors > 0 {
        warn!(errors = p.errors, "some benchmark pods could not be deleted");
    }
    delete_namespace(&client, &ns, cleanup).await;
    result
}

async fn measure(ctx: &Ctx, args: &Args, clients: &[berth_client::Client], ns: &str, rv: u64) -> anyhow::Result<Figures> {
    let seen: Arc<Mutex<HashMap<String, Seen>>> = Arc::default();
    let mut events = clients[0].watch::<Pod>(ns, &ListParams::default(), rv).await.context("cannot watch the benchmark namespace")?;
    let (all_ready_tx, mut all_ready) = tokio::sync::watch::channel(false);
    let watcher = {
        let seen = seen.clone();
        let total = args.pods;
        tokio::spawn(async move {
            let mut ready_count = 0;
            while let Some(ev) = events.next().await {
                let pod = match ev {
                    Ok(WatchEvent::Added(p)) | Ok(WatchEvent::Modified(p)) => p,
                    Ok(_) => continue,
                    Err(e) => {
                        warn!(error = %e, "the benchmark's watch failed");
                        break;
                    }
                };
                let now = Instant::now();
                let status = pod.status.clone().unwrap_or_default();
                let mut s = seen.lock_or_recover();
                let entry = s.entry(pod.name().to_string()).or_default();
                if entry.running.is_none() && status.phase == "Running" {
                    entry.running = Some(now);
                }
                let ready = status.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True");
                if entry.ready.is_none() && ready {
                    entry.ready = Some(now);
                    ready_count += 1;
                    if ready_count >= total {
                        let _ = all_ready_tx.send(true);
                    }
                }
            }
        })
    };

    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; args.pods]));
    let start = Instant::now();
    let create = {
        let (clients, sent, ns, node, image) = (clients.to_vec(), sent.clone(), ns.to_string(), args.node.clone(), args.image.clone());
        phase::run("create", args.concurrency.max(1), args.pods, ctx.deadline, move |w, i| {
            let client = clients[w % clients.len()].clone();
            let pod = Pod {
                metadata: Some(ObjectMeta { name: pod_name(i), namespace: ns.clone(), ..Default::default() }),
                spec: Some(PodSpec {
                    node_name: node.clone(),
                    termination_grace_period_seconds: Some(1),
                    containers: vec![Container {
                        name: "app".into(),
                        image: image.clone(),
                        command: vec!["sleep".into(), "3600".into()],
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            };
            let sent = sent.clone();
            async move {
                sent.lock_or_recover()[i] = Some(Instant::now());
                client.create(pod).await.map(|_| ())
            }
        })
        .await
    };
    create.ensure_finished()?;
    let wait_until = std::cmp::min(ctx.deadline, Instant::now() + args.wait);
    let finished = tokio::time::timeout_at(wait_until, async {
        while !*all_ready.borrow_and_update() {
            if all_ready.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .is_ok();
    let all_ready_s = start.elapsed().as_secs_f64();
    let rss = args.kubelet_pid.map(procfs::rss_kib).transpose()?;
    watcher.abort();

    let seen = seen.lock_or_recover().clone();
    let sent = sent.lock_or_recover().clone();
    let (mut to_running, mut to_ready) = (histogram(), histogram());
    let mut not_ready = 0u64;
    for (i, t0) in sent.iter().enumerate() {
        let Some(t0) = t0 else { continue };
        let s = seen.get(&pod_name(i)).copied().unwrap_or_default();
        if let Some(t) = s.running {
            record(&mut to_running, t.saturating_duration_since(*t0));
        }
        match s.ready {
            Some(t) => record(&mut to_ready, t.saturating_duration_since(*t0)),
            None => not_ready += 1,
        }
    }
    if !finished {
        anyhow::bail!("{not_ready} of {} pods were not Ready within {:?}", args.pods, args.wait);
    }
    info!(pods = args.pods, all_ready_s, "every pod is ready");
    let mut f = Figures::new();
    f.count("pods", args.pods as u64);
    f.measure("running_p50_ms", quantile_ms(&to_running, 0.50));
    f.measure("running_p99_ms", quantile_ms(&to_running, 0.99));
    f.measure("running_max_ms", max_ms(&to_running));
    f.measure("ready_p50_ms", quantile_ms(&to_ready, 0.50));
    f.measure("ready_p99_ms", quantile_ms(&to_ready, 0.99));
    f.measure("ready_max_ms", max_ms(&to_ready));
    f.measure("all_ready_s", all_ready_s);
    if let Some(kib) = rss {
        f.measure("kubelet_rss_mib", procfs::mib(kib));
    }
    if let Some(l) = procfs::loadavg_1m() {
        f.measure("loadavg_1m", l);
    }
    Ok(f)
}
