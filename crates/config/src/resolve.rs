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
        Value::String(s) => !refs::find(s).is_empty(),
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
    // Sized up front: grown by doubling, this vector of large items was copied a dozen
    // times at 100,000 instances.
    let mut lowered: Vec<(&Node, &[Target], &[BlockDep], DesiredResource)> =
        Vec::with_capacity(3 * ev.databases.len() + ev.docker.len() + ev.host_resources.len());
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
        for mut r in lower_database(db) {
            if let Some(c) = ev
                .services
                .get(&db.service)
                .and_then(|s| s.container.as_ref())
            {
                // The server must run before terrace can log in to it.
                r.depends_on.push(c.clone());
            }
            if wanted.contains(&item.node) {
                per_node
                    .entry(&item.node)
                    .or_default()
                    .push(r.address.clone());
            }
            lowered.push((&item.node, &item.targets[..], &[], r));
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
        lowered.push((&item.node, &item.targets[..], &[], r.clone()));
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
        lowered.push((&item.node, &item.targets[..], &item.block_deps, r.clone()));
    }
    let by_docker_name = |provider: &ProviderKey, type_name: &str, name: &str| {
        docker_names
            .get(&(provider.0.as_str(), type_name, name))
            .map(|(_, a)| (*a).clone())
    };

    let mut out = Vec::with_capacity(lowered.len());
    let mut types: BTreeMap<&Node, std::collections::BTreeSet<String>> = BTreeMap::new();
    // The types of the node of the resource before: most resources follow another of
    // their block, whose types are known then.
    let mut last: Option<(&Node, String)> = None;
    for (node, targets, block_deps, mut r) in lowered {
        lifecycle::apply(lifecycles.get(node), &mut r);
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
        for t in targets {
            let Some(dep) = target_node(t) else { continue };
            if &dep == node {
                continue;
            }
            deps.extend(per_node.get(&dep).into_iter().flatten().cloned());
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
        let known = last
            .as_ref()
            .is_some_and(|(n, t)| *n == node && *t == r.type_name);
        if !known {
            let seen = types.entry(node).or_default();
            if !seen.contains(&r.type_name) {
                seen.insert(r.type_name.clone());
            }
            last = Some((node, r.type_name.clone()));
        }
        out.push(r);
    }
    for (node, declared) in lifecycles {
        let none = std::collections::BTreeSet::new();
        lifecycle::check_names(declared, types.get(node).unwrap_or(&none), schemas, errors);
    }
    sort_by_address(out)
}

/// The resources ordered by address. Sorting indices, then moving each resource once:
/// sorting the resources themselves moved each (some 200 bytes) at every pass.
fn sort_by_address(resources: Vec<DesiredResource>) -> Vec<DesiredResource> {
    if resources.is_sorted_by(|a, b| a.address <= b.address) {
        return resources;
    }
    let mut order: Vec<usize> = (0..resources.len()).collect();
    order.sort_by(|&a, &b| resources[a].address.cmp(&resources[b].address));
    let mut slots: Vec<Option<DesiredResource>> = resources.into_iter().map(Some).collect();
    order
        .into_iter()
        .map(|i| slots[i].take().expect("each index once"))
        .collect()
}
