//! `api-resources`: the kinds the server serves, from its Discovery call
//! (berth_api's kind table when the server predates it), as kubectl prints
//! them: NAME SHORTNAMES APIVERSION NAMESPACED KIND, sorted by API group
//! (core first) then name.

use anyhow::{Context as _, Result};
use berth_api::Resource as _;
use berth_api::pb::api::ApiResource;
use berth_api::pb::core::Namespace;
use berth_api::resource::KINDS;

use super::{Ctx, out};
use crate::error;
use crate::printers::render_table;

/// How `api-resources` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// The table with a VERBS column.
    Wide,
    /// `plural.group` per line.
    Name,
}

/// What `--sort-by` sorts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortBy {
    Name,
    Kind,
}

#[derive(Debug, clap::Args)]
pub struct ApiResourcesArgs {
    /// Output format.
    #[arg(short = 'o', long, value_enum)]
    pub output: Option<Output>,
    /// Only namespaced (true) or cluster-scoped (false) kinds.
    #[arg(long)]
    pub namespaced: Option<bool>,
    /// Only kinds of this API group (`""` is the core group).
    #[arg(long)]
    pub api_group: Option<String>,
    /// Sort by name or kind instead of by group.
    #[arg(long, value_enum)]
    pub sort_by: Option<SortBy>,
    /// Print the table without its header line.
    #[arg(long)]
    pub no_headers: bool,
}

pub async fn run(ctx: &Ctx, args: ApiResourcesArgs) -> Result<()> {
    let client = ctx.client().await?;
    let mut resources = match client.discovery().await {
        Ok(r) => r.resources,
        Err(e) if e.code() == tonic::Code::Unimplemented => KINDS
            .iter()
            .map(|k| ApiResource {
                kind: k.kind.into(),
                api_version: k.api_version.into(),
                plural: k.plural.into(),
                singular: k.singular.into(),
                short_names: k.short_names.iter().map(|s| s.to_string()).collect(),
                namespaced: k.namespaced,
                verbs: Vec::new(),
            })
            .collect(),
        // No kind is involved; the kind given only words a bare NotFound.
        Err(e) => return Err(error::api(e, &Namespace::INFO, "")).context("discovering the server's resources"),
    };
    resources.retain(|r| args.namespaced.is_none_or(|n| n == r.namespaced) && args.api_group.as_ref().is_none_or(|g| *g == group(r)));
    resources.sort_by(|a, b| match args.sort_by {
        Some(SortBy::Name) => a.plural.cmp(&b.plural),
        Some(SortBy::Kind) => a.kind.cmp(&b.kind),
        None => (group(a), &a.plural).cmp(&(group(b), &b.plural)),
    });
    out(&render(&resources, args.output, args.no_headers));
    Ok(())
}

/// The API group of a resource (`""` for core).
fn group(r: &ApiResource) -> &str {
    r.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("")
}

fn render(resources: &[ApiResource], output: Option<Output>, no_headers: bool) -> String {
    if output == Some(Output::Name) {
        return resources
            .iter()
            .map(|r| match group(r) {
                "" => format!("{}\n", r.plural),
                g => format!("{}.{g}\n", r.plural),
            })
            .collect();
    }
    let wide = output == Some(Output::Wide);
    let mut headers: Vec<String> = ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"].map(String::from).to_vec();
    if wide {
        headers.push("VERBS".into());
    }
    let rows: Vec<Vec<String>> = resources
        .iter()
        .map(|r| {
            let mut row = vec![r.plural.clone(), r.short_names.join(","), r.api_version.clone(), r.namespaced.to_string(), r.kind.clone()];
            if wide {
                row.push(format!("[{}]", r.verbs.join(" ")));
            }
            row
        })
        .collect();
    render_table(&headers, &rows, no_headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(kind: &str, api_version: &str, plural: &str, short: &[&str], namespaced: bool) -> ApiResource {
        ApiResource {
            kind: kind.into(),
            api_version: api_version.into(),
            plural: plural.into(),
            singular: String::new(),
            short_names: short.iter().map(|s| s.to_string()).collect(),
            namespaced,
            verbs: vec!["get".into(), "list".into()],
        }
    }

    #[test]
    fn should_print_kubectl_columns() {
        let rs = [res("Pod", "v1", "pods", &["po"], true), res("Lease", "coordination.k8s.io/v1", "leases", &[], true)];
        assert_eq!(
            render(&rs, None, false),
            "NAME     SHORTNAMES   APIVERSION               NAMESPACED   KIND\n\
             pods     po           v1                       true         Pod\n\
             leases                coordination.k8s.io/v1   true         Lease\n"
        );
        assert_eq!(render(&rs, Some(Output::Name), false), "pods\nleases.coordination.k8s.io\n");
        assert!(render(&rs[..1], Some(Output::Wide), true).ends_with("Pod   [get list]\n"));
    }
}
