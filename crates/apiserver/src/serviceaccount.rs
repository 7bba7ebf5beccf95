//! ServiceAccounts: the "default" account the apiserver creates in every
//! namespace, the signed tokens bound to an account (kept in a Secret of
//! type `kubernetes.io/service-account-token` that pods mount), and their
//! verification: a token is valid only while its account exists with the
//! uid it was signed for. It sits above the registry, through which it
//! writes; the names it shares with pods (the default account, the token
//! secret, the mount path) are the ServiceAccount admission plugin's.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_api::pb::api::object::Kind;
use berth_api::pb::core::{Namespace, Secret, ServiceAccount};
use berth_api::{Object, ObjectMeta, Resource};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::{info, warn};

use crate::admission::service_account::{DEFAULT_ACCOUNT, token_secret_name};
use crate::error::Error;
use crate::lister::Filter;
use crate::registry::{self, Registry};
use crate::user::UserInfo;

/// The type of token secrets.
pub const TOKEN_SECRET_TYPE: &str = "kubernetes.io/service-account-token";
const TOKEN_PREFIX: &str = "berth-sa.";

/// The user a ServiceAccount authenticates as.
pub fn user_name(namespace: &str, account: &str) -> String {
    format!("system:serviceaccount:{namespace}:{account}")
}

/// Creates accounts and token secrets, and checks tokens.
pub struct ServiceAccounts {
    registry: Registry,
    /// HMAC-SHA256 key tokens are signed with; None: tokens are neither made nor accepted.
    key: Option<Vec<u8>>,
    /// The cluster CA, put into token secrets as ca.crt.
    ca_pem: Option<String>,
}

impl ServiceAccounts {
    pub fn new(registry: Registry, key: Option<Vec<u8>>, ca_pem: Option<String>) -> ServiceAccounts {
        ServiceAccounts { registry, key, ca_pem }
    }

    /// Whether tokens are signed (and so mounted into pods).
    pub fn signs_tokens(&self) -> bool {
        self.key.is_some()
    }

    fn mac(&self, payload: &str) -> Option<Hmac<Sha256>> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.as_ref()?).ok()?;
        mac.update(payload.as_bytes());
        Some(mac)
    }

    /// A token for the account (None when tokens are off).
    pub fn token_for(&self, namespace: &str, name: &str, uid: &str) -> Option<String> {
        let claims = serde_json::json!({ "iss": "berth/serviceaccount", "ns": namespace, "sa": name, "uid": uid });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&payload)?.finalize().into_bytes());
        Some(format!("{TOKEN_PREFIX}{payload}.{sig}"))
    }

    /// Checks a bearer token: None when it is not a token this server signed,
    /// an error when its account is gone or was replaced.
    pub fn authenticate(&self, token: &str) -> Option<Result<UserInfo, String>> {
        let rest = token.strip_prefix(TOKEN_PREFIX)?;
        let (payload, sig) = rest.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(payload)?.verify_slice(&sig).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let field = |k: &str| claims.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let (ns, name, uid) = (field("ns"), field("sa"), field("uid"));
        let current = match self.registry.get("ServiceAccount", &ns, &name) {
            Ok(o) => o,
            Err(_) => return Some(Err(format!("the service account {ns}/{name} of this token no longer exists"))),
        };
        if current.metadata().map(|m| m.uid.as_str()) != Some(uid.as_str()) {
            return Some(Err(format!("the service account {ns}/{name} of this token was deleted and recreated")));
        }
        Some(Ok(UserInfo {
            name: user_name(&ns, &name),
            uid,
            groups: vec!["system:serviceaccounts".into(), format!("system:serviceaccounts:{ns}")],
        }))
    }

    /// After a successful write: a new namespace gets its default account,
    /// a new account its token secret.
    pub async fn created(&self, object: &Object) {
        // Boxed: these futures hold whole writes and are rarely taken; inline, they made every
        // create's future (and each move of it) about 9 KB larger (22.5 KB instead of 13.5).
        let result = match &object.kind {
            Some(Kind::Namespace(ns)) => Box::pin(self.ensure_default(ns.name())).await,
            Some(Kind::ServiceAccount(sa)) => Box::pin(self.ensure_token_secret(sa)).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            warn!(object = %object.name(), cause = %e, "cannot create the service account or its token");
        }
    }

    /// After a delete: the token secret of a removed account goes too.
    pub async fn deleted(&self, object: &Object) {
        let Some(Kind::ServiceAccount(sa)) = &object.kind else { return };
        let secret = token_secret_name(sa.name());
        match self.registry.delete("Secret", sa.namespace(), &secret, &registry::DeleteOptions::default()).await {
            Ok(_) | Err(Error::NotFound { .. }) => {}
            Err(e) => warn!(secret = %secret, cause = %e, "cannot delete the token of a deleted service account"),
        }
    }

    /// Gives every namespace its default account and every account its token.
    pub async fn bootstrap(&self) -> Result<(), Error> {
        let everything = Filter::parse(&Namespace::INFO, "", "")?;
        let (namespaces, _) = self.registry.list(&Namespace::INFO, "", &everything, 0).await?;
        for ns in &namespaces {
            if ns.metadata().is_some_and(|m| m.deletion_timestamp.is_empty()) {
                self.ensure_default(ns.name()).await?;
            }
        }
        if self.signs_tokens() {
            let (accounts, _) = self.registry.list(&ServiceAccount::INFO, "", &everything, 0).await?;
            for o in accounts {
                if let Some(Kind::ServiceAccount(sa)) = &o.kind {
                    self.ensure_token_secret(sa).await?;
                }
            }
        }
        Ok(())
    }

    async fn ensure_default(&self, namespace: &str) -> Result<(), Error> {
        let mut sa = ServiceAccount::default();
        *sa.metadata_mut() = ObjectMeta { name: DEFAULT_ACCOUNT.into(), namespace: namespace.into(), ..Default::default() };
        match self.registry.create(sa.into_object(), false).await {
            Ok(o) => {
                if let Some(Kind::ServiceAccount(sa)) = &o.kind {
                    self.ensure_token_secret(sa).await?;
                }
                Ok(())
            }
            Err(Error::AlreadyExists { .. }) => Ok(()),
            // The namespace is being deleted: nothing to give it.
            Err(Error::Forbidden(_)) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates (or, for a recreated account, replaces) the account's token secret.
    async fn ensure_token_secret(&self, sa: &ServiceAccount) -> Result<(), Error> {
        let (ns, name, uid) = (sa.namespace(), sa.name(), sa.meta().uid.as_str());
        let Some(token) = self.token_for(ns, name, uid) else { return Ok(()) };
        let secret_name = token_secret_name(name);
        let mut secret = Secret { r#type: TOKEN_SECRET_TYPE.into(), ..Default::default() };
        *secret.metadata_mut() = ObjectMeta { name: secret_name.clone(), namespace: ns.into(), ..Default::default() };
        let m = secret.metadata_mut();
        m.annotations.insert("kubernetes.io/service-account.name".into(), name.into());
        m.annotations.insert("kubernetes.io/service-account.uid".into(), uid.into());
        secret.data.insert("token".into(), token.into_bytes());
        secret.data.insert("namespace".into(), ns.as_bytes().to_vec());
        if let Some(ca) = &self.ca_pem {
            secret.data.insert("ca.crt".into(), ca.as_bytes().to_vec());
        }
        match self.registry.get("Secret", ns, &secret_name) {
            Ok(Object { kind: Some(Kind::Secret(old)) }) => {
                if old.meta().annotations.get("kubernetes.io/service-account.uid").map(String::as_str) == Some(uid) {
                    return Ok(());
                }
                // An account of the same name was recreated: the old token is void, replace it.
                secret.metadata_mut().resource_version = old.meta().resource_version.clone();
                self.registry.update(secret.into_object(), false, false).await?;
            }
            _ => match self.registry.create(secret.into_object(), false).await {
                Ok(_) => info!(namespace = %ns, account = %name, "created the service account token"),
                Err(Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_not_accept_tokens_signed_with_another_key() {
        let store: std::sync::Arc<dyn crate::storage::Store> = {
            let dir = tempfile::tempdir().expect("tempdir");
            let s = crate::storage::SledStore::open(dir.path(), crate::storage::SledOptions::default()).expect("open");
            std::mem::forget(dir);
            std::sync::Arc::new(s)
        };
        let registry = Registry::new(store);
        let a = ServiceAccounts::new(registry.clone(), Some(b"key-one-key-one-key-one-key-one!".to_vec()), None);
        let b = ServiceAccounts::new(registry, Some(b"key-two-key-two-key-two-key-two!".to_vec()), None);
        let token = a.token_for("default", "default", "u1").expect("token");
        assert!(b.authenticate(&token).is_none(), "a token signed with another key is not ours");
        assert!(a.authenticate("berth-sa.bogus.sig").is_none());
        // Signed by us, but the account does not exist.
        assert!(matches!(a.authenticate(&token), Some(Err(_))));
    }
}
