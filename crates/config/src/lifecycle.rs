//! The `lifecycle { ... }` meta-block, accepted by every top-level block that owns
//! resources (`syntax::LIFECYCLE`) and carried by each resource the block lowers to:
//!
//! ```hcl
//! lifecycle {
//!   prevent_destroy = true
//!   ignore_changes  = [connection_limit, "owner"]
//! }
//! ```
//!
//! Both values are literals, as in Terraform: they decide what a plan may do, so they
//! must be readable without evaluating anything.
//!
//! A `service` block's resources default to `prevent_destroy = true` (shared data);
//! `lifecycle { prevent_destroy = false }` in the block allows destroying them.

use std::collections::{BTreeMap, BTreeSet};

use hcl::edit::expr::Expression;
use terrace_provider::{DesiredResource, Lifecycle, Presence, ResourceSchema};

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use crate::model::{Kind, Node};
use crate::read::item_loc;
use crate::source::Loc;
use crate::syntax::Decls;

/// A block's lifecycle, with where each `ignore_changes` name is written.
#[derive(Debug, Clone, Default)]
pub(crate) struct Declared {
    pub lifecycle: Lifecycle,
    /// `(name, location)` of each `ignore_changes` element.
    pub names: Vec<(String, Loc)>,
}

/// Reads the `lifecycle` block of every block that has one.
pub(crate) fn collect(decls: &Decls, errors: &mut Vec<ConfigError>) -> BTreeMap<Node, Declared> {
    let mut out = BTreeMap::new();
    for kind in Kind::ALL.iter().filter(|k| k.owns_resources()) {
        // What a shared service owns (its container) holds every tenant's data: it is
        // protected unless its block says `prevent_destroy = false`.
        let mut d = Declared::default();
        d.lifecycle.prevent_destroy = *kind == Kind::Service;
        for (label, block) in decls.of(*kind) {
            let node = Node::Block(*kind, label.clone());
            let mut found = block.blocks.iter().filter(|b| b.kind == "lifecycle");
            let Some(first) = found.next() else {
                if d.lifecycle.prevent_destroy {
                    out.insert(node, d.clone());
                }
                continue;
            };
            for again in found {
                errors.push(
                    ConfigError::new(ErrorKind::Duplicate, "a block has two lifecycle blocks")
                        .at(&again.head_loc, "second lifecycle block")
                        .at(&first.head_loc, "first lifecycle block")
                        .help("merge them into one"),
                );
            }
            let mut d = d.clone();
            if let Some(attr) = first.attr("prevent_destroy") {
                match &attr.expr {
                    Expression::Bool(b) => d.lifecycle.prevent_destroy = *b.value(),
                    _ => errors.push(
                        ConfigError::new(
                            ErrorKind::WrongType,
                            "prevent_destroy must be the literal true or false",
                        )
                        .at(&attr.loc, "not a literal bool")
                        .help("write `prevent_destroy = true`; it cannot depend on variables"),
                    ),
                }
            }
            if let Some(attr) = first.attr("ignore_changes") {
                let example = "write it like `ignore_changes = [connection_limit, owner]`";
                match &attr.expr {
                    Expression::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let name = match item {
                                Expression::Variable(v) => Some(v.as_str().to_string()),
                                Expression::String(s) => Some(s.value().to_string()),
                                _ => None,
                            };
                            match name {
                                Some(n) => d.names.push((n, item_loc(attr, i))),
                                None => errors.push(
                                    ConfigError::new(
                                        ErrorKind::WrongType,
                                        format!("ignore_changes[{i}] is not an attribute name"),
                                    )
                                    .at(&item_loc(attr, i), "not an attribute name")
                                    .help(example),
                                ),
                            }
                        }
                    }
                    _ => errors.push(
                        ConfigError::new(
                            ErrorKind::WrongType,
                            "ignore_changes must be a list of attribute names",
                        )
                        .at(&attr.loc, "not a list")
                        .help(example),
                    ),
                }
                d.lifecycle.ignore_changes = d.names.iter().map(|(n, _)| n.clone()).collect();
            }
            out.insert(node, d);
        }
    }
    out
}

/// Checks each `ignore_changes` name against the attributes of the resource types the
/// block lowered to (`types`), with a located error and a suggestion for unknown ones.
pub(crate) fn check_names(
    declared: &Declared,
    types: &BTreeSet<String>,
    schemas: &dyn Fn(&str) -> Option<&'static ResourceSchema>,
    errors: &mut Vec<ConfigError>,
) {
    // A block that lowered to nothing (an empty `for_each`) has nothing to check against.
    // Nor does one whose types the caller gave no schema for (the language's own tests
    // pass only some providers' schemas).
    if types.is_empty() || types.iter().any(|t| schemas(t).is_none()) {
        return;
    }
    let known: BTreeSet<&'static str> = types
        .iter()
        .filter_map(|t| schemas(t))
        .flat_map(|s| s.attrs.iter())
        .filter(|a| a.presence != Presence::Output || a.observable)
        .map(|a| a.name)
        .collect();
    for (name, loc) in &declared.names {
        if !known.contains(name.as_str()) {
            let what = types.iter().cloned().collect::<Vec<_>>().join(", ");
            errors.push(
                ConfigError::new(
                    ErrorKind::UnknownAttribute,
                    format!("ignore_changes names \"{name}\", which the block's resources ({what}) do not have"),
                )
                .at(loc, "unknown attribute")
                .help(suggest(name, known.iter().copied(), |all| {
                    format!("attributes that can be ignored here: {}", list_names(&all))
                })),
            );
        }
    }
}

/// Sets the lifecycle of a resource lowered from a block that declares one.
pub(crate) fn apply(declared: Option<&Declared>, r: &mut DesiredResource) {
    if let Some(d) = declared {
        r.lifecycle = d.lifecycle.clone();
    }
}
