//! The `store` scenario: durable creates straight into Berth's sled store (no gRPC, no
//! registry) at several numbers of concurrent writers. It shows what a durable flush costs and
//! how group commit shares it: CPU per create and writes per flush at each concurrency.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use berth_apiserver::storage::{SledOptions, SledStore, Store};
use bytes::Bytes;
use tracing::info;

use super::random_text;
use crate::Ctx;
use crate::phase;
use crate::procfs;
use crate::report::Figures;

/// Flags of the `store` scenario.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Numbers of concurrent writers to measure, one store each.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4, 16, 64])]
    pub writers: Vec<usize>,
    /// Creates at each number of writers.
    #[arg(long, default_value_t = 20_000)]
    pub objects: usize,
    /// Size of each value, in bytes.
    #[arg(long, default_value_t = 1024)]
    pub value_bytes: usize,
    /// Where the stores go (a fresh directory each, removed afterwards);
    /// default: the system's temporary directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// One run: each number of writers against its own fresh store.
pub async fn run(ctx: &Ctx, args: &Args) -> anyhow::Result<Figures> {
    anyhow::ensure!(!args.writers.is_empty() && args.writers.iter().all(|&w| w > 0), "--writers must list numbers of at least 1");
    anyhow::ensure!(args.objects > 0, "--objects must be at least 1");
    let mut f = Figures::new();
    f.count("objects", args.objects as u64);
    f.count("value_bytes", args.value_bytes as u64);
    let value = Bytes::from(random_text(args.value_bytes));
    for &writers in &args.writers {
        // Removed when dropped, after the store has closed.
        let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-store-")
            .tempdir_in(&parent)
            .with_context(|| format!("cannot make a directory in {}", parent.display()))?;
        let (phase, cpu_seconds, writes, flushes) = measure(ctx, dir.path(), writers, args.objects, value.clone()).await?;
        phase.ensure_finished()?;
        info!(writers, per_s = phase.per_s(), "store: measured");
        phase.add_to(&mut f, &format!("w{writers}_creates"), &format!("w{writers}_create"));
        f.measure(format!("w{writers}_cpu_us_per_create"), cpu_seconds * 1e6 / phase.done.max(1) as f64);
        f.measure(format!("w{writers}_writes_per_flush"), writes as f64 / flushes.max(1) as f64);
    }
    Ok(f)
}

/// Opens a store in `dir`, creates `objects` keys with `writers` concurrent writers, closes it.
/// Returns the phase, this process's CPU seconds meanwhile, and the store's writes and flushes.
async fn measure(
    ctx: &Ctx,
    dir: &std::path::Path,
    writers: usize,
    objects: usize,
    value: Bytes,
) -> anyhow::Result<(phase::Phase, f64, u64, u64)> {
    let open_dir = dir.to_path_buf();
    let store = tokio::task::spawn_blocking(move || SledStore::open(&open_dir, SledOptions::default()))
        .await
        .context("the store's open task failed")?
        .with_context(|| format!("cannot open a store in {}", dir.display()))?;
    let store = Arc::new(store);
    let me = std::process::id();
    let before = procfs::cpu_seconds(me)?;
    let created = {
        let store = Arc::clone(&store);
        phase::run("store create", writers, objects, ctx.deadline, move |_, i| {
            let (store, value) = (Arc::clone(&store), value.clone());
            async move { store.create(&format!("/registry/configmaps/bench/c{i:08}"), value).await.map(drop) }
        })
        .await
    };
    let cpu_seconds = procfs::cpu_seconds(me)? - before;
    let stats = store.stats();
    tokio::task::spawn_blocking(move || store.close()).await.context("the store's close task failed")?;
    Ok((created, cpu_seconds, stats.writes, stats.flushes))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser as _;
    use tokio::time::Instant;

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn should_report_each_writer_count_and_remove_its_stores() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let cli = crate::Cli::parse_from(["berth-bench", "store", "--objects", "64", "--writers", "1,8", "--dir", path]);
        let crate::Scenario::Store(args) = &cli.scenario else { panic!("parsed as another scenario") };
        let ctx = Ctx { common: cli.common.clone(), deadline: Instant::now() + Duration::from_secs(120) };
        let f = run(&ctx, args).await.expect("the scenario runs");
        for w in [1, 8] {
            assert!(f.get(&format!("w{w}_creates_per_s")).is_some_and(|v| v > 0.0), "w{w}: no rate");
            assert!(f.get(&format!("w{w}_cpu_us_per_create")).is_some_and(|v| v >= 0.0), "w{w}: no CPU figure");
        }
        // One writer waits for each flush before its next create: nothing to share.
        assert_eq!(f.get("w1_writes_per_flush"), Some(1.0));
        assert!(f.get("w8_writes_per_flush").is_some_and(|v| v >= 1.0));
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "a benchmark store was left behind");
    }
}
