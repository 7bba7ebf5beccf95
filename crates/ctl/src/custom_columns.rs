//! `-o custom-columns=NAME:.metadata.name,IP:.status.podIP`: a table whose
//! columns are JSONPath expressions, as kubectl prints it. A column with no
//! value shows `<none>`; several values are joined by commas.

use serde_json::Value;

use crate::jsonpath::{Path, format_value, split_top};
use crate::printers::render_table;

/// Parsed columns: each header with its path.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    columns: Vec<(String, Path)>,
}

impl Columns {
    /// Parses `HEADER:PATH,HEADER:PATH`; paths may be braced or leave out
    /// the leading dot.
    pub fn parse(spec: &str) -> Result<Columns, String> {
        if spec.trim().is_empty() {
            return Err("custom-columns format specified but no custom columns given: write -o custom-columns=NAME:.metadata.name".into());
        }
        let mut columns = Vec::new();
        for part in split_top(spec, ',') {
            let Some((header, path)) = part.split_once(':') else {
                return Err(format!("unexpected custom-columns spec: {part}, expected <header>:<json-path-expr>"));
            };
            columns.push((header.to_string(), Path::parse_relaxed(path)?));
        }
        Ok(Columns { columns })
    }

    pub fn headers(&self) -> Vec<String> {
        self.columns.iter().map(|(h, _)| h.clone()).collect()
    }

    /// The cells of one object.
    pub fn row(&self, object: &Value) -> Vec<String> {
        self.columns
            .iter()
            .map(|(_, path)| {
                let values = path.find(object);
                if values.is_empty() { "<none>".to_string() } else { values.into_iter().map(format_value).collect::<Vec<_>>().join(",") }
            })
            .collect()
    }

    /// The table of several objects, aligned like `get`'s tables.
    pub fn render(&self, objects: &[Value], no_headers: bool) -> String {
        let rows: Vec<Vec<String>> = objects.iter().map(|o| self.row(o)).collect();
        render_table(&self.headers(), &rows, no_headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn should_print_a_column_per_path() {
        let cols = Columns::parse("NAME:.metadata.name,IP:{.status.podIP},CONTAINERS:spec.containers[*].name").expect("valid");
        let objects = [
            json!({"metadata": {"name": "web-1"}, "status": {"podIP": "172.30.0.5"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"metadata": {"name": "db"}, "spec": {}}),
        ];
        assert_eq!(
            cols.render(&objects, false),
            "NAME    IP           CONTAINERS\nweb-1   172.30.0.5   a,b\ndb      <none>       <none>\n"
        );
        assert_eq!(cols.render(&objects[1..], true), "db    <none>   <none>\n");
    }

    #[test]
    fn should_refuse_a_column_without_a_path() {
        assert_eq!(
            Columns::parse("NAME:.metadata.name,IP").expect_err("no path"),
            "unexpected custom-columns spec: IP, expected <header>:<json-path-expr>"
        );
        assert!(Columns::parse("").is_err());
        assert!(Columns::parse("X:.a[").expect_err("bad path").starts_with("error parsing jsonpath .a["));
    }

    #[test]
    fn should_keep_commas_inside_filters() {
        let cols = Columns::parse(r#"READY:.status.conditions[?(@.type=="Ready")].status"#).expect("valid");
        let pod = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(cols.row(&pod), ["True"]);
    }
}
