//! One run's figures and the report over `--repeat` runs: the median of each
//! figure (plus min and max in the table), as an aligned table or one JSON
//! object whose keys name each figure with its unit.

use std::fmt::Write as _;

/// Whether a figure is a count (printed without decimals) or a measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Count,
    Measure,
}

/// The figures of one run, in the order they were recorded.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    items: Vec<(String, Kind, f64)>,
}

impl Figures {
    pub fn new() -> Self {
        Self::default()
    }

    /// A measurement; the key names its unit (`creates_per_s`, `create_p99_ms`).
    pub fn measure(&mut self, key: impl Into<String>, value: f64) {
        self.items.push((key.into(), Kind::Measure, value));
    }

    /// A count (`events`, `missed`).
    pub fn count(&mut self, key: impl Into<String>, value: u64) {
        self.items.push((key.into(), Kind::Count, value as f64));
    }

    /// Appends another set of figures (etcd's after Berth's).
    pub fn extend(&mut self, other: Figures) {
        self.items.extend(other.items);
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.items.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| *v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Kind, f64)> {
        self.items.iter().map(|(k, kind, v)| (k.as_str(), *kind, *v))
    }
}

/// One figure over all runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub key: String,
    pub kind: Kind,
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

/// The figures of every run, summarised.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub runs: usize,
    pub figures: Vec<Summary>,
}

impl Report {
    /// Summarises runs; a key keeps the position it first appeared at.
    pub fn new(scenario: &str, runs: Vec<Figures>) -> Report {
        let mut keys: Vec<(String, Kind)> = Vec::new();
        for run in &runs {
            for (k, kind, _) in run.iter() {
                if !keys.iter().any(|(x, _)| x == k) {
                    keys.push((k.to_string(), kind));
                }
            }
        }
        let figures = keys
            .into_iter()
            .map(|(key, kind)| {
                let mut values: Vec<f64> = runs.iter().filter_map(|r| r.get(&key)).filter(|v| v.is_finite()).collect();
                values.sort_by(f64::total_cmp);
                let (median, min, max) =
                    if values.is_empty() { (f64::NAN, f64::NAN, f64::NAN) } else { (median(&values), values[0], values[values.len() - 1]) };
                Summary { key, kind, median, min, max }
            })
            .collect();
        Report { scenario: scenario.to_string(), runs: runs.len(), figures }
    }

    /// One JSON object: `scenario`, `runs`, then every figure's median.
    pub fn to_json(&self) -> String {
        let mut out = format!("{{\"scenario\":{},\"runs\":{}", serde_json::Value::from(self.scenario.as_str()), self.runs);
        for f in &self.figures {
            let _ = write!(out, ",{}:{}", serde_json::Value::from(f.key.as_str()), json_number(f.kind, f.median));
        }
        out.push('}');
        out
    }

    /// An aligned table; with several runs, min and max next to the median.
    pub fn to_table(&self) -> String {
        let several = self.runs > 1;
        let mut rows: Vec<Vec<String>> = Vec::new();
        rows.push(if several {
            vec!["FIGURE".into(), "MEDIAN".into(), "MIN".into(), "MAX".into()]
        } else {
            vec!["FIGURE".into(), "VALUE".into()]
        });
        for f in &self.figures {
            let mut row = vec![f.key.clone(), text_number(f.kind, f.median)];
            if several {
                row.push(text_number(f.kind, f.min));
                row.push(text_number(f.kind, f.max));
            }
            rows.push(row);
        }
        let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
        let mut out = format!(
            "berth-bench {}: {} run{}{}\n",
            self.scenario,
            self.runs,
            if several { "s" } else { "" },
            if several { ", median of each figure" } else { "" }
        );
        for row in rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                if c == 0 {
                    let _ = write!(line, "{cell:<w$}", w = widths[c]);
                } else {
                    let _ = write!(line, "  {cell:>w$}", w = widths[c]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The median of sorted values (the mean of the middle two for an even count).
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

fn json_number(kind: Kind, v: f64) -> serde_json::Value {
    if !v.is_finite() {
        return serde_json::Value::Null;
    }
    match kind {
        Kind::Count if v.fract() == 0.0 && v >= 0.0 => serde_json::Value::from(v as u64),
        _ => serde_json::Value::from(round(v)),
    }
}

fn text_number(kind: Kind, v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    match kind {
        Kind::Count if v.fract() == 0.0 => format!("{v:.0}"),
        _ if v.abs() >= 100.0 => format!("{v:.1}"),
        _ => format!("{v:.3}"),
    }
}

/// Three decimals are below the resolution of every figure we take.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(creates: f64, p99: f64, events: u64) -> Figures {
        let mut f = Figures::new();
        f.measure("creates_per_s", creates);
        f.measure("create_p99_ms", p99);
        f.count("events", events);
        f
    }

    #[test]
    fn should_report_the_median_of_each_figure() {
        let r = Report::new("api", vec![run(300.0, 9.0, 5), run(100.0, 7.0, 5), run(200.0, 8.0, 5)]);
        let creates = &r.figures[0];
        assert_eq!((creates.median, creates.min, creates.max), (200.0, 100.0, 300.0));
        assert_eq!(r.figures[1].median, 8.0);
    }

    #[test]
    fn should_average_the_middle_two_for_an_even_count() {
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), 3.0);
    }

    #[test]
    fn should_print_one_json_object_with_unit_keys() {
        let r = Report::new("api", vec![run(1234.56789, 2.5, 500)]);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["scenario"], "api");
        assert_eq!(v["creates_per_s"], 1234.568);
        assert_eq!(v["events"], 500);
        assert!(v["events"].is_u64());
    }

    #[test]
    fn should_align_table_columns() {
        let r = Report::new("api", vec![run(1000.0, 2.5, 500), run(2000.0, 3.5, 500)]);
        let table = r.to_table();
        let lines: Vec<&str> = table.lines().skip(1).collect();
        assert!(lines[0].starts_with("FIGURE"));
        let ends: Vec<usize> = lines.iter().map(|l| l.len()).collect();
        assert!(ends.iter().all(|&e| e == ends[0]), "{table}");
    }
}
