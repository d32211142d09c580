//! Moves of objects that hold data (a database, a Docker volume) to another server:
//! what the executor does beyond plain provider steps.
//!
//! Order, never losing a write and never dropping what is not copied: the tenant's apps
//! that use the object are destroyed in the destroy phase, as before (they depend on
//! it); in the create phase, at the object's place in the graph, the old object is
//! copied ([`Provider::export_data`]), the new one created and restored from the copy
//! and verified ([`Provider::restore_data`]); the apps that depend on it start after
//! that; the old object is dropped last (with its usual dump), in a phase of its own.
//!
//! Crash safety: when the move starts, the old object's state record is moved to its
//! deposed address (`X (deposed)`) and the new one recorded as pending, in one journal
//! write. Killed before the new object is verified, the next plan finds both and moves
//! again from the old object (a partial copy is dropped first); killed after, it finds
//! the new object managed and destroys the deposed one.

use std::collections::BTreeSet;

use terrace_plan::{Plan, ResourceChange};
use terrace_provider::{Address, Attrs, ObserveRequest, Observed, Operation, Provider, Step};
use terrace_state::State;

use crate::output::Redactor;
use crate::providers::ProviderSet;

/// Checks every move of `plan` before anything is applied: both providers copy data in
/// the same format, and the destination holds no object of that name. Returns the moves
/// whose destination holds a partial copy an interrupted move of terrace's left (to be
/// dropped first), or why the plan cannot be applied.
pub async fn preflight(
    plan: &Plan,
    providers: &ProviderSet,
    state: &State,
    redactor: &Redactor,
) -> miette::Result<BTreeSet<Address>> {
    let mut leftovers = BTreeSet::new();
    let mut refused = Vec::new();
    for c in plan.actionable().filter(|c| c.moves_data) {
        let Some(from) = c.prior_provider.as_ref() else {
            continue;
        };
        let old = providers.get(from)?;
        let new = providers.get(&c.provider)?;
        let what = what(c);
        match (old.data_format(&c.type_name), new.data_format(&c.type_name)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                refused.push(format!(
                    "{}: {what} cannot move from {from} to {}: its data is a {a} copy, which a {b} server cannot restore. \
                     Keep it on {from}, or move the data by hand (export, convert, import) and then `terrace import` it there",
                    c.address, c.provider
                ));
                continue;
            }
            _ => {
                refused.push(format!(
                    "{}: {what} cannot move from {from} to {}: terrace cannot copy its data between them. Keep it on {from}",
                    c.address, c.provider
                ));
                continue;
            }
        }
        let request = ObserveRequest {
            address: c.address.clone(),
            type_name: c.type_name.clone(),
            attrs: c.after.clone().unwrap_or_default(),
        };
        let found = new
            .observe(std::slice::from_ref(&request))
            .await
            .map_err(|e| miette::miette!("{}: {}", c.address, redactor.scrub(&e.to_string())))?;
        if let Some(Observed::Present(_)) = found.first() {
            // terrace's own partial copy: the record is pending on the new server and
            // the old object deposed.
            let ours = state
                .get(&c.address)
                .is_some_and(|r| r.pending && r.provider == c.provider)
                && state.get(&c.address.deposed()).is_some();
            // The configuration moved it back while a move was unfinished: the original
            // is the deposed object on the destination.
            let moved_back = state
                .get(&c.address.deposed())
                .is_some_and(|r| r.provider == c.provider);
            if ours {
                leftovers.insert(c.address.clone());
            } else if moved_back {
                refused.push(format!(
                    "{addr}: an earlier apply stopped while moving it from {to} to {from}, and the configuration now keeps it on {to}, where the original still is. \
                     Apply once with the configuration that moves it to {from} to finish the move; or keep the original: \
                     `terrace state rm '{addr}'`, `terrace state mv '{addr} (deposed)' '{addr}'`, and remove the partial copy on {from} by hand",
                    addr = c.address,
                    to = c.provider,
                ));
            } else {
                // Two services may be two addresses of one server: then the "other"
                // object is this very one, and removing it would lose the data.
                refused.push(format!(
                    "{}: {what} cannot move to {to}: it already holds one of that name, which terrace does not manage there. \
                     If {to} reaches the same server as {from} (another address for it), that is this very one: keep it on {from}. \
                     Otherwise look at what it holds before you rename or remove it there, or choose another destination; the data stays on {from}",
                    c.address,
                    to = c.provider
                ));
            }
        }
    }
    if refused.is_empty() {
        Ok(leftovers)
    } else {
        Err(miette::miette!(
            help = "nothing was applied",
            "{}",
            redactor.scrub(&refused.join("\n"))
        ))
    }
}

/// `database "wp_a"`: the object a move is about, for messages.
fn what(c: &ResourceChange) -> String {
    let noun = crate::providers::schema(&c.type_name).map_or("object", |s| s.description);
    match c.before.as_ref().and_then(|b| b.get("name")?.as_str()) {
        Some(name) if !c.sensitive.contains("name") => format!("{noun} {name:?}"),
        _ => noun.to_string(),
    }
}

/// The create half of a move: drop a partial copy an interrupted move left (when
/// `leftover`), copy the old object, create the new one, restore the copy into it and
/// verify it. Returns the new object's attributes; on error the old object is untouched.
pub async fn copy_create_restore(
    old: &dyn Provider,
    new: &dyn Provider,
    step: &Step,
    before: &Attrs,
    leftover: bool,
) -> Result<Option<Attrs>, String> {
    let desired = step.desired.clone().unwrap_or_default();
    if leftover {
        let drop = Step {
            operation: Operation::Delete,
            prior: Some(desired.clone()),
            desired: None,
            changed: Vec::new(),
            ..step.clone()
        };
        new.apply(&drop).await.map_err(|e| {
            format!("dropping the partial copy an interrupted move left failed: {e}")
        })?;
    }
    let copy = old
        .export_data(&step.address, &step.type_name, before)
        .await
        .map_err(|e| e.to_string())?;
    let stored = new
        .apply(step)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or(desired);
    new.restore_data(&step.address, &step.type_name, &stored, &copy)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(address = %step.address, copy = %copy.path.display(), "moved with its data");
    Ok(Some(stored))
}
