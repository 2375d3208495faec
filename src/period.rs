//! Periods given on the command line and in scripts (`--since`, `since:`, `--lock-timeout`):
//! humantime's durations, bounded.

use std::time::Duration;

use crate::error::{Error, Result};

/// Parses a look-back period such as `30s`, `10m`, `2h`, `1d` (or `1h 30m`: humantime's
/// durations), from 1 s up to 366 days; `key` names it in errors.
pub fn parse_since(key: &str, text: &str) -> Result<Duration> {
    const LONGEST: Duration = Duration::from_secs(366 * 86_400);
    let invalid = || Error::invalid(key, format!("{text:?}"), "a number followed by s, m, h or d, e.g. \"10m\"");
    let since = humantime::parse_duration(text.trim()).map_err(|_| invalid())?;
    if since < Duration::from_secs(1) || since > LONGEST {
        return Err(invalid());
    }
    Ok(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_take_seconds_minutes_hours_and_days() {
        assert_eq!(parse_since("since", "30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_since("since", "10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_since("since", "2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_since("since", "1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(parse_since("since", "1h 30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_since("since", "1.5h").unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn bad_periods_name_the_key_and_the_format() {
        for bad in ["", "10", "m", "10x", "-5m", "0s", "400d", "500ms"] {
            let err = parse_since("logs.since", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid logs.since"), "{bad}: {err}");
            assert!(err.contains("e.g. \"10m\""), "{bad}: {err}");
        }
    }
}
