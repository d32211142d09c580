//! The planner: `(desired, prior, observed) -> Plan`, with no I/O.

use std::collections::{BTreeMap, BTreeSet};

use terrace_provider::{
    Address, Attrs, DesiredResource, Observed, ProviderKey, ResourceSchema, Value,
};

use crate::graph::{GraphError, ResourceGraph};
use crate::model::{Action, AttrDiff, Conflict, Drift, DriftKind, Plan, ResourceChange};

/// A resource as the state file recorded it after the last apply.
#[derive(Debug, Clone, PartialEq)]
pub struct PriorResource {
    /// Resource address.
    pub address: Address,
    /// Resource type.
    pub type_name: String,
    /// Provider instance that manages it.
    pub provider: ProviderKey,
    /// Attributes as last applied.
    pub attrs: Attrs,
    /// Attributes recorded as sensitive.
    pub sensitive_attrs: BTreeSet<String>,
    /// Dependencies recorded at the last apply (used to order deletions).
    pub depends_on: Vec<Address>,
    /// An apply recorded that it was about to create this object and stopped before
    /// recording that it had: whether it exists is not known until it is observed.
    /// Present, it is adopted (no conflict, no drift); absent, it is created, reusing
    /// the recorded computed values (a generated password).
    pub pending: bool,
}

/// The note on the create of an object of an adoptable type (`adopt_existing`) that
/// exists already: apply records it, and renderers word it as adopted.
pub const ADOPT_EXISTING_NOTE: &str = "it exists already; apply adopts it";

/// The note on the change of a pending resource that exists.
pub const ADOPT_PENDING_NOTE: &str =
    "an earlier apply stopped while creating it; apply adopts the object it created";

/// The note on the change of a pending resource that does not exist.
pub const CREATE_PENDING_NOTE: &str = "an earlier apply stopped before creating it";

/// The note on the delete of a pending resource that is no longer wanted and does not
/// exist: there is nothing to destroy, it only leaves the state (the executor makes no
/// provider call for it).
pub const FORGET_PENDING_NOTE: &str =
    "an earlier apply stopped before creating it; it only leaves the state";

/// The note on the delete of a pending resource that is no longer wanted, where the
/// object found is not the one the interrupted apply created: it is someone else's, so
/// it is left alone and the record only leaves the state.
pub const FORGET_FOREIGN_NOTE: &str = "an earlier apply stopped while creating it, and the \
     object found is not the one it created; it only leaves the state, the object is left alone";

/// True for a delete that only removes a record from the state (a pending record, or
/// an object whose type stays as it is when no longer managed): the executor makes no
/// provider call for it.
pub fn only_leaves_state(change: &ResourceChange) -> bool {
    change.action == Action::Delete
        && (change.keeps_object
            || matches!(
                change.note.as_deref(),
                Some(FORGET_PENDING_NOTE | FORGET_FOREIGN_NOTE)
            ))
}
/// The note on the delete of an object the configuration no longer has.
pub const NOT_CONFIGURED_NOTE: &str = "it is no longer in the configuration";

/// Everything the planner looks at. The planner takes it by value: the attributes of
/// the plan's `before` and `after` are moved out of it, not copied (at 30,000 resources
/// each copy of every attribute map is tens of megabytes).
pub struct PlanInput<'a> {
    /// What the configuration wants.
    pub desired: Vec<DesiredResource>,
    /// What the state file says exists.
    pub prior: Vec<PriorResource>,
    /// What providers found live. A missing address means "not observed": the planner
    /// then trusts the prior state for it.
    pub observed: BTreeMap<Address, Observed>,
    /// The schema of every resource type that appears in `desired` or `prior`.
    pub schemas: Schemas<'a>,
}

/// Looks up the schema of a resource type.
pub type Schemas<'a> = &'a dyn Fn(&str) -> Option<&'static ResourceSchema>;

/// Why a plan could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The dependency graph is broken.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// No provider declares this resource type.
    #[error("{address}: unknown resource type {type_name:?}")]
    UnknownType {
        /// The resource.
        address: Address,
        /// Its type.
        type_name: String,
    },
    /// The configuration names the same address twice.
    #[error("{0} is declared more than once")]
    DuplicateAddress(Address),
    /// The plan destroys or replaces resources whose block says `prevent_destroy`.
    #[error("{}", refused_message(.0))]
    PreventDestroy(Vec<Refused>),
}

/// A destroy or replacement that `lifecycle { prevent_destroy = true }` forbids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The protected resource.
    pub address: Address,
    /// For a replacement: the attributes forcing it; empty for a destroy.
    pub replace_because: Vec<String>,
}

fn refused_message(refused: &[Refused]) -> String {
    let lines: Vec<String> = refused
        .iter()
        .map(|r| {
            if r.replace_because.is_empty() {
                format!("{} would be destroyed", r.address)
            } else {
                let names: Vec<String> =
                    r.replace_because.iter().map(|a| format!("{a:?}")).collect();
                format!(
                    "{} would be replaced (destroyed and created again), forced by a change of {}",
                    r.address,
                    names.join(", ")
                )
            }
        })
        .collect();
    format!(
        "the plan destroys what `lifecycle {{ prevent_destroy = true }}` protects:\n  {}\nchange the configuration so that it does not, or allow it on purpose with `lifecycle {{ prevent_destroy = false }}` in the block (shared services are protected unless their block says so)",
        lines.join("\n  ")
    )
}

/// Refuses a plan that destroys or replaces a resource whose configuration has
/// `lifecycle { prevent_destroy = true }`. `config` is every resource the configuration
/// declares (also for a destroy, whose desired set is empty). Pure, like [`plan`]; the
/// caller decides which plans it applies to (a read-only drift run applies nothing).
pub fn check_prevent_destroy(plan: &Plan, config: &[DesiredResource]) -> Result<(), PlanError> {
    let protected: BTreeSet<&Address> = config
        .iter()
        .filter(|d| d.lifecycle.prevent_destroy)
        .map(|d| &d.address)
        .collect();
    let refused: Vec<Refused> = plan
        .changes
        .iter()
        .filter(|c| protected.contains(&c.address))
        .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
        // Leaving the state an object that is already gone destroys nothing.
        .filter(|c| {
            !c.note.as_deref().is_some_and(|n| {
                n == FORGET_PENDING_NOTE || n.starts_with("already deleted outside terrace")
            })
        })
        .map(|c| Refused {
            address: c.address.clone(),
            replace_because: if c.action == Action::Replace {
                c.replace_because.clone()
            } else {
                Vec::new()
            },
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(PlanError::PreventDestroy(refused))
    }
}

/// Computes the plan. Pure: the same input always gives the same plan.
///
/// For each resource, the *current* view is the prior state refreshed with what was
/// observed. Differences between prior and observed are reported as [`Drift`];
/// differences between current and desired become the change. Only attributes the
/// configuration sets are compared, so values the server fills in never cause a diff.
pub fn plan(input: PlanInput<'_>) -> Result<Plan, PlanError> {
    let PlanInput {
        desired: desired_list,
        prior: prior_list,
        mut observed,
        schemas,
    } = input;
    // Validate the graph over everything that will exist or be destroyed.
    {
        let mut nodes: BTreeMap<&Address, &[Address]> = BTreeMap::new();
        for p in &prior_list {
            nodes.insert(&p.address, &p.depends_on);
        }
        let mut seen: BTreeSet<&Address> = BTreeSet::new();
        for d in &desired_list {
            if !seen.insert(&d.address) {
                return Err(PlanError::DuplicateAddress(d.address.clone()));
            }
            nodes.insert(&d.address, &d.depends_on);
        }
        ResourceGraph::new(nodes.iter().map(|(a, d)| (*a, *d)))?;
    }
    // Owned and keyed by address: each desired resource takes its prior record out, so
    // what is left at the end is what the configuration no longer has.
    let mut prior: BTreeMap<Address, PriorResource> = prior_list
        .into_iter()
        .map(|p| (p.address.clone(), p))
        .collect();
    let mut desired: Vec<DesiredResource> = desired_list;
    desired.sort_by(|a, b| a.address.cmp(&b.address));
    // Addresses whose old copy a move left (`X (deposed)`).
    let has_deposed: BTreeSet<Address> = prior.keys().filter_map(Address::deposed_of).collect();

    let mut out = Plan::default();
    for d in desired {
        let schema = schema_for(schemas, &d.address, &d.type_name)?;
        let sensitive = schema.sensitive_names(&d.sensitive_attrs);
        let observed_now = observed.remove(&d.address);
        let Some(p) = prior.remove(&d.address) else {
            let mut c = match observed_now {
                Some(Observed::Present(live)) if schema.adopt_existing => {
                    let note = ADOPT_EXISTING_NOTE.to_string();
                    let mut c = create(d, schema, sensitive, Some(note));
                    c.before = Some(live);
                    c
                }
                Some(Observed::Present(live)) => {
                    out.conflicts.push(conflict(&d, schema, &live, &sensitive));
                    continue;
                }
                _ => create(d, schema, sensitive, None),
            };
            display_hints(schema, None, &mut c);
            out.changes.push(c);
            continue;
        };
        if has_deposed.contains(&d.address) {
            let deposed = d.address.deposed();
            let resumed = resume_move(&observed, &d, schema, &p, prior.get(&deposed), &sensitive);
            if let Some(mut c) = resumed {
                // The old copy is taken over by the resumed move: not planned on its own.
                prior.remove(&deposed);
                display_hints(schema, Some(&p.sensitive_attrs), &mut c);
                out.changes.push(c);
                continue;
            }
        }
        if p.pending {
            if let Some(Observed::Present(live)) = &observed_now {
                if let Some(why) = not_the_one_created(schema, &p, Some(&d), live) {
                    let mut c = conflict(&d, schema, live, &sensitive);
                    c.message = format!(
                        "{}, and it is not the one an earlier apply stopped while creating: \
                         {why}. It may be someone else's: rename or remove it and the next apply \
                         creates terrace's own",
                        c.message
                            .trim_end_matches(" but terrace does not manage it")
                    );
                    out.conflicts.push(c);
                    continue;
                }
            }
            let mut c = pending_change(d, schema, &p, observed_now.as_ref(), sensitive);
            display_hints(schema, Some(&p.sensitive_attrs), &mut c);
            out.changes.push(c);
            continue;
        }
        let PriorResource {
            attrs: prior_attrs,
            provider: prior_provider,
            sensitive_attrs: prior_sensitive,
            ..
        } = p;
        let mut drifted_names: BTreeSet<String> = BTreeSet::new();
        let current = match observed_now {
            Some(Observed::Absent) => {
                out.drift.push(Drift {
                    address: d.address.clone(),
                    type_name: d.type_name.clone(),
                    kind: DriftKind::Deleted,
                    sensitive: sensitive.clone(),
                    byte_sizes: byte_sizes(schema),
                });
                let note = DELETED_NOTE.to_string();
                // Computed values (a generated password) are reused for the new object.
                let mut c = create(d, schema, sensitive, Some(note));
                if let Some(after) = c.after.as_mut() {
                    carry_computed(schema, &prior_attrs, after);
                    c.generated = generated(schema, after);
                }
                display_hints(schema, None, &mut c);
                out.changes.push(c);
                continue;
            }
            Some(Observed::Present(live)) => {
                let mut drifted = drift_between(schema, &prior_attrs, &live);
                // `lifecycle { ignore_changes }`: managed by hand, on purpose.
                drifted.retain(|a| !d.lifecycle.ignores(&a.name));
                drifted_names = drifted.iter().map(|a| a.name.clone()).collect();
                if !drifted.is_empty() {
                    out.drift.push(Drift {
                        address: d.address.clone(),
                        type_name: d.type_name.clone(),
                        kind: DriftKind::Changed { attrs: drifted },
                        sensitive: sensitive.clone(),
                        byte_sizes: byte_sizes(schema),
                    });
                }
                refresh(schema, prior_attrs, live)
            }
            // A failed observation is left out of the plan by the caller; if one gets
            // here, the state is all that is known.
            Some(Observed::Failed(_)) | None => prior_attrs,
        };
        let mut change = update_or_replace(d, schema, &prior_provider, current, sensitive);
        // A change that only undoes drift says so: the configuration did not change.
        if change.action == Action::Update
            && change.changed.iter().all(|k| drifted_names.contains(k))
        {
            change.note = Some("changed outside terrace; apply sets it back".to_string());
        }
        // What the update does beyond setting values (a restart), said before apply.
        if change.action == Action::Update {
            let effects: Vec<&str> = change
                .changed
                .iter()
                .filter_map(|k| schema.attr(k).and_then(|a| a.on_update))
                .collect();
            if !effects.is_empty() {
                let effects = effects.join("; ");
                change.note = Some(match change.note.take() {
                    Some(n) => format!("{n}; {effects}"),
                    None => effects,
                });
            }
        }
        display_hints(schema, Some(&prior_sensitive), &mut change);
        out.changes.push(change);
    }

    // What is left of the prior state is what the configuration no longer has.
    for (address, p) in prior {
        let schema = schema_for(schemas, &address, &p.type_name)?;
        let sensitive = schema.sensitive_names(&p.sensitive_attrs);
        let observed_now = observed.remove(&address);
        let pending_foreign = p.pending
            && matches!(&observed_now, Some(Observed::Present(live))
                if not_the_one_created(schema, &p, None, live).is_some());
        let PriorResource {
            type_name,
            provider,
            attrs,
            sensitive_attrs: prior_sensitive,
            depends_on,
            pending,
            ..
        } = p;
        let (before, note) = match observed_now {
            Some(Observed::Absent) if pending => (attrs, Some(FORGET_PENDING_NOTE.to_string())),
            Some(Observed::Present(_)) if pending_foreign => {
                (attrs, Some(FORGET_FOREIGN_NOTE.to_string()))
            }
            Some(Observed::Absent) => {
                out.drift.push(Drift {
                    address: address.clone(),
                    type_name: type_name.clone(),
                    kind: DriftKind::Deleted,
                    sensitive: sensitive.clone(),
                    byte_sizes: byte_sizes(schema),
                });
                (
                    attrs,
                    Some("already deleted outside terrace; it leaves the state".to_string()),
                )
            }
            Some(Observed::Present(live)) => (refresh(schema, attrs, live), None),
            Some(Observed::Failed(_)) | None => (attrs, None),
        };
        let note = note.or_else(|| {
            Some(match address.deposed_of() {
                Some(of) => {
                    format!("the old copy of {of}, which a move replaced; the new one is verified")
                }
                None => NOT_CONFIGURED_NOTE.to_string(),
            })
        });
        let mut c = ResourceChange {
            address,
            type_name,
            provider,
            prior_provider: None,
            action: Action::Delete,
            moves_data: false,
            deletes_data: false,
            keeps_object: false,
            changed: before.keys().cloned().collect(),
            before: Some(before),
            after: None,
            replace_because: Vec::new(),
            generated: Vec::new(),
            sensitive,
            prior_sensitive: BTreeSet::new(),
            byte_sizes: BTreeSet::new(),
            depends_on,
            note,
        };
        display_hints(schema, Some(&prior_sensitive), &mut c);
        out.changes.push(c);
    }
    // What uses an object that moves to another server stops before the move and starts
    // after it (destroyed in the first phase, created once the move is done): left
    // running, it would write to the old copy after it was taken, and those writes
    // would be dropped with it. (A tenant's app uses its database through the user
    // whose password it reads, which moves with the database.)
    let moving: BTreeMap<Address, bool> = out
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace && c.prior_provider.is_some())
        .map(|c| (c.address.clone(), c.moves_data))
        .collect();
    for c in out.changes.iter_mut() {
        let Some((uses, data)) = c
            .depends_on
            .iter()
            .find_map(|d| moving.get(d).map(|data| (d.clone(), *data)))
        else {
            continue;
        };
        if matches!(c.action, Action::NoOp | Action::Update) {
            c.action = Action::Replace;
            c.replace_because.insert(0, USES_MOVED_ATTR.to_string());
            c.changed.insert(0, USES_MOVED_ATTR.to_string());
            let how = if data {
                "with its data"
            } else {
                "to another server"
            };
            let note = format!(
                "it uses {uses}, which moves {how}: it is stopped before the move \
                 and started again after it"
            );
            c.note = Some(match c.note.take() {
                Some(n) => format!("{n}; {note}"),
                None => note,
            });
        }
    }
    for c in out.changes.iter_mut().filter(|c| c.moves_data) {
        let sentence = move_sentence(schemas, c);
        c.note = Some(match c.note.take() {
            Some(n) => format!("{n}; {sentence}"),
            None => sentence,
        });
    }

    out.changes.sort_by(|a, b| a.address.cmp(&b.address));
    out.drift.sort_by(|a, b| a.address.cmp(&b.address));
    out.conflicts.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}

/// The note on a move that an earlier apply began and did not finish.
pub const RESUME_MOVE_NOTE: &str =
    "an earlier apply stopped while moving it: the copy is made again, the old one is still there";

/// A data-carrying object an interrupted apply was moving: the state holds the new
/// object as pending (it may exist, partly restored: it cannot be trusted) and the old
/// one under its deposed address. The move starts again from the old object; a partial
/// copy is dropped first by the executor. `None` when this is not such a case (the old
/// copy is gone, or the configuration moved it back).
fn resume_move(
    observed: &BTreeMap<Address, Observed>,
    d: &DesiredResource,
    schema: &ResourceSchema,
    p: &PriorResource,
    old: Option<&PriorResource>,
    sensitive: &BTreeSet<String>,
) -> Option<ResourceChange> {
    let old = old.filter(|_| p.pending && schema.carries_data)?;
    if old.provider == d.provider {
        return None;
    }
    let before = match observed.get(&old.address) {
        Some(Observed::Absent) => return None,
        Some(Observed::Present(live)) => refresh(schema, old.attrs.clone(), live.clone()),
        Some(Observed::Failed(_)) | None => old.attrs.clone(),
    };
    let mut c = update_or_replace(d.clone(), schema, &old.provider, before, sensitive.clone());
    if let Some(after) = c.after.as_mut() {
        carry_computed(schema, &p.attrs, after);
        c.generated = generated(schema, after);
    }
    c.note = Some(RESUME_MOVE_NOTE.to_string());
    Some(c)
}

/// How a move is worded in the plan: what happens to the data, in order.
fn move_sentence(schemas: Schemas<'_>, c: &ResourceChange) -> String {
    let what = schemas(&c.type_name).map_or("object", |s| s.description);
    let name = c
        .before
        .as_ref()
        .and_then(|b| b.get("name"))
        .and_then(Value::as_str)
        .filter(|_| !c.sensitive.contains("name"))
        .map(|n| format!(" {n}"))
        .unwrap_or_default();
    let from = c.prior_provider.as_ref().unwrap_or(&c.provider);
    format!(
        "{what}{name} moves from {from} to {}: copied, created there, restored and verified, \
         then dropped here (the copy is kept)",
        c.provider
    )
}

/// Why a live object found under a pending address is not the one the interrupted apply
/// created, if its ownership attributes say so. An attribute the provider could not read
/// (a password an admin without rights cannot check) proves nothing either way: the
/// object is adopted, as before markers existed.
fn not_the_one_created(
    schema: &ResourceSchema,
    p: &PriorResource,
    d: Option<&DesiredResource>,
    live: &Attrs,
) -> Option<String> {
    schema.attrs.iter().find_map(|a| {
        let mismatch = a.proves_ownership?;
        let recorded = p
            .attrs
            .get(a.name)
            .or_else(|| d.and_then(|d| d.attrs.get(a.name)))
            .filter(|v| !v.is_null())?;
        let found = live.get(a.name).filter(|v| !v.is_null())?;
        // The provider's sentence says it all; the values themselves may be worded for
        // drift ("changed outside terrace"), which would mislead here.
        (recorded != found).then(|| mismatch.to_string())
    })
}

/// The change for a desired resource that an interrupted apply was creating.
fn pending_change(
    d: DesiredResource,
    schema: &ResourceSchema,
    p: &PriorResource,
    observed: Option<&Observed>,
    sensitive: BTreeSet<String>,
) -> ResourceChange {
    let live = match observed {
        Some(Observed::Present(live)) => live,
        // Not there (or not observed): create it, with the values recorded for it.
        _ => {
            let mut c = create(d, schema, sensitive, Some(CREATE_PENDING_NOTE.to_string()));
            if let Some(after) = c.after.as_mut() {
                carry_computed(schema, &p.attrs, after);
                c.generated = generated(schema, after);
            }
            return c;
        }
    };
    let current = refresh(schema, p.attrs.clone(), live.clone());
    let mut c = update_or_replace(d, schema, &p.provider, current, sensitive);
    if c.action == Action::Replace {
        c.note = Some("an earlier apply stopped while creating it".to_string());
        return c;
    }
    // What cannot be read back (a password) may not be what the interrupted create set
    // (it may have stopped before setting it): set it again, to the recorded value.
    let after = c.after.as_ref().expect("update_or_replace sets after");
    for a in schema
        .attrs
        .iter()
        .filter(|a| !a.observable && !a.force_new)
    {
        if after.get(a.name).is_some_and(|v| !v.is_null()) && !c.changed.iter().any(|k| k == a.name)
        {
            c.changed.push(a.name.to_string());
        }
    }
    if !c.changed.is_empty() {
        c.action = Action::Update;
    }
    c.note = Some(ADOPT_PENDING_NOTE.to_string());
    c
}

/// What renderers need beyond the values, from the schema and the state: which
/// attributes are byte sizes, and what the state recorded as secret when that differs
/// from the configuration (the values on their way out are shown under both).
/// `recorded` is what the state recorded as sensitive, when there is a record.
fn display_hints(
    schema: &ResourceSchema,
    recorded: Option<&BTreeSet<String>>,
    c: &mut ResourceChange,
) {
    c.byte_sizes = byte_sizes(schema);
    c.keeps_object = schema.delete_keeps_object;
    c.deletes_data = schema.carries_data
        || schema
            .drops_data_if
            .zip(c.before.as_ref())
            .is_some_and(|(flag, b)| b.get(flag).and_then(|v| v.as_bool()) == Some(true));
    if let (Some(recorded), Some(_)) = (recorded, &c.before) {
        let recorded = schema.sensitive_names(recorded);
        if recorded != c.sensitive {
            c.prior_sensitive = recorded;
        }
    }
}

/// The attributes of `schema` that are byte sizes.
fn byte_sizes(schema: &ResourceSchema) -> BTreeSet<String> {
    schema
        .attrs
        .iter()
        .filter(|a| a.byte_size)
        .map(|a| a.name.to_string())
        .collect()
}

fn schema_for(
    schemas: Schemas<'_>,
    address: &Address,
    type_name: &str,
) -> Result<&'static ResourceSchema, PlanError> {
    schemas(type_name).ok_or_else(|| PlanError::UnknownType {
        address: address.clone(),
        type_name: type_name.to_string(),
    })
}

fn create(
    d: DesiredResource,
    schema: &ResourceSchema,
    sensitive: BTreeSet<String>,
    note: Option<String>,
) -> ResourceChange {
    ResourceChange {
        generated: generated(schema, &d.attrs),
        changed: d.attrs.keys().cloned().collect(),
        address: d.address,
        type_name: d.type_name,
        provider: d.provider,
        prior_provider: None,
        action: Action::Create,
        moves_data: false,
        deletes_data: false,
        keeps_object: false,
        before: None,
        after: Some(d.attrs),
        replace_because: Vec::new(),
        sensitive,
        prior_sensitive: BTreeSet::new(),
        byte_sizes: BTreeSet::new(),
        depends_on: d.depends_on,
        note,
    }
}

fn conflict(
    d: &DesiredResource,
    schema: &ResourceSchema,
    live: &Attrs,
    sensitive: &BTreeSet<String>,
) -> Conflict {
    // The live object's identity is the desired one: that is how it was found. When
    // that identity is sensitive, neither the name nor the ID may be shown.
    let secret_identity =
        schema.import_id.iter().any(|k| sensitive.contains(*k)) || sensitive.contains("name");
    let id = if secret_identity {
        crate::model::REDACTED.to_string()
    } else {
        schema.import_id_for(&d.attrs)
    };
    let name = live
        .get("name")
        .and_then(Value::as_str)
        .filter(|_| !secret_identity)
        .map(|n| format!(" named {n:?}"))
        .unwrap_or_default();
    Conflict {
        address: d.address.clone(),
        type_name: d.type_name.clone(),
        import_id: id,
        message: format!(
            "a {}{name} already exists on {} but terrace does not manage it",
            schema.description, d.provider
        ),
        hint: None,
    }
}

/// The prior attributes, with every observable attribute replaced by its live value.
/// Unobservable ones (password hashes) keep the recorded value.
fn refresh(schema: &ResourceSchema, prior: Attrs, live: Attrs) -> Attrs {
    let mut current = prior;
    for (k, v) in live {
        let observable = schema.attr(&k).is_none_or(|a| a.observable);
        if observable {
            current.insert(k, v);
        }
    }
    current
}

/// Observable attributes recorded in state whose live value differs.
fn drift_between(schema: &ResourceSchema, prior: &Attrs, live: &Attrs) -> Vec<AttrDiff> {
    prior
        .iter()
        .filter(|(k, _)| schema.attr(k).is_none_or(|a| a.observable))
        .filter_map(|(k, before)| {
            let after = live.get(k)?;
            (!values_equal(before, after)).then(|| AttrDiff {
                name: k.clone(),
                before: Some(before.clone()),
                after: Some(after.clone()),
            })
        })
        .collect()
}

/// Computed attributes that neither config nor state provides: the provider makes them.
fn generated(schema: &ResourceSchema, after: &Attrs) -> Vec<String> {
    schema
        .attrs
        .iter()
        .filter(|a| a.computed && !after.contains_key(a.name))
        .map(|a| a.name.to_string())
        .collect()
}

/// Computed attributes the configuration leaves unset keep their current value.
fn carry_computed(schema: &ResourceSchema, current: &Attrs, after: &mut Attrs) {
    for a in schema.attrs.iter().filter(|a| a.computed) {
        if !after.contains_key(a.name) {
            if let Some(v) = current.get(a.name) {
                after.insert(a.name.to_string(), v.clone());
            }
        }
    }
}

/// The note on a change that re-creates an object deleted outside terrace.
pub const DELETED_NOTE: &str = "it was deleted outside terrace";

/// The pseudo-attribute in `replace_because` of a resource replaced because something it
/// depends on moves to another server (it must not run while the data is copied).
pub const USES_MOVED_ATTR: &str = "(uses what moves)";

/// The pseudo-attribute naming a move to another provider instance (service) in
/// `changed` and `replace_because`.
pub const PROVIDER_ATTR: &str = "(service)";

fn update_or_replace(
    d: DesiredResource,
    schema: &ResourceSchema,
    prior_provider: &ProviderKey,
    current: Attrs,
    sensitive: BTreeSet<String>,
) -> ResourceChange {
    let mut changed: Vec<String> = d
        .attrs
        .iter()
        .filter(|(k, _)| !d.lifecycle.ignores(k))
        .filter(|(k, v)| current.get(*k).is_none_or(|c| !values_equal(c, v)))
        .map(|(k, _)| k.clone())
        .collect();
    let DesiredResource {
        address,
        type_name,
        provider,
        attrs: mut after,
        depends_on,
        lifecycle,
        ..
    } = d;
    carry_computed(schema, &current, &mut after);
    // An ignored attribute keeps its current value: apply neither sets it back nor
    // replaces the object for it.
    for k in &lifecycle.ignore_changes {
        match current.get(k) {
            Some(v) => after.insert(k.clone(), v.clone()),
            None => after.remove(k),
        };
    }
    let mut replace_because: Vec<String> = changed
        .iter()
        .filter(|k| schema.attr(k).is_some_and(|a| a.force_new))
        .cloned()
        .collect();
    // An object cannot move between servers in place: it is destroyed on the old one
    // and created on the new one.
    let moved = &provider != prior_provider;
    if moved {
        changed.insert(0, PROVIDER_ATTR.to_string());
        replace_because.insert(0, PROVIDER_ATTR.to_string());
    }
    let generated = generated(schema, &after);
    let action = if changed.is_empty() {
        Action::NoOp
    } else if replace_because.is_empty() {
        Action::Update
    } else {
        Action::Replace
    };
    ResourceChange {
        address,
        type_name,
        provider,
        prior_provider: moved.then(|| prior_provider.clone()),
        action,
        moves_data: moved && schema.carries_data,
        deletes_data: false,
        keeps_object: false,
        before: Some(current),
        after: Some(after),
        changed,
        replace_because,
        generated,
        sensitive,
        prior_sensitive: BTreeSet::new(),
        byte_sizes: BTreeSet::new(),
        depends_on,
        note: None,
    }
}

/// Equality that ignores representation details JSON exposes but users do not mean:
/// `50` and `50.0` are the same number.
fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| values_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}
