//! Leader election through a Lease, as client-go's leaderelection does:
//! one instance holds the lease and renews it; the others wait and take it
//! over once it has not been renewed for its duration.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_api::pb::core::{Lease, LeaseSpec, ObjectMeta};
use tokio::sync::watch;
use tracing::{info, warn};

use berth_client::client::{Client, Error};

/// How an election runs.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    /// Namespace and name of the Lease (e.g. `kube-system/berth-scheduler`).
    pub namespace: String,
    pub name: String,
    /// This instance's identity (hostname and a random suffix).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// How often candidates retry and the leader renews.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// Kubernetes' defaults (15 s / 10 s / 2 s) for a lease in kube-system.
    pub fn new(name: &str) -> LeaderConfig {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "berth".into());
        LeaderConfig {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: format!("{host}_{}", random_id()),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

fn random_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..8).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect()
}

/// Held while this instance leads; [`Leadership::lost`] resolves if the
/// lease is lost, and [`Leadership::release`] gives it up at shutdown.
pub struct Leadership {
    lost: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    client: Client,
    config: Arc<LeaderConfig>,
}

impl Leadership {
    /// Resolves when the lease could not be renewed within the renew deadline.
    pub async fn lost(&self) {
        let mut rx = self.lost.clone();
        let _ = rx.wait_for(|l| *l).await;
    }

    /// Stops renewing and clears the holder so a standby takes over at once.
    pub async fn release(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Ok(mut lease) = self.client.get::<Lease>(&self.config.namespace, &self.config.name).await {
            let spec = lease.spec.get_or_insert_with(Default::default);
            if spec.holder_identity.as_deref() == Some(self.config.identity.as_str()) {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
                let _ = self.client.update(lease).await;
                info!(lease = %self.config.name, "released leadership");
            }
        }
    }
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    berth_api::time::format_rfc3339_micros(t)
}

/// Runs an election until this instance leads (or `shutdown` resolves
/// first: then None).
pub async fn acquire(client: &Client, config: LeaderConfig, shutdown: impl Future<Output = ()>) -> Option<Leadership> {
    let config = Arc::new(config);
    tokio::pin!(shutdown);
    let mut logged_waiting = false;
    loop {
        match try_acquire_or_renew(client, &config).await {
            Ok(true) => break,
            Ok(false) => {
                if !logged_waiting {
                    info!(lease = %config.name, identity = %config.identity, "waiting for leadership");
                    logged_waiting = true;
                }
            }
            Err(e) => warn!(lease = %config.name, error = %e, "leader election attempt failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.retry_period) => {}
            _ = &mut shutdown => return None,
        }
    }
    info!(lease = %config.name, identity = %config.identity, "became leader");
    let (lost_tx, lost_rx) = watch::channel(false);
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let task_client = client.clone();
    let task_config = config.clone();
    let task = tokio::spawn(async move {
        let mut last_renew = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(task_config.retry_period) => {}
                _ = stop_rx.wait_for(|s| *s) => return,
            }
            match try_acquire_or_renew(&task_client, &task_config).await {
                Ok(true) => last_renew = tokio::time::Instant::now(),
                Ok(false) => {
                    warn!(lease = %task_config.name, "lease taken by another instance");
                    let _ = lost_tx.send(true);
                    return;
                }
                Err(e) => {
                    warn!(lease = %task_config.name, error = %e, "cannot renew the lease");
                    if last_renew.elapsed() > task_config.renew_deadline {
                        let _ = lost_tx.send(true);
                        return;
                    }
                }
            }
        }
    });
    Some(Leadership { lost: lost_rx, stop: stop_tx, task, client: client.clone(), config })
}

/// One step of the election: take the lease if it is free or expired, renew
/// it if it is ours. Ok(true) when this instance holds it afterwards.
async fn try_acquire_or_renew(client: &Client, config: &LeaderConfig) -> Result<bool, Error> {
    let t = now();
    let duration_s = config.lease_duration.as_secs().max(1) as i32;
    let current = match client.get::<Lease>(&config.namespace, &config.name).await {
        Ok(l) => l,
        Err(e) if e.is_not_found() => {
            let lease = Lease {
                metadata: Some(ObjectMeta { name: config.name.clone(), namespace: config.namespace.clone(), ..Default::default() }),
                spec: Some(LeaseSpec {
                    holder_identity: Some(config.identity.clone()),
                    lease_duration_seconds: Some(duration_s),
                    acquire_time: stamp(t),
                    renew_time: stamp(t),
                    lease_transitions: Some(0),
                }),
                ..Default::default()
            };
            return match client.create(lease).await {
                Ok(_) => Ok(true),
                Err(e) if e.is_already_exists() => Ok(false),
                Err(e) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let spec = current.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let ours = holder == config.identity;
    let renewed = berth_api::time::parse_rfc3339(&spec.renew_time);
    let valid_for = chrono::Duration::seconds(spec.lease_duration_seconds.unwrap_or(duration_s) as i64);
    let expired = holder.is_empty() || renewed.is_none_or(|r| r + valid_for < t);
    if !ours && !expired {
        return Ok(false);
    }
    let mut next = current.clone();
    let s = next.spec.get_or_insert_with(Default::default);
    if !ours {
        s.acquire_time = stamp(t);
        s.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    s.holder_identity = Some(config.identity.clone());
    s.lease_duration_seconds = Some(duration_s);
    s.renew_time = stamp(t);
    // The resourceVersion we read is a precondition: two candidates can't both win.
    match client.update(next).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}
