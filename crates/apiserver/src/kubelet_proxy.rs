//! The apiserver's side of `berthctl logs`, `exec` and `top`: finds the
//! node a pod runs on and that node's kubelet (its InternalIP and
//! `status.daemonEndpoints.kubeletEndpoint.Port`), keeps one gRPC channel
//! per kubelet, and relays logs, exec streams and usage statistics.
//! Authorization is the caller's business ([`crate::service`]); this
//! module only reads the cluster state on the server's own behalf.

use berth_base::sync::MutexExt;
use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::api::{ClusterStatsRequest, ClusterStatsResponse};
use berth_api::pb::core::{Node, Pod};
use berth_api::pb::kubelet::kubelet_client::KubeletClient;
use berth_api::pb::kubelet::{ExecInput, ExecOutput, LogChunk, LogsRequest, StatsRequest, StatsResponse};
use futures::{Stream, StreamExt};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::lister::{Filter, decode};
use crate::registry::Registry;

/// A stream relayed from a kubelet to the caller.
pub type Relay<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The namespace of a request that names none.
const DEFAULT_NAMESPACE: &str = "default";

/// How long connecting to a kubelet may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one kubelet may take to answer a stats request before the
/// others' answers are returned without it.
pub const STATS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a node's kubelet listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeletAddress {
    pub node: String,
    /// `host:port`, IPv6 hosts in brackets.
    pub addr: String,
}

/// Relays requests to the kubelets, one cached channel per kubelet address.
pub struct KubeletProxy {
    registry: Registry,
    /// TLS towards kubelets; None: plaintext.
    tls: Option<ClientTlsConfig>,
    channels: Mutex<HashMap<String, Channel>>,
    stats_timeout: Duration,
}

impl KubeletProxy {
    pub fn new(registry: Registry, tls: Option<ClientTlsConfig>) -> KubeletProxy {
        KubeletProxy { registry, tls, channels: Mutex::new(HashMap::new()), stats_timeout: STATS_TIMEOUT }
    }

    /// A container's log, streamed from the kubelet of the pod's node.
    pub async fn logs(&self, mut req: LogsRequest) -> Result<Relay<LogChunk>> {
        if req.namespace.is_empty() {
            req.namespace = DEFAULT_NAMESPACE.into();
        }
        if req.deleted {
            return self.deleted_logs(req).await;
        }
        let pod = self.pod(&req.namespace, &req.pod)?;
        let kubelet = self.kubelet_of_pod(&pod)?;
        let mut client = self.client(&kubelet).await?;
        let stream = client.logs(req).await.map_err(|s| self.failed(&kubelet, s))?.into_inner();
        Ok(relay(stream, kubelet))
    }

    /// A deleted pod's logs: the apiserver no longer knows its node, so
    /// every Ready node's kubelet is asked at once (each within the stats
    /// time limit), and the first that keeps them answers.
    async fn deleted_logs(&self, req: LogsRequest) -> Result<Relay<LogChunk>> {
        if req.pod.is_empty() {
            return Err(Error::BadRequest("a pod name is required".into()));
        }
        let (kubelets, _) = self.kubelets_of_nodes("")?;
        let answers = futures::future::join_all(kubelets.into_iter().map(|k| {
            let req = req.clone();
            async move {
                let answer = tokio::time::timeout(self.stats_timeout, async {
                    let mut client = self.client(&k).await.ok()?;
                    client.logs(req).await.ok().map(|r| r.into_inner())
                })
                .await;
                answer.ok().flatten().map(|stream| (stream, k))
            }
        }))
        .await;
        match answers.into_iter().flatten().next() {
            Some((stream, k)) => Ok(relay(stream, k)),
            None => Err(Error::NotFound { plural: "logs of deleted pods".into(), name: format!("{}/{}", req.namespace, req.pod) }),
        }
    }

    /// Runs a command in a container: `first` carries `start`, `rest` the
    /// caller's stdin, forwarded until the caller ends it or goes away.
    pub async fn exec<S>(&self, mut first: ExecInput, rest: S) -> Result<Relay<ExecOutput>>
    where
        S: Stream<Item = Result<ExecInput, Status>> + Send + 'static,
    {
        let start = first.start.as_mut().ok_or_else(|| Error::BadRequest("the first message of an exec must carry `start`".into()))?;
        if start.namespace.is_empty() {
            start.namespace = DEFAULT_NAMESPACE.into();
        }
        if start.command.is_empty() {
            return Err(Error::BadRequest("you must specify at least one command for the container".into()));
        }
        let pod = self.pod(&start.namespace, &start.pod)?;
        let kubelet = self.kubelet_of_pod(&pod)?;
        let mut client = self.client(&kubelet).await?;
        // A broken inbound stream ends the command's input, as EOF would.
        let rest = rest.take_while(|m| std::future::ready(m.is_ok())).filter_map(|m| std::future::ready(m.ok()));
        let input = futures::stream::once(std::future::ready(first)).chain(rest);
        let stream = client.exec(input).await.map_err(|s| self.failed(&kubelet, s))?.into_inner();
        Ok(relay(stream, kubelet))
    }

    /// Usage of nodes or pods, asked of the kubelets concurrently; a
    /// kubelet that fails or is late is named in `errors`.
    pub async fn stats(&self, req: &ClusterStatsRequest) -> Result<ClusterStatsResponse> {
        let pods = match req.resource.as_str() {
            "nodes" | "node" => false,
            "pods" | "pod" => true,
            other => return Err(Error::BadRequest(format!("stats: resource must be \"nodes\" or \"pods\", not {other:?}"))),
        };
        let (kubelets, mut errors) =
            if pods { self.kubelets_of_pods(&req.namespace, &req.name)? } else { self.kubelets_of_nodes(&req.name)? };
        let ask = StatsRequest { namespace: req.namespace.clone(), pod: if pods { req.name.clone() } else { String::new() } };
        let answers = futures::future::join_all(kubelets.into_iter().map(|k| {
            let ask = ask.clone();
            async move {
                let answer = tokio::time::timeout(self.stats_timeout, async {
                    let mut client = self.client(&k).await?;
                    client.stats(ask).await.map(|r| r.into_inner()).map_err(|s| self.failed(&k, s))
                })
                .await;
                match answer {
                    Ok(Ok(r)) => Ok(r),
                    // Unreachable already names the node and its address.
                    Ok(Err(Error::Unavailable(m))) => Err(m),
                    Ok(Err(e)) => Err(format!("node {}: {e}", k.node)),
                    Err(_) => Err(format!("node {}: kubelet at {} did not answer within {:?}", k.node, k.addr, self.stats_timeout)),
                }
            }
        }))
        .await;
        let mut nodes = Vec::new();
        for a in answers {
            match a {
                Ok(r) => nodes.push(StatsResponse { node: if pods { None } else { r.node }, pods: if pods { r.pods } else { Vec::new() } }),
                Err(e) => {
                    warn!(error = %e, "kubelet stats failed");
                    errors.push(e);
                }
            }
        }
        Ok(ClusterStatsResponse { nodes, errors })
    }

    fn pod(&self, namespace: &str, name: &str) -> Result<Pod> {
        if name.is_empty() {
            return Err(Error::BadRequest("a pod name is required".into()));
        }
        let o = self.registry.get(Pod::INFO.kind, namespace, name)?;
        Pod::from_object(o).map_err(|_| Error::Internal(format!("pods {name:?} holds another kind")))
    }

    fn node(&self, name: &str) -> Result<Node> {
        let o = self.registry.get(Node::INFO.kind, "", name)?;
        Node::from_object(o).map_err(|_| Error::Internal(format!("nodes {name:?} holds another kind")))
    }

    /// The kubelet that runs a pod; a pod not yet scheduled has none.
    fn kubelet_of_pod(&self, pod: &Pod) -> Result<KubeletAddress> {
        let node = pod.spec.as_ref().map(|s| s.node_name.as_str()).unwrap_or_default();
        if node.is_empty() {
            return Err(Error::Precondition(format!("pod {:?} is not scheduled to a node yet", pod.name())));
        }
        match self.node(node) {
            Ok(n) => kubelet_address(&n),
            Err(Error::NotFound { .. }) => {
                Err(Error::Unavailable(format!("pod {:?} is bound to node {node:?}, which is not registered", pod.name())))
            }
            Err(e) => Err(e),
        }
    }

    /// The kubelets of the nodes that run pods of `namespace` (all
    /// namespaces when empty), or of the one pod named.
    fn kubelets_of_pods(&self, namespace: &str, name: &str) -> Result<(Vec<KubeletAddress>, Vec<String>)> {
        if !name.is_empty() {
            let ns = if namespace.is_empty() { DEFAULT_NAMESPACE } else { namespace };
            let pod = self.pod(ns, name)?;
            return Ok((vec![self.kubelet_of_pod(&pod)?], Vec::new()));
        }
        let prefix = Pod::INFO.prefix(namespace);
        let (kvs, _) = self.registry.store().list(&prefix).map_err(|e| Error::from_store(e, Pod::INFO.plural, ""))?;
        let nodes: BTreeSet<String> = kvs
            .iter()
            .filter_map(|kv| decode(kv).ok())
            .filter_map(|o| Pod::from_object(o).ok())
            .filter_map(|p| p.spec.map(|s| s.node_name))
            .filter(|n| !n.is_empty())
            .collect();
        let mut kubelets = Vec::new();
        let mut errors = Vec::new();
        for n in nodes {
            match self.node(&n).and_then(|node| kubelet_address(&node)) {
                Ok(k) => kubelets.push(k),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Ok((kubelets, errors))
    }

    /// The kubelet of the node named, or of every Ready node.
    fn kubelets_of_nodes(&self, name: &str) -> Result<(Vec<KubeletAddress>, Vec<String>)> {
        if !name.is_empty() {
            return Ok((vec![kubelet_address(&self.node(name)?)?], Vec::new()));
        }
        let filter = Filter::parse(&Node::INFO, "", "")?;
        let prefix = Node::INFO.prefix("");
        let (kvs, _) = self.registry.store().list(&prefix).map_err(|e| Error::from_store(e, Node::INFO.plural, ""))?;
        let mut kubelets = Vec::new();
        let mut errors = Vec::new();
        for o in kvs.iter().filter_map(|kv| decode(kv).ok()).filter(|o| filter.matches(o)) {
            let Ok(node) = Node::from_object(o) else { continue };
            if !is_ready(&node) {
                continue;
            }
            match kubelet_address(&node) {
                Ok(k) => kubelets.push(k),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Ok((kubelets, errors))
    }

    /// A kubelet's error as the apiserver's; a kubelet that cannot be
    /// reached loses its cached channel, so that the next call connects anew.
    fn failed(&self, k: &KubeletAddress, s: Status) -> Error {
        let e = kubelet_error(k, s);
        if matches!(e, Error::Unavailable(_)) {
            self.channels.lock_or_recover().remove(&k.addr);
        }
        e
    }

    /// A client of a kubelet, on its cached channel.
    async fn client(&self, k: &KubeletAddress) -> Result<KubeletClient<Channel>> {
        let cached = self.channels.lock_or_recover().get(&k.addr).cloned();
        let channel = match cached {
            Some(c) => c,
            None => {
                let c = connect(k, self.tls.as_ref()).await?;
                self.channels.lock_or_recover().insert(k.addr.clone(), c.clone());
                debug!(node = %k.node, addr = %k.addr, "connected to kubelet");
                c
            }
        };
        Ok(KubeletClient::new(channel).max_decoding_message_size(64 * 1024 * 1024))
    }
}

/// Opens a channel to a kubelet: the one place that decides how the
/// apiserver talks to kubelets. With `tls` (the `--kubelet-*` flags) the
/// kubelet's certificate is verified against the kubelets' CA and the
/// apiserver presents its client certificate; without, plaintext gRPC.
pub async fn connect(k: &KubeletAddress, tls: Option<&ClientTlsConfig>) -> Result<Channel> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let unusable =
        |e: tonic::transport::Error| Error::Unavailable(format!("node {:?} reports an unusable kubelet address {}: {e}", k.node, k.addr));
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{}", k.addr))
        .map_err(unusable)?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls.clone()).map_err(unusable)?;
    }
    endpoint.connect().await.map_err(|e| Error::Unavailable(unreachable(k, &e)))
}

/// Where a node's kubelet listens, from its status.
pub fn kubelet_address(node: &Node) -> Result<KubeletAddress> {
    let name = node.name().to_string();
    let status = node.status.clone().unwrap_or_default();
    let port = status.daemon_endpoints.and_then(|d| d.kubelet_endpoint).map(|e| e.port).unwrap_or(0);
    if port <= 0 {
        return Err(Error::Unavailable(format!(
            "node {name:?} has no kubelet endpoint (status.daemonEndpoints.kubeletEndpoint.Port is not set)"
        )));
    }
    let ip = status.addresses.iter().find(|a| a.r#type == "InternalIP" && !a.address.is_empty()).map(|a| a.address.clone());
    let Some(ip) = ip else {
        return Err(Error::Unavailable(format!("node {name:?} has no InternalIP address in status.addresses")));
    };
    let host = if ip.contains(':') { format!("[{ip}]") } else { ip };
    Ok(KubeletAddress { node: name, addr: format!("{host}:{port}") })
}

fn is_ready(node: &Node) -> bool {
    node.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.r#type == "Ready" && c.status == "True"))
}

/// The sentence for a kubelet that cannot be reached, with the root cause.
fn unreachable(k: &KubeletAddress, e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !cause.contains(&text) {
            cause = format!("{cause}: {text}");
        }
        source = s.source();
    }
    format!("kubelet of node {:?} at {} is unreachable: {cause}", k.node, k.addr)
}

/// A kubelet's error status as the apiserver's: a transport failure names
/// the kubelet's address, the kubelet's own answers keep their code.
fn kubelet_error(k: &KubeletAddress, s: Status) -> Error {
    match std::error::Error::source(&s) {
        Some(cause) if s.code() == Code::Unavailable || s.code() == Code::Unknown => Error::Unavailable(unreachable(k, cause)),
        _ => Error::Kubelet { code: s.code(), message: s.message().to_string() },
    }
}

/// Passes a kubelet's stream on, naming the kubelet in transport errors.
fn relay<T: Send + 'static>(stream: tonic::Streaming<T>, k: KubeletAddress) -> Relay<T> {
    stream.map(move |item| item.map_err(|s| Status::from(kubelet_error(&k, s)))).boxed()
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::{DaemonEndpoint, NodeAddress, NodeDaemonEndpoints, NodeStatus, ObjectMeta};

    use super::*;

    fn node(addresses: &[(&str, &str)], port: Option<i32>) -> Node {
        Node {
            metadata: Some(ObjectMeta { name: "n1".into(), ..Default::default() }),
            status: Some(NodeStatus {
                addresses: addresses.iter().map(|(t, a)| NodeAddress { r#type: t.to_string(), address: a.to_string() }).collect(),
                daemon_endpoints: port.map(|p| NodeDaemonEndpoints { kubelet_endpoint: Some(DaemonEndpoint { port: p }) }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn should_find_the_kubelet_at_the_internal_ip_and_reported_port() {
        let k = kubelet_address(&node(&[("Hostname", "h"), ("InternalIP", "10.0.0.7")], Some(10250))).expect("address");
        assert_eq!(k, KubeletAddress { node: "n1".into(), addr: "10.0.0.7:10250".into() });
        let k = kubelet_address(&node(&[("InternalIP", "fd00::7")], Some(10250))).expect("address");
        assert_eq!(k.addr, "[fd00::7]:10250");
    }

    #[test]
    fn should_name_what_the_node_lacks() {
        let err = kubelet_address(&node(&[("InternalIP", "10.0.0.7")], None)).expect_err("no port").to_string();
        assert!(err.contains("n1") && err.contains("kubeletEndpoint"), "{err}");
        let err = kubelet_address(&node(&[("Hostname", "h")], Some(10250))).expect_err("no address").to_string();
        assert!(err.contains("n1") && err.contains("InternalIP"), "{err}");
    }

    #[tokio::test]
    async fn should_name_the_address_of_an_unreachable_kubelet() {
        // A port nobody listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
        let k = KubeletAddress { node: "n1".into(), addr: format!("127.0.0.1:{port}") };
        let err = connect(&k, None).await.expect_err("nothing listens");
        assert_eq!(err.code(), Code::Unavailable);
        let text = err.to_string();
        assert!(text.contains(&format!("127.0.0.1:{port}")) && text.contains("unreachable"), "{text}");
    }
}
