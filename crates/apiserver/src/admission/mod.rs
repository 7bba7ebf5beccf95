//! Admission: an ordered chain of plugins that may default, mutate or
//! refuse a write after the server's own defaulting and before validation
//! and storage. A refusal names the plugin and the reason, and nothing is
//! written. Plugins read the cluster state through a [`Lister`]; the
//! registry, which owns the chain, runs it.

pub mod always_pull_images;
pub mod limitranger;
pub mod namespace_lifecycle;
pub mod node_restriction;
pub mod pod_security;
pub mod resourcequota;
pub mod service_account;

use std::sync::Arc;

use berth_api::Object;

use crate::error::Error;
use crate::lister::Lister;
use crate::user::UserInfo;

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
    /// Who the write is for (None: the server itself).
    pub user: Option<&'a UserInfo>,
    pub dry_run: bool,
}

/// One admission plugin.
#[async_trait::async_trait]
pub trait Plugin: Send + Sync + 'static {
    /// The plugin's name, as `--enable-admission-plugins` spells it.
    fn name(&self) -> &'static str;
    /// Mutates or refuses the write. The lister gives read access to the
    /// cluster state (e.g. the namespace's quotas).
    async fn admit(&self, attributes: &mut Attributes<'_>, lister: &Lister) -> Result<(), Error>;
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

    pub async fn admit(&self, attributes: &mut Attributes<'_>, lister: &Lister) -> Result<(), Error> {
        for p in &self.plugins {
            p.admit(attributes, lister).await?;
        }
        Ok(())
    }
}

/// Every plugin, in the order the chain runs them, and whether it is on
/// unless `--disable-admission-plugins` names it.
pub const PLUGINS: &[(&str, bool)] = &[
    ("NamespaceLifecycle", true),
    ("LimitRanger", true),
    ("ServiceAccount", true),
    ("NodeRestriction", true),
    ("AlwaysPullImages", false),
    ("PodSecurity", true),
    ("ResourceQuota", true),
];

/// What plugins need to know about the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// ServiceAccount tokens are signed, so the ServiceAccount plugin mounts them.
    pub mount_service_account_tokens: bool,
}

/// The chain of the default plugins plus `enable`, less `disable`, in the
/// fixed order of [`PLUGINS`]. An unknown name is an error naming it.
pub fn build<S: AsRef<str>>(enable: &[S], disable: &[S], options: Options) -> Result<Chain, String> {
    for name in enable.iter().chain(disable.iter()) {
        if !PLUGINS.iter().any(|(p, _)| *p == name.as_ref()) {
            let known: Vec<&str> = PLUGINS.iter().map(|(p, _)| *p).collect();
            return Err(format!("unknown admission plugin {:?} (known: {})", name.as_ref(), known.join(", ")));
        }
    }
    let named = |list: &[S], p: &str| list.iter().any(|n| n.as_ref() == p);
    let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
    for (name, default) in PLUGINS {
        if named(disable, name) || !(*default || named(enable, name)) {
            continue;
        }
        plugins.push(match *name {
            "NamespaceLifecycle" => Arc::new(namespace_lifecycle::NamespaceLifecycle),
            "LimitRanger" => Arc::new(limitranger::LimitRanger::new()),
            "ServiceAccount" => Arc::new(service_account::ServiceAccount { mount_tokens: options.mount_service_account_tokens }),
            "NodeRestriction" => Arc::new(node_restriction::NodeRestriction),
            "AlwaysPullImages" => Arc::new(always_pull_images::AlwaysPullImages),
            "PodSecurity" => Arc::new(pod_security::PodSecurity),
            "ResourceQuota" => Arc::new(resourcequota::ResourceQuota::new()),
            _ => continue,
        });
    }
    Ok(Chain::new(plugins))
}
