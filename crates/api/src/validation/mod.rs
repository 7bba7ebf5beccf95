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
//!
//! This module holds the shared machinery: the error types, the collector of
//! errors with its field-path and message helpers, the checks several kinds
//! share (ports, CIDRs), and the two entry points, which dispatch on the kind.
//! The rules of each kind live in their own module: `meta` (ObjectMeta, for
//! every kind), `pod` (pods, their containers, volumes, probes and
//! scheduling), `resources` (compute resources), `replication`
//! (ReplicationControllers), `service` (Services, Endpoints), `config`
//! (Secrets, ConfigMaps), `quota` (ResourceQuotas, LimitRanges), `namespace`,
//! `node`, `rbac`, `event` and `lease`.

mod config;
mod event;
mod lease;
mod meta;
mod namespace;
mod node;
mod pod;
mod quota;
mod rbac;
mod replication;
mod resources;
mod service;
#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::names;
use crate::pb::api::Object;
use crate::pb::api::object::Kind;
use crate::quantity::Quantity;

pub use config::MAX_DATA_SIZE;
pub use meta::MAX_ANNOTATIONS_SIZE;

use config::{config_map, config_map_update, secret, secret_update};
use event::event;
use lease::lease;
use meta::{NameRule, meta_update, object_meta};
use namespace::namespace;
use node::{node, node_update};
use pod::{pod, pod_update};
use quota::{limit_range, resource_quota};
use rbac::{policy_rules, role_binding, role_ref_text};
use replication::replication_controller;
use service::{endpoints, service, service_update};

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
        (Some(Kind::Secret(o)), Some(Kind::Secret(n))) => secret_update(&mut c, o, n),
        (Some(Kind::ConfigMap(o)), Some(Kind::ConfigMap(n))) => config_map_update(&mut c, o, n),
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

// ------------------------------------------------- checks several kinds share

const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

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

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

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
}
