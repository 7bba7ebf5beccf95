//! `snapshot save FILE`: the whole store at one revision, taken online
//! from the apiserver and checked before it is kept (written to a temporary
//! file, verified, then renamed, so FILE is never half a snapshot);
//! `snapshot status FILE`: what a snapshot holds. Restore with
//! `berth-apiserver --restore FILE --data-dir NEW-DIR`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use berth_api::snapshot::Snapshot;

use super::{Ctx, out};

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Save a snapshot of the cluster's store to FILE.
    Save { file: PathBuf },
    /// Check a snapshot file and print its revision and contents.
    Status { file: PathBuf },
}

pub async fn run(ctx: &Ctx, args: SnapshotArgs) -> Result<()> {
    match args.command {
        SnapshotCommand::Save { file } => {
            let client = ctx.client().await?;
            let (bytes, revision, objects) = client.snapshot().await.context("taking the snapshot")?;
            // What arrived must be a whole, consistent snapshot before it is kept.
            Snapshot::decode(&bytes).context("the server sent a damaged snapshot; nothing was written")?;
            write_atomically(&file, &bytes)?;
            out(&format!("Snapshot saved at {} (revision {revision}, {objects} objects, {} bytes)\n", file.display(), bytes.len()));
        }
        SnapshotCommand::Status { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let snapshot = Snapshot::decode(&bytes).with_context(|| format!("{}", file.display()))?;
            out(&status(&snapshot, bytes.len()));
        }
    }
    Ok(())
}

fn write_atomically(file: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = file.with_extension(format!("partial-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, file)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::Error::new(e).context(format!("cannot write {}", file.display()))
    })
}

/// `REVISION  OBJECTS  SIZE` and the objects per resource.
fn status(snapshot: &Snapshot, size: usize) -> String {
    let mut per_resource: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &snapshot.records {
        // Keys are /registry/<resource>/...
        let resource = r.key.trim_start_matches('/').split('/').nth(1).unwrap_or("?");
        *per_resource.entry(resource).or_default() += 1;
    }
    let mut text = format!("REVISION\tOBJECTS\tSIZE\n{}\t{}\t{size}\n\nRESOURCE\tOBJECTS\n", snapshot.revision, snapshot.records.len());
    for (resource, n) in per_resource {
        text.push_str(&format!("{resource}\t{n}\n"));
    }
    crate::tabwriter::align(&text, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::snapshot::Record;

    #[test]
    fn should_count_objects_per_resource() {
        let rec = |key: &str| Record { key: key.into(), value: vec![], mod_revision: 1, create_revision: 1 };
        let s = Snapshot {
            revision: 9,
            records: vec![rec("/registry/pods/default/a"), rec("/registry/pods/default/b"), rec("/registry/namespaces/default")],
        };
        assert_eq!(
            status(&s, 120),
            "REVISION   OBJECTS   SIZE\n9          3         120\n\nRESOURCE     OBJECTS\nnamespaces   1\npods         2\n"
        );
    }
}
