//! The logs of deleted pods, kept on the node for `--deleted-pod-logs-ttl`
//! (beyond Kubernetes: `berthctl logs --deleted POD`). Each container's last
//! output is copied when its pod is removed, under
//! `<root-dir>/pod-logs/<namespace>_<pod>_<uid>/<container>.log`.

use berth_base::shutdown::Stop;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

use crate::runtime::{LogOptions, Output, Runtime};

/// The most kept of one container's log.
const MAX_BYTES: u64 = 10 * 1024 * 1024;

/// The store of deleted pods' logs.
pub struct PodLogs {
    dir: PathBuf,
    ttl: Duration,
}

impl PodLogs {
    pub fn new(root: &Path, ttl: Duration) -> PodLogs {
        PodLogs { dir: root.join("pod-logs"), ttl }
    }

    fn pod_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.dir.join(format!("{namespace}_{name}_{uid}"))
    }

    /// Copies a container's output before it is removed.
    pub async fn save(&self, runtime: &Arc<dyn Runtime>, namespace: &str, name: &str, uid: &str, container: &str, id: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let dir = self.pod_dir(namespace, name, uid);
        if let Err(e) = tokio::fs::create_dir_all(&dir).await {
            warn!(dir = %dir.display(), cause = %e, "cannot keep a deleted pod's logs");
            return;
        }
        let path = dir.join(format!("{container}.log"));
        let Ok(mut file) = tokio::fs::File::create(&path).await else { return };
        let mut logs = runtime.logs(id, &LogOptions { follow: false, tail_lines: None, timestamps: false });
        let mut written = 0u64;
        let read = async {
            while let Some(chunk) = logs.next().await {
                let bytes = match chunk {
                    Ok(Output::Stdout(b)) | Ok(Output::Stderr(b)) => b,
                    Err(e) => {
                        debug!(container, cause = %e, "reading a container's logs failed");
                        break;
                    }
                };
                written += bytes.len() as u64;
                if written > MAX_BYTES || file.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = file.flush().await;
        };
        // A container's logs are read from disk by the engine: bounded.
        let _ = tokio::time::timeout(Duration::from_secs(30), read).await;
    }

    /// The kept log of a container of the most recently deleted pod named
    /// `namespace/name`; `container` empty: the pod's only container.
    pub fn read(&self, namespace: &str, name: &str, container: &str) -> Result<Vec<u8>, String> {
        let prefix = format!("{namespace}_{name}_");
        let mut dirs: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(&self.dir)
            .map_err(|_| format!("no logs kept for a deleted pod {namespace}/{name}"))?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        dirs.sort();
        let (_, dir) = dirs.pop().ok_or_else(|| format!("no logs kept for a deleted pod {namespace}/{name}"))?;
        let file = if container.is_empty() {
            let logs: Vec<PathBuf> = std::fs::read_dir(&dir).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect();
            match logs.as_slice() {
                [one] => one.clone(),
                _ => {
                    let names: Vec<String> = logs.iter().filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).collect();
                    return Err(format!("a container name must be specified for pod {name}, choose one of: {names:?}"));
                }
            }
        } else {
            dir.join(format!("{container}.log"))
        };
        std::fs::read(&file).map_err(|_| format!("no logs kept for container {container:?} of deleted pod {namespace}/{name}"))
    }

    /// Removes logs older than the TTL; runs until `stop` says so.
    pub async fn clean(&self, mut stop: Stop) {
        loop {
            if let Ok(entries) = std::fs::read_dir(&self.dir) {
                for e in entries.flatten() {
                    let old = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age > self.ttl);
                    if old {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
            let period = (self.ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(300));
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                () = stop.stopped() => return,
            }
        }
    }
}
