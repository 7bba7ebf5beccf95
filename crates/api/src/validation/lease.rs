//! Leases: a positive duration and a non-negative count of transitions.

use super::Check;
use super::meta::{NameRule, object_meta};
use crate::pb::core::Lease;

pub(super) fn lease(c: &mut Check, l: &Lease) {
    object_meta(c, l.metadata.as_ref(), true, NameRule::Subdomain);
    let Some(s) = &l.spec else { return };
    if let Some(d) = s.lease_duration_seconds
        && d <= 0
    {
        c.invalid("spec.leaseDurationSeconds", d, "must be greater than 0");
    }
    if let Some(t) = s.lease_transitions {
        c.non_negative("spec.leaseTransitions", t.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Resource;
    use crate::pb::core::LeaseSpec;
    use crate::validation::test_support::*;

    #[test]
    fn should_require_a_positive_lease_duration() {
        let lease = |d: Option<i32>| {
            Lease {
                metadata: meta("kube-scheduler"),
                spec: Some(LeaseSpec { lease_duration_seconds: d, holder_identity: Some("a".into()), ..Default::default() }),
                ..Default::default()
            }
            .into_object()
        };
        assert_valid(&lease(Some(15)));
        assert_valid(&lease(None));
        assert_eq!(
            assert_error_at(&lease(Some(0)), "spec.leaseDurationSeconds"),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
    }
}
