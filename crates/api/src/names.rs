//! Name and label syntax checks (DNS-1123 names, label keys and values, ports, IPs) with Kubernetes' messages.
//!
//! Every check returns the list of problems found; an empty list means the
//! value is valid. The messages match those of Kubernetes'
//! `k8s.io/apimachinery/pkg/util/validation`, so a caller can prefix them with
//! the field path (`metadata.name: Invalid value: "Foo": a lowercase RFC 1123
//! subdomain must ...`). The checks are hand-written; the regular expressions
//! quoted in the messages document the rule.

use std::net::{IpAddr, Ipv4Addr};

/// Maximum length of a DNS-1123 label (and of a DNS-1035 label).
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of a DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Maximum length of the name part of a qualified name (label key).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Maximum length of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Maximum length of a port name (IANA_SVC_NAME).
pub const PORT_NAME_MAX_LENGTH: usize = 15;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR_MSG: &str =
    "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";
const C_IDENTIFIER_FMT: &str = "[A-Za-z_][A-Za-z0-9_]*";
const C_IDENTIFIER_ERR_MSG: &str =
    "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_'";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

/// Checks a DNS-1123 subdomain (object names of most kinds, the prefix of a
/// label key): at most 253 characters, lowercase alphanumerics, '-' and '.',
/// starting and ending with an alphanumeric character.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !is_dns1123_subdomain_syntax(s) {
        errs.push(regex_error(DNS1123_SUBDOMAIN_ERR_MSG, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

/// Checks a DNS-1123 label (namespace names, node-local names): at most 63
/// characters, lowercase alphanumerics and '-', starting and ending with an
/// alphanumeric character; no dots.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !is_dns1123_label_syntax(s) {
        if is_dns1123_subdomain_syntax(s) {
            // A valid subdomain but not a label: the length was checked
            // above, so it must be the dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(DNS1123_LABEL_ERR_MSG, DNS1123_LABEL_FMT, &["my-name", "123-abc"]));
        }
    }
    errs
}

/// Checks a DNS-1035 label (Service names): at most 63 characters,
/// lowercase alphanumerics and '-', starting with a letter and ending with an
/// alphanumeric character.
pub fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    let starts_with_letter = s.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !(starts_with_letter && is_dns1123_label_syntax(s)) {
        errs.push(regex_error(DNS1035_LABEL_ERR_MSG, DNS1035_LABEL_FMT, &["my-name", "abc-123"]));
    }
    errs
}

/// Checks a qualified name (label and annotation keys): an optional DNS-1123
/// subdomain prefix and '/', then a name of at most 63 characters made of
/// alphanumerics, '-', '_' and '.', starting and ending with an alphanumeric
/// character.
pub fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(dns1123_subdomain(prefix).into_iter().map(|m| format!("prefix part {m}")));
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!("name part {}", max_len_error(QUALIFIED_NAME_MAX_LENGTH)));
    }
    if !is_label_token(name) {
        errs.push(format!("name part {}", regex_error(QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])));
    }
    errs
}

/// Checks a label value: at most 63 characters, empty or made of
/// alphanumerics, '-', '_' and '.', starting and ending with an alphanumeric
/// character.
pub fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !(s.is_empty() || is_label_token(s)) {
        errs.push(regex_error(LABEL_VALUE_ERR_MSG, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errs
}

/// Checks a port name (IANA_SVC_NAME, RFC 6335): at most 15 characters,
/// lowercase alphanumerics and '-', at least one letter, no "--", neither
/// starting nor ending with '-'.
pub fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > PORT_NAME_MAX_LENGTH {
        errs.push(max_len_error(PORT_NAME_MAX_LENGTH));
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// Checks a port number: 1 to 65535 inclusive.
pub fn port_number(p: i64) -> Vec<String> {
    if (1..=65535).contains(&p) { Vec::new() } else { vec![inclusive_range_error(1, 65535)] }
}

/// Checks an environment variable name as Kubernetes does:
/// `[-._a-zA-Z][-._a-zA-Z0-9]*`, and not `.`, `..` or starting with `..`.
pub fn env_var_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let first_ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'-' | b'.' | b'_'));
    let rest_ok = s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !(first_ok && rest_ok) {
        errs.push(regex_error(ENV_VAR_NAME_ERR_MSG, ENV_VAR_NAME_FMT, &["my.env-name", "MY_ENV.NAME", "MyEnvName1"]));
    }
    errs.extend(ch_dir_prefix_errors(s));
    errs
}

/// Checks a C identifier: `[A-Za-z_][A-Za-z0-9_]*` (no length limit).
pub fn c_identifier(s: &str) -> Vec<String> {
    let first_ok = s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    let rest_ok = s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if first_ok && rest_ok {
        Vec::new()
    } else {
        vec![regex_error(C_IDENTIFIER_ERR_MSG, C_IDENTIFIER_FMT, &["my_name", "MY_NAME", "MyName"])]
    }
}

/// Checks a ConfigMap or Secret data key: at most 253 characters of
/// alphanumerics, '-', '_' and '.', and not `.`, `..` or starting with `..`.
pub fn config_map_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
        errs.push(regex_error(CONFIG_MAP_KEY_ERR_MSG, CONFIG_MAP_KEY_FMT, &["key.name", "KEY_NAME", "key-name"]));
    }
    errs.extend(ch_dir_prefix_errors(s));
    errs
}

/// Checks an IP address strictly, as Kubernetes' `IsValidIP`: IPv4 or IPv6,
/// no leading zeros in IPv4 octets, no IPv4-mapped IPv6 address, and in
/// canonical form (`2001:db8::1`, not `2001:DB8:0::1`), so that one address
/// has one spelling.
pub fn ip_address(s: &str) -> Vec<String> {
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            return if sloppy_ip(s).is_some() {
                vec!["must not have leading 0s".to_string()]
            } else {
                vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()]
            };
        }
    };
    if matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some()) {
        return vec!["must not be an IPv4-mapped IPv6 address".to_string()];
    }
    let canonical = ip.to_string();
    if canonical != s {
        return vec![format!("must be in canonical form (\"{canonical}\")")];
    }
    Vec::new()
}

/// Parses an address the way Go's sloppy parser does, tolerating leading
/// zeros in IPv4 octets (also in the dotted tail of an IPv6 address).
fn sloppy_ip(s: &str) -> Option<IpAddr> {
    match s.rfind(':') {
        None => strip_ipv4_zeros(s).and_then(|v4| v4.parse::<Ipv4Addr>().ok()).map(IpAddr::V4),
        Some(i) => {
            let (head, tail) = s.split_at(i + 1);
            if !tail.contains('.') {
                return None;
            }
            let tail = strip_ipv4_zeros(tail)?;
            format!("{head}{tail}").parse::<IpAddr>().ok()
        }
    }
}

/// Rewrites `010.002.3.4` as `10.2.3.4`; None if it is not four groups of
/// one to three digits.
fn strip_ipv4_zeros(s: &str) -> Option<String> {
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() != 4 {
        return None;
    }
    let mut out = Vec::with_capacity(4);
    for o in octets {
        if o.is_empty() || o.len() > 3 || !o.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = o.trim_start_matches('0');
        out.push(if trimmed.is_empty() { "0" } else { trimmed });
    }
    Some(out.join("."))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_dns1123_label_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => alnum(first) && alnum(last) && b.iter().all(|&c| alnum(c) || c == b'-'),
        _ => false,
    }
}

/// `label(\.label)*`
fn is_dns1123_subdomain_syntax(s: &str) -> bool {
    s.split('.').all(is_dns1123_label_syntax)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_label_token(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn ch_dir_prefix_errors(s: &str) -> Vec<String> {
    if s == "." {
        vec!["must not be '.'".to_string()]
    } else if s == ".." {
        vec!["must not be '..'".to_string()]
    } else if s.starts_with("..") {
        vec!["must not start with '..'".to_string()]
    } else {
        Vec::new()
    }
}

fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

fn empty_error() -> &'static str {
    "must be non-empty"
}

fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// Kubernetes' `RegexError`: the message, the examples and the regex
/// (with Kubernetes' double space before each "or", so messages match).
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{msg} (e.g. {}regex used for validation is '{fmt}')", examples.join(" or "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_accept_typical_subdomains() {
        for s in ["a", "example.com", "my-app.v1", "0", "a.b.c", "123-abc"] {
            assert!(dns1123_subdomain(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn should_refuse_uppercase_names() {
        let errs = dns1123_subdomain("MyApp");
        assert_eq!(
            errs,
            vec![
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert!(!dns1123_label("Web").is_empty());
    }

    #[test]
    fn should_refuse_subdomains_with_bad_edges_or_empty_parts() {
        for s in ["", "-a", "a-", ".a", "a.", "a..b", "a_b", "a b", "é"] {
            assert_eq!(dns1123_subdomain(s).len(), 1, "{s:?}");
        }
    }

    #[test]
    fn should_refuse_subdomains_longer_than_253() {
        let ok = format!("{}.{}.{}.{}", "a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61));
        assert_eq!(ok.len(), 253);
        assert!(dns1123_subdomain(&ok).is_empty());
        let long = format!("{ok}e");
        assert_eq!(dns1123_subdomain(&long), vec!["must be no more than 253 characters"]);
    }

    #[test]
    fn should_report_both_length_and_syntax_problems() {
        let s = format!("-{}", "a".repeat(253));
        assert_eq!(dns1123_subdomain(&s).len(), 2);
    }

    #[test]
    fn should_refuse_dots_in_labels_with_specific_message() {
        assert_eq!(dns1123_label("a.b"), vec!["must not contain dots"]);
    }

    #[test]
    fn should_refuse_bad_labels_with_regex_message() {
        assert_eq!(
            dns1123_label("a_b"),
            vec![
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
            ]
        );
        assert_eq!(dns1123_label("").len(), 1);
    }

    #[test]
    fn should_refuse_labels_longer_than_63() {
        assert!(dns1123_label(&"a".repeat(63)).is_empty());
        assert_eq!(dns1123_label(&"a".repeat(64)), vec!["must be no more than 63 characters"]);
    }

    #[test]
    fn should_require_dns1035_labels_to_start_with_a_letter() {
        assert!(dns1035_label("web-1").is_empty());
        assert_eq!(dns1035_label("1web").len(), 1);
        assert_eq!(dns1035_label("").len(), 1);
        assert_eq!(dns1035_label("web-").len(), 1);
        assert!(dns1035_label("1web")[0].starts_with("a DNS-1035 label must consist"));
    }

    #[test]
    fn should_accept_qualified_names_with_and_without_prefix() {
        for s in ["app", "App_Name", "my.name", "123-abc", "example.com/MyName", "kubernetes.io/hostname", "a"] {
            assert!(qualified_name(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn should_refuse_empty_prefix_and_empty_name_in_qualified_names() {
        assert_eq!(qualified_name("/a"), vec!["prefix part must be non-empty"]);
        let errs = qualified_name("example.com/");
        assert_eq!(errs[0], "name part must be non-empty");
        assert!(errs[1].starts_with("name part must consist of alphanumeric characters"));
        assert_eq!(qualified_name("").len(), 2);
    }

    #[test]
    fn should_refuse_invalid_prefix_in_qualified_names() {
        let errs = qualified_name("Example.com/a");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("prefix part a lowercase RFC 1123 subdomain"), "{errs:?}");
    }

    #[test]
    fn should_refuse_more_than_one_slash_in_qualified_names() {
        let errs = qualified_name("a/b/c");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("a valid label key must consist of"));
        assert!(errs[0].ends_with("with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
    }

    #[test]
    fn should_refuse_qualified_name_part_longer_than_63() {
        assert!(qualified_name(&"a".repeat(63)).is_empty());
        assert_eq!(qualified_name(&"a".repeat(64)), vec!["name part must be no more than 63 characters"]);
    }

    #[test]
    fn should_refuse_qualified_names_with_bad_edges() {
        for s in ["-a", "a-", "_a", "a.", "a b", "a=b"] {
            let errs = qualified_name(s);
            assert_eq!(errs.len(), 1, "{s}");
            assert_eq!(
                errs[0],
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            );
        }
    }

    #[test]
    fn should_accept_empty_and_typical_label_values() {
        for s in ["", "v1", "my_value", "12345", "A.b-c_D"] {
            assert!(label_value(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn should_refuse_invalid_label_values() {
        for s in ["-a", "a-", "a b", "a/b", "é"] {
            assert_eq!(label_value(s).len(), 1, "{s}");
        }
        assert_eq!(label_value(&"a".repeat(64)), vec!["must be no more than 63 characters"]);
        assert!(label_value("a/b")[0].starts_with("a valid label must be an empty string or consist of"));
    }

    #[test]
    fn should_accept_valid_port_names() {
        for s in ["http", "h2c", "web-8080", "a", "abcdefghijklmno"] {
            assert!(port_name(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn should_refuse_invalid_port_names() {
        assert_eq!(port_name("abcdefghijklmnop"), vec!["must be no more than 15 characters"]);
        assert_eq!(port_name("8080"), vec!["must contain at least one letter (a-z)"]);
        assert_eq!(port_name("a--b"), vec!["must not contain consecutive hyphens"]);
        assert_eq!(port_name("-ab"), vec!["must not begin or end with a hyphen"]);
        assert_eq!(port_name("ab-"), vec!["must not begin or end with a hyphen"]);
        assert_eq!(port_name("HTTP").len(), 2);
        assert_eq!(port_name("HTTP")[0], "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
        assert_eq!(port_name("").len(), 2);
    }

    #[test]
    fn should_accept_port_numbers_in_range_only() {
        assert!(port_number(1).is_empty());
        assert!(port_number(65535).is_empty());
        assert_eq!(port_number(0), vec!["must be between 1 and 65535, inclusive"]);
        assert_eq!(port_number(65536).len(), 1);
        assert_eq!(port_number(-1).len(), 1);
    }

    #[test]
    fn should_accept_kubernetes_env_var_names() {
        for s in ["HOME", "my.env-name", "MY_ENV.NAME", "MyEnvName1", "_x", "-x", ".x"] {
            assert!(env_var_name(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn should_refuse_env_var_names_starting_with_digit_or_with_odd_chars() {
        for s in ["1ABC", "", "A=B", "A B", "é"] {
            let errs = env_var_name(s);
            assert_eq!(errs.len(), 1, "{s:?}");
            assert!(errs[0].starts_with("a valid environment variable name must consist of"));
        }
    }

    #[test]
    fn should_refuse_env_var_names_that_are_dot_paths() {
        assert_eq!(env_var_name("."), vec!["must not be '.'"]);
        assert_eq!(env_var_name(".."), vec!["must not be '..'"]);
        assert_eq!(env_var_name("..a"), vec!["must not start with '..'"]);
    }

    #[test]
    fn should_check_c_identifiers() {
        assert!(c_identifier("my_name").is_empty());
        assert!(c_identifier("_X1").is_empty());
        assert_eq!(c_identifier("1x").len(), 1);
        assert_eq!(c_identifier("a-b").len(), 1);
        assert_eq!(c_identifier("").len(), 1);
    }

    #[test]
    fn should_check_config_map_keys() {
        assert!(config_map_key("key.name").is_empty());
        assert!(config_map_key("KEY_NAME").is_empty());
        assert!(config_map_key(".env").is_empty());
        assert_eq!(config_map_key("a/b").len(), 1);
        assert_eq!(config_map_key("").len(), 1);
        assert_eq!(config_map_key(".."), vec!["must not be '..'"]);
        assert_eq!(config_map_key(&"a".repeat(254)), vec!["must be no more than 253 characters"]);
    }

    #[test]
    fn should_accept_canonical_ip_addresses() {
        for s in ["10.9.8.7", "0.0.0.0", "2001:db8::ffff", "::1", "::", "fe80::abc"] {
            assert!(ip_address(s).is_empty(), "{s}");
        }
    }

    #[test]
    fn should_refuse_malformed_ip_addresses() {
        for s in ["", "1.2.3", "1.2.3.256", "abc", "1.2.3.4/24", " 1.2.3.4", "::g"] {
            assert_eq!(ip_address(s), vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"], "{s:?}");
        }
    }

    #[test]
    fn should_refuse_ipv4_with_leading_zeros() {
        assert_eq!(ip_address("010.002.003.004"), vec!["must not have leading 0s"]);
        assert_eq!(ip_address("1.2.3.04"), vec!["must not have leading 0s"]);
    }

    #[test]
    fn should_refuse_ipv4_mapped_ipv6() {
        assert_eq!(ip_address("::ffff:1.2.3.4"), vec!["must not be an IPv4-mapped IPv6 address"]);
    }

    #[test]
    fn should_refuse_non_canonical_ipv6() {
        assert_eq!(ip_address("2001:DB8::1"), vec!["must be in canonical form (\"2001:db8::1\")"]);
        assert_eq!(ip_address("2001:db8:0:0:0:0:0:1"), vec!["must be in canonical form (\"2001:db8::1\")"]);
    }
}
