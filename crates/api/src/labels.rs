//! Label selectors (`app=web,tier!=db`, `env in (a,b)`, `!canary`): parsing, matching and printing.
//!
//! The grammar is Kubernetes' (`k8s.io/apimachinery/pkg/labels`):
//!
//! ```text
//! selector    ::= "" | requirement ("," requirement)*
//! requirement ::= ["!"] KEY [ ("=" | "==" | "!=") VALUE | ("in" | "notin") "(" VALUES ")" ]
//! ```
//!
//! Whitespace around tokens is ignored; an empty value is allowed (`a=`,
//! `a in ()`); keys are qualified names and values label values (see
//! [`crate::names`]). Requirements are kept sorted by key and set values
//! sorted and deduplicated, so [`Selector`]'s `Display` is canonical.
//! Kubernetes' `>` and `<` operators are not supported.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::names;

/// Errors from building a label selector.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A selector string is malformed; names the selector and the offending part.
    #[error("invalid label selector {selector:?}: {reason}")]
    Parse {
        /// The whole selector as given.
        selector: String,
        /// What is wrong, naming the offending part.
        reason: String,
    },
    /// A structured requirement (matchLabels or matchExpressions) is invalid.
    #[error("invalid label selector requirement on key {key:?}: {reason}")]
    Requirement {
        /// The requirement's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// The result type of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How a requirement relates a label's value to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `key=value` (or `key==value`): the label exists and equals the value.
    Equals,
    /// `key!=value`: the label is absent or differs from the value.
    NotEquals,
    /// `key in (a,b)`: the label exists and is one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or none of the values.
    NotIn,
    /// `key`: the label exists, whatever its value.
    Exists,
    /// `!key`: the label is absent.
    DoesNotExist,
}

impl Operator {
    /// The operator's name in a metav1.LabelSelectorRequirement (`In`,
    /// `NotIn`, `Exists`, `DoesNotExist`), or its symbol for the exact-match
    /// operators (`=`, `!=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

/// One condition on one label; a selector is the AND of its requirements.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// How the label's value is compared.
    pub operator: Operator,
    /// One value for `Equals`/`NotEquals`, one or more (sorted, distinct)
    /// for `In`/`NotIn`, none for `Exists`/`DoesNotExist`.
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether a set of labels satisfies this requirement. `NotEquals` and
    /// `NotIn` match labels lacking the key, as in Kubernetes.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::Equals | Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotEquals | Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }

    /// Builds a requirement after checking the key, the values and their
    /// count for the operator; sorts and deduplicates the values.
    fn new(key: &str, operator: Operator, values: Vec<String>) -> std::result::Result<Requirement, String> {
        let errs = names::qualified_name(key);
        if !errs.is_empty() {
            return Err(format!("invalid label key {key:?}: {}", errs.join("; ")));
        }
        match operator {
            Operator::Equals | Operator::NotEquals if values.len() != 1 => {
                return Err("exact-match compatibility requires one single value".to_string());
            }
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err("for 'in', 'notin' operators, values set can't be empty".to_string());
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err("values set must be empty for exists and does not exist".to_string());
            }
            _ => {}
        }
        for value in &values {
            let errs = names::label_value(value);
            if !errs.is_empty() {
                return Err(format!("invalid label value {value:?} for key {key:?}: {}", errs.join("; ")));
            }
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement { key: key.to_string(), operator, values })
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operator {
            Operator::Equals => write!(f, "{}={}", self.key, self.values.join(",")),
            Operator::NotEquals => write!(f, "{}!={}", self.key, self.values.join(",")),
            Operator::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            Operator::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
            Operator::Exists => write!(f, "{}", self.key),
            Operator::DoesNotExist => write!(f, "!{}", self.key),
        }
    }
}

/// A label selector: the AND of its requirements. The empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// Parses Kubernetes' label selector syntax; the empty (or blank) string
    /// selects everything.
    pub fn parse(s: &str) -> Result<Selector> {
        let tokens = lex(s);
        let mut parser = Parser { selector: s, tokens, pos: 0 };
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector { requirements })
    }

    /// The selector that matches every set of labels.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// A selector requiring each pair of `map` (a ReplicationController's
    /// or Service's selector). An empty map selects everything. The pairs are
    /// not validated.
    pub fn from_map(map: &BTreeMap<String, String>) -> Selector {
        let requirements =
            map.iter().map(|(k, v)| Requirement { key: k.clone(), operator: Operator::Equals, values: vec![v.clone()] }).collect();
        Selector { requirements }
    }

    /// Builds a selector from a metav1.LabelSelector's `matchLabels` and
    /// `matchExpressions` (key, operator `In`/`NotIn`/`Exists`/`DoesNotExist`,
    /// values), checking keys, values and operators. Both empty selects
    /// everything.
    pub fn from_label_selector(
        match_labels: &BTreeMap<String, String>,
        match_expressions: &[(String, String, Vec<String>)],
    ) -> Result<Selector> {
        let mut requirements = Vec::with_capacity(match_labels.len() + match_expressions.len());
        for (key, value) in match_labels {
            let r = Requirement::new(key, Operator::Equals, vec![value.clone()])
                .map_err(|reason| Error::Requirement { key: key.clone(), reason })?;
            requirements.push(r);
        }
        for (key, operator, values) in match_expressions {
            let op = match operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(Error::Requirement {
                        key: key.clone(),
                        reason: format!("{other:?} is not a valid label selector operator (supported: In, NotIn, Exists, DoesNotExist)"),
                    });
                }
            };
            let r = Requirement::new(key, op, values.clone()).map_err(|reason| Error::Requirement { key: key.clone(), reason })?;
            requirements.push(r);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Selector { requirements })
    }

    /// Whether `labels` satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no requirement (selects everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The value the selector requires for `key`, if it requires exactly one
    /// (`key=v` or `key in (v)`): useful for indexing.
    pub fn exact_value(&self, key: &str) -> Option<&str> {
        self.requirements.iter().filter(|r| r.key == key && matches!(r.operator, Operator::Equals | Operator::In)).find_map(|r| {
            match r.values.as_slice() {
                [v] => Some(v.as_str()),
                _ => None,
            }
        })
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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A key, a value, or the keywords `in`/`notin` (told apart by position).
    Ident(String),
    OpenParen,
    CloseParen,
    Comma,
    Bang,
    Equals,
    DoubleEquals,
    NotEquals,
    /// `<` or `>`: Kubernetes' numeric operators, unsupported here.
    Unsupported(char),
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => format!("'{s}'"),
            Token::OpenParen => "'('".to_string(),
            Token::CloseParen => "')'".to_string(),
            Token::Comma => "','".to_string(),
            Token::Bang => "'!'".to_string(),
            Token::Equals => "'='".to_string(),
            Token::DoubleEquals => "'=='".to_string(),
            Token::NotEquals => "'!='".to_string(),
            Token::Unsupported(c) => format!("'{c}'"),
            Token::End => "end of selector".to_string(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '<' | '>')
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits a selector into tokens; always ends with `Token::End`.
fn lex(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if is_blank(c) {
            chars.next();
            continue;
        }
        if is_special(c) {
            chars.next();
            let token = match c {
                '(' => Token::OpenParen,
                ')' => Token::CloseParen,
                ',' => Token::Comma,
                '!' if chars.peek() == Some(&'=') => {
                    chars.next();
                    Token::NotEquals
                }
                '!' => Token::Bang,
                '=' if chars.peek() == Some(&'=') => {
                    chars.next();
                    Token::DoubleEquals
                }
                '=' => Token::Equals,
                other => Token::Unsupported(other),
            };
            tokens.push(token);
            continue;
        }
        let mut ident = String::new();
        while let Some(&c) = chars.peek() {
            if is_blank(c) || is_special(c) {
                break;
            }
            ident.push(c);
            chars.next();
        }
        tokens.push(Token::Ident(ident));
    }
    tokens.push(Token::End);
    tokens
}

struct Parser<'a> {
    selector: &'a str,
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Parse { selector: self.selector.to_string(), reason: reason.into() }
    }

    fn parse(&mut self) -> Result<Vec<Requirement>> {
        let mut requirements = Vec::new();
        if *self.peek() == Token::End {
            return Ok(requirements);
        }
        loop {
            requirements.push(self.requirement()?);
            match self.next() {
                Token::End => return Ok(requirements),
                Token::Comma => {
                    if !matches!(self.peek(), Token::Ident(_) | Token::Bang) {
                        return Err(self.error(format!("expected a label key or '!' after ',', found {}", self.peek().describe())));
                    }
                }
                other => {
                    let last = requirements.last().map(|r| r.to_string()).unwrap_or_default();
                    return Err(self.error(format!("expected ',' or end of selector after '{last}', found {}", other.describe())));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement> {
        let negated = *self.peek() == Token::Bang;
        if negated {
            self.next();
        }
        let key = match self.next() {
            Token::Ident(key) => key,
            other if negated => {
                return Err(self.error(format!("expected a label key after '!', found {}", other.describe())));
            }
            other => {
                return Err(self.error(format!("expected a label key or '!', found {}", other.describe())));
            }
        };
        if negated {
            return self.build(&key, Operator::DoesNotExist, Vec::new());
        }
        let operator = match self.peek().clone() {
            Token::End | Token::Comma => return self.build(&key, Operator::Exists, Vec::new()),
            Token::Equals | Token::DoubleEquals => Operator::Equals,
            Token::NotEquals => Operator::NotEquals,
            Token::Ident(word) if word == "in" => Operator::In,
            Token::Ident(word) if word == "notin" => Operator::NotIn,
            Token::Unsupported(c) => {
                return Err(self.error(format!("operator '{c}' after '{key}' is not supported")));
            }
            other => {
                return Err(self.error(format!(
                    "expected one of '=', '==', '!=', 'in', 'notin', ',' or end of selector after '{key}', found {}",
                    other.describe()
                )));
            }
        };
        let op_token = self.next();
        let op_text = match &op_token {
            Token::Ident(word) => word.clone(),
            other => other.describe().trim_matches('\'').to_string(),
        };
        match operator {
            Operator::In | Operator::NotIn => {
                let values = self.value_list(&op_text)?;
                self.build(&key, operator, values)
            }
            _ => {
                let value = match self.peek().clone() {
                    Token::End | Token::Comma => String::new(),
                    Token::Ident(v) => {
                        self.next();
                        v
                    }
                    other => {
                        return Err(self.error(format!("expected a value after '{key}{op_text}', found {}", other.describe())));
                    }
                };
                self.build(&key, operator, vec![value])
            }
        }
    }

    /// `( v1, v2, ... )` after `in`/`notin`; empty entries are empty values.
    fn value_list(&mut self, op_text: &str) -> Result<Vec<String>> {
        match self.next() {
            Token::OpenParen => {}
            other => {
                return Err(self.error(format!("expected '(' after '{op_text}', found {}", other.describe())));
            }
        }
        let mut values = Vec::new();
        loop {
            // One entry: a value, or nothing (an empty value).
            let value = match self.peek().clone() {
                Token::Ident(v) => {
                    self.next();
                    v
                }
                Token::Comma | Token::CloseParen => String::new(),
                other => {
                    return Err(
                        self.error(format!("expected a value, ',' or ')' in the values of '{op_text}', found {}", other.describe()))
                    );
                }
            };
            values.push(value);
            match self.next() {
                Token::Comma => continue,
                Token::CloseParen => return Ok(values),
                other => {
                    return Err(self.error(format!("expected ',' or ')' in the values of '{op_text}', found {}", other.describe())));
                }
            }
        }
    }

    fn build(&self, key: &str, operator: Operator, values: Vec<String>) -> Result<Requirement> {
        Requirement::new(key, operator, values).map_err(|reason| self.error(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

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

    #[test]
    fn should_select_everything_for_empty_or_blank_string() {
        for s in ["", "   ", "\t\n"] {
            let sel = parse(s);
            assert!(sel.is_empty());
            assert!(sel.matches(&labels(&[])));
            assert!(sel.matches(&labels(&[("a", "b")])));
            assert_eq!(sel.to_string(), "");
        }
        assert_eq!(Selector::everything(), parse(""));
    }

    #[test]
    fn should_parse_equality_forms() {
        let sel = parse("a=b");
        assert_eq!(sel.requirements(), &[Requirement { key: "a".into(), operator: Operator::Equals, values: vec!["b".into()] }]);
        assert_eq!(parse("a==b"), sel);
        assert_eq!(parse("a!=b").requirements()[0].operator, Operator::NotEquals);
    }

    #[test]
    fn should_match_equality() {
        let sel = parse("app=web");
        assert!(sel.matches(&labels(&[("app", "web"), ("x", "y")])));
        assert!(!sel.matches(&labels(&[("app", "db")])));
        assert!(!sel.matches(&labels(&[])));
    }

    #[test]
    fn should_match_not_equals_when_key_is_missing() {
        let sel = parse("tier!=db");
        assert!(sel.matches(&labels(&[])));
        assert!(sel.matches(&labels(&[("tier", "web")])));
        assert!(!sel.matches(&labels(&[("tier", "db")])));
    }

    #[test]
    fn should_match_in_and_notin() {
        let sel = parse("env in (prod, staging)");
        assert!(sel.matches(&labels(&[("env", "prod")])));
        assert!(sel.matches(&labels(&[("env", "staging")])));
        assert!(!sel.matches(&labels(&[("env", "dev")])));
        assert!(!sel.matches(&labels(&[])));
        let sel = parse("env notin (prod,staging)");
        assert!(!sel.matches(&labels(&[("env", "prod")])));
        assert!(sel.matches(&labels(&[("env", "dev")])));
        assert!(sel.matches(&labels(&[])));
    }

    #[test]
    fn should_match_exists_and_does_not_exist() {
        let sel = parse("canary");
        assert!(sel.matches(&labels(&[("canary", "")])));
        assert!(!sel.matches(&labels(&[])));
        let sel = parse("!canary");
        assert!(!sel.matches(&labels(&[("canary", "true")])));
        assert!(sel.matches(&labels(&[("other", "x")])));
    }

    #[test]
    fn should_and_comma_separated_requirements() {
        let sel = parse("app=web,tier!=db,!canary,env in (a,b),team");
        assert_eq!(sel.requirements().len(), 5);
        assert!(sel.matches(&labels(&[("app", "web"), ("env", "a"), ("team", "x")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("env", "a")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("env", "a"), ("team", "x"), ("canary", "1")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("env", "c"), ("team", "x")])));
    }

    #[test]
    fn should_tolerate_whitespace_around_tokens() {
        let sel = parse("  a = b ,  c != d , e   in   ( x , y ) , ! f ,g notin(z)  ");
        assert_eq!(sel.to_string(), "a=b,c!=d,e in (x,y),!f,g notin (z)");
        assert_eq!(parse("a\tin\t(x)").to_string(), "a in (x)");
    }

    #[test]
    fn should_print_canonical_form_sorted_by_key() {
        let sel = parse("f,e in (y,x,x),!d,c!=d,a==b");
        assert_eq!(sel.to_string(), "a=b,c!=d,!d,e in (x,y),f");
    }

    #[test]
    fn should_round_trip_through_display() {
        for s in ["a=b,c!=d,e in (x,y),!f", "a=", "a in ()", "a notin (,x)", "example.com/key=V_1.x"] {
            let sel = parse(s);
            assert_eq!(parse(&sel.to_string()), sel, "{s}");
        }
    }

    #[test]
    fn should_accept_empty_values() {
        let sel = parse("a=");
        assert_eq!(sel.requirements()[0].values, vec![String::new()]);
        assert!(sel.matches(&labels(&[("a", "")])));
        assert!(!sel.matches(&labels(&[("a", "x")])));
        assert_eq!(parse("a=,b=c").requirements().len(), 2);
        assert_eq!(parse("a in ()").requirements()[0].values, vec![String::new()]);
        assert_eq!(parse("a in (,x)").requirements()[0].values, vec!["".to_string(), "x".to_string()]);
        assert_eq!(parse("a in (x,,)").requirements()[0].values, vec!["".to_string(), "x".to_string()]);
    }

    #[test]
    fn should_treat_in_and_notin_as_plain_words_outside_operator_position() {
        let sel = parse("in=notin,notin in (in)");
        assert!(sel.matches(&labels(&[("in", "notin"), ("notin", "in")])));
        assert_eq!(sel.to_string(), "in=notin,notin in (in)");
    }

    #[test]
    fn should_accept_prefixed_keys() {
        let sel = parse("kubernetes.io/hostname=node-1");
        assert!(sel.matches(&labels(&[("kubernetes.io/hostname", "node-1")])));
    }

    #[test]
    fn should_refuse_in_without_parenthesis() {
        assert_eq!(parse_err("a in x"), "invalid label selector \"a in x\": expected '(' after 'in', found 'x'");
        assert!(parse_err("a notin x").contains("expected '(' after 'notin'"));
    }

    #[test]
    fn should_refuse_unclosed_value_list() {
        let e = parse_err("a in (x");
        assert!(e.contains("expected ',' or ')' in the values of 'in', found end of selector"), "{e}");
        let e = parse_err("a in (x y)");
        assert!(e.contains("found 'y'"), "{e}");
        let e = parse_err("a in (=)");
        assert!(e.contains("found '='"), "{e}");
    }

    #[test]
    fn should_refuse_trailing_and_leading_commas() {
        assert!(parse_err("a=b,").contains("expected a label key or '!' after ',', found end of selector"));
        assert!(parse_err(",a").contains("expected a label key or '!', found ','"));
        assert!(parse_err("a,,b").contains("after ','"));
    }

    #[test]
    fn should_refuse_missing_separator_between_requirements() {
        let e = parse_err("a=b c=d");
        assert!(e.contains("expected ',' or end of selector after 'a=b', found 'c'"), "{e}");
    }

    #[test]
    fn should_refuse_unknown_operators() {
        assert!(parse_err("a b").contains("after 'a', found 'b'"));
        assert!(parse_err("a>1").contains("operator '>' after 'a' is not supported"));
        assert!(parse_err("a<1").contains("operator '<' after 'a' is not supported"));
        assert!(parse_err("a(x)").contains("found '('"));
    }

    #[test]
    fn should_refuse_value_after_does_not_exist() {
        let e = parse_err("!a=b");
        assert!(e.contains("expected ',' or end of selector after '!a', found '='"), "{e}");
        assert!(parse_err("!").contains("expected a label key after '!', found end of selector"));
        assert!(parse_err("!!a").contains("expected a label key after '!', found '!'"));
    }

    #[test]
    fn should_refuse_operator_followed_by_operator() {
        let e = parse_err("a==!b");
        assert!(e.contains("expected a value after 'a=='"), "{e}");
        assert!(parse_err("a===b").contains("found '='"));
        assert!(parse_err("=b").contains("expected a label key or '!', found '='"));
    }

    #[test]
    fn should_refuse_invalid_keys() {
        let e = parse_err("-a=b");
        assert!(e.starts_with("invalid label selector \"-a=b\": invalid label key \"-a\": name part must consist of"), "{e}");
        assert!(parse_err("a/b/c").contains("invalid label key \"a/b/c\""));
        assert!(parse_err(&format!("{}=b", "k".repeat(64))).contains("must be no more than 63 characters"));
        assert!(parse_err("UPPER.com/a").contains("prefix part"));
    }

    #[test]
    fn should_refuse_invalid_values() {
        let e = parse_err("a=-b");
        assert!(e.contains("invalid label value \"-b\" for key \"a\""), "{e}");
        assert!(parse_err("a in (ok,b/c)").contains("invalid label value \"b/c\""));
        assert!(parse_err(&format!("a={}", "v".repeat(64))).contains("must be no more than 63 characters"));
    }

    #[test]
    fn should_deduplicate_and_sort_set_values() {
        let sel = parse("a in (z,y,z)");
        assert_eq!(sel.requirements()[0].values, vec!["y".to_string(), "z".to_string()]);
    }

    #[test]
    fn should_build_equality_selector_from_map() {
        let map = labels(&[("app", "web"), ("tier", "fe")]);
        let sel = Selector::from_map(&map);
        assert_eq!(sel.to_string(), "app=web,tier=fe");
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "fe"), ("x", "y")])));
        assert!(!sel.matches(&labels(&[("app", "web")])));
        assert!(Selector::from_map(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn should_build_from_label_selector_shape() {
        let ml = labels(&[("app", "web")]);
        let exprs = vec![
            ("env".to_string(), "In".to_string(), vec!["prod".to_string(), "dev".to_string()]),
            ("canary".to_string(), "DoesNotExist".to_string(), vec![]),
            ("team".to_string(), "Exists".to_string(), vec![]),
            ("zone".to_string(), "NotIn".to_string(), vec!["a".to_string()]),
        ];
        let sel = Selector::from_label_selector(&ml, &exprs).expect("valid");
        assert_eq!(sel.to_string(), "app=web,!canary,env in (dev,prod),team,zone notin (a)");
        assert!(sel.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "t")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "t"), ("zone", "a")])));
    }

    #[test]
    fn should_select_everything_for_empty_label_selector_shape() {
        let sel = Selector::from_label_selector(&BTreeMap::new(), &[]).expect("valid");
        assert!(sel.is_empty());
    }

    #[test]
    fn should_refuse_unknown_expression_operator() {
        let exprs = vec![("a".to_string(), "Equals".to_string(), vec!["x".to_string()])];
        let e = Selector::from_label_selector(&BTreeMap::new(), &exprs).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid label selector requirement on key \"a\": \"Equals\" is not a valid label selector operator (supported: In, NotIn, Exists, DoesNotExist)"
        );
    }

    #[test]
    fn should_refuse_wrong_value_counts_in_expressions() {
        let in_empty = vec![("a".to_string(), "In".to_string(), vec![])];
        let e = Selector::from_label_selector(&BTreeMap::new(), &in_empty).unwrap_err().to_string();
        assert!(e.contains("values set can't be empty"), "{e}");
        let exists_values = vec![("a".to_string(), "Exists".to_string(), vec!["x".to_string()])];
        let e = Selector::from_label_selector(&BTreeMap::new(), &exists_values).unwrap_err().to_string();
        assert!(e.contains("values set must be empty for exists and does not exist"), "{e}");
    }

    #[test]
    fn should_refuse_invalid_keys_and_values_in_label_selector_shape() {
        let e = Selector::from_label_selector(&labels(&[("bad key", "v")]), &[]).unwrap_err();
        assert!(matches!(&e, Error::Requirement { key, .. } if key == "bad key"));
        let e = Selector::from_label_selector(&labels(&[("k", "bad value")]), &[]).unwrap_err();
        assert!(e.to_string().contains("invalid label value \"bad value\""));
        let exprs = vec![("k".to_string(), "NotIn".to_string(), vec!["-x".to_string()])];
        assert!(Selector::from_label_selector(&BTreeMap::new(), &exprs).is_err());
    }

    #[test]
    fn should_report_exact_value_for_equality_and_single_in() {
        let sel = parse("a=x,b in (y),c in (y,z),d!=w");
        assert_eq!(sel.exact_value("a"), Some("x"));
        assert_eq!(sel.exact_value("b"), Some("y"));
        assert_eq!(sel.exact_value("c"), None);
        assert_eq!(sel.exact_value("d"), None);
        assert_eq!(sel.exact_value("e"), None);
    }

    #[test]
    fn should_parse_through_from_str() {
        let sel: Selector = "a=b".parse().expect("valid");
        assert_eq!(sel.to_string(), "a=b");
        assert!("a in x".parse::<Selector>().is_err());
    }

    #[test]
    fn should_not_panic_on_non_ascii_input() {
        assert!(Selector::parse("é=ü").is_err());
        assert!(Selector::parse("a=ü").is_err());
        assert!(Selector::parse("a in (☃)").is_err());
    }
}
