//! The machine-readable event stream of `apply --json` and `destroy --json`: one JSON
//! object per line on stdout, in the shape of Terraform's machine-readable UI (`-json`:
//! `@level`, `@message`, `@module`, `@timestamp`, `type`), so that CI can follow a long
//! apply as it happens. The schema is documented in `docs/json-apply.md`.
//!
//! Every string of every event is scrubbed of the secrets the command knows before it is
//! written (scrubbing the serialised line would miss a secret whose JSON escaping differs
//! from its raw form).

use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};
use terrace_plan::{Action, DriftKind, Plan};
use terrace_provider::{Address, Operation};

use crate::output::Redactor;

/// The version of the event shape (`ui` in the `version` event). A new event type or
/// key bumps the minor number; removing or changing one bumps the major number.
pub const UI_VERSION: &str = "1.0";

/// The value of every event's `@module`.
const MODULE: &str = "terrace.ui";

/// How severe an event is (`@level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Progress and results.
    Info,
    /// Something the reader should look at that does not fail the run.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// Writes events to stdout, one line each, flushed at once (a CI log shows each event
/// when it happens, not when a buffer fills).
pub struct Events {
    redactor: Mutex<Redactor>,
    /// Where lines go: stdout, or a buffer in tests.
    out: Mutex<Box<dyn std::io::Write + Send>>,
}

impl Events {
    /// A stream on stdout scrubbing the secrets `redactor` knows.
    pub fn new(redactor: Redactor) -> Self {
        Events::with_writer(redactor, Box::new(std::io::stdout()))
    }

    /// A stream into `out`.
    pub fn with_writer(redactor: Redactor, out: Box<dyn std::io::Write + Send>) -> Self {
        Events {
            redactor: Mutex::new(redactor),
            out: Mutex::new(out),
        }
    }

    /// Replaces the secrets to scrub (e.g. once generated passwords are known).
    pub fn set_redactor(&self, redactor: &Redactor) {
        if let Ok(mut r) = self.redactor.lock() {
            *r = redactor.clone();
        }
    }

    /// Writes one event of type `kind` with `fields` (an object) merged in.
    pub fn emit(&self, level: Level, kind: &str, message: &str, fields: Value) {
        let mut event = Map::new();
        event.insert("@level".into(), level.as_str().into());
        event.insert("@message".into(), message.into());
        event.insert("@module".into(), MODULE.into());
        event.insert("@timestamp".into(), timestamp(SystemTime::now()).into());
        if let Value::Object(more) = fields {
            event.extend(more);
        }
        event.insert("type".into(), kind.into());
        let mut event = Value::Object(event);
        if let Ok(r) = self.redactor.lock() {
            scrub(&mut event, &r);
        }
        let line = serde_json::to_string(&event).expect("events serialise");
        if let Ok(mut out) = self.out.lock() {
            // A closed stdout (the reader went away) must not fail the apply itself.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }

    /// The first event: which terrace, which event shape.
    pub fn version(&self, terrace_version: &str) {
        self.emit(
            Level::Info,
            "version",
            &format!("terrace {terrace_version}"),
            json!({"terrace": terrace_version, "ui": UI_VERSION}),
        );
    }

    /// A plain message (Terraform's `log`).
    pub fn log(&self, level: Level, message: &str) {
        self.emit(level, "log", message, json!({}));
    }

    /// A diagnostic about the configuration at `range` (file, line, column), like
    /// Terraform's `diagnostic.range.{filename, start}`.
    pub fn diagnostic_at(
        &self,
        level: Level,
        summary: &str,
        detail: &str,
        range: Option<(String, usize, usize)>,
    ) {
        self.diagnostic_with(level, summary, detail, |d| {
            if let Some((file, line, column)) = range {
                d["range"] = json!({"filename": file, "start": {"line": line, "column": column}});
            }
        });
    }

    /// A diagnostic about a resource, or about the run (`address` None).
    pub fn diagnostic(&self, level: Level, summary: &str, detail: &str, address: Option<&Address>) {
        self.diagnostic_with(level, summary, detail, |d| {
            if let Some(a) = address {
                d["address"] = a.as_str().into();
            }
        });
    }

    fn diagnostic_with(
        &self,
        level: Level,
        summary: &str,
        detail: &str,
        more: impl FnOnce(&mut Value),
    ) {
        let severity = if level == Level::Error {
            "error"
        } else {
            "warning"
        };
        let mut diagnostic = json!({"severity": severity, "summary": summary, "detail": detail});
        more(&mut diagnostic);
        let prefix = if level == Level::Error {
            "Error"
        } else {
            "Warning"
        };
        self.emit(
            level,
            "diagnostic",
            &format!("{prefix}: {summary}"),
            json!({ "diagnostic": diagnostic }),
        );
    }

    /// What the plan will do: one `resource_drift` per object changed outside terrace, one
    /// `planned_change` per change, then the plan's `change_summary`.
    pub fn plan(&self, plan: &Plan, operation: &str) {
        for d in &plan.drift {
            let (action, what) = match d.kind {
                DriftKind::Deleted => ("delete", "deleted"),
                DriftKind::Changed { .. } => ("update", "changed"),
            };
            self.emit(
                Level::Info,
                "resource_drift",
                &format!("{}: Drift detected ({what})", d.address),
                json!({"change": {"resource": resource(&d.address, &d.type_name, None), "action": action}}),
            );
        }
        for c in plan.actionable() {
            let action = action_name(c.action);
            let mut change = json!({
                "resource": resource(&c.address, &c.type_name, Some(&c.provider.0)),
                "action": action,
            });
            if c.action == Action::Replace {
                change["reason"] = "replace_because_cannot_update".into();
                change["replace_because"] = json!(c.replace_because);
            }
            self.emit(
                Level::Info,
                "planned_change",
                &format!("{}: Plan to {action}", c.address),
                json!({ "change": change }),
            );
        }
        let s = plan.summary();
        let message = if plan.is_empty() {
            "No changes.".to_string()
        } else {
            format!(
                "Plan: {} to add, {} to change, {} to destroy.",
                s.add, s.change, s.destroy
            )
        };
        self.change_summary(&message, s.add, s.change, s.destroy, operation);
    }

    /// Counts of a plan (`operation: "plan"`) or of what an apply or destroy did.
    pub fn change_summary(
        &self,
        message: &str,
        add: usize,
        change: usize,
        remove: usize,
        operation: &str,
    ) {
        self.emit(
            Level::Info,
            "change_summary",
            message,
            json!({"changes": {"add": add, "change": change, "import": 0, "remove": remove, "operation": operation}}),
        );
    }

    /// A step started.
    pub fn apply_start(&self, hook: &Hook<'_>) {
        self.emit(
            Level::Info,
            "apply_start",
            &format!("{}: {}...", hook.address, verb(hook.operation).0),
            json!({ "hook": hook.value(None) }),
        );
    }

    /// A step is still running after `elapsed`.
    pub fn apply_progress(&self, hook: &Hook<'_>, elapsed: Duration) {
        self.emit(
            Level::Info,
            "apply_progress",
            &format!(
                "{}: Still {}... [{}s elapsed]",
                hook.address,
                verb(hook.operation).0.to_lowercase(),
                elapsed.as_secs()
            ),
            json!({ "hook": hook.value(Some(elapsed)) }),
        );
    }

    /// A step succeeded after `elapsed`.
    pub fn apply_complete(&self, hook: &Hook<'_>, elapsed: Duration) {
        self.emit(
            Level::Info,
            "apply_complete",
            &format!(
                "{}: {} complete after {}s",
                hook.address,
                verb(hook.operation).1,
                elapsed.as_secs()
            ),
            json!({ "hook": hook.value(Some(elapsed)) }),
        );
    }

    /// A step failed after `elapsed` with `message` (followed by its diagnostic).
    pub fn apply_errored(&self, hook: &Hook<'_>, elapsed: Duration, message: &str) {
        self.emit(
            Level::Error,
            "apply_errored",
            &format!(
                "{}: {} errored after {}s",
                hook.address,
                verb(hook.operation).1,
                elapsed.as_secs()
            ),
            json!({ "hook": hook.value(Some(elapsed)) }),
        );
        self.diagnostic(Level::Error, message, "", Some(hook.address));
    }

    /// A step not started because something it depends on failed (a terrace extra).
    pub fn apply_skipped(&self, hook: &Hook<'_>) {
        self.emit(
            Level::Warn,
            "apply_skipped",
            &format!(
                "{}: {} skipped: it depends on a step that failed",
                hook.address,
                verb(hook.operation).1
            ),
            json!({ "hook": hook.value(None) }),
        );
    }

    /// The last event of a run (a terrace extra): how it ended.
    pub fn outcome(&self, result: Outcome, exit_code: u8, elapsed: Duration) {
        let (level, name, message) = match result {
            Outcome::Success => (Level::Info, "success", "The run succeeded."),
            Outcome::Failed => (Level::Error, "failed", "The run failed."),
            Outcome::Cancelled => (Level::Warn, "cancelled", "The run was cancelled."),
            Outcome::Error => (Level::Error, "error", "The run stopped on an error."),
        };
        self.emit(
            level,
            "outcome",
            message,
            json!({"outcome": {
                "result": name,
                "exit_code": exit_code,
                "elapsed_seconds": round_ms(elapsed),
            }}),
        );
    }
}

/// How a run ended, for [`Events::outcome`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything planned was done (or there was nothing to do).
    Success,
    /// Some step failed or some server could not be reached; what could be done is saved.
    Failed,
    /// Not confirmed.
    Cancelled,
    /// Stopped before applying anything, on an error (its `diagnostic` precedes).
    Error,
}

/// One step of an apply, as hook events name it.
pub struct Hook<'a> {
    /// The resource.
    pub address: &'a Address,
    /// Its type.
    pub type_name: &'a str,
    /// The provider instance doing the step.
    pub provider: &'a str,
    /// What the step does.
    pub operation: Operation,
}

impl Hook<'_> {
    fn value(&self, elapsed: Option<Duration>) -> Value {
        let action = match self.operation {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        };
        let mut hook = json!({
            "resource": resource(self.address, self.type_name, Some(self.provider)),
            "action": action,
        });
        if let Some(e) = elapsed {
            hook["elapsed_seconds"] = round_ms(e).into();
        }
        hook
    }
}

/// Seconds with millisecond precision.
fn round_ms(d: Duration) -> f64 {
    (d.as_millis() as f64) / 1000.0
}

/// Terraform's resource object, with the keys whose concepts terrace shares.
fn resource(address: &Address, type_name: &str, provider: Option<&str>) -> Value {
    let mut r = json!({"addr": address.as_str(), "resource_type": type_name});
    if let Some(p) = provider {
        r["provider"] = p.into();
    }
    r
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::NoOp => "noop",
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
    }
}

/// The progressive and past forms of a step's verb, as the text output uses them.
pub fn verb(op: Operation) -> (&'static str, &'static str) {
    match op {
        Operation::Create => ("Creating", "Creation"),
        Operation::Update => ("Modifying", "Modifications"),
        Operation::Delete => ("Destroying", "Destruction"),
    }
}

/// `t` as RFC 3339 in UTC with microseconds, e.g. `2026-12-02T00:15:23.123456Z`.
fn timestamp(t: SystemTime) -> String {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_micros()
    )
}

/// Replaces every known secret in every string of `v`.
fn scrub(v: &mut Value, r: &Redactor) {
    match v {
        Value::String(s) => *s = r.scrub(s),
        Value::Array(items) => items.iter_mut().for_each(|i| scrub(i, r)),
        Value::Object(map) => map.values_mut().for_each(|i| scrub(i, r)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_392_000_000_042);
        assert_eq!(timestamp(t), "2026-11-23T00:00:00.000042Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 3_661);
        assert_eq!(timestamp(leap), "2000-02-29T01:01:01.000000Z");
    }

    #[test]
    fn every_string_is_scrubbed_including_nested_ones() {
        let r = Redactor::new(["s3cr\"et-value".to_string()]);
        let mut v = json!({"a": "x s3cr\"et-value y", "b": [{"c": "s3cr\"et-value"}], "n": 1});
        scrub(&mut v, &r);
        let text = v.to_string();
        assert!(!text.contains("s3cr"), "{text}");
        assert_eq!(v["n"], 1);
    }
}
