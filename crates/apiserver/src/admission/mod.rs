//! Admission: an ordered chain of plugins that may default, mutate or
//! refuse a write after the server's own defaulting and before validation
//! and storage. A refusal names the plugin and the reason, and nothing is
//! written.

use std::sync::Arc;

use berth_api::Object;

use crate::error::Error;
use crate::registry::Registry;

/// What kind of write is being admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// The write being admitted.
pub struct Attributes<'a> {
    pub operation: Operation,
    /// The object as it will be stored (for Delete: the object being deleted).
    pub object: &'a mut Object,
    /// The stored object, for updates and deletes.
    pub old: Option<&'a Object>,
    pub dry_run: bool,
}

/// One admission plugin.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's name, as `--enable-admission-plugins` spells it.
    fn name(&self) -> &'static str;
    /// Mutates or refuses the write. The registry gives read access to the
    /// cluster state (e.g. the namespace's quotas).
    async fn admit(&self, attributes: &mut Attributes<'_>, registry: &Registry) -> Result<(), Error>;
}

/// The plugins, run in order; the first refusal stops the write.
#[derive(Clone, Default)]
pub struct Chain {
    plugins: Vec<Arc<dyn Plugin>>,
}

impl Chain {
    pub fn new(plugins: Vec<Arc<dyn Plugin>>) -> Chain {
        Chain { plugins }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    pub async fn admit(&self, attributes: &mut Attributes<'_>, registry: &Registry) -> Result<(), Error> {
        for p in &self.plugins {
            p.admit(attributes, registry).await?;
        }
        Ok(())
    }
}
