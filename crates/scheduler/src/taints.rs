//! Taints and tolerations: which of a node's taints a pod tolerates, as
//! Kubernetes matches them (key, operator Equal/Exists, value, effect).

use berth_api::pb::core::{Taint, Toleration};

pub const NO_SCHEDULE: &str = "NoSchedule";
pub const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const NO_EXECUTE: &str = "NoExecute";

/// The taint Kubernetes puts on cordoned nodes; a pod tolerating it may go there.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";
/// The taint Kubernetes puts on nodes that are not ready.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";

/// Whether `toleration` tolerates `taint`: an empty effect matches every
/// effect, an empty key with `Exists` matches every key, `Equal` (or no
/// operator) needs the same value.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if !toleration.effect.is_empty() && toleration.effect != taint.effect {
        return false;
    }
    if !toleration.key.is_empty() && toleration.key != taint.key {
        return false;
    }
    match toleration.operator.as_str() {
        "Exists" => true,
        "" | "Equal" => toleration.value == taint.value,
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// The first NoSchedule or NoExecute taint that none of `tolerations`
/// tolerates: such a node cannot take the pod.
pub fn first_untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|t| (t.effect == NO_SCHEDULE || t.effect == NO_EXECUTE) && !tolerated(tolerations, t))
}

/// How many PreferNoSchedule taints the pod does not tolerate (only
/// tolerations with an empty or PreferNoSchedule effect count, as in Kubernetes).
pub fn intolerable_preferences(taints: &[Taint], tolerations: &[Toleration]) -> i64 {
    let mut count = 0;
    for taint in taints.iter().filter(|t| t.effect == PREFER_NO_SCHEDULE) {
        let ok = tolerations.iter().filter(|t| t.effect.is_empty() || t.effect == PREFER_NO_SCHEDULE).any(|t| tolerates(t, taint));
        if !ok {
            count += 1;
        }
    }
    count
}

/// Whether the pod tolerates a NoSchedule taint with this key (and no
/// value): how a pod opts into cordoned or not-ready nodes.
pub fn tolerates_no_schedule_key(tolerations: &[Toleration], key: &str) -> bool {
    let taint = Taint { key: key.into(), effect: NO_SCHEDULE.into(), ..Default::default() };
    tolerated(tolerations, &taint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint { key: key.into(), value: value.into(), effect: effect.into(), ..Default::default() }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        Toleration { key: key.into(), operator: op.into(), value: value.into(), effect: effect.into(), toleration_seconds: None }
    }

    #[test]
    fn should_match_key_value_and_effect() {
        let t = taint("dedicated", "db", NO_SCHEDULE);
        assert!(tolerates(&tol("dedicated", "Equal", "db", NO_SCHEDULE), &t));
        assert!(tolerates(&tol("dedicated", "", "db", ""), &t), "no operator means Equal, no effect means all");
        assert!(!tolerates(&tol("dedicated", "Equal", "web", NO_SCHEDULE), &t));
        assert!(!tolerates(&tol("dedicated", "Equal", "db", NO_EXECUTE), &t));
        assert!(tolerates(&tol("dedicated", "Exists", "", ""), &t));
        assert!(tolerates(&tol("", "Exists", "", ""), &t), "an empty key with Exists tolerates everything");
        assert!(!tolerates(&tol("other", "Exists", "", ""), &t));
    }

    #[test]
    fn should_find_the_first_hard_taint_not_tolerated() {
        let taints = vec![taint("soft", "", PREFER_NO_SCHEDULE), taint("a", "1", NO_SCHEDULE), taint("b", "2", NO_EXECUTE)];
        assert_eq!(first_untolerated(&taints, &[]).map(|t| t.key.as_str()), Some("a"));
        assert_eq!(first_untolerated(&taints, &[tol("a", "Exists", "", "")]).map(|t| t.key.as_str()), Some("b"));
        assert!(first_untolerated(&taints, &[tol("a", "Exists", "", ""), tol("b", "Equal", "2", NO_EXECUTE)]).is_none());
    }

    #[test]
    fn should_count_untolerated_prefer_no_schedule_taints() {
        let taints = vec![taint("x", "", PREFER_NO_SCHEDULE), taint("y", "", PREFER_NO_SCHEDULE), taint("z", "", NO_SCHEDULE)];
        assert_eq!(intolerable_preferences(&taints, &[]), 2);
        assert_eq!(intolerable_preferences(&taints, &[tol("x", "Exists", "", PREFER_NO_SCHEDULE)]), 1);
        // A toleration for another effect does not count.
        assert_eq!(intolerable_preferences(&taints, &[tol("y", "Exists", "", NO_SCHEDULE)]), 2);
    }

    #[test]
    fn should_let_a_pod_opt_into_cordoned_nodes() {
        assert!(tolerates_no_schedule_key(&[tol(UNSCHEDULABLE_TAINT, "Exists", "", NO_SCHEDULE)], UNSCHEDULABLE_TAINT));
        assert!(!tolerates_no_schedule_key(&[], UNSCHEDULABLE_TAINT));
    }
}
