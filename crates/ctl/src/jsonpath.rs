//! kubectl's JSONPath subset, for `get -o jsonpath=TEMPLATE`,
//! `-o custom-columns` and `wait --for=jsonpath=`.
//!
//! A template is literal text with `{EXPRESSION}` actions: paths
//! (`{.metadata.name}`, `{.items[*].status.podIP}`, `{$.kind}`), quoted text
//! (`{"\n"}`), and `{range PATH}...{end}` loops whose body is evaluated
//! against each element. Paths know `.field`, `['field']`, `..field`
//! (recursive descent), `*` and `[*]`, `[n]` (negative from the end),
//! `[start:end:step]`, unions `[0,2]` / `['a','b']`, and filters
//! `[?(@.type=="Ready")]` with `==`, `!=`, `<`, `<=`, `>`, `>=` or a bare
//! path (exists). A dot inside a field name is written `\.`
//! (`{.metadata.labels.kubernetes\.io/hostname}`).
//!
//! As kubectl's `get` does, missing fields and out-of-range indexes yield
//! nothing rather than an error; several results of one expression are
//! joined by a space; strings print bare, objects and arrays as compact JSON.

use serde_json::Value;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Expr(Path),
    Range(Path, Vec<Node>),
}

/// A parsed path expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// `$`: from the document's root, not the current range element.
    from_root: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    /// `*` / `[*]`: every element or value.
    Wildcard,
    /// `..`: the value and all it contains.
    Descend,
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    Fields(Vec<String>),
    Indexes(Vec<i64>),
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Path,
    /// None: the left path only has to exist.
    compare: Option<(Op, Operand)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Literal(Value),
    Path(Path),
}

impl Template {
    /// Parses a template; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Template, String> {
        parse_template(text).map_err(|e| format!("error parsing jsonpath {text}: {e}"))
    }

    /// Renders the template against a JSON document.
    pub fn execute(&self, root: &Value) -> String {
        let mut out = String::new();
        exec(&self.nodes, root, root, &mut out);
        out
    }
}

impl Path {
    /// Parses one path expression (`.a.b[0]`, `$.items[*]`, `@.x`); a
    /// leading bare name counts as a field (`metadata.name`).
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut p = Parser { s: text.trim(), pos: 0 };
        let path = p.path()?;
        if p.pos < p.s.len() {
            return Err(format!("unexpected {:?} at position {}", &p.s[p.pos..], p.pos));
        }
        Ok(path)
    }

    /// Parses a custom-columns expression, which may be wrapped in braces
    /// and may leave out the leading dot, as kubectl's relaxed form allows.
    pub fn parse_relaxed(text: &str) -> Result<Path, String> {
        let t = text.trim();
        let t = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).unwrap_or(t);
        Path::parse(t).map_err(|e| format!("error parsing jsonpath {text}: {e}"))
    }

    /// Every value the path selects, with `root` as both `$` and `@`.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        self.eval(root, root)
    }

    fn eval<'a>(&self, root: &'a Value, current: &'a Value) -> Vec<&'a Value> {
        let mut values = vec![if self.from_root { root } else { current }];
        for step in &self.steps {
            values = values.into_iter().flat_map(|v| apply(step, root, v)).collect();
        }
        values
    }
}

/// How one selected value prints: strings bare, other scalars as JSON,
/// objects and arrays as compact JSON.
pub fn format_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn exec(nodes: &[Node], root: &Value, current: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Expr(path) => {
                let texts: Vec<String> = path.eval(root, current).into_iter().map(format_value).collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(path, body) => {
                for value in path.eval(root, current) {
                    match value {
                        Value::Array(items) => items.iter().for_each(|item| exec(body, root, item, out)),
                        other => exec(body, root, other, out),
                    }
                }
            }
        }
    }
}

fn apply<'a>(step: &Step, root: &'a Value, v: &'a Value) -> Vec<&'a Value> {
    match step {
        Step::Field(name) => v.get(name.as_str()).into_iter().collect(),
        Step::Wildcard => match v {
            Value::Array(a) => a.iter().collect(),
            Value::Object(o) => o.values().collect(),
            _ => Vec::new(),
        },
        Step::Descend => {
            let mut all = Vec::new();
            descend(v, &mut all);
            all
        }
        Step::Index(i) => v.as_array().and_then(|a| index(a.len(), *i).map(|i| &a[i])).into_iter().collect(),
        Step::Indexes(is) => match v.as_array() {
            Some(a) => is.iter().filter_map(|i| index(a.len(), *i).map(|i| &a[i])).collect(),
            None => Vec::new(),
        },
        Step::Fields(names) => names.iter().filter_map(|n| v.get(n.as_str())).collect(),
        Step::Slice(start, end, step) => match v.as_array() {
            Some(a) => slice(a, *start, *end, *step),
            None => Vec::new(),
        },
        Step::Filter(f) => match v {
            Value::Array(a) => a.iter().filter(|item| f.matches(root, item)).collect(),
            other if f.matches(root, other) => vec![other],
            _ => Vec::new(),
        },
    }
}

fn descend<'a>(v: &'a Value, all: &mut Vec<&'a Value>) {
    all.push(v);
    match v {
        Value::Array(a) => a.iter().for_each(|x| descend(x, all)),
        Value::Object(o) => o.values().for_each(|x| descend(x, all)),
        _ => {}
    }
}

/// A possibly negative index into a list of `len`, if it is in range.
fn index(len: usize, i: i64) -> Option<usize> {
    let len = len as i64;
    let i = if i < 0 { len + i } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

fn slice(a: &[Value], start: Option<i64>, end: Option<i64>, step: Option<i64>) -> Vec<&Value> {
    let len = a.len() as i64;
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let start = start.map(clamp).unwrap_or(0);
    let end = end.map(clamp).unwrap_or(len);
    let step = step.unwrap_or(1).max(1) as usize;
    if start >= end {
        return Vec::new();
    }
    a[start as usize..end as usize].iter().step_by(step).collect()
}

impl Filter {
    fn matches(&self, root: &Value, item: &Value) -> bool {
        let left = self.left.eval(root, item);
        let Some((op, operand)) = &self.compare else { return !left.is_empty() };
        let Some(l) = left.first() else { return false };
        let right = match operand {
            Operand::Literal(v) => v,
            Operand::Path(p) => match p.eval(root, item).first() {
                Some(v) => *v,
                None => return false,
            },
        };
        compare(l, *op, right)
    }
}

fn compare(l: &Value, op: Op, r: &Value) -> bool {
    if let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) {
        return match op {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        };
    }
    match (op, l, r) {
        (Op::Eq, _, _) => l == r,
        (Op::Ne, _, _) => l != r,
        (_, Value::String(a), Value::String(b)) => match op {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            _ => a >= b,
        },
        _ => false,
    }
}

// ----- parsing

fn parse_template(text: &str) -> Result<Template, String> {
    // Stack of open ranges: the path and the nodes collected so far.
    let mut stack: Vec<(Option<Path>, Vec<Node>)> = vec![(None, Vec::new())];
    let mut rest = text;
    while !rest.is_empty() {
        let Some(open) = rest.find('{') else {
            push_text(&mut stack, rest);
            break;
        };
        push_text(&mut stack, &rest[..open]);
        let after = &rest[open + 1..];
        let close = action_end(after).ok_or_else(|| format!("unclosed action {:?}", &rest[open..]))?;
        let action = after[..close].trim();
        rest = &after[close + 1..];
        if action == "end" {
            if stack.len() < 2 {
                return Err("{end} without a matching {range}".into());
            }
            let (path, body) = stack.pop().expect("checked above");
            let path = path.expect("every inner frame is a range");
            stack.last_mut().expect("the outer frame stays").1.push(Node::Range(path, body));
        } else if let Some(p) = action.strip_prefix("range ") {
            stack.push((Some(Path::parse(p)?), Vec::new()));
        } else if action.starts_with('"') || action.starts_with('\'') {
            let (s, len) = quoted(action)?;
            if len != action.len() {
                return Err(format!("unexpected {:?} after quoted text", &action[len..]));
            }
            push_text(&mut stack, &s);
        } else if action.is_empty() {
            return Err("empty action {}".into());
        } else {
            stack.last_mut().expect("the outer frame stays").1.push(Node::Expr(Path::parse(action)?));
        }
    }
    if stack.len() > 1 {
        return Err("{range} without a matching {end}".into());
    }
    Ok(Template { nodes: stack.pop().map(|(_, n)| n).unwrap_or_default() })
}

fn push_text(stack: &mut [(Option<Path>, Vec<Node>)], text: &str) {
    if text.is_empty() {
        return;
    }
    let nodes = &mut stack.last_mut().expect("the outer frame stays").1;
    match nodes.last_mut() {
        Some(Node::Text(t)) => t.push_str(text),
        _ => nodes.push(Node::Text(text.to_string())),
    }
}

/// The byte offset of the `}` that closes an action, skipping quoted text
/// and brackets (`[?(@.x=="}")]`).
fn action_end(s: &str) -> Option<usize> {
    let mut quote = None;
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => depth = depth.saturating_sub(1),
            (None, '}') if depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// A quoted string at the start of `s` (either quote, Go-style escapes):
/// its text and the bytes it took.
fn quoted(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    let Some((_, q)) = chars.next() else { return Err("expected a quoted string".into()) };
    let mut text = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                text.push(match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    other => other,
                });
            }
            c if c == q => return Ok((text, i + c.len_utf8())),
            c => text.push(c),
        }
    }
    Err(format!("unterminated quoted string {s}"))
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn rest(&self) -> &str {
        &self.s[self.pos..]
    }

    fn path(&mut self) -> Result<Path, String> {
        let mut path = Path { from_root: false, steps: Vec::new() };
        match self.peek() {
            Some('$') => {
                path.from_root = true;
                self.pos += 1;
            }
            Some('@') => self.pos += 1,
            Some(c) if c != '.' && c != '[' => path.steps.push(Step::Field(self.name()?)),
            _ => {}
        }
        loop {
            let rest = self.rest();
            if rest.starts_with("..") {
                self.pos += 2;
                path.steps.push(Step::Descend);
                self.after_dot(&mut path)?;
            } else if rest.starts_with('.') {
                self.pos += 1;
                self.after_dot(&mut path)?;
            } else if rest.starts_with('[') {
                path.steps.push(self.bracket()?);
            } else {
                return Ok(path);
            }
        }
    }

    /// What follows a dot: a name, `*`, or nothing (`{.}` is the value itself).
    fn after_dot(&mut self, path: &mut Path) -> Result<(), String> {
        match self.peek() {
            Some('*') => {
                self.pos += 1;
                path.steps.push(Step::Wildcard);
            }
            None | Some('[') | Some('.') => {}
            Some(_) => path.steps.push(Step::Field(self.name()?)),
        }
        Ok(())
    }

    /// A field name, up to the next unescaped `.` or `[`.
    fn name(&mut self) -> Result<String, String> {
        let mut name = String::new();
        let mut chars = self.rest().char_indices().peekable();
        let mut used = self.rest().len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if chars.peek().is_some_and(|(_, n)| *n == '.') => {
                    name.push('.');
                    chars.next();
                }
                '.' | '[' => {
                    used = i;
                    break;
                }
                c if c.is_whitespace() || matches!(c, ']' | ')' | '(' | '=' | '!' | '<' | '>' | '"' | '\'' | ',') => {
                    used = i;
                    break;
                }
                c => name.push(c),
            }
        }
        if name.is_empty() {
            return Err(format!("expected a field name at {:?}", self.rest()));
        }
        self.pos += used;
        Ok(name)
    }

    fn bracket(&mut self) -> Result<Step, String> {
        let rest = self.rest();
        let close = bracket_end(rest).ok_or_else(|| format!("unclosed array expression {rest:?}: expected ]"))?;
        let inner = rest[1..close].trim().to_string();
        self.pos += close + 1;
        if inner == "*" {
            return Ok(Step::Wildcard);
        }
        if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
            return Ok(Step::Filter(filter(f)?));
        }
        if inner.starts_with('"') || inner.starts_with('\'') {
            let mut names = Vec::new();
            for part in split_top(&inner, ',') {
                let part = part.trim();
                let (s, len) = quoted(part)?;
                if len != part.len() {
                    return Err(format!("unexpected {:?} in [{inner}]", &part[len..]));
                }
                names.push(s);
            }
            return Ok(if names.len() == 1 { Step::Field(names.remove(0)) } else { Step::Fields(names) });
        }
        let int = |s: &str| -> Result<Option<i64>, String> {
            let s = s.trim();
            if s.is_empty() { Ok(None) } else { s.parse().map(Some).map_err(|_| format!("invalid array index {s:?} in [{inner}]")) }
        };
        if inner.contains(':') {
            let parts: Vec<&str> = inner.split(':').collect();
            if parts.len() > 3 {
                return Err(format!("invalid array slice [{inner}]: write [start:end] or [start:end:step]"));
            }
            return Ok(Step::Slice(int(parts[0])?, int(parts[1])?, parts.get(2).map(|s| int(s)).transpose()?.flatten()));
        }
        if inner.contains(',') {
            let is = inner.split(',').map(|p| int(p)?.ok_or_else(|| format!("empty index in [{inner}]"))).collect::<Result<_, _>>()?;
            return Ok(Step::Indexes(is));
        }
        int(&inner)?.map(Step::Index).ok_or_else(|| "empty array expression []".to_string())
    }
}

/// The offset of the `]` closing the bracket `s` starts with.
fn bracket_end(s: &str) -> Option<usize> {
    let mut quote = None;
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits on `sep` outside quotes and brackets.
pub(crate) fn split_top(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quote = None;
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(' | '{') => depth += 1,
            (None, ']' | ')' | '}') => depth = depth.saturating_sub(1),
            (None, c) if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn filter(f: &str) -> Result<Filter, String> {
    const OPS: [(&str, Op); 6] = [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)];
    // The first operator outside quotes.
    let mut quote = None;
    let mut found = None;
    for (i, c) in f.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, _) => {
                if let Some((tok, op)) = OPS.iter().find(|(tok, _)| f[i..].starts_with(tok)) {
                    found = Some((i, tok.len(), *op));
                    break;
                }
            }
        }
    }
    let Some((at, len, op)) = found else { return Ok(Filter { left: Path::parse(f)?, compare: None }) };
    let left = Path::parse(&f[..at])?;
    let right = f[at + len..].trim();
    let operand = if right.starts_with('"') || right.starts_with('\'') {
        let (s, used) = quoted(right)?;
        if used != right.len() {
            return Err(format!("unexpected {:?} in filter ?({f})", &right[used..]));
        }
        Operand::Literal(Value::String(s))
    } else if right.starts_with('@') || right.starts_with('$') {
        Operand::Path(Path::parse(right)?)
    } else {
        Operand::Literal(serde_json::from_str(right).map_err(|_| format!("invalid value {right:?} in filter ?({f}): quote strings"))?)
    };
    Ok(Filter { left, compare: Some((op, operand)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "PodList",
            "items": [
                {"metadata": {"name": "a", "labels": {"app": "web", "kubernetes.io/os": "linux"}},
                 "spec": {"containers": [{"name": "c1", "image": "busybox"}, {"name": "c2", "image": "nginx"}]},
                 "status": {"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}], "restartCount": 3}},
                {"metadata": {"name": "b"},
                 "spec": {"containers": [{"name": "c3", "image": "redis"}]},
                 "status": {"conditions": [{"type": "Ready", "status": "False"}], "restartCount": 0}},
            ]
        })
    }

    fn run(template: &str) -> String {
        Template::parse(template).expect("valid template").execute(&pods())
    }

    #[test]
    fn should_print_fields_and_lists_like_kubectl() {
        assert_eq!(run("{.kind}"), "PodList");
        assert_eq!(run("{.items[*].metadata.name}"), "a b");
        assert_eq!(run("{.items[0].status.podIP}"), "10.0.0.1");
        assert_eq!(run("{.items[-1].metadata.name}"), "b");
        assert_eq!(run("{.items[1].status.podIP}"), "");
        assert_eq!(run("{.items[5].metadata.name}"), "");
        assert_eq!(run("{.items[0].metadata.labels}"), r#"{"app":"web","kubernetes.io/os":"linux"}"#);
        assert_eq!(run("{.items[0].status.restartCount}"), "3");
        assert_eq!(run("{$.items[0:1].metadata.name}"), "a");
        assert_eq!(run("{.items[0].spec.containers[0,1].name}"), "c1 c2");
        assert_eq!(run("{.items[0].metadata.labels.kubernetes\\.io/os}"), "linux");
        assert_eq!(run("{.items[0].metadata.labels['kubernetes.io/os']}"), "linux");
        assert_eq!(run("{..image}"), "busybox nginx redis");
        assert_eq!(run("{.items[*].spec.containers[*].name}"), "c1 c2 c3");
    }

    #[test]
    fn should_mix_literal_text_and_expressions() {
        assert_eq!(run("name={.items[0].metadata.name} ip={.items[0].status.podIP}\n"), "name=a ip=10.0.0.1\n");
        assert_eq!(run(r#"{.items[0].metadata.name}{"\t"}{.items[1].metadata.name}{"\n"}"#), "a\tb\n");
        assert_eq!(run("no actions at all"), "no actions at all");
    }

    #[test]
    fn should_loop_over_ranges() {
        assert_eq!(run(r#"{range .items[*]}{.metadata.name}{"\n"}{end}"#), "a\nb\n");
        assert_eq!(run(r#"{range .items}{.metadata.name},{end}"#), "a,b,");
        assert_eq!(
            run(r#"{range .items[*]}{.metadata.name}:{range .spec.containers[*]}{.image} {end}{"\n"}{end}"#),
            "a:busybox nginx \nb:redis \n"
        );
        // `$` stays the document inside a range.
        assert_eq!(run(r#"{range .items[*]}{$.kind}{end}"#), "PodListPodList");
    }

    #[test]
    fn should_filter_lists() {
        assert_eq!(run(r#"{.items[*].status.conditions[?(@.type=="Ready")].status}"#), "True False");
        assert_eq!(run(r#"{.items[?(@.status.podIP)].metadata.name}"#), "a");
        assert_eq!(run(r#"{.items[?(@.status.restartCount > 1)].metadata.name}"#), "a");
        assert_eq!(run(r#"{.items[?(@.metadata.name != 'a')].metadata.name}"#), "b");
        assert_eq!(run(r#"{range .items[?(@.metadata.name=="b")]}{.spec.containers[0].image}{end}"#), "redis");
    }

    #[test]
    fn should_refuse_bad_templates_with_a_reason() {
        let err = |t: &str| Template::parse(t).expect_err(t);
        assert_eq!(err("{.items[}"), "error parsing jsonpath {.items[}: unclosed action \"{.items[}\"");
        assert!(err("{.items[0}").contains("unclosed"), "{}", err("{.items[0}"));
        assert_eq!(err("{range .items[*]}{.x}"), "error parsing jsonpath {range .items[*]}{.x}: {range} without a matching {end}");
        assert_eq!(err("{end}"), "error parsing jsonpath {end}: {end} without a matching {range}");
        assert!(err("{.items[x]}").contains("invalid array index \"x\""));
        assert!(err("{.a").contains("unclosed action"));
        assert!(err("{}").contains("empty action"));
    }

    #[test]
    fn should_parse_relaxed_column_paths() {
        let v = pods();
        for p in [".items[0].metadata.name", "{.items[0].metadata.name}", "items[0].metadata.name"] {
            let path = Path::parse_relaxed(p).expect(p);
            assert_eq!(path.find(&v), [&json!("a")], "{p}");
        }
    }

    #[test]
    fn should_split_outside_brackets_and_quotes() {
        assert_eq!(split_top(r#"A:.a,B:.b[?(@.x=="1,2")],C:.c[0,1]"#, ','), ["A:.a", r#"B:.b[?(@.x=="1,2")]"#, "C:.c[0,1]"]);
    }
}
