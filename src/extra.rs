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
