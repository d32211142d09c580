//! The human-readable plan, in the shape Terraform users know (`+ ~ - -/+`).

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use similar::TextDiff;
use terrace_provider::Value;

use super::values::{self, Fmt, Line, Mark, Pair};
use crate::model::{Action, Conflict, Drift, DriftKind, Plan, ResourceChange, REDACTED};

/// Options for [`render_text`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Emit ANSI colour codes. The caller decides (TTY, `NO_COLOR`).
    pub color: bool,
    /// Some resources could not be planned (an unreachable server): never claim that
    /// everything matches.
    pub partial: bool,
    /// The plan of `terrace destroy`: worded as a destroy (no "no longer in the
    /// configuration", no "the live systems match the configuration").
    pub destroy: bool,
}

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    }

    fn sym(&self, action: Sym) -> String {
        let (text, color) = match action {
            Sym::Add => ("+", AnsiColor::Green),
            Sym::Change => ("~", AnsiColor::Yellow),
            Sym::Remove => ("-", AnsiColor::Red),
            Sym::Replace => ("-/+", AnsiColor::Magenta),
            Sym::Same => (" ", AnsiColor::White),
        };
        self.paint(Style::new().fg_color(Some(color.into())), text)
    }

    fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Sym {
    Add,
    Change,
    Remove,
    Replace,
    Same,
}

/// Renders the whole plan: drift first, then actions, conflicts and the summary line.
/// Sensitive values are redacted here regardless of what the caller passes in.
pub fn render_text(plan: &Plan, opts: TextOptions) -> String {
    // Values are compared in the original (a secret that changes shows as changed) and
    // only ever written from the redacted copy.
    let original = plan;
    let plan = plan.redacted_keeping(|c| c.action != Action::NoOp);
    let p = Painter { color: opts.color };
    let mut out = String::new();

    if !plan.drift.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            p.bold("Objects changed outside terrace since the last apply (drift):")
        );
        for d in &plan.drift {
            render_drift(&mut out, &p, d);
        }
        out.push('\n');
    }

    if !plan.moved.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            p.bold("Moved (`moved` blocks): recorded under a new address, nothing changes on the servers:")
        );
        for m in &plan.moved {
            let _ = writeln!(out, "  # {} has moved to {}", m.from, m.to);
        }
        out.push('\n');
    }

    // Expired instances the configuration still lists, and those expiring soon.
    out.push_str(&crate::expiry::render_lines(&plan));

    // The redacted copy holds the same changes less the no-ops, in the same order.
    let actionable: Vec<(&ResourceChange, &ResourceChange)> = original
        .changes
        .iter()
        .filter(|c| c.action != Action::NoOp)
        .zip(&plan.changes)
        .collect();
    let safeguards: std::collections::HashMap<
        &terrace_provider::Address,
        &terrace_provider::Safeguard,
    > = plan
        .safeguards
        .iter()
        .map(|s| (&s.address, &s.safeguard))
        .collect();
    if !actionable.is_empty() {
        let _ = writeln!(out, "terrace will perform the following actions:\n");
        for pair in actionable {
            let safeguard = safeguards.get(&pair.1.address).copied();
            render_change(&mut out, &p, pair, safeguard, opts.destroy);
        }
    }

    if !plan.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            p.bold("Conflicts (apply refuses until each is resolved):")
        );
        for c in &plan.conflicts {
            render_conflict(&mut out, &p, c);
        }
    }

    if !plan.unverified.is_empty() {
        let _ = writeln!(
            out,
            "{}\n",
            p.bold("Not verified (terrace could not check these; the plan cannot vouch for them):")
        );
        for note in &plan.unverified {
            let _ = writeln!(out, "  - {note}");
        }
        out.push('\n');
    }

    if plan.is_empty() && (opts.partial || !plan.unverified.is_empty()) {
        let rest = if opts.partial {
            " among the resources that could be planned; the others are listed below.\n"
        } else {
            " among what could be verified; see what was not, above.\n"
        };
        out.push_str(&p.bold("No changes"));
        out.push_str(rest);
    } else if plan.is_empty() && opts.destroy {
        out.push_str(&p.bold("No changes."));
        out.push_str(" No objects need to be destroyed.\n");
    } else if plan.is_empty() {
        out.push_str(&p.bold("No changes."));
        out.push_str(" The live systems match the configuration.\n");
    } else {
        let s = plan.summary();
        let moved = if plan.moved.is_empty() {
            String::new()
        } else {
            format!(", {} to move", plan.moved.len())
        };
        let _ = writeln!(
            out,
            "{} {} to add, {} to change, {} to destroy{moved}.",
            p.bold("Plan:"),
            s.add,
            s.change,
            s.destroy
        );
        if !plan.conflicts.is_empty() {
            let _ = writeln!(out, "{} conflict(s) block this plan.", plan.conflicts.len());
        }
    }
    out
}

fn render_change(
    out: &mut String,
    p: &Painter,
    (orig, c): (&ResourceChange, &ResourceChange),
    safeguard: Option<&terrace_provider::Safeguard>,
    destroy: bool,
) {
    let header = match c.action {
        Action::Create if c.note.as_deref() == Some(crate::ADOPT_EXISTING_NOTE) => {
            "will be adopted".to_string()
        }
        Action::Create => "will be created".to_string(),
        Action::Update => "will be updated in place".to_string(),
        Action::Replace => match &c.prior_provider {
            Some(from) if c.moves_data => {
                format!("will be moved from {from} to {}, with its data", c.provider)
            }
            Some(from) => format!("must be replaced (it moves from {from} to {})", c.provider),
            None if c
                .replace_because
                .iter()
                .any(|b| b == crate::USES_MOVED_ATTR) =>
            {
                "must be replaced (it uses what moves to another server)".to_string()
            }
            None if c
                .replace_because
                .iter()
                .any(|b| b == crate::LIVES_IN_REPLACED) =>
            {
                "must be replaced (it lives in what is replaced)".to_string()
            }
            None => {
                // `--replace`: asked for, whatever else forces it.
                let (requested, forced): (Vec<&String>, Vec<&String>) = c
                    .replace_because
                    .iter()
                    .partition(|b| *b == crate::REPLACE_REQUESTED);
                let forced: Vec<&str> = forced.iter().map(|s| s.as_str()).collect();
                match (requested.is_empty(), forced.is_empty()) {
                    (false, true) => "must be replaced (requested)".to_string(),
                    (false, false) => format!(
                        "must be replaced (requested; {} cannot change in place)",
                        forced.join(", ")
                    ),
                    _ => format!(
                        "must be replaced ({} cannot change in place)",
                        forced.join(", ")
                    ),
                }
            }
        },
        Action::Delete if crate::only_leaves_state(c) => {
            "will be removed from the state (nothing on the server changes)".to_string()
        }
        Action::Delete => "will be destroyed".to_string(),
        Action::NoOp => return,
    };
    let _ = writeln!(out, "  {} {header}", p.bold(&format!("# {}", c.address)));
    // `terrace destroy` destroys everything: "it is no longer in the configuration"
    // would be untrue there.
    let note = c
        .note
        .as_deref()
        .filter(|n| !(destroy && *n == crate::NOT_CONFIGURED_NOTE));
    if let Some(note) = note {
        let _ = writeln!(out, "  # ({note})");
    }
    if let Some(g) = safeguard.filter(|_| matches!(c.action, Action::Delete | Action::Replace)) {
        let _ = writeln!(
            out,
            "  # (a {} of its data is written to {} first; if that fails, it is not destroyed)",
            g.kind, g.destination
        );
    } else if c.deletes_data
        && !c.moves_data
        && matches!(c.action, Action::Delete | Action::Replace)
        && !crate::only_leaves_state(c)
    {
        let _ = writeln!(
            out,
            "  # (its data is deleted with it, and no copy is kept)"
        );
    }
    let sym = match c.action {
        Action::Create => Sym::Add,
        Action::Update => Sym::Change,
        Action::Replace => Sym::Replace,
        _ => Sym::Remove,
    };
    let prefix = if sym == Sym::Replace { "" } else { "  " };
    let _ = writeln!(out, "{prefix}{} {} {{", p.sym(sym), c.type_name);

    let (before, after, names) = super::shown_attrs(c);
    let (orig_before, orig_after, _) = super::shown_attrs(orig);
    let (names, mut hidden) = super::visible(orig, &names);
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    // An adopted object exists: it shows as what apply changes on it, like an update,
    // not as something created from nothing.
    let adopting = super::adopting(c);
    let action = if adopting { Action::Update } else { c.action };
    let is_changed = |name: &str| {
        if adopting {
            orig_before.get(name) != orig_after.get(name)
        } else {
            c.changed.iter().any(|n| n == name)
        }
    };

    for name in names {
        let mut lines = Vec::new();
        let head = values::head(name, width);
        let fmt = Fmt {
            bytes: c.byte_sizes.contains(name),
        };
        let b = before.get(name);
        let a = after.get(name);
        let generated = c.generated.iter().any(|g| g == name);
        let unknown = || {
            if c.sensitive.contains(name) {
                format!("{head}{REDACTED} (generated during apply)")
            } else {
                format!("{head}(known after apply)")
            }
        };
        let forces = c.replace_because.iter().any(|r| r == name);
        match action {
            Action::Delete => {
                if let Some(v) = b {
                    values::whole(&mut lines, 0, Mark::Remove, &head, v, fmt, false);
                }
            }
            Action::Create => match a {
                Some(v) => values::whole(&mut lines, 0, Mark::Add, &head, v, fmt, false),
                None => lines.push(Line::plain(0, Mark::Add, unknown())),
            },
            _ if is_changed(name) => match (b, a) {
                (Some(Value::String(x)), Some(Value::String(y)))
                    if (x.contains('\n') || y.contains('\n')) && x != REDACTED =>
                {
                    let suffix = if forces {
                        forces_text(p)
                    } else {
                        String::new()
                    };
                    let _ = writeln!(out, "      {} {head}<<-EOT{suffix}", p.sym(Sym::Change));
                    render_line_diff(out, p, x, y);
                    let _ = writeln!(out, "        EOT");
                }
                (Some(b), Some(a)) => {
                    let ob = orig_before.get(name).unwrap_or(b);
                    let oa = orig_after.get(name).unwrap_or(a);
                    values::changed(
                        &mut lines,
                        0,
                        &head,
                        Pair { orig: ob, shown: b },
                        Pair { orig: oa, shown: a },
                        fmt,
                        forces,
                    );
                }
                (None, Some(a)) => values::whole(&mut lines, 0, Mark::Add, &head, a, fmt, forces),
                (Some(b), None) if generated => lines.push(Line::Changed {
                    depth: 0,
                    head: head.clone(),
                    before: values::scalar(b, fmt),
                    after: "(known after apply)".to_string(),
                    forces,
                }),
                (Some(b), None) => values::removed(&mut lines, 0, &head, b, fmt),
                (None, None) => {}
            },
            // A replacement generates its secret again.
            _ if generated && a.is_none() => lines.push(Line::plain(0, Mark::Add, unknown())),
            // Unchanged: folded, as Terraform does, except the name that identifies the
            // object to a reader.
            _ => match a.or(b) {
                Some(v) if name == "name" => {
                    values::whole(&mut lines, 0, Mark::Same, &head, v, fmt, false)
                }
                _ => hidden += 1,
            },
        }
        write_lines(out, p, &lines);
    }
    let mut fold = Vec::new();
    values::fold(&mut fold, 0, hidden, "attribute");
    write_lines(out, p, &fold);
    let _ = writeln!(out, "    }}\n");
}

fn forces_text(p: &Painter) -> String {
    p.paint(
        Style::new().fg_color(Some(AnsiColor::Red.into())),
        " # forces replacement",
    )
}

/// Attribute lines in Terraform's layout: the marker in column 6, four more columns per
/// level of nesting.
fn write_lines(out: &mut String, p: &Painter, lines: &[Line]) {
    for line in lines {
        match line {
            Line::Plain {
                depth,
                mark,
                text,
                forces,
            } => {
                let sym = match mark {
                    Mark::Add => p.sym(Sym::Add),
                    Mark::Remove => p.sym(Sym::Remove),
                    Mark::Change => p.sym(Sym::Change),
                    Mark::Same => " ".to_string(),
                };
                let suffix = if *forces {
                    forces_text(p)
                } else {
                    String::new()
                };
                let indent = " ".repeat(6 + 4 * depth);
                let _ = writeln!(out, "{indent}{sym} {text}{suffix}");
            }
            Line::Changed {
                depth,
                head,
                before,
                after,
                forces,
            } => {
                let suffix = if *forces {
                    forces_text(p)
                } else {
                    String::new()
                };
                let indent = " ".repeat(6 + 4 * depth);
                let _ = writeln!(
                    out,
                    "{indent}{} {head}{before} -> {after}{suffix}",
                    p.sym(Sym::Change)
                );
            }
        }
    }
}

/// Multi-line text is shown as a unified line diff, never as one opaque changed string.
fn render_line_diff(out: &mut String, p: &Painter, before: &str, after: &str) {
    let diff = TextDiff::from_lines(before, after);
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let _ = writeln!(out, "          {}", p.bold(&hunk.header().to_string()));
        for change in hunk.iter_changes() {
            let (sym, s) = match change.tag() {
                similar::ChangeTag::Delete => (Sym::Remove, "-"),
                similar::ChangeTag::Insert => (Sym::Add, "+"),
                similar::ChangeTag::Equal => (Sym::Same, " "),
            };
            let line = change.value().trim_end_matches('\n');
            let marker = if sym == Sym::Same {
                s.to_string()
            } else {
                p.sym(sym)
            };
            let _ = writeln!(out, "          {marker}{line}");
        }
    }
}

/// One drift entry as the plan shows it (values must already be redacted).
pub(crate) fn drift_text(d: &Drift, color: bool) -> String {
    let mut out = String::new();
    render_drift(&mut out, &Painter { color }, d);
    out
}

/// Bold text, when colour is on.
pub(crate) fn bold(text: &str, color: bool) -> String {
    Painter { color }.bold(text)
}

fn render_drift(out: &mut String, p: &Painter, d: &Drift) {
    match &d.kind {
        DriftKind::Deleted => {
            let _ = writeln!(
                out,
                "  {} was deleted outside terrace",
                p.bold(&format!("# {}", d.address))
            );
        }
        DriftKind::Changed { attrs } => {
            // A new name is what the user did ("renamed"), not one attribute among others.
            let renamed = attrs
                .iter()
                .find(|a| a.name == "name" && !d.sensitive.contains("name"))
                .and_then(|a| a.after.as_ref());
            let what = match renamed {
                Some(to) => format!("was renamed to {} outside terrace", value_text(to)),
                None => "has changed outside terrace".to_string(),
            };
            let _ = writeln!(out, "  {} {what}", p.bold(&format!("# {}", d.address)));
            let _ = writeln!(out, "  {} {} {{", p.sym(Sym::Change), d.type_name);
            let width = attrs.iter().map(|a| a.name.len()).max().unwrap_or(0);
            for a in attrs {
                let pad = " ".repeat(width - a.name.len());
                // Lists (an account's extra access) read best item by item: what
                // appeared and what went away.
                if let (Some(Value::Array(before)), Some(Value::Array(after))) =
                    (&a.before, &a.after)
                {
                    let _ = writeln!(out, "      {} {}{pad} = [", p.sym(Sym::Change), a.name);
                    for gone in before.iter().filter(|v| !after.contains(v)) {
                        let _ =
                            writeln!(out, "          {} {}", p.sym(Sym::Remove), item_text(gone));
                    }
                    for new in after.iter().filter(|v| !before.contains(v)) {
                        let _ = writeln!(out, "          {} {}", p.sym(Sym::Add), item_text(new));
                    }
                    let _ = writeln!(out, "        ]");
                    continue;
                }
                // Text edited by hand (a file) shows what changed, line by line.
                if let (Some(Value::String(x)), Some(Value::String(y))) = (&a.before, &a.after) {
                    if (x.contains('\n') || y.contains('\n')) && x != REDACTED && y != REDACTED {
                        let _ =
                            writeln!(out, "      {} {}{pad} = <<-EOT", p.sym(Sym::Change), a.name);
                        render_line_diff(out, p, x, y);
                        let _ = writeln!(out, "        EOT");
                        continue;
                    }
                }
                let fmt = Fmt {
                    bytes: d.byte_sizes.contains(&a.name),
                };
                let shown = |v: Option<&Value>| match v {
                    Some(v @ Value::Number(_)) if fmt.bytes => values::scalar(v, fmt),
                    Some(v) => value_text(v),
                    None => "null".into(),
                };
                let (b, v) = (shown(a.before.as_ref()), shown(a.after.as_ref()));
                let _ = writeln!(
                    out,
                    "      {} {}{pad} = {b} -> {v}",
                    p.sym(Sym::Change),
                    a.name
                );
            }
            let _ = writeln!(out, "    }}");
        }
    }
}

fn render_conflict(out: &mut String, p: &Painter, c: &Conflict) {
    let bang = p.paint(
        Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
        "!",
    );
    let _ = writeln!(out, "  {bang} {}: {}", c.address, c.message);
    match &c.hint {
        Some(hint) => {
            let _ = writeln!(out, "    hint: {hint}\n");
        }
        None => {
            let _ = writeln!(
                out,
                "    hint: adopt it with `terrace import {} {}`, or remove it from the configuration\n",
                shell_quote(c.address.as_str()),
                shell_quote(&c.import_id)
            );
        }
    }
}

/// Values print as HCL-ish literals: strings quoted, lists and objects as compact JSON.
/// One list item: strings without JSON quotes, so worded findings read as sentences.
fn item_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => value_text(other),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) if s == REDACTED => REDACTED.to_string(),
        other => other.to_string(),
    }
}

/// Quotes a word for a POSIX shell so a hint can be pasted as is.
pub(crate) fn shell_quote(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-./@:=".contains(c));
    if plain && !s.is_empty() {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
