//! A runtime wrapper that times every operation on the engine it wraps, for
//! `berth_kubelet_runtime_operations_*` (Kubernetes' `kubelet_runtime_operations_*`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::{
    ContainerConfig, ContainerEvent, ContainerInfo, ExecResult, ExecSession, Image, LogOptions, Output, Result, Runtime, RuntimeVersion,
    Usage,
};
use crate::metrics::Metrics;

/// `inner`, with each call counted and timed by operation.
pub struct Metered {
    inner: Arc<dyn Runtime>,
    metrics: Metrics,
}

impl Metered {
    pub fn wrap(inner: Arc<dyn Runtime>, metrics: Metrics) -> Arc<dyn Runtime> {
        Arc::new(Metered { inner, metrics })
    }

    async fn timed<T>(&self, operation: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
        let start = Instant::now();
        let r = call.await;
        self.metrics.runtime_operation(operation, start.elapsed(), r.is_ok());
        r
    }
}

#[async_trait]
impl Runtime for Metered {
    async fn version(&self) -> Result<RuntimeVersion> {
        self.timed("version", self.inner.version()).await
    }
    fn needs_pod_cidr(&self) -> bool {
        self.inner.needs_pod_cidr()
    }
    async fn ensure_network(&self, name: &str, subnet: &str, gateway: &str) -> Result<String> {
        self.timed("ensure_network", self.inner.ensure_network(name, subnet, gateway)).await
    }
    async fn list_images(&self) -> Result<Vec<Image>> {
        self.timed("list_images", self.inner.list_images()).await
    }
    async fn image_id(&self, image: &str) -> Result<Option<String>> {
        self.timed("image_status", self.inner.image_id(image)).await
    }
    async fn pull_image(&self, image: &str) -> Result<String> {
        self.timed("pull_image", self.inner.pull_image(image)).await
    }
    async fn list_containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>> {
        self.timed("list_containers", self.inner.list_containers(labels)).await
    }
    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>> {
        self.timed("container_status", self.inner.inspect_container(id)).await
    }
    async fn create_container(&self, config: &ContainerConfig) -> Result<String> {
        self.timed("create_container", self.inner.create_container(config)).await
    }
    async fn start_container(&self, id: &str) -> Result<()> {
        self.timed("start_container", self.inner.start_container(id)).await
    }
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        self.timed("stop_container", self.inner.stop_container(id, grace)).await
    }
    async fn remove_container(&self, id: &str) -> Result<()> {
        self.timed("remove_container", self.inner.remove_container(id)).await
    }
    async fn exec_sync(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult> {
        self.timed("exec_sync", self.inner.exec_sync(id, cmd, timeout)).await
    }
    async fn exec_interactive(&self, id: &str, cmd: &[String], stdin: bool, tty: bool) -> Result<ExecSession> {
        self.timed("exec", self.inner.exec_interactive(id, cmd, stdin, tty)).await
    }
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>> {
        self.timed("exec_status", self.inner.exec_exit_code(exec_id)).await
    }
    fn logs(&self, id: &str, options: &LogOptions) -> BoxStream<'static, Result<Output>> {
        // A stream lasts as long as its reader: there is no operation to time.
        self.inner.logs(id, options)
    }
    async fn usage(&self, id: &str) -> Result<Option<Usage>> {
        self.timed("container_stats", self.inner.usage(id)).await
    }
    async fn events(&self, node: &str) -> Result<BoxStream<'static, ContainerEvent>> {
        self.timed("events", self.inner.events(node)).await
    }
}
