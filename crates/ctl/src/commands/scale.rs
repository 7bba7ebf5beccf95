//! `scale`: sets a replication controller's replicas, with its
//! resourceVersion as precondition, retrying when someone else wrote it.

use anyhow::{Context as _, Result, bail};
use berth_api::Resource;
use berth_api::pb::core::ReplicationController;
use berth_client::Client;

use super::{Ctx, object_ref, out, targets};
use crate::error;

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// rc/NAME..., or rc NAME...
    #[arg(required = true)]
    pub resources: Vec<String>,
    /// The new number of replicas.
    #[arg(long, required = true)]
    pub replicas: i32,
    /// Precondition: scale only if the current replicas are this.
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub current_replicas: i32,
}

/// How often a conflicting write is retried before giving up.
const RETRIES: usize = 10;

pub async fn run(ctx: &Ctx, args: ScaleArgs) -> Result<()> {
    if args.replicas < 0 {
        bail!("The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0");
    }
    let mut names = Vec::new();
    for (info, n) in targets(&args.resources)? {
        if info.kind != ReplicationController::INFO.kind {
            bail!("cannot scale {}: only replicationcontrollers have replicas", info.plural);
        }
        if n.is_empty() {
            bail!("resource(s) were provided, but no name was specified");
        }
        names.extend(n);
    }
    let client = ctx.client().await?;
    let ns = ctx.namespace_for(&ReplicationController::INFO);
    let mut errors = Vec::new();
    for name in names {
        match scale_one(&client, ns, &name, args.replicas, args.current_replicas).await {
            Ok(()) => out(&format!("{} scaled\n", object_ref(&ReplicationController::INFO, &name))),
            Err(e) => errors.push(e),
        }
    }
    super::finish(errors)
}

async fn scale_one(client: &Client, ns: &str, name: &str, replicas: i32, expected: i32) -> Result<()> {
    let info = &ReplicationController::INFO;
    for _ in 0..RETRIES {
        let mut rc: ReplicationController = client.get(ns, name).await.map_err(|e| error::api(e, info, name))?;
        let spec = rc.spec.get_or_insert_with(Default::default);
        let current = spec.replicas.unwrap_or(1);
        if expected >= 0 && current != expected {
            bail!("Expected replicas to be {expected}, was {current}");
        }
        spec.replicas = Some(replicas);
        // The fetched resourceVersion travels with the update: a concurrent
        // write makes it a conflict, and we read again.
        match client.update(rc).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_conflict() => continue,
            Err(e) => return Err(error::api(e, info, name)),
        }
    }
    Err(error::api(tonic::Status::aborted("too many conflicting writes").into(), info, name))
        .with_context(|| format!("scaling {}", object_ref(info, name)))
}
