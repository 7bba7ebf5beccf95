//! One sync of one pod, the seed's steps in order: data directory and
//! volumes, secrets and configMaps, images, the sandbox that owns the
//! pod's network namespace, the pod's resolv.conf and /etc/hosts, init
//! containers one after another, app containers (replaced when their spec
//! changed, restarted per restartPolicy with back-off, killed when their
//! liveness probe fails), then the status. A pod being deleted is terminated gracefully and
//! confirmed to the apiserver.

use berth_base::sync::MutexExt;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::core::{ConfigMap, Container, Pod, Secret};
use berth_client::DeleteParams;
use berth_runtime::events::reference;
use chrono::Utc;
use futures::future::join_all;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::dns::{self, PodDnsFiles, ResolvConf};
use super::service_env;
use super::status::{self, Observed, Waiting, has_ended, instances};
use crate::agent::Agent;
use crate::container::{self, HostVolume, PodPlace, Refs};
use crate::probes::{Poke, Target};
use crate::runtime::{self, ContainerConfig, ContainerInfo, Network, labels};
use crate::volumes;

/// Why a sync failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container engine failed.
    #[error("runtime: {0}")]
    Runtime(#[from] runtime::Error),
    /// The apiserver refused or could not be reached.
    #[error("api: {0}")]
    Api(#[from] berth_client::Error),
    /// The pod's data could not be removed.
    #[error("{0}")]
    Io(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the worker does after a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The pod is gone and everything of it removed.
    Done,
    /// Sync again after this long (or when something changes).
    After(Duration),
}

/// Syncs the pod with uid `uid`: `pod` is its latest object (None when the
/// kubelet only knows its containers), `gone` whether the apiserver has
/// deleted it.
pub async fn sync_pod(a: &Arc<Agent>, uid: &str, pod: Option<Arc<Pod>>, gone: bool, poke: Poke) -> Result<Next> {
    match pod {
        Some(p) if !gone && p.meta().deletion_timestamp.is_empty() => sync_live(a, uid, &p, poke).await,
        other => terminate(a, uid, other.as_deref(), gone).await,
    }
}

/// How long a pod's grace period is.
fn grace_period(pod: Option<&Pod>, containers: &[ContainerInfo]) -> Duration {
    let secs = pod
        .and_then(|p| p.meta().deletion_grace_period_seconds.or(p.spec.as_ref().and_then(|s| s.termination_grace_period_seconds)))
        .or_else(|| containers.iter().find_map(|c| c.label(labels::GRACE_PERIOD).parse().ok()))
        .unwrap_or(30);
    Duration::from_secs(secs.max(0) as u64)
}

/// Terminates a pod: SIGTERM, the grace period, SIGKILL; keeps its logs;
/// removes its containers and data; confirms the deletion.
async fn terminate(a: &Arc<Agent>, uid: &str, pod: Option<&Pod>, gone: bool) -> Result<Next> {
    let node = a.node_name().to_string();
    let containers = a.runtime.list_containers(&[(labels::NODE, &node), (labels::POD_UID, uid)]).await?;
    let grace = grace_period(pod, &containers);
    let running: Vec<&ContainerInfo> =
        containers.iter().filter(|c| c.is_running() && c.label(labels::CONTAINER_TYPE) != labels::TYPE_SANDBOX).collect();
    if !running.is_empty() {
        info!(pod = %describe(pod, uid), containers = running.len(), grace = ?grace, "killing the pod's containers");
        if let Some(p) = pod {
            a.recorder.normal(
                &reference(p),
                "Killing",
                format!("Stopping the pod's containers with a grace period of {}s", grace.as_secs()),
            );
        }
    }
    a.probes.forget_pod(uid);
    let stops = running.iter().map(|c| a.runtime.stop_container(&c.id, grace));
    for r in join_all(stops).await {
        if let Err(e) = r {
            warn!(pod = %describe(pod, uid), cause = %e, "stopping a container failed");
        }
    }
    for c in containers.iter().filter(|c| c.is_running() && c.label(labels::CONTAINER_TYPE) == labels::TYPE_SANDBOX) {
        a.runtime.stop_container(&c.id, Duration::ZERO).await?;
    }
    // Keep the logs of the last instance of each container for `logs --deleted`.
    if let Some(first) = containers.first() {
        let (ns, name) = (first.label(labels::POD_NAMESPACE).to_string(), first.label(labels::POD_NAME).to_string());
        let mut seen = HashSet::new();
        let mut newest: Vec<&ContainerInfo> =
            containers.iter().filter(|c| c.label(labels::CONTAINER_TYPE) != labels::TYPE_SANDBOX).collect();
        newest.sort_by_key(|c| std::cmp::Reverse(c.restart_count()));
        for c in newest {
            let cname = c.label(labels::CONTAINER_NAME).to_string();
            if seen.insert(cname.clone()) {
                a.pod_logs.save(&a.runtime, &ns, &name, uid, &cname, &c.id).await;
            }
        }
    }
    for c in &containers {
        a.runtime.remove_container(&c.id).await?;
    }
    a.ipam.lock_or_recover().release(uid);
    a.restarts.lock_or_recover().forget_prefix(uid);
    a.started.lock_or_recover().remove(uid);
    a.images.forget(uid);
    volumes::remove(a.root_dir(), uid).map_err(|e| Error::Io(format!("cannot remove the pod's data: {e}")))?;
    if let Some(p) = pod
        && !gone
    {
        let params = DeleteParams { grace_period_seconds: Some(0), uid: uid.to_string(), ..Default::default() };
        match a.client.delete::<Pod>(p.namespace(), p.name(), &params).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() || e.is_conflict() => {}
            Err(e) => return Err(e.into()),
        }
    }
    if !containers.is_empty() || pod.is_some() {
        info!(pod = %describe(pod, uid), "pod terminated and removed");
    }
    Ok(Next::Done)
}

fn describe(pod: Option<&Pod>, uid: &str) -> String {
    match pod {
        Some(p) => format!("{}/{}", p.namespace(), p.name()),
        None => format!("uid {uid}"),
    }
}

/// Fetches the secrets and configMaps the pod's volumes and environment
/// refer to.
async fn fetch_refs(a: &Agent, pod: &Pod) -> Result<Refs> {
    let (mut secrets, mut config_maps) = volumes::volume_refs(pod);
    for c in pod.spec.iter().flat_map(|s| s.init_containers.iter().chain(s.containers.iter())) {
        let (s, m) = container::env_refs(c);
        secrets.extend(s);
        config_maps.extend(m);
    }
    let mut refs = Refs::default();
    let ns = pod.namespace();
    for name in secrets {
        if refs.secrets.contains_key(&name) {
            continue;
        }
        let data = match a.client.get::<Secret>(ns, &name).await {
            Ok(s) => Some(s.data),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        refs.secrets.insert(name, data);
    }
    for name in config_maps {
        if refs.config_maps.contains_key(&name) {
            continue;
        }
        let data = match a.client.get::<ConfigMap>(ns, &name).await {
            Ok(c) => {
                let mut d: std::collections::BTreeMap<String, Vec<u8>> = c.binary_data;
                d.extend(c.data.into_iter().map(|(k, v)| (k, v.into_bytes())));
                Some(d)
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        refs.config_maps.insert(name, data);
    }
    Ok(refs)
}

/// A chrono time as a tokio instant (for back-off arithmetic).
fn instant_of(t: Option<chrono::DateTime<Utc>>) -> Instant {
    let now = Instant::now();
    match t {
        Some(t) => {
            let ago = (Utc::now() - t).to_std().unwrap_or_default();
            now.checked_sub(ago).unwrap_or(now)
        }
        None => now,
    }
}

/// What one sync of a live pod gathers as it goes.
struct Sync<'a> {
    a: &'a Arc<Agent>,
    pod: &'a Pod,
    uid: &'a str,
    waiting: HashMap<(&'static str, String), Waiting>,
    /// Sync again after at most this long.
    requeue: Duration,
    /// Something was started or stopped: list the containers again.
    changed: bool,
    /// The pod's resolv.conf and /etc/hosts, once written.
    dns_files: Option<PodDnsFiles>,
}

impl Sync<'_> {
    fn wait(&mut self, kind: &'static str, name: &str, reason: &str, message: String) {
        self.waiting.insert((kind, name.to_string()), Waiting { reason: reason.into(), message });
    }

    fn soon(&mut self, d: Duration) {
        self.requeue = self.requeue.min(d);
    }

    /// Creates and starts one instance of a container.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &mut self,
        kind: &'static str,
        c: &Container,
        restarts: i32,
        sandbox: &str,
        pod_ip: &str,
        volumes: &HashMap<String, HostVolume>,
        refs: &Refs,
    ) -> Result<()> {
        let a = self.a;
        let policy = if c.image_pull_policy.is_empty() { "IfNotPresent" } else { c.image_pull_policy.as_str() };
        if let Err(e) = a.images.ensure(self.uid, &c.image, policy).await {
            if e.reason == "ErrImagePull" {
                a.recorder.warning(&reference(self.pod), "Failed", format!("Failed to pull image \"{}\": {}", c.image, e.message));
            }
            let retry = a.images.retry_in(self.uid, &c.image).unwrap_or(Duration::from_secs(1));
            self.soon(retry.max(Duration::from_millis(200)));
            self.wait(kind, &c.name, e.reason, e.message);
            return Ok(());
        }
        let place = PodPlace { node_name: a.node_name().into(), host_ip: a.config.node_ip.clone(), pod_ip: pod_ip.into() };
        let dns_binds = self.dns_files.as_ref().map(|f| f.binds(c)).unwrap_or_default();
        let config = service_environment(a, self.pod)
            .and_then(|services| container::environment(self.pod, c, &place, refs, &services))
            .and_then(|env| Ok((env, container::binds(c, volumes)?.into_iter().chain(dns_binds).collect())))
            .and_then(|(env, binds)| container::app_config(a.node_name(), self.pod, c, kind, restarts, sandbox, env, binds));
        let config = match config {
            Ok(cfg) => cfg,
            Err(e) => {
                a.recorder.warning(&reference(self.pod), "Failed", format!("Error: {e}"));
                self.wait(kind, &c.name, "CreateContainerConfigError", e.0);
                self.soon(Duration::from_secs(2));
                return Ok(());
            }
        };
        self.changed = true;
        let id = match a.runtime.create_container(&config).await {
            Ok(id) => id,
            Err(e) => {
                a.recorder.warning(&reference(self.pod), "Failed", format!("Error: {e}"));
                self.wait(kind, &c.name, "CreateContainerError", e.to_string());
                self.soon(Duration::from_secs(2));
                return Ok(());
            }
        };
        match a.runtime.start_container(&id).await {
            Ok(()) => {
                a.metrics.container_starts.inc();
                debug!(pod = %format!("{}/{}", self.pod.namespace(), self.pod.name()), container = %c.name, restarts, "container started");
                a.recorder.normal(&reference(self.pod), "Started", format!("Started container {}", c.name));
            }
            Err(e) => {
                // The instance stays as created-with-an-error: the restart policy handles it.
                a.recorder.warning(&reference(self.pod), "Failed", format!("Error: {e}"));
                self.soon(Duration::from_millis(500));
            }
        }
        Ok(())
    }
}

/// Whether an ended instance should be followed by another one.
fn should_restart(policy: &str, c: &ContainerInfo) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => c.exit_code != 0 || c.oom_killed || c.state != runtime::ContainerState::Exited,
        _ => true,
    }
}

/// Syncs a pod that should run.
async fn sync_live(a: &Arc<Agent>, uid: &str, pod: &Pod, poke: Poke) -> Result<Next> {
    let node = a.node_name().to_string();
    let spec = pod.spec.clone().unwrap_or_default();
    let key = format!("{}/{}", pod.namespace(), pod.name());
    let mut containers = a.runtime.list_containers(&[(labels::NODE, &node), (labels::POD_UID, uid)]).await?;
    let old_phase = pod.status.as_ref().map(|s| s.phase.clone()).unwrap_or_default();
    if matches!(old_phase.as_str(), "Succeeded" | "Failed") {
        // Kubernetes never restarts a finished pod: nothing of it runs.
        let grace = grace_period(Some(pod), &containers);
        a.probes.forget_pod(uid);
        for c in containers.iter().filter(|c| c.is_running()) {
            a.runtime.stop_container(&c.id, grace).await?;
        }
        a.ipam.lock_or_recover().release(uid);
        return Ok(Next::After(a.config.sync_frequency * 6));
    }

    let mut s = Sync { a, pod, uid, waiting: HashMap::new(), requeue: a.config.sync_frequency, changed: false, dns_files: None };
    let mut message: Option<(String, String)> = None;

    // 1-3. Data directory, volumes, and the secrets and configMaps they and the environment need.
    let refs = fetch_refs(a, pod).await?;
    let volumes = match volumes::prepare(a.root_dir(), pod, &refs) {
        Ok(v) => Some(v),
        Err(e) => {
            a.recorder.warning(&reference(pod), "FailedMount", e.0.clone());
            message = Some(("FailedMount".into(), e.0));
            s.soon(Duration::from_secs(2));
            None
        }
    };

    // 5. The sandbox: the pod's network namespace and address.
    let mut sandbox = instances(&containers, labels::TYPE_SANDBOX, labels::SANDBOX_NAME).first().map(|c| (*c).clone());
    if volumes.is_some() && !sandbox.as_ref().is_some_and(|c| c.is_running()) {
        match start_sandbox(a, pod, uid, &containers).await {
            Ok(()) => {}
            Err(SandboxError::NotReady(reason, msg)) => {
                message = Some((reason, msg));
                s.soon(Duration::from_secs(1));
            }
            Err(SandboxError::Sync(e)) => return Err(e),
        }
        containers = a.runtime.list_containers(&[(labels::NODE, &node), (labels::POD_UID, uid)]).await?;
        sandbox = instances(&containers, labels::TYPE_SANDBOX, labels::SANDBOX_NAME).first().map(|c| (*c).clone());
    }
    let sandbox = sandbox.filter(|c| c.is_running());
    let pod_ip = sandbox.as_ref().map(|c| c.label(labels::POD_IP).to_string()).unwrap_or_default();

    // The pod's resolv.conf and /etc/hosts, mounted into every container.
    if sandbox.is_some() && volumes.is_some() {
        match write_dns_files(a, pod, uid, &pod_ip) {
            Ok(files) => s.dns_files = Some(files),
            Err(e) => {
                let msg = format!("cannot write the pod's resolv.conf and /etc/hosts: {e}");
                a.recorder.warning(&reference(pod), "FailedMount", msg.clone());
                message = Some(("FailedMount".into(), msg));
                s.soon(Duration::from_secs(2));
            }
        }
    }

    // 6. Init containers, one after another, then the app containers.
    let app_started = spec.containers.iter().any(|c| !instances(&containers, labels::TYPE_APP, &c.name).is_empty());
    let mut initialized = app_started || spec.init_containers.is_empty();
    let mut init_failed = false;
    if let (Some(sb), Some(vols), true) = (&sandbox, &volumes, s.dns_files.is_some()) {
        if !initialized {
            initialized = true;
            for ic in &spec.init_containers {
                let all = instances(&containers, labels::TYPE_INIT, &ic.name);
                let cur = all.first().map(|c| (*c).clone());
                match cur {
                    Some(c) if has_ended(&c) && c.exit_code == 0 && c.state == runtime::ContainerState::Exited => continue,
                    Some(c) if c.is_running() => {}
                    Some(c) if has_ended(&c) => {
                        if spec.restart_policy == "Never" {
                            init_failed = true;
                        } else {
                            restart_with_backoff(&mut s, labels::TYPE_INIT, ic, &c, &sb.id, &pod_ip, vols, &refs).await?;
                        }
                    }
                    Some(_) => {}
                    None => s.start(labels::TYPE_INIT, ic, 0, &sb.id, &pod_ip, vols, &refs).await?,
                }
                initialized = false;
                break;
            }
        }
        if initialized {
            for c in &spec.containers {
                let hash = container::spec_hash(c);
                let cur = instances(&containers, labels::TYPE_APP, &c.name).first().map(|c| (*c).clone());
                match cur {
                    None => s.start(labels::TYPE_APP, c, 0, &sb.id, &pod_ip, vols, &refs).await?,
                    Some(i) if i.is_running() => {
                        if i.label(labels::CONTAINER_HASH) != hash {
                            info!(pod = %key, container = %c.name, "container spec changed, replacing it");
                            a.recorder.normal(
                                &reference(pod),
                                "Killing",
                                format!("Container {} definition changed, will be restarted", c.name),
                            );
                            a.runtime.stop_container(&i.id, grace_period(Some(pod), &containers)).await?;
                            s.start(labels::TYPE_APP, c, i.restart_count() + 1, &sb.id, &pod_ip, vols, &refs).await?;
                        } else if let Some(why) = a.probes.liveness_failure(&i.id) {
                            info!(pod = %key, container = %c.name, cause = %why, "liveness probe failed, killing the container");
                            a.recorder.warning(&reference(pod), "Unhealthy", why);
                            a.recorder.normal(
                                &reference(pod),
                                "Killing",
                                format!("Container {} failed liveness probe, will be restarted", c.name),
                            );
                            let grace = c.liveness_probe.as_ref().and_then(|p| p.termination_grace_period_seconds);
                            let grace =
                                grace.map(|g| Duration::from_secs(g.max(0) as u64)).unwrap_or_else(|| grace_period(Some(pod), &containers));
                            a.runtime.stop_container(&i.id, grace).await?;
                            s.changed = true;
                            s.soon(Duration::ZERO);
                        } else {
                            let target = Target {
                                runtime: a.runtime.clone(),
                                container_id: i.id.clone(),
                                pod_ip: pod_ip.clone(),
                                ports: c.ports.clone(),
                                fake: !a.runtime.needs_pod_cidr(),
                            };
                            a.probes.ensure(uid, c, target, poke.clone());
                        }
                    }
                    Some(i) if has_ended(&i) => {
                        if should_restart(&spec.restart_policy, &i) {
                            restart_with_backoff(&mut s, labels::TYPE_APP, c, &i, &sb.id, &pod_ip, vols, &refs).await?;
                        }
                    }
                    // Created and not started yet (a sync was interrupted): start it.
                    Some(i) => {
                        s.changed = true;
                        if let Err(e) = a.runtime.start_container(&i.id).await {
                            debug!(pod = %key, container = %c.name, cause = %e, "starting a created container failed");
                        }
                    }
                }
            }
        }
    }

    if s.changed {
        containers = a.runtime.list_containers(&[(labels::NODE, &node), (labels::POD_UID, uid)]).await?;
    }
    collect_garbage(a, &containers).await;
    let running: HashSet<String> = containers.iter().filter(|c| c.is_running()).map(|c| c.id.clone()).collect();
    a.probes.retain(uid, &running);

    // 9. Status.
    let ready = |id: &str| a.probes.ready(id);
    let observed = Observed {
        pod,
        containers: &containers,
        waiting: &s.waiting,
        ready: &ready,
        host_ip: &a.config.node_ip,
        pod_ip: Some(pod_ip.as_str()).filter(|ip| !ip.is_empty()),
        scheme: &a.scheme,
        message,
        init_failed,
        now: Utc::now(),
    };
    let status = status::compute(&observed);
    let all_running = !status.container_statuses.is_empty()
        && status.container_statuses.iter().all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
    if all_running
        && a.started.lock_or_recover().insert(uid.to_string())
        && let Ok(created) = chrono::DateTime::parse_from_rfc3339(&pod.meta().creation_timestamp)
    {
        let secs = (Utc::now() - created.with_timezone(&Utc)).num_milliseconds().max(0) as f64 / 1000.0;
        a.metrics.pod_start_duration.observe(secs);
    }
    if pod.status.as_ref() != Some(&status) {
        let mut next = pod.clone();
        if status.phase != old_phase {
            info!(pod = %key, from = %old_phase, to = %status.phase, ip = %status.pod_ip, "pod phase changed");
        }
        next.status = Some(status);
        next.metadata_mut().resource_version.clear();
        match a.client.update_status(next).await {
            Ok(_) => {}
            // Deleted meanwhile: the next sync terminates it.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Next::After(s.requeue))
}

/// Writes the pod's resolv.conf (by its dnsPolicy and dnsConfig) and
/// /etc/hosts into its data directory, reporting a resolv.conf that had to
/// be cut to the resolver's limits.
fn write_dns_files(a: &Agent, pod: &Pod, uid: &str, pod_ip: &str) -> std::io::Result<PodDnsFiles> {
    let host =
        a.config.resolv_conf.as_ref().and_then(|p| std::fs::read_to_string(p).ok()).map(|t| ResolvConf::parse(&t)).unwrap_or_default();
    let cluster = dns::ClusterDns {
        servers: a.config.cluster_dns.iter().map(|ip| ip.to_string()).collect(),
        domain: a.config.cluster_domain.clone(),
    };
    let formed = dns::resolv_conf(pod, &cluster, &host);
    let hosts = dns::hosts_file(pod, pod_ip, &a.config.cluster_domain);
    let files = PodDnsFiles::in_dir(&volumes::pod_dir(a.root_dir(), uid));
    if files.write(&formed.conf.render(), &hosts)? {
        for w in formed.warnings {
            a.recorder.warning(&reference(pod), "DNSConfigForming", w);
        }
    }
    Ok(files)
}

/// The Service variables of the pod's containers, from the Services known
/// now; none until the kubelet has read the Services once (as Kubernetes,
/// which refuses to start a container then).
fn service_environment(a: &Agent, pod: &Pod) -> Result<std::collections::BTreeMap<String, String>, container::ConfigError> {
    if !a.services.is_ready() {
        return Err(container::ConfigError("services have not yet been read at least once, cannot construct envvars".into()));
    }
    let links = pod.spec.as_ref().and_then(|s| s.enable_service_links).unwrap_or(true);
    Ok(service_env::for_pod(pod.namespace(), links, &a.services.list()))
}

/// Starts a new instance of an ended container, unless it is backing off.
#[allow(clippy::too_many_arguments)]
async fn restart_with_backoff(
    s: &mut Sync<'_>,
    kind: &'static str,
    c: &Container,
    ended: &ContainerInfo,
    sandbox: &str,
    pod_ip: &str,
    volumes: &HashMap<String, HostVolume>,
    refs: &Refs,
) -> Result<()> {
    let key = format!("{}/{kind}/{}", s.uid, c.name);
    let failed_at = instant_of(ended.finished_at.or(ended.created));
    let ran = match (ended.started_at, ended.finished_at) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    };
    let now = Instant::now();
    let remaining = {
        let mut b = s.a.restarts.lock_or_recover();
        if ran >= crate::backoff::RESET_AFTER_RUNNING {
            b.reset(&key);
        }
        let r = b.remaining(&key, failed_at, now);
        if r.is_none() {
            b.next(&key, now);
        }
        r.map(|r| (r, b.delay(&key)))
    };
    match remaining {
        Some((wait, delay)) => {
            let msg = format!(
                "back-off {}s restarting failed container={} pod={}_{}({})",
                delay.as_secs(),
                c.name,
                s.pod.name(),
                s.pod.namespace(),
                s.uid
            );
            s.wait(kind, &c.name, "CrashLoopBackOff", msg);
            s.soon(wait + Duration::from_millis(50));
            Ok(())
        }
        None => s.start(kind, c, ended.restart_count() + 1, sandbox, pod_ip, volumes, refs).await,
    }
}

/// Removes instances older than the previous one of each container (the
/// previous one stays for `lastState` and `logs --previous`).
async fn collect_garbage(a: &Agent, containers: &[ContainerInfo]) {
    let mut groups: HashMap<(String, String), Vec<&ContainerInfo>> = HashMap::new();
    for c in containers {
        groups.entry((c.label(labels::CONTAINER_TYPE).to_string(), c.label(labels::CONTAINER_NAME).to_string())).or_default().push(c);
    }
    for ((kind, _), mut v) in groups {
        v.sort_by(|x, y| y.restart_count().cmp(&x.restart_count()).then(y.created.cmp(&x.created)));
        let keep = if kind == labels::TYPE_SANDBOX { 1 } else { 2 };
        for c in v.into_iter().skip(keep).filter(|c| !c.is_running()) {
            if let Err(e) = a.runtime.remove_container(&c.id).await {
                debug!(container = %c.name, cause = %e, "removing an old container failed");
            }
        }
    }
}

/// Why the sandbox could not be started.
enum SandboxError {
    /// The node cannot give the pod a network yet (reason, message).
    NotReady(String, String),
    Sync(Error),
}

impl From<runtime::Error> for SandboxError {
    fn from(e: runtime::Error) -> Self {
        SandboxError::Sync(e.into())
    }
}

/// A made-up address for hollow nodes' pods, stable per pod.
fn fake_ip(uid: &str) -> String {
    let h = container::fnv1a(uid.as_bytes());
    format!("10.{}.{}.{}", (h >> 16) as u8, (h >> 8) as u8, (h as u8).max(2))
}

/// Starts the pod's sandbox on the cluster network with the pod's address,
/// after stopping what ran in a previous (dead) sandbox.
async fn start_sandbox(a: &Arc<Agent>, pod: &Pod, uid: &str, containers: &[ContainerInfo]) -> Result<(), SandboxError> {
    let node = a.node_name();
    let ip = if a.runtime.needs_pod_cidr() {
        let cidr = a.pod_cidr().ok_or_else(|| SandboxError::NotReady("NetworkNotReady".into(), crate::ipam::Error::NoCidr.to_string()))?;
        let mut ipam = a.ipam.lock_or_recover();
        if let Err(e) = ipam.set_cidr(&cidr) {
            return Err(SandboxError::NotReady("NetworkNotReady".into(), e.to_string()));
        }
        ipam.allocate(uid).map_err(|e| SandboxError::NotReady("NetworkNotReady".into(), e.to_string()))?.to_string()
    } else {
        fake_ip(uid)
    };
    if let Err(e) = a.images.ensure(uid, &a.config.pause_image, "IfNotPresent").await {
        return Err(SandboxError::NotReady(
            "SandboxImageNotPresent".into(),
            format!("cannot get the sandbox image {}: {}", a.config.pause_image, e.message),
        ));
    }
    // What ran in a previous sandbox lost its network: stop it.
    let grace = grace_period(Some(pod), containers);
    let mut attempt = 0;
    for c in containers {
        if c.label(labels::CONTAINER_TYPE) == labels::TYPE_SANDBOX {
            attempt = attempt.max(c.restart_count() + 1);
            a.runtime.remove_container(&c.id).await?;
        } else if c.is_running() {
            a.runtime.stop_container(&c.id, grace).await?;
        }
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let mut port_bindings = Vec::new();
    for c in &spec.containers {
        for p in c.ports.iter().filter(|p| p.host_port > 0) {
            let proto = if p.protocol.is_empty() { "TCP".to_string() } else { p.protocol.clone() };
            port_bindings.push((p.container_port, proto, p.host_port, p.host_ip.clone()));
        }
    }
    let hostname = dns::hostname(pod);
    let mut sandbox_labels = container::pod_labels(node, pod, labels::SANDBOX_NAME, labels::TYPE_SANDBOX, "", attempt);
    sandbox_labels.insert(labels::POD_IP.into(), ip.clone());
    let config = ContainerConfig {
        name: container::container_name(node, pod, labels::SANDBOX_NAME, attempt),
        image: a.config.pause_image.clone(),
        labels: sandbox_labels,
        entrypoint: None,
        cmd: None,
        env: Vec::new(),
        working_dir: String::new(),
        network: Network::Bridge { network: a.config.cluster_network.clone(), ip: ip.clone(), hostname, port_bindings },
        binds: Vec::new(),
        memory_limit_bytes: None,
        cpu_quota: None,
        cpu_period: None,
        cpu_shares: Some(2),
        privileged: false,
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        user: None,
        stdin: false,
        stdin_once: false,
        tty: false,
    };
    let started = async {
        let id = a.runtime.create_container(&config).await?;
        if let Err(e) = a.runtime.start_container(&id).await {
            let _ = a.runtime.remove_container(&id).await;
            return Err(e);
        }
        Ok(id)
    }
    .await;
    match started {
        Ok(_) => Ok(()),
        Err(e) => {
            // Another address next time.
            a.ipam.lock_or_recover().release(uid);
            a.recorder.warning(&reference(pod), "FailedCreatePodSandBox", format!("Failed to create pod sandbox: {e}"));
            Err(SandboxError::NotReady("FailedCreatePodSandBox".into(), format!("failed to create the pod sandbox: {e}")))
        }
    }
}
