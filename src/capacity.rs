//! Host capacity: the memory limits of the containers a plan leaves on each Docker
//! engine must fit in that engine's host. A plan that over-fills a host is refused
//! before anything is applied, and every plan shows how full each host will be.

use std::collections::BTreeMap;

use terrace_plan::{Action, Plan};
use terrace_provider::{ProviderKey, Value};

use crate::providers::ProviderSet;

/// How much of one engine's memory the planned containers reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The engine.
    pub engine: ProviderKey,
    /// Sum of the containers' memory limits, in bytes.
    pub reserved: u64,
    /// Containers that will exist on it.
    pub containers: usize,
    /// Of those, how many have no memory limit (they can use anything).
    pub unlimited: usize,
    /// The host's memory, if the engine reports it.
    pub capacity: Option<u64>,
}

impl Usage {
    /// True if the limits add up to more than the host has.
    pub fn over_full(&self) -> bool {
        self.capacity.is_some_and(|c| self.reserved > c)
    }
}

/// Reservations per engine after `plan` is applied, with each engine's capacity.
/// Engines that cannot say (or cannot be reached) have `capacity: None`.
pub async fn usage(providers: &ProviderSet, plan: &Plan) -> Vec<Usage> {
    let mut per_engine: BTreeMap<ProviderKey, Usage> = BTreeMap::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.type_name == "docker_container")
    {
        let Some(after) = c.after.as_ref().filter(|_| c.action != Action::Delete) else {
            continue;
        };
        let u = per_engine
            .entry(c.provider.clone())
            .or_insert_with(|| Usage {
                engine: c.provider.clone(),
                reserved: 0,
                containers: 0,
                unlimited: 0,
                capacity: None,
            });
        u.containers += 1;
        match after.get("memory").and_then(Value::as_u64) {
            Some(bytes) if bytes > 0 => u.reserved += bytes,
            _ => u.unlimited += 1,
        }
    }
    for u in per_engine.values_mut() {
        if let Ok(provider) = providers.get(&u.engine) {
            u.capacity = provider
                .capacity()
                .await
                .ok()
                .flatten()
                .map(|c| c.memory_bytes);
        }
    }
    per_engine.into_values().collect()
}

/// One line per engine, e.g.
/// `Capacity: docker.local: 1.1 GiB of 23.4 GiB memory reserved by 5 containers`.
pub fn render(usage: &[Usage]) -> String {
    let mut out = String::new();
    for u in usage {
        let of = u
            .capacity
            .map(|c| format!(" of {}", gib(c)))
            .unwrap_or_default();
        let unlimited = if u.unlimited > 0 {
            format!(" ({} without a memory limit)", u.unlimited)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "Capacity: {}: {}{of} memory reserved by {} container(s){unlimited}{}\n",
            u.engine,
            gib(u.reserved),
            u.containers,
            if u.over_full() { " — OVER-FULL" } else { "" }
        ));
    }
    out
}

/// Refuses a plan that over-fills any host.
pub fn check(usage: &[Usage]) -> miette::Result<()> {
    let over: Vec<String> = usage
        .iter()
        .filter(|u| u.over_full())
        .map(|u| {
            format!(
                "{}: containers would reserve {} of memory, its host has {}",
                u.engine,
                gib(u.reserved),
                gib(u.capacity.unwrap_or_default())
            )
        })
        .collect();
    if over.is_empty() {
        return Ok(());
    }
    miette::bail!(
        help = "lower the containers' memory limits, or place some tenants on another host",
        "refusing a plan that over-fills a host:\n  {}",
        over.join("\n  ")
    )
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(reserved: u64, capacity: Option<u64>) -> Usage {
        Usage {
            engine: ProviderKey("docker.local".into()),
            reserved,
            containers: 3,
            unlimited: 1,
            capacity,
        }
    }

    #[test]
    fn over_full_hosts_are_refused_and_shown() {
        let ok = usage(1 << 30, Some(4 << 30));
        let full = usage(5 << 30, Some(4 << 30));
        assert!(check(std::slice::from_ref(&ok)).is_ok());
        let err = check(&[ok.clone(), full.clone()]).unwrap_err().to_string();
        assert!(
            err.contains(
                "docker.local: containers would reserve 5.0 GiB of memory, its host has 4.0 GiB"
            ),
            "{err}"
        );
        assert_eq!(
            render(&[ok]),
            "Capacity: docker.local: 1.0 GiB of 4.0 GiB memory reserved by 3 container(s) (1 without a memory limit)\n"
        );
        assert!(render(&[full]).contains("OVER-FULL"));
        assert!(
            check(&[usage(5 << 30, None)]).is_ok(),
            "unknown capacity is not a refusal"
        );
    }
}
