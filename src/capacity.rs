//! Host capacity: the memory limits of the containers a plan leaves on each Docker
//! engine must fit in that engine's host. A plan that over-fills a host is refused
//! before anything is applied, and every plan shows how full each host will be.
//!
//! Connection budgets likewise: the tenants' `connection_limit`s on each SQL or Redis
//! server must fit in what the server takes (`max_connections`, `maxclients`, read
//! live), less a reserve for administration.

use std::collections::BTreeMap;

use terrace_config::Project;
use terrace_plan::{Action, Plan};
use terrace_provider::{Connections, ProviderKey, Value};

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
    /// The engine's host block (`host.web["a"]`), if it runs on one.
    pub host: Option<String>,
    /// The memory that host block declares (`memory = "8g"`), if it does.
    pub declared: Option<u64>,
}

impl Usage {
    /// True if the limits add up to more than the host has, or than it declares.
    pub fn over_full(&self) -> bool {
        [self.capacity, self.declared]
            .into_iter()
            .flatten()
            .any(|c| self.reserved > c)
    }

    /// The engine, named by its host's address when it has one:
    /// `host.web["a"] (docker.web["a"])`.
    pub fn name(&self) -> String {
        match &self.host {
            Some(h) => format!("{h} ({})", self.engine),
            None => self.engine.to_string(),
        }
    }
}

/// How many connections the tenants of one server may open after a plan is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// The server's provider (`service.<name>`).
    pub server: ProviderKey,
    /// Sum of the tenants' connection limits.
    pub committed: u64,
    /// How many tenants set a limit.
    pub tenants: usize,
    /// What the server takes, if it could be read (not before its container runs).
    pub capacity: Option<Connections>,
}

impl Budget {
    /// What tenants may share: the server's limit less the administration reserve.
    pub fn available(&self) -> Option<u64> {
        self.capacity.map(|c| c.max.saturating_sub(c.reserved))
    }

    /// By how many connections the limits exceed what is available, if they do.
    pub fn overflow(&self) -> Option<u64> {
        self.available()
            .filter(|a| self.committed > *a)
            .map(|a| self.committed - a)
    }
}

/// What a plan leaves on every engine and server: memory and connections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Memory reserved per Docker engine.
    pub memory: Vec<Usage>,
    /// Connections committed per SQL or Redis server whose tenants set limits.
    pub connections: Vec<Budget>,
}

/// The resource types whose `connection_limit` is a tenant's share of its server
/// (on PostgreSQL the database carries it, on MariaDB/MySQL the user).
const LIMITED: &[&str] = &["sql_database", "sql_user", "redis_user"];

/// Memory per engine and connections per server after `plan` is applied, with what
/// each holds. Those that cannot say (or cannot be reached) have `capacity: None`.
pub async fn usage(providers: &ProviderSet, project: &Project, plan: &Plan) -> Report {
    let mut memory = memory(providers, plan).await;
    for u in &mut memory {
        let host = u
            .engine
            .0
            .strip_prefix("docker.")
            .and_then(|id| project.hosts.get(id));
        u.host = host.map(|h| format!("host.{}", h.name));
        u.declared = host.and_then(|h| h.memory);
    }
    Report {
        memory,
        connections: connections(providers, plan).await,
    }
}

/// The connection limits per server, and each server's live limit. Only servers with
/// at least one limited tenant are asked (one query each, concurrently); a server in a
/// container that does not run yet, or runs anew after this plan, is not.
async fn connections(providers: &ProviderSet, plan: &Plan) -> Vec<Budget> {
    let mut per_server: BTreeMap<ProviderKey, Budget> = BTreeMap::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| LIMITED.contains(&c.type_name.as_str()) && c.action != Action::Delete)
    {
        let limit = c
            .after
            .as_ref()
            .and_then(|a| a.get("connection_limit"))
            .and_then(Value::as_i64)
            .filter(|n| *n > 0);
        let Some(limit) = limit else { continue };
        let b = per_server
            .entry(c.provider.clone())
            .or_insert_with(|| Budget {
                server: c.provider.clone(),
                committed: 0,
                tenants: 0,
                capacity: None,
            });
        b.committed += limit as u64;
        b.tenants += 1;
    }
    let settled = |addr: &terrace_provider::Address| {
        plan.changes
            .iter()
            .find(|c| &c.address == addr)
            .is_none_or(|c| c.action == Action::NoOp)
    };
    let mut tasks = tokio::task::JoinSet::new();
    for key in per_server.keys() {
        if providers.gate(key).is_some_and(|g| !settled(g)) {
            continue;
        }
        let Ok(provider) = providers.get(key) else {
            continue;
        };
        let key = key.clone();
        tasks.spawn(async move { (key, provider.connections().await) });
    }
    while let Some(Ok((key, found))) = tasks.join_next().await {
        match found {
            Ok(c) => per_server.get_mut(&key).expect("asked").capacity = c,
            Err(e) => tracing::warn!("{key}: cannot read its connection limit: {e}"),
        }
    }
    // A Redis `maxclients` this plan sets counts instead of the live one.
    for c in plan
        .changes
        .iter()
        .filter(|c| c.type_name == "redis_config")
    {
        let planned = c
            .after
            .as_ref()
            .and_then(|a| a.get("settings")?.get("maxclients")?.as_str()?.parse().ok());
        if let (Some(max), Some(b)) = (planned, per_server.get_mut(&c.provider)) {
            let reserved = b
                .capacity
                .map_or(terrace_provider_redis::ADMIN_RESERVE, |c| c.reserved);
            b.capacity = Some(Connections { max, reserved });
        }
    }
    per_server.into_values().collect()
}

/// Reservations per engine after `plan` is applied, with each engine's capacity.
async fn memory(providers: &ProviderSet, plan: &Plan) -> Vec<Usage> {
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
                host: None,
                declared: None,
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
/// `Capacity: docker.local: 1.1 GiB of 23.4 GiB memory reserved by 5 containers`
/// (`host.web["a"] (docker.web["a"]): 1.1 GiB of 2.0 GiB declared, 23.4 GiB live ...`
/// for an engine whose host declares its memory), then
/// one per server with limited tenants, e.g. `Connections: service.db: 60 of 146
/// committed to 3 tenant(s) (max_connections 151, 5 kept for administration)`.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for u in &report.memory {
        let of = match (u.declared, u.capacity) {
            (Some(d), Some(c)) => format!(" of {} declared, {} live", gib(d), gib(c)),
            (Some(d), None) => format!(" of {} declared", gib(d)),
            (None, Some(c)) => format!(" of {}", gib(c)),
            (None, None) => String::new(),
        };
        let unlimited = if u.unlimited > 0 {
            format!(" ({} without a memory limit)", u.unlimited)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "Capacity: {}: {}{of} memory reserved by {} container(s){unlimited}{}\n",
            u.name(),
            gib(u.reserved),
            u.containers,
            if u.over_full() { " — OVER-FULL" } else { "" }
        ));
    }
    for b in &report.connections {
        let of = match (b.available(), b.capacity) {
            (Some(a), Some(c)) => format!(
                " of {a} (the server takes {}, {} kept for administration)",
                c.max, c.reserved
            ),
            _ => " (the server's limit is read once it runs)".into(),
        };
        out.push_str(&format!(
            "Connections: {}: {}{of} committed to {} tenant(s){}\n",
            b.server,
            b.committed,
            b.tenants,
            if b.overflow().is_some() {
                " — OVER-COMMITTED"
            } else {
                ""
            }
        ));
    }
    out
}

/// Refuses a plan that over-fills any host or over-commits any server's connections.
pub fn check(report: &Report) -> miette::Result<()> {
    let over: Vec<String> = report
        .connections
        .iter()
        .filter_map(|b| {
            let (overflow, c) = (b.overflow()?, b.capacity?);
            Some(format!(
                "{}: the tenants' connection limits add up to {}, its budget is {} ({} connections less {} kept for administration): {overflow} over",
                b.server,
                b.committed,
                c.max.saturating_sub(c.reserved),
                c.max,
                c.reserved
            ))
        })
        .collect();
    if !over.is_empty() {
        miette::bail!(
            help = "lower the tenants' connection_limit, raise the server's limit (max_connections, maxclients), or move tenants to another server",
            "refusing a plan that over-commits a server's connections:\n  {}",
            over.join("\n  ")
        )
    }
    let over: Vec<String> = report
        .memory
        .iter()
        .filter(|u| u.over_full())
        .map(|u| {
            let limit = [u.capacity, u.declared].into_iter().flatten().min();
            let what = match (u.declared, u.capacity) {
                (Some(d), Some(c)) if d <= c => format!("its host declares {}", gib(d)),
                (Some(d), None) => format!("its host declares {}", gib(d)),
                _ => format!("its host has {}", gib(limit.unwrap_or_default())),
            };
            format!(
                "{}: containers would reserve {} of memory, {what}",
                u.name(),
                gib(u.reserved),
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
            host: None,
            declared: None,
        }
    }

    #[test]
    fn over_full_hosts_are_refused_and_shown() {
        let ok = usage(1 << 30, Some(4 << 30));
        let full = usage(5 << 30, Some(4 << 30));
        let report = |memory: Vec<Usage>| Report {
            memory,
            connections: vec![],
        };
        assert!(check(&report(vec![ok.clone()])).is_ok());
        let err = check(&report(vec![ok.clone(), full.clone()]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "docker.local: containers would reserve 5.0 GiB of memory, its host has 4.0 GiB"
            ),
            "{err}"
        );
        assert_eq!(
            render(&report(vec![ok])),
            "Capacity: docker.local: 1.0 GiB of 4.0 GiB memory reserved by 3 container(s) (1 without a memory limit)\n"
        );
        assert!(render(&report(vec![full])).contains("OVER-FULL"));
        assert!(
            check(&report(vec![usage(5 << 30, None)])).is_ok(),
            "unknown capacity is not a refusal"
        );
    }

    #[test]
    fn hosts_are_named_and_their_declared_memory_counts() {
        let declared = |reserved, live| Usage {
            engine: ProviderKey(r#"docker.web["a"]"#.into()),
            host: Some(r#"host.web["a"]"#.into()),
            declared: Some(2 << 30),
            ..usage(reserved, live)
        };
        let report = |u: Usage| Report {
            memory: vec![u],
            connections: vec![],
        };
        assert_eq!(
            render(&report(declared(1 << 30, Some(8 << 30)))),
            "Capacity: host.web[\"a\"] (docker.web[\"a\"]): 1.0 GiB of 2.0 GiB declared, 8.0 GiB live memory reserved by 3 container(s) (1 without a memory limit)\n"
        );
        let err = check(&report(declared(3 << 30, Some(8 << 30))))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(r#"host.web["a"] (docker.web["a"]): containers would reserve 3.0 GiB of memory, its host declares 2.0 GiB"#),
            "{err}"
        );
        let err = check(&report(declared(3 << 30, Some(1 << 30))))
            .unwrap_err()
            .to_string();
        assert!(err.contains("its host has 1.0 GiB"), "{err}");
    }

    #[test]
    fn over_committed_servers_are_refused_naming_budget_and_overflow() {
        let budget = |committed, max: Option<u64>| Budget {
            server: ProviderKey("service.db".into()),
            committed,
            tenants: 3,
            capacity: max.map(|max| Connections { max, reserved: 8 }),
        };
        let report = |b: Budget| Report {
            memory: vec![],
            connections: vec![b],
        };
        let ok = report(budget(60, Some(100)));
        assert!(check(&ok).is_ok());
        assert_eq!(
            render(&ok),
            "Connections: service.db: 60 of 92 (the server takes 100, 8 kept for administration) committed to 3 tenant(s)\n"
        );
        let over = report(budget(100, Some(100)));
        assert!(render(&over).contains("OVER-COMMITTED"));
        let err = check(&over).unwrap_err().to_string();
        assert!(
            err.contains("service.db: the tenants' connection limits add up to 100, its budget is 92 (100 connections less 8 kept for administration): 8 over"),
            "{err}"
        );
        let unknown = report(budget(1000, None));
        assert!(check(&unknown).is_ok(), "unknown limit is not a refusal");
        assert!(render(&unknown).contains("read once it runs"));
    }
}
