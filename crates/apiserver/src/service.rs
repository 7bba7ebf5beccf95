//! The gRPC `Api` service: decodes requests, passes each through the
//! [`Gate`] (served kind, authentication, authorization, audit), calls the
//! [`Registry`] on the caller's behalf, streams watches with server-side
//! selectors and bookmarks, and records metrics. Logs, exec and stats are
//! authorized here as the pods/log, pods/exec, pods/metrics and nodes/stats
//! subresources, then relayed by the [`KubeletProxy`].

use std::any::Any;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use berth_api::KindInfo;
use berth_api::pb::api::{
    AccessReviewRequest, AccessReviewResponse, ApiResource, BindRequest, ClusterStatsRequest, ClusterStatsResponse, CreateRequest,
    DeleteRequest, DiscoveryRequest, DiscoveryResponse, GetRequest, ListRequest, Object, SnapshotChunk, SnapshotRequest, UpdateRequest,
    WatchEvent, WatchRequest,
};
use berth_api::pb::core::ObjectMeta;
use berth_api::pb::kubelet::{ExecInput, ExecOutput, LogChunk, LogsRequest};
use berth_api::wire::server::api_server::Api;
use berth_api::wire::{EncodedList, EncodedObject, EncodedWatchEvent};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::authn::Authenticated;
use crate::authz::{Attributes, Decision};
use crate::encryption::Transformer;
use crate::error::Error;
use crate::gate::Gate;
use crate::kubelet_proxy::{KubeletProxy, Relay};
use crate::metrics::Metrics;
use crate::registry::{self, DeleteOptions, Filter, Registry};
use crate::serviceaccount::ServiceAccounts;
use crate::storage::{self, Event, EventType};
use crate::user::{GROUP_AUTHENTICATED, UserInfo};

/// The API service.
#[derive(Clone)]
pub struct ApiService {
    registry: Registry,
    metrics: Arc<Metrics>,
    bookmark_interval: Duration,
    /// Becomes true when the server shuts down, ending every watch so that
    /// clients reconnect elsewhere.
    stopping: watch::Receiver<bool>,
    gate: Arc<Gate>,
    service_accounts: Arc<ServiceAccounts>,
    /// Opens the sealed Secret values that watch events carry.
    transformer: Arc<Transformer>,
    /// Logs, exec and stats go on to the kubelets through it.
    kubelets: Arc<KubeletProxy>,
    /// The store below encryption, which snapshots copy as it is.
    snapshot_source: Option<Arc<dyn storage::Store>>,
}

/// Bytes per message of a snapshot stream.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// One request as the gate sees it.
struct Call<'a> {
    who: Option<Authenticated>,
    verb: &'static str,
    /// The kind, or why it is not served.
    kind: Result<&'static KindInfo, Error>,
    namespace: String,
    name: String,
    subresource: &'static str,
    /// The object a write sends (audited at the Request level).
    object: Option<&'a Object>,
}

impl<'a> Call<'a> {
    fn new<R>(req: &Request<R>, verb: &'static str, kind: Result<&'static KindInfo, Error>) -> Call<'a> {
        Call {
            who: req.extensions().get::<Authenticated>().cloned(),
            verb,
            kind,
            namespace: String::new(),
            name: String::new(),
            subresource: "",
            object: None,
        }
    }
    fn at(mut self, namespace: &str, name: &str) -> Self {
        self.namespace = namespace.into();
        self.name = name.into();
        self
    }
    fn sub(mut self, subresource: &'static str) -> Self {
        self.subresource = subresource;
        self
    }
    fn sending(mut self, object: Option<&'a Object>) -> Self {
        self.object = object;
        self
    }
    /// The authorization attributes (namespaced kinds default to "default" where the registry does).
    fn attributes(&self, info: Option<&KindInfo>, default_namespace: bool) -> Attributes {
        let Some(info) = info else {
            return Attributes {
                verb: self.verb_name().into(),
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                ..Default::default()
            };
        };
        let ns = if info.namespaced && self.namespace.is_empty() && default_namespace { "default" } else { self.namespace.as_str() };
        Attributes::resource(self.verb_name(), info, ns, &self.name).subresource(self.subresource)
    }
    /// The RBAC verb (update_status is an update of the status subresource).
    fn verb_name(&self) -> &'static str {
        match self.verb {
            "update_status" => "update",
            "bind" => "create",
            v => v,
        }
    }
}

impl ApiService {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Registry,
        metrics: Arc<Metrics>,
        bookmark_interval: Duration,
        stopping: watch::Receiver<bool>,
        gate: Arc<Gate>,
        service_accounts: Arc<ServiceAccounts>,
        transformer: Arc<Transformer>,
        kubelets: Arc<KubeletProxy>,
    ) -> Self {
        ApiService { registry, metrics, bookmark_interval, stopping, gate, service_accounts, transformer, kubelets, snapshot_source: None }
    }

    /// Serves snapshots of `store` (the raw store, below encryption).
    pub fn with_snapshot_source(mut self, store: Arc<dyn storage::Store>) -> Self {
        self.snapshot_source = Some(store);
        self
    }

    /// Every stored object at the store's current revision, as a snapshot file.
    async fn take_snapshot(&self, who: Option<&Authenticated>) -> Result<(Vec<u8>, u64, u64), Error> {
        let user = self.gate.authenticate(who)?;
        self.gate.authorize(&user, &Attributes::non_resource("get", "/snapshot"))?;
        let Some(store) = self.snapshot_source.clone() else {
            return Err(Error::Unavailable("this server does not serve snapshots".into()));
        };
        // The list is one consistent read at one revision; encoding a large
        // store is CPU work, kept off the request threads.
        tokio::task::spawn_blocking(move || {
            let (kvs, revision) = store.list("").map_err(|e| Error::Internal(format!("reading the store: {e}")))?;
            let records = kvs
                .into_iter()
                .map(|kv| berth_api::snapshot::Record {
                    key: kv.key,
                    value: kv.value.to_vec(),
                    mod_revision: kv.mod_revision,
                    create_revision: kv.create_revision,
                })
                .collect::<Vec<_>>();
            let objects = records.len() as u64;
            Ok((berth_api::snapshot::Snapshot { revision, records }.encode(), revision, objects))
        })
        .await
        .map_err(|e| Error::Internal(format!("snapshot task: {e}")))?
    }

    /// Checks a call at the gate: the kind is served, the caller is who it
    /// says and may do this. Returns the registry to act through, on the caller's behalf.
    fn admit_call(&self, call: &Call<'_>) -> Result<(&'static KindInfo, Registry), Error> {
        let info = call.kind.as_ref().map_err(clone_error)?;
        let user = self.gate.authenticate(call.who.as_ref())?;
        let writes = !matches!(call.verb, "get" | "list" | "watch");
        self.gate.authorize(&user, &call.attributes(Some(info), writes))?;
        Ok((info, self.registry.as_user(user)))
    }

    /// Runs one request through the gate, recording its count, code,
    /// latency and audit line.
    async fn observe<T, F, Fut>(&self, call: Call<'_>, f: F) -> Result<Response<T>, Status>
    where
        F: FnOnce(&'static KindInfo, Registry) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = Instant::now();
        let _inflight = self.metrics.inflight();
        let result = match self.admit_call(&call) {
            // Boxed: a write's future holds several Objects (1.2 KB each) and the registry's
            // future; inline, every request's future was 13–22 KB, copied whole when tonic
            // boxes it (memmove fell from 12.3% to 9.9% of the apiserver's CPU samples under
            // the api benchmark with this and the boxing in `ServiceAccounts::created`).
            Ok((info, registry)) => Box::pin(f(info, registry)).await,
            Err(e) => Err(e),
        };
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.code(),
        };
        let kind = call.kind.as_ref().map(|k| k.kind).unwrap_or("unknown");
        self.metrics.observe_request(call.verb, kind, code, start.elapsed());
        let writes = !matches!(call.verb, "get" | "list" | "watch");
        self.gate.audit(call.who.as_ref(), &call.attributes(call.kind.as_ref().ok().copied(), writes), kind, code, call.object);
        match result {
            Ok(v) => Ok(Response::new(v)),
            Err(e) => {
                debug!(verb = call.verb, kind, error = %e, "request refused");
                Err(e.into())
            }
        }
    }

    /// A write's object, and a copy for the audit log if there is one (the registry consumes
    /// the object, and without an audit log a deep copy of every write is wasted).
    fn audit_copy(&self, object: Option<Object>) -> (Option<Object>, Option<Object>) {
        let copy = if self.gate.records_objects() { object.clone() } else { None };
        (object, copy)
    }

    /// The user a request comes from, or Unauthenticated.
    fn caller<R>(&self, req: &Request<R>) -> Result<UserInfo, Error> {
        self.gate.authenticate(req.extensions().get::<Authenticated>())
    }
}

/// A request without a namespace means "default", as everywhere in the API.
fn default_namespace(namespace: &mut String) {
    if namespace.is_empty() {
        *namespace = "default".into();
    }
}

/// Errors are not Clone; the gate reports a kind lookup failure once.
fn clone_error(e: &Error) -> Error {
    match e {
        Error::NotFound { plural, name } => Error::NotFound { plural: plural.clone(), name: name.clone() },
        other => Error::BadRequest(other.to_string()),
    }
}

fn object_kind(gate: &Gate, o: &Option<Object>) -> Result<&'static KindInfo, Error> {
    let info = o.as_ref().and_then(|o| o.info()).ok_or_else(|| Error::BadRequest("object: Required value".into()))?;
    gate.kind(info.kind)
}

fn object_at(o: &Option<Object>) -> (String, String) {
    o.as_ref().map(|o| (o.namespace().to_string(), o.name().to_string())).unwrap_or_default()
}

/// The verbs every served kind supports.
const VERBS: &[&str] = &["create", "delete", "get", "list", "update", "watch"];

#[tonic::async_trait]
impl Api for ApiService {
    async fn create(&self, req: Request<CreateRequest>) -> Result<Response<Object>, Status> {
        let call = Call::new(&req, "create", object_kind(&self.gate, &req.get_ref().object));
        let (ns, name) = object_at(&req.get_ref().object);
        let r = req.into_inner();
        let dry_run = r.dry_run;
        let (object, audited) = self.audit_copy(r.object);
        let call = call.at(&ns, &name).sending(audited.as_ref());
        self.observe(call, |_, registry| async move {
            let o = object.ok_or_else(|| Error::BadRequest("object: Required value".into()))?;
            let created = registry.create(o, dry_run).await?;
            if !dry_run {
                self.service_accounts.created(&created).await;
            }
            Ok(created)
        })
        .await
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<Object>, Status> {
        let call = Call::new(&req, "get", self.gate.kind(&req.get_ref().kind));
        let r = req.into_inner();
        let call = call.at(&r.namespace, &r.name);
        self.observe(call, |info, registry| async move { registry.get(info.kind, &r.namespace, &r.name) }).await
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<EncodedList>, Status> {
        let call = Call::new(&req, "list", self.gate.kind(&req.get_ref().kind));
        let r = req.into_inner();
        let call = call.at(&r.namespace, "");
        self.observe(call, |info, registry| async move {
            let filter = Filter::parse(info, &r.label_selector, &r.field_selector)?;
            let (items, rev) = registry.list_encoded(info, &r.namespace, &filter, r.min_resource_version).await?;
            Ok(EncodedList { items, resource_version: rev })
        })
        .await
    }

    async fn update(&self, req: Request<UpdateRequest>) -> Result<Response<Object>, Status> {
        let call = Call::new(&req, "update", object_kind(&self.gate, &req.get_ref().object));
        let (ns, name) = object_at(&req.get_ref().object);
        let r = req.into_inner();
        let dry_run = r.dry_run;
        let (object, audited) = self.audit_copy(r.object);
        let call = call.at(&ns, &name).sending(audited.as_ref());
        self.observe(call, |_, registry| async move {
            let o = object.ok_or_else(|| Error::BadRequest("object: Required value".into()))?;
            registry.update(o, false, dry_run).await
        })
        .await
    }

    async fn update_status(&self, req: Request<UpdateRequest>) -> Result<Response<Object>, Status> {
        let call = Call::new(&req, "update_status", object_kind(&self.gate, &req.get_ref().object));
        let (ns, name) = object_at(&req.get_ref().object);
        let r = req.into_inner();
        let dry_run = r.dry_run;
        let (object, audited) = self.audit_copy(r.object);
        let call = call.at(&ns, &name).sub("status").sending(audited.as_ref());
        self.observe(call, |_, registry| async move {
            let o = object.ok_or_else(|| Error::BadRequest("object: Required value".into()))?;
            registry.update(o, true, dry_run).await
        })
        .await
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<Object>, Status> {
        let call = Call::new(&req, "delete", self.gate.kind(&req.get_ref().kind));
        let r = req.into_inner();
        let call = call.at(&r.namespace, &r.name);
        self.observe(call, |info, registry| async move {
            let opts = DeleteOptions {
                uid: r.uid,
                resource_version: r.resource_version,
                grace_period_seconds: r.grace_period_seconds,
                propagation_policy: r.propagation_policy,
            };
            let gone = registry.delete(info.kind, &r.namespace, &r.name, &opts).await?;
            self.service_accounts.deleted(&gone).await;
            Ok(gone)
        })
        .await
    }

    async fn bind(&self, req: Request<BindRequest>) -> Result<Response<Object>, Status> {
        let call = Call::new(&req, "bind", self.gate.kind("Pod"));
        let r = req.into_inner();
        let pod = r.binding.as_ref().and_then(|b| b.metadata.as_ref()).map(|m| m.name.clone()).unwrap_or_default();
        let call = call.at(&r.namespace, &pod).sub("binding");
        self.observe(call, |_, registry| async move {
            let b = r.binding.ok_or_else(|| Error::BadRequest("binding: Required value".into()))?;
            registry.bind(&r.namespace, &b).await
        })
        .await
    }

    async fn access_review(&self, req: Request<AccessReviewRequest>) -> Result<Response<AccessReviewResponse>, Status> {
        let caller = self.caller(&req)?;
        let r = req.into_inner();
        let subject = if r.user.is_empty() {
            caller
        } else {
            // Asking about someone else is a SubjectAccessReview.
            let review = Attributes {
                verb: "create".into(),
                api_group: "authorization.k8s.io".into(),
                resource: "subjectaccessreviews".into(),
                ..Default::default()
            };
            self.gate.authorize(&caller, &review)?;
            let mut groups = r.groups.clone();
            if !groups.iter().any(|g| g == GROUP_AUTHENTICATED) {
                groups.push(GROUP_AUTHENTICATED.into());
            }
            UserInfo { name: r.user.clone(), uid: String::new(), groups }
        };
        let attributes = if !r.non_resource_path.is_empty() {
            Attributes::non_resource(&r.verb, &r.non_resource_path)
        } else {
            let (resource, sub) = r.resource.split_once('/').unwrap_or((r.resource.as_str(), ""));
            match berth_api::resource::find_kind(resource) {
                Some(info) => Attributes::resource(&r.verb, info, &r.namespace, &r.name).subresource(sub),
                None => Attributes {
                    verb: r.verb.clone(),
                    resource: resource.into(),
                    subresource: sub.into(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    ..Default::default()
                },
            }
        };
        let decision = self.gate.authorizer.authorize(&subject, &attributes);
        let (allowed, reason) = match decision {
            Decision::Allow(why) => (true, why),
            Decision::Deny(why) => (false, why),
            Decision::NoOpinion => (false, "no RBAC rule grants it".to_string()),
        };
        Ok(Response::new(AccessReviewResponse { allowed, reason, user: subject.name, groups: subject.groups }))
    }

    async fn discovery(&self, req: Request<DiscoveryRequest>) -> Result<Response<DiscoveryResponse>, Status> {
        self.caller(&req)?;
        let resources = berth_api::resource::KINDS
            .iter()
            .filter(|k| self.gate.serves(k))
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
        let call = Call::new(&req, "get", self.gate.kind("Pod"));
        let mut r = req.into_inner();
        default_namespace(&mut r.namespace);
        let call = call.at(&r.namespace, &r.pod).sub("log");
        self.observe(call, |_, _| self.kubelets.logs(r)).await
    }

    type PodExecStream = Relay<ExecOutput>;

    async fn pod_exec(&self, req: Request<Streaming<ExecInput>>) -> Result<Response<Self::PodExecStream>, Status> {
        let call = Call::new(&req, "create", self.gate.kind("Pod"));
        // An unauthenticated caller is refused before its first message is read.
        self.caller(&req)?;
        let mut input = req.into_inner();
        let mut first = input.message().await?.unwrap_or_default();
        let (namespace, pod) = match first.start.as_mut() {
            Some(start) => {
                default_namespace(&mut start.namespace);
                (start.namespace.clone(), start.pod.clone())
            }
            None => return Err(Error::BadRequest("the first message of an exec must carry `start`".into()).into()),
        };
        let call = call.at(&namespace, &pod).sub("exec");
        self.observe(call, |_, _| self.kubelets.exec(first, input)).await
    }

    async fn stats(&self, req: Request<ClusterStatsRequest>) -> Result<Response<ClusterStatsResponse>, Status> {
        let mut r = req.get_ref().clone();
        let verb = if r.name.is_empty() { "list" } else { "get" };
        let call = match r.resource.as_str() {
            "pods" | "pod" => {
                if !r.name.is_empty() {
                    default_namespace(&mut r.namespace);
                }
                Call::new(&req, verb, self.gate.kind("Pod")).at(&r.namespace, &r.name).sub("metrics")
            }
            _ => Call::new(&req, verb, self.gate.kind("Node")).at("", &r.name).sub("stats"),
        };
        self.observe(call, |_, _| async move { self.kubelets.stats(&r).await }).await
    }

    type SnapshotStream = futures::stream::Iter<std::vec::IntoIter<Result<SnapshotChunk, Status>>>;

    async fn snapshot(&self, req: Request<SnapshotRequest>) -> Result<Response<Self::SnapshotStream>, Status> {
        let start = Instant::now();
        let who = req.extensions().get::<Authenticated>().cloned();
        let result = self.take_snapshot(who.as_ref()).await;
        let code = result.as_ref().map(|_| tonic::Code::Ok).unwrap_or_else(|e| e.code());
        self.metrics.observe_request("snapshot", "", code, start.elapsed());
        self.gate.audit(who.as_ref(), &Attributes::non_resource("get", "/snapshot"), "", code, None);
        let (bytes, revision, objects) = result?;
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

    type WatchStream = ReceiverStream<Result<EncodedWatchEvent, Status>>;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let call = Call::new(&req, "watch", self.gate.kind(&req.get_ref().kind));
        let r = req.into_inner();
        let call = call.at(&r.namespace, "");
        let start = Instant::now();
        let result = self.admit_call(&call).and_then(|_| self.start_watch(r));
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(e) => e.code(),
        };
        let kind = call.kind.as_ref().map(|k| k.kind).unwrap_or("unknown");
        self.metrics.observe_request("watch", kind, code, start.elapsed());
        self.gate.audit(call.who.as_ref(), &call.attributes(call.kind.as_ref().ok().copied(), false), kind, code, None);
        result.map(Response::new).map_err(Status::from)
    }
}

/// An event decoded once for every watcher (stored in the event's memo
/// slot), and encoded once per event type that watchers see it as.
#[derive(Default)]
struct Decoded {
    new: Option<Object>,
    prev: Option<Object>,
    /// The new value as stored (opened), with its resourceVersion patch.
    wire: EncodedObject,
    /// The event as ADDED, MODIFIED and DELETED, encoded by the first
    /// watcher that sends it so.
    encoded: [OnceLock<EncodedWatchEvent>; 3],
}

impl Decoded {
    fn encoded(&self, event_type: &'static str, revision: u64) -> EncodedWatchEvent {
        let slot = match event_type {
            "ADDED" => 0,
            "MODIFIED" => 1,
            _ => 2,
        };
        self.encoded[slot].get_or_init(|| EncodedWatchEvent::new(event_type, &self.wire, revision)).clone()
    }
}

fn decoded<'e>(ev: &'e Event, info: &KindInfo, transformer: &Transformer) -> &'e Decoded {
    let any = ev.decoded.get_or_init(|| {
        let open = |v: &bytes::Bytes| transformer.open(&ev.key, v).map_err(|e| Error::Internal(e.to_string()));
        let opened = open(&ev.value)
            .and_then(|v| registry::decode_at(&v, ev.revision, &ev.key).map(|o| (v, o)))
            .inspect_err(|e| warn!(key = %ev.key, error = %e, "undecodable event"))
            .ok();
        let prev = ev.prev_value.as_ref().and_then(|p| open(p).and_then(|v| registry::decode_at(&v, ev.revision, &ev.key)).ok());
        let (wire, new) = match opened {
            Some((v, o)) => (EncodedObject::at(info, v, ev.revision), Some(o)),
            None => (EncodedObject::default(), None),
        };
        Arc::new(Decoded { new, prev, wire, encoded: Default::default() }) as Arc<dyn Any + Send + Sync>
    });
    // The slot is only ever filled above, with a Decoded.
    static EMPTY: OnceLock<Decoded> = OnceLock::new();
    any.downcast_ref::<Decoded>().unwrap_or_else(|| EMPTY.get_or_init(Decoded::default))
}

/// What a watcher with `filter` sees of a store event: selector transitions
/// turn into ADDED / DELETED as Kubernetes does.
fn translate(ev: &Event, info: &KindInfo, filter: &Filter, transformer: &Transformer) -> Option<EncodedWatchEvent> {
    let d = decoded(ev, info, transformer);
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
    Some(d.encoded(t, ev.revision))
}

fn bookmark(kind: &'static berth_api::KindInfo, revision: u64) -> EncodedWatchEvent {
    let mut o = Object::empty(kind).unwrap_or_default();
    if let Some(m) = o.metadata_mut() {
        *m = ObjectMeta { resource_version: revision.to_string(), ..Default::default() };
    }
    EncodedWatchEvent::from_event(&WatchEvent { r#type: "BOOKMARK".into(), object: Some(o), resource_version: revision })
}

impl ApiService {
    fn start_watch(&self, r: WatchRequest) -> Result<ReceiverStream<Result<EncodedWatchEvent, Status>>, Error> {
        let info = self.gate.kind(&r.kind)?;
        let filter = Filter::parse(info, &r.label_selector, &r.field_selector)?;
        let prefix = info.prefix(&r.namespace);
        let transformer = self.transformer.clone();
        let store = self.registry.store().clone();
        let (initial, from) = if r.resource_version == 0 {
            let (kvs, rev) = store.list(&prefix).map_err(|e| Error::from_store(e, info.plural, ""))?;
            (kvs, rev)
        } else {
            (Vec::new(), r.resource_version)
        };
        let mut stream = store.watch(&prefix, from).map_err(|e| Error::from_store(e, info.plural, ""))?;
        let (tx, rx) = mpsc::channel::<Result<EncodedWatchEvent, Status>>(1024);
        let mut stopping = self.stopping.clone();
        let bookmarks = r.allow_bookmarks;
        let interval = self.bookmark_interval;
        let watchers = self.metrics.watcher(info.kind);
        tokio::spawn(async move {
            let _watchers = watchers;
            for kv in &initial {
                let Ok(o) = registry::decode(kv) else { continue };
                if filter.matches(&o) {
                    let object = EncodedObject::at(info, kv.value.clone(), kv.mod_revision);
                    let ev = EncodedWatchEvent::new("ADDED", &object, kv.mod_revision);
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
                            if let Some(out) = translate(&ev, info, &filter, &transformer)
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
