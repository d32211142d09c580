//! Key prefixes that overlap: a plan check.
//!
//! A tenant is confined to the keys `prefix*`, so a prefix that starts another tenant's
//! (`shop` and `shop2:`) lets the first read and write the second's keys, and purging
//! the first's keys on destroy deletes the second's. Neither is visible in one user's
//! ACL alone, so the plan checks every user it makes or re-confines, and every purge,
//! against all the others on the server (terrace's or not) and refuses what overlaps.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{json, Value};
use terrace_provider::{Address, PlanProblem, PlannedChange};

use crate::schema::USER;

const SEPARATOR_HINT: &str =
    "end every prefix with a separator such as \":\" (\"shop:\" and \"shop2:\" do not overlap)";

/// The problems of `changes` given the tenant-shaped users on the server at the last
/// observe (`live`: user name → prefix).
pub(crate) fn problems(
    live: &BTreeMap<String, String>,
    changes: &[PlannedChange],
) -> Vec<PlanProblem> {
    let users = changes.iter().filter(|c| c.type_name == USER);
    // Who holds which prefix once the plan is applied: the live users, less those it
    // deletes, with the ones it creates or changes as they will be.
    let mut after: BTreeMap<&str, &str> =
        live.iter().map(|(n, p)| (n.as_str(), p.as_str())).collect();
    for c in users.clone() {
        if let Some(name) = c.before.as_ref().and_then(|b| str_attr(b, "name")) {
            if c.destroys {
                after.remove(name);
            }
        }
        if let Some(a) = &c.after {
            if let (Some(name), Some(prefix)) = (str_attr(a, "name"), str_attr(a, "prefix")) {
                after.insert(name, prefix);
            }
        }
    }
    let holders = Holders::new(&after);
    let mut out = Vec::new();
    for c in users {
        let before_prefix = c.before.as_ref().and_then(|b| str_attr(b, "prefix"));
        // A user made, or confined to another prefix: no other user's keys may start
        // with its prefix, nor its keys with another's.
        if let Some(a) = &c.after {
            if let (Some(name), Some(prefix)) = (str_attr(a, "name"), str_attr(a, "prefix")) {
                if c.creates || before_prefix != Some(prefix) {
                    for (other, theirs) in holders.overlapping(prefix) {
                        if other != name {
                            out.push(PlanProblem {
                                address: c.address.clone(),
                                message: format!(
                                    "its key prefix {prefix:?} overlaps {theirs:?}, the prefix of Redis user {other:?} on the same server: each could read and change the other's keys"
                                ),
                                hint: SEPARATOR_HINT.into(),
                                identity_taken: false,
                            });
                        }
                    }
                }
            }
        }
        // A purge deletes every key starting with the prefix: never one of another
        // user that stays.
        if let (true, Some(b)) = (c.destroys, &c.before) {
            let purges = b.get("purge_keys") == Some(&json!(true)) || b.contains_key("key_count");
            let name = str_attr(b, "name");
            if let (true, Some(prefix)) = (purges, before_prefix) {
                for (other, theirs) in holders.within(prefix) {
                    if Some(other) != name {
                        out.push(purge_problem(&c.address, prefix, other, theirs));
                    }
                }
            }
        }
    }
    out
}

/// Who holds which prefix, indexed by prefix, so that each check costs a range scan
/// and one lookup per byte of the prefix, not a pass over every user: a plan of
/// thousands of new tenants stays linear.
struct Holders<'a> {
    by_prefix: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> Holders<'a> {
    fn new(users: &BTreeMap<&'a str, &'a str>) -> Self {
        let mut by_prefix: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, prefix) in users {
            by_prefix.entry(prefix).or_default().push(name);
        }
        Holders { by_prefix }
    }

    /// (user, prefix) of every user whose prefix starts with `prefix`, by user name.
    fn within(&self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        let mut out: Vec<(&str, &str)> = self
            .by_prefix
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(prefix))
            .flat_map(|(p, names)| names.iter().map(|n| (*n, *p)))
            .collect();
        out.sort_unstable();
        out
    }

    /// (user, prefix) of every user whose prefix starts with `prefix` or with which
    /// `prefix` starts, by user name.
    fn overlapping(&self, prefix: &str) -> Vec<(&'a str, &'a str)> {
        let mut out = self.within(prefix);
        let shorter = (0..prefix.len())
            .filter(|i| prefix.is_char_boundary(*i))
            .filter_map(|i| self.by_prefix.get_key_value(&prefix[..i]));
        for (p, names) in shorter {
            out.extend(names.iter().map(|n| (*n, *p)));
        }
        out.sort_unstable();
        out
    }
}

fn purge_problem(address: &Address, prefix: &str, other: &str, theirs: &str) -> PlanProblem {
    PlanProblem {
        address: address.clone(),
        message: format!(
            "purging the keys that start with {prefix:?} would also delete those of Redis user {other:?} (prefix {theirs:?}), which stays"
        ),
        hint: "set `purge_keys = false` on this tenant to leave its keys (and the other's) in place, or give the other user a prefix outside this one first".into(),
        identity_taken: false,
    }
}

fn str_attr<'a>(a: &'a terrace_provider::Attrs, key: &str) -> Option<&'a str> {
    a.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use terrace_provider::Attrs;

    fn user(name: &str, prefix: &str, purge: bool) -> Attrs {
        let v = json!({"name": name, "prefix": prefix, "purge_keys": purge});
        serde_json::from_value(v).unwrap()
    }

    fn change(addr: &str, before: Option<Attrs>, after: Option<Attrs>) -> PlannedChange {
        PlannedChange {
            address: Address::new(addr),
            type_name: USER.into(),
            destroys: before.is_some() && after.is_none(),
            creates: before.is_none(),
            before,
            after,
        }
    }

    fn messages(live: &[(&str, &str)], changes: &[PlannedChange]) -> Vec<String> {
        let live = live
            .iter()
            .map(|(n, p)| (n.to_string(), p.to_string()))
            .collect();
        problems(&live, changes)
            .into_iter()
            .map(|p| format!("{}: {}", p.address, p.message))
            .collect()
    }

    #[test]
    fn a_new_prefix_that_starts_or_extends_another_is_refused() {
        let made = |name: &str, prefix: &str| {
            change(&format!("u.{name}"), None, Some(user(name, prefix, false)))
        };
        assert_eq!(
            messages(&[("shop2", "shop2:")], &[made("shop", "shop")]),
            ["u.shop: its key prefix \"shop\" overlaps \"shop2:\", the prefix of Redis user \"shop2\" on the same server: each could read and change the other's keys"]
        );
        // The other way round, between two users of the same plan, and equal prefixes.
        assert_eq!(messages(&[], &[made("a", "a:"), made("b", "a:x")]).len(), 2);
        assert_eq!(messages(&[("old", "t:")], &[made("new", "t:")]).len(), 1);
        // Separated prefixes do not overlap, and a user is not its own neighbour.
        assert!(messages(
            &[("shop2", "shop2:"), ("shop", "shop:")],
            &[made("shop", "shop:")]
        )
        .is_empty());
    }

    #[test]
    fn an_existing_overlap_does_not_block_unrelated_changes_but_a_deleted_user_frees_its_prefix() {
        let live = [("a", "a"), ("ab", "ab:")];
        let same = change(
            "u.a",
            Some(user("a", "a", false)),
            Some(user("a", "a", false)),
        );
        assert!(messages(&live, &[same]).is_empty());
        let gone = change("u.ab", Some(user("ab", "ab:", false)), None);
        let re = change(
            "u.a",
            Some(user("a", "a", false)),
            Some(user("a", "a:", false)),
        );
        assert!(messages(&live, &[gone, re]).is_empty());
    }

    #[test]
    fn a_purge_that_would_reach_another_users_keys_is_refused() {
        let live = [("shop", "shop"), ("shop2", "shop2:")];
        let purge = change("u.shop", Some(user("shop", "shop", true)), None);
        assert_eq!(
            messages(&live, &[purge]),
            ["u.shop: purging the keys that start with \"shop\" would also delete those of Redis user \"shop2\" (prefix \"shop2:\"), which stays"]
        );
        // Without a purge the keys stay: nothing to refuse; nor when both go.
        let keep = change("u.shop", Some(user("shop", "shop", false)), None);
        assert!(messages(&live, &[keep]).is_empty());
        let both = [
            change("u.shop", Some(user("shop", "shop", true)), None),
            change("u.shop2", Some(user("shop2", "shop2:", true)), None),
        ];
        assert!(messages(&live, &both).is_empty());
    }
}
