//! berth-bench: parses flags, starts logging and runs the chosen scenario.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = berth_bench::Cli::parse();
    berth_client::telemetry::init(&cli.common.log);
    berth_bench::run(cli).await
}
