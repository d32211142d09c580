//! Placement of tenants on hosts: memory sizes, and the rule that fills hosts by
//! memory (see ARCHITECTURE.md, "Placement").

use hcl::Value;

/// `"256m"`, `"1g"`, `"512k"`, `"1024b"` (binary units, as Docker reads them) or a
/// whole number of bytes → bytes. The same rules as the Docker provider's
/// normalisation of a container's `memory` (which the config crate does not depend
/// on), so a tenant's need and a host's size are counted like the engine counts them.
pub(crate) fn bytes(v: &Value) -> Result<u64, String> {
    let s = match v {
        Value::Number(n) => {
            return n
                .as_u64()
                .ok_or_else(|| "must be a non-negative whole number of bytes".to_string())
        }
        Value::String(s) => s.trim().to_ascii_lowercase(),
        _ => return Err("must be bytes or a string like \"8g\"".into()),
    };
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult): (&str, u64) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let bad = || format!("{v} is not a size like \"8g\", \"256m\", \"512k\" or a byte count");
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    if !f.is_finite() || f < 0.0 {
        return Err(bad());
    }
    Ok((f * mult as f64).floor() as u64)
}

/// How a placement rule chooses among the hosts a new tenant fits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// The first host in the rule's order: fills one host before the next.
    Fill,
    /// The host with the most memory free (the first of equals): spreads tenants.
    Spread,
}

impl Strategy {
    /// Every strategy, as written.
    pub(crate) const ALL: [(&'static str, Strategy); 2] =
        [("fill", Strategy::Fill), ("spread", Strategy::Spread)];
}

/// One host a rule places on: its declared memory and what is reserved on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bin {
    /// The host's id (`web["a"]`).
    pub id: String,
    /// Its declared memory.
    pub capacity: u64,
    /// Reserved so far (containers already on it, tenants placed on it).
    pub used: u64,
}

impl Bin {
    /// What is left.
    pub(crate) fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used)
    }
}

/// The host a tenant needing `need` bytes goes to, or `None` if it fits nowhere.
pub(crate) fn choose(bins: &[Bin], need: u64, strategy: Strategy) -> Option<usize> {
    let fits = bins.iter().enumerate().filter(|(_, b)| b.free() >= need);
    match strategy {
        Strategy::Fill => fits.map(|(i, _)| i).next(),
        // `max_by_key` keeps the last of equals; reversed order keeps the first.
        Strategy::Spread => fits.rev().max_by_key(|(_, b)| b.free()).map(|(i, _)| i),
    }
}

/// A size in bytes for messages: `1.5 GiB`, `256 MiB`.
pub(crate) fn show(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB {
        let g = bytes as f64 / GIB as f64;
        format!("{} GiB", trim(g))
    } else {
        format!("{} MiB", trim(bytes as f64 / MIB as f64))
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_binary_like_dockers() {
        assert_eq!(bytes(&Value::from("8g")), Ok(8 << 30));
        assert_eq!(bytes(&Value::from("256M")), Ok(256 << 20));
        assert_eq!(bytes(&Value::from("1.5g")), Ok(3 << 29));
        assert_eq!(bytes(&Value::from(1024)), Ok(1024));
        assert!(bytes(&Value::from("lots")).is_err());
        assert!(bytes(&Value::from(-1)).is_err());
        assert_eq!(show(3 << 29), "1.5 GiB");
        assert_eq!(show(1280 << 20), "1.25 GiB");
        assert_eq!(show(256 << 20), "256 MiB");
    }

    #[test]
    fn fill_takes_the_first_host_with_room_spread_the_emptiest() {
        let bin = |id: &str, capacity, used| Bin {
            id: id.into(),
            capacity,
            used,
        };
        let bins = [bin("a", 10, 6), bin("b", 10, 2), bin("c", 10, 2)];
        assert_eq!(choose(&bins, 4, Strategy::Fill), Some(0));
        assert_eq!(choose(&bins, 5, Strategy::Fill), Some(1));
        assert_eq!(
            choose(&bins, 1, Strategy::Spread),
            Some(1),
            "first of equals"
        );
        assert_eq!(choose(&bins, 9, Strategy::Spread), None);
    }
}
