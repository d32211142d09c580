//! Input variables: declarations, types and values from defaults, the environment,
//! `--var-file` files and `-var` flags (in increasing precedence).

use std::collections::{BTreeMap, BTreeSet};

use hcl::edit::structure::Structure;
use hcl::edit::Span;
use hcl::eval::{Context, Evaluate};
use hcl::Value;

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use crate::source::{Fs, Loc};
use crate::spec::VarInputs;
use crate::syntax::{self, RawAttr, RawBlock};
use crate::types::{self, VarType};

/// The environment variable prefix for variable values.
pub const ENV_PREFIX: &str = "TERRACE_VAR_";

/// Resolved variables.
#[derive(Debug, Default)]
pub(crate) struct Variables {
    /// Values of the variables that resolved without error.
    pub values: BTreeMap<String, Value>,
    /// Names of variables declared `sensitive = true`.
    pub sensitive: BTreeSet<String>,
    /// String values of sensitive variables, for scrubbing output.
    pub secrets: Vec<String>,
    /// Variables given a placeholder because they had no value (`VarInputs::placeholders`).
    pub placeholders: Vec<String>,
}

struct Decl<'a> {
    block: &'a RawBlock,
    ty: Option<VarType>,
    value: Option<Value>,
    ok: bool,
}

/// Evaluates an attribute that may not reference anything (variable settings, var files).
pub(crate) fn eval_constant(attr: &RawAttr, ctx: &Context<'static>) -> Result<Value, ConfigError> {
    // Literals hold no references, and their value needs no evaluation.
    if let Some(v) = crate::expr::literal(&attr.expr) {
        return Ok(v);
    }
    let (refs, problems) = crate::refs::collect(&attr.expr);
    if let Some(p) = problems.first() {
        return Err(ConfigError::new(p.kind, p.message.clone())
            .at(
                &Loc {
                    file: attr.loc.file.clone(),
                    span: p.span.clone(),
                },
                p.label.clone(),
            )
            .help(p.help.clone()));
    }
    if let Some(r) = refs.first() {
        return Err(ConfigError::new(
            ErrorKind::InvalidValue,
            format!("\"{}\" must be a constant value", attr.key),
        )
        .at(&Loc { file: attr.loc.file.clone(), span: r.span.clone() }, "references are not allowed here")
        .help("variable defaults and --var-file values cannot refer to other values; use a local instead"));
    }
    crate::expr::evaluate_once(attr, ctx)
}

/// Resolves every declared variable.
pub(crate) fn resolve(
    decls: &BTreeMap<String, RawBlock>,
    inputs: &VarInputs,
    ctx: &Context<'static>,
    fs: Fs<'_>,
    errors: &mut Vec<ConfigError>,
) -> Variables {
    let env = fs.env;
    let mut out = Variables::default();
    let mut vars: BTreeMap<&str, Decl> = BTreeMap::new();
    for (name, block) in decls {
        let mut d = Decl {
            block,
            ty: None,
            value: None,
            ok: true,
        };
        if let Some(attr) = block.attr("type") {
            match types::parse(&attr.expr) {
                Some(t) => d.ty = Some(t),
                None => {
                    errors.push(
                        ConfigError::new(ErrorKind::InvalidValue, format!("invalid type for variable \"{name}\""))
                            .at(&attr.loc, "not a type")
                            .help("use string, number, bool, any, list(T), set(T), map(T) or object({ name = T, ... })"),
                    );
                    d.ok = false;
                }
            }
        }
        for (key, what) in [("sensitive", "a bool"), ("description", "a string")] {
            let Some(attr) = block.attr(key) else {
                continue;
            };
            match eval_constant(attr, ctx) {
                Ok(Value::Bool(b)) if key == "sensitive" => {
                    if b {
                        out.sensitive.insert(name.clone());
                    }
                }
                Ok(Value::String(_)) if key == "description" => {}
                Ok(v) => errors.push(
                    ConfigError::new(
                        ErrorKind::WrongType,
                        format!("\"{key}\" must be {what}, found {}", types::describe(&v)),
                    )
                    .at(&attr.loc, format!("expected {what}"))
                    .help(format!(
                        "write `{key} = {}`",
                        if key == "sensitive" {
                            "true"
                        } else {
                            "\"...\""
                        }
                    )),
                ),
                Err(e) => errors.push(e),
            }
        }
        if let Some(attr) = block.attr("default") {
            match eval_constant(attr, ctx)
                .and_then(|v| check(name, &d.ty, v, Some(&attr.loc), "default"))
            {
                Ok(v) => d.value = Some(v),
                Err(e) => {
                    errors.push(e);
                    d.ok = false;
                }
            }
        }
        // One file per instance (`crate::instances`): replaces the default.
        if let Some(attr) = block.attr("directory") {
            match eval_constant(attr, ctx)
                .and_then(|v| crate::instances::read(name, attr, v, fs))
                .and_then(|v| check(name, &d.ty, v, Some(&attr.loc), "instance files"))
            {
                Ok(v) => d.value = Some(v),
                Err(e) => {
                    errors.push(e);
                    d.ok = false;
                }
            }
        }
        vars.insert(name.as_str(), d);
    }
    let names: Vec<&str> = vars.keys().copied().collect();

    // Environment: unknown names are ignored, as other tools may share the prefix.
    for (key, raw) in &inputs.env {
        let Some(name) = key.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if let Some(d) = vars.get_mut(name) {
            match from_text(
                name,
                &d.ty,
                raw,
                ctx,
                &format!("environment variable {key}"),
            ) {
                Ok(v) => d.value = Some(v),
                Err(e) => {
                    errors.push(e);
                    d.ok = false;
                }
            }
        }
    }

    for path in &inputs.var_files {
        let file = match syntax::read_file(env, path) {
            Ok(f) => f,
            Err(e) => {
                errors.push(e.help("check the --var-file path"));
                continue;
            }
        };
        let body = match syntax::parse(&file) {
            Ok(b) => b,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for structure in body.iter() {
            let attr = match structure {
                Structure::Attribute(a) => a,
                Structure::Block(b) => {
                    errors.push(
                        ConfigError::new(
                            ErrorKind::UnknownBlock,
                            "blocks are not allowed in a variable file",
                        )
                        .at(&Loc::new(&file, b.ident.span()), "block")
                        .help("a --var-file holds only `name = value` lines"),
                    );
                    continue;
                }
            };
            let raw = RawAttr {
                required: false,
                key: attr.key.as_str().to_string(),
                key_loc: Loc::new(&file, attr.key.span()),
                expr: attr.value.clone(),
                loc: Loc::new(&file, attr.value.span()),
                cache: Default::default(),
            };
            let Some(d) = vars.get_mut(raw.key.as_str()) else {
                errors.push(unknown_variable(&raw.key, &names).at(&raw.key_loc, "not declared"));
                continue;
            };
            match eval_constant(&raw, ctx)
                .and_then(|v| check(&raw.key, &d.ty, v, Some(&raw.loc), "value"))
            {
                Ok(v) => d.value = Some(v),
                Err(e) => {
                    errors.push(e);
                    d.ok = false;
                }
            }
        }
    }

    for (name, raw) in &inputs.vars {
        let Some(d) = vars.get_mut(name.as_str()) else {
            errors.push(unknown_variable(name, &names).help(format!(
                "--var {name}=... names no declared variable; {}",
                suggest(name, names.iter().copied(), |all| format!(
                    "declared variables: {}",
                    list_names(&all)
                ))
            )));
            continue;
        };
        match from_text(name, &d.ty, raw, ctx, "--var") {
            Ok(v) => d.value = Some(v),
            Err(e) => {
                errors.push(e);
                d.ok = false;
            }
        }
    }

    // The raw text given for a sensitive variable is secret even when it fails to
    // parse: the error about it must not repeat it.
    let env_inputs = inputs
        .env
        .iter()
        .filter_map(|(k, raw)| Some((k.strip_prefix(ENV_PREFIX)?, raw)));
    let cli_inputs = inputs.vars.iter().map(|(k, raw)| (k.as_str(), raw));
    for (name, raw) in env_inputs.chain(cli_inputs) {
        if out.sensitive.contains(name) && !raw.is_empty() {
            out.secrets.push(raw.clone());
        }
    }

    for (name, d) in vars {
        if !d.ok {
            continue;
        }
        match d.value {
            Some(v) => {
                if out.sensitive.contains(name) {
                    collect_strings(&v, &mut out.secrets);
                }
                out.values.insert(name.to_string(), v);
            }
            None if inputs.placeholders => {
                // Not a secret: the placeholder is never anyone's value.
                out.values
                    .insert(name.to_string(), types::placeholder(d.ty.as_ref()));
                out.placeholders.push(name.to_string());
            }
            None => errors.push(
                ConfigError::new(ErrorKind::MissingVariable, format!("no value for variable \"{name}\""))
                    .at(d.block.name_loc(), "declared here without a default")
                    .help(format!(
                        "set it with `--var {name}=VALUE`, in a --var-file (`{name} = VALUE`), with the environment variable {ENV_PREFIX}{name}, or give it a default"
                    )),
            ),
        }
    }
    out
}

fn unknown_variable(name: &str, names: &[&str]) -> ConfigError {
    ConfigError::new(
        ErrorKind::UnknownReference,
        format!("no variable named \"{name}\""),
    )
    .help(suggest(name, names.iter().copied(), |_| {
        format!("declare it with `variable \"{name}\" {{}}`")
    }))
}

/// Checks a value against the declared type.
fn check(
    name: &str,
    ty: &Option<VarType>,
    v: Value,
    loc: Option<&Loc>,
    what: &str,
) -> Result<Value, ConfigError> {
    // Untyped: the value itself (a copy cost as much as reading a long list again).
    let Some(ty) = ty else { return Ok(v) };
    types::conform(&v, ty).map_err(|msg| {
        let e = ConfigError::new(
            ErrorKind::WrongType,
            format!("invalid {what} for variable \"{name}\": {msg}"),
        )
        .help(format!("variable \"{name}\" has type {ty}"));
        match loc {
            Some(l) => e.at(l, format!("not a valid {ty}")),
            None => e,
        }
    })
}

/// A value given as text (`--var`, environment): raw text for string variables, an HCL
/// expression for typed ones; for an untyped variable, text that starts like a list or
/// an object (`[`, `{`) and evaluates as one is that value, anything else the text.
fn from_text(
    name: &str,
    ty: &Option<VarType>,
    raw: &str,
    ctx: &Context<'static>,
    origin: &str,
) -> Result<Value, ConfigError> {
    match ty {
        None if raw.trim_start().starts_with(['[', '{']) => {
            let parsed = hcl::edit::parser::parse_expr(raw)
                .ok()
                .and_then(|e| hcl::Expression::from(e).evaluate(ctx).ok())
                .filter(|v| matches!(v, Value::Array(_) | Value::Object(_)));
            Ok(parsed.unwrap_or_else(|| Value::from(raw)))
        }
        None | Some(VarType::String) => Ok(Value::from(raw)),
        Some(t) => {
            let parsed = hcl::edit::parser::parse_expr(raw)
                .map_err(|e| e.message().to_string())
                .and_then(|e| {
                    hcl::Expression::from(e)
                        .evaluate(ctx)
                        .map_err(|e| e.kind().to_string())
                })
                .and_then(|v| types::conform(&v, t));
            parsed.map_err(|msg| {
                ConfigError::new(ErrorKind::WrongType, format!("invalid value for variable \"{name}\" from {origin}: {msg}"))
                    .help(format!("variable \"{name}\" has type {t}; write the value as an HCL expression, e.g. [\"a\", \"b\"] or {{ key = 1 }}"))
            })
        }
    }
}

/// Every string inside a value (for secrets).
pub(crate) fn collect_strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if !s.is_empty() => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_strings(x, out)),
        _ => {}
    }
}
