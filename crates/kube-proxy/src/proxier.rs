//! The kernel rule writers of the iptables, ipvs and nftables modes behind one narrow trait, and the stable short hashes that name their per-service chains.

use crate::exec;
use crate::model::{Changed, State};

/// Why programming the kernel failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tool failed or is missing.
    #[error(transparent)]
    Exec(#[from] exec::Error),
    /// The kernel lacks what the mode needs; never fall back silently.
    #[error("{mode} mode needs {what}: {hint}")]
    Unsupported { mode: &'static str, what: String, hint: String },
    /// A flag's value cannot be used by this mode.
    #[error("{0}")]
    Config(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a sync left programmed, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Programmed {
    /// Rules, map elements or real servers, as the mode counts them.
    pub rules: usize,
}

/// Programs the kernel for one mode. Calls block (they run tools): call
/// them off the async runtime.
pub trait Proxier: Send + 'static {
    /// The mode's name, for logs.
    fn mode(&self) -> &'static str;

    /// Rewrites everything the mode owns from `state`, removing what it finds
    /// installed and no longer wanted (startup, periodic resync, repair).
    fn sync_full(&mut self, state: &State) -> Result<Programmed>;

    /// Rewrites only what `changes` touch; `state` is already the new state.
    /// An error makes the caller fall back to [`Proxier::sync_full`].
    fn sync_changes(&mut self, state: &State, changes: &[Changed]) -> Result<Programmed>;

    /// Removes everything of this mode the proxy installed (`--cleanup`).
    fn cleanup(&mut self) -> Result<()>;
}

/// A stable short hash of `input` in base32 (A–Z, 2–7), `len` characters
/// (at most 13): FNV-1a, 64 bits. Names per-service chains the way
/// Kubernetes' `KUBE-SVC-<hash>` are named, stable across restarts.
pub fn short_hash(input: &str, len: usize) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in input.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // Finalise (splitmix64) so that similar inputs differ in the first characters too.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (0..len.min(13))
        .map(|i| {
            let v = if i < 12 { (h >> (59 - 5 * i)) & 31 } else { h & 15 };
            ALPHABET[v as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn should_hash_stably_and_spread_similar_names() {
        assert_eq!(short_hash("default/web:http", 13), short_hash("default/web:http", 13));
        assert_eq!(short_hash("x", 13).len(), 13);
        let hashes: HashSet<String> = (0..100_000).map(|i| short_hash(&format!("ns/svc-{i}:http"), 13)).collect();
        assert_eq!(hashes.len(), 100_000);
        assert!(short_hash("a", 13).chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
    }
}
