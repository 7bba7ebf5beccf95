//! `top nodes` and `top pods`: CPU and memory usage as the kubelets
//! measure it, gathered by the apiserver, in kubectl's columns
//! (millicores such as `250m`, memory in `Mi`).

use anyhow::{Result, anyhow, bail};
use berth_api::Resource;
use berth_api::pb::api::{ClusterStatsRequest, ClusterStatsResponse};
use berth_api::pb::core::{Node, Pod};
use berth_api::pb::kubelet::{NodeStats, PodStats};
use berth_client::Client;

use super::{Ctx, out};
use crate::error;
use crate::tabwriter::align;

#[derive(Debug, clap::Args)]
pub struct TopArgs {
    #[command(subcommand)]
    pub what: Top,
}

#[derive(Debug, clap::Subcommand)]
pub enum Top {
    /// CPU and memory usage of nodes, and their share of the node's capacity.
    #[command(visible_alias = "node", alias = "no")]
    Nodes(TopNodesArgs),
    /// CPU and memory usage of pods (and with --containers, of their containers).
    #[command(visible_alias = "pod", alias = "po")]
    Pods(TopPodsArgs),
}

#[derive(Debug, clap::Args)]
pub struct TopNodesArgs {
    /// Only this node.
    pub name: Option<String>,
    /// Print the table without its header line.
    #[arg(long)]
    pub no_headers: bool,
}

#[derive(Debug, clap::Args)]
pub struct TopPodsArgs {
    /// Only this pod.
    pub name: Option<String>,
    /// Pods of every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// One line per container.
    #[arg(long)]
    pub containers: bool,
    /// Print the table without its header line.
    #[arg(long)]
    pub no_headers: bool,
}

pub async fn run(ctx: &Ctx, args: TopArgs) -> Result<()> {
    match args.what {
        Top::Nodes(a) => nodes(ctx, a).await,
        Top::Pods(a) => pods(ctx, a).await,
    }
}

async fn nodes(ctx: &Ctx, args: TopNodesArgs) -> Result<()> {
    let client = ctx.client().await?;
    let name = args.name.unwrap_or_default();
    let resp = stats(&client, "nodes", "", &name, &Node::INFO).await?;
    let mut nodes: Vec<NodeStats> = resp.nodes.into_iter().filter_map(|n| n.node).collect();
    nodes.sort_by(|a, b| a.node_name.cmp(&b.node_name));
    warn_missing(&resp.errors, nodes.is_empty())?;
    if nodes.is_empty() {
        bail!("metrics not available yet");
    }
    let mut text = String::new();
    if !args.no_headers {
        text.push_str("NAME\tCPU(cores)\tCPU%\tMEMORY(bytes)\tMEMORY%\n");
    }
    for n in &nodes {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            n.node_name,
            cpu(n.cpu_usage_nano_cores),
            percent(n.cpu_usage_nano_cores / 1_000_000, n.cpu_capacity_millis),
            memory(n.memory_working_set_bytes),
            percent(n.memory_working_set_bytes, n.memory_capacity_bytes),
        ));
    }
    out(&align(&text, 3));
    Ok(())
}

async fn pods(ctx: &Ctx, args: TopPodsArgs) -> Result<()> {
    let name = args.name.unwrap_or_default();
    if args.all_namespaces && !name.is_empty() {
        bail!("a resource cannot be retrieved by name across all namespaces");
    }
    let client = ctx.client().await?;
    let namespace = if args.all_namespaces { "" } else { ctx.namespace() };
    let resp = stats(&client, "pods", namespace, &name, &Pod::INFO).await?;
    let mut pods: Vec<PodStats> = resp.nodes.into_iter().flat_map(|n| n.pods).collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    warn_missing(&resp.errors, pods.is_empty())?;
    if pods.is_empty() {
        if !name.is_empty() {
            bail!("metrics not available yet");
        }
        match namespace {
            "" => eprintln!("No resources found"),
            ns => eprintln!("No resources found in {ns} namespace."),
        }
        return Ok(());
    }
    let mut header: Vec<&str> = Vec::new();
    if args.all_namespaces {
        header.push("NAMESPACE");
    }
    header.extend(if args.containers { &["POD", "NAME"][..] } else { &["NAME"][..] });
    header.extend(["CPU(cores)", "MEMORY(bytes)"]);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for p in &pods {
        let ns = args.all_namespaces.then(|| p.namespace.clone());
        if args.containers {
            let mut containers = p.containers.clone();
            containers.sort_by(|a, b| a.name.cmp(&b.name));
            for c in containers {
                let mut row: Vec<String> = ns.iter().cloned().collect();
                row.extend([p.name.clone(), c.name, cpu(c.cpu_usage_nano_cores), memory(c.memory_working_set_bytes)]);
                rows.push(row);
            }
        } else {
            let mut row: Vec<String> = ns.into_iter().collect();
            row.extend([p.name.clone(), cpu(p.cpu_usage_nano_cores), memory(p.memory_working_set_bytes)]);
            rows.push(row);
        }
    }
    let mut text = String::new();
    if !args.no_headers {
        text.push_str(&header.join("\t"));
        text.push('\n');
    }
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    out(&align(&text, 3));
    Ok(())
}

async fn stats(client: &Client, resource: &str, namespace: &str, name: &str, info: &berth_api::KindInfo) -> Result<ClusterStatsResponse> {
    let req = ClusterStatsRequest { resource: resource.into(), namespace: namespace.into(), name: name.into() };
    client.stats(req).await.map_err(|e| error::api(e, info, name))
}

/// Nodes whose kubelet did not answer: a warning each, or the error when
/// nothing at all could be shown.
fn warn_missing(errors: &[String], nothing: bool) -> Result<()> {
    match (errors.split_last(), nothing) {
        (Some((last, rest)), true) => {
            rest.iter().for_each(|e| eprintln!("Warning: {e}"));
            Err(anyhow!("{last}"))
        }
        _ => {
            errors.iter().for_each(|e| eprintln!("Warning: {e}"));
            Ok(())
        }
    }
}

/// Millicores, as kubectl top prints them: `250m`.
pub fn cpu(nano_cores: u64) -> String {
    format!("{}m", nano_cores / 1_000_000)
}

/// Memory in MiB, as kubectl top prints it: `45Mi`.
pub fn memory(bytes: u64) -> String {
    format!("{}Mi", bytes / (1024 * 1024))
}

/// `12%` of a capacity; `<unknown>` when the capacity is not known.
fn percent(used: u64, capacity: u64) -> String {
    match used.saturating_mul(100).checked_div(capacity) {
        Some(p) => format!("{p}%"),
        None => "<unknown>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_print_usage_like_kubectl_top() {
        assert_eq!(cpu(250_000_000), "250m");
        assert_eq!(cpu(999_999), "0m");
        assert_eq!(memory(45 * 1024 * 1024 + 1), "45Mi");
        assert_eq!(percent(500, 2000), "25%");
        assert_eq!(percent(1, 0), "<unknown>");
    }
}
