//! Namespaces: a DNS-1123 label name, finalizers that are standard or fully
//! qualified, and the phase.

use super::meta::{NameRule, object_meta};
use super::{Check, idx};
use crate::names;
use crate::pb::core::Namespace;

pub(super) fn namespace(c: &mut Check, n: &Namespace) {
    object_meta(c, n.metadata.as_ref(), false, NameRule::Label);
    if let Some(spec) = &n.spec {
        for (i, f) in spec.finalizers.iter().enumerate() {
            let p = idx("spec.finalizers", i);
            let msgs = names::qualified_name(f);
            if !msgs.is_empty() {
                c.invalid_all(&p, f, msgs);
            } else if !f.contains('/') && !["kubernetes", "orphan", "foregroundDeletion"].contains(&f.as_str()) {
                c.invalid(&p, f, "name is neither a standard finalizer name nor is it fully qualified");
            }
        }
    }
    if let Some(status) = &n.status {
        c.one_of("status.phase", &status.phase, &["Active", "Terminating"], false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::core::{NamespaceSpec, NamespaceStatus};
    use crate::validation::test_support::*;

    #[test]
    fn should_check_namespace_phase_and_finalizers() {
        let ns = |phase: &str, fin: &str| {
            Namespace {
                metadata: cluster_meta("dev"),
                spec: Some(NamespaceSpec { finalizers: vec![fin.into()] }),
                status: Some(NamespaceStatus { phase: phase.into(), ..Default::default() }),
                ..Default::default()
            }
            .into_object()
        };
        assert_valid(&ns("Active", "kubernetes"));
        assert_valid(&ns("Terminating", "example.com/cleanup"));
        assert_error_at(&ns("Deleting", "kubernetes"), "status.phase");
        assert_error_at(&ns("Active", "cleanup"), "spec.finalizers[0]");
    }
}
