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

use litemap::LiteMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Value;

/// A resource's attributes, ordered by name so that output and state are deterministic.
///
/// Reads go through `Deref` to the map; any `&mut` access (`insert`, `remove`, …)
/// first gives this copy a map of its own if another copy shares it. So a clone is
/// cheap, and code that only needs to read should not ask for `&mut`: that alone
/// copies a shared map.
#[derive(Clone, Default, PartialEq)]
pub struct Attrs(Arc<Map>);

/// The map behind [`Attrs`]: a sorted vector, since a resource has a handful of
/// attributes and a `BTreeMap` node takes ~630 bytes however few it holds.
pub type Map = LiteMap<String, Value>;

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
    pub fn into_map(self) -> Map {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

impl Deref for Attrs {
    type Target = Map;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Attrs {
    fn deref_mut(&mut self) -> &mut Self::Target {
        Arc::make_mut(&mut self.0)
    }
}

/// `attrs["name"]`, which panics if there is no such attribute (as a `BTreeMap` does).
impl std::ops::Index<&str> for Attrs {
    type Output = Value;

    fn index(&self, name: &str) -> &Value {
        self.get(name)
            .unwrap_or_else(|| panic!("no attribute {name:?}"))
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl From<Map> for Attrs {
    fn from(map: Map) -> Attrs {
        // Built by pushing, the vector has up to twice the room it needs; most maps
        // are never written again.
        let mut pairs = map.into_tuple_vec();
        pairs.shrink_to_fit();
        Attrs(Arc::new(Map::from_sorted_store_unchecked(pairs)))
    }
}

impl From<BTreeMap<String, Value>> for Attrs {
    fn from(map: BTreeMap<String, Value>) -> Attrs {
        // Already sorted and without duplicates.
        Attrs::from(Map::from_sorted_store_unchecked(map.into_iter().collect()))
    }
}

impl<const N: usize> From<[(String, Value); N]> for Attrs {
    fn from(pairs: [(String, Value); N]) -> Attrs {
        pairs.into_iter().collect()
    }
}

impl FromIterator<(String, Value)> for Attrs {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Attrs {
        Attrs::from(Map::from_iter(iter))
    }
}

impl Extend<(String, Value)> for Attrs {
    fn extend<I: IntoIterator<Item = (String, Value)>>(&mut self, iter: I) {
        (**self).extend(iter);
    }
}

impl IntoIterator for Attrs {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.into_map().into_tuple_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (&'a String, &'a Value);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        Iter(self.0.as_slice().iter())
    }
}

/// Iterator over an [`Attrs`]' names and values, in name order.
pub struct Iter<'a>(std::slice::Iter<'a, (String, Value)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl Serialize for Attrs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Attrs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Attrs, D::Error> {
        Map::deserialize(deserializer).map(Attrs::from)
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

    #[test]
    fn names_come_out_sorted_and_the_last_duplicate_wins() {
        let read: Attrs = serde_json::from_str(r#"{"z":1,"a":2,"m":3,"a":4}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"{"a":4,"m":3,"z":1}"#
        );
        let collected: Attrs = [("b", 1), ("a", 2), ("b", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let names: Vec<&String> = collected.keys().collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(collected["b"], json!(3));
        let mut extended = collected.clone();
        extended.extend([("a".to_string(), json!(5)), ("0".to_string(), json!(6))]);
        assert_eq!(
            serde_json::to_string(&extended).unwrap(),
            r#"{"0":6,"a":5,"b":3}"#
        );
        assert_eq!(collected["b"], json!(3), "the shared copy is untouched");
    }
}
