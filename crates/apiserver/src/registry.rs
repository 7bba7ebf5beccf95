//! The semantics of the API on top of a [`Store`]: server-set metadata,
//! defaulting, validation, preconditions, spec/status separation,
//! generation, graceful deletion, finalizers and binding (DESIGN.md §3).

use std::sync::Arc;

use berth_api::pb::api::object::Kind;
use berth_api::pb::core::{Binding, PodCondition};
use berth_api::resource::KindInfo;
use berth_api::wire::EncodedObject;
use berth_api::{Object, validation};
use bytes::Bytes;
use prost::Message;

use crate::admission::{Attributes, Chain, Operation};
use crate::allocator::{self, Allocator, Cidr, Held, PortRange};
use crate::defaults;
use crate::error::{Error, Result};
use crate::lister::Lister;
/// The registry reads with the lister's decoding and selectors; re-exported
/// because its API takes and gives them.
pub use crate::lister::{Filter, decode, decode_at, kind};
use crate::storage::{self, KeyValue, Revision, Store};
use crate::user::UserInfo;

/// How many times an update without a precondition is retried when another
/// writer got there first.
const MAX_RETRIES: usize = 16;

/// The default ClusterIP range (DESIGN.md §5).
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/16";

/// Namespaces that exist from the first start and cannot be deleted.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// A delete request.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub uid: String,
    pub resource_version: String,
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: String,
}

/// The API's object logic, shared by every handler.
#[derive(Clone)]
pub struct Registry {
    store: Arc<dyn Store>,
    /// Reads of the same store, for admission and the authorizers.
    lister: Lister,
    admission: Chain,
    allocator: Arc<Allocator>,
    /// Who the writes made through this handle are for (admission plugins
    /// such as NodeRestriction judge by it); None for the server's own.
    user: Option<Arc<UserInfo>>,
}

/// The current time as Kubernetes writes timestamps.
pub use berth_api::time::now_rfc3339 as now;

/// Encodes an object for the store: resourceVersion is not stored (it is the
/// key's revision).
fn encode(o: &Object) -> Bytes {
    let mut o = o.clone();
    if let Some(m) = o.metadata_mut() {
        m.resource_version.clear();
    }
    Bytes::from(o.encode_to_vec())
}

fn key_of(info: &KindInfo, o: &Object) -> String {
    info.key(o.namespace(), o.name())
}

fn invalid(info: &KindInfo, name: &str, message: impl Into<String>) -> Error {
    Error::Invalid { kind: info.kind.into(), name: name.into(), message: message.into(), causes: Vec::new() }
}

/// A validation failure, keeping each field's error (REST answers them as `details.causes`).
fn invalid_fields(info: &KindInfo, name: &str, errors: validation::Errors) -> Error {
    Error::Invalid { kind: info.kind.into(), name: name.into(), message: errors.to_string(), causes: errors.0 }
}

impl Registry {
    pub fn new(store: Arc<dyn Store>) -> Registry {
        let allocator = Allocator::new(
            DEFAULT_SERVICE_CIDR.parse().unwrap_or(Cidr { base: 0x0a60_0000, prefix: 16 }),
            PortRange { first: 30000, last: 32767 },
        );
        Registry { lister: Lister::new(store.clone()), store, admission: Chain::default(), allocator: Arc::new(allocator), user: None }
    }

    /// The same registry with ClusterIPs and NodePorts from these ranges.
    pub fn with_allocator(mut self, allocator: Allocator) -> Registry {
        self.allocator = Arc::new(allocator);
        self
    }

    /// The Service address allocator.
    pub fn allocator(&self) -> &Arc<Allocator> {
        &self.allocator
    }

    /// The same registry, writing on behalf of `user`.
    pub fn as_user(&self, user: UserInfo) -> Registry {
        Registry { user: Some(Arc::new(user)), ..self.clone() }
    }

    /// The user the writes are for (None: the server itself).
    pub fn user(&self) -> Option<&UserInfo> {
        self.user.as_deref()
    }

    /// The same registry with an admission chain.
    pub fn with_admission(mut self, admission: Chain) -> Registry {
        self.admission = admission;
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Read-only access to the same store.
    pub fn lister(&self) -> &Lister {
        &self.lister
    }

    /// Creates the system namespaces that do not exist yet and rebuilds the
    /// Service allocations from the stored Services.
    pub async fn bootstrap(&self) -> Result<()> {
        let svc_info = kind("Service")?;
        let (kvs, _) = self.store.list(&svc_info.prefix("")).map_err(|e| Error::from_store(e, "services", ""))?;
        let mut held = Vec::with_capacity(kvs.len());
        for kv in &kvs {
            if let Some(Kind::Service(svc)) = decode(kv)?.kind {
                held.push(Held::of(&svc));
            }
        }
        let dup = self.allocator.restore(&held);
        if !dup.is_empty() {
            tracing::warn!(values = ?dup, "services share allocated addresses or ports; fix them by hand");
        }
        let namespaces = SYSTEM_NAMESPACES
            .iter()
            .map(|ns| {
                let mut o = berth_api::pb::core::Namespace::default();
                berth_api::Resource::metadata_mut(&mut o).name = (*ns).to_string();
                berth_api::Resource::into_object(o)
            })
            .collect();
        self.create_missing(namespaces).await?;
        Ok(())
    }

    /// Creates those of `objects` that do not exist yet (existing ones are
    /// the operator's and stay as they are); returns how many it created.
    pub async fn create_missing(&self, objects: Vec<Object>) -> Result<usize> {
        let mut created = 0;
        for o in objects {
            match self.create(o, false).await {
                Ok(_) => created += 1,
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(created)
    }

    /// See [`Lister::get`].
    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Result<Object> {
        self.lister.get(kind, namespace, name)
    }

    /// Lists the objects of a kind that pass the filter, with the revision
    /// the list reflects.
    pub async fn list(&self, info: &KindInfo, namespace: &str, filter: &Filter, min_revision: Revision) -> Result<(Vec<Object>, Revision)> {
        let (kvs, rev) = self.list_stored(info, namespace, min_revision).await?;
        let mut items = Vec::with_capacity(kvs.len());
        for kv in &kvs {
            let o = decode(kv)?;
            if filter.matches(&o) {
                items.push(o);
            }
        }
        Ok((items, rev))
    }

    /// Lists like [`Registry::list`], but answers with the stored bytes (see
    /// [`berth_api::wire`]): with no selector nothing is decoded, and with one
    /// an object is decoded only to be matched, never re-encoded.
    pub async fn list_encoded(
        &self,
        info: &KindInfo,
        namespace: &str,
        filter: &Filter,
        min_revision: Revision,
    ) -> Result<(Vec<EncodedObject>, Revision)> {
        let (kvs, rev) = self.list_stored(info, namespace, min_revision).await?;
        let everything = filter.is_everything();
        let mut items = Vec::with_capacity(kvs.len());
        for kv in kvs {
            if everything || filter.matches(&decode(&kv)?) {
                items.push(EncodedObject::at(info, kv.value, kv.mod_revision));
            }
        }
        Ok((items, rev))
    }

    /// The stored objects of a kind (in a namespace, or all), at the newest
    /// revision or at least at `min_revision`.
    async fn list_stored(&self, info: &KindInfo, namespace: &str, min_revision: Revision) -> Result<(Vec<KeyValue>, Revision)> {
        let prefix = info.prefix(namespace);
        if min_revision > 0 { self.store.list_at_least(&prefix, min_revision).await } else { self.store.list(&prefix) }
            .map_err(|e| Error::from_store(e, info.plural, ""))
    }

    /// Creates an object (DESIGN.md §3): server-set metadata, defaults,
    /// admission (which checks the namespace), validation, then a durable write.
    pub async fn create(&self, mut o: Object, dry_run: bool) -> Result<Object> {
        let info = o.info().ok_or_else(|| Error::BadRequest("the request carries no object".into()))?;
        o.set_type_meta();
        let meta = o.metadata_mut().ok_or_else(|| Error::BadRequest("the request carries no object".into()))?;
        if !meta.resource_version.is_empty() {
            return Err(invalid(info, &meta.name, "metadata.resourceVersion: Invalid value: must not be set on objects to be created"));
        }
        if meta.name.is_empty() && !meta.generate_name.is_empty() {
            meta.name = format!("{}{}", meta.generate_name, random_suffix());
        }
        if info.namespaced {
            if meta.namespace.is_empty() {
                meta.namespace = "default".into();
            }
        } else {
            meta.namespace.clear();
        }
        meta.uid = uuid::Uuid::new_v4().to_string();
        meta.creation_timestamp = now();
        meta.deletion_timestamp.clear();
        meta.deletion_grace_period_seconds = None;
        meta.generation = if info.has_spec { 1 } else { 0 };
        if let Some(Kind::Pod(p)) = &mut o.kind {
            // A new pod's status is the server's to set.
            p.status = None;
        }
        defaults::apply(&mut o);
        let mut attrs = Attributes { operation: Operation::Create, object: &mut o, old: None, user: self.user(), dry_run };
        self.admission.admit(&mut attrs, &self.lister).await?;
        let taken = self.allocate(info, &mut o, None)?;
        let result = self.store_new(info, o, dry_run).await;
        if result.is_err() || dry_run {
            self.allocator.release(&taken);
        }
        result
    }

    async fn store_new(&self, info: &KindInfo, mut o: Object, dry_run: bool) -> Result<Object> {
        validation::validate(&o).map_err(|e| invalid_fields(info, o.name(), e))?;
        if dry_run {
            return Ok(o);
        }
        let key = key_of(info, &o);
        let rev = self.store.create(&key, encode(&o)).await.map_err(|e| Error::from_store(e, info.plural, o.name()))?;
        set_rv(&mut o, rev);
        Ok(o)
    }

    /// Gives a Service its ClusterIP and NodePorts (keeping the old object's
    /// on update). Returns what was newly taken, to release if the write fails.
    fn allocate(&self, info: &KindInfo, o: &mut Object, old: Option<&Object>) -> Result<Held> {
        let Some(Kind::Service(svc)) = &mut o.kind else { return Ok(Held::default()) };
        let old_spec = match old.map(|o| &o.kind) {
            Some(Some(Kind::Service(s))) => s.spec.clone().unwrap_or_default(),
            _ => Default::default(),
        };
        let name = svc.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        let service_key = svc.metadata.as_ref().map(|m| format!("{}/{}", m.namespace, m.name)).unwrap_or_default();
        let spec = svc.spec.get_or_insert_with(Default::default);
        let mut taken = Held::default();
        let fail = |taken: &Held, field: String, e: allocator::Error| {
            self.allocator.release(taken);
            invalid(info, &name, format!("{field}: {e}"))
        };
        if spec.r#type == "ExternalName" {
            spec.cluster_ip.clear();
            spec.cluster_ips.clear();
        } else if spec.cluster_ip != "None" {
            if spec.cluster_ip.is_empty() && !old_spec.cluster_ip.is_empty() && old_spec.cluster_ip != "None" {
                // An update that leaves clusterIP out keeps the allocated one.
                spec.cluster_ip = old_spec.cluster_ip.clone();
            } else if spec.cluster_ip.is_empty() {
                let ip = self.allocator.next_ip().map_err(|e| fail(&taken, "spec.clusterIP".into(), e))?;
                taken.cluster_ip = Some(ip);
                spec.cluster_ip = std::net::Ipv4Addr::from(ip).to_string();
            } else if spec.cluster_ip != old_spec.cluster_ip {
                let ip = self.allocator.take_ip(&spec.cluster_ip, &service_key).map_err(|e| fail(&taken, "spec.clusterIP".into(), e))?;
                taken.cluster_ip = Some(ip);
            }
        }
        spec.cluster_ips = if spec.cluster_ip.is_empty() { Vec::new() } else { vec![spec.cluster_ip.clone()] };
        if matches!(spec.r#type.as_str(), "NodePort" | "LoadBalancer") {
            let old_ports: Vec<(i32, String, i32)> = old_spec.ports.iter().map(|p| (p.port, p.protocol.clone(), p.node_port)).collect();
            for (i, p) in spec.ports.iter_mut().enumerate() {
                let field = format!("spec.ports[{i}].nodePort");
                if p.node_port == 0 {
                    if let Some(old) = old_ports.iter().find(|o| o.0 == p.port && o.1 == p.protocol && o.2 > 0) {
                        p.node_port = old.2;
                        continue;
                    }
                    let port = self.allocator.next_port().map_err(|e| fail(&taken, field, e))?;
                    taken.node_ports.push(port);
                    p.node_port = i32::from(port);
                } else if !old_ports.iter().any(|o| o.2 == p.node_port) {
                    let port = self.allocator.take_port(p.node_port).map_err(|e| fail(&taken, field, e))?;
                    taken.node_ports.push(port);
                }
            }
        }
        Ok(taken)
    }

    /// Releases what `old` held and `new` no longer does.
    fn release_dropped(&self, old: &Object, new: Option<&Object>) {
        let held = |o: &Object| match &o.kind {
            Some(Kind::Service(s)) => Held::of(s),
            _ => Held::default(),
        };
        let old_held = held(old);
        let new_held = new.map(held).unwrap_or_default();
        let dropped = Held {
            cluster_ip: old_held.cluster_ip.filter(|ip| new_held.cluster_ip != Some(*ip)),
            node_ports: old_held.node_ports.iter().copied().filter(|p| !new_held.node_ports.contains(p)).collect(),
        };
        self.allocator.release(&dropped);
    }

    /// Replaces metadata and spec, keeping status (or, with `status_only`,
    /// replaces status and keeps the rest).
    pub async fn update(&self, mut new: Object, status_only: bool, dry_run: bool) -> Result<Object> {
        let info = new.info().ok_or_else(|| Error::BadRequest("the request carries no object".into()))?;
        if status_only && !info.has_status {
            return Err(Error::NotFound { plural: format!("{}/status", info.plural), name: new.name().into() });
        }
        new.set_type_meta();
        if info.namespaced
            && new.namespace().is_empty()
            && let Some(m) = new.metadata_mut()
        {
            m.namespace = "default".into();
        }
        if !info.namespaced
            && let Some(m) = new.metadata_mut()
        {
            m.namespace.clear();
        }
        let name = new.name().to_string();
        if name.is_empty() {
            return Err(invalid(info, "", "metadata.name: Required value: name is required"));
        }
        let key = key_of(info, &new);
        let wanted_rv = new.metadata().map(|m| m.resource_version.clone()).unwrap_or_default();
        for _ in 0..MAX_RETRIES {
            let current = self.store.get(&key).map_err(|e| Error::from_store(e, info.plural, &name))?;
            let current = current.ok_or_else(|| Error::NotFound { plural: info.plural.into(), name: name.clone() })?;
            if !wanted_rv.is_empty() && wanted_rv != current.mod_revision.to_string() {
                return Err(Error::from_store(
                    storage::Error::Conflict { key: key.clone(), expected: 0, actual: current.mod_revision },
                    info.plural,
                    &name,
                ));
            }
            let old = decode(&current)?;
            let mut next = if status_only { merge_status(&old, &new) } else { merge_spec(info, &old, &new)? };
            let mut taken = Held::default();
            if !status_only {
                let mut attrs = Attributes { operation: Operation::Update, object: &mut next, old: Some(&old), user: self.user(), dry_run };
                self.admission.admit(&mut attrs, &self.lister).await?;
                taken = self.allocate(info, &mut next, Some(&old))?;
            }
            let outcome = self.write_update(info, &key, &name, &old, next, &current, status_only, dry_run).await;
            match outcome {
                Ok(Written::Updated(o)) if !dry_run => {
                    self.release_dropped(&old, Some(&o));
                    return Ok(o);
                }
                Ok(Written::Deleted(o)) => {
                    self.allocator.release(&taken);
                    self.release_dropped(&old, None);
                    return Ok(o);
                }
                Ok(Written::Updated(o)) => {
                    self.allocator.release(&taken);
                    return Ok(o);
                }
                Ok(Written::Raced) if wanted_rv.is_empty() => {
                    self.allocator.release(&taken);
                    continue;
                }
                Ok(Written::Raced) => {
                    self.allocator.release(&taken);
                    return Err(Error::from_store(
                        storage::Error::Conflict { key: key.clone(), expected: 0, actual: 0 },
                        info.plural,
                        &name,
                    ));
                }
                Err(e) => {
                    self.allocator.release(&taken);
                    return Err(e);
                }
            }
        }
        Err(Error::Conflict { plural: info.plural.into(), name, reason: "too many concurrent writers; try again".into() })
    }

    /// Validates and writes an update computed from `old`.
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        info: &KindInfo,
        key: &str,
        name: &str,
        old: &Object,
        mut next: Object,
        current: &KeyValue,
        status_only: bool,
        dry_run: bool,
    ) -> Result<Written> {
        validation::validate(&next).map_err(|e| invalid_fields(info, name, e))?;
        if !status_only {
            validation::validate_update(old, &next).map_err(|e| invalid_fields(info, name, e))?;
        }
        if encode(&next) == encode(old) {
            // Nothing changed: no write, no new revision (as Kubernetes).
            return Ok(Written::Updated(old.clone()));
        }
        if dry_run {
            return Ok(Written::Updated(next));
        }
        if deletion_complete(&next) {
            return match self.store.delete(key, Some(current.mod_revision)).await {
                Ok((rev, kv)) => {
                    let mut o = decode(&kv)?;
                    set_rv(&mut o, rev);
                    Ok(Written::Deleted(o))
                }
                Err(storage::Error::Conflict { .. }) => Ok(Written::Raced),
                Err(e) => Err(Error::from_store(e, info.plural, name)),
            };
        }
        match self.store.update(key, encode(&next), Some(current.mod_revision)).await {
            Ok(rev) => {
                set_rv(&mut next, rev);
                Ok(Written::Updated(next))
            }
            Err(storage::Error::Conflict { .. }) => Ok(Written::Raced),
            Err(e) => Err(Error::from_store(e, info.plural, name)),
        }
    }

    /// Deletes an object, gracefully where the kind has a grace period or
    /// the object has finalizers.
    /// Checks a delete without doing it (a dry run): the options are valid,
    /// the object exists and the preconditions hold. Answers the object as it is.
    pub fn check_delete(&self, kind: &str, namespace: &str, name: &str, opts: &DeleteOptions) -> Result<Object> {
        let info = self::kind(kind)?;
        let namespace = if info.namespaced { namespace } else { "" };
        delete_policy(info, name, opts)?;
        let current = self.store.get(&info.key(namespace, name)).map_err(|e| Error::from_store(e, info.plural, name))?;
        let current = current.ok_or_else(|| Error::NotFound { plural: info.plural.into(), name: name.into() })?;
        let o = decode(&current)?;
        check_preconditions(info, name, opts, &o, current.mod_revision)?;
        Ok(o)
    }

    pub async fn delete(&self, kind: &str, namespace: &str, name: &str, opts: &DeleteOptions) -> Result<Object> {
        let info = self::kind(kind)?;
        let namespace = if info.namespaced { namespace } else { "" };
        let finalizer = delete_policy(info, name, opts)?;
        let key = info.key(namespace, name);
        for _ in 0..MAX_RETRIES {
            let current = self.store.get(&key).map_err(|e| Error::from_store(e, info.plural, name))?;
            let current = current.ok_or_else(|| Error::NotFound { plural: info.plural.into(), name: name.into() })?;
            let mut o = decode(&current)?;
            check_preconditions(info, name, opts, &o, current.mod_revision)?;
            let m = o.metadata_mut().ok_or_else(|| Error::Internal("stored object without metadata".into()))?;
            let mut changed = false;
            if let Some(f) = finalizer
                && !m.finalizers.iter().any(|x| x == f)
            {
                m.finalizers.push(f.into());
                changed = true;
            }
            let grace = graceful_period(&o, opts.grace_period_seconds);
            let m = o.metadata_mut().ok_or_else(|| Error::Internal("stored object without metadata".into()))?;
            let pending = !m.finalizers.is_empty() || grace.is_some_and(|g| g > 0) || namespace_has_finalizers(&o);
            if !pending {
                match self.store.delete(&key, Some(current.mod_revision)).await {
                    Ok((rev, kv)) => {
                        let mut gone = decode(&kv)?;
                        set_rv(&mut gone, rev);
                        self.release_dropped(&gone, None);
                        return Ok(gone);
                    }
                    Err(storage::Error::Conflict { .. }) => continue,
                    Err(e) => return Err(Error::from_store(e, info.plural, name)),
                }
            }
            let m = o.metadata_mut().ok_or_else(|| Error::Internal("stored object without metadata".into()))?;
            if m.deletion_timestamp.is_empty() {
                let g = grace.unwrap_or(0);
                m.deletion_timestamp = berth_api::time::format_rfc3339(chrono::Utc::now() + chrono::Duration::seconds(g));
                m.deletion_grace_period_seconds = Some(g);
                changed = true;
            } else if let Some(g) = grace
                && m.deletion_grace_period_seconds.is_none_or(|cur| g < cur)
            {
                // A second delete may only shorten the grace period.
                m.deletion_timestamp = berth_api::time::format_rfc3339(chrono::Utc::now() + chrono::Duration::seconds(g));
                m.deletion_grace_period_seconds = Some(g);
                changed = true;
            }
            if let Some(Kind::Namespace(ns)) = &mut o.kind {
                let status = ns.status.get_or_insert_with(Default::default);
                if status.phase != "Terminating" {
                    status.phase = "Terminating".into();
                    changed = true;
                }
            }
            if !changed {
                return Ok(o);
            }
            match self.store.update(&key, encode(&o), Some(current.mod_revision)).await {
                Ok(rev) => {
                    set_rv(&mut o, rev);
                    return Ok(o);
                }
                Err(storage::Error::Conflict { .. }) => continue,
                Err(e) => return Err(Error::from_store(e, info.plural, name)),
            }
        }
        Err(Error::Conflict { plural: info.plural.into(), name: name.into(), reason: "too many concurrent writers; try again".into() })
    }

    /// pods/binding: assigns a pod that has no node to a node.
    pub async fn bind(&self, namespace: &str, binding: &Binding) -> Result<Object> {
        let pod_name = binding.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        let node = binding.target.as_ref().map(|t| t.name.clone()).unwrap_or_default();
        let info = kind("Pod")?;
        if pod_name.is_empty() {
            return Err(invalid(info, "", "metadata.name: Required value: the pod to bind"));
        }
        if node.is_empty() {
            return Err(invalid(info, &pod_name, "target.name: Required value: the node to bind to"));
        }
        let namespace = if namespace.is_empty() { "default" } else { namespace };
        let key = info.key(namespace, &pod_name);
        for _ in 0..MAX_RETRIES {
            let current = self.store.get(&key).map_err(|e| Error::from_store(e, info.plural, &pod_name))?;
            let current = current.ok_or_else(|| Error::NotFound { plural: info.plural.into(), name: pod_name.clone() })?;
            let mut o = decode(&current)?;
            let Some(Kind::Pod(pod)) = &mut o.kind else {
                return Err(Error::Internal(format!("{key} is not a pod")));
            };
            if pod.metadata.as_ref().is_some_and(|m| !m.deletion_timestamp.is_empty()) {
                return Err(Error::Conflict { plural: info.plural.into(), name: pod_name, reason: "the pod is being deleted".into() });
            }
            let spec = pod.spec.get_or_insert_with(Default::default);
            if !spec.node_name.is_empty() {
                return Err(Error::Conflict {
                    plural: info.plural.into(),
                    name: pod_name,
                    reason: format!("pod is already assigned to node {:?}", spec.node_name),
                });
            }
            spec.node_name = node.clone();
            let status = pod.status.get_or_insert_with(Default::default);
            status.conditions.retain(|c| c.r#type != "PodScheduled");
            status.conditions.push(PodCondition {
                r#type: "PodScheduled".into(),
                status: "True".into(),
                last_transition_time: now(),
                ..Default::default()
            });
            match self.store.update(&key, encode(&o), Some(current.mod_revision)).await {
                Ok(rev) => {
                    set_rv(&mut o, rev);
                    return Ok(o);
                }
                Err(storage::Error::Conflict { .. }) => continue,
                Err(e) => return Err(Error::from_store(e, info.plural, &pod_name)),
            }
        }
        Err(Error::Conflict { plural: info.plural.into(), name: pod_name, reason: "too many concurrent writers; try again".into() })
    }
}

/// What an update did.
enum Written {
    Updated(Object),
    /// The update completed a pending deletion.
    Deleted(Object),
    /// Another writer changed the object first.
    Raced,
}

/// The grace period a delete gets: pods on a node wait for their kubelet,
/// everything else goes at once (unless finalizers hold it).
fn graceful_period(o: &Object, requested: Option<i64>) -> Option<i64> {
    match &o.kind {
        Some(Kind::Pod(p)) => {
            let spec = p.spec.clone().unwrap_or_default();
            if spec.node_name.is_empty() {
                return None;
            }
            Some(requested.or(spec.termination_grace_period_seconds).unwrap_or(30))
        }
        _ => None,
    }
}

fn namespace_has_finalizers(o: &Object) -> bool {
    matches!(&o.kind, Some(Kind::Namespace(ns)) if ns.spec.as_ref().is_some_and(|s| !s.finalizers.is_empty()))
}

/// Whether an object whose deletion was requested may now go: no
/// finalizers left (and, for a pod on a node, its kubelet confirmed with a
/// zero grace period).
fn deletion_complete(o: &Object) -> bool {
    let Some(m) = o.metadata() else { return false };
    if m.deletion_timestamp.is_empty() || !m.finalizers.is_empty() || namespace_has_finalizers(o) {
        return false;
    }
    match &o.kind {
        Some(Kind::Pod(p)) => p.spec.as_ref().is_none_or(|s| s.node_name.is_empty()) || m.deletion_grace_period_seconds == Some(0),
        _ => true,
    }
}

/// A spec update: the new object's metadata (less what the server owns) and
/// spec, the old object's status; generation bumps when the spec changed.
fn merge_spec(info: &KindInfo, old: &Object, new: &Object) -> Result<Object> {
    let mut next = new.clone();
    let old_meta = old.metadata().cloned().unwrap_or_default();
    let status = old.clone().take_status();
    next.take_status();
    next.put_status(status);
    defaults::apply(&mut next);
    if let (Some(Kind::Namespace(n)), Some(Kind::Namespace(o))) = (&mut next.kind, &old.kind) {
        // A terminating namespace stays terminating; spec.finalizers may only shrink then.
        if o.status.as_ref().is_some_and(|s| s.phase == "Terminating") {
            let old_f = o.spec.as_ref().map(|s| s.finalizers.clone()).unwrap_or_default();
            let spec = n.spec.get_or_insert_with(Default::default);
            spec.finalizers.retain(|f| old_f.contains(f));
        }
    }
    let meta = next.metadata_mut().ok_or_else(|| Error::Internal("object without metadata".into()))?;
    meta.uid = old_meta.uid.clone();
    meta.creation_timestamp = old_meta.creation_timestamp.clone();
    meta.deletion_timestamp = old_meta.deletion_timestamp.clone();
    meta.deletion_grace_period_seconds = old_meta.deletion_grace_period_seconds;
    meta.generate_name = old_meta.generate_name.clone();
    meta.resource_version.clear();
    meta.generation = old_meta.generation;
    if !old_meta.deletion_timestamp.is_empty() {
        // While deleting, finalizers may only be removed.
        let added: Vec<&String> = meta.finalizers.iter().filter(|f| !old_meta.finalizers.contains(f)).collect();
        if !added.is_empty() {
            return Err(invalid(
                info,
                &old_meta.name,
                format!(
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                ),
            ));
        }
    }
    if info.has_spec
        && next.spec_bytes() != old.spec_bytes()
        && let Some(m) = next.metadata_mut()
    {
        m.generation = old_meta.generation + 1;
    }
    Ok(next)
}

/// A status update: the old object with the new status.
fn merge_status(old: &Object, new: &Object) -> Object {
    let mut next = old.clone();
    let status = new.clone().take_status();
    next.take_status();
    next.put_status(status);
    if let Some(m) = next.metadata_mut() {
        m.resource_version.clear();
    }
    next
}

fn set_rv(o: &mut Object, rev: Revision) {
    if let Some(m) = o.metadata_mut() {
        m.resource_version = rev.to_string();
    }
}

/// Five random lowercase alphanumerics, as generateName uses.
fn random_suffix() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// Checks a delete's options; answers the finalizer its propagation policy adds.
fn delete_policy(info: &KindInfo, name: &str, opts: &DeleteOptions) -> Result<Option<&'static str>> {
    if info.kind == "Namespace" && SYSTEM_NAMESPACES.contains(&name) {
        return Err(Error::Forbidden(format!("namespaces {name:?} is forbidden: this namespace may not be deleted")));
    }
    if let Some(g) = opts.grace_period_seconds
        && g < 0
    {
        return Err(Error::BadRequest(format!("gracePeriodSeconds: Invalid value: {g}: must be >= 0")));
    }
    match opts.propagation_policy.as_str() {
        "" | "Background" => Ok(None),
        "Foreground" => Ok(Some("foregroundDeletion")),
        "Orphan" => Ok(Some("orphan")),
        other => Err(Error::BadRequest(format!(
            "propagationPolicy: Unsupported value: {other:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
        ))),
    }
}

/// A delete's uid and resourceVersion preconditions against the stored object.
fn check_preconditions(info: &KindInfo, name: &str, opts: &DeleteOptions, o: &Object, mod_revision: Revision) -> Result<()> {
    let uid = o.metadata().map(|m| m.uid.as_str()).unwrap_or("");
    if !opts.uid.is_empty() && opts.uid != uid {
        return Err(Error::Conflict {
            plural: info.plural.into(),
            name: name.into(),
            reason: format!("Precondition failed: UID in precondition: {}, UID in object meta: {uid}", opts.uid),
        });
    }
    if !opts.resource_version.is_empty() && opts.resource_version != mod_revision.to_string() {
        return Err(Error::Conflict {
            plural: info.plural.into(),
            name: name.into(),
            reason: format!(
                "Precondition failed: ResourceVersion in precondition: {}, ResourceVersion in object meta: {mod_revision}",
                opts.resource_version
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use berth_api::Resource;
    use berth_api::pb::core::{Container, Pod, PodSpec};

    use super::*;
    use crate::admission::node_restriction::NodeRestriction;
    use crate::storage::{SledOptions, SledStore};

    fn pod(name: &str) -> Object {
        let mut p = Pod {
            spec: Some(PodSpec {
                containers: vec![Container { name: "c".into(), image: "nginx".into(), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        };
        p.metadata_mut().name = name.into();
        p.metadata_mut().namespace = "default".into();
        p.into_object()
    }

    #[tokio::test]
    async fn should_give_admission_the_user_the_write_is_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(SledStore::open(dir.path(), SledOptions::default()).expect("open"));
        let registry = Registry::new(store).with_admission(Chain::new(vec![Arc::new(NodeRestriction)]));
        let node = registry.as_user(UserInfo::new("system:node:n1", &["system:nodes"]));
        match node.create(pod("from-node"), false).await {
            Err(Error::Forbidden(m)) => assert!(m.contains("node \"n1\" may not create pods"), "{m}"),
            other => panic!("a node's pod create must be refused by NodeRestriction, got {other:?}"),
        }
        registry.create(pod("from-server"), false).await.expect("the server's own write is admitted");
        assert!(matches!(registry.get("Pod", "default", "from-node"), Err(Error::NotFound { .. })));
    }
}
