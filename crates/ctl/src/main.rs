//! berthctl: parses the command line and runs the verb.

use berth_client::ConnectArgs;
use berthctl::commands::{
    Ctx, apply, auth, certs, config, create, delete, describe, exec, get, label, logs, rolling_update, scale, snapshot, top, version,
};
use berthctl::commands::{api_resources, completion, cordon, drain, explain, wait};
use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

/// berthctl controls a Berth cluster, with kubectl's habits.
#[derive(Debug, Parser)]
#[command(name = "berthctl", version, about)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The namespace to work in (default: `default`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
    /// The context of the config file to use (default: its current-context).
    #[arg(long, global = true)]
    context: Option<String>,
    /// The config file (default: ~/.berth/config).
    #[arg(long, env = berth_client::kubeconfig::ENV, global = true)]
    berthconfig: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create objects from manifests, or update them to match.
    Apply(apply::ApplyArgs),
    /// Create objects from manifests; existing objects are an error.
    Create(create::CreateArgs),
    /// Print objects as a table, JSON, YAML or names; -w follows changes.
    Get(get::GetArgs),
    /// Show an object in detail, with its events.
    Describe(describe::DescribeArgs),
    /// Delete objects by name, from manifests or by label selector.
    Delete(delete::DeleteArgs),
    /// Add, change or remove labels of objects.
    Label(label::LabelArgs),
    /// Set the number of replicas of a replication controller.
    Scale(scale::ScaleArgs),
    /// Replace an RC's pods with a new template, a few at a time.
    RollingUpdate(rolling_update::RollingUpdateArgs),
    /// Print the log of a container in a pod.
    Logs(logs::LogsArgs),
    /// Run a command in a container of a pod: `exec POD [-c C] [-i] [-t] -- CMD ARGS...`.
    Exec(exec::ExecArgs),
    /// Show CPU and memory usage of nodes or pods.
    Top(top::TopArgs),
    /// Mark nodes unschedulable.
    Cordon(cordon::CordonArgs),
    /// Mark nodes schedulable again.
    Uncordon(cordon::CordonArgs),
    /// Cordon a node and evict its pods, waiting until they are gone.
    Drain(drain::DrainArgs),
    /// Wait until objects meet a condition (or are deleted).
    Wait(wait::WaitArgs),
    /// List the kinds of object the server serves.
    ApiResources(api_resources::ApiResourcesArgs),
    /// Show the documentation of a kind or of one of its fields (KIND[.field.path]).
    Explain(explain::ExplainArgs),
    /// Print a shell completion script (bash, zsh, fish).
    Completion(completion::CompletionArgs),
    /// Make the cluster's CA and certificates.
    Certs(certs::CertsArgs),
    /// Ask the server what a user may do (can-i) and who you are (whoami).
    Auth(auth::AuthArgs),
    /// Show and edit the config file's clusters, users and contexts.
    Config(config::ConfigArgs),
    /// Save a snapshot of the cluster's store (restore: berth-apiserver --restore), or check one.
    Snapshot(snapshot::SnapshotArgs),
    /// Print the client version.
    Version(version::VersionArgs),
}

fn main() {
    let parsed = Cli::command().try_get_matches().and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // Usage errors too are one line, like every other error: the
            // first paragraph (which names the missing argument or the
            // possible values), without the usage that follows.
            let text = e.render().to_string();
            let line = text.lines().map(str::trim).take_while(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            eprintln!("{}", if line.is_empty() { "error: invalid arguments" } else { &line });
            std::process::exit(1);
        }
    };
    let path = match cli.berthconfig.clone().map(Ok).unwrap_or_else(berth_client::kubeconfig::default_path) {
        Ok(p) => p,
        Err(e) => fail(&e.into()),
    };
    if let Command::Config(args) = cli.command {
        let given = config::Given {
            path,
            server: (matches.value_source("server") != Some(ValueSource::DefaultValue)).then(|| cli.connect.server.clone()),
            ca_file: cli.connect.ca_file.clone(),
            token: cli.connect.token.clone(),
            client_certificate: cli.connect.client_certificate.clone(),
            client_key: cli.connect.client_key.clone(),
            namespace: cli.namespace.clone(),
            context: cli.context.clone(),
        };
        if let Err(err) = config::run(given, args) {
            fail(&err);
        }
        return;
    }
    let ctx = match context(&cli, &matches, &path) {
        Ok(ctx) => ctx,
        Err(err) => fail(&err),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Apply(args) => apply::run(&ctx, args).await,
            Command::Create(args) => create::run(&ctx, args).await,
            Command::Get(args) => get::run(&ctx, args).await,
            Command::Describe(args) => describe::run(&ctx, args).await,
            Command::Delete(args) => delete::run(&ctx, args).await,
            Command::Label(args) => label::run(&ctx, args).await,
            Command::Scale(args) => scale::run(&ctx, args).await,
            Command::RollingUpdate(args) => rolling_update::run(&ctx, args).await,
            Command::Logs(args) => logs::run(&ctx, args).await,
            Command::Exec(args) => exec::run(&ctx, args).await,
            Command::Top(args) => top::run(&ctx, args).await,
            Command::Cordon(args) => cordon::run(&ctx, args, true).await,
            Command::Uncordon(args) => cordon::run(&ctx, args, false).await,
            Command::Drain(args) => drain::run(&ctx, args).await,
            Command::Wait(args) => wait::run(&ctx, args).await,
            Command::ApiResources(args) => api_resources::run(&ctx, args).await,
            Command::Explain(args) => explain::run(args),
            Command::Completion(args) => completion::run(args, &mut Cli::command()),
            Command::Certs(args) => certs::run(args),
            Command::Auth(args) => auth::run(&ctx, args).await,
            Command::Snapshot(args) => snapshot::run(&ctx, args).await,
            Command::Version(args) => version::run(args),
            Command::Config(_) => unreachable!("config commands ran above"),
        }
    });
    if let Err(err) = result {
        fail(&err);
    }
}

/// The flags over the config file's context (none when there is no file
/// and no --context).
fn context(cli: &Cli, matches: &clap::ArgMatches, path: &std::path::Path) -> anyhow::Result<Ctx> {
    let file = berth_client::kubeconfig::BerthConfig::load(path)?;
    let resolved = file.resolve(cli.context.as_deref(), path)?;
    let server_given = matches.value_source("server") != Some(ValueSource::DefaultValue);
    Ok(Ctx::with_context(&cli.connect, server_given, cli.namespace.clone(), &resolved))
}

/// Prints the error in berthctl's one-line form and exits with its code
/// (1, or the exit code of the command `exec` ran).
fn fail(err: &anyhow::Error) -> ! {
    eprintln!("{}", berthctl::error::render(err));
    std::process::exit(berthctl::error::exit_code(err));
}
