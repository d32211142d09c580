//! Plan renderers: text for terminals, markdown for pull requests, JSON for machines.
//!
//! Every renderer works from the structured [`Plan`], never from another renderer's
//! text, and redacts sensitive values itself.

mod json;
mod markdown;
mod text;
mod values;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use terrace_provider::{Address, Attrs, ProviderKey};

use crate::model::{Action, Plan, ResourceChange};

/// What a change shows, shared by the text and markdown renderers: its attributes
/// before and after (empty where there are none) and the names to list — everything
/// after it, everything before a delete, and what apply generates.
pub(crate) fn shown_attrs(c: &ResourceChange) -> (&Attrs, &Attrs, BTreeSet<&str>) {
    static EMPTY: std::sync::LazyLock<Attrs> = std::sync::LazyLock::new(Attrs::new);
    let before = c.before.as_ref().unwrap_or(&*EMPTY);
    let after = c.after.as_ref().unwrap_or(&*EMPTY);
    let mut names: BTreeSet<&str> = after.keys().map(String::as_str).collect();
    if c.action == Action::Delete {
        names.extend(before.keys().map(String::as_str));
    }
    names.extend(c.generated.iter().map(String::as_str));
    (before, after, names)
}

/// Of `names`, those a change lists, and how many it folds into `# (N unchanged
/// attributes hidden)`: all for a create or a destroy; for an update, a replacement or
/// an adoption, what changes, what apply generates again, and `name`, which identifies
/// the object to a reader (as Terraform keeps `id` and `name`). Compared on `orig`, the
/// change before redaction.
pub(crate) fn visible<'a>(
    orig: &ResourceChange,
    names: &BTreeSet<&'a str>,
) -> (Vec<&'a str>, usize) {
    static EMPTY: std::sync::LazyLock<Attrs> = std::sync::LazyLock::new(Attrs::new);
    let before = orig.before.as_ref().unwrap_or(&*EMPTY);
    let after = orig.after.as_ref().unwrap_or(&*EMPTY);
    let adopting = adopting(orig);
    let shows = |name: &str| {
        let changed = if adopting {
            before.get(name) != after.get(name)
        } else {
            orig.changed.iter().any(|n| n == name)
        };
        matches!(orig.action, Action::Create | Action::Delete) && !adopting
            || changed
            || name == "name"
            || orig.generated.iter().any(|g| g == name) && !after.contains_key(name)
    };
    let shown: Vec<&str> = names.iter().copied().filter(|n| shows(n)).collect();
    let hidden = names.len() - shown.len();
    (shown, hidden)
}

/// True for the create of an object that exists already and that apply adopts: shown
/// as what changes on it, not as created.
pub(crate) fn adopting(c: &ResourceChange) -> bool {
    c.action == Action::Create
        && c.before.is_some()
        && c.note.as_deref() == Some(crate::ADOPT_EXISTING_NOTE)
}

pub use json::{render_json, render_json_run, JSON_FORMAT_VERSION};
pub use markdown::{render_markdown, MarkdownOptions, DEFAULT_PART_CHARS, GITHUB_COMMENT_LIMIT};
pub(crate) use text::{bold, drift_text};
pub use text::{render_text, TextOptions};

/// What a plan run could not cover: the providers that could not be asked, and the
/// resources left out because of them. Empty for a complete run, and for every saved
/// plan (a partial plan is never saved). Messages must already be free of secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Partial {
    /// One entry per provider that failed.
    pub errors: Vec<RunError>,
    /// Resources not planned this run, in address order.
    pub not_planned: Vec<Address>,
}

impl Partial {
    /// True for a complete run.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty() && self.not_planned.is_empty()
    }
}

/// A provider that could not be asked during planning, or one resource it could not
/// observe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    /// The provider instance (`service.pg`, `host.web`).
    pub provider: ProviderKey,
    /// The one resource that could not be observed; `None`: the whole provider failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// What went wrong, secrets scrubbed.
    pub message: String,
}

/// Resource types whose destruction loses data someone put there (rows, files), for
/// plans saved before changes said so themselves ([`crate::ResourceChange::deletes_data`]).
const DATA_TYPES: &[&str] = &["sql_database", "docker_volume"];

/// The yes/no facts a CI policy asks of a plan (e.g. "a destroy needs a second
/// reviewer"), computed from the structured plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyFlags {
    /// Some object is destroyed (deleted, or replaced).
    pub has_destroy: bool,
    /// Some object holding data (a database, a volume) is destroyed.
    pub drops_data: bool,
    /// Something changed outside terrace since the last apply.
    pub has_drift: bool,
}

impl PolicyFlags {
    /// The flags of `plan`.
    pub fn of(plan: &Plan) -> PolicyFlags {
        let destroys = || {
            plan.changes
                .iter()
                .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        };
        PolicyFlags {
            has_destroy: destroys().next().is_some(),
            drops_data: destroys().any(|c| drops_data(plan, c)),
            has_drift: !plan.drift.is_empty(),
        }
    }
}

/// True if destroying `c` loses data: a data-holding type, or one whose provider
/// announced it saves a copy first (it would not, if there were nothing to lose).
fn drops_data(plan: &Plan, c: &crate::model::ResourceChange) -> bool {
    matches!(c.action, Action::Delete | Action::Replace)
        && (c.deletes_data
            || DATA_TYPES.contains(&c.type_name.as_str())
            || plan.safeguard(&c.address).is_some())
}
