//! terrace's resource model and the provider trait.
//!
//! Every layer of terrace speaks in the types defined here:
//!
//! - the config crate *lowers* HCL into [`DesiredResource`]s;
//! - the state crate stores [`Attrs`] per [`Address`];
//! - providers [`observe`](Provider::observe) live objects in one batch per server and
//!   [`apply`](Provider::apply) one [`Step`] at a time;
//! - the planner compares desired, prior and observed attributes using each type's
//!   [`ResourceSchema`].
//!
//! This crate does no I/O and has no opinion on any particular backend.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub mod refs;

/// Attribute values are JSON values: they come from HCL, are stored in the state file
/// as JSON and rendered in `--json` output unchanged.
pub type Value = serde_json::Value;

/// A resource's attributes, ordered by name so that output and state are deterministic.
pub type Attrs = BTreeMap<String, Value>;

/// The unique, human-readable name of one resource instance, such as
/// `tenant.app["calibre_web"].database` or `database.reports.user`.
///
/// Addresses are what users type in `terrace state show ADDR` and `terrace import ADDR ID`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(pub String);

impl Address {
    /// Wraps an address string.
    pub fn new(s: impl Into<String>) -> Self {
        Address(s.into())
    }

    /// The address as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names the provider instance that owns a resource, e.g. `service.pg`.
///
/// One provider instance exists per key; for SQL that is one per database server, so a
/// batched observe covers exactly one server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderKey(pub String);

impl fmt::Display for ProviderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the planner must treat one attribute of a resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrSchema {
    /// Attribute name, e.g. `connection_limit`.
    pub name: &'static str,
    /// A change cannot be made in place: the object is destroyed and created again.
    pub force_new: bool,
    /// Never shown in plans, JSON or logs.
    pub sensitive: bool,
    /// The provider fills it in when the user leaves it unset (e.g. a generated password).
    pub computed: bool,
    /// The provider can read it back from the live system; attributes that cannot be
    /// observed (password hashes) are never reported as drift.
    pub observable: bool,
}

impl AttrSchema {
    /// A plain attribute that can be changed in place and read back.
    pub const fn plain(name: &'static str) -> Self {
        AttrSchema {
            name,
            force_new: false,
            sensitive: false,
            computed: false,
            observable: true,
        }
    }

    /// Marks the attribute as forcing replacement when it changes.
    pub const fn force_new(mut self) -> Self {
        self.force_new = true;
        self
    }

    /// Marks the attribute as sensitive.
    pub const fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// Marks the attribute as computed by the provider when unset.
    pub const fn computed(mut self) -> Self {
        self.computed = true;
        self
    }

    /// Marks the attribute as impossible to read back from the live system.
    pub const fn unobservable(mut self) -> Self {
        self.observable = false;
        self
    }
}

/// The schema of one resource type, declared by the provider that implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceSchema {
    /// Resource type name, e.g. `sql_database`.
    pub type_name: &'static str,
    /// What the user sees in plans, e.g. `database`.
    pub description: &'static str,
    /// Attributes whose values, joined with `/`, form the ID `terrace import` takes.
    pub import_id: &'static [&'static str],
    /// An existing object that terrace does not manage yet is adopted by the next apply
    /// (whose create is idempotent for this type) instead of being reported as a
    /// conflict: right for things that usually exist already, such as an installed
    /// package or a local image, and wrong for data such as a database.
    pub adopt_existing: bool,
    /// Every attribute the type knows.
    pub attrs: &'static [AttrSchema],
}

impl ResourceSchema {
    /// Looks up one attribute.
    pub fn attr(&self, name: &str) -> Option<&AttrSchema> {
        self.attrs.iter().find(|a| a.name == name)
    }

    /// The attributes never to show for a resource of this type: those the schema marks
    /// sensitive, plus `extra` (those whose value came from something sensitive).
    pub fn sensitive_names<'a>(
        &self,
        extra: impl IntoIterator<Item = &'a String>,
    ) -> BTreeSet<String> {
        self.attrs
            .iter()
            .filter(|a| a.sensitive)
            .map(|a| a.name.to_string())
            .chain(extra.into_iter().cloned())
            .collect()
    }

    /// The ID `terrace import` takes for an object with these attributes, e.g. `app/app`
    /// for a grant identified by `["user", "database"]`.
    pub fn import_id_for(&self, attrs: &Attrs) -> String {
        self.import_id
            .iter()
            .map(|k| match attrs.get(*k) {
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// One resource instance as the configuration wants it, after evaluation and lowering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredResource {
    /// Unique address.
    pub address: Address,
    /// Resource type, e.g. `sql_user`.
    pub type_name: String,
    /// Provider instance responsible for it.
    pub provider: ProviderKey,
    /// Attributes the user set (or lowering defaulted). Unset attributes are absent, and
    /// the planner compares only what is present here.
    pub attrs: Attrs,
    /// Attributes whose value came from something sensitive (a `sensitive` variable),
    /// in addition to those the schema marks sensitive.
    pub sensitive_attrs: BTreeSet<String>,
    /// Resources this one must be created after (and destroyed before).
    pub depends_on: Vec<Address>,
}

/// What a provider needs to find one resource on the live system: its type and the
/// attributes that identify it (from the desired config, or from state if it is being
/// deleted).
#[derive(Debug, Clone, PartialEq)]
pub struct ObserveRequest {
    /// The resource's address, echoed back for error messages.
    pub address: Address,
    /// Resource type.
    pub type_name: String,
    /// Attributes to identify the object (for SQL: names).
    pub attrs: Attrs,
}

/// What a provider found for one [`ObserveRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "attrs", rename_all = "snake_case")]
pub enum Observed {
    /// The object exists; these are its observable attributes, normalised to the same
    /// form the configuration uses.
    Present(Attrs),
    /// No such object.
    Absent,
    /// This one object could not be observed (a managed file replaced by a directory,
    /// an unreadable file): an error for this resource alone, with the reason. The rest
    /// of the batch is answered as usual; the resource, and what depends on it, is left
    /// out of the plan instead of the whole server.
    Failed(String),
}

/// The operation a [`Step`] asks a provider to perform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Create the object from `desired`.
    Create,
    /// Change `changed` attributes in place from `prior` to `desired`.
    Update,
    /// Remove the object described by `prior`.
    Delete,
}

/// One unit of work handed to a provider by the apply executor.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Resource address.
    pub address: Address,
    /// Resource type.
    pub type_name: String,
    /// What to do.
    pub operation: Operation,
    /// Attributes recorded in state before this step (None for a create).
    pub prior: Option<Attrs>,
    /// Desired attributes (None for a delete).
    pub desired: Option<Attrs>,
    /// For an update: the attributes that differ.
    pub changed: Vec<String>,
}

/// What a provider does to keep an object's data before it destroys it (a database
/// dump, a copy of a volume's files), so that the plan can say so before anything
/// happens. Returned by [`Provider::safeguard`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safeguard {
    /// What is taken: `"dump"` (a database dump) or `"copy"` (an archive of files).
    pub kind: String,
    /// Where it is written: a file path in which `<time>` stands for the moment of the
    /// copy. If writing it fails, the object is not destroyed.
    pub destination: String,
}

/// One change of a plan as a provider sees it before anything is applied; input of
/// [`Provider::check_plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedChange {
    /// Resource address.
    pub address: Address,
    /// Resource type.
    pub type_name: String,
    /// The existing object goes away (a delete, or the first half of a replace).
    pub destroys: bool,
    /// A new object is made (a create, or the second half of a replace).
    pub creates: bool,
    /// The object as it is now, if it exists.
    pub before: Option<Attrs>,
    /// The object as it will be, if it will exist.
    pub after: Option<Attrs>,
}

/// Why a planned change would fail on the live system (a port another container
/// holds): the plan refuses it before anything is destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    /// The resource whose change cannot be made.
    pub address: Address,
    /// What stands in the way, naming the holder.
    pub message: String,
    /// What the user can do about it.
    pub hint: String,
    /// Another object holds this one's identity (its name): what the state records may
    /// have been replaced by hand rather than deleted, and the plan must not say
    /// "deleted".
    pub identity_taken: bool,
}

/// A provider error, already free of secrets: providers must never put a password or
/// other sensitive value into an error message.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Could not reach or log in to the backing system.
    #[error("cannot connect to {target}: {message}")]
    Connect {
        /// What we tried to reach (never includes credentials).
        target: String,
        /// Why it failed.
        message: String,
    },
    /// The backing system rejected an operation.
    #[error("{address}: {message}")]
    Operation {
        /// The resource being worked on.
        address: Address,
        /// Why it failed.
        message: String,
    },
    /// The request itself is invalid (unknown type, missing attribute, bad name).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for providers.
pub type ProviderResult<T> = Result<T, ProviderError>;

/// The contract every provider implements. One instance serves one [`ProviderKey`]
/// (for SQL: one server), is shared across tasks, and must be safe to call concurrently.
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// The schemas of the resource types this provider implements.
    fn schemas(&self) -> &'static [ResourceSchema];

    /// Puts desired attributes into the canonical form `observe` reports (e.g. memory
    /// `"256m"` as bytes, privileges upper-case), so that the planner's plain equality
    /// never sees a difference the user did not mean. Called once per desired resource
    /// before planning; rejects values the provider cannot accept.
    fn normalize(&self, _type_name: &str, _attrs: &mut Attrs) -> ProviderResult<()> {
        Ok(())
    }

    /// Observes every requested resource in a batch: a constant number of round trips to
    /// the backing system however many resources are asked for. Returns one
    /// [`Observed`] per request, in the same order.
    async fn observe(&self, requests: &[ObserveRequest]) -> ProviderResult<Vec<Observed>>;

    /// What the last [`observe`](Provider::observe) could not verify, worded for the
    /// plan (e.g. "passwords of app1 on postgres://admin@db:5432: the admin role may not
    /// read pg_authid"). The plan lists these and never claims that everything matches
    /// while one is present. Empty when everything asked for was checked.
    fn unverified(&self) -> Vec<String> {
        Vec::new()
    }

    /// Performs one step and returns the attributes to record in state (None after a
    /// delete). Computed attributes (generated passwords) are filled in here; an update
    /// carries over computed attributes from `prior`.
    async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>>;

    /// What the system behind this provider can hold, if it knows (a Docker engine:
    /// its host's memory). Used to refuse plans that over-fill a host.
    async fn capacity(&self) -> ProviderResult<Option<Capacity>> {
        Ok(None)
    }

    /// What deleting an object with these attributes does first to keep its data (a
    /// dump, a copy), if anything; shown in the plan. No I/O. The default: nothing.
    fn safeguard(&self, _type_name: &str, _attrs: &Attrs) -> Option<Safeguard> {
        None
    }

    /// Checks the planned changes of this provider against the live system as the last
    /// [`observe`](Provider::observe) saw it (no further round trip), e.g. a port or
    /// name another object holds. Each problem becomes a conflict that blocks the plan,
    /// so nothing is destroyed for a replacement that cannot be made. The default: none.
    fn check_plan(&self, _changes: &[PlannedChange]) -> Vec<PlanProblem> {
        Vec::new()
    }

    /// Reads an existing object by its provider-specific `id` (for SQL, its name) so
    /// that `terrace import` can adopt it. `desired` is the configuration's view of the
    /// resource, used to fill in what cannot be read back.
    async fn import(&self, type_name: &str, id: &str, desired: &Attrs) -> ProviderResult<Attrs>;
}

/// The resources a provider's system offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Memory in bytes.
    pub memory_bytes: u64,
}

/// Looks up the schema for `type_name` in a provider's list.
pub fn find_schema(
    schemas: &'static [ResourceSchema],
    type_name: &str,
) -> Option<&'static ResourceSchema> {
    schemas.iter().find(|s| s.type_name == type_name)
}

/// What every output shows in place of a sensitive value.
pub const REDACTED: &str = "(sensitive value)";

/// `text` with every occurrence of each secret replaced by [`REDACTED`], longest secret
/// first (so that a secret containing another is masked whole). Empty secrets are
/// ignored; callers decide which values count as secrets.
pub fn scrub<S: AsRef<str>>(text: &str, secrets: impl IntoIterator<Item = S>) -> String {
    let mut secrets: Vec<S> = secrets
        .into_iter()
        .filter(|s| !s.as_ref().is_empty())
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.as_ref().len()));
    let mut out = text.to_string();
    for s in &secrets {
        if out.contains(s.as_ref()) {
            out = out.replace(s.as_ref(), REDACTED);
        }
    }
    out
}

/// A secret string (a password). Its `Debug` and `Display` print `(sensitive value)`, so
/// it cannot leak through logging or error formatting by accident; use
/// [`Secret::expose`] at the single place that must send it to a server.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself. Call only where the value goes to the system that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}
