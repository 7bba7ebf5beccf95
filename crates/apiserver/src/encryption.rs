//! Secrets encrypted at rest (`--encryption-key-file`): AES-256-GCM with
//! named keys, the first of which encrypts while all of them decrypt. A
//! [`Store`] wrapper seals Secret values on their way to the backend and
//! opens them on the way back, so neither sled's files nor its log ever hold
//! a secret in the clear; at start, secrets sealed with an older key (or not
//! at all) are rewritten with the current one.

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use bytes::Bytes;
use tracing::info;

use crate::storage::{self, KeyValue, Revision, Store, StoreStats, WatchStream};

/// The prefix of sealed values, as Kubernetes' aesgcm provider writes them.
const MAGIC: &[u8] = b"k8s:enc:aesgcm:v1:";
const NONCE_LEN: usize = 12;
/// The keys whose values are sealed.
const SEALED_PREFIX: &str = "/registry/secrets/";

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Line { path: String, line: usize, reason: String },
    #[error("{path} holds no key (write lines like `key1:BASE64-OF-32-BYTES`)")]
    Empty { path: String },
}

/// Seals and opens values with named keys.
#[derive(Default)]
pub struct Transformer {
    /// The first key encrypts; all decrypt.
    keys: Vec<(String, Aes256Gcm)>,
}

impl std::fmt::Debug for Transformer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transformer").field("keys", &self.keys.iter().map(|k| &k.0).collect::<Vec<_>>()).finish()
    }
}

impl Transformer {
    /// Reads `NAME:BASE64` lines (32-byte keys; `#` comments).
    pub fn from_file(path: &Path) -> Result<Transformer, Error> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: p.clone(), source })?;
        let t = Transformer::parse(&text).map_err(|(line, reason)| Error::Line { path: p.clone(), line, reason })?;
        if t.keys.is_empty() {
            return Err(Error::Empty { path: p });
        }
        Ok(t)
    }

    /// Parses the key file's text.
    pub fn parse(text: &str) -> Result<Transformer, (usize, String)> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, b64) = line.split_once(':').ok_or((i + 1, "want NAME:BASE64".to_string()))?;
            let name = name.trim();
            if name.is_empty() || name.contains(':') {
                return Err((i + 1, "the key name must be non-empty, without ':'".into()));
            }
            let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).map_err(|e| (i + 1, format!("key {name}: {e}")))?;
            let cipher = Aes256Gcm::new_from_slice(&raw).map_err(|_| (i + 1, format!("key {name}: must be 32 bytes, is {}", raw.len())))?;
            if keys.iter().any(|(n, _): &(String, Aes256Gcm)| n == name) {
                return Err((i + 1, format!("key {name} appears twice")));
            }
            keys.push((name.to_string(), cipher));
        }
        Ok(Transformer { keys })
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The name of the key that encrypts.
    pub fn primary(&self) -> Option<&str> {
        self.keys.first().map(|k| k.0.as_str())
    }

    fn applies(key: &str) -> bool {
        key.starts_with(SEALED_PREFIX)
    }

    /// Seals a value stored under `key` (others pass unchanged).
    pub fn seal(&self, key: &str, value: Bytes) -> storage::Result<Bytes> {
        let Some((name, cipher)) = self.keys.first() else { return Ok(value) };
        if !Self::applies(key) {
            return Ok(value);
        }
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: &value, aad: key.as_bytes() })
            .map_err(|_| storage::Error::corrupt(key, "encryption failed"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + name.len() + 1 + NONCE_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(Bytes::from(out))
    }

    /// The name of the key a stored value is sealed with (None: plaintext).
    fn sealed_with(value: &[u8]) -> Option<(&str, &[u8])> {
        let rest = value.strip_prefix(MAGIC)?;
        let colon = rest.iter().position(|b| *b == b':')?;
        let name = std::str::from_utf8(&rest[..colon]).ok()?;
        Some((name, &rest[colon + 1..]))
    }

    /// Opens a stored value (plaintext values, written before encryption
    /// was enabled, pass unchanged).
    pub fn open(&self, key: &str, value: &Bytes) -> storage::Result<Bytes> {
        let Some((name, rest)) = Self::sealed_with(value) else { return Ok(value.clone()) };
        let cipher =
            self.keys.iter().find(|k| k.0 == name).map(|k| &k.1).ok_or_else(|| {
                storage::Error::corrupt(key, format!("sealed with key {name:?}, which --encryption-key-file does not hold"))
            })?;
        if rest.len() < NONCE_LEN {
            return Err(storage::Error::corrupt(key, "sealed value too short"));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: key.as_bytes() })
            .map(Bytes::from)
            .map_err(|_| storage::Error::corrupt(key, format!("cannot decrypt with key {name:?}")))
    }

    /// Whether a stored value needs rewriting with the current key.
    fn stale(&self, key: &str, value: &[u8]) -> bool {
        Self::applies(key) && self.primary().is_some() && Self::sealed_with(value).map(|(n, _)| n) != self.primary()
    }
}

/// A store that seals Secret values before the backend sees them.
pub struct EncryptedStore {
    inner: Arc<dyn Store>,
    transformer: Arc<Transformer>,
}

impl EncryptedStore {
    pub fn new(inner: Arc<dyn Store>, transformer: Arc<Transformer>) -> EncryptedStore {
        EncryptedStore { inner, transformer }
    }

    fn open_kv(&self, mut kv: KeyValue) -> storage::Result<KeyValue> {
        kv.value = self.transformer.open(&kv.key, &kv.value)?;
        Ok(kv)
    }

    /// Rewrites every secret not sealed with the current key; returns how many.
    pub async fn rewrite_stale(&self) -> storage::Result<usize> {
        if !self.transformer.is_enabled() {
            return Ok(0);
        }
        let (kvs, _) = self.inner.list(SEALED_PREFIX)?;
        let mut rewritten = 0;
        for kv in kvs {
            if !self.transformer.stale(&kv.key, &kv.value) {
                continue;
            }
            let plain = self.transformer.open(&kv.key, &kv.value)?;
            match self.inner.update(&kv.key, self.transformer.seal(&kv.key, plain)?, Some(kv.mod_revision)).await {
                Ok(_) => rewritten += 1,
                // Written meanwhile, and so sealed with the current key already.
                Err(storage::Error::Conflict { .. } | storage::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if rewritten > 0 {
            info!(rewritten, key = self.transformer.primary().unwrap_or_default(), "rewrote secrets with the current encryption key");
        }
        Ok(rewritten)
    }
}

#[async_trait::async_trait]
impl Store for EncryptedStore {
    async fn create(&self, key: &str, value: Bytes) -> storage::Result<Revision> {
        self.inner.create(key, self.transformer.seal(key, value)?).await
    }
    async fn update(&self, key: &str, value: Bytes, expected: Option<Revision>) -> storage::Result<Revision> {
        self.inner.update(key, self.transformer.seal(key, value)?, expected).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> storage::Result<(Revision, KeyValue)> {
        let (rev, kv) = self.inner.delete(key, expected).await?;
        Ok((rev, self.open_kv(kv)?))
    }
    fn get(&self, key: &str) -> storage::Result<Option<KeyValue>> {
        self.inner.get(key)?.map(|kv| self.open_kv(kv)).transpose()
    }
    fn list(&self, prefix: &str) -> storage::Result<(Vec<KeyValue>, Revision)> {
        let (kvs, rev) = self.inner.list(prefix)?;
        Ok((kvs.into_iter().map(|kv| self.open_kv(kv)).collect::<storage::Result<_>>()?, rev))
    }
    async fn list_at_least(&self, prefix: &str, min: Revision) -> storage::Result<(Vec<KeyValue>, Revision)> {
        let (kvs, rev) = self.inner.list_at_least(prefix, min).await?;
        Ok((kvs.into_iter().map(|kv| self.open_kv(kv)).collect::<storage::Result<_>>()?, rev))
    }
    /// Events carry sealed values: watchers open them with [`Transformer::open`].
    fn watch(&self, prefix: &str, from: Revision) -> storage::Result<WatchStream> {
        self.inner.watch(prefix, from)
    }
    fn current_revision(&self) -> Revision {
        self.inner.current_revision()
    }
    fn compacted_revision(&self) -> Revision {
        self.inner.compacted_revision()
    }
    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([n; 32])
    }

    #[test]
    fn should_seal_secrets_and_open_them_with_any_listed_key() {
        let old = Transformer::parse(&format!("k1:{}", key(1))).expect("parse");
        let sealed = old.seal("/registry/secrets/default/s", Bytes::from_static(b"hunter2")).expect("seal");
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        let rotated = Transformer::parse(&format!("k2:{}\nk1:{}", key(2), key(1))).expect("parse");
        assert_eq!(rotated.open("/registry/secrets/default/s", &sealed).expect("open"), Bytes::from_static(b"hunter2"));
        assert!(rotated.stale("/registry/secrets/default/s", &sealed));
        // A value moved to another key does not open (the key is authenticated data).
        assert!(rotated.open("/registry/secrets/default/other", &sealed).is_err());
        let only_new = Transformer::parse(&format!("k2:{}", key(2))).expect("parse");
        assert!(only_new.open("/registry/secrets/default/s", &sealed).is_err());
        // Other kinds are not sealed.
        assert_eq!(old.seal("/registry/configmaps/default/c", Bytes::from_static(b"x")).expect("seal"), Bytes::from_static(b"x"));
    }

    #[test]
    fn should_refuse_keys_of_the_wrong_size() {
        assert!(Transformer::parse("k1:aGVsbG8=").is_err());
        assert!(Transformer::parse("nocolon").is_err());
    }
}
