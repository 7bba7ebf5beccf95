//! Per-kind validation, run by the apiserver before anything is stored.
//!
//! The rules and messages follow Kubernetes' `pkg/apis/core/validation`: each
//! problem is a [`FieldError`] naming the field path as Kubernetes writes it
//! (`spec.containers[0].image`, `metadata.labels`, `data[key]`) and printing
//! like Kubernetes' field errors:
//!
//! ```text
//! spec.containers[0].image: Required value
//! metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must ...
//! spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"
//! spec.containers[1].name: Duplicate value: "web"
//! ```
//!
//! [`validate`] checks an object after the apiserver has filled in defaults
//! (restartPolicy, imagePullPolicy, protocols, service type, selectors...);
//! fields Kubernetes defaults but Berth's defaulting may leave empty
//! (dnsPolicy, sessionAffinity, terminationMessagePolicy, endpoint port
//! protocols, fieldRef apiVersion) are accepted empty. [`validate_update`]
//! adds the rules on what an update may change.
//!
//! Syntax checks come from [`crate::names`], quantities from
//! [`crate::quantity`], selector matching from [`crate::labels`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;

use crate::labels::Selector;
use crate::names;
use crate::pb::api::Object;
use crate::pb::api::object::Kind;
use crate::pb::core::*;
use crate::quantity::Quantity;

/// The most bytes the annotations of one object may hold (keys and values).
pub const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;
/// The most bytes of values a Secret or ConfigMap may hold.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The path of the field, as Kubernetes writes it: `spec.containers[0].image`.
    pub field: String,
    pub kind: ErrorKind,
    /// What is wrong. For [`ErrorKind::NotSupported`] this is the rejected
    /// value, rendered (`"Sometimes"`).
    pub detail: String,
}

/// The kinds of field errors, as Kubernetes' `field.ErrorType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The field must be set.
    Required,
    /// The value is not valid; carries the value rendered (strings quoted,
    /// numbers bare).
    Invalid(String),
    /// The value is not one of a fixed set; carries the allowed values.
    NotSupported(Vec<String>),
    /// The value repeats one given earlier; carries the value rendered.
    Duplicate(String),
    /// The field may not be set or changed.
    Forbidden,
    /// The value is too long.
    TooLong,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.field)?;
        match &self.kind {
            ErrorKind::Required => f.write_str("Required value")?,
            ErrorKind::Forbidden => f.write_str("Forbidden")?,
            ErrorKind::TooLong => f.write_str("Too long")?,
            ErrorKind::Invalid(v) => write!(f, "Invalid value: {v}")?,
            ErrorKind::Duplicate(v) => write!(f, "Duplicate value: {v}")?,
            ErrorKind::NotSupported(allowed) => {
                write!(f, "Unsupported value: {}", self.detail)?;
                if !allowed.is_empty() {
                    let quoted: Vec<String> = allowed.iter().map(|a| quote(a)).collect();
                    write!(f, ": supported values: {}", quoted.join(", "))?;
                }
                return Ok(());
            }
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Every problem found in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Errors(pub Vec<FieldError>);

impl Errors {
    /// The paths of the fields in error, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

/// Checks an object (after defaulting) before it is created or replaces
/// another.
pub fn validate(o: &Object) -> Result<(), Errors> {
    let mut c = Check::default();
    match &o.kind {
        None => c.required("kind", "the object has no kind"),
        Some(Kind::Namespace(x)) => namespace(&mut c, x),
        Some(Kind::Node(x)) => node(&mut c, x),
        Some(Kind::Pod(x)) => pod(&mut c, x),
        Some(Kind::ReplicationController(x)) => replication_controller(&mut c, x),
        Some(Kind::Service(x)) => service(&mut c, x),
        Some(Kind::Endpoints(x)) => endpoints(&mut c, x),
        Some(Kind::Secret(x)) => secret(&mut c, x),
        Some(Kind::ConfigMap(x)) => config_map(&mut c, x),
        Some(Kind::ResourceQuota(x)) => resource_quota(&mut c, x),
        Some(Kind::LimitRange(x)) => limit_range(&mut c, x),
        Some(Kind::Event(x)) => event(&mut c, x),
        Some(Kind::Lease(x)) => lease(&mut c, x),
        Some(Kind::ServiceAccount(x)) => object_meta(&mut c, x.metadata.as_ref(), true, NameRule::Subdomain),
        Some(Kind::Role(x)) => {
            object_meta(&mut c, x.metadata.as_ref(), true, NameRule::PathSegment);
            policy_rules(&mut c, &x.rules, true);
        }
        Some(Kind::ClusterRole(x)) => {
            object_meta(&mut c, x.metadata.as_ref(), false, NameRule::PathSegment);
            policy_rules(&mut c, &x.rules, false);
        }
        Some(Kind::RoleBinding(x)) => {
            object_meta(&mut c, x.metadata.as_ref(), true, NameRule::PathSegment);
            role_binding(&mut c, &x.subjects, x.role_ref.as_ref(), true);
        }
        Some(Kind::ClusterRoleBinding(x)) => {
            object_meta(&mut c, x.metadata.as_ref(), false, NameRule::PathSegment);
            role_binding(&mut c, &x.subjects, x.role_ref.as_ref(), false);
        }
    }
    c.finish()
}

/// Checks what an update may change (`new` is also checked with
/// [`validate`] by the apiserver).
pub fn validate_update(old: &Object, new: &Object) -> Result<(), Errors> {
    let mut c = Check::default();
    if old.kind_name() != new.kind_name() {
        c.invalid("kind", new.kind_name(), format!("field is immutable (was {:?})", old.kind_name()));
        return c.finish();
    }
    meta_update(&mut c, old.metadata(), new.metadata());
    match (&old.kind, &new.kind) {
        (Some(Kind::Pod(o)), Some(Kind::Pod(n))) => pod_update(&mut c, o, n),
        (Some(Kind::Secret(o)), Some(Kind::Secret(n))) => {
            if o.r#type != n.r#type {
                c.invalid("type", &n.r#type, "field is immutable");
            }
            immutable_data(&mut c, o.immutable, n.immutable, &[("data", o.data != n.data)]);
        }
        (Some(Kind::ConfigMap(o)), Some(Kind::ConfigMap(n))) => {
            let changed = [("data", o.data != n.data), ("binaryData", o.binary_data != n.binary_data)];
            immutable_data(&mut c, o.immutable, n.immutable, &changed);
        }
        (Some(Kind::Service(o)), Some(Kind::Service(n))) => service_update(&mut c, o, n),
        (Some(Kind::Node(o)), Some(Kind::Node(n))) => node_update(&mut c, o, n),
        (Some(Kind::RoleBinding(o)), Some(Kind::RoleBinding(n))) if o.role_ref != n.role_ref => {
            c.invalid("roleRef", role_ref_text(n.role_ref.as_ref()), "cannot change roleRef");
        }
        (Some(Kind::ClusterRoleBinding(o)), Some(Kind::ClusterRoleBinding(n))) if o.role_ref != n.role_ref => {
            c.invalid("roleRef", role_ref_text(n.role_ref.as_ref()), "cannot change roleRef");
        }
        _ => {}
    }
    c.finish()
}

/// Secrets and ConfigMaps marked immutable keep their data and the mark.
fn immutable_data(c: &mut Check, old: Option<bool>, new: Option<bool>, changed: &[(&str, bool)]) {
    if old != Some(true) {
        return;
    }
    if new != Some(true) {
        c.forbidden("immutable", "field is immutable when `immutable` is set");
    }
    for (field, differs) in changed {
        if *differs {
            c.forbidden(field, "field is immutable when `immutable` is set");
        }
    }
}

// ------------------------------------------------------------------ plumbing

/// Collects errors.
#[derive(Default)]
struct Check(Vec<FieldError>);

impl Check {
    fn push(&mut self, field: &str, kind: ErrorKind, detail: impl Into<String>) {
        self.0.push(FieldError { field: field.to_string(), kind, detail: detail.into() });
    }
    fn required(&mut self, field: &str, detail: &str) {
        self.push(field, ErrorKind::Required, detail);
    }
    fn forbidden(&mut self, field: &str, detail: impl Into<String>) {
        self.push(field, ErrorKind::Forbidden, detail);
    }
    fn invalid(&mut self, field: &str, value: impl Render, detail: impl Into<String>) {
        self.push(field, ErrorKind::Invalid(value.render()), detail);
    }
    /// One Invalid error per message (as Kubernetes reports name syntax).
    fn invalid_all(&mut self, field: &str, value: impl Render, msgs: Vec<String>) {
        for m in msgs {
            self.invalid(field, value.render_as_is(), m);
        }
    }
    fn duplicate(&mut self, field: &str, value: impl Render) {
        self.push(field, ErrorKind::Duplicate(value.render()), "");
    }
    fn not_supported(&mut self, field: &str, value: &str, allowed: &[&str]) {
        self.push(field, ErrorKind::NotSupported(allowed.iter().map(|s| s.to_string()).collect()), quote(value));
    }
    fn too_long(&mut self, field: &str, max: usize) {
        self.push(field, ErrorKind::TooLong, format!("must have at most {max} bytes"));
    }
    /// An enum-like string: one of `allowed`, or empty when not `required`.
    fn one_of(&mut self, field: &str, value: &str, allowed: &[&str], required: bool) {
        if value.is_empty() {
            if required {
                self.required(field, "");
            }
        } else if !allowed.contains(&value) {
            self.not_supported(field, value, allowed);
        }
    }
    fn non_negative(&mut self, field: &str, value: i64) {
        if value < 0 {
            self.invalid(field, value, "must be greater than or equal to 0");
        }
    }
    /// Parses a quantity, reporting it when it does not parse.
    fn quantity(&mut self, field: &str, value: &str) -> Option<Quantity> {
        match Quantity::parse(value) {
            Ok(q) => Some(q),
            Err(e) => {
                self.invalid(field, value, e.to_string());
                None
            }
        }
    }
    /// Parses a quantity that must not be negative.
    fn non_negative_quantity(&mut self, field: &str, value: &str) -> Option<Quantity> {
        let q = self.quantity(field, value)?;
        if q.is_negative() {
            self.invalid(field, value, "must be greater than or equal to 0");
            return None;
        }
        Some(q)
    }
    fn finish(self) -> Result<(), Errors> {
        if self.0.is_empty() { Ok(()) } else { Err(Errors(self.0)) }
    }
}

/// A value as Kubernetes prints it in an error: strings quoted, numbers bare.
trait Render {
    fn render(&self) -> String;
    /// Passes an already rendered value through [`Check::invalid_all`].
    fn render_as_is(&self) -> Rendered {
        Rendered(self.render())
    }
}

/// A value rendered once.
struct Rendered(String);

impl Render for Rendered {
    fn render(&self) -> String {
        self.0.clone()
    }
}
impl Render for &str {
    fn render(&self) -> String {
        quote(self)
    }
}
impl Render for &String {
    fn render(&self) -> String {
        quote(self)
    }
}
impl Render for String {
    fn render(&self) -> String {
        quote(self)
    }
}
macro_rules! render_number {
    ($($t:ty),*) => {$(
        impl Render for $t {
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
render_number!(i32, i64, u32, usize);

/// A string quoted as Go's `%q` does (close enough: Rust's debug form).
fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// A map rendered for an error message: `{"app":"web"}`.
fn render_map(m: &BTreeMap<String, String>) -> Rendered {
    Rendered(serde_json::to_string(m).unwrap_or_default())
}

fn at(path: &str, child: &str) -> String {
    if path.is_empty() { child.to_string() } else { format!("{path}.{child}") }
}

fn idx(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const MAX_INT32: i64 = i32::MAX as i64;

/// A port given as a number (`8080`) or an IANA port name (`http`).
fn port_num_or_name(c: &mut Check, field: &str, value: &str) {
    if value.is_empty() {
        c.required(field, "");
    } else if let Ok(n) = value.parse::<i64>() {
        c.invalid_all(field, n, names::port_number(n));
    } else {
        c.invalid_all(field, value, names::port_name(value));
    }
}

/// A path that stays below a directory: relative, with no `..` element.
fn local_descending_path(c: &mut Check, field: &str, value: &str) {
    if value.starts_with('/') {
        c.invalid(field, value, "must be a relative path");
    }
    if value.split('/').any(|p| p == "..") {
        c.invalid(field, value, "must not contain '..'");
    }
}

/// A file mode: 0 to 0777.
fn file_mode(c: &mut Check, field: &str, mode: Option<i32>) {
    if let Some(m) = mode
        && !(0..=0o777).contains(&m)
    {
        c.invalid(field, m, "must be a number between 0 and 0777 (octal), both inclusive");
    }
}

/// An `ip/prefix` CIDR.
fn is_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else { return false };
    let Ok(ip) = ip.parse::<IpAddr>() else { return false };
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(bits) = bits.parse::<u8>() else { return false };
    match ip {
        IpAddr::V4(_) => bits <= 32,
        IpAddr::V6(_) => bits <= 128,
    }
}

/// A user or group id: 0 to 2147483647.
fn id_range(c: &mut Check, field: &str, v: Option<i64>) {
    if let Some(v) = v
        && !(0..=MAX_INT32).contains(&v)
    {
        c.invalid(field, v, "must be between 0 and 2147483647, inclusive");
    }
}

// ------------------------------------------------------------------ metadata

/// How a kind's object names are checked.
#[derive(Clone, Copy)]
enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    /// RBAC names (`system:node`): any path segment.
    PathSegment,
}

impl NameRule {
    fn check(self, s: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => names::dns1123_subdomain(s),
            NameRule::Label => names::dns1123_label(s),
            NameRule::Dns1035 => names::dns1035_label(s),
            NameRule::PathSegment => path_segment(s),
        }
    }
}

static EMPTY_META: ObjectMeta = ObjectMeta {
    name: String::new(),
    generate_name: String::new(),
    namespace: String::new(),
    uid: String::new(),
    resource_version: String::new(),
    generation: 0,
    creation_timestamp: String::new(),
    deletion_timestamp: String::new(),
    deletion_grace_period_seconds: None,
    labels: BTreeMap::new(),
    annotations: BTreeMap::new(),
    owner_references: Vec::new(),
    finalizers: Vec::new(),
};

fn object_meta(c: &mut Check, meta: Option<&ObjectMeta>, namespaced: bool, rule: NameRule) {
    let m = meta.unwrap_or(&EMPTY_META);
    if m.name.is_empty() {
        c.required("metadata.name", "name or generateName is required");
    } else {
        c.invalid_all("metadata.name", &m.name, rule.check(&m.name));
    }
    if !m.generate_name.is_empty() {
        // As Kubernetes: a trailing dash is fine in a prefix.
        let prefix = match m.generate_name.strip_suffix('-') {
            Some(p) if !p.is_empty() => format!("{p}a"),
            _ => m.generate_name.clone(),
        };
        c.invalid_all("metadata.generateName", &m.generate_name, rule.check(&prefix));
    }
    if namespaced {
        if m.namespace.is_empty() {
            c.required("metadata.namespace", "");
        } else {
            c.invalid_all("metadata.namespace", &m.namespace, names::dns1123_label(&m.namespace));
        }
    } else if !m.namespace.is_empty() {
        c.forbidden("metadata.namespace", "not allowed on this type");
    }
    c.non_negative("metadata.generation", m.generation);
    labels(c, "metadata.labels", &m.labels);
    annotations(c, "metadata.annotations", &m.annotations);
    let mut controllers = 0;
    for (i, r) in m.owner_references.iter().enumerate() {
        let p = idx("metadata.ownerReferences", i);
        for (name, v) in [("apiVersion", &r.api_version), ("kind", &r.kind), ("name", &r.name), ("uid", &r.uid)] {
            if v.is_empty() {
                c.required(&at(&p, name), "");
            }
        }
        if r.controller == Some(true) {
            controllers += 1;
        }
    }
    if controllers > 1 {
        c.invalid(
            "metadata.ownerReferences",
            Rendered(format!("{controllers} controllers")),
            "Only one reference can have Controller set to true",
        );
    }
    for (i, f) in m.finalizers.iter().enumerate() {
        c.invalid_all(&idx("metadata.finalizers", i), f, names::qualified_name(f));
    }
    if m.finalizers.iter().any(|f| f == "orphan") && m.finalizers.iter().any(|f| f == "foregroundDeletion") {
        c.invalid(
            "metadata.finalizers",
            Rendered(format!("{:?}", m.finalizers)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        );
    }
}

/// Label keys are qualified names, values label values (also node selectors
/// and map selectors).
fn labels(c: &mut Check, path: &str, m: &BTreeMap<String, String>) {
    for (k, v) in m {
        c.invalid_all(path, k, names::qualified_name(k));
        c.invalid_all(path, v, names::label_value(v));
    }
}

fn annotations(c: &mut Check, path: &str, m: &BTreeMap<String, String>) {
    let mut size = 0;
    for (k, v) in m {
        c.invalid_all(path, k, names::qualified_name(&k.to_lowercase()));
        size += k.len() + v.len();
    }
    if size > MAX_ANNOTATIONS_SIZE {
        c.too_long(path, MAX_ANNOTATIONS_SIZE);
    }
}

fn meta_update(c: &mut Check, old: Option<&ObjectMeta>, new: Option<&ObjectMeta>) {
    let (o, n) = (old.unwrap_or(&EMPTY_META), new.unwrap_or(&EMPTY_META));
    if o.name != n.name {
        c.invalid("metadata.name", &n.name, "field is immutable");
    }
    if o.namespace != n.namespace {
        c.invalid("metadata.namespace", &n.namespace, "field is immutable");
    }
    if !o.uid.is_empty() && !n.uid.is_empty() && o.uid != n.uid {
        c.invalid("metadata.uid", &n.uid, "field is immutable");
    }
}

// ----------------------------------------------------------------- Namespace

fn namespace(c: &mut Check, n: &Namespace) {
    object_meta(c, n.metadata.as_ref(), false, NameRule::Label);
    if let Some(spec) = &n.spec {
        for (i, f) in spec.finalizers.iter().enumerate() {
            let p = idx("spec.finalizers", i);
            let msgs = names::qualified_name(f);
            if !msgs.is_empty() {
                c.invalid_all(&p, f, msgs);
            } else if !f.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&f.as_str()) {
                c.invalid(&p, f, "name is neither a standard finalizer name nor is it fully qualified");
            }
        }
    }
    if let Some(status) = &n.status {
        c.one_of("status.phase", &status.phase, &["Active", "Terminating"], false);
    }
}

// ---------------------------------------------------------------------- Node

fn node(c: &mut Check, n: &Node) {
    object_meta(c, n.metadata.as_ref(), false, NameRule::Subdomain);
    if let Some(spec) = &n.spec {
        let mut seen = HashSet::new();
        for (i, t) in spec.taints.iter().enumerate() {
            let p = idx("spec.taints", i);
            c.invalid_all(&at(&p, "key"), &t.key, names::qualified_name(&t.key));
            let msgs = names::label_value(&t.value);
            if !msgs.is_empty() {
                c.invalid(&at(&p, "value"), &t.value, msgs.join(";"));
            }
            c.one_of(&at(&p, "effect"), &t.effect, TAINT_EFFECTS, true);
            if !seen.insert((t.key.as_str(), t.effect.as_str())) {
                c.duplicate(&p, format!("{}:{}", t.key, t.effect));
            }
        }
        if !spec.pod_cidr.is_empty() && !is_cidr(&spec.pod_cidr) {
            c.invalid("spec.podCIDR", &spec.pod_cidr, "must be a valid CIDR");
        }
        for (i, cidr) in spec.pod_cidrs.iter().enumerate() {
            if !is_cidr(cidr) {
                c.invalid(&idx("spec.podCIDRs", i), cidr, "must be a valid CIDR");
            }
        }
        if let Some(first) = spec.pod_cidrs.first()
            && !spec.pod_cidr.is_empty()
            && *first != spec.pod_cidr
        {
            c.invalid("spec.podCIDRs[0]", first, "must match spec.podCIDR");
        }
    }
    if let Some(status) = &n.status {
        for (path, m) in [("status.capacity", &status.capacity), ("status.allocatable", &status.allocatable)] {
            for (k, v) in m {
                let p = key(path, k);
                c.invalid_all(&p, k, names::qualified_name(k));
                c.non_negative_quantity(&p, v);
            }
        }
        for (i, a) in status.addresses.iter().enumerate() {
            if a.address.is_empty() {
                c.required(&at(&idx("status.addresses", i), "address"), "");
            }
        }
    }
}

fn node_update(c: &mut Check, old: &Node, new: &Node) {
    let empty = NodeSpec::default();
    let (o, n) = (old.spec.as_ref().unwrap_or(&empty), new.spec.as_ref().unwrap_or(&empty));
    if !o.pod_cidr.is_empty() && o.pod_cidr != n.pod_cidr {
        c.forbidden("spec.podCIDR", "node updates may not change podCIDR except from \"\" to valid");
    }
    if !o.pod_cidrs.is_empty() && o.pod_cidrs != n.pod_cidrs {
        c.forbidden("spec.podCIDRs", "node updates may not change podCIDR except from \"\" to valid");
    }
    if !o.provider_id.is_empty() && o.provider_id != n.provider_id {
        c.forbidden("spec.providerID", "node updates may not change providerID except from \"\" to valid");
    }
}

// ----------------------------------------------------------------------- Pod

fn pod(c: &mut Check, p: &Pod) {
    object_meta(c, p.metadata.as_ref(), true, NameRule::Subdomain);
    let empty = PodSpec::default();
    pod_spec(c, p.spec.as_ref().unwrap_or(&empty), "spec");
    if let Some(s) = &p.status {
        pod_status(c, s);
    }
}

fn pod_status(c: &mut Check, s: &PodStatus) {
    c.one_of("status.phase", &s.phase, &["Pending", "Running", "Succeeded", "Failed", "Unknown"], false);
    c.one_of("status.qosClass", &s.qos_class, &["Guaranteed", "Burstable", "BestEffort"], false);
    for (path, ip) in [("status.podIP", &s.pod_ip), ("status.hostIP", &s.host_ip)] {
        if !ip.is_empty() {
            c.invalid_all(path, ip, names::ip_address(ip));
        }
    }
    let mut seen = HashSet::new();
    for (i, ip) in s.pod_ips.iter().enumerate() {
        let p = at(&idx("status.podIPs", i), "ip");
        c.invalid_all(&p, &ip.ip, names::ip_address(&ip.ip));
        if !seen.insert(ip.ip.as_str()) {
            c.duplicate(&p, &ip.ip);
        }
    }
    if !s.nominated_node_name.is_empty() {
        c.invalid_all("status.nominatedNodeName", &s.nominated_node_name, names::dns1123_subdomain(&s.nominated_node_name));
    }
}

fn pod_spec(c: &mut Check, s: &PodSpec, p: &str) {
    let vols_path = at(p, "volumes");
    let volumes = volumes(c, &s.volumes, &vols_path);
    if s.containers.is_empty() {
        c.required(&at(p, "containers"), "");
    }
    let ctx = ContainerCtx { volumes: &volumes, volumes_path: &vols_path, host_network: s.host_network == Some(true) };
    let mut names_seen = HashSet::new();
    let mut host_ports = HashSet::new();
    let groups = [("initContainers", &s.init_containers, true), ("containers", &s.containers, false)];
    for (field, list, init) in groups {
        for (i, ctr) in list.iter().enumerate() {
            let cp = idx(&at(p, field), i);
            container(c, ctr, &cp, init, &ctx, &mut names_seen);
            // Host ports are unique across the pod's containers.
            for (j, port) in ctr.ports.iter().enumerate() {
                if port.host_port == 0 {
                    continue;
                }
                let k = format!("{}/{}/{}", port.protocol, port.host_ip, port.host_port);
                if !host_ports.insert(k.clone()) {
                    c.duplicate(&at(&idx(&at(&cp, "ports"), j), "hostPort"), k);
                }
            }
        }
    }
    c.one_of(&at(p, "restartPolicy"), &s.restart_policy, &["Always", "OnFailure", "Never"], true);
    c.one_of(&at(p, "dnsPolicy"), &s.dns_policy, &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"], false);
    if let Some(v) = s.termination_grace_period_seconds {
        c.non_negative(&at(p, "terminationGracePeriodSeconds"), v);
    }
    if let Some(v) = s.active_deadline_seconds
        && !(1..=MAX_INT32).contains(&v)
    {
        c.invalid(&at(p, "activeDeadlineSeconds"), v, "must be between 1 and 2147483647, inclusive");
    }
    labels(c, &at(p, "nodeSelector"), &s.node_selector);
    for (field, v) in [
        ("nodeName", &s.node_name),
        ("serviceAccountName", &s.service_account_name),
        ("schedulerName", &s.scheduler_name),
        ("priorityClassName", &s.priority_class_name),
    ] {
        if !v.is_empty() {
            c.invalid_all(&at(p, field), v, names::dns1123_subdomain(v));
        }
    }
    for (field, v) in [("hostname", &s.hostname), ("subdomain", &s.subdomain)] {
        if !v.is_empty() {
            c.invalid_all(&at(p, field), v, names::dns1123_label(v));
        }
    }
    for (i, r) in s.image_pull_secrets.iter().enumerate() {
        if r.name.is_empty() {
            c.required(&at(&idx(&at(p, "imagePullSecrets"), i), "name"), "");
        }
    }
    dns_config(c, s, p);
    if let Some(sc) = &s.security_context {
        let sp = at(p, "securityContext");
        id_range(c, &at(&sp, "runAsUser"), sc.run_as_user);
        id_range(c, &at(&sp, "runAsGroup"), sc.run_as_group);
        id_range(c, &at(&sp, "fsGroup"), sc.fs_group);
        for (i, g) in sc.supplemental_groups.iter().enumerate() {
            id_range(c, &idx(&at(&sp, "supplementalGroups"), i), Some(*g));
        }
    }
    if let Some(na) = s.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) {
        node_affinity(c, na, &at(&at(p, "affinity"), "nodeAffinity"));
    }
    tolerations(c, &s.tolerations, &at(p, "tolerations"));
}

/// Most nameservers and search domains a resolv.conf may have (Kubernetes' limits).
const MAX_DNS_NAMESERVERS: usize = 3;
const MAX_DNS_SEARCHES: usize = 32;
const MAX_DNS_SEARCH_LIST_CHARS: usize = 2048;

/// spec.dnsConfig, as Kubernetes checks it: required with at least one
/// nameserver under dnsPolicy None; at most 3 nameservers, each an IP; at
/// most 32 search domains (2048 characters in all), each a DNS subdomain;
/// options with names.
fn dns_config(c: &mut Check, s: &PodSpec, p: &str) {
    let dp = at(p, "dnsConfig");
    let Some(d) = &s.dns_config else {
        if s.dns_policy == "None" {
            c.required(&dp, "must provide `dnsConfig` when `dnsPolicy` is None");
        }
        return;
    };
    if s.dns_policy == "None" && d.nameservers.is_empty() {
        c.required(&at(&dp, "nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None");
    }
    let list = |v: &[String]| Rendered(format!("[{}]", v.join(" ")));
    if d.nameservers.len() > MAX_DNS_NAMESERVERS {
        c.invalid(&at(&dp, "nameservers"), list(&d.nameservers), format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"));
    }
    for (i, ns) in d.nameservers.iter().enumerate() {
        if ns.parse::<IpAddr>().is_err() {
            c.invalid(&idx(&at(&dp, "nameservers"), i), ns, "must be a valid IP address");
        }
    }
    if d.searches.len() > MAX_DNS_SEARCHES {
        c.invalid(&at(&dp, "searches"), list(&d.searches), format!("must not have more than {MAX_DNS_SEARCHES} search paths"));
    }
    if d.searches.iter().map(|x| x.len() + 1).sum::<usize>().saturating_sub(1) > MAX_DNS_SEARCH_LIST_CHARS {
        c.invalid(
            &at(&dp, "searches"),
            list(&d.searches),
            format!("must not have more than {MAX_DNS_SEARCH_LIST_CHARS} characters (including spaces) in the search list"),
        );
    }
    for (i, search) in d.searches.iter().enumerate() {
        // A trailing dot (a fully qualified name) is allowed.
        let name = search.strip_suffix('.').unwrap_or(search);
        c.invalid_all(&idx(&at(&dp, "searches"), i), search, names::dns1123_subdomain(name));
    }
    for (i, o) in d.options.iter().enumerate() {
        if o.name.is_empty() {
            c.required(&at(&idx(&at(&dp, "options"), i), "name"), "");
        }
    }
}

/// Volumes: unique DNS-1123 label names and exactly one source each.
/// Returns the names.
fn volumes(c: &mut Check, vs: &[Volume], p: &str) -> BTreeSet<String> {
    let mut names_seen = BTreeSet::new();
    for (i, v) in vs.iter().enumerate() {
        let vp = idx(p, i);
        let np = at(&vp, "name");
        if v.name.is_empty() {
            c.required(&np, "");
        } else {
            c.invalid_all(&np, &v.name, names::dns1123_label(&v.name));
            if !names_seen.insert(v.name.clone()) {
                c.duplicate(&np, &v.name);
            }
        }
        let sources: Vec<&str> = [
            ("hostPath", v.host_path.is_some()),
            ("emptyDir", v.empty_dir.is_some()),
            ("secret", v.secret.is_some()),
            ("configMap", v.config_map.is_some()),
            ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect();
        match sources.as_slice() {
            [] => c.required(&vp, "must specify a volume type"),
            [_] => {}
            [_, second, ..] => c.forbidden(&at(&vp, second), "may not specify more than 1 volume type"),
        }
        if let Some(h) = &v.host_path {
            let hp = at(&vp, "hostPath");
            let pp = at(&hp, "path");
            if h.path.is_empty() {
                c.required(&pp, "");
            } else {
                if !h.path.starts_with('/') {
                    c.invalid(&pp, &h.path, "must be an absolute path");
                }
                if h.path.split('/').any(|s| s == "..") {
                    c.invalid(&pp, &h.path, "must not contain '..'");
                }
            }
            c.one_of(
                &at(&hp, "type"),
                &h.r#type,
                &["DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"],
                false,
            );
        }
        if let Some(e) = &v.empty_dir {
            let ep = at(&vp, "emptyDir");
            if !(e.medium.is_empty() || e.medium == "Memory" || e.medium.starts_with("HugePages")) {
                c.not_supported(&at(&ep, "medium"), &e.medium, &["", "Memory", "HugePages"]);
            }
            if !e.size_limit.is_empty() {
                c.non_negative_quantity(&at(&ep, "sizeLimit"), &e.size_limit);
            }
        }
        if let Some(s) = &v.secret {
            let sp = at(&vp, "secret");
            if s.secret_name.is_empty() {
                c.required(&at(&sp, "secretName"), "");
            }
            file_mode(c, &at(&sp, "defaultMode"), s.default_mode);
            key_to_paths(c, &s.items, &at(&sp, "items"));
        }
        if let Some(m) = &v.config_map {
            let mp = at(&vp, "configMap");
            if m.name.is_empty() {
                c.required(&at(&mp, "name"), "");
            }
            file_mode(c, &at(&mp, "defaultMode"), m.default_mode);
            key_to_paths(c, &m.items, &at(&mp, "items"));
        }
        if let Some(pvc) = &v.persistent_volume_claim
            && pvc.claim_name.is_empty()
        {
            c.required(&at(&at(&vp, "persistentVolumeClaim"), "claimName"), "");
        }
    }
    names_seen
}

fn key_to_paths(c: &mut Check, items: &[KeyToPath], p: &str) {
    for (i, it) in items.iter().enumerate() {
        let ip = idx(p, i);
        if it.key.is_empty() {
            c.required(&at(&ip, "key"), "");
        }
        if it.path.is_empty() {
            c.required(&at(&ip, "path"), "");
        } else {
            local_descending_path(c, &at(&ip, "path"), &it.path);
        }
        file_mode(c, &at(&ip, "mode"), it.mode);
    }
}

struct ContainerCtx<'a> {
    volumes: &'a BTreeSet<String>,
    volumes_path: &'a str,
    host_network: bool,
}

fn container(c: &mut Check, ctr: &Container, p: &str, init: bool, ctx: &ContainerCtx<'_>, names_seen: &mut HashSet<String>) {
    let np = at(p, "name");
    if ctr.name.is_empty() {
        c.required(&np, "");
    } else {
        c.invalid_all(&np, &ctr.name, names::dns1123_label(&ctr.name));
        if !names_seen.insert(ctr.name.clone()) {
            c.duplicate(&np, &ctr.name);
        }
    }
    let ip = at(p, "image");
    if ctr.image.is_empty() {
        c.required(&ip, "");
    } else if ctr.image.trim() != ctr.image {
        c.invalid(&ip, &ctr.image, "must not have leading or trailing whitespace");
    }
    c.one_of(&at(p, "imagePullPolicy"), &ctr.image_pull_policy, &["Always", "IfNotPresent", "Never"], true);
    c.one_of(&at(p, "terminationMessagePolicy"), &ctr.termination_message_policy, &["File", "FallbackToLogsOnError"], false);

    // Ports.
    let mut port_names = HashSet::new();
    for (i, port) in ctr.ports.iter().enumerate() {
        let pp = idx(&at(p, "ports"), i);
        if !port.name.is_empty() {
            let fp = at(&pp, "name");
            c.invalid_all(&fp, &port.name, names::port_name(&port.name));
            if !port_names.insert(port.name.as_str()) {
                c.duplicate(&fp, &port.name);
            }
        }
        let cp = at(&pp, "containerPort");
        if port.container_port == 0 {
            c.required(&cp, "");
        } else {
            c.invalid_all(&cp, port.container_port, names::port_number(port.container_port.into()));
        }
        if port.host_port != 0 {
            c.invalid_all(&at(&pp, "hostPort"), port.host_port, names::port_number(port.host_port.into()));
            if ctx.host_network && port.host_port != port.container_port {
                c.invalid(&cp, port.container_port, "must match `hostPort` when `hostNetwork` is true");
            }
        }
        c.one_of(&at(&pp, "protocol"), &port.protocol, PROTOCOLS, true);
        if !port.host_ip.is_empty() {
            c.invalid_all(&at(&pp, "hostIP"), &port.host_ip, names::ip_address(&port.host_ip));
        }
    }

    // Environment.
    for (i, ef) in ctr.env_from.iter().enumerate() {
        let ep = idx(&at(p, "envFrom"), i);
        if !ef.prefix.is_empty() {
            c.invalid_all(&at(&ep, "prefix"), &ef.prefix, names::env_var_name(&ef.prefix));
        }
        match (&ef.config_map_ref, &ef.secret_ref) {
            (None, None) => c.invalid(&ep, "", "must specify one of: `configMapRef` or `secretRef`"),
            (Some(_), Some(_)) => c.invalid(&ep, "", "may not have more than one field specified at a time"),
            _ => {}
        }
        if let Some(r) = &ef.config_map_ref
            && r.name.is_empty()
        {
            c.required(&at(&at(&ep, "configMapRef"), "name"), "");
        }
        if let Some(r) = &ef.secret_ref
            && r.name.is_empty()
        {
            c.required(&at(&at(&ep, "secretRef"), "name"), "");
        }
    }
    for (i, e) in ctr.env.iter().enumerate() {
        env_var(c, e, &idx(&at(p, "env"), i));
    }

    if let Some(r) = &ctr.resources {
        resources(c, r, &at(p, "resources"));
    }

    // Volume mounts.
    let mut mount_paths = HashSet::new();
    let privileged = ctr.security_context.as_ref().and_then(|s| s.privileged) == Some(true);
    for (i, m) in ctr.volume_mounts.iter().enumerate() {
        let mp = idx(&at(p, "volumeMounts"), i);
        let np = at(&mp, "name");
        if m.name.is_empty() {
            c.required(&np, "");
        } else if !ctx.volumes.contains(&m.name) {
            c.invalid(&np, &m.name, format!("must be the name of a volume in {}", ctx.volumes_path));
        }
        let pp = at(&mp, "mountPath");
        if m.mount_path.is_empty() {
            c.required(&pp, "");
        } else {
            if !m.mount_path.starts_with('/') {
                c.invalid(&pp, &m.mount_path, "must be an absolute path");
            }
            if !mount_paths.insert(m.mount_path.as_str()) {
                c.invalid(&pp, &m.mount_path, "must be unique");
            }
        }
        if !m.sub_path.is_empty() {
            local_descending_path(c, &at(&mp, "subPath"), &m.sub_path);
        }
        let prop = at(&mp, "mountPropagation");
        c.one_of(&prop, &m.mount_propagation, &["None", "HostToContainer", "Bidirectional"], false);
        if m.mount_propagation == "Bidirectional" && !privileged {
            c.forbidden(&prop, "Bidirectional mount propagation is available only to privileged containers");
        }
    }

    // Probes and lifecycle.
    let probes = [
        ("livenessProbe", &ctr.liveness_probe, ProbeKind::Liveness),
        ("readinessProbe", &ctr.readiness_probe, ProbeKind::Readiness),
        ("startupProbe", &ctr.startup_probe, ProbeKind::Startup),
    ];
    for (field, pr, kind) in probes {
        let Some(pr) = pr else { continue };
        let pp = at(p, field);
        if init {
            c.forbidden(&pp, "may not be set for init containers");
            continue;
        }
        probe(c, pr, &pp, kind);
    }
    if let Some(l) = &ctr.lifecycle {
        let lp = at(p, "lifecycle");
        if init {
            c.forbidden(&lp, "may not be set for init containers");
        } else {
            for (field, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
                if let Some(h) = h {
                    handler(c, h.exec.as_ref(), h.http_get.as_ref(), h.tcp_socket.as_ref(), &at(&lp, field));
                }
            }
        }
    }

    if let Some(sc) = &ctr.security_context {
        let sp = at(p, "securityContext");
        if let Some(caps) = &sc.capabilities {
            for (field, list) in [("add", &caps.add), ("drop", &caps.drop)] {
                for (i, cap) in list.iter().enumerate() {
                    let fp = idx(&at(&at(&sp, "capabilities"), field), i);
                    if cap.is_empty() {
                        c.invalid(&fp, cap, "must not be empty");
                    } else if !cap.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        c.invalid(&fp, cap, "a capability name must consist of letters, digits and '_' (e.g. 'NET_ADMIN')");
                    }
                }
            }
        }
        id_range(c, &at(&sp, "runAsUser"), sc.run_as_user);
        id_range(c, &at(&sp, "runAsGroup"), sc.run_as_group);
        if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
            c.invalid(&sp, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true");
        }
    }
}

/// Paths a fieldRef may name in an environment variable.
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.annotations",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Resources a resourceFieldRef may name in an environment variable.
const ENV_RESOURCES: &[&str] =
    &["limits.cpu", "limits.memory", "limits.ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage"];

fn env_var(c: &mut Check, e: &EnvVar, p: &str) {
    let np = at(p, "name");
    if e.name.is_empty() {
        c.required(&np, "");
    } else {
        c.invalid_all(&np, &e.name, names::env_var_name(&e.name));
    }
    let Some(vf) = &e.value_from else { return };
    let vp = at(p, "valueFrom");
    let n = [vf.field_ref.is_some(), vf.resource_field_ref.is_some(), vf.config_map_key_ref.is_some(), vf.secret_key_ref.is_some()]
        .into_iter()
        .filter(|b| *b)
        .count();
    if !e.value.is_empty() && n != 0 {
        c.invalid(&vp, "", "may not be specified when `value` is not empty");
    }
    match n {
        0 => c.invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"),
        1 => {}
        _ => c.invalid(&vp, "", "may not have more than one field specified at a time"),
    }
    if let Some(f) = &vf.field_ref {
        let fp = at(&vp, "fieldRef");
        if !f.api_version.is_empty() && f.api_version != "v1" {
            c.not_supported(&at(&fp, "apiVersion"), &f.api_version, &["v1"]);
        }
        let pp = at(&fp, "fieldPath");
        if f.field_path.is_empty() {
            c.required(&pp, "");
        } else if let Some((path, subscript)) = split_subscript(&f.field_path) {
            match path {
                "metadata.labels" => c.invalid_all(&fp, subscript, names::qualified_name(subscript)),
                "metadata.annotations" => c.invalid_all(&fp, subscript, names::qualified_name(&subscript.to_lowercase())),
                _ => c.invalid(&fp, path, "does not support subscript"),
            }
        } else if !ENV_FIELD_PATHS.contains(&f.field_path.as_str()) {
            c.not_supported(&pp, &f.field_path, ENV_FIELD_PATHS);
        }
    }
    if let Some(r) = &vf.resource_field_ref {
        let rp = at(&vp, "resourceFieldRef");
        let res = at(&rp, "resource");
        if r.resource.is_empty() {
            c.required(&res, "");
        } else if !ENV_RESOURCES.contains(&r.resource.as_str())
            && !r.resource.starts_with("limits.hugepages-")
            && !r.resource.starts_with("requests.hugepages-")
        {
            c.not_supported(&res, &r.resource, ENV_RESOURCES);
        }
        if !r.divisor.is_empty() {
            let dp = at(&rp, "divisor");
            if c.quantity(&dp, &r.divisor).is_some() {
                let cpu = r.resource.ends_with(".cpu");
                let memory = r.resource.ends_with(".memory") || r.resource.ends_with(".ephemeral-storage");
                if cpu && !["1m", "1"].contains(&r.divisor.as_str()) {
                    c.invalid(&dp, &r.divisor, "only divisor's values 1m and 1 are supported with the cpu resource");
                }
                let mem_ok = ["1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"];
                if memory && !mem_ok.contains(&r.divisor.as_str()) {
                    c.invalid(&dp, &r.divisor, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource");
                }
            }
        }
    }
    let key_refs = [
        ("configMapKeyRef", vf.config_map_key_ref.as_ref().map(|r| (&r.name, &r.key))),
        ("secretKeyRef", vf.secret_key_ref.as_ref().map(|r| (&r.name, &r.key))),
    ];
    for (field, r) in key_refs {
        let Some((name, k)) = r else { continue };
        let rp = at(&vp, field);
        if name.is_empty() {
            c.required(&at(&rp, "name"), "");
        }
        let kp = at(&rp, "key");
        if k.is_empty() {
            c.required(&kp, "");
        } else {
            c.invalid_all(&kp, k, names::config_map_key(k));
        }
    }
}

/// `metadata.labels['key']` as (`metadata.labels`, `key`).
fn split_subscript(path: &str) -> Option<(&str, &str)> {
    let s = path.strip_suffix("']")?;
    let (head, sub) = s.split_once("['")?;
    if head.is_empty() { None } else { Some((head, sub)) }
}

/// Whether a resource name is an extended resource (a domain other than
/// kubernetes.io): integer quantities, requests equal to limits.
fn is_extended_resource(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// A container resource name: a standard one, or a qualified name with a domain.
fn container_resource_name(c: &mut Check, p: &str, name: &str) -> bool {
    let msgs = names::qualified_name(name);
    if !msgs.is_empty() {
        c.invalid_all(p, name, msgs);
        return false;
    }
    if !is_extended_resource(name) && !is_standard_container_resource(name) {
        c.invalid(p, name, "must be a standard resource for containers");
        return false;
    }
    true
}

/// A map of container resources to quantities, checked; the parsed ones.
fn resource_list<'a>(c: &mut Check, m: &'a BTreeMap<String, String>, p: &str) -> BTreeMap<&'a str, Quantity> {
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let kp = key(p, k);
        let name_ok = container_resource_name(c, &kp, k);
        let Some(q) = c.non_negative_quantity(&kp, v) else { continue };
        if is_extended_resource(k) && q.nano_value() % 1_000_000_000 != 0 {
            c.invalid(&kp, v, "must be an integer");
            continue;
        }
        if name_ok {
            out.insert(k.as_str(), q);
        }
    }
    out
}

fn resources(c: &mut Check, r: &ResourceRequirements, p: &str) {
    let (lp, rp) = (at(p, "limits"), at(p, "requests"));
    let limits = resource_list(c, &r.limits, &lp);
    let requests = resource_list(c, &r.requests, &rp);
    for (name, req) in &requests {
        let fp = key(&rp, name);
        let raw = r.requests.get(*name).map(String::as_str).unwrap_or("");
        match limits.get(name) {
            Some(lim) if is_extended_resource(name) && req != lim => {
                c.invalid(&fp, raw, format!("must be equal to {name} limit of {lim}"));
            }
            Some(lim) if req > lim => {
                c.invalid(&fp, raw, format!("must be less than or equal to {name} limit of {lim}"));
            }
            None if is_extended_resource(name) => {
                c.required(&key(&lp, name), "Limit must be set for non overcommitable resources");
            }
            _ => {}
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

fn probe(c: &mut Check, pr: &Probe, p: &str, kind: ProbeKind) {
    handler(c, pr.exec.as_ref(), pr.http_get.as_ref(), pr.tcp_socket.as_ref(), p);
    if let Some(v) = pr.initial_delay_seconds {
        c.non_negative(&at(p, "initialDelaySeconds"), v.into());
    }
    for (field, v) in [
        ("timeoutSeconds", pr.timeout_seconds),
        ("periodSeconds", pr.period_seconds),
        ("successThreshold", pr.success_threshold),
        ("failureThreshold", pr.failure_threshold),
    ] {
        if let Some(v) = v
            && v < 1
        {
            c.invalid(&at(p, field), v, "must be greater than or equal to 1");
        }
    }
    if kind != ProbeKind::Readiness
        && let Some(v) = pr.success_threshold
        && v > 1
    {
        c.invalid(&at(p, "successThreshold"), v, "must be 1");
    }
    if let Some(v) = pr.termination_grace_period_seconds {
        let fp = at(p, "terminationGracePeriodSeconds");
        if kind == ProbeKind::Readiness {
            c.invalid(&fp, v, "must not be set for readinessProbes");
        } else if v <= 0 {
            c.invalid(&fp, v, "must be greater than 0");
        }
    }
}

/// A probe or lifecycle handler: exactly one of exec, httpGet, tcpSocket.
fn handler(c: &mut Check, exec: Option<&ExecAction>, http: Option<&HttpGetAction>, tcp: Option<&TcpSocketAction>, p: &str) {
    let set: Vec<&str> = [("exec", exec.is_some()), ("httpGet", http.is_some()), ("tcpSocket", tcp.is_some())]
        .into_iter()
        .filter_map(|(n, s)| s.then_some(n))
        .collect();
    match set.as_slice() {
        [] => c.required(p, "must specify a handler type"),
        [_] => {}
        [_, second, ..] => c.forbidden(&at(p, second), "may not specify more than 1 handler type"),
    }
    if let Some(e) = exec
        && e.command.is_empty()
    {
        c.required(&at(&at(p, "exec"), "command"), "");
    }
    if let Some(h) = http {
        let hp = at(p, "httpGet");
        port_num_or_name(c, &at(&hp, "port"), &h.port);
        c.one_of(&at(&hp, "scheme"), &h.scheme, &["HTTP", "HTTPS"], false);
        for (i, hdr) in h.http_headers.iter().enumerate() {
            let np = at(&idx(&at(&hp, "httpHeaders"), i), "name");
            if hdr.name.is_empty() || !hdr.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                c.invalid(
                    &np,
                    &hdr.name,
                    "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
                );
            }
        }
    }
    if let Some(t) = tcp {
        port_num_or_name(c, &at(&at(p, "tcpSocket"), "port"), &t.port);
    }
}

fn tolerations(c: &mut Check, ts: &[Toleration], p: &str) {
    for (i, t) in ts.iter().enumerate() {
        let tp = idx(p, i);
        let op = at(&tp, "operator");
        if !t.key.is_empty() {
            c.invalid_all(&at(&tp, "key"), &t.key, names::qualified_name(&t.key));
        } else if t.operator != "Exists" {
            c.invalid(&op, &t.operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\"");
        }
        if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
            c.invalid(&at(&tp, "effect"), &t.effect, "effect must be 'NoExecute' when `tolerationSeconds` is set");
        }
        match t.operator.as_str() {
            "" | "Equal" => {
                let msgs = names::label_value(&t.value);
                if !msgs.is_empty() {
                    c.invalid(&op, &t.value, msgs.join(";"));
                }
            }
            "Exists" => {
                if !t.value.is_empty() {
                    c.invalid(&op, &t.value, "value must be empty when `operator` is 'Exists'");
                }
            }
            other => c.not_supported(&op, other, &["Equal", "Exists"]),
        }
        c.one_of(&at(&tp, "effect"), &t.effect, TAINT_EFFECTS, false);
    }
}

fn node_affinity(c: &mut Check, na: &NodeAffinity, p: &str) {
    if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
        let rp = at(p, "requiredDuringSchedulingIgnoredDuringExecution");
        let tp = at(&rp, "nodeSelectorTerms");
        if req.node_selector_terms.is_empty() {
            c.required(&tp, "must have at least one node selector term");
        }
        for (i, term) in req.node_selector_terms.iter().enumerate() {
            node_selector_term(c, term, &idx(&tp, i));
        }
    }
    let pp = at(p, "preferredDuringSchedulingIgnoredDuringExecution");
    for (i, pref) in na.preferred_during_scheduling_ignored_during_execution.iter().enumerate() {
        let ip = idx(&pp, i);
        if !(1..=100).contains(&pref.weight) {
            c.invalid(&at(&ip, "weight"), pref.weight, "must be in the range 1-100");
        }
        match &pref.preference {
            Some(t) => node_selector_term(c, t, &at(&ip, "preference")),
            None => c.required(&at(&ip, "preference"), ""),
        }
    }
}

fn node_selector_term(c: &mut Check, term: &NodeSelectorTerm, p: &str) {
    for (i, r) in term.match_expressions.iter().enumerate() {
        let rp = idx(&at(p, "matchExpressions"), i);
        let vp = at(&rp, "values");
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.is_empty() {
                    c.required(&vp, "must be specified when `operator` is 'In' or 'NotIn'");
                }
            }
            "Exists" | "DoesNotExist" => {
                if !r.values.is_empty() {
                    c.forbidden(&vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
                }
            }
            "Gt" | "Lt" => match r.values.as_slice() {
                [v] => {
                    if v.parse::<i64>().is_err() {
                        c.invalid(&idx(&vp, 0), v, "must be an integer");
                    }
                }
                _ => c.required(&vp, "must be specified single value when `operator` is 'Lt' or 'Gt'"),
            },
            other => c.invalid(&at(&rp, "operator"), other, "not a valid selector operator"),
        }
        c.invalid_all(&at(&rp, "key"), &r.key, names::qualified_name(&r.key));
    }
    for (i, r) in term.match_fields.iter().enumerate() {
        let rp = idx(&at(p, "matchFields"), i);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.len() != 1 {
                    c.required(&at(&rp, "values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector");
                }
            }
            other => c.invalid(&at(&rp, "operator"), other, "not a valid selector operator"),
        }
        if r.key != "metadata.name" {
            c.not_supported(&at(&rp, "key"), &r.key, &["metadata.name"]);
        } else {
            for (j, v) in r.values.iter().enumerate() {
                c.invalid_all(&idx(&at(&rp, "values"), j), v, names::dns1123_subdomain(v));
            }
        }
    }
}

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than spec.containers[*].image, spec.initContainers[*].image, spec.activeDeadlineSeconds, spec.tolerations (only additions to existing tolerations) or spec.terminationGracePeriodSeconds";

fn pod_update(c: &mut Check, old: &Pod, new: &Pod) {
    let empty = PodSpec::default();
    let (o, n) = (old.spec.as_ref().unwrap_or(&empty), new.spec.as_ref().unwrap_or(&empty));
    // The old spec with what may change taken from the new one: anything
    // else that differs is forbidden.
    let mut munged = o.clone();
    if munged.containers.len() == n.containers.len() {
        for (m, x) in munged.containers.iter_mut().zip(&n.containers) {
            m.image = x.image.clone();
        }
    }
    if munged.init_containers.len() == n.init_containers.len() {
        for (m, x) in munged.init_containers.iter_mut().zip(&n.init_containers) {
            m.image = x.image.clone();
        }
    }
    munged.active_deadline_seconds = n.active_deadline_seconds;
    munged.tolerations = n.tolerations.clone();
    munged.termination_grace_period_seconds = n.termination_grace_period_seconds;
    if o.node_name.is_empty() {
        // Binding: nodeName may be set once.
        munged.node_name = n.node_name.clone();
    }
    if munged != *n {
        let changed = changed_fields(&munged, n);
        let detail = if changed.is_empty() {
            POD_UPDATE_FORBIDDEN.to_string()
        } else {
            format!("{POD_UPDATE_FORBIDDEN} (changed: {})", changed.join(", "))
        };
        c.forbidden("spec", detail);
    }
    match (o.active_deadline_seconds, n.active_deadline_seconds) {
        (Some(ov), Some(nv)) if nv > ov => c.invalid("spec.activeDeadlineSeconds", nv, "must be less than or equal to previous value"),
        (Some(_), None) => {
            c.invalid("spec.activeDeadlineSeconds", Rendered("null".into()), "must not update from a positive integer to nil value")
        }
        _ => {}
    }
    // Tolerations may be added; existing ones may change only tolerationSeconds.
    for ot in &o.tolerations {
        let kept =
            n.tolerations.iter().any(|nt| nt.key == ot.key && nt.operator == ot.operator && nt.value == ot.value && nt.effect == ot.effect);
        if !kept {
            c.forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds");
            break;
        }
    }
}

/// The top-level fields of two pod specs that differ, as `spec.<field>`.
fn changed_fields(a: &PodSpec, b: &PodSpec) -> Vec<String> {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) = (serde_json::to_value(a), serde_json::to_value(b)) else {
        return Vec::new();
    };
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter().filter(|k| a.get(*k) != b.get(*k)).map(|k| format!("spec.{k}")).collect()
}

// ----------------------------------------------------- ReplicationController

fn replication_controller(c: &mut Check, rc: &ReplicationController) {
    object_meta(c, rc.metadata.as_ref(), true, NameRule::Subdomain);
    let empty = ReplicationControllerSpec::default();
    let s = rc.spec.as_ref().unwrap_or(&empty);
    if let Some(r) = s.replicas {
        c.non_negative("spec.replicas", r.into());
    }
    if let Some(m) = s.min_ready_seconds {
        c.non_negative("spec.minReadySeconds", m.into());
    }
    if s.selector.is_empty() {
        c.required("spec.selector", "");
    }
    labels(c, "spec.selector", &s.selector);
    let Some(t) = &s.template else {
        c.required("spec.template", "");
        return;
    };
    let tm = t.metadata.as_ref().unwrap_or(&EMPTY_META);
    if !s.selector.is_empty() && !Selector::from_map(&s.selector).matches(&tm.labels) {
        c.invalid("spec.template.metadata.labels", render_map(&tm.labels), "`selector` does not match template `labels`");
    }
    labels(c, "spec.template.metadata.labels", &tm.labels);
    annotations(c, "spec.template.metadata.annotations", &tm.annotations);
    let empty_spec = PodSpec::default();
    let ps = t.spec.as_ref().unwrap_or(&empty_spec);
    pod_spec(c, ps, "spec.template.spec");
    if ["OnFailure", "Never"].contains(&ps.restart_policy.as_str()) {
        c.not_supported("spec.template.spec.restartPolicy", &ps.restart_policy, &["Always"]);
    }
    if let Some(v) = ps.active_deadline_seconds {
        c.invalid("spec.template.spec.activeDeadlineSeconds", v, "activeDeadlineSeconds in ReplicationController is not Supported");
    }
    if let Some(st) = &rc.status {
        let fields = [
            ("status.replicas", st.replicas),
            ("status.fullyLabeledReplicas", st.fully_labeled_replicas),
            ("status.readyReplicas", st.ready_replicas),
            ("status.availableReplicas", st.available_replicas),
        ];
        for (f, v) in fields {
            c.non_negative(f, v.into());
        }
        c.non_negative("status.observedGeneration", st.observed_generation);
        for (f, v) in &fields[1..] {
            if *v > st.replicas {
                c.invalid(f, *v, "cannot be greater than status.replicas");
            }
        }
        if st.available_replicas > st.ready_replicas {
            c.invalid("status.availableReplicas", st.available_replicas, "cannot be greater than readyReplicas");
        }
    }
}

// ------------------------------------------------------------------- Service

fn service(c: &mut Check, svc: &Service) {
    object_meta(c, svc.metadata.as_ref(), true, NameRule::Dns1035);
    let empty = ServiceSpec::default();
    let s = svc.spec.as_ref().unwrap_or(&empty);
    let ty = s.r#type.as_str();
    c.one_of("spec.type", ty, &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"], true);
    let headless = s.cluster_ip == "None";
    if ty == "ExternalName" {
        if !s.cluster_ip.is_empty() {
            c.forbidden("spec.clusterIP", "may not be set for ExternalName services");
        }
        if s.external_name.is_empty() {
            c.required("spec.externalName", "");
        } else {
            let name = s.external_name.strip_suffix('.').unwrap_or(&s.external_name);
            c.invalid_all("spec.externalName", &s.external_name, names::dns1123_subdomain(name));
        }
    } else if s.ports.is_empty() && !headless {
        c.required("spec.ports", "");
    }
    if !s.cluster_ip.is_empty() && !headless {
        c.invalid_all("spec.clusterIP", &s.cluster_ip, names::ip_address(&s.cluster_ip));
    }
    if headless && matches!(ty, "NodePort" | "LoadBalancer") {
        c.invalid("spec.clusterIP", &s.cluster_ip, format!("may not be set to 'None' for {ty} services"));
    }
    for (i, ip) in s.cluster_ips.iter().enumerate() {
        let p = idx("spec.clusterIPs", i);
        if ip != "None" {
            c.invalid_all(&p, ip, names::ip_address(ip));
        }
        if i == 0 && !s.cluster_ip.is_empty() && *ip != s.cluster_ip {
            c.invalid(&p, ip, "must match `clusterIP`");
        }
    }

    let require_name = s.ports.len() > 1;
    let mut port_names = HashSet::new();
    let mut ports_seen = HashSet::new();
    let mut node_ports = HashSet::new();
    for (i, sp) in s.ports.iter().enumerate() {
        let pp = idx("spec.ports", i);
        let np = at(&pp, "name");
        if sp.name.is_empty() {
            if require_name {
                c.required(&np, "");
            }
        } else {
            c.invalid_all(&np, &sp.name, names::dns1123_label(&sp.name));
            if !port_names.insert(sp.name.as_str()) {
                c.duplicate(&np, &sp.name);
            }
        }
        c.invalid_all(&at(&pp, "port"), sp.port, names::port_number(sp.port.into()));
        c.one_of(&at(&pp, "protocol"), &sp.protocol, PROTOCOLS, true);
        port_num_or_name(c, &at(&pp, "targetPort"), &sp.target_port);
        if !sp.app_protocol.is_empty() {
            c.invalid_all(&at(&pp, "appProtocol"), &sp.app_protocol, names::qualified_name(&sp.app_protocol));
        }
        let k = format!("{}/{}", sp.port, sp.protocol);
        if !ports_seen.insert(k.clone()) {
            c.duplicate(&pp, k);
        }
        if sp.node_port != 0 {
            let npp = at(&pp, "nodePort");
            if matches!(ty, "ClusterIP" | "ExternalName") {
                c.forbidden(&npp, format!("may not be used when `type` is '{ty}'"));
            }
            if !(0..=65535).contains(&sp.node_port) {
                c.invalid(&npp, sp.node_port, "must be between 0 and 65535, inclusive");
            }
            if !node_ports.insert((sp.node_port, sp.protocol.as_str())) {
                c.duplicate(&npp, sp.node_port);
            }
        }
    }

    match s.session_affinity.as_str() {
        "" | "None" => {
            if s.session_affinity_config.is_some() {
                c.forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None");
            }
        }
        "ClientIP" => {
            if let Some(t) = s.session_affinity_config.as_ref().and_then(|x| x.client_ip.as_ref()).and_then(|x| x.timeout_seconds)
                && !(1..=86400).contains(&t)
            {
                c.invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds", t, "must be greater than 0 and less than 86400");
            }
        }
        other => c.not_supported("spec.sessionAffinity", other, &["ClientIP", "None"]),
    }
    labels(c, "spec.selector", &s.selector);
    for (i, ip) in s.external_ips.iter().enumerate() {
        c.invalid_all(&idx("spec.externalIPs", i), ip, names::ip_address(ip));
    }
    if !s.external_traffic_policy.is_empty() {
        if !matches!(ty, "NodePort" | "LoadBalancer") {
            c.invalid(
                "spec.externalTrafficPolicy",
                &s.external_traffic_policy,
                "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
            );
        } else {
            c.one_of("spec.externalTrafficPolicy", &s.external_traffic_policy, &["Cluster", "Local"], false);
        }
    }
    c.one_of("spec.internalTrafficPolicy", &s.internal_traffic_policy, &["Cluster", "Local"], false);
    if !s.load_balancer_ip.is_empty() {
        if ty != "LoadBalancer" {
            c.forbidden("spec.loadBalancerIP", "may only be used when `type` is 'LoadBalancer'");
        }
        c.invalid_all("spec.loadBalancerIP", &s.load_balancer_ip, names::ip_address(&s.load_balancer_ip));
    }
    if !s.load_balancer_source_ranges.is_empty() {
        if ty != "LoadBalancer" {
            c.forbidden("spec.loadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'");
        }
        for (i, r) in s.load_balancer_source_ranges.iter().enumerate() {
            if !is_cidr(r.trim()) {
                c.invalid(
                    &idx("spec.loadBalancerSourceRanges", i),
                    r,
                    "must be a list of IP ranges. For example, 10.240.0.0/24,10.250.0.0/24 ",
                );
            }
        }
    }
    if let Some(lb) = svc.status.as_ref().and_then(|s| s.load_balancer.as_ref()) {
        for (i, ing) in lb.ingress.iter().enumerate() {
            let ip = idx("status.loadBalancer.ingress", i);
            if !ing.ip.is_empty() {
                c.invalid_all(&at(&ip, "ip"), &ing.ip, names::ip_address(&ing.ip));
            }
            if !ing.hostname.is_empty() {
                let hp = at(&ip, "hostname");
                c.invalid_all(&hp, &ing.hostname, names::dns1123_subdomain(&ing.hostname));
                if ing.hostname.parse::<IpAddr>().is_ok() {
                    c.invalid(&hp, &ing.hostname, "must be a DNS name, not an IP address");
                }
            }
        }
    }
}

fn service_update(c: &mut Check, old: &Service, new: &Service) {
    let empty = ServiceSpec::default();
    let (o, n) = (old.spec.as_ref().unwrap_or(&empty), new.spec.as_ref().unwrap_or(&empty));
    if o.cluster_ip.is_empty() || o.cluster_ip == n.cluster_ip {
        return;
    }
    // Becoming an ExternalName service releases the cluster IP.
    if n.r#type == "ExternalName" && n.cluster_ip.is_empty() {
        return;
    }
    c.invalid("spec.clusterIP", &n.cluster_ip, "field is immutable");
}

// ----------------------------------------------------------------- Endpoints

fn endpoints(c: &mut Check, e: &Endpoints) {
    object_meta(c, e.metadata.as_ref(), true, NameRule::Subdomain);
    for (i, ss) in e.subsets.iter().enumerate() {
        let sp = idx("subsets", i);
        if ss.addresses.is_empty() && ss.not_ready_addresses.is_empty() {
            c.required(&sp, "must specify `addresses` or `notReadyAddresses`");
        }
        for (field, list) in [("addresses", &ss.addresses), ("notReadyAddresses", &ss.not_ready_addresses)] {
            for (j, a) in list.iter().enumerate() {
                let ap = idx(&at(&sp, field), j);
                let ipp = at(&ap, "ip");
                if a.ip.is_empty() {
                    c.required(&ipp, "");
                } else {
                    c.invalid_all(&ipp, &a.ip, names::ip_address(&a.ip));
                }
                if !a.hostname.is_empty() {
                    c.invalid_all(&at(&ap, "hostname"), &a.hostname, names::dns1123_label(&a.hostname));
                }
                if let Some(n) = &a.node_name
                    && !n.is_empty()
                {
                    c.invalid_all(&at(&ap, "nodeName"), n, names::dns1123_subdomain(n));
                }
            }
        }
        let require_name = ss.ports.len() > 1;
        let mut port_names = HashSet::new();
        for (j, port) in ss.ports.iter().enumerate() {
            let pp = idx(&at(&sp, "ports"), j);
            let np = at(&pp, "name");
            if port.name.is_empty() {
                if require_name {
                    c.required(&np, "");
                }
            } else {
                c.invalid_all(&np, &port.name, names::dns1123_label(&port.name));
                if !port_names.insert(port.name.as_str()) {
                    c.duplicate(&np, &port.name);
                }
            }
            c.invalid_all(&at(&pp, "port"), port.port, names::port_number(port.port.into()));
            c.one_of(&at(&pp, "protocol"), &port.protocol, PROTOCOLS, false);
            if let Some(ap) = &port.app_protocol
                && !ap.is_empty()
            {
                c.invalid_all(&at(&pp, "appProtocol"), ap, names::qualified_name(ap));
            }
        }
    }
}

// --------------------------------------------------------- Secret, ConfigMap

fn secret(c: &mut Check, s: &Secret) {
    object_meta(c, s.metadata.as_ref(), true, NameRule::Subdomain);
    let mut size = 0;
    for (k, v) in &s.data {
        c.invalid_all(&key("data", k), k, names::config_map_key(k));
        size += v.len();
    }
    for (k, v) in &s.string_data {
        c.invalid_all(&key("stringData", k), k, names::config_map_key(k));
        if !s.data.contains_key(k) {
            size += v.len();
        }
    }
    if size > MAX_DATA_SIZE {
        c.too_long("data", MAX_DATA_SIZE);
    }
    let has = |k: &str| s.data.contains_key(k) || s.string_data.contains_key(k);
    match s.r#type.as_str() {
        "" => c.required("type", ""),
        "kubernetes.io/service-account-token" => {
            let annotated =
                s.metadata.as_ref().and_then(|m| m.annotations.get("kubernetes.io/service-account.name")).is_some_and(|n| !n.is_empty());
            if !annotated {
                c.required("metadata.annotations[kubernetes.io/service-account.name]", "");
            }
        }
        "kubernetes.io/dockercfg" => json_key(c, s, ".dockercfg"),
        "kubernetes.io/dockerconfigjson" => json_key(c, s, ".dockerconfigjson"),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            c.required("data[username]", "");
            c.required("data[password]", "");
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => c.required("data[ssh-privatekey]", ""),
        "kubernetes.io/tls" => {
            for k in ["tls.key", "tls.crt"] {
                if !has(k) {
                    c.required(&key("data", k), "");
                }
            }
        }
        _ => {}
    }
}

/// A Secret type that requires a key holding JSON.
fn json_key(c: &mut Check, s: &Secret, k: &str) {
    let p = key("data", k);
    let value = s.data.get(k).cloned().or_else(|| s.string_data.get(k).map(|v| v.clone().into_bytes()));
    match value {
        None => c.required(&p, ""),
        Some(v) => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&v) {
                c.invalid(&p, Rendered("<secret contents redacted>".into()), e.to_string());
            }
        }
    }
}

fn config_map(c: &mut Check, m: &ConfigMap) {
    object_meta(c, m.metadata.as_ref(), true, NameRule::Subdomain);
    let mut size = 0;
    for (k, v) in &m.data {
        c.invalid_all(&key("data", k), k, names::config_map_key(k));
        size += v.len();
    }
    for (k, v) in &m.binary_data {
        let p = key("binaryData", k);
        c.invalid_all(&p, k, names::config_map_key(k));
        if m.data.contains_key(k) {
            c.invalid(&p, k, "duplicate of key present in data");
        }
        size += v.len();
    }
    if size > MAX_DATA_SIZE {
        c.too_long("data", MAX_DATA_SIZE);
    }
}

// ---------------------------------------------------- ResourceQuota, LimitRange

/// Resource names a quota may limit without a domain.
const QUOTA_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "cpu",
    "memory",
    "ephemeral-storage",
    "storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "requests.storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
];

/// Quota resources counted in whole objects.
fn is_integer_quota_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "services"
            | "replicationcontrollers"
            | "resourcequotas"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || name.starts_with("count/")
}

fn quota_list(c: &mut Check, m: &BTreeMap<String, String>, p: &str) {
    for (k, v) in m {
        let kp = key(p, k);
        let msgs = names::qualified_name(k);
        if !msgs.is_empty() {
            c.invalid_all(&kp, k, msgs);
        } else if !k.contains('/')
            && !QUOTA_RESOURCES.contains(&k.as_str())
            && !k.starts_with("hugepages-")
            && !k.starts_with("requests.hugepages-")
        {
            c.invalid(&kp, k, "must be a standard resource for quota");
        }
        if let Some(q) = c.non_negative_quantity(&kp, v)
            && (is_integer_quota_resource(k) || is_extended_resource(k))
            && q.nano_value() % 1_000_000_000 != 0
        {
            c.invalid(&kp, v, "must be an integer");
        }
    }
}

fn resource_quota(c: &mut Check, q: &ResourceQuota) {
    object_meta(c, q.metadata.as_ref(), true, NameRule::Subdomain);
    if let Some(s) = &q.spec {
        quota_list(c, &s.hard, "spec.hard");
        const SCOPES: &[&str] =
            &["Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass", "CrossNamespacePodAffinity"];
        for (i, scope) in s.scopes.iter().enumerate() {
            c.one_of(&idx("spec.scopes", i), scope, SCOPES, true);
        }
    }
    if let Some(s) = &q.status {
        quota_list(c, &s.hard, "status.hard");
        quota_list(c, &s.used, "status.used");
    }
}

fn limit_range(c: &mut Check, l: &LimitRange) {
    object_meta(c, l.metadata.as_ref(), true, NameRule::Subdomain);
    let Some(spec) = &l.spec else { return };
    let mut types = HashSet::new();
    for (i, item) in spec.limits.iter().enumerate() {
        let ip = idx("spec.limits", i);
        let tp = at(&ip, "type");
        c.one_of(&tp, &item.r#type, &["Container", "Pod", "PersistentVolumeClaim"], true);
        if !item.r#type.is_empty() && !types.insert(item.r#type.as_str()) {
            c.duplicate(&tp, &item.r#type);
        }
        let pvc = item.r#type == "PersistentVolumeClaim";
        if item.r#type == "Pod" {
            if !item.default.is_empty() {
                c.forbidden(&at(&ip, "default"), "may not be specified when `type` is 'Pod'");
            }
            if !item.default_request.is_empty() {
                c.forbidden(&at(&ip, "defaultRequest"), "may not be specified when `type` is 'Pod'");
            }
        }
        if pvc && !item.min.contains_key("storage") && !item.max.contains_key("storage") {
            c.required(&at(&ip, "limits"), "either minimum or maximum storage value is required, but neither was provided");
        }
        let mut parse = |field: &str, m: &BTreeMap<String, String>| -> BTreeMap<String, Quantity> {
            let fp = at(&ip, field);
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let kp = key(&fp, k);
                let msgs = names::qualified_name(k);
                if !msgs.is_empty() {
                    c.invalid_all(&kp, k, msgs);
                } else if pvc && k != "storage" && !k.contains('/') {
                    c.invalid(&kp, k, "must be a standard resource for persistent volume claims");
                } else if !pvc && !k.contains('/') && !is_standard_container_resource(k) {
                    c.invalid(&kp, k, "must be a standard resource for containers");
                }
                if let Some(q) = c.non_negative_quantity(&kp, v) {
                    out.insert(k.clone(), q);
                }
            }
            out
        };
        let max = parse("max", &item.max);
        let min = parse("min", &item.min);
        let default = parse("default", &item.default);
        let default_request = parse("defaultRequest", &item.default_request);
        let ratio = parse("maxLimitRequestRatio", &item.max_limit_request_ratio);
        let keys: BTreeSet<&String> =
            max.keys().chain(min.keys()).chain(default.keys()).chain(default_request.keys()).chain(ratio.keys()).collect();
        for k in keys {
            let (mx, mn, d, dr, r) = (max.get(k), min.get(k), default.get(k), default_request.get(k), ratio.get(k));
            let path = |field: &str| key(&at(&ip, field), k);
            if let (Some(mn), Some(mx)) = (mn, mx)
                && mn > mx
            {
                c.invalid(&path("min"), mn.to_string(), format!("min value {mn} is greater than max value {mx}"));
            }
            if let Some(dr) = dr {
                if let Some(mn) = mn
                    && mn > dr
                {
                    c.invalid(
                        &path("defaultRequest"),
                        dr.to_string(),
                        format!("min value {mn} is greater than default request value {dr}"),
                    );
                }
                if let Some(mx) = mx
                    && dr > mx
                {
                    c.invalid(
                        &path("defaultRequest"),
                        dr.to_string(),
                        format!("default request value {dr} is greater than max value {mx}"),
                    );
                }
                if let Some(d) = d
                    && dr > d
                {
                    c.invalid(
                        &path("defaultRequest"),
                        dr.to_string(),
                        format!("default request value {dr} is greater than default limit value {d}"),
                    );
                }
            }
            if let Some(d) = d {
                if let Some(mn) = mn
                    && mn > d
                {
                    c.invalid(&path("default"), d.to_string(), format!("min value {mn} is greater than default value {d}"));
                }
                if let Some(mx) = mx
                    && d > mx
                {
                    c.invalid(&path("default"), d.to_string(), format!("default value {d} is greater than max value {mx}"));
                }
            }
            if let Some(r) = r {
                if *r < Quantity::from_value(1) {
                    c.invalid(&path("maxLimitRequestRatio"), r.to_string(), format!("ratio {r} is less than 1"));
                }
                if let (Some(mn), Some(mx)) = (mn, mx)
                    && !mn.is_zero()
                {
                    let limit = mx.nano_value() as f64 / mn.nano_value() as f64;
                    let ratio = r.nano_value() as f64 / 1e9;
                    if ratio > limit {
                        c.invalid(&path("maxLimitRequestRatio"), r.to_string(), format!("ratio {r} is greater than max/min = {limit:.6}"));
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------- RBAC

/// As Kubernetes' path segment names: anything but `.`, `..`, `/` and `%`.
fn path_segment(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s == "." || s == ".." {
        out.push(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            out.push(format!("may not contain '{bad}'"));
        }
    }
    out
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn policy_rules(c: &mut Check, rules: &[crate::pb::rbac::PolicyRule], namespaced: bool) {
    for (i, r) in rules.iter().enumerate() {
        let f = format!("rules[{i}]");
        if r.verbs.is_empty() {
            c.required(&format!("{f}.verbs"), "verbs must contain at least one value");
        }
        if !r.non_resource_urls.is_empty() {
            if namespaced {
                c.invalid(
                    &format!("{f}.nonResourceURLs"),
                    r.non_resource_urls.join(","),
                    "namespaced rules cannot apply to non-resource URLs",
                );
            }
            if !r.api_groups.is_empty() || !r.resources.is_empty() || !r.resource_names.is_empty() {
                c.invalid(
                    &format!("{f}.nonResourceURLs"),
                    r.non_resource_urls.join(","),
                    "rules cannot apply to both regular resources and non-resource URLs",
                );
            }
            continue;
        }
        if r.api_groups.is_empty() {
            c.required(&format!("{f}.apiGroups"), "resource rules must supply at least one api group");
        }
        if r.resources.is_empty() {
            c.required(&format!("{f}.resources"), "resource rules must supply at least one resource");
        }
    }
}

fn role_ref_text(r: Option<&crate::pb::rbac::RoleRef>) -> String {
    r.map(|r| format!("{}/{}", r.kind, r.name)).unwrap_or_default()
}

fn role_binding(c: &mut Check, subjects: &[crate::pb::rbac::Subject], role_ref: Option<&crate::pb::rbac::RoleRef>, namespaced: bool) {
    match role_ref {
        None => c.required("roleRef", ""),
        Some(r) => {
            if r.api_group != RBAC_GROUP {
                c.not_supported("roleRef.apiGroup", &r.api_group, &[RBAC_GROUP]);
            }
            let kinds: &[&str] = if namespaced { &["Role", "ClusterRole"] } else { &["ClusterRole"] };
            c.one_of("roleRef.kind", &r.kind, kinds, true);
            if r.name.is_empty() {
                c.required("roleRef.name", "");
            } else {
                c.invalid_all("roleRef.name", &r.name, path_segment(&r.name));
            }
        }
    }
    for (i, s) in subjects.iter().enumerate() {
        let f = format!("subjects[{i}]");
        c.one_of(&format!("{f}.kind"), &s.kind, &["User", "Group", "ServiceAccount"], true);
        if s.name.is_empty() {
            c.required(&format!("{f}.name"), "");
        }
        match s.kind.as_str() {
            "ServiceAccount" => {
                if !s.api_group.is_empty() {
                    c.not_supported(&format!("{f}.apiGroup"), &s.api_group, &[""]);
                }
                if s.namespace.is_empty() && !namespaced {
                    c.required(&format!("{f}.namespace"), "");
                }
            }
            "User" | "Group" if !s.api_group.is_empty() && s.api_group != RBAC_GROUP => {
                c.not_supported(&format!("{f}.apiGroup"), &s.api_group, &[RBAC_GROUP])
            }
            _ => {}
        }
    }
}

// ------------------------------------------------------------- Event, Lease

fn event(c: &mut Check, e: &Event) {
    object_meta(c, e.metadata.as_ref(), true, NameRule::Subdomain);
    let ns = e.metadata.as_ref().map(|m| m.namespace.as_str()).unwrap_or("");
    match &e.involved_object {
        Some(o) if !(o.kind.is_empty() && o.name.is_empty()) => {
            // As Kubernetes: an event about a cluster-scoped object lives in
            // "default"; one about a namespaced object in that namespace.
            let new_style = !e.event_time.is_empty();
            if o.namespace.is_empty() {
                if !(ns.is_empty() || ns == "default" || (new_style && ns == "kube-system")) {
                    c.invalid("involvedObject.namespace", &o.namespace, "does not match event.namespace");
                }
            } else if !new_style && o.namespace != ns {
                c.invalid("involvedObject.namespace", &o.namespace, "does not match event.namespace");
            }
        }
        _ => c.required("involvedObject", "must name the object (kind and name)"),
    }
    c.non_negative("count", e.count.into());
}

fn lease(c: &mut Check, l: &Lease) {
    object_meta(c, l.metadata.as_ref(), true, NameRule::Subdomain);
    let Some(s) = &l.spec else { return };
    if let Some(d) = s.lease_duration_seconds
        && d <= 0
    {
        c.invalid("spec.leaseDurationSeconds", d, "must be greater than 0");
    }
    if let Some(t) = s.lease_transitions {
        c.non_negative("spec.leaseTransitions", t.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;

    // ------------------------------------------------------------ builders

    fn meta(name: &str) -> Option<ObjectMeta> {
        Some(ObjectMeta { name: name.into(), namespace: "default".into(), ..Default::default() })
    }

    fn cluster_meta(name: &str) -> Option<ObjectMeta> {
        Some(ObjectMeta { name: name.into(), ..Default::default() })
    }

    fn ctr(name: &str) -> Container {
        Container { name: name.into(), image: "busybox:1.36".into(), image_pull_policy: "IfNotPresent".into(), ..Default::default() }
    }

    fn port(n: i32) -> ContainerPort {
        ContainerPort { container_port: n, protocol: "TCP".into(), ..Default::default() }
    }

    fn pod_spec() -> PodSpec {
        PodSpec { containers: vec![ctr("web")], restart_policy: "Always".into(), dns_policy: "ClusterFirst".into(), ..Default::default() }
    }

    fn pod_of(spec: PodSpec) -> Pod {
        Pod { metadata: meta("web"), spec: Some(spec), ..Default::default() }
    }

    fn pod_with(f: impl FnOnce(&mut PodSpec)) -> Object {
        let mut s = pod_spec();
        f(&mut s);
        pod_of(s).into_object()
    }

    fn ctr_with(f: impl FnOnce(&mut Container)) -> Object {
        pod_with(|s| f(&mut s.containers[0]))
    }

    fn empty_dir(name: &str) -> Volume {
        Volume { name: name.into(), empty_dir: Some(EmptyDirVolumeSource::default()), ..Default::default() }
    }

    fn mount(name: &str, path: &str) -> VolumeMount {
        VolumeMount { name: name.into(), mount_path: path.into(), ..Default::default() }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn rc_with(f: impl FnOnce(&mut ReplicationControllerSpec)) -> Object {
        let labels = map(&[("app", "web")]);
        let mut spec = ReplicationControllerSpec {
            replicas: Some(2),
            selector: labels.clone(),
            template: Some(PodTemplateSpec { metadata: Some(ObjectMeta { labels, ..Default::default() }), spec: Some(pod_spec()) }),
            ..Default::default()
        };
        f(&mut spec);
        ReplicationController { metadata: meta("web"), spec: Some(spec), ..Default::default() }.into_object()
    }

    fn svc_port(name: &str, p: i32) -> ServicePort {
        ServicePort { name: name.into(), port: p, protocol: "TCP".into(), target_port: p.to_string(), ..Default::default() }
    }

    fn svc_with(f: impl FnOnce(&mut ServiceSpec)) -> Object {
        let mut spec = ServiceSpec {
            r#type: "ClusterIP".into(),
            ports: vec![svc_port("", 80)],
            selector: map(&[("app", "web")]),
            session_affinity: "None".into(),
            ..Default::default()
        };
        f(&mut spec);
        Service { metadata: meta("web"), spec: Some(spec), ..Default::default() }.into_object()
    }

    fn secret_with(f: impl FnOnce(&mut Secret)) -> Object {
        let mut s = Secret { metadata: meta("creds"), r#type: "Opaque".into(), ..Default::default() };
        s.data.insert("password".into(), b"hunter2".to_vec());
        f(&mut s);
        s.into_object()
    }

    fn cm_with(f: impl FnOnce(&mut ConfigMap)) -> Object {
        let mut m = ConfigMap { metadata: meta("config"), data: map(&[("app.properties", "a=b")]), ..Default::default() };
        f(&mut m);
        m.into_object()
    }

    fn node_with(f: impl FnOnce(&mut Node)) -> Object {
        let mut n = Node {
            metadata: cluster_meta("node-1.example.com"),
            spec: Some(NodeSpec { pod_cidr: "172.30.1.0/24".into(), ..Default::default() }),
            status: Some(NodeStatus { capacity: map(&[("cpu", "4"), ("memory", "8Gi"), ("pods", "110")]), ..Default::default() }),
            ..Default::default()
        };
        f(&mut n);
        n.into_object()
    }

    fn endpoints_with(f: impl FnOnce(&mut EndpointSubset)) -> Object {
        let mut ss = EndpointSubset {
            addresses: vec![EndpointAddress { ip: "172.30.0.5".into(), ..Default::default() }],
            ports: vec![EndpointPort { port: 8080, protocol: "TCP".into(), ..Default::default() }],
            ..Default::default()
        };
        f(&mut ss);
        Endpoints { metadata: meta("web"), subsets: vec![ss], ..Default::default() }.into_object()
    }

    fn quota(hard: &[(&str, &str)]) -> Object {
        ResourceQuota {
            metadata: meta("quota"),
            spec: Some(ResourceQuotaSpec { hard: map(hard), ..Default::default() }),
            ..Default::default()
        }
        .into_object()
    }

    fn limits(item: LimitRangeItem) -> Object {
        LimitRange { metadata: meta("limits"), spec: Some(LimitRangeSpec { limits: vec![item] }), ..Default::default() }.into_object()
    }

    fn event_with(f: impl FnOnce(&mut Event)) -> Object {
        let mut e = Event {
            metadata: meta("web.17a8b"),
            involved_object: Some(ObjectReference {
                kind: "Pod".into(),
                name: "web".into(),
                namespace: "default".into(),
                ..Default::default()
            }),
            reason: "Scheduled".into(),
            message: "Successfully assigned default/web to node-1".into(),
            r#type: "Normal".into(),
            count: 1,
            ..Default::default()
        };
        f(&mut e);
        e.into_object()
    }

    // ----------------------------------------------------------- assertions

    fn errors(o: &Object) -> Vec<FieldError> {
        validate(o).err().map(|e| e.0).unwrap_or_default()
    }

    fn update_errors(old: &Object, new: &Object) -> Vec<FieldError> {
        validate_update(old, new).err().map(|e| e.0).unwrap_or_default()
    }

    #[track_caller]
    fn assert_valid(o: &Object) {
        if let Err(e) = validate(o) {
            panic!("expected valid, got: {e}");
        }
    }

    /// The message of the first error at `field`, failing if there is none.
    #[track_caller]
    fn error_at(errs: &[FieldError], field: &str) -> String {
        match errs.iter().find(|e| e.field == field) {
            Some(e) => e.to_string(),
            None => panic!("expected an error at {field}, got {:?}", errs.iter().map(ToString::to_string).collect::<Vec<_>>()),
        }
    }

    #[track_caller]
    fn assert_error_at(o: &Object, field: &str) -> String {
        error_at(&errors(o), field)
    }

    // -------------------------------------------------------------- display

    #[test]
    fn should_print_field_errors_like_kubernetes() {
        let e = |kind, detail: &str| FieldError { field: "spec.x".into(), kind, detail: detail.into() };
        assert_eq!(e(ErrorKind::Required, "").to_string(), "spec.x: Required value");
        assert_eq!(
            e(ErrorKind::Required, "must specify a handler type").to_string(),
            "spec.x: Required value: must specify a handler type"
        );
        assert_eq!(e(ErrorKind::Invalid("\"Web\"".into()), "bad").to_string(), "spec.x: Invalid value: \"Web\": bad");
        assert_eq!(
            e(ErrorKind::Invalid("-1".into()), "must be greater than or equal to 0").to_string(),
            "spec.x: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            e(ErrorKind::NotSupported(vec!["Always".into(), "Never".into()]), "\"Sometimes\"").to_string(),
            "spec.x: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\""
        );
        assert_eq!(e(ErrorKind::Duplicate("\"web\"".into()), "").to_string(), "spec.x: Duplicate value: \"web\"");
        assert_eq!(e(ErrorKind::Forbidden, "not allowed").to_string(), "spec.x: Forbidden: not allowed");
        assert_eq!(e(ErrorKind::TooLong, "must have at most 5 bytes").to_string(), "spec.x: Too long: must have at most 5 bytes");
        let errs = Errors(vec![e(ErrorKind::Required, ""), e(ErrorKind::Forbidden, "")]);
        assert_eq!(errs.to_string(), "spec.x: Required value, spec.x: Forbidden");
        assert_eq!(errs.fields(), vec!["spec.x", "spec.x"]);
    }

    #[test]
    fn should_refuse_an_object_without_a_kind() {
        assert_error_at(&Object::default(), "kind");
    }

    // ------------------------------------------------------------- metadata

    #[test]
    fn should_require_a_name() {
        let mut p = pod_of(pod_spec());
        p.metadata = Some(ObjectMeta { namespace: "default".into(), ..Default::default() });
        assert_eq!(assert_error_at(&p.into_object(), "metadata.name"), "metadata.name: Required value: name or generateName is required");
    }

    #[test]
    fn should_refuse_uppercase_names_with_kubernetes_message() {
        let mut p = pod_of(pod_spec());
        p.metadata = meta("Web");
        let msg = assert_error_at(&p.into_object(), "metadata.name");
        assert!(msg.starts_with("metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of"), "{msg}");
    }

    #[test]
    fn should_check_names_by_the_rule_of_each_kind() {
        // Namespace: DNS-1123 label, no dots.
        let ns = |name: &str| Namespace { metadata: cluster_meta(name), ..Default::default() }.into_object();
        assert_valid(&ns("dev-1"));
        assert!(assert_error_at(&ns("dev.example"), "metadata.name").contains("must not contain dots"));
        // Service: DNS-1035 label, starts with a letter.
        let svc = |name: &str| {
            let mut o = svc_with(|_| {});
            if let Some(m) = o.metadata_mut() {
                m.name = name.into();
            }
            o
        };
        assert_valid(&svc("web-1"));
        assert!(assert_error_at(&svc("1web"), "metadata.name").contains("DNS-1035 label"));
        assert_error_at(&svc("web.example"), "metadata.name");
        // Node, Secret, ConfigMap, Pod: subdomains, dots allowed.
        assert_valid(&node_with(|_| {}));
        assert_valid(&cm_with(|m| m.metadata = meta("app.config")));
        assert_error_at(&cm_with(|m| m.metadata = meta("app_config")), "metadata.name");
        assert_error_at(&node_with(|n| n.metadata = cluster_meta(&"a".repeat(254))), "metadata.name");
    }

    #[test]
    fn should_check_generate_name_as_a_prefix() {
        let mut p = pod_of(pod_spec());
        p.metadata =
            Some(ObjectMeta { name: "web-x7k2p".into(), generate_name: "web-".into(), namespace: "default".into(), ..Default::default() });
        assert_valid(&p.clone().into_object());
        p.metadata =
            Some(ObjectMeta { name: "web-x7k2p".into(), generate_name: "Web-".into(), namespace: "default".into(), ..Default::default() });
        assert_error_at(&p.into_object(), "metadata.generateName");
    }

    #[test]
    fn should_require_a_namespace_for_namespaced_kinds_only() {
        let mut p = pod_of(pod_spec());
        p.metadata = cluster_meta("web");
        assert_eq!(assert_error_at(&p.clone().into_object(), "metadata.namespace"), "metadata.namespace: Required value");
        p.metadata = Some(ObjectMeta { name: "web".into(), namespace: "Prod".into(), ..Default::default() });
        assert_error_at(&p.into_object(), "metadata.namespace");
        let n = node_with(|n| n.metadata = meta("node-1"));
        assert_eq!(assert_error_at(&n, "metadata.namespace"), "metadata.namespace: Forbidden: not allowed on this type");
    }

    #[test]
    fn should_check_label_keys_and_values() {
        let mut p = pod_of(pod_spec());
        let m = p.metadata.get_or_insert_with(Default::default);
        m.labels = map(&[("app.kubernetes.io/name", "web"), ("tier", "")]);
        assert_valid(&p.clone().into_object());
        let m = p.metadata.get_or_insert_with(Default::default);
        m.labels = map(&[("bad key", "web")]);
        assert!(assert_error_at(&p.clone().into_object(), "metadata.labels").starts_with("metadata.labels: Invalid value: \"bad key\""));
        let m = p.metadata.get_or_insert_with(Default::default);
        m.labels = map(&[("app", "-web-")]);
        assert!(assert_error_at(&p.into_object(), "metadata.labels").contains("a valid label must be an empty string"));
    }

    #[test]
    fn should_check_annotation_keys_and_total_size() {
        let mut p = pod_of(pod_spec());
        let m = p.metadata.get_or_insert_with(Default::default);
        m.annotations = map(&[("Example.com/Owner", "any value at all: ✓")]);
        assert_valid(&p.clone().into_object());
        let m = p.metadata.get_or_insert_with(Default::default);
        m.annotations = map(&[("a/b/c", "x")]);
        assert_error_at(&p.clone().into_object(), "metadata.annotations");
        let m = p.metadata.get_or_insert_with(Default::default);
        m.annotations = BTreeMap::from([("big".to_string(), "x".repeat(MAX_ANNOTATIONS_SIZE))]);
        assert_eq!(
            assert_error_at(&p.into_object(), "metadata.annotations"),
            "metadata.annotations: Too long: must have at most 262144 bytes"
        );
    }

    #[test]
    fn should_require_owner_reference_fields_and_one_controller() {
        let mut p = pod_of(pod_spec());
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "ReplicationController".into(),
            name: "web".into(),
            uid: "u1".into(),
            controller: Some(true),
            ..Default::default()
        };
        p.metadata.get_or_insert_with(Default::default).owner_references = vec![owner.clone()];
        assert_valid(&p.clone().into_object());
        p.metadata.get_or_insert_with(Default::default).owner_references = vec![OwnerReference { uid: String::new(), ..owner.clone() }];
        assert_eq!(
            assert_error_at(&p.clone().into_object(), "metadata.ownerReferences[0].uid"),
            "metadata.ownerReferences[0].uid: Required value"
        );
        p.metadata.get_or_insert_with(Default::default).owner_references =
            vec![owner.clone(), OwnerReference { name: "other".into(), ..owner }];
        assert_error_at(&p.into_object(), "metadata.ownerReferences");
    }

    #[test]
    fn should_refuse_bad_or_conflicting_finalizers() {
        let mut p = pod_of(pod_spec());
        p.metadata.get_or_insert_with(Default::default).finalizers = vec!["example.com/cleanup".into(), "orphan".into()];
        assert_valid(&p.clone().into_object());
        p.metadata.get_or_insert_with(Default::default).finalizers = vec!["bad finalizer".into()];
        assert_error_at(&p.clone().into_object(), "metadata.finalizers[0]");
        p.metadata.get_or_insert_with(Default::default).finalizers = vec!["orphan".into(), "foregroundDeletion".into()];
        assert_error_at(&p.into_object(), "metadata.finalizers");
    }

    // ------------------------------------------------------------------ Pod

    #[test]
    fn should_accept_a_pod_using_every_feature() {
        let o = pod_with(|s| {
            s.volumes = vec![
                empty_dir("scratch"),
                Volume {
                    name: "certs".into(),
                    secret: Some(SecretVolumeSource { secret_name: "tls".into(), default_mode: Some(0o400), ..Default::default() }),
                    ..Default::default()
                },
                Volume {
                    name: "conf".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: "app".into(),
                        items: vec![KeyToPath { key: "app.properties".into(), path: "conf/app.properties".into(), mode: None }],
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                Volume {
                    name: "logs".into(),
                    host_path: Some(HostPathVolumeSource { path: "/var/log".into(), r#type: "Directory".into() }),
                    ..Default::default()
                },
                Volume {
                    name: "db".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource { claim_name: "db".into(), read_only: None }),
                    ..Default::default()
                },
            ];
            s.init_containers = vec![ctr("setup")];
            s.init_containers[0].volume_mounts = vec![mount("scratch", "/scratch")];
            let c = &mut s.containers[0];
            c.ports = vec![
                ContainerPort { name: "http".into(), host_port: 8080, ..port(80) },
                ContainerPort { name: "dns".into(), protocol: "UDP".into(), ..port(53) },
            ];
            c.env = vec![
                EnvVar { name: "MODE".into(), value: "prod".into(), ..Default::default() },
                EnvVar {
                    name: "POD_NAME".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { api_version: "v1".into(), field_path: "metadata.name".into() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "APP".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector { api_version: String::new(), field_path: "metadata.labels['app']".into() }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "CPU".into(),
                    value_from: Some(EnvVarSource {
                        resource_field_ref: Some(ResourceFieldSelector {
                            resource: "limits.cpu".into(),
                            divisor: "1m".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "PASSWORD".into(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector { name: "creds".into(), key: "password".into(), optional: None }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ];
            c.env_from = vec![EnvFromSource {
                prefix: "CFG_".into(),
                config_map_ref: Some(ConfigMapEnvSource { name: "app".into(), optional: None }),
                secret_ref: None,
            }];
            c.resources = Some(ResourceRequirements {
                limits: map(&[("cpu", "1"), ("memory", "128Mi"), ("example.com/gpu", "1")]),
                requests: map(&[("cpu", "500m"), ("memory", "64Mi"), ("example.com/gpu", "1"), ("hugepages-2Mi", "0")]),
            });
            c.volume_mounts = vec![
                mount("scratch", "/scratch"),
                mount("certs", "/etc/tls"),
                mount("conf", "/etc/app"),
                mount("logs", "/var/log/app"),
                mount("db", "/data"),
            ];
            c.liveness_probe = Some(Probe {
                http_get: Some(HttpGetAction { path: "/healthz".into(), port: "http".into(), scheme: "HTTP".into(), ..Default::default() }),
                initial_delay_seconds: Some(5),
                period_seconds: Some(10),
                success_threshold: Some(1),
                ..Default::default()
            });
            c.readiness_probe = Some(Probe {
                tcp_socket: Some(TcpSocketAction { port: "80".into(), host: String::new() }),
                success_threshold: Some(3),
                ..Default::default()
            });
            c.startup_probe =
                Some(Probe { exec: Some(ExecAction { command: vec!["true".into()] }), failure_threshold: Some(30), ..Default::default() });
            c.lifecycle = Some(Lifecycle {
                pre_stop: Some(LifecycleHandler {
                    exec: Some(ExecAction { command: vec!["sleep".into(), "5".into()] }),
                    ..Default::default()
                }),
                post_start: None,
            });
            c.security_context = Some(SecurityContext {
                capabilities: Some(Capabilities { add: vec!["NET_ADMIN".into()], drop: vec!["ALL".into()] }),
                run_as_user: Some(1000),
                ..Default::default()
            });
            s.containers.push(Container { ports: vec![ContainerPort { host_port: 8080, ..port(8080) }], ..ctr("sidecar") });
            s.containers[1].ports[0].protocol = "UDP".into();
            s.node_selector = map(&[("kubernetes.io/os", "linux")]);
            s.termination_grace_period_seconds = Some(0);
            s.active_deadline_seconds = Some(600);
            s.service_account_name = "default".into();
            s.tolerations = vec![
                Toleration {
                    key: "dedicated".into(),
                    operator: "Equal".into(),
                    value: "web".into(),
                    effect: "NoSchedule".into(),
                    toleration_seconds: None,
                },
                Toleration { operator: "Exists".into(), ..Default::default() },
                Toleration {
                    key: "node.kubernetes.io/unreachable".into(),
                    operator: "Exists".into(),
                    effect: "NoExecute".into(),
                    toleration_seconds: Some(300),
                    ..Default::default()
                },
            ];
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: vec![
                                NodeSelectorRequirement { key: "zone".into(), operator: "In".into(), values: vec!["a".into(), "b".into()] },
                                NodeSelectorRequirement { key: "gpu".into(), operator: "Exists".into(), values: vec![] },
                                NodeSelectorRequirement { key: "cores".into(), operator: "Gt".into(), values: vec!["4".into()] },
                            ],
                            match_fields: vec![NodeSelectorRequirement {
                                key: "metadata.name".into(),
                                operator: "In".into(),
                                values: vec!["node-1".into()],
                            }],
                        }],
                    }),
                    preferred_during_scheduling_ignored_during_execution: vec![PreferredSchedulingTerm {
                        weight: 50,
                        preference: Some(NodeSelectorTerm {
                            match_expressions: vec![NodeSelectorRequirement {
                                key: "ssd".into(),
                                operator: "DoesNotExist".into(),
                                values: vec![],
                            }],
                            match_fields: vec![],
                        }),
                    }],
                }),
            });
        });
        assert_valid(&o);
    }

    #[test]
    fn should_require_at_least_one_container() {
        assert_eq!(assert_error_at(&pod_with(|s| s.containers.clear()), "spec.containers"), "spec.containers: Required value");
    }

    #[test]
    fn should_refuse_container_names_repeated_across_init_and_app_containers() {
        let o = pod_with(|s| s.init_containers = vec![ctr("web")]);
        assert_eq!(assert_error_at(&o, "spec.containers[0].name"), "spec.containers[0].name: Duplicate value: \"web\"");
        let o = pod_with(|s| s.containers.push(ctr("web")));
        assert_eq!(assert_error_at(&o, "spec.containers[1].name"), "spec.containers[1].name: Duplicate value: \"web\"");
        assert_error_at(&ctr_with(|c| c.name = "Web_1".into()), "spec.containers[0].name");
        assert_error_at(&ctr_with(|c| c.name.clear()), "spec.containers[0].name");
    }

    #[test]
    fn should_require_an_image_without_surrounding_blanks() {
        assert_eq!(assert_error_at(&ctr_with(|c| c.image.clear()), "spec.containers[0].image"), "spec.containers[0].image: Required value");
        assert_error_at(&ctr_with(|c| c.image = " nginx".into()), "spec.containers[0].image");
    }

    #[test]
    fn should_refuse_unknown_restart_and_pull_policies() {
        let o = pod_with(|s| s.restart_policy = "Sometimes".into());
        assert_eq!(
            assert_error_at(&o, "spec.restartPolicy"),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
        assert_eq!(assert_error_at(&pod_with(|s| s.restart_policy.clear()), "spec.restartPolicy"), "spec.restartPolicy: Required value");
        assert_error_at(&ctr_with(|c| c.image_pull_policy = "Sometimes".into()), "spec.containers[0].imagePullPolicy");
        assert_error_at(&ctr_with(|c| c.image_pull_policy.clear()), "spec.containers[0].imagePullPolicy");
    }

    #[test]
    fn should_check_container_ports() {
        assert_eq!(
            assert_error_at(&ctr_with(|c| c.ports = vec![port(0)]), "spec.containers[0].ports[0].containerPort"),
            "spec.containers[0].ports[0].containerPort: Required value"
        );
        assert_eq!(
            assert_error_at(&ctr_with(|c| c.ports = vec![port(70000)]), "spec.containers[0].ports[0].containerPort"),
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_error_at(&ctr_with(|c| c.ports = vec![ContainerPort { host_port: -1, ..port(80) }]), "spec.containers[0].ports[0].hostPort");
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { protocol: "HTTP".into(), ..port(80) }]),
            "spec.containers[0].ports[0].protocol",
        );
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { protocol: String::new(), ..port(80) }]),
            "spec.containers[0].ports[0].protocol",
        );
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { name: "HTTP".into(), ..port(80) }]),
            "spec.containers[0].ports[0].name",
        );
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { name: "a-very-long-port-name".into(), ..port(80) }]),
            "spec.containers[0].ports[0].name",
        );
        assert_error_at(
            &ctr_with(|c| c.ports = vec![ContainerPort { host_ip: "10.0.0.256".into(), ..port(80) }]),
            "spec.containers[0].ports[0].hostIP",
        );
        let dup = ctr_with(|c| {
            c.ports = vec![ContainerPort { name: "http".into(), ..port(80) }, ContainerPort { name: "http".into(), ..port(81) }]
        });
        assert_eq!(
            assert_error_at(&dup, "spec.containers[0].ports[1].name"),
            "spec.containers[0].ports[1].name: Duplicate value: \"http\""
        );
    }

    #[test]
    fn should_refuse_a_host_port_used_twice_in_a_pod() {
        let o = pod_with(|s| {
            s.containers[0].ports = vec![ContainerPort { host_port: 8080, ..port(80) }];
            s.containers.push(Container { ports: vec![ContainerPort { host_port: 8080, ..port(81) }], ..ctr("b") });
        });
        assert_eq!(
            assert_error_at(&o, "spec.containers[1].ports[0].hostPort"),
            "spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//8080\""
        );
    }

    #[test]
    fn should_require_host_port_to_match_container_port_on_host_network() {
        let o = pod_with(|s| {
            s.host_network = Some(true);
            s.containers[0].ports = vec![ContainerPort { host_port: 8080, ..port(80) }];
        });
        assert_error_at(&o, "spec.containers[0].ports[0].containerPort");
    }

    fn env(name: &str, value: &str, from: Option<EnvVarSource>) -> Object {
        ctr_with(|c| c.env = vec![EnvVar { name: name.into(), value: value.into(), value_from: from }])
    }

    fn field_ref(path: &str) -> Option<EnvVarSource> {
        Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: "v1".into(), field_path: path.into() }),
            ..Default::default()
        })
    }

    #[test]
    fn should_check_env_var_names() {
        assert_valid(&env("my.env-name", "x", None));
        assert_error_at(&env("1BAD", "x", None), "spec.containers[0].env[0].name");
        assert_error_at(&env("", "x", None), "spec.containers[0].env[0].name");
        assert_error_at(
            &ctr_with(|c| c.env_from = vec![EnvFromSource { prefix: "1X".into(), ..Default::default() }]),
            "spec.containers[0].envFrom[0].prefix",
        );
        assert_error_at(&ctr_with(|c| c.env_from = vec![EnvFromSource::default()]), "spec.containers[0].envFrom[0]");
    }

    #[test]
    fn should_require_exactly_one_env_value_source() {
        let p = "spec.containers[0].env[0].valueFrom";
        assert!(assert_error_at(&env("A", "x", field_ref("metadata.name")), p).contains("may not be specified when `value` is not empty"));
        assert!(assert_error_at(&env("A", "", Some(EnvVarSource::default())), p).contains("must specify one of"));
        let two = Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: "v1".into(), field_path: "metadata.name".into() }),
            config_map_key_ref: Some(ConfigMapKeySelector { name: "c".into(), key: "k".into(), optional: None }),
            ..Default::default()
        });
        assert!(assert_error_at(&env("A", "", two), p).contains("may not have more than one field"));
    }

    #[test]
    fn should_check_field_ref_paths() {
        for ok in ["metadata.namespace", "status.podIP", "spec.nodeName", "metadata.annotations['example.com/x']"] {
            assert_valid(&env("A", "", field_ref(ok)));
        }
        let msg = assert_error_at(&env("A", "", field_ref("spec.containers")), "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath");
        assert!(msg.starts_with("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.containers\": supported values: \"metadata.name\""), "{msg}");
        assert_error_at(&env("A", "", field_ref("metadata.labels['bad key']")), "spec.containers[0].env[0].valueFrom.fieldRef");
        assert_error_at(&env("A", "", field_ref("spec.nodeName['x']")), "spec.containers[0].env[0].valueFrom.fieldRef");
        assert_error_at(&env("A", "", field_ref("")), "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath");
        let v2 = Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { api_version: "v2".into(), field_path: "metadata.name".into() }),
            ..Default::default()
        });
        assert_error_at(&env("A", "", v2), "spec.containers[0].env[0].valueFrom.fieldRef.apiVersion");
    }

    #[test]
    fn should_check_resource_and_key_refs_in_env() {
        let res = |r: &str, d: &str| {
            Some(EnvVarSource {
                resource_field_ref: Some(ResourceFieldSelector { resource: r.into(), divisor: d.into(), ..Default::default() }),
                ..Default::default()
            })
        };
        assert_valid(&env("M", "", res("requests.memory", "1Mi")));
        assert_error_at(&env("M", "", res("limits.gpu", "")), "spec.containers[0].env[0].valueFrom.resourceFieldRef.resource");
        assert_error_at(&env("M", "", res("limits.cpu", "2")), "spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor");
        let cm = |name: &str, key: &str| {
            Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector { name: name.into(), key: key.into(), optional: None }),
                ..Default::default()
            })
        };
        assert_error_at(&env("A", "", cm("app", "")), "spec.containers[0].env[0].valueFrom.configMapKeyRef.key");
        assert_error_at(&env("A", "", cm("app", "bad/key")), "spec.containers[0].env[0].valueFrom.configMapKeyRef.key");
        assert_error_at(&env("A", "", cm("", "k")), "spec.containers[0].env[0].valueFrom.configMapKeyRef.name");
    }

    fn resources(limits: &[(&str, &str)], requests: &[(&str, &str)]) -> Object {
        ctr_with(|c| c.resources = Some(ResourceRequirements { limits: map(limits), requests: map(requests) }))
    }

    #[test]
    fn should_check_resource_names_and_quantities() {
        assert_valid(&resources(&[("cpu", "2"), ("ephemeral-storage", "1Gi")], &[("cpu", "0.5")]));
        assert!(
            assert_error_at(&resources(&[("gpu", "1")], &[]), "spec.containers[0].resources.limits[gpu]")
                .contains("must be a standard resource for containers")
        );
        assert_error_at(&resources(&[("cpu", "lots")], &[]), "spec.containers[0].resources.limits[cpu]");
        assert_eq!(
            assert_error_at(&resources(&[], &[("memory", "-1Mi")]), "spec.containers[0].resources.requests[memory]"),
            "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Mi\": must be greater than or equal to 0"
        );
        assert!(
            assert_error_at(&resources(&[("example.com/gpu", "500m")], &[]), "spec.containers[0].resources.limits[example.com/gpu]")
                .contains("must be an integer")
        );
    }

    #[test]
    fn should_refuse_requests_above_limits() {
        assert_eq!(
            assert_error_at(&resources(&[("cpu", "500m")], &[("cpu", "1")]), "spec.containers[0].resources.requests[cpu]"),
            "spec.containers[0].resources.requests[cpu]: Invalid value: \"1\": must be less than or equal to cpu limit of 500m"
        );
        assert_valid(&resources(&[("memory", "1Gi")], &[("memory", "1024Mi")]));
        assert_error_at(
            &resources(&[("example.com/gpu", "2")], &[("example.com/gpu", "1")]),
            "spec.containers[0].resources.requests[example.com/gpu]",
        );
        assert_error_at(&resources(&[], &[("example.com/gpu", "1")]), "spec.containers[0].resources.limits[example.com/gpu]");
    }

    #[test]
    fn should_require_unique_volume_names_with_one_source_each() {
        let o = pod_with(|s| s.volumes = vec![empty_dir("data"), empty_dir("data")]);
        assert_eq!(assert_error_at(&o, "spec.volumes[1].name"), "spec.volumes[1].name: Duplicate value: \"data\"");
        assert_error_at(&pod_with(|s| s.volumes = vec![empty_dir("Data")]), "spec.volumes[0].name");
        let none = pod_with(|s| s.volumes = vec![Volume { name: "data".into(), ..Default::default() }]);
        assert_eq!(assert_error_at(&none, "spec.volumes[0]"), "spec.volumes[0]: Required value: must specify a volume type");
        let two = pod_with(|s| {
            s.volumes =
                vec![Volume { host_path: Some(HostPathVolumeSource { path: "/tmp".into(), ..Default::default() }), ..empty_dir("data") }]
        });
        assert_eq!(
            assert_error_at(&two, "spec.volumes[0].emptyDir"),
            "spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"
        );
    }

    #[test]
    fn should_check_volume_sources() {
        let vol = |v: Volume| pod_with(|s| s.volumes = vec![v]);
        let base = Volume { name: "v".into(), ..Default::default() };
        let host =
            |p: &str, t: &str| vol(Volume { host_path: Some(HostPathVolumeSource { path: p.into(), r#type: t.into() }), ..base.clone() });
        assert_error_at(&host("", ""), "spec.volumes[0].hostPath.path");
        assert!(assert_error_at(&host("var/log", ""), "spec.volumes[0].hostPath.path").contains("must be an absolute path"));
        assert_error_at(&host("/var/../etc", ""), "spec.volumes[0].hostPath.path");
        assert_error_at(&host("/var", "Folder"), "spec.volumes[0].hostPath.type");
        assert_error_at(&vol(Volume { secret: Some(SecretVolumeSource::default()), ..base.clone() }), "spec.volumes[0].secret.secretName");
        assert_error_at(
            &vol(Volume {
                secret: Some(SecretVolumeSource { secret_name: "s".into(), default_mode: Some(0o1000), ..Default::default() }),
                ..base.clone()
            }),
            "spec.volumes[0].secret.defaultMode",
        );
        assert_error_at(
            &vol(Volume { config_map: Some(ConfigMapVolumeSource::default()), ..base.clone() }),
            "spec.volumes[0].configMap.name",
        );
        let item = |p: &str| {
            vol(Volume {
                config_map: Some(ConfigMapVolumeSource {
                    name: "c".into(),
                    items: vec![KeyToPath { key: "k".into(), path: p.into(), mode: None }],
                    ..Default::default()
                }),
                ..base.clone()
            })
        };
        assert_error_at(&item("/abs"), "spec.volumes[0].configMap.items[0].path");
        assert_error_at(&item("../up"), "spec.volumes[0].configMap.items[0].path");
        assert_error_at(
            &vol(Volume { persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource::default()), ..base.clone() }),
            "spec.volumes[0].persistentVolumeClaim.claimName",
        );
        assert_error_at(
            &vol(Volume { empty_dir: Some(EmptyDirVolumeSource { medium: String::new(), size_limit: "-1Gi".into() }), ..base.clone() }),
            "spec.volumes[0].emptyDir.sizeLimit",
        );
        assert_error_at(
            &vol(Volume { empty_dir: Some(EmptyDirVolumeSource { medium: "Disk".into(), size_limit: String::new() }), ..base }),
            "spec.volumes[0].emptyDir.medium",
        );
    }

    #[test]
    fn should_require_mounts_of_defined_volumes_at_unique_absolute_paths() {
        let o = |mounts: Vec<VolumeMount>| {
            pod_with(|s| {
                s.volumes = vec![empty_dir("data")];
                s.containers[0].volume_mounts = mounts;
            })
        };
        assert_valid(&o(vec![mount("data", "/data")]));
        assert!(assert_error_at(&o(vec![mount("cache", "/cache")]), "spec.containers[0].volumeMounts[0].name").contains("spec.volumes"));
        assert_error_at(&o(vec![mount("data", "")]), "spec.containers[0].volumeMounts[0].mountPath");
        assert_error_at(&o(vec![mount("data", "data")]), "spec.containers[0].volumeMounts[0].mountPath");
        assert!(
            assert_error_at(&o(vec![mount("data", "/a"), mount("data", "/a")]), "spec.containers[0].volumeMounts[1].mountPath")
                .contains("must be unique")
        );
        assert_error_at(
            &o(vec![VolumeMount { sub_path: "../x".into(), ..mount("data", "/a") }]),
            "spec.containers[0].volumeMounts[0].subPath",
        );
        assert_error_at(
            &o(vec![VolumeMount { mount_propagation: "Bidirectional".into(), ..mount("data", "/a") }]),
            "spec.containers[0].volumeMounts[0].mountPropagation",
        );
    }

    fn with_probe(p: Probe) -> Object {
        ctr_with(|c| c.liveness_probe = Some(p))
    }

    fn http(port: &str) -> Option<HttpGetAction> {
        Some(HttpGetAction { path: "/".into(), port: port.into(), ..Default::default() })
    }

    #[test]
    fn should_require_exactly_one_probe_handler() {
        assert_eq!(
            assert_error_at(&with_probe(Probe::default()), "spec.containers[0].livenessProbe"),
            "spec.containers[0].livenessProbe: Required value: must specify a handler type"
        );
        let two = Probe {
            http_get: http("80"),
            tcp_socket: Some(TcpSocketAction { port: "80".into(), host: String::new() }),
            ..Default::default()
        };
        assert_error_at(&with_probe(two), "spec.containers[0].livenessProbe.tcpSocket");
        assert_error_at(
            &with_probe(Probe { exec: Some(ExecAction::default()), ..Default::default() }),
            "spec.containers[0].livenessProbe.exec.command",
        );
    }

    #[test]
    fn should_check_probe_numbers_and_ports() {
        let p = |f: fn(&mut Probe)| {
            let mut pr = Probe { http_get: http("8080"), ..Default::default() };
            f(&mut pr);
            with_probe(pr)
        };
        assert_error_at(&p(|x| x.initial_delay_seconds = Some(-1)), "spec.containers[0].livenessProbe.initialDelaySeconds");
        assert_error_at(&p(|x| x.period_seconds = Some(0)), "spec.containers[0].livenessProbe.periodSeconds");
        assert_error_at(&p(|x| x.timeout_seconds = Some(0)), "spec.containers[0].livenessProbe.timeoutSeconds");
        assert_error_at(&p(|x| x.failure_threshold = Some(0)), "spec.containers[0].livenessProbe.failureThreshold");
        assert_eq!(
            assert_error_at(&p(|x| x.success_threshold = Some(2)), "spec.containers[0].livenessProbe.successThreshold"),
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"
        );
        assert_valid(&ctr_with(|c| {
            c.readiness_probe = Some(Probe { http_get: http("80"), success_threshold: Some(2), ..Default::default() })
        }));
        assert_error_at(
            &ctr_with(|c| {
                c.readiness_probe = Some(Probe { http_get: http("80"), termination_grace_period_seconds: Some(5), ..Default::default() })
            }),
            "spec.containers[0].readinessProbe.terminationGracePeriodSeconds",
        );
        assert_error_at(&with_probe(Probe { http_get: http("0"), ..Default::default() }), "spec.containers[0].livenessProbe.httpGet.port");
        assert_error_at(
            &with_probe(Probe { http_get: http("70000"), ..Default::default() }),
            "spec.containers[0].livenessProbe.httpGet.port",
        );
        assert_error_at(
            &with_probe(Probe { http_get: http("Web_Port"), ..Default::default() }),
            "spec.containers[0].livenessProbe.httpGet.port",
        );
        assert_error_at(
            &with_probe(Probe { tcp_socket: Some(TcpSocketAction::default()), ..Default::default() }),
            "spec.containers[0].livenessProbe.tcpSocket.port",
        );
        let bad_scheme =
            Probe { http_get: Some(HttpGetAction { port: "80".into(), scheme: "FTP".into(), ..Default::default() }), ..Default::default() };
        assert_error_at(&with_probe(bad_scheme), "spec.containers[0].livenessProbe.httpGet.scheme");
    }

    #[test]
    fn should_forbid_probes_and_lifecycle_on_init_containers() {
        let o = pod_with(|s| {
            s.init_containers =
                vec![Container { liveness_probe: Some(Probe { http_get: http("80"), ..Default::default() }), ..ctr("init") }]
        });
        assert_error_at(&o, "spec.initContainers[0].livenessProbe");
        let o = pod_with(|s| s.init_containers = vec![Container { lifecycle: Some(Lifecycle::default()), ..ctr("init") }]);
        assert_error_at(&o, "spec.initContainers[0].lifecycle");
    }

    #[test]
    fn should_check_lifecycle_handlers() {
        let o = ctr_with(|c| c.lifecycle = Some(Lifecycle { post_start: Some(LifecycleHandler::default()), pre_stop: None }));
        assert_error_at(&o, "spec.containers[0].lifecycle.postStart");
    }

    fn toleration(key: &str, op: &str, value: &str, effect: &str) -> Object {
        pod_with(|s| {
            s.tolerations = vec![Toleration {
                key: key.into(),
                operator: op.into(),
                value: value.into(),
                effect: effect.into(),
                toleration_seconds: None,
            }]
        })
    }

    #[test]
    fn should_check_tolerations() {
        assert_valid(&toleration("k", "", "v", ""));
        assert_valid(&toleration("k", "Exists", "", "PreferNoSchedule"));
        assert!(
            assert_error_at(&toleration("k", "Exists", "v", ""), "spec.tolerations[0].operator")
                .contains("value must be empty when `operator` is 'Exists'")
        );
        assert_error_at(&toleration("k", "In", "v", ""), "spec.tolerations[0].operator");
        assert_error_at(&toleration("", "Equal", "v", ""), "spec.tolerations[0].operator");
        assert_error_at(&toleration("k", "Equal", "v", "NoRun"), "spec.tolerations[0].effect");
        assert_error_at(&toleration("bad key", "Exists", "", ""), "spec.tolerations[0].key");
        let seconds = pod_with(|s| {
            s.tolerations = vec![Toleration {
                key: "k".into(),
                operator: "Exists".into(),
                effect: "NoSchedule".into(),
                toleration_seconds: Some(5),
                ..Default::default()
            }]
        });
        assert_error_at(&seconds, "spec.tolerations[0].effect");
    }

    fn node_expr(op: &str, values: &[&str]) -> Object {
        pod_with(|s| {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: vec![NodeSelectorRequirement {
                                key: "zone".into(),
                                operator: op.into(),
                                values: values.iter().map(|v| v.to_string()).collect(),
                            }],
                            match_fields: vec![],
                        }],
                    }),
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
            })
        })
    }

    #[test]
    fn should_check_node_affinity_operators_and_values() {
        let p = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]";
        assert_valid(&node_expr("NotIn", &["a"]));
        assert_valid(&node_expr("Lt", &["10"]));
        assert_error_at(&node_expr("In", &[]), &format!("{p}.values"));
        assert_error_at(&node_expr("Exists", &["a"]), &format!("{p}.values"));
        assert_error_at(&node_expr("Gt", &["1", "2"]), &format!("{p}.values"));
        assert_error_at(&node_expr("Gt", &["many"]), &format!("{p}.values[0]"));
        assert_eq!(
            assert_error_at(&node_expr("Near", &["a"]), &format!("{p}.operator")),
            format!("{p}.operator: Invalid value: \"Near\": not a valid selector operator")
        );
        let empty = pod_with(|s| {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector::default()),
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
            })
        });
        assert_error_at(&empty, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
        let weight = pod_with(|s| {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: None,
                    preferred_during_scheduling_ignored_during_execution: vec![PreferredSchedulingTerm {
                        weight: 0,
                        preference: Some(NodeSelectorTerm::default()),
                    }],
                }),
            })
        });
        assert_error_at(&weight, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight");
    }

    #[test]
    fn should_check_pod_level_fields() {
        assert_error_at(&pod_with(|s| s.node_selector = map(&[("disk", "fast ssd")])), "spec.nodeSelector");
        assert_eq!(
            assert_error_at(&pod_with(|s| s.termination_grace_period_seconds = Some(-1)), "spec.terminationGracePeriodSeconds"),
            "spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_error_at(&pod_with(|s| s.active_deadline_seconds = Some(0)), "spec.activeDeadlineSeconds");
        assert_error_at(&pod_with(|s| s.dns_policy = "Google".into()), "spec.dnsPolicy");
        assert_valid(&pod_with(|s| s.dns_policy.clear()));
        let dns = |nameservers: &[&str], searches: Vec<String>| PodDnsConfig {
            nameservers: nameservers.iter().map(|s| s.to_string()).collect(),
            searches,
            options: vec![PodDnsConfigOption { name: "ndots".into(), value: Some("2".into()) }],
        };
        assert_valid(&pod_with(|s| {
            s.dns_policy = "None".into();
            s.dns_config = Some(dns(&["10.0.0.1", "fd00::1"], vec!["svc.example.".into(), "example.org".into()]));
        }));
        assert_error_at(&pod_with(|s| s.dns_policy = "None".into()), "spec.dnsConfig");
        assert_error_at(
            &pod_with(|s| {
                s.dns_policy = "None".into();
                s.dns_config = Some(dns(&[], vec![]));
            }),
            "spec.dnsConfig.nameservers",
        );
        assert_eq!(
            assert_error_at(
                &pod_with(|s| s.dns_config = Some(dns(&["1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4"], vec![]))),
                "spec.dnsConfig.nameservers"
            ),
            "spec.dnsConfig.nameservers: Invalid value: [1.1.1.1 1.0.0.1 8.8.8.8 8.8.4.4]: must not have more than 3 nameservers"
        );
        assert_error_at(&pod_with(|s| s.dns_config = Some(dns(&["dns.example"], vec![]))), "spec.dnsConfig.nameservers[0]");
        assert_error_at(
            &pod_with(|s| s.dns_config = Some(dns(&[], (0..33).map(|i| format!("d{i}.example")).collect()))),
            "spec.dnsConfig.searches",
        );
        assert_error_at(&pod_with(|s| s.dns_config = Some(dns(&[], vec!["Bad_Domain".into()]))), "spec.dnsConfig.searches[0]");
        assert_error_at(&pod_with(|s| s.node_name = "Node_1".into()), "spec.nodeName");
        assert_error_at(&pod_with(|s| s.service_account_name = "My SA".into()), "spec.serviceAccountName");
        assert_error_at(&pod_with(|s| s.hostname = "a.b".into()), "spec.hostname");
        assert_error_at(&pod_with(|s| s.image_pull_secrets = vec![LocalObjectReference::default()]), "spec.imagePullSecrets[0].name");
        assert_error_at(
            &pod_with(|s| s.security_context = Some(PodSecurityContext { run_as_user: Some(-1), ..Default::default() })),
            "spec.securityContext.runAsUser",
        );
    }

    #[test]
    fn should_check_container_security_context() {
        let caps = |add: &[&str]| {
            ctr_with(|c| {
                c.security_context = Some(SecurityContext {
                    capabilities: Some(Capabilities { add: add.iter().map(|s| s.to_string()).collect(), drop: vec![] }),
                    ..Default::default()
                })
            })
        };
        assert_valid(&caps(&["IPC_LOCK", "CAP_SYS_ADMIN"]));
        assert_error_at(&caps(&[""]), "spec.containers[0].securityContext.capabilities.add[0]");
        assert_error_at(&caps(&["NET ADMIN"]), "spec.containers[0].securityContext.capabilities.add[0]");
        let esc = ctr_with(|c| {
            c.security_context =
                Some(SecurityContext { privileged: Some(true), allow_privilege_escalation: Some(false), ..Default::default() })
        });
        assert_error_at(&esc, "spec.containers[0].securityContext");
    }

    #[test]
    fn should_check_pod_status_addresses_and_phase() {
        let mut p = pod_of(pod_spec());
        p.status =
            Some(PodStatus { phase: "Running".into(), pod_ip: "172.30.0.7".into(), host_ip: "10.0.0.1".into(), ..Default::default() });
        assert_valid(&p.clone().into_object());
        p.status = Some(PodStatus { phase: "Sleeping".into(), pod_ip: "172.30.0.300".into(), ..Default::default() });
        let errs = errors(&p.into_object());
        error_at(&errs, "status.phase");
        error_at(&errs, "status.podIP");
    }

    // ------------------------------------------------ ReplicationController

    #[test]
    fn should_accept_a_valid_replication_controller() {
        assert_valid(&rc_with(|_| {}));
        assert_valid(&rc_with(|s| s.replicas = Some(0)));
    }

    #[test]
    fn should_refuse_a_selector_that_does_not_match_the_template_labels() {
        let msg = assert_error_at(&rc_with(|s| s.selector = map(&[("app", "db")])), "spec.template.metadata.labels");
        assert!(
            msg.starts_with("spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`"),
            "{msg}"
        );
        assert_valid(&rc_with(|s| {
            if let Some(m) = s.template.as_mut().and_then(|t| t.metadata.as_mut()) {
                m.labels.insert("tier".into(), "front".into());
            }
        }));
    }

    #[test]
    fn should_require_a_selector_and_a_template() {
        assert_eq!(assert_error_at(&rc_with(|s| s.selector.clear()), "spec.selector"), "spec.selector: Required value");
        assert_eq!(assert_error_at(&rc_with(|s| s.template = None), "spec.template"), "spec.template: Required value");
        assert_error_at(&rc_with(|s| s.selector = map(&[("app", "bad value!")])), "spec.selector");
    }

    #[test]
    fn should_refuse_negative_replicas_and_min_ready_seconds() {
        assert_eq!(
            assert_error_at(&rc_with(|s| s.replicas = Some(-1)), "spec.replicas"),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_error_at(&rc_with(|s| s.min_ready_seconds = Some(-5)), "spec.minReadySeconds");
    }

    #[test]
    fn should_require_template_restart_policy_always() {
        let o = rc_with(|s| {
            if let Some(ps) = s.template.as_mut().and_then(|t| t.spec.as_mut()) {
                ps.restart_policy = "OnFailure".into();
            }
        });
        assert_eq!(
            assert_error_at(&o, "spec.template.spec.restartPolicy"),
            "spec.template.spec.restartPolicy: Unsupported value: \"OnFailure\": supported values: \"Always\""
        );
        let o = rc_with(|s| {
            if let Some(ps) = s.template.as_mut().and_then(|t| t.spec.as_mut()) {
                ps.active_deadline_seconds = Some(30);
            }
        });
        assert_error_at(&o, "spec.template.spec.activeDeadlineSeconds");
    }

    #[test]
    fn should_report_template_errors_under_the_template_path() {
        let o = rc_with(|s| {
            if let Some(ps) = s.template.as_mut().and_then(|t| t.spec.as_mut()) {
                ps.containers[0].image.clear();
                ps.containers[0].volume_mounts = vec![mount("missing", "/m")];
            }
        });
        let errs = errors(&o);
        error_at(&errs, "spec.template.spec.containers[0].image");
        assert!(error_at(&errs, "spec.template.spec.containers[0].volumeMounts[0].name").contains("spec.template.spec.volumes"));
    }

    #[test]
    fn should_check_replication_controller_status_counts() {
        let mut o = rc_with(|_| {});
        if let Some(Kind::ReplicationController(rc)) = &mut o.kind {
            rc.status = Some(ReplicationControllerStatus { replicas: 2, ready_replicas: 3, available_replicas: 1, ..Default::default() });
        }
        assert_error_at(&o, "status.readyReplicas");
    }

    // ---------------------------------------------------------------- Service

    #[test]
    fn should_accept_valid_services_of_every_type() {
        assert_valid(&svc_with(|_| {}));
        assert_valid(&svc_with(|s| {
            s.r#type = "NodePort".into();
            s.ports = vec![ServicePort { node_port: 30080, ..svc_port("http", 80) }, svc_port("https", 443)];
            s.external_traffic_policy = "Local".into();
        }));
        assert_valid(&svc_with(|s| {
            s.r#type = "LoadBalancer".into();
            s.load_balancer_source_ranges = vec!["10.0.0.0/8".into()];
        }));
        assert_valid(&svc_with(|s| {
            s.cluster_ip = "None".into();
            s.ports.clear();
        }));
        assert_valid(&svc_with(|s| {
            s.r#type = "ExternalName".into();
            s.external_name = "db.example.com.".into();
            s.ports.clear();
        }));
        assert_valid(&svc_with(|s| {
            s.cluster_ip = "10.96.0.10".into();
            s.session_affinity = "ClientIP".into();
            s.session_affinity_config = Some(SessionAffinityConfig { client_ip: Some(ClientIpConfig { timeout_seconds: Some(10800) }) });
        }));
    }

    #[test]
    fn should_check_service_type_and_ports() {
        assert_eq!(
            assert_error_at(&svc_with(|s| s.r#type = "Internal".into()), "spec.type"),
            "spec.type: Unsupported value: \"Internal\": supported values: \"ClusterIP\", \"NodePort\", \"LoadBalancer\", \"ExternalName\""
        );
        assert_error_at(&svc_with(|s| s.r#type.clear()), "spec.type");
        assert_eq!(assert_error_at(&svc_with(|s| s.ports.clear()), "spec.ports"), "spec.ports: Required value");
        assert_error_at(&svc_with(|s| s.ports[0].port = 0), "spec.ports[0].port");
        assert_error_at(&svc_with(|s| s.ports[0].protocol = "ICMP".into()), "spec.ports[0].protocol");
        assert_error_at(&svc_with(|s| s.ports[0].target_port = "70000".into()), "spec.ports[0].targetPort");
        assert_error_at(&svc_with(|s| s.ports[0].target_port = "Http_Port".into()), "spec.ports[0].targetPort");
        assert_valid(&svc_with(|s| s.ports[0].target_port = "http".into()));
    }

    #[test]
    fn should_require_unique_names_when_a_service_has_several_ports() {
        assert_eq!(
            assert_error_at(&svc_with(|s| s.ports = vec![svc_port("", 80), svc_port("b", 81)]), "spec.ports[0].name"),
            "spec.ports[0].name: Required value"
        );
        assert_eq!(
            assert_error_at(&svc_with(|s| s.ports = vec![svc_port("a", 80), svc_port("a", 81)]), "spec.ports[1].name"),
            "spec.ports[1].name: Duplicate value: \"a\""
        );
        assert_error_at(&svc_with(|s| s.ports = vec![svc_port("Web", 80)]), "spec.ports[0].name");
        // Kubernetes checks service port names as DNS labels, not IANA names.
        assert_valid(&svc_with(|s| s.ports = vec![svc_port("state-snapshot-transfer", 4444)]));
        assert_error_at(&svc_with(|s| s.ports = vec![svc_port("a", 80), svc_port("b", 80)]), "spec.ports[1]");
    }

    #[test]
    fn should_allow_node_ports_only_for_node_port_and_load_balancer_services() {
        assert_eq!(
            assert_error_at(&svc_with(|s| s.ports[0].node_port = 30080), "spec.ports[0].nodePort"),
            "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
        );
        let range = svc_with(|s| {
            s.r#type = "NodePort".into();
            s.ports[0].node_port = 70000;
        });
        assert_error_at(&range, "spec.ports[0].nodePort");
        let dup = svc_with(|s| {
            s.r#type = "NodePort".into();
            s.ports = vec![ServicePort { node_port: 30001, ..svc_port("a", 80) }, ServicePort { node_port: 30001, ..svc_port("b", 81) }];
        });
        assert_error_at(&dup, "spec.ports[1].nodePort");
    }

    #[test]
    fn should_check_cluster_ip_and_external_name() {
        assert_error_at(&svc_with(|s| s.cluster_ip = "10.96.0.300".into()), "spec.clusterIP");
        let headless_np = svc_with(|s| {
            s.cluster_ip = "None".into();
            s.r#type = "NodePort".into();
        });
        assert!(assert_error_at(&headless_np, "spec.clusterIP").contains("may not be set to 'None' for NodePort services"));
        let ext = |f: fn(&mut ServiceSpec)| {
            svc_with(|s| {
                s.r#type = "ExternalName".into();
                s.external_name = "db.example.com".into();
                f(s);
            })
        };
        assert_error_at(&ext(|s| s.external_name.clear()), "spec.externalName");
        assert_error_at(&ext(|s| s.external_name = "DB_host".into()), "spec.externalName");
        assert_error_at(&ext(|s| s.cluster_ip = "10.96.0.1".into()), "spec.clusterIP");
    }

    #[test]
    fn should_check_service_affinity_selector_and_policies() {
        assert_error_at(&svc_with(|s| s.session_affinity = "Cookie".into()), "spec.sessionAffinity");
        let timeout = svc_with(|s| {
            s.session_affinity = "ClientIP".into();
            s.session_affinity_config = Some(SessionAffinityConfig { client_ip: Some(ClientIpConfig { timeout_seconds: Some(0) }) });
        });
        assert_error_at(&timeout, "spec.sessionAffinityConfig.clientIP.timeoutSeconds");
        assert_error_at(&svc_with(|s| s.selector = map(&[("app", "web app")])), "spec.selector");
        assert_error_at(&svc_with(|s| s.external_traffic_policy = "Local".into()), "spec.externalTrafficPolicy");
        assert_error_at(&svc_with(|s| s.external_ips = vec!["1.2.3".into()]), "spec.externalIPs[0]");
        assert_error_at(&svc_with(|s| s.load_balancer_source_ranges = vec!["10.0.0.0/8".into()]), "spec.loadBalancerSourceRanges");
    }

    // ------------------------------------------------------------- Endpoints

    #[test]
    fn should_check_endpoints_addresses_and_ports() {
        assert_valid(&endpoints_with(|_| {}));
        assert_valid(&endpoints_with(|ss| ss.ports[0].protocol.clear()));
        assert_error_at(&endpoints_with(|ss| ss.addresses[0].ip = "172.30.0".into()), "subsets[0].addresses[0].ip");
        assert_error_at(&endpoints_with(|ss| ss.addresses[0].ip.clear()), "subsets[0].addresses[0].ip");
        assert_error_at(&endpoints_with(|ss| ss.ports[0].port = 0), "subsets[0].ports[0].port");
        assert_error_at(&endpoints_with(|ss| ss.ports[0].protocol = "tcp".into()), "subsets[0].ports[0].protocol");
        assert_error_at(&endpoints_with(|ss| ss.addresses.clear()), "subsets[0]");
        assert_error_at(
            &endpoints_with(|ss| ss.ports.push(EndpointPort { port: 9090, protocol: "TCP".into(), ..Default::default() })),
            "subsets[0].ports[0].name",
        );
    }

    // -------------------------------------------------------- Secret, ConfigMap

    #[test]
    fn should_check_secret_keys_size_and_type() {
        assert_valid(&secret_with(|_| {}));
        let bad = secret_with(|s| {
            s.data.insert("bad/key".into(), vec![]);
        });
        assert!(assert_error_at(&bad, "data[bad/key]").starts_with("data[bad/key]: Invalid value: \"bad/key\": a valid config key"));
        let big = secret_with(|s| {
            s.data.insert("big".into(), vec![0; MAX_DATA_SIZE]);
        });
        assert_eq!(assert_error_at(&big, "data"), "data: Too long: must have at most 1048576 bytes");
        assert_eq!(assert_error_at(&secret_with(|s| s.r#type.clear()), "type"), "type: Required value");
        let tls = secret_with(|s| s.r#type = "kubernetes.io/tls".into());
        let errs = errors(&tls);
        error_at(&errs, "data[tls.key]");
        error_at(&errs, "data[tls.crt]");
        let docker = secret_with(|s| {
            s.r#type = "kubernetes.io/dockerconfigjson".into();
            s.data.insert(".dockerconfigjson".into(), b"{not json".to_vec());
        });
        assert_error_at(&docker, "data[.dockerconfigjson]");
    }

    #[test]
    fn should_check_config_map_keys_and_size() {
        assert_valid(&cm_with(|m| {
            m.binary_data.insert("logo.png".into(), vec![1, 2, 3]);
        }));
        assert_error_at(&cm_with(|m| m.data = map(&[("..hidden", "x")])), "data[..hidden]");
        assert_error_at(
            &cm_with(|m| {
                m.binary_data.insert("bad key".into(), vec![]);
            }),
            "binaryData[bad key]",
        );
        let dup = cm_with(|m| {
            m.binary_data.insert("app.properties".into(), vec![]);
        });
        assert!(assert_error_at(&dup, "binaryData[app.properties]").contains("duplicate of key present in data"));
        let big = cm_with(|m| {
            m.data.insert("a".into(), "x".repeat(MAX_DATA_SIZE / 2));
            m.binary_data.insert("b".into(), vec![0; MAX_DATA_SIZE / 2 + 1]);
        });
        assert_error_at(&big, "data");
    }

    // ---------------------------------------------------------- Namespace, Node

    #[test]
    fn should_check_namespace_phase_and_finalizers() {
        let ns = |phase: &str, fin: &str| {
            Namespace {
                metadata: cluster_meta("dev"),
                spec: Some(NamespaceSpec { finalizers: vec![fin.into()] }),
                status: Some(NamespaceStatus { phase: phase.into(), ..Default::default() }),
                ..Default::default()
            }
            .into_object()
        };
        assert_valid(&ns("Active", "kubernetes"));
        assert_valid(&ns("Terminating", "example.com/cleanup"));
        assert_error_at(&ns("Deleting", "kubernetes"), "status.phase");
        assert_error_at(&ns("Active", "cleanup"), "spec.finalizers[0]");
    }

    #[test]
    fn should_check_node_taints_cidrs_and_capacity() {
        let taint = |key: &str, effect: &str| {
            node_with(|n| {
                n.spec.get_or_insert_with(Default::default).taints =
                    vec![Taint { key: key.into(), effect: effect.into(), ..Default::default() }]
            })
        };
        assert_valid(&taint("node.kubernetes.io/unreachable", "NoExecute"));
        assert_error_at(&taint("bad key", "NoSchedule"), "spec.taints[0].key");
        assert_eq!(assert_error_at(&taint("k", ""), "spec.taints[0].effect"), "spec.taints[0].effect: Required value");
        assert_error_at(&taint("k", "Sometimes"), "spec.taints[0].effect");
        let dup = node_with(|n| {
            let t = Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() };
            n.spec.get_or_insert_with(Default::default).taints = vec![t.clone(), t];
        });
        assert_error_at(&dup, "spec.taints[1]");
        assert_error_at(&node_with(|n| n.spec.get_or_insert_with(Default::default).pod_cidr = "172.30.1.0".into()), "spec.podCIDR");
        assert_error_at(&node_with(|n| n.spec.get_or_insert_with(Default::default).pod_cidr = "172.30.1.0/33".into()), "spec.podCIDR");
        assert_valid(&node_with(|n| n.spec.get_or_insert_with(Default::default).pod_cidr = "fd00::/64".into()));
        assert_error_at(
            &node_with(|n| n.status.get_or_insert_with(Default::default).capacity = map(&[("cpu", "four")])),
            "status.capacity[cpu]",
        );
        assert_error_at(
            &node_with(|n| n.status.get_or_insert_with(Default::default).allocatable = map(&[("memory", "-1Gi")])),
            "status.allocatable[memory]",
        );
    }

    // ---------------------------------------------- ResourceQuota, LimitRange

    #[test]
    fn should_check_quota_resource_names_and_values() {
        assert_valid(&quota(&[
            ("pods", "10"),
            ("requests.cpu", "4"),
            ("limits.memory", "8Gi"),
            ("count/configmaps", "5"),
            ("services.nodeports", "0"),
        ]));
        assert_eq!(
            assert_error_at(&quota(&[("widgets", "1")]), "spec.hard[widgets]"),
            "spec.hard[widgets]: Invalid value: \"widgets\": must be a standard resource for quota"
        );
        assert_error_at(&quota(&[("pods", "-1")]), "spec.hard[pods]");
        assert!(assert_error_at(&quota(&[("pods", "1500m")]), "spec.hard[pods]").contains("must be an integer"));
        assert_error_at(&quota(&[("cpu", "x")]), "spec.hard[cpu]");
        let scope = ResourceQuota {
            metadata: meta("q"),
            spec: Some(ResourceQuotaSpec { scopes: vec!["Everything".into()], ..Default::default() }),
            ..Default::default()
        };
        assert_error_at(&scope.into_object(), "spec.scopes[0]");
    }

    fn item(ty: &str, f: impl FnOnce(&mut LimitRangeItem)) -> Object {
        let mut i = LimitRangeItem { r#type: ty.into(), ..Default::default() };
        f(&mut i);
        limits(i)
    }

    #[test]
    fn should_check_limit_range_types_and_order() {
        assert_valid(&item("Container", |i| {
            i.min = map(&[("cpu", "100m")]);
            i.default_request = map(&[("cpu", "200m")]);
            i.default = map(&[("cpu", "500m")]);
            i.max = map(&[("cpu", "1")]);
            i.max_limit_request_ratio = map(&[("cpu", "4")]);
        }));
        assert_valid(&item("PersistentVolumeClaim", |i| i.max = map(&[("storage", "10Gi")])));
        assert_error_at(&item("Volume", |_| {}), "spec.limits[0].type");
        assert_eq!(
            assert_error_at(
                &item("Container", |i| {
                    i.min = map(&[("cpu", "2")]);
                    i.max = map(&[("cpu", "1")]);
                }),
                "spec.limits[0].min[cpu]"
            ),
            "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1"
        );
        assert_error_at(
            &item("Container", |i| {
                i.default = map(&[("memory", "2Gi")]);
                i.max = map(&[("memory", "1Gi")]);
            }),
            "spec.limits[0].default[memory]",
        );
        assert_error_at(
            &item("Container", |i| {
                i.default = map(&[("cpu", "1")]);
                i.default_request = map(&[("cpu", "2")]);
            }),
            "spec.limits[0].defaultRequest[cpu]",
        );
        assert_error_at(
            &item("Container", |i| {
                i.min = map(&[("cpu", "1")]);
                i.default_request = map(&[("cpu", "500m")]);
            }),
            "spec.limits[0].defaultRequest[cpu]",
        );
        assert!(
            assert_error_at(
                &item("Container", |i| i.max_limit_request_ratio = map(&[("cpu", "500m")])),
                "spec.limits[0].maxLimitRequestRatio[cpu]"
            )
            .contains("is less than 1")
        );
        assert_error_at(
            &item("Container", |i| {
                i.min = map(&[("cpu", "1")]);
                i.max = map(&[("cpu", "2")]);
                i.max_limit_request_ratio = map(&[("cpu", "3")]);
            }),
            "spec.limits[0].maxLimitRequestRatio[cpu]",
        );
        assert_error_at(&item("Pod", |i| i.default = map(&[("cpu", "1")])), "spec.limits[0].default");
        assert_error_at(&item("Container", |i| i.max = map(&[("widgets", "1")])), "spec.limits[0].max[widgets]");
        assert_error_at(&item("Container", |i| i.max = map(&[("cpu", "-1")])), "spec.limits[0].max[cpu]");
        assert_error_at(&item("PersistentVolumeClaim", |_| {}), "spec.limits[0].limits");
    }

    // ---------------------------------------------------------- Event, Lease

    #[test]
    fn should_require_an_involved_object_in_the_events_namespace() {
        assert_valid(&event_with(|_| {}));
        assert_valid(&event_with(|e| {
            e.involved_object = Some(ObjectReference { kind: "Node".into(), name: "node-1".into(), ..Default::default() })
        }));
        assert_error_at(&event_with(|e| e.involved_object = None), "involvedObject");
        assert_error_at(&event_with(|e| e.involved_object = Some(ObjectReference::default())), "involvedObject");
        let other_ns = event_with(|e| e.involved_object.get_or_insert_with(Default::default).namespace = "prod".into());
        assert!(assert_error_at(&other_ns, "involvedObject.namespace").contains("does not match event.namespace"));
        let node_in_ns = event_with(|e| {
            e.metadata = Some(ObjectMeta { name: "n.1".into(), namespace: "prod".into(), ..Default::default() });
            e.involved_object = Some(ObjectReference { kind: "Node".into(), name: "node-1".into(), ..Default::default() });
        });
        assert_error_at(&node_in_ns, "involvedObject.namespace");
    }

    #[test]
    fn should_require_a_positive_lease_duration() {
        let lease = |d: Option<i32>| {
            Lease {
                metadata: meta("kube-scheduler"),
                spec: Some(LeaseSpec { lease_duration_seconds: d, holder_identity: Some("a".into()), ..Default::default() }),
                ..Default::default()
            }
            .into_object()
        };
        assert_valid(&lease(Some(15)));
        assert_valid(&lease(None));
        assert_eq!(
            assert_error_at(&lease(Some(0)), "spec.leaseDurationSeconds"),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
    }

    // ---------------------------------------------------------------- updates

    fn pod_obj(f: impl FnOnce(&mut PodSpec)) -> Object {
        pod_with(f)
    }

    #[test]
    fn should_refuse_renaming_or_changing_kind_on_update() {
        let old = pod_obj(|_| {});
        let mut new = old.clone();
        if let Some(m) = new.metadata_mut() {
            m.name = "other".into();
        }
        assert_eq!(error_at(&update_errors(&old, &new), "metadata.name"), "metadata.name: Invalid value: \"other\": field is immutable");
        let mut moved = old.clone();
        if let Some(m) = moved.metadata_mut() {
            m.namespace = "prod".into();
        }
        error_at(&update_errors(&old, &moved), "metadata.namespace");
        error_at(&update_errors(&old, &svc_with(|_| {})), "kind");
        let mut relabeled = old.clone();
        if let Some(m) = relabeled.metadata_mut() {
            m.labels.insert("tier".into(), "web".into());
        }
        assert!(validate_update(&old, &relabeled).is_ok());
    }

    #[test]
    fn should_allow_pod_updates_of_images_deadlines_grace_and_new_tolerations() {
        let old = pod_obj(|s| {
            s.init_containers = vec![ctr("init")];
            s.tolerations = vec![Toleration {
                key: "k".into(),
                operator: "Exists".into(),
                effect: "NoExecute".into(),
                toleration_seconds: Some(60),
                ..Default::default()
            }];
            s.active_deadline_seconds = Some(100);
        });
        let new = pod_obj(|s| {
            s.init_containers = vec![Container { image: "busybox:1.37".into(), ..ctr("init") }];
            s.containers[0].image = "nginx:1.27".into();
            s.tolerations = vec![
                Toleration {
                    key: "k".into(),
                    operator: "Exists".into(),
                    effect: "NoExecute".into(),
                    toleration_seconds: Some(30),
                    ..Default::default()
                },
                Toleration { key: "extra".into(), operator: "Exists".into(), ..Default::default() },
            ];
            s.active_deadline_seconds = Some(50);
            s.termination_grace_period_seconds = Some(5);
        });
        if let Err(e) = validate_update(&old, &new) {
            panic!("{e}");
        }
    }

    #[test]
    fn should_forbid_other_pod_spec_changes() {
        let old = pod_obj(|_| {});
        let new = pod_obj(|s| s.restart_policy = "Never".into());
        let msg = error_at(&update_errors(&old, &new), "spec");
        assert!(msg.starts_with(&format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN}")), "{msg}");
        assert!(msg.contains("spec.restartPolicy"), "{msg}");
        let added = pod_obj(|s| s.containers.push(ctr("sidecar")));
        error_at(&update_errors(&old, &added), "spec");
        let ports = pod_obj(|s| s.containers[0].ports = vec![port(80)]);
        error_at(&update_errors(&old, &ports), "spec");
    }

    #[test]
    fn should_allow_setting_node_name_once() {
        let unbound = pod_obj(|_| {});
        let bound = pod_obj(|s| s.node_name = "node-1".into());
        assert!(validate_update(&unbound, &bound).is_ok());
        let moved = pod_obj(|s| s.node_name = "node-2".into());
        error_at(&update_errors(&bound, &moved), "spec");
        error_at(&update_errors(&bound, &unbound), "spec");
    }

    #[test]
    fn should_refuse_removing_tolerations_or_raising_deadlines() {
        let t = Toleration { key: "k".into(), operator: "Exists".into(), ..Default::default() };
        let old = pod_obj(|s| {
            s.tolerations = vec![t.clone()];
            s.active_deadline_seconds = Some(10);
        });
        let removed = pod_obj(|s| s.active_deadline_seconds = Some(10));
        assert_eq!(
            error_at(&update_errors(&old, &removed), "spec.tolerations"),
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );
        let raised = pod_obj(|s| {
            s.tolerations = vec![t.clone()];
            s.active_deadline_seconds = Some(20);
        });
        error_at(&update_errors(&old, &raised), "spec.activeDeadlineSeconds");
        let unset = pod_obj(|s| s.tolerations = vec![t]);
        error_at(&update_errors(&old, &unset), "spec.activeDeadlineSeconds");
    }

    #[test]
    fn should_keep_immutable_secrets_and_config_maps_unchanged() {
        let old = secret_with(|s| s.immutable = Some(true));
        let changed = secret_with(|s| {
            s.immutable = Some(true);
            s.data.insert("password".into(), b"new".to_vec());
        });
        assert_eq!(error_at(&update_errors(&old, &changed), "data"), "data: Forbidden: field is immutable when `immutable` is set");
        let unset = secret_with(|s| s.immutable = Some(false));
        error_at(&update_errors(&old, &unset), "immutable");
        let retyped = secret_with(|s| s.r#type = "kubernetes.io/basic-auth".into());
        error_at(&update_errors(&secret_with(|_| {}), &retyped), "type");
        let mutable = secret_with(|s| {
            s.data.insert("password".into(), b"new".to_vec());
        });
        assert!(validate_update(&secret_with(|_| {}), &mutable).is_ok());

        let old = cm_with(|m| m.immutable = Some(true));
        let changed = cm_with(|m| {
            m.immutable = Some(true);
            m.binary_data.insert("b".into(), vec![1]);
        });
        error_at(&update_errors(&old, &changed), "binaryData");
        assert!(validate_update(&old, &old.clone()).is_ok());
    }

    #[test]
    fn should_keep_a_service_cluster_ip_once_set() {
        let old = svc_with(|s| s.cluster_ip = "10.96.0.10".into());
        let changed = svc_with(|s| s.cluster_ip = "10.96.0.11".into());
        assert_eq!(
            error_at(&update_errors(&old, &changed), "spec.clusterIP"),
            "spec.clusterIP: Invalid value: \"10.96.0.11\": field is immutable"
        );
        error_at(&update_errors(&old, &svc_with(|_| {})), "spec.clusterIP");
        let external = svc_with(|s| {
            s.r#type = "ExternalName".into();
            s.external_name = "db.example.com".into();
        });
        assert!(validate_update(&old, &external).is_ok());
        assert!(validate_update(&external, &old).is_ok());
        assert!(validate_update(&svc_with(|_| {}), &old).is_ok());
    }

    #[test]
    fn should_keep_a_node_pod_cidr_once_set() {
        let unset = node_with(|n| n.spec = Some(NodeSpec::default()));
        let set = node_with(|_| {});
        assert!(validate_update(&unset, &set).is_ok());
        let changed = node_with(|n| n.spec.get_or_insert_with(Default::default).pod_cidr = "172.30.2.0/24".into());
        assert_eq!(
            error_at(&update_errors(&set, &changed), "spec.podCIDR"),
            "spec.podCIDR: Forbidden: node updates may not change podCIDR except from \"\" to valid"
        );
        let tainted = node_with(|n| {
            n.spec.get_or_insert_with(Default::default).taints =
                vec![Taint { key: "k".into(), effect: "NoSchedule".into(), ..Default::default() }]
        });
        assert!(validate_update(&set, &tainted).is_ok());
    }

    #[test]
    fn should_allow_changing_a_replication_controller_selector() {
        let old = rc_with(|_| {});
        let new = rc_with(|s| {
            s.selector = map(&[("app", "web"), ("tier", "front")]);
            if let Some(m) = s.template.as_mut().and_then(|t| t.metadata.as_mut()) {
                m.labels.insert("tier".into(), "front".into());
            }
            s.replicas = Some(5);
        });
        assert_valid(&new);
        assert!(validate_update(&old, &new).is_ok());
    }
}
