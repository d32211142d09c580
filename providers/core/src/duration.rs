//! The one duration syntax of terrace: the language (`ttl`), the command line
//! (`--lock-timeout`, `--horizon`) and environment variables (`TERRACE_SSH_PERSIST`) all
//! read durations here, so `90s`, `1m30s` and `500ms` mean the same everywhere.

use std::time::Duration;

/// Parses `<number><unit>` pairs written together (`1h30m`, `500ms`) with units `ms`,
/// `s`, `m`, `h`, `d` and `w`: the one duration syntax of terrace, shared by the
/// language (`ttl`) and the command line (`--lock-timeout`, `--horizon`). `None` for
/// anything else, including a bare number; callers word their own error.
pub fn duration_parts(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let n: u32 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let one = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3_600),
            "d" => Duration::from_secs(86_400),
            "w" => Duration::from_secs(7 * 86_400),
            _ => return None,
        };
        total = total.checked_add(one.checked_mul(n)?)?;
        rest = &rest[unit_len..];
    }
    Some(total)
}

/// A duration as people type it on a command line or in an environment variable:
/// [`duration_parts`], or a bare number of seconds (`45`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    duration_parts(text)
        .ok_or_else(|| format!("{text:?} is not a duration: write e.g. 30s, 5m, 1m30s or 500ms"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_combine_and_bare_seconds_are_only_for_the_command_line() {
        assert_eq!(duration_parts("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(duration_parts("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration_parts("45"), None);
        assert_eq!(duration_parts("soon"), None);
        assert_eq!(parse_duration(" 45 "), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("-1").is_err());
    }
}
