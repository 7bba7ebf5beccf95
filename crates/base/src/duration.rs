//! Durations in flags, written like Go's and Kubernetes': `40s`, `5m`,
//! `500ms`, `1h30m`.

use std::time::Duration;

/// Parses `1h30m`, `40s`, `500ms`, `2m0s`, `0`. Units: h, m, s, ms, us, ns.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration: write it like 40s, 5m or 500ms".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!("invalid duration {s:?}: expected a number at {rest:?} (write it like 40s, 5m or 500ms)"));
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| format!("invalid duration {s:?}: bad number {:?}", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            "" => return Err(format!("invalid duration {s:?}: missing unit (h, m, s, ms)")),
            other => return Err(format!("invalid duration {s:?}: unknown unit {other:?} (h, m, s, ms)")),
        };
        total += Duration::from_secs_f64(value * secs);
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn should_parse_kubernetes_durations() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn should_refuse_durations_without_units() {
        assert!(parse_duration("40").is_err());
        assert!(parse_duration("4x").is_err());
        assert!(parse_duration("").is_err());
    }
}
