//! The apply executor: walks the plan's dependency graph with tokio, runs independent
//! steps concurrently, and checkpoints every step in the state's write-ahead journal.
//!
//! Order: first every destroy (a resource before the things it depends on), then every
//! create and update (dependencies first). A replacement is a destroy in the first phase
//! and a create in the second. When a step fails, nothing that depends on it is started;
//! steps already running finish and are recorded; independent steps go on.
//!
//! Write-ahead: before a create starts, the journal records the resource as *pending*,
//! with the attributes the create will use, including any secret it needs (terrace
//! generates passwords itself, here, rather than leaving it to the provider, so that the
//! value is on disk before any server holds it). After each step the journal records
//! the outcome. The full state is written once at the end. A run killed at any point
//! leaves a state (file + journal) in which every object that might exist is either
//! managed or pending, and the next plan adopts or creates the pending ones.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use terrace_plan::{only_leaves_state, Action, Plan, ResourceChange, CREATE_PENDING_NOTE};
use terrace_provider::{
    refs, Address, Attrs, ObserveRequest, Observed, Operation, Provider, ProviderKey, Step,
};
use terrace_state::{JournalRecord, ResourceState, State, StateLock};
use tokio::task::JoinSet;

use crate::events::{verb, Events, Hook};
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
    /// What the step does beyond one provider call.
    kind: Kind,
    /// A move whose destination holds the partial copy of an interrupted move: it is
    /// dropped first.
    leftover: bool,
}

/// How a node differs from one plain provider call (see `src/moves.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One provider call.
    Plain,
    /// The create half of a move: copy the old object, create, restore, verify. The old
    /// object's record is deposed first.
    Move,
    /// The create half of a replacement whose old object is destroyed only in the last
    /// phase (a move still needs it: a database's owner): its record is deposed first.
    Depose,
    /// The last phase's delete of an old object a `Move` or `Depose` node deposed.
    DropDeposed,
}

/// Runs plans against providers, recording progress in the state.
pub struct Executor<'a> {
    /// Where each resource's provider is found.
    pub providers: &'a ProviderSet,
    /// Maximum concurrent steps overall. Each provider's own limit
    /// ([`Provider::max_concurrency`]) bounds its steps within this.
    pub parallelism: usize,
    /// Masks secrets in error messages.
    pub redactor: &'a Redactor,
    /// Show a progress bar (only on a terminal).
    pub show_bar: bool,
    /// Stream JSON events instead of text lines (`apply --json`).
    pub events: Option<&'a Events>,
    /// How often a step still running is reported (`Still creating... [10s elapsed]`):
    /// as a line when there is no bar, as an event with `--json`.
    pub progress_every: Duration,
}

/// Terraform's interval between "still running" reports.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// How often the bar's live line is redrawn with the running steps' elapsed times.
const BAR_REFRESH: Duration = Duration::from_secs(1);

/// The longest a finished step's journal record waits for the `fsync` that makes it
/// durable while other steps keep every slot busy (group commit). Steps finishing
/// within it share one `fsync` (with a server that takes a few milliseconds per
/// statement, one per step was a quarter of terrace's CPU at 10,000 tenants); their
/// dependents wait for it, which costs nothing while independent steps fill the slots
/// (and when they do not, the records are synced at once). It is also the most a power
/// loss can take from the journal beyond the fsync in flight: records of objects that
/// exist and were recorded pending before their create, which the next plan adopts.
const GROUP_COMMIT_WINDOW: Duration = Duration::from_millis(20);

/// Where progress goes: JSON events, or text lines (above a live bar on a terminal).
struct Ui<'a> {
    bar: ProgressBar,
    events: Option<&'a Events>,
}

impl Ui<'_> {
    fn start(&self, hook: &Hook<'_>) {
        match self.events {
            Some(e) => e.apply_start(hook),
            None => say(
                &self.bar,
                &format!("{}: {}...", hook.address, verb(hook.operation).0),
            ),
        }
    }

    fn progress(&self, hook: &Hook<'_>, elapsed: Duration) {
        match self.events {
            Some(e) => e.apply_progress(hook, elapsed),
            // On a terminal the live line shows it.
            None if self.bar.is_hidden() => say(
                &self.bar,
                &format!(
                    "{}: Still {}... [{}s elapsed]",
                    hook.address,
                    verb(hook.operation).0.to_lowercase(),
                    elapsed.as_secs()
                ),
            ),
            None => {}
        }
    }

    fn complete(&self, hook: &Hook<'_>, took: Duration) {
        match self.events {
            Some(e) => e.apply_complete(hook, took),
            None => say(
                &self.bar,
                &format!(
                    "{}: {} complete after {:.1}s",
                    hook.address,
                    verb(hook.operation).1,
                    took.as_secs_f64()
                ),
            ),
        }
    }

    fn errored(&self, hook: &Hook<'_>, took: Duration, message: &str) {
        match self.events {
            Some(e) => e.apply_errored(hook, took, message),
            None => say(
                &self.bar,
                &format!(
                    "{}: failed after {:.1}s: {message}",
                    hook.address,
                    took.as_secs_f64()
                ),
            ),
        }
    }

    /// The live line: what is running and for how long, longest first.
    fn show_running(&self, nodes: &[Node<'_>], running: &BTreeMap<usize, Running>) {
        if self.bar.is_hidden() {
            return;
        }
        let mut by_age: Vec<(&usize, &Running)> = running.iter().collect();
        by_age.sort_by_key(|(_, r)| r.began);
        let message = match by_age.split_first() {
            None => String::new(),
            Some(((&i, r), rest)) => {
                let node = &nodes[i];
                let more = if rest.is_empty() {
                    String::new()
                } else {
                    format!(" (+{} more)", rest.len())
                };
                format!(
                    "{} {} [{}s]{more}",
                    verb(node.operation).0,
                    node.change.address,
                    r.began.elapsed().as_secs()
                )
            }
        };
        self.bar.set_message(message);
    }
}

/// A step in flight.
struct Running {
    began: Instant,
    /// When it is next reported as still running.
    next_report: Instant,
}

/// The provider a step goes through: a destroy goes through the provider that created
/// the object, which differs from the desired one when a resource moves to another
/// service.
fn step_provider<'n>(node: &'n Node<'_>) -> &'n ProviderKey {
    let c = node.change;
    match node.operation {
        Operation::Delete => c.prior_provider.as_ref().unwrap_or(&c.provider),
        _ => &c.provider,
    }
}

fn hook<'n>(node: &'n Node<'_>) -> Hook<'n> {
    let c = node.change;
    let provider = step_provider(node);
    Hook {
        address: &c.address,
        type_name: &c.type_name,
        provider: &provider.0,
        operation: node.operation,
    }
}

impl Executor<'_> {
    /// Applies every actionable change of `plan`, journaling through `lock` before each
    /// create and after each step, so an apply killed at any point loses nothing, then
    /// writes the whole state once.
    ///
    /// Pending resources (left by a killed apply) that the plan found present and as
    /// desired need no step: they are recorded as managed here.
    pub async fn run(
        &self,
        plan: &Plan,
        state: &mut State,
        lock: &mut StateLock,
    ) -> miette::Result<ApplyReport> {
        let result = self.run_steps(plan, state, lock).await;
        // One full write folds the journal into the state file, also after an abort.
        let saved = lock.write(state);
        let report = result?;
        saved.map_err(|e| {
            miette::miette!("the apply finished but the state could not be saved: {e}")
        })?;
        Ok(report)
    }

    async fn run_steps(
        &self,
        plan: &Plan,
        state: &mut State,
        lock: &mut StateLock,
    ) -> miette::Result<ApplyReport> {
        // Moves that cannot carry their data are refused before anything is applied.
        let leftovers = crate::moves::preflight(plan, self.providers, state, self.redactor).await?;
        for c in plan.changes.iter().filter(|c| c.action == Action::NoOp) {
            if let Some(r) = state.get(&c.address).filter(|r| r.pending) {
                let adopted = ResourceState {
                    attributes: c.before.clone().unwrap_or_else(|| r.attributes.clone()),
                    pending: false,
                    ..r.clone()
                };
                lock.append(state, &JournalRecord::Upsert(adopted))
                    .map_err(|e| miette::miette!("cannot record {}: {e}", c.address))?;
            }
        }
        let (destroys, mut creates, last) = schedule(plan);
        for n in creates.iter_mut() {
            n.leftover = leftovers.contains(&n.change.address);
        }
        // Intents first, all at once (one fsync): every new object this apply may create
        // is pending before any step runs. Objects appear on servers before their own
        // step (a PostgreSQL grant is implied as soon as the user owns the database), so
        // an intent written only when its step starts would come too late.
        let intents: Vec<JournalRecord> = creates
            .iter()
            .filter(|n| n.operation == Operation::Create)
            .filter(|n| state.get(&n.change.address).is_none_or(|r| r.pending))
            .map(|n| JournalRecord::Pending(intent(n.change, state)))
            .collect();
        lock.append_all(state, &intents)
            .map_err(|e| miette::miette!("cannot record what this apply will create: {e}"))?;
        let total = destroys.len() + creates.len() + last.len();
        let bar = if self.show_bar && self.events.is_none() {
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
        let ui = Ui {
            bar,
            events: self.events,
        };
        if ui.events.is_none() {
            if let Some(line) = self.binding_limits(destroys.iter().chain(&creates)) {
                say(&ui.bar, &line);
            }
        }
        let mut report = ApplyReport::default();
        let mut failed: BTreeSet<Address> = BTreeSet::new();
        let done = async {
            self.run_phase(&destroys, &mut failed, state, lock, &ui, &mut report)
                .await?;
            self.run_phase(&creates, &mut failed, state, lock, &ui, &mut report)
                .await?;
            // Old objects of moves, once their copies are verified, and what they need.
            self.run_phase(&last, &mut failed, state, lock, &ui, &mut report)
                .await
        }
        .await;
        ui.bar.finish_and_clear();
        done.map(|()| report)
    }

    async fn run_phase(
        &self,
        nodes: &[Node<'_>],
        failed: &mut BTreeSet<Address>,
        state: &mut State,
        lock: &mut StateLock,
        ui: &Ui<'_>,
        report: &mut ApplyReport,
    ) -> miette::Result<()> {
        let bar = &ui.bar;
        let mut remaining: Vec<usize> = nodes.iter().map(|n| n.waits_on.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for &w in &n.waits_on {
                dependents[w].push(i);
            }
        }
        let mut blocked = vec![false; nodes.len()];
        let mut started = vec![false; nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            // A replacement whose destroy failed in the first phase must not be created,
            // and neither may anything that waits for that creation.
            if failed.contains(&n.change.address) {
                blocked[i] = true;
                block_dependents(i, &dependents, &mut blocked);
            }
        }
        let mut ready = Slots::new(
            nodes,
            |n| {
                self.limit(
                    step_provider(n),
                    phase_operation(n.operation == Operation::Delete),
                )
            },
            self.parallelism,
        );
        for i in (0..nodes.len()).filter(|&i| remaining[i] == 0 && !blocked[i]) {
            ready.push(i);
        }

        // Set when the state can no longer be saved: nothing new starts, running steps
        // finish and are recorded, then the error is returned.
        let mut abort: Option<miette::Report> = None;
        let mut tasks: JoinSet<(usize, Result<Option<Attrs>, String>, Duration)> = JoinSet::new();
        let mut running: BTreeMap<usize, Running> = BTreeMap::new();
        // Group commit: steps that succeeded, whose records are written to the journal
        // but not yet durable, and since when the oldest of them waits. Their dependents
        // start only after the `sync` that makes their records durable.
        let mut held: Vec<usize> = Vec::new();
        let mut held_since: Option<Instant> = None;
        loop {
            while abort.is_none() {
                let Some(i) = ready.pop() else { break };
                started[i] = true;
                let node = &nodes[i];
                // A pending resource that never came to exist, or whose name someone
                // else's object holds, only leaves the state.
                if node.operation == Operation::Delete && only_leaves_state(node.change) {
                    tasks.spawn(async move { (i, Ok(None), Duration::ZERO) });
                    continue;
                }
                match self.prepare(node, state) {
                    Ok((provider, step)) => {
                        // Write-ahead: what is about to be created, with its secrets, is
                        // on disk before the provider is called. New objects were recorded
                        // at the start; the create of a replacement is recorded here, once
                        // the old object is gone (its intent names the new identity, which
                        // must not hide the old object from the next plan before then).
                        let recorded = state.get(&node.change.address).is_some_and(|r| r.pending);
                        if node.operation == Operation::Create && !recorded {
                            let intent = ResourceState {
                                pending: true,
                                ..resource_state(
                                    node.change,
                                    step.desired.clone().unwrap_or_default(),
                                )
                            };
                            // The old object stays until the last phase: its record
                            // moves to the deposed address in the same write.
                            let mut records = deposing(node, state);
                            records.push(JournalRecord::Pending(intent));
                            if let Err(e) = lock.append_all(state, &records) {
                                let address = &node.change.address;
                                abort.get_or_insert_with(|| {
                                    miette::miette!("{address} was not started: its intent could not be recorded: {e}")
                                });
                                started[i] = false;
                                ready.finished(i);
                                break;
                            }
                        }
                        ui.start(&hook(node));
                        let now = Instant::now();
                        running.insert(
                            i,
                            Running {
                                began: now,
                                next_report: now + self.progress_every,
                            },
                        );
                        let recovering = node.operation == Operation::Create
                            && node.change.note.as_deref() == Some(CREATE_PENDING_NOTE);
                        if node.kind == Kind::Move {
                            let from = node
                                .change
                                .prior_provider
                                .as_ref()
                                .unwrap_or(&node.change.provider);
                            let old = match self.providers.get(from) {
                                Ok(p) => p,
                                Err(e) => {
                                    tasks.spawn(
                                        async move { (i, Err(e.to_string()), Duration::ZERO) },
                                    );
                                    continue;
                                }
                            };
                            let before = node.change.before.clone().unwrap_or_default();
                            let leftover = node.leftover;
                            tasks.spawn(async move {
                                let began = Instant::now();
                                let result = crate::moves::copy_create_restore(
                                    &*old, &*provider, &step, &before, leftover,
                                )
                                .await;
                                (i, result, began.elapsed())
                            });
                            continue;
                        }
                        tasks.spawn(async move {
                            let began = Instant::now();
                            let mut result = provider.apply(&step).await.map_err(|e| e.to_string());
                            if recovering && result.is_err() {
                                if let Some(adopted) =
                                    adopt_after_failed_create(&*provider, &step).await
                                {
                                    result = adopted;
                                }
                            }
                            (i, result, began.elapsed())
                        });
                    }
                    Err(message) => {
                        ready.finished(i);
                        bar.inc(1);
                        self.fail(node, message, Duration::ZERO, ui, failed, report);
                        block_dependents(i, &dependents, &mut blocked);
                    }
                }
            }
            // One `fsync` for every record written since the last: at once when waiting
            // longer would leave a slot idle that a held step's dependent could take (or
            // nothing runs any more), else once the oldest record has waited
            // GROUP_COMMIT_WINDOW, so that a steady stream of steps finishing one by one
            // shares fsyncs instead of paying one each.
            if let Some(since) = held_since {
                let due = tasks.is_empty()
                    || abort.is_some()
                    || since.elapsed() >= GROUP_COMMIT_WINDOW
                    || (ready.has_idle_room()
                        && held
                            .iter()
                            .any(|&i| dependents[i].iter().any(|&d| !blocked[d])));
                if due {
                    held_since = None;
                    match lock.sync() {
                        Ok(()) => {
                            for i in held.drain(..) {
                                for &d in &dependents[i] {
                                    remaining[d] -= 1;
                                    if remaining[d] == 0 && !blocked[d] {
                                        ready.push(d);
                                    }
                                }
                            }
                        }
                        Err(e) => {
                            let applied: Vec<&str> = held
                                .drain(..)
                                .map(|i| nodes[i].change.address.as_str())
                                .collect();
                            abort.get_or_insert_with(|| {
                                miette::miette!(
                                    "{} applied but the state could not be saved: {e}",
                                    applied.join(", ")
                                )
                            });
                        }
                    }
                    continue;
                }
            }
            ui.show_running(nodes, &running);
            if tasks.is_empty() {
                break;
            }
            // Wait for a step to finish, waking up to report the ones still running and
            // to make held records durable.
            let next_report = running.values().map(|r| r.next_report).min();
            let wake = match (next_report, bar.is_hidden()) {
                (Some(t), false) => Some(t.min(Instant::now() + BAR_REFRESH)),
                (t, _) => t,
            };
            let wake = match (wake, held_since.map(|t| t + GROUP_COMMIT_WINDOW)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let joined = match wake {
                Some(at) => {
                    tokio::select! {
                        j = tasks.join_next() => j,
                        () = tokio::time::sleep_until(at.into()) => {
                            let now = Instant::now();
                            for (&i, r) in running.iter_mut().filter(|(_, r)| r.next_report <= now) {
                                ui.progress(&hook(&nodes[i]), now - r.began);
                                r.next_report += self.progress_every;
                            }
                            continue;
                        }
                    }
                }
                None => tasks.join_next().await,
            };
            let Some(first) = joined else {
                break;
            };
            // Every step that has finished by now is recorded with one journal write; the
            // fsync that makes it durable comes later (group commit, above), and the
            // steps' dependents start only after it.
            let mut finished = Vec::new();
            for joined in std::iter::once(first).chain(std::iter::from_fn(|| tasks.try_join_next()))
            {
                match joined {
                    Ok(done) => finished.push(done),
                    Err(e) => {
                        abort.get_or_insert_with(|| miette::miette!("an apply task panicked: {e}"));
                    }
                }
            }
            let records: Vec<JournalRecord> = finished
                .iter()
                .filter_map(|(i, result, _)| {
                    result
                        .as_ref()
                        .ok()
                        .map(|attrs| record(&nodes[*i], attrs.clone()))
                })
                .collect();
            if let Err(e) = lock.append_unsynced(state, &records) {
                let applied: Vec<&str> = finished
                    .iter()
                    .filter(|(_, result, _)| result.is_ok())
                    .map(|(i, _, _)| nodes[*i].change.address.as_str())
                    .collect();
                abort.get_or_insert_with(|| {
                    miette::miette!(
                        "{} applied but the state could not be saved: {e}",
                        applied.join(", ")
                    )
                });
            }
            for (i, result, took) in finished {
                let node = &nodes[i];
                running.remove(&i);
                ready.finished(i);
                bar.inc(1);
                match result {
                    Ok(_) => {
                        match node.operation {
                            Operation::Create => report.added += 1,
                            Operation::Update => report.changed += 1,
                            Operation::Delete => report.destroyed += 1,
                        }
                        ui.complete(&hook(node), took);
                        held.push(i);
                        held_since.get_or_insert_with(Instant::now);
                    }
                    Err(message) => {
                        self.fail(node, message, took, ui, failed, report);
                        block_dependents(i, &dependents, &mut blocked);
                    }
                }
            }
        }
        // Everything that never started was skipped: blocked by a failure, or left
        // waiting when the apply was aborted.
        // A create that never started created nothing: its intent is withdrawn.
        let mut withdrawn = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            if !started[i] {
                if let Some(e) = ui.events {
                    e.apply_skipped(&hook(n));
                }
                report.skipped.push(n.change.address.clone());
                failed.insert(n.change.address.clone());
                let intended = state.get(&n.change.address).is_some_and(|r| r.pending);
                // A move's pending record (of an interrupted move) stays: the deposed
                // old object is only understood with it.
                if n.operation == Operation::Create && intended && n.kind == Kind::Plain {
                    withdrawn.push(JournalRecord::Remove(n.change.address.clone()));
                }
            }
        }
        if let Err(e) = lock.append_all(state, &withdrawn) {
            abort.get_or_insert_with(|| miette::miette!("the state could not be saved: {e}"));
        }
        match abort {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// How many steps of `key`'s provider may run at once: its own limit, within the
    /// overall one (a provider that cannot be found fails its steps anyway).
    fn limit(&self, key: &ProviderKey, operation: Operation) -> usize {
        let own = self
            .providers
            .get(key)
            .map_or(self.parallelism, |p| p.max_concurrency(operation));
        own.clamp(1, self.parallelism.max(1))
    }

    /// The progress line naming the providers whose own limit holds back this apply
    /// (more of their steps than they take at once, and less than `--parallelism`):
    /// `Concurrency: at most 6 steps at once on docker.local, 5 on service.db (what
    /// each server takes); 10 overall (--parallelism).` None when only the overall
    /// limit applies.
    fn binding_limits<'n>(&self, nodes: impl Iterator<Item = &'n Node<'n>>) -> Option<String> {
        let mut steps: BTreeMap<(&ProviderKey, bool), usize> = BTreeMap::new();
        for n in nodes {
            let destroy = n.operation == Operation::Delete;
            *steps.entry((step_provider(n), destroy)).or_default() += 1;
        }
        let binding: Vec<String> = steps
            .into_iter()
            .filter_map(|((key, destroy), count)| {
                let operation = phase_operation(destroy);
                let limit = self.limit(key, operation);
                let key = if destroy {
                    format!("{key} (destroys)")
                } else {
                    key.to_string()
                };
                (limit < self.parallelism && count > limit).then(|| format!("{limit} on {key}"))
            })
            .collect();
        let (first, rest) = binding.split_first()?;
        let mut line = format!(
            "Concurrency: at most {}",
            first.replacen(" on ", " steps at once on ", 1)
        );
        for b in rest {
            line.push_str(", ");
            line.push_str(b);
        }
        line.push_str(&format!(
            " (what each server takes); {} overall (--parallelism).",
            self.parallelism
        ));
        Some(line)
    }

    /// The provider and the fully resolved step for `node`, or why it cannot run.
    fn prepare(&self, node: &Node<'_>, state: &State) -> Result<(Arc<dyn Provider>, Step), String> {
        let c = node.change;
        let provider = self
            .providers
            .get(step_provider(node))
            .map_err(|e| e.to_string())?;
        let mut step = step_for(c, node.operation);
        if node.operation == Operation::Create {
            if let Some(desired) = step.desired.as_mut() {
                generate_secrets(c, desired, state);
            }
        }
        // Values only known after apply (a generated password) come from the state now
        // that the resources this step depends on have been applied.
        if let Some(desired) = step.desired.as_mut() {
            let unresolved = refs::resolve_attrs(desired, &state_lookup(state));
            if !unresolved.is_empty() {
                return Err(format!(
                    "{} refer to values that are not known (a resource they depend on was not applied)",
                    unresolved.join(", ")
                ));
            }
        }
        Ok((provider, step))
    }

    fn fail(
        &self,
        node: &Node<'_>,
        message: String,
        took: Duration,
        ui: &Ui<'_>,
        failed: &mut BTreeSet<Address>,
        report: &mut ApplyReport,
    ) {
        let address = &node.change.address;
        // Provider errors often start with the address already.
        let message = self.redactor.scrub(&message);
        let message = message
            .strip_prefix(&format!("{address}: "))
            .map(str::to_string)
            .unwrap_or(message);
        ui.errored(&hook(node), took, &message);
        failed.insert(address.clone());
        report.failed.push((address.clone(), message));
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

/// Splits the plan into the destroy phase, the create/update phase and the last phase
/// (the old objects of moves, and what they depend on), each with its ordering edges.
fn schedule(plan: &Plan) -> (Vec<Node<'_>>, Vec<Node<'_>>, Vec<Node<'_>>) {
    let mut destroys = Vec::new();
    let mut creates = Vec::new();
    let mut last = Vec::new();
    for c in plan.actionable() {
        match c.action {
            Action::Replace if c.moves_data => {
                creates.push(Node {
                    kind: Kind::Move,
                    ..node(c, Operation::Create)
                });
                last.push(Node {
                    kind: Kind::DropDeposed,
                    ..node(c, Operation::Delete)
                });
            }
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
    // What an old object of a move depends on (a PostgreSQL database's owner) must
    // outlive it: its destroy moves to the last phase too, and a replacement's old
    // object is then deposed when its new one is created.
    loop {
        // A dependency may itself be an old object still deposed by an interrupted run.
        let needed: BTreeSet<Address> = last
            .iter()
            .flat_map(|n| n.change.depends_on.iter())
            .flat_map(|d| [d.clone(), d.deposed()])
            .collect();
        let Some(i) = destroys
            .iter()
            .position(|n| needed.contains(&n.change.address))
        else {
            break;
        };
        let mut n = destroys.remove(i);
        if n.change.action == Action::Replace {
            n.kind = Kind::DropDeposed;
            if let Some(c) = creates
                .iter_mut()
                .find(|c| c.change.address == n.change.address)
            {
                c.kind = Kind::Depose;
            }
        }
        last.push(n);
    }
    order_destroys(&mut destroys);
    order_destroys(&mut last);
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
    (destroys, creates, last)
}

/// Destroy order: X waits for everything that depends on X.
fn order_destroys(destroys: &mut [Node<'_>]) {
    let index: BTreeMap<&Address, usize> = destroys
        .iter()
        .enumerate()
        .map(|(i, n)| (&n.change.address, i))
        .collect();
    let mut waits: Vec<Vec<usize>> = vec![Vec::new(); destroys.len()];
    for (i, n) in destroys.iter().enumerate() {
        for dep in &n.change.depends_on {
            // Also the old object of a dependency, deposed by an interrupted move.
            for d in [dep.clone(), dep.deposed()] {
                if let Some(&j) = index.get(&d).filter(|&&j| j != i) {
                    waits[j].push(i);
                }
            }
        }
    }
    for (n, w) in destroys.iter_mut().zip(waits) {
        n.waits_on = w;
    }
}

fn node(change: &ResourceChange, operation: Operation) -> Node<'_> {
    Node {
        change,
        operation,
        waits_on: Vec::new(),
        kind: Kind::Plain,
        leftover: false,
    }
}

/// For the create of a `Move` or `Depose` node: the journal record that moves the old
/// object's state record to its deposed address, unless an interrupted run already did
/// (the record at the address is then the pending new object).
fn deposing(node: &Node<'_>, state: &State) -> Vec<JournalRecord> {
    if !matches!(node.kind, Kind::Move | Kind::Depose) {
        return Vec::new();
    }
    match state.get(&node.change.address).filter(|r| !r.pending) {
        Some(old) => vec![JournalRecord::Upsert(ResourceState {
            address: node.change.address.deposed(),
            ..old.clone()
        })],
        None => Vec::new(),
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

/// Fills in the secrets a create would otherwise leave to the provider: every attribute
/// the plan says is generated during apply and the schema marks sensitive (a password).
/// Generating them here lets the journal record them before any server holds them. A
/// value already recorded for the resource's intent is the one used.
fn generate_secrets(c: &ResourceChange, desired: &mut Attrs, state: &State) {
    let Some(schema) = crate::providers::schema(&c.type_name) else {
        return;
    };
    let intended = state.get(&c.address).filter(|r| r.pending);
    for name in &c.generated {
        let secret = schema.attr(name).is_some_and(|a| a.sensitive && a.computed);
        let unset = desired.get(name).is_none_or(|v| v.is_null());
        if secret && unset {
            let value = intended
                .and_then(|r| r.attributes.get(name))
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or_else(|| terrace_provider_sql::generate_password().expose().into());
            desired.insert(name.clone(), value);
        }
    }
}

/// A create of a pending object (a killed run meant to create it, and it was absent when
/// this run planned) failed: the killed run's own create may have still been running on
/// the server (a server finishes a statement whose client died), and won the race. If
/// the object is there now, it is adopted: updated to the desired attributes, with the
/// recorded password set. `None` if it is not there (the failure stands).
async fn adopt_after_failed_create(
    provider: &dyn Provider,
    step: &Step,
) -> Option<Result<Option<Attrs>, String>> {
    let desired = step.desired.as_ref()?;
    let schema = crate::providers::schema(&step.type_name)?;
    let request = ObserveRequest {
        address: step.address.clone(),
        type_name: step.type_name.clone(),
        attrs: desired.clone(),
    };
    // The competing statement commits at about the time ours fails; allow it a moment.
    let mut live = None;
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if let Ok(found) = provider.observe(std::slice::from_ref(&request)).await {
            if let Some(Observed::Present(attrs)) = found.into_iter().next() {
                live = Some(attrs);
                break;
            }
        }
    }
    let live = live?;
    let changed: Vec<String> = desired
        .iter()
        .filter(|(k, v)| {
            let a = schema.attr(k);
            !a.is_some_and(|a| a.force_new)
                && (a.is_some_and(|a| !a.observable) || live.get(*k) != Some(*v))
        })
        .map(|(k, _)| k.clone())
        .collect();
    let update = Step {
        operation: Operation::Update,
        prior: Some(live),
        changed,
        ..step.clone()
    };
    Some(provider.apply(&update).await.map_err(|e| e.to_string()))
}

/// The pending record of a create that has not started: the planned attributes, with
/// its secrets generated now (values that depend on other resources may still be
/// markers; they are resolved when the step starts).
fn intent(c: &ResourceChange, state: &State) -> ResourceState {
    let mut attrs = c.after.clone().unwrap_or_default();
    generate_secrets(c, &mut attrs, state);
    ResourceState {
        pending: true,
        ..resource_state(c, attrs)
    }
}

/// How a change's resource is recorded in state with `attributes`.
fn resource_state(c: &ResourceChange, attributes: Attrs) -> ResourceState {
    ResourceState {
        address: c.address.clone(),
        type_name: c.type_name.clone(),
        provider: c.provider.clone(),
        attributes,
        sensitive_attributes: c.sensitive.iter().cloned().collect(),
        dependencies: c.depends_on.clone(),
        pending: false,
    }
}

/// The journal record of a step that succeeded.
fn record(node: &Node<'_>, attrs: Option<Attrs>) -> JournalRecord {
    if node.kind == Kind::DropDeposed {
        return JournalRecord::Remove(node.change.address.deposed());
    }
    match (node.operation, attrs) {
        (Operation::Delete, _) | (_, None) => JournalRecord::Remove(node.change.address.clone()),
        (_, Some(attributes)) => JournalRecord::Upsert(resource_state(node.change, attributes)),
    }
}

// Scheduling: which ready step starts next. Kept apart from the journal and failure
// rules above, which only push ready steps, pop startable ones and report finished ones.

/// The ready steps of one phase, queued per provider, and what is in flight: a step
/// starts only while fewer than `overall` steps run and fewer than its provider's own
/// limit of that provider's steps run. Providers take turns (round robin), so one busy
/// provider neither starves nor delays the others' steps. Each operation costs
/// O(providers), however many steps there are.
struct Slots {
    overall: usize,
    in_flight: usize,
    lanes: Vec<Lane>,
    /// The lane of each node of the phase.
    lane_of: Vec<usize>,
    /// The lane whose turn comes next.
    turn: usize,
}

/// One provider's share of a phase.
struct Lane {
    limit: usize,
    in_flight: usize,
    ready: VecDeque<usize>,
}

impl Slots {
    /// `limit` gives the limit of a node's provider (the same for every node of one
    /// provider in a phase).
    fn new(nodes: &[Node<'_>], limit: impl Fn(&Node<'_>) -> usize, overall: usize) -> Self {
        let mut index: BTreeMap<&ProviderKey, usize> = BTreeMap::new();
        let mut lanes = Vec::new();
        let lane_of = nodes
            .iter()
            .map(|n| {
                *index.entry(step_provider(n)).or_insert_with(|| {
                    lanes.push(Lane {
                        limit: limit(n).max(1),
                        in_flight: 0,
                        ready: VecDeque::new(),
                    });
                    lanes.len() - 1
                })
            })
            .collect();
        Slots {
            overall: overall.max(1),
            in_flight: 0,
            lanes,
            lane_of,
            turn: 0,
        }
    }

    /// Step `i` may start once there is room.
    fn push(&mut self, i: usize) {
        self.lanes[self.lane_of[i]].ready.push_back(i);
    }

    /// A ready step there is room for, now counted as in flight; None if every ready
    /// step waits for room (or none is ready).
    fn pop(&mut self) -> Option<usize> {
        if self.in_flight >= self.overall {
            return None;
        }
        let n = self.lanes.len();
        for k in 0..n {
            let l = (self.turn + k) % n;
            let lane = &mut self.lanes[l];
            if lane.in_flight < lane.limit {
                if let Some(i) = lane.ready.pop_front() {
                    lane.in_flight += 1;
                    self.in_flight += 1;
                    self.turn = (l + 1) % n;
                    return Some(i);
                }
            }
        }
        None
    }

    /// Whether a step could start now but none is ready: room overall and in some
    /// provider's lane (call after popping everything startable).
    fn has_idle_room(&self) -> bool {
        self.in_flight < self.overall && self.lanes.iter().any(|l| l.in_flight < l.limit)
    }

    /// Step `i`, counted by [`Slots::pop`], no longer runs (finished, or never started).
    fn finished(&mut self, i: usize) {
        self.lanes[self.lane_of[i]].in_flight -= 1;
        self.in_flight -= 1;
    }
}

/// The operation a phase's limits are asked for: destroys have a phase of their own;
/// creates and updates share the other.
fn phase_operation(destroy: bool) -> Operation {
    if destroy {
        Operation::Delete
    } else {
        Operation::Create
    }
}

/// Prints a progress line above the bar (or plainly when there is no bar).
fn say(bar: &ProgressBar, line: &str) {
    bar.suspend(|| anstream::println!("{line}"));
}

#[cfg(test)]
mod tests {
    //! The scheduler's ordering and failure rules, driven by a scripted in-process
    //! provider (what is under test is the walk, not any backend).

    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use serde_json::json;
    use terrace_plan::{Action, Plan, ResourceChange};
    use terrace_provider::{
        Address, Attrs, ObserveRequest, Observed, Operation, Provider, ProviderError, ProviderKey,
        ProviderResult, ResourceSchema, Step,
    };
    use terrace_state::{LocalBackend, State};

    use super::*;

    /// Records every step; fails the (address, operation) pairs it is told to.
    #[derive(Default)]
    struct Scripted {
        fail: Vec<(String, Operation)>,
        log: Mutex<Vec<(String, Operation)>>,
    }

    #[async_trait::async_trait]
    impl Provider for Scripted {
        fn schemas(&self) -> &'static [ResourceSchema] {
            &[]
        }
        async fn observe(&self, _: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
            Ok(Vec::new())
        }
        async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
            let key = (step.address.to_string(), step.operation);
            self.log.lock().unwrap().push(key.clone());
            if self.fail.contains(&key) {
                return Err(ProviderError::Operation {
                    address: step.address.clone(),
                    message: "scripted failure".into(),
                });
            }
            Ok(step.desired.clone())
        }
        async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
            unreachable!()
        }
    }

    /// An executor of `providers` without progress output or events.
    fn executor<'a>(
        providers: &'a ProviderSet,
        redactor: &'a Redactor,
        parallelism: usize,
    ) -> Executor<'a> {
        Executor {
            providers,
            parallelism,
            redactor,
            show_bar: false,
            events: None,
            progress_every: PROGRESS_EVERY,
        }
    }

    /// Runs `f` to completion on a current-thread runtime, as the binary's does.
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    fn change(addr: &str, action: Action, deps: &[&str]) -> ResourceChange {
        let attrs: Attrs = serde_json::from_value(json!({"name": addr})).unwrap();
        ResourceChange {
            address: Address::new(addr),
            type_name: "t".into(),
            provider: ProviderKey("p".into()),
            prior_provider: None,
            action,
            moves_data: false,
            deletes_data: false,
            keeps_object: false,
            before: (action != Action::Create).then(|| attrs.clone()),
            after: (action != Action::Delete).then(|| attrs.clone()),
            changed: vec!["name".into()],
            replace_because: if action == Action::Replace {
                vec!["name".into()]
            } else {
                vec![]
            },
            generated: vec![],
            sensitive: BTreeSet::new(),
            prior_sensitive: BTreeSet::new(),
            byte_sizes: BTreeSet::new(),
            depends_on: deps.iter().map(|d| Address::new(*d)).collect(),
            note: None,
        }
    }

    fn run(plan: &Plan, provider: Arc<Scripted>) -> (ApplyReport, State) {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        let mut providers = ProviderSet::default();
        providers.insert(ProviderKey("p".into()), provider);
        let redactor = Redactor::default();
        let exec = executor(&providers, &redactor, 4);
        let report = block_on(exec.run(plan, &mut state, &mut lock)).unwrap();
        let saved = backend.load().unwrap().unwrap_or_default();
        assert_eq!(
            saved.resources, state.resources,
            "state on disk matches memory"
        );
        (report, state)
    }

    fn addrs(v: &[Address]) -> Vec<&str> {
        v.iter().map(Address::as_str).collect()
    }

    #[test]
    fn failure_skips_dependents_and_keeps_independent_work() {
        let plan = Plan {
            changes: vec![
                change("a", Action::Create, &[]),
                change("b", Action::Create, &["a"]),
                change("c", Action::Create, &["b"]),
                change("d", Action::Create, &[]),
            ],
            ..Plan::default()
        };
        let p = Arc::new(Scripted {
            fail: vec![("a".into(), Operation::Create)],
            ..Scripted::default()
        });
        let (report, state) = run(&plan, p.clone());
        assert_eq!(report.failed.len(), 1);
        assert_eq!(
            report.failed[0].1, "scripted failure",
            "address not repeated"
        );
        assert_eq!(addrs(&report.skipped), vec!["b", "c"]);
        assert_eq!(report.added, 1);
        // The failed create may have left an object behind (a create is several
        // statements): it stays pending, for the next plan to look for. The creates that
        // never started are not recorded.
        let recorded: Vec<(&str, bool)> = state
            .resources
            .iter()
            .map(|r| (r.address.as_str(), r.pending))
            .collect();
        assert_eq!(recorded, vec![("a", true), ("d", false)]);
    }

    #[test]
    fn failed_destroy_of_a_replacement_skips_its_create_and_everything_after_it() {
        let plan = Plan {
            changes: vec![
                change("grant", Action::Create, &["user"]),
                change("user", Action::Replace, &[]),
            ],
            ..Plan::default()
        };
        let p = Arc::new(Scripted {
            fail: vec![("user".into(), Operation::Delete)],
            ..Scripted::default()
        });
        let (report, _) = run(&plan, p.clone());
        assert_eq!(
            addrs(
                &report
                    .failed
                    .iter()
                    .map(|f| f.0.clone())
                    .collect::<Vec<_>>()
            ),
            vec!["user"]
        );
        // Both the replacement's create and its dependent are reported as skipped.
        let mut skipped = addrs(&report.skipped);
        skipped.sort();
        assert_eq!(skipped, vec!["grant", "user"]);
        assert_eq!(
            p.log.lock().unwrap().len(),
            1,
            "nothing ran after the failed destroy"
        );
    }

    #[test]
    fn destroys_run_dependents_first_then_creates_dependencies_first() {
        let plan = Plan {
            changes: vec![
                change("db", Action::Delete, &["user"]),
                change("user", Action::Delete, &[]),
                change("x_grant", Action::Create, &["x_user"]),
                change("x_user", Action::Create, &[]),
            ],
            ..Plan::default()
        };
        let p = Arc::new(Scripted::default());
        let (report, _) = run(&plan, p.clone());
        assert!(report.ok());
        let log: Vec<(String, Operation)> = p.log.lock().unwrap().clone();
        let pos = |a: &str| log.iter().position(|(x, _)| x == a).unwrap();
        assert!(pos("db") < pos("user"), "{log:?}");
        assert!(pos("user") < pos("x_user"), "destroy phase first: {log:?}");
        assert!(pos("x_user") < pos("x_grant"), "{log:?}");
    }

    /// Group commit: steps finishing one after another while others keep the slots busy
    /// share fsyncs, and still every step starts only once its own intent and the
    /// records of what it depends on are durable (in the fsynced prefix of the journal,
    /// whole records in a valid order), and every record ends up in the state.
    #[test]
    fn steps_finishing_apart_share_fsyncs_and_dependents_start_only_after_theirs() {
        /// Finishes steps at staggered times; when a dependent `d<i>` arrives, checks the
        /// durable prefix of the journal.
        struct Staggered {
            journal: std::path::PathBuf,
            violations: Mutex<Vec<String>>,
            calls: Mutex<usize>,
        }
        impl Staggered {
            /// The last record of each address in the durable prefix of the journal.
            fn durable(&self) -> BTreeMap<String, String> {
                let len = terrace_state::journal_durable_len(&self.journal).unwrap_or(0);
                let bytes = std::fs::read(&self.journal).unwrap_or_default();
                let prefix = &bytes[..(len as usize).min(bytes.len())];
                let mut last = BTreeMap::new();
                // The header first, then whole records only: the prefix ends at a line end.
                assert!(
                    prefix.is_empty() || prefix.ends_with(b"\n"),
                    "torn durable prefix"
                );
                for line in prefix
                    .split(|b| *b == b'\n')
                    .skip(1)
                    .filter(|l| !l.is_empty())
                {
                    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                    let (kind, body) = v.as_object().unwrap().iter().next().unwrap();
                    let address = match body {
                        serde_json::Value::String(a) => a.clone(),
                        r => r["address"].as_str().unwrap().to_string(),
                    };
                    last.insert(address, kind.clone());
                }
                last
            }
        }
        #[async_trait::async_trait]
        impl Provider for Staggered {
            fn schemas(&self) -> &'static [ResourceSchema] {
                &[]
            }
            async fn observe(&self, _: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
                Ok(Vec::new())
            }
            async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
                let address = step.address.to_string();
                let durable = self.durable();
                if durable.get(&address).map(String::as_str) != Some("pending") {
                    self.violations.lock().unwrap().push(format!(
                        "{address} started before its intent was durable: {durable:?}"
                    ));
                }
                if let Some(root) = address.strip_prefix('d') {
                    let root = format!("r{root}");
                    if durable.get(&root).map(String::as_str) != Some("upsert") {
                        self.violations.lock().unwrap().push(format!(
                            "{address} started before {root}'s record was durable"
                        ));
                    }
                }
                // Steps end one by one, about a millisecond apart.
                let k = {
                    let mut c = self.calls.lock().unwrap();
                    *c += 1;
                    *c
                };
                tokio::time::sleep(Duration::from_micros(500 + 700 * (k % 4) as u64)).await;
                Ok(step.desired.clone())
            }
            async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
                unreachable!()
            }
        }
        let n = 40;
        let mut changes = Vec::new();
        for i in 0..n {
            changes.push(change(&format!("r{i:02}"), Action::Create, &[]));
            changes.push(change(
                &format!("d{i:02}"),
                Action::Create,
                &[&format!("r{i:02}")],
            ));
        }
        // Independent steps queued after the roots keep every slot busy while the roots'
        // records wait for their fsync (so no slot idles, which would sync at once).
        for i in 0..2 * n {
            changes.push(change(&format!("x{i:02}"), Action::Create, &[]));
        }
        let steps = 4 * n;
        let plan = Plan {
            changes,
            ..Plan::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let p = Arc::new(Staggered {
            journal: backend.journal_path(),
            violations: Mutex::new(Vec::new()),
            calls: Mutex::new(0),
        });
        let mut providers = ProviderSet::default();
        providers.insert(ProviderKey("p".into()), p.clone());
        let redactor = Redactor::default();
        let exec = executor(&providers, &redactor, 4);
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        let report = block_on(exec.run(&plan, &mut state, &mut lock)).unwrap();
        assert!(report.ok(), "{:?}", report.failed);
        assert_eq!(report.added, steps);
        let violations = p.violations.lock().unwrap().clone();
        assert!(violations.is_empty(), "{violations:#?}");
        let saved = backend.load().unwrap().unwrap();
        assert_eq!(saved.resources.len(), steps);
        assert!(saved.resources.iter().all(|r| !r.pending));
        // Before group commit every step that finished alone paid its own fsync (more
        // than half as many as steps here); now a window's worth share one (a handful,
        // unless the machine runs the test ten times slower than usual).
        let syncs = lock.journal_syncs() as usize;
        assert!(
            syncs <= steps / 4,
            "{syncs} fsyncs for {steps} steps finishing about a millisecond apart"
        );
    }

    /// Each create's intent is journaled before the provider is called, with the
    /// password terrace generated for it; the provider is given that same password.
    #[test]
    fn a_create_is_journaled_as_pending_with_its_generated_password_before_it_runs() {
        /// Reads the journal when the step arrives: the intent must already be there.
        struct Peek {
            journal: std::path::PathBuf,
            seen: Mutex<Option<(String, Attrs)>>,
        }
        #[async_trait::async_trait]
        impl Provider for Peek {
            fn schemas(&self) -> &'static [ResourceSchema] {
                &[]
            }
            async fn observe(&self, _: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
                Ok(Vec::new())
            }
            async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
                let journal = std::fs::read_to_string(&self.journal).unwrap_or_default();
                *self.seen.lock().unwrap() = Some((journal, step.desired.clone().unwrap()));
                Ok(step.desired.clone())
            }
            async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
                unreachable!()
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let mut c = change("database.a.user", Action::Create, &[]);
        c.type_name = "sql_user".into();
        c.generated = vec!["password".into()];
        c.sensitive = BTreeSet::from(["password".to_string()]);
        let plan = Plan {
            changes: vec![c],
            ..Plan::default()
        };
        let peek = Arc::new(Peek {
            journal: backend.journal_path(),
            seen: Mutex::new(None),
        });
        let mut providers = ProviderSet::default();
        providers.insert(ProviderKey("p".into()), peek.clone());
        let redactor = Redactor::default();
        let exec = executor(&providers, &redactor, 4);
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        block_on(exec.run(&plan, &mut state, &mut lock)).unwrap();

        let (journal, desired) = peek.seen.lock().unwrap().clone().unwrap();
        let password = desired["password"].as_str().unwrap().to_string();
        assert_eq!(password.len(), 32);
        let intent = journal
            .lines()
            .nth(1)
            .expect("an intent record before the step");
        let intent: serde_json::Value = serde_json::from_str(intent).unwrap();
        assert_eq!(intent["pending"]["pending"], true);
        assert_eq!(
            intent["pending"]["attributes"]["password"],
            password.as_str()
        );
        // At the end, one full write: managed, same password, no journal left.
        assert!(!backend.journal_path().exists());
        let saved = backend.load().unwrap().unwrap();
        let user = saved.get(&Address::new("database.a.user")).unwrap();
        assert!(!user.pending);
        assert_eq!(user.attributes["password"], password.as_str());
    }

    /// The killed run's own create finished on the server after this run planned: the
    /// recovery create fails ("already exists"), the object is found and adopted.
    #[test]
    fn a_recovery_create_that_loses_the_race_to_the_killed_runs_create_adopts_the_object() {
        #[derive(Default)]
        struct Raced {
            log: Mutex<Vec<(Operation, Vec<String>)>>,
        }
        #[async_trait::async_trait]
        impl Provider for Raced {
            fn schemas(&self) -> &'static [ResourceSchema] {
                &[]
            }
            async fn observe(&self, _: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
                let live: Attrs = serde_json::from_value(json!({"name": "u"})).unwrap();
                Ok(vec![Observed::Present(live)])
            }
            async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
                self.log
                    .lock()
                    .unwrap()
                    .push((step.operation, step.changed.clone()));
                match step.operation {
                    Operation::Create => Err(ProviderError::Operation {
                        address: step.address.clone(),
                        message: "role \"u\" already exists".into(),
                    }),
                    _ => Ok(step.desired.clone()),
                }
            }
            async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
                unreachable!()
            }
        }
        let mut c = change("u", Action::Create, &[]);
        c.type_name = "sql_user".into();
        c.after =
            Some(serde_json::from_value(json!({"name": "u", "password": "recorded"})).unwrap());
        c.note = Some(CREATE_PENDING_NOTE.to_string());
        let plan = Plan {
            changes: vec![c],
            ..Plan::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        let raced = Arc::new(Raced::default());
        let mut providers = ProviderSet::default();
        providers.insert(ProviderKey("p".into()), raced.clone());
        let redactor = Redactor::default();
        let exec = executor(&providers, &redactor, 4);
        let report = block_on(exec.run(&plan, &mut state, &mut lock)).unwrap();
        assert!(report.ok(), "{:?}", report.failed);
        let log = raced.log.lock().unwrap().clone();
        assert_eq!(
            log,
            vec![
                (Operation::Create, vec![]),
                (Operation::Update, vec!["password".to_string()])
            ]
        );
        let user = state.get(&Address::new("u")).unwrap();
        assert!(!user.pending);
        assert_eq!(user.attributes["password"], "recorded");
    }

    /// A step that runs longer than the progress interval is reported as still running,
    /// between its start and its completion.
    #[test]
    fn a_slow_step_is_reported_as_still_running() {
        struct Slow;
        #[async_trait::async_trait]
        impl Provider for Slow {
            fn schemas(&self) -> &'static [ResourceSchema] {
                &[]
            }
            async fn observe(&self, _: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
                Ok(Vec::new())
            }
            async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
                tokio::time::sleep(Duration::from_millis(260)).await;
                Ok(step.desired.clone())
            }
            async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
                unreachable!()
            }
        }
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let events = Events::with_writer(Redactor::default(), Box::new(buffer.clone()));
        let plan = Plan {
            changes: vec![change("slow", Action::Create, &[])],
            ..Plan::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        let mut providers = ProviderSet::default();
        providers.insert(ProviderKey("p".into()), Arc::new(Slow));
        let redactor = Redactor::default();
        let exec = Executor {
            providers: &providers,
            parallelism: 4,
            redactor: &redactor,
            show_bar: false,
            events: Some(&events),
            progress_every: Duration::from_millis(100),
        };
        let report = block_on(exec.run(&plan, &mut state, &mut lock)).unwrap();
        assert!(report.ok());
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let kinds: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "apply_start",
                "apply_progress",
                "apply_progress",
                "apply_complete"
            ],
            "{text}"
        );
        assert!(
            text.contains("slow: Still creating... [0s elapsed]"),
            "{text}"
        );
    }

    /// Steps of a provider with a limit of its own never exceed it, while another
    /// provider's steps run beside them (up to the overall limit), and the limit that
    /// holds the apply back is named.
    #[test]
    fn a_providers_own_limit_bounds_its_steps_while_others_proceed() {
        /// Counts its steps in flight (and every provider's, through `all`).
        struct Counted {
            limit: usize,
            now: Mutex<usize>,
            peak: Mutex<usize>,
            all: Arc<Mutex<(usize, usize)>>,
        }
        #[async_trait::async_trait]
        impl Provider for Counted {
            fn schemas(&self) -> &'static [ResourceSchema] {
                &[]
            }
            fn max_concurrency(&self, _: Operation) -> usize {
                self.limit
            }
            async fn observe(&self, _: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
                Ok(Vec::new())
            }
            async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
                {
                    let mut now = self.now.lock().unwrap();
                    *now += 1;
                    let mut peak = self.peak.lock().unwrap();
                    *peak = (*peak).max(*now);
                    let mut all = self.all.lock().unwrap();
                    all.0 += 1;
                    all.1 = all.1.max(all.0);
                }
                tokio::time::sleep(Duration::from_millis(60)).await;
                *self.now.lock().unwrap() -= 1;
                self.all.lock().unwrap().0 -= 1;
                Ok(step.desired.clone())
            }
            async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
                unreachable!()
            }
        }
        let all = Arc::new(Mutex::new((0, 0)));
        let counted = |limit| {
            Arc::new(Counted {
                limit,
                now: Mutex::new(0),
                peak: Mutex::new(0),
                all: all.clone(),
            })
        };
        let (engine, db) = (counted(2), counted(100));
        let mut changes = Vec::new();
        for i in 0..8 {
            let mut c = change(&format!("c{i}"), Action::Create, &[]);
            c.provider = ProviderKey("docker.local".into());
            changes.push(c);
        }
        for i in 0..6 {
            let mut c = change(&format!("d{i}"), Action::Create, &[]);
            c.provider = ProviderKey("service.db".into());
            changes.push(c);
        }
        let plan = Plan {
            changes,
            ..Plan::default()
        };
        let mut providers = ProviderSet::default();
        providers.insert(ProviderKey("docker.local".into()), engine.clone());
        providers.insert(ProviderKey("service.db".into()), db.clone());
        let redactor = Redactor::default();
        let exec = executor(&providers, &redactor, 5);
        let (destroys, creates, _) = schedule(&plan);
        // The database's limit (100) is above the overall one: only the engine's holds.
        assert_eq!(
            exec.binding_limits(destroys.iter().chain(&creates))
                .as_deref(),
            Some(
                "Concurrency: at most 2 steps at once on docker.local \
                 (what each server takes); 5 overall (--parallelism)."
            )
        );
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        let report = block_on(exec.run(&plan, &mut state, &mut lock)).unwrap();
        assert!(report.ok(), "{:?}", report.failed);
        assert_eq!(report.added, 14);
        assert_eq!(*engine.peak.lock().unwrap(), 2, "the engine's own limit");
        assert!(
            *db.peak.lock().unwrap() >= 3,
            "the other provider fills the rest of the overall limit"
        );
        assert_eq!(all.lock().unwrap().1, 5, "the overall limit still holds");
    }

    /// Destroys are bounded by the provider's destroy limit, creates by its create limit
    /// (a Docker engine takes more destroys, which mostly wait, than creates).
    #[test]
    fn destroys_and_creates_each_have_the_providers_limit_for_them() {
        /// In flight and peak, [creates and updates, destroys].
        #[derive(Default)]
        struct PerOperation {
            now: Mutex<[usize; 2]>,
            peak: Mutex<[usize; 2]>,
        }
        #[async_trait::async_trait]
        impl Provider for PerOperation {
            fn schemas(&self) -> &'static [ResourceSchema] {
                &[]
            }
            fn max_concurrency(&self, operation: Operation) -> usize {
                match operation {
                    Operation::Delete => 1,
                    _ => 3,
                }
            }
            async fn observe(&self, _: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
                Ok(Vec::new())
            }
            async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
                let k = usize::from(step.operation == Operation::Delete);
                {
                    let mut now = self.now.lock().unwrap();
                    now[k] += 1;
                    let mut peak = self.peak.lock().unwrap();
                    peak[k] = peak[k].max(now[k]);
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
                self.now.lock().unwrap()[k] -= 1;
                Ok(step.desired.clone())
            }
            async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
                unreachable!()
            }
        }
        let mut changes = Vec::new();
        for i in 0..4 {
            changes.push(change(&format!("old{i}"), Action::Delete, &[]));
            changes.push(change(&format!("new{i}"), Action::Create, &[]));
        }
        let plan = Plan {
            changes,
            ..Plan::default()
        };
        let p = Arc::new(PerOperation::default());
        let mut providers = ProviderSet::default();
        providers.insert(ProviderKey("p".into()), p.clone());
        let redactor = Redactor::default();
        let exec = executor(&providers, &redactor, 10);
        let (destroys, creates, _) = schedule(&plan);
        assert_eq!(
            exec.binding_limits(destroys.iter().chain(&creates))
                .as_deref(),
            Some(
                "Concurrency: at most 3 steps at once on p, 1 on p (destroys) \
                 (what each server takes); 10 overall (--parallelism)."
            )
        );
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        let report = block_on(exec.run(&plan, &mut state, &mut lock)).unwrap();
        assert!(report.ok(), "{:?}", report.failed);
        assert_eq!(*p.peak.lock().unwrap(), [3, 1], "[creates, destroys]");
    }

    #[test]
    fn unresolvable_reference_fails_the_step_without_calling_the_provider() {
        let mut c = change("app", Action::Create, &[]);
        c.after.as_mut().unwrap().insert(
            "env".into(),
            json!(refs::marker(&Address::new("missing.user"), "password")),
        );
        let plan = Plan {
            changes: vec![c],
            ..Plan::default()
        };
        let p = Arc::new(Scripted::default());
        let (report, _) = run(&plan, p.clone());
        assert_eq!(report.failed.len(), 1);
        assert!(report.failed[0]
            .1
            .contains("env refer to values that are not known"));
        assert!(p.log.lock().unwrap().is_empty());
    }

    /// Logs every call of two providers ("a", the old server, and "b", the new one) in
    /// one list, and checks the journal when the move's copy is restored.
    struct Mover {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        journal: std::path::PathBuf,
        /// The restore finds the copy does not match.
        fail_restore: bool,
        /// The old object is deposed by this run: its record must be in the journal.
        deposes: bool,
        /// Every object asked about exists (a partial copy an interrupted move left).
        present: bool,
    }

    #[async_trait::async_trait]
    impl Provider for Mover {
        fn schemas(&self) -> &'static [ResourceSchema] {
            &[]
        }
        fn data_format(&self, _: &str) -> Option<String> {
            Some("same".into())
        }
        async fn observe(&self, r: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
            Ok(r.iter()
                .map(|r| match self.present {
                    true => Observed::Present(r.attrs.clone()),
                    false => Observed::Absent,
                })
                .collect())
        }
        async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
            let op = format!("{:?}", step.operation).to_lowercase();
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {op} {}", self.name, step.address));
            Ok(step.desired.clone())
        }
        async fn export_data(
            &self,
            address: &Address,
            _: &str,
            _: &Attrs,
        ) -> ProviderResult<terrace_provider::DataCopy> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} export {address}", self.name));
            Ok(terrace_provider::DataCopy {
                format: "same".into(),
                path: "/dev/null".into(),
                inventory: [("t".to_string(), 3)].into(),
            })
        }
        async fn restore_data(
            &self,
            address: &Address,
            _: &str,
            _: &Attrs,
            copy: &terrace_provider::DataCopy,
        ) -> ProviderResult<()> {
            assert_eq!(copy.inventory["t"], 3);
            if self.fail_restore {
                return Err(ProviderError::Operation {
                    address: address.clone(),
                    message: "the restored copy does not match".into(),
                });
            }
            let journal = std::fs::read_to_string(&self.journal).unwrap();
            assert!(
                !self.deposes || journal.contains("db (deposed)"),
                "the old object is deposed before the copy is restored: {journal}"
            );
            self.log
                .lock()
                .unwrap()
                .push(format!("{} restore {address}", self.name));
            Ok(())
        }
        async fn import(&self, _: &str, _: &str, _: &Attrs) -> ProviderResult<Attrs> {
            unreachable!()
        }
    }

    /// Runs the move of "db" (owner "user", used by "app") from "a" to "b".
    fn run_move(fail_restore: bool) -> (ApplyReport, State, Vec<String>) {
        let moved = |addr: &str, deps: &[&str]| {
            let mut c = change(addr, Action::Replace, deps);
            c.provider = ProviderKey("b".into());
            c.prior_provider = Some(ProviderKey("a".into()));
            c
        };
        let mut db = moved("db", &["user"]);
        db.moves_data = true;
        let mut app = change("app", Action::Replace, &["db"]);
        app.provider = ProviderKey("b".into());
        let plan = Plan {
            changes: vec![app, db, moved("user", &[])],
            ..Plan::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        for (addr, provider) in [("db", "a"), ("user", "a"), ("app", "b")] {
            state.upsert(ResourceState {
                address: Address::new(addr),
                type_name: "t".into(),
                provider: ProviderKey(provider.into()),
                attributes: serde_json::from_value(json!({"name": addr})).unwrap(),
                sensitive_attributes: vec![],
                dependencies: vec![],
                pending: false,
            });
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut providers = ProviderSet::default();
        for name in ["a", "b"] {
            providers.insert(
                ProviderKey(name.into()),
                Arc::new(Mover {
                    name,
                    log: log.clone(),
                    journal: backend.journal_path(),
                    fail_restore,
                    deposes: true,
                    present: false,
                }),
            );
        }
        let redactor = Redactor::default();
        let exec = executor(&providers, &redactor, 1);
        let report = block_on(exec.run(&plan, &mut state, &mut lock)).unwrap();
        let log = log.lock().unwrap().clone();
        (report, state, log)
    }

    /// The app that uses the database stops before the copy, starts after the restore;
    /// the old database is dropped last, and its owner (which it depends on) after it.
    #[test]
    fn a_move_copies_before_the_dependents_start_and_drops_the_old_object_last() {
        let (report, state, log) = run_move(false);
        assert!(report.ok(), "{:?}", report.failed);
        assert_eq!(
            log,
            [
                "b delete app",
                "b create user",
                "a export db",
                "b create db",
                "b restore db",
                "b create app",
                "a delete db",
                "a delete user",
            ]
        );
        let recorded: Vec<(&str, &str)> = state
            .resources
            .iter()
            .map(|r| (r.address.as_str(), r.provider.0.as_str()))
            .collect();
        assert_eq!(recorded, [("app", "b"), ("db", "b"), ("user", "b")]);
    }

    /// The next run after that failure drops the partial copy the failed move left on
    /// the new server, moves again from the deposed old object, and drops the deposed
    /// old owner only after the old database.
    #[test]
    fn a_resumed_move_drops_the_deposed_owner_after_the_old_object() {
        let mut db = change("db", Action::Replace, &["user"]);
        db.provider = ProviderKey("b".into());
        db.prior_provider = Some(ProviderKey("a".into()));
        db.moves_data = true;
        let mut old_user = change("user (deposed)", Action::Delete, &[]);
        old_user.provider = ProviderKey("a".into());
        let mut app = change("app", Action::Create, &["db"]);
        app.provider = ProviderKey("b".into());
        let plan = Plan {
            changes: vec![app, db, old_user],
            ..Plan::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("s.json"));
        let mut lock = backend.lock("apply").unwrap();
        let mut state = State::new();
        for (addr, provider, pending) in [
            ("db", "b", true),
            ("db (deposed)", "a", false),
            ("user", "b", false),
            ("user (deposed)", "a", false),
        ] {
            state.upsert(ResourceState {
                address: Address::new(addr),
                type_name: "t".into(),
                provider: ProviderKey(provider.into()),
                attributes: serde_json::from_value(json!({"name": addr})).unwrap(),
                sensitive_attributes: vec![],
                dependencies: vec![],
                pending,
            });
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut providers = ProviderSet::default();
        for name in ["a", "b"] {
            providers.insert(
                ProviderKey(name.into()),
                Arc::new(Mover {
                    name,
                    log: log.clone(),
                    journal: backend.journal_path(),
                    fail_restore: false,
                    deposes: false,
                    present: name == "b",
                }),
            );
        }
        let redactor = Redactor::default();
        let exec = executor(&providers, &redactor, 4);
        let report = block_on(exec.run(&plan, &mut state, &mut lock)).unwrap();
        assert!(report.ok(), "{:?}", report.failed);
        assert_eq!(
            log.lock().unwrap().clone(),
            [
                "b delete db",
                "a export db",
                "b create db",
                "b restore db",
                "b create app",
                "a delete db",
                "a delete user (deposed)",
            ]
        );
        let recorded: Vec<(&str, bool)> = state
            .resources
            .iter()
            .map(|r| (r.address.as_str(), r.pending))
            .collect();
        assert_eq!(recorded, [("app", false), ("db", false), ("user", false)]);
    }

    /// A configuration that moves the object back while a move is unfinished is refused
    /// before anything runs, saying how to finish the move or keep the original.
    #[test]
    fn moving_back_during_an_unfinished_move_is_refused_with_the_way_out() {
        let mut db = change("db", Action::Replace, &[]);
        db.provider = ProviderKey("a".into());
        db.prior_provider = Some(ProviderKey("b".into()));
        db.moves_data = true;
        let plan = Plan {
            changes: vec![db],
            ..Plan::default()
        };
        let mut state = State::new();
        for (addr, provider, pending) in [("db", "b", true), ("db (deposed)", "a", false)] {
            state.upsert(ResourceState {
                address: Address::new(addr),
                type_name: "t".into(),
                provider: ProviderKey(provider.into()),
                attributes: serde_json::from_value(json!({"name": "db"})).unwrap(),
                sensitive_attributes: vec![],
                dependencies: vec![],
                pending,
            });
        }
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut providers = ProviderSet::default();
        for name in ["a", "b"] {
            providers.insert(
                ProviderKey(name.into()),
                Arc::new(Mover {
                    name,
                    log: log.clone(),
                    journal: "/nonexistent".into(),
                    fail_restore: false,
                    deposes: false,
                    present: true,
                }),
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(crate::moves::preflight(
                &plan,
                &providers,
                &state,
                &Redactor::default(),
            ))
            .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "db: an earlier apply stopped while moving it from a to b, and the configuration now keeps it on a"
            ),
            "{err}"
        );
        assert!(log.lock().unwrap().is_empty(), "nothing ran");
    }

    /// A copy that does not verify keeps the old object and its record (deposed), the
    /// new one pending for the next plan to move again, and the app stopped.
    #[test]
    fn a_move_whose_restore_fails_keeps_the_old_object_and_starts_nothing_after_it() {
        let (report, state, log) = run_move(true);
        assert_eq!(report.failed.len(), 1);
        assert_eq!(report.failed[0].0.as_str(), "db");
        assert!(
            !log.iter()
                .any(|l| l == "a delete db" || l == "b create app"),
            "{log:?}"
        );
        let recorded: Vec<(&str, &str, bool)> = state
            .resources
            .iter()
            .map(|r| (r.address.as_str(), r.provider.0.as_str(), r.pending))
            .collect();
        assert_eq!(
            recorded,
            [
                ("db", "b", true),
                ("db (deposed)", "a", false),
                ("user", "b", false),
                ("user (deposed)", "a", false)
            ]
        );
    }
}
