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

mod attrs;
pub mod duration;
pub mod refs;
mod shared_str;

pub use attrs::{Attrs, Map as AttrsMap};

/// Attribute values are JSON values: they come from HCL, are stored in the state file
/// as JSON and rendered in `--json` output unchanged.
pub type Value = serde_json::Value;

/// The unique, human-readable name of one resource instance, such as
/// `tenant.app["calibre_web"].database` or `database.reports.user`.
///
/// Addresses are what users type in `terrace state show ADDR` and `terrace import ADDR ID`.
///
/// Shared text: every layer keeps addresses (the configuration, the state, the graph,
/// the plan, each observation), and a clone is a reference count, not a copy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(#[serde(with = "shared_str")] pub std::sync::Arc<str>);

impl Address {
    /// Wraps an address string.
    pub fn new(s: impl AsRef<str>) -> Self {
        Address(s.as_ref().into())
    }

    /// The address as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a deposed address ends with: see [`Address::deposed`].
const DEPOSED_SUFFIX: &str = " (deposed)";

impl Address {
    /// The address under which the state keeps an object that a move replaced while it
    /// still exists (the old copy on the old server, `tenant.a.database (deposed)`), so
    /// that the record of the new object at the address itself never hides it.
    pub fn deposed(&self) -> Address {
        Address::new(format!("{}{DEPOSED_SUFFIX}", self.0))
    }

    /// For a deposed address, the address of the object that replaced it.
    pub fn deposed_of(&self) -> Option<Address> {
        self.0.strip_suffix(DEPOSED_SUFFIX).map(Address::new)
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

/// The type of value an attribute takes, which the configuration language decodes and
/// checks before anything else sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// Any value; whoever lowers the attribute decodes it.
    Any,
    /// A string.
    String,
    /// `true` or `false`.
    Bool,
    /// A whole number within the bounds (inclusive).
    Int {
        /// Smallest value allowed.
        min: i64,
        /// Largest value allowed.
        max: i64,
    },
    /// A list of strings.
    StringList,
}

/// Whether the configuration sets an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The configuration may set it.
    Optional,
    /// The resource needs it (a block may still default it, e.g. a name from the label).
    Required,
    /// Only the provider sets it (a content hash, an image id): not written in blocks.
    Output,
}

/// Where a value being validated belongs, for messages.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The resource's address, e.g. `firewall_rule.ssh`.
    pub address: &'a str,
    /// The attribute path as written in messages: `comment`, or `allow_from[1]` for an
    /// element of a list.
    pub field: &'a str,
}

/// A value a provider rejects, worded for the user; the configuration language shows it
/// at the value's place in the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong, e.g. `invalid allow_from[0] "x": not an IP address or CIDR network`.
    pub message: String,
    /// A short label under the value.
    pub label: String,
    /// How to fix it.
    pub help: String,
}

impl Invalid {
    /// The problem as the error a provider returns for a resource of `type_name`.
    pub fn into_error(self, type_name: &str) -> ProviderError {
        ProviderError::Invalid(format!("{type_name}: {}", self.message))
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A provider's check of one attribute value (of each element, for a list), the one
/// copy of the rule that both the configuration language (for located diagnostics) and
/// the provider (before touching a system) apply.
#[derive(Clone, Copy)]
pub struct Validate(pub fn(&Value, &Subject<'_>) -> Result<(), Invalid>);

impl fmt::Debug for Validate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Validate(..)")
    }
}

impl PartialEq for Validate {
    /// Two checks are the same function (schemas compare equal only to themselves in
    /// practice; this keeps `AttrSchema: Eq`).
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for Validate {}

/// How the planner must treat one attribute of a resource type, and how the
/// configuration language decodes it.
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
    /// The type of value it takes.
    pub ty: ValueType,
    /// Whether the configuration sets it.
    pub presence: Presence,
    /// The only values allowed (empty: any value of the type).
    pub allowed: &'static [&'static str],
    /// What one valid value is, with its article, for messages (`not a protocol`).
    pub what: &'static str,
    /// A one-line description.
    pub doc: &'static str,
    /// A valid value written in HCL, for help texts (`"tcp"`).
    pub example: &'static str,
    /// The provider's check of a value, beyond its type and allowed values.
    pub validate: Option<Validate>,
    /// Tells whose object a live one is. When an apply stopped while creating an object
    /// and the next run finds one of that name, it adopts it only if this attribute's
    /// live value is the one it recorded (the password it generated, the owner it
    /// created the database for); otherwise the object is someone else's, and the plan
    /// reports a conflict instead of taking it over. The text says what a different
    /// value means, for operators ("its password is not the one terrace generated").
    pub proves_ownership: Option<&'static str>,
    /// A whole number of bytes (a memory limit): plans show it in the largest exact
    /// binary unit (`512m`), the form users write, while comparisons keep bytes.
    pub byte_size: bool,
    /// What an in-place change of this attribute does on the live system beyond setting
    /// it, for the plan to say (`"the service is restarted"`): a reviewer must see an
    /// outage coming, not only a changed value.
    pub on_update: Option<&'static str>,
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
            ty: ValueType::Any,
            presence: Presence::Optional,
            allowed: &[],
            what: "",
            doc: "",
            example: "",
            validate: None,
            proves_ownership: None,
            byte_size: false,
            on_update: None,
        }
    }

    /// Says what an in-place change of the attribute does ([`AttrSchema::on_update`]).
    pub const fn on_update(mut self, effect: &'static str) -> Self {
        self.on_update = Some(effect);
        self
    }

    /// Marks the attribute as telling whose object a live one is
    /// ([`AttrSchema::proves_ownership`]); `mismatch` says what another value means.
    pub const fn proves_ownership(mut self, mismatch: &'static str) -> Self {
        self.proves_ownership = Some(mismatch);
        self
    }

    /// Marks the attribute as a number of bytes, shown in plans as `512m`.
    pub const fn byte_size(mut self) -> Self {
        self.byte_size = true;
        self
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

    /// A string attribute; `example` is a valid value written in HCL.
    pub const fn string(mut self, example: &'static str) -> Self {
        self.ty = ValueType::String;
        self.example = example;
        self
    }

    /// A boolean attribute.
    pub const fn bool(mut self) -> Self {
        self.ty = ValueType::Bool;
        self.example = "true";
        self
    }

    /// A whole-number attribute from `min` to `max`.
    pub const fn int(mut self, min: i64, max: i64, example: &'static str) -> Self {
        self.ty = ValueType::Int { min, max };
        self.example = example;
        self
    }

    /// A list of strings.
    pub const fn string_list(mut self, example: &'static str) -> Self {
        self.ty = ValueType::StringList;
        self.example = example;
        self
    }

    /// The resource needs the attribute.
    pub const fn required(mut self) -> Self {
        self.presence = Presence::Required;
        self
    }

    /// Only the provider sets the attribute; configurations cannot.
    pub const fn output(mut self) -> Self {
        self.presence = Presence::Output;
        self
    }

    /// The only values allowed, and what one of them is (`"a protocol"`).
    pub const fn one_of(mut self, allowed: &'static [&'static str], what: &'static str) -> Self {
        self.allowed = allowed;
        self.what = what;
        self
    }

    /// A one-line description.
    pub const fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }

    /// The provider's check of a value (of each element, for a list).
    pub const fn validate(mut self, f: fn(&Value, &Subject<'_>) -> Result<(), Invalid>) -> Self {
        self.validate = Some(Validate(f));
        self
    }

    /// Runs the provider's check, if any, on one value.
    pub fn check(&self, value: &Value, subject: &Subject<'_>) -> Result<(), Invalid> {
        match self.validate {
            Some(Validate(f)) => f(value, subject),
            None => Ok(()),
        }
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
    /// Objects of this type hold data (a database's tables, a volume's files): one that
    /// moves to another provider instance (another server) is moved with its data
    /// ([`Provider::export_data`], [`Provider::restore_data`]) instead of being created
    /// empty there, and the old one is dropped only after the copy is verified.
    pub carries_data: bool,
    /// The types of the objects this one lives inside on the server (a grant lives in
    /// its user: `DROP USER` takes the grant with it). When a dependency of one of these
    /// types is replaced, the plan replaces this object too, so that apply makes it
    /// again instead of leaving it gone.
    pub lives_in: &'static [&'static str],
    /// A boolean attribute that, when true, makes destroying an object of this type
    /// delete data kept apart from the object itself (Redis `purge_keys`: the tenant's
    /// keys). The plan then flags the destroy as dropping data, like a database's.
    pub drops_data_if: Option<&'static str>,
    /// Deleting only stops managing the object: it stays on the system as it is (a
    /// package stays installed, a service keeps running). The plan says so instead of
    /// "destroyed", and does not count it as a destroy.
    pub delete_keeps_object: bool,
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

    /// Runs every attribute's check ([`AttrSchema::validate`]) on the attributes set,
    /// element by element for lists: what a provider's `normalize` calls so that its
    /// rules are the ones the configuration language applied. Returns the first problem.
    pub fn check_attrs(&self, address: &str, attrs: &Attrs) -> Result<(), Invalid> {
        for a in self.attrs.iter().filter(|a| a.validate.is_some()) {
            match attrs.get(a.name) {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) if a.ty == ValueType::StringList => {
                    for (i, v) in items.iter().enumerate() {
                        let field = format!("{}[{i}]", a.name);
                        a.check(
                            v,
                            &Subject {
                                address,
                                field: &field,
                            },
                        )?;
                    }
                }
                Some(v) => a.check(
                    v,
                    &Subject {
                        address,
                        field: a.name,
                    },
                )?,
            }
        }
        Ok(())
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
    /// The block's `lifecycle { ... }` meta-arguments.
    #[serde(default, skip_serializing_if = "Lifecycle::is_default")]
    pub lifecycle: Lifecycle,
}

/// A block's `lifecycle { prevent_destroy = true, ignore_changes = [attr, ...] }`,
/// carried by every resource the block lowers to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifecycle {
    /// Refuse any plan that destroys or replaces the resource.
    #[serde(default)]
    pub prevent_destroy: bool,
    /// Attributes whose changes (in configuration or outside terrace) are not acted on
    /// nor reported as drift.
    #[serde(default)]
    pub ignore_changes: Vec<String>,
}

impl Lifecycle {
    /// True when nothing is set.
    pub fn is_default(&self) -> bool {
        self == &Lifecycle::default()
    }

    /// True if changes of `attr` are ignored.
    pub fn ignores(&self, attr: &str) -> bool {
        self.ignore_changes.iter().any(|a| a == attr)
    }
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

/// A copy of one object's data taken for a move ([`Provider::export_data`]), restored
/// into the object's new home by [`Provider::restore_data`] of the new provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCopy {
    /// What reads it back ([`Provider::data_format`] of the provider that wrote it):
    /// only a provider of the same format can restore it.
    pub format: String,
    /// The file holding the copy (mode 0600). It is kept after the move.
    pub path: std::path::PathBuf,
    /// What the copy holds, counted when it was taken (rows per table, files): the
    /// restore counts the same on the new object and fails on any difference.
    pub inventory: BTreeMap<String, u64>,
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
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProviderError {
    /// Could not reach or log in to the backing system.
    #[error("cannot connect to {target}: {message}")]
    #[diagnostic(
        code(terrace::provider::connect),
        help("check that it is running and reachable from here, and the credentials terrace uses for it")
    )]
    Connect {
        /// What we tried to reach (never includes credentials).
        target: String,
        /// Why it failed.
        message: String,
    },
    /// The backing system rejected an operation.
    #[error("{address}: {message}")]
    #[diagnostic(code(terrace::provider::operation))]
    Operation {
        /// The resource being worked on.
        address: Address,
        /// Why it failed.
        message: String,
    },
    /// The request itself is invalid (unknown type, missing attribute, bad name).
    #[error("{0}")]
    #[diagnostic(code(terrace::provider::invalid))]
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

    /// How many apply steps of this provider doing `operation` may run at once: what
    /// the server behind it takes before more in flight only queue there (or fail,
    /// waiting for a connection). The executor never runs more of this provider's steps
    /// at once, whatever `--parallelism` (an overall cap) allows, and runs other
    /// providers' steps beside them. Destroys run in a phase of their own, before
    /// creates and updates, and are asked for with [`Operation::Delete`]; the second
    /// phase with [`Operation::Create`]. No I/O: a fixed figure per kind of server,
    /// measured or derived from the provider's own bounds (a connection pool, a channel
    /// limit). The default: [`DEFAULT_MAX_CONCURRENCY`]. Zero is taken as one.
    fn max_concurrency(&self, _operation: Operation) -> usize {
        DEFAULT_MAX_CONCURRENCY
    }

    /// What the system behind this provider can hold, if it knows (a Docker engine:
    /// its host's memory). Used to refuse plans that over-fill a host.
    async fn capacity(&self) -> ProviderResult<Option<Capacity>> {
        Ok(None)
    }

    /// How many client connections the server behind this provider takes, if it is a
    /// server tenants connect to (SQL: `max_connections`; Redis: `maxclients`), read
    /// live. Used to refuse plans whose tenants' connection limits add up to more than
    /// the server takes. The default: not such a server.
    async fn connections(&self) -> ProviderResult<Option<Connections>> {
        Ok(None)
    }

    /// What deleting an object with these attributes does first to keep its data (a
    /// dump, a copy), if anything; shown in the plan. No I/O. The default: nothing.
    fn safeguard(&self, _type_name: &str, _attrs: &Attrs) -> Option<Safeguard> {
        None
    }

    /// The format of the data copies this provider makes of objects of `type_name` for a
    /// move (`"mysql"`, `"postgres"`, `"docker-volume"`), or `None` if it cannot copy
    /// them. A move between providers of different formats is refused.
    fn data_format(&self, _type_name: &str) -> Option<String> {
        None
    }

    /// Copies the data of the object described by `attrs` into a new file, leaving the
    /// object as it is: the first half of a move. The default: cannot.
    async fn export_data(
        &self,
        address: &Address,
        _type_name: &str,
        _attrs: &Attrs,
    ) -> ProviderResult<DataCopy> {
        Err(ProviderError::Operation {
            address: address.clone(),
            message: "this provider cannot copy the object's data".into(),
        })
    }

    /// Restores `copy` into the object described by `attrs`, which this provider has just
    /// created (empty), and verifies it against [`DataCopy::inventory`]: the second half
    /// of a move. An error means the new object cannot be trusted; the old one is kept.
    async fn restore_data(
        &self,
        address: &Address,
        _type_name: &str,
        _attrs: &Attrs,
        _copy: &DataCopy,
    ) -> ProviderResult<()> {
        Err(ProviderError::Operation {
            address: address.clone(),
            message: "this provider cannot restore a copy of the object's data".into(),
        })
    }

    /// Checks the planned changes of this provider against the live system as the last
    /// [`observe`](Provider::observe) saw it, e.g. a port or name another object holds.
    /// Each problem becomes a conflict that blocks the plan, so nothing is destroyed
    /// for a replacement that cannot be made. What observe did not need to read (the
    /// engine's other containers, when nothing is created) may be read here, once,
    /// and only for changes that need it; an error fails the plan. The default: none.
    async fn check_plan(&self, _changes: &[PlannedChange]) -> ProviderResult<Vec<PlanProblem>> {
        Ok(Vec::new())
    }

    /// Ends this provider's connections the way their protocol says goodbye (SQL's quit
    /// message), so that servers do not count and log them as aborted. Called once at
    /// the end of a command; bounded in time, and failures are ignored: the process is
    /// about to drop whatever is left. The default: nothing to end.
    async fn close(&self) {}

    /// Reads an existing object by its provider-specific `id` (for SQL, its name) so
    /// that `terrace import` can adopt it. `desired` is the configuration's view of the
    /// resource, used to fill in what cannot be read back.
    async fn import(&self, type_name: &str, id: &str, desired: &Attrs) -> ProviderResult<Attrs>;
}

/// The concurrency limit of a provider that does not say ([`Provider::max_concurrency`]):
/// the executor's historical overall default, so such a provider is bounded only by
/// `--parallelism`'s default.
pub const DEFAULT_MAX_CONCURRENCY: usize = 10;

/// The resources a provider's system offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Memory in bytes.
    pub memory_bytes: u64,
}

/// The client connections a server takes: returned by [`Provider::connections`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connections {
    /// The server's limit (`max_connections`, `maxclients`).
    pub max: u64,
    /// Of those, how many are kept for administration (the server's own superuser
    /// reserve, plus terrace's own pool): tenants' limits must fit in `max - reserved`.
    pub reserved: u64,
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

// Per-key sensitivity of map attributes (a container's `env`).
//
// Sensitivity is a set of attribute names (`DesiredResource::sensitive_attrs`, a
// change's `sensitive`, a state entry's `sensitive_attributes`). A map attribute whose
// secret values are known key by key is recorded as its name *and* one entry per secret
// key, `env["DB_PASSWORD"]`. Everything that seals or scrubs whole attributes (the state's
// encryption, the error scrubber) keeps seeing `env` and keeps treating the whole map as
// secret; only the plan's display uses the keys, to show `DB_HOST` beside a hidden
// `DB_PASSWORD`. An attribute listed without any key entry stays secret as a whole, which
// is also what every state written before key entries existed says.

/// The sensitivity entry for one key of a map attribute: `env["DB_PASSWORD"]` (the key
/// JSON-quoted, so any key has exactly one spelling and cannot be confused with a name).
pub fn sensitive_key_entry(attr: &str, key: &str) -> String {
    format!("{attr}[{}]", Value::from(key))
}

/// The attribute and key of an entry made by [`sensitive_key_entry`].
pub fn parse_sensitive_key_entry(entry: &str) -> Option<(&str, String)> {
    let (attr, rest) = entry.split_once('[')?;
    let key = rest.strip_suffix(']')?;
    match serde_json::from_str::<Value>(key).ok()? {
        Value::String(k) => Some((attr, k)),
        _ => None,
    }
}

/// How much of attribute `attr` is secret according to `sensitive`: `None` when nothing
/// is; `Some(None)` when the whole value is; `Some(Some(keys))` when only these keys of
/// the map are.
pub fn secret_keys(sensitive: &BTreeSet<String>, attr: &str) -> Option<Option<BTreeSet<String>>> {
    if !sensitive.contains(attr) {
        return None;
    }
    let keys: BTreeSet<String> = sensitive
        .iter()
        .filter_map(|e| parse_sensitive_key_entry(e))
        .filter(|(a, _)| *a == attr)
        .map(|(_, k)| k)
        .collect();
    Some((!keys.is_empty()).then_some(keys))
}

/// Records that key `key` of map attribute `attr` holds a secret. An attribute already
/// secret as a whole stays so (a key entry would narrow it).
pub fn mark_key_sensitive(sensitive: &mut BTreeSet<String>, attr: &str, key: &str) {
    if secret_keys(sensitive, attr) == Some(None) {
        return;
    }
    sensitive.insert(attr.to_string());
    sensitive.insert(sensitive_key_entry(attr, key));
}

/// Records that the whole value of `attr` is secret, dropping any key entries.
pub fn mark_sensitive(sensitive: &mut BTreeSet<String>, attr: &str) {
    sensitive.retain(|e| parse_sensitive_key_entry(e).is_none_or(|(a, _)| a != attr));
    sensitive.insert(attr.to_string());
}

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

/// Renames a finished copy `from` (written and synced under a `.partial` name) to `to`,
/// and syncs the directory, so that the complete name survives a crash before what the
/// copy protects is destroyed. A run killed earlier leaves only the `.partial` name,
/// never one that looks like a full copy.
pub fn rename_durably(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    match to.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => std::fs::File::open(".")?.sync_all(),
    }
}

/// `bytes` in the largest binary unit that divides it exactly, as a size is written in
/// the configuration (`"512m"`, `"1g"`); `None` for a count no unit divides (shown as
/// the number itself, which is also how it can be written).
//
// The configuration's own spelling is not carried to the plan: the provider normalises a
// size to bytes so that comparisons are canonical, and this formatting gives back the
// usual spelling from the bytes alone, so no second, display-only copy of the value has
// to travel through state and plan (and `1024m` simply reads as `"1g"`).
pub fn byte_size(bytes: i64) -> Option<String> {
    if bytes <= 0 {
        return None;
    }
    [("t", 40), ("g", 30), ("m", 20), ("k", 10)]
        .into_iter()
        .find(|(_, shift)| bytes % (1i64 << shift) == 0)
        .map(|(unit, shift)| format!("{}{unit}", bytes >> shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_use_the_largest_exact_unit() {
        assert_eq!(byte_size(512 << 20).as_deref(), Some("512m"));
        assert_eq!(byte_size(1 << 30).as_deref(), Some("1g"));
        assert_eq!(byte_size(3 << 29).as_deref(), Some("1536m"));
        assert_eq!(byte_size(2 << 40).as_deref(), Some("2t"));
        assert_eq!(byte_size(1000), None);
        assert_eq!(byte_size(0), None);
    }

    #[test]
    fn addresses_with_escapes_round_trip_through_json() {
        let a = Address::new(r#"tenant.app["o'd \"x\""].database"#);
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(text, r#""tenant.app[\"o'd \\\"x\\\"\"].database""#);
        let back: Address = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);
        let plain: Address = serde_json::from_str(r#""host.web""#).unwrap();
        assert_eq!(plain.as_str(), "host.web");
    }

    #[test]
    fn map_keys_are_secret_one_by_one_until_the_whole_map_is() {
        let mut s = BTreeSet::new();
        assert_eq!(secret_keys(&s, "env"), None);
        mark_key_sensitive(&mut s, "env", "DB_PASSWORD");
        mark_key_sensitive(&mut s, "env", "odd \"key]");
        let keys = BTreeSet::from(["DB_PASSWORD".to_string(), "odd \"key]".to_string()]);
        assert_eq!(secret_keys(&s, "env"), Some(Some(keys)));
        assert!(
            s.contains("env"),
            "sealing and scrubbing still see the attribute"
        );
        mark_sensitive(&mut s, "env");
        assert_eq!(s, BTreeSet::from(["env".to_string()]));
        // Whole stays whole: a key entry would narrow it.
        mark_key_sensitive(&mut s, "env", "X");
        assert_eq!(secret_keys(&s, "env"), Some(None));
        assert_eq!(parse_sensitive_key_entry("env"), None);
    }

    fn not_empty(v: &Value, at: &Subject<'_>) -> Result<(), Invalid> {
        if v.as_str().is_some_and(|s| !s.is_empty()) {
            return Ok(());
        }
        Err(Invalid {
            message: format!("{} of {} is empty", at.field, at.address),
            label: "empty".into(),
            help: "write something".into(),
        })
    }

    static SCHEMA: ResourceSchema = ResourceSchema {
        type_name: "t_thing",
        description: "thing",
        import_id: &["name"],
        adopt_existing: false,
        carries_data: false,
        lives_in: &[],
        drops_data_if: None,
        delete_keeps_object: false,
        attrs: &[
            AttrSchema::plain("name")
                .string("\"a\"")
                .validate(not_empty),
            AttrSchema::plain("tags")
                .string_list("[\"a\"]")
                .validate(not_empty),
            AttrSchema::plain("free"),
        ],
    };

    #[test]
    fn check_attrs_runs_each_check_on_values_and_list_elements() {
        let attrs = |v: serde_json::Value| -> Attrs { serde_json::from_value(v).unwrap() };
        let ok = attrs(serde_json::json!({"name": "x", "tags": ["a", "b"], "free": ""}));
        assert_eq!(SCHEMA.check_attrs("t.x", &ok), Ok(()));
        let bad = attrs(serde_json::json!({"name": "x", "tags": ["a", ""]}));
        let e = SCHEMA.check_attrs("t.x", &bad).unwrap_err();
        assert_eq!(e.message, "tags[1] of t.x is empty");
        assert_eq!(
            e.into_error("t_thing").to_string(),
            "t_thing: tags[1] of t.x is empty"
        );
    }

    #[test]
    fn builders_default_to_a_plain_optional_attribute() {
        let a = AttrSchema::plain("x");
        assert_eq!(a.ty, ValueType::Any);
        assert_eq!(a.presence, Presence::Optional);
        assert!(a.validate.is_none() && a.observable && !a.force_new);
        let r = AttrSchema::plain("p").int(1, 9, "3").required();
        assert_eq!(r.ty, ValueType::Int { min: 1, max: 9 });
        assert_eq!(r.presence, Presence::Required);
    }
}
