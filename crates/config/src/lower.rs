//! Lowering evaluated blocks into resources, and the dependencies between them.
//!
//! A database block becomes the three resources the SQL provider expects: `B`
//! (`sql_database`), `B.user` (`sql_user`) and `B.grant` (`sql_grant`). Images,
//! networks, volumes and containers are evaluated straight into `docker_*` resources;
//! here they get their dependencies and their names are checked for uniqueness.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use terrace_provider::{refs, Address, Attrs, DesiredResource, ProviderKey};

use crate::diagnostics::{ConfigError, ErrorKind};
use crate::eval::Evaluated;
use crate::graph::Node;
use crate::refs::Target;
use crate::source::Loc;
use crate::syntax;
use crate::Engine;

/// Provider keys of Docker engines start with this.
pub(crate) const DOCKER_PREFIX: &str = "docker.";

/// The provider key of the Docker engine on `host` (the local engine without one).
pub(crate) fn docker_key(host: Option<&str>) -> ProviderKey {
    ProviderKey(format!("{DOCKER_PREFIX}{}", host.unwrap_or("local")))
}

/// One evaluated database block instance with where it came from.
#[derive(Debug)]
pub(crate) struct DbItem {
    /// The top-level block that owns it.
    pub node: Node,
    pub inst: DbInstance,
    /// The block's head (for duplicate addresses).
    pub head: Loc,
    /// Where the database name is written.
    pub name_loc: Loc,
    /// References of the block it was evaluated from (cross-block dependencies).
    pub targets: Vec<Target>,
}

/// One evaluated `docker_*` resource with where it came from.
#[derive(Debug)]
pub(crate) struct DockerItem {
    /// The top-level block that owns it.
    pub node: Node,
    /// The resource; `depends_on` holds the dependencies known at evaluation
    /// (`self.database` of an app), the rest are added by [`all`].
    pub resource: DesiredResource,
    /// The Docker object name.
    pub name: String,
    /// Where the name is written (the block head when it is defaulted).
    pub name_loc: Loc,
    /// References of the block it was evaluated from.
    pub targets: Vec<Target>,
}

/// One evaluated `host_*` resource with where it came from.
#[derive(Debug)]
pub(crate) struct HostItem {
    /// The top-level block that owns it.
    pub node: Node,
    /// The resource; `depends_on` holds the dependencies known at evaluation (the
    /// files of `restart_on`), the rest are added by [`all`].
    pub resource: DesiredResource,
    /// What must be unique per host and type (`file path "/etc/x"`), and where it is
    /// written.
    pub identity: Option<(String, Loc)>,
    /// References of the block (cross-block dependencies), without `depends_on` and
    /// `restart_on`.
    pub targets: Vec<Target>,
    /// `depends_on`: the blocks (or one instance of a block) waited for.
    pub block_deps: Vec<BlockDep>,
}

/// One `depends_on` item: every resource of `node`, or only those of one instance.
#[derive(Debug, Clone)]
pub(crate) struct BlockDep {
    pub node: Node,
    /// `kind.label["key"]` when one instance is named.
    pub instance: Option<String>,
}

/// Provider keys of SSH hosts start with this.
pub(crate) const HOST_PREFIX: &str = "host.";

fn target_node(t: &Target) -> Option<Node> {
    match t {
        Target::File(n) => Some(Node::File(n.clone())),
        Target::Package(n) => Some(Node::Package(n.clone())),
        Target::Daemon(n) => Some(Node::Daemon(n.clone())),
        Target::FirewallRule(n) => Some(Node::FirewallRule(n.clone())),
        Target::Command(n) => Some(Node::Command(n.clone())),
        Target::Service(n) => Some(Node::Service(n.clone())),
        Target::Tenant(n) => Some(Node::Tenant(n.clone())),
        Target::Database(n) => Some(Node::Database(n.clone())),
        Target::Image(n) => Some(Node::Image(n.clone())),
        Target::Network(n) => Some(Node::Network(n.clone())),
        Target::Volume(n) => Some(Node::Volume(n.clone())),
        _ => None,
    }
}

/// Every string inside a JSON value.
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
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
pub(crate) fn all(ev: &Evaluated, errors: &mut Vec<ConfigError>) -> Vec<DesiredResource> {
    let mut by_address: BTreeMap<String, &Loc> = BTreeMap::new();
    let mut by_name: BTreeMap<(String, String), &Loc> = BTreeMap::new();
    let mut per_node: BTreeMap<&Node, Vec<Address>> = BTreeMap::new();
    let mut lowered: Vec<(&Node, &[Target], &[BlockDep], DesiredResource)> = Vec::new();
    for item in &ev.databases {
        let db = &item.inst;
        if let Some(first) = by_address.get(&db.base) {
            errors.push(syntax::duplicate(
                "database block",
                &db.base,
                &item.head,
                first,
            ));
            continue;
        }
        by_address.insert(db.base.clone(), &item.head);
        let key = (db.service.clone(), db.name.clone());
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
        for mut r in lower(db) {
            if let Some(c) = ev
                .services
                .get(&db.service)
                .and_then(|s| s.container.as_ref())
            {
                // The server must run before terrace can log in to it.
                r.depends_on.push(c.clone());
            }
            per_node
                .entry(&item.node)
                .or_default()
                .push(r.address.clone());
            lowered.push((&item.node, &item.targets, &[], r));
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
        per_node
            .entry(&item.node)
            .or_default()
            .push(r.address.clone());
        lowered.push((&item.node, &item.targets, &[], r.clone()));
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
                let host = r.provider.0.trim_start_matches(HOST_PREFIX);
                errors.push(
                    ConfigError::new(
                        ErrorKind::Duplicate,
                        format!("{what} is managed twice on host \"{host}\""),
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
        per_node
            .entry(&item.node)
            .or_default()
            .push(r.address.clone());
        lowered.push((&item.node, &item.targets, &item.block_deps, r.clone()));
    }
    let by_docker_name = |provider: &ProviderKey, type_name: &str, name: &str| {
        docker_names
            .get(&(provider.0.as_str(), type_name, name))
            .map(|(_, a)| (*a).clone())
    };

    let mut out = Vec::new();
    for (node, targets, block_deps, mut r) in lowered {
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
            let found = markers(v);
            // A value built from a generated password is as secret as the password.
            if found.iter().any(|(_, attr)| attr == "password") {
                r.sensitive_attrs.insert(k.clone());
            }
            deps.extend(found.into_iter().map(|(a, _)| a));
        }
        deps.sort();
        deps.dedup();
        deps.retain(|a| a != &r.address);
        r.depends_on = deps;
        out.push(r);
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    out
}

/// One evaluated database block instance.
#[derive(Debug, Clone)]
pub(crate) struct DbInstance {
    /// Base address, e.g. `tenant.app["x"].database`.
    pub base: String,
    pub service: String,
    pub engine: Engine,
    pub name: String,
    pub user: String,
    pub connection_limit: Option<i64>,
    pub password: Option<String>,
    pub privileges: Vec<String>,
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// Block attributes (`name`, `user`, ...) whose expression is sensitive.
    pub sensitive: BTreeSet<&'static str>,
    /// Whether `user` was set explicitly (else it follows `name`, and its sensitivity).
    pub user_set: bool,
}

fn attrs(pairs: Vec<(&str, Option<Value>)>) -> Attrs {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

/// The three resources of one database instance.
pub(crate) fn lower(db: &DbInstance) -> Vec<DesiredResource> {
    let b = Address::new(db.base.clone());
    let user_addr = Address::new(format!("{}.user", db.base));
    let grant_addr = Address::new(format!("{}.grant", db.base));
    let provider = ProviderKey(format!("service.{}", db.service));
    let s = |attr: &'static str| db.sensitive.contains(attr);
    // The user name comes from `user`, or from `name` when `user` is not set.
    let user_sensitive = if db.user_set { s("user") } else { s("name") };
    let limit = db.connection_limit.map(|n| json!(n));
    let password = db.password.as_ref().map(|p| json!(p));
    let privileges = json!(db.privileges);

    let mut database_sens = BTreeSet::new();
    let mut user_sens = BTreeSet::new();
    let mut grant_sens = BTreeSet::new();
    let mark = |set: &mut BTreeSet<String>, cond: bool, name: &str| {
        if cond {
            set.insert(name.to_string());
        }
    };
    mark(&mut database_sens, s("name"), "name");
    mark(&mut user_sens, user_sensitive, "name");
    mark(&mut user_sens, s("password"), "password");
    mark(&mut grant_sens, s("name"), "database");
    mark(&mut grant_sens, user_sensitive, "user");
    mark(&mut grant_sens, s("privileges"), "privileges");

    let (database_attrs, user_attrs, grant_attrs) = match db.engine {
        Engine::Postgres => {
            mark(&mut database_sens, user_sensitive, "owner");
            mark(
                &mut database_sens,
                s("connection_limit"),
                "connection_limit",
            );
            (
                attrs(vec![
                    ("name", Some(json!(db.name))),
                    ("owner", Some(json!(db.user))),
                    ("connection_limit", limit),
                ]),
                attrs(vec![("name", Some(json!(db.user))), ("password", password)]),
                attrs(vec![
                    ("database", Some(json!(db.name))),
                    ("user", Some(json!(db.user))),
                    ("privileges", Some(privileges)),
                    ("revoke_public", Some(json!(true))),
                ]),
            )
        }
        _ => {
            mark(&mut database_sens, s("charset"), "charset");
            mark(&mut database_sens, s("collation"), "collation");
            mark(&mut user_sens, s("connection_limit"), "connection_limit");
            (
                attrs(vec![
                    ("name", Some(json!(db.name))),
                    (
                        "charset",
                        // A collation implies its charset: only default the charset
                        // when neither is given (the provider derives it otherwise).
                        match (&db.charset, &db.collation) {
                            (Some(c), _) => Some(json!(c)),
                            (None, None) => Some(json!("utf8mb4")),
                            (None, Some(_)) => None,
                        },
                    ),
                    ("collation", db.collation.as_ref().map(|c| json!(c))),
                ]),
                attrs(vec![
                    ("name", Some(json!(db.user))),
                    ("host", Some(json!("%"))),
                    ("connection_limit", limit),
                    ("password", password),
                ]),
                attrs(vec![
                    ("database", Some(json!(db.name))),
                    ("user", Some(json!(db.user))),
                    ("host", Some(json!("%"))),
                    ("privileges", Some(privileges)),
                ]),
            )
        }
    };
    let database_deps = match db.engine {
        // The owner must exist before the database that names it.
        Engine::Postgres => vec![user_addr.clone()],
        _ => vec![],
    };
    vec![
        DesiredResource {
            address: b.clone(),
            type_name: "sql_database".into(),
            provider: provider.clone(),
            attrs: database_attrs,
            sensitive_attrs: database_sens,
            depends_on: database_deps,
        },
        DesiredResource {
            address: user_addr.clone(),
            type_name: "sql_user".into(),
            provider: provider.clone(),
            attrs: user_attrs,
            sensitive_attrs: user_sens,
            depends_on: vec![],
        },
        DesiredResource {
            address: grant_addr,
            type_name: "sql_grant".into(),
            provider,
            attrs: grant_attrs,
            sensitive_attrs: grant_sens,
            depends_on: vec![b, user_addr],
        },
    ]
}
