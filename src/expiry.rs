//! Expiry in the binary: the plan's clock (`--now`, `TERRACE_NOW`, `--horizon`), the
//! first-creation times it records in the state, the cleanup report of an apply, and
//! `terrace instance add|rm|list` (one file per instance, created atomically and
//! exclusively, so concurrent provisioning scripts cannot lose one another's).
//!
//! The pure parts live in `terrace_plan::expiry` (what expired, what the plan does)
//! and `terrace_config` (the language); this module is their I/O and wall clock.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use terrace_config::Project;
use terrace_plan::expiry::{
    format_time, instances_with_resources, Clock, ExpiryInput, ExpirySpec, InstanceExpiry,
};
use terrace_plan::{Action, Plan};
use terrace_state::State;

use crate::cli::{Cli, InstanceCommand};

/// The plan's clock: `--now` (or `TERRACE_NOW`), else the wall clock; `--horizon`.
pub fn clock(cli: &Cli) -> miette::Result<Clock> {
    let now = match &cli.now {
        Some(text) => terrace_config::parse_time(text)
            .map_err(|e| miette::miette!(help = "e.g. --now 2026-12-24T18:00:00Z", "--now: {e}"))?,
        None => Utc::now(),
    };
    let horizon = terrace_config::parse_duration(&cli.horizon)
        .map_err(|e| miette::miette!(help = "e.g. --horizon 24h", "--horizon: {e}"))?;
    Ok(Clock { now, horizon })
}

/// The configuration's expiries, as the planner takes them.
pub fn specs(project: &Project) -> Vec<ExpirySpec> {
    project
        .expiries
        .iter()
        .map(|e| ExpirySpec {
            instance: e.instance.clone(),
            expires_at: e.expires_at,
            ttl: e.ttl,
        })
        .collect()
}

/// The first-creation times the state recorded (unreadable ones are left out: the
/// instance's ttl then counts from now, and the next apply records it again).
pub fn created(state: &State) -> BTreeMap<String, DateTime<Utc>> {
    state
        .first_created
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), terrace_config::parse_time(v).ok()?)))
        .collect()
}

/// Takes expired instances out of `desired` (see `terrace_plan::expiry::judge`).
pub fn judge(
    project: &Project,
    state: &State,
    clock: Clock,
    desired: Vec<terrace_provider::DesiredResource>,
) -> (Vec<terrace_provider::DesiredResource>, Vec<InstanceExpiry>) {
    let specs = specs(project);
    let created = created(state);
    terrace_plan::expiry::judge(
        ExpiryInput {
            specs: &specs,
            created: &created,
            clock,
        },
        desired,
    )
}

/// Brings the state's first-creation times up to date before an apply (saved with the
/// journal's first write, so before anything is created): an instance with a `ttl` that
/// this plan creates, or that exists without a recorded time (created before terrace
/// recorded them), is recorded as created now; instances the configuration no longer
/// lists with a `ttl` are forgotten, so that one added again later starts afresh; a
/// destroy forgets them all. Returns true if the state changed.
pub fn record_creation(
    state: &mut State,
    project: &Project,
    plan: &Plan,
    clock: Clock,
    destroy: bool,
) -> bool {
    let before = state.first_created.clone();
    if destroy {
        state.first_created.clear();
        return before != state.first_created;
    }
    let with_ttl: BTreeSet<&str> = project
        .expiries
        .iter()
        .filter(|e| e.ttl.is_some())
        .map(|e| e.instance.as_str())
        .collect();
    state
        .first_created
        .retain(|k, _| with_ttl.contains(&k.as_str()));
    let now = format_time(clock.now);
    // One pass over the plan and the state, not one per instance: thousands of clones.
    let unrecorded = with_ttl
        .into_iter()
        .filter(|i| !state.first_created.contains_key(*i))
        .collect();
    let created = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Create)
        .map(|c| &c.address);
    let existing = state.resources.iter().map(|r| &r.address);
    for instance in instances_with_resources(created.chain(existing), &unrecorded) {
        state
            .first_created
            .insert(instance.to_string(), now.clone());
    }
    before != state.first_created
}

/// What an apply's cleanup did, for its output (cron mails, CI logs): one line per
/// expired instance with how many of its objects this apply removed.
pub fn report(plan: &Plan, state: &State) -> String {
    let mut out = String::new();
    for e in plan.expiry.iter().filter(|e| e.expired) {
        let owns = |a: &terrace_provider::Address| terrace_plan::expiry::belongs_to(a, &e.instance);
        let planned = plan
            .changes
            .iter()
            .filter(|c| owns(&c.address) && c.action == Action::Delete)
            .count();
        let left = state.resources.iter().filter(|r| owns(&r.address)).count();
        let removed = planned.saturating_sub(left);
        let tail = if left > 0 {
            format!("{left} could not be removed yet (see the errors above)")
        } else {
            "the configuration still lists it: remove it".to_string()
        };
        out.push_str(&format!(
            "Expired: {} (expired at {}): {removed} object(s) removed; {tail}.\n",
            e.instance, e.expires_at
        ));
    }
    out
}

/// `terrace instance add|rm|list`.
pub fn instance_cmd(cli: &Cli, command: &InstanceCommand) -> miette::Result<ExitCode> {
    let dir_of = |variable: &str| {
        terrace_config::variable_directory(&cli.dir, variable).map_err(miette::Report::new)
    };
    match command {
        InstanceCommand::Add {
            variable,
            name,
            ttl,
            expires_at,
            set,
        } => {
            let dir = dir_of(variable)?;
            let mut value = serde_json::Map::new();
            for pair in set {
                let Some((k, v)) = pair.split_once('=') else {
                    miette::bail!("--set {pair:?}: write KEY=VALUE");
                };
                value.insert(k.to_string(), serde_json::Value::String(v.to_string()));
            }
            if let Some(ttl) = ttl {
                terrace_config::parse_duration(ttl).map_err(|e| miette::miette!("--ttl: {e}"))?;
                value.insert("ttl".into(), ttl.clone().into());
            }
            if let Some(at) = expires_at {
                let t = terrace_config::parse_time(at)
                    .map_err(|e| miette::miette!("--expires-at: {e}"))?;
                value.insert("expires_at".into(), format_time(t).into());
            }
            let path = add(&dir, name, &serde_json::Value::Object(value))?;
            println!(
                "Added instance {name:?} of var.{variable}: {}. The next apply creates it.",
                path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        InstanceCommand::Rm { variable, name } => {
            let dir = dir_of(variable)?;
            check_name(name)?;
            let path = dir.join(format!("{name}{}", terrace_config::INSTANCE_SUFFIX));
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    sync_dir(&dir)?;
                    println!(
                        "Removed instance {name:?} of var.{variable}. The next apply destroys what it still has."
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    miette::bail!(
                        "var.{variable} has no instance {name:?} ({} does not exist)",
                        path.display()
                    )
                }
                Err(e) => miette::bail!("cannot remove {}: {e}", path.display()),
            }
        }
        InstanceCommand::List { variable } => {
            let dir = dir_of(variable)?;
            let mut names: Vec<String> = match std::fs::read_dir(&dir) {
                Ok(entries) => entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.'))
                    .filter_map(|n| {
                        n.strip_suffix(terrace_config::INSTANCE_SUFFIX)
                            .map(str::to_string)
                    })
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => miette::bail!("cannot list {}: {e}", dir.display()),
            };
            names.sort();
            for n in names {
                println!("{n}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check_name(name: &str) -> miette::Result<()> {
    terrace_config::check_instance_key(name).map_err(|e| miette::miette!("{e}"))
}

/// Writes `dir/<name>.json` atomically and exclusively: the content goes to a dot file
/// of its own (created with O_EXCL), is synced, then hard-linked to its name, which
/// fails if the name exists; so a reader never sees half a file and two writers of the
/// same name cannot both succeed, while writers of different names never touch the
/// same file.
fn add(dir: &Path, name: &str, value: &serde_json::Value) -> miette::Result<PathBuf> {
    check_name(name)?;
    std::fs::create_dir_all(dir)
        .map_err(|e| miette::miette!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{name}{}", terrace_config::INSTANCE_SUFFIX));
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let mut text = serde_json::to_vec_pretty(value).expect("JSON values serialise");
        text.push(b'\n');
        f.write_all(&text)?;
        f.sync_all()
    };
    let linked = write().and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => miette::bail!(
            help = "remove it first with `terrace instance rm`, or choose another name",
            "instance {name:?} exists already ({})",
            path.display()
        ),
        Err(e) => miette::bail!("cannot write {}: {e}", path.display()),
    }
    sync_dir(dir)?;
    Ok(path)
}

/// Makes a directory entry change durable.
fn sync_dir(dir: &Path) -> miette::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| miette::miette!("cannot sync {}: {e}", dir.display()))
}
