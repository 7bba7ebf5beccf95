//! ServiceAccount admission: a pod runs as the namespace's "default"
//! account unless it names another, the account must exist, and (when the
//! apiserver signs tokens) the account's token is mounted into every
//! container at /var/run/secrets/kubernetes.io/serviceaccount (token,
//! ca.crt, namespace) unless the pod or the account opts out.

use berth_api::pb::api::object::Kind;
use berth_api::pb::core::{SecretVolumeSource, Volume, VolumeMount};

use super::{Attributes, Operation, Plugin};
use crate::error::Error;
use crate::lister::Lister;

/// Where pods find their token, CA and namespace.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The account every pod runs as unless it names another (the
/// serviceaccount module creates it in every namespace).
pub const DEFAULT_ACCOUNT: &str = "default";

/// The name of the Secret holding an account's token, which this plugin
/// mounts and the serviceaccount module creates.
pub fn token_secret_name(account: &str) -> String {
    format!("{account}-token")
}

/// The `ServiceAccount` admission plugin.
#[derive(Debug, Default)]
pub struct ServiceAccount {
    /// Whether token secrets exist to mount.
    pub mount_tokens: bool,
}

#[async_trait::async_trait]
impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn admit(&self, attributes: &mut Attributes<'_>, lister: &Lister) -> Result<(), Error> {
        if attributes.operation != Operation::Create {
            return Ok(());
        }
        let Some(Kind::Pod(pod)) = &mut attributes.object.kind else { return Ok(()) };
        let namespace = pod.metadata.as_ref().map(|m| m.namespace.clone()).unwrap_or_default();
        let pod_name = pod.metadata.as_ref().map(|m| m.name.clone()).unwrap_or_default();
        let spec = pod.spec.get_or_insert_with(Default::default);
        if spec.service_account_name.is_empty() {
            spec.service_account_name =
                if spec.service_account.is_empty() { DEFAULT_ACCOUNT.to_string() } else { spec.service_account.clone() };
        }
        spec.service_account = spec.service_account_name.clone();
        let account = spec.service_account_name.clone();
        let sa = match lister.get("ServiceAccount", &namespace, &account) {
            Ok(o) => o,
            Err(Error::NotFound { .. }) => {
                return Err(Error::Forbidden(format!(
                    "pods {pod_name:?} is forbidden: ServiceAccount: error looking up service account {namespace}/{account}: serviceaccount {account:?} not found"
                )));
            }
            Err(e) => return Err(e),
        };
        let sa_automount = match &sa.kind {
            Some(Kind::ServiceAccount(sa)) => sa.automount_service_account_token,
            _ => None,
        };
        let automount = spec.automount_service_account_token.or(sa_automount).unwrap_or(true);
        if !self.mount_tokens || !automount {
            return Ok(());
        }
        let secret = token_secret_name(&account);
        let volume = format!("{account}-token");
        if !spec.volumes.iter().any(|v| v.name == volume) {
            spec.volumes.push(Volume {
                name: volume.clone(),
                secret: Some(SecretVolumeSource { secret_name: secret, default_mode: Some(0o644), ..Default::default() }),
                ..Default::default()
            });
        }
        for c in spec.containers.iter_mut().chain(spec.init_containers.iter_mut()) {
            if c.volume_mounts.iter().any(|m| m.mount_path == MOUNT_PATH) {
                continue;
            }
            c.volume_mounts.push(VolumeMount {
                name: volume.clone(),
                read_only: Some(true),
                mount_path: MOUNT_PATH.into(),
                ..Default::default()
            });
        }
        Ok(())
    }
}
