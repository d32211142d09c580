//! Resolution: the evaluated items of every block become the final resource list.
//! Names are checked for uniqueness (database addresses and names, Docker names per
//! engine, host objects per host) and dependencies are added: `depends_on`, references
//! between blocks, Docker objects used by name, and after-apply markers.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use terrace_provider::{refs, Address, DesiredResource, ProviderKey};

use crate::diagnostics::{ConfigError, ErrorKind};
use crate::kinds::lower_database;
use crate::lifecycle;
use crate::model::{target_node, BlockDep, DockerItem, Evaluated, HostItem, Node, HOST_PREFIX};
use crate::refs::Target;
use crate::source::Loc;
use crate::syntax;

/// Every string inside a JSON value.
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// True if some string inside the value holds a marker; most hold none, and finding
/// that out allocates nothing.
fn has_marker(v: &Value) -> bool {
    match v {
        // Every marker holds a '(': most strings have none, and looking for one byte is
        // much cheaper than for the marker.
        Value::String(s) => s.as_bytes().contains(&b'(') && !refs::find(s).is_empty(),
        Value::Array(a) => a.iter().any(has_marker),
        Value::Object(o) => o.values().any(has_marker),
        _ => false,
    }
}

/// The `(address, attribute)` of every marker inside a value.
pub(crate) fn markers(v: &Value) -> Vec<(Address, String)> {
    let mut all = Vec::new();
    strings(v, &mut all);
    all.into_iter().flat_map(refs::find).collect()
}

/// Lowers every database instance, takes the evaluated Docker resources, checks
/// uniqueness and adds dependencies: within a database, on blocks referenced, on the
/// images, networks and volumes a container uses (by reference or by name), on the
/// resources whose markers an attribute holds, and of SQL resources on the container
/// running their server.
///
/// Each resource takes its block's `lifecycle`, whose `ignore_changes` names are checked
/// against the types the block lowered to.
pub(crate) fn all(
    ev: &Evaluated,
    lifecycles: &BTreeMap<Node, lifecycle::Declared>,
    schemas: &dyn Fn(&str) -> Option<&'static terrace_provider::ResourceSchema>,
    errors: &mut Vec<ConfigError>,
) -> Vec<DesiredResource> {
    // Keys borrow from `ev`: cloning them cost three allocations per database. Hashed:
    // addresses share long prefixes (`tenant.app["...`), which ordered maps compared
    // again at every level.
    let mut by_address: HashMap<&str, &Loc> = HashMap::with_capacity(ev.databases.len());
    let mut by_name: HashMap<(&str, &str), &Loc> = HashMap::with_capacity(ev.databases.len());
    // The resources of each block that something depends on (by reference or
    // `depends_on`); only those blocks are recorded: a copy of every address cost one
    // allocation per resource and most blocks are nobody's dependency.
    let mut wanted: std::collections::BTreeSet<Node> = std::collections::BTreeSet::new();
    let targets = ev.databases.iter().map(|i| &i.targets);
    let targets = targets.chain(ev.docker.iter().map(|i| &i.targets));
    for t in targets.chain(ev.host_resources.iter().map(|i| &i.targets)) {
        wanted.extend(t.iter().filter_map(target_node));
    }
    for i in &ev.host_resources {
        wanted.extend(i.block_deps.iter().map(|d| d.node.clone()));
    }
    let mut per_node: BTreeMap<&Node, Vec<Address>> = BTreeMap::new();
    // The resources, and beside them where each came from. Sized up front and kept
    // apart: a vector of (origin, resource) grown by doubling was copied a dozen times at
    // 100,000 instances, then copied again into the result.
    let capacity = 3 * ev.databases.len() + ev.docker.len() + ev.host_resources.len();
    let mut lowered: Vec<DesiredResource> = Vec::with_capacity(capacity);
    let mut origins: Vec<(&Node, &[Target], &[BlockDep])> = Vec::with_capacity(capacity);
    let mut provider: Option<(&str, ProviderKey, Option<&Address>)> = None;
    for item in &ev.databases {
        let db = &item.inst;
        if let Some(first) = by_address.get(db.base.as_str()) {
            errors.push(syntax::duplicate(
                "database block",
                &db.base,
                &item.head,
                first,
            ));
            continue;
        }
        by_address.insert(&db.base, &item.head);
        let key = (db.service.as_str(), db.name.as_str());
        if let Some(first) = by_name.get(&key) {
            errors.push(
                ConfigError::new(
                    ErrorKind::Duplicate,
                    format!("database \"{}\" is declared twice on service \"{}\"", db.name, db.service),
                )
                .at(&item.name_loc, "declared again here")
                .at(first, "first declared here")
                .help(format!(
                    "two blocks would manage the same database; give one a different name (the first is at {})",
                    first.describe()
                )),
            );
            continue;
        }
        by_name.insert(key, &item.name_loc);
        // The provider key and the service's container, found once per service: the
        // instances of a block mostly share one.
        if provider.as_ref().is_none_or(|(s, _, _)| *s != db.service) {
            let container = ev
                .services
                .get(&db.service)
                .and_then(|s| s.container.as_ref());
            let key = ProviderKey(format!("service.{}", db.service));
            provider = Some((db.service.as_str(), key, container));
        }
        let (_, key, container) = provider.as_ref().expect("just set");
        let first = lowered.len();
        lower_database(db, key, &mut lowered);
        let wanted = wanted.contains(&item.node);
        for r in &mut lowered[first..] {
            if let Some(c) = container {
                // The server must run before terrace can log in to it.
                r.depends_on.push((*c).clone());
            }
            if wanted {
                per_node
                    .entry(&item.node)
                    .or_default()
                    .push(r.address.clone());
            }
            origins.push((&item.node, &item.targets[..], &[]));
        }
    }

    // Docker object names are unique per engine and type.
    // "First" is first in the source, whatever the evaluation order.
    let mut docker: Vec<&DockerItem> = ev.docker.iter().collect();
    docker.sort_by_key(|i| (i.name_loc.file.name(), i.name_loc.span.start));
    let mut docker_names: BTreeMap<(&str, &str, &str), (&Loc, &Address)> = BTreeMap::new();
    for item in docker {
        let r = &item.resource;
        let key = (
            r.provider.0.as_str(),
            r.type_name.as_str(),
            item.name.as_str(),
        );
        if let Some((first, _)) = docker_names.get(&key) {
            let what = r.type_name.trim_start_matches("docker_");
            errors.push(
                ConfigError::new(
                    ErrorKind::Duplicate,
                    format!(
                        "{what} name \"{}\" is used twice on {}",
                        item.name, r.provider
                    ),
                )
                .at(&item.name_loc, format!("{} is named \"{}\" here", r.address, item.name))
                .at(first, "first used here")
                .help(format!(
                    "Docker {what} names are unique per engine; set a different `name = ...` on one of them (the first is at {})",
                    first.describe()
                )),
            );
            continue;
        }
        docker_names.insert(key, (&item.name_loc, &r.address));
        if wanted.contains(&item.node) {
            per_node
                .entry(&item.node)
                .or_default()
                .push(r.address.clone());
        }
        origins.push((&item.node, &item.targets[..], &[]));
        lowered.push(r.clone());
    }

    // Files, packages, daemons and firewall rules are unique per host (by path, name,
    // port and protocol): two blocks would fight over one object.
    let mut hosted: Vec<&HostItem> = ev.host_resources.iter().collect();
    hosted.sort_by_key(|i| {
        i.identity
            .as_ref()
            .map(|(_, l)| (l.file.name(), l.span.start))
    });
    let mut identities: BTreeMap<(&str, &str, &str), &Loc> = BTreeMap::new();
    for item in hosted {
        let r = &item.resource;
        if let Some((what, loc)) = &item.identity {
            let key = (r.provider.0.as_str(), r.type_name.as_str(), what.as_str());
            if let Some(first) = identities.get(&key) {
                let place = match r.provider.0.strip_prefix(HOST_PREFIX) {
                    Some(host) => format!("host \"{host}\""),
                    None => format!("{}", r.provider).replacen('.', " \"", 1) + "\"",
                };
                errors.push(
                    ConfigError::new(
                        ErrorKind::Duplicate,
                        format!("{what} is managed twice on {place}"),
                    )
                    .at(loc, format!("{} has {what} here", r.address))
                    .at(first, "first used here")
                    .help(format!(
                        "two blocks would manage the same object on one host; change or remove one of them (the first is at {})",
                        first.describe()
                    )),
                );
                continue;
            }
            identities.insert(key, loc);
        }
        if wanted.contains(&item.node) {
            per_node
                .entry(&item.node)
                .or_default()
                .push(r.address.clone());
        }
        origins.push((&item.node, &item.targets[..], &item.block_deps));
        lowered.push(r.clone());
    }
    let by_docker_name = |provider: &ProviderKey, type_name: &str, name: &str| {
        docker_names
            .get(&(provider.0.as_str(), type_name, name))
            .map(|(_, a)| (*a).clone())
    };

    let mut types: BTreeMap<&Node, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut last_node: Option<&Node> = None;
    let mut last_types: Vec<String> = Vec::new();
    // What depends only on the node, or on the references of its block, is found once
    // for the resources that follow each other with the same: the lifecycle, and the
    // resources of the blocks referred to (instances share their block's `targets`;
    // finding them made a `Node`, an allocation, per reference and resource).
    let mut lifecycle = None;
    let mut target_deps: Option<(*const Target, usize, &Node, Vec<Address>)> = None;
    for (r, (node, targets, block_deps)) in lowered.iter_mut().zip(origins) {
        if last_node != Some(node) {
            last_node = Some(node);
            last_types.clear();
            lifecycle = lifecycles.get(node);
        }
        lifecycle::apply(lifecycle, r);
        let mut deps = std::mem::take(&mut r.depends_on);
        // `depends_on`: every resource of the block, or of the one instance named.
        for d in block_deps {
            let all = per_node.get(&d.node).into_iter().flatten();
            deps.extend(
                all.filter(|a| match &d.instance {
                    None => true,
                    Some(i) => {
                        let a = a.as_str();
                        a == i
                            || a.strip_prefix(i.as_str())
                                .is_some_and(|rest| rest.starts_with(['.', '[']))
                    }
                })
                .cloned(),
            );
        }
        // A block that refers to another block is created after that block's resources.
        let known = target_deps.as_ref().is_some_and(|(p, len, n, _)| {
            std::ptr::eq(*p, targets.as_ptr()) && *len == targets.len() && *n == node
        });
        if !known {
            let mut found = Vec::new();
            for t in targets {
                let Some(dep) = target_node(t) else { continue };
                if &dep == node {
                    continue;
                }
                found.extend(per_node.get(&dep).into_iter().flatten().cloned());
            }
            target_deps = Some((targets.as_ptr(), targets.len(), node, found));
        }
        if let Some((_, _, _, found)) = &target_deps {
            deps.extend(found.iter().cloned());
        }
        if r.type_name == "docker_container" {
            if let Some(Value::String(image)) = r.attrs.get("image") {
                deps.extend(by_docker_name(&r.provider, "docker_image", image));
            }
            for n in r
                .attrs
                .get("networks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = n.get("name").and_then(Value::as_str) {
                    deps.extend(by_docker_name(&r.provider, "docker_network", name));
                }
            }
            for m in r
                .attrs
                .get("mounts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(source) = m.get("source").and_then(Value::as_str) {
                    deps.extend(by_docker_name(&r.provider, "docker_volume", source));
                }
            }
        }
        for (k, v) in &r.attrs {
            if !has_marker(v) {
                continue;
            }
            let found = markers(v);
            // A value built from a generated password is as secret as the password: in a
            // map (a container's `env`), the value of its key.
            let password = |found: &[(Address, String)]| found.iter().any(|(_, a)| a == "password");
            match v.as_object() {
                Some(map) if password(&found) => {
                    for (key, x) in map {
                        if password(&markers(x)) {
                            terrace_provider::mark_key_sensitive(&mut r.sensitive_attrs, k, key);
                        }
                    }
                }
                _ if password(&found) => {
                    terrace_provider::mark_sensitive(&mut r.sensitive_attrs, k)
                }
                _ => {}
            }
            deps.extend(found.into_iter().map(|(a, _)| a));
        }
        deps.sort();
        deps.dedup();
        deps.retain(|a| a != &r.address);
        r.depends_on = deps;
        // Resources of one node mostly follow each other, cycling through a few types
        // (a database instance's three): those seen for the current node (`last_node`)
        // are kept aside, so most resources cost neither a map lookup nor a copy of the
        // name.
        if !last_types.contains(&r.type_name) {
            last_types.push(r.type_name.clone());
            let seen = types.entry(node).or_default();
            if !seen.contains(&r.type_name) {
                seen.insert(r.type_name.clone());
            }
        }
    }
    for (node, declared) in lifecycles {
        let none = std::collections::BTreeSet::new();
        lifecycle::check_names(declared, types.get(node).unwrap_or(&none), schemas, errors);
    }
    sort_by_address(&mut lowered);
    lowered
}

/// Orders the resources by address: sorts their indices, then moves each resource along
/// the cycles of that permutation. Sorting the resources themselves moved each (some
/// 200 bytes) at every pass, through a scratch copy of them all.
fn sort_by_address(resources: &mut [DesiredResource]) {
    if resources.is_sorted_by(|a, b| a.address <= b.address) {
        return;
    }
    // `order[i]`: the index of the resource that belongs at `i`.
    let mut order: Vec<usize> = (0..resources.len()).collect();
    order.sort_by(|&a, &b| resources[a].address.cmp(&resources[b].address));
    for start in 0..order.len() {
        let mut at = start;
        // Each position takes its resource once; a placed one is marked `order[i] == i`.
        while order[at] != at {
            let from = order[at];
            order[at] = at;
            if from == start {
                break;
            }
            resources.swap(at, from);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(address: &str) -> DesiredResource {
        DesiredResource {
            address: Address::new(address),
            type_name: "sql_user".into(),
            provider: ProviderKey("service.pg".into()),
            attrs: Default::default(),
            sensitive_attrs: Default::default(),
            depends_on: vec![],
            lifecycle: Default::default(),
        }
    }

    #[test]
    fn sort_by_address_orders_every_permutation_like_a_sort() {
        // Several cycles of different lengths, a fixed point, and duplicates (which
        // keep their relative order, as a stable sort does).
        let addresses = ["e", "b", "a", "d", "c", "a", "f", "h", "g"];
        let mut resources: Vec<DesiredResource> = addresses.iter().map(|a| resource(a)).collect();
        for (i, r) in resources.iter_mut().enumerate() {
            r.type_name = i.to_string();
        }
        let mut expected = resources.clone();
        expected.sort_by(|a, b| a.address.cmp(&b.address));
        sort_by_address(&mut resources);
        assert_eq!(resources, expected);
    }

    #[test]
    fn a_marker_is_found_past_the_byte_prefilter() {
        let marker = refs::marker(&Address::new("tenant.a.database.user"), "password");
        assert!(has_marker(&Value::String(format!("mysql://u:{marker}@db"))));
        assert!(!has_marker(&Value::String("plain (text)".into())));
    }
}
