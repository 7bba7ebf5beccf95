//! Authorization: may this user do this verb on this resource? The chain
//! Kubernetes runs — `system:masters` may do everything, then the Node
//! authorizer (kubelets), then RBAC — with the first decision winning.
//!
//! # Layout
//! - [`rbac`]: Roles, ClusterRoles and their bindings; the default roles.
//! - [`node`]: what a kubelet may touch, judged from the pods bound to its node.
//!
//! Authorizers only read the cluster state, through a [`Lister`].

pub mod node;
pub mod rbac;

use crate::lister::Lister;
use crate::user::{GROUP_MASTERS, UserInfo};

/// What a request asks to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: String,
    /// "" for core kinds, `rbac.authorization.k8s.io`, ...
    pub api_group: String,
    /// The plural (`pods`); empty for non-resource requests.
    pub resource: String,
    /// `status`, `binding`, `exec`, `log`, or empty.
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// A non-resource path such as `/metrics`.
    pub path: String,
}

impl Attributes {
    /// A request on a resource of the core group (or the group `kind` names).
    pub fn resource(verb: &str, info: &berth_api::KindInfo, namespace: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            api_group: info.group().into(),
            resource: info.plural.into(),
            namespace: if info.namespaced { namespace.into() } else { String::new() },
            name: name.into(),
            ..Default::default()
        }
    }

    /// The same request on a subresource (`pods/status`).
    pub fn subresource(mut self, subresource: &str) -> Attributes {
        self.subresource = subresource.into();
        self
    }

    /// A request on a non-resource path.
    pub fn non_resource(verb: &str, path: &str) -> Attributes {
        Attributes { verb: verb.into(), path: path.into(), ..Default::default() }
    }

    /// `pods` or `pods/status`.
    pub fn full_resource(&self) -> String {
        if self.subresource.is_empty() { self.resource.clone() } else { format!("{}/{}", self.resource, self.subresource) }
    }

    /// The refusal Kubernetes writes, naming the user and what was asked.
    pub fn forbidden(&self, user: &UserInfo, reason: &str) -> String {
        let mut msg = if self.path.is_empty() {
            let what = if self.name.is_empty() { self.full_resource() } else { format!("{} {:?}", self.full_resource(), self.name) };
            let mut m = format!(
                "{what} is forbidden: User {:?} cannot {} resource {:?} in API group {:?}",
                user.name,
                self.verb,
                self.full_resource(),
                self.api_group
            );
            if !self.namespace.is_empty() {
                m.push_str(&format!(" in the namespace {:?}", self.namespace));
            } else {
                m.push_str(" at the cluster scope");
            }
            m
        } else {
            format!("forbidden: User {:?} cannot {} path {:?}", user.name, self.verb, self.path)
        };
        if !reason.is_empty() {
            msg.push_str(": ");
            msg.push_str(reason);
        }
        msg
    }
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, with the reason (the role or rule that grants it).
    Allow(String),
    /// Refused outright; later authorizers are not asked.
    Deny(String),
    /// This authorizer does not decide; the next one is asked.
    NoOpinion,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// The authorizer chain.
#[derive(Clone)]
pub struct Authorizer {
    lister: Lister,
    /// The insecure loopback mode: everything is allowed.
    allow_all: bool,
}

impl Authorizer {
    pub fn new(lister: Lister) -> Authorizer {
        Authorizer { lister, allow_all: false }
    }

    /// Allows everything (no authentication configured).
    pub fn allow_all(lister: Lister) -> Authorizer {
        Authorizer { lister, allow_all: true }
    }

    /// Decides a request. NoOpinion from every authorizer is a refusal.
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        if self.allow_all {
            return Decision::Allow("authorization is off (insecure loopback mode)".into());
        }
        if user.in_group(GROUP_MASTERS) {
            return Decision::Allow(format!("{user:?} is in group {GROUP_MASTERS}", user = user.name));
        }
        match node::authorize(&self.lister, user, a) {
            Decision::NoOpinion => {}
            d => return d,
        }
        match rbac::authorize(&self.lister, user, a) {
            Decision::NoOpinion => Decision::NoOpinion,
            d => d,
        }
    }
}
