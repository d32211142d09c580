//! The plan as GitHub-flavoured markdown, for a pull-request comment.
//!
//! Layout, in reading order: a hidden marker naming the project (so a bot finds and
//! updates its own comment), one result line, the warnings (destroys, replaces with
//! the attributes that forced them, data dropped with where its copy goes, conflicts,
//! what could not be planned or verified), drift in its own section, then the changes
//! grouped by tenant/service/host, each resource's details collapsed in `<details>`.
//!
//! The output is deterministic (same plan, same bytes) and split into parts below
//! GitHub's comment limit. Only file diffs are ever shortened, with a note; warnings
//! are never dropped. Everything comes from the structured plan, redacted here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};
use terrace_provider::{Safeguard, Value};

use super::values::{self, Fmt, Line, Mark, Pair};
use super::{drops_data, Partial};
use crate::model::{Action, Drift, DriftKind, Plan, ResourceChange, REDACTED};

/// GitHub's limit on the body of one comment, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

/// Default size of one part: GitHub's limit with room to spare (a bot may append a
/// footer).
pub const DEFAULT_PART_CHARS: usize = 65_000;

/// The most one resource's details may take; longer diffs are cut with a note, so a
/// single huge file cannot push everything else into many parts.
const RESOURCE_BUDGET: usize = 20_000;

/// The longest single line shown in a diff.
const MAX_LINE: usize = 1_000;

/// Options for [`render_markdown`].
#[derive(Debug, Clone, Copy)]
pub struct MarkdownOptions<'a> {
    /// The project name, for the hidden marker `<!-- terrace-plan: NAME -->`.
    pub project: &'a str,
    /// What the run could not plan.
    pub partial: &'a Partial,
    /// The most characters one part may have (at most [`GITHUB_COMMENT_LIMIT`]).
    pub part_chars: usize,
}

/// Renders the plan as one or more markdown documents, each below
/// `opts.part_chars` characters and each starting with the project's marker.
pub fn render_markdown(plan: &Plan, opts: &MarkdownOptions<'_>) -> Vec<String> {
    // Compared in the original, written from the redacted copy (as in the text form).
    let original = plan;
    let plan = plan.redacted();
    let mut blocks = Vec::new();
    warnings(&mut blocks, &plan, opts.partial);
    drift_section(&mut blocks, &plan);
    if !plan.moved.is_empty() {
        blocks.push(Block::heading(
            "### Moved (`moved` blocks): nothing changes on the servers\n\n".to_string(),
        ));
        let mut text = String::new();
        for m in &plan.moved {
            let _ = writeln!(
                text,
                "- {} → {}",
                code(m.from.as_str()),
                code(m.to.as_str())
            );
        }
        text.push('\n');
        blocks.push(Block {
            text,
            keep_with_next: false,
        });
    }
    if !plan.expiry.is_empty() {
        blocks.push(Block::heading("### Expiry\n\n".to_string()));
        let mut text = String::new();
        for e in &plan.expiry {
            let _ = writeln!(text, "- {}", self::text(&e.describe()));
        }
        text.push('\n');
        blocks.push(Block {
            text,
            keep_with_next: false,
        });
    }
    changes_section(&mut blocks, &plan, original);

    pack(
        &marker(opts.project),
        &result_line(&plan, opts.partial),
        blocks,
        opts.part_chars.min(GITHUB_COMMENT_LIMIT),
    )
}

/// The hidden marker a bot searches for. The name is reduced to characters that cannot
/// end the HTML comment or break the line.
fn marker(project: &str) -> String {
    let mut name: String = project
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "._/:@+".contains(c) || (c == '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-_");
    }
    format!("<!-- terrace-plan: {name} -->")
}

fn result_line(plan: &Plan, partial: &Partial) -> String {
    let s = plan.summary();
    let mut line = if plan.is_empty() {
        if !partial.is_empty() {
            format!(
                "**No changes** among the resources that could be planned; {} resource(s) could not be (see the warnings).",
                partial.not_planned.len()
            )
        } else if !plan.unverified.is_empty() {
            "**No changes** among what could be verified; see what was not, below.".to_string()
        } else {
            "**No changes.** The live systems match the configuration.".to_string()
        }
    } else {
        let mut counts = format!(
            "{} to add, {} to change, {} to destroy",
            s.add, s.change, s.destroy
        );
        if !plan.moved.is_empty() {
            let _ = write!(counts, ", {} to move", plan.moved.len());
        }
        if partial.is_empty() {
            format!("**Plan: {counts}.**")
        } else {
            format!(
                "**Incomplete plan: {counts}** among the resources that could be planned; {} resource(s) could not be (see the warnings).",
                partial.not_planned.len()
            )
        }
    };
    if !plan.conflicts.is_empty() {
        let _ = write!(
            line,
            " {} conflict(s) block this plan.",
            plan.conflicts.len()
        );
    }
    line
}

/// A unit of the document that is never split across parts (unless it alone is too
/// long, which only a warnings line with an enormous message can be).
struct Block {
    text: String,
    /// A heading: goes in the same part as the block after it.
    keep_with_next: bool,
}

impl Block {
    fn new(text: String) -> Block {
        Block {
            text,
            keep_with_next: false,
        }
    }

    fn heading(text: String) -> Block {
        Block {
            text,
            keep_with_next: true,
        }
    }
}

fn warnings(blocks: &mut Vec<Block>, plan: &Plan, partial: &Partial) {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    let deleted: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete && !crate::only_leaves_state(c))
        .map(|c| {
            let mut line = format!("- {} ({})", code(c.address.as_str()), code(&c.type_name));
            if let Some(note) = &c.note {
                let _ = write!(line, ": {}", text(note));
            }
            line
        })
        .collect();
    groups.push((format!("{} to destroy", deleted.len()), deleted));

    let replaced: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .map(|c| {
            format!(
                "- {} ({}): {}",
                code(c.address.as_str()),
                code(&c.type_name),
                replace_reason(c)
            )
        })
        .collect();
    groups.push((format!("{} to replace", replaced.len()), replaced));

    let dropped: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| drops_data(plan, c))
        .map(|c| {
            let what = data_noun(&c.type_name);
            let copy = match plan.safeguard(&c.address) {
                Some(g) => safeguard_text(g),
                None => "this plan does not say that a copy of its data is kept".to_string(),
            };
            format!("- {what} {}: {copy}", code(c.address.as_str()))
        })
        .collect();
    groups.push((format!("{} with data dropped", dropped.len()), dropped));

    let conflicts: Vec<String> = plan
        .conflicts
        .iter()
        .map(|c| {
            let hint = match &c.hint {
                Some(h) => text(h),
                None => format!(
                    "adopt it with {}, or remove it from the configuration",
                    code(&format!(
                        "terrace import {} {}",
                        super::text::shell_quote(c.address.as_str()),
                        super::text::shell_quote(&c.import_id)
                    ))
                ),
            };
            format!(
                "- {}: {} (hint: {hint})",
                code(c.address.as_str()),
                text(&c.message)
            )
        })
        .collect();
    groups.push((
        format!("{} conflict(s) block the apply", conflicts.len()),
        conflicts,
    ));

    let mut missing: Vec<String> = partial
        .errors
        .iter()
        .map(|e| match &e.address {
            Some(a) => format!(
                "- {} could not be observed: {}",
                code(a.as_str()),
                text(&e.message)
            ),
            None => format!(
                "- {} could not be reached: {}",
                code(&e.provider.0),
                text(&e.message)
            ),
        })
        .collect();
    missing.extend(
        partial
            .not_planned
            .iter()
            .map(|a| format!("- not planned: {}", code(a.as_str()))),
    );
    groups.push(("not planned this run".to_string(), missing));

    let unverified: Vec<String> = plan
        .unverified
        .iter()
        .map(|u| format!("- {}", text(u)))
        .collect();
    groups.push((
        "not verified (the plan cannot vouch for these)".to_string(),
        unverified,
    ));

    groups.retain(|(_, lines)| !lines.is_empty());
    if groups.is_empty() {
        return;
    }
    blocks.push(Block::heading("### ⚠️ Warnings\n\n".to_string()));
    for (title, lines) in groups {
        blocks.push(Block::heading(format!("**{}**\n", title)));
        let n = lines.len();
        for (i, line) in lines.into_iter().enumerate() {
            // A blank line after the list, before the next title.
            let end = if i + 1 == n { "\n\n" } else { "\n" };
            blocks.push(Block::new(format!("{line}{end}")));
        }
    }
}

fn replace_reason(c: &ResourceChange) -> String {
    match &c.prior_provider {
        Some(from) if c.moves_data => format!(
            "it moves from {} to {} with its data (copied, restored and verified before the old one is dropped)",
            code(&from.0),
            code(&c.provider.0)
        ),
        Some(from) => format!("it moves from {} to {}", code(&from.0), code(&c.provider.0)),
        None if c.replace_because.iter().any(|b| b == crate::USES_MOVED_ATTR) => {
            "it uses what moves to another server (stopped before the move, started after it)".to_string()
        }
        None if c.replace_because.iter().any(|b| b == crate::LIVES_IN_REPLACED) => {
            "it lives in what is replaced (the server drops it with it)".to_string()
        }
        None => {
            let requested = c
                .replace_because
                .iter()
                .any(|b| b == crate::REPLACE_REQUESTED);
            let names: Vec<String> = c
                .replace_because
                .iter()
                .filter(|b| *b != crate::REPLACE_REQUESTED)
                .map(|n| code(n))
                .collect();
            match (requested, names.is_empty()) {
                (true, true) => "requested".to_string(),
                (true, false) => format!("requested; {} cannot change in place", names.join(", ")),
                _ => format!("{} cannot change in place", names.join(", ")),
            }
        }
    }
}

fn safeguard_text(g: &Safeguard) -> String {
    format!(
        "a {} of its data is written to {} first; if that fails, it is not destroyed",
        text(&g.kind),
        code(&g.destination)
    )
}

/// What the object is, in a warning about its data.
fn data_noun(type_name: &str) -> &'static str {
    match type_name {
        "sql_database" => "database",
        "docker_volume" => "volume",
        _ => "object",
    }
}

fn drift_section(blocks: &mut Vec<Block>, plan: &Plan) {
    if plan.drift.is_empty() {
        return;
    }
    blocks.push(Block::heading(format!(
        "### Drift: {} object(s) changed outside terrace since the last apply\n\n",
        plan.drift.len()
    )));
    let n = plan.drift.len();
    for (i, d) in plan.drift.iter().enumerate() {
        let mut out = drift_item(d);
        if i + 1 == n {
            out.push('\n');
        }
        blocks.push(Block::new(out));
    }
}

fn drift_item(d: &Drift) -> String {
    let head = format!("- {} ({})", code(d.address.as_str()), code(&d.type_name));
    let DriftKind::Changed { attrs } = &d.kind else {
        return format!("{head} was deleted outside terrace\n");
    };
    let mut out = format!("{head} has changed outside terrace:\n");
    let mut budget = RESOURCE_BUDGET;
    for a in attrs {
        if multiline(a.before.as_ref()) || multiline(a.after.as_ref()) {
            // Text edited by hand (a file's content) reads as a diff, nested in the item.
            let _ = writeln!(out, "  - {}:\n", code(&a.name));
            let (b, l) = (string_of(a.before.as_ref()), string_of(a.after.as_ref()));
            for line in fenced(&unified_diff(&b, &l), &mut budget).lines() {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "    {line}");
                }
            }
            continue;
        }
        match (&a.before, &a.after) {
            // Lists (an account's extra access) read best item by item.
            (Some(Value::Array(before)), Some(Value::Array(after))) => {
                let _ = writeln!(out, "  - {}:", code(&a.name));
                for gone in before.iter().filter(|v| !after.contains(v)) {
                    let _ = writeln!(out, "    - removed: {}", code(&item_text(gone)));
                }
                for new in after.iter().filter(|v| !before.contains(v)) {
                    let _ = writeln!(out, "    - added: {}", code(&item_text(new)));
                }
            }
            (b, l) => {
                let fmt = Fmt {
                    bytes: d.byte_sizes.contains(&a.name),
                };
                let shown = |v: Option<&Value>| match v {
                    Some(v @ Value::Number(_)) if fmt.bytes => values::scalar(v, fmt),
                    other => opt_value(other),
                };
                let _ = writeln!(
                    out,
                    "  - {}: {} → {}",
                    code(&a.name),
                    code(&shown(b.as_ref())),
                    code(&shown(l.as_ref()))
                );
            }
        }
    }
    out
}

fn changes_section(blocks: &mut Vec<Block>, plan: &Plan, original: &Plan) {
    let mut groups: BTreeMap<&str, Vec<(&ResourceChange, &ResourceChange)>> = BTreeMap::new();
    for (o, c) in original.changes.iter().zip(&plan.changes) {
        if c.action != Action::NoOp {
            groups
                .entry(group_of(c.address.as_str()))
                .or_default()
                .push((o, c));
        }
    }
    if groups.is_empty() {
        return;
    }
    blocks.push(Block::heading("### Changes\n\n".to_string()));
    for (group, changes) in groups {
        blocks.push(Block::heading(format!(
            "#### {} — {}\n\n",
            code(group),
            group_summary(&changes)
        )));
        for c in changes {
            blocks.push(Block::new(resource_details(plan, c)));
        }
    }
}

/// The tenant, service or host an address belongs to: its first two parts
/// (`tenant.app["a"]` of `tenant.app["a"].database.user`). Dots inside brackets and
/// quotes do not count.
fn group_of(address: &str) -> &str {
    let (mut depth, mut quoted, mut escaped, mut dots) = (0usize, false, false, 0);
    for (i, ch) in address.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth = depth.saturating_sub(1),
            '.' if !quoted && depth == 0 => {
                dots += 1;
                if dots == 2 {
                    return &address[..i];
                }
            }
            _ => {}
        }
    }
    address
}

fn group_summary(changes: &[(&ResourceChange, &ResourceChange)]) -> String {
    let count = |a: Action| changes.iter().filter(|(_, c)| c.action == a).count();
    let parts: Vec<String> = [
        (Action::Create, "to add"),
        (Action::Update, "to change"),
        (Action::Replace, "to replace"),
        (Action::Delete, "to destroy"),
    ]
    .into_iter()
    .filter_map(|(a, label)| {
        let n = count(a);
        (n > 0).then(|| format!("{n} {label}"))
    })
    .collect();
    parts.join(", ")
}

/// One resource's `<details>` block: what happens and why, its attributes as a diff,
/// and each multi-line text attribute (file content) as a diff of its own.
fn resource_details(plan: &Plan, (orig, c): (&ResourceChange, &ResourceChange)) -> String {
    let (sym, verb) = match c.action {
        Action::Create if c.note.as_deref() == Some(crate::ADOPT_EXISTING_NOTE) => {
            ("+", "will be adopted".to_string())
        }
        Action::Create => ("+", "will be created".to_string()),
        Action::Update => ("~", "will be updated in place".to_string()),
        Action::Replace => ("-/+", "must be replaced".to_string()),
        Action::Delete if crate::only_leaves_state(c) => (
            "-",
            "will be removed from the state (nothing on the server changes)".to_string(),
        ),
        Action::Delete => ("-", "will be destroyed".to_string()),
        Action::NoOp => (" ", "is unchanged".to_string()),
    };
    let mut out = format!(
        "<details><summary><code>{sym} {}</code> ({}) {verb}</summary>\n\n",
        html(c.address.as_str()),
        html(&c.type_name)
    );
    if c.action == Action::Replace {
        let _ = writeln!(out, "- replaced because {}", replace_reason(c));
    }
    if let Some(note) = &c.note {
        let _ = writeln!(out, "- {}", text(note));
    }
    if let Some(g) = plan
        .safeguard(&c.address)
        .filter(|_| matches!(c.action, Action::Delete | Action::Replace))
    {
        let _ = writeln!(out, "- {}", safeguard_text(g));
    }
    if !out.ends_with("\n\n") {
        out.push('\n');
    }

    let (before, after, names) = super::shown_attrs(c);
    let (orig_before, orig_after, _) = super::shown_attrs(orig);
    let (names, mut hidden) = super::visible(orig, &names);
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    // An adopted object exists: shown as what apply changes on it (see the text form).
    let adopting = super::adopting(c);
    let action = if adopting { Action::Update } else { c.action };

    let mut lines: Vec<Line> = Vec::new();
    let mut texts = Vec::new();
    for name in names {
        let head = values::head(name, width);
        let fmt = Fmt {
            bytes: c.byte_sizes.contains(name),
        };
        let b = before.get(name).filter(|_| action != Action::Create);
        let a = after.get(name).filter(|_| action != Action::Delete);
        let forces = c.replace_because.iter().any(|r| r == name);
        let changed = match action {
            Action::Create | Action::Delete => true,
            _ if adopting => orig_before.get(name) != orig_after.get(name),
            _ => c.changed.iter().any(|n| n == name),
        };
        let generated = c.generated.iter().any(|g| g == name);
        if multiline(b) || multiline(a) {
            let (bs, as_) = (string_of(b), string_of(a));
            if bs == as_ && name != "name" {
                hidden += 1;
                continue;
            }
            let mark = match (b, a) {
                (None, Some(_)) => Mark::Add,
                (Some(_), None) => Mark::Remove,
                _ if bs != as_ => Mark::Change,
                _ => Mark::Same,
            };
            let what = if bs != as_ {
                "(multi-line text, diff below)"
            } else {
                "(multi-line text, unchanged)"
            };
            lines.push(Line::Plain {
                depth: 0,
                mark,
                text: format!("{head}{what}"),
                forces,
            });
            if bs != as_ {
                texts.push((name, bs, as_));
            }
            continue;
        }
        let unknown = || {
            let text = if c.sensitive.contains(name) {
                format!("{head}{REDACTED} (generated during apply)")
            } else {
                format!("{head}(known after apply)")
            };
            Line::plain(0, Mark::Add, text)
        };
        match (b, a) {
            _ if !changed && generated && a.is_none() && action == Action::Replace => {
                lines.push(unknown())
            }
            (b, a) if !changed => match a.or(b) {
                Some(v) if name == "name" => {
                    values::whole(&mut lines, 0, Mark::Same, &head, v, fmt, false)
                }
                _ => hidden += 1,
            },
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
            (Some(b), None) if action == Action::Delete => {
                values::whole(&mut lines, 0, Mark::Remove, &head, b, fmt, false)
            }
            (Some(b), None) if generated => lines.push(Line::Changed {
                depth: 0,
                head: head.clone(),
                before: values::scalar(b, fmt),
                after: "(known after apply)".to_string(),
                forces,
            }),
            (Some(b), None) => values::removed(&mut lines, 0, &head, b, fmt),
            (None, None) if generated || action == Action::Create => lines.push(unknown()),
            (None, None) => {}
        }
    }
    values::fold(&mut lines, 0, hidden, "attribute");
    let lines = diff_lines(&lines);
    let mut budget = RESOURCE_BUDGET;
    out.push_str(&fenced(&lines, &mut budget));
    for (name, b, a) in texts {
        let _ = writeln!(out, "\n{}:\n", code(name));
        out.push_str(&fenced(&unified_diff(&b, &a), &mut budget));
    }
    out.push_str("\n</details>\n\n");
    out
}

/// Attribute lines as a ```` ```diff ```` block shows them: the marker in the first
/// column (a changed value as a `-` line and a `+` line, so both are coloured), the
/// nesting after it.
fn diff_lines(lines: &[Line]) -> Vec<String> {
    let forces = |f: bool| if f { "  # forces replacement" } else { "" };
    let mut out = Vec::new();
    for line in lines {
        match line {
            Line::Plain {
                depth,
                mark,
                text,
                forces: f,
            } => {
                let sign = match mark {
                    Mark::Add => '+',
                    Mark::Remove => '-',
                    Mark::Change => '~',
                    Mark::Same => ' ',
                };
                let indent = "    ".repeat(*depth);
                out.push(format!("{sign} {indent}{text}{}", forces(*f)));
            }
            Line::Changed {
                depth,
                head,
                before,
                after,
                forces: f,
            } => {
                let indent = "    ".repeat(*depth);
                out.push(format!("- {indent}{head}{before}"));
                out.push(format!("+ {indent}{head}{after}{}", forces(*f)));
            }
        }
    }
    out
}

fn multiline(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::String(s)) if s.contains('\n') && s != REDACTED)
}

fn string_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

/// A unified line diff, with three lines of context.
fn unified_diff(before: &str, after: &str) -> Vec<String> {
    let diff = TextDiff::from_lines(before, after);
    let mut lines = Vec::new();
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        lines.push(hunk.header().to_string());
        for change in hunk.iter_changes() {
            let sign = match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            let line = change.value().trim_end_matches('\n').trim_end_matches('\r');
            lines.push(format!("{sign}{line}"));
        }
    }
    lines
}

/// `lines` in a ```` ```diff ```` block, within `budget` characters (what is left of
/// it is updated): long lines are cut, and once the budget is spent the remaining
/// lines are replaced by a note saying how many there were.
fn fenced(lines: &[String], budget: &mut usize) -> String {
    let longest_run = lines.iter().map(|l| backtick_run(l)).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let mut out = format!("{fence}diff\n");
    let mut shown = 0;
    for line in lines {
        let line = cut_line(line);
        let len = line.chars().count() + 1;
        if len > *budget {
            break;
        }
        *budget -= len;
        out.push_str(&line);
        out.push('\n');
        shown += 1;
    }
    let _ = writeln!(out, "{fence}");
    let hidden = lines.len() - shown;
    if hidden > 0 {
        let _ = writeln!(
            out,
            "\n*… {hidden} more line(s) not shown: this diff is too long for a comment. \
             `terrace show PLANFILE` prints it whole.*"
        );
    }
    out
}

fn cut_line(line: &str) -> String {
    let n = line.chars().count();
    if n <= MAX_LINE {
        return line.to_string();
    }
    let kept: String = line.chars().take(MAX_LINE).collect();
    format!("{kept} … ({} more characters)", n - MAX_LINE)
}

fn backtick_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for ch in s.chars() {
        run = if ch == '`' { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Splits the blocks into parts of at most `limit` characters, each starting with the
/// marker, "part i of n" (when there are several) and the result line.
fn pack(marker: &str, result: &str, blocks: Vec<Block>, limit: usize) -> Vec<String> {
    // Room for the head, whatever i and n turn out to be.
    let head_room = head(marker, result, 999_999, 999_999, true).chars().count();
    let budget = limit.saturating_sub(head_room).max(1);
    // Each body with its length in characters.
    let mut bodies: Vec<(String, usize)> = vec![(String::new(), 0)];
    let mut units: Vec<String> = Vec::new();
    let mut pending = String::new();
    for b in blocks {
        pending.push_str(&b.text);
        if !b.keep_with_next {
            units.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        units.push(pending);
    }
    for unit in units {
        for piece in split_to_fit(&unit, budget) {
            let len = piece.chars().count();
            let (text, used) = bodies.last_mut().expect("never empty");
            if *used > 0 && *used + len > budget {
                bodies.push((piece, len));
            } else {
                text.push_str(&piece);
                *used += len;
            }
        }
    }
    let n = bodies.len();
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, (body, _))| {
            let mut part = head(marker, result, i + 1, n, n > 1);
            part.push_str(&body);
            while part.ends_with("\n\n") {
                part.pop();
            }
            part
        })
        .collect()
}

fn head(marker: &str, result: &str, i: usize, n: usize, numbered: bool) -> String {
    let mut out = format!("{marker}\n");
    if numbered {
        let cont = if i > 1 { " (continued)" } else { "" };
        let _ = writeln!(out, "**terrace plan, part {i} of {n}**{cont}\n");
    }
    let _ = writeln!(out, "{result}\n");
    out
}

/// `unit` as pieces of at most `budget` characters: whole if it fits, else cut at line
/// ends (and, for a single enormous line, anywhere). Nothing is dropped.
fn split_to_fit(unit: &str, budget: usize) -> Vec<String> {
    if unit.chars().count() <= budget {
        return vec![unit.to_string()];
    }
    let mut pieces = vec![String::new()];
    let mut len = 0;
    for line in unit.split_inclusive('\n') {
        let mut rest: Vec<char> = line.chars().collect();
        while !rest.is_empty() {
            if len > 0 && len + rest.len() > budget {
                pieces.push(String::new());
                len = 0;
            }
            let take = rest.len().min(budget);
            let chunk: String = rest.drain(..take).collect();
            len += chunk.chars().count();
            pieces.last_mut().expect("never empty").push_str(&chunk);
        }
    }
    pieces
}

/// Inline code that no content can break out of: the fence is longer than any run of
/// backticks inside, and line breaks become spaces.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let fence = "`".repeat(backtick_run(&s) + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// Free text (messages, notes) as literal markdown: no markup, no HTML, one line.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            _ => out.push(ch),
        }
    }
    out
}

/// Text inside an HTML element (`<summary>`).
fn html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace(['\n', '\r'], " ")
}

fn item_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) if s == REDACTED => REDACTED.to_string(),
        other => other.to_string(),
    }
}

fn opt_value(v: Option<&Value>) -> String {
    v.map(value_text).unwrap_or_else(|| "null".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_the_first_two_parts_of_an_address() {
        assert_eq!(
            group_of(r#"tenant.app["a.b"].database.user"#),
            r#"tenant.app["a.b"]"#
        );
        assert_eq!(group_of("service.pg"), "service.pg");
        assert_eq!(group_of(r#"host.web.file["/etc/x.conf"]"#), "host.web");
        assert_eq!(group_of("db"), "db");
    }

    #[test]
    fn hostile_names_cannot_escape_code_spans_or_the_marker() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(
            text("<img src=x> *b* [l](u)"),
            r"&lt;img src=x&gt; \*b\* \[l\](u)"
        );
        assert_eq!(marker("a --> b\nc"), "<!-- terrace-plan: a_-___b_c -->");
    }

    #[test]
    fn an_enormous_unit_is_split_at_line_ends_and_nothing_is_lost() {
        let unit = "aaaa\nbbbb\ncccccccccc\n";
        let pieces = split_to_fit(unit, 6);
        assert!(pieces.iter().all(|p| p.chars().count() <= 6), "{pieces:?}");
        assert_eq!(pieces.concat(), unit);
    }
}
