//! The driver: evaluates the nodes of the block graph in dependency order, skipping
//! those whose own references or dependencies failed (their errors are reported
//! already).

use std::collections::BTreeSet;

use hcl::eval::Context;

use crate::diagnostics::ConfigError;
use crate::graph::Plan;
use crate::kind::Schemas;
use crate::kinds::State;
use crate::model::{target_node, Evaluated, Node};
use crate::source::Fs;
use crate::syntax::Decls;
use crate::templates::Templates;
use crate::variables::Variables;

/// What evaluation reads besides the plan: the declarations and everything resolved
/// before evaluation.
#[derive(Clone, Copy)]
pub(crate) struct Inputs<'a> {
    pub decls: &'a Decls,
    pub schemas: Schemas<'a>,
    pub vars: &'a Variables,
    pub templates: &'a Templates,
    /// The configuration directory and the environment.
    pub fs: Fs<'a>,
    /// Prior placements of tenant instances (from the state).
    pub placements: &'a std::collections::BTreeMap<String, String>,
}

/// Evaluates every node of the plan in order.
pub(crate) fn run(
    inputs: Inputs<'_>,
    plan: &Plan,
    base: Context<'static>,
    errors: &mut Vec<ConfigError>,
) -> Evaluated {
    let Inputs {
        decls,
        schemas,
        vars,
        templates,
        fs,
        placements,
    } = inputs;
    let mut st = State::new(decls, schemas, vars, templates, base, fs, errors)
        .with_prior_placements(placements)
        .with_readers(&plan.refs, &plan.order);
    let mut failed: BTreeSet<Node> = plan.broken.clone();
    for node in &plan.order {
        let deps_failed = plan.refs[node]
            .iter()
            .any(|r| match target_node(&r.target) {
                Some(dep) => failed.contains(&dep),
                None => false,
            });
        if failed.contains(node) || deps_failed {
            // Its own errors, or those of a dependency, are reported already.
            failed.insert(node.clone());
            continue;
        }
        if !st.eval_node(node, &plan.refs[node]) {
            failed.insert(node.clone());
        }
    }
    st.finish()
}
