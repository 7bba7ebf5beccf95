//! The typed gRPC client of the API: dynamic calls on any [`Object`],
//! typed calls on any [`Resource`], and the pods' logs, exec and usage
//! that the apiserver relays from the kubelets.

use std::time::Duration;

use berth_api::Resource;
use berth_api::pb::api::api_client::ApiClient;
use berth_api::pb::api::{
    AccessReviewRequest, AccessReviewResponse, BindRequest, ClusterStatsRequest, ClusterStatsResponse, CreateRequest, DeleteRequest,
    DiscoveryRequest, DiscoveryResponse, GetRequest, ListRequest, ListResponse, Object, UpdateRequest, WatchEvent as RawWatchEvent,
    WatchRequest,
};
use berth_api::pb::core::{Binding, ObjectMeta, ObjectReference};
use berth_api::pb::kubelet::{ExecInput, ExecOutput, ExecStart, LogChunk, LogsRequest};
use futures::{Stream, StreamExt};
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

use crate::config::ClientConfig;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status (see [`Error::code`]).
    #[error("{}", .0.message())]
    Api(#[from] Status),
    /// The server address is malformed or cannot be reached.
    #[error("cannot reach the API server at {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The TLS settings cannot be used (a file that cannot be read, https without a CA).
    #[error("{0}")]
    Tls(String),
    /// The token cannot be sent as a header.
    #[error("the token contains characters that cannot be sent in a header")]
    BadToken,
    /// The server returned an object of another kind than asked for.
    #[error("expected a {expected}, the server returned a {got}")]
    WrongKind { expected: &'static str, got: &'static str },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The gRPC code, `Unavailable` for connection errors.
    pub fn code(&self) -> Code {
        match self {
            Error::Api(s) => s.code(),
            Error::Connect { .. } => Code::Unavailable,
            Error::BadToken | Error::WrongKind { .. } | Error::Tls(_) => Code::Internal,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.code() == Code::NotFound
    }
    pub fn is_already_exists(&self) -> bool {
        self.code() == Code::AlreadyExists
    }
    /// A resourceVersion precondition failed.
    pub fn is_conflict(&self) -> bool {
        self.code() == Code::Aborted
    }
    /// The watch revision was compacted away: relist.
    pub fn is_too_old(&self) -> bool {
        self.code() == Code::OutOfRange
    }
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct Auth {
    header: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// Options of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub label_selector: String,
    pub field_selector: String,
}

impl ListParams {
    pub fn labels(mut self, s: impl Into<String>) -> Self {
        self.label_selector = s.into();
        self
    }
    pub fn fields(mut self, s: impl Into<String>) -> Self {
        self.field_selector = s.into();
        self
    }
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    pub grace_period_seconds: Option<i64>,
    /// Background (default), Foreground or Orphan.
    pub propagation_policy: String,
    pub uid: String,
    pub resource_version: String,
}

/// A change to a typed object, as a watch delivers it.
#[derive(Debug, Clone)]
pub enum WatchEvent<R> {
    Added(R),
    Modified(R),
    Deleted(R),
    /// Progress: every change up to this revision has been delivered.
    Bookmark(u64),
}

/// A client of the API, cheap to clone.
#[derive(Clone)]
pub struct Client {
    api: ApiClient<InterceptedService<Channel, Auth>>,
    server: String,
}

impl Client {
    /// Connects now, failing fast when the server cannot be reached.
    pub async fn connect(config: &ClientConfig) -> Result<Client> {
        let endpoint = endpoint(config)?;
        let channel = endpoint.connect().await.map_err(|source| Error::Connect { server: config.server.clone(), source })?;
        Self::with_channel(config, channel)
    }

    /// Connects on first use and reconnects as needed (for daemons that may
    /// start before the apiserver).
    pub fn connect_lazy(config: &ClientConfig) -> Result<Client> {
        let channel = endpoint(config)?.connect_lazy();
        Self::with_channel(config, channel)
    }

    fn with_channel(config: &ClientConfig, channel: Channel) -> Result<Client> {
        let header = match &config.token {
            Some(t) if !t.is_empty() => Some(format!("Bearer {t}").parse().map_err(|_| Error::BadToken)?),
            _ => None,
        };
        let api = ApiClient::with_interceptor(channel, Auth { header })
            .max_decoding_message_size(256 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        Ok(Client { api, server: config.server.clone() })
    }

    /// The server this client talks to.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The raw generated client, for calls this type does not wrap.
    pub fn raw(&self) -> ApiClient<InterceptedService<Channel, Auth>> {
        self.api.clone()
    }

    // ----- dynamic calls on any kind

    pub async fn create_object(&self, object: Object, dry_run: bool) -> Result<Object> {
        Ok(self.api.clone().create(CreateRequest { object: Some(object), dry_run }).await?.into_inner())
    }

    pub async fn get_object(&self, kind: &str, namespace: &str, name: &str) -> Result<Object> {
        let req = GetRequest { kind: kind.into(), namespace: namespace.into(), name: name.into() };
        Ok(self.api.clone().get(req).await?.into_inner())
    }

    pub async fn list_objects(&self, kind: &str, namespace: &str, params: &ListParams) -> Result<ListResponse> {
        let req = ListRequest {
            kind: kind.into(),
            namespace: namespace.into(),
            label_selector: params.label_selector.clone(),
            field_selector: params.field_selector.clone(),
            min_resource_version: 0,
        };
        Ok(self.api.clone().list(req).await?.into_inner())
    }

    pub async fn update_object(&self, object: Object, dry_run: bool) -> Result<Object> {
        Ok(self.api.clone().update(UpdateRequest { object: Some(object), dry_run }).await?.into_inner())
    }

    pub async fn update_status_object(&self, object: Object) -> Result<Object> {
        Ok(self.api.clone().update_status(UpdateRequest { object: Some(object), dry_run: false }).await?.into_inner())
    }

    pub async fn delete_object(&self, kind: &str, namespace: &str, name: &str, params: &DeleteParams) -> Result<Object> {
        let req = DeleteRequest {
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
            uid: params.uid.clone(),
            resource_version: params.resource_version.clone(),
            grace_period_seconds: params.grace_period_seconds,
            propagation_policy: params.propagation_policy.clone(),
        };
        Ok(self.api.clone().delete(req).await?.into_inner())
    }

    /// Streams every change after `resource_version` (0: current objects
    /// first, as ADDED events).
    pub async fn watch_objects(
        &self,
        kind: &str,
        namespace: &str,
        params: &ListParams,
        resource_version: u64,
    ) -> Result<impl Stream<Item = Result<RawWatchEvent>> + Send + Unpin + 'static> {
        let req = WatchRequest {
            kind: kind.into(),
            namespace: namespace.into(),
            label_selector: params.label_selector.clone(),
            field_selector: params.field_selector.clone(),
            resource_version,
            allow_bookmarks: true,
        };
        let stream = self.api.clone().watch(req).await?.into_inner();
        Ok(stream.map(|r| r.map_err(Error::from)))
    }

    /// Binds a pod to a node (pods/binding).
    pub async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<Object> {
        let binding = Binding {
            metadata: Some(ObjectMeta { name: pod.into(), namespace: namespace.into(), ..Default::default() }),
            target: Some(ObjectReference { kind: "Node".into(), name: node.into(), ..Default::default() }),
            ..Default::default()
        };
        let req = BindRequest { namespace: namespace.into(), binding: Some(binding) };
        Ok(self.api.clone().bind(req).await?.into_inner())
    }

    /// Whether the caller (or, with `user` set in the request, another
    /// user) may do something.
    pub async fn access_review(&self, req: AccessReviewRequest) -> Result<AccessReviewResponse> {
        Ok(self.api.clone().access_review(req).await?.into_inner())
    }

    /// The kinds the server serves.
    pub async fn discovery(&self) -> Result<DiscoveryResponse> {
        Ok(self.api.clone().discovery(DiscoveryRequest {}).await?.into_inner())
    }

    // ----- the kubelets' logs, exec and usage, through the apiserver

    /// A container's log (pods/log); with `follow` the stream stays open
    /// until the container stops or the stream is dropped.
    pub async fn pod_logs(&self, req: LogsRequest) -> Result<impl Stream<Item = Result<LogChunk>> + Send + Unpin + 'static> {
        let stream = self.api.clone().pod_logs(req).await?.into_inner();
        Ok(stream.map(|r| r.map_err(Error::from)))
    }

    /// Runs a command in a pod's container (pods/exec). `stdin` is sent as
    /// the command's input and its end closes the command's stdin (pass an
    /// empty stream when `start.stdin` is false). The output ends with a
    /// message carrying the exit code.
    pub async fn pod_exec<S>(&self, start: ExecStart, stdin: S) -> Result<impl Stream<Item = Result<ExecOutput>> + Send + Unpin + 'static>
    where
        S: Stream<Item = Vec<u8>> + Send + 'static,
    {
        let first = ExecInput { start: Some(start), ..Default::default() };
        let input = futures::stream::once(std::future::ready(first))
            .chain(stdin.map(|data| ExecInput { stdin: data, ..Default::default() }))
            .chain(futures::stream::once(std::future::ready(ExecInput { stdin_eof: true, ..Default::default() })));
        let stream = self.api.clone().pod_exec(input).await?.into_inner();
        Ok(stream.map(|r| r.map_err(Error::from)))
    }

    /// Usage of nodes (`resource: "nodes"`, nodes/stats) or pods
    /// (`"pods"`, pods/metrics), with the kubelets that did not answer.
    pub async fn stats(&self, req: ClusterStatsRequest) -> Result<ClusterStatsResponse> {
        Ok(self.api.clone().stats(req).await?.into_inner())
    }

    /// A snapshot file of the whole store at one revision (the bytes of
    /// the file), with its revision and object count.
    pub async fn snapshot(&self) -> Result<(Vec<u8>, u64, u64)> {
        use futures::StreamExt as _;
        let mut stream = self.api.clone().snapshot(berth_api::pb::api::SnapshotRequest {}).await?.into_inner();
        let (mut bytes, mut revision, mut objects) = (Vec::new(), 0, 0);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if bytes.is_empty() {
                (revision, objects) = (chunk.revision, chunk.objects);
            }
            bytes.extend_from_slice(&chunk.data);
        }
        Ok((bytes, revision, objects))
    }

    // ----- typed calls

    pub async fn create<R: Resource>(&self, r: R) -> Result<R> {
        typed(self.create_object(r.into_object(), false).await?)
    }

    pub async fn get<R: Resource>(&self, namespace: &str, name: &str) -> Result<R> {
        typed(self.get_object(R::INFO.kind, namespace, name).await?)
    }

    /// Lists objects of kind `R`, with the revision the list was read at.
    pub async fn list<R: Resource>(&self, namespace: &str, params: &ListParams) -> Result<(Vec<R>, u64)> {
        let resp = self.list_objects(R::INFO.kind, namespace, params).await?;
        let items = resp.items.into_iter().map(typed).collect::<Result<Vec<R>>>()?;
        Ok((items, resp.resource_version))
    }

    pub async fn update<R: Resource>(&self, r: R) -> Result<R> {
        typed(self.update_object(r.into_object(), false).await?)
    }

    pub async fn update_status<R: Resource>(&self, r: R) -> Result<R> {
        typed(self.update_status_object(r.into_object()).await?)
    }

    pub async fn delete<R: Resource>(&self, namespace: &str, name: &str, params: &DeleteParams) -> Result<R> {
        typed(self.delete_object(R::INFO.kind, namespace, name, params).await?)
    }

    /// Streams typed changes of kind `R` after `resource_version`.
    pub async fn watch<R: Resource>(
        &self,
        namespace: &str,
        params: &ListParams,
        resource_version: u64,
    ) -> Result<impl Stream<Item = Result<WatchEvent<R>>> + Send + Unpin + 'static> {
        let raw = self.watch_objects(R::INFO.kind, namespace, params, resource_version).await?;
        Ok(raw.map(|ev| {
            let ev = ev?;
            if ev.r#type == "BOOKMARK" {
                return Ok(WatchEvent::Bookmark(ev.resource_version));
            }
            let obj: R = typed(ev.object.unwrap_or_default())?;
            Ok(match ev.r#type.as_str() {
                "ADDED" => WatchEvent::Added(obj),
                "DELETED" => WatchEvent::Deleted(obj),
                _ => WatchEvent::Modified(obj),
            })
        }))
    }
}

fn endpoint(config: &ClientConfig) -> Result<Endpoint> {
    let endpoint = Endpoint::from_shared(config.server.clone())
        .map(|e| {
            e.connect_timeout(Duration::from_secs(5))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_while_idle(true)
        })
        .map_err(|source| Error::Connect { server: config.server.clone(), source })?;
    if !config.server.starts_with("https://") {
        if config.client_certificate.is_some() {
            return Err(Error::Tls(format!("a client certificate needs an https:// server, not {}", config.server)));
        }
        return Ok(endpoint);
    }
    endpoint.tls_config(tls_config(config)?).map_err(|source| Error::Connect { server: config.server.clone(), source })
}

/// The server is verified against `ca_file` only; a client certificate is
/// presented when configured.
fn tls_config(config: &ClientConfig) -> Result<ClientTlsConfig> {
    let read =
        |what: &str, p: &std::path::Path| std::fs::read(p).map_err(|e| Error::Tls(format!("cannot read {what} {}: {e}", p.display())));
    let Some(ca) = &config.ca_file else {
        return Err(Error::Tls(format!("{} is https: give the CA that signed its certificate with --ca-file", config.server)));
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--ca-file", ca)?));
    match (&config.client_certificate, &config.client_key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(read("--client-certificate", cert)?, read("--client-key", key)?));
        }
        (None, None) => {}
        _ => return Err(Error::Tls("--client-certificate and --client-key go together".into())),
    }
    Ok(tls)
}

fn typed<R: Resource>(o: Object) -> Result<R> {
    R::from_object(o).map_err(|o| Error::WrongKind { expected: R::INFO.kind, got: o.kind_name() })
}
