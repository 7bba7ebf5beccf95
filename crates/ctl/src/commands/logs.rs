//! `logs`: prints a container's log, relayed by the apiserver from the
//! kubelet of the pod's node; `-f` keeps following it.

use anyhow::{Context as _, Result};
use berth_api::Resource;
use berth_api::pb::core::Pod;
use berth_api::pb::kubelet::LogsRequest;
use futures::StreamExt as _;

use super::{Ctx, out_bytes, pod_name};
use crate::error;

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The pod: NAME or pod/NAME.
    pub pod: String,
    /// The container (default: the pod's only container).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Keep streaming new lines until the container stops (or Ctrl-C).
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only the last N lines (-1: all of them).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,
    /// The log of the previous, terminated instance of the container.
    #[arg(short = 'p', long)]
    pub previous: bool,
    /// Start each line with its RFC 3339 time.
    #[arg(long)]
    pub timestamps: bool,
    /// A deleted pod's logs, kept on its node for the kubelet's --deleted-pod-logs-ttl (default 1h).
    #[arg(long)]
    pub deleted: bool,
}

pub async fn run(ctx: &Ctx, args: LogsArgs) -> Result<()> {
    let name = pod_name(&args.pod, "get the logs of")?;
    let client = ctx.client().await?;
    let req = LogsRequest {
        namespace: ctx.namespace().to_string(),
        pod: name.clone(),
        container: args.container.unwrap_or_default(),
        follow: args.follow,
        tail_lines: (args.tail >= 0).then_some(args.tail),
        previous: args.previous,
        deleted: args.deleted,
        timestamps: args.timestamps,
    };
    let mut stream = client.pod_logs(req).await.map_err(|e| error::api(e, &Pod::INFO, &name))?;
    // kubectl writes stdout and stderr of the container alike to stdout.
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| error::api(e, &Pod::INFO, &name)).with_context(|| format!("reading the log of pod/{name}"))?;
        out_bytes(&chunk.data);
    }
    Ok(())
}
