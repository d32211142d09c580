//! The plan: what will change, what drifted, and what blocks an apply.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use terrace_provider::{Address, Attrs, ProviderKey, Value};

/// What the planner decided for one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Already as desired.
    NoOp,
    /// Create a new object.
    Create,
    /// Change attributes in place.
    Update,
    /// Destroy and create again, because an attribute that cannot change in place did.
    Replace,
    /// Destroy the object: it is no longer in the configuration.
    Delete,
}

impl Action {
    /// Terraform's JSON `actions` list for this action.
    pub fn json_actions(self) -> &'static [&'static str] {
        match self {
            Action::NoOp => &["no-op"],
            Action::Create => &["create"],
            Action::Update => &["update"],
            Action::Replace => &["delete", "create"],
            Action::Delete => &["delete"],
        }
    }
}

/// The planned change for one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    /// Resource address.
    pub address: Address,
    /// Resource type.
    pub type_name: String,
    /// Provider instance that performs it.
    pub provider: ProviderKey,
    /// The provider that manages the existing object, when it differs from `provider`
    /// (the resource moves to another service): destroys go through it.
    pub prior_provider: Option<ProviderKey>,
    /// What happens.
    pub action: Action,
    /// A [`Action::Replace`] that moves the object's data to its new provider (the
    /// type carries data, [`terrace_provider::ResourceSchema::carries_data`]): the old
    /// object is copied, the new one created and restored from the copy and verified,
    /// and only then is the old one dropped (with its usual safeguard).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moves_data: bool,
    /// Destroying the object deletes data: its type carries data
    /// ([`terrace_provider::ResourceSchema::carries_data`]), or this object was told to
    /// take data with it ([`terrace_provider::ResourceSchema::drops_data_if`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletes_data: bool,
    /// Deleting it only stops managing it: the object stays on the system
    /// ([`terrace_provider::ResourceSchema::delete_keeps_object`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keeps_object: bool,
    /// The object as it is now (prior state refreshed by observation), if it exists.
    pub before: Option<Attrs>,
    /// The object as it will be, if it will exist. Computed attributes that the provider
    /// fills in during apply are absent.
    pub after: Option<Attrs>,
    /// Attributes whose value differs between `before` and `after`.
    pub changed: Vec<String>,
    /// For a replace: the attributes that forced it.
    pub replace_because: Vec<String>,
    /// Attributes the provider fills in during apply (a generated password).
    pub generated: Vec<String>,
    /// Attributes never to show (the configuration's view: what apply records). A map
    /// attribute whose secrets are known key by key also lists them, `env["PW"]`
    /// ([`terrace_provider::secret_keys`]): only those values are hidden.
    pub sensitive: BTreeSet<String>,
    /// What the state recorded as sensitive for the object as it is now, when it may
    /// differ from `sensitive` (an update): `before` values are hidden if either set says
    /// so, so a value that was secret is never shown on its way out.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub prior_sensitive: BTreeSet<String>,
    /// Attributes holding a number of bytes (a memory limit), shown as `512m`.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub byte_sizes: BTreeSet<String>,
    /// Resources this one depends on.
    pub depends_on: Vec<Address>,
    /// Why this change exists when config alone does not say (e.g. drift).
    pub note: Option<String>,
}

/// One attribute's value before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttrDiff {
    /// Attribute name.
    pub name: String,
    /// Old value (None if absent).
    pub before: Option<Value>,
    /// New value (None if absent).
    pub after: Option<Value>,
}

/// How an object drifted away from what the state recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DriftKind {
    /// The object no longer exists.
    Deleted,
    /// Some observable attributes differ from state.
    Changed {
        /// The differences, state value as `before`, live value as `after`.
        attrs: Vec<AttrDiff>,
    },
}

/// A change made outside terrace, kept apart from changes the configuration asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Resource address.
    pub address: Address,
    /// Resource type.
    pub type_name: String,
    /// What changed.
    pub kind: DriftKind,
    /// Attributes never to show.
    pub sensitive: BTreeSet<String>,
    /// Attributes that are byte sizes: shown as the configuration writes them (`"1g"`),
    /// as the plan's changes show them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub byte_sizes: BTreeSet<String>,
}

/// An object that exists on the live system but is not in state: creating it would
/// fail or clobber someone else's data, so apply refuses until it is imported or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// The address the configuration wants for it.
    pub address: Address,
    /// Resource type.
    pub type_name: String,
    /// The provider-specific ID to pass to `terrace import`.
    pub import_id: String,
    /// What exists.
    pub message: String,
    /// What to do about it, when `terrace import` is not the answer (a port another
    /// container holds); `None`: import it or remove it from the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// Data a destroy step saves before it destroys the object (a database dump, a copy
/// of a volume's files), as its provider announced it at plan time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSafeguard {
    /// The resource being destroyed (deleted or replaced).
    pub address: Address,
    /// What is taken and where it goes.
    #[serde(flatten)]
    pub safeguard: terrace_provider::Safeguard,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Objects to create (replacements count here too).
    pub add: usize,
    /// Objects to change in place.
    pub change: usize,
    /// Objects to destroy (replacements count here too).
    pub destroy: usize,
}

/// The output of the planner: everything `plan` prints and `apply` executes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// One entry per resource in config or state, sorted by address; no-ops included.
    pub changes: Vec<ResourceChange>,
    /// Changes made outside terrace, sorted by address.
    pub drift: Vec<Drift>,
    /// Objects that block an apply.
    pub conflicts: Vec<Conflict>,
    /// What destroy steps save first, sorted by address (filled in after planning,
    /// from the providers: the planner itself does no I/O).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safeguards: Vec<PlannedSafeguard>,
    /// What the providers could not verify (e.g. password hashes the admin may not
    /// read): the plan lists it and never claims that everything matches.
    #[serde(default)]
    pub unverified: Vec<String>,
    /// Objects recorded under a new address (`moved` blocks): nothing changes on any
    /// server, the state follows the configuration. Filled in by the caller, which
    /// renames them in the state before planning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<Moved>,
    /// Instances that expired (their resources are destroyed and not created again
    /// while the configuration lists them) or expire within the plan's horizon; filled
    /// in by [`crate::expiry::annotate`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expiry: Vec<crate::expiry::InstanceExpiry>,
}

/// A recorded object that a `moved` block gives a new address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// The address it was recorded under.
    pub from: Address,
    /// Its address from now on.
    pub to: Address,
}

impl Plan {
    /// The changes that do something.
    pub fn actionable(&self) -> impl Iterator<Item = &ResourceChange> {
        self.changes.iter().filter(|c| c.action != Action::NoOp)
    }

    /// True when applying would change nothing (not even an address in the state) and
    /// nothing blocks it.
    pub fn is_empty(&self) -> bool {
        self.actionable().next().is_none() && self.conflicts.is_empty() && self.moved.is_empty()
    }

    /// Counts for the `Plan: X to add, Y to change, Z to destroy.` line.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::NoOp => {}
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
                // A record that only leaves the state destroys nothing.
                Action::Delete if crate::only_leaves_state(c) => {}
                Action::Delete => s.destroy += 1,
            }
        }
        s
    }

    /// What the destroy of `address` saves first, if anything.
    pub fn safeguard(&self, address: &Address) -> Option<&terrace_provider::Safeguard> {
        self.safeguards
            .iter()
            .find(|s| &s.address == address)
            .map(|s| &s.safeguard)
    }

    /// Looks up the change for `address`.
    pub fn change(&self, address: &Address) -> Option<&ResourceChange> {
        self.changes.iter().find(|c| &c.address == address)
    }
}

pub use terrace_provider::REDACTED;

/// Replaces the values of `sensitive` attributes with [`REDACTED`]: the whole value, or,
/// for a map whose secrets are listed key by key, the value of each such key.
pub fn redact_attrs(attrs: &mut Attrs, sensitive: &BTreeSet<String>) {
    for (k, v) in attrs.iter_mut() {
        match terrace_provider::secret_keys(sensitive, k) {
            None => {}
            Some(Some(keys)) if v.is_object() => {
                let map = v.as_object_mut().expect("checked");
                for (key, x) in map.iter_mut() {
                    if keys.contains(key) {
                        *x = Value::String(REDACTED.to_string());
                    }
                }
            }
            Some(_) => *v = Value::String(REDACTED.to_string()),
        }
    }
}

/// The sensitivity `before` values are shown with: secret if `sensitive` or `prior` says
/// so, attribute by attribute, a whole secret attribute in either staying whole.
pub(crate) fn before_sensitive(
    sensitive: &BTreeSet<String>,
    prior: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut out = sensitive.clone();
    let attrs: BTreeSet<&String> = prior
        .iter()
        .filter(|e| terrace_provider::parse_sensitive_key_entry(e).is_none())
        .collect();
    for attr in attrs {
        match terrace_provider::secret_keys(prior, attr) {
            Some(Some(keys)) => {
                for k in keys {
                    terrace_provider::mark_key_sensitive(&mut out, attr, &k);
                }
            }
            _ => terrace_provider::mark_sensitive(&mut out, attr),
        }
    }
    out
}

impl Plan {
    /// A copy with every sensitive value replaced by [`REDACTED`]: the only form of a
    /// plan that may be printed, serialised or saved.
    pub fn redacted(&self) -> Plan {
        self.redacted_keeping(|_| true)
    }

    /// [`Plan::redacted`] with only the changes `keep` accepts: the text renderer skips
    /// no-op changes, and copying 30,000 of them was most of rendering a no-change plan.
    pub fn redacted_keeping(&self, keep: impl Fn(&ResourceChange) -> bool) -> Plan {
        let mut p = Plan {
            changes: self.changes.iter().filter(|c| keep(c)).cloned().collect(),
            drift: self.drift.clone(),
            conflicts: self.conflicts.clone(),
            safeguards: self.safeguards.clone(),
            unverified: self.unverified.clone(),
            moved: self.moved.clone(),
            expiry: self.expiry.clone(),
        };
        for c in &mut p.changes {
            if let Some(before) = c.before.as_mut() {
                redact_attrs(before, &before_sensitive(&c.sensitive, &c.prior_sensitive));
            }
            if let Some(after) = c.after.as_mut() {
                redact_attrs(after, &c.sensitive);
            }
        }
        // A copy's file name holds the object's name: masked where the name is secret.
        // (Looked up by address once: a scan per safeguard was quadratic in a destroy.)
        let by_address: std::collections::HashMap<&Address, &ResourceChange> =
            self.changes.iter().map(|c| (&c.address, c)).collect();
        for g in &mut p.safeguards {
            let original = by_address.get(&g.address).copied();
            let secret_name = original.and_then(|c| {
                let name = c.before.as_ref()?.get("name")?.as_str()?;
                c.sensitive.contains("name").then(|| name.to_string())
            });
            if let Some(name) = secret_name.filter(|n| !n.is_empty()) {
                g.safeguard.destination = g.safeguard.destination.replace(&name, REDACTED);
            }
        }
        for d in &mut p.drift {
            if let DriftKind::Changed { attrs } = &mut d.kind {
                for a in attrs.iter_mut().filter(|a| d.sensitive.contains(&a.name)) {
                    for v in [a.before.as_mut(), a.after.as_mut()].into_iter().flatten() {
                        *v = Value::String(REDACTED.to_string());
                    }
                }
            }
        }
        p
    }
}
