//! Progress lines of long operations (`rolling-update`, `drain`, `wait`),
//! written to stderr so that scripts reading stdout are unaffected, and only
//! when what they say changed: one line per step, not one per poll.

use std::time::Duration;

/// The last progress line of one operation.
#[derive(Debug, Default)]
pub struct Progress {
    last: Option<String>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress::default()
    }

    /// The line to write for `message` (with `elapsed` appended, which does
    /// not count as a change), or None when the message repeats the last one.
    pub fn line(&mut self, message: &str, elapsed: Option<Duration>) -> Option<String> {
        if self.last.as_deref() == Some(message) {
            return None;
        }
        self.last = Some(message.to_string());
        Some(match elapsed {
            Some(e) => format!("{message} ({}s)", e.as_secs()),
            None => message.to_string(),
        })
    }

    /// Writes `message` to stderr unless it repeats the last one.
    pub fn report(&mut self, message: &str) {
        if let Some(l) = self.line(message, None) {
            eprintln!("{l}");
        }
    }

    /// [`Progress::report`] with the time spent so far appended.
    pub fn report_after(&mut self, message: &str, elapsed: Duration) {
        if let Some(l) = self.line(message, Some(elapsed)) {
            eprintln!("{l}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_write_a_line_only_when_the_message_changes() {
        let mut p = Progress::new();
        assert_eq!(p.line("rc/web: 1 of 3 pods updated", None).as_deref(), Some("rc/web: 1 of 3 pods updated"));
        assert_eq!(p.line("rc/web: 1 of 3 pods updated", None), None);
        assert_eq!(p.line("rc/web: 2 of 3 pods updated", None).as_deref(), Some("rc/web: 2 of 3 pods updated"));
    }

    #[test]
    fn should_not_count_the_elapsed_time_as_a_change() {
        let mut p = Progress::new();
        let msg = "waiting for pod/web: condition Ready is False";
        assert_eq!(p.line(msg, Some(Duration::from_secs(2))).as_deref(), Some("waiting for pod/web: condition Ready is False (2s)"));
        assert_eq!(p.line(msg, Some(Duration::from_secs(9))), None);
    }
}
