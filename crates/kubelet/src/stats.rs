//! Usage statistics like cAdvisor's summary: CPU (as a rate) and memory
//! working set per container, per pod and for the node, sampled every
//! housekeeping interval. The node's figure is the sum of its pods' (several
//! kubelets may share one host, and host-wide figures would not tell their
//! nodes apart).

use berth_base::shutdown::Stop;
use berth_base::sync::{MutexExt, RwLockExt};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tracing::debug;

use crate::agent::Agent;
use crate::runtime::labels;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerUsage {
    pub name: String,
    pub cpu_nano_cores: u64,
    pub memory_working_set_bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsage {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub cpu_nano_cores: u64,
    pub memory_working_set_bytes: u64,
    pub containers: Vec<ContainerUsage>,
}

/// One sample of the node.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub timestamp: Option<DateTime<Utc>>,
    pub cpu_nano_cores: u64,
    pub memory_working_set_bytes: u64,
    pub pods: Vec<PodUsage>,
}

/// The latest sample, and what the next one needs to compute CPU rates.
#[derive(Default)]
pub struct Stats {
    latest: RwLock<Snapshot>,
    /// Container id → (cumulative CPU ns, when read).
    previous: std::sync::Mutex<HashMap<String, (u64, Instant)>>,
}

impl Stats {
    pub fn latest(&self) -> Snapshot {
        self.latest.read_or_recover().clone()
    }

    /// Samples every running container of the node once.
    pub async fn collect(&self, a: &Arc<Agent>) -> Result<(), crate::runtime::Error> {
        let containers = a.runtime.list_containers(&[(labels::NODE, a.node_name())]).await?;
        let mut pods: HashMap<String, PodUsage> = HashMap::new();
        let mut seen = HashMap::new();
        let now = Instant::now();
        let mut running = 0;
        for c in containers.iter().filter(|c| c.is_running()) {
            running += 1;
            let Ok(Some(u)) = a.runtime.usage(&c.id).await else { continue };
            let prev = self.previous.lock_or_recover().get(&c.id).copied();
            let rate = match prev {
                Some((cpu, at)) if now > at && u.cpu_usage_ns_total >= cpu => {
                    ((u.cpu_usage_ns_total - cpu) as f64 / (now - at).as_secs_f64()) as u64
                }
                _ => 0,
            };
            seen.insert(c.id.clone(), (u.cpu_usage_ns_total, now));
            let uid = c.label(labels::POD_UID).to_string();
            let p = pods.entry(uid.clone()).or_insert_with(|| PodUsage {
                namespace: c.label(labels::POD_NAMESPACE).into(),
                name: c.label(labels::POD_NAME).into(),
                uid,
                ..Default::default()
            });
            p.cpu_nano_cores += rate;
            p.memory_working_set_bytes += u.memory_working_set_bytes;
            if c.label(labels::CONTAINER_TYPE) == labels::TYPE_APP {
                p.containers.push(ContainerUsage {
                    name: c.label(labels::CONTAINER_NAME).into(),
                    cpu_nano_cores: rate,
                    memory_working_set_bytes: u.memory_working_set_bytes,
                });
            }
        }
        a.metrics.running_containers.set(running);
        *self.previous.lock_or_recover() = seen;
        let mut pods: Vec<PodUsage> = pods.into_values().collect();
        pods.sort_by(|x, y| (&x.namespace, &x.name).cmp(&(&y.namespace, &y.name)));
        for p in &mut pods {
            p.containers.sort_by(|x, y| x.name.cmp(&y.name));
        }
        let snapshot = Snapshot {
            timestamp: Some(Utc::now()),
            cpu_nano_cores: pods.iter().map(|p| p.cpu_nano_cores).sum(),
            memory_working_set_bytes: pods.iter().map(|p| p.memory_working_set_bytes).sum(),
            pods,
        };
        *self.latest.write_or_recover() = snapshot;
        Ok(())
    }

    /// Samples every `--housekeeping-interval` until `stop`.
    pub async fn run(a: Arc<Agent>, mut stop: Stop) {
        loop {
            if let Err(e) = a.stats.collect(&a).await {
                debug!(cause = %e, "sampling usage failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(a.config.housekeeping_interval) => {}
                () = stop.stopped() => return,
            }
        }
    }
}
