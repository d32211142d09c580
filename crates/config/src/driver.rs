//! The driver: evaluates the nodes of the block graph in dependency order, skipping
//! those whose own references or dependencies failed (their errors are reported
//! already).

use std::collections::BTreeSet;
use std::path::Path;

use hcl::eval::Context;

use crate::diagnostics::ConfigError;
use crate::graph::Plan;
use crate::kinds::State;
use crate::model::{target_node, Evaluated, Node};
use crate::syntax::Decls;
use crate::templates::Templates;
use crate::variables::Variables;

/// Evaluates every node of the plan in order.
pub(crate) fn run(
    decls: &Decls,
    vars: &Variables,
    plan: &Plan,
    templates: &Templates,
    base: Context<'static>,
    dir: &Path,
    errors: &mut Vec<ConfigError>,
) -> Evaluated {
    let mut st = State::new(decls, vars, templates, base, dir, errors);
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
        if !st.eval_node(node) {
            failed.insert(node.clone());
        }
    }
    st.finish()
}
