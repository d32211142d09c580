//! HCL values as hash keys: hcl-rs values have equality but no `Hash`, and the
//! evaluator needs sets and lookups of them (`toset`, references matched by value)
//! that cost one hash per element rather than a scan of everything before it.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

use hcl::Value;

/// A value (owned, or borrowed with `Hashed<&Value>`) usable as a `HashMap` or
/// `HashSet` key: keys are equal exactly when the values are (`==`), so that a set
/// deduplicates like a scan with `contains` does.
#[derive(Debug, Clone)]
pub(crate) struct Hashed<V>(pub V);

impl<V: Borrow<Value>> PartialEq for Hashed<V> {
    fn eq(&self, other: &Self) -> bool {
        self.0.borrow() == other.0.borrow()
    }
}

impl<V: Borrow<Value>> Eq for Hashed<V> {}

impl<V: Borrow<Value>> Hash for Hashed<V> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_value(self.0.borrow(), state);
    }
}

/// Hashes a value consistently with its equality: numbers by their `f64` (`1` and
/// `1.0` are equal), and objects independently of key order (two objects with the same
/// entries in another order are equal).
fn hash_value<H: Hasher>(v: &Value, state: &mut H) {
    std::mem::discriminant(v).hash(state);
    match v {
        Value::Null => {}
        Value::Bool(b) => b.hash(state),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or_default();
            // +0 and -0 are equal.
            let f = if f == 0.0 { 0.0 } else { f };
            f.to_bits().hash(state);
        }
        Value::String(s) => s.hash(state),
        Value::Array(items) => {
            items.len().hash(state);
            for item in items {
                hash_value(item, state);
            }
        }
        Value::Object(map) => {
            map.len().hash(state);
            // Order-independent: the sum of each entry's own hash.
            let mut sum: u64 = 0;
            for (k, v) in map {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                k.hash(&mut h);
                hash_value(v, &mut h);
                sum = sum.wrapping_add(h.finish());
            }
            sum.hash(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(v: Value) -> Hashed<Value> {
        Hashed(v)
    }

    #[test]
    fn equal_values_are_one_key() {
        let mut set = HashSet::new();
        assert!(set.insert(key(Value::from(1))));
        assert!(!set.insert(key(Value::from(1.0))), "1 and 1.0 are equal");
        assert!(
            set.insert(key(Value::from("1"))),
            "a string is not a number"
        );
        let ab: hcl::Map<String, Value> = [
            ("a".to_string(), Value::from(1)),
            ("b".to_string(), Value::from(2)),
        ]
        .into();
        let ba: hcl::Map<String, Value> = [
            ("b".to_string(), Value::from(2)),
            ("a".to_string(), Value::from(1)),
        ]
        .into();
        assert_eq!(Value::Object(ab.clone()), Value::Object(ba.clone()));
        assert!(set.insert(key(Value::Object(ab))));
        assert!(
            !set.insert(key(Value::Object(ba))),
            "key order does not matter"
        );
        assert!(set.insert(key(Value::Array(vec![Value::from(1), Value::from(2)]))));
        assert!(set.insert(key(Value::Array(vec![Value::from(2), Value::from(1)]))));
    }
}
