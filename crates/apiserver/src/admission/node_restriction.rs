//! NodeRestriction admission: what a kubelet (user `system:node:NAME`)
//! writes must be its own — its Node object, its Lease in kube-node-lease —
//! and it creates no pods. (Which pods' status it may write, and which
//! secrets it may read, the Node authorizer decides.)

use berth_api::pb::api::object::Kind;

use super::{Attributes, Plugin};
use crate::error::Error;
use crate::lister::Lister;
use crate::user::NODE_LEASE_NAMESPACE;

/// The `NodeRestriction` admission plugin.
#[derive(Debug, Default)]
pub struct NodeRestriction;

#[async_trait::async_trait]
impl Plugin for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    async fn admit(&self, attributes: &mut Attributes<'_>, _lister: &Lister) -> Result<(), Error> {
        let Some(user) = attributes.user else { return Ok(()) };
        let Some(node) = user.node_name() else { return Ok(()) };
        let o = &*attributes.object;
        let refuse = |what: String| Err(Error::Forbidden(format!("NodeRestriction: node {node:?} {what}")));
        match &o.kind {
            Some(Kind::Node(_)) if o.name() != node => refuse(format!("may not modify node {:?}", o.name())),
            Some(Kind::Pod(_)) if attributes.old.is_none() => refuse(format!("may not create pods (pod {:?})", o.name())),
            Some(Kind::Lease(_)) if o.namespace() != NODE_LEASE_NAMESPACE || o.name() != node => {
                refuse(format!("may only write its own lease {NODE_LEASE_NAMESPACE}/{node}, not {}/{}", o.namespace(), o.name()))
            }
            _ => Ok(()),
        }
    }
}
