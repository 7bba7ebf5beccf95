//! berth-bench: parses flags, starts logging and runs the chosen scenario.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = berth_bench::Cli::parse();
    berth_base::telemetry::init(&cli.common.log);
    berth_bench::run(cli).await
}

/// jemalloc, as in the apiserver: the load generator's own allocations (encoding requests,
/// decoding replies on two threads) cost about an eighth of its CPU with glibc's malloc, CPU
/// that the server under test, sharing the host, then lacks. Both sides of the etcd
/// comparison run in this process, so both gain alike.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
