//! terrace's planner: a pure function from (desired resources, prior state, live
//! observations) to a [`Plan`], plus the dependency [`graph`] and the renderers.
//!
//! Nothing in this crate does I/O. The binary gathers the inputs (config, state file,
//! provider probes) and hands them over; tests build inputs by hand.
//!
//! Invariants:
//! - only attributes the configuration sets are compared, so server-filled defaults never
//!   cause a diff;
//! - drift (prior state vs live) is reported apart from changes the config asks for;
//! - every replacement names the attributes that forced it;
//! - sensitive values are redacted by every renderer ([`Plan::redacted`]).

mod diff;
pub mod drift;
pub mod expiry;
pub mod focus;
pub mod graph;
pub mod lives_in;
mod model;
pub mod render;

pub use diff::{
    check_prevent_destroy, only_leaves_state, plan, PlanError, PlanInput, PriorResource, Refused,
    ADOPT_EXISTING_NOTE, ADOPT_PENDING_NOTE, CREATE_PENDING_NOTE, DELETED_NOTE,
    FORGET_FOREIGN_NOTE, FORGET_PENDING_NOTE, NOT_CONFIGURED_NOTE, PROVIDER_ATTR, RESUME_MOVE_NOTE,
    USES_MOVED_ATTR,
};
pub use focus::{Focus, FocusError, REPLACE_REQUESTED};
pub use graph::{GraphError, ResourceGraph};
pub use lives_in::{replace_what_lives_in_replaced, LIVES_IN_REPLACED};
pub use model::{
    redact_attrs, Action, AttrDiff, Conflict, Drift, DriftKind, Moved, Plan, PlannedSafeguard,
    ResourceChange, Summary, REDACTED,
};
