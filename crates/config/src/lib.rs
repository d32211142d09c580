//! terrace's configuration language: loading `*.hcl` files, evaluating them in
//! dependency order, validating them and lowering them to [`DesiredResource`]s.
//!
//! Blocks: `variable`, `locals`, `host`, `service` (a SQL server, a container, or a SQL
//! server run as a container), `tenant` (per instance: databases, volumes and one
//! `app` container, which sees them as `self`), `database`, and the Docker objects
//! `image`, `network` and `volume`, and the host objects managed over SSH: `file`,
//! `package`, `daemon`, `firewall_rule` and `command`. SQL resources belong to the
//! provider `service.<name>`; Docker resources to `docker.local` or `docker.<host>`;
//! host resources to `host.<host>`.
//!
//! The entry point is [`load_dir`]. Every problem is reported as a located miette
//! diagnostic, and all independent problems are reported together in [`ConfigErrors`].
//!
//! Pipeline: `syntax` (parse, schema) → `variables` (input values) → `graph`
//! (references, cycles, order) → `driver` (evaluates each node in order with its
//! kind's code in `kinds`, which yields values and resources) → `resolve`
//! (uniqueness, dependencies, after-apply markers).
//!
//! Layers, each importing only earlier ones (see ARCHITECTURE.md): `source`,
//! `diagnostics`; `kind` (the registry of block kinds); expressions (`functions`,
//! `types`, `refs`, `expr`); the model (`spec`, `model`); `syntax`; reading (`read`,
//! `validate`); inputs (`variables`, `templates`); `graph`; `kinds` (one module per
//! block kind); `driver`; `resolve`.

use std::collections::BTreeMap;
use std::path::Path;

use terrace_provider::{DesiredResource, Secret};

mod diagnostics;
mod driver;
mod expr;
mod functions;
mod graph;
mod kind;
mod kinds;
mod model;
mod read;
mod refs;
mod resolve;
mod source;
mod spec;
mod syntax;
mod templates;
mod types;
mod validate;
mod variables;

pub use diagnostics::{ConfigError, ConfigErrors, ErrorKind};
pub use spec::{
    DockerEngineSpec, Engine, HostKeyCheck, HostSpec, ServiceSpec, SqlEndpoint, VarInputs,
};
pub use variables::ENV_PREFIX;

/// A loaded, evaluated and validated configuration.
#[derive(Debug, Clone)]
pub struct Project {
    /// Services (database servers and container services) by block label.
    pub services: BTreeMap<String, ServiceSpec>,
    /// SSH hosts by block label.
    pub hosts: BTreeMap<String, HostSpec>,
    /// One entry per Docker engine that some `docker_*` resource uses, by provider key
    /// (`docker.local` or `docker.<host label>`).
    pub docker_engines: BTreeMap<String, DockerEngineSpec>,
    /// Every desired resource, sorted by address.
    pub resources: Vec<DesiredResource>,
    /// Every sensitive value known at load time (sensitive variables' strings, admin
    /// and database passwords), so that callers can scrub them from any output.
    pub secrets: Vec<Secret>,
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

    let templates = templates::preload(&decls, &base, dir, &mut errors);
    let plan = graph::plan(&decls, &failed_vars, &templates, &mut errors);
    let evaluated = driver::run(&decls, &vars, &plan, &templates, base, dir, &mut errors);
    let resources = resolve::all(&evaluated, &mut errors);

    let mut secrets: Vec<String> = vars.secrets;
    secrets.extend(evaluated.secrets.iter().cloned());
    secrets.sort();
    secrets.dedup();
    if !errors.is_empty() {
        errors.sort_by_key(ConfigError::sort_key);
        for e in &mut errors {
            e.scrub(&secrets);
        }
        return Err(ConfigErrors(errors));
    }
    let docker_engines = docker_engines(&resources, &evaluated.hosts);
    Ok(Project {
        services: evaluated.services,
        hosts: evaluated.hosts,
        docker_engines,
        resources,
        secrets: secrets.into_iter().map(Secret::new).collect(),
    })
}

/// The Docker engines the resources use, with their hosts' settings.
fn docker_engines(
    resources: &[DesiredResource],
    hosts: &BTreeMap<String, HostSpec>,
) -> BTreeMap<String, DockerEngineSpec> {
    let mut out = BTreeMap::new();
    for r in resources {
        let Some(label) = r.provider.0.strip_prefix(spec::DOCKER_PREFIX) else {
            continue;
        };
        out.entry(r.provider.0.clone())
            .or_insert_with(|| DockerEngineSpec::for_label(label, hosts));
    }
    out
}
