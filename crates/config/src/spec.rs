//! The public description of a loaded configuration's services, hosts and engines.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use terrace_provider::{Address, Secret};

/// Values for input variables from outside the configuration.
#[derive(Debug, Clone, Default)]
pub struct VarInputs {
    /// `--var name=value` flags, in command-line order (later wins).
    pub vars: Vec<(String, String)>,
    /// `--var-file` paths, in command-line order (later wins); HCL `name = value` files.
    pub var_files: Vec<PathBuf>,
    /// Environment variables; only `TERRACE_VAR_<name>` entries are used (the caller
    /// passes `std::env::vars()`, filtered or not).
    pub env: Vec<(String, String)>,
    /// `terrace validate` without values: a required variable with no value gets a
    /// placeholder of its type (see [`crate::Project::placeholders`]) instead of being an
    /// error, so a lint job needs no secrets.
    pub placeholders: bool,
    /// Where the state says tenant instances were placed: instance address
    /// (`tenant.site["blog"]`) → host address (`host.web["a"]`). A placement rule keeps
    /// them there, so that adding hosts or tenants moves no one.
    pub placements: BTreeMap<String, String>,
}

/// An `output` block: a value for tools and people outside terrace (`terrace output`),
/// never part of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    /// The value. Strings may hold markers for values known only after apply
    /// (`terrace_provider::refs`), which the binary fills from the state.
    pub value: serde_json::Value,
    /// Shown only when asked for by name.
    pub sensitive: bool,
    /// `description`, if set.
    pub description: Option<String>,
}

/// The expiry of one instance, from `lifecycle { expires_at = ..., ttl = ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// The instance address: `tenant.clone["c101"]`, or `tenant.clone` without
    /// for_each. Its resources are those whose address is this or starts with it
    /// followed by a `.`.
    pub instance: String,
    /// An absolute end.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A lifetime counted from when terrace first created the instance (the state
    /// records that time).
    pub ttl: Option<chrono::TimeDelta>,
}

/// Where one tenant instance runs: chosen by its `host`, or by its block's
/// `placement` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The instance address: `tenant.site["blog"]`.
    pub instance: String,
    /// The host's address: `host.web["a"]`.
    pub host: String,
    /// True if the rule chose it (or kept it where the state recorded it), false for
    /// an explicit `host`.
    pub by_rule: bool,
}

/// A `moved` block: the state's objects at `from` (an address, or a block whose
/// resources all move) are recorded at `to` before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// The old address, as written (`tenant.app["old"]`).
    pub from: String,
    /// The new address.
    pub to: String,
}

/// Provider keys of Docker engines start with this.
pub(crate) const DOCKER_PREFIX: &str = "docker.";

/// A `service` block: a database server that terrace administers, a container, or both
/// (a database server that terrace also runs as a container).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Block label, with the instance key of a for_each instance (`db["a"]`): the
    /// provider key is `service.<name>`.
    pub name: String,
    /// Engine.
    pub engine: Engine,
    /// How terrace reaches and logs in to a SQL server (SQL engines only).
    pub sql: Option<SqlEndpoint>,
    /// How terrace reaches and logs in to a Redis server as an admin ACL user, to manage
    /// tenants' ACL users (`engine = "redis"` with `endpoint` and `admin`).
    pub redis: Option<SqlEndpoint>,
    /// The address of the `docker_container` resource running the service
    /// (`service.<name>.container`), if it has a `container` block.
    pub container: Option<Address>,
    /// The `host` block the service runs on, if given.
    pub host: Option<String>,
}

/// Where and as whom terrace administers a server (SQL, or Redis ACLs).
#[derive(Debug, Clone, PartialEq)]
pub struct SqlEndpoint {
    /// Server address (`endpoint.address`).
    pub address: String,
    /// Server port (`endpoint.port`, default 5432 or 3306).
    pub port: u16,
    /// Administrative user terrace logs in as.
    pub admin_user: String,
    /// That user's password.
    pub admin_password: Secret,
}

/// A supported service engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// MySQL.
    Mysql,
    /// MariaDB.
    Mariadb,
    /// Redis: run as a container, administered (ACL users) through `endpoint` and
    /// `admin`, or both.
    Redis,
    /// A plain container service.
    Container,
}

impl Engine {
    /// Every engine, in the order help texts list them.
    pub const ALL: [Engine; 5] = [
        Engine::Postgres,
        Engine::Mysql,
        Engine::Mariadb,
        Engine::Redis,
        Engine::Container,
    ];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Mariadb => "mariadb",
            Engine::Redis => "redis",
            Engine::Container => "container",
        }
    }

    /// True for SQL servers (they have an endpoint, an admin login and databases).
    pub fn is_sql(self) -> bool {
        matches!(self, Engine::Postgres | Engine::Mysql | Engine::Mariadb)
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `host` block: a machine reachable over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSpec {
    /// Block label, with the instance key of a for_each instance (`web["a"]`): the
    /// host's provider key is `host.<name>`, its engine's `docker.<name>`.
    pub name: String,
    /// Address or hostname.
    pub address: String,
    /// SSH port (default 22).
    pub port: u16,
    /// Login user (default `root`).
    pub user: String,
    /// Private key file, if not the SSH default: an absolute path (`~/` is expanded
    /// to `$HOME`, relative paths resolve against the configuration directory).
    pub identity_file: Option<String>,
    /// known_hosts file to check the host key against, if not ssh's default; an
    /// absolute path, resolved like `identity_file`.
    pub known_hosts: Option<String>,
    /// What to do with a host key that is not known yet (`host_key_check`).
    pub host_key_check: HostKeyCheck,
    /// Whether commands run through sudo (`become = true`).
    pub become_root: bool,
    /// The Docker engine's socket on that machine (`docker = { socket = "..." }`).
    pub docker_socket: Option<String>,
    /// The memory containers may reserve on it, in bytes (`memory = "8g"`): placement
    /// fills hosts up to it, and plans that reserve more are refused.
    pub memory: Option<u64>,
}

/// A host's SSH host key policy (`host_key_check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HostKeyCheck {
    /// The host key must already be known (`"strict"`, the default).
    #[default]
    Strict,
    /// An unknown host key is added to known_hosts; a changed one is refused
    /// (`"accept-new"`).
    AcceptNew,
}

impl HostKeyCheck {
    /// Every policy, in the order help texts list them.
    pub const ALL: [HostKeyCheck; 2] = [HostKeyCheck::Strict, HostKeyCheck::AcceptNew];

    /// The name used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyCheck::Strict => "strict",
            HostKeyCheck::AcceptNew => "accept-new",
        }
    }
}

impl fmt::Display for HostKeyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One Docker engine that resources are placed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEngineSpec {
    /// The provider key of its resources: `docker.local`, or `docker.<host label>` for
    /// resources with `host = host.<label>`.
    pub key: String,
    /// The socket from the host block's `docker = { socket = ... }`, if set.
    pub socket: Option<String>,
    /// The host block the engine runs on. For `docker.local` this is the host block
    /// labelled `local` if one is declared (it carries the local engine's settings),
    /// else `None`.
    pub host: Option<String>,
}

impl DockerEngineSpec {
    /// The engine behind provider key `docker.<label>`: the host block of that label if
    /// one is declared (its socket and name), else the machine's own engine.
    pub fn for_label(label: &str, hosts: &BTreeMap<String, HostSpec>) -> Self {
        let host = hosts.get(label);
        DockerEngineSpec {
            key: format!("{}{label}", DOCKER_PREFIX),
            socket: host.and_then(|h| h.docker_socket.clone()),
            host: host.map(|h| h.name.clone()),
        }
    }
}
