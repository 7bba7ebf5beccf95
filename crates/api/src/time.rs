//! Timestamps as Kubernetes writes them: RFC 3339 in UTC with a `Z`, in whole seconds
//! for `Time` fields (`2026-12-08T03:22:16Z`) and in microseconds for `MicroTime`
//! fields (Lease renew times, audit stage timestamps: `2026-12-08T03:22:16.123456Z`).

use chrono::{DateTime, SecondsFormat, Utc};

/// The current time as a Kubernetes `Time`: `2026-12-08T03:22:16Z`.
pub fn now_rfc3339() -> String {
    format_rfc3339(Utc::now())
}

/// `t` as a Kubernetes `Time`: RFC 3339 in UTC, whole seconds, `Z`.
pub fn format_rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The current time as a Kubernetes `MicroTime`: `2026-12-08T03:22:16.123456Z`.
pub fn now_rfc3339_micros() -> String {
    format_rfc3339_micros(Utc::now())
}

/// `t` as a Kubernetes `MicroTime`: RFC 3339 in UTC, microseconds, `Z`.
pub fn format_rfc3339_micros(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Parses an RFC 3339 timestamp (either precision, any offset) into UTC; None when malformed.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_write_times_in_whole_seconds_with_a_z() {
        let t = parse_rfc3339("2026-12-08T03:22:16.987654321Z").expect("valid");
        assert_eq!(format_rfc3339(t), "2026-12-08T03:22:16Z");
        assert_eq!(format_rfc3339(t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    }

    #[test]
    fn should_write_micro_times_in_microseconds_with_a_z() {
        let t = parse_rfc3339("2026-12-08T04:22:16.987654321+01:00").expect("valid");
        assert_eq!(format_rfc3339_micros(t), "2026-12-08T03:22:16.987654Z");
    }

    #[test]
    fn should_read_back_what_it_writes_and_refuse_garbage() {
        let now = parse_rfc3339(&now_rfc3339()).expect("valid");
        assert_eq!(format_rfc3339(now).len(), "2026-12-08T03:22:16Z".len());
        assert!(parse_rfc3339(&now_rfc3339_micros()).is_some());
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339(""), None);
    }
}
