//! `config`: reads and edits berthctl's config file (`--berthconfig`, env
//! `BERTHCONFIG`, default `~/.berth/config`), kubectl's `config` verbs:
//! `view`, `get-contexts`, `current-context`, `use-context`, `set-context`,
//! `set-cluster`, `set-credentials`, `delete-context`, `delete-cluster`,
//! `delete-user`. The values come from the global flags, as kubectl's do:
//! `set-cluster NAME --server URL --ca-file CA`, `set-credentials NAME --token
//! T` (or `--client-certificate` and `--client-key`), `set-context NAME
//! --cluster C --user U -n NS`. `kubeconfig` writes a context as a
//! self-contained kubeconfig for kubectl and Kubernetes' client libraries.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use berth_client::kubeconfig::{BerthConfig, Cluster, User};
use serde::{Deserialize, Serialize};

use super::out;
use crate::tabwriter;

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Print the config file (tokens REDACTED unless --raw).
    View {
        /// Only what the current context uses.
        #[arg(long)]
        minify: bool,
        /// Print tokens as they are.
        #[arg(long)]
        raw: bool,
    },
    /// List the contexts (or one), the current one marked with *.
    GetContexts {
        name: Option<String>,
        /// Print only the names.
        #[arg(short = 'o', long)]
        output: Option<String>,
    },
    /// Print the current context's name.
    CurrentContext,
    /// Make a context the current one.
    UseContext { name: String },
    /// Create or change a context: --cluster, --user and -n NAMESPACE.
    SetContext {
        /// The context (default with --current: the current one).
        name: Option<String>,
        /// Change the current context.
        #[arg(long)]
        current: bool,
        #[arg(long)]
        cluster: Option<String>,
        #[arg(long)]
        user: Option<String>,
    },
    /// Create or change a cluster entry from --server and --ca-file.
    SetCluster {
        name: String,
        /// The CA that signed the server's certificate (or the global --ca-file).
        #[arg(long)]
        certificate_authority: Option<PathBuf>,
    },
    /// Create or change a user entry from --token or --client-certificate/--client-key.
    SetCredentials { name: String },
    /// Remove a context.
    DeleteContext { name: String },
    /// Remove a cluster entry.
    DeleteCluster { name: String },
    /// Remove a user entry.
    DeleteUser { name: String },
    /// Write the current context (or --context NAME) as a kubeconfig for kubectl, with the CA,
    /// client certificate and key embedded (certificate-authority-data...).
    Kubeconfig {
        /// The file to write (readable by its owner only); default: standard output.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

/// What the config verbs take from the global flags: only what the user set.
#[derive(Debug, Default)]
pub struct Given {
    pub path: PathBuf,
    pub server: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub token: Option<String>,
    pub client_certificate: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub namespace: Option<String>,
    /// The global --context.
    pub context: Option<String>,
}

pub fn run(given: Given, args: ConfigArgs) -> Result<()> {
    let path = &given.path;
    let mut cfg = BerthConfig::load(path)?;
    match args.command {
        ConfigCommand::View { minify, raw } => {
            let mut shown = cfg.clone();
            if minify {
                if shown.current_context.is_empty() {
                    bail!("current-context must exist in order to minify");
                }
                let ctx = shown.context(&cfg.current_context).cloned();
                let Some(ctx) = ctx else { bail!("cannot locate context {}", cfg.current_context) };
                shown.contexts = vec![ctx.clone()];
                shown.clusters.retain(|c| c.name == ctx.context.cluster);
                shown.users.retain(|u| u.name == ctx.context.user);
            }
            if !raw {
                for u in &mut shown.users {
                    if u.user.token.is_some() {
                        u.user.token = Some("REDACTED".into());
                    }
                }
            }
            out(&serde_yaml::to_string(&shown)?);
        }
        ConfigCommand::GetContexts { name, output } => {
            let contexts: Vec<_> = match &name {
                Some(n) => match cfg.context(n) {
                    Some(c) => vec![c.clone()],
                    None => bail!("context {n} not found"),
                },
                None => cfg.contexts.clone(),
            };
            match output.as_deref() {
                Some("name") => contexts.iter().for_each(|c| out(&format!("{}\n", c.name))),
                Some(other) => bail!("output must be one of '' or 'name', not {other:?}"),
                None => {
                    let mut text = String::from("CURRENT\tNAME\tCLUSTER\tAUTHINFO\tNAMESPACE\n");
                    for c in &contexts {
                        let mark = if c.name == cfg.current_context { "*" } else { "" };
                        let ns = c.context.namespace.as_deref().unwrap_or("");
                        text.push_str(&format!("{mark}\t{}\t{}\t{}\t{ns}\n", c.name, c.context.cluster, c.context.user));
                    }
                    out(&tabwriter::align(&text, 3));
                }
            }
        }
        ConfigCommand::CurrentContext => {
            if cfg.current_context.is_empty() {
                bail!("current-context is not set (berthctl config use-context NAME sets it)");
            }
            out(&format!("{}\n", cfg.current_context));
        }
        ConfigCommand::UseContext { name } => {
            if cfg.context(&name).is_none() {
                bail!("no context exists with the name: {name:?} (berthctl config get-contexts lists them)");
            }
            cfg.current_context = name.clone();
            cfg.save(path)?;
            out(&format!("Switched to context \"{name}\".\n"));
        }
        ConfigCommand::SetContext { name, current, cluster, user } => {
            let name = match (name, current) {
                (Some(_), true) => bail!("you cannot specify both a context name and --current"),
                (Some(n), false) => n,
                (None, true) if !cfg.current_context.is_empty() => cfg.current_context.clone(),
                (None, true) => bail!("no current context is set"),
                (None, false) => bail!("you must specify a context name or --current"),
            };
            let (ctx, created) = cfg.context_mut(&name);
            if let Some(c) = cluster {
                ctx.cluster = c;
            }
            if let Some(u) = user {
                ctx.user = u;
            }
            if let Some(ns) = given.namespace {
                ctx.namespace = Some(ns).filter(|n| !n.is_empty());
            }
            cfg.save(path)?;
            out(&format!("Context \"{name}\" {}.\n", if created { "created" } else { "modified" }));
        }
        ConfigCommand::SetCluster { name, certificate_authority } => {
            let existing = cfg.clusters.iter().find(|c| c.name == name).map(|c| c.cluster.clone());
            let server = match (given.server, &existing) {
                (Some(s), _) => s,
                (None, Some(e)) => e.server.clone(),
                (None, None) => bail!("a new cluster needs --server URL"),
            };
            let ca = certificate_authority.or(given.ca_file).or(existing.and_then(|e| e.certificate_authority));
            let ca = ca.map(|p| std::path::absolute(&p).unwrap_or(p));
            cfg.set_cluster(&name, Cluster { server, certificate_authority: ca });
            cfg.save(path)?;
            out(&format!("Cluster \"{name}\" set.\n"));
        }
        ConfigCommand::SetCredentials { name } => {
            let mut user = cfg.users.iter().find(|u| u.name == name).map(|u| u.user.clone()).unwrap_or_default();
            if given.token.is_none() && given.client_certificate.is_none() {
                bail!("set-credentials needs --token TOKEN, or --client-certificate FILE and --client-key FILE");
            }
            if let Some(t) = given.token {
                user = User { token: Some(t), ..Default::default() };
            }
            if let (Some(cert), Some(key)) = (given.client_certificate, given.client_key) {
                let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
                user = User { token: user.token, client_certificate: Some(abs(cert)), client_key: Some(abs(key)) };
            }
            cfg.set_user(&name, user);
            cfg.save(path)?;
            out(&format!("User \"{name}\" set.\n"));
        }
        ConfigCommand::DeleteContext { name } => {
            if cfg.context(&name).is_none() {
                bail!("cannot delete context {name}, not in {}", path.display());
            }
            cfg.contexts.retain(|c| c.name != name);
            if cfg.current_context == name {
                cfg.current_context.clear();
                eprintln!("warning: this removed your active context, use \"berthctl config use-context\" to select a different one");
            }
            cfg.save(path)?;
            out(&format!("deleted context {name} from {}\n", path.display()));
        }
        ConfigCommand::DeleteCluster { name } => {
            if !cfg.clusters.iter().any(|c| c.name == name) {
                bail!("cannot delete cluster {name}, not in {}", path.display());
            }
            cfg.clusters.retain(|c| c.name != name);
            cfg.save(path)?;
            out(&format!("deleted cluster {name} from {}\n", path.display()));
        }
        ConfigCommand::DeleteUser { name } => {
            if !cfg.users.iter().any(|u| u.name == name) {
                bail!("cannot delete user {name}, not in {}", path.display());
            }
            cfg.users.retain(|u| u.name != name);
            cfg.save(path)?;
            out(&format!("deleted user {name} from {}\n", path.display()));
        }
        ConfigCommand::Kubeconfig { output } => {
            let text = serde_yaml::to_string(&kubeconfig(&cfg, path, given.context.as_deref())?)?;
            match output {
                Some(file) => write_private(&file, &text).with_context(|| format!("cannot write {}", file.display()))?,
                None => out(&text),
            }
        }
    }
    Ok(())
}

/// A kubeconfig as kubectl and Kubernetes' client libraries read it, self-contained: the files
/// a Berth context names are embedded as base64 `-data` fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub clusters: Vec<KubeconfigCluster>,
    pub users: Vec<KubeconfigUser>,
    pub contexts: Vec<KubeconfigContext>,
    #[serde(rename = "current-context")]
    pub current_context: String,
    pub preferences: serde_yaml::Mapping,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigCluster {
    pub name: String,
    pub cluster: KubeconfigClusterData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigClusterData {
    pub server: String,
    #[serde(rename = "certificate-authority-data", default, skip_serializing_if = "Option::is_none")]
    pub certificate_authority_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigUser {
    pub name: String,
    pub user: KubeconfigUserData,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigUserData {
    #[serde(rename = "client-certificate-data", default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_data: Option<String>,
    #[serde(rename = "client-key-data", default, skip_serializing_if = "Option::is_none")]
    pub client_key_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigContext {
    pub name: String,
    pub context: KubeconfigContextData,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KubeconfigContextData {
    pub cluster: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The context `name` (default: the current one) of the config file at `path` as a kubeconfig
/// with only that context, its cluster and its user, made current.
pub fn kubeconfig(cfg: &BerthConfig, path: &Path, name: Option<&str>) -> Result<Kubeconfig> {
    let name = match name {
        Some(n) => n,
        None if cfg.current_context.is_empty() => {
            bail!("no current context in {} (name one with --context NAME)", path.display())
        }
        None => cfg.current_context.as_str(),
    };
    let resolved = cfg.resolve(Some(name), path)?;
    let Some(ctx) = cfg.context(name) else { bail!("context {name:?} not found in {}", path.display()) };
    let Some(server) = resolved.server else {
        bail!("context {name:?} names no cluster with a server (berthctl config set-cluster NAME --server URL)")
    };
    let cluster_name = if ctx.context.cluster.is_empty() { name.to_string() } else { ctx.context.cluster.clone() };
    let cluster = KubeconfigClusterData { server, certificate_authority_data: resolved.ca_file.as_deref().map(base64_file).transpose()? };
    let user = KubeconfigUserData {
        client_certificate_data: resolved.client_certificate.as_deref().map(base64_file).transpose()?,
        client_key_data: resolved.client_key.as_deref().map(base64_file).transpose()?,
        token: resolved.token,
    };
    let has_user = !ctx.context.user.is_empty() && user != KubeconfigUserData::default();
    Ok(Kubeconfig {
        api_version: "v1".into(),
        kind: "Config".into(),
        clusters: vec![KubeconfigCluster { name: cluster_name.clone(), cluster }],
        users: if has_user { vec![KubeconfigUser { name: ctx.context.user.clone(), user }] } else { Vec::new() },
        contexts: vec![KubeconfigContext {
            name: name.to_string(),
            context: KubeconfigContextData {
                cluster: cluster_name,
                user: if has_user { ctx.context.user.clone() } else { String::new() },
                namespace: resolved.namespace,
            },
        }],
        current_context: name.to_string(),
        preferences: serde_yaml::Mapping::new(),
    })
}

/// A file's bytes as base64, for a kubeconfig's `-data` fields.
fn base64_file(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Writes `text` to `file` through a temporary file and a rename, readable by its owner only
/// (a kubeconfig holds a private key or a token).
fn write_private(file: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
