//! One function per subcommand. Each returns the process exit code.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::process::ExitCode;

use terrace_plan::render::{render_json, render_text, TextOptions};
use terrace_provider::Address;
use terrace_state::{ResourceState, State};

use crate::apply::Executor;
use crate::capacity;
use crate::cli::{ApplyArgs, Cli, Command, StateCommand, VarArgs};
use crate::planfile::{key_path, load_or_create_key, secrets_digest, SavedPlan, PLANFILE_VERSION};
use crate::session::{backend, load_state, Goal, Planned, Session};

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
        } => {
            let mut s = Session::load(&cli, vars)?;
            let result = plan_cmd(&mut s, out.as_deref(), *detailed_exitcode, *json).await;
            s.providers.close().await;
            result
        }
        Command::Apply {
            plan_file,
            vars,
            apply,
        } => apply_cmd(&cli, vars, apply, plan_file.as_deref(), Goal::Converge).await,
        Command::Destroy {
            vars,
            apply,
            include_services,
        } => {
            let goal = Goal::Destroy {
                include_services: *include_services,
            };
            apply_cmd(&cli, vars, apply, None, goal).await
        }
        Command::Import { address, id, vars } => import(&cli, vars, address, id).await,
        Command::State { command } => state_cmd(&cli, command),
        Command::Graph { vars } => {
            let s = Session::load(&cli, vars)?;
            print!("{}", s.graph()?.to_dot());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn plan_cmd(
    s: &mut Session,
    out: Option<&std::path::Path>,
    detailed_exitcode: bool,
    json: bool,
) -> miette::Result<ExitCode> {
    let state = s.read_state()?;
    let planned = s.plan(&state, Goal::Converge).await?;
    let plan = &planned.plan;
    if json {
        let doc = render_json(plan, VERSION);
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        print!("{}", plan_text(s, &planned));
    }
    check_capacity(s, plan, json).await?;
    // A partial plan is shown, but neither saved nor reported as success.
    if planned.report_unreachable() {
        return Ok(ExitCode::FAILURE);
    }
    if let Some(path) = out {
        let key = load_or_create_key(&key_path(s.backend.path()))?;
        let (lineage, serial) = state_ref(s, &state);
        SavedPlan {
            secrets_digest: secrets_digest(plan, &key),
            format_version: PLANFILE_VERSION,
            terrace_version: VERSION.to_string(),
            lineage,
            serial,
            plan: plan.redacted(),
        }
        .write(path)?;
        if !json {
            println!(
                "\nSaved the plan to {}. Apply exactly this plan with: terrace apply {}",
                path.display(),
                path.display()
            );
        }
    }
    Ok(if detailed_exitcode && !plan.is_empty() {
        ExitCode::from(EXIT_CHANGES)
    } else {
        ExitCode::SUCCESS
    })
}

/// The plan as text, never claiming that everything matches when something was left out.
fn plan_text(s: &Session, planned: &Planned) -> String {
    let opts = TextOptions {
        color: s.color,
        partial: !planned.left_out.is_empty(),
    };
    render_text(&planned.plan, opts)
}

/// Prints how full each host will be (unless `quiet`) and refuses an over-full plan.
async fn check_capacity(s: &Session, plan: &terrace_plan::Plan, quiet: bool) -> miette::Result<()> {
    let usage = capacity::usage(&s.providers, plan).await;
    if !quiet {
        print!("{}", capacity::render(&usage));
    }
    capacity::check(&usage)
}

fn validate(cli: &Cli, vars: &VarArgs) -> miette::Result<ExitCode> {
    let s = Session::load(cli, vars)?;
    s.graph()?;
    println!(
        "The configuration is valid: {} resources across {} services.",
        s.project.resources.len(),
        s.project.services.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The lineage and serial a saved plan refers to: None when there is no state file yet.
fn state_ref(s: &Session, state: &State) -> (Option<String>, Option<u64>) {
    if s.backend.path().exists() {
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
) -> miette::Result<ExitCode> {
    let saved = plan_file.map(SavedPlan::read).transpose()?;
    let mut s = Session::load(cli, vars)?;
    let result = apply_session(&mut s, args, saved.as_ref(), goal).await;
    s.providers.close().await;
    result
}

async fn apply_session(
    s: &mut Session,
    args: &ApplyArgs,
    saved: Option<&SavedPlan>,
    goal: Goal,
) -> miette::Result<ExitCode> {
    let destroy = goal != Goal::Converge;
    let operation = if destroy { "destroy" } else { "apply" };
    let mut lock = s
        .backend
        .lock(operation)
        .map_err(|e| miette::miette!("{e}"))?;
    let mut state = s.read_state()?;

    if let Some(saved) = saved {
        if (saved.lineage.clone(), saved.serial) != state_ref(s, &state) {
            miette::bail!(
                help = "run `terrace plan --out FILE` again and review the new plan",
                "the saved plan is stale: the state changed since it was made"
            );
        }
    }
    let planned = s.plan(&state, goal).await?;
    let plan = &planned.plan;
    let text = plan_text(s, &planned);
    if let Some(saved) = saved {
        let key = load_or_create_key(&key_path(s.backend.path()))?;
        if !saved.matches(plan, &key) {
            print!("{text}");
            miette::bail!(
                help = "run `terrace plan --out FILE` again and review the new plan",
                "the saved plan is stale: the configuration or the live systems changed since it was made (the current plan is shown above)"
            );
        }
    }
    print!("{text}");
    check_capacity(s, plan, false).await?;
    if planned.kept > 0 {
        println!(
            "Shared services are kept: {} resource(s) stay (pass --include-services to destroy them too).",
            planned.kept
        );
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
    if plan.is_empty() {
        return Ok(if planned.report_unreachable() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    if saved.is_none() && !args.auto_approve && !confirm(destroy)? {
        println!("Apply cancelled.");
        return Ok(ExitCode::FAILURE);
    }

    println!();
    let executor = Executor {
        providers: &s.providers,
        parallelism: usize::from(args.parallelism),
        redactor: &s.redactor,
        show_bar: std::io::stderr().is_terminal(),
    };
    let dumps_before = list_dir(&s.backups);
    let report = executor.run(plan, &mut state, &mut lock).await?;
    for dump in list_dir(&s.backups).difference(&dumps_before) {
        // Volume copies are tar archives; database dumps are SQL.
        if dump.extension().is_some_and(|e| e == "tar") {
            println!("Copied before destroying: {}", dump.display());
        } else {
            println!("Dumped before dropping: {}", dump.display());
        }
    }
    s.learn_secrets(&state);
    println!();
    if report.ok() {
        println!(
            "Apply complete! Resources: {} added, {} changed, {} destroyed.",
            report.added, report.changed, report.destroyed
        );
        // What was reachable is applied and saved; the rest is an error.
        Ok(if planned.report_unreachable() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    } else {
        eprintln!(
            "Apply failed: {} step(s) failed, {} skipped because they depend on a failed step. \
             Done so far: {} added, {} changed, {} destroyed (saved in the state).",
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
        Ok(ExitCode::FAILURE)
    }
}

/// Asks for confirmation on a terminal; refuses outright when nobody can answer.
fn confirm(destroy: bool) -> miette::Result<bool> {
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
    let mut lock = s
        .backend
        .lock("import")
        .map_err(|e| miette::miette!("{e}"))?;
    let mut state = s.read_state()?;
    if state.get(&address).is_some() {
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
    });
    lock.write(&mut state).map_err(|e| miette::miette!("{e}"))?;
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
    let backend = backend(cli);
    match command {
        StateCommand::List => {
            let state = load_state(&backend)?;
            for r in &state.resources {
                println!("{}", r.address);
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
        StateCommand::Rm { addresses } => {
            let mut lock = backend
                .lock("state rm")
                .map_err(|e| miette::miette!("{e}"))?;
            let mut state = load_state(&backend)?;
            for a in addresses {
                if state.remove(&Address::new(a.as_str())).is_none() {
                    miette::bail!("{a} is not in the state (nothing was removed)");
                }
            }
            lock.write(&mut state).map_err(|e| miette::miette!("{e}"))?;
            println!(
                "Removed {} resource(s) from the state; the live objects were not touched.",
                addresses.len()
            );
        }
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
