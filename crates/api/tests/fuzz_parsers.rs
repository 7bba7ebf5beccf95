//! Fuzz targets (proptest) for the parsers that take untrusted input:
//! manifests, label and field selectors, and quantities. Each must answer
//! any input with a value or an error, never a panic, and what it prints
//! must parse back to the same thing. The case count is bounded
//! (`PROPTEST_CASES`, default 256 per target) so CI runs them in seconds.

use berth_api::quantity::{self, Quantity};
use berth_api::{fields, labels, manifest};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Strings made of the characters the parsers care about, so that the
/// fuzzer reaches deep into their grammars rather than failing on the first byte.
fn selector_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"[a-z0-9./_!=,() -]{0,40}|(in|notin|!)[ a-z(),]{0,20}").expect("regex")
}

fn quantity_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex(r"[+-]?[0-9]{0,20}(\.[0-9]{0,12})?([eE][+-]?[0-9]{1,4})?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|u|n)?")
        .expect("regex")
}

fn manifest_text() -> impl Strategy<Value = String> {
    let kinds = prop::sample::select(vec![
        "Pod",
        "Service",
        "ConfigMap",
        "Secret",
        "ReplicationController",
        "Role",
        "RoleBinding",
        "ServiceAccount",
        "Nope",
    ]);
    let values = prop::collection::vec(any::<String>(), 0..4);
    (kinds, values, "[a-z:{}\\[\\] \\n-]{0,60}").prop_map(|(kind, vals, junk)| {
        let mut s = format!("apiVersion: v1\nkind: {kind}\nmetadata:\n  name: x\n");
        for (i, v) in vals.iter().enumerate() {
            s.push_str(&format!("  f{i}: {v:?}\n"));
        }
        s.push_str("---\n");
        s.push_str(&junk);
        s
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn should_parse_any_label_selector_without_panicking_and_round_trip_it(s in selector_text()) {
        if let Ok(sel) = labels::Selector::parse(&s) {
            let again = labels::Selector::parse(&sel.to_string());
            prop_assert!(again.is_ok(), "{s:?} printed as {:?}, which does not parse", sel.to_string());
            prop_assert_eq!(again.map(|a| a.to_string()).unwrap_or_default(), sel.to_string());
        }
    }

    #[test]
    fn should_parse_any_field_selector_without_panicking_and_round_trip_it(s in selector_text()) {
        if let Ok(sel) = fields::Selector::parse(&s) {
            let again = fields::Selector::parse(&sel.to_string());
            prop_assert!(again.is_ok(), "{s:?} printed as {:?}, which does not parse", sel.to_string());
        }
    }

    #[test]
    fn should_parse_arbitrary_bytes_as_selectors_without_panicking(s in any::<String>()) {
        let _ = labels::Selector::parse(&s);
        let _ = fields::Selector::parse(&s);
    }

    #[test]
    fn should_parse_any_quantity_without_panicking_and_round_trip_it(s in quantity_text()) {
        if let Ok(q) = Quantity::parse(&s) {
            let printed = q.to_string();
            let again = Quantity::parse(&printed);
            prop_assert!(again.is_ok(), "{s:?} printed as {printed:?}, which does not parse");
        }
        let _ = quantity::parse_cpu_millis(&s);
        let _ = quantity::parse_bytes(&s);
    }

    #[test]
    fn should_parse_arbitrary_bytes_as_quantities_without_panicking(s in any::<String>()) {
        let _ = Quantity::parse(&s);
        let _ = quantity::parse_cpu_millis(&s);
        let _ = quantity::parse_bytes(&s);
    }

    #[test]
    fn should_parse_any_manifest_without_panicking(s in manifest_text()) {
        let _ = manifest::parse(&s);
    }

    #[test]
    fn should_parse_arbitrary_text_as_a_manifest_without_panicking(s in any::<String>()) {
        let _ = manifest::parse(&s);
    }
}
