//! `moved` blocks: objects the state records under an old address that the
//! configuration now gives a new one (a renamed tenant key), so that the plan moves them
//! in the state instead of destroying and creating them. The binary applies the moves
//! to the state; here they are only read and checked.

use hcl::edit::expr::Expression;

use crate::diagnostics::{ConfigError, ErrorKind};
use crate::model::Kind;
use crate::spec::Moved;
use crate::syntax::{Decls, RawAttr};

/// The moves of every `moved` block, checked: both ends are addresses of blocks that
/// own resources, the destination is declared, and no address moves twice.
pub(crate) fn collect(decls: &Decls, errors: &mut Vec<ConfigError>) -> Vec<Moved> {
    let mut out: Vec<Moved> = Vec::new();
    for block in &decls.moved {
        let (Some(from), Some(to)) = (block.attr("from"), block.attr("to")) else {
            continue; // reported by the schema check
        };
        let (Some(from_addr), Some(to_addr)) = (address(from, errors), address(to, errors)) else {
            continue;
        };
        if from_addr == to_addr {
            errors.push(
                ConfigError::new(ErrorKind::InvalidValue, "a move to the same address")
                    .at(&to.loc, "the same as `from`")
                    .help("remove this moved block"),
            );
            continue;
        }
        let (kind, label) = root(&to_addr).expect("checked by address()");
        if !decls.of(kind).contains_key(label) {
            errors.push(
                ConfigError::new(
                    ErrorKind::UnknownReference,
                    format!("moved to {to_addr}, which the configuration does not declare"),
                )
                .at(&to.loc, "not declared")
                .help(format!(
                    "declare {} \"{label}\" (or correct `to`)",
                    kind.keyword()
                )),
            );
            continue;
        }
        if out.iter().any(|m| m.from == from_addr) {
            errors.push(
                ConfigError::new(
                    ErrorKind::Duplicate,
                    format!("{from_addr} is moved more than once"),
                )
                .at(&from.loc, "moved again here")
                .help("keep one moved block per old address"),
            );
            continue;
        }
        out.push(Moved {
            from: from_addr,
            to: to_addr,
        });
    }
    out
}

/// The kind and label an address starts with (`tenant.app["x"].database` →
/// (Tenant, "app")), if its root is a kind.
fn root(address: &str) -> Option<(Kind, &str)> {
    let (keyword, rest) = address.split_once('.')?;
    let kind = Kind::from_keyword(keyword)?;
    let end = rest.find(['.', '[']).unwrap_or(rest.len());
    Some((kind, &rest[..end]))
}

/// The address an attribute writes as a reference (`tenant.app["old"]`), or an error.
fn address(attr: &RawAttr, errors: &mut Vec<ConfigError>) -> Option<String> {
    let text = match &attr.expr {
        Expression::Traversal(_) => {
            let mut e = attr.expr.clone();
            hcl::edit::Decorate::decor_mut(&mut e).clear();
            e.to_string()
        }
        _ => String::new(),
    };
    let text: String = text.split_whitespace().collect();
    match root(&text) {
        Some((kind, label)) if kind.owns_resources() && !label.is_empty() => Some(text),
        _ => {
            errors.push(
                ConfigError::new(
                    ErrorKind::InvalidValue,
                    format!("`{}` must be the address of a block or resource", attr.key),
                )
                .at(&attr.loc, "not an address")
                .help("write it as a reference, without quotes: tenant.app[\"old\"], database.shop or tenant.app[\"old\"].database"),
            );
            None
        }
    }
}
