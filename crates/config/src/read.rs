//! Typed reading of attribute values: strings, numbers, bools, lists, maps and objects
//! read from evaluated expressions, with every error located at the value (or the
//! element, or the object key) that caused it.

use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::Span;
use hcl::eval::Context;
use hcl::{Map, Value};
use serde_json::Value as Json;

use crate::diagnostics::{list_names, suggest, ConfigError, ErrorKind};
use crate::expr::evaluate;
use crate::source::Loc;
use crate::syntax::{RawAttr, RawBlock};
use crate::types::describe;

/// The value expression of `key` inside an object literal.
pub(crate) fn object_field<'e>(expr: &'e Expression, key: &str) -> Option<&'e Expression> {
    let Expression::Object(obj) = expr else {
        return None;
    };
    obj.iter().find_map(|(k, v)| {
        let name = match k {
            ObjectKey::Ident(i) => Some(i.as_str()),
            ObjectKey::Expression(e) => e.as_str(),
        };
        (name == Some(key)).then(|| v.expr())
    })
}

/// The location of `key` inside an object literal, or of the whole expression.
pub(crate) fn field_loc(attr: &RawAttr, key: &str) -> Loc {
    match object_field(&attr.expr, key) {
        Some(e) => Loc::new(&attr.loc.file, e.span()),
        None => attr.loc.clone(),
    }
}

/// The location of element `i` of a list literal, or of the whole expression.
pub(crate) fn item_loc(attr: &RawAttr, i: usize) -> Loc {
    match &attr.expr {
        Expression::Array(a) => match a.iter().nth(i) {
            Some(e) => Loc::new(&attr.loc.file, e.span()),
            None => attr.loc.clone(),
        },
        _ => attr.loc.clone(),
    }
}

/// The location of `key` in object element `i` of a list literal, else of the element.
pub(crate) fn item_field_loc(attr: &RawAttr, i: usize, key: &str) -> Loc {
    if let Expression::Array(a) = &attr.expr {
        if let Some(e) = a.iter().nth(i).and_then(|e| object_field(e, key)) {
            return Loc::new(&attr.loc.file, e.span());
        }
    }
    item_loc(attr, i)
}

pub(crate) fn wrong_type(
    attr: &RawAttr,
    loc: &Loc,
    field: &str,
    expected: &str,
    found: &Value,
    example: &str,
) -> ConfigError {
    ConfigError::new(
        ErrorKind::WrongType,
        format!(
            "wrong type for \"{field}\": expected {expected}, found {}",
            describe(found)
        ),
    )
    .at(loc, format!("this is {}", describe(found)))
    .help(format!("write it like `{} = {example}`", attr.key))
}

/// The keys an object value may and must have.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys<'a> {
    /// Every key allowed.
    pub allowed: &'a [&'a str],
    /// The keys that must be present.
    pub required: &'a [&'a str],
}

/// How a block's `name` defaults and is described when it is invalid.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameRule<'a> {
    /// The name when `name` is not set.
    pub default: &'a str,
    /// Where a defaulted name is reported.
    pub default_loc: &'a Loc,
    /// A valid value, for wrong-type errors.
    pub example: &'a str,
    /// What is named, in the message (`invalid {what} name`).
    pub what: &'a str,
    /// What kind of name is expected, in the label (`not a valid {kind} name`).
    pub kind: &'a str,
    /// The rule for valid names.
    pub help: &'a str,
}

/// Reads typed attribute values from one block, recording errors.
pub(crate) struct Reader<'c> {
    /// Borrowed where the caller keeps the context for other blocks of the same
    /// instance (a clone per block was a large part of evaluating a tenant).
    pub(crate) ctx: std::borrow::Cow<'c, Context<'static>>,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'c> Reader<'c> {
    pub(crate) fn new(ctx: Context<'static>) -> Self {
        Self::with(std::borrow::Cow::Owned(ctx))
    }

    /// A reader over a context owned or borrowed.
    pub(crate) fn with(ctx: std::borrow::Cow<'c, Context<'static>>) -> Self {
        Reader {
            ctx,
            errors: Vec::new(),
        }
    }

    /// The attribute's value; `None` when it cannot be evaluated (the error is
    /// recorded) or is `null`, which means "not set" for an optional attribute (so
    /// `lookup(var.limits, each.key, null)` leaves it to its default) and is an error
    /// for a required one.
    pub(crate) fn value(&mut self, attr: &RawAttr) -> Option<Value> {
        match evaluate(attr, &self.ctx) {
            Ok(Value::Null) => {
                if attr.required {
                    self.errors.push(
                        ConfigError::new(
                            ErrorKind::MissingAttribute,
                            format!("\"{}\" is required and cannot be null", attr.key),
                        )
                        .at(&attr.loc, "this is null")
                        .help(format!("give \"{}\" a value", attr.key)),
                    );
                }
                None
            }
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// True if the attribute evaluates to `null` ("not set"); evaluation errors are
    /// left for the reading that follows.
    pub(crate) fn is_null(&self, attr: &RawAttr) -> bool {
        matches!(evaluate(attr, &self.ctx), Ok(Value::Null))
    }

    pub(crate) fn string_of(
        &mut self,
        attr: &RawAttr,
        loc: &Loc,
        field: &str,
        v: &Value,
        example: &str,
    ) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            other => {
                self.errors
                    .push(wrong_type(attr, loc, field, "a string", other, example));
                None
            }
        }
    }

    pub(crate) fn string(
        &mut self,
        block: &RawBlock,
        key: &str,
        example: &str,
    ) -> Option<(String, Loc)> {
        let attr = block.attr(key)?;
        let v = self.value(attr)?;
        self.string_of(attr, &attr.loc, key, &v, example)
            .map(|s| (s, attr.loc.clone()))
    }

    /// A string, or a number written as one (`2` as `"2"`): for values whose provider
    /// reads both spellings, such as a signal or a count of seconds.
    pub(crate) fn string_or_number(
        &mut self,
        block: &RawBlock,
        key: &str,
        example: &str,
    ) -> Option<(String, Loc)> {
        let attr = block.attr(key)?;
        let v = self.value(attr)?;
        let s = match &v {
            Value::Number(n) => Some(n.to_string()),
            Value::String(s) => Some(s.clone()),
            other => {
                self.errors.push(wrong_type(
                    attr,
                    &attr.loc,
                    key,
                    "a string or a number",
                    other,
                    example,
                ));
                None
            }
        };
        s.map(|s| (s, attr.loc.clone()))
    }

    pub(crate) fn int_of(
        &mut self,
        attr: &RawAttr,
        loc: &Loc,
        field: &str,
        v: &Value,
        range: (i64, i64),
        example: &str,
    ) -> Option<i64> {
        let n = match v {
            Value::Number(n) => n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64),
            other => {
                self.errors
                    .push(wrong_type(attr, loc, field, "a number", other, example));
                return None;
            }
        };
        match n {
            Some(n) if n >= range.0 && n <= range.1 => Some(n),
            _ => {
                self.errors.push(
                    ConfigError::new(
                        ErrorKind::InvalidValue,
                        format!("invalid value for \"{field}\": {v}"),
                    )
                    .at(loc, "out of range")
                    .help(format!(
                        "\"{field}\" must be a whole number from {} to {}",
                        range.0, range.1
                    )),
                );
                None
            }
        }
    }

    pub(crate) fn int(
        &mut self,
        block: &RawBlock,
        key: &str,
        range: (i64, i64),
        example: &str,
    ) -> Option<i64> {
        let attr = block.attr(key)?;
        let v = self.value(attr)?;
        self.int_of(attr, &attr.loc, key, &v, range, example)
    }

    /// `name`, or `rule.default` when the block leaves it unset, checked with `check`
    /// (whose error is a detail for the message, and the rule for valid names when it
    /// knows better than `rule.help`). The error points at the value (or at
    /// `rule.default_loc` for a defaulted name), names the kind of name expected, and
    /// says how to choose another when it was defaulted.
    pub(crate) fn name_or_default(
        &mut self,
        block: &RawBlock,
        rule: &NameRule<'_>,
        check: impl Fn(&str) -> Result<(), (String, Option<String>)>,
    ) -> Option<(String, Loc)> {
        let NameRule {
            default,
            default_loc,
            example,
            what,
            kind,
            help,
        } = *rule;
        let (name, loc, defaulted) = match block.attr("name").filter(|a| !self.is_null(a)) {
            Some(_) => {
                let (n, loc) = self.string(block, "name", example)?;
                (n, loc, false)
            }
            None => (default.to_string(), default_loc.clone(), true),
        };
        let Err((msg, rule_help)) = check(&name) else {
            return Some((name, loc));
        };
        let mut help = rule_help.unwrap_or_else(|| help.to_string());
        if defaulted {
            help.push_str(&format!(
                "; the name defaults to \"{}\" here, set `name = ...` in the block to choose another",
                default.escape_debug()
            ));
        }
        let detail = if msg.is_empty() {
            String::new()
        } else {
            format!(": {msg}")
        };
        self.errors.push(
            ConfigError::new(
                ErrorKind::InvalidIdentifier,
                format!("invalid {what} name \"{}\"{detail}", name.escape_debug()),
            )
            .at(
                &loc,
                if defaulted {
                    format!("the defaulted name is not a valid {kind} name")
                } else {
                    format!("not a valid {kind} name")
                },
            )
            .help(help),
        );
        None
    }

    pub(crate) fn bool(&mut self, block: &RawBlock, key: &str) -> Option<bool> {
        let attr = block.attr(key)?;
        match self.value(attr)? {
            Value::Bool(b) => Some(b),
            other => {
                self.errors
                    .push(wrong_type(attr, &attr.loc, key, "a bool", &other, "true"));
                None
            }
        }
    }

    /// Checks the keys of an evaluated object written in attribute `field`: every key is
    /// allowed (did-you-mean otherwise, at `key_loc(key)`) and every required key is
    /// present (pointing at `whole`). Returns false if anything was reported.
    pub(crate) fn check_keys(
        &mut self,
        map: &Map<String, Value>,
        keys: Keys<'_>,
        field: &str,
        key_loc: impl Fn(&str) -> Loc,
        whole: &Loc,
        write_like: &str,
    ) -> bool {
        let Keys { allowed, required } = keys;
        let mut ok = true;
        for k in map.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.errors.push(
                ConfigError::new(
                    ErrorKind::UnknownAttribute,
                    format!("unknown attribute \"{k}\" in \"{field}\""),
                )
                .at(&key_loc(k), "unknown attribute")
                .help(suggest(k, allowed.iter().copied(), |all| {
                    format!("allowed attributes: {}", list_names(&all))
                })),
            );
            ok = false;
        }
        for k in required.iter().filter(|k| !map.contains_key(**k)) {
            self.errors.push(
                ConfigError::new(
                    ErrorKind::MissingAttribute,
                    format!("missing required attribute \"{k}\" in \"{field}\""),
                )
                .at(whole, format!("no \"{k}\" here"))
                .help(format!("write it like `{write_like}`")),
            );
            ok = false;
        }
        ok
    }

    /// Evaluates an object-valued attribute and checks its keys.
    pub(crate) fn object(
        &mut self,
        attr: &RawAttr,
        allowed: &[&str],
        required: &[&str],
        example: &str,
    ) -> Option<Map<String, Value>> {
        let v = self.value(attr)?;
        let Value::Object(map) = v else {
            self.errors.push(wrong_type(
                attr,
                &attr.loc,
                &attr.key,
                "an object",
                &v,
                example,
            ));
            return None;
        };
        let write_like = format!("{} = {example}", attr.key);
        let ok = self.check_keys(
            &map,
            Keys { allowed, required },
            &attr.key,
            |k| key_loc(attr, k),
            &attr.loc,
            &write_like,
        );
        ok.then_some(map)
    }

    pub(crate) fn finish(self, errors: &mut Vec<ConfigError>) -> bool {
        let ok = self.errors.is_empty();
        errors.extend(self.errors);
        ok
    }
}

/// The location of a key inside an object literal.
pub(crate) fn key_loc(attr: &RawAttr, key: &str) -> Loc {
    key_in_object(&attr.expr, attr, key).unwrap_or_else(|| attr.loc.clone())
}

/// Where `key` is written, if `expr` is an object literal of `attr`'s file.
pub(crate) fn key_in_object(expr: &Expression, attr: &RawAttr, key: &str) -> Option<Loc> {
    let Expression::Object(obj) = expr else {
        return None;
    };
    obj.iter().find_map(|(k, _)| {
        let (name, span) = match k {
            ObjectKey::Ident(i) => (Some(i.as_str()), i.span()),
            ObjectKey::Expression(e) => (e.as_str(), e.span()),
        };
        (name == Some(key)).then(|| Loc::new(&attr.loc.file, span))
    })
}

pub(crate) fn obj(pairs: Vec<(&str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// An HCL value as an attribute value.
pub(crate) fn json(v: &Value) -> Json {
    serde_json::to_value(v).expect("HCL values always serialize")
}

/// A string list item or map value: strings, numbers and bools (as strings).
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Reader<'_> {
    /// A list of strings (`command`, `ports`, `cmd`), each element checked in place.
    pub(crate) fn string_list(&mut self, attr: &RawAttr, example: &str) -> Option<Vec<String>> {
        let v = self.value(attr)?;
        self.string_list_of(attr, &attr.loc, &attr.key, &v, example, false)
    }

    /// `v` as a list of strings. Elements of a list literal written as the attribute
    /// value are located one by one; in a `nested` list (`healthcheck.test`) errors
    /// point at `loc`.
    pub(crate) fn string_list_of(
        &mut self,
        attr: &RawAttr,
        loc: &Loc,
        field: &str,
        v: &Value,
        example: &str,
        nested: bool,
    ) -> Option<Vec<String>> {
        let Value::Array(items) = v else {
            self.errors.push(wrong_type(
                attr,
                loc,
                field,
                "a list of strings",
                v,
                example,
            ));
            return None;
        };
        let mut out = Vec::new();
        for (i, x) in items.iter().enumerate() {
            match x {
                Value::String(s) => out.push(s.clone()),
                other => {
                    let at = if nested {
                        loc.clone()
                    } else {
                        item_loc(attr, i)
                    };
                    self.errors.push(wrong_type(
                        attr,
                        &at,
                        &format!("{field}[{i}]"),
                        "a string",
                        other,
                        example,
                    ));
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A map of strings (`env`, `labels`); numbers and bools become strings.
    pub(crate) fn string_map(
        &mut self,
        attr: &RawAttr,
        example: &str,
    ) -> Option<serde_json::Map<String, Json>> {
        let v = self.value(attr)?;
        let Value::Object(map) = &v else {
            self.errors.push(wrong_type(
                attr,
                &attr.loc,
                &attr.key,
                "a map of strings",
                &v,
                example,
            ));
            return None;
        };
        let mut out = serde_json::Map::new();
        let mut ok = true;
        for (k, x) in map {
            match scalar_string(x) {
                Some(s) => {
                    out.insert(k.clone(), Json::String(s));
                }
                None => {
                    self.errors.push(wrong_type(
                        attr,
                        &field_loc(attr, k),
                        &format!("{}.{k}", attr.key),
                        "a string",
                        x,
                        example,
                    ));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// Checks the keys of object element `i` of a list attribute.
pub(crate) fn check_keys(
    r: &mut Reader,
    attr: &RawAttr,
    i: usize,
    map: &Map<String, Value>,
    keys: Keys<'_>,
    field: &str,
    example: &str,
) -> bool {
    let write_like = format!("{} = {example}", attr.key);
    r.check_keys(
        map,
        keys,
        field,
        |k| item_key_loc(attr, i, k),
        &item_loc(attr, i),
        &write_like,
    )
}

/// The location of key `key` in object element `i` of a list literal.
pub(crate) fn item_key_loc(attr: &RawAttr, i: usize, key: &str) -> Loc {
    let item = match &attr.expr {
        Expression::Array(a) => a.iter().nth(i),
        _ => None,
    };
    item.and_then(|e| key_in_object(e, attr, key))
        .unwrap_or_else(|| item_loc(attr, i))
}
