//! The model shared by evaluation and resolution: the nodes of the block graph, and
//! the items each block kind evaluates to (resources with where they came from).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use terrace_provider::{DesiredResource, ProviderKey};

use crate::refs::Target;
use crate::source::Loc;
use crate::spec::Engine;
pub(crate) use crate::spec::DOCKER_PREFIX;
use crate::spec::{HostSpec, ServiceSpec};

/// A unit of evaluation: one local value or one top-level block (with all its instances).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Node {
    Local(String),
    Host(String),
    Service(String),
    Tenant(String),
    Database(String),
    Image(String),
    Network(String),
    Volume(String),
    File(String),
    Package(String),
    Daemon(String),
    FirewallRule(String),
    Command(String),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Local(n) => write!(f, "local.{n}"),
            Node::Host(n) => write!(f, "host.{n}"),
            Node::Service(n) => write!(f, "service.{n}"),
            Node::Tenant(n) => write!(f, "tenant.{n}"),
            Node::Database(n) => write!(f, "database.{n}"),
            Node::Image(n) => write!(f, "image.{n}"),
            Node::Network(n) => write!(f, "network.{n}"),
            Node::Volume(n) => write!(f, "volume.{n}"),
            Node::File(n) => write!(f, "file.{n}"),
            Node::Package(n) => write!(f, "package.{n}"),
            Node::Daemon(n) => write!(f, "daemon.{n}"),
            Node::FirewallRule(n) => write!(f, "firewall_rule.{n}"),
            Node::Command(n) => write!(f, "command.{n}"),
        }
    }
}

/// The node a reference makes its block depend on (`None` for variables, `self` and
/// `each`, which are not blocks).
pub(crate) fn target_node(t: &Target) -> Option<Node> {
    match t {
        Target::Local(n) => Some(Node::Local(n.clone())),
        Target::Host(n) => Some(Node::Host(n.clone())),
        Target::Service(n) => Some(Node::Service(n.clone())),
        Target::Tenant(n) => Some(Node::Tenant(n.clone())),
        Target::Database(n) => Some(Node::Database(n.clone())),
        Target::Image(n) => Some(Node::Image(n.clone())),
        Target::Network(n) => Some(Node::Network(n.clone())),
        Target::Volume(n) => Some(Node::Volume(n.clone())),
        Target::File(n) => Some(Node::File(n.clone())),
        Target::Package(n) => Some(Node::Package(n.clone())),
        Target::Daemon(n) => Some(Node::Daemon(n.clone())),
        Target::FirewallRule(n) => Some(Node::FirewallRule(n.clone())),
        Target::Command(n) => Some(Node::Command(n.clone())),
        _ => None,
    }
}

/// Everything evaluation produces.
#[derive(Debug, Default)]
pub(crate) struct Evaluated {
    pub hosts: BTreeMap<String, HostSpec>,
    pub services: BTreeMap<String, ServiceSpec>,
    /// Database instances, with their owning blocks.
    pub databases: Vec<DbItem>,
    /// Images, networks, volumes and containers, as resources.
    pub docker: Vec<DockerItem>,
    /// Files, packages, services, firewall rules and commands on SSH hosts.
    pub host_resources: Vec<HostItem>,
    pub secrets: Vec<String>,
}

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
