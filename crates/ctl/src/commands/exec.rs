//! `exec`: runs a command in a pod's container through the apiserver,
//! relaying berthctl's stdin (`-i`) and the command's stdout and stderr;
//! berthctl exits with the command's exit code, as kubectl does.

use std::io::{IsTerminal as _, Read as _, Write as _};

use anyhow::{Context as _, Result, bail};
use berth_api::Resource;
use berth_api::pb::core::Pod;
use berth_api::pb::kubelet::ExecStart;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use super::{Ctx, out_bytes, pod_name};
use crate::error::{self, CommandExit};

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The pod: NAME or pod/NAME.
    pub pod: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
    /// The container (default: the pod's first container).
    #[arg(short = 'c', long)]
    pub container: Option<String>,
    /// Pass berthctl's stdin to the command.
    #[arg(short = 'i', long)]
    pub stdin: bool,
    /// Give the command a terminal (stdin must be one).
    #[arg(short = 't', long)]
    pub tty: bool,
}

pub async fn run(ctx: &Ctx, args: ExecArgs) -> Result<()> {
    let name = pod_name(&args.pod, "exec into")?;
    if args.command.is_empty() {
        bail!("you must specify at least one command for the container");
    }
    let mut tty = args.tty;
    if tty && !(args.stdin && std::io::stdin().is_terminal()) {
        eprintln!("Unable to use a TTY - input is not a terminal or the right kind of file");
        tty = false;
    }
    let client = ctx.client().await?;
    let start = ExecStart {
        namespace: ctx.namespace().to_string(),
        pod: name.clone(),
        container: args.container.unwrap_or_default(),
        command: args.command,
        stdin: args.stdin,
        tty,
    };
    let input = if args.stdin { stdin_stream() } else { futures::stream::empty().boxed() };
    let mut output = client.pod_exec(start, input).await.map_err(|e| error::api(e, &Pod::INFO, &name))?;
    let mut code = None;
    while let Some(msg) = output.next().await {
        let msg = msg.map_err(|e| error::api(e, &Pod::INFO, &name)).with_context(|| format!("running a command in pod/{name}"))?;
        if !msg.stdout.is_empty() {
            out_bytes(&msg.stdout);
        }
        if !msg.stderr.is_empty() {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&msg.stderr).and_then(|_| stderr.flush());
        }
        if msg.exit_code.is_some() {
            code = msg.exit_code;
        }
    }
    match code {
        Some(0) => Ok(()),
        Some(c) if c > 0 => Err(CommandExit(c).into()),
        Some(_) => bail!("the command in pod/{name} ended, but its exit code is unknown"),
        None => bail!("the connection to pod/{name} ended before the command did"),
    }
}

/// berthctl's stdin, read on a thread of its own: a blocking read that
/// never ends (a terminal) must not keep berthctl from exiting when the
/// command is done.
fn stdin_stream() -> BoxStream<'static, Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|data| (data, rx)) }).boxed()
}
