//! Node selectors and node affinity: whether a node's labels (and name)
//! satisfy a pod's `nodeSelector`, its required node affinity terms
//! (In, NotIn, Exists, DoesNotExist, Gt, Lt) and which preferred terms it matches.

use std::collections::BTreeMap;

use berth_api::pb::core::{Affinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, PreferredSchedulingTerm};

/// Whether a node with `labels` and `name` may run a pod with `spec`: its
/// nodeSelector and its required node affinity both hold.
pub fn required_matches(spec: &PodSpec, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let selector_ok = spec.node_selector.iter().all(|(k, v)| labels.get(k) == Some(v));
    selector_ok && required_terms(spec.affinity.as_ref()).is_none_or(|s| selector_matches(s, labels, name))
}

/// The pod's required node affinity, if any.
pub fn required_terms(affinity: Option<&Affinity>) -> Option<&NodeSelector> {
    affinity?.node_affinity.as_ref()?.required_during_scheduling_ignored_during_execution.as_ref()
}

/// The pod's preferred node affinity terms.
pub fn preferred_terms(affinity: Option<&Affinity>) -> &[PreferredSchedulingTerm] {
    affinity
        .and_then(|a| a.node_affinity.as_ref())
        .map(|n| n.preferred_during_scheduling_ignored_during_execution.as_slice())
        .unwrap_or_default()
}

/// A NodeSelector: the OR of its terms. No term matches nothing.
pub fn selector_matches(selector: &NodeSelector, labels: &BTreeMap<String, String>, name: &str) -> bool {
    selector.node_selector_terms.iter().any(|t| term_matches(t, labels, name))
}

/// A term: the AND of its expressions (on labels) and fields (on
/// `metadata.name`). An empty term matches nothing, as in Kubernetes.
pub fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    if term.match_expressions.is_empty() && term.match_fields.is_empty() {
        return false;
    }
    term.match_expressions.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && term.match_fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, Some(name)))
}

/// The sum of the weights of the preferred terms a node matches.
pub fn preferred_weight(terms: &[PreferredSchedulingTerm], labels: &BTreeMap<String, String>, name: &str) -> i64 {
    terms
        .iter()
        .filter(|t| t.weight != 0 && t.preference.as_ref().is_some_and(|p| term_matches(p, labels, name)))
        .map(|t| i64::from(t.weight))
        .sum()
}

/// One requirement against a label's value (None: the label is absent).
/// Unknown operators and malformed Gt/Lt values match nothing.
pub fn requirement_matches(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !r.values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), [bound]) = (value, r.values.as_slice()) else { return false };
            let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else { return false };
            if r.operator == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use berth_api::pb::core::NodeAffinity;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement { key: key.into(), operator: op.into(), values: values.iter().map(|v| v.to_string()).collect() }
    }

    fn term(reqs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm { match_expressions: reqs, match_fields: vec![] }
    }

    fn spec_with_required(terms: Vec<NodeSelectorTerm>) -> PodSpec {
        PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector { node_selector_terms: terms }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn should_apply_each_operator_as_kubernetes_does() {
        let l = labels(&[("zone", "a"), ("cores", "8")]);
        let m = |r: NodeSelectorRequirement| requirement_matches(&r, l.get(&r.key).map(String::as_str));
        assert!(m(req("zone", "In", &["a", "b"])));
        assert!(!m(req("zone", "In", &["b"])));
        assert!(!m(req("missing", "In", &["a"])));
        assert!(m(req("zone", "NotIn", &["b"])));
        assert!(!m(req("zone", "NotIn", &["a"])));
        assert!(m(req("missing", "NotIn", &["a"])));
        assert!(m(req("zone", "Exists", &[])));
        assert!(!m(req("missing", "Exists", &[])));
        assert!(m(req("missing", "DoesNotExist", &[])));
        assert!(!m(req("zone", "DoesNotExist", &[])));
        assert!(m(req("cores", "Gt", &["4"])));
        assert!(!m(req("cores", "Gt", &["8"])));
        assert!(m(req("cores", "Lt", &["16"])));
        assert!(!m(req("cores", "Lt", &["8"])));
        assert!(!m(req("zone", "Gt", &["1"])), "a non-integer label never satisfies Gt");
        assert!(!m(req("missing", "Lt", &["1"])));
        assert!(!m(req("zone", "Near", &["a"])));
    }

    #[test]
    fn should_or_terms_and_and_expressions() {
        let l = labels(&[("zone", "a"), ("disk", "ssd")]);
        let both = spec_with_required(vec![term(vec![req("zone", "In", &["a"]), req("disk", "In", &["hdd"])])]);
        assert!(!required_matches(&both, &l, "n1"));
        let either = spec_with_required(vec![term(vec![req("disk", "In", &["hdd"])]), term(vec![req("zone", "In", &["a"])])]);
        assert!(required_matches(&either, &l, "n1"));
    }

    #[test]
    fn should_match_nothing_with_an_empty_term_or_no_terms() {
        let l = labels(&[("zone", "a")]);
        assert!(!required_matches(&spec_with_required(vec![term(vec![])]), &l, "n1"));
        assert!(!required_matches(&spec_with_required(vec![]), &l, "n1"));
    }

    #[test]
    fn should_match_fields_on_the_node_name() {
        let t = NodeSelectorTerm { match_expressions: vec![], match_fields: vec![req("metadata.name", "In", &["n2"])] };
        let spec = spec_with_required(vec![t]);
        assert!(required_matches(&spec, &BTreeMap::new(), "n2"));
        assert!(!required_matches(&spec, &BTreeMap::new(), "n1"));
    }

    #[test]
    fn should_require_every_node_selector_pair() {
        let spec = PodSpec { node_selector: labels(&[("disk", "ssd"), ("zone", "a")]), ..Default::default() };
        assert!(required_matches(&spec, &labels(&[("disk", "ssd"), ("zone", "a"), ("x", "y")]), "n"));
        assert!(!required_matches(&spec, &labels(&[("disk", "ssd")]), "n"));
        assert!(required_matches(&PodSpec::default(), &BTreeMap::new(), "n"));
    }

    #[test]
    fn should_sum_the_weights_of_matching_preferred_terms() {
        let terms = vec![
            PreferredSchedulingTerm { weight: 10, preference: Some(term(vec![req("zone", "In", &["a"])])) },
            PreferredSchedulingTerm { weight: 5, preference: Some(term(vec![req("disk", "Exists", &[])])) },
            PreferredSchedulingTerm { weight: 7, preference: Some(term(vec![req("gpu", "Exists", &[])])) },
        ];
        assert_eq!(preferred_weight(&terms, &labels(&[("zone", "a"), ("disk", "ssd")]), "n"), 15);
        assert_eq!(preferred_weight(&terms, &labels(&[]), "n"), 0);
    }
}
