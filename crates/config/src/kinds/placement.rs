//! Where a tenant's instances run: an explicit `host = host.web["a"]`, or a
//! `placement { hosts = host.web, strategy = "fill" }` rule that fills hosts by memory.
//! A rule-placed instance stays where the state recorded it (the binary passes prior
//! placements in, [`crate::VarInputs::placements`]): adding a host or a tenant moves
//! no one; an explicit `host` is the user moving it.

use super::*;
use crate::placement::{bytes, choose, show, Bin, Strategy};
use crate::spec::Placement;

impl State<'_> {
    /// The host id of each instance of tenant block `label` (`None`: not placed, as
    /// without `host` or `placement`); `None` on errors (reported).
    pub(super) fn place(
        &mut self,
        block: &RawBlock,
        label: &str,
        list: &[(Option<String>, Option<Value>)],
    ) -> Option<Vec<Option<String>>> {
        let rule = block.blocks.iter().find(|b| b.kind == "placement");
        let host_attr = block.attr("host");
        let mut out: Vec<Option<String>> = vec![None; list.len()];
        if rule.is_none() && host_attr.is_none() {
            return Some(out);
        }
        let instance_ctx = |s: &Self, each: &Option<Value>| match each {
            Some(e) => s.instance_ctx(e.clone()),
            None => s.ctx(),
        };
        let address = |key: &Option<String>| match key {
            Some(k) => format!("tenant.{label}[{}]", quote(k)),
            None => format!("tenant.{label}"),
        };
        let mut ok = true;
        // Explicit hosts (`null` leaves the instance to the rule).
        let mut explicit = vec![false; list.len()];
        if let Some(attr) = host_attr {
            for (i, (_, each)) in list.iter().enumerate() {
                let mut r = Reader::new(instance_ctx(self, each));
                if !r.is_null(attr) {
                    out[i] = self.host_attr(&mut r, block);
                    explicit[i] = out[i].is_some();
                }
                ok &= r.finish(self.errors);
            }
        }
        let Some(rule) = rule else {
            self.record_placements(list, &out, &explicit, &address);
            return ok.then_some(out);
        };

        // The rule: its hosts, in order, each with a declared memory.
        let mut r = Reader::new(self.ctx());
        // Missing `hosts` is reported by the schema check.
        let hosts_attr = rule.attr("hosts")?;
        let hosts_example = "host.web";
        let ids: Option<Vec<String>> = r.value(hosts_attr).and_then(|v| {
            let items: Vec<Value> = match &v {
                Value::Object(m) if block_id(&v, Kind::Host).is_none() => {
                    m.values().cloned().collect()
                }
                Value::Object(_) => vec![v.clone()],
                Value::Array(a) => a.clone(),
                _ => Vec::new(),
            };
            let ids: Vec<String> = items
                .iter()
                .filter_map(|h| block_id(h, Kind::Host))
                .filter(|h| self.out.hosts.contains_key(h))
                .collect();
            if ids.is_empty() || ids.len() != items.len() {
                r.errors.push(wrong_type(
                    hosts_attr,
                    &hosts_attr.loc,
                    "hosts",
                    "host blocks (a host block with for_each, or a list of hosts)",
                    &v,
                    hosts_example,
                ));
                return None;
            }
            Some(ids)
        });
        let strategy = r
            .string(rule, "strategy", "\"fill\"")
            .and_then(|(v, loc)| {
                let found = Strategy::ALL.iter().find(|(n, _)| *n == v).map(|x| x.1);
                if found.is_none() {
                    let names = Strategy::ALL.map(|x| x.0);
                    r.errors.push(
                        ConfigError::new(
                            ErrorKind::InvalidValue,
                            format!("unknown placement strategy \"{}\"", v.escape_debug()),
                        )
                        .at(&loc, "not a strategy")
                        .help(suggest(&v, names, |all| {
                            format!(
                                "strategy must be {} (\"fill\" fills each host before the next, \"spread\" places each new tenant on the host with the most memory free)",
                                list_names(&all)
                            )
                        })),
                    );
                }
                found
            })
            .unwrap_or(Strategy::Fill);
        if !r.finish(self.errors) {
            return None;
        }
        let ids = ids?;
        let mut bins = Vec::new();
        for id in &ids {
            match self.out.hosts[id].memory {
                Some(capacity) => bins.push(Bin {
                    id: id.clone(),
                    capacity,
                    used: self.reserved_on(id),
                }),
                None => {
                    self.errors.push(
                        ConfigError::new(
                            ErrorKind::MissingAttribute,
                            format!("host.{id} has no \"memory\", which placement needs"),
                        )
                        .at(&hosts_attr.loc, "places tenants by memory")
                        .help(format!(
                            "add `memory = \"8g\"` to host.{id}: the memory tenants may reserve there (the plan also checks the engine's live memory)"
                        )),
                    );
                    ok = false;
                }
            }
        }

        // Each instance's need: its app's memory limit.
        let app_memory = block
            .blocks
            .iter()
            .find(|b| b.kind == "app")
            .and_then(|a| a.attr("memory"));
        let mut needs = vec![0u64; list.len()];
        if let Some(attr) = app_memory {
            for (i, (_, each)) in list.iter().enumerate() {
                let mut r = Reader::new(instance_ctx(self, each));
                if let Some(v) = r.value(attr).filter(|v| !v.is_null()) {
                    // A bad size is reported where the app is evaluated.
                    needs[i] = bytes(&v).unwrap_or(0);
                }
                ok &= r.finish(self.errors);
            }
        }
        if !ok {
            return None;
        }

        // Where the state says rule-placed instances are.
        let mut gone: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, (key, _)) in list.iter().enumerate() {
            if explicit[i] {
                continue;
            }
            let Some(host) = self.prior.get(&address(key)) else {
                continue;
            };
            match host.strip_prefix("host.") {
                Some(id) if self.out.hosts.contains_key(id) => out[i] = Some(id.to_string()),
                _ => gone.entry(host.clone()).or_default().push(address(key)),
            }
        }
        if !gone.is_empty() {
            for (host, tenants) in &gone {
                self.errors.push(
                    ConfigError::new(
                        ErrorKind::Capacity,
                        format!(
                            "{host} is no longer configured, but {} placed there: {}",
                            if tenants.len() == 1 { "this tenant is" } else { "these tenants are" },
                            tenants.join(", ")
                        ),
                    )
                    .at(&rule.head_loc, "placed them there")
                    .help(format!(
                        "declare {host} again to keep them where they are, or move each one explicitly: `host = host.NAME[\"KEY\"]` on the tenant (for one instance: `host = each.key == \"KEY\" ? host.NAME[\"KEY\"] : null`); the plan then re-creates its resources on the new host"
                    )),
                );
            }
            return None;
        }
        for (i, host) in out.iter().enumerate() {
            if let Some(b) = host
                .as_ref()
                .and_then(|h| bins.iter_mut().find(|b| &b.id == h))
            {
                b.used += needs[i];
            }
        }

        // New instances, in key order.
        let mut new: Vec<usize> = (0..list.len()).filter(|i| out[*i].is_none()).collect();
        new.sort_by(|a, b| list[*a].0.cmp(&list[*b].0));
        let mut unfit = Vec::new();
        for i in new {
            match choose(&bins, needs[i], strategy) {
                Some(b) => {
                    bins[b].used += needs[i];
                    out[i] = Some(bins[b].id.clone());
                }
                None => unfit.push(format!("{} needs {}", address(&list[i].0), show(needs[i]))),
            }
        }
        if !unfit.is_empty() {
            let free: Vec<String> = bins
                .iter()
                .map(|b| {
                    format!(
                        "host.{}: {} free of {}",
                        b.id,
                        show(b.free()),
                        show(b.capacity)
                    )
                })
                .collect();
            self.errors.push(
                ConfigError::new(
                    ErrorKind::Capacity,
                    format!(
                        "{} tenant(s) do not fit on any host: {}; {}",
                        unfit.len(),
                        unfit.join(", "),
                        free.join(", ")
                    ),
                )
                .at(&hosts_attr.loc, "no room left on these hosts")
                .help("add a host to `hosts`, raise a host's `memory`, or lower the tenants' app memory limits; tenants already placed stay where they are"),
            );
            return None;
        }
        self.record_placements(list, &out, &explicit, &address);
        Some(out)
    }

    /// Memory the containers evaluated so far reserve on host `id`'s engine.
    pub(super) fn reserved_on(&self, id: &str) -> u64 {
        let engine = crate::model::docker_key(Some(id));
        self.out
            .docker
            .iter()
            .filter(|d| d.resource.type_name == "docker_container" && d.resource.provider == engine)
            .map(|d| container_memory(&d.resource))
            .sum()
    }

    /// Records where each placed instance runs (`Project::placements`).
    fn record_placements(
        &mut self,
        list: &[(Option<String>, Option<Value>)],
        out: &[Option<String>],
        explicit: &[bool],
        address: &dyn Fn(&Option<String>) -> String,
    ) {
        for (i, (key, _)) in list.iter().enumerate() {
            if let Some(h) = &out[i] {
                self.out.placements.push(Placement {
                    instance: address(key),
                    host: format!("host.{h}"),
                    by_rule: !explicit[i],
                });
            }
        }
    }
}

/// A container resource's memory limit in bytes (0 without one).
pub(crate) fn container_memory(r: &terrace_provider::DesiredResource) -> u64 {
    match r.attrs.get("memory") {
        Some(Json::String(s)) => bytes(&Value::from(s.as_str())).unwrap_or(0),
        Some(Json::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}

/// Refuses a host whose containers reserve more memory than its `memory` declares
/// (tenants pinned with `host`, service containers, anything placed there), naming
/// the host and what it holds: before anything is planned or applied.
pub(crate) fn check_hosts(ev: &Evaluated, errors: &mut Vec<ConfigError>) {
    for (id, loc) in &ev.host_memory {
        let Some(capacity) = ev.hosts.get(id).and_then(|h| h.memory) else {
            continue;
        };
        let engine = crate::model::docker_key(Some(id));
        let mut held: Vec<(u64, &str)> = ev
            .docker
            .iter()
            .filter(|d| d.resource.type_name == "docker_container" && d.resource.provider == engine)
            .map(|d| (container_memory(&d.resource), d.resource.address.as_str()))
            .filter(|(m, _)| *m > 0)
            .collect();
        let reserved: u64 = held.iter().map(|h| h.0).sum();
        if reserved <= capacity {
            continue;
        }
        held.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        let list: Vec<String> = held
            .iter()
            .map(|(m, a)| format!("{a} {}", show(*m)))
            .collect();
        errors.push(
            ConfigError::new(
                ErrorKind::Capacity,
                format!(
                    "host.{id} is over-full: its containers reserve {} of the {} it declares ({} over): {}",
                    show(reserved),
                    show(capacity),
                    show(reserved - capacity),
                    list.join(", ")
                ),
            )
            .at(loc, "declared here")
            .help(format!(
                "move tenants off host.{id} (`host = ...` on the tenant, or a placement rule over several hosts), lower their memory limits, or raise this host's memory"
            )),
        );
    }
}
