//! Expiry: `lifecycle { expires_at = "2026-12-24T18:00:00Z" }` or `lifecycle { ttl =
//! "48h" }` on any block that owns resources, per instance.
//!
//! Unlike `prevent_destroy` and `ignore_changes`, which are literals because they decide
//! what a plan may do before anything is evaluated, the expiry is a value of each
//! instance: it is evaluated like the block's attributes, with `each`, `var` and
//! `local` (`ttl = each.value.ttl`, read from a directory of instance files). `null`
//! means "no expiry". The language never reads the clock: an `expires_at` is a
//! timestamp, a `ttl` a duration, and the planner compares them with the "now" it is
//! given.

use chrono::{DateTime, TimeDelta, Utc};
use hcl::eval::Context;
use hcl::Value;

use crate::diagnostics::{ConfigError, ErrorKind};
use crate::expr::evaluate;
use crate::spec::Expiry;
use crate::syntax::RawBlock;
use crate::types::describe;

/// The `lifecycle` attributes that are evaluated (and may refer to values).
pub(crate) const ATTRS: &[&str] = &["expires_at", "ttl"];

pub use terrace_provider::duration::duration_parts;

/// Parses a ttl: [`duration_parts`] in whole seconds, positive (`48h`, `1h30m`, `7d`).
pub fn parse_duration(text: &str) -> Result<TimeDelta, String> {
    let bad = || {
        format!("{text:?} is not a duration: write a number and a unit (s, m, h, d, w), like \"48h\" or \"1h30m\"")
    };
    let d = duration_parts(text).ok_or_else(bad)?;
    if d.is_zero() || d.subsec_nanos() != 0 {
        return Err(bad());
    }
    // At most about 100 years: anything longer is a mistake in the unit.
    if d.as_secs() > 100 * 366 * 86_400 {
        return Err(format!("{text:?} is longer than 100 years"));
    }
    TimeDelta::from_std(d).map_err(|_| bad())
}

/// Parses an RFC 3339 timestamp (`2026-12-24T18:00:00Z`, or with an offset).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 timestamp ({e}); write it like \"2026-12-24T18:00:00Z\"")
        })
}

/// True if the block's `lifecycle` sets an expiry attribute (`read` has work to do).
pub(crate) fn declared(block: &RawBlock) -> bool {
    block
        .blocks
        .iter()
        .find(|b| b.kind == "lifecycle")
        .is_some_and(|l| ATTRS.iter().any(|k| l.attr(k).is_some()))
}

/// Evaluates the expiry of one instance (`instance` is its address) from the block's
/// `lifecycle` block, if it sets one; errors are located at the value.
pub(crate) fn read(
    block: &RawBlock,
    instance: &str,
    ctx: &Context<'static>,
    errors: &mut Vec<ConfigError>,
) -> Option<Expiry> {
    let lifecycle = block.blocks.iter().find(|b| b.kind == "lifecycle")?;
    let mut out = Expiry {
        instance: instance.to_string(),
        expires_at: None,
        ttl: None,
    };
    for key in ATTRS {
        let Some(attr) = lifecycle.attr(key) else {
            continue;
        };
        let v = match evaluate(attr, ctx) {
            Ok(v) => v,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let (example, what) = match *key {
            "ttl" => ("\"48h\"", "a duration"),
            _ => ("\"2026-12-24T18:00:00Z\"", "an RFC 3339 timestamp"),
        };
        let text = match &v {
            Value::Null => continue,
            Value::String(s) => s,
            other => {
                errors.push(
                    ConfigError::new(
                        ErrorKind::WrongType,
                        format!(
                            "wrong type for \"{key}\" of {instance}: expected {what}, found {}",
                            describe(other)
                        ),
                    )
                    .at(&attr.loc, format!("this is {}", describe(other)))
                    .help(format!("write it like `{key} = {example}`")),
                );
                continue;
            }
        };
        let parsed = match *key {
            "ttl" => parse_duration(text).map(|d| out.ttl = Some(d)),
            _ => parse_time(text).map(|t| out.expires_at = Some(t)),
        };
        if let Err(msg) = parsed {
            errors.push(
                ConfigError::new(
                    ErrorKind::InvalidValue,
                    format!("invalid \"{key}\" of {instance}: {msg}"),
                )
                .at(&attr.loc, format!("not {what}"))
                .help(format!(
                    "write it like `{key} = {example}`, or null for none"
                )),
            );
        }
    }
    (out.expires_at.is_some() || out.ttl.is_some()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("48h"), Ok(TimeDelta::hours(48)));
        assert_eq!(parse_duration("1h30m"), Ok(TimeDelta::minutes(90)));
        assert_eq!(parse_duration("2w"), Ok(TimeDelta::days(14)));
        for bad in [
            "",
            "48",
            "h",
            "0s",
            "-1h",
            "1.5h",
            "1y",
            "999999999999w",
            "1500ms",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times() {
        let t = parse_time("2026-12-24T19:00:00+01:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-24T18:00:00+00:00");
        assert!(parse_time("2026-12-24").is_err());
    }
}
