//! Evaluating one expression with hcl-rs, attaching a location to any error.

use hcl::eval::{Context, Evaluate};
use hcl::Value;

use crate::diagnostics::{ConfigError, ErrorKind};
use crate::syntax::RawAttr;

/// Evaluates an attribute's expression, attaching its location to any error (hcl-rs
/// errors carry none). The expression converted for hcl-rs is kept for the next
/// evaluation (see [`RawAttr::evaluable`]).
pub(crate) fn evaluate(attr: &RawAttr, ctx: &Context<'static>) -> Result<Value, ConfigError> {
    attr.evaluable()
        .evaluate(ctx)
        .map_err(|e| located(e, &attr.loc))
}

/// [`evaluate`] for an attribute evaluated once (a local, a variable's default): the
/// converted expression is not kept (for a default listing 200,000 names, some
/// megabytes held to the end).
pub(crate) fn evaluate_once(attr: &RawAttr, ctx: &Context<'static>) -> Result<Value, ConfigError> {
    hcl::Expression::from(attr.expr.clone())
        .evaluate(ctx)
        .map_err(|e| located(e, &attr.loc))
}

/// An hcl-rs evaluation error as a diagnostic at `loc`.
fn located(e: hcl::eval::Error, loc: &crate::source::Loc) -> ConfigError {
    let help = match e.kind() {
        hcl::eval::ErrorKind::NoSuchKey(_) | hcl::eval::ErrorKind::Index(_) => {
            "the referenced value has no such key or index; check the name and the value it refers to"
        }
        hcl::eval::ErrorKind::FuncCall(..) => "check the function's arguments",
        _ => "check the types of the values this expression uses",
    };
    ConfigError::new(
        ErrorKind::Eval,
        format!("cannot evaluate expression: {}", e.kind()),
    )
    .at(loc, "while evaluating this expression")
    .help(help)
}
