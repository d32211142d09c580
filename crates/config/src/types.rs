//! Variable type constraints: parsing `type = ...` and checking values against it.

use std::collections::BTreeMap;
use std::fmt;

use hcl::edit::expr::{Expression, ObjectKey};
use hcl::Value;

use crate::functions::number;

/// A variable's declared type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VarType {
    Any,
    String,
    Number,
    Bool,
    List(Box<VarType>),
    Set(Box<VarType>),
    Map(Box<VarType>),
    Object(BTreeMap<String, VarType>),
}

impl fmt::Display for VarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VarType::Any => f.write_str("any"),
            VarType::String => f.write_str("string"),
            VarType::Number => f.write_str("number"),
            VarType::Bool => f.write_str("bool"),
            VarType::List(t) => write!(f, "list({t})"),
            VarType::Set(t) => write!(f, "set({t})"),
            VarType::Map(t) => write!(f, "map({t})"),
            VarType::Object(fields) => {
                let parts: Vec<String> = fields.iter().map(|(k, t)| format!("{k} = {t}")).collect();
                write!(f, "object({{{}}})", parts.join(", "))
            }
        }
    }
}

/// Parses a type expression; `None` if it is not one.
pub(crate) fn parse(expr: &Expression) -> Option<VarType> {
    match expr {
        Expression::Variable(v) => match v.as_str() {
            "any" => Some(VarType::Any),
            "string" => Some(VarType::String),
            "number" => Some(VarType::Number),
            "bool" => Some(VarType::Bool),
            _ => None,
        },
        Expression::FuncCall(call) if call.name.namespace.is_empty() => {
            let args: Vec<&Expression> = call.args.iter().collect();
            let [arg] = args.as_slice() else {
                return None;
            };
            match call.name.name.as_str() {
                "list" => Some(VarType::List(Box::new(parse(arg)?))),
                "set" => Some(VarType::Set(Box::new(parse(arg)?))),
                "map" => Some(VarType::Map(Box::new(parse(arg)?))),
                "object" => {
                    let Expression::Object(obj) = arg else {
                        return None;
                    };
                    let mut fields = BTreeMap::new();
                    for (key, value) in obj.iter() {
                        let name = match key {
                            ObjectKey::Ident(i) => i.as_str().to_string(),
                            ObjectKey::Expression(e) => e.as_str()?.to_string(),
                        };
                        fields.insert(name, parse(value.expr())?);
                    }
                    Some(VarType::Object(fields))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// A stand-in value of type `ty` for a variable `validate` has no value for: a string
/// that is a valid name everywhere, `1`, `false`, empty collections (so `for_each`
/// over it makes no instances), objects of placeholders.
pub(crate) fn placeholder(ty: Option<&VarType>) -> Value {
    match ty {
        None | Some(VarType::Any) | Some(VarType::String) => Value::from("placeholder"),
        Some(VarType::Number) => Value::from(1),
        Some(VarType::Bool) => Value::Bool(false),
        Some(VarType::List(_)) | Some(VarType::Set(_)) => Value::Array(Vec::new()),
        Some(VarType::Map(_)) => Value::Object(hcl::Map::new()),
        Some(VarType::Object(fields)) => Value::Object(
            fields
                .iter()
                .map(|(k, t)| (k.clone(), placeholder(Some(t))))
                .collect(),
        ),
    }
}

/// A short description of a value's type for messages ("a string", "a list").
pub(crate) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn expected(ty: &VarType) -> String {
    match ty {
        VarType::Any => "any value".into(),
        VarType::String => "a string".into(),
        VarType::Number => "a number".into(),
        VarType::Bool => "a bool".into(),
        other => format!("a value of type {other}"),
    }
}

/// Checks and converts `v` to `ty` (numbers and bools convert to strings and back, as
/// in Terraform). The error names the path of a nested mismatch.
pub(crate) fn conform(v: &Value, ty: &VarType) -> Result<Value, String> {
    let mismatch = || format!("expected {}, found {}", expected(ty), describe(v));
    match (ty, v) {
        (VarType::Any, _) | (_, Value::Null) => Ok(v.clone()),
        (VarType::String, Value::String(_)) => Ok(v.clone()),
        (VarType::String, Value::Number(n)) => Ok(Value::from(n.to_string())),
        (VarType::String, Value::Bool(b)) => Ok(Value::from(b.to_string())),
        (VarType::Number, Value::Number(_)) => Ok(v.clone()),
        (VarType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map(number)
            .map_err(|_| format!("expected a number, found the string \"{s}\"")),
        (VarType::Bool, Value::Bool(_)) => Ok(v.clone()),
        (VarType::Bool, Value::String(s)) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (VarType::List(t) | VarType::Set(t), Value::Array(items)) => {
            let mut out: Vec<Value> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let c = conform(item, t).map_err(|e| format!("element {i}: {e}"))?;
                if !(matches!(ty, VarType::Set(_)) && out.contains(&c)) {
                    out.push(c);
                }
            }
            Ok(Value::Array(out))
        }
        (VarType::Map(t), Value::Object(map)) => {
            let mut out = hcl::Map::new();
            for (k, item) in map {
                out.insert(
                    k.clone(),
                    conform(item, t).map_err(|e| format!("key \"{k}\": {e}"))?,
                );
            }
            Ok(Value::Object(out))
        }
        (VarType::Object(fields), Value::Object(map)) => {
            let mut out = hcl::Map::new();
            for (k, t) in fields {
                let item = map
                    .get(k)
                    .ok_or_else(|| format!("missing attribute \"{k}\" (expected {ty})"))?;
                out.insert(
                    k.clone(),
                    conform(item, t).map_err(|e| format!("attribute \"{k}\": {e}"))?,
                );
            }
            Ok(Value::Object(out))
        }
        _ => Err(mismatch()),
    }
}
