//! The gRPC `Api` service: decodes requests, calls the [`Registry`], streams
//! watches with server-side selectors and bookmarks, and records metrics.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_api::pb::api::api_server::Api;
use berth_api::pb::api::{
    BindRequest, CreateRequest, DeleteRequest, GetRequest, ListRequest, ListResponse, Object, UpdateRequest, WatchEvent, WatchRequest,
};
use berth_api::pb::core::ObjectMeta;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::{debug, warn};

use crate::error::Error;
use crate::metrics::Metrics;
use crate::registry::{self, DeleteOptions, Filter, Registry};
use crate::storage::{self, Event, EventType};

/// The API service.
#[derive(Clone)]
pub struct ApiService {
    registry: Registry,
    metrics: Arc<Metrics>,
    bookmark_interval: Duration,
    /// Becomes true when the server shuts down, ending every watch so that
    /// clients reconnect elsewhere.
    stopping: watch::Receiver<bool>,
}

impl ApiService {
    pub fn new(registry: Registry, metrics: Arc<Metrics>, bookmark_interval: Duration, stopping: watch::Receiver<bool>) -> Self {
        ApiService { registry, metrics, bookmark_interval, stopping }
    }

    /// Runs one request, recording its count, code and latency.
    async fn observe<T>(&self, verb: &'static str, kind: &str, f: impl Future<Output = Result<T, Error>>) -> Result<Response<T>, Status> {
        let start = Instant::now();
        let _inflight = self.metrics.inflight();
        let result = f.await;
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.code(),
        };
        self.metrics.observe_request(verb, kind, code, start.elapsed());
        match result {
            Ok(v) => Ok(Response::new(v)),
            Err(e) => {
                debug!(verb, kind, error = %e, "request refused");
                Err(e.into())
            }
        }
    }
}

fn kind_label(o: &Option<Object>) -> String {
    o.as_ref().map(|o| o.kind_name().to_string()).unwrap_or_default()
}

fn canonical_kind(name: &str) -> String {
    berth_api::resource::find_kind(name).map(|k| k.kind.to_string()).unwrap_or_else(|| "unknown".into())
}

#[tonic::async_trait]
impl Api for ApiService {
    async fn create(&self, req: Request<CreateRequest>) -> Result<Response<Object>, Status> {
        let r = req.into_inner();
        let kind = kind_label(&r.object);
        self.observe("create", &kind, async {
            let o = r.object.ok_or_else(|| Error::BadRequest("object: Required value".into()))?;
            self.registry.create(o, r.dry_run).await
        })
        .await
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<Object>, Status> {
        let r = req.into_inner();
        self.observe("get", &canonical_kind(&r.kind), async { self.registry.get(&r.kind, &r.namespace, &r.name) }).await
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let r = req.into_inner();
        self.observe("list", &canonical_kind(&r.kind), async {
            let info = registry::kind(&r.kind)?;
            let filter = Filter::parse(info, &r.label_selector, &r.field_selector)?;
            let (items, rev) = self.registry.list(info, &r.namespace, &filter, r.min_resource_version).await?;
            Ok(ListResponse { items, resource_version: rev })
        })
        .await
    }

    async fn update(&self, req: Request<UpdateRequest>) -> Result<Response<Object>, Status> {
        let r = req.into_inner();
        let kind = kind_label(&r.object);
        self.observe("update", &kind, async {
            let o = r.object.ok_or_else(|| Error::BadRequest("object: Required value".into()))?;
            self.registry.update(o, false, r.dry_run).await
        })
        .await
    }

    async fn update_status(&self, req: Request<UpdateRequest>) -> Result<Response<Object>, Status> {
        let r = req.into_inner();
        let kind = kind_label(&r.object);
        self.observe("update_status", &kind, async {
            let o = r.object.ok_or_else(|| Error::BadRequest("object: Required value".into()))?;
            self.registry.update(o, true, r.dry_run).await
        })
        .await
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<Object>, Status> {
        let r = req.into_inner();
        self.observe("delete", &canonical_kind(&r.kind), async {
            let opts = DeleteOptions {
                uid: r.uid,
                resource_version: r.resource_version,
                grace_period_seconds: r.grace_period_seconds,
                propagation_policy: r.propagation_policy,
            };
            self.registry.delete(&r.kind, &r.namespace, &r.name, &opts).await
        })
        .await
    }

    async fn bind(&self, req: Request<BindRequest>) -> Result<Response<Object>, Status> {
        let r = req.into_inner();
        self.observe("bind", "Pod", async {
            let b = r.binding.ok_or_else(|| Error::BadRequest("binding: Required value".into()))?;
            self.registry.bind(&r.namespace, &b).await
        })
        .await
    }

    type WatchStream = ReceiverStream<Result<WatchEvent, Status>>;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let r = req.into_inner();
        let kind = canonical_kind(&r.kind);
        let start = Instant::now();
        let result = self.start_watch(r);
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.code(),
        };
        self.metrics.observe_request("watch", &kind, code, start.elapsed());
        result.map(Response::new).map_err(Status::from)
    }
}

/// An event decoded once for every watcher (stored in the event's memo slot).
struct Decoded {
    new: Option<Object>,
    prev: Option<Object>,
}

fn decoded(ev: &Event) -> &Decoded {
    let any = ev.decoded.get_or_init(|| {
        let new = registry::decode_at(&ev.value, ev.revision, &ev.key)
            .inspect_err(|e| warn!(key = %ev.key, error = %e, "undecodable event"))
            .ok();
        let prev = ev.prev_value.as_ref().and_then(|p| registry::decode_at(p, ev.revision, &ev.key).ok());
        Arc::new(Decoded { new, prev }) as Arc<dyn Any + Send + Sync>
    });
    // The slot is only ever filled above, with a Decoded.
    static EMPTY: Decoded = Decoded { new: None, prev: None };
    any.downcast_ref::<Decoded>().unwrap_or(&EMPTY)
}

/// What a watcher with `filter` sees of a store event: selector transitions
/// turn into ADDED / DELETED as Kubernetes does.
fn translate(ev: &Event, filter: &Filter) -> Option<WatchEvent> {
    let d = decoded(ev);
    let new = d.new.as_ref()?;
    let everything = filter.is_everything();
    let now_matches = everything || filter.matches(new);
    let was_matching = match (&ev.event_type, &d.prev) {
        (EventType::Added, _) => false,
        (_, Some(p)) => everything || filter.matches(p),
        (_, None) => now_matches,
    };
    let t = match ev.event_type {
        EventType::Added if now_matches => "ADDED",
        EventType::Modified if now_matches && was_matching => "MODIFIED",
        EventType::Modified if now_matches => "ADDED",
        EventType::Modified if was_matching => "DELETED",
        EventType::Deleted if now_matches => "DELETED",
        _ => return None,
    };
    Some(WatchEvent { r#type: t.into(), object: Some(new.clone()), resource_version: ev.revision })
}

fn bookmark(kind: &'static berth_api::KindInfo, revision: u64) -> WatchEvent {
    let mut o = Object::empty(kind).unwrap_or_default();
    if let Some(m) = o.metadata_mut() {
        *m = ObjectMeta { resource_version: revision.to_string(), ..Default::default() };
    }
    WatchEvent { r#type: "BOOKMARK".into(), object: Some(o), resource_version: revision }
}

impl ApiService {
    fn start_watch(&self, r: WatchRequest) -> Result<ReceiverStream<Result<WatchEvent, Status>>, Error> {
        let info = registry::kind(&r.kind)?;
        let filter = Filter::parse(info, &r.label_selector, &r.field_selector)?;
        let prefix = info.prefix(&r.namespace);
        let store = self.registry.store().clone();
        let (initial, from) = if r.resource_version == 0 {
            let (kvs, rev) = store.list(&prefix).map_err(|e| Error::from_store(e, info.plural, ""))?;
            (kvs, rev)
        } else {
            (Vec::new(), r.resource_version)
        };
        let mut stream = store.watch(&prefix, from).map_err(|e| Error::from_store(e, info.plural, ""))?;
        let (tx, rx) = mpsc::channel::<Result<WatchEvent, Status>>(1024);
        let mut stopping = self.stopping.clone();
        let bookmarks = r.allow_bookmarks;
        let interval = self.bookmark_interval;
        let watchers = self.metrics.watcher(info.kind);
        tokio::spawn(async move {
            let _watchers = watchers;
            for kv in &initial {
                let Ok(o) = registry::decode(kv) else { continue };
                if filter.matches(&o) {
                    let ev = WatchEvent { r#type: "ADDED".into(), object: Some(o), resource_version: kv.mod_revision };
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
            }
            drop(initial);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            loop {
                tokio::select! {
                    next = stream.next() => match next {
                        Some(Ok(ev)) => {
                            if let Some(out) = translate(&ev, &filter)
                                && tx.send(Ok(out)).await.is_err()
                            {
                                return;
                            }
                        }
                        Some(Err(e)) => {
                            let e = match e {
                                storage::Error::TooOld { requested, oldest } => Error::Gone { requested, oldest },
                                other => Error::Internal(other.to_string()),
                            };
                            let _ = tx.send(Err(e.into())).await;
                            return;
                        }
                        None => return,
                    },
                    _ = tick.tick(), if bookmarks => {
                        if tx.send(Ok(bookmark(info, stream.progress()))).await.is_err() {
                            return;
                        }
                    }
                    _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
                        let _ = tx.send(Err(Status::unavailable("the apiserver is shutting down"))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }
}
