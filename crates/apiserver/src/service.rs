//! The gRPC `Api` service: Berth's own transport. Each RPC decodes its
//! request, calls the transport-neutral [`Handlers`] (gate, registry,
//! kubelet relay) and maps their [`Error`]s to gRPC status codes.

use std::pin::Pin;
use std::sync::Arc;

use berth_api::pb::api::{
    AccessReviewRequest, AccessReviewResponse, ApiResource, BindRequest, ClusterStatsRequest, ClusterStatsResponse, CreateRequest,
    DeleteRequest, DiscoveryRequest, DiscoveryResponse, GetRequest, ListRequest, Object, SnapshotChunk, SnapshotRequest, UpdateRequest,
    WatchRequest,
};
use berth_api::pb::kubelet::{ExecInput, ExecOutput, LogChunk, LogsRequest};
use berth_api::wire::server::api_server::Api;
use berth_api::wire::{EncodedList, EncodedWatchEvent};
use futures::{Stream, StreamExt as _};
use tonic::{Request, Response, Status, Streaming};

use crate::authn::Authenticated;
use crate::error::Error;
use crate::handlers::{Handlers, ListQuery, default_namespace};
use crate::kubelet_proxy::Relay;
use crate::registry::DeleteOptions;

/// The API service.
#[derive(Clone)]
pub struct ApiService {
    handlers: Arc<Handlers>,
}

/// Bytes per message of a snapshot stream.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// The verbs every served kind supports.
pub const VERBS: &[&str] = &["create", "delete", "get", "list", "update", "watch"];

impl ApiService {
    pub fn new(handlers: Arc<Handlers>) -> Self {
        ApiService { handlers }
    }
}

fn who<R>(req: &Request<R>) -> Option<Authenticated> {
    req.extensions().get::<Authenticated>().cloned()
}

fn answer<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(Status::from)
}

fn required(o: Option<Object>) -> Result<Object, Status> {
    o.ok_or_else(|| Error::BadRequest("object: Required value".into()).into())
}

#[tonic::async_trait]
impl Api for ApiService {
    async fn create(&self, req: Request<CreateRequest>) -> Result<Response<Object>, Status> {
        let who = who(&req);
        let r = req.into_inner();
        answer(self.handlers.create(who.as_ref(), required(r.object)?, r.dry_run).await)
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<Object>, Status> {
        let who = who(&req);
        let r = req.into_inner();
        answer(self.handlers.get(who.as_ref(), &r.kind, &r.namespace, &r.name).await)
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<EncodedList>, Status> {
        let who = who(&req);
        let r = req.into_inner();
        let q = ListQuery {
            kind: &r.kind,
            namespace: &r.namespace,
            label_selector: &r.label_selector,
            field_selector: &r.field_selector,
            min_resource_version: r.min_resource_version,
        };
        let listed = self.handlers.list_encoded(who.as_ref(), &q).await;
        answer(listed.map(|(items, resource_version)| EncodedList { items, resource_version }))
    }

    async fn update(&self, req: Request<UpdateRequest>) -> Result<Response<Object>, Status> {
        let who = who(&req);
        let r = req.into_inner();
        answer(self.handlers.update(who.as_ref(), required(r.object)?, false, r.dry_run).await)
    }

    async fn update_status(&self, req: Request<UpdateRequest>) -> Result<Response<Object>, Status> {
        let who = who(&req);
        let r = req.into_inner();
        answer(self.handlers.update(who.as_ref(), required(r.object)?, true, r.dry_run).await)
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<Object>, Status> {
        let who = who(&req);
        let r = req.into_inner();
        let opts = DeleteOptions {
            uid: r.uid,
            resource_version: r.resource_version,
            grace_period_seconds: r.grace_period_seconds,
            propagation_policy: r.propagation_policy,
        };
        answer(self.handlers.delete(who.as_ref(), &r.kind, &r.namespace, &r.name, &opts, false).await)
    }

    async fn bind(&self, req: Request<BindRequest>) -> Result<Response<Object>, Status> {
        let who = who(&req);
        let r = req.into_inner();
        let binding = r.binding.ok_or_else(|| Status::from(Error::BadRequest("binding: Required value".into())))?;
        answer(self.handlers.bind(who.as_ref(), &r.namespace, binding).await)
    }

    async fn access_review(&self, req: Request<AccessReviewRequest>) -> Result<Response<AccessReviewResponse>, Status> {
        answer(self.handlers.access_review(who(&req).as_ref(), req.get_ref()))
    }

    async fn discovery(&self, req: Request<DiscoveryRequest>) -> Result<Response<DiscoveryResponse>, Status> {
        self.handlers.caller(who(&req).as_ref())?;
        let resources = berth_api::resource::KINDS
            .iter()
            .filter(|k| self.handlers.serves(k))
            .map(|k| ApiResource {
                kind: k.kind.into(),
                api_version: k.api_version.into(),
                plural: k.plural.into(),
                singular: k.singular.into(),
                short_names: k.short_names.iter().map(|s| s.to_string()).collect(),
                namespaced: k.namespaced,
                verbs: VERBS.iter().map(|v| v.to_string()).collect(),
            })
            .collect();
        Ok(Response::new(DiscoveryResponse { resources }))
    }

    type PodLogsStream = Relay<LogChunk>;

    async fn pod_logs(&self, req: Request<LogsRequest>) -> Result<Response<Self::PodLogsStream>, Status> {
        let who = who(&req);
        answer(self.handlers.logs(who.as_ref(), req.into_inner()).await)
    }

    type PodExecStream = Relay<ExecOutput>;

    async fn pod_exec(&self, req: Request<Streaming<ExecInput>>) -> Result<Response<Self::PodExecStream>, Status> {
        let who = who(&req);
        // An unauthenticated caller is refused before its first message is read.
        self.handlers.caller(who.as_ref())?;
        let mut input = req.into_inner();
        let mut first = input.message().await?.unwrap_or_default();
        if let Some(start) = first.start.as_mut() {
            default_namespace(&mut start.namespace);
        }
        answer(self.handlers.exec(who.as_ref(), first, input).await)
    }

    async fn stats(&self, req: Request<ClusterStatsRequest>) -> Result<Response<ClusterStatsResponse>, Status> {
        let who = who(&req);
        answer(self.handlers.stats(who.as_ref(), req.into_inner()).await)
    }

    type SnapshotStream = futures::stream::Iter<std::vec::IntoIter<Result<SnapshotChunk, Status>>>;

    async fn snapshot(&self, req: Request<SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        let (bytes, revision, objects) = self.handlers.snapshot(who(&req).as_ref()).await?;
        let mut chunks: Vec<Result<SnapshotChunk, Status>> =
            bytes.chunks(SNAPSHOT_CHUNK).map(|c| Ok(SnapshotChunk { data: c.to_vec(), revision: 0, objects: 0 })).collect();
        match chunks.first_mut() {
            Some(Ok(first)) => {
                first.revision = revision;
                first.objects = objects;
            }
            _ => chunks.push(Ok(SnapshotChunk { data: Vec::new(), revision, objects })),
        }
        Ok(Response::new(futures::stream::iter(chunks)))
    }

    type WatchStream = Pin<Box<dyn Stream<Item = Result<EncodedWatchEvent, Status>> + Send>>;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let who = who(&req);
        let r = req.into_inner();
        let events = self.handlers.watch(
            who.as_ref(),
            &r.kind,
            &r.namespace,
            &r.label_selector,
            &r.field_selector,
            r.resource_version,
            r.allow_bookmarks,
        )?;
        let stream = tokio_stream::wrappers::ReceiverStream::new(events).map(|e| e.map_err(Status::from));
        Ok(Response::new(Box::pin(stream)))
    }
}
