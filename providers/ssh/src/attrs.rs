//! Reading typed values out of [`Attrs`], with errors that name the attribute.

use terrace_provider::{Attrs, ProviderError, ProviderResult, Value};

fn invalid(type_name: &str, key: &str, what: &str) -> ProviderError {
    ProviderError::Invalid(format!("{type_name}: attribute {key:?} {what}"))
}

/// A required string.
pub(crate) fn req_str<'a>(t: &str, a: &'a Attrs, key: &str) -> ProviderResult<&'a str> {
    opt_str(t, a, key)?.ok_or_else(|| invalid(t, key, "is required"))
}

/// An optional string (null counts as unset).
pub(crate) fn opt_str<'a>(t: &str, a: &'a Attrs, key: &str) -> ProviderResult<Option<&'a str>> {
    match a.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(t, key, "must be a string")),
    }
}

/// An optional boolean.
pub(crate) fn opt_bool(t: &str, a: &Attrs, key: &str) -> ProviderResult<Option<bool>> {
    match a.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(t, key, "must be true or false")),
    }
}

/// An optional list of strings.
pub(crate) fn opt_str_list(t: &str, a: &Attrs, key: &str) -> ProviderResult<Option<Vec<String>>> {
    match a.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid(t, key, "must be a list of strings"))
            })
            .collect::<ProviderResult<Vec<_>>>()
            .map(Some),
        Some(_) => Err(invalid(t, key, "must be a list of strings")),
    }
}

/// A required port number (1–65535); accepts `22`, `22.0` and `"22"`.
pub(crate) fn req_port(t: &str, a: &Attrs, key: &str) -> ProviderResult<u16> {
    let n = match a.get(key) {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        None | Some(Value::Null) => return Err(invalid(t, key, "is required")),
        Some(_) => None,
    };
    match n {
        Some(n) if n.fract() == 0.0 && (1.0..=65535.0).contains(&n) => Ok(n as u16),
        _ => Err(invalid(t, key, "must be a port number from 1 to 65535")),
    }
}

pub(crate) use crate::schema::valid_account;
