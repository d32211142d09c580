//! One function per subcommand. Each returns the process exit code.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use terrace_plan::render::{
    render_json_run, render_markdown, render_text, MarkdownOptions, Partial, RunError, TextOptions,
    DEFAULT_PART_CHARS,
};
use terrace_provider::Address;
use terrace_state::{ForceUnlocked, ResourceState, State};

use crate::apply::{Executor, PROGRESS_EVERY};
use crate::capacity;
use crate::cli::{ApplyArgs, Cli, Command, RenderArgs, StateCommand, VarArgs};
use crate::events::{Events, Level, Outcome};
use crate::planfile::{secrets_digest, PlanKey, SavedPlan, PLANFILE_VERSION};
use crate::session::{
    backend, check_lineage, load_state, load_state_locked, record_lineage, Goal, Planned, Session,
};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Exit code for "the plan has changes" with `--detailed-exitcode`.
const EXIT_CHANGES: u8 = 2;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> miette::Result<ExitCode> {
    match &cli.command {
        Command::Validate { vars } => validate(&cli, vars),
        Command::Plan {
            vars,
            out,
            detailed_exitcode,
            json,
            render,
            focus,
        } => {
            let mut s = Session::load(&cli, vars)?;
            s.focus = focus.focus();
            let format = Format::of(&cli, *json, render);
            let result = plan_cmd(&mut s, out.as_deref(), *detailed_exitcode, &format).await;
            s.providers.close().await;
            result
        }
        Command::Drift {
            vars,
            json,
            metrics_file,
            ignore_file,
            project,
        } => {
            let opts = crate::drift::DriftOptions {
                json: *json,
                metrics_file: metrics_file.clone(),
                ignore_file: ignore_file.clone(),
                project: project.clone(),
            };
            crate::drift::drift_cmd(&cli, vars, &opts, VERSION).await
        }
        Command::Show {
            plan_file,
            json,
            render,
        } => show_cmd(plan_file, &Format::of(&cli, *json, render)),
        Command::Apply {
            refresh_only: true,
            focus,
            ..
        } if !focus.focus().is_empty() => {
            miette::bail!("--target and --replace do not apply to --refresh-only")
        }
        Command::Apply {
            refresh_only: true,
            apply,
            ..
        } if apply.json => {
            miette::bail!("--json is not supported with --refresh-only yet")
        }
        Command::Apply {
            refresh_only: true,
            vars,
            apply,
            ..
        } => crate::drift::accept_cmd(&cli, vars, apply).await,
        Command::Apply {
            plan_file,
            vars,
            apply,
            focus,
            ..
        } => {
            if plan_file.is_some() && !focus.focus().is_empty() {
                miette::bail!(
                    help = "give --target and --replace to `terrace plan --out`; the saved plan records them",
                    "--target and --replace cannot be given with a saved plan"
                );
            }
            let goal = Goal::Converge;
            apply_cmd(&cli, vars, apply, plan_file.as_deref(), goal, focus.focus()).await
        }
        Command::Destroy {
            vars,
            apply,
            include_services,
        } => {
            let goal = Goal::Destroy {
                include_services: *include_services,
            };
            apply_cmd(&cli, vars, apply, None, goal, Default::default()).await
        }
        Command::Import { address, id, vars } => import(&cli, vars, address, id).await,
        Command::State { command } => state_cmd(&cli, command),
        Command::ForceUnlock { lock_id, force } => force_unlock(&cli, lock_id, *force),
        Command::Instance { command } => crate::expiry::instance_cmd(&cli, command),
        Command::Graph { vars, format } => crate::extra::graph(&cli, vars, *format),
        Command::Output {
            name,
            json,
            raw,
            vars,
        } => crate::extra::output(&cli, vars, name.as_deref(), *json, *raw),
        Command::Fmt { check, diff } => crate::extra::fmt(&cli, *check, *diff),
        Command::Version { json } => crate::extra::version(*json),
        Command::Completions { shell } => crate::extra::completions(*shell),
    }
}

async fn plan_cmd(
    s: &mut Session,
    out: Option<&std::path::Path>,
    detailed_exitcode: bool,
    format: &Format,
) -> miette::Result<ExitCode> {
    refuse_while_locked(s, "plan")?;
    let state = s.read_state()?;
    let planned = s.plan(&state, Goal::Converge).await?;
    let plan = &planned.plan;
    let json = !format.is_text();
    if format.is_text() {
        print!("{}", plan_text(s, &planned, false));
    } else {
        format.emit(plan, &partial_of(s, &state, &planned), VERSION, None)?;
    }
    warn_targeted(s);
    check_capacity(s, plan, json).await?;
    // A partial plan is shown, but neither saved nor reported as success.
    if planned.report_unreachable() {
        return Ok(ExitCode::FAILURE);
    }
    // Nor one that conflicts block: apply would refuse it, and CI must see a failure,
    // not "changes present".
    if !plan.conflicts.is_empty() {
        eprintln!(
            "error: {} conflict(s) block this plan; apply would refuse it",
            plan.conflicts.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    if let Some(path) = out {
        let (lineage, serial) = state_ref(s, &state);
        let key = PlanKey::find(&s.backend, &s.dir, lineage.as_deref(), true)?
            .expect("created when missing");
        SavedPlan {
            secrets_digest: secrets_digest(plan, key.bytes()),
            plan_key: Some(key.id()),
            plan_key_from: Some(key.origin.clone()),
            project: Some(format.project.clone()),
            format_version: PLANFILE_VERSION,
            terrace_version: VERSION.to_string(),
            lineage,
            serial,
            focus: s.focus.clone(),
            plan: plan.redacted(),
        }
        .write(path)?;
        if !json {
            println!(
                "\nSaved the plan to {}. Apply exactly this plan with: terrace apply {}",
                path.display(),
                path.display()
            );
            if key.is_local() && s.backend.local_path().is_none() {
                println!(
                    "Its key is this checkout's own: to apply it from another checkout (CI), \
                     set {} in both.",
                    crate::planfile::PLAN_KEY_VAR
                );
            }
        }
    }
    Ok(if detailed_exitcode && !plan.is_empty() {
        ExitCode::from(EXIT_CHANGES)
    } else {
        ExitCode::SUCCESS
    })
}

/// Refuses to run `what` while another command holds the state lock: while an apply
/// runs, the live systems are half-way, and its in-flight objects would show as changes
/// (or drift) and read like a broken server.
pub(crate) fn refuse_while_locked(s: &Session, what: &str) -> miette::Result<()> {
    // With --lock-timeout, wait for the holder to finish first.
    if let Some(holder) = s
        .backend
        .lock_holder_waiting()
        .map_err(miette::Report::new)?
    {
        let who = match holder {
            Some(i) => format!(
                "{} is running (pid {}, {}, since {})",
                i.operation,
                i.pid,
                i.who,
                i.since.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            None => "another process holds the state lock".to_string(),
        };
        miette::bail!(
            help = format!("run {what} again once it has finished"),
            "cannot {what} now: {who}; the live systems are changing under it, so its work in flight would show as changes"
        );
    }
    Ok(())
}

/// How `plan` and `show` print a plan.
struct Format {
    kind: Kind,
    /// `--project`, else the project directory's name.
    project: String,
    /// The name came from `--project`: it wins over the one a saved plan records.
    explicit: bool,
}

enum Kind {
    /// Text for a terminal.
    Text { color: bool },
    /// The versioned JSON document.
    Json,
    /// Markdown parts for a pull-request comment, on stdout or as files in a directory.
    Markdown { dir: Option<std::path::PathBuf> },
}

impl Format {
    fn of(cli: &Cli, json: bool, render: &RenderArgs) -> Format {
        let kind = if json {
            Kind::Json
        } else if render.markdown() {
            Kind::Markdown {
                dir: render.markdown_dir.clone(),
            }
        } else {
            Kind::Text {
                color: crate::output::use_color(cli.no_color),
            }
        };
        let dir_name = || {
            std::fs::canonicalize(&cli.dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "terrace".to_string())
        };
        Format {
            kind,
            explicit: render.project.is_some(),
            project: render.project.clone().unwrap_or_else(dir_name),
        }
    }

    /// True for text on a terminal.
    fn is_text(&self) -> bool {
        matches!(self.kind, Kind::Text { .. })
    }

    /// Prints (or writes) `plan`; `recorded` is the project name a saved plan carries.
    fn emit(
        &self,
        plan: &terrace_plan::Plan,
        partial: &Partial,
        version: &str,
        recorded: Option<&str>,
    ) -> miette::Result<()> {
        match &self.kind {
            Kind::Text { color } => {
                let opts = TextOptions {
                    color: *color,
                    partial: !partial.is_empty(),
                    ..TextOptions::default()
                };
                print!("{}", render_text(plan, opts));
            }
            Kind::Json => {
                let doc = render_json_run(plan, version, partial);
                println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
            }
            Kind::Markdown { dir } => {
                let project = match recorded {
                    Some(r) if !self.explicit => r,
                    _ => &self.project,
                };
                let opts = MarkdownOptions {
                    project,
                    partial,
                    part_chars: DEFAULT_PART_CHARS,
                };
                let parts = render_markdown(plan, &opts);
                match dir {
                    Some(dir) => write_parts(dir, &parts)?,
                    None => println!("{}", parts.join("\n\n")),
                }
            }
        }
        Ok(())
    }
}

/// Writes markdown parts as DIR/part-001.md, ..., removing older parts first so that a
/// bot never posts a stale one.
fn write_parts(dir: &std::path::Path, parts: &[String]) -> miette::Result<()> {
    let fail = |e: std::io::Error| miette::miette!("cannot write to {}: {e}", dir.display());
    std::fs::create_dir_all(dir).map_err(fail)?;
    for old in list_dir(dir) {
        let name = old.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("part-") && name.ends_with(".md") {
            std::fs::remove_file(&old).map_err(fail)?;
        }
    }
    for (i, part) in parts.iter().enumerate() {
        let path = dir.join(format!("part-{:03}.md", i + 1));
        std::fs::write(&path, format!("{part}\n")).map_err(fail)?;
    }
    eprintln!(
        "Wrote {} markdown part(s) to {}.",
        parts.len(),
        dir.display()
    );
    Ok(())
}

/// `terrace show PLANFILE`: the saved plan alone, so it renders the same anywhere.
fn show_cmd(path: &std::path::Path, format: &Format) -> miette::Result<ExitCode> {
    let saved = SavedPlan::read(path)?;
    // A partial plan is never saved, so a saved plan is complete.
    format.emit(
        &saved.plan,
        &Partial::default(),
        &saved.terrace_version,
        saved.project.as_deref(),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What the run could not plan, messages scrubbed of every known secret.
pub(crate) fn partial_of(s: &Session, state: &State, planned: &Planned) -> Partial {
    let provider_of = |address: &Address| {
        let desired = s.project.resources.iter().find(|r| &r.address == address);
        desired
            .map(|r| r.provider.clone())
            .or_else(|| state.get(address).map(|r| r.provider.clone()))
            .unwrap_or_else(|| terrace_provider::ProviderKey(String::new()))
    };
    let whole = planned
        .unreachable
        .iter()
        .map(|(provider, message)| RunError {
            provider: provider.clone(),
            address: None,
            message: s.redactor.scrub(message),
        });
    let single = planned.failed.iter().map(|(address, message)| RunError {
        provider: provider_of(address),
        address: Some(address.clone()),
        message: s.redactor.scrub(message),
    });
    Partial {
        errors: whole.chain(single).collect(),
        not_planned: planned.left_out.clone(),
    }
}

/// The plan as text, never claiming that everything matches when something was left out.
fn plan_text(s: &Session, planned: &Planned, destroy: bool) -> String {
    let opts = TextOptions {
        color: s.color,
        partial: !planned.left_out.is_empty(),
        destroy,
    };
    render_text(&planned.plan, opts)
}

/// Prints how full each host will be (unless `quiet`) and refuses an over-full plan.
async fn check_capacity(s: &Session, plan: &terrace_plan::Plan, quiet: bool) -> miette::Result<()> {
    let usage = capacity::usage(&s.providers, &s.project, plan).await;
    if !quiet {
        print!("{}", capacity::render(&usage));
    }
    capacity::check(&usage)
}

fn validate(cli: &Cli, vars: &VarArgs) -> miette::Result<ExitCode> {
    // Like `terraform validate`: a lint job needs no secrets, so a required variable
    // without a value is checked with a placeholder of its type.
    let mut inputs = crate::session::var_inputs(vars)?;
    inputs.placeholders = true;
    let s = Session::load_inputs(cli, &inputs)?;
    s.graph()?;
    println!(
        "The configuration is valid: {} resources across {} services.",
        s.project.resources.len(),
        s.project.services.len()
    );
    if !s.project.placeholders.is_empty() {
        println!(
            "Variables without a value were checked with a placeholder of their type: {}.",
            s.project.placeholders.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The lineage and serial a saved plan refers to: None when there is no state file yet.
fn state_ref(s: &Session, state: &State) -> (Option<String>, Option<u64>) {
    if s.backend.exists().unwrap_or(false) {
        (Some(state.lineage.clone()), Some(state.serial))
    } else {
        (None, None)
    }
}

async fn apply_cmd(
    cli: &Cli,
    vars: &VarArgs,
    args: &ApplyArgs,
    plan_file: Option<&std::path::Path>,
    goal: Goal,
    focus: terrace_plan::Focus,
) -> miette::Result<ExitCode> {
    let began = std::time::Instant::now();
    let events = args.json.then(|| Events::new(Default::default()));
    if let Some(e) = &events {
        if plan_file.is_none() && !args.auto_approve {
            miette::bail!(
                help = "review the plan first (`terrace plan`, or `plan --out FILE` and `apply FILE`)",
                "--json needs --auto-approve or a saved plan: nobody can answer a question in the middle of a JSON stream"
            );
        }
        e.version(VERSION);
    }
    let saved = plan_file.map(SavedPlan::read).transpose()?;
    let mut s = Session::load(cli, vars)?;
    if let Some(e) = &events {
        e.set_redactor(&s.redactor);
    }
    s.focus = match &saved {
        Some(saved) => saved.focus.clone(),
        None => focus,
    };
    let result = apply_session(&mut s, args, saved.as_ref(), goal, events.as_ref()).await;
    s.providers.close().await;
    let (code, outcome) = result?;
    if let Some(e) = &events {
        e.set_redactor(&s.redactor);
        e.outcome(outcome, code, began.elapsed());
    }
    Ok(ExitCode::from(code))
}

/// Reports an error that ended `apply --json` or `destroy --json` as events (stdout
/// carries the stream; the readable report still goes to stderr).
pub(crate) fn report_json_error(report: &miette::Report, elapsed: std::time::Duration) {
    let redactor = crate::output::global_redactor();
    let events = Events::new(redactor);
    // A report that gathers several errors (the configuration's) is one diagnostic per
    // error, as Terraform reports them.
    let related: Vec<&dyn miette::Diagnostic> = report.related().into_iter().flatten().collect();
    let all: Vec<&dyn miette::Diagnostic> = if related.is_empty() {
        vec![report.as_ref()]
    } else {
        related
    };
    for d in all {
        let detail = d.help().map(|h| h.to_string()).unwrap_or_default();
        events.diagnostic_at(Level::Error, &d.to_string(), &detail, where_is(d));
    }
    events.outcome(Outcome::Error, 1, elapsed);
}

/// Where a diagnostic's first label points: file, line and column (1-based).
fn where_is(d: &dyn miette::Diagnostic) -> Option<(String, usize, usize)> {
    let label = d.labels()?.next()?;
    let contents = d.source_code()?.read_span(label.inner(), 0, 0).ok()?;
    Some((
        contents.name()?.to_string(),
        contents.line() + 1,
        contents.column() + 1,
    ))
}

/// Prints a message as text, or as a `log` event.
fn note(events: Option<&Events>, message: &str) {
    match events {
        Some(e) => e.log(Level::Info, message),
        None => println!("{message}"),
    }
}

/// [`Planned::report_unreachable`], also as diagnostics in the event stream.
fn report_unreachable(planned: &Planned, events: Option<&Events>) -> bool {
    if let Some(e) = events {
        for (key, reason) in &planned.unreachable {
            let summary = format!("{key} could not be reached, its resources were not planned");
            e.diagnostic(Level::Error, &summary, reason, None);
        }
        for (address, reason) in &planned.failed {
            let summary = format!("{address} could not be observed, it was not planned");
            e.diagnostic(Level::Error, &summary, reason, Some(address));
        }
    }
    planned.report_unreachable()
}

/// Runs an apply or destroy; returns the exit code and how the run ended.
async fn apply_session(
    s: &mut Session,
    args: &ApplyArgs,
    saved: Option<&SavedPlan>,
    goal: Goal,
    events: Option<&Events>,
) -> miette::Result<(u8, Outcome)> {
    let failure = (1, Outcome::Failed);
    let destroy = goal != Goal::Converge;
    let operation = if destroy { "destroy" } else { "apply" };
    let mut lock = s.backend.lock(operation).map_err(miette::Report::new)?;
    let mut state = s.read_state_locked(&mut lock)?;

    if let Some(saved) = saved {
        if (saved.lineage.clone(), saved.serial) != state_ref(s, &state) {
            miette::bail!(
                help = "run `terrace plan --out FILE` again and review the new plan",
                "the saved plan is stale: the state changed since it was made"
            );
        }
        // Before planning: a plan whose key is not here can never be checked.
        saved.check_key(
            PlanKey::find(&s.backend, &s.dir, saved.lineage.as_deref(), false)?.as_ref(),
        )?;
    }
    let planned = s.plan(&state, goal).await?;
    let plan = &planned.plan;
    let text = plan_text(s, &planned, destroy);
    if let Some(saved) = saved {
        let key = PlanKey::find(&s.backend, &s.dir, saved.lineage.as_deref(), false)?;
        let key = key.as_ref().map(PlanKey::bytes).unwrap_or_default();
        if !saved.matches(plan, key) {
            if events.is_none() {
                print!("{text}");
            }
            miette::bail!(
                help = "run `terrace plan --out FILE` again and review the new plan",
                "the saved plan is stale: the configuration or the live systems changed since it was made (the current plan is shown above)"
            );
        }
    }
    match events {
        Some(e) => e.plan(plan, "plan"),
        None => print!("{text}"),
    }
    warn_targeted(s);
    check_capacity(s, plan, events.is_some()).await?;
    if planned.kept > 0 {
        note(events, &format!(
            "Shared services are kept: {} resource(s) stay (pass --include-services to destroy them too).",
            planned.kept
        ));
    }
    if let Some(e) = events {
        for c in &plan.conflicts {
            let detail = c.hint.clone().unwrap_or_else(|| {
                format!(
                    "import it: terrace import '{}' '{}'",
                    c.address, c.import_id
                )
            });
            e.diagnostic(Level::Error, &c.message, &detail, Some(&c.address));
        }
    }
    if !plan.conflicts.is_empty() {
        // Conflicts with their own hint (a port another container holds) are not about
        // importing anything.
        let unmanaged = plan.conflicts.iter().filter(|c| c.hint.is_none()).count();
        let others = plan.conflicts.len() - unmanaged;
        if others == 0 {
            miette::bail!(
                help = "import each object with the command shown, or remove it from the configuration",
                "refusing to apply: {unmanaged} object(s) exist but are not managed by terrace"
            );
        }
        miette::bail!(
            help = "resolve each conflict as its hint above says, then plan again",
            "refusing to apply: {} conflict(s) block this plan; nothing was changed",
            plan.conflicts.len()
        );
    }
    // When each instance with a ttl was first created: saved with the journal's first
    // write, before anything is created.
    let recorded = crate::expiry::record_creation(&mut state, &s.project, plan, s.clock, destroy);
    // Where each placed tenant runs, likewise before anything is created.
    let recorded = crate::placement::record(&mut state, &s.project, plan, destroy) || recorded;
    if plan.is_empty() {
        if recorded {
            lock.write(&mut state).map_err(miette::Report::new)?;
        }
        // Objects a killed apply created and that are as desired: recorded as managed.
        let adopted = plan
            .changes
            .iter()
            .filter(|c| state.get(&c.address).is_some_and(|r| r.pending))
            .count();
        if adopted > 0 {
            let executor = Executor {
                providers: &s.providers,
                parallelism: usize::from(args.parallelism),
                redactor: &s.redactor,
                show_bar: false,
                events: None,
                progress_every: PROGRESS_EVERY,
            };
            executor.run(plan, &mut state, &mut lock).await?;
            note(
                events,
                &format!(
                    "Recorded {adopted} object(s) that an interrupted apply had created as managed."
                ),
            );
        }
        if let Some(e) = events {
            e.change_summary(
                &format!(
                    "{} complete! Resources: 0 added, 0 changed, 0 destroyed.",
                    capitalized(operation)
                ),
                0,
                0,
                0,
                operation,
            );
        }
        return Ok(if report_unreachable(&planned, events) {
            failure
        } else {
            (0, Outcome::Success)
        });
    }
    if saved.is_none() && !args.auto_approve && !confirm(destroy)? {
        println!("Apply cancelled.");
        return Ok((1, Outcome::Cancelled));
    }

    if events.is_none() {
        println!();
    }
    if !plan.moved.is_empty() {
        // The new addresses first: every journal record of this apply uses them.
        lock.write(&mut state).map_err(miette::Report::new)?;
        note(
            events,
            &format!("Moved {} object(s) in the state.", plan.moved.len()),
        );
    }
    let executor = Executor {
        providers: &s.providers,
        parallelism: usize::from(args.parallelism),
        redactor: &s.redactor,
        show_bar: std::io::stderr().is_terminal(),
        events,
        progress_every: PROGRESS_EVERY,
    };
    let dumps_before = list_dir(&s.backups);
    let began = std::time::Instant::now();
    let report = executor.run(plan, &mut state, &mut lock).await?;
    let took = began.elapsed().as_secs_f64();
    record_lineage(&s.dir, &s.backend, &state)?;
    for dump in list_dir(&s.backups).difference(&dumps_before) {
        // Volume copies are tar archives; database dumps are SQL.
        if dump.extension().is_some_and(|e| e == "tar") {
            note(
                events,
                &format!("Copied before destroying: {}", dump.display()),
            );
        } else {
            note(
                events,
                &format!("Dumped before dropping: {}", dump.display()),
            );
        }
    }
    // The cleanup job's account of what expired and what it removed.
    print!("{}", crate::expiry::report(plan, &state));
    s.learn_secrets(&state);
    if let Some(e) = events {
        e.set_redactor(&s.redactor);
        let message = if report.ok() {
            format!(
                "{} complete! Resources: {} added, {} changed, {} destroyed.",
                capitalized(operation),
                report.added,
                report.changed,
                report.destroyed
            )
        } else {
            format!(
                "{} failed: {} step(s) failed, {} skipped. Done so far (saved in the state): {} added, {} changed, {} destroyed.",
                capitalized(operation),
                report.failed.len(),
                report.skipped.len(),
                report.added,
                report.changed,
                report.destroyed
            )
        };
        e.change_summary(
            &message,
            report.added,
            report.changed,
            report.destroyed,
            operation,
        );
        let unreachable = report_unreachable(&planned, events);
        return Ok(if report.ok() && !unreachable {
            (0, Outcome::Success)
        } else {
            failure
        });
    }
    println!();
    if report.ok() {
        if destroy {
            println!(
                "Destroy complete! Resources: {} destroyed. Took {took:.1}s.",
                report.destroyed
            );
        } else {
            println!(
                "Apply complete! Resources: {} added, {} changed, {} destroyed. Took {took:.1}s.",
                report.added, report.changed, report.destroyed
            );
        }
        // What was reachable is applied and saved; the rest is an error.
        Ok(if planned.report_unreachable() {
            failure
        } else {
            (0, Outcome::Success)
        })
    } else {
        eprintln!(
            "Apply failed: {} step(s) failed, {} skipped because they depend on a failed step. \
             Done so far: {} added, {} changed, {} destroyed (saved in the state), in {took:.1}s.",
            report.failed.len(),
            report.skipped.len(),
            report.added,
            report.changed,
            report.destroyed
        );
        for (addr, msg) in &report.failed {
            eprintln!("  failed:  {addr}: {msg}");
        }
        for addr in &report.skipped {
            eprintln!("  skipped: {addr}");
        }
        planned.report_unreachable();
        Ok(failure)
    }
}

/// `apply` -> `Apply`.
fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Says that a targeted plan is partial (on stderr, so JSON on stdout stays clean).
fn warn_targeted(s: &Session) {
    if !s.focus.targets.is_empty() {
        eprintln!(
            "\nWarning: resource targeting is in effect: only {} and what they depend on were \
             planned, so other changes may be pending. Use --target for exceptions (a \
             mistake to fix, an urgent change), then run `terrace plan` without it.",
            s.focus.targets.join(", ")
        );
    }
}

/// Asks for confirmation on a terminal; refuses outright when nobody can answer.
pub(crate) fn confirm(destroy: bool) -> miette::Result<bool> {
    if !std::io::stdin().is_terminal() {
        miette::bail!(
            help = "review the plan, then run again with --auto-approve (or apply a saved plan)",
            "refusing to apply without confirmation: stdin is not a terminal"
        );
    }
    let what = if destroy {
        "destroy all these objects"
    } else {
        "perform these actions"
    };
    print!("\nDo you want to {what}? Only 'yes' will be accepted: ");
    std::io::stdout().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| miette::miette!("cannot read the answer: {e}"))?;
    Ok(answer.trim() == "yes")
}

async fn import(cli: &Cli, vars: &VarArgs, address: &str, id: &str) -> miette::Result<ExitCode> {
    let mut s = Session::load(cli, vars)?;
    let result = import_session(&mut s, address, id).await;
    s.providers.close().await;
    result
}

async fn import_session(s: &mut Session, address: &str, id: &str) -> miette::Result<ExitCode> {
    let address = Address::new(address);
    let Some(desired) = s
        .project
        .resources
        .iter()
        .find(|r| r.address == address)
        .cloned()
    else {
        miette::bail!(
            help = "import adopts objects for resources the configuration declares; `terrace plan` lists their addresses",
            "{address} is not in the configuration"
        );
    };
    let mut lock = s.backend.lock("import").map_err(miette::Report::new)?;
    let mut state = s.read_state_locked(&mut lock)?;
    if state.get(&address).is_some_and(|r| !r.pending) {
        miette::bail!(
            help = "use `terrace state rm` first to forget the current object",
            "{address} is already managed"
        );
    }
    let schema = crate::providers::schema(&desired.type_name).expect("checked at load");
    // Adopting an object under an address whose configuration names another would make
    // the next plan replace it: destroy the object just adopted, create the configured one.
    let expected = schema.import_id_for(&desired.attrs);
    if id != expected && !id.starts_with(&format!("{expected}@")) {
        let secret = desired
            .sensitive_attrs
            .iter()
            .any(|a| schema.import_id.contains(&a.as_str()));
        let shown = if secret {
            terrace_plan::REDACTED.to_string()
        } else {
            expected
        };
        miette::bail!(
            help =
                "import the object the configuration describes, or change the configuration first",
            "{address} is configured with ID {shown}, not {id}"
        );
    }
    s.providers
        .connect_remote(&std::iter::once(desired.provider.clone()).collect())
        .await;
    if let Some(reason) = s.providers.unavailable().get(&desired.provider) {
        miette::bail!("{} could not be reached: {reason}", desired.provider);
    }
    let provider = s.providers.get(&desired.provider)?;
    let attributes = provider
        .import(&desired.type_name, id, &desired.attrs)
        .await
        .map_err(|e| miette::miette!("{}", s.redactor.scrub(&e.to_string())))?;
    let sensitive: Vec<String> = schema
        .sensitive_names(&desired.sensitive_attrs)
        .into_iter()
        .collect();
    state.upsert(ResourceState {
        address: address.clone(),
        type_name: desired.type_name.clone(),
        provider: desired.provider.clone(),
        attributes,
        sensitive_attributes: sensitive,
        dependencies: desired.depends_on.clone(),
        pending: false,
    });
    lock.write(&mut state).map_err(miette::Report::new)?;
    record_lineage(&s.dir, &s.backend, &state)?;
    println!(
        "Imported {address} (id {id}). Run `terrace plan` to compare it with the configuration."
    );
    let recorded = &state.get(&address).expect("just imported").attributes;
    let unknown: Vec<&str> = schema
        .attrs
        .iter()
        .filter(|a| a.computed && a.sensitive && !recorded.contains_key(a.name))
        .map(|a| a.name)
        .collect();
    if !unknown.is_empty() {
        eprintln!(
            "warning: terrace cannot read {} back from an existing object, so the state does not \
             know it; set it in the configuration if your apps need it from terrace",
            unknown.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn state_cmd(cli: &Cli, command: &StateCommand) -> miette::Result<ExitCode> {
    let backend = backend(cli)?;
    match command {
        StateCommand::List => {
            let state = load_state(&backend)?;
            for r in &state.resources {
                println!("{}", r.address);
            }
            // Addresses alone on stdout, as scripts expect; what is pending goes to stderr.
            let pending: Vec<&str> = state
                .resources
                .iter()
                .filter(|r| r.pending)
                .map(|r| r.address.as_str())
                .collect();
            if !pending.is_empty() {
                eprintln!(
                    "note: an apply stopped while creating {} of these; the next plan looks \
                     for them, adopting what that apply made and creating what is missing: {}",
                    pending.len(),
                    pending.join(", ")
                );
            }
        }
        StateCommand::Show { address } => {
            let state = load_state(&backend)?;
            let Some(r) = state.get(&Address::new(address.as_str())) else {
                miette::bail!("{address} is not in the state");
            };
            let mut shown = r.clone();
            let sensitive = r.sensitive_attributes.iter().cloned().collect();
            terrace_plan::redact_attrs(&mut shown.attributes, &sensitive);
            println!("{}", serde_json::to_string_pretty(&shown).expect("json"));
        }
        StateCommand::Mv { old, new, dry_run } => {
            return crate::extra::state_mv(cli, old, new, *dry_run);
        }
        StateCommand::Rm { addresses } => {
            let mut lock = backend.lock("state rm").map_err(miette::Report::new)?;
            let mut state = load_state_locked(&mut lock)?;
            check_lineage(&cli.dir, &backend, &state)?;
            for a in addresses {
                if state.remove(&Address::new(a.as_str())).is_none() {
                    miette::bail!("{a} is not in the state (nothing was removed)");
                }
            }
            lock.write(&mut state).map_err(miette::Report::new)?;
            record_lineage(&cli.dir, &backend, &state)?;
            println!(
                "Removed {} resource(s) from the state; the live objects were not touched.",
                addresses.len()
            );
        }
        StateCommand::Encrypt => crate::state_admin::encrypt(cli, &backend)?,
        StateCommand::Decrypt => crate::state_admin::decrypt(cli, &backend)?,
        StateCommand::History => crate::state_admin::history(&backend)?,
        StateCommand::Restore { serial } => crate::state_admin::restore(cli, &backend, *serial)?,
        StateCommand::Migrate { to } => crate::state_admin::migrate(cli, &backend, to)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `terrace force-unlock LOCK_ID`: removes a lock whose holder is gone, naming it,
/// after asking (unless `force`).
fn force_unlock(cli: &Cli, lock_id: &str, force: bool) -> miette::Result<ExitCode> {
    let backend = backend(cli)?;
    // Only a lock this ID names, of a holder not running here, is ever removed; for any
    // other case force_unlock itself says why nothing was done: nothing to confirm.
    let holder = backend
        .lock_holder()
        .map_err(miette::Report::new)?
        .flatten()
        .filter(|i| !i.id.is_empty() && i.id == lock_id && !i.running_here());
    if let Some(i) = holder {
        let since = i.since.format("%Y-%m-%dT%H:%M:%SZ");
        let who = format!(
            "{} (pid {}, {}) since {since}, lock ID {}",
            i.who, i.pid, i.operation, i.id
        );
        if !force {
            if !std::io::stdin().is_terminal() {
                miette::bail!(
                    help = "make sure that process is gone, then run again with --force",
                    "the state lock is held by {who}; refusing to remove it without confirmation: stdin is not a terminal"
                );
            }
            print!(
                "The state lock is held by {who}.\nIf that process is still running, removing \
                 its lock lets two commands write the state at once.\nRemove the lock? [y/N]: "
            );
            std::io::stdout().flush().ok();
            let mut answer = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut answer)
                .map_err(|e| miette::miette!("cannot read the answer: {e}"))?;
            if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
                println!("Nothing was removed.");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    match backend.force_unlock(lock_id).map_err(miette::Report::new)? {
        ForceUnlocked::WasFree(stale) => match stale {
            Some(i) => println!(
                "The state is not locked: {} (pid {}, {}) is gone and its lock was already \
                     released; its details were cleared from {}.",
                i.who,
                i.pid,
                i.operation,
                backend.lock_location()
            ),
            None => println!("The state is not locked; nothing to do."),
        },
        ForceUnlocked::Removed(i) => println!(
            "Removed the lock held by {} (pid {}, {}) since {}, lock ID {}. Make sure that \
             process is not still writing the state.",
            i.who,
            i.pid,
            i.operation,
            i.since.format("%Y-%m-%dT%H:%M:%SZ"),
            i.id
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// The files in `dir` (none if it does not exist).
fn list_dir(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect()
}
