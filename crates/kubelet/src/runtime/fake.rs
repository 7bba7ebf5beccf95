//! A runtime that runs nothing, for hollow nodes (scale tests of the
//! control plane, as Kubernetes' kubemark): containers are records in
//! memory that "run" forever, images are always present. Never used by a
//! kubelet test.

use berth_base::sync::MutexExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::{
    ContainerConfig, ContainerEvent, ContainerInfo, ContainerState, Error, ExecResult, ExecSession, Image, LogOptions, Output, Result,
    Runtime, RuntimeVersion, Usage,
};

/// Containers in memory.
#[derive(Default)]
pub struct FakeRuntime {
    containers: Mutex<HashMap<String, ContainerInfo>>,
    next: AtomicU64,
}

impl FakeRuntime {
    pub fn new() -> FakeRuntime {
        FakeRuntime::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, ContainerInfo>) -> T) -> T {
        let mut guard = self.containers.lock_or_recover();
        f(&mut guard)
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<RuntimeVersion> {
        Ok(RuntimeVersion { version: "fake://0.1.0".into() })
    }

    fn needs_pod_cidr(&self) -> bool {
        false
    }

    async fn ensure_network(&self, _name: &str, _subnet: &str, _gateway: &str) -> Result<String> {
        Ok("fake".into())
    }

    async fn list_images(&self) -> Result<Vec<Image>> {
        Ok(Vec::new())
    }

    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        Ok(Some(format!("fake:{image}")))
    }

    async fn pull_image(&self, image: &str) -> Result<String> {
        Ok(format!("fake:{image}"))
    }

    async fn list_containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>> {
        Ok(self.with(|m| m.values().filter(|c| labels.iter().all(|(k, v)| c.labels.get(*k).is_some_and(|x| x == v))).cloned().collect()))
    }

    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        Ok(self.with(|m| m.get(id).cloned()))
    }

    async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        let id = format!("fake{:016x}", self.next.fetch_add(1, Ordering::Relaxed));
        let info = ContainerInfo {
            id: id.clone(),
            name: config.name.clone(),
            labels: config.labels.clone(),
            image: config.image.clone(),
            image_id: format!("fake:{}", config.image),
            state: ContainerState::Created,
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
            created: Some(Utc::now()),
            started_at: None,
            finished_at: None,
        };
        self.with(|m| m.insert(id.clone(), info));
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.with(|m| match m.get_mut(id) {
            Some(c) => {
                c.state = ContainerState::Running;
                c.started_at = Some(Utc::now());
                Ok(())
            }
            None => Err(Error::NotFound(format!("no such container: {id}"))),
        })
    }

    async fn stop_container(&self, id: &str, _grace: Duration) -> Result<()> {
        self.with(|m| {
            if let Some(c) = m.get_mut(id)
                && c.state == ContainerState::Running
            {
                c.state = ContainerState::Exited;
                c.exit_code = 0;
                c.finished_at = Some(Utc::now());
            }
        });
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.with(|m| m.remove(id));
        Ok(())
    }

    async fn exec_sync(&self, _id: &str, _cmd: &[String], _timeout: Duration) -> Result<ExecResult> {
        Ok(ExecResult { exit_code: 0, output: Vec::new() })
    }

    async fn exec_interactive(&self, _id: &str, _cmd: &[String], _stdin: bool, _tty: bool) -> Result<ExecSession> {
        Err(Error::Engine("a hollow node runs no commands".into()))
    }

    async fn exec_exit_code(&self, _exec_id: &str) -> Result<Option<i64>> {
        Ok(Some(0))
    }

    fn logs(&self, _id: &str, _options: &LogOptions) -> BoxStream<'static, Result<Output>> {
        futures::stream::empty().boxed()
    }

    async fn usage(&self, id: &str) -> Result<Option<Usage>> {
        Ok(self.with(|m| m.get(id).filter(|c| c.is_running()).map(|_| Usage::default())))
    }

    async fn events(&self, _node: &str) -> Result<BoxStream<'static, ContainerEvent>> {
        Ok(futures::stream::pending().boxed())
    }
}
