//! The kubelet's own gRPC endpoint (`berth.kubelet.v1.Kubelet`): container
//! logs (following, tail, previous instance, and deleted pods' logs), exec
//! with stdin, and usage statistics. The apiserver proxies `berthctl logs`,
//! `exec` and `top` here. With `--tls-cert-file` it serves TLS; with
//! `--client-ca-file` too, only clients with a certificate of that CA in
//! group `system:masters` (the apiserver) are served. Without TLS there is
//! no authentication: bind it to loopback or the node's address only.

use std::pin::Pin;
use std::sync::Arc;

use berth_api::Resource;
use berth_api::pb::core::Pod;
use berth_api::pb::kubelet::kubelet_server::{Kubelet, KubeletServer};
use berth_api::pb::kubelet::{
    ContainerStats, ExecInput, ExecOutput, LogChunk, LogsRequest, NodeStats, PodStats, StatsRequest, StatsResponse,
};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info};

use crate::agent::Agent;
use crate::config::ApiTls;
use crate::pod::status::instances;
use crate::runtime::{ContainerInfo, LogOptions, Output, labels};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The group whose client certificates may use the API when clients are
/// verified (the apiserver's identity towards kubelets is in it).
pub const ALLOWED_GROUP: &str = "system:masters";

/// The service, over one node's agent.
pub struct Service {
    a: Arc<Agent>,
    /// Whether callers must present a client certificate of [`ALLOWED_GROUP`].
    verify_clients: bool,
}

/// Why the API's TLS cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file cannot be read.
    #[error("cannot read {flag} {path}: {source}")]
    Read {
        flag: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// The TLS settings of the API server, read from the files now so that a
/// bad file stops the kubelet at startup.
pub fn tls_config(tls: &ApiTls) -> Result<ServerTlsConfig, TlsError> {
    let read = |flag: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| TlsError::Read { flag, path: path.display().to_string(), source })
    };
    let identity = Identity::from_pem(read("--tls-cert-file", &tls.cert_file)?, read("--tls-private-key-file", &tls.key_file)?);
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca_file {
        config = config.client_ca_root(Certificate::from_pem(read("--client-ca-file", ca)?));
    }
    Ok(config)
}

/// Serves the kubelet's API on `listener` until `shutdown`, over TLS when `tls` is set.
pub async fn serve(
    a: Arc<Agent>,
    listener: TcpListener,
    tls: Option<ServerTlsConfig>,
    checks: berth_base::health::Checks,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let addr = listener.local_addr().ok();
    let verify_clients = a.config.api_tls.as_ref().is_some_and(|t| t.client_ca_file.is_some());
    info!(addr = ?addr, tls = tls.is_some(), verify_clients, "kubelet API listening");
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .add_service(checks.grpc())
        .add_service(KubeletServer::new(Service { a, verify_clients }))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

impl Service {
    /// Refuses callers other than the apiserver when clients are verified
    /// (TLS has already checked that the certificate is the CA's).
    fn authorize<T>(&self, req: &Request<T>) -> Result<(), Status> {
        if !self.verify_clients {
            return Ok(());
        }
        let certs = req.peer_certs().ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
        let (user, groups) = certs
            .first()
            .and_then(berth_base::tls::certificate_identity)
            .ok_or_else(|| Status::unauthenticated("the client certificate names no user"))?;
        if groups.iter().any(|g| g == ALLOWED_GROUP) {
            return Ok(());
        }
        Err(Status::permission_denied(format!(
            "user {user:?} may not use the kubelet API of node {}: only group {ALLOWED_GROUP} may (go through the apiserver)",
            self.a.node_name()
        )))
    }

    fn pod(&self, namespace: &str, name: &str) -> Result<Arc<Pod>, Status> {
        let ns = if namespace.is_empty() { "default" } else { namespace };
        self.a.pods.get(ns, name).ok_or_else(|| Status::not_found(format!("pod \"{name}\" not found on node {}", self.a.node_name())))
    }

    /// The container's name: the given one, or the pod's only container.
    fn container_name(pod: &Pod, given: &str, first: bool) -> Result<String, Status> {
        let spec = pod.spec.clone().unwrap_or_default();
        if !given.is_empty() {
            let known = spec.containers.iter().chain(spec.init_containers.iter()).any(|c| c.name == given);
            if !known {
                return Err(Status::invalid_argument(format!("container {given} is not valid for pod {}", pod.name())));
            }
            return Ok(given.to_string());
        }
        match spec.containers.as_slice() {
            [one] => Ok(one.name.clone()),
            [c, ..] if first => Ok(c.name.clone()),
            cs => Err(Status::invalid_argument(format!(
                "a container name must be specified for pod {}, choose one of: [{}]",
                pod.name(),
                cs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(" ")
            ))),
        }
    }

    /// The pod's instances of a container, newest first.
    async fn instances(&self, pod: &Pod, container: &str) -> Result<Vec<ContainerInfo>, Status> {
        let uid = &pod.meta().uid;
        let all = self
            .a
            .runtime
            .list_containers(&[(labels::NODE, self.a.node_name()), (labels::POD_UID, uid)])
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let is_init = pod.spec.iter().flat_map(|s| s.init_containers.iter()).any(|c| c.name == container);
        let kind = if is_init { labels::TYPE_INIT } else { labels::TYPE_APP };
        Ok(instances(&all, kind, container).into_iter().cloned().collect())
    }
}

#[tonic::async_trait]
impl Kubelet for Service {
    type LogsStream = BoxStream<LogChunk>;
    type ExecStream = BoxStream<ExecOutput>;

    async fn logs(&self, req: Request<LogsRequest>) -> Result<Response<Self::LogsStream>, Status> {
        self.authorize(&req)?;
        let r = req.into_inner();
        if r.deleted {
            let ns = if r.namespace.is_empty() { "default" } else { r.namespace.as_str() };
            let data = self.a.pod_logs.read(ns, &r.pod, &r.container).map_err(Status::not_found)?;
            let data = match r.tail_lines {
                Some(n) => tail(&data, n),
                None => data,
            };
            let chunk = LogChunk { data, stream: "stdout".into() };
            return Ok(Response::new(futures::stream::iter([Ok(chunk)]).boxed()));
        }
        let pod = self.pod(&r.namespace, &r.pod)?;
        let name = Self::container_name(&pod, &r.container, false)?;
        let all = self.instances(&pod, &name).await?;
        let target = if r.previous {
            all.get(1).ok_or_else(|| {
                Status::invalid_argument(format!("previous terminated container \"{name}\" in pod \"{}\" not found", pod.name()))
            })?
        } else {
            all.first()
                .ok_or_else(|| Status::invalid_argument(format!("container \"{name}\" in pod \"{}\" is waiting to start", pod.name())))?
        };
        let options = LogOptions { follow: r.follow, tail_lines: r.tail_lines, timestamps: r.timestamps };
        let stream = self.a.runtime.logs(&target.id, &options).map(|chunk| match chunk {
            Ok(Output::Stdout(b)) => Ok(LogChunk { data: b.to_vec(), stream: "stdout".into() }),
            Ok(Output::Stderr(b)) => Ok(LogChunk { data: b.to_vec(), stream: "stderr".into() }),
            Err(e) => Err(Status::unavailable(e.to_string())),
        });
        Ok(Response::new(stream.boxed()))
    }

    async fn exec(&self, req: Request<Streaming<ExecInput>>) -> Result<Response<Self::ExecStream>, Status> {
        self.authorize(&req)?;
        let mut input = req.into_inner();
        let first = input
            .message()
            .await?
            .and_then(|m| m.start)
            .ok_or_else(|| Status::invalid_argument("the first message of an exec must carry `start`"))?;
        if first.command.is_empty() {
            return Err(Status::invalid_argument("you must specify at least one command for the container"));
        }
        let pod = self.pod(&first.namespace, &first.pod)?;
        let name = Self::container_name(&pod, &first.container, true)?;
        let current = self.instances(&pod, &name).await?.into_iter().next();
        let container = current
            .filter(|c| c.is_running())
            .ok_or_else(|| Status::failed_precondition(format!("container {name} is not running in pod {}", pod.name())))?;
        let runtime = self.a.runtime.clone();
        let session = runtime
            .exec_interactive(&container.id, &first.command, first.stdin, first.tty)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        debug!(pod = %pod.name(), container = %name, command = ?first.command, "exec started");
        let (tx, rx) = mpsc::channel::<Result<ExecOutput, Status>>(32);
        let mut writer = session.input;
        let stdin_wanted = first.stdin;
        // stdin: from the client to the command, until the client says EOF.
        let pump_in = tokio::spawn(async move {
            while let Ok(Some(msg)) = input.message().await {
                if stdin_wanted && !msg.stdin.is_empty() && writer.write_all(&msg.stdin).await.is_err() {
                    break;
                }
                if msg.stdin_eof {
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });
        let exec_id = session.id.clone();
        let mut output = session.output;
        tokio::spawn(async move {
            while let Some(chunk) = output.next().await {
                let msg = match chunk {
                    Ok(Output::Stdout(b)) => ExecOutput { stdout: b.to_vec(), ..Default::default() },
                    Ok(Output::Stderr(b)) => ExecOutput { stderr: b.to_vec(), ..Default::default() },
                    Err(e) => {
                        let _ = tx.send(Err(Status::unavailable(e.to_string()))).await;
                        break;
                    }
                };
                if tx.send(Ok(msg)).await.is_err() {
                    break;
                }
            }
            pump_in.abort();
            // The engine may need a moment to record the exit code.
            let mut code = None;
            for _ in 0..50 {
                match runtime.exec_exit_code(&exec_id).await {
                    Ok(Some(c)) => {
                        code = Some(c as i32);
                        break;
                    }
                    Ok(None) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                    Err(_) => break,
                }
            }
            let _ = tx.send(Ok(ExecOutput { exit_code: Some(code.unwrap_or(-1)), ..Default::default() })).await;
        });
        Ok(Response::new(ReceiverStream::new(rx).boxed()))
    }

    async fn stats(&self, req: Request<StatsRequest>) -> Result<Response<StatsResponse>, Status> {
        self.authorize(&req)?;
        let r = req.into_inner();
        let snap = self.a.stats.latest();
        let ts = snap.timestamp.map(crate::pod::status::rfc3339).unwrap_or_default();
        let node = NodeStats {
            node_name: self.a.node_name().into(),
            timestamp: ts.clone(),
            cpu_usage_nano_cores: snap.cpu_nano_cores,
            memory_working_set_bytes: snap.memory_working_set_bytes,
            memory_capacity_bytes: self.a.host.memory_bytes,
            cpu_capacity_millis: u64::from(self.a.host.cpus) * 1000,
        };
        let pods = snap
            .pods
            .into_iter()
            .filter(|p| r.namespace.is_empty() || p.namespace == r.namespace)
            .filter(|p| r.pod.is_empty() || p.name == r.pod)
            .map(|p| PodStats {
                namespace: p.namespace,
                name: p.name,
                uid: p.uid,
                timestamp: ts.clone(),
                cpu_usage_nano_cores: p.cpu_nano_cores,
                memory_working_set_bytes: p.memory_working_set_bytes,
                containers: p
                    .containers
                    .into_iter()
                    .map(|c| ContainerStats {
                        name: c.name,
                        cpu_usage_nano_cores: c.cpu_nano_cores,
                        memory_working_set_bytes: c.memory_working_set_bytes,
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(StatsResponse { node: Some(node), pods }))
    }
}

/// The last `n` lines of `data`.
fn tail(data: &[u8], n: i64) -> Vec<u8> {
    if n <= 0 {
        return Vec::new();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut count = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            count += 1;
            if count == n {
                return data[i + 1..].to_vec();
            }
        }
    }
    data.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_keep_the_last_lines() {
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 1), b"c");
        assert_eq!(tail(b"a\n", 5), b"a\n");
        assert_eq!(tail(b"a\n", 0), b"");
    }
}
