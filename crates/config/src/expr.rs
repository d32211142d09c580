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

/// The value of an expression made only of literals (strings without interpolation,
/// numbers, booleans, `null`, and lists and objects of them, object keys plain names or
/// strings, each once), read straight from the parsed expression; `None` for anything
/// else, which the caller evaluates. A variable's default listing 100,000 names was
/// copied whole, converted for hcl-rs and evaluated element by element: 7 % of loading
/// such a configuration. The value is the one evaluation gives.
pub(crate) fn literal(expr: &hcl::edit::expr::Expression) -> Option<Value> {
    use hcl::edit::expr::{Expression as E, ObjectKey};
    Some(match expr {
        E::Null(_) => Value::Null,
        E::Bool(b) => Value::Bool(*b.value()),
        E::Number(n) => Value::Number(*n.value()),
        E::String(s) => Value::String(s.value().clone()),
        E::Array(items) => Value::Array(items.iter().map(literal).collect::<Option<_>>()?),
        E::Object(object) => {
            let mut out = hcl::Map::with_capacity(object.len());
            for (k, v) in object.iter() {
                let key = match k {
                    ObjectKey::Ident(i) => i.as_str().to_string(),
                    ObjectKey::Expression(E::String(s)) => s.value().clone(),
                    ObjectKey::Expression(_) => return None,
                };
                // A key given twice: evaluation decides which value counts.
                if out.insert(key, literal(v.expr())?).is_some() {
                    return None;
                }
            }
            Value::Object(out)
        }
        E::Parenthesis(p) => literal(p.inner())?,
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The value hcl-rs gives by evaluating the expression.
    fn evaluated(text: &str) -> Value {
        let e = hcl::edit::parser::parse_expr(text).expect("parses");
        hcl::Expression::from(e)
            .evaluate(&Context::new())
            .expect("evaluates")
    }

    #[test]
    fn a_literal_reads_as_evaluation_gives_it() {
        for text in [
            "null",
            "true",
            "42",
            "1.5",
            "1e3",
            r#""plain""#,
            r#""esc\"aped\n\u00e9""#,
            r#"["a", "b", "a", 1, false, null]"#,
            r#"{ a = 1, "b c" = [2, { d = "e" }], f = (3) }"#,
            "[]",
            "{}",
            "-1",
            "[1, -2.5]",
        ] {
            let e = hcl::edit::parser::parse_expr(text).expect("parses");
            assert_eq!(literal(&e), Some(evaluated(text)), "{text}");
        }
    }

    #[test]
    fn anything_but_a_literal_is_left_to_evaluation() {
        for text in [
            "1 + 2",
            r#""${"x"}""#,
            "upper(\"x\")",
            "[for x in [1] : x]",
            "x",
            r#"{ a = 1, "a" = 2 }"#,
            r#"{ (1) = 2 }"#,
            "true ? 1 : 2",
        ] {
            let e = hcl::edit::parser::parse_expr(text).expect("parses");
            assert_eq!(literal(&e), None, "{text}");
        }
    }
}
