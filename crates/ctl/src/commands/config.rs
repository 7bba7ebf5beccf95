//! `config`: reads and edits berthctl's config file (`--berthconfig`, env
//! `BERTHCONFIG`, default `~/.berth/config`), kubectl's `config` verbs:
//! `view`, `get-contexts`, `current-context`, `use-context`, `set-context`,
//! `set-cluster`, `set-credentials`, `delete-context`. The values come from
//! the global flags, as kubectl's do: `set-cluster NAME --server URL
//! --ca-file CA`, `set-credentials NAME --token T` (or `--client-certificate`
//! and `--client-key`), `set-context NAME --cluster C --user U -n NS`.

use std::path::PathBuf;

use anyhow::{Result, bail};
use berth_client::kubeconfig::{BerthConfig, Cluster, User};

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
    }
    Ok(())
}
