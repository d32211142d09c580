//! Small commands that need no state or server: `version`, `completions`, `graph`.

use std::process::ExitCode;

use clap::CommandFactory as _;

use crate::cli::{Cli, GraphFormat, VarArgs};
use crate::session::Session;

/// `terrace graph [--format dot|mermaid]`.
pub fn graph(cli: &Cli, vars: &VarArgs, format: GraphFormat) -> miette::Result<ExitCode> {
    let s = Session::load(cli, vars)?;
    let graph = s.graph()?;
    print!(
        "{}",
        match format {
            GraphFormat::Dot => graph.to_dot(),
            GraphFormat::Mermaid => graph.to_mermaid(),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The versions `terrace version` reports, in print order.
fn versions() -> [(&'static str, String); 5] {
    [
        ("terrace", env!("CARGO_PKG_VERSION").to_string()),
        ("state_format", terrace_state::FORMAT_VERSION.to_string()),
        (
            "saved_plan_format",
            crate::planfile::PLANFILE_VERSION.to_string(),
        ),
        (
            "plan_json_format",
            terrace_plan::render::JSON_FORMAT_VERSION.to_string(),
        ),
        (
            "drift_json_format",
            terrace_plan::drift::DRIFT_JSON_VERSION.to_string(),
        ),
    ]
}

/// `terrace version [--json]`.
pub fn version(json: bool) -> miette::Result<ExitCode> {
    let v = versions();
    if json {
        let doc: serde_json::Map<String, serde_json::Value> = v
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
            .collect();
        println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
    } else {
        println!("terrace {}", v[0].1);
        for (k, v) in &v[1..] {
            println!("  {}: {v}", k.replace('_', " "));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `terrace completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> miette::Result<ExitCode> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "terrace", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

/// An output's value with the markers the state can fill filled; `None` while some
/// value it needs is known only after the next apply.
fn output_value(
    value: &serde_json::Value,
    lookup: &dyn Fn(&terrace_provider::Address, &str) -> Option<String>,
) -> Option<serde_json::Value> {
    let mut attrs = terrace_provider::Attrs::new();
    attrs.insert("value".to_string(), value.clone());
    let unresolved = terrace_provider::refs::resolve_attrs(&mut attrs, lookup);
    unresolved
        .is_empty()
        .then(|| attrs.remove("value").expect("inserted"))
}

/// `terrace output [NAME] [--json] [--raw]`.
pub fn output(
    cli: &Cli,
    vars: &VarArgs,
    name: Option<&str>,
    json: bool,
    raw: bool,
) -> miette::Result<ExitCode> {
    let mut s = Session::load(cli, vars)?;
    let state = s.read_state()?;
    let lookup = crate::session::state_lookup(&state);
    let outputs = &s.project.outputs;
    let Some(name) = name else {
        if json {
            let doc: serde_json::Map<String, serde_json::Value> = outputs
                .iter()
                .map(|(k, o)| {
                    let mut entry = serde_json::Map::new();
                    entry.insert("sensitive".into(), o.sensitive.into());
                    let value = output_value(&o.value, &lookup);
                    entry.insert("known".into(), value.is_some().into());
                    if let (false, Some(v)) = (o.sensitive, value) {
                        entry.insert("value".into(), v);
                    }
                    if let Some(d) = &o.description {
                        entry.insert("description".into(), d.clone().into());
                    }
                    (k.clone(), entry.into())
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
        } else if outputs.is_empty() {
            eprintln!("No outputs: the configuration declares no `output` blocks.");
        } else {
            for (k, o) in outputs {
                let shown = match output_value(&o.value, &lookup) {
                    _ if o.sensitive => "<sensitive>".to_string(),
                    Some(v) => serde_json::to_string_pretty(&v).expect("json"),
                    None => "(known after apply)".to_string(),
                };
                println!("{k} = {shown}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(o) = outputs.get(name) else {
        let names: Vec<&str> = outputs.keys().map(String::as_str).collect();
        miette::bail!(
            help = if names.is_empty() {
                "the configuration declares no `output` blocks".to_string()
            } else {
                format!("declared outputs: {}", names.join(", "))
            },
            "no output named {name:?}"
        );
    };
    let Some(value) = output_value(&o.value, &lookup) else {
        miette::bail!(
            help = "run `terrace apply` first",
            "output {name:?} is not known yet: it depends on a value generated during apply"
        );
    };
    if raw {
        let text = match &value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => miette::bail!(
                help = "use --json for lists, maps and null",
                "output {name:?} is not a string, number or bool"
            ),
        };
        print!("{text}");
    } else {
        println!("{}", serde_json::to_string_pretty(&value).expect("json"));
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit status of `fmt --check` when a file is not formatted (as `terraform fmt -check`).
const EXIT_UNFORMATTED: u8 = 3;

/// `terrace fmt [--check] [--diff]`.
pub fn fmt(cli: &Cli, check: bool, diff: bool) -> miette::Result<ExitCode> {
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&cli.dir)
        .map_err(|e| miette::miette!("cannot read {}: {e}", cli.dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "hcl"))
        .collect();
    files.sort();
    let mut unformatted = 0;
    for path in &files {
        let shown = path
            .strip_prefix(&cli.dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let src = std::fs::read_to_string(path)
            .map_err(|e| miette::miette!("cannot read {}: {e}", path.display()))?;
        let out = terrace_config::format_hcl(&src).map_err(|e| {
            miette::miette!(
                help = "`terrace validate` shows where",
                "{shown}: cannot format: {e}"
            )
        })?;
        if out == src {
            continue;
        }
        unformatted += 1;
        println!("{shown}");
        if diff {
            let d = similar::TextDiff::from_lines(&src, &out);
            print!(
                "{}",
                d.unified_diff()
                    .header(&format!("a/{shown}"), &format!("b/{shown}"))
            );
        }
        if !check {
            // Atomically, keeping the file's permissions (a rename would not).
            let tmp = path.with_extension("hcl.fmt-tmp");
            let perms = std::fs::metadata(path).map(|m| m.permissions()).ok();
            std::fs::write(&tmp, &out)
                .and_then(|()| match perms {
                    Some(p) => std::fs::set_permissions(&tmp, p),
                    None => Ok(()),
                })
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    miette::miette!("cannot write {}: {e}", path.display())
                })?;
        }
    }
    Ok(if check && unformatted > 0 {
        eprintln!("{unformatted} file(s) are not formatted; run `terrace fmt` to fix them.");
        ExitCode::from(EXIT_UNFORMATTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `terrace state mv OLD NEW [--dry-run]`: renames addresses in the state (and the
/// dependencies that name them), under the lock, touching no server.
pub fn state_mv(cli: &Cli, old: &str, new: &str, dry_run: bool) -> miette::Result<ExitCode> {
    let backend = crate::session::backend(cli)?;
    let mut lock = backend.lock("state mv").map_err(miette::Report::new)?;
    let mut state = crate::session::load_state_locked(&mut lock)?;
    crate::session::check_lineage(&cli.dir, &backend, &state)?;
    let moves = planned_moves(&state, old, new);
    if moves.is_empty() {
        miette::bail!(
            help = "`terrace state list` shows the recorded addresses",
            "{old} is not in the state (nothing was moved)"
        );
    }
    if let Some((from, to)) = taken(&state, &moves) {
        miette::bail!(
            help = "`terrace state rm` the object recorded there first, if it is really gone",
            "cannot move {from} to {to}: {to} is already in the state (nothing was moved)"
        );
    }
    for (from, to) in &moves {
        println!("{}{from} -> {to}", if dry_run { "would move " } else { "" });
    }
    if dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    rename(&mut state, &moves);
    lock.write(&mut state).map_err(miette::Report::new)?;
    crate::session::record_lineage(&cli.dir, &backend, &state)?;
    println!(
        "Moved {} resource(s) in the state; the live objects were not touched. Run `terrace plan` to check that the configuration matches.",
        moves.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// The renames that moving `old` to `new` makes: every recorded address that is `old` or
/// lies under it, to the same place under `new`.
pub(crate) fn planned_moves(
    state: &terrace_state::State,
    old: &str,
    new: &str,
) -> Vec<(terrace_provider::Address, terrace_provider::Address)> {
    state
        .resources
        .iter()
        .filter(|r| terrace_plan::focus::address_matches(old, &r.address))
        .map(|r| {
            let rest = &r.address.as_str()[old.len()..];
            (
                r.address.clone(),
                terrace_provider::Address::new(format!("{new}{rest}")),
            )
        })
        .collect()
}

/// A move whose destination the state already records (and does not move away).
pub(crate) fn taken<'m>(
    state: &terrace_state::State,
    moves: &'m [(terrace_provider::Address, terrace_provider::Address)],
) -> Option<&'m (terrace_provider::Address, terrace_provider::Address)> {
    moves
        .iter()
        .find(|(_, to)| state.get(to).is_some() && !moves.iter().any(|(f, _)| f == to))
}

/// Renames resources in `state`, and the dependencies that name them.
pub(crate) fn rename(
    state: &mut terrace_state::State,
    moves: &[(terrace_provider::Address, terrace_provider::Address)],
) {
    let renamed = |a: &terrace_provider::Address| {
        moves
            .iter()
            .find(|(from, _)| from == a)
            .map_or_else(|| a.clone(), |(_, to)| to.clone())
    };
    let mut resources = std::mem::take(&mut state.resources);
    for r in &mut resources {
        r.address = renamed(&r.address);
        for d in &mut r.dependencies {
            *d = renamed(d);
        }
    }
    for r in resources {
        state.upsert(r);
    }
}
