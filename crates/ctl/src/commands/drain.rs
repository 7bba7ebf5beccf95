//! `drain`: cordons a node, then evicts its pods and waits until they are
//! gone, as `kubectl drain` does.
//!
//! Before anything is evicted, the node's pods are checked as kubectl
//! checks them: a pod that declares no controller (no ownerReference with
//! `controller: true`) is refused unless `--force`, since nothing would
//! recreate it; a pod with an emptyDir volume is refused unless
//! `--delete-emptydir-data`, since that data is lost; a DaemonSet's pod is
//! refused unless `--ignore-daemonsets` (then left in place). Finished pods
//! (Succeeded, Failed) and mirror pods need no such care. When any pod is
//! refused nothing is evicted and the node stays cordoned.
//!
//! Berth has no eviction API (and no PodDisruptionBudgets), so evicting is a
//! graceful delete (`--grace-period`, default the pod's own), with the pod's
//! uid as precondition. To respect replication controllers, pods are evicted
//! in rounds: each round takes at most one pod of each controller (and, in
//! the first round, every pod without one), then waits until that round's
//! pods are gone before the next. A controller therefore never loses more
//! than one pod to the drain at a time, and its replacements (which cannot
//! land on the cordoned node) are created between rounds. Rounds do not wait
//! for the replacements to become ready: that would hang forever on a
//! cluster without room for them.
//!
//! `--timeout` (default 0: no limit) bounds the whole drain; when it
//! passes, the error names every pod still on the node. While pods
//! terminate, stderr says which one is awaited and how many are gone.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Result, anyhow};
use berth_api::Resource;
use berth_api::pb::core::Pod;
use berth_base::duration::parse_duration;
use berth_client::{Client, DeleteParams, ListParams};
use tokio::time::Instant;

use super::cordon::{node_names, set_unschedulable};
use super::delete::wait_gone;
use super::{Ctx, object_ref, out, revision};
use crate::error;
use crate::progress::Progress;

#[derive(Debug, clap::Args)]
pub struct DrainArgs {
    /// Names of nodes (or node/NAME).
    pub nodes: Vec<String>,
    /// Drain the nodes matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Only evict the pods matching this label selector.
    #[arg(long)]
    pub pod_selector: Option<String>,
    /// Evict pods that declare no controller (nothing will recreate them).
    #[arg(long)]
    pub force: bool,
    /// Leave DaemonSet-managed pods in place instead of refusing to drain.
    #[arg(long)]
    pub ignore_daemonsets: bool,
    /// Evict pods with emptyDir volumes (their data is lost).
    #[arg(long, alias = "delete-local-data")]
    pub delete_emptydir_data: bool,
    /// Seconds each pod gets to terminate (0: at once; default: the pod's own).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// How long to wait before giving up, like 30s or 5m (0: no limit).
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub timeout: Duration,
}

pub async fn run(ctx: &Ctx, args: DrainArgs) -> Result<()> {
    let client = ctx.client().await?;
    let names = node_names(&client, &args.nodes, args.selector.as_deref()).await?;
    let mut errors = Vec::new();
    for name in names {
        if let Err(e) = drain(&client, &name, &args).await {
            errors.push(e);
        }
    }
    super::finish(errors)
}

async fn drain(client: &Client, node: &str, args: &DrainArgs) -> Result<()> {
    let deadline = (!args.timeout.is_zero()).then(|| Instant::now() + args.timeout);
    out(&format!("{}\n", set_unschedulable(client, node, true).await?));

    let params = ListParams::default().fields(format!("spec.nodeName={node}")).labels(args.pod_selector.clone().unwrap_or_default());
    let (mut pods, _) = client.list::<Pod>("", &params).await.map_err(|e| error::api(e, &Pod::INFO, ""))?;
    pods.sort_by(|a, b| (a.namespace(), a.name()).cmp(&(b.namespace(), b.name())));
    let plan = plan(pods, args).map_err(|e| anyhow!("unable to drain node {node:?}: {e}"))?;
    for warning in &plan.warnings {
        eprintln!("Warning: {warning}");
    }

    let delete = DeleteParams { grace_period_seconds: (args.grace_period >= 0).then_some(args.grace_period), ..Default::default() };
    let rounds = rounds(plan.evict);
    let total: usize = rounds.iter().map(Vec::len).sum();
    let mut gone_count = 0;
    let mut progress = Progress::new();
    for (i, round) in rounds.iter().enumerate() {
        let mut evicted = Vec::new();
        for pod in round {
            out(&format!("evicting pod {}/{}\n", pod.namespace(), pod.name()));
            let params = DeleteParams { uid: pod.meta().uid.clone(), ..delete.clone() };
            match client.delete::<Pod>(pod.namespace(), pod.name(), &params).await {
                Ok(last) => evicted.push((pod, revision(&last.into_object()))),
                // Gone already (or replaced by a pod of the same name): nothing to wait for.
                Err(e) if e.is_not_found() || e.is_conflict() => {
                    gone_count += 1;
                    out(&format!("{} evicted\n", object_ref(&Pod::INFO, pod.name())));
                }
                Err(e) => return Err(error::api(e, &Pod::INFO, pod.name())),
            }
        }
        for (n, (pod, from)) in evicted.iter().enumerate() {
            progress.report(&format!(
                "node/{node}: waiting for pod {}/{} to terminate ({gone_count} of {total} pods evicted, round {} of {})",
                pod.namespace(),
                pod.name(),
                i + 1,
                rounds.len()
            ));
            let gone = wait_gone(client, &Pod::INFO, pod.namespace(), pod.name(), *from);
            let gone = match deadline {
                Some(d) => tokio::time::timeout_at(d, gone).await.ok(),
                None => Some(gone.await),
            };
            match gone {
                Some(Ok(())) => {
                    gone_count += 1;
                    out(&format!("{} evicted\n", object_ref(&Pod::INFO, pod.name())));
                }
                Some(Err(e)) => return Err(e),
                None => {
                    let terminating = evicted[n..].iter().map(|(p, _)| format!("{}/{}", p.namespace(), p.name()));
                    let waiting = rounds[i + 1..].iter().flatten().map(|p| format!("{}/{} (not evicted yet)", p.namespace(), p.name()));
                    let left: Vec<String> = terminating.chain(waiting).collect();
                    return Err(anyhow!(
                        "unable to drain node {node:?}: timed out after {:?} with {} pod(s) left: {}: their kubelet has not finished them; wait longer (--timeout) or remove them at once (--grace-period=0)",
                        args.timeout,
                        left.len(),
                        left.join(", ")
                    ));
                }
            }
        }
    }
    out(&format!("node/{node} drained\n"));
    Ok(())
}

/// What to do with a node's pods.
#[derive(Debug, Default)]
struct Plan {
    evict: Vec<Pod>,
    warnings: Vec<String>,
}

/// Sorts a node's pods into those to evict and those to leave, with
/// kubectl's warnings, or kubectl's error naming the pods that block.
fn plan(pods: Vec<Pod>, args: &DrainArgs) -> Result<Plan, String> {
    // kubectl's wording: "cannot delete <fatal>: ns/a, ns/b" and "<warning>: ns/a".
    const DAEMONSET_FATAL: &str = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
    const DAEMONSET_WARNING: &str = "ignoring DaemonSet-managed Pods";
    const UNMANAGED_FATAL: &str = "Pods declare no controller (use --force to override)";
    const UNMANAGED_WARNING: &str = "deleting Pods that declare no controller";
    const LOCAL_FATAL: &str = "Pods with local storage (use --delete-emptydir-data to override)";
    const LOCAL_WARNING: &str = "deleting Pods with local storage";

    let mut fatal: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut warn: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut plan = Plan::default();
    for pod in pods {
        let id = format!("{}/{}", pod.namespace(), pod.name());
        if pod.meta().annotations.contains_key("kubernetes.io/config.mirror") {
            continue; // the kubelet owns it; deleting it does nothing
        }
        let finished = pod.status.as_ref().is_some_and(|s| s.phase == "Succeeded" || s.phase == "Failed");
        let controller = pod.meta().owner_references.iter().find(|r| r.controller == Some(true));
        if !finished {
            match controller {
                Some(c) if c.kind == "DaemonSet" => {
                    let (which, text) = if args.ignore_daemonsets { (&mut warn, DAEMONSET_WARNING) } else { (&mut fatal, DAEMONSET_FATAL) };
                    which.entry(text).or_default().push(id);
                    continue;
                }
                Some(_) => {}
                None if args.force => warn.entry(UNMANAGED_WARNING).or_default().push(id.clone()),
                None => fatal.entry(UNMANAGED_FATAL).or_default().push(id.clone()),
            }
            let empty_dir = pod.spec.as_ref().is_some_and(|s| s.volumes.iter().any(|v| v.empty_dir.is_some()));
            if empty_dir {
                match args.delete_emptydir_data {
                    true => warn.entry(LOCAL_WARNING).or_default().push(id.clone()),
                    false => fatal.entry(LOCAL_FATAL).or_default().push(id.clone()),
                }
            }
        }
        plan.evict.push(pod);
    }
    if !fatal.is_empty() {
        let errs: Vec<String> = fatal.iter().map(|(what, pods)| format!("cannot delete {what}: {}", pods.join(", "))).collect();
        return Err(if errs.len() == 1 { errs[0].clone() } else { format!("[{}]", errs.join(", ")) });
    }
    plan.warnings = warn.iter().map(|(what, pods)| format!("{what}: {}", pods.join(", "))).collect();
    Ok(plan)
}

/// The pods in eviction rounds: the first takes every pod without a
/// controller and one pod of each controller, each later round the next
/// pod of each controller.
fn rounds(pods: Vec<Pod>) -> Vec<Vec<Pod>> {
    let mut rounds: Vec<Vec<Pod>> = Vec::new();
    let mut taken: BTreeMap<String, usize> = BTreeMap::new(); // controller uid → pods placed
    for pod in pods {
        let round = match pod.meta().owner_references.iter().find(|r| r.controller == Some(true)) {
            Some(c) => {
                let n = taken.entry(c.uid.clone()).or_default();
                *n += 1;
                *n - 1
            }
            None => 0,
        };
        if rounds.len() <= round {
            rounds.resize_with(round + 1, Vec::new);
        }
        rounds[round].push(pod);
    }
    rounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::pb::core::{EmptyDirVolumeSource, ObjectMeta, OwnerReference, PodSpec, Volume};

    fn pod(name: &str, controller: Option<&str>, empty_dir: bool) -> Pod {
        let owner_references = controller
            .map(|uid| OwnerReference {
                kind: "ReplicationController".into(),
                name: uid.into(),
                uid: uid.into(),
                controller: Some(true),
                ..Default::default()
            })
            .into_iter()
            .collect();
        let volumes = if empty_dir {
            vec![Volume { name: "scratch".into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }]
        } else {
            vec![]
        };
        Pod {
            metadata: Some(ObjectMeta { name: name.into(), namespace: "default".into(), owner_references, ..Default::default() }),
            spec: Some(PodSpec { volumes, ..Default::default() }),
            ..Default::default()
        }
    }

    fn args(flags: &[&str]) -> DrainArgs {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            drain: DrainArgs,
        }
        let mut argv = vec!["drain", "n1"];
        argv.extend(flags);
        Cli::parse_from(argv).drain
    }

    fn names(pods: &[Pod]) -> Vec<&str> {
        pods.iter().map(|p| p.name()).collect()
    }

    #[test]
    fn should_refuse_unmanaged_and_emptydir_pods_with_kubectl_words() {
        let pods = || vec![pod("bare", None, false), pod("web-1", Some("rc1"), false), pod("cache-1", Some("rc2"), true)];
        assert_eq!(
            plan(pods(), &args(&[])).expect_err("refused"),
            "[cannot delete Pods declare no controller (use --force to override): default/bare, cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache-1]"
        );
        assert_eq!(
            plan(pods(), &args(&["--force"])).expect_err("refused"),
            "cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache-1"
        );
        let plan = plan(pods(), &args(&["--force", "--delete-emptydir-data"])).expect("allowed");
        assert_eq!(names(&plan.evict), ["bare", "web-1", "cache-1"]);
        assert_eq!(
            plan.warnings,
            ["deleting Pods that declare no controller: default/bare", "deleting Pods with local storage: default/cache-1"]
        );
    }

    #[test]
    fn should_evict_one_pod_per_controller_per_round() {
        let pods = vec![pod("a-1", Some("a"), false), pod("a-2", Some("a"), false), pod("bare", None, false), pod("b-1", Some("b"), false)];
        let rounds: Vec<Vec<String>> = rounds(pods).iter().map(|r| r.iter().map(|p| p.name().to_string()).collect()).collect();
        assert_eq!(rounds, [vec!["a-1", "bare", "b-1"], vec!["a-2"]]);
    }
}
