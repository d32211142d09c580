//! Block kinds: evaluating each top-level block (with all its instances) into its
//! value under its namespace and the resources it owns.
//!
//! Each evaluated block is declared in the hcl-rs context under its namespace before
//! its dependents run. Inside a tenant instance, databases and volumes are evaluated
//! first, then the app block with `self` declared.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hcl::edit::expr::Expression;
use hcl::eval::{Context, Evaluate};
use hcl::{Map, Value};
use serde_json::Value as Json;
use terrace_provider::Address;

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use crate::expr::evaluate;
use crate::graph::NodeRef;
use crate::hashed::Hashed;
use crate::kind::Schemas;
use crate::model::{DbInstance, DbItem, DockerItem, Evaluated, HostItem, Kind, Node, Targets};
use crate::read::*;
use crate::refs::{InstanceKey, Ref, Target};
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
mod placement;
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
    /// The functions; [`State::ctx`] adds the values the node being evaluated reads.
    base: Context<'static>,
    /// What the node being evaluated reads.
    reads: Reads,
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
    /// names: a value equal to one of them is a reference to it (the first evaluated).
    docker_values: BTreeMap<Kind, HashMap<Hashed<Value>, String>>,
    /// Templates read before evaluation, by file block label.
    templates: &'a Templates,
    /// Evaluated file instances by value: a value equal to one of them is a reference
    /// to it (the first evaluated).
    file_values: HashMap<Hashed<Value>, hosted::FileValue>,
    out: Evaluated,
    errors: &'a mut Vec<ConfigError>,
    /// Where the state says tenant instances were placed (instance → host address).
    prior: &'a BTreeMap<String, String>,
    /// Each host instance's value, by id (`web["a"]`): a placed tenant's `self.host`.
    host_values: HashMap<String, Value>,
    /// The service id a `service = service.X` attribute that is the same in every
    /// instance (see [`instance_invariant`]) refers to, by the attribute's address (the
    /// declarations outlive evaluation), for the node being evaluated: evaluating it
    /// cloned the service's value per instance.
    invariant_services: std::cell::RefCell<HashMap<usize, String>>,
    /// The nodes whose value some node reads (`None`: every node's, as a node reads
    /// values its references do not name); see [`State::with_readers`].
    read: Option<HashSet<Node>>,
    /// Some node reads the value of the node being evaluated. A tenant's value, built
    /// per instance and read by nobody in most configurations, was 230 of the 320 MB
    /// that evaluating 100,000 tenants allocated, and a fifth of its time.
    value_read: bool,
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
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        State {
            decls,
            schemas,
            vars,
            base,
            reads: Reads::default(),
            fs,
            ns: Namespaces::default(),
            sensitive_locals: BTreeSet::new(),
            self_sensitive: Vec::new(),
            docker_values: BTreeMap::new(),
            templates,
            file_values: HashMap::new(),
            out: Evaluated::default(),
            errors,
            prior: &NONE,
            host_values: HashMap::new(),
            invariant_services: Default::default(),
            read: None,
            value_read: true,
        }
    }

    /// Where the state says tenant instances were placed (instance → host address).
    pub(crate) fn with_prior_placements(mut self, prior: &'a BTreeMap<String, String>) -> Self {
        self.prior = prior;
        self
    }

    /// Records which nodes' values are read, from every node's references (`order` is
    /// every node evaluated): the others need not build theirs.
    pub(crate) fn with_readers(
        mut self,
        refs: &BTreeMap<Node, Vec<NodeRef>>,
        order: &[Node],
    ) -> Self {
        self.read = if order.iter().any(|n| self.reads_everything(n)) {
            None
        } else {
            let targets = refs.values().flatten();
            Some(
                targets
                    .filter_map(|r| crate::model::target_node(&r.target))
                    .collect(),
            )
        };
        self
    }

    /// Evaluates one node, whose references are `refs`; false if it failed (its errors
    /// are recorded).
    pub(crate) fn eval_node(&mut self, node: &Node, refs: &[NodeRef]) -> bool {
        self.invariant_services.get_mut().clear();
        self.value_read = self.read.as_ref().is_none_or(|r| r.contains(node));
        self.reads = Reads::new(refs, self.reads_everything(node));
        (self.reads.for_each_calls, self.reads.body_calls) = self.calls_functions(node);
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

    /// Declares in `ctx` the values `reads` names, or every value. `var`, `local` and
    /// the namespaces of the blocks read are declared (empty ones too, so that
    /// evaluation errors name the missing key rather than the namespace); the others
    /// cannot be read (references are checked before evaluation), and declaring them
    /// made every instance's context, cloned several times, carry a dozen entries.
    ///
    /// In an instance's context (`instance` given), a value read only at keys known
    /// per instance (`var.apps[each.key]`, see [`Reads::keyed`]) is declared with just
    /// those entries: a copy of the whole map per instance, and hcl-rs's copy of it on
    /// every lookup, made a block over 10,000 entries take 10 s.
    fn declare_in(
        &self,
        ctx: &mut Context<'static>,
        vars: &Variables,
        reads: Option<&[Target]>,
        instance: Option<(&Keyed, &Value)>,
    ) {
        let Some(reads) = reads else {
            let var = vars.values.iter().map(|(k, v)| (k.clone(), v.clone()));
            ctx.declare_var("var", Value::Object(var.collect()));
            ctx.declare_var("local", Value::Object(self.locals.clone()));
            for kind in Kind::ALL {
                ctx.declare_var(kind.keyword(), Value::Object(self.of(*kind).clone()));
            }
            return;
        };
        self.read_values(vars, reads, instance, |_| true)
            .declare(ctx, true);
    }

    /// Declares again in `ctx`, a context of the node shared by its instances, the
    /// namespaces holding a value read at keys known per instance, for the instance
    /// whose `each` is `each`; the others stay as declared.
    fn declare_keyed(
        &self,
        ctx: &mut Context<'static>,
        vars: &Variables,
        reads: &[Target],
        keyed: &Keyed,
        each: &Value,
    ) {
        let namespace = |t: &Target| match t {
            Target::Var(_) => Some("var"),
            Target::Local(_) => Some("local"),
            Target::Block(kind, _) => Some(kind.keyword()),
            Target::SelfRef(_) | Target::EachKey | Target::EachValue => None,
        };
        let in_keyed = |t: &Target| keyed.keys().any(|k| namespace(k) == namespace(t));
        self.read_values(vars, reads, Some((keyed, each)), in_keyed)
            .declare(ctx, false);
    }

    /// The values of the targets of `reads` that `wanted` picks, by namespace.
    fn read_values(
        &self,
        vars: &Variables,
        reads: &[Target],
        instance: Option<(&Keyed, &Value)>,
        wanted: impl Fn(&Target) -> bool,
    ) -> ReadValues {
        let mut out = ReadValues::default();
        for target in reads.iter().filter(|t| wanted(t)) {
            let (name, from, to) = match target {
                Target::Var(n) => (n, vars.values.get(n), out.var.get_or_insert_default()),
                Target::Local(n) => (n, self.locals.get(n), out.local.get_or_insert_default()),
                Target::Block(kind, n) => (
                    n,
                    self.of(*kind).get(n),
                    out.blocks[kind.index()].get_or_insert_default(),
                ),
                Target::SelfRef(_) | Target::EachKey | Target::EachValue => continue,
            };
            // A value that failed is absent: its dependents are not evaluated.
            if let Some(v) = from {
                let keys = instance.and_then(|(keyed, each)| Some((keyed.get(target)?, each)));
                let v = match keys.and_then(|(keys, each)| entries(v, keys, each)) {
                    Some(entries) => entries,
                    None => v.clone(),
                };
                to.insert(name.clone(), v);
            }
        }
        out
    }
}

/// Values read by a node, by namespace (`None`: none read from it).
#[derive(Default)]
struct ReadValues {
    var: Option<Map<String, Value>>,
    local: Option<Map<String, Value>>,
    /// By [`Kind::index`].
    blocks: [Option<Map<String, Value>>; Kind::COUNT],
}

impl ReadValues {
    /// Declares the namespaces read from; `var` and `local` also when none was if
    /// `always`.
    fn declare(self, ctx: &mut Context<'static>, always: bool) {
        for (name, values) in [("var", self.var), ("local", self.local)] {
            match values {
                Some(values) => ctx.declare_var(name, Value::Object(values)),
                None if always => ctx.declare_var(name, Value::Object(Map::new())),
                None => {}
            }
        }
        for (kind, values) in Kind::ALL.iter().zip(self.blocks) {
            if let Some(values) = values {
                ctx.declare_var(kind.keyword(), Value::Object(values));
            }
        }
    }
}

/// The entries of object `value` at `keys` evaluated for the instance whose `each` is
/// `each` (the keys it lacks left out, so that a lookup fails as it would on the whole);
/// `None` if `value` is not an object or a key is not a string.
fn entries(value: &Value, keys: &[InstanceKey], each: &Value) -> Option<Value> {
    let Value::Object(map) = value else {
        return None;
    };
    let mut out = Map::with_capacity(keys.len());
    for k in keys {
        let k = k.eval(each)?;
        if let Some(v) = map.get(&k) {
            out.insert(k, v.clone());
        }
    }
    Some(Value::Object(out))
}

/// The values a node's instances read only at keys known per instance, with those keys.
type Keyed = BTreeMap<Target, Vec<InstanceKey>>;

/// The references of the node being evaluated: its contexts declare only the values
/// they name. A context holding every value evaluated so far, built for every local
/// and every instance, made evaluation quadratic; this one costs what the node reads.
#[derive(Debug, Default)]
struct Reads {
    /// Read by the block's `for_each`, evaluated before its instances.
    for_each: Vec<Target>,
    /// Read anywhere else (in every instance).
    body: Vec<Target>,
    /// The node reads values not known before evaluation (a file's template whose
    /// path is computed): its contexts declare every value.
    everything: bool,
    /// The block's `for_each` calls a function: its context declares the functions.
    for_each_calls: bool,
    /// Anything else in the node calls a function (or renders a template): the
    /// instances' contexts declare the functions.
    body_calls: bool,
    /// The values of `body` that every reference outside `for_each` reads at a key
    /// known per instance (`var.apps[each.key].db`), with those keys.
    keyed: Keyed,
}

impl Reads {
    fn new(refs: &[NodeRef], everything: bool) -> Self {
        let mut out = Reads {
            everything,
            ..Reads::default()
        };
        for r in refs {
            let to = if r.in_for_each {
                &mut out.for_each
            } else {
                &mut out.body
            };
            to.push(r.target.clone());
        }
        for list in [&mut out.for_each, &mut out.body] {
            list.sort();
            list.dedup();
        }
        // `None` once a reference reads the target otherwise.
        let mut keyed: BTreeMap<&Target, Option<Vec<InstanceKey>>> = BTreeMap::new();
        for r in refs.iter().filter(|r| !r.in_for_each) {
            let keys = keyed.entry(&r.target).or_insert_with(|| Some(Vec::new()));
            match (keys.as_mut(), &r.key) {
                (Some(keys), Some(k)) => {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
                _ => *keys = None,
            }
        }
        // A node that reads everything declares every value whole; `each` and `self`
        // are not values of a namespace.
        out.keyed = keyed
            .into_iter()
            .filter(|(target, _)| {
                !everything
                    && matches!(
                        target,
                        Target::Var(_) | Target::Local(_) | Target::Block(..)
                    )
            })
            .filter_map(|(target, keys)| Some((target.clone(), keys?)))
            .collect();
        out
    }
}

/// True if an attribute has the same value in every instance of its block within one
/// evaluation: it reads neither `each` nor `self`, and calls no function (a function may
/// not be pure).
fn instance_invariant(attr: &RawAttr) -> bool {
    attr.refs().iter().all(|r| {
        !matches!(
            r.target,
            Target::EachKey | Target::EachValue | Target::SelfRef(_)
        )
    }) && !attr.calls_function()
}

/// The blocks every reference of these attributes points at, once each.
fn block_targets<'a>(attrs: impl IntoIterator<Item = &'a RawAttr>) -> Targets {
    let mut out: Vec<Target> = attrs
        .into_iter()
        .flat_map(|a| crate::refs::collect(&a.expr).0)
        .map(|r| r.target)
        .collect();
    out.sort();
    out.dedup();
    out.into()
}

/// The targets of a block inside a tenant: the tenant's own and the inner block's,
/// found once per block and shared by its instances.
fn joined_targets(outer: &Targets, inner: &RawBlock) -> Targets {
    let mut out = outer.to_vec();
    out.extend(block_targets(&inner.attrs).iter().cloned());
    out.sort();
    out.dedup();
    out.into()
}

impl State<'_> {
    /// The context of the node being evaluated (outside its `for_each`).
    fn ctx(&self) -> Context<'static> {
        self.ctx_reading(&self.reads.body, self.reads.body_calls)
    }

    /// A context declaring the values `reads` names (every value if the node reads
    /// values not known beforehand), and the functions if `calls`.
    fn ctx_reading(&self, reads: &[Target], calls: bool) -> Context<'static> {
        self.ctx_with(reads, calls, None)
    }

    /// Makes `ctx`, a context of the node shared by its instances, the context of the
    /// instance whose `each` is `each`.
    fn enter_instance(&self, ctx: &mut Context<'static>, each: Value) {
        if !self.reads.keyed.is_empty() {
            let reads = &self.reads;
            self.ns
                .declare_keyed(ctx, self.vars, &reads.body, &reads.keyed, &each);
        }
        ctx.declare_var("each", each);
    }

    /// The context of one instance of the node being evaluated, `each` declared in it.
    fn instance_ctx(&self, each: Value) -> Context<'static> {
        let mut ctx = self.ctx_with(
            &self.reads.body,
            self.reads.body_calls,
            Some((&self.reads.keyed, &each)),
        );
        ctx.declare_var("each", each);
        ctx
    }

    /// [`State::ctx_reading`], in the context of the instance `each` gives, if any.
    fn ctx_with(
        &self,
        reads: &[Target],
        calls: bool,
        each: Option<(&Keyed, &Value)>,
    ) -> Context<'static> {
        let mut ctx = if calls || self.reads.everything {
            self.base.clone()
        } else {
            Context::new()
        };
        let reads = (!self.reads.everything).then_some(reads);
        self.ns.declare_in(&mut ctx, self.vars, reads, each);
        ctx
    }

    /// Whether the node's `for_each`, and anything else in it, call functions. A file
    /// block renders a template, which may call any: its instances get them all.
    fn calls_functions(&self, node: &Node) -> (bool, bool) {
        fn any_call(block: &RawBlock, skip: Option<&RawAttr>) -> bool {
            block
                .attrs
                .iter()
                .filter(|a| !skip.is_some_and(|s| std::ptr::eq(*a, s)))
                .any(|a| crate::refs::calls_function(&a.expr))
                || block.blocks.iter().any(|b| any_call(b, None))
        }
        let Some(block) = self.decls.block(node) else {
            let Node::Local(name) = node else {
                return (true, true);
            };
            let calls = self
                .decls
                .locals
                .get(name)
                .is_none_or(|a| crate::refs::calls_function(&a.expr));
            return (false, calls);
        };
        let for_each = block.attr("for_each");
        let for_each_calls = for_each.is_some_and(|a| crate::refs::calls_function(&a.expr));
        let body_calls = matches!(node, Node::Block(Kind::File, _)) || any_call(block, for_each);
        (for_each_calls, body_calls)
    }

    /// True if a node reads values its references do not name: a file block whose
    /// template is read only during evaluation (its path is computed, or `content` is
    /// there too, for instances where it is null); the graph orders it after every
    /// host and local value, which its template may read.
    fn reads_everything(&self, node: &Node) -> bool {
        let Node::Block(Kind::File, label) = node else {
            return false;
        };
        let block = &self.decls.of(Kind::File)[label];
        block.attr("source").is_some() && !self.templates.contains_key(label)
    }

    /// True if an expression refers to a sensitive variable, a sensitive local,
    /// `each.value` of a sensitive for_each, a database password, or a sensitive part
    /// of `self`.
    fn is_sensitive(&self, attr: &RawAttr, each_sensitive: bool) -> bool {
        self.refs_sensitive(attr.refs(), each_sensitive)
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

    /// Reads `host = host.NAME` (or `host.NAME["key"]`); the host's id; errors go to `r`.
    fn host_attr(&self, r: &mut Reader, block: &RawBlock) -> Option<String> {
        let attr = block.attr("host")?;
        let v = r.value(attr)?;
        match block_id(&v, Kind::Host).filter(|h| self.out.hosts.contains_key(h)) {
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

    /// Evaluates every instance of block `label` of `kind` with `one(state, id, key,
    /// context, each_sensitive)` and declares its value: the instance's own without
    /// for_each, a map by key with it. False if any instance had errors.
    fn each_instance(
        &mut self,
        kind: Kind,
        label: &str,
        one: impl Fn(&mut Self, &str, Option<&str>, Context<'static>, bool) -> Option<Value>,
    ) -> bool {
        let block = &self.decls.of(kind)[label];
        let Some((instances, each_sensitive)) = self.instances(block) else {
            return false;
        };
        let Some(instances) = instances else {
            let ctx = self.ctx();
            let Some(value) = one(self, label, None, ctx, false) else {
                return false;
            };
            self.ns.declare(kind, label, value);
            return true;
        };
        let mut ok = true;
        let mut values = Map::new();
        for (key, each) in instances {
            let ctx = self.instance_ctx(each);
            let id = instance_id(label, Some(&key));
            match one(self, &id, Some(&key), ctx, each_sensitive) {
                Some(v) => {
                    values.insert(key, v);
                }
                None => ok = false,
            }
        }
        self.ns.declare(kind, label, Value::Object(values));
        ok
    }

    /// Evaluates `for_each`: `None` on error, `Some(None)` without for_each, else the
    /// instances as (key, each object) and whether for_each is sensitive.
    fn instances(&mut self, block: &RawBlock) -> Option<(Option<Instances>, bool)> {
        let Some(attr) = block.attr("for_each") else {
            if crate::expiry::declared(block) {
                let instance = format!("{}.{}", block.kind, block.label());
                self.expiry(block, &instance, self.ctx());
            }
            return Some((None, false));
        };
        let sensitive = self.is_sensitive(attr, false);
        let v = match evaluate(
            attr,
            &self.ctx_reading(&self.reads.for_each, self.reads.for_each_calls),
        ) {
            Ok(v) => v,
            Err(e) => {
                self.errors.push(e);
                return None;
            }
        };
        let each = |k: &str, v: Value| {
            let mut each = Map::with_capacity(2);
            each.insert("key".to_string(), Value::from(k));
            each.insert("value".to_string(), v);
            Value::Object(each)
        };
        let out = match v {
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| (k.clone(), each(&k, v)))
                .collect(),
            Value::Array(items) => {
                let mut out: Vec<(String, Value)> = Vec::with_capacity(items.len());
                // Borrowed: a copy of every key for this check cost an allocation each.
                let mut seen: HashSet<&str> = HashSet::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let Value::String(s) = item else {
                        self.errors.push(
                            ConfigError::new(
                                ErrorKind::WrongType,
                                format!("wrong type for \"for_each\": element {i} is {}, expected a string", describe(item)),
                            )
                            .at(&attr.loc, "not a set of strings")
                            .help("for_each takes a map, or a set or list of strings"),
                        );
                        return None;
                    };
                    if seen.insert(s) {
                        out.push((s.clone(), each(s, Value::from(s.as_str()))));
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
        // Only a block with an expiry needs a context per instance here.
        let expires = crate::expiry::declared(block);
        for (key, each) in out.iter().filter(|_| expires) {
            let ctx = self.instance_ctx(each.clone());
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

/// The id of one instance of a block: its label, with the quoted key of a for_each
/// instance (`web["a"]`), as its address (`host.web["a"]`) and provider key show it.
pub(crate) fn instance_id(label: &str, key: Option<&str>) -> String {
    match key {
        Some(k) => format!("{label}[{}]", quote(k)),
        None => label.to_string(),
    }
}

/// The id of the host or service instance a value refers to (see [`instance_id`]): its
/// `instance` (the instance's address) without the kind (`host.web["a"]` is `web["a"]`).
pub(crate) fn block_id(v: &Value, kind: Kind) -> Option<String> {
    let o = v.as_object()?;
    let address = o.get("instance").and_then(Value::as_str)?;
    address
        .strip_prefix(kind.keyword())
        .and_then(|a| a.strip_prefix('.'))
        .map(str::to_string)
}

/// Quotes an instance key like a JSON string, as addresses show it.
pub(crate) fn quote(key: &str) -> String {
    serde_json::to_string(key).expect("strings always serialize")
}

pub(crate) use database::lower as lower_database;
pub(crate) use placement::check_hosts;
