//! The request core both transports call: each request names who sends it
//! (authentication's outcome), passes the [`Gate`] (served kind,
//! authorization, audit) and then the [`Registry`] (admission, validation,
//! storage) on the caller's behalf. The gRPC service ([`crate::service`])
//! and the Kubernetes REST router ([`crate::rest`]) only translate their
//! wire formats to these calls and [`Error`]s back, so every rule is written
//! once.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_api::KindInfo;
use berth_api::pb::api::{AccessReviewRequest, AccessReviewResponse, ClusterStatsRequest, ClusterStatsResponse, Object};
use berth_api::pb::core::Binding;
use berth_api::pb::kubelet::{ExecInput, ExecOutput, LogChunk, LogsRequest};
use berth_api::wire::{EncodedObject, EncodedWatchEvent};
use berth_base::shutdown::Stop;
use futures::Stream;
use tokio::sync::mpsc;
use tonic::Status;
use tracing::debug;

use crate::authn::Authenticated;
use crate::authz::{Attributes, Decision};
use crate::encryption::Transformer;
use crate::error::Error;
use crate::gate::Gate;
use crate::kubelet_proxy::{KubeletProxy, Relay};
use crate::lister::Filter;
use crate::metrics::Metrics;
use crate::registry::{DeleteOptions, Registry};
use crate::serviceaccount::ServiceAccounts;
use crate::storage;
use crate::user::{GROUP_AUTHENTICATED, UserInfo};

/// How many times a patch is re-applied when another writer changed the
/// object between its read and its write (kube-apiserver's GuaranteedUpdate).
const PATCH_RETRIES: usize = 5;

/// The reason of a denial no authorizer had an opinion on.
pub const NO_RULE: &str = "no RBAC rule grants it";

/// The request core: what both transports call.
pub struct Handlers {
    pub(crate) registry: Registry,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) bookmark_interval: Duration,
    /// Becomes true when the server shuts down, ending every watch so that
    /// clients reconnect elsewhere.
    pub(crate) stopping: Stop,
    pub(crate) gate: Arc<Gate>,
    service_accounts: Arc<ServiceAccounts>,
    /// Opens the sealed Secret values that watch events carry.
    pub(crate) transformer: Arc<Transformer>,
    /// Logs, exec and stats go on to the kubelets through it.
    kubelets: Arc<KubeletProxy>,
    /// The store below encryption, which snapshots copy as it is.
    snapshot_source: Option<Arc<dyn storage::Store>>,
}

/// One request as the gate sees it.
pub struct Call<'a> {
    who: Option<&'a Authenticated>,
    /// The RBAC verb: get, list, watch, create, update, patch, delete, deletecollection.
    verb: &'static str,
    /// The kind, or why it is not served.
    kind: Result<&'static KindInfo, Error>,
    namespace: &'a str,
    name: &'a str,
    subresource: &'static str,
    /// The object a write sends (audited at the Request level).
    object: Option<&'a Object>,
}

impl<'a> Call<'a> {
    pub fn new(who: Option<&'a Authenticated>, verb: &'static str, kind: Result<&'static KindInfo, Error>) -> Call<'a> {
        Call { who, verb, kind, namespace: "", name: "", subresource: "", object: None }
    }
    pub fn at(mut self, namespace: &'a str, name: &'a str) -> Self {
        self.namespace = namespace;
        self.name = name;
        self
    }
    pub fn on_subresource(mut self, subresource: &'static str) -> Self {
        self.subresource = subresource;
        self
    }
    pub fn sending(mut self, object: Option<&'a Object>) -> Self {
        self.object = object;
        self
    }
    fn writes(&self) -> bool {
        !matches!(self.verb, "get" | "list" | "watch")
    }
    /// The authorization attributes (a write to a namespaced kind without a
    /// namespace goes to "default", as the registry puts it there).
    fn attributes(&self) -> Attributes {
        let Ok(info) = &self.kind else {
            return Attributes { verb: self.verb.into(), namespace: self.namespace.into(), name: self.name.into(), ..Default::default() };
        };
        let ns = if info.namespaced && self.namespace.is_empty() && self.writes() { "default" } else { self.namespace };
        Attributes::resource(self.verb, info, ns, self.name).subresource(self.subresource)
    }
}

/// A request without a namespace means "default", as everywhere in the API.
pub fn default_namespace(namespace: &mut String) {
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

/// What a list asks for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListQuery<'a> {
    pub kind: &'a str,
    /// Empty: every namespace.
    pub namespace: &'a str,
    pub label_selector: &'a str,
    pub field_selector: &'a str,
    /// Served from a revision at least this new (0: the newest).
    pub min_resource_version: u64,
}

/// What a write is to the object it changes.
pub struct Change {
    /// The object to store.
    pub object: Object,
    /// Only its status changes (the status subresource).
    pub status_only: bool,
}

impl Handlers {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        registry: Registry,
        metrics: Arc<Metrics>,
        bookmark_interval: Duration,
        stopping: Stop,
        gate: Arc<Gate>,
        service_accounts: Arc<ServiceAccounts>,
        transformer: Arc<Transformer>,
        kubelets: Arc<KubeletProxy>,
    ) -> Self {
        Handlers { registry, metrics, bookmark_interval, stopping, gate, service_accounts, transformer, kubelets, snapshot_source: None }
    }

    /// Serves snapshots of `store` (the raw store, below encryption).
    pub fn with_snapshot_source(mut self, store: Arc<dyn storage::Store>) -> Self {
        self.snapshot_source = Some(store);
        self
    }

    /// Whether a kind is served (not hidden by `--disable-api`).
    pub fn serves(&self, info: &KindInfo) -> bool {
        self.gate.serves(info)
    }

    /// Resolves a kind named in a request; a hidden kind does not exist.
    pub fn kind(&self, name: &str) -> Result<&'static KindInfo, Error> {
        self.gate.kind(name)
    }

    /// Checks a call at the gate: the kind is served, the caller is who it
    /// says and may do this. Returns the registry to act through, on the caller's behalf.
    fn admit(&self, call: &Call<'_>) -> Result<(&'static KindInfo, Registry), Error> {
        let info = call.kind.as_ref().map_err(clone_error)?;
        let user = self.gate.authenticate(call.who)?;
        self.gate.authorize(&user, &call.attributes())?;
        Ok((info, self.registry.as_user(user)))
    }

    /// Records a finished request: its count, code, latency and audit line.
    fn record(&self, call: &Call<'_>, start: Instant, code: tonic::Code) {
        let kind = call.kind.as_ref().map(|k| k.kind).unwrap_or("unknown");
        self.metrics.observe_request(call.verb, kind, code, start.elapsed());
        self.gate.audit(call.who, &call.attributes(), kind, code, call.object);
    }

    /// Runs one request through the gate, recording its count, code,
    /// latency and audit line.
    pub async fn observe<T, F, Fut>(&self, call: Call<'_>, f: F) -> Result<T, Error>
    where
        F: FnOnce(&'static KindInfo, Registry) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = Instant::now();
        let _inflight = self.metrics.inflight();
        let result = match self.admit(&call) {
            // Boxed: a write's future holds several Objects (1.2 KB each) and the registry's
            // future; inline, every request's future was 13–22 KB, copied whole when tonic
            // boxes it (memmove fell from 12.3% to 9.9% of the apiserver's CPU samples under
            // the api benchmark with this and the boxing in `ServiceAccounts::created`).
            Ok((info, registry)) => Box::pin(f(info, registry)).await,
            Err(e) => Err(e),
        };
        self.record(&call, start, result.as_ref().map(|_| tonic::Code::Ok).unwrap_or_else(|e| e.code()));
        if let Err(e) = &result {
            debug!(verb = call.verb, error = %e, "request refused");
        }
        result
    }

    /// A copy of a write's object for the audit log, if there is one (the registry consumes
    /// the object, and without an audit log a deep copy of every write is wasted).
    pub fn audit_copy(&self, object: &Object) -> Option<Object> {
        if self.gate.records_objects() { Some(object.clone()) } else { None }
    }

    /// The user a request comes from, or Unauthenticated.
    pub fn caller(&self, who: Option<&Authenticated>) -> Result<UserInfo, Error> {
        self.gate.authenticate(who)
    }

    pub async fn create(&self, who: Option<&Authenticated>, object: Object, dry_run: bool) -> Result<Object, Error> {
        let kind = object.info().ok_or_else(|| Error::BadRequest("object: Required value".into())).and_then(|i| self.gate.kind(i.kind));
        let (ns, name) = (object.namespace().to_string(), object.name().to_string());
        let audited = self.audit_copy(&object);
        let call = Call::new(who, "create", kind).at(&ns, &name).sending(audited.as_ref());
        self.observe(call, |_, registry| async move {
            let created = registry.create(object, dry_run).await?;
            if !dry_run {
                self.service_accounts.created(&created).await;
            }
            Ok(created)
        })
        .await
    }

    pub async fn get(&self, who: Option<&Authenticated>, kind: &str, namespace: &str, name: &str) -> Result<Object, Error> {
        let call = Call::new(who, "get", self.gate.kind(kind)).at(namespace, name);
        self.observe(call, |info, registry| async move { registry.get(info.kind, namespace, name) }).await
    }

    /// Reads an object as a subresource (`replicationcontrollers/scale`, `pods/status`).
    pub async fn get_sub(
        &self,
        who: Option<&Authenticated>,
        kind: &str,
        namespace: &str,
        name: &str,
        subresource: &'static str,
    ) -> Result<Object, Error> {
        let call = Call::new(who, "get", self.gate.kind(kind)).at(namespace, name).on_subresource(subresource);
        self.observe(call, |info, registry| async move { registry.get(info.kind, namespace, name) }).await
    }

    /// Lists, answering with the stored bytes (gRPC).
    pub async fn list_encoded(&self, who: Option<&Authenticated>, q: &ListQuery<'_>) -> Result<(Vec<EncodedObject>, u64), Error> {
        self.listing(who, q, |registry, info, filter| async move {
            registry.list_encoded(info, q.namespace, &filter, q.min_resource_version).await
        })
        .await
    }

    /// Lists, answering with decoded objects (REST).
    pub async fn list(&self, who: Option<&Authenticated>, q: &ListQuery<'_>) -> Result<(Vec<Object>, u64), Error> {
        self.listing(
            who,
            q,
            |registry, info, filter| async move { registry.list(info, q.namespace, &filter, q.min_resource_version).await },
        )
        .await
    }

    /// A list's gate and selectors, around how its result is read.
    async fn listing<T, F, Fut>(&self, who: Option<&Authenticated>, q: &ListQuery<'_>, read: F) -> Result<T, Error>
    where
        F: FnOnce(Registry, &'static KindInfo, Filter) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let call = Call::new(who, "list", self.gate.kind(q.kind)).at(q.namespace, "");
        self.observe(call, |info, registry| async move {
            let filter = Filter::parse(info, q.label_selector, q.field_selector)?;
            read(registry, info, filter).await
        })
        .await
    }

    /// Replaces an object (`update`), or only its status (`status_only`).
    pub async fn update(&self, who: Option<&Authenticated>, object: Object, status_only: bool, dry_run: bool) -> Result<Object, Error> {
        let kind = object.info().ok_or_else(|| Error::BadRequest("object: Required value".into())).and_then(|i| self.gate.kind(i.kind));
        let (ns, name) = (object.namespace().to_string(), object.name().to_string());
        let audited = self.audit_copy(&object);
        let call =
            Call::new(who, "update", kind).at(&ns, &name).sending(audited.as_ref()).on_subresource(if status_only { "status" } else { "" });
        self.observe(call, |_, registry| async move { registry.update(object, status_only, dry_run).await }).await
    }

    /// Changes an object from its current state: reads it, lets `change`
    /// compute what to store, writes that with the read's resourceVersion as
    /// precondition, and starts over when another writer got there first.
    /// `verb` is what it is authorized as (`patch`, or `update` of a
    /// subresource such as scale). A `change` that sets a resourceVersion
    /// other than the current one is a conflict, never retried.
    #[allow(clippy::too_many_arguments)]
    pub async fn modify<F>(
        &self,
        who: Option<&Authenticated>,
        verb: &'static str,
        kind: &str,
        namespace: &str,
        name: &str,
        subresource: &'static str,
        dry_run: bool,
        mut change: F,
    ) -> Result<Object, Error>
    where
        F: FnMut(&Object) -> Result<Change, Error> + Send,
    {
        let call = Call::new(who, verb, self.gate.kind(kind)).at(namespace, name).on_subresource(subresource);
        self.observe(call, |info, registry| async move {
            let mut last = None;
            for _ in 0..PATCH_RETRIES {
                let current = registry.get(info.kind, namespace, name)?;
                let current_rv = current.metadata().map(|m| m.resource_version.clone()).unwrap_or_default();
                let Change { mut object, status_only } = change(&current)?;
                let meta = object.metadata_mut().ok_or_else(|| Error::BadRequest("the patched object has no kind".into()))?;
                if meta.name != name || (info.namespaced && meta.namespace != namespace) {
                    return Err(Error::BadRequest(
                        "metadata.name and metadata.namespace cannot be changed by a patch or a subresource update".into(),
                    ));
                }
                if meta.resource_version.is_empty() {
                    meta.resource_version = current_rv.clone();
                } else if meta.resource_version != current_rv {
                    return Err(Error::Conflict {
                        plural: info.plural.into(),
                        name: name.into(),
                        reason: "the object has been modified; please apply your changes to the latest version and try again".into(),
                    });
                }
                match registry.update(object, status_only, dry_run).await {
                    Err(e @ Error::Conflict { .. }) => last = Some(e),
                    other => return other,
                }
            }
            Err(last.unwrap_or_else(|| Error::Internal("the object kept changing".into())))
        })
        .await
    }

    /// Deletes an object; a dry run checks the request and answers the
    /// object as it is, changing nothing.
    pub async fn delete(
        &self,
        who: Option<&Authenticated>,
        kind: &str,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
        dry_run: bool,
    ) -> Result<Object, Error> {
        let call = Call::new(who, "delete", self.gate.kind(kind)).at(namespace, name);
        self.delete_as(call, namespace, name, opts, dry_run).await
    }

    /// Evicts a pod (pods/eviction, authorized as `create` of that
    /// subresource, as Kubernetes does): deletes it with the eviction's options.
    pub async fn evict(
        &self,
        who: Option<&Authenticated>,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
        dry_run: bool,
    ) -> Result<Object, Error> {
        let call = Call::new(who, "create", self.gate.kind("Pod")).at(namespace, name).on_subresource("eviction");
        self.delete_as(call, namespace, name, opts, dry_run).await
    }

    /// A delete authorized as `call` says.
    async fn delete_as(&self, call: Call<'_>, namespace: &str, name: &str, opts: &DeleteOptions, dry_run: bool) -> Result<Object, Error> {
        self.observe(call, |info, registry| async move {
            if dry_run {
                return registry.check_delete(info.kind, namespace, name, opts);
            }
            let gone = registry.delete(info.kind, namespace, name, opts).await?;
            self.service_accounts.deleted(&gone).await;
            Ok(gone)
        })
        .await
    }

    /// Deletes every object of a kind in a namespace that passes the
    /// selectors (authorized once, as `deletecollection`); answers what was deleted.
    #[allow(clippy::too_many_arguments)]
    pub async fn delete_collection(
        &self,
        who: Option<&Authenticated>,
        kind: &str,
        namespace: &str,
        label_selector: &str,
        field_selector: &str,
        opts: &DeleteOptions,
        dry_run: bool,
    ) -> Result<(Vec<Object>, u64), Error> {
        let call = Call::new(who, "deletecollection", self.gate.kind(kind)).at(namespace, "");
        self.observe(call, |info, registry| async move {
            let filter = Filter::parse(info, label_selector, field_selector)?;
            let (items, rev) = registry.list(info, namespace, &filter, 0).await?;
            let mut gone = Vec::with_capacity(items.len());
            for o in items {
                let result = if dry_run {
                    registry.check_delete(info.kind, o.namespace(), o.name(), opts)
                } else {
                    registry.delete(info.kind, o.namespace(), o.name(), opts).await
                };
                match result {
                    Ok(d) => {
                        if !dry_run {
                            self.service_accounts.deleted(&d).await;
                        }
                        gone.push(d)
                    }
                    // Deleted meanwhile by someone else: nothing left to do.
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok((gone, rev))
        })
        .await
    }

    /// Binds a pod to a node (pods/binding).
    pub async fn bind(&self, who: Option<&Authenticated>, namespace: &str, binding: Binding) -> Result<Object, Error> {
        let pod = binding.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        let call = Call::new(who, "create", self.gate.kind("Pod")).at(namespace, &pod).on_subresource("binding");
        self.observe(call, |_, registry| async move { registry.bind(namespace, &binding).await }).await
    }

    /// Whether the caller, or (a SubjectAccessReview, which needs its own
    /// permission) another user, may do something.
    pub fn access_review(&self, who: Option<&Authenticated>, r: &AccessReviewRequest) -> Result<AccessReviewResponse, Error> {
        let caller = self.caller(who)?;
        let subject = if r.user.is_empty() {
            caller
        } else {
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
        let (allowed, reason) = match self.gate.authorizer.authorize(&subject, &attributes) {
            Decision::Allow(why) => (true, why),
            Decision::Deny(why) => (false, why),
            Decision::NoOpinion => (false, NO_RULE.to_string()),
        };
        Ok(AccessReviewResponse { allowed, reason, user: subject.name, groups: subject.groups })
    }

    /// Checks a non-resource request (`/api`, `/openapi/v3`, `/version`): the
    /// caller must be authenticated and RBAC must grant `get` on the path.
    pub fn non_resource(&self, who: Option<&Authenticated>, path: &str) -> Result<UserInfo, Error> {
        let user = self.caller(who)?;
        self.gate.authorize(&user, &Attributes::non_resource("get", path))?;
        Ok(user)
    }

    /// A container's log, from its node's kubelet (pods/log).
    pub async fn logs(&self, who: Option<&Authenticated>, mut r: LogsRequest) -> Result<Relay<LogChunk>, Error> {
        default_namespace(&mut r.namespace);
        let (ns, pod) = (r.namespace.clone(), r.pod.clone());
        let call = Call::new(who, "get", self.gate.kind("Pod")).at(&ns, &pod).on_subresource("log");
        self.observe(call, |_, _| self.kubelets.logs(r)).await
    }

    /// A command in a container, relayed to its node's kubelet (pods/exec).
    pub async fn exec<S>(&self, who: Option<&Authenticated>, mut first: ExecInput, rest: S) -> Result<Relay<ExecOutput>, Error>
    where
        S: Stream<Item = Result<ExecInput, Status>> + Send + 'static,
    {
        let (namespace, pod) = match first.start.as_mut() {
            Some(start) => {
                default_namespace(&mut start.namespace);
                (start.namespace.clone(), start.pod.clone())
            }
            None => return Err(Error::BadRequest("the first message of an exec must carry `start`".into())),
        };
        let call = Call::new(who, "create", self.gate.kind("Pod")).at(&namespace, &pod).on_subresource("exec");
        self.observe(call, |_, _| self.kubelets.exec(first, rest)).await
    }

    /// Usage of nodes or pods (nodes/stats, pods/metrics).
    pub async fn stats(&self, who: Option<&Authenticated>, mut r: ClusterStatsRequest) -> Result<ClusterStatsResponse, Error> {
        let verb = if r.name.is_empty() { "list" } else { "get" };
        let pods = matches!(r.resource.as_str(), "pods" | "pod");
        if pods && !r.name.is_empty() {
            default_namespace(&mut r.namespace);
        }
        let (ns, name) = (r.namespace.clone(), r.name.clone());
        let call = if pods {
            Call::new(who, verb, self.gate.kind("Pod")).at(&ns, &name).on_subresource("metrics")
        } else {
            Call::new(who, verb, self.gate.kind("Node")).at("", &name).on_subresource("stats")
        };
        self.observe(call, |_, _| async move { self.kubelets.stats(&r).await }).await
    }

    /// Every stored object at the store's current revision, as a snapshot
    /// file, with its revision and object count.
    pub async fn snapshot(&self, who: Option<&Authenticated>) -> Result<(Vec<u8>, u64, u64), Error> {
        let start = Instant::now();
        let result = self.take_snapshot(who).await;
        let code = result.as_ref().map(|_| tonic::Code::Ok).unwrap_or_else(|e| e.code());
        self.metrics.observe_request("snapshot", "", code, start.elapsed());
        self.gate.audit(who, &Attributes::non_resource("get", "/snapshot"), "", code, None);
        result
    }

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

    /// Starts a watch: checks it at the gate, records it, and answers the
    /// stream of its events (see [`crate::watch`]).
    #[allow(clippy::too_many_arguments)]
    pub fn watch(
        &self,
        who: Option<&Authenticated>,
        kind: &str,
        namespace: &str,
        label_selector: &str,
        field_selector: &str,
        resource_version: u64,
        bookmarks: bool,
    ) -> Result<mpsc::Receiver<Result<EncodedWatchEvent, Error>>, Error> {
        let call = Call::new(who, "watch", self.gate.kind(kind)).at(namespace, "");
        let start = Instant::now();
        let result = self.admit(&call).and_then(|(info, _)| {
            let filter = Filter::parse(info, label_selector, field_selector)?;
            crate::watch::start(self, info, namespace, filter, resource_version, bookmarks)
        });
        self.record(&call, start, result.as_ref().map(|_| tonic::Code::Ok).unwrap_or_else(|e| e.code()));
        result
    }
}
