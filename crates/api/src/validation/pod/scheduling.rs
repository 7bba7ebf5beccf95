//! Where a pod may run: its tolerations and its node affinity (node selector
//! terms, their operators and values, preference weights).

use crate::names;
use crate::pb::core::{NodeAffinity, NodeSelectorTerm, Toleration};
use crate::validation::{Check, TAINT_EFFECTS, at, idx};

pub(super) fn tolerations(c: &mut Check, ts: &[Toleration], p: &str) {
    for (i, t) in ts.iter().enumerate() {
        let tp = idx(p, i);
        let op = at(&tp, "operator");
        if !t.key.is_empty() {
            c.invalid_all(&at(&tp, "key"), &t.key, names::qualified_name(&t.key));
        } else if t.operator != "Exists" {
            c.invalid(&op, &t.operator, "operator must be Exists when `key` is empty, which means \"match all values and all keys\"");
        }
        if t.toleration_seconds.is_some() && t.effect != "NoExecute" {
            c.invalid(&at(&tp, "effect"), &t.effect, "effect must be 'NoExecute' when `tolerationSeconds` is set");
        }
        match t.operator.as_str() {
            "" | "Equal" => {
                let msgs = names::label_value(&t.value);
                if !msgs.is_empty() {
                    c.invalid(&op, &t.value, msgs.join(";"));
                }
            }
            "Exists" => {
                if !t.value.is_empty() {
                    c.invalid(&op, &t.value, "value must be empty when `operator` is 'Exists'");
                }
            }
            other => c.not_supported(&op, other, &["Equal", "Exists"]),
        }
        c.one_of(&at(&tp, "effect"), &t.effect, TAINT_EFFECTS, false);
    }
}

pub(super) fn node_affinity(c: &mut Check, na: &NodeAffinity, p: &str) {
    if let Some(req) = &na.required_during_scheduling_ignored_during_execution {
        let rp = at(p, "requiredDuringSchedulingIgnoredDuringExecution");
        let tp = at(&rp, "nodeSelectorTerms");
        if req.node_selector_terms.is_empty() {
            c.required(&tp, "must have at least one node selector term");
        }
        for (i, term) in req.node_selector_terms.iter().enumerate() {
            node_selector_term(c, term, &idx(&tp, i));
        }
    }
    let pp = at(p, "preferredDuringSchedulingIgnoredDuringExecution");
    for (i, pref) in na.preferred_during_scheduling_ignored_during_execution.iter().enumerate() {
        let ip = idx(&pp, i);
        if !(1..=100).contains(&pref.weight) {
            c.invalid(&at(&ip, "weight"), pref.weight, "must be in the range 1-100");
        }
        match &pref.preference {
            Some(t) => node_selector_term(c, t, &at(&ip, "preference")),
            None => c.required(&at(&ip, "preference"), ""),
        }
    }
}

fn node_selector_term(c: &mut Check, term: &NodeSelectorTerm, p: &str) {
    for (i, r) in term.match_expressions.iter().enumerate() {
        let rp = idx(&at(p, "matchExpressions"), i);
        let vp = at(&rp, "values");
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.is_empty() {
                    c.required(&vp, "must be specified when `operator` is 'In' or 'NotIn'");
                }
            }
            "Exists" | "DoesNotExist" => {
                if !r.values.is_empty() {
                    c.forbidden(&vp, "may not be specified when `operator` is 'Exists' or 'DoesNotExist'");
                }
            }
            "Gt" | "Lt" => match r.values.as_slice() {
                [v] => {
                    if v.parse::<i64>().is_err() {
                        c.invalid(&idx(&vp, 0), v, "must be an integer");
                    }
                }
                _ => c.required(&vp, "must be specified single value when `operator` is 'Lt' or 'Gt'"),
            },
            other => c.invalid(&at(&rp, "operator"), other, "not a valid selector operator"),
        }
        c.invalid_all(&at(&rp, "key"), &r.key, names::qualified_name(&r.key));
    }
    for (i, r) in term.match_fields.iter().enumerate() {
        let rp = idx(&at(p, "matchFields"), i);
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if r.values.len() != 1 {
                    c.required(&at(&rp, "values"), "must be only one value when `operator` is 'In' or 'NotIn' for node field selector");
                }
            }
            other => c.invalid(&at(&rp, "operator"), other, "not a valid selector operator"),
        }
        if r.key != "metadata.name" {
            c.not_supported(&at(&rp, "key"), &r.key, &["metadata.name"]);
        } else {
            for (j, v) in r.values.iter().enumerate() {
                c.invalid_all(&idx(&at(&rp, "values"), j), v, names::dns1123_subdomain(v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::api::Object;
    use crate::pb::core::{Affinity, NodeSelector, NodeSelectorRequirement, PreferredSchedulingTerm};
    use crate::validation::test_support::*;

    fn toleration(key: &str, op: &str, value: &str, effect: &str) -> Object {
        pod_with(|s| {
            s.tolerations = vec![Toleration {
                key: key.into(),
                operator: op.into(),
                value: value.into(),
                effect: effect.into(),
                toleration_seconds: None,
            }]
        })
    }

    #[test]
    fn should_check_tolerations() {
        assert_valid(&toleration("k", "", "v", ""));
        assert_valid(&toleration("k", "Exists", "", "PreferNoSchedule"));
        assert!(
            assert_error_at(&toleration("k", "Exists", "v", ""), "spec.tolerations[0].operator")
                .contains("value must be empty when `operator` is 'Exists'")
        );
        assert_error_at(&toleration("k", "In", "v", ""), "spec.tolerations[0].operator");
        assert_error_at(&toleration("", "Equal", "v", ""), "spec.tolerations[0].operator");
        assert_error_at(&toleration("k", "Equal", "v", "NoRun"), "spec.tolerations[0].effect");
        assert_error_at(&toleration("bad key", "Exists", "", ""), "spec.tolerations[0].key");
        let seconds = pod_with(|s| {
            s.tolerations = vec![Toleration {
                key: "k".into(),
                operator: "Exists".into(),
                effect: "NoSchedule".into(),
                toleration_seconds: Some(5),
                ..Default::default()
            }]
        });
        assert_error_at(&seconds, "spec.tolerations[0].effect");
    }

    fn node_expr(op: &str, values: &[&str]) -> Object {
        pod_with(|s| {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: vec![NodeSelectorRequirement {
                                key: "zone".into(),
                                operator: op.into(),
                                values: values.iter().map(|v| v.to_string()).collect(),
                            }],
                            match_fields: vec![],
                        }],
                    }),
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
            })
        })
    }

    #[test]
    fn should_check_node_affinity_operators_and_values() {
        let p = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]";
        assert_valid(&node_expr("NotIn", &["a"]));
        assert_valid(&node_expr("Lt", &["10"]));
        assert_error_at(&node_expr("In", &[]), &format!("{p}.values"));
        assert_error_at(&node_expr("Exists", &["a"]), &format!("{p}.values"));
        assert_error_at(&node_expr("Gt", &["1", "2"]), &format!("{p}.values"));
        assert_error_at(&node_expr("Gt", &["many"]), &format!("{p}.values[0]"));
        assert_eq!(
            assert_error_at(&node_expr("Near", &["a"]), &format!("{p}.operator")),
            format!("{p}.operator: Invalid value: \"Near\": not a valid selector operator")
        );
        let empty = pod_with(|s| {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector::default()),
                    preferred_during_scheduling_ignored_during_execution: vec![],
                }),
            })
        });
        assert_error_at(&empty, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
        let weight = pod_with(|s| {
            s.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: None,
                    preferred_during_scheduling_ignored_during_execution: vec![PreferredSchedulingTerm {
                        weight: 0,
                        preference: Some(NodeSelectorTerm::default()),
                    }],
                }),
            })
        });
        assert_error_at(&weight, "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight");
    }
}
