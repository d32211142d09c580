//! Drift runs: what changed outside terrace, split into what alerts and what a team has
//! acknowledged in its ignore file, plus the Prometheus textfile a scheduled run writes.
//!
//! Pure like the planner: the binary reads the ignore file, the clock and the state, and
//! hands them over.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::model::{AttrDiff, Drift, DriftKind, Plan};

/// The ignore file's name, in the project directory (committed with the configuration).
pub const DRIFT_IGNORE_FILE: &str = "terrace.driftignore";

/// One line of the ignore file: `PATTERN [expires=YYYY-MM-DD] REASON`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoreRule {
    /// `ADDRESS` or `ADDRESS.ATTRIBUTE`; `*` matches any run of characters.
    pub pattern: String,
    /// Why the drift is accepted (required: an acknowledgement without a reason is
    /// how alerts get silenced and forgotten).
    pub reason: String,
    /// The last day (UTC, inclusive) the acknowledgement holds; it alerts again after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Line number in the file, for messages.
    pub line: usize,
}

impl IgnoreRule {
    /// True once `today` (`YYYY-MM-DD`) is past the expiry date. ISO dates compare as
    /// strings.
    pub fn expired(&self, today: &str) -> bool {
        self.expires.as_deref().is_some_and(|e| e < today)
    }

    /// True if the rule covers the whole object at `address`.
    fn covers_object(&self, address: &str) -> bool {
        glob(&self.pattern, address)
    }

    /// True if the rule covers attribute `attr` of the object at `address`.
    fn covers_attr(&self, address: &str, attr: &str) -> bool {
        self.covers_object(address) || glob(&self.pattern, &format!("{address}.{attr}"))
    }
}

/// Parses an ignore file. Errors name the line.
pub fn parse_ignore(text: &str) -> Result<Vec<IgnoreRule>, Vec<String>> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (pattern, rest) = split_word(trimmed);
        let (expires, reason) = match split_word(rest) {
            (w, rest) if w.starts_with("expires=") => {
                let date = &w["expires=".len()..];
                if !is_iso_date(date) {
                    errors.push(format!(
                        "line {line}: expiry {date:?} is not a date written YYYY-MM-DD"
                    ));
                    continue;
                }
                (Some(date.to_string()), rest)
            }
            _ => (None, rest),
        };
        if reason.is_empty() {
            errors.push(format!(
                "line {line}: {pattern:?} has no reason; write `PATTERN [expires=YYYY-MM-DD] REASON`"
            ));
            continue;
        }
        rules.push(IgnoreRule {
            pattern: pattern.to_string(),
            reason: reason.to_string(),
            expires,
            line,
        });
    }
    if errors.is_empty() {
        Ok(rules)
    } else {
        Err(errors)
    }
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u32>().unwrap_or(0))
}

/// `*` matches any run of characters (including none); everything else is literal.
fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Drift the ignore file accepts, with the rule that accepts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged {
    /// The drift (for a changed object: only the acknowledged attributes).
    pub drift: Drift,
    /// The rule that covers it.
    pub rule: IgnoreRule,
}

/// What a drift run found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Drift that alerts: nothing covers it, or only an expired acknowledgement.
    pub drifted: Vec<Drift>,
    /// For each entry of `drifted` that an expired rule covers: that rule.
    pub expired: Vec<(usize, IgnoreRule)>,
    /// Drift an unexpired rule of the ignore file covers.
    pub acknowledged: Vec<Acknowledged>,
    /// Resources in state, by type.
    pub managed: BTreeMap<String, usize>,
}

impl DriftReport {
    /// Splits the plan's drift by the ignore rules. `managed` counts the resources in
    /// state by type; `today` is the date (UTC) expiries are compared with.
    pub fn new(
        plan: &Plan,
        rules: &[IgnoreRule],
        managed: BTreeMap<String, usize>,
        today: &str,
    ) -> DriftReport {
        let plan = plan.redacted();
        let mut out = DriftReport {
            managed,
            ..DriftReport::default()
        };
        let live = |r: &&IgnoreRule| !r.expired(today);
        for d in plan.drift {
            let address = d.address.as_str().to_string();
            let mut alerting = d.clone();
            match &d.kind {
                DriftKind::Deleted => {
                    if let Some(rule) = rules
                        .iter()
                        .filter(live)
                        .find(|r| r.covers_object(&address))
                    {
                        out.acknowledged.push(Acknowledged {
                            drift: d.clone(),
                            rule: rule.clone(),
                        });
                        continue;
                    }
                }
                DriftKind::Changed { attrs } => {
                    // Each attribute on its own: acknowledging one attribute of an
                    // object must not hide another that changed too.
                    let mut by_rule: Vec<(IgnoreRule, Vec<AttrDiff>)> = Vec::new();
                    let mut rest = Vec::new();
                    for a in attrs {
                        match rules
                            .iter()
                            .filter(live)
                            .find(|r| r.covers_attr(&address, &a.name))
                        {
                            Some(rule) => match by_rule.iter_mut().find(|(r, _)| r == rule) {
                                Some((_, list)) => list.push(a.clone()),
                                None => by_rule.push((rule.clone(), vec![a.clone()])),
                            },
                            None => rest.push(a.clone()),
                        }
                    }
                    for (rule, attrs) in by_rule {
                        let mut acked = d.clone();
                        acked.kind = DriftKind::Changed { attrs };
                        out.acknowledged.push(Acknowledged { drift: acked, rule });
                    }
                    if rest.is_empty() {
                        continue;
                    }
                    alerting.kind = DriftKind::Changed { attrs: rest };
                }
            }
            let expired = rules.iter().find(|r| {
                r.expired(today)
                    && match &alerting.kind {
                        DriftKind::Deleted => r.covers_object(&address),
                        DriftKind::Changed { attrs } => {
                            attrs.iter().any(|a| r.covers_attr(&address, &a.name))
                        }
                    }
            });
            if let Some(rule) = expired {
                out.expired.push((out.drifted.len(), rule.clone()));
            }
            out.drifted.push(alerting);
        }
        out
    }

    /// True when something alerts (drift not acknowledged, or acknowledged only by an
    /// expired rule): the run exits 2.
    pub fn alerts(&self) -> bool {
        !self.drifted.is_empty()
    }

    /// Drifted (alerting) resources by type, every managed type included (zero too).
    pub fn drifted_by_type(&self) -> BTreeMap<String, usize> {
        count_by_type(&self.managed, self.drifted.iter())
    }

    /// Acknowledged resources by type, every managed type included.
    pub fn acknowledged_by_type(&self) -> BTreeMap<String, usize> {
        count_by_type(&self.managed, self.acknowledged.iter().map(|a| &a.drift))
    }
}

fn count_by_type<'a>(
    managed: &BTreeMap<String, usize>,
    drift: impl Iterator<Item = &'a Drift>,
) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = managed.keys().map(|k| (k.clone(), 0)).collect();
    let mut seen = std::collections::BTreeSet::new();
    for d in drift {
        // One resource counts once, however many rules split it.
        if seen.insert(&d.address) {
            *out.entry(d.type_name.clone()).or_default() += 1;
        }
    }
    out
}

/// Timing and outcome of one drift run, for the metrics file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunTimes {
    /// When the run started (seconds since the Unix epoch).
    pub started: f64,
    /// How long it took, in seconds.
    pub duration: f64,
    /// When the last run that completed (every resource observed) started: this run's
    /// start if it completed, else what the previous metrics file recorded.
    pub last_success: Option<f64>,
    /// This run observed everything.
    pub success: bool,
}

/// The metric holding the last successful run's timestamp (read back from the previous
/// file, since a drift run writes no state).
pub const LAST_SUCCESS_METRIC: &str = "terrace_drift_last_success_timestamp_seconds";

/// The Prometheus text exposition (node_exporter's textfile collector) of a drift run.
/// `report` is `None` when the run failed before anything was observed.
pub fn render_metrics(project: &str, report: Option<&DriftReport>, times: RunTimes) -> String {
    let project = escape_label(project);
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(Option<(&str, String)>, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (label, value) in samples {
            let extra = label
                .map(|(k, v)| format!(",{k}=\"{}\"", escape_label(&v)))
                .unwrap_or_default();
            let _ = writeln!(out, "{name}{{project=\"{project}\"{extra}}} {value}");
        }
    };
    if let Some(r) = report {
        let by_type = |m: BTreeMap<String, usize>| {
            m.into_iter()
                .map(|(t, n)| (Some(("resource_type", t)), n.to_string()))
                .collect::<Vec<_>>()
        };
        family(
            "terrace_managed_resources",
            "Resources recorded in the state, by resource type.",
            by_type(r.managed.clone()),
        );
        family(
            "terrace_drifted_resources",
            "Resources changed outside terrace and not acknowledged in the ignore file, by resource type.",
            by_type(r.drifted_by_type()),
        );
        family(
            "terrace_drift_acknowledged_resources",
            "Resources changed outside terrace whose drift the ignore file acknowledges, by resource type.",
            by_type(r.acknowledged_by_type()),
        );
    }
    family(
        "terrace_drift_last_run_success",
        "1 if the last drift run observed every resource, else 0.",
        vec![(None, u8::from(times.success).to_string())],
    );
    family(
        "terrace_drift_last_run_timestamp_seconds",
        "When the last drift run started, in seconds since the Unix epoch.",
        vec![(None, seconds(times.started))],
    );
    if let Some(t) = times.last_success {
        family(
            LAST_SUCCESS_METRIC,
            "When the last successful drift run started, in seconds since the Unix epoch.",
            vec![(None, seconds(t))],
        );
    }
    family(
        "terrace_drift_last_run_duration_seconds",
        "How long the last drift run took, in seconds.",
        vec![(None, format!("{:.3}", times.duration))],
    );
    out
}

fn seconds(t: f64) -> String {
    format!("{t:.3}")
}

/// Reads the last successful run's timestamp back from a previous metrics file.
pub fn previous_last_success(text: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(LAST_SUCCESS_METRIC) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Label values escape backslash, double quote and newline (the exposition format).
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The version of the drift run's JSON document.
pub const DRIFT_JSON_VERSION: &str = "1.0";

/// Renders the report for a terminal: alerting drift first, then what is acknowledged,
/// then one summary line. `partial`: some resources could not be observed, so "no
/// drift" is never claimed outright.
pub fn render_drift_text(report: &DriftReport, color: bool, partial: bool) -> String {
    let mut out = String::new();
    if !report.drifted.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            crate::render::bold(
                "Objects changed outside terrace since the last apply (drift):",
                color
            )
        );
        for (i, d) in report.drifted.iter().enumerate() {
            out.push_str(&crate::render::drift_text(d, color));
            if let Some((_, rule)) = report.expired.iter().find(|(j, _)| *j == i) {
                let _ = writeln!(
                    out,
                    "    acknowledgement expired on {} ({DRIFT_IGNORE_FILE} line {}, `{}`: {})",
                    rule.expires.as_deref().unwrap_or_default(),
                    rule.line,
                    rule.pattern,
                    rule.reason
                );
            }
        }
        out.push('\n');
    }
    if !report.acknowledged.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            crate::render::bold(&format!("Acknowledged drift ({DRIFT_IGNORE_FILE}):"), color)
        );
        for a in &report.acknowledged {
            out.push_str(&crate::render::drift_text(&a.drift, color));
            let until = a
                .rule
                .expires
                .as_deref()
                .map(|e| format!(", until {e}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    acknowledged by line {} (`{}`{until}): {}",
                a.rule.line, a.rule.pattern, a.rule.reason
            );
        }
        out.push('\n');
    }
    let managed: usize = report.managed.values().sum();
    let objects = |n: usize| if n == 1 { "object" } else { "objects" };
    let acked = distinct(report.acknowledged.iter().map(|a| &a.drift));
    // A count of what was observed must not read as the whole picture.
    let unobserved = if partial {
        "; some objects could not be observed (see the errors above), so there may be more"
    } else {
        ""
    };
    let line = match (report.drifted.len(), acked) {
        (0, 0) if partial => "No drift among the objects observed; some could not be observed (see the errors above).".to_string(),
        (0, 0) => format!(
            "No drift: the {managed} managed {} match the state.",
            objects(managed)
        ),
        (0, a) => format!(
            "No unacknowledged drift: {a} acknowledged {} drifted{}.",
            objects(a),
            unobserved
        ),
        (n, a) => format!(
            "Drift: {n} {} changed outside terrace{}{}.",
            objects(n),
            if a > 0 { format!(", {a} acknowledged") } else { String::new() },
            unobserved
        ),
    };
    let _ = writeln!(out, "{}", crate::render::bold(&line, color));
    out
}

fn distinct<'a>(drift: impl Iterator<Item = &'a Drift>) -> usize {
    drift
        .map(|d| &d.address)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[derive(Serialize)]
struct JsonReport<'a> {
    format_version: &'static str,
    terrace_version: &'a str,
    /// True when something alerts (the exit code is 2).
    has_drift: bool,
    /// Every resource could be observed.
    complete: bool,
    resource_drift: Vec<JsonDrift<'a>>,
    acknowledged: Vec<JsonDrift<'a>>,
    managed: &'a BTreeMap<String, usize>,
    errors: &'a [crate::render::RunError],
    not_planned: &'a [terrace_provider::Address],
}

#[derive(Serialize)]
struct JsonDrift<'a> {
    address: &'a terrace_provider::Address,
    #[serde(rename = "type")]
    type_name: &'a str,
    #[serde(flatten)]
    kind: &'a DriftKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledgement: Option<&'a IgnoreRule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acknowledgement_expired: Option<bool>,
}

/// Renders the report as a versioned JSON document (values already redacted by
/// [`DriftReport::new`]).
pub fn render_drift_json(
    report: &DriftReport,
    partial: &crate::render::Partial,
    version: &str,
) -> String {
    let doc = JsonReport {
        format_version: DRIFT_JSON_VERSION,
        terrace_version: version,
        has_drift: report.alerts(),
        complete: partial.is_empty(),
        resource_drift: report
            .drifted
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let rule = report.expired.iter().find(|(j, _)| *j == i).map(|(_, r)| r);
                JsonDrift {
                    address: &d.address,
                    type_name: &d.type_name,
                    kind: &d.kind,
                    acknowledgement: rule,
                    acknowledgement_expired: rule.map(|_| true),
                }
            })
            .collect(),
        acknowledged: report
            .acknowledged
            .iter()
            .map(|a| JsonDrift {
                address: &a.drift.address,
                type_name: &a.drift.type_name,
                kind: &a.drift.kind,
                acknowledgement: Some(&a.rule),
                acknowledgement_expired: None,
            })
            .collect(),
        managed: &report.managed,
        errors: &partial.errors,
        not_planned: &partial.not_planned,
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("the report serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_runs() {
        assert!(glob("tenant.a[\"x\"].user", "tenant.a[\"x\"].user"));
        assert!(glob("tenant.a[*].user", "tenant.a[\"x\"].user"));
        assert!(glob(
            "*.password_status",
            "tenant.a[\"x\"].user.password_status"
        ));
        assert!(!glob("tenant.a", "tenant.ab"));
        assert!(!glob("a*b*c", "abx"));
    }

    #[test]
    fn ignore_lines_parse_and_fail_with_line_numbers() {
        let rules = parse_ignore(
            "# comment\n\nsql_user.x expires=2026-01-31 raised by the DBA\nhost.a.file  hand-edited\n",
        )
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].expires.as_deref(), Some("2026-01-31"));
        assert_eq!(rules[0].reason, "raised by the DBA");
        assert_eq!(rules[1].line, 4);
        let errors = parse_ignore("a.b\nc expires=2026-13-01 why\n").unwrap_err();
        assert_eq!(
            errors,
            [
                "line 1: \"a.b\" has no reason; write `PATTERN [expires=YYYY-MM-DD] REASON`",
                "line 2: expiry \"2026-13-01\" is not a date written YYYY-MM-DD"
            ]
        );
    }
}
