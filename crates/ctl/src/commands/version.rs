//! `version`: the client's version.

use anyhow::Result;

use super::out;

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Print only the client version (the only one berthctl knows).
    #[arg(long)]
    pub client: bool,
}

pub fn run(_args: VersionArgs) -> Result<()> {
    out(&format!("Client Version: v{}\n", env!("CARGO_PKG_VERSION")));
    Ok(())
}
