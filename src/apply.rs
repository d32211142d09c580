//! The apply executor: walks the plan's dependency graph with tokio, runs independent
//! steps concurrently, and checkpoints the state after every step.
//!
//! Order: first every destroy (a resource before the things it depends on), then every
//! create and update (dependencies first). A replacement is a destroy in the first phase
//! and a create in the second. When a step fails, nothing that depends on it is started;
//! steps already running finish and are recorded; independent steps go on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use terrace_plan::{Action, Plan, ResourceChange};
use terrace_provider::{refs, Address, Attrs, Operation, Provider, Step};
use terrace_state::{ResourceState, State, StateLock};
use tokio::task::JoinSet;

use crate::output::Redactor;
use crate::providers::ProviderSet;
use crate::session::state_lookup;

/// What an apply did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Objects created.
    pub added: usize,
    /// Objects changed in place.
    pub changed: usize,
    /// Objects destroyed.
    pub destroyed: usize,
    /// Steps that failed, with their (redacted) error.
    pub failed: Vec<(Address, String)>,
    /// Steps not started because something they depend on failed.
    pub skipped: Vec<Address>,
}

impl ApplyReport {
    /// True if every step succeeded.
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty()
    }
}

/// One unit of scheduled work.
struct Node<'p> {
    change: &'p ResourceChange,
    operation: Operation,
    /// Indices (in the same phase) that must succeed first.
    waits_on: Vec<usize>,
}

/// Runs plans against providers, recording progress in the state.
pub struct Executor<'a> {
    /// Where each resource's provider is found.
    pub providers: &'a ProviderSet,
    /// Maximum concurrent steps.
    pub parallelism: usize,
    /// Masks secrets in error messages.
    pub redactor: &'a Redactor,
    /// Show a progress bar (only on a terminal).
    pub show_bar: bool,
}

impl Executor<'_> {
    /// Applies every actionable change of `plan`, writing `state` through `lock` after
    /// each successful step, so an apply killed at any point loses nothing.
    pub async fn run(
        &self,
        plan: &Plan,
        state: &mut State,
        lock: &mut StateLock,
    ) -> miette::Result<ApplyReport> {
        let (destroys, creates) = schedule(plan);
        let total = destroys.len() + creates.len();
        let bar = if self.show_bar {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed}] {pos}/{len} steps {wide_msg}")
                    .expect("static template"),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        } else {
            ProgressBar::hidden()
        };
        let mut report = ApplyReport::default();
        let mut failed: BTreeSet<Address> = BTreeSet::new();
        self.run_phase(&destroys, &mut failed, state, lock, &bar, &mut report)
            .await?;
        self.run_phase(&creates, &mut failed, state, lock, &bar, &mut report)
            .await?;
        bar.finish_and_clear();
        Ok(report)
    }

    async fn run_phase(
        &self,
        nodes: &[Node<'_>],
        failed: &mut BTreeSet<Address>,
        state: &mut State,
        lock: &mut StateLock,
        bar: &ProgressBar,
        report: &mut ApplyReport,
    ) -> miette::Result<()> {
        let mut remaining: Vec<usize> = nodes.iter().map(|n| n.waits_on.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for &w in &n.waits_on {
                dependents[w].push(i);
            }
        }
        let mut blocked = vec![false; nodes.len()];
        let mut ready: VecDeque<usize> = VecDeque::new();
        for (i, n) in nodes.iter().enumerate() {
            // A replacement whose destroy failed in the first phase must not be created.
            if failed.contains(&n.change.address) {
                blocked[i] = true;
            } else if remaining[i] == 0 {
                ready.push_back(i);
            }
        }

        let mut tasks: JoinSet<(usize, Result<Option<Attrs>, String>, Duration)> = JoinSet::new();
        loop {
            while tasks.len() < self.parallelism {
                let Some(i) = ready.pop_front() else { break };
                let node = &nodes[i];
                let provider: Arc<dyn Provider> = self.providers.get(&node.change.provider)?;
                let mut step = step_for(node.change, node.operation);
                // Values only known after apply (a generated password) come from the
                // state now that the resources this step depends on have been applied.
                if let Some(desired) = step.desired.as_mut() {
                    let unresolved = refs::resolve_attrs(desired, &state_lookup(state));
                    if !unresolved.is_empty() {
                        let address = node.change.address.clone();
                        let message = format!(
                            "{} refer to values that are not known (a resource they depend on was not applied)",
                            unresolved.join(", ")
                        );
                        say(bar, &format!("{address}: failed: {message}"));
                        bar.inc(1);
                        failed.insert(address.clone());
                        report.failed.push((address, message));
                        block_dependents(i, &dependents, &mut blocked);
                        continue;
                    }
                }
                say(
                    bar,
                    &format!("{}: {}...", node.change.address, verb(node.operation).0),
                );
                tasks.spawn(async move {
                    let started = Instant::now();
                    let result = provider.apply(&step).await.map_err(|e| e.to_string());
                    (i, result, started.elapsed())
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (i, result, took) =
                joined.map_err(|e| miette::miette!("an apply task panicked: {e}"))?;
            let node = &nodes[i];
            let address = &node.change.address;
            bar.inc(1);
            match result {
                Ok(attrs) => {
                    record(state, node, attrs);
                    lock.write(state).map_err(|e| {
                        miette::miette!(
                            "{address} was applied but the state could not be saved: {e}"
                        )
                    })?;
                    match node.operation {
                        Operation::Create => report.added += 1,
                        Operation::Update => report.changed += 1,
                        Operation::Delete => report.destroyed += 1,
                    }
                    say(
                        bar,
                        &format!(
                            "{address}: {} complete after {:.1}s",
                            verb(node.operation).1,
                            took.as_secs_f64()
                        ),
                    );
                    for &d in &dependents[i] {
                        remaining[d] -= 1;
                        if remaining[d] == 0 && !blocked[d] {
                            ready.push_back(d);
                        }
                    }
                }
                Err(message) => {
                    let message = self.redactor.scrub(&message);
                    say(bar, &format!("{address}: failed: {message}"));
                    failed.insert(address.clone());
                    report.failed.push((address.clone(), message));
                    block_dependents(i, &dependents, &mut blocked);
                }
            }
        }
        for (i, n) in nodes.iter().enumerate() {
            if blocked[i] {
                report.skipped.push(n.change.address.clone());
                failed.insert(n.change.address.clone());
            }
        }
        Ok(())
    }
}

fn block_dependents(i: usize, dependents: &[Vec<usize>], blocked: &mut [bool]) {
    let mut stack = dependents[i].clone();
    while let Some(d) = stack.pop() {
        if !blocked[d] {
            blocked[d] = true;
            stack.extend(dependents[d].iter().copied());
        }
    }
}

/// Splits the plan into the destroy phase and the create/update phase, each with its
/// ordering edges.
fn schedule(plan: &Plan) -> (Vec<Node<'_>>, Vec<Node<'_>>) {
    let mut destroys = Vec::new();
    let mut creates = Vec::new();
    for c in plan.actionable() {
        match c.action {
            Action::Delete => destroys.push(node(c, Operation::Delete)),
            Action::Replace => {
                destroys.push(node(c, Operation::Delete));
                creates.push(node(c, Operation::Create));
            }
            Action::Create => creates.push(node(c, Operation::Create)),
            Action::Update => creates.push(node(c, Operation::Update)),
            Action::NoOp => {}
        }
    }
    // Destroy: X waits for everything that depends on X.
    let index: BTreeMap<&Address, usize> = destroys
        .iter()
        .enumerate()
        .map(|(i, n)| (&n.change.address, i))
        .collect();
    let mut waits: Vec<Vec<usize>> = vec![Vec::new(); destroys.len()];
    for (i, n) in destroys.iter().enumerate() {
        for dep in &n.change.depends_on {
            if let Some(&j) = index.get(dep) {
                waits[j].push(i);
            }
        }
    }
    for (n, w) in destroys.iter_mut().zip(waits) {
        n.waits_on = w;
    }
    // Create/update: X waits for what X depends on.
    let index: BTreeMap<&Address, usize> = creates
        .iter()
        .enumerate()
        .map(|(i, n)| (&n.change.address, i))
        .collect();
    let waits: Vec<Vec<usize>> = creates
        .iter()
        .map(|n| {
            n.change
                .depends_on
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    for (n, w) in creates.iter_mut().zip(waits) {
        n.waits_on = w;
    }
    (destroys, creates)
}

fn node(change: &ResourceChange, operation: Operation) -> Node<'_> {
    Node {
        change,
        operation,
        waits_on: Vec::new(),
    }
}

fn step_for(c: &ResourceChange, operation: Operation) -> Step {
    Step {
        address: c.address.clone(),
        type_name: c.type_name.clone(),
        operation,
        prior: match operation {
            Operation::Create => None,
            _ => c.before.clone(),
        },
        desired: match operation {
            Operation::Delete => None,
            _ => c.after.clone(),
        },
        changed: if operation == Operation::Update {
            c.changed.clone()
        } else {
            Vec::new()
        },
    }
}

fn record(state: &mut State, node: &Node<'_>, attrs: Option<Attrs>) {
    let c = node.change;
    match (node.operation, attrs) {
        (Operation::Delete, _) => {
            state.remove(&c.address);
        }
        (_, Some(attributes)) => state.upsert(ResourceState {
            address: c.address.clone(),
            type_name: c.type_name.clone(),
            provider: c.provider.clone(),
            attributes,
            sensitive_attributes: c.sensitive.iter().cloned().collect(),
            dependencies: c.depends_on.clone(),
        }),
        (_, None) => {
            state.remove(&c.address);
        }
    }
}

fn verb(op: Operation) -> (&'static str, &'static str) {
    match op {
        Operation::Create => ("Creating", "Creation"),
        Operation::Update => ("Modifying", "Modifications"),
        Operation::Delete => ("Destroying", "Destruction"),
    }
}

/// Prints a progress line above the bar (or plainly when there is no bar).
fn say(bar: &ProgressBar, line: &str) {
    bar.suspend(|| anstream::println!("{line}"));
}
