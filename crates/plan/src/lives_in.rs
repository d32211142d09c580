//! Objects that live inside others on the server: a grant in its user (`DROP USER`
//! takes the user's grants with it). When the plan replaces the home, it replaces what
//! lives in it too, so that apply makes it again; otherwise the grant would be gone
//! after an apply that said it was kept, and the next plan would blame someone else.

use std::collections::BTreeMap;

use crate::diff::Schemas;
use crate::model::{Action, Plan};

/// Marks, in [`crate::ResourceChange::replace_because`], a replacement forced by the
/// replacement of an object this one lives in.
pub const LIVES_IN_REPLACED: &str = "(lives in what is replaced)";

/// Turns every no-op or update whose object lives in a replaced dependency (per its
/// schema's `lives_in`) into a replacement, transitively. Run after every other source
/// of replacement (`--replace` included).
pub fn replace_what_lives_in_replaced(plan: &mut Plan, schemas: Schemas<'_>) {
    loop {
        let replaced: BTreeMap<_, _> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Replace)
            .map(|c| (c.address.clone(), c.type_name.clone()))
            .collect();
        let mut more = false;
        for c in plan
            .changes
            .iter_mut()
            .filter(|c| matches!(c.action, Action::NoOp | Action::Update))
        {
            let Some(schema) = schemas(&c.type_name) else {
                continue;
            };
            let home = c.depends_on.iter().find(|d| {
                replaced
                    .get(*d)
                    .is_some_and(|t| schema.lives_in.contains(&t.as_str()))
            });
            let Some(home) = home else { continue };
            let note = format!("it lives in {home}, which is replaced: the server drops it with it, and apply makes it again");
            c.action = Action::Replace;
            c.replace_because.insert(0, LIVES_IN_REPLACED.to_string());
            c.note = Some(match c.note.take() {
                Some(n) => format!("{n}; {note}"),
                None => note,
            });
            more = true;
        }
        if !more {
            return;
        }
    }
}
