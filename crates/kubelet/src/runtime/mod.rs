//! The container runtime behind a narrow trait: what the pod workers need
//! from an engine (images, containers, exec, logs, usage), with a Docker
//! implementation and a fake one for hollow nodes.

pub mod docker;
pub mod fake;
pub mod metered;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;

/// The labels every container the kubelet starts carries: how a restarted
/// kubelet finds its pods' containers again (DESIGN.md §5).
pub mod labels {
    /// The node whose kubelet owns the container.
    pub const NODE: &str = "berth.io/node";
    /// The pod's uid, namespace and name.
    pub const POD_UID: &str = "berth.io/pod-uid";
    pub const POD_NAMESPACE: &str = "berth.io/pod-namespace";
    pub const POD_NAME: &str = "berth.io/pod-name";
    /// The container's name in the pod spec; [`SANDBOX_NAME`] for the sandbox.
    pub const CONTAINER_NAME: &str = "berth.io/container-name";
    /// `sandbox`, `init` or `app`.
    pub const CONTAINER_TYPE: &str = "berth.io/container-type";
    /// A hash of the container's spec: a container whose spec changed is replaced.
    pub const CONTAINER_HASH: &str = "berth.io/container-hash";
    /// How many times this container was restarted before this instance.
    pub const RESTART_COUNT: &str = "berth.io/restart-count";
    /// The sandbox's pod IP, so that a restarted kubelet keeps its allocations.
    pub const POD_IP: &str = "berth.io/pod-ip";
    /// The grace period the pod asked for, for containers of pods that are gone.
    pub const GRACE_PERIOD: &str = "berth.io/termination-grace-period";

    pub const SANDBOX_NAME: &str = "POD";
    pub const TYPE_SANDBOX: &str = "sandbox";
    pub const TYPE_INIT: &str = "init";
    pub const TYPE_APP: &str = "app";
}

/// Why a runtime call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine refused or failed the request; the message is the engine's.
    #[error("{0}")]
    Engine(String),
    /// The engine cannot be reached.
    #[error("cannot reach the container engine: {0}")]
    Unavailable(String),
    /// The container or image does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A call did not finish in time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What the engine is.
#[derive(Debug, Clone, Default)]
pub struct RuntimeVersion {
    /// As Kubernetes reports it: `docker://20.10.24`.
    pub version: String,
}

/// An image present on the node.
#[derive(Debug, Clone, Default)]
pub struct Image {
    pub id: String,
    pub names: Vec<String>,
    pub size_bytes: i64,
}

/// Where a container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// A container as the runtime sees it.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    /// The engine's name of the container.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub image_id: String,
    pub state: ContainerState,
    pub exit_code: i64,
    pub oom_killed: bool,
    /// The engine's error when the container could not start.
    pub error: String,
    pub created: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ContainerInfo {
    pub fn label(&self, key: &str) -> &str {
        self.labels.get(key).map(String::as_str).unwrap_or("")
    }
    pub fn restart_count(&self) -> i32 {
        self.label(labels::RESTART_COUNT).parse().unwrap_or(0)
    }
    pub fn is_running(&self) -> bool {
        self.state == ContainerState::Running
    }
}

/// The network a container joins.
#[derive(Debug, Clone)]
pub enum Network {
    /// A sandbox on the cluster's bridge network with a fixed address.
    Bridge {
        network: String,
        /// The pod's IP on that network.
        ip: String,
        hostname: String,
        /// (container port, protocol, host port, host IP)
        port_bindings: Vec<(i32, String, i32, String)>,
    },
    /// Join another container's network namespace (`container:<id>`).
    Container(String),
}

/// Everything needed to create a container.
#[derive(Debug, Clone)]
pub struct ContainerConfig {
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    /// Replaces the image's entrypoint when set.
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command when set.
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub network: Network,
    /// `host:container[:ro]`
    pub binds: Vec<String>,
    pub memory_limit_bytes: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `uid[:gid]`
    pub user: Option<String>,
    pub stdin: bool,
    pub stdin_once: bool,
    pub tty: bool,
}

/// A container's resource usage: cumulative CPU and current memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu_usage_ns_total: u64,
    pub memory_working_set_bytes: u64,
}

/// The outcome of a command run to completion in a container.
#[derive(Debug, Clone)]
pub struct ExecResult {
    pub exit_code: i64,
    pub output: Vec<u8>,
}

/// Something happened to one of the node's containers.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub container_id: String,
    pub pod_uid: String,
    /// The engine's action: `start`, `die`, `oom`, ...
    pub action: String,
}

/// What a log read returns.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<i64>,
    pub timestamps: bool,
}

/// A piece of a container's output.
#[derive(Debug, Clone)]
pub enum Output {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// An interactive exec: output to read, input to write.
pub struct ExecSession {
    pub id: String,
    pub output: BoxStream<'static, Result<Output>>,
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

/// The operations the kubelet needs from a container engine.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The engine's name and version.
    async fn version(&self) -> Result<RuntimeVersion>;
    /// Whether pods need an IP from the node's podCIDR and a real network
    /// (the fake runtime makes addresses up).
    fn needs_pod_cidr(&self) -> bool;
    /// Makes sure the cluster's shared bridge network exists; returns its id.
    async fn ensure_network(&self, name: &str, subnet: &str, gateway: &str) -> Result<String>;
    /// The images present on the node.
    async fn list_images(&self) -> Result<Vec<Image>>;
    /// The id of an image if it is present.
    async fn image_id(&self, image: &str) -> Result<Option<String>>;
    /// Pulls an image; returns its id.
    async fn pull_image(&self, image: &str) -> Result<String>;
    /// Every container (running or not) carrying all of `labels`.
    async fn list_containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ContainerInfo>>;
    /// One container, None if it does not exist.
    async fn inspect_container(&self, id: &str) -> Result<Option<ContainerInfo>>;
    /// Creates a container; returns its id.
    async fn create_container(&self, config: &ContainerConfig) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// SIGTERM (or the image's stop signal), then SIGKILL after `grace`.
    async fn stop_container(&self, id: &str, grace: Duration) -> Result<()>;
    async fn remove_container(&self, id: &str) -> Result<()>;
    /// Runs a command to completion, giving up after `timeout`.
    async fn exec_sync(&self, id: &str, cmd: &[String], timeout: Duration) -> Result<ExecResult>;
    /// Starts an interactive command in a running container.
    async fn exec_interactive(&self, id: &str, cmd: &[String], stdin: bool, tty: bool) -> Result<ExecSession>;
    /// The exit code of an interactive command once it ended.
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>>;
    /// A container's output.
    fn logs(&self, id: &str, options: &LogOptions) -> BoxStream<'static, Result<Output>>;
    /// A container's current usage, None if it is not running.
    async fn usage(&self, id: &str) -> Result<Option<Usage>>;
    /// Changes of containers carrying `node_label` = the node, as they happen.
    async fn events(&self, node: &str) -> Result<BoxStream<'static, ContainerEvent>>;
}
