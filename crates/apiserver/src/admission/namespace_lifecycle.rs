//! NamespaceLifecycle admission: a namespaced object may be created only in
//! a namespace that exists and is not being deleted.

use berth_api::Object;

use super::{Attributes, Operation, Plugin};
use crate::error::Error;
use crate::lister::Lister;

/// The `NamespaceLifecycle` admission plugin.
#[derive(Debug, Default)]
pub struct NamespaceLifecycle;

#[async_trait::async_trait]
impl Plugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    async fn admit(&self, attributes: &mut Attributes<'_>, lister: &Lister) -> Result<(), Error> {
        if attributes.operation != Operation::Create {
            return Ok(());
        }
        let Some(info) = attributes.object.info() else { return Ok(()) };
        if !info.namespaced {
            return Ok(());
        }
        let namespace = attributes.object.namespace().to_string();
        let ns: Object = match lister.get("Namespace", "", &namespace) {
            Ok(ns) => ns,
            Err(Error::NotFound { .. }) => return Err(Error::NotFound { plural: "namespaces".into(), name: namespace }),
            Err(e) => return Err(e),
        };
        if ns.metadata().is_some_and(|m| !m.deletion_timestamp.is_empty()) {
            return Err(Error::Forbidden(format!(
                "{} {:?} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                info.plural,
                attributes.object.name()
            )));
        }
        Ok(())
    }
}
