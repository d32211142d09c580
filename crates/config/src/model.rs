//! The model shared by evaluation and resolution: the nodes of the block graph, and
//! the items each block kind evaluates to (resources with where they came from).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use terrace_provider::{DesiredResource, ProviderKey};

pub(crate) use crate::kind::Kind;
use crate::refs::Target;

/// The blocks a block refers to (cross-block dependencies), shared by its instances.
pub(crate) type Targets = std::rc::Rc<[Target]>;
use crate::source::Loc;
use crate::spec::Engine;
pub(crate) use crate::spec::DOCKER_PREFIX;
use crate::spec::{HostSpec, ServiceSpec};

/// A unit of evaluation: one local value or one top-level block (with all its instances).
///
/// Ordered locals first, then by kind in [`Kind::ALL`] order, then by label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Node {
    /// One `locals` entry.
    Local(String),
    /// One labelled block.
    Block(Kind, String),
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Local(n) => write!(f, "local.{n}"),
            Node::Block(kind, n) => write!(f, "{}.{n}", kind.keyword()),
        }
    }
}

/// The node a reference makes its block depend on (`None` for variables, `self` and
/// `each`, which are not blocks).
pub(crate) fn target_node(t: &Target) -> Option<Node> {
    match t {
        Target::Local(n) => Some(Node::Local(n.clone())),
        Target::Block(kind, n) => Some(Node::Block(*kind, n.clone())),
        Target::Var(_) | Target::SelfRef(_) | Target::EachKey | Target::EachValue => None,
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
    /// `output` blocks, by label.
    pub outputs: BTreeMap<String, crate::spec::OutputSpec>,
    /// Instances with an expiry (`lifecycle { expires_at, ttl }`), in evaluation order.
    pub expiries: Vec<crate::spec::Expiry>,
    /// Where tenant instances run (tenants with `host` or `placement`), in evaluation order.
    pub placements: Vec<crate::spec::Placement>,
    /// Where each host's `memory` is written, by host id.
    pub host_memory: BTreeMap<String, Loc>,
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
    pub targets: Targets,
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
    pub targets: Targets,
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
    pub targets: Targets,
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
