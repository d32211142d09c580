//! [`Attrs`]: a resource's attributes, shared between copies until one is changed.
//!
//! The same attributes travel through every layer: the loaded configuration, the
//! desired set the planner reads, the state, the prior set, a plan's before and after,
//! the step an apply runs. A deep copy at each hand-over cost a full copy of every
//! attribute map per layer (about 19 MB per copy at 30,000 resources, BENCHMARKS.md);
//! sharing makes a copy a reference count, and a writer gets its own map only when it
//! writes ([`Arc::make_mut`]).

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Value;

/// A resource's attributes, ordered by name so that output and state are deterministic.
///
/// Reads go through `Deref` to the map; any `&mut` access (`insert`, `remove`, …)
/// first gives this copy a map of its own if another copy shares it. So a clone is
/// cheap, and code that only needs to read should not ask for `&mut`: that alone
/// copies a shared map.
#[derive(Clone, Default, PartialEq)]
pub struct Attrs(Arc<BTreeMap<String, Value>>);

impl Attrs {
    /// No attributes.
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Whether this copy and `other` share one map (a clone that neither has written
    /// since); for tests of the sharing.
    pub fn shares_with(&self, other: &Attrs) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The map itself, copied only if another copy shares it.
    pub fn into_map(self) -> BTreeMap<String, Value> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl Deref for Attrs {
    type Target = BTreeMap<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Attrs {
    fn deref_mut(&mut self) -> &mut Self::Target {
        Arc::make_mut(&mut self.0)
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<BTreeMap<String, Value>> for Attrs {
    fn from(map: BTreeMap<String, Value>) -> Attrs {
        Attrs(Arc::new(map))
    }
}

impl From<Attrs> for BTreeMap<String, Value> {
    fn from(attrs: Attrs) -> BTreeMap<String, Value> {
        attrs.into_map()
    }
}

impl<const N: usize> From<[(String, Value); N]> for Attrs {
    fn from(pairs: [(String, Value); N]) -> Attrs {
        Attrs::from(BTreeMap::from(pairs))
    }
}

impl FromIterator<(String, Value)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Attrs {
        Attrs::from(BTreeMap::from_iter(iter))
    }
}

impl Extend<(String, Value)> for Attrs {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        (**self).extend(iter);
    }
}

impl IntoIterator for Attrs {
    type Item = (String, Value);
    type IntoIter = std::collections::btree_map::IntoIter<String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_map().into_iter()
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for Attrs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Attrs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Attrs, D::Error> {
        BTreeMap::deserialize(deserializer).map(Attrs::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Attrs {
        Attrs::from([
            ("name".to_string(), json!("a")),
            ("port".to_string(), json!(1)),
        ])
    }

    #[test]
    fn a_clone_shares_until_written() {
        let a = sample();
        let mut b = a.clone();
        assert!(b.shares_with(&a));
        assert_eq!(b.get("name"), Some(&json!("a")), "reads do not copy");
        assert!(b.shares_with(&a));
        b.insert("name".into(), json!("b"));
        assert!(!b.shares_with(&a));
        assert_eq!(
            a.get("name"),
            Some(&json!("a")),
            "the other copy is untouched"
        );
        assert_eq!(b.get("name"), Some(&json!("b")));
    }

    #[test]
    fn serializes_as_the_plain_map() {
        let a = sample();
        let text = serde_json::to_string(&a).unwrap();
        assert_eq!(text, r#"{"name":"a","port":1}"#);
        let back: Attrs = serde_json::from_str(&text).unwrap();
        assert_eq!(back, a);
        assert_eq!(
            format!("{a:?}"),
            r#"{"name": String("a"), "port": Number(1)}"#
        );
    }
}
