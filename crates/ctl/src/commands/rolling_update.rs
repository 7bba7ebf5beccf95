//! `rolling-update`: replaces a replication controller's pods with those of
//! a new template (`--image`, or a new RC from `-f`), moving replicas over
//! step by step (`--max-surge`, `--max-unavailable`, `--update-period`) so
//! that at least `replicas - maxUnavailable` pods stay ready and at most
//! `replicas + maxSurge` exist. Progress is kept in annotations, so running
//! the same command again resumes an interrupted update, and `--rollback`
//! returns an interrupted one to the old controller. With `--auto-rollback`
//! an update whose new pods do not become Ready within `--progress-deadline`
//! rolls itself back and says why. While pods start, stderr says how many
//! of the new controller's pods are ready (a line per change).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use berth_api::Resource;
use berth_api::pb::api::object::Kind;
use berth_api::pb::core::{ObjectMeta, Pod, ReplicationController};
use berth_base::duration::parse_duration;
use berth_client::{Client, DeleteParams, ListParams};
use tokio::time::Instant;

use super::{Ctx, out};
use crate::error;
use crate::manifests;
use crate::progress::Progress;

/// On the old RC: the RC it is being updated to.
pub const NEXT_CONTROLLER: &str = "kubectl.kubernetes.io/next-controller-id";
/// On the old RC: its replicas before the update.
pub const ORIGINAL_REPLICAS: &str = "kubectl.kubernetes.io/original-replicas";
/// On the new RC: how many replicas it is to reach.
pub const DESIRED_REPLICAS: &str = "kubectl.kubernetes.io/desired-replicas";
/// On the new RC: `OLD-NAME:OLD-UID`, the RC it replaces.
pub const UPDATE_SOURCE: &str = "kubectl.kubernetes.io/update-source-id";

#[derive(Debug, clap::Args)]
pub struct RollingUpdateArgs {
    /// The replication controller to update (NAME or rc/NAME).
    pub old: String,
    /// The new controller's name (default: the name in -f, or with --image
    /// OLD-<hash>, renamed to OLD once the update is done).
    pub new: Option<String>,
    /// The new image of the pods' container.
    #[arg(long)]
    pub image: Option<String>,
    /// The container whose image changes (needed when the pods have several).
    #[arg(long)]
    pub container: Option<String>,
    /// A manifest of the new replication controller.
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    /// How long to wait between scaling steps.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub update_period: Duration,
    /// How often to look at the pods while waiting.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Give up when nothing has moved for this long.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Pods allowed above the desired count during the update (a number or a percentage).
    #[arg(long, default_value = "1")]
    pub max_surge: String,
    /// Pods allowed to be unavailable during the update (a number or a percentage).
    #[arg(long, default_value = "0")]
    pub max_unavailable: String,
    /// Abort an interrupted update and return to the old controller.
    #[arg(long)]
    pub rollback: bool,
    /// Roll back by itself when new pods do not become Ready within --progress-deadline.
    #[arg(long)]
    pub auto_rollback: bool,
    /// How long new pods may take to become Ready before --auto-rollback acts.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub progress_deadline: Duration,
    /// The label that tells the new pods from the old ones.
    #[arg(long, default_value = "deployment")]
    pub deployment_label_key: String,
}

/// Why an update stopped before it was done.
#[derive(Debug)]
enum Stop {
    /// New pods did not become ready in time (the message says how many of how many).
    Stalled(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Stop {
        Stop::Failed(e)
    }
}

pub async fn run(ctx: &Ctx, args: RollingUpdateArgs) -> Result<()> {
    let old_name =
        args.old.strip_prefix("rc/").or_else(|| args.old.strip_prefix("replicationcontroller/")).unwrap_or(&args.old).to_string();
    let client = ctx.client().await?;
    let ns = ctx.namespace_for(&ReplicationController::INFO).to_string();
    let info = &ReplicationController::INFO;
    let old: ReplicationController = client.get(&ns, &old_name).await.map_err(|e| error::api(e, info, &old_name))?;
    let (surge, unavailable) =
        (parse_int_or_percent(&args.max_surge, "--max-surge")?, parse_int_or_percent(&args.max_unavailable, "--max-unavailable")?);
    if args.rollback {
        return rollback(&client, &ns, &old, args.new.as_deref(), &args, surge, unavailable).await;
    }
    let (mut new, rename) = match (&args.image, args.files.is_empty()) {
        (Some(image), true) => (from_image(&old, image, args.container.as_deref(), &args.deployment_label_key)?, true),
        (None, false) => (from_files(&args.files, &ns)?, false),
        (Some(_), false) => bail!("--image and -f cannot be used together"),
        (None, true) => bail!("must specify --image or -f (or --rollback)"),
    };
    if let Some(n) = &args.new {
        new.metadata_mut().name = n.clone();
    }
    let new_name = new.name().to_string();
    if new_name == old_name {
        bail!("the new replication controller must have a name other than {old_name:?}");
    }
    let old_uid = old.meta().uid.clone();
    let source = format!("{old_name}:{old_uid}");

    // Resume an interrupted update, or start one.
    let desired = match client.get::<ReplicationController>(&ns, &new_name).await {
        Ok(existing) => {
            let from = existing.meta().annotations.get(UPDATE_SOURCE).cloned().unwrap_or_default();
            if from.split(':').next() != Some(old_name.as_str()) {
                bail!("replicationcontroller {new_name:?} already exists and is not a rolling update of {old_name:?}");
            }
            out(&format!("Continuing update with existing controller {new_name}.\n"));
            desired_of(&existing, &old)
        }
        Err(e) if e.is_not_found() => {
            let desired = desired_of(&new, &old).max(0);
            annotate(&client, &ns, &old_name, |m| {
                m.annotations.insert(NEXT_CONTROLLER.into(), new_name.clone());
                m.annotations.entry(ORIGINAL_REPLICAS.into()).or_insert_with(|| replicas(&old).to_string());
            })
            .await?;
            let m = new.metadata_mut();
            m.namespace = ns.clone();
            m.annotations.insert(DESIRED_REPLICAS.into(), desired.to_string());
            m.annotations.insert(UPDATE_SOURCE.into(), source.clone());
            new.spec.get_or_insert_with(Default::default).replicas = Some(0);
            client.create(new.clone()).await.map_err(|e| error::api(e, info, &new_name))?;
            out(&format!("Created {new_name}\n"));
            desired
        }
        Err(e) => return Err(error::api(e, info, &new_name)),
    };

    let plan = Plan { client: &client, ns: &ns, args: &args, surge, unavailable, desired };
    match plan.shift(&old_name, &new_name, args.auto_rollback).await {
        Ok(()) => {}
        Err(Stop::Stalled(why)) if args.auto_rollback => {
            out(&format!("{why}; rolling back to {old_name}\n"));
            plan.shift(&new_name, &old_name, false).await.map_err(|s| match s {
                Stop::Stalled(w) => anyhow!("the rollback stalled too: {w}"),
                Stop::Failed(e) => e.context("rolling back"),
            })?;
            finish_rollback(&client, &ns, &old_name, &new_name, plan.wait_limit()).await?;
            bail!("{why}: rolled back automatically; replicationcontroller/{old_name} runs the previous template again");
        }
        Err(Stop::Stalled(why)) => {
            bail!("{why}; run the same command again to resume, or with --rollback to return to {old_name}")
        }
        Err(Stop::Failed(e)) => {
            return Err(
                e.context(format!("the update stopped; run the same command again to resume, or with --rollback to return to {old_name}"))
            );
        }
    }

    out(&format!("Update succeeded. Deleting old controller: {old_name}\n"));
    delete_and_wait(&client, &ns, &old_name, "Background", plan.wait_limit()).await?;
    if rename {
        out(&format!("Renaming {new_name} to {old_name}\n"));
        rename_rc(&client, &ns, &new_name, &old_name, plan.wait_limit()).await?;
        out(&format!("replicationcontroller/{old_name} rolling updated\n"));
    } else {
        annotate(&client, &ns, &new_name, |m| {
            m.annotations.remove(DESIRED_REPLICAS);
            m.annotations.remove(UPDATE_SOURCE);
        })
        .await?;
        out(&format!("replicationcontroller/{old_name} rolling updated to \"{new_name}\"\n"));
    }
    Ok(())
}

/// `--rollback`: moves the replicas of an interrupted update back to the old controller.
async fn rollback(
    client: &Client,
    ns: &str,
    old: &ReplicationController,
    new: Option<&str>,
    args: &RollingUpdateArgs,
    surge: IntOrPercent,
    unavailable: IntOrPercent,
) -> Result<()> {
    let old_name = old.name().to_string();
    let Some(new_name) = new.map(str::to_string).or_else(|| old.meta().annotations.get(NEXT_CONTROLLER).cloned()) else {
        bail!("replicationcontroller {old_name:?} has no rolling update in progress to roll back");
    };
    let new_rc: ReplicationController = match client.get(ns, &new_name).await {
        Ok(rc) => rc,
        Err(e) if e.is_not_found() => {
            clear_annotations(client, ns, &old_name).await?;
            out(&format!("Nothing to roll back: {new_name} is gone; {old_name} is unchanged\n"));
            return Ok(());
        }
        Err(e) => return Err(error::api(e, &ReplicationController::INFO, &new_name)),
    };
    let desired = desired_of(&new_rc, old);
    out(&format!("Rolling back: scaling {old_name} back up to {desired} and {new_name} down to 0\n"));
    let plan = Plan { client, ns, args, surge, unavailable, desired };
    plan.shift(&new_name, &old_name, false).await.map_err(|s| match s {
        Stop::Stalled(w) => anyhow!("{w}; run the same command again to continue the rollback"),
        Stop::Failed(e) => e.context("the rollback stopped; run the same command again to continue it"),
    })?;
    finish_rollback(client, ns, &old_name, &new_name, plan.wait_limit()).await?;
    out(&format!("Rollback succeeded: replicationcontroller/{old_name} runs its own template again\n"));
    Ok(())
}

/// After a rollback: the abandoned controller goes, the old one forgets the update.
async fn finish_rollback(client: &Client, ns: &str, old_name: &str, new_name: &str, limit: Duration) -> Result<()> {
    delete_and_wait(client, ns, new_name, "Background", limit).await?;
    clear_annotations(client, ns, old_name).await
}

async fn clear_annotations(client: &Client, ns: &str, name: &str) -> Result<()> {
    annotate(client, ns, name, |m| {
        m.annotations.remove(NEXT_CONTROLLER);
        m.annotations.remove(ORIGINAL_REPLICAS);
    })
    .await
}

/// How one update (or rollback) moves replicas.
struct Plan<'a> {
    client: &'a Client,
    ns: &'a str,
    args: &'a RollingUpdateArgs,
    surge: IntOrPercent,
    unavailable: IntOrPercent,
    desired: i32,
}

impl Plan<'_> {
    /// How long waiting for a deletion may take.
    fn wait_limit(&self) -> Duration {
        self.args.timeout
    }

    /// Scales `to` up to the desired count and `from` down to zero, in
    /// steps that keep `desired - maxUnavailable` pods ready and at most
    /// `desired + maxSurge` pods. With `watch_readiness`, stops with
    /// [`Stop::Stalled`] when `to`'s ready pods do not grow for the
    /// progress deadline.
    async fn shift(&self, from: &str, to: &str, watch_readiness: bool) -> Result<(), Stop> {
        let desired = self.desired;
        let surge = self.surge.resolve(desired, true);
        let unavailable = self.unavailable.resolve(desired, false);
        if surge == 0 && unavailable == 0 {
            return Err(Stop::Failed(anyhow!("--max-surge and --max-unavailable cannot both be zero")));
        }
        let min_available = (desired - unavailable).max(0);
        let from_rc = self.get(from).await?;
        let to_rc = self.get(to).await?;
        out(&format!(
            "Scaling up {to} from {} to {desired}, scaling down {from} from {} to 0 (keep {min_available} pods available, don't exceed {} pods)\n",
            replicas(&to_rc),
            replicas(&from_rc),
            desired + surge
        ));
        let mut last_move = Instant::now();
        let mut best_ready = ready_pods(self.client, self.ns, &to_rc).await?;
        let mut last_ready_gain = Instant::now();
        let mut progress = Progress::new();
        loop {
            let from_rc = self.get(from).await?;
            let to_rc = self.get(to).await?;
            let (mut from_n, mut to_n) = (replicas(&from_rc), replicas(&to_rc));
            if to_n >= desired && from_n == 0 {
                return Ok(());
            }
            // Up as far as the surge allows (all the way once the old one is empty).
            if to_n < desired {
                let increment = if from_n == 0 { desired - to_n } else { desired + surge - (from_n + to_n) };
                if increment > 0 {
                    to_n = (to_n + increment).min(desired);
                    self.scale(to, to_n).await?;
                    out(&format!("Scaling {to} up to {to_n}\n"));
                    last_move = Instant::now();
                }
            }
            // Let the new pods start, watching whether they become ready.
            let until = Instant::now() + self.args.update_period;
            loop {
                let ready = ready_pods(self.client, self.ns, &to_rc).await?;
                progress.report(&format!("replicationcontroller/{to}: {ready} of {desired} pods updated and ready, {from_n} old left"));
                if ready > best_ready {
                    best_ready = ready;
                    last_ready_gain = Instant::now();
                }
                if Instant::now() >= until {
                    break;
                }
                tokio::time::sleep(
                    self.args.poll_interval.min(until.saturating_duration_since(Instant::now())).max(Duration::from_millis(10)),
                )
                .await;
            }
            // Down as far as availability allows.
            let from_rc = self.get(from).await?;
            let to_rc = self.get(to).await?;
            from_n = replicas(&from_rc);
            let from_ready = ready_pods(self.client, self.ns, &from_rc).await?;
            let to_ready = ready_pods(self.client, self.ns, &to_rc).await?;
            if from_n > 0 {
                let decrement = from_ready + to_ready - min_available;
                // Once the target is complete and ready, the rest of the old
                // pods (ready or not) can go at once.
                let complete = replicas(&to_rc) >= desired && to_ready >= desired;
                if decrement > 0 || complete {
                    let next = if complete { 0 } else { (from_n - decrement).max(0) };
                    if next != from_n {
                        self.scale(from, next).await?;
                        out(&format!("Scaling {from} down to {next}\n"));
                        last_move = Instant::now();
                    }
                }
            }
            let waiting_for = replicas(&to_rc).min(desired);
            if watch_readiness && to_ready < waiting_for && last_ready_gain.elapsed() > self.args.progress_deadline {
                return Err(Stop::Stalled(format!(
                    "new pods of {to} did not become Ready within --progress-deadline {:?}: {to_ready} of {waiting_for} ready",
                    self.args.progress_deadline
                )));
            }
            if last_move.elapsed() > self.args.timeout && last_ready_gain.elapsed() > self.args.timeout {
                return Err(Stop::Stalled(format!(
                    "nothing moved for --timeout {:?}: {to_ready} of {desired} pods of {to} ready",
                    self.args.timeout
                )));
            }
        }
    }

    async fn get(&self, name: &str) -> Result<ReplicationController> {
        self.client.get(self.ns, name).await.map_err(|e| error::api(e, &ReplicationController::INFO, name))
    }

    async fn scale(&self, name: &str, n: i32) -> Result<()> {
        for _ in 0..10 {
            let mut rc = self.get(name).await?;
            rc.spec.get_or_insert_with(Default::default).replicas = Some(n);
            match self.client.update(rc).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(error::api(e, &ReplicationController::INFO, name)),
            }
        }
        bail!("scaling {name}: too many conflicting writes")
    }
}

fn replicas(rc: &ReplicationController) -> i32 {
    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// The replicas an update is to reach: what the new controller was told,
/// else what the old one had before the update.
fn desired_of(new: &ReplicationController, old: &ReplicationController) -> i32 {
    let ann = |rc: &ReplicationController, k: &str| rc.meta().annotations.get(k).and_then(|v| v.parse::<i32>().ok());
    ann(new, DESIRED_REPLICAS).or_else(|| ann(old, ORIGINAL_REPLICAS)).unwrap_or_else(|| replicas(old))
}

/// The pods of `rc` (owned by it) that are Ready, for at least its minReadySeconds.
async fn ready_pods(client: &Client, ns: &str, rc: &ReplicationController) -> Result<i32> {
    let selector =
        rc.spec.as_ref().map(|s| s.selector.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")).unwrap_or_default();
    let min_ready = rc.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0) as i64;
    let (pods, _) = client.list::<Pod>(ns, &ListParams::default().labels(selector)).await.map_err(|e| error::api(e, &Pod::INFO, ""))?;
    let uid = &rc.meta().uid;
    let now = chrono::Utc::now();
    let ready = pods
        .iter()
        .filter(|p| p.meta().deletion_timestamp.is_empty())
        .filter(|p| p.meta().owner_references.iter().any(|r| &r.uid == uid && r.controller == Some(true)))
        .filter(|p| {
            p.status.as_ref().and_then(|s| s.conditions.iter().find(|c| c.r#type == "Ready" && c.status == "True")).is_some_and(|c| {
                min_ready <= 0
                    || chrono::DateTime::parse_from_rfc3339(&c.last_transition_time)
                        .is_ok_and(|t| t.with_timezone(&chrono::Utc) + chrono::Duration::seconds(min_ready) <= now)
            })
        })
        .count();
    Ok(ready as i32)
}

/// The new RC for `--image`: the old one's template with the new image,
/// told apart by `deployment=<hash of the template>`, named `OLD-<hash>`.
fn from_image(old: &ReplicationController, image: &str, container: Option<&str>, key: &str) -> Result<ReplicationController> {
    let mut spec = old.spec.clone().unwrap_or_default();
    let template = spec.template.as_mut().context("the replication controller has no pod template")?;
    let pod = template.spec.as_mut().context("the replication controller's template has no pod spec")?;
    let c = match container {
        Some(name) => {
            pod.containers.iter_mut().find(|c| c.name == name).with_context(|| format!("the pods have no container named {name:?}"))?
        }
        None if pod.containers.len() == 1 => &mut pod.containers[0],
        None => bail!("the pods have {} containers: choose one with --container", pod.containers.len()),
    };
    if c.image == image {
        bail!("the container {:?} already runs {image}", c.name);
    }
    c.image = image.to_string();
    let tmeta = template.metadata.get_or_insert_with(Default::default);
    tmeta.labels.remove(key);
    let hash = template_hash(template);
    template.metadata.get_or_insert_with(Default::default).labels.insert(key.to_string(), hash.clone());
    spec.selector.insert(key.to_string(), hash.clone());
    let mut labels = old.meta().labels.clone();
    labels.remove(key);
    let name = format!("{}-{hash}", old.name());
    Ok(ReplicationController {
        metadata: Some(ObjectMeta { name, namespace: old.namespace().into(), labels, ..Default::default() }),
        spec: Some(spec),
        ..Default::default()
    })
}

/// The new RC from `-f`.
fn from_files(files: &[String], ns: &str) -> Result<ReplicationController> {
    let mut found = Vec::new();
    for m in manifests::read(files)? {
        match m.object.kind {
            Some(Kind::ReplicationController(rc)) => found.push(rc),
            _ => bail!("{}: rolling-update needs a ReplicationController", m.source),
        }
    }
    if found.len() != 1 {
        bail!("rolling-update needs exactly one ReplicationController in -f, found {}", found.len());
    }
    let mut rc = found.remove(0);
    let m = rc.metadata_mut();
    if !m.namespace.is_empty() && m.namespace != ns {
        bail!("the new replication controller is in namespace {:?}, the update in {ns:?}", m.namespace);
    }
    m.namespace = ns.to_string();
    m.resource_version.clear();
    Ok(rc)
}

/// A short stable hash of a pod template (FNV-1a over its JSON).
fn template_hash(t: &berth_api::pb::core::PodTemplateSpec) -> String {
    let text = serde_json::to_string(t).unwrap_or_default();
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

async fn annotate(client: &Client, ns: &str, name: &str, f: impl Fn(&mut ObjectMeta)) -> Result<()> {
    for _ in 0..10 {
        let mut rc: ReplicationController = client.get(ns, name).await.map_err(|e| error::api(e, &ReplicationController::INFO, name))?;
        let before = rc.meta().annotations.clone();
        f(rc.metadata_mut());
        if rc.meta().annotations == before {
            return Ok(());
        }
        match client.update(rc).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(error::api(e, &ReplicationController::INFO, name)),
        }
    }
    bail!("annotating {name}: too many conflicting writes")
}

async fn delete_and_wait(client: &Client, ns: &str, name: &str, policy: &str, limit: Duration) -> Result<()> {
    let params = DeleteParams { propagation_policy: policy.into(), ..Default::default() };
    match client.delete::<ReplicationController>(ns, name, &params).await {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(error::api(e, &ReplicationController::INFO, name)),
    }
    let deadline = Instant::now() + limit;
    loop {
        match client.get::<ReplicationController>(ns, name).await {
            Err(e) if e.is_not_found() => return Ok(()),
            _ if Instant::now() > deadline => {
                bail!("replicationcontroller {name:?} was not deleted within {limit:?} (is the garbage collector running?)")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Gives the new controller the old name: its pods are orphaned (the
/// garbage collector removes their owner) and adopted by a copy under the
/// old name, so no pod is replaced.
async fn rename_rc(client: &Client, ns: &str, from: &str, to: &str, limit: Duration) -> Result<()> {
    let rc: ReplicationController = client.get(ns, from).await.map_err(|e| error::api(e, &ReplicationController::INFO, from))?;
    delete_and_wait(client, ns, from, "Orphan", limit).await?;
    let mut copy = ReplicationController { spec: rc.spec.clone(), ..Default::default() };
    let mut annotations: BTreeMap<String, String> = rc.meta().annotations.clone();
    for k in [DESIRED_REPLICAS, UPDATE_SOURCE, NEXT_CONTROLLER, ORIGINAL_REPLICAS] {
        annotations.remove(k);
    }
    copy.metadata =
        Some(ObjectMeta { name: to.into(), namespace: ns.into(), labels: rc.meta().labels.clone(), annotations, ..Default::default() });
    client.create(copy).await.map_err(|e| error::api(e, &ReplicationController::INFO, to))?;
    Ok(())
}

/// A count or a percentage of the desired replicas (`1`, `25%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(i32),
    Percent(i32),
}

impl IntOrPercent {
    /// The count for `desired` replicas, a percentage rounded up or down.
    fn resolve(self, desired: i32, round_up: bool) -> i32 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => {
                let v = desired as i64 * p as i64;
                (if round_up { (v + 99) / 100 } else { v / 100 }) as i32
            }
        }
    }
}

fn parse_int_or_percent(s: &str, flag: &str) -> Result<IntOrPercent> {
    let bad = || anyhow!("{flag} {s:?}: write a number of pods (1) or a percentage of the replicas (25%)");
    let v = match s.strip_suffix('%') {
        Some(p) => IntOrPercent::Percent(p.parse().map_err(|_| bad())?),
        None => IntOrPercent::Int(s.parse().map_err(|_| bad())?),
    };
    match v {
        IntOrPercent::Int(n) | IntOrPercent::Percent(n) if n < 0 => Err(bad()),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::pb::core::{Container, PodSpec, PodTemplateSpec, ReplicationControllerSpec};

    fn rc() -> ReplicationController {
        ReplicationController {
            metadata: Some(ObjectMeta {
                name: "web".into(),
                labels: [("app".to_string(), "web".to_string())].into(),
                ..Default::default()
            }),
            spec: Some(ReplicationControllerSpec {
                replicas: Some(3),
                selector: [("app".to_string(), "web".to_string())].into(),
                template: Some(PodTemplateSpec {
                    metadata: Some(ObjectMeta { labels: [("app".to_string(), "web".to_string())].into(), ..Default::default() }),
                    spec: Some(PodSpec {
                        containers: vec![Container { name: "app".into(), image: "busybox:1".into(), ..Default::default() }],
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn should_resolve_counts_and_percentages() {
        assert_eq!(parse_int_or_percent("25%", "x").unwrap().resolve(10, true), 3);
        assert_eq!(parse_int_or_percent("25%", "x").unwrap().resolve(10, false), 2);
        assert_eq!(parse_int_or_percent("2", "x").unwrap().resolve(10, false), 2);
        assert!(parse_int_or_percent("-1", "x").is_err());
        assert!(parse_int_or_percent("a%", "x").is_err());
    }

    #[test]
    fn should_build_the_new_controller_from_an_image_with_a_stable_name() {
        let new = from_image(&rc(), "busybox:2", None, "deployment").unwrap();
        let again = from_image(&rc(), "busybox:2", None, "deployment").unwrap();
        assert_eq!(new.name(), again.name(), "resuming finds the same controller");
        let hash = new.spec.as_ref().unwrap().selector["deployment"].clone();
        assert_eq!(new.name(), format!("web-{hash}"));
        let t = new.spec.as_ref().unwrap().template.clone().unwrap();
        assert_eq!(t.metadata.unwrap().labels["deployment"], hash);
        assert_eq!(t.spec.unwrap().containers[0].image, "busybox:2");
        assert!(from_image(&rc(), "busybox:1", None, "deployment").is_err(), "same image");
    }
}
