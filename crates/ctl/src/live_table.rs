//! The table `get -w` keeps on a terminal: one row per watched object,
//! redrawn in place (ANSI cursor movement) as objects change, appear and
//! disappear. Pure state and text, so it is tested without a terminal; the
//! caller writes [`LiveTable::frame`]'s output to stdout.

use crate::printers::{render_row, widths};

/// Moves the cursor to the start of the line `n` lines up.
fn up(n: usize) -> String {
    if n == 0 { String::new() } else { format!("\x1b[{n}F") }
}
/// Clears from the cursor to the end of the line.
const CLEAR_LINE: &str = "\x1b[K";
/// Clears from the cursor to the end of the screen.
const CLEAR_BELOW: &str = "\x1b[J";
/// Auto-wrap off, then on again: a row wider than the terminal is cut at
/// its edge instead of wrapping onto a line the cursor movement does not count.
const NO_WRAP: &str = "\x1b[?7l";
const WRAP: &str = "\x1b[?7h";

/// The watched objects' rows, keyed by namespace and name, in key order.
#[derive(Debug, Clone, Default)]
pub struct LiveTable {
    headers: Vec<String>,
    no_headers: bool,
    rows: Vec<((String, String), Vec<String>)>,
    /// Lines the last frame left on the screen.
    drawn: usize,
}

impl LiveTable {
    pub fn new(headers: Vec<String>, no_headers: bool) -> LiveTable {
        LiveTable { headers, no_headers, rows: Vec::new(), drawn: 0 }
    }

    /// Adds the object's row, or replaces it when the object is already shown.
    pub fn upsert(&mut self, namespace: &str, name: &str, cells: Vec<String>) {
        let key = (namespace.to_string(), name.to_string());
        match self.rows.binary_search_by(|(k, _)| k.cmp(&key)) {
            Ok(i) => self.rows[i].1 = cells,
            Err(i) => self.rows.insert(i, (key, cells)),
        }
    }

    /// Takes every row away (the next frame clears what was drawn).
    pub fn clear(&mut self) {
        self.rows.clear();
    }

    /// Takes the object's row away.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        self.rows.retain(|((ns, n), _)| !(ns == namespace && n == name));
    }

    /// The whole table as plain lines (columns as wide as the widest cell now).
    pub fn lines(&self) -> Vec<String> {
        let rows: Vec<Vec<String>> = self.rows.iter().map(|(_, r)| r.clone()).collect();
        let widths = widths(&self.headers, &rows, self.no_headers);
        let header = (!self.no_headers).then(|| render_row(&self.headers, &widths));
        header.into_iter().chain(rows.iter().map(|r| render_row(r, &widths))).map(|l| l.trim_end_matches('\n').to_string()).collect()
    }

    /// The text that turns the previous frame into the current table: the
    /// cursor goes back to the table's first line, every line is rewritten
    /// and cleared to its end, and lines left over from a longer table are
    /// cleared.
    pub fn frame(&mut self) -> String {
        let lines = self.lines();
        if lines.is_empty() && self.drawn == 0 {
            return String::new();
        }
        let mut s = NO_WRAP.to_string();
        s.push_str(&up(self.drawn));
        for l in &lines {
            s.push_str(l);
            s.push_str(CLEAR_LINE);
            s.push('\n');
        }
        if lines.len() < self.drawn {
            s.push_str(CLEAR_BELOW);
        }
        s.push_str(WRAP);
        self.drawn = lines.len();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn should_draw_the_first_frame_without_moving_the_cursor() {
        let mut t = LiveTable::new(cells(&["NAME", "STATUS"]), false);
        t.upsert("default", "web", cells(&["web", "Pending"]));
        assert_eq!(t.frame(), "\x1b[?7lNAME   STATUS\x1b[K\nweb    Pending\x1b[K\n\x1b[?7h");
    }

    #[test]
    fn should_rewrite_a_changed_row_in_place_and_widen_the_columns() {
        let mut t = LiveTable::new(cells(&["NAME", "STATUS"]), false);
        t.upsert("default", "web", cells(&["web", "Pending"]));
        t.upsert("default", "api", cells(&["api", "Pending"]));
        t.frame();
        t.upsert("default", "web", cells(&["web-with-long-name", "Running"]));
        // Back up over the three lines drawn, then the rows in name order.
        assert_eq!(
            t.frame(),
            "\x1b[?7l\x1b[3FNAME                 STATUS\x1b[K\napi                  Pending\x1b[K\nweb-with-long-name   Running\x1b[K\n\x1b[?7h"
        );
    }

    #[test]
    fn should_clear_the_lines_of_rows_that_disappeared() {
        let mut t = LiveTable::new(cells(&["NAME"]), true);
        t.upsert("a", "x", cells(&["x"]));
        t.upsert("b", "x", cells(&["x"]));
        t.frame();
        t.remove("a", "x");
        assert_eq!(t.frame(), "\x1b[?7l\x1b[2Fx\x1b[K\n\x1b[J\x1b[?7h");
        t.remove("b", "x");
        assert_eq!(t.frame(), "\x1b[?7l\x1b[1F\x1b[J\x1b[?7h");
        assert_eq!(t.frame(), "");
    }
}
