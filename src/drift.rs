//! `terrace drift`: a read-only run that reports what changed outside terrace.
//!
//! It loads the configuration and the state, observes the live systems and plans like
//! `plan`, then reports only the plan's drift, split by the ignore file into what alerts
//! and what is acknowledged. It takes no lock, writes no journal and no state, and asks
//! no provider to change anything: the only file it may write is the metrics file.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use terrace_plan::drift::{
    parse_ignore, previous_last_success, render_drift_json, render_drift_text, render_metrics,
    DriftReport, IgnoreRule, RunTimes, DRIFT_IGNORE_FILE,
};

use terrace_plan::DriftKind;

use crate::cli::{ApplyArgs, Cli, VarArgs};
use crate::commands::{confirm, partial_of, refuse_while_locked};
use crate::session::{record_lineage, Goal, Session};

/// Exit code when something drifted (and is not acknowledged).
const EXIT_DRIFT: u8 = 2;

/// The flags of `terrace drift`.
pub struct DriftOptions {
    /// Print JSON instead of text.
    pub json: bool,
    /// Where to write the Prometheus textfile.
    pub metrics_file: Option<PathBuf>,
    /// The ignore file, when not the project's default one.
    pub ignore_file: Option<PathBuf>,
    /// The `project` label.
    pub project: Option<String>,
}

/// Runs `terrace drift`. The metrics file is written whatever happens, so a run that
/// fails is visible as one (`terrace_drift_last_run_success 0`).
pub async fn drift_cmd(
    cli: &Cli,
    vars: &VarArgs,
    opts: &DriftOptions,
    version: &str,
) -> miette::Result<ExitCode> {
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let clock = Instant::now();
    let result = run(cli, vars, opts, version, started).await;
    if let Some(path) = &opts.metrics_file {
        let (report, success) = match &result {
            Ok((report, complete)) => (Some(report), *complete),
            Err(_) => (None, false),
        };
        let previous = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| previous_last_success(&t));
        let times = RunTimes {
            started,
            duration: clock.elapsed().as_secs_f64(),
            last_success: if success { Some(started) } else { previous },
            success,
        };
        let project = opts.project.clone().unwrap_or_else(|| project_name(cli));
        let text = render_metrics(&project, report, times);
        write_replacing(path, text.as_bytes()).map_err(|e| {
            miette::miette!("cannot write the metrics file {}: {e}", path.display())
        })?;
    }
    let (report, complete) = result?;
    Ok(if !complete {
        ExitCode::FAILURE
    } else if report.alerts() {
        ExitCode::from(EXIT_DRIFT)
    } else {
        ExitCode::SUCCESS
    })
}

/// The report, and whether every resource could be observed.
async fn run(
    cli: &Cli,
    vars: &VarArgs,
    opts: &DriftOptions,
    version: &str,
    started: f64,
) -> miette::Result<(DriftReport, bool)> {
    let rules = read_rules(cli, opts)?;
    let mut s = Session::load(cli, vars)?;
    let result = async {
        refuse_while_locked(&s, "drift")?;
        let state = s.read_state()?;
        let planned = s.plan(&state, Goal::Refresh).await?;
        let mut managed: BTreeMap<String, usize> = BTreeMap::new();
        for r in &state.resources {
            *managed.entry(r.type_name.clone()).or_default() += 1;
        }
        let report = DriftReport::new(&planned.plan, &rules, managed, &utc_date(started));
        let partial = partial_of(&s, &state, &planned);
        if opts.json {
            print!("{}", render_drift_json(&report, &partial, version));
        } else {
            print!(
                "{}",
                render_drift_text(&report, s.color, !partial.is_empty())
            );
        }
        let incomplete = planned.report_unreachable();
        Ok((report, !incomplete))
    }
    .await;
    s.providers.close().await;
    result
}

/// Runs `terrace apply --refresh-only`: records the live values of drifted attributes
/// in the state, and forgets objects deleted outside terrace, after showing what it
/// will record and asking (unless `--auto-approve`). No provider is asked to change
/// anything. The ignore file does not apply: accepting is explicit.
pub async fn accept_cmd(cli: &Cli, vars: &VarArgs, args: &ApplyArgs) -> miette::Result<ExitCode> {
    let mut s = Session::load(cli, vars)?;
    let result = accept(&mut s, args).await;
    s.providers.close().await;
    result
}

async fn accept(s: &mut Session, args: &ApplyArgs) -> miette::Result<ExitCode> {
    let mut lock = s
        .backend
        .lock("apply --refresh-only")
        .map_err(miette::Report::new)?;
    let mut state = s.read_state_locked(&mut lock)?;
    let planned = s.plan(&state, Goal::Refresh).await?;
    let drift = &planned.plan.drift;
    let mut managed: BTreeMap<String, usize> = BTreeMap::new();
    for r in &state.resources {
        *managed.entry(r.type_name.clone()).or_default() += 1;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let report = DriftReport::new(&planned.plan, &[], managed, &utc_date(now));
    print!("{}", render_drift_text(&report, s.color, false));
    let incomplete = planned.report_unreachable();
    let code = |incomplete: bool| {
        if incomplete {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    };
    if drift.is_empty() {
        println!("\nNothing to accept: the state already records what is live.");
        return Ok(code(incomplete));
    }
    println!(
        "\napply --refresh-only records these live values in the state (objects deleted \
         outside terrace leave it); no server is changed."
    );
    if !args.auto_approve && !confirm(false)? {
        println!("Apply cancelled.");
        return Ok(ExitCode::FAILURE);
    }
    for d in drift {
        match &d.kind {
            DriftKind::Deleted => {
                state.remove(&d.address);
            }
            DriftKind::Changed { attrs } => {
                let Some(r) = state.resources.iter_mut().find(|r| r.address == d.address) else {
                    continue;
                };
                for a in attrs {
                    match &a.after {
                        Some(v) => r.attributes.insert(a.name.clone(), v.clone()),
                        None => r.attributes.remove(&a.name),
                    };
                }
            }
        }
    }
    lock.write(&mut state).map_err(miette::Report::new)?;
    record_lineage(&s.dir, &s.backend, &state)?;
    println!(
        "\nAccepted the drift of {} object(s) into the state; no server was changed.",
        drift.len()
    );
    Ok(code(incomplete))
}

/// The ignore rules: `--ignore-file` (which must exist), else the project's
/// `terrace.driftignore` if there is one.
fn read_rules(cli: &Cli, opts: &DriftOptions) -> miette::Result<Vec<IgnoreRule>> {
    let (path, required) = match &opts.ignore_file {
        Some(p) => (p.clone(), true),
        None => (cli.dir.join(DRIFT_IGNORE_FILE), false),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Vec::new()),
        Err(e) => miette::bail!("cannot read the ignore file {}: {e}", path.display()),
    };
    parse_ignore(&text).map_err(|errors| {
        miette::miette!(
            help = "each rule is `PATTERN [expires=YYYY-MM-DD] REASON`, e.g. `tenant.shop[\"a\"].user.connection_limit expires=2026-12-31 raised for the migration`",
            "invalid ignore file {}:\n  {}",
            path.display(),
            errors.join("\n  ")
        )
    })
}

/// The project directory's name.
fn project_name(cli: &Cli) -> String {
    std::fs::canonicalize(&cli.dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "terrace".to_string())
}

/// `YYYY-MM-DD` (UTC) of a Unix time, for expiry dates (days-to-civil, Howard Hinnant's
/// algorithm; no calendar crate needed for this one conversion).
pub fn utc_date(unix: f64) -> String {
    let days = (unix / 86_400.0).floor() as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Writes `path` atomically: a temporary file beside it, flushed, then renamed over it,
/// so the textfile collector never reads half a file. Metrics hold no secrets, so the
/// file keeps the umask's mode (the collector may run as another user).
fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot: the collector reads only `*.prom`, never the temporary file.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::utc_date;

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0.0), "1970-01-01");
        assert_eq!(utc_date(951_782_400.0), "2000-02-29");
        assert_eq!(utc_date(1_798_761_599.0), "2026-12-31");
    }
}
