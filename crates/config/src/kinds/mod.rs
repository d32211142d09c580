//! Block kinds: evaluating each top-level block (with all its instances) into its
//! value under its namespace and the resources it owns.
//!
//! Each evaluated block is declared in the hcl-rs context under its namespace before
//! its dependents run. Inside a tenant instance, databases and volumes are evaluated
//! first, then the app block with `self` declared.

use std::collections::{BTreeMap, BTreeSet};

use hcl::edit::expr::Expression;
use hcl::eval::{Context, Evaluate};
use hcl::{Map, Value};
use serde_json::Value as Json;
use terrace_provider::Address;

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use crate::expr::evaluate;
use crate::kind::Schemas;
use crate::model::{DbInstance, DbItem, DockerItem, Evaluated, HostItem, Kind, Node};
use crate::read::*;
use crate::refs::{Ref, Target};
use crate::source::{Fs, Loc};
use crate::spec::{Engine, HostKeyCheck, HostSpec, ServiceSpec, SqlEndpoint};
use crate::syntax::{Decls, RawAttr, RawBlock};
use crate::templates::Templates;
use crate::types::describe;
use crate::validate::{self, SqlName};
use crate::variables::Variables;

mod decode;
mod docker;
mod hosted;
mod local;
mod redis;

/// One module per kind, named by its keyword, and the dispatch to each module's `eval`.
macro_rules! kind_modules {
    ($($variant:ident => $module:ident, $noun:literal, $body:literal, $resources:literal, $shape:ident $args:tt;)*) => {
        $(mod $module;)*

        impl State<'_> {
            /// Evaluates every instance of block `label` of `kind`.
            fn eval_block(&mut self, kind: Kind, label: &str) -> bool {
                match kind {
                    $(Kind::$variant => $module::eval(self, label),)*
                }
            }
        }
    };
}
crate::kind::with_registry!(kind_modules);

pub(crate) struct State<'a> {
    decls: &'a Decls,
    /// The providers' resource schemas.
    schemas: Schemas<'a>,
    vars: &'a Variables,
    base: Context<'static>,
    /// The configuration directory (relative image sources resolve against it) and
    /// the environment (templates read during evaluation, `$HOME`).
    fs: Fs<'a>,
    /// Values declared so far.
    ns: Namespaces,
    sensitive_locals: BTreeSet<String>,
    /// While evaluating an app block: the paths under `self` that are sensitive
    /// (`["database", "name"]` when the database name came from a sensitive variable).
    self_sensitive: Vec<Vec<String>>,
    /// The values of evaluated image, network and volume instances with their Docker
    /// names: a value equal to one of them is a reference to it.
    docker_values: BTreeMap<Kind, Vec<(Value, String)>>,
    /// Templates read before evaluation, by file block label.
    templates: &'a Templates,
    /// Evaluated file instances: a value equal to one of them is a reference to it.
    file_values: Vec<hosted::FileValue>,
    out: Evaluated,
    errors: &'a mut Vec<ConfigError>,
}

impl<'a> State<'a> {
    /// The evaluation state before any block is evaluated.
    pub(crate) fn new(
        decls: &'a Decls,
        schemas: Schemas<'a>,
        vars: &'a Variables,
        templates: &'a Templates,
        base: Context<'static>,
        fs: Fs<'a>,
        errors: &'a mut Vec<ConfigError>,
    ) -> Self {
        State {
            decls,
            schemas,
            vars,
            base,
            fs,
            ns: Namespaces::default(),
            sensitive_locals: BTreeSet::new(),
            self_sensitive: Vec::new(),
            docker_values: BTreeMap::new(),
            templates,
            file_values: Vec::new(),
            out: Evaluated::default(),
            errors,
        }
    }

    /// Evaluates one node; false if it failed (its errors are recorded).
    pub(crate) fn eval_node(&mut self, node: &Node) -> bool {
        let Node::Block(kind, label) = node else {
            let Node::Local(name) = node else {
                unreachable!("a node is a local or a block")
            };
            return self.local(name);
        };
        self.eval_block(*kind, label)
    }

    /// What evaluation produced.
    pub(crate) fn finish(self) -> Evaluated {
        self.out
    }
}

/// The instances of a block with for_each: each key with its `each` object.
type Instances = Vec<(String, Value)>;

/// The values declared so far, by namespace: `local.<name>` and `<kind>.<label>`.
#[derive(Debug, Default)]
struct Namespaces {
    locals: Map<String, Value>,
    /// By [`Kind::index`].
    blocks: [Map<String, Value>; Kind::COUNT],
}

impl Namespaces {
    /// Declares the value of block `label` of `kind`.
    fn declare(&mut self, kind: Kind, label: &str, value: Value) {
        self.blocks[kind.index()].insert(label.to_string(), value);
    }

    /// The values of the blocks of one kind.
    fn of(&self, kind: Kind) -> &Map<String, Value> {
        &self.blocks[kind.index()]
    }

    /// Declares every namespace in `ctx` (empty ones too, so that evaluation errors
    /// name the missing key rather than the namespace).
    fn declare_all(&self, ctx: &mut Context<'static>) {
        ctx.declare_var("local", Value::Object(self.locals.clone()));
        for kind in Kind::ALL {
            ctx.declare_var(kind.keyword(), Value::Object(self.of(*kind).clone()));
        }
    }
}

/// The blocks every reference of these attributes points at.
fn block_targets<'a>(attrs: impl IntoIterator<Item = &'a RawAttr>) -> Vec<Target> {
    attrs
        .into_iter()
        .flat_map(|a| crate::refs::collect(&a.expr).0)
        .map(|r| r.target)
        .collect()
}

impl State<'_> {
    fn ctx(&self) -> Context<'static> {
        let mut ctx = self.base.clone();
        self.ns.declare_all(&mut ctx);
        ctx
    }

    /// True if an expression refers to a sensitive variable, a sensitive local,
    /// `each.value` of a sensitive for_each, a database password, or a sensitive part
    /// of `self`.
    fn is_sensitive(&self, attr: &RawAttr, each_sensitive: bool) -> bool {
        let (refs, _) = crate::refs::collect(&attr.expr);
        self.refs_sensitive(&refs, each_sensitive)
    }

    /// True if one of these references reads a sensitive value (see `is_sensitive`).
    fn refs_sensitive(&self, refs: &[Ref], each_sensitive: bool) -> bool {
        refs.iter().any(|r| {
            r.reads_password()
                || match &r.target {
                    Target::Var(v) => self.vars.sensitive.contains(v),
                    Target::Local(l) => self.sensitive_locals.contains(l),
                    Target::EachValue => each_sensitive,
                    Target::SelfRef(root) => {
                        let mut path = vec![root.clone()];
                        path.extend(r.path.iter().cloned());
                        // Reading a sensitive field, or an object that contains one.
                        self.self_sensitive
                            .iter()
                            .any(|p| p.starts_with(&path) || path.starts_with(p))
                    }
                    _ => false,
                }
        })
    }

    /// Reads `host = host.NAME`; errors go to `r`.
    fn host_attr(&self, r: &mut Reader, block: &RawBlock) -> Option<String> {
        let attr = block.attr("host")?;
        let v = r.value(attr)?;
        let host_name = v
            .as_object()
            .and_then(|o| o.get("name"))
            .and_then(Value::as_str)
            .map(str::to_string);
        match host_name.filter(|h| self.out.hosts.contains_key(h)) {
            Some(h) => Some(h),
            None => {
                r.errors.push(wrong_type(
                    attr,
                    &attr.loc,
                    "host",
                    "a reference to a host block",
                    &v,
                    "host.db1",
                ));
                None
            }
        }
    }

    /// Evaluates `for_each`: `None` on error, `Some(None)` without for_each, else the
    /// instances as (key, each object) and whether for_each is sensitive.
    fn instances(&mut self, block: &RawBlock) -> Option<(Option<Instances>, bool)> {
        let Some(attr) = block.attr("for_each") else {
            let instance = format!("{}.{}", block.kind, block.label());
            self.expiry(block, &instance, self.ctx());
            return Some((None, false));
        };
        let sensitive = self.is_sensitive(attr, false);
        let v = match evaluate(&attr.expr, &attr.loc, &self.ctx()) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let each = |k: &str, v: Value| obj(vec![("key", Value::from(k)), ("value", v)]);
        let out = match v {
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| (k.clone(), each(&k, v)))
                .collect(),
            Value::Array(items) => {
                let mut out: Vec<(String, Value)> = Vec::new();
                for (i, item) in items.into_iter().enumerate() {
                    let Value::String(s) = item else {
                        self.errors.push(
                            ConfigError::new(
                                ErrorKind::WrongType,
                                format!("wrong type for \"for_each\": element {i} is {}, expected a string", describe(&item)),
                            )
                            .at(&attr.loc, "not a set of strings")
                            .help("for_each takes a map, or a set or list of strings"),
                        );
                        return None;
                    };
                    if !out.iter().any(|(k, _)| *k == s) {
                        out.push((s.clone(), each(&s, Value::from(s.as_str()))));
                    }
                }
                out
            }
            other => {
                self.errors.push(wrong_type(
                    attr,
                    &attr.loc,
                    "for_each",
                    "a map or a set of strings",
                    &other,
                    "var.apps",
                ));
                return None;
            }
        };
        for (key, each) in &out {
            let mut ctx = self.ctx();
            ctx.declare_var("each", each.clone());
            let instance = format!("{}.{}[{}]", block.kind, block.label(), quote(key));
            self.expiry(block, &instance, ctx);
        }
        Some((Some(out), sensitive))
    }

    /// Records the expiry of one instance, if its block's `lifecycle` gives one.
    fn expiry(&mut self, block: &RawBlock, instance: &str, ctx: Context<'static>) {
        if let Some(e) = crate::expiry::read(block, instance, &ctx, self.errors) {
            self.out.expiries.push(e);
        }
    }
}

/// Quotes an instance key like a JSON string, as addresses show it.
pub(crate) fn quote(key: &str) -> String {
    serde_json::to_string(key).expect("strings always serialize")
}

pub(crate) use database::lower as lower_database;
