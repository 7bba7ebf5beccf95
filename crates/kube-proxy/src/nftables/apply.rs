//! Running a sync's transactions against nft, and listing the chains and sets the table holds
//! (so that a full sync can remove what an earlier run left).

use std::collections::BTreeSet;

use tracing::debug;

use super::Nftables;
use super::tx::{ElementTx, Tx};
use crate::exec::Exec;
use crate::proxier::Result;

impl<E: Exec> Nftables<E> {
    /// Reads the names of the chains and sets in the table (none if it is
    /// missing). Listing the table itself would fetch every element
    /// (seconds with 100,000 of them); these listings do not.
    pub(super) fn list_objects(&self) -> Result<(BTreeSet<String>, BTreeSet<String>)> {
        let mut out = String::new();
        for args in [&["list", "chains", "ip"][..], &["-t", "list", "sets", "ip"], &["-t", "list", "maps", "ip"]] {
            out.push_str(&self.exec.run("nft", args, None)?);
            out.push('\n');
        }
        Ok(parse_objects(&out, &self.cfg.table))
    }

    /// Runs a sync's transactions: the script that declares and rewrites
    /// chains, the element batch, and the script that removes what nothing
    /// refers to any more (each only when it has something to do).
    pub(super) fn apply(&self, tx: Tx, elements: &ElementTx<'_>) -> Result<()> {
        let (first, last) = tx.finish();
        let started = std::time::Instant::now();
        if !first.is_empty() {
            self.exec.run("nft", &["-f", "-"], Some(first.as_bytes()))?;
        }
        let scripted = started.elapsed();
        if !elements.is_empty() {
            self.exec.nft_elements(elements)?;
        }
        let batched = started.elapsed();
        if !last.is_empty() {
            self.exec.run("nft", &["-f", "-"], Some(last.as_bytes()))?;
        }
        debug!(
            table = %self.cfg.table,
            script_bytes = first.len() + last.len(),
            script_ms = scripted.as_secs_f64() * 1000.0,
            elements_ms = (batched - scripted).as_secs_f64() * 1000.0,
            cleanup_ms = (started.elapsed() - batched).as_secs_f64() * 1000.0,
            "nft transactions"
        );
        Ok(())
    }
}

/// The chains and sets/maps of table `table` in nft listings (which may
/// hold several tables, one `table ip NAME {` block each).
fn parse_objects(out: &str, table: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut chains = BTreeSet::new();
    let mut sets = BTreeSet::new();
    let mut inside = false;
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["table", _family, name, "{"] => inside = *name == table,
            ["chain", name, "{", ..] if inside => {
                chains.insert(name.to_string());
            }
            ["set" | "map", name, "{", ..] if inside => {
                sets.insert(name.to_string());
            }
            _ => {}
        }
    }
    (chains, sets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_parse_chain_and_set_names_of_our_table_from_listings() {
        let (chains, sets) =
            parse_objects("table ip t {\n\tmap service-ips {\n\t\ttype x\n\t}\n\tchain svc-AB-ns/a/tcp/p80 {\n\t}\n}\n", "t");
        assert_eq!(chains.into_iter().collect::<Vec<_>>(), vec!["svc-AB-ns/a/tcp/p80"]);
        assert_eq!(sets.into_iter().collect::<Vec<_>>(), vec!["service-ips"]);
    }
}
