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

/// The note on the delete of a resource the configuration no longer declares.
pub const NOT_IN_CONFIG_NOTE: &str = "it is no longer in the configuration";

/// Everything the planner looks at.
#[derive(Clone, Copy)]
pub struct PlanInput<'a> {
    /// What the configuration wants.
    pub desired: &'a [DesiredResource],
    /// What the state file says exists.
    pub prior: &'a [PriorResource],
    /// What providers found live. A missing address means "not observed": the planner
    /// then trusts the prior state for it.
    pub observed: &'a BTreeMap<Address, Observed>,
    /// The schema of every resource type that appears in `desired` or `prior`.
    pub schemas: &'a dyn Fn(&str) -> Option<&'static ResourceSchema>,
}

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
        "the plan destroys what `lifecycle {{ prevent_destroy = true }}` protects:\n  {}\nchange the configuration so that it does not (or remove prevent_destroy first, on purpose)",
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
    let prior: BTreeMap<&Address, &PriorResource> =
        input.prior.iter().map(|p| (&p.address, p)).collect();
    let mut desired: BTreeMap<&Address, &DesiredResource> = BTreeMap::new();
    for d in input.desired {
        if desired.insert(&d.address, d).is_some() {
            return Err(PlanError::DuplicateAddress(d.address.clone()));
        }
    }

    // Validate the graph over everything that will exist or be destroyed.
    let mut nodes: BTreeMap<&Address, &[Address]> = BTreeMap::new();
    for p in input.prior {
        nodes.insert(&p.address, &p.depends_on);
    }
    for d in input.desired {
        nodes.insert(&d.address, &d.depends_on);
    }
    ResourceGraph::new(nodes.iter().map(|(a, d)| (*a, *d)))?;

    let mut out = Plan::default();
    for (address, d) in &desired {
        let schema = schema_for(&input, address, &d.type_name)?;
        let sensitive = schema.sensitive_names(&d.sensitive_attrs);
        let observed = input.observed.get(*address);
        let Some(p) = prior.get(address) else {
            if let Some(Observed::Present(live)) = observed {
                if schema.adopt_existing {
                    let note = ADOPT_EXISTING_NOTE.to_string();
                    let mut c = create(d, schema, sensitive, Some(note));
                    c.before = Some(live.clone());
                    out.changes.push(c);
                } else {
                    out.conflicts.push(conflict(d, schema, live, &sensitive));
                }
            } else {
                out.changes.push(create(d, schema, sensitive, None));
            }
            continue;
        };
        if p.pending {
            out.changes
                .push(pending_change(d, schema, p, observed, sensitive));
            continue;
        }
        let mut drifted_names: BTreeSet<String> = BTreeSet::new();
        let current = match observed {
            Some(Observed::Absent) => {
                out.drift.push(Drift {
                    address: d.address.clone(),
                    type_name: d.type_name.clone(),
                    kind: DriftKind::Deleted,
                    sensitive: sensitive.clone(),
                });
                let note = DELETED_NOTE.to_string();
                // Computed values (a generated password) are reused for the new object.
                let mut c = create(d, schema, sensitive, Some(note));
                if let Some(after) = c.after.as_mut() {
                    carry_computed(schema, &p.attrs, after);
                    c.generated = generated(schema, after);
                }
                out.changes.push(c);
                continue;
            }
            Some(Observed::Present(live)) => {
                let mut drifted = drift_between(schema, &p.attrs, live);
                // `lifecycle { ignore_changes }`: managed by hand, on purpose.
                drifted.retain(|a| !d.lifecycle.ignores(&a.name));
                drifted_names = drifted.iter().map(|a| a.name.clone()).collect();
                if !drifted.is_empty() {
                    out.drift.push(Drift {
                        address: d.address.clone(),
                        type_name: d.type_name.clone(),
                        kind: DriftKind::Changed { attrs: drifted },
                        sensitive: sensitive.clone(),
                    });
                }
                refresh(schema, &p.attrs, live)
            }
            // A failed observation is left out of the plan by the caller; if one gets
            // here, the state is all that is known.
            Some(Observed::Failed(_)) | None => p.attrs.clone(),
        };
        let mut change = update_or_replace(d, schema, &p.provider, current, sensitive);
        // A change that only undoes drift says so: the configuration did not change.
        if change.action == Action::Update
            && change.changed.iter().all(|k| drifted_names.contains(k))
        {
            change.note = Some("changed outside terrace; apply sets it back".to_string());
        }
        out.changes.push(change);
    }

    for (address, p) in &prior {
        if desired.contains_key(address) {
            continue;
        }
        let schema = schema_for(&input, address, &p.type_name)?;
        let sensitive = schema.sensitive_names(&p.sensitive_attrs);
        let (before, note) = match input.observed.get(*address) {
            Some(Observed::Absent) if p.pending => {
                (p.attrs.clone(), Some(FORGET_PENDING_NOTE.to_string()))
            }
            Some(Observed::Absent) => {
                out.drift.push(Drift {
                    address: p.address.clone(),
                    type_name: p.type_name.clone(),
                    kind: DriftKind::Deleted,
                    sensitive: sensitive.clone(),
                });
                (
                    p.attrs.clone(),
                    Some("already deleted outside terrace; it leaves the state".to_string()),
                )
            }
            Some(Observed::Present(live)) => (refresh(schema, &p.attrs, live), None),
            Some(Observed::Failed(_)) | None => (p.attrs.clone(), None),
        };
        out.changes.push(ResourceChange {
            address: p.address.clone(),
            type_name: p.type_name.clone(),
            provider: p.provider.clone(),
            prior_provider: None,
            action: Action::Delete,
            changed: before.keys().cloned().collect(),
            before: Some(before),
            after: None,
            replace_because: Vec::new(),
            generated: Vec::new(),
            sensitive,
            depends_on: p.depends_on.clone(),
            note: note.or_else(|| Some(NOT_IN_CONFIG_NOTE.to_string())),
        });
    }

    out.changes.sort_by(|a, b| a.address.cmp(&b.address));
    out.drift.sort_by(|a, b| a.address.cmp(&b.address));
    out.conflicts.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}

/// The change for a desired resource that an interrupted apply was creating.
fn pending_change(
    d: &DesiredResource,
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
    let current = refresh(schema, &p.attrs, live);
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

fn schema_for(
    input: &PlanInput<'_>,
    address: &Address,
    type_name: &str,
) -> Result<&'static ResourceSchema, PlanError> {
    (input.schemas)(type_name).ok_or_else(|| PlanError::UnknownType {
        address: address.clone(),
        type_name: type_name.to_string(),
    })
}

fn create(
    d: &DesiredResource,
    schema: &ResourceSchema,
    sensitive: BTreeSet<String>,
    note: Option<String>,
) -> ResourceChange {
    ResourceChange {
        generated: generated(schema, &d.attrs),
        address: d.address.clone(),
        type_name: d.type_name.clone(),
        provider: d.provider.clone(),
        prior_provider: None,
        action: Action::Create,
        before: None,
        after: Some(d.attrs.clone()),
        changed: d.attrs.keys().cloned().collect(),
        replace_because: Vec::new(),
        sensitive,
        depends_on: d.depends_on.clone(),
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
fn refresh(schema: &ResourceSchema, prior: &Attrs, live: &Attrs) -> Attrs {
    let mut current = prior.clone();
    for (k, v) in live {
        let observable = schema.attr(k).is_none_or(|a| a.observable);
        if observable {
            current.insert(k.clone(), v.clone());
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

/// The pseudo-attribute naming a move to another provider instance (service) in
/// `changed` and `replace_because`.
pub const PROVIDER_ATTR: &str = "(service)";

fn update_or_replace(
    d: &DesiredResource,
    schema: &ResourceSchema,
    prior_provider: &ProviderKey,
    current: Attrs,
    sensitive: BTreeSet<String>,
) -> ResourceChange {
    let mut after = d.attrs.clone();
    carry_computed(schema, &current, &mut after);
    // An ignored attribute keeps its current value: apply neither sets it back nor
    // replaces the object for it.
    for k in &d.lifecycle.ignore_changes {
        match current.get(k) {
            Some(v) => after.insert(k.clone(), v.clone()),
            None => after.remove(k),
        };
    }
    let mut changed: Vec<String> = d
        .attrs
        .iter()
        .filter(|(k, _)| !d.lifecycle.ignores(k))
        .filter(|(k, v)| current.get(*k).is_none_or(|c| !values_equal(c, v)))
        .map(|(k, _)| k.clone())
        .collect();
    let mut replace_because: Vec<String> = changed
        .iter()
        .filter(|k| schema.attr(k).is_some_and(|a| a.force_new))
        .cloned()
        .collect();
    // An object cannot move between servers in place: it is destroyed on the old one
    // and created on the new one.
    let moved = &d.provider != prior_provider;
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
        address: d.address.clone(),
        type_name: d.type_name.clone(),
        provider: d.provider.clone(),
        prior_provider: moved.then(|| prior_provider.clone()),
        action,
        before: Some(current),
        after: Some(after),
        changed,
        replace_because,
        generated,
        sensitive,
        depends_on: d.depends_on.clone(),
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
