//! The scheduler's configuration file (`--config FILE`, YAML): the weight of
//! each score, how many nodes to score, the load-aware score and binding
//! concurrency.
//!
//! ```yaml
//! weights:                   # 0 turns a score off
//!   leastAllocated: 1
//!   balancedAllocation: 1
//!   selectorSpread: 2
//!   imageLocality: 1
//!   nodeAffinity: 1
//!   taintToleration: 1
//!   loadAware: 1
//! percentageOfNodesToScore: 0   # 0: adaptive, as Kubernetes (50% - nodes/125, at least 5%)
//! loadAware:
//!   enabled: false
//!   margin: 0.2               # headroom kept free of real usage, as a fraction of allocatable
//! bindConcurrency: 256
//! ```

use std::path::Path;

use serde::Deserialize;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid YAML of the expected shape.
    #[error("{path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: serde_yaml::Error,
    },
    /// A value is out of its range.
    #[error("{path}: {field}: {reason}")]
    Invalid { path: String, field: &'static str, reason: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The weight of each score in the sum that ranks nodes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Weights {
    /// Prefer nodes with the most CPU and memory left after the pod.
    pub least_allocated: i64,
    /// Prefer nodes whose CPU and memory would be used in the same proportion.
    pub balanced_allocation: i64,
    /// Spread the pods of one ReplicationController or Service over nodes.
    pub selector_spread: i64,
    /// Prefer nodes that already have the pod's images.
    pub image_locality: i64,
    /// Prefer nodes that match the pod's preferred node affinity terms.
    pub node_affinity: i64,
    /// Avoid nodes with PreferNoSchedule taints the pod does not tolerate.
    pub taint_toleration: i64,
    /// Avoid nodes whose kubelet reports real usage near their capacity
    /// (only when `loadAware.enabled`).
    pub load_aware: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            least_allocated: 1,
            balanced_allocation: 1,
            selector_spread: 2,
            image_locality: 1,
            node_affinity: 1,
            taint_toleration: 1,
            load_aware: 1,
        }
    }
}

/// The load-aware score: uses the usage kubelets report in node annotations.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct LoadAware {
    pub enabled: bool,
    /// Fraction of allocatable kept free of real usage: a node whose
    /// reported usage plus the pod reaches `(1 - margin)` of allocatable scores 0.
    pub margin: f64,
}

impl Default for LoadAware {
    fn default() -> Self {
        LoadAware { enabled: false, margin: 0.2 }
    }
}

/// Everything the configuration file can set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    pub weights: Weights,
    /// Stop filtering once this percentage of the nodes was found feasible
    /// and score only those (at least 100 nodes). 0: adaptive, as Kubernetes;
    /// 100: always all.
    pub percentage_of_nodes_to_score: u32,
    pub load_aware: LoadAware,
    /// Bindings in flight at once; decisions continue while they run. The
    /// apiserver commits concurrent writes together, so more in flight binds
    /// more per second (measured: 64 → ~1,200-1,800/s, 256 → ~3,100-3,700/s).
    pub bind_concurrency: usize,
}

impl Default for Profile {
    fn default() -> Self {
        Profile { weights: Weights::default(), percentage_of_nodes_to_score: 0, load_aware: LoadAware::default(), bind_concurrency: 256 }
    }
}

impl Profile {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Profile> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read { path: name.clone(), source })?;
        Profile::parse(&text, &name)
    }

    /// Parses and checks configuration text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &str) -> Result<Profile> {
        // An empty file is the defaults, not a YAML error.
        let profile: Profile = if text.trim().is_empty() {
            Profile::default()
        } else {
            serde_yaml::from_str(text).map_err(|source| Error::Parse { path: origin.into(), source })?
        };
        profile.check(origin)?;
        Ok(profile)
    }

    fn check(&self, origin: &str) -> Result<()> {
        let invalid = |field, reason: &str| Err(Error::Invalid { path: origin.into(), field, reason: reason.into() });
        let w = &self.weights;
        let weights = [
            ("weights.leastAllocated", w.least_allocated),
            ("weights.balancedAllocation", w.balanced_allocation),
            ("weights.selectorSpread", w.selector_spread),
            ("weights.imageLocality", w.image_locality),
            ("weights.nodeAffinity", w.node_affinity),
            ("weights.taintToleration", w.taint_toleration),
            ("weights.loadAware", w.load_aware),
        ];
        for (field, weight) in weights {
            if !(0..=100).contains(&weight) {
                return invalid(field, "must be between 0 and 100");
            }
        }
        if self.percentage_of_nodes_to_score > 100 {
            return invalid("percentageOfNodesToScore", "must be between 0 (adaptive) and 100");
        }
        if !(0.0..1.0).contains(&self.load_aware.margin) {
            return invalid("loadAware.margin", "must be at least 0 and less than 1");
        }
        if self.bind_concurrency == 0 {
            return invalid("bindConcurrency", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_read_weights_and_keep_defaults_for_the_rest() {
        let p = Profile::parse("weights:\n  leastAllocated: 3\nloadAware:\n  enabled: true\n", "t").unwrap();
        assert_eq!(p.weights.least_allocated, 3);
        assert_eq!(p.weights.selector_spread, Weights::default().selector_spread);
        assert!(p.load_aware.enabled);
        assert_eq!(p.load_aware.margin, 0.2);
        assert_eq!(p.percentage_of_nodes_to_score, 0);
    }

    #[test]
    fn should_take_an_empty_file_as_the_defaults() {
        assert_eq!(Profile::parse("\n", "t").unwrap(), Profile::default());
    }

    #[test]
    fn should_refuse_unknown_fields_and_out_of_range_values() {
        assert!(matches!(Profile::parse("weights:\n  leastAlocated: 1\n", "t"), Err(Error::Parse { .. })));
        let e = Profile::parse("percentageOfNodesToScore: 120\n", "t").unwrap_err();
        assert!(e.to_string().contains("percentageOfNodesToScore"), "{e}");
        assert!(Profile::parse("loadAware:\n  margin: 1.5\n", "t").is_err());
        assert!(Profile::parse("weights:\n  imageLocality: -1\n", "t").is_err());
    }
}
