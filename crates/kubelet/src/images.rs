//! Images per `imagePullPolicy` (Always, IfNotPresent, Never): pulls of one
//! image are shared by every pod that waits for it, pulls of different
//! images run in parallel, and an image that cannot be had is retried with
//! back-off (`ErrImagePull`, then `ImagePullBackOff`, with the engine's message).

use berth_base::sync::MutexExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::metrics::{Metrics, ResultLabels};
use crate::runtime::Runtime;

/// Why a container's image is not there, as its waiting reason shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    /// `ErrImagePull`, `ImagePullBackOff`, `ErrImageNeverPull` or `InvalidImageName`.
    pub reason: &'static str,
    pub message: String,
}

type Pull = Shared<BoxFuture<'static, Result<String, String>>>;
/// When a pull last failed, and the engine's message.
type Failure = (Instant, String);

/// The node's image puller.
pub struct Images {
    runtime: Arc<dyn Runtime>,
    metrics: Metrics,
    pulls: Mutex<HashMap<String, Pull>>,
    /// Per pod and image: the delay before the next pull, and the last error.
    backoff: Mutex<(Backoff, HashMap<String, Failure>)>,
}

impl Images {
    pub fn new(runtime: Arc<dyn Runtime>, metrics: Metrics) -> Images {
        Images { runtime, metrics, pulls: Mutex::new(HashMap::new()), backoff: Mutex::new((Backoff::default(), HashMap::new())) }
    }

    /// The id of `image` once it is present, pulling it as `policy` says.
    /// `key` (the pod's uid) scopes the back-off, as Kubernetes does.
    pub async fn ensure(&self, key: &str, image: &str, policy: &str) -> Result<String, ImageError> {
        if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
            return Err(ImageError { reason: "InvalidImageName", message: format!("invalid image name {image:?}") });
        }
        if policy != "Always" {
            match self.runtime.image_id(image).await {
                Ok(Some(id)) => return Ok(id),
                Ok(None) => {}
                Err(e) => return Err(ImageError { reason: "ErrImagePull", message: e.to_string() }),
            }
            if policy == "Never" {
                return Err(ImageError {
                    reason: "ErrImageNeverPull",
                    message: format!("Container image \"{image}\" is not present with pull policy of Never"),
                });
            }
        }
        let bkey = format!("{key}/{image}");
        {
            let guard = self.backoff.lock_or_recover();
            if let Some((failed_at, msg)) = guard.1.get(&bkey)
                && guard.0.remaining(&bkey, *failed_at, Instant::now()).is_some()
            {
                return Err(ImageError { reason: "ImagePullBackOff", message: format!("Back-off pulling image \"{image}\": {msg}") });
            }
        }
        match self.pull(image).await {
            Ok(id) => {
                let mut guard = self.backoff.lock_or_recover();
                guard.0.reset(&bkey);
                guard.1.remove(&bkey);
                Ok(id)
            }
            Err(msg) => {
                let mut guard = self.backoff.lock_or_recover();
                let now = Instant::now();
                guard.0.next(&bkey, now);
                guard.1.insert(bkey, (now, msg.clone()));
                Err(ImageError { reason: "ErrImagePull", message: msg })
            }
        }
    }

    /// How long until the next pull of `image` for `key` may be tried.
    pub fn retry_in(&self, key: &str, image: &str) -> Option<Duration> {
        let bkey = format!("{key}/{image}");
        let guard = self.backoff.lock_or_recover();
        let (failed_at, _) = guard.1.get(&bkey)?;
        guard.0.remaining(&bkey, *failed_at, Instant::now())
    }

    /// Forgets the back-off of a pod that is gone.
    pub fn forget(&self, key: &str) {
        let mut guard = self.backoff.lock_or_recover();
        guard.0.forget_prefix(key);
        guard.1.retain(|k, _| !k.starts_with(key));
    }

    async fn pull(&self, image: &str) -> Result<String, String> {
        let shared = {
            let mut pulls = self.pulls.lock_or_recover();
            pulls
                .entry(image.to_string())
                .or_insert_with(|| {
                    let runtime = self.runtime.clone();
                    let name = image.to_string();
                    let metrics = self.metrics.clone();
                    async move {
                        tracing::info!(image = %name, "pulling image");
                        let r = runtime.pull_image(&name).await.map_err(|e| e.to_string());
                        let result = if r.is_ok() { "success" } else { "failure" };
                        metrics.image_pulls.get_or_create(&ResultLabels { result: result.into() }).inc();
                        r
                    }
                    .boxed()
                    .shared()
                })
                .clone()
        };
        let r = shared.await;
        self.pulls.lock_or_recover().remove(image);
        r
    }
}
