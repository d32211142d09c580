//! Evaluating one expression with hcl-rs, attaching a location to any error.

use hcl::eval::{Context, Evaluate};
use hcl::Value;

use crate::diagnostics::{ConfigError, ErrorKind};
use crate::syntax::RawAttr;

/// Evaluates an attribute's expression, attaching its location to any error (hcl-rs
/// errors carry none).
pub(crate) fn evaluate(attr: &RawAttr, ctx: &Context<'static>) -> Result<Value, ConfigError> {
    let loc = &attr.loc;
    attr.evaluable().evaluate(ctx).map_err(|e| {
        let help = match e.kind() {
            hcl::eval::ErrorKind::NoSuchKey(_) | hcl::eval::ErrorKind::Index(_) => {
                "the referenced value has no such key or index; check the name and the value it refers to"
            }
            hcl::eval::ErrorKind::FuncCall(..) => "check the function's arguments",
            _ => "check the types of the values this expression uses",
        };
        ConfigError::new(ErrorKind::Eval, format!("cannot evaluate expression: {}", e.kind()))
            .at(loc, "while evaluating this expression")
            .help(help)
    })
}
