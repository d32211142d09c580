//! Expiry: instances that `lifecycle { expires_at = ..., ttl = ... }` gives an end.
//!
//! An *instance* is a block (`tenant.clone`) or one instance of a block with for_each
//! (`tenant.clone["c101"]`); its resources are the ones whose address is the instance's
//! or starts with it followed by `.`. Pure like the planner: "now" is an input
//! ([`Clock`]), and so are the creation times the state recorded, so a plan made with
//! the same inputs is the same plan (`--now` previews a later one).
//!
//! Two steps around [`crate::plan`]: [`judge`] takes the resources of expired
//! instances out of the desired set before planning (what is in state is then planned
//! for deletion, and nothing of theirs is created again while the configuration still
//! lists them), and [`annotate`] gives those deletions the reason `expired at <time>`
//! and records every expired or soon-expiring instance in [`Plan::expiry`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use terrace_provider::{Address, DesiredResource};

use crate::model::{Action, Plan};

/// The expiry the configuration gives one instance. With both set, the earlier end wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirySpec {
    /// The instance address: `tenant.clone["c101"]`.
    pub instance: String,
    /// An absolute end.
    pub expires_at: Option<DateTime<Utc>>,
    /// A lifetime counted from when terrace first created the instance.
    pub ttl: Option<TimeDelta>,
}

/// The time a plan is made at, and how far ahead it warns about expiries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// "Now": the wall clock, or `--now` / `TERRACE_NOW`.
    pub now: DateTime<Utc>,
    /// Instances that expire within this span of `now` are listed in the plan.
    pub horizon: TimeDelta,
}

/// What [`judge`] reads besides the specs and the desired resources.
#[derive(Debug, Clone, Copy)]
pub struct ExpiryInput<'a> {
    /// Every instance the configuration gives an expiry.
    pub specs: &'a [ExpirySpec],
    /// When terrace first created each instance with a `ttl`, as the state recorded it
    /// (kept after its resources are gone, while the configuration lists it).
    pub created: &'a BTreeMap<String, DateTime<Utc>>,
    /// Now and the horizon.
    pub clock: Clock,
}

/// An instance that has expired, or will within the plan's horizon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceExpiry {
    /// The instance address.
    pub instance: String,
    /// When it expires (or expired), RFC 3339 in UTC.
    pub expires_at: String,
    /// True once `expires_at` has passed: its resources are destroyed and not created
    /// again while the configuration lists it.
    pub expired: bool,
    /// For a `ttl`: the lifetime, e.g. `48h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// For a `ttl`: when terrace first created the instance; `None` while it does not
    /// exist yet (the ttl then counts from this plan's "now").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl InstanceExpiry {
    /// The sentence a plan shows for it.
    pub fn describe(&self) -> String {
        let why = match (&self.ttl, &self.created_at) {
            (Some(ttl), Some(at)) => format!(" (ttl {ttl} from its creation at {at})"),
            (Some(ttl), None) => format!(" (ttl {ttl} from its creation by this apply)"),
            _ => String::new(),
        };
        if self.expired {
            format!(
                "{} expired at {}{why}; the configuration still lists it: remove it (terrace will not create it again)",
                self.instance, self.expires_at
            )
        } else {
            format!("{} expires at {}{why}", self.instance, self.expires_at)
        }
    }
}

/// The reason a deletion of an expired instance's resource gives.
pub fn expired_note(at: &str) -> String {
    format!("expired at {at}")
}

/// RFC 3339 in UTC with seconds, as plans and the state write times.
pub fn format_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A duration as written back to users: the largest unit that divides it (`48h`,
/// `90m`, `45s`), days only from a week on (`14d`), as lifetimes are mostly in hours.
pub fn format_duration(d: TimeDelta) -> String {
    let s = d.num_seconds();
    if s >= 7 * 86_400 && s % 86_400 == 0 {
        format!("{}d", s / 86_400)
    } else if s != 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s != 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// True if `address` is the instance's or one of its resources'.
pub fn belongs_to(address: &Address, instance: &str) -> bool {
    let a = address.as_str();
    a == instance
        || a.strip_prefix(instance)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The instances of `instances` that `addresses` belong to (see [`belongs_to`]), found
/// with one set lookup per `.` of each address rather than one comparison per instance:
/// linear in the addresses, whatever the number of instances.
pub fn instances_with_resources<'a, 'b>(
    addresses: impl IntoIterator<Item = &'b Address>,
    instances: &BTreeSet<&'a str>,
) -> BTreeSet<&'a str> {
    let mut found = BTreeSet::new();
    for a in addresses {
        let a = a.as_str();
        let prefixes = a
            .match_indices('.')
            .map(|(i, _)| &a[..i])
            .chain(std::iter::once(a));
        for prefix in prefixes {
            if let Some(instance) = instances.get(prefix) {
                found.insert(*instance);
            }
        }
    }
    found
}

/// Decides which instances have expired, or will within the horizon, and takes the
/// resources of expired ones out of `desired`. Returns the desired resources to plan
/// and the instances to list (sorted by instance).
pub fn judge(
    input: ExpiryInput<'_>,
    desired: Vec<DesiredResource>,
) -> (Vec<DesiredResource>, Vec<InstanceExpiry>) {
    let now = input.clock.now;
    let mut listed = Vec::new();
    for spec in input.specs {
        let created = input.created.get(&spec.instance).copied();
        let by_ttl = spec.ttl.map(|ttl| created.unwrap_or(now) + ttl);
        let Some(end) = [spec.expires_at, by_ttl].into_iter().flatten().min() else {
            continue;
        };
        let expired = now >= end;
        if !expired && end - now > input.clock.horizon {
            continue;
        }
        // The ttl is shown only when it decides the end.
        let ttl_decides = by_ttl == Some(end);
        listed.push(InstanceExpiry {
            instance: spec.instance.clone(),
            expires_at: format_time(end),
            expired,
            ttl: spec.ttl.filter(|_| ttl_decides).map(format_duration),
            created_at: created.filter(|_| ttl_decides).map(format_time),
        });
    }
    listed.sort_by(|a, b| a.instance.cmp(&b.instance));
    let desired = desired
        .into_iter()
        .filter(|d| {
            !listed
                .iter()
                .any(|e| e.expired && belongs_to(&d.address, &e.instance))
        })
        .collect();
    (desired, listed)
}

/// Gives each deletion of an expired instance's resource the reason `expired at
/// <time>` (after a note the planner set, which says more about the object), and
/// records `listed` in [`Plan::expiry`].
pub fn annotate(plan: &mut Plan, listed: Vec<InstanceExpiry>) {
    for c in plan
        .changes
        .iter_mut()
        .filter(|c| c.action == Action::Delete)
    {
        let Some(e) = listed
            .iter()
            .find(|e| e.expired && belongs_to(&c.address, &e.instance))
        else {
            continue;
        };
        let reason = expired_note(&e.expires_at);
        c.note = match c.note.take() {
            Some(n) if n != crate::diff::NOT_CONFIGURED_NOTE => Some(format!("{n}; {reason}")),
            _ => Some(reason),
        };
    }
    plan.expiry = listed;
}

/// The instances of a plan that expired and are still listed, and those expiring soon,
/// as the text renderer prints them (empty when there are none).
pub fn render_lines(plan: &Plan) -> String {
    let mut out = String::new();
    let expired: Vec<_> = plan.expiry.iter().filter(|e| e.expired).collect();
    let soon: Vec<_> = plan.expiry.iter().filter(|e| !e.expired).collect();
    if !expired.is_empty() {
        out.push_str("Expired (the configuration still lists them):\n\n");
        for e in expired {
            out.push_str(&format!("  # {}\n", e.describe()));
        }
        out.push('\n');
    }
    if !soon.is_empty() {
        out.push_str("Expiring soon:\n\n");
        for e in soon {
            out.push_str(&format!("  # {}\n", e.describe()));
        }
        out.push('\n');
    }
    out
}
