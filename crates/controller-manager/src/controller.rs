//! The worker loop every controller shares: take a key from the
//! rate-limited work queue, sync it, and on failure put it back with
//! per-key exponential backoff (level-triggered: a sync reads the current
//! state from the caches, so retrying it is always safe).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use berth_runtime::WorkQueue;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::error::Error;
use crate::metrics::Metrics;
use berth_base::shutdown::Stop;

/// What a successful sync asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Nothing until something changes.
    Done,
    /// Sync this key again after a while (e.g. to see a pod become available).
    After(Duration),
}

/// The first and longest retry delays of a failing key.
pub const RETRY_BASE: Duration = Duration::from_millis(5);
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// A work queue named after its controller, its metrics exported.
pub fn queue(name: &str, metrics: &Metrics) -> WorkQueue<String> {
    let q = WorkQueue::with_backoff(name, RETRY_BASE, RETRY_MAX);
    metrics.register_queue(&q);
    q
}

/// Runs `workers` workers on `queue` until `stop`, each calling `sync` with
/// one key at a time; returns once they have all finished.
pub async fn run_workers<F, Fut>(name: &'static str, queue: WorkQueue<String>, workers: usize, metrics: Arc<Metrics>, stop: Stop, sync: F)
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Next, Error>> + Send + 'static,
{
    let closer = queue.clone();
    tokio::spawn(async move {
        stop.wait().await;
        closer.shut_down();
    });
    let sync = Arc::new(sync);
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let (queue, sync, metrics) = (queue.clone(), sync.clone(), metrics.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(key) = queue.get().await {
                let started = Instant::now();
                let result = sync(key.clone()).await;
                metrics.observe_sync(name, result.is_ok(), started.elapsed());
                match result {
                    Ok(Next::Done) => queue.forget(&key),
                    Ok(Next::After(d)) => {
                        queue.forget(&key);
                        queue.add_after(key.clone(), d);
                    }
                    Err(e) => {
                        let retries = queue.num_requeues(&key);
                        if retries < 3 {
                            debug!(controller = name, key = %key, retries, cause = %e, "sync failed, retrying");
                        } else {
                            warn!(controller = name, key = %key, retries, cause = %e, "sync failed, retrying");
                        }
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Splits a cache key into namespace and name (`name` alone: no namespace).
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

pub use berth_api::time::{now_rfc3339, parse_rfc3339 as parse_time};
