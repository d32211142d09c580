//! `--target` and `--replace`: narrowing a plan to some resources (and what they depend
//! on) and forcing replacements. Pure, like the planner: it edits a [`Plan`] made for
//! the whole configuration.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use terrace_provider::Address;

use crate::model::{Action, Plan};

/// The reason a replacement asked for with `--replace` shows, in `replace_because`
/// (in parentheses, like [`crate::PROVIDER_ATTR`], so it cannot be an attribute name).
pub const REPLACE_REQUESTED: &str = "(requested)";

/// What `--target` and `--replace` ask of a plan. A saved plan records it, so that
/// `apply FILE` plans the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Focus {
    /// Plan only these addresses (or everything under them: `tenant.app["x"]` takes
    /// each of its resources) and what they depend on. Empty: everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// Replace these managed resources (or everything under them) even if unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replace: Vec<String>,
}

/// A `--target` or `--replace` that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FocusError {
    /// No resource of the configuration or the state has or is under this address.
    #[error("--{flag} {address}: no resource in the configuration or the state has this address")]
    Unknown {
        /// `target` or `replace`.
        flag: &'static str,
        /// The address given.
        address: String,
    },
    /// Every resource at this address is created or destroyed by the plan anyway.
    #[error("--replace {0}: nothing to replace, this plan creates or destroys it anyway")]
    NothingToReplace(String),
}

/// True when `address` is `pattern` or lies under it (`pattern.` or `pattern[`).
pub fn address_matches(pattern: &str, address: &Address) -> bool {
    let a = address.to_string();
    match a.strip_prefix(pattern) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}

impl Focus {
    /// Neither targets nor replacements.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.replace.is_empty()
    }

    /// Forces the requested replacements, then keeps only the targets and their
    /// dependencies (changes, drift and conflicts). Returns the addresses kept when
    /// targeting, `None` otherwise.
    pub fn apply(&self, plan: &mut Plan) -> Result<Option<BTreeSet<Address>>, FocusError> {
        self.force_replacements(plan)?;
        if self.targets.is_empty() {
            return Ok(None);
        }
        let mut kept: BTreeSet<Address> = BTreeSet::new();
        let mut todo: Vec<Address> = Vec::new();
        for t in &self.targets {
            let matched: Vec<Address> = plan
                .changes
                .iter()
                .map(|c| &c.address)
                .chain(plan.conflicts.iter().map(|c| &c.address))
                .filter(|a| address_matches(t, a))
                .cloned()
                .collect();
            if matched.is_empty() {
                return Err(FocusError::Unknown {
                    flag: "target",
                    address: t.clone(),
                });
            }
            todo.extend(matched);
        }
        // Dependencies, transitively: a target cannot be made without them.
        while let Some(a) = todo.pop() {
            if !kept.insert(a.clone()) {
                continue;
            }
            if let Some(c) = plan.change(&a) {
                todo.extend(c.depends_on.iter().cloned());
            }
        }
        // What is not targeted stays as it is: a create is left out, anything else
        // becomes a no-op on the object as it is now, so that what reads the whole plan
        // (host capacity: the containers a plan leaves on an engine) still sees it.
        plan.changes.retain_mut(|c| {
            if kept.contains(&c.address) {
                return true;
            }
            match c.action {
                Action::Create => false,
                Action::NoOp => true,
                Action::Update | Action::Replace | Action::Delete => {
                    c.action = Action::NoOp;
                    c.after = c.before.clone();
                    if let Some(prior) = c.prior_provider.take() {
                        c.provider = prior;
                    }
                    c.changed.clear();
                    c.replace_because.clear();
                    c.generated.clear();
                    c.note = None;
                    true
                }
            }
        });
        plan.drift.retain(|d| kept.contains(&d.address));
        plan.conflicts.retain(|c| kept.contains(&c.address));
        plan.safeguards.retain(|g| kept.contains(&g.address));
        Ok(Some(kept))
    }

    fn force_replacements(&self, plan: &mut Plan) -> Result<(), FocusError> {
        for r in &self.replace {
            let mut matched = false;
            let mut replaced = false;
            for c in plan
                .changes
                .iter_mut()
                .filter(|c| address_matches(r, &c.address))
            {
                matched = true;
                match c.action {
                    Action::Create | Action::Delete => continue,
                    Action::NoOp | Action::Update => c.action = Action::Replace,
                    Action::Replace => {}
                }
                replaced = true;
                if !c.replace_because.iter().any(|b| b == REPLACE_REQUESTED) {
                    c.replace_because.insert(0, REPLACE_REQUESTED.to_string());
                }
            }
            if !matched {
                return Err(FocusError::Unknown {
                    flag: "replace",
                    address: r.clone(),
                });
            }
            if !replaced {
                return Err(FocusError::NothingToReplace(r.clone()));
            }
        }
        Ok(())
    }
}
