//! Attribute values as lines, shared by the text and markdown renderers: maps and lists
//! of objects nested one entry per line (never one-line JSON), per-key markers in
//! updates, unchanged entries folded into a count, byte sizes in their largest exact
//! unit.
//!
//! Values come in pairs: the *original* value, only ever compared (so a secret that
//! changes still shows as changed), and the *shown* value, the redacted one, the only one
//! whose text reaches a line. Redaction keeps a map's keys, so both have the same shape
//! wherever a map is shown key by key.

use similar::{capture_diff_slices, Algorithm, DiffOp};
use terrace_provider::Value;

use crate::model::REDACTED;

/// The marker in front of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Created or added.
    Add,
    /// Destroyed or removed.
    Remove,
    /// Changed in place (the opening line of a map or list with changes inside).
    Change,
    /// Context: a closing bracket, a fold note, an unchanged value.
    Same,
}

/// One line of an attribute listing, at a nesting depth (0: the resource's attributes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// `mark text`.
    Plain {
        depth: usize,
        mark: Mark,
        text: String,
        /// The attribute forces a replacement (said after the text).
        forces: bool,
    },
    /// A scalar that changes: `~ head before -> after` (markdown: two lines).
    Changed {
        depth: usize,
        head: String,
        before: String,
        after: String,
        forces: bool,
    },
}

impl Line {
    pub(crate) fn plain(depth: usize, mark: Mark, text: impl Into<String>) -> Line {
        Line::Plain {
            depth,
            mark,
            text: text.into(),
            forces: false,
        }
    }
}

/// An attribute's value: the original (compared) and the redacted one (shown).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair<'a> {
    pub orig: &'a Value,
    pub shown: &'a Value,
}

/// How scalars are written.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fmt {
    /// Whole numbers are byte counts: written `"512m"` when exact.
    pub bytes: bool,
}

/// `name = ` padded to `width`, the head of an attribute line.
pub(crate) fn head(name: &str, width: usize) -> String {
    let pad = width.saturating_sub(name.chars().count());
    format!("{name}{} = ", " ".repeat(pad))
}

/// The whole of `v` with one mark on every line (a create, a destroy, an added or
/// removed entry). `tail` follows the value on its last line (`,` in a list).
pub(crate) fn whole(
    out: &mut Vec<Line>,
    depth: usize,
    mark: Mark,
    head: &str,
    v: &Value,
    fmt: Fmt,
    forces: bool,
) {
    whole_tail(out, depth, mark, head, v, fmt, forces, "");
}

#[allow(clippy::too_many_arguments)] // One recursive helper; a struct would only rename them.
fn whole_tail(
    out: &mut Vec<Line>,
    depth: usize,
    mark: Mark,
    head: &str,
    v: &Value,
    fmt: Fmt,
    forces: bool,
    tail: &str,
) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            out.push(Line::Plain {
                depth,
                mark,
                text: format!("{head}{{"),
                forces,
            });
            let width = map
                .keys()
                .map(|k| key_text(k).chars().count())
                .max()
                .unwrap_or(0);
            for (k, x) in map {
                whole_tail(
                    out,
                    depth + 1,
                    mark,
                    &head_of_key(k, width),
                    x,
                    fmt,
                    false,
                    "",
                );
            }
            out.push(Line::plain(depth, Mark::Same, format!("}}{tail}")));
        }
        Value::Array(items) if items.iter().any(is_nested) => {
            out.push(Line::Plain {
                depth,
                mark,
                text: format!("{head}["),
                forces,
            });
            for x in items {
                whole_tail(out, depth + 1, mark, "", x, fmt, false, ",");
            }
            out.push(Line::plain(depth, Mark::Same, format!("]{tail}")));
        }
        _ => out.push(Line::Plain {
            depth,
            mark,
            text: format!("{head}{}{tail}", scalar(v, fmt)),
            forces,
        }),
    }
}

/// A value that changes from `before` to `after`: maps key by key (`~ K = a -> b`,
/// `+ NEW = ...`, `- OLD = ... -> null`, unchanged keys folded), lists element by
/// element, anything else as one `before -> after` line.
pub(crate) fn changed(
    out: &mut Vec<Line>,
    depth: usize,
    head: &str,
    before: Pair<'_>,
    after: Pair<'_>,
    fmt: Fmt,
    forces: bool,
) {
    match (before.shown, after.shown) {
        (Value::Object(bs), Value::Object(a_s)) => {
            let (bo, ao) = (
                before.orig.as_object().unwrap_or(bs),
                after.orig.as_object().unwrap_or(a_s),
            );
            out.push(Line::Plain {
                depth,
                mark: Mark::Change,
                text: format!("{head}{{"),
                forces,
            });
            let keys: std::collections::BTreeSet<&String> = bs.keys().chain(a_s.keys()).collect();
            let width = keys
                .iter()
                .map(|k| key_text(k).chars().count())
                .max()
                .unwrap_or(0);
            let mut same = 0;
            for k in keys {
                let h = head_of_key(k, width);
                match (bs.get(k), a_s.get(k)) {
                    (Some(b), Some(a)) => {
                        let (ob, oa) = (bo.get(k).unwrap_or(b), ao.get(k).unwrap_or(a));
                        if ob == oa {
                            same += 1;
                        } else {
                            changed(
                                out,
                                depth + 1,
                                &h,
                                Pair { orig: ob, shown: b },
                                Pair { orig: oa, shown: a },
                                fmt,
                                false,
                            );
                        }
                    }
                    (None, Some(a)) => whole(out, depth + 1, Mark::Add, &h, a, fmt, false),
                    (Some(b), None) => removed(out, depth + 1, &h, b, fmt),
                    (None, None) => {}
                }
            }
            fold(out, depth + 1, same, "element");
            out.push(Line::plain(depth, Mark::Same, "}"));
        }
        (Value::Array(bs), Value::Array(a_s))
            if bs.len() == before.orig.as_array().map_or(0, Vec::len)
                && a_s.len() == after.orig.as_array().map_or(0, Vec::len) =>
        {
            let (bo, ao) = (
                before.orig.as_array().expect("checked"),
                after.orig.as_array().expect("checked"),
            );
            out.push(Line::Plain {
                depth,
                mark: Mark::Change,
                text: format!("{head}["),
                forces,
            });
            let mut same = 0;
            for op in capture_diff_slices(Algorithm::Myers, bo, ao) {
                match op {
                    DiffOp::Equal { len, .. } => same += len,
                    DiffOp::Delete {
                        old_index, old_len, ..
                    } => {
                        for x in &bs[old_index..old_index + old_len] {
                            whole_tail(out, depth + 1, Mark::Remove, "", x, fmt, false, ",");
                        }
                    }
                    DiffOp::Insert {
                        new_index, new_len, ..
                    } => {
                        for x in &a_s[new_index..new_index + new_len] {
                            whole_tail(out, depth + 1, Mark::Add, "", x, fmt, false, ",");
                        }
                    }
                    DiffOp::Replace {
                        old_index,
                        old_len,
                        new_index,
                        new_len,
                    } => {
                        for x in &bs[old_index..old_index + old_len] {
                            whole_tail(out, depth + 1, Mark::Remove, "", x, fmt, false, ",");
                        }
                        for x in &a_s[new_index..new_index + new_len] {
                            whole_tail(out, depth + 1, Mark::Add, "", x, fmt, false, ",");
                        }
                    }
                }
            }
            fold(out, depth + 1, same, "element");
            out.push(Line::plain(depth, Mark::Same, "]"));
        }
        (b, a) if !is_nested(b) && !is_nested(a) => out.push(Line::Changed {
            depth,
            head: head.to_string(),
            before: scalar(b, fmt),
            after: scalar(a, fmt),
            forces,
        }),
        // A value secret as a whole before (a state that recorded a map as one secret)
        // and shown key by key now: `~ env = (sensitive value) -> {`, the new entries.
        (b, a) if !is_nested(b) => {
            let first = out.len();
            whole(out, depth, Mark::Add, head, a, fmt, forces);
            if let Some(Line::Plain { mark, text, .. }) = out.get_mut(first) {
                *mark = Mark::Change;
                *text = format!("{head}{} -> {}", scalar(b, fmt), &text[head.len()..]);
            }
        }
        // A map that becomes a list or a secret as a whole: the old value goes, the new
        // one comes.
        (b, a) => {
            removed(out, depth, head, b, fmt);
            whole(out, depth, Mark::Add, head, a, fmt, forces);
        }
    }
}

/// A value that goes away: Terraform's `- name = "v" -> null`.
pub(crate) fn removed(out: &mut Vec<Line>, depth: usize, head: &str, v: &Value, fmt: Fmt) {
    if is_nested(v) {
        whole(out, depth, Mark::Remove, head, v, fmt, false);
    } else {
        out.push(Line::plain(
            depth,
            Mark::Remove,
            format!("{head}{} -> null", scalar(v, fmt)),
        ));
    }
}

/// `# (3 unchanged elements hidden)`, when there are any.
pub(crate) fn fold(out: &mut Vec<Line>, depth: usize, n: usize, noun: &str) {
    if n > 0 {
        let s = if n == 1 { "" } else { "s" };
        out.push(Line::plain(
            depth,
            Mark::Same,
            format!("# ({n} unchanged {noun}{s} hidden)"),
        ));
    }
}

/// True for a value shown over several lines: a non-empty map, or a list holding maps
/// or lists.
fn is_nested(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(items) => items.iter().any(is_nested),
        _ => false,
    }
}

fn head_of_key(k: &str, width: usize) -> String {
    let k = key_text(k);
    let pad = width.saturating_sub(k.chars().count());
    format!("{k}{} = ", " ".repeat(pad))
}

/// A map key: bare when it reads as an identifier (`DB_HOST`), quoted otherwise.
fn key_text(k: &str) -> String {
    let bare = k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
    if bare {
        k.to_string()
    } else {
        Value::from(k).to_string()
    }
}

/// A value on one line: strings quoted, a redacted value as `(sensitive value)`, byte
/// counts in their unit when `fmt` says so, lists of scalars as `["a", "b"]`.
pub(crate) fn scalar(v: &Value, fmt: Fmt) -> String {
    match v {
        Value::String(s) if s == REDACTED => REDACTED.to_string(),
        Value::Number(n) if fmt.bytes => match n.as_i64().and_then(terrace_provider::byte_size) {
            Some(s) => Value::from(s).to_string(),
            None => n.to_string(),
        },
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|x| scalar(x, fmt)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bare_only_when_they_read_as_identifiers() {
        assert_eq!(key_text("DB_HOST"), "DB_HOST");
        assert_eq!(key_text("com.example.team"), "\"com.example.team\"");
        assert_eq!(key_text("a b\"c"), "\"a b\\\"c\"");
        assert_eq!(key_text(""), "\"\"");
    }
}
