//! Placement in the binary: the state records where each placed tenant instance runs
//! (before the apply that creates it), and the configuration is loaded with those
//! records, so that a placement rule keeps every tenant where it is.
//!
//! The rule itself (fill or spread hosts by memory, refusals) is pure and lives in
//! `terrace_config` (`kinds/placement.rs`); this module is its state bookkeeping.

use std::collections::BTreeMap;

use terrace_config::Project;
use terrace_plan::expiry::instances_with_resources;
use terrace_plan::{Action, Plan};
use terrace_state::State;

/// The placements the state recorded, as the configuration takes them.
pub fn prior(state: &State) -> BTreeMap<String, String> {
    state.placements.clone()
}

/// Brings the state's placements up to date before an apply (saved with the journal's
/// first write, so before anything is created): each placed instance that this plan
/// creates something of, or that has resources already, is recorded on its host (a
/// tenant moved by an explicit `host` is recorded on the new one); instances the
/// configuration no longer lists are forgotten; a destroy forgets them all. Returns
/// true if the state changed.
pub fn record(state: &mut State, project: &Project, plan: &Plan, destroy: bool) -> bool {
    let before = state.placements.clone();
    if destroy {
        state.placements.clear();
        return before != state.placements;
    }
    let listed: BTreeMap<&str, &str> = project
        .placements
        .iter()
        .map(|p| (p.instance.as_str(), p.host.as_str()))
        .collect();
    state
        .placements
        .retain(|k, _| listed.contains_key(k.as_str()));
    // One pass over the plan and the state, not one per instance: thousands of tenants.
    let names = listed.keys().copied().collect();
    let created = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Delete && c.action != Action::NoOp)
        .map(|c| &c.address);
    let existing = state.resources.iter().map(|r| &r.address);
    let owning = instances_with_resources(created.chain(existing), &names);
    for instance in owning {
        state
            .placements
            .insert(instance.to_string(), listed[instance].to_string());
    }
    before != state.placements
}
