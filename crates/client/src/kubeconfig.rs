//! berthctl's config file: clusters, users and contexts in kubeconfig's
//! shape (`current-context`, `clusters[].cluster.server`, …), so an operator
//! reads and writes it as a kubeconfig. Where it lives (`$BERTHCONFIG`, else
//! `~/.berth/config`), how a context resolves into a [`ClientConfig`] and a
//! namespace, and how it is saved (atomically, readable by its owner only,
//! since it holds tokens).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ClientConfig;

/// The environment variable naming the config file.
pub const ENV: &str = "BERTHCONFIG";

/// Why the config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid config file: {source}")]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("context {name:?} not found in {path} (contexts: {known})")]
    NoContext { name: String, path: PathBuf, known: String },
    #[error("context {context:?} refers to cluster {cluster:?}, which is not in {path}")]
    NoCluster { context: String, cluster: String, path: PathBuf },
    #[error("context {context:?} refers to user {user:?}, which is not in {path}")]
    NoUser { context: String, user: String, path: PathBuf },
    #[error("no home directory ($HOME is unset): set {ENV} to the config file's path")]
    NoHome,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BerthConfig {
    #[serde(rename = "apiVersion", default = "api_version")]
    pub api_version: String,
    #[serde(default = "kind")]
    pub kind: String,
    #[serde(rename = "current-context", default)]
    pub current_context: String,
    #[serde(default)]
    pub clusters: Vec<NamedCluster>,
    #[serde(default)]
    pub users: Vec<NamedUser>,
    #[serde(default)]
    pub contexts: Vec<NamedContext>,
    /// kubeconfig's `preferences: {}`, kept as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferences: Option<serde_yaml::Value>,
}

fn api_version() -> String {
    "v1".into()
}

fn kind() -> String {
    "Config".into()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedCluster {
    pub name: String,
    pub cluster: Cluster,
}

/// Where a cluster's API server is and how to trust it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub server: String,
    #[serde(rename = "certificate-authority", default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedUser {
    pub name: String,
    pub user: User,
}

/// A user's credentials: a token or a client certificate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(rename = "client-certificate", default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<PathBuf>,
    #[serde(rename = "client-key", default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedContext {
    pub name: String,
    pub context: Context,
}

/// A cluster, a user and a default namespace, under one name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    #[serde(default)]
    pub cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What a context gives a client.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// The context's name, empty when none applies.
    pub context: String,
    /// The server (None: the context names none), CA and credentials.
    pub server: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub token: Option<String>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub namespace: Option<String>,
}

impl Resolved {
    /// Fills in what `config` left unset (its server is replaced only when
    /// `server_given` is false: an explicit `--server` wins).
    pub fn apply(&self, config: &mut ClientConfig, server_given: bool) {
        if let (false, Some(server)) = (server_given, &self.server) {
            config.server = server.clone();
        }
        if config.ca_file.is_none() {
            config.ca_file = self.ca_file.clone();
        }
        if config.token.is_none() && config.client_certificate.is_none() {
            config.token = self.token.clone();
            config.client_certificate = self.client_certificate.clone();
            config.client_key = self.client_key.clone();
        }
    }
}

/// `$BERTHCONFIG`, else `~/.berth/config`.
pub fn default_path() -> Result<PathBuf, Error> {
    if let Some(p) = std::env::var_os(ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or(Error::NoHome)?;
    Ok(PathBuf::from(home).join(".berth").join("config"))
}

impl BerthConfig {
    /// An empty config (`apiVersion: v1`, `kind: Config`).
    pub fn new() -> BerthConfig {
        BerthConfig { api_version: api_version(), kind: kind(), ..Default::default() }
    }

    /// Reads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<BerthConfig, Error> {
        match std::fs::read_to_string(path) {
            Ok(text) if text.trim().is_empty() => Ok(BerthConfig::new()),
            Ok(text) => serde_yaml::from_str(&text).map_err(|source| Error::Parse { path: path.to_path_buf(), source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BerthConfig::new()),
            Err(source) => Err(Error::Read { path: path.to_path_buf(), source }),
        }
    }

    /// Writes the config to `path` through a temporary file and a rename, so
    /// a crash never leaves half a file; only its owner can read it.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let err = |source| Error::Write { path: path.to_path_buf(), source };
        let text = serde_yaml::to_string(self).map_err(|e| err(std::io::Error::other(e)))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e)
        })
    }

    pub fn context(&self, name: &str) -> Option<&NamedContext> {
        self.contexts.iter().find(|c| c.name == name)
    }

    /// The context `name` (or the current one) with its cluster and user
    /// looked up; paths relative to the file are made absolute, as kubectl
    /// does. No context at all (none named, none current) resolves to
    /// nothing set.
    pub fn resolve(&self, name: Option<&str>, path: &Path) -> Result<Resolved, Error> {
        let name = match name {
            Some(n) => n,
            None if self.current_context.is_empty() => return Ok(Resolved::default()),
            None => self.current_context.as_str(),
        };
        let Some(ctx) = self.context(name) else {
            let known: Vec<&str> = self.contexts.iter().map(|c| c.name.as_str()).collect();
            let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
            return Err(Error::NoContext { name: name.to_string(), path: path.to_path_buf(), known });
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let absolute = |p: &Option<PathBuf>| p.as_ref().map(|p| if p.is_absolute() { p.clone() } else { base.join(p) });
        let mut out = Resolved { context: name.to_string(), namespace: ctx.context.namespace.clone(), ..Default::default() };
        if !ctx.context.cluster.is_empty() {
            let cluster = self.clusters.iter().find(|c| c.name == ctx.context.cluster).ok_or_else(|| Error::NoCluster {
                context: name.to_string(),
                cluster: ctx.context.cluster.clone(),
                path: path.to_path_buf(),
            })?;
            out.server = Some(cluster.cluster.server.clone()).filter(|s| !s.is_empty());
            out.ca_file = absolute(&cluster.cluster.certificate_authority);
        }
        if !ctx.context.user.is_empty() {
            let user = self.users.iter().find(|u| u.name == ctx.context.user).ok_or_else(|| Error::NoUser {
                context: name.to_string(),
                user: ctx.context.user.clone(),
                path: path.to_path_buf(),
            })?;
            out.token = user.user.token.clone();
            out.client_certificate = absolute(&user.user.client_certificate);
            out.client_key = absolute(&user.user.client_key);
        }
        Ok(out)
    }

    /// Adds or replaces the cluster `name`.
    pub fn set_cluster(&mut self, name: &str, cluster: Cluster) {
        match self.clusters.iter_mut().find(|c| c.name == name) {
            Some(c) => c.cluster = cluster,
            None => self.clusters.push(NamedCluster { name: name.to_string(), cluster }),
        }
    }

    /// Adds or replaces the user `name`.
    pub fn set_user(&mut self, name: &str, user: User) {
        match self.users.iter_mut().find(|u| u.name == name) {
            Some(u) => u.user = user,
            None => self.users.push(NamedUser { name: name.to_string(), user }),
        }
    }

    /// The context `name` to change, created empty if new; true when it was created.
    pub fn context_mut(&mut self, name: &str) -> (&mut Context, bool) {
        let created = self.context(name).is_none();
        if created {
            self.contexts.push(NamedContext { name: name.to_string(), context: Context::default() });
        }
        let ctx = self.contexts.iter_mut().find(|c| c.name == name).map(|c| &mut c.context);
        (ctx.expect("the context exists: it was just found or pushed"), created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
current-context: prod
preferences: {}
clusters:
- name: prod
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority: pki/ca.crt
users:
- name: admin
  user:
    token: s3cret
contexts:
- name: prod
  context:
    cluster: prod
    user: admin
    namespace: web
- name: broken
  context:
    cluster: nowhere
";

    #[test]
    fn should_resolve_the_current_context_like_kubectl() {
        let cfg: BerthConfig = serde_yaml::from_str(KUBECONFIG).expect("kubeconfig parses");
        let r = cfg.resolve(None, Path::new("/etc/berth/config")).expect("resolves");
        assert_eq!(r.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(r.ca_file, Some(PathBuf::from("/etc/berth/pki/ca.crt")), "relative to the file");
        assert_eq!(r.token.as_deref(), Some("s3cret"));
        assert_eq!(r.namespace.as_deref(), Some("web"));

        let mut config = ClientConfig::default();
        r.apply(&mut config, false);
        assert_eq!(config.server, "https://10.0.0.1:6443");
        let mut config = ClientConfig::new("http://127.0.0.1:9");
        r.apply(&mut config, true);
        assert_eq!(config.server, "http://127.0.0.1:9", "an explicit --server wins");
    }

    #[test]
    fn should_name_what_is_missing() {
        let cfg: BerthConfig = serde_yaml::from_str(KUBECONFIG).expect("parses");
        let err = cfg.resolve(Some("staging"), Path::new("/c")).expect_err("no such context").to_string();
        assert_eq!(err, "context \"staging\" not found in /c (contexts: prod, broken)");
        let err = cfg.resolve(Some("broken"), Path::new("/c")).expect_err("no such cluster").to_string();
        assert_eq!(err, "context \"broken\" refers to cluster \"nowhere\", which is not in /c");
        let err = serde_yaml::from_str::<BerthConfig>("clusters: [{name: a, cluster: {server: x, sever: y}}]").expect_err("typo");
        assert!(err.to_string().contains("unknown field `sever`"), "{err}");
        assert_eq!(BerthConfig::new().resolve(None, Path::new("/c")).expect("empty"), Resolved::default());
    }

    #[test]
    fn should_save_atomically_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/config");
        let mut cfg = BerthConfig::new();
        cfg.set_cluster("local", Cluster { server: "http://127.0.0.1:6443".into(), certificate_authority: None });
        let (ctx, created) = cfg.context_mut("local");
        ctx.cluster = "local".into();
        assert!(created);
        cfg.current_context = "local".into();
        cfg.save(&path).expect("saved");
        assert_eq!(BerthConfig::load(&path).expect("loads"), cfg);
        let mode = std::fs::metadata(&path).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(path.parent().expect("dir")).expect("dir").count(), 1, "no temporary file left");
        assert_eq!(BerthConfig::load(&dir.path().join("none")).expect("missing is empty"), BerthConfig::new());
    }
}
