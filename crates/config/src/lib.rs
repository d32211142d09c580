//! terrace's configuration language: loading `*.hcl` files, evaluating them in
//! dependency order, validating them and lowering them to [`DesiredResource`]s.
//!
//! The entry point is [`load_dir`]. Every problem is reported as a located miette
//! diagnostic, and all independent problems are reported together in [`ConfigErrors`].
//!
//! Pipeline: `syntax` (parse, schema) → `variables` (input values) → `graph`
//! (references, cycles, order) → `eval` (blocks in order) → `lower` (resources).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use terrace_provider::{Address, DesiredResource, Secret};

mod diagnostics;
mod eval;
mod functions;
mod graph;
mod lower;
mod refs;
mod source;
mod syntax;
mod types;
mod validate;
mod variables;

pub use diagnostics::{ConfigError, ConfigErrors, ErrorKind};
pub use variables::ENV_PREFIX;

/// Values for input variables from outside the configuration.
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    /// `--var name=value` flags, in command-line order (later wins).
    pub vars: Vec<(String, String)>,
    /// `--var-file` paths, in command-line order (later wins); HCL `name = value` files.
    pub var_files: Vec<PathBuf>,
    /// Environment variables; only `TERRACE_VAR_<name>` entries are used (the caller
    /// passes `std::env::vars()`, filtered or not).
    pub env: Vec<(String, String)>,
}

/// A loaded, evaluated and validated configuration.
#[derive(Debug, Clone)]
pub struct Project {
    /// Database servers by block label.
    pub services: BTreeMap<String, ServiceSpec>,
    /// SSH hosts by block label (parsed and validated only, for now).
    pub hosts: BTreeMap<String, HostSpec>,
    /// Every desired resource, sorted by address.
    pub resources: Vec<DesiredResource>,
    /// Every sensitive value known at load time (sensitive variables' strings, admin
    /// and database passwords), so that callers can scrub them from any output.
    pub secrets: Vec<Secret>,
}

/// A `service` block: one database server that terrace administers.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Block label.
    pub name: String,
    /// Database engine.
    pub engine: Engine,
    /// Server address (`endpoint.address`).
    pub address: String,
    /// Server port (`endpoint.port`, default 5432 or 3306).
    pub port: u16,
    /// Administrative user terrace logs in as.
    pub admin_user: String,
    /// That user's password.
    pub admin_password: Secret,
    /// The `host` block the server runs on, if given.
    pub host: Option<String>,
}

/// A supported database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// MySQL.
    Mysql,
    /// MariaDB.
    Mariadb,
}

impl Engine {
    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Mariadb => "mariadb",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `host` block: a machine reachable over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Block label.
    pub name: String,
    /// Address or hostname.
    pub address: String,
    /// SSH port (default 22).
    pub port: u16,
    /// Login user (default `root`).
    pub user: String,
    /// Private key file, if not the SSH default.
    pub identity_file: Option<String>,
    /// Whether commands run through sudo (`become = true`).
    pub become_root: bool,
}

/// Loads every `*.hcl` file of `dir` (sorted by name, one namespace), evaluates it with
/// the given variable values and lowers it to resources.
pub fn load_dir(dir: &Path, inputs: &VarInputs) -> Result<Project, ConfigErrors> {
    let mut errors = Vec::new();
    let files = syntax::read_dir(dir).map_err(|e| ConfigErrors(vec![e]))?;
    let mut blocks = Vec::new();
    let mut bodies = Vec::new();
    for file in &files {
        match syntax::parse(file) {
            Ok(body) => bodies.push((file, body)),
            Err(e) => errors.push(e),
        }
    }
    // References into a file that does not parse would all be reported as unknown:
    // stop at syntax errors.
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    for (file, body) in &bodies {
        blocks.extend(syntax::top_level_blocks(file, body, &mut errors));
    }
    let decls = syntax::Decls::collect(blocks, &mut errors);

    let mut base = hcl::eval::Context::new();
    functions::declare(&mut base);
    let vars = variables::resolve(&decls.variables, inputs, &base, &mut errors);
    let var_object: hcl::Map<String, hcl::Value> = vars.values.clone().into_iter().collect();
    base.declare_var("var", hcl::Value::Object(var_object));
    let failed_vars = decls
        .variables
        .keys()
        .filter(|v| !vars.values.contains_key(*v))
        .cloned()
        .collect();

    let plan = graph::plan(&decls, &failed_vars, &mut errors);
    let evaluated = eval::run(&decls, &vars, &plan, base, &mut errors);
    let resources = lower_all(&evaluated, &plan, &mut errors);

    if !errors.is_empty() {
        errors.sort_by_key(ConfigError::sort_key);
        return Err(ConfigErrors(errors));
    }
    let mut secrets: Vec<String> = vars.secrets;
    secrets.extend(evaluated.secrets.iter().cloned());
    secrets.sort();
    secrets.dedup();
    Ok(Project {
        services: evaluated.services,
        hosts: evaluated.hosts,
        resources,
        secrets: secrets.into_iter().map(Secret::new).collect(),
    })
}

/// Lowers every database instance, checks uniqueness and adds cross-block dependencies.
fn lower_all(
    ev: &eval::Evaluated,
    plan: &graph::Plan,
    errors: &mut Vec<ConfigError>,
) -> Vec<DesiredResource> {
    let mut by_address: BTreeMap<String, &source::Loc> = BTreeMap::new();
    let mut by_name: BTreeMap<(String, String), &source::Loc> = BTreeMap::new();
    let mut per_node: BTreeMap<&graph::Node, Vec<Address>> = BTreeMap::new();
    let mut lowered: Vec<(&graph::Node, DesiredResource)> = Vec::new();
    for (node, db, head, name_loc) in &ev.databases {
        if let Some(first) = by_address.get(&db.base) {
            errors.push(syntax::duplicate("database block", &db.base, head, first));
            continue;
        }
        by_address.insert(db.base.clone(), head);
        let key = (db.service.clone(), db.name.clone());
        if let Some(first) = by_name.get(&key) {
            errors.push(
                ConfigError::new(
                    ErrorKind::Duplicate,
                    format!("database \"{}\" is declared twice on service \"{}\"", db.name, db.service),
                )
                .at(name_loc, "declared again here")
                .at(first, "first declared here")
                .help(format!(
                    "two blocks would manage the same database; give one a different name (the first is at {})",
                    first.describe()
                )),
            );
            continue;
        }
        by_name.insert(key, name_loc);
        for r in lower::lower(db) {
            per_node.entry(node).or_default().push(r.address.clone());
            lowered.push((node, r));
        }
    }
    let mut out = Vec::new();
    for (node, mut r) in lowered {
        // A block that refers to another tenant or database block is created after it.
        for nref in &plan.refs[node] {
            let dep = match &nref.target {
                refs::Target::Tenant(n) => graph::Node::Tenant(n.clone()),
                refs::Target::Database(n) => graph::Node::Database(n.clone()),
                _ => continue,
            };
            if &dep == node {
                continue;
            }
            for a in per_node.get(&dep).into_iter().flatten() {
                if !r.depends_on.contains(a) {
                    r.depends_on.push(a.clone());
                }
            }
        }
        out.push(r);
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    out
}
