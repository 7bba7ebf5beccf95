//! `auth`: what the server says a user may do (`can-i`) and who the caller
//! is (`whoami`), answered by the apiserver's authorizers.

use anyhow::{Result, bail};
use berth_api::pb::api::AccessReviewRequest;

use super::{Ctx, out};

#[derive(Debug, clap::Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {
    /// Whether an action is allowed: `can-i VERB RESOURCE [NAME]`; prints
    /// yes or no (and exits 1 on no), like kubectl.
    CanI(CanIArgs),
    /// The user and groups the server sees for these credentials.
    Whoami,
}

#[derive(Debug, clap::Args)]
pub struct CanIArgs {
    /// get, list, watch, create, update, patch, delete, deletecollection, or *.
    pub verb: String,
    /// A kind by any name (`pods`, `po`), with a subresource (`pods/exec`), or a path (`/metrics`).
    pub resource: String,
    /// One object's name.
    pub name: Option<String>,
    /// Across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// Ask for another user (needs the right to review others).
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// Groups of --as.
    #[arg(long = "as-group")]
    pub as_groups: Vec<String>,
    /// Say which rule or role decided.
    #[arg(long)]
    pub reason: bool,
}

pub async fn run(ctx: &Ctx, args: AuthArgs) -> Result<()> {
    let client = ctx.client().await?;
    match args.command {
        AuthCommand::Whoami => {
            let me = client
                .access_review(AccessReviewRequest { verb: "get".into(), non_resource_path: "/version".into(), ..Default::default() })
                .await?;
            out(&format!("Username: {}\nGroups:   [{}]\n", me.user, me.groups.join(" ")));
            Ok(())
        }
        AuthCommand::CanI(a) => {
            if a.as_user.is_none() && !a.as_groups.is_empty() {
                bail!("--as-group needs --as");
            }
            let mut req = AccessReviewRequest {
                verb: a.verb.clone(),
                name: a.name.clone().unwrap_or_default(),
                user: a.as_user.clone().unwrap_or_default(),
                groups: a.as_groups.clone(),
                ..Default::default()
            };
            if a.resource.starts_with('/') {
                req.non_resource_path = a.resource.clone();
            } else {
                let (kind, sub) = a.resource.split_once('/').unwrap_or((a.resource.as_str(), ""));
                let info = super::resolve_kind(kind)?;
                req.resource = if sub.is_empty() { info.plural.to_string() } else { format!("{}/{sub}", info.plural) };
                req.namespace = if info.namespaced && !a.all_namespaces { ctx.namespace().to_string() } else { String::new() };
            }
            let answer = client.access_review(req).await?;
            let mut text = if answer.allowed { "yes".to_string() } else { "no".to_string() };
            if a.reason && !answer.reason.is_empty() {
                text.push_str(&format!(" - {}", answer.reason));
            }
            text.push('\n');
            out(&text);
            if !answer.allowed {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
