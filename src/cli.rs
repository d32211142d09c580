//! Command-line interface definition (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// terrace: declarative hosts, shared services, tenants and databases.
///
/// Describe what should exist in HCL files; `terrace plan` shows what would change,
/// `terrace apply` makes it so.
///
/// SSH connections to hosts outlive a run by 60 s, so that the next run skips the
/// login; ssh itself ends them once idle that long, also after a crash.
/// TERRACE_SSH_PERSIST sets the time (seconds, or e.g. 2m); 0 gives every run its own
/// connection, ended with it.
///
/// A Docker engine that does not answer a quick call within 30 s fails the run's calls
/// to it (TERRACE_DOCKER_TIMEOUT sets the time; removals get 4 times that, stops their
/// own wait plus that, image pulls and volume copies until 4 times that pass without a
/// byte).
#[derive(Debug, Parser)]
#[command(name = "terrace", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Run as if started in DIR: the project whose *.hcl files are loaded.
    #[arg(
        short = 'C',
        long = "chdir",
        value_name = "DIR",
        global = true,
        default_value = "."
    )]
    pub dir: PathBuf,

    /// State file to use [default: DIR/terrace.state.json].
    #[arg(long, value_name = "FILE", global = true, conflicts_with = "backend")]
    pub state: Option<PathBuf>,

    /// Keep the state in PostgreSQL: pg://USER@HOST[:PORT]/DATABASE[?state=NAME] (NAME
    /// defaults to the project directory's name). Also TERRACE_BACKEND, which is where a
    /// URL with a password belongs (or PGPASSWORD): this flag refuses one.
    #[arg(long, value_name = "URL", global = true)]
    pub backend: Option<String>,

    /// Never colour output (colour is also off when stdout is not a terminal, or NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// When another command holds the state lock, wait up to DURATION for it (e.g. 30s,
    /// 5m, 1m30s, 500ms; a bare number is seconds), retrying with backoff, before failing
    /// with "locked by ...". Default 0: fail at once.
    #[arg(
        long,
        value_name = "DURATION",
        global = true,
        default_value = "0s",
        value_parser = parse_duration
    )]
    pub lock_timeout: std::time::Duration,

    /// Plan as if it were this time (RFC 3339, e.g. 2026-12-24T18:00:00Z) instead of
    /// now: what has expired by then is destroyed, and a ttl that starts is recorded
    /// as starting then. For previews and tests.
    #[arg(long, value_name = "TIME", global = true, env = "TERRACE_NOW")]
    pub now: Option<String>,

    /// Plans list the instances that expire within this span (e.g. 24h, 7d).
    #[arg(
        long,
        value_name = "DURATION",
        global = true,
        env = "TERRACE_HORIZON",
        default_value = "24h"
    )]
    pub horizon: String,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Input variable flags shared by every command that evaluates the configuration.
#[derive(Debug, Clone, Default, Args)]
pub struct VarArgs {
    /// Set a variable: NAME=VALUE (repeatable; wins over --var-file and TERRACE_VAR_NAME).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,

    /// Read variables from an HCL file of `name = value` lines (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

/// Markdown output for pull-request comments, shared by `plan` and `show`.
#[derive(Debug, Clone, Default, Args)]
pub struct RenderArgs {
    /// Print the plan as markdown for a pull-request comment (secrets redacted), in parts
    /// below GitHub's comment limit, each starting with `<!-- terrace-plan: PROJECT -->`.
    #[arg(long, conflicts_with = "json")]
    pub markdown: bool,

    /// Write the markdown parts to DIR/part-001.md, part-002.md, ... instead of stdout
    /// (other part-*.md files in DIR are removed). Implies --markdown.
    #[arg(long, value_name = "DIR", conflicts_with = "json")]
    pub markdown_dir: Option<PathBuf>,

    /// Project name in the markdown marker [default: the one recorded in the saved plan,
    /// else the project directory's name].
    #[arg(long, value_name = "NAME", env = "TERRACE_PROJECT")]
    pub project: Option<String>,
}

impl RenderArgs {
    /// True when markdown is wanted, on stdout or in files.
    pub fn markdown(&self) -> bool {
        self.markdown || self.markdown_dir.is_some()
    }
}

/// `--target` and `--replace`, shared by `plan` and `apply`.
#[derive(Debug, Clone, Default, Args)]
pub struct FocusArgs {
    /// Plan (or apply) only ADDR and what it depends on; repeatable. ADDR may be a
    /// block (`tenant.app["x"]`: all its resources) or one resource
    /// (`tenant.app["x"].database`). The result is partial: other changes may be pending.
    #[arg(long, value_name = "ADDR")]
    pub target: Vec<String>,

    /// Replace ADDR (destroy and create it again) even if nothing changed, e.g. a
    /// container whose data is in a volume; repeatable. Shown as "(requested)".
    #[arg(long, value_name = "ADDR")]
    pub replace: Vec<String>,
}

impl Cli {
    /// True when the command writes the state (apply, destroy, import, the `state`
    /// commands, force-unlock): it may run steps while it makes records durable.
    pub fn writes_state(&self) -> bool {
        matches!(
            self.command,
            Command::Apply { .. }
                | Command::Destroy { .. }
                | Command::Import { .. }
                | Command::State { .. }
                | Command::ForceUnlock { .. }
        )
    }

    /// True when the command streams JSON events (`apply --json`, `destroy --json`): an
    /// error that ends it is then reported as events on stdout too.
    pub fn streams_json(&self) -> bool {
        matches!(&self.command, Command::Apply { apply, .. } | Command::Destroy { apply, .. } if apply.json)
    }
}

impl FocusArgs {
    /// As the planner takes it.
    pub fn focus(&self) -> terrace_plan::Focus {
        terrace_plan::Focus {
            targets: self.target.clone(),
            replace: self.replace.clone(),
        }
    }
}

/// Flags shared by `apply` and `destroy`.
#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// Skip the interactive confirmation. Required when stdin is not a terminal.
    #[arg(long)]
    pub auto_approve: bool,

    /// How many independent steps may run at once, overall. Each provider also has a
    /// limit of its own, what its server takes, and runs no more of its steps at once:
    /// a Docker engine 6 (measured: more in flight only wait longer in the engine; 10
    /// destroys, which mostly wait for containers to stop), a
    /// SQL server 5 (terrace's connection pool to it), a Redis server 4 (its one
    /// connection), an SSH host 6 (its connection's channels: sshd's MaxSessions, less
    /// room for forwards). Other providers' steps run beside them. An apply held back by
    /// a provider's limit says so before its first step ("Concurrency: at most 6 steps
    /// at once on docker.local ...").
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,

    /// Stream one JSON event per line on stdout instead of text (the plan's changes,
    /// each step's start, progress, completion or error, the summary and the outcome;
    /// secrets scrubbed), for CI. See docs/json-apply.md. Needs --auto-approve or a
    /// saved plan.
    #[arg(long)]
    pub json: bool,
}

/// Parses a duration such as `30s`, `5m`, `1h`, `1m30s`, `500ms` or `45` (seconds): the
/// language's syntax plus bare seconds ([`terrace_provider::duration::parse_duration`]).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    terrace_provider::duration::parse_duration(text)
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration for errors without contacting any server.
    ///
    /// Needs no secrets: a variable without a value (no default, --var, --var-file or
    /// TERRACE_VAR_NAME) is checked with a placeholder of its type ("placeholder", 1,
    /// false, empty list or map), and named in the output.
    Validate {
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Show what apply would change, comparing config with state and the live systems.
    Plan {
        #[command(flatten)]
        vars: VarArgs,
        /// Save the plan to FILE; `terrace apply FILE` then does exactly this, or refuses.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit 0 when there are no changes, 2 when there are, 1 on error.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Print the plan as a versioned JSON document (secrets redacted).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        render: RenderArgs,
        #[command(flatten)]
        focus: FocusArgs,
    },
    /// Report what changed outside terrace since the last apply, and nothing else
    /// (read-only: writes neither servers nor the state). For scheduled drift checks.
    ///
    /// Exit status: 0 no drift (or only drift acknowledged in terrace.driftignore),
    /// 2 drift, 1 error (including a server that could not be observed; what could be
    /// observed is still reported). Attributes listed in a block's
    /// `lifecycle { ignore_changes = [...] }` are never reported.
    ///
    /// The ignore file (default DIR/terrace.driftignore) acknowledges known drift, one
    /// rule a line: `PATTERN [expires=YYYY-MM-DD] REASON`, PATTERN being an address or
    /// ADDRESS.ATTRIBUTE, `*` matching anything. Acknowledged drift is listed but does
    /// not alert; after its expiry date it alerts again.
    Drift {
        #[command(flatten)]
        vars: VarArgs,
        /// Print the report as a versioned JSON document (secrets redacted).
        #[arg(long)]
        json: bool,
        /// Also write the run's Prometheus metrics to FILE (atomically), for
        /// node_exporter's textfile collector: managed, drifted and acknowledged
        /// resources per type, last run and last successful run timestamps, duration.
        #[arg(long, value_name = "FILE")]
        metrics_file: Option<PathBuf>,
        /// The ignore file of acknowledged drift [default: DIR/terrace.driftignore,
        /// if it exists].
        #[arg(long, value_name = "FILE")]
        ignore_file: Option<PathBuf>,
        /// Project name in the metrics' `project` label [default: the project
        /// directory's name].
        #[arg(long, value_name = "NAME", env = "TERRACE_PROJECT")]
        project: Option<String>,
    },
    /// Print a plan saved with `plan --out` (text, --json or --markdown), reading only
    /// that file: no configuration, state or server is needed.
    Show {
        /// The saved plan.
        #[arg(value_name = "PLANFILE")]
        plan_file: PathBuf,
        /// Print the plan as a versioned JSON document.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        render: RenderArgs,
    },
    /// Make the live systems match the configuration (or a saved plan).
    Apply {
        /// A plan saved with `terrace plan --out`; applied as shown, or refused if stale.
        #[arg(value_name = "PLANFILE")]
        plan_file: Option<PathBuf>,
        /// Accept drift instead: record the live values of what changed outside terrace
        /// in the state (objects deleted outside terrace leave it), shown first like a
        /// plan, without changing any server.
        #[arg(long, conflicts_with = "plan_file")]
        refresh_only: bool,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        apply: ApplyArgs,
        #[command(flatten)]
        focus: FocusArgs,
    },
    /// Destroy everything recorded in the state, except shared services (see --include-services).
    Destroy {
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        apply: ApplyArgs,
        /// Also destroy shared services (their containers, and the volumes, networks and
        /// images they use); by default they are kept.
        #[arg(long)]
        include_services: bool,
    },
    /// Adopt an existing object into the state under ADDR (it must be in the configuration).
    Import {
        /// The address the configuration gives the object, e.g. 'tenant.app["x"].database'.
        address: String,
        /// The object's ID on its server, as the plan's conflict hint shows it.
        id: String,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Inspect or edit the state.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Print the resource dependency graph (Graphviz DOT, or Mermaid for pull requests).
    ///
    /// An edge A -> B means A depends on B (B is created first, destroyed last).
    /// `terrace graph | dot -Tsvg > graph.svg` draws it; `--format mermaid` prints a
    /// flowchart that GitHub and GitLab render inside a ```mermaid block.
    Graph {
        #[command(flatten)]
        vars: VarArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Print the values of the configuration's `output` blocks (e.g. a tenant's database
    /// URL for an app terrace does not run), taking generated values from the state.
    ///
    /// Without NAME: every output, sensitive ones shown as <sensitive>. With NAME: that
    /// output's value, sensitive or not. A value that depends on something not applied
    /// yet is "(known after apply)" (with NAME: an error). Outputs are never part of a plan.
    Output {
        /// The output to print.
        name: Option<String>,
        /// Print JSON: with NAME its value; without, every output as
        /// {"NAME": {"value": ..., "sensitive": false}} (sensitive values left out).
        #[arg(long)]
        json: bool,
        /// With NAME: print a string, number or bool as it is, without quotes or a
        /// final newline, for `$(terrace output -raw db_url)`-style use.
        #[arg(long, conflicts_with = "json", requires = "name")]
        raw: bool,
        #[command(flatten)]
        vars: VarArgs,
    },
    /// Rewrite the project's *.hcl files in the canonical layout, keeping comments.
    ///
    /// Two-space indentation, aligned `=` in runs of attributes, one space around block
    /// labels, at most one blank line; expressions stay as written. Prints the files it
    /// changed. With --check nothing is written and the exit status is 3 when a file
    /// would change (for CI), 0 otherwise.
    Fmt {
        /// Write nothing; exit 3 if any file is not formatted, naming it.
        #[arg(long)]
        check: bool,
        /// Print a unified diff of each change.
        #[arg(long)]
        diff: bool,
    },
    /// Print terrace's version and the versions of the formats it reads and writes
    /// (state, saved plans, plan and drift JSON).
    Version {
        /// As a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script for bash, zsh or fish (also elvish, powershell).
    ///
    /// bash: `terrace completions bash > /etc/bash_completion.d/terrace`;
    /// zsh: `terrace completions zsh > "${fpath[1]}/_terrace"`;
    /// fish: `terrace completions fish > ~/.config/fish/completions/terrace.fish`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Add, remove or list the instances of a variable read from a directory
    /// (`variable "clones" { directory = "clones.d" }`): one file per instance, so
    /// provisioning scripts can add instances at the same time without losing any.
    /// Nothing is applied: the next `terrace apply` creates or destroys them.
    Instance {
        #[command(subcommand)]
        command: InstanceCommand,
    },
    /// Remove a state lock whose holder is gone (state on shared storage), naming it.
    ///
    /// Names the holder and asks for confirmation first (on a terminal; without one it
    /// refuses unless --force). On a local disk the lock is released when its holder exits, however it exits, and
    /// this is never needed. LOCK_ID is the ID the "state is locked" error shows; a lock
    /// held by a process still running on this machine is never removed.
    ForceUnlock {
        /// The lock ID from the "state is locked" error.
        lock_id: String,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y', visible_alias = "yes")]
        force: bool,
    },
}

/// `terrace graph --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// `terrace instance ...`
#[derive(Debug, Subcommand)]
pub enum InstanceCommand {
    /// Add instance NAME to VARIABLE: writes DIRECTORY/NAME.json atomically, and fails
    /// if NAME exists.
    Add {
        /// The variable (declared with a `directory`).
        variable: String,
        /// The instance name: a letter or digit, then letters, digits, '_' or '-'.
        name: String,
        /// Its lifetime from when terrace creates it (e.g. 48h): the file's `ttl`.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// When it expires (RFC 3339): the file's `expires_at`.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
        /// Another string field of the file (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Remove instance NAME of VARIABLE (its file); the next apply destroys it.
    Rm {
        /// The variable.
        variable: String,
        /// The instance name.
        name: String,
    },
    /// List the instances of VARIABLE, one name a line.
    List {
        /// The variable.
        variable: String,
    },
}

/// `terrace state ...`
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List every address in the state.
    List,
    /// Show one resource's recorded attributes (secrets redacted).
    Show {
        /// The resource address.
        address: String,
    },
    /// Forget resources without touching the live objects.
    Rm {
        /// The resource addresses.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Encrypt the state's secrets with the configured state key (TERRACE_STATE_KEY,
    /// TERRACE_STATE_KEY_FILE or TERRACE_STATE_PASSPHRASE), or re-encrypt them with a new
    /// key (the old one as TERRACE_STATE_FALLBACK_KEY, _KEY_FILE or _PASSPHRASE).
    ///
    /// Once a key is configured, a state in clear is refused until this has run once.
    /// The backup is rewritten too, so no copy in clear is left beside the state.
    Encrypt,
    /// Write the state's secrets back in clear (needs the key), e.g. to stop using
    /// encryption. Unset the state key variables afterwards.
    Decrypt,
    /// List the previous versions kept (PostgreSQL: the last 20, or ?history=N; a local
    /// state: its backup).
    History,
    /// Write a kept version back as the next version of the state (the current one is
    /// kept in the history, so this can be undone the same way).
    Restore {
        /// The serial of the version, as `state history` lists it.
        serial: u64,
    },
    /// Copy the state to another backend (a pg:// URL, or a file path), keeping its
    /// lineage and serial; refuses a destination that holds another state or a newer
    /// version. The source is left as it was; use the new backend from then on.
    Migrate {
        /// The destination: pg://... or a state file path.
        #[arg(long, value_name = "URL|FILE")]
        to: String,
    },
    /// Give recorded objects a new address without touching them, e.g. after renaming a
    /// tenant's key, so that the next plan does not destroy and create them again.
    ///
    /// OLD is a resource address or a block (`'tenant.app["old"]'`: every resource under
    /// it moves to the same place under NEW). Refused, with nothing changed, if a
    /// destination is already in the state.
    Mv {
        /// The current address (or block).
        old: String,
        /// The new address (or block).
        new: String,
        /// Print what would move, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The command line with Terraform's single-dash spellings of long options (`-var`,
/// `-var-file=F`, `-auto-approve`, `-target=ADDR`, ...) turned into terrace's
/// (`--var`, ...), so that muscle memory works. Only a whole argument naming a known
/// long option is rewritten (short options such as `-C` and values are left alone),
/// and nothing after `--`.
pub fn terraform_spellings(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    use clap::CommandFactory as _;

    fn longs(cmd: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
        for a in cmd.get_arguments() {
            out.extend(a.get_long().map(str::to_string));
        }
        for sub in cmd.get_subcommands() {
            longs(sub, out);
        }
    }
    let mut known = std::collections::BTreeSet::new();
    longs(&Cli::command(), &mut known);
    let mut rest_is_positional = false;
    args.into_iter()
        .map(|arg| {
            if rest_is_positional {
                return arg;
            }
            let Some(s) = arg.to_str() else { return arg };
            if s == "--" {
                rest_is_positional = true;
                return arg;
            }
            match s.strip_prefix('-') {
                Some(name) if !name.starts_with('-') && name.len() > 1 => {
                    let option = name.split_once('=').map_or(name, |(n, _)| n);
                    if known.contains(option) {
                        return format!("-{s}").into();
                    }
                    arg
                }
                _ => arg,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(args: &[&str]) -> Vec<String> {
        terraform_spellings(args.iter().map(|a| a.into()))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn durations_parse_in_go_style() {
        use std::time::Duration;
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in ["", "s", "5x", "1.5s", "-1s", "m5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn terraform_single_dash_options_are_accepted() {
        assert_eq!(
            rewrite(&[
                "terrace",
                "-C",
                "dir",
                "plan",
                "-var",
                "a=-1",
                "-var-file=x.tfvars",
                "-target=db",
                "-detailed-exitcode",
                "-x",
                "-",
                "--json",
                "--",
                "-var"
            ]),
            [
                "terrace",
                "-C",
                "dir",
                "plan",
                "--var",
                "a=-1",
                "--var-file=x.tfvars",
                "--target=db",
                "--detailed-exitcode",
                "-x",
                "-",
                "--json",
                "--",
                "-var"
            ]
        );
        let cli = Cli::try_parse_from(rewrite(&[
            "terrace",
            "apply",
            "-auto-approve",
            "-var",
            "a=b",
        ]))
        .unwrap();
        assert!(
            matches!(cli.command, Command::Apply { ref apply, ref vars, .. }
            if apply.auto_approve && vars.vars == ["a=b"])
        );
    }
}
