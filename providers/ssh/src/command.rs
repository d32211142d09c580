//! `host_command`: a shell command run once its guards say it is needed.
//!
//! Observe reports the resource present when a guard is satisfied (`creates` exists,
//! or `unless` exits 0) and absent otherwise, so a plan shows "create" exactly when
//! applying would run the command. Without guards it runs on every apply. Commands and
//! guards travel as data inside the script on stdin and run from private temp files,
//! never as arguments. Deleting the resource runs nothing.

use terrace_provider::{Attrs, ObserveRequest, Observed, ProviderError, ProviderResult};

use crate::attrs::{opt_str, req_str};
use crate::probe::{tag, Probe, ProbeOutput};
use crate::schema::COMMAND;
use crate::script::{quote, run_user_script, run_user_script_at};

pub(crate) fn normalize(a: &mut Attrs) -> ProviderResult<()> {
    if req_str(COMMAND, a, "command")?.trim().is_empty() {
        return Err(ProviderError::Invalid(format!(
            "{COMMAND}: command is empty"
        )));
    }
    if let Some(c) = opt_str(COMMAND, a, "creates")? {
        if !c.starts_with('/') || c.contains(['\n', '\0']) {
            return Err(ProviderError::Invalid(format!(
                "{COMMAND}: creates {c:?} must be an absolute path"
            )));
        }
    }
    opt_str(COMMAND, a, "unless")?;
    Ok(())
}

/// Sh text setting `$sat` to 1 if a guard is satisfied; `unless` runs through `run`
/// (given the user's script, it returns sh text leaving its exit status in `$rc`).
fn guards_with(a: &Attrs, run: impl Fn(&str) -> String) -> ProviderResult<String> {
    let mut s = String::from("sat=0\n");
    if let Some(c) = opt_str(COMMAND, a, "creates")? {
        s.push_str(&format!("if [ -e {} ]; then sat=1; fi\n", quote(c)));
    }
    if let Some(u) = opt_str(COMMAND, a, "unless")? {
        s.push_str("if [ $sat -eq 0 ]; then\n");
        s.push_str(&run(u));
        s.push_str("if [ $rc -eq 0 ]; then sat=1; fi\nfi\n");
    }
    Ok(s)
}

/// Sh text setting `$sat` to 1 if a guard is satisfied.
fn guards(a: &Attrs) -> ProviderResult<String> {
    guards_with(a, |u| run_user_script(u, ">/dev/null 2>&1"))
}

/// Sh text for the `i`-th request's guards. Every `unless` of a probe runs from a file
/// in one private directory, made by the first (`dir_made` tells) and removed when the
/// probe ends, instead of a temp file made and removed per command: two processes
/// fewer per guard.
pub(crate) fn probe(p: &mut Probe, dir_made: &mut bool, i: usize, a: &Attrs) -> ProviderResult<()> {
    let text = guards_with(a, |u| {
        run_user_script_at(&format!("\"$ud/{i}\""), u, ">/dev/null 2>&1")
    })?;
    if opt_str(COMMAND, a, "unless")?.is_some() && !*dir_made {
        p.push(PROBE_DIR);
        *dir_made = true;
    }
    p.push(&text);
    p.push(&format!("echo \"{} guard $sat\"", tag(i)));
    Ok(())
}

/// The probe's private directory for guard scripts (0700, from `mktemp -d`).
const PROBE_DIR: &str = "ud=$(mktemp -d) || exit 125\ntrap 'rm -rf -- \"$ud\"' EXIT\n";

pub(crate) fn answer(
    out: &ProbeOutput,
    i: usize,
    req: &ObserveRequest,
) -> ProviderResult<Observed> {
    match out.get(&tag(i), "guard") {
        Some("1") => Ok(Observed::Present(Attrs::new())),
        Some(_) => Ok(Observed::Absent),
        None => Err(ProviderError::Operation {
            address: req.address.clone(),
            message: "the probe did not report the command's guards".into(),
        }),
    }
}

/// Exit status meaning "a guard is satisfied; nothing ran".
pub(crate) const SKIPPED: i32 = 41;

/// Checks the guards again (the host may have changed since the plan) and runs the
/// command if they are not satisfied.
pub(crate) fn apply_script(a: &Attrs) -> ProviderResult<String> {
    let command = req_str(COMMAND, a, "command")?;
    let mut s = guards(a)?;
    s.push_str(&format!("if [ $sat -eq 1 ]; then exit {SKIPPED}; fi\n"));
    s.push_str(&run_user_script(command, ""));
    // A command that succeeded but left its guard unmet would run on every apply, and
    // every plan would call it "deleted outside terrace": say so now.
    if has_guard(a)? {
        s.push_str("if [ $rc -eq 0 ]; then\nran=$rc\n");
        s.push_str(&guards(a)?);
        s.push_str(&format!(
            "if [ $sat -eq 0 ]; then exit {STILL_UNMET}; fi\nrc=$ran\nfi\n"
        ));
    }
    s.push_str("exit $rc\n");
    Ok(s)
}

/// Exit status meaning "the command succeeded, but its guard is still not satisfied".
pub(crate) const STILL_UNMET: i32 = 42;

fn has_guard(a: &Attrs) -> ProviderResult<bool> {
    Ok(opt_str(COMMAND, a, "creates")?.is_some() || opt_str(COMMAND, a, "unless")?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_and_guards_are_data_not_arguments() {
        let a: Attrs = serde_json::from_value(json!({
            "command": "echo s3cret-token > /tmp/x",
            "unless": "grep -q s3cret-token /tmp/x",
            "creates": "/tmp/x"
        }))
        .unwrap();
        let s = apply_script(&a).unwrap();
        assert!(!s.contains("s3cret"), "{s}");
        assert!(s.contains("if [ -e '/tmp/x' ]; then sat=1; fi"), "{s}");
        assert!(s.contains("sh \"$uf\" </dev/null"), "{s}");
        // The probe's guards too, from the probe's private directory.
        let mut p = Probe::default();
        let mut dir_made = false;
        probe(&mut p, &mut dir_made, 3, &a).unwrap();
        let s = p.finish();
        assert!(!s.contains("s3cret"), "{s}");
        assert!(s.contains("ud=$(mktemp -d) || exit 125"), "{s}");
        assert!(s.contains("sh \"$ud/3\" </dev/null"), "{s}");
    }
}
