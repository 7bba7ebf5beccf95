//! Field selectors (`spec.nodeName=n1,status.phase!=Running`): parsing, matching and printing.
//!
//! As in Kubernetes (`k8s.io/apimachinery/pkg/fields`): terms are separated
//! by unescaped commas, each is `field=value`, `field==value` or
//! `field!=value` split at the first operator, and in values `\,` `\=` `\\`
//! stand for `,` `=` `\` (any other backslash sequence, or an unescaped `,`
//! or `=`, is an error). Empty terms are skipped, so the empty string selects
//! everything. Unlike Kubernetes, blanks around a field name and around a
//! value are ignored. Which fields exist is the caller's business: check
//! [`Selector::fields`] against those the kind supports.

use std::fmt;
use std::str::FromStr;

/// Errors from parsing a field selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The selector string is malformed; names the selector and the offending term.
    #[error("invalid field selector {selector:?}: {reason}")]
    Parse {
        /// The whole selector as given.
        selector: String,
        /// What is wrong, naming the offending term.
        reason: String,
    },
}

/// The result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a requirement compares a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// `field=value` (or `field==value`).
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One condition on one field; a selector is the AND of its requirements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement {
    /// The field path, e.g. `spec.nodeName`.
    pub field: String,
    /// The comparison.
    pub op: Op,
    /// The (unescaped) value compared with.
    pub value: String,
}

impl Requirement {
    /// Whether a field value (None: unknown field, taken as "") satisfies
    /// this requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let value = value.unwrap_or("");
        match self.op {
            Op::Equals => value == self.value,
            Op::NotEquals => value != self.value,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Equals => "=",
            Op::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A field selector: the AND of its requirements. The empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses a field selector; the empty string selects everything.
    pub fn parse(s: &str) -> Result<Selector> {
        let error = |reason: String| Error::Parse { selector: s.to_string(), reason };
        let mut requirements = Vec::new();
        for term in split_terms(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let Some((field, op, raw_value)) = split_term(term) else {
                return Err(error(format!("can't understand '{term}': expected 'field=value', 'field==value' or 'field!=value'")));
            };
            let field = field.trim();
            if field.is_empty() {
                return Err(error(format!("missing field name in '{term}'")));
            }
            // A field name cannot end in `!`: `a! =b` would print as `a!=b`,
            // which means something else.
            if field.ends_with('!') {
                return Err(error(format!("invalid field name '{field}' in '{term}'")));
            }
            let value = unescape_value(raw_value.trim()).map_err(|why| error(format!("{why} in '{term}'")))?;
            requirements.push(Requirement { field: field.to_string(), op, value });
        }
        requirements.sort();
        requirements.dedup();
        Ok(Selector { requirements })
    }

    /// The selector that matches everything.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// Whether the object whose fields `get` reads satisfies every
    /// requirement. `get(field)` returns the object's value for the field,
    /// None when the kind has no such field (taken as the empty string; the
    /// caller should have refused unsupported fields beforehand).
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| r.matches_value(get(&r.field).as_deref()))
    }

    /// The distinct fields the selector refers to, in order.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        let mut last: Option<&str> = None;
        self.requirements.iter().filter_map(move |r| {
            let field = r.field.as_str();
            if last == Some(field) {
                None
            } else {
                last = Some(field);
                Some(field)
            }
        })
    }

    /// Whether the selector has no requirement (selects everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by field, operator and value.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The value an `=` requirement on `field` demands, if any (e.g.
    /// `spec.nodeName` to use an index).
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.requirements.iter().find(|r| r.field == field && r.op == Op::Equals).map(|r| r.value.as_str())
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = Error;

    fn from_str(s: &str) -> Result<Selector> {
        Selector::parse(s)
    }
}

/// Escapes `\`, `,` and `=` in a value so that it parses back unchanged.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits at commas not preceded by a backslash escape; escapes are kept.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at its first operator (`!=`, `==`, `=`).
fn split_term(term: &str) -> Option<(&str, Op, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (text, op) in [("!=", Op::NotEquals), ("==", Op::Equals), ("=", Op::Equals)] {
            if let Some(value) = rest.strip_prefix(text) {
                return Some((&term[..i], op, value));
            }
        }
    }
    None
}

/// Undoes [`escape_value`]; refuses unknown escapes and bare `,` or `=`.
fn unescape_value(s: &str) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => return Err(format!("invalid escape sequence '\\{e}'")),
                None => return Err("invalid escape sequence '\\' at end of value".to_string()),
            },
            ',' | '=' => return Err(format!("unescaped '{c}' in value (write '\\{c}')")),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn parse(s: &str) -> Selector {
        match Selector::parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn parse_err(s: &str) -> String {
        match Selector::parse(s) {
            Ok(sel) => panic!("{s:?} should not parse, got {sel}"),
            Err(e) => e.to_string(),
        }
    }

    fn object(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |f: &str| map.get(f).cloned()
    }

    #[test]
    fn should_select_everything_for_empty_string() {
        let sel = parse("");
        assert!(sel.is_empty());
        assert!(sel.matches(object(&[])));
        assert_eq!(sel.to_string(), "");
        assert_eq!(sel, Selector::everything());
        assert!(parse(" , ,").is_empty());
    }

    #[test]
    fn should_parse_all_three_operators() {
        let sel = parse("a=1,b==2,c!=3");
        assert_eq!(
            sel.requirements(),
            &[
                Requirement { field: "a".into(), op: Op::Equals, value: "1".into() },
                Requirement { field: "b".into(), op: Op::Equals, value: "2".into() },
                Requirement { field: "c".into(), op: Op::NotEquals, value: "3".into() },
            ]
        );
        assert_eq!(sel.to_string(), "a=1,b=2,c!=3");
    }

    #[test]
    fn should_refuse_field_names_with_operators_or_spaces() {
        // Found by the proptest: `! =` printed as `!=`, which means something else.
        for bad in ["! =", "a! =1", "a! ==1"] {
            let err = Selector::parse(bad).expect_err(bad).to_string();
            assert!(err.contains("invalid field name"), "{bad}: {err}");
        }
    }

    #[test]
    fn should_match_equality_and_inequality() {
        let sel = parse("metadata.name=web,status.phase!=Running");
        assert!(sel.matches(object(&[("metadata.name", "web"), ("status.phase", "Pending")])));
        assert!(!sel.matches(object(&[("metadata.name", "web"), ("status.phase", "Running")])));
        assert!(!sel.matches(object(&[("metadata.name", "db"), ("status.phase", "Pending")])));
    }

    #[test]
    fn should_treat_unknown_fields_as_empty_string() {
        assert!(parse("spec.nodeName=").matches(object(&[])));
        assert!(!parse("spec.nodeName!=").matches(object(&[])));
        assert!(parse("spec.nodeName!=n1").matches(object(&[])));
        assert!(!parse("spec.nodeName=n1").matches(object(&[])));
    }

    #[test]
    fn should_select_unscheduled_pods_with_empty_node_name() {
        let sel = parse("spec.nodeName=");
        assert_eq!(sel.exact_value("spec.nodeName"), Some(""));
        assert!(sel.matches(object(&[("spec.nodeName", "")])));
        assert!(!sel.matches(object(&[("spec.nodeName", "n1")])));
    }

    #[test]
    fn should_unescape_values() {
        let sel = parse(r"metadata.name=a\,b\=c\\d");
        assert_eq!(sel.requirements()[0].value, r"a,b=c\d");
        assert!(sel.matches(object(&[("metadata.name", r"a,b=c\d")])));
        assert_eq!(sel.requirements().len(), 1);
    }

    #[test]
    fn should_escape_values_when_printing() {
        let sel = parse(r"a=x\,y,b!=p\=q");
        assert_eq!(sel.to_string(), r"a=x\,y,b!=p\=q");
        assert_eq!(parse(&sel.to_string()), sel);
        assert_eq!(escape_value(r"\,="), r"\\\,\=");
    }

    #[test]
    fn should_refuse_unknown_escape_sequences() {
        let e = parse_err(r"a=b\n");
        assert_eq!(e, "invalid field selector \"a=b\\\\n\": invalid escape sequence '\\n' in 'a=b\\n'");
        assert!(parse_err(r"a=b\").contains("invalid escape sequence '\\' at end of value"));
    }

    #[test]
    fn should_refuse_unescaped_equals_in_value() {
        let e = parse_err("a=b=c");
        assert!(e.contains("unescaped '=' in value (write '\\=') in 'a=b=c'"), "{e}");
    }

    #[test]
    fn should_refuse_terms_without_operator() {
        let e = parse_err("a=b,metadata.name");
        assert_eq!(
            e,
            "invalid field selector \"a=b,metadata.name\": can't understand 'metadata.name': expected 'field=value', 'field==value' or 'field!=value'"
        );
    }

    #[test]
    fn should_refuse_missing_field_name() {
        assert!(parse_err("=b").contains("missing field name in '=b'"));
        assert!(parse_err(" != b").contains("missing field name"));
    }

    #[test]
    fn should_split_at_first_operator() {
        let sel = parse("a!=b");
        assert_eq!(sel.requirements()[0].op, Op::NotEquals);
        assert_eq!(sel.requirements()[0].value, "b");
        let sel = parse("a==b");
        assert_eq!(sel.requirements()[0].value, "b");
        // "!" without "=" belongs to the field name.
        let sel = parse("a!b=c");
        assert_eq!(sel.requirements()[0].field, "a!b");
    }

    #[test]
    fn should_ignore_blanks_around_fields_and_values() {
        let sel = parse(" status.phase = Running , metadata.name!= web ");
        assert_eq!(sel.to_string(), "metadata.name!=web,status.phase=Running");
    }

    #[test]
    fn should_skip_empty_terms() {
        assert_eq!(parse("a=b,,c=d,").requirements().len(), 2);
    }

    #[test]
    fn should_list_distinct_fields() {
        let sel = parse("b=1,a=2,b!=3,a=2");
        assert_eq!(sel.fields().collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn should_report_exact_value_only_for_equality() {
        let sel = parse("spec.nodeName=n1,status.phase!=Failed");
        assert_eq!(sel.exact_value("spec.nodeName"), Some("n1"));
        assert_eq!(sel.exact_value("status.phase"), None);
        assert_eq!(sel.exact_value("metadata.name"), None);
    }

    #[test]
    fn should_print_sorted_canonical_form() {
        assert_eq!(parse("z==1,a!=2,m=3").to_string(), "a!=2,m=3,z=1");
    }

    #[test]
    fn should_require_all_terms_to_match() {
        let sel = parse("a=1,a!=2");
        assert!(sel.matches(object(&[("a", "1")])));
        let sel = parse("a=1,a=2");
        assert!(!sel.matches(object(&[("a", "1")])));
    }

    #[test]
    fn should_parse_through_from_str_and_handle_non_ascii() {
        let sel: Selector = "metadata.name=héllo".parse().expect("valid");
        assert!(sel.matches(object(&[("metadata.name", "héllo")])));
        assert!(parse_err("é").contains("can't understand 'é'"));
        assert!("é=\\é".parse::<Selector>().is_err());
    }
}
