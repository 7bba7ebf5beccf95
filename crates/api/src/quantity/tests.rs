//! Tests of quantities: parsing and its errors, rounding, comparison,
//! arithmetic, canonical printing and the serde forms.

use std::cmp::Ordering;

use super::*;

fn q(s: &str) -> Quantity {
    match Quantity::parse(s) {
        Ok(q) => q,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

fn canonical(s: &str) -> String {
    q(s).to_string()
}

#[test]
fn should_parse_plain_integers_and_decimals_exactly() {
    assert_eq!(q("1").nano_value(), 1_000_000_000);
    assert_eq!(q("1.5").nano_value(), 1_500_000_000);
    assert_eq!(q("0.3").nano_value(), 300_000_000);
    assert_eq!(q("0").nano_value(), 0);
    assert_eq!(q("007").nano_value(), 7_000_000_000);
    assert_eq!(q(".5").nano_value(), 500_000_000);
    assert_eq!(q("5.").nano_value(), 5_000_000_000);
    assert_eq!(q("+2").nano_value(), 2_000_000_000);
    assert_eq!(q("-2").nano_value(), -2_000_000_000);
}

#[test]
fn should_parse_decimal_suffixes() {
    assert_eq!(q("500m").milli_value(), 500);
    assert_eq!(q("1n").nano_value(), 1);
    assert_eq!(q("1u").nano_value(), 1_000);
    assert_eq!(q("1k").value(), 1_000);
    assert_eq!(q("1M").value(), 1_000_000);
    assert_eq!(q("1G").value(), 1_000_000_000);
    assert_eq!(q("1T").value(), 1_000_000_000_000);
    assert_eq!(q("1P").value(), 1_000_000_000_000_000);
    assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
}

#[test]
fn should_parse_binary_suffixes() {
    assert_eq!(q("1Ki").value(), 1024);
    assert_eq!(q("128Mi").value(), 128 << 20);
    assert_eq!(q("1Gi").value(), 1 << 30);
    assert_eq!(q("1Ti").value(), 1 << 40);
    assert_eq!(q("1Pi").value(), 1 << 50);
    assert_eq!(q("1Ei").value(), 1 << 60);
    assert_eq!(q("1.5Gi").value(), 1536 << 20);
    assert_eq!(q("0.5Ki").value(), 512);
}

#[test]
fn should_parse_exponents() {
    assert_eq!(q("1e3").value(), 1000);
    assert_eq!(q("1E3").value(), 1000);
    assert_eq!(q("1e+3").value(), 1000);
    assert_eq!(q("1E-3").milli_value(), 1);
    assert_eq!(q("1.5e1").value(), 15);
    assert_eq!(q("12e6").value(), 12_000_000);
    assert_eq!(q("0e1000000").nano_value(), 0);
}

#[test]
fn should_round_sub_nano_values_up() {
    assert_eq!(q("0.1n").nano_value(), 1);
    assert_eq!(q("1.5n").nano_value(), 2);
    assert_eq!(q("-0.1n").nano_value(), -1);
    assert_eq!(q("1e-20").nano_value(), 1);
    assert_eq!(q("1e-999999999999").nano_value(), 1);
    assert_eq!(q("0.0000000001").nano_value(), 1);
    assert_eq!(q("0.0000000010").nano_value(), 1);
    assert_eq!(q("0.00000000100").nano_value(), 1);
    assert_eq!(q("1.0000000001").nano_value(), 1_000_000_001);
    assert_eq!(q("0.1234567890123456789012345678901234567890123").nano_value(), 123_456_790);
    assert_eq!(q("0.0000000001Ki").nano_value(), 103);
}

#[test]
fn should_reject_malformed_quantities_naming_them() {
    for s in ["", "abc", "1.2.3", "1 ", " 1", "1e3.5", "--1", "1Mi3", "1.5.Gi", "Ki", "-", ".", "+", "e3", "1,5"] {
        let err = Quantity::parse(s).expect_err(s);
        let msg = err.to_string();
        assert!(msg.contains(&format!("{s:?}")), "{msg}");
    }
    assert_eq!(
        Quantity::parse("abc").expect_err("abc").to_string(),
        "invalid quantity \"abc\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
}

#[test]
fn should_reject_unknown_suffixes() {
    for (s, suffix) in
        [("1K", "K"), ("1e", "e"), ("1i", "i"), ("1Mi3", "Mi3"), ("1kk", "kk"), ("1Ee3", "Ee3"), ("1m3", "m3"), ("1e-", "e-")]
    {
        match Quantity::parse(s) {
            Err(Error::Suffix { input, suffix: got }) => {
                assert_eq!(input, s);
                assert_eq!(got, suffix);
            }
            other => panic!("{s}: {other:?}"),
        }
    }
    assert!(matches!(Quantity::parse("1KB"), Err(Error::Format { .. })));
    assert!(matches!(Quantity::parse("1e99999999999999999999"), Err(Error::Suffix { .. })));
}

#[test]
fn should_reject_values_too_large() {
    assert!(matches!(Quantity::parse("1e40"), Err(Error::TooLarge { .. })));
    assert!(matches!(Quantity::parse(&"9".repeat(40)), Err(Error::TooLarge { .. })));
    assert!(Quantity::parse("1e20").is_ok());
    assert!(Quantity::parse("1e29").is_ok());
}

#[test]
fn should_cap_binary_quantities_at_int64_max() {
    assert_eq!(q("16Ei").value(), i64::MAX);
    assert_eq!(q("-16Ei").value(), -i64::MAX);
    assert_eq!(q("8Ei").to_string(), "9223372036854775807");
}

#[test]
fn should_round_milli_value_and_value_up() {
    assert_eq!(q("500m").value(), 1);
    assert_eq!(q("1001m").value(), 2);
    assert_eq!(q("-500m").value(), -1);
    assert_eq!(q("0.1m").milli_value(), 1);
    assert_eq!(q("1.5").milli_value(), 1500);
    assert_eq!(q("1u").milli_value(), 1);
    assert_eq!(q("2").milli_value(), 2000);
}

#[test]
fn should_saturate_conversions_to_i64() {
    assert_eq!(q("1e20").value(), i64::MAX);
    assert_eq!(q("-1e20").value(), i64::MIN);
    assert_eq!(q("1e17").milli_value(), i64::MAX);
}

#[test]
fn should_compare_numerically() {
    assert!(q("1Gi") > q("1G"));
    assert_eq!(q("1000m"), q("1"));
    assert_eq!(q("1k"), q("1e3"));
    assert_eq!(q("1024"), q("1Ki"));
    assert!(q("999m") < q("1"));
    assert!(q("-1") < q("0"));
    assert_eq!(q("0.5").cmp(&q("500m")), Ordering::Equal);
    let mut v = [q("1Gi"), q("1"), q("500m"), q("1G")];
    v.sort();
    assert_eq!(v.iter().map(|x| x.to_string()).collect::<Vec<_>>(), vec!["500m", "1", "1G", "1Gi"]);
}

#[test]
fn should_hash_consistently_with_equality() {
    use std::collections::HashSet;
    let set: HashSet<Quantity> = [q("1"), q("1000m"), q("1e0")].into_iter().collect();
    assert_eq!(set.len(), 1);
}

#[test]
fn should_print_canonical_decimal_forms_like_kubernetes() {
    assert_eq!(canonical("0"), "0");
    assert_eq!(canonical("0.0"), "0");
    assert_eq!(canonical("-0"), "0");
    assert_eq!(canonical("1"), "1");
    assert_eq!(canonical("1.5"), "1500m");
    assert_eq!(canonical("0.5"), "500m");
    assert_eq!(canonical("500m"), "500m");
    assert_eq!(canonical("1000m"), "1");
    assert_eq!(canonical("1000"), "1k");
    assert_eq!(canonical("1500"), "1500");
    assert_eq!(canonical("1G"), "1G");
    assert_eq!(canonical("1.5G"), "1500M");
    assert_eq!(canonical("0.3"), "300m");
    assert_eq!(canonical("1n"), "1n");
    assert_eq!(canonical("10n"), "10n");
    assert_eq!(canonical("1u"), "1u");
    assert_eq!(canonical("0.1m"), "100u");
    assert_eq!(canonical("100M"), "100M");
    assert_eq!(canonical("-1.5"), "-1500m");
    assert_eq!(canonical("1E"), "1E");
    assert_eq!(canonical("1000E"), "1000E");
    assert_eq!(canonical("+5"), "5");
}

#[test]
fn should_keep_binary_suffixes_when_exact() {
    assert_eq!(canonical("128Mi"), "128Mi");
    assert_eq!(canonical("1Gi"), "1Gi");
    assert_eq!(canonical("1024Mi"), "1Gi");
    assert_eq!(canonical("1.5Gi"), "1536Mi");
    assert_eq!(canonical("1Ki"), "1Ki");
    assert_eq!(canonical("1536Ki"), "1536Ki");
    assert_eq!(canonical("1024Ei"), "9223372036854775807");
    assert_eq!(canonical("-2Gi"), "-2Gi");
    assert_eq!(canonical("1Ei"), "1Ei");
}

#[test]
fn should_print_small_or_fractional_binary_values_in_decimal() {
    assert_eq!(canonical("0.5Ki"), "512");
    assert_eq!(canonical("0.0001Ki"), "102400u");
    assert_eq!(canonical("1.0001Ki"), "1024102400u");
}

#[test]
fn should_keep_exponent_form() {
    assert_eq!(canonical("1e3"), "1e3");
    assert_eq!(canonical("12e6"), "12e6");
    assert_eq!(canonical("1E-3"), "1e-3");
    assert_eq!(canonical("1.5e3"), "1500");
    assert_eq!(canonical("1e1"), "10");
    assert_eq!(canonical("1e21"), "1e21");
}

#[test]
fn should_round_trip_canonical_forms() {
    for s in ["500m", "1.5", "128Mi", "1G", "0.3", "1e3", "1.5Gi", "100u", "-7n", "1e21", "123456789"] {
        let a = q(s);
        let b = q(&a.to_string());
        assert_eq!(a, b, "{s}");
        assert_eq!(a.to_string(), b.to_string(), "{s}");
    }
}

#[test]
fn should_build_from_milli_and_value() {
    assert_eq!(Quantity::from_milli(500).to_string(), "500m");
    assert_eq!(Quantity::from_milli(1500), q("1.5"));
    assert_eq!(Quantity::from_value(2).to_string(), "2");
    assert_eq!(Quantity::from_value(-3).value(), -3);
    assert_eq!(Quantity::from_binary_value(128 << 20).to_string(), "128Mi");
    assert_eq!(Quantity::from_nano(1).to_string(), "1n");
    assert_eq!(Quantity::from_value(i64::MAX).value(), i64::MAX);
    assert_eq!(Quantity::from_milli(i64::MIN).milli_value(), i64::MIN);
}

#[test]
fn should_add_and_subtract_exactly() {
    assert_eq!(q("0.1") + q("0.2"), q("0.3"));
    assert_eq!((q("1") - q("250m")).to_string(), "750m");
    assert_eq!((q("1Gi") + q("1Gi")).to_string(), "2Gi");
    assert_eq!((q("0") + q("1Gi")).to_string(), "1Gi");
    assert_eq!((q("1") - q("2")).to_string(), "-1");
    let mut total = Quantity::default();
    total += q("100m");
    total += q("200m");
    total -= q("50m");
    assert_eq!(total.milli_value(), 250);
    let sum: Quantity = ["100m", "200m", "1"].iter().map(|s| q(s)).sum();
    assert_eq!(sum.to_string(), "1300m");
    let refs = [q("1Ki"), q("1Ki")];
    assert_eq!(refs.iter().sum::<Quantity>().to_string(), "2Ki");
}

#[test]
fn should_detect_overflow_in_checked_arithmetic_and_saturate_otherwise() {
    let max = Quantity::from_nano(i128::MAX);
    assert_eq!(max.checked_add(q("1n")), None);
    assert_eq!(Quantity::from_nano(i128::MIN).checked_sub(q("1n")), None);
    assert_eq!(q("1").checked_add(q("1")), Some(q("2")));
    assert_eq!(q("1").checked_sub(q("1")), Some(q("0")));
    assert_eq!((max + q("1")).nano_value(), i128::MAX);
}

#[test]
fn should_report_zero_and_sign() {
    assert!(q("0").is_zero());
    assert!(q("0Gi").is_zero());
    assert!(!q("1n").is_zero());
    assert!(q("-1m").is_negative());
    assert!(!q("0").is_negative());
    assert_eq!(q("1Gi").format(), Format::BinarySI);
    assert_eq!(q("1e3").format(), Format::DecimalExponent);
    assert_eq!(q("1k").format(), Format::DecimalSI);
}

#[test]
fn should_parse_cpu_millis_and_bytes() {
    assert_eq!(parse_cpu_millis("500m"), Ok(500));
    assert_eq!(parse_cpu_millis("2"), Ok(2000));
    assert_eq!(parse_cpu_millis("0.25"), Ok(250));
    assert_eq!(parse_cpu_millis("0.0001"), Ok(1));
    assert_eq!(parse_bytes("128Mi"), Ok(134_217_728));
    assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
    assert_eq!(parse_bytes("1.5"), Ok(2));
    assert!(parse_bytes("1 GB").is_err());
    assert!(parse_cpu_millis("fast").is_err());
}

#[test]
fn should_parse_through_from_str() {
    let x: Quantity = "250m".parse().expect("valid");
    assert_eq!(x.milli_value(), 250);
    assert!("x".parse::<Quantity>().is_err());
}

#[test]
fn should_serialize_as_canonical_string() {
    assert_eq!(serde_json::to_string(&q("1.5Gi")).ok(), Some("\"1536Mi\"".to_string()));
    assert_eq!(serde_json::to_string(&q("0.5")).ok(), Some("\"500m\"".to_string()));
}

#[test]
fn should_deserialize_from_strings_and_numbers() {
    let from = |json: &str| serde_json::from_str::<Quantity>(json);
    assert_eq!(from("\"500m\"").ok(), Some(q("500m")));
    assert_eq!(from("1").ok(), Some(q("1")));
    assert_eq!(from("-2").ok(), Some(q("-2")));
    assert_eq!(from("0.5").ok(), Some(q("500m")));
    assert_eq!(from("18446744073709551615").ok().map(|x| x.nano_value()), Some(18_446_744_073_709_551_615_i128 * 1_000_000_000));
    let err = from("\"1 GB\"").expect_err("invalid");
    assert!(err.to_string().contains("invalid quantity \"1 GB\""), "{err}");
    assert!(from("true").is_err());
}
