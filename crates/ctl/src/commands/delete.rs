//! `delete`: removes objects named on the command line, in manifests, or
//! matching a label selector.

use anyhow::{Result, bail};
use berth_api::KindInfo;
use berth_client::{Client, DeleteParams, ListParams};
use futures::StreamExt as _;

use super::{Ctx, kind_ref, out, revision, targets};
use crate::error;
use crate::manifests;

/// What happens to the objects the deleted one owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Cascade {
    /// Delete the owner now, its dependents after (the default).
    #[value(alias = "true")]
    Background,
    /// Delete the dependents first, then the owner.
    Foreground,
    /// Leave the dependents in place.
    #[value(alias = "false")]
    Orphan,
}

impl Cascade {
    fn policy(self) -> &'static str {
        match self {
            Cascade::Background => "Background",
            Cascade::Foreground => "Foreground",
            Cascade::Orphan => "Orphan",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// KIND NAME..., KIND/NAME..., or KIND with -l or --all.
    pub resources: Vec<String>,
    /// Delete the objects of these manifests (file, directory or `-`).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<String>,
    /// Delete the objects of KIND matching this label selector.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Delete every object of KIND in the namespace.
    #[arg(long)]
    pub all: bool,
    /// Seconds the object gets to terminate gracefully (0: at once; default:
    /// the object's own).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub grace_period: i64,
    /// What happens to the deleted object's dependents.
    #[arg(long, value_enum, default_value = "background")]
    pub cascade: Cascade,
    /// Treat a missing object as deleted.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Wait until the objects are gone (graceful deletes take a while).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub wait: bool,
}

pub async fn run(ctx: &Ctx, args: DeleteArgs) -> Result<()> {
    let selecting = args.selector.is_some() || args.all;
    let mut work: Vec<(&'static KindInfo, String, String)> = Vec::new(); // kind, namespace, name
    let mut listed: Vec<(&'static KindInfo, String)> = Vec::new(); // kinds to list with -l / --all
    if !args.files.is_empty() {
        if !args.resources.is_empty() || selecting {
            bail!("resources cannot be named on the command line together with -f");
        }
        for mut m in manifests::read(&args.files)? {
            ctx.place(&mut m.object)?;
            let info = m.object.info().expect("parsed objects have a kind");
            work.push((info, m.object.namespace().to_string(), m.object.name().to_string()));
        }
    } else {
        if args.resources.is_empty() {
            bail!("you must provide one or more resources by argument or filename");
        }
        for (info, names) in targets(&args.resources)? {
            let ns = ctx.namespace_for(info).to_string();
            match (names.is_empty(), selecting) {
                (true, true) => listed.push((info, ns)),
                (false, true) => bail!("name cannot be provided when a selector is specified"),
                (true, false) => {
                    bail!("resource(s) were provided, but no name was specified (use -l or --all to delete many)")
                }
                (false, false) => work.extend(names.into_iter().map(|n| (info, ns.clone(), n))),
            }
        }
    }

    let client = ctx.client().await?;
    for (info, ns) in listed {
        let params = ListParams::default().labels(args.selector.clone().unwrap_or_default());
        let resp = client.list_objects(info.kind, &ns, &params).await.map_err(|e| error::api(e, info, ""))?;
        if resp.items.is_empty() && !args.ignore_not_found {
            eprintln!("No resources found");
        }
        work.extend(resp.items.iter().map(|o| (info, o.namespace().to_string(), o.name().to_string())));
    }

    let params = DeleteParams {
        grace_period_seconds: (args.grace_period >= 0).then_some(args.grace_period),
        propagation_policy: args.cascade.policy().to_string(),
        ..Default::default()
    };
    let mut errors = Vec::new();
    let mut waiting = Vec::new();
    for (info, ns, name) in work {
        match client.delete_object(info.kind, &ns, &name, &params).await {
            Ok(last) => {
                out(&format!("{} \"{}\" deleted\n", kind_ref(info), name));
                if args.wait && !last.metadata().is_none_or(|m| m.deletion_timestamp.is_empty()) {
                    waiting.push((info, ns, name, revision(&last)));
                }
            }
            Err(e) if e.is_not_found() && args.ignore_not_found => {}
            Err(e) => errors.push(error::api(e, info, &name)),
        }
    }
    for (info, ns, name, rev) in waiting {
        if let Err(e) = wait_gone(&client, info, &ns, &name, rev).await {
            errors.push(e);
        }
    }
    super::finish(errors)
}

/// Waits until an object that is being deleted gracefully is gone
/// (`drain` waits for its pods the same way).
pub(crate) async fn wait_gone(client: &Client, info: &'static KindInfo, ns: &str, name: &str, from: u64) -> Result<()> {
    let params = ListParams::default().fields(format!("metadata.name={name}"));
    let mut from = from;
    loop {
        match client.get_object(info.kind, ns, name).await {
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(error::api(e, info, name)),
            Ok(o) => from = from.max(revision(&o)),
        }
        let mut stream = match client.watch_objects(info.kind, ns, &params, from).await {
            Ok(s) => s,
            Err(e) if e.is_too_old() => {
                from = 0;
                continue;
            }
            Err(e) => return Err(error::api(e, info, name)),
        };
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) if ev.r#type == "DELETED" => return Ok(()),
                Ok(ev) => from = from.max(ev.resource_version),
                Err(e) if e.is_too_old() => break,
                Err(e) => return Err(error::api(e, info, name)),
            }
        }
    }
}
