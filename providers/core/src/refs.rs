//! References to attributes that are only known after apply (a generated password).
//!
//! The configuration cannot evaluate `self.database.password` when terrace generates
//! the password during apply. Lowering therefore writes a *marker* string in its place
//! and lists the referenced resource in `depends_on`. The binary replaces markers with
//! the value recorded in state: before planning (so an unchanged value plans nothing)
//! and again right before each apply step (when the dependency has just been created).
//! A marker may sit inside a longer string (`"mysql://u:${pw}@db"`).

use crate::{Address, Attrs, Value};

const OPEN: &str = "((terrace-ref ";
const CLOSE: &str = "))";

/// The marker standing for attribute `attr` of the resource at `address`.
pub fn marker(address: &Address, attr: &str) -> String {
    format!("{OPEN}{attr} {address}{CLOSE}")
}

/// Every (address, attribute) referenced by markers in `s`.
pub fn find(s: &str) -> Vec<(Address, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find(OPEN) {
        let body = &rest[start + OPEN.len()..];
        let Some(end) = body.find(CLOSE) else { break };
        if let Some((attr, addr)) = body[..end].split_once(' ') {
            out.push((Address::new(addr), attr.to_string()));
        }
        rest = &body[end + CLOSE.len()..];
    }
    out
}

/// Replaces every marker in `s` using `lookup`; `None` if any referenced value is not
/// known yet.
pub fn substitute(s: &str, lookup: &dyn Fn(&Address, &str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let body = &rest[start + OPEN.len()..];
        let end = body.find(CLOSE)?;
        let (attr, addr) = body[..end].split_once(' ')?;
        out.push_str(&lookup(&Address::new(addr), attr)?);
        rest = &body[end + CLOSE.len()..];
    }
    out.push_str(rest);
    Some(out)
}

/// True if any string inside `v` holds a marker.
pub fn contains_marker(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains(OPEN),
        Value::Array(a) => a.iter().any(contains_marker),
        Value::Object(o) => o.values().any(contains_marker),
        _ => false,
    }
}

/// Resolves markers in every attribute, in place, where the values are known. Returns
/// the names of attributes that still hold an unresolved marker.
pub fn resolve_attrs(
    attrs: &mut Attrs,
    lookup: &dyn Fn(&Address, &str) -> Option<String>,
) -> Vec<String> {
    // Most resources hold no marker: looked at first, their maps stay shared with the
    // configuration's (writing through `attrs` would copy them).
    if !attrs.values().any(contains_marker) {
        return Vec::new();
    }
    fn walk(v: &mut Value, lookup: &dyn Fn(&Address, &str) -> Option<String>) -> bool {
        match v {
            Value::String(s) if s.contains(OPEN) => match substitute(s, lookup) {
                Some(r) => {
                    *s = r;
                    true
                }
                None => false,
            },
            // Every element is resolved, even after one fails: no short-circuit.
            Value::Array(a) => {
                a.iter_mut()
                    .map(|x| walk(x, lookup))
                    .filter(|ok| !ok)
                    .count()
                    == 0
            }
            Value::Object(o) => {
                o.values_mut()
                    .map(|x| walk(x, lookup))
                    .filter(|ok| !ok)
                    .count()
                    == 0
            }
            _ => true,
        }
    }
    attrs
        .iter_mut()
        .filter_map(|(k, v)| (!walk(v, lookup)).then(|| k.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_inside_longer_strings() {
        let a = Address::new(r#"tenant.app["x"].database.user"#);
        let s = format!(
            "mysql://u:{}@db/{}",
            marker(&a, "password"),
            marker(&a, "name")
        );
        assert_eq!(
            find(&s),
            vec![(a.clone(), "password".into()), (a.clone(), "name".into())]
        );
        let lookup = |addr: &Address, attr: &str| {
            (addr == &a).then(|| {
                if attr == "password" {
                    "pw".into()
                } else {
                    "app".into()
                }
            })
        };
        assert_eq!(substitute(&s, &lookup).unwrap(), "mysql://u:pw@db/app");
        assert_eq!(substitute(&s, &|_, _| None), None);
    }

    #[test]
    fn resolve_attrs_reports_what_is_still_unknown() {
        let a = Address::new("db.user");
        let mut attrs: Attrs = serde_json::from_value(serde_json::json!({
            "env": {"PW": marker(&a, "password"), "X": "plain"},
            "name": "c1",
            "other": marker(&Address::new("missing"), "password"),
        }))
        .unwrap();
        assert!(contains_marker(&attrs["env"]));
        let lookup = |addr: &Address, _: &str| (addr == &a).then(|| "secret".to_string());
        let unresolved = resolve_attrs(&mut attrs, &lookup);
        assert_eq!(unresolved, vec!["other".to_string()]);
        assert_eq!(attrs["env"]["PW"], "secret");
        assert!(!contains_marker(&attrs["env"]));
    }

    #[test]
    fn attributes_without_markers_stay_shared() {
        let loaded: Attrs = serde_json::from_value(serde_json::json!({"name": "c1"})).unwrap();
        let mut desired = loaded.clone();
        assert!(resolve_attrs(&mut desired, &|_, _| None).is_empty());
        assert!(
            desired.shares_with(&loaded),
            "resolving nothing copied the map"
        );
    }
}
