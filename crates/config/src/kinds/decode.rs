//! Decoding a one-to-one block against its provider's resource schema: each attribute
//! the block sets is read by its schema type, checked against the allowed values and
//! by the provider's own check, and every problem is reported at the value (or list
//! element) that caused it.

use std::collections::BTreeSet;

use terrace_provider::{AttrSchema, Attrs, Invalid, Presence, ResourceSchema, Subject, ValueType};

use super::*;
use crate::kind::{ResourceKind, Shape};

/// The schema attributes a block set, decoded and checked.
pub(super) struct Decoded {
    /// The valid values, under their resource attribute names.
    pub(super) attrs: Attrs,
    /// The attributes whose value came from something sensitive.
    pub(super) sensitive: BTreeSet<String>,
}

/// A one-to-one kind's resource kind.
pub(super) fn resource_kind(kind: Kind) -> ResourceKind {
    match kind.shape() {
        Shape::Resource(rk) => rk,
        Shape::Composite => unreachable!("{kind:?} is a composite kind"),
    }
}

/// A provider's objection to a value, at `loc`.
pub(super) fn invalid(p: Invalid, loc: &Loc) -> ConfigError {
    ConfigError::new(ErrorKind::InvalidValue, p.message)
        .at(loc, p.label)
        .help(p.help)
}

impl State<'_> {
    /// The provider's schema of a one-to-one kind's resource type.
    pub(super) fn resource_schema(&self, kind: Kind) -> &'static ResourceSchema {
        self.schemas.of(&resource_kind(kind))
    }

    /// Decodes every attribute of `schema` that `block` sets, except those in `own`
    /// (which the kind reads itself) and those only the provider sets. Errors go to `r`;
    /// only valid values are returned.
    pub(super) fn decode(
        &self,
        r: &mut Reader,
        block: &RawBlock,
        schema: &ResourceSchema,
        own: &[&str],
        address: &str,
        each_sensitive: bool,
    ) -> Decoded {
        let mut out = Decoded {
            attrs: Attrs::new(),
            sensitive: BTreeSet::new(),
        };
        for a in schema.attrs {
            if a.presence == Presence::Output || own.contains(&a.name) {
                continue;
            }
            let Some(attr) = block.attr(a.name) else {
                continue;
            };
            if let Some(v) = decode_attr(r, attr, a, address) {
                out.attrs.insert(a.name.to_string(), v);
            }
            if self.is_sensitive(attr, each_sensitive) {
                out.sensitive.insert(a.name.to_string());
            }
        }
        out
    }
}

/// Reads one attribute by its schema; `None` (with errors in `r`) if it is not valid.
fn decode_attr(r: &mut Reader, attr: &RawAttr, a: &AttrSchema, address: &str) -> Option<Json> {
    let key = a.name;
    match a.ty {
        ValueType::Any => {
            let v = r.value(attr)?;
            Some(json(&v))
        }
        ValueType::Bool => {
            let v = r.value(attr)?;
            match v {
                Value::Bool(b) => Some(Json::Bool(b)),
                other => {
                    r.errors.push(wrong_type(
                        attr, &attr.loc, key, "a bool", &other, a.example,
                    ));
                    None
                }
            }
        }
        ValueType::Int { min, max } => {
            let v = r.value(attr)?;
            let n = r.int_of(attr, &attr.loc, key, &v, (min, max), a.example)?;
            Some(Json::from(n))
        }
        ValueType::String => {
            let v = r.value(attr)?;
            let s = r.string_of(attr, &attr.loc, key, &v, a.example)?;
            let pair = (s, attr.loc.clone());
            if !a.allowed.is_empty() {
                let label = format!("not {}", a.what);
                if !one_of(r, key, &pair, a.allowed, &label) {
                    return None;
                }
            }
            let value = Json::from(pair.0);
            check(r, a, &value, address, key, &attr.loc).then_some(value)
        }
        ValueType::StringList => {
            let list = r.string_list(attr, a.example)?;
            let mut ok = true;
            for (i, s) in list.iter().enumerate() {
                let field = format!("{key}[{i}]");
                ok &= check(
                    r,
                    a,
                    &Json::from(s.as_str()),
                    address,
                    &field,
                    &item_loc(attr, i),
                );
            }
            ok.then(|| Json::from(list))
        }
    }
}

/// Runs the provider's check of one value; false (with the error in `r`) if it fails.
fn check(r: &mut Reader, a: &AttrSchema, v: &Json, address: &str, field: &str, loc: &Loc) -> bool {
    match a.check(v, &Subject { address, field }) {
        Ok(()) => true,
        Err(p) => {
            r.errors.push(invalid(p, loc));
            false
        }
    }
}

/// One allowed value with did-you-mean on a miss.
fn one_of(
    r: &mut Reader,
    key: &str,
    (v, loc): &(String, Loc),
    allowed: &[&str],
    label: &str,
) -> bool {
    if allowed.contains(&v.as_str()) {
        return true;
    }
    r.errors.push(
        ConfigError::new(
            ErrorKind::InvalidValue,
            format!("invalid value for \"{key}\": \"{}\"", v.escape_debug()),
        )
        .at(loc, label)
        .help(suggest(v, allowed.iter().copied(), |all| {
            format!("{key} must be {}", list_names(&all))
        })),
    );
    false
}
