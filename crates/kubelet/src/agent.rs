//! What one node's kubelet shares between its parts: settings, the API
//! client, the runtime, the caches of its pods and Node, and the
//! per-node state (pod addresses, back-offs, probes, images, usage).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_api::pb::core::{Node, Pod, Service};
use berth_client::Client;
use berth_runtime::Reader;
use berth_runtime::events::Recorder;
use tokio::sync::Notify;

use crate::backoff::Backoff;
use crate::config::Config;
use crate::host::HostInfo;
use crate::images::Images;
use crate::ipam::Ipam;
use crate::metrics::Metrics;
use crate::podlogs::PodLogs;
use crate::probes::Probes;
use crate::runtime::Runtime;
use crate::stats::Stats;

/// One node's kubelet state, shared by its tasks.
pub struct Agent {
    pub config: Config,
    pub client: Client,
    pub runtime: Arc<dyn Runtime>,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub host: HostInfo,
    /// `docker` or `fake`: the scheme of containerIDs and imageIDs.
    pub scheme: String,
    /// The pods bound to this node.
    pub pods: Reader<Pod>,
    /// This node's Node object.
    pub node: Reader<Node>,
    /// Every Service of the cluster, for the containers' environment.
    pub services: Reader<Service>,
    pub ipam: Mutex<Ipam>,
    pub restarts: Mutex<Backoff>,
    pub images: Images,
    pub probes: Probes,
    pub stats: Stats,
    pub pod_logs: PodLogs,
    /// The kubelet's gRPC port, reported in the node's daemonEndpoints.
    pub port: u16,
    /// Pods whose start was already measured.
    pub started: Mutex<HashSet<String>>,
    /// Wakes the node status loop (e.g. when the podCIDR arrives).
    pub node_changed: Notify,
}

impl Agent {
    pub fn node_name(&self) -> &str {
        &self.config.node_name
    }

    pub fn root_dir(&self) -> &PathBuf {
        &self.config.root_dir
    }

    /// The node's podCIDR: the Node's spec, else `--pod-cidr`.
    pub fn pod_cidr(&self) -> Option<String> {
        self.node
            .get("", &self.config.node_name)
            .and_then(|n| n.spec.as_ref().map(|s| s.pod_cidr.clone()))
            .filter(|c| !c.is_empty())
            .or_else(|| self.config.pod_cidr.clone())
    }
}
