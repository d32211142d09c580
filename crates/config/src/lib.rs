//! terrace's configuration language: loading `*.hcl` files, evaluating them in
//! dependency order, validating them and lowering them to [`DesiredResource`]s.
//!
//! Blocks: `variable`, `locals`, `host`, `service` (a SQL server, a container, or a SQL
//! server run as a container), `tenant` (per instance: databases, volumes and one
//! `app` container, which sees them as `self`), `database`, and the Docker objects
//! `image`, `network` and `volume`, and the host objects managed over SSH: `file`,
//! `package`, `daemon`, `firewall_rule` and `command`. SQL resources belong to the
//! provider `service.<name>`; Docker resources to `docker.local` or `docker.<host>`;
//! host resources to `host.<host>` (`<name>` and `<host>` being `label["key"]` for an
//! instance of a block with for_each). Tenants can be placed on hosts by a rule
//! (`placement`), kept where [`VarInputs::placements`] says they are.
//!
//! The entry point is [`load_dir`], a thin wrapper that reads the files of a directory
//! for [`load`], the language core, which does no I/O of its own (see [`Env`]). Every problem is reported as a located miette
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
use std::path::{Path, PathBuf};

use terrace_provider::{DesiredResource, ResourceSchema, Secret};

mod diagnostics;
mod driver;
mod expiry;
mod expr;
mod format;
mod functions;
mod graph;
mod hashed;
mod instances;
mod kind;
mod kinds;
mod lifecycle;
mod model;
mod moved;
mod placement;
mod read;
mod refs;
mod resolve;
mod settings;
mod source;
mod spec;
mod syntax;
mod templates;
mod types;
mod validate;
mod variables;

pub use diagnostics::{ConfigError, ConfigErrors, ErrorKind};
pub use expiry::{duration_parts, parse_duration, parse_time};
pub use format::{format_hcl, FormatError};
pub use instances::{check_instance_key, variable_directory, INSTANCE_SUFFIX};
pub use settings::{has_password as url_has_password, BackendSetting};
pub use source::{Env, MemoryEnv, OsEnv};
pub use spec::{
    DockerEngineSpec, Engine, Expiry, HostKeyCheck, HostSpec, Moved, OutputSpec, Placement,
    ServiceSpec, SqlEndpoint, VarInputs,
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
    /// Variables that had no value and were given a placeholder of their type
    /// ([`VarInputs::placeholders`]): checks that depend on their values were made with
    /// the placeholder only.
    pub placeholders: Vec<String>,
    /// `output` blocks, by name.
    pub outputs: BTreeMap<String, OutputSpec>,
    /// `moved` blocks, in file order: state addresses to rename before planning.
    pub moved: Vec<Moved>,
    /// Where the `terrace { backend ... }` block says the state lives (`None`: not said).
    pub backend: Option<BackendSetting>,
    /// Instances with an expiry (`lifecycle { expires_at = ..., ttl = ... }`), sorted
    /// by instance address.
    pub expiries: Vec<Expiry>,
    /// Where tenant instances run (those with `host` or a `placement` rule), sorted by
    /// instance address: the binary records them in the state so that they stay.
    pub placements: Vec<Placement>,
}

/// The providers' resource schemas, by resource type: the language decodes the blocks
/// of its one-to-one kinds (`image`, `file`, `firewall_rule`, ...) against them, as
/// OpenTofu's core decodes resource blocks against provider schemas. The binary passes
/// every provider's; the language names no provider crate.
pub type SchemaSource<'a> = &'a dyn Fn(&str) -> Option<&'static ResourceSchema>;

/// Loads every `*.hcl` file of `dir` (sorted by name, one namespace), evaluates it with
/// the given variable values and lowers it to resources, decoding resource blocks
/// against `schemas`: [`load`] over the files read from disk, with the real
/// environment.
pub fn load_dir(
    dir: &Path,
    inputs: &VarInputs,
    schemas: SchemaSource<'_>,
) -> Result<Project, ConfigErrors> {
    let files = syntax::read_dir(dir).map_err(|e| ConfigErrors(vec![e]))?;
    load(dir, files, inputs, &OsEnv, schemas)
}

/// The backend the `terrace` block of `dir`'s `*.hcl` files names, read without
/// evaluating anything else (commands that only touch the state need it, and must work
/// while the rest of the configuration is being edited). No `*.hcl` files: `None`.
pub fn backend_dir(dir: &Path) -> Result<Option<BackendSetting>, ConfigErrors> {
    match syntax::read_dir(dir) {
        Ok(files) => read_backend(files),
        Err(_) => Ok(None),
    }
}

/// [`backend_dir`] on `(path, text)` pairs: only `terrace` blocks are checked.
pub fn read_backend(files: Vec<(PathBuf, String)>) -> Result<Option<BackendSetting>, ConfigErrors> {
    let mut errors = Vec::new();
    let mut blocks = Vec::new();
    for (path, text) in files {
        let file = source::SourceFile::new(path, text);
        let body = syntax::parse(&file).map_err(|e| ConfigErrors(vec![e]))?;
        for block in body.blocks().filter(|b| b.ident.as_str() == "terrace") {
            blocks.extend(syntax::check_block(
                &file,
                block,
                &syntax::TERRACE,
                &[],
                &mut errors,
            ));
        }
    }
    let backend = settings::backend(&blocks, &mut errors);
    if errors.is_empty() {
        Ok(backend)
    } else {
        errors.sort_by_key(ConfigError::sort_key);
        let secrets = settings::secrets(&blocks);
        for e in &mut errors {
            e.scrub(&secrets);
        }
        Err(ConfigErrors(errors))
    }
}

/// Loads a configuration given as `(path, text)` pairs, in order (one namespace), as
/// if they were the files of `dir`: the language core, which reads nothing itself.
/// Relative paths in the configuration (templates, image sources) resolve against
/// `dir`; templates, `--var-file`s and `~` come from `env`.
pub fn load(
    dir: &Path,
    files: Vec<(PathBuf, String)>,
    inputs: &VarInputs,
    env: &dyn Env,
    schemas: SchemaSource<'_>,
) -> Result<Project, ConfigErrors> {
    let mut errors = Vec::new();
    let schemas = kind::Schemas(schemas);
    let missing = schemas.missing();
    if !missing.is_empty() {
        return Err(ConfigErrors(vec![ConfigError::new(
            ErrorKind::Unsupported,
            format!(
                "no provider schema for the resource types {}",
                missing.join(", ")
            ),
        )
        .help(
            "the program that loads the configuration must pass every provider's schemas",
        )]));
    }
    if files.is_empty() {
        return Err(ConfigErrors(vec![syntax::no_files(dir)]));
    }
    let files: Vec<_> = files
        .into_iter()
        .map(|(path, text)| source::SourceFile::new(path, text))
        .collect();
    let fs = source::Fs { dir, env };
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
    let top_schemas = syntax::TopSchemas::new(schemas);
    for (file, body) in &bodies {
        blocks.extend(syntax::top_level_blocks(
            file,
            body,
            &top_schemas,
            &mut errors,
        ));
    }
    let decls = syntax::Decls::collect(blocks, &mut errors);

    let mut base = hcl::eval::Context::new();
    functions::declare(&mut base);
    let vars = variables::resolve(&decls.variables, inputs, &base, fs, &mut errors);
    // Evaluation declares only the values each block reads (`var` too) next to these.
    let functions = base.clone();
    // Only template paths are evaluated with `base` (before evaluation, from variables):
    // the copy of every variable's value is made only for a file block with a `source`.
    if decls
        .of(model::Kind::File)
        .values()
        .any(|b| b.attr("source").is_some())
    {
        let var_object: hcl::Map<String, hcl::Value> = vars.values.clone().into_iter().collect();
        base.declare_var("var", hcl::Value::Object(var_object));
    }
    let failed_vars = decls
        .variables
        .keys()
        .filter(|v| !vars.values.contains_key(*v))
        .cloned()
        .collect();

    let templates = templates::preload(&decls, &base, fs, &mut errors);
    let plan = graph::plan(&decls, &failed_vars, &templates, &mut errors);
    let env = driver::Inputs {
        decls: &decls,
        schemas,
        vars: &vars,
        templates: &templates,
        fs,
        placements: &inputs.placements,
    };
    let evaluated = driver::run(env, &plan, functions, &mut errors);
    let lifecycles = lifecycle::collect(&decls, &mut errors);
    let resources = resolve::all(&evaluated, &lifecycles, schemas.0, &mut errors);
    kinds::check_hosts(&evaluated, &mut errors);
    let moved = moved::collect(&decls, &mut errors);
    let backend = settings::backend(&decls.settings, &mut errors);

    let placeholders = vars.placeholders.clone();
    let mut secrets: Vec<String> = vars.secrets;
    secrets.extend(evaluated.secrets.iter().cloned());
    secrets.extend(settings::secrets(&decls.settings));
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
    let mut expiries = evaluated.expiries.clone();
    expiries.sort_by(|a, b| a.instance.cmp(&b.instance));
    let mut placements = evaluated.placements.clone();
    placements.sort_by(|a, b| a.instance.cmp(&b.instance));
    Ok(Project {
        services: evaluated.services,
        hosts: evaluated.hosts,
        docker_engines,
        resources,
        secrets: secrets.into_iter().map(Secret::new).collect(),
        placeholders,
        outputs: evaluated.outputs,
        moved,
        backend,
        expiries,
        placements,
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
