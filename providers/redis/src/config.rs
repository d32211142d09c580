//! `redis_config`: a server's settings in the form `CONFIG GET` reports them, so that
//! what the user wrote (`maxmemory = "256mb"`) and what Redis says (`268435456`) compare
//! equal and never make a perpetual diff.

use serde_json::{Map, Value};

use crate::schema::check_setting_name;

/// Settings whose value is one word of a fixed set, reported in lower case.
const ENUMS: &[&str] = &[
    "maxmemory-policy",
    "appendfsync",
    "loglevel",
    "appendonly",
    "protected-mode",
    "lazyfree-lazy-eviction",
    "lazyfree-lazy-expire",
    "activedefrag",
];

/// Bytes of a Redis memory value (`"256mb"`, `"1gb"`, `"100k"`), with Redis' own units:
/// `k`, `m`, `g` are powers of 1000, `kb`, `mb`, `gb` powers of 1024, case-insensitive.
/// `None` if it is not one.
pub fn memory_bytes(value: &str) -> Option<u64> {
    let v = value.trim().to_ascii_lowercase();
    let digits = v.len() - v.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let (n, unit) = v.split_at(digits);
    let factor: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    n.parse::<u64>().ok()?.checked_mul(factor)
}

/// One setting's value in canonical form: memory in bytes, booleans `yes`/`no`, the
/// enumerated settings in lower case; anything else as written.
pub fn canonical_value(name: &str, value: &Value) -> Result<String, String> {
    let raw = match value {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => (if *b { "yes" } else { "no" }).to_string(),
        other => return Err(format!("setting {name:?}: {other} is not a string")),
    };
    if let Some(bytes) = memory_bytes(&raw) {
        return Ok(bytes.to_string());
    }
    let lower = raw.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "true" => "yes".into(),
        "false" => "no".into(),
        _ if ENUMS.contains(&name) => lower,
        _ => raw,
    })
}

/// The whole `settings` map in canonical form, names checked.
pub fn canonical(settings: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (name, value) in settings {
        check_setting_name(name).map_err(|e| e.message)?;
        out.insert(name.clone(), Value::String(canonical_value(name, value)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn memory_and_words_take_the_form_redis_reports() {
        assert_eq!(memory_bytes("256mb"), Some(268_435_456));
        assert_eq!(memory_bytes("256MB"), Some(268_435_456));
        assert_eq!(memory_bytes("1g"), Some(1_000_000_000));
        assert_eq!(memory_bytes("100"), Some(100));
        assert_eq!(memory_bytes("allkeys-lru"), None);
        assert_eq!(memory_bytes("5x"), None);
        let c = canonical(
            json!({"maxmemory": "256mb", "maxmemory-policy": "ALLKEYS-LRU", "lazyfree-lazy-eviction": true, "hz": 10})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            Value::Object(c),
            json!({"maxmemory": "268435456", "maxmemory-policy": "allkeys-lru", "lazyfree-lazy-eviction": "yes", "hz": "10"})
        );
        assert!(canonical(json!({"max*": "1"}).as_object().unwrap()).is_err());
    }
}
