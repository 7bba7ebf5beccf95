//! Elastic tab stops, as Go's `text/tabwriter` (which kubectl's describe
//! output is shaped by): a cell is text ended by a tab, and a column block
//! is a run of consecutive lines that have a cell in that column.

/// Aligns `text`'s tab-separated cells with `padding` spaces after the
/// widest cell of each column block. Text after a line's last tab is not
/// a cell and is written as is.
pub fn align(text: &str, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split_terminator('\n').map(|l| l.split('\t').collect()).collect();
    let mut w = Writer { lines: &lines, widths: Vec::new(), padding, out: String::new() };
    w.format(0, lines.len());
    w.out
}

struct Writer<'a> {
    lines: &'a [Vec<&'a str>],
    widths: Vec<usize>,
    padding: usize,
    out: String,
}

impl Writer<'_> {
    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column >= self.lines[this].len() - 1 {
                this += 1;
                continue;
            }
            // A cell in this column: write the lines before the block, then
            // find the block's end and width.
            self.write_lines(line0, this);
            line0 = this;
            let mut width = 0;
            while this < line1 && column < self.lines[this].len() - 1 {
                width = width.max(self.lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for line in &self.lines[line0..line1] {
            let mut text = String::new();
            for (j, cell) in line.iter().enumerate() {
                text.push_str(cell);
                if j + 1 < line.len() {
                    let width = self.widths.get(j).copied().unwrap_or(0);
                    let n = width.saturating_sub(cell.chars().count());
                    text.extend(std::iter::repeat_n(' ', n));
                }
            }
            self.out.push_str(text.trim_end());
            self.out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::align;

    #[test]
    fn should_align_consecutive_lines_only() {
        // A line without a cell ends a block; consecutive lines with cells
        // share a column whatever their indentation (as in Go).
        let text = "Name:\tweb\nNamespace:\tdefault\nContainers:\n  c:\n    Image:\tbusybox\n    Restart Count:\t0\nIP:\t1.2.3.4\n";
        assert_eq!(
            align(text, 2),
            "Name:       web\nNamespace:  default\nContainers:\n  c:\n    Image:          busybox\n    Restart Count:  0\nIP:                 1.2.3.4\n"
        );
    }

    #[test]
    fn should_align_nested_columns() {
        let text = "a\tb\tc\naa\tbbb\tc\nx\n";
        assert_eq!(align(text, 1), "a  b   c\naa bbb c\nx\n");
    }
}
