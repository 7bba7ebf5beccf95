//! berthctl: parses the command line and runs the verb.

use berth_client::ConnectArgs;
use berthctl::commands::{Ctx, apply, auth, certs, create, delete, describe, get, label, rolling_update, scale, version};
use berthctl::commands::{api_resources, completion, cordon, drain, wait};
use clap::{CommandFactory as _, Parser, Subcommand};

/// berthctl controls a Berth cluster, with kubectl's habits.
#[derive(Debug, Parser)]
#[command(name = "berthctl", version, about)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The namespace to work in (default: `default`).
    #[arg(short = 'n', long, global = true)]
    namespace: Option<String>,
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
    /// Print a shell completion script (bash, zsh, fish).
    Completion(completion::CompletionArgs),
    /// Make the cluster's CA and certificates.
    Certs(certs::CertsArgs),
    /// Ask the server what a user may do (can-i) and who you are (whoami).
    Auth(auth::AuthArgs),
    /// Print the client version.
    Version(version::VersionArgs),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
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
    let ctx = Ctx::new(&cli.connect, cli.namespace);
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
            Command::Cordon(args) => cordon::run(&ctx, args, true).await,
            Command::Uncordon(args) => cordon::run(&ctx, args, false).await,
            Command::Drain(args) => drain::run(&ctx, args).await,
            Command::Wait(args) => wait::run(&ctx, args).await,
            Command::ApiResources(args) => api_resources::run(&ctx, args).await,
            Command::Completion(args) => completion::run(args, &mut Cli::command()),
            Command::Certs(args) => certs::run(args),
            Command::Auth(args) => auth::run(&ctx, args).await,
            Command::Version(args) => version::run(args),
        }
    });
    if let Err(err) = result {
        eprintln!("{}", berthctl::error::render(&err));
        std::process::exit(1);
    }
}
