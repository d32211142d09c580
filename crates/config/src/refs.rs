//! Finding the references in an expression, with their spans.
//!
//! The references decide evaluation order (the block graph), sensitivity and
//! cross-block dependencies; malformed or unknown names are reported here, before
//! evaluation, so they get a precise location.

use std::ops::Range;

use hcl::edit::expr::{Expression, ForExpr, FuncCall, Traversal, TraversalOperator};
use hcl::edit::template::{ForTemplateExpr, Template};
use hcl::edit::visit::{self, Visit};
use hcl::edit::{Decorated, Ident, Span};

use crate::diagnostics::{list_names, suggest, ErrorKind};
use crate::functions::FUNCTION_NAMES;
use crate::kind::Kind;

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    Var(String),
    Local(String),
    /// A labelled block: `host.web1`, `firewall_rule.ssh`.
    Block(Kind, String),
    /// `self.<attr>` inside a tenant's app block (`database` or `volume`).
    SelfRef(String),
    EachKey,
    EachValue,
}

/// One reference and where it is written.
#[derive(Debug, Clone)]
pub(crate) struct Ref {
    pub target: Target,
    pub span: Range<usize>,
    /// The attribute names and literal string keys that follow the target
    /// (`["k", "database", "password"]` for `tenant.t["k"].database.password`).
    pub path: Vec<String>,
    /// The index right after the target when it is computed from the instance's `each`
    /// and literals alone (`each.key` in `var.apps[each.key].db`): an instance reads
    /// only that entry of the target, and its context need hold no other.
    pub key: Option<InstanceKey>,
}

/// An index expression made of `each` and literals only, without function calls: its
/// value is known per instance before the instance is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InstanceKey(std::sync::Arc<hcl::Expression>);

impl InstanceKey {
    /// The key `expr` gives in the instance whose `each` is `each`; `None` when it is
    /// not a string (then no entry can be picked out by it).
    pub fn eval(&self, each: &hcl::Value) -> Option<String> {
        use hcl::eval::Evaluate;
        // `each.key`, by far the most common, is read without a context.
        if let hcl::Expression::Traversal(t) = &*self.0 {
            if let (hcl::Expression::Variable(v), [hcl::TraversalOperator::GetAttr(a)]) =
                (&t.expr, t.operators.as_slice())
            {
                if v.as_str() == "each" {
                    return match each.as_object()?.get(a.as_str())? {
                        hcl::Value::String(s) => Some(s.clone()),
                        _ => None,
                    };
                }
            }
        }
        let mut ctx = hcl::eval::Context::new();
        ctx.declare_var("each", each.clone());
        match self.0.evaluate(&ctx).ok()? {
            hcl::Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The key of `index` written where the names in `scope` are bound by enclosing
    /// `for` expressions; `None` unless it reads only the instance's `each`.
    fn of(index: &Expression, scope: &[String]) -> Option<InstanceKey> {
        #[derive(Default)]
        struct OnlyEach(bool);
        impl Visit for OnlyEach {
            fn visit_expr(&mut self, expr: &Expression) {
                match expr {
                    Expression::Variable(v) if v.as_str() != "each" => self.0 = false,
                    Expression::ForExpr(_) => self.0 = false,
                    _ => visit::visit_expr(self, expr),
                }
            }
            fn visit_func_call(&mut self, _: &FuncCall) {
                self.0 = false;
            }
        }
        if scope.iter().any(|s| s == "each") {
            return None;
        }
        let mut only = OnlyEach(true);
        only.visit_expr(index);
        only.0
            .then(|| InstanceKey(std::sync::Arc::new(index.clone().into())))
    }
}

impl Ref {
    /// True if the reference reads a password (`...database.password`), which is
    /// sensitive whether or not it came from a sensitive variable.
    pub fn reads_password(&self) -> bool {
        matches!(
            self.target,
            Target::Block(Kind::Tenant | Kind::Database, _) | Target::SelfRef(_)
        ) && self.path.iter().any(|p| p == "password")
    }
}

/// A malformed reference found while walking.
#[derive(Debug, Clone)]
pub(crate) struct RefProblem {
    pub kind: ErrorKind,
    pub span: Range<usize>,
    pub message: String,
    pub label: String,
    pub help: String,
}

/// Names a reference can start with besides the block kinds' keywords.
const VALUE_ROOTS: &[&str] = &["var", "local"];
/// Names that are only valid in some places.
const SCOPED_ROOTS: &[&str] = &["each", "self"];

/// The roots a plain reference example can start with (all but `each` and `self`).
fn named_roots() -> Vec<&'static str> {
    let mut out = VALUE_ROOTS.to_vec();
    out.extend(Kind::ALL.iter().map(|k| k.keyword()));
    out
}

/// Every name a reference can start with.
fn roots() -> Vec<&'static str> {
    let mut out = named_roots();
    out.extend(SCOPED_ROOTS);
    out
}

/// The attributes `self` has inside a tenant's app block.
pub(crate) const SELF_ATTRS: &[&str] = &["database", "redis", "volume", "host"];

/// Collects the references of an expression.
pub(crate) fn collect(expr: &Expression) -> (Vec<Ref>, Vec<RefProblem>) {
    let mut w = Walker::default();
    w.visit_expr(expr);
    (w.refs, w.problems)
}

/// True if an expression calls a function. Contexts declare the functions only for
/// expressions that call them: cloning their definitions into the context of every
/// instance cost more than the rest of evaluating it.
pub(crate) fn calls_function(expr: &Expression) -> bool {
    #[derive(Default)]
    struct Calls(bool);
    impl Visit for Calls {
        fn visit_func_call(&mut self, _: &FuncCall) {
            self.0 = true;
        }
    }
    let mut c = Calls::default();
    c.visit_expr(expr);
    c.0
}

/// Collects the references of a template (a file block's `source`).
pub(crate) fn collect_template(template: &Template) -> (Vec<Ref>, Vec<RefProblem>) {
    let mut w = Walker::default();
    w.visit_template(template);
    (w.refs, w.problems)
}

#[derive(Default)]
struct Walker {
    /// Names bound by enclosing `for` expressions.
    scope: Vec<String>,
    refs: Vec<Ref>,
    problems: Vec<RefProblem>,
}

fn span_of<T>(d: &Decorated<T>) -> Range<usize> {
    d.span().unwrap_or(0..0)
}

impl Walker {
    fn root(&mut self, var: &Decorated<Ident>, traversal: Option<&Traversal>) {
        let name = var.as_str();
        if self.scope.iter().any(|s| s == name) {
            return;
        }
        let start = span_of(var).start;
        let first = traversal.and_then(|t| t.operators.first());
        let attr = first.and_then(|op| match op.value() {
            TraversalOperator::GetAttr(ident) => Some(ident),
            _ => None,
        });
        let roots = roots();
        if !roots.contains(&name) {
            let mut candidates: Vec<&str> = roots;
            candidates.extend(self.scope.iter().map(String::as_str));
            let help = suggest(name, candidates.iter().copied(), |_| {
                format!(
                    "references start with {}, e.g. var.example",
                    list_names(&named_roots())
                )
            });
            self.problems.push(RefProblem {
                kind: ErrorKind::UnknownReference,
                span: span_of(var),
                message: format!("unknown name \"{name}\""),
                label: "not a known reference".into(),
                help,
            });
            return;
        }
        let Some(attr) = attr else {
            let example = match name {
                "each" => "each.key",
                "self" => "self.database.name",
                _ => "var.example",
            };
            self.problems.push(RefProblem {
                kind: ErrorKind::UnknownReference,
                span: traversal
                    .and_then(|t| t.span())
                    .unwrap_or_else(|| span_of(var)),
                message: format!("`{name}` must be followed by `.name`"),
                label: "incomplete reference".into(),
                help: format!("write a reference like {example}"),
            });
            return;
        };
        let span = start..span_of(attr).end;
        let key = attr.as_str().to_string();
        let path: Vec<String> = traversal
            .map(|t| {
                t.operators
                    .iter()
                    .skip(1)
                    .filter_map(|op| match op.value() {
                        TraversalOperator::GetAttr(i) => Some(i.as_str().to_string()),
                        TraversalOperator::Index(e) => e.as_str().map(str::to_string),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let instance_key =
            traversal
                .and_then(|t| t.operators.get(1))
                .and_then(|op| match op.value() {
                    TraversalOperator::Index(e) => InstanceKey::of(e, &self.scope),
                    _ => None,
                });
        let target = match (name, Kind::from_keyword(name)) {
            (_, Some(kind)) => Target::Block(kind, key),
            ("var", None) => Target::Var(key),
            ("local", None) => Target::Local(key),
            ("self", None) => {
                if !SELF_ATTRS.contains(&key.as_str()) {
                    self.problems.push(RefProblem {
                        kind: ErrorKind::UnknownReference,
                        span,
                        message: format!("`self` has no attribute \"{key}\""),
                        label: "unknown attribute".into(),
                        help: suggest(&key, SELF_ATTRS.iter().copied(), |all| {
                            format!("`self` has {}", list_names(&all))
                        }),
                    });
                    return;
                }
                Target::SelfRef(key)
            }
            ("each", None) => match key.as_str() {
                "key" => Target::EachKey,
                "value" => Target::EachValue,
                _ => {
                    self.problems.push(RefProblem {
                        kind: ErrorKind::UnknownReference,
                        span,
                        message: format!("`each` has no attribute \"{key}\""),
                        label: "unknown attribute".into(),
                        help: "use each.key or each.value".into(),
                    });
                    return;
                }
            },
            // Any other name is not a root: reported above.
            (_, None) => return,
        };
        self.refs.push(Ref {
            target,
            span,
            path,
            key: instance_key,
        });
    }

    fn scoped(
        &mut self,
        key: Option<&Decorated<Ident>>,
        value: &Decorated<Ident>,
        f: impl FnOnce(&mut Self),
    ) {
        let depth = self.scope.len();
        if let Some(k) = key {
            self.scope.push(k.as_str().to_string());
        }
        self.scope.push(value.as_str().to_string());
        f(self);
        self.scope.truncate(depth);
    }
}

impl Visit for Walker {
    fn visit_expr(&mut self, expr: &Expression) {
        match expr {
            Expression::Variable(var) => self.root(var, None),
            Expression::Traversal(t) => match &t.expr {
                Expression::Variable(var) => {
                    self.root(var, Some(t));
                    for op in &t.operators {
                        self.visit_traversal_operator(op);
                    }
                }
                _ => visit::visit_traversal(self, t),
            },
            _ => visit::visit_expr(self, expr),
        }
    }

    fn visit_for_expr(&mut self, node: &ForExpr) {
        // The collection is evaluated outside the loop's scope.
        self.visit_expr(&node.intro.collection_expr);
        self.scoped(node.intro.key_var.as_ref(), &node.intro.value_var, |w| {
            if let Some(k) = &node.key_expr {
                w.visit_expr(k);
            }
            w.visit_expr(&node.value_expr);
            if let Some(c) = &node.cond {
                w.visit_expr(&c.expr);
            }
        });
    }

    fn visit_for_template_expr(&mut self, node: &ForTemplateExpr) {
        self.visit_expr(&node.collection_expr);
        self.scoped(node.key_var.as_ref(), &node.value_var, |w| {
            w.visit_template(&node.template);
        });
    }

    fn visit_func_call(&mut self, node: &FuncCall) {
        let name = node.name.name.as_str();
        if !node.name.namespace.is_empty() || !FUNCTION_NAMES.contains(&name) {
            self.problems.push(RefProblem {
                kind: ErrorKind::UnknownFunction,
                span: span_of(&node.name.name),
                message: format!("unknown function \"{name}\""),
                label: "no such function".into(),
                help: suggest(name, FUNCTION_NAMES.iter().copied(), |all| {
                    format!("available functions: {}", all.join(", "))
                }),
            });
        }
        let first_ref = self.refs.len();
        visit::visit_func_args(self, &node.args);
        // `lookup(var.apps, each.key, default)` reads one entry of the map, as
        // `var.apps[each.key]` does: the same answer from that entry alone.
        if name != "lookup" || !node.name.namespace.is_empty() {
            return;
        }
        let (Some(map), Some(key)) = (node.args.get(0), node.args.get(1)) else {
            return;
        };
        let Expression::Traversal(t) = map else {
            return;
        };
        let whole_value = matches!(t.expr, Expression::Variable(_))
            && t.operators.len() == 1
            && matches!(t.operators[0].value(), TraversalOperator::GetAttr(_));
        // The reference the map argument made (none if its root is a `for` name).
        let start = map.span().map(|s| s.start);
        let read = self
            .refs
            .get_mut(first_ref)
            .filter(|r| Some(r.span.start) == start);
        if let (true, Some(read)) = (whole_value, read) {
            read.key = InstanceKey::of(key, &self.scope);
        }
    }
}
