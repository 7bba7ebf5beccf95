//! `cordon` / `uncordon`: mark nodes unschedulable (or schedulable again)
//! through `spec.unschedulable`, with the node's resourceVersion as
//! precondition, as kubectl does; `drain` cordons through [`set_unschedulable`].

use anyhow::{Result, bail};
use berth_api::Resource;
use berth_api::pb::core::Node;
use berth_client::{Client, ListParams, modify};

use super::{Ctx, object_ref, out};
use crate::error;

#[derive(Debug, clap::Args)]
pub struct CordonArgs {
    /// Names of nodes (or node/NAME).
    pub nodes: Vec<String>,
    /// Act on the nodes matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
}

/// Cordons (`unschedulable` true) or uncordons the nodes named or selected.
pub async fn run(ctx: &Ctx, args: CordonArgs, unschedulable: bool) -> Result<()> {
    let client = ctx.client().await?;
    let names = node_names(&client, &args.nodes, args.selector.as_deref()).await?;
    let mut errors = Vec::new();
    for name in names {
        match set_unschedulable(&client, &name, unschedulable).await {
            Ok(line) => out(&format!("{line}\n")),
            Err(e) => errors.push(e),
        }
    }
    super::finish(errors)
}

/// The node names of the arguments (`NAME` or `node/NAME`), or of the
/// nodes a selector matches.
pub(crate) async fn node_names(client: &Client, args: &[String], selector: Option<&str>) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for a in args {
        let name = match a.split_once('/') {
            Some((kind, name)) if Node::INFO.is_named(kind) && !name.is_empty() => name,
            Some(_) => bail!("{a:?} is not a node: give a node's name (or node/NAME)"),
            None => a.as_str(),
        };
        names.push(name.to_string());
    }
    match (names.is_empty(), selector) {
        (true, None) => bail!("you must specify a node: give its name (or -l SELECTOR)"),
        (false, Some(_)) => bail!("name cannot be provided when a selector is specified"),
        (true, Some(sel)) => {
            let (nodes, _) =
                client.list::<Node>("", &ListParams::default().labels(sel)).await.map_err(|e| error::api(e, &Node::INFO, ""))?;
            if nodes.is_empty() {
                eprintln!("No resources found");
            }
            Ok(nodes.iter().map(|n| n.name().to_string()).collect())
        }
        (false, None) => Ok(names),
    }
}

/// Sets a node's `spec.unschedulable`, retrying on conflicting writes; the
/// line kubectl prints: `node/NAME cordoned` or `node/NAME already cordoned`.
pub(crate) async fn set_unschedulable(client: &Client, name: &str, unschedulable: bool) -> Result<String> {
    let info = &Node::INFO;
    let verb = if unschedulable { "cordoned" } else { "uncordoned" };
    // The fetched resourceVersion travels with the update: a concurrent
    // write (the kubelet's status, the node controller) is a conflict, and
    // the node is read again.
    let changed = modify::update::<Node>(client, "", name, |node| {
        let spec = node.spec.get_or_insert_with(Default::default);
        if spec.unschedulable.unwrap_or(false) == unschedulable {
            return false;
        }
        spec.unschedulable = unschedulable.then_some(true);
        true
    })
    .await
    .map_err(|e| error::api(e, info, name))?;
    Ok(match changed {
        Some(_) => format!("{} {verb}", object_ref(info, name)),
        None => format!("{} already {verb}", object_ref(info, name)),
    })
}
