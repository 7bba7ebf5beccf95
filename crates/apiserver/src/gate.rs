//! The gate every API request passes before the registry sees it: the kind
//! must be served (not hidden by `--disable-api`), the caller authenticated
//! and authorized; and every request, allowed or not, is audited.

use std::collections::HashSet;
use std::sync::Arc;

use berth_api::{KindInfo, Object};

use crate::audit::{self, AuditLog};
use crate::authn::Authenticated;
use crate::authz::{Attributes, Authorizer, Decision};
use crate::error::Error;
use crate::lister;
use crate::metrics::Metrics;
use crate::user::UserInfo;

/// What the gate checks with.
pub struct Gate {
    pub authorizer: Authorizer,
    pub audit: Option<AuditLog>,
    /// Kinds hidden with `--disable-api` (by Kind).
    pub disabled: HashSet<&'static str>,
    pub metrics: Arc<Metrics>,
}

impl Gate {
    /// Resolves a kind named in a request; a hidden kind does not exist.
    pub fn kind(&self, name: &str) -> Result<&'static KindInfo, Error> {
        let info = lister::kind(name)?;
        if self.disabled.contains(info.kind) {
            return Err(Error::NotFound { plural: "the server doesn't have a resource type".into(), name: name.into() });
        }
        Ok(info)
    }

    /// Whether a kind is served.
    pub fn serves(&self, info: &KindInfo) -> bool {
        !self.disabled.contains(info.kind)
    }

    /// The caller, or Unauthenticated.
    pub fn authenticate(&self, who: Option<&Authenticated>) -> Result<UserInfo, Error> {
        match who.map(|w| &w.user) {
            Some(Ok(u)) => Ok(u.clone()),
            Some(Err(e)) => {
                self.metrics.authentication_failure();
                Err(Error::Unauthenticated(e.to_string()))
            }
            None => {
                self.metrics.authentication_failure();
                Err(Error::Unauthenticated("Unauthorized: the request was not authenticated".into()))
            }
        }
    }

    /// Allows the request or refuses it with PermissionDenied naming the user and what was asked.
    pub fn authorize(&self, user: &UserInfo, attributes: &Attributes) -> Result<(), Error> {
        match self.authorizer.authorize(user, attributes) {
            Decision::Allow(_) => Ok(()),
            Decision::Deny(reason) => {
                self.metrics.authorization_denial();
                Err(Error::Forbidden(attributes.forbidden(user, &reason)))
            }
            Decision::NoOpinion => {
                self.metrics.authorization_denial();
                Err(Error::Forbidden(attributes.forbidden(user, "")))
            }
        }
    }

    /// Whether requests' objects go anywhere (an audit log is configured).
    pub fn records_objects(&self) -> bool {
        self.audit.is_some()
    }

    /// Writes the request's audit line, when auditing is on.
    pub fn audit(&self, who: Option<&Authenticated>, attributes: &Attributes, kind: &str, code: tonic::Code, object: Option<&Object>) {
        let Some(log) = &self.audit else { return };
        log.record(&audit::Record {
            user: who.and_then(|w| w.user.as_ref().ok()),
            source: who.and_then(|w| w.source),
            verb: &attributes.verb,
            kind,
            subresource: &attributes.subresource,
            namespace: &attributes.namespace,
            name: &attributes.name,
            code,
            object,
        });
    }
}
