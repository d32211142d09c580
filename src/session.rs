//! A session: the loaded project, its state backend, providers and output settings —
//! what every command starts from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use terrace_config::{BackendSetting, Project, VarInputs};
use terrace_plan::{
    plan, Action, Conflict, DriftKind, Plan, PlanInput, PlannedSafeguard, PriorResource,
    ResourceGraph, DELETED_NOTE,
};
use terrace_provider::{refs, Address, DesiredResource, PlannedChange, ProviderKey};
use terrace_state::{write_atomically, Backend, Keyring, LocalBackend, State, StateLock};

use crate::cli::{Cli, VarArgs};
use crate::output::{use_color, Redactor};
use crate::providers::{self, ProviderSet};
use crate::refresh::observe_all;

/// Where databases are dumped before terrace drops them, inside the project directory.
pub const BACKUP_DIR: &str = ".terrace/backups";

/// Where a project records the lineage of the state it last used, inside the project
/// directory: one line, the lineage UUID. A state of another lineage (another project's,
/// or a different state file named by mistake) is then refused instead of being planned
/// against this configuration, which would destroy everything it holds.
pub const LINEAGE_FILE: &str = ".terrace/state-lineage";

/// Everything a command needs, loaded once.
pub struct Session {
    /// The evaluated configuration.
    pub project: Project,
    /// Where state lives.
    pub backend: Backend,
    /// One provider per host, SQL service and Docker engine.
    pub providers: ProviderSet,
    /// Masks every known secret in printed messages.
    pub redactor: Redactor,
    /// Colour on stdout.
    pub color: bool,
    /// Where databases are dumped before they are dropped.
    pub backups: PathBuf,
    /// The project directory.
    pub dir: PathBuf,
    /// `--target` / `--replace` for the next converging plan (none: the whole plan).
    pub focus: terrace_plan::Focus,
    /// What the configuration's `moved` blocks renamed in the state this session read
    /// (in memory; an apply saves it), shown in the plan.
    pub moved: Vec<terrace_plan::Moved>,
    /// "Now" for expiry (`--now`, `TERRACE_NOW`, else the wall clock) and the horizon
    /// within which plans list coming expiries.
    pub clock: terrace_plan::expiry::Clock,
    /// What the configuration was loaded with; its `placements` are the state's
    /// (see [`Session::read_state`]).
    inputs: VarInputs,
    /// The state as read (without the lock) for its placements, kept for the first
    /// [`Session::read_state`] so that a plan decodes the state once, not twice.
    pre_read: Option<State>,
}

/// The state backend selected by the global flags (`--state`, `--backend`),
/// `TERRACE_BACKEND`, or the configuration's `terrace { backend ... }` block, in that
/// order, with the state key the environment configures (`TERRACE_STATE_KEY`, ...; see
/// `terrace_state::Keyring::from_env`).
pub fn backend(cli: &Cli) -> miette::Result<Backend> {
    let keys = Keyring::from_env().map_err(miette::Report::new)?;
    Ok(select_backend(cli)?
        .with_keys(keys)
        .with_lock_timeout(cli.lock_timeout))
}

fn select_backend(cli: &Cli) -> miette::Result<Backend> {
    if let Some(path) = &cli.state {
        return Ok(Backend::from(LocalBackend::new(path.clone())));
    }
    let state_name = default_state_name(cli);
    let spec = match &cli.backend {
        Some(url) => {
            if terrace_config::url_has_password(url) {
                miette::bail!(
                    help = "set TERRACE_BACKEND to the URL instead, or give the password in \
                            PGPASSWORD or ~/.pgpass",
                    "--backend holds a password, which other users can read in the process \
                     list; refusing to use it"
                );
            }
            Some(url.clone())
        }
        None => std::env::var("TERRACE_BACKEND")
            .ok()
            .filter(|v| !v.is_empty()),
    };
    let parse = |url: &str, name: &str| Backend::parse(url, name).map_err(miette::Report::new);
    if let Some(spec) = spec {
        return parse(&spec, &state_name);
    }
    Ok(
        match terrace_config::backend_dir(&cli.dir).map_err(miette::Report::new)? {
            None | Some(BackendSetting::Local { path: None }) => {
                Backend::from(LocalBackend::in_dir(&cli.dir))
            }
            Some(BackendSetting::Local { path: Some(p) }) => {
                Backend::from(LocalBackend::new(cli.dir.join(p)))
            }
            Some(BackendSetting::Pg { url, state }) => {
                parse(&url, state.as_deref().unwrap_or(&state_name))?
            }
        },
    )
}

/// The name of a PostgreSQL state whose URL has no `?state=`: the project directory's.
pub fn default_state_name(cli: &Cli) -> String {
    std::fs::canonicalize(&cli.dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "default".to_string())
}

/// The state in `backend` (an empty one if there is no file yet).
pub fn load_state(backend: &Backend) -> miette::Result<State> {
    Ok(backend
        .load()
        .map_err(miette::Report::new)?
        .unwrap_or_default())
}

/// The state, read while holding `lock`: a journal left by a killed apply is folded into
/// the state file first (see [`StateLock::load`]).
pub fn load_state_locked(lock: &mut StateLock) -> miette::Result<State> {
    Ok(lock
        .load()
        .map_err(miette::Report::new)?
        .unwrap_or_default())
}

/// Refuses a state whose lineage is not the one the project in `dir` last used
/// ([`LINEAGE_FILE`]), and a missing state file when the project has used one.
pub fn check_lineage(
    dir: &std::path::Path,
    backend: &Backend,
    state: &State,
) -> miette::Result<()> {
    let file = dir.join(LINEAGE_FILE);
    let Ok(recorded) = std::fs::read_to_string(&file) else {
        return Ok(());
    };
    let recorded = recorded.trim();
    if recorded.is_empty() {
        return Ok(());
    }
    let help = format!(
        "point --state at this project's state file; if {} really is this project's state \
         now (you moved the project to another state on purpose), delete {} and run again",
        backend.location(),
        file.display()
    );
    if !backend.exists().map_err(miette::Report::new)? {
        miette::bail!(
            help = help,
            "there is no state file at {}, but this project has used a state (lineage \
             {recorded}): refusing to start from an empty state",
            backend.location()
        );
    }
    if state.lineage != recorded {
        miette::bail!(
            help = help,
            "state file {} has lineage {}, but this project last used lineage {recorded}: \
             it is another state, and planning this configuration against it could destroy \
             everything it manages",
            backend.location(),
            state.lineage
        );
    }
    Ok(())
}

/// Records `state`'s lineage as the one the project in `dir` uses, if the state file
/// exists and the record differs.
pub fn record_lineage(
    dir: &std::path::Path,
    backend: &Backend,
    state: &State,
) -> miette::Result<()> {
    let file = dir.join(LINEAGE_FILE);
    if !backend.exists().map_err(miette::Report::new)?
        || std::fs::read_to_string(&file).is_ok_and(|l| l.trim() == state.lineage)
    {
        return Ok(());
    }
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| miette::miette!("cannot create {}: {e}", parent.display()))?;
    }
    write_atomically(&file, format!("{}\n", state.lineage).as_bytes()).map_err(miette::Report::new)
}

impl Session {
    /// Loads and validates the configuration. Config errors come back as one miette
    /// report pointing at file, line and column.
    pub fn load(cli: &Cli, vars: &VarArgs) -> miette::Result<Session> {
        Session::load_inputs(cli, &var_inputs(vars)?)
    }

    /// [`Session::load`] with variable inputs already gathered (`validate` sets
    /// [`VarInputs::placeholders`]).
    pub fn load_inputs(cli: &Cli, inputs: &VarInputs) -> miette::Result<Session> {
        let mut inputs = inputs.clone();
        let backend = backend(cli)?;
        let backups = cli.dir.join(BACKUP_DIR);
        // Where the state placed tenants, read without the lock: a placement rule keeps
        // them there. A state that cannot be read fails where it is read for real, and
        // the state read under the lock is checked again (`sync_placements`). `validate`
        // (placeholders) reads no state: it must work without the backend.
        //
        // The state is read on a thread of its own while the configuration loads as if
        // nothing were placed (at 1,000 tenants each takes tens of milliseconds): when
        // the state does place tenants, the configuration is loaded again with them,
        // and only that load counts, its errors included.
        let (built, pre_read) = std::thread::scope(|scope| {
            let reading = (!inputs.placeholders).then(|| scope.spawn(|| load_state(&backend)));
            let built = build(&cli.dir, &inputs, &backups);
            let state = reading
                .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .and_then(Result::ok);
            (built, state)
        });
        let placements = pre_read
            .as_ref()
            .map(crate::placement::prior)
            .unwrap_or_default();
        let built = if placements == inputs.placements {
            built
        } else {
            inputs.placements = placements;
            build(&cli.dir, &inputs, &backups)
        };
        let (project, providers, redactor) = built?;
        Ok(Session {
            providers,
            backups,
            dir: cli.dir.clone(),
            backend,
            redactor,
            color: use_color(cli.no_color),
            project,
            focus: terrace_plan::Focus::default(),
            moved: Vec::new(),
            clock: crate::expiry::clock(cli)?,
            inputs,
            pre_read,
        })
    }

    /// Loads the configuration again if the state read for real placed tenants
    /// elsewhere than the state the configuration was loaded with (another apply ran in
    /// between), so that the plan keeps every tenant where the state says it is.
    fn sync_placements(&mut self, state: &State) -> miette::Result<()> {
        if state.placements == self.inputs.placements {
            return Ok(());
        }
        self.inputs.placements = crate::placement::prior(state);
        let (project, providers, _) = build(&self.dir, &self.inputs, &self.backups)?;
        self.redactor
            .extend(project.secrets.iter().map(|s| s.expose().to_string()));
        crate::output::install_global(&self.redactor);
        self.project = project;
        self.providers = providers;
        Ok(())
    }
}

/// Loads the configuration in `dir` and builds its providers, with every resource
/// normalised by its provider, and a redactor of its secrets (installed globally).
fn build(
    dir: &std::path::Path,
    inputs: &VarInputs,
    backups: &std::path::Path,
) -> miette::Result<(Project, ProviderSet, Redactor)> {
    {
        let mut project = terrace_config::load_dir(dir, inputs, &providers::schema)
            .map_err(miette::Report::new)?;
        // Before anything else can fail and print a message.
        let redactor = Redactor::new(project.secrets.iter().map(|s| s.expose().to_string()));
        crate::output::install_global(&redactor);
        let providers = ProviderSet::for_project(&project, backups);
        // Every lowered resource must be a type some provider implements.
        for r in &project.resources {
            if providers::schema(&r.type_name).is_none() {
                miette::bail!("{}: no provider implements {:?}", r.address, r.type_name);
            }
        }
        for r in &mut project.resources {
            providers
                .get(&r.provider)?
                .normalize(&r.type_name, &mut r.attrs)
                .map_err(|e| miette::miette!("{}: {e}", r.address))?;
        }
        Ok((project, providers, redactor))
    }
}

impl Session {
    /// Reads the state (an empty one if there is no file yet) and learns its secrets,
    /// so that nothing recorded as sensitive can be printed by accident. Refuses a state
    /// that is not the one this project last used (see [`check_lineage`]).
    pub fn read_state(&mut self) -> miette::Result<State> {
        let mut state = match self.pre_read.take() {
            Some(state) => state,
            None => load_state(&self.backend)?,
        };
        check_lineage(&self.dir, &self.backend, &state)?;
        self.sync_placements(&state)?;
        self.apply_moved_blocks(&mut state);
        self.learn_secrets(&state);
        Ok(state)
    }

    /// [`Session::read_state`] for a command holding the lock, which will write: a
    /// killed apply's journal is folded in, and the state's lineage is recorded as this
    /// project's.
    pub fn read_state_locked(&mut self, lock: &mut StateLock) -> miette::Result<State> {
        // Under the lock the state is read again: it may have changed since.
        self.pre_read = None;
        let mut state = load_state_locked(lock)?;
        check_lineage(&self.dir, &self.backend, &state)?;
        record_lineage(&self.dir, &self.backend, &state)?;
        self.sync_placements(&state)?;
        self.apply_moved_blocks(&mut state);
        self.learn_secrets(&state);
        Ok(state)
    }

    /// Renames in `state` (in memory) what the configuration's `moved` blocks move, and
    /// records it in [`Session::moved`]. A move whose old address is not recorded was
    /// made already (or never needed); one whose destination is already recorded is
    /// left out with a warning, as both objects exist.
    fn apply_moved_blocks(&mut self, state: &mut State) {
        self.moved.clear();
        for m in &self.project.moved {
            let moves = crate::extra::planned_moves(state, &m.from, &m.to);
            if let Some((from, to)) = crate::extra::taken(state, &moves) {
                eprintln!(
                    "warning: moved block: {from} stays where it is, as {to} is already in the \
                     state; `terrace state rm` one of them, or remove the moved block"
                );
                continue;
            }
            crate::extra::rename(state, &moves);
            self.moved.extend(
                moves
                    .into_iter()
                    .map(|(from, to)| terrace_plan::Moved { from, to }),
            );
        }
    }

    /// Adds the sensitive values recorded in `state` to the redactor.
    pub fn learn_secrets(&mut self, state: &State) {
        let secrets = state.resources.iter().flat_map(|r| {
            r.sensitive_attributes
                .iter()
                .filter_map(|k| r.attributes.get(k))
                .filter_map(|v| v.as_str().map(str::to_string))
        });
        self.redactor.extend(secrets.collect::<Vec<_>>());
        crate::output::install_global(&self.redactor);
    }

    /// The dependency graph of the configuration (checks for cycles).
    pub fn graph(&self) -> miette::Result<ResourceGraph> {
        ResourceGraph::new(
            self.project
                .resources
                .iter()
                .map(|r| (&r.address, r.depends_on.as_slice())),
        )
        .map_err(|e| miette::miette!("{e}"))
    }

    /// Refreshes against the live systems and plans. With `destroy`, the desired set is
    /// empty: everything in state is planned for deletion.
    ///
    /// Resources whose provider cannot be reached (a host that is down) are left out,
    /// with everything that depends on them, and reported in [`Planned::unreachable`]:
    /// one unreachable host does not stop the others from being planned and applied.
    pub async fn plan(&mut self, state: &State, goal: Goal) -> miette::Result<Planned> {
        // A type this terrace does not know cannot be observed, updated or destroyed:
        // planning around it would keep it silently, or lose it at the next write.
        for r in &state.resources {
            if providers::schema(&r.type_name).is_none() {
                miette::bail!(
                    help = format!(
                        "it was written by a newer terrace (upgrade), or edited by hand; \
                         `terrace state rm {}` forgets it without touching the live object",
                        r.address
                    ),
                    "the state records {} with resource type {:?}, which this terrace does \
                     not know",
                    r.address,
                    r.type_name
                );
            }
        }
        let needed: BTreeSet<ProviderKey> = self
            .project
            .resources
            .iter()
            .map(|r| r.provider.clone())
            .chain(state.resources.iter().map(|r| r.provider.clone()))
            .collect();
        self.providers.connect_remote(&needed).await;
        let mut prior = prior_resources(state);
        let mut kept = 0;
        let mut expiry = Vec::new();
        let desired: Vec<DesiredResource> = match goal {
            Goal::Converge | Goal::Refresh => {
                let mut known = resolve_known(&self.project.resources, state);
                self.renormalize(&mut known)?;
                // Expired instances are not desired: what they have is destroyed, and
                // nothing of theirs is created again while the configuration lists them.
                let (known, listed) = crate::expiry::judge(&self.project, state, self.clock, known);
                expiry = listed;
                known
            }
            Goal::Destroy { include_services } => {
                if !include_services {
                    // Shared services are left alone entirely: not observed, not
                    // planned, and nothing destroyed waits for them.
                    let services = self.shared_services();
                    let before = prior.len();
                    prior.retain(|p| !services.contains(&p.address));
                    kept = before - prior.len();
                    for p in &mut prior {
                        p.depends_on.retain(|d| !services.contains(d));
                    }
                }
                Vec::new()
            }
        };
        let mut desired = desired;
        let mut refresh =
            observe_all(&self.providers, &mut desired, &mut prior, &self.redactor).await?;
        let left_out = left_out(&desired, &prior, &refresh.failures, &refresh.failed);
        let held = dependencies_of(&left_out, &desired, &prior);
        let desired: Vec<DesiredResource> = desired
            .into_iter()
            .filter(|d| !left_out.contains(&d.address))
            .collect();
        let prior: Vec<PriorResource> = prior
            .into_iter()
            .filter(|p| !left_out.contains(&p.address))
            .collect();
        let mut plan = plan(PlanInput {
            desired,
            prior,
            observed: std::mem::take(&mut refresh.observed),
            schemas: &providers::schema,
        })
        .map_err(|e| miette::miette!("{e}"))?;
        terrace_plan::expiry::annotate(&mut plan, expiry);
        // Before prevent_destroy: a requested replacement of a protected resource is
        // refused like any other.
        if goal == Goal::Converge {
            self.focus.apply(&mut plan).map_err(|e| {
                miette::miette!(
                    help = "`terrace state list` and `terrace plan` show the addresses",
                    "{e}"
                )
            })?;
        }
        // After every source of replacement, `--replace` included: a grant is made
        // again with the user it lives in.
        terrace_plan::replace_what_lives_in_replaced(&mut plan, &providers::schema);
        // A drift run applies nothing, so nothing it plans is refused.
        if goal != Goal::Refresh {
            terrace_plan::check_prevent_destroy(&plan, &self.project.resources)
                .map_err(|e| miette::miette!("{e}"))?;
        }
        plan.unverified = refresh.unverified;
        if goal == Goal::Converge {
            plan.moved = self.moved.clone();
        }
        // What a left-out resource depends on must outlive this run: a database volume
        // is not destroyed while the databases in it could not even be looked at.
        plan.changes.retain(|c| {
            !(held.contains(&c.address) && matches!(c.action, Action::Delete | Action::Replace))
        });
        self.safeguard_and_check(&mut plan).await?;
        // A move that cannot carry its data is refused at plan time (src/moves.rs).
        if goal == Goal::Converge {
            crate::moves::preflight(&plan, &self.providers, state, &self.redactor).await?;
        }
        Ok(Planned {
            plan,
            unreachable: refresh.failures,
            failed: refresh.failed,
            left_out: left_out.into_iter().collect(),
            kept,
        })
    }

    /// Normalises again the resources whose attributes changed when reference markers
    /// were filled in, so that what providers derive from them (a file's
    /// `content_sha256`) describes the real value, not the marker.
    fn renormalize(&self, resolved: &mut [DesiredResource]) -> miette::Result<()> {
        for (r, loaded) in resolved.iter_mut().zip(&self.project.resources) {
            if r.attrs != loaded.attrs {
                self.providers
                    .get(&r.provider)?
                    .normalize(&r.type_name, &mut r.attrs)
                    .map_err(|e| miette::miette!("{}: {e}", r.address))?;
            }
        }
        Ok(())
    }

    /// Asks each provider what its destroy steps save first (shown in the plan), and
    /// whether its planned changes can be made on the live system as observed (a port
    /// or name another container holds): those become conflicts, so nothing is
    /// destroyed for a replacement that could not start.
    async fn safeguard_and_check(&self, plan: &mut Plan) -> miette::Result<()> {
        let mut by_provider: BTreeMap<&ProviderKey, Vec<PlannedChange>> = BTreeMap::new();
        let mut safeguards = Vec::new();
        for c in plan.actionable() {
            let destroys = matches!(c.action, Action::Delete | Action::Replace)
                && !terrace_plan::only_leaves_state(c);
            // Destroys go through the provider that manages the existing object.
            let destroyer = c.prior_provider.as_ref().unwrap_or(&c.provider);
            if let (true, Some(before)) = (destroys, c.before.as_ref()) {
                if let Some(g) = self
                    .providers
                    .get(destroyer)?
                    .safeguard(&c.type_name, before)
                {
                    safeguards.push(PlannedSafeguard {
                        address: c.address.clone(),
                        safeguard: g,
                    });
                }
            }
            by_provider
                .entry(&c.provider)
                .or_default()
                .push(PlannedChange {
                    address: c.address.clone(),
                    type_name: c.type_name.clone(),
                    destroys,
                    creates: matches!(c.action, Action::Create | Action::Replace),
                    before: c.before.clone(),
                    after: c.after.clone(),
                });
        }
        let mut conflicts = Vec::new();
        let mut taken: BTreeSet<Address> = BTreeSet::new();
        // Each provider's check may read its system (a list of an engine's
        // containers): all of them at once.
        let checks = by_provider.iter().map(|(key, changes)| async move {
            let problems = self
                .providers
                .get(key)?
                .check_plan(changes)
                .await
                .map_err(|e| {
                    miette::miette!(
                        help = "nothing was changed; plan again once it answers",
                        "{key}: cannot check the plan against the live system: {}",
                        self.redactor.scrub(&e.to_string())
                    )
                })?;
            Ok::<_, miette::Report>((changes, problems))
        });
        for (changes, problems) in futures_util::future::try_join_all(checks).await? {
            for problem in problems {
                if problem.identity_taken {
                    taken.insert(problem.address.clone());
                }
                let type_name = changes
                    .iter()
                    .find(|c| c.address == problem.address)
                    .map(|c| c.type_name.clone())
                    .unwrap_or_default();
                conflicts.push(Conflict {
                    import_id: String::new(),
                    address: problem.address,
                    type_name,
                    message: self.redactor.scrub(&problem.message),
                    hint: Some(self.redactor.scrub(&problem.hint)),
                });
            }
        }
        // What holds the object's name is not terrace's object: the conflict says what
        // it is, so "deleted outside terrace" would only mislead.
        plan.drift
            .retain(|d| !(d.kind == DriftKind::Deleted && taken.contains(&d.address)));
        for c in plan
            .changes
            .iter_mut()
            .filter(|c| taken.contains(&c.address))
        {
            if c.note.as_deref() == Some(DELETED_NOTE) {
                c.note = Some("it cannot be made: see the conflict below".into());
            }
        }
        plan.conflicts.extend(conflicts);
        plan.conflicts.sort_by(|a, b| a.address.cmp(&b.address));
        plan.safeguards = safeguards;
        plan.safeguards.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(())
    }

    /// The containers of shared services and everything they depend on (volumes,
    /// networks, images): what `destroy` keeps unless told otherwise.
    fn shared_services(&self) -> BTreeSet<Address> {
        let containers: BTreeSet<Address> = self
            .project
            .services
            .values()
            .filter_map(|s| s.container.clone())
            .collect();
        let mut kept = dependencies_of(&containers, &self.project.resources, &[]);
        kept.extend(containers);
        kept
    }
}

/// What a plan aims for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Make the live systems match the configuration.
    Converge,
    /// Only look: a drift run plans like `Converge` but applies nothing, so what
    /// would only stop an apply (`prevent_destroy`) does not stop it.
    Refresh,
    /// Remove what the state records; shared services stay unless included.
    Destroy {
        /// Destroy shared services too.
        include_services: bool,
    },
}

/// A plan, and the providers that could not be asked while making it.
pub struct Planned {
    /// The plan over everything reachable.
    pub plan: Plan,
    /// Unreachable providers and why; their resources are not in `plan`.
    pub unreachable: BTreeMap<ProviderKey, String>,
    /// Single resources that could not be observed and why (their provider answered for
    /// the others); they are not in `plan` either.
    pub failed: BTreeMap<Address, String>,
    /// Resources not planned because of them (their own, and everything depending on
    /// those), in address order.
    pub left_out: Vec<Address>,
    /// For a destroy: how many resources of shared services are kept.
    pub kept: usize,
}

impl Planned {
    /// Prints the unreachable providers and the resources that could not be observed
    /// to stderr. True if there were any.
    pub fn report_unreachable(&self) -> bool {
        for (key, reason) in &self.unreachable {
            eprintln!(
                "error: {key} could not be reached, its resources were not planned: {reason}"
            );
        }
        for (address, reason) in &self.failed {
            eprintln!("error: {address} could not be observed, it was not planned: {reason}");
        }
        if !self.left_out.is_empty() {
            eprintln!("Not planned this run ({}):", self.left_out.len());
            for a in &self.left_out {
                eprintln!("  {a}");
            }
        }
        !self.unreachable.is_empty() || !self.failed.is_empty()
    }
}

/// Resources whose provider failed or that could not be observed themselves, and
/// (transitively) every resource that depends on one of them.
fn left_out(
    desired: &[DesiredResource],
    prior: &[PriorResource],
    failed: &BTreeMap<ProviderKey, String>,
    failed_resources: &BTreeMap<Address, String>,
) -> BTreeSet<Address> {
    let mut out: BTreeSet<Address> = desired
        .iter()
        .map(|d| (&d.address, &d.provider))
        .chain(prior.iter().map(|p| (&p.address, &p.provider)))
        .filter(|(a, provider)| failed.contains_key(*provider) || failed_resources.contains_key(*a))
        .map(|(a, _)| a.clone())
        .collect();
    if out.is_empty() {
        return out;
    }
    // Walk from each left-out resource to everything that depends on it.
    let mut dependents: BTreeMap<&Address, Vec<&Address>> = BTreeMap::new();
    for (addr, deps) in edges(desired, prior) {
        for d in deps {
            dependents.entry(d).or_default().push(addr);
        }
    }
    let mut todo: Vec<Address> = out.iter().cloned().collect();
    while let Some(a) = todo.pop() {
        for d in dependents.get(&a).into_iter().flatten() {
            if out.insert((*d).clone()) {
                todo.push((*d).clone());
            }
        }
    }
    out
}

/// Everything the `roots` depend on, transitively (the roots themselves excluded).
fn dependencies_of(
    roots: &BTreeSet<Address>,
    desired: &[DesiredResource],
    prior: &[PriorResource],
) -> BTreeSet<Address> {
    let mut by_addr: BTreeMap<&Address, Vec<&Address>> = BTreeMap::new();
    for (a, deps) in edges(desired, prior) {
        by_addr.entry(a).or_default().extend(deps.iter());
    }
    let mut held = BTreeSet::new();
    let mut todo: Vec<&Address> = roots.iter().collect();
    while let Some(a) = todo.pop() {
        for d in by_addr.get(a).into_iter().flatten() {
            if !roots.contains(*d) && held.insert((*d).clone()) {
                todo.push(d);
            }
        }
    }
    held
}

/// Every (resource, its dependencies) pair in config and state.
fn edges<'a>(
    desired: &'a [DesiredResource],
    prior: &'a [PriorResource],
) -> Vec<(&'a Address, &'a [Address])> {
    desired
        .iter()
        .map(|d| (&d.address, d.depends_on.as_slice()))
        .chain(prior.iter().map(|p| (&p.address, p.depends_on.as_slice())))
        .collect()
}

/// Looks up a recorded attribute value as text, for reference markers.
pub fn state_lookup(state: &State) -> impl Fn(&Address, &str) -> Option<String> + '_ {
    move |address, attr| {
        state
            .get(address)?
            .attributes
            .get(attr)
            .and_then(|v| v.as_str().map(str::to_string))
    }
}

/// The desired resources with every reference marker whose value the state already
/// knows replaced by that value, so that an unchanged generated password plans nothing.
/// Markers for values not known yet stay; the executor resolves them before the step.
fn resolve_known(resources: &[DesiredResource], state: &State) -> Vec<DesiredResource> {
    let lookup = state_lookup(state);
    resources
        .iter()
        .cloned()
        .map(|mut r| {
            refs::resolve_attrs(&mut r.attrs, &lookup);
            r
        })
        .collect()
}

/// The state's resources as the planner sees them.
pub fn prior_resources(state: &State) -> Vec<PriorResource> {
    state
        .resources
        .iter()
        .map(|r| PriorResource {
            address: r.address.clone(),
            type_name: r.type_name.clone(),
            provider: r.provider.clone(),
            attrs: r.attributes.clone(),
            sensitive_attrs: r
                .sensitive_attributes
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>(),
            depends_on: r.dependencies.clone(),
            pending: r.pending,
        })
        .collect()
}

pub(crate) fn var_inputs(args: &VarArgs) -> miette::Result<VarInputs> {
    let mut vars = Vec::new();
    for v in &args.vars {
        let Some((name, value)) = v.split_once('=') else {
            miette::bail!(
                help = "write it as --var NAME=VALUE",
                "--var {v:?} has no '='"
            );
        };
        vars.push((name.trim().to_string(), value.to_string()));
    }
    Ok(VarInputs {
        vars,
        var_files: args.var_files.clone(),
        env: std::env::vars()
            .filter(|(k, _)| k.starts_with("TERRACE_VAR_"))
            .collect(),
        placeholders: false,
        placements: Default::default(),
    })
}
