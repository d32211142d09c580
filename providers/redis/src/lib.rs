//! terrace provider for Redis: `redis_user`, an ACL user confined to a key prefix, and
//! `redis_config`, a server's settings (`CONFIG SET`).
//!
//! One provider instance serves one Redis server, logged in as an admin ACL user.
//! Observe is one `ACL LIST` however many users are asked for, and one `CONFIG GET`
//! naming every setting asked for; every user is written
//! whole with `ACL SETUSER <name> reset ...` (so an update also removes whatever was
//! granted by hand), its password sent as a SHA-256 hash (`#<hex>`), never in clear.
//! Every call has a timeout, and no error carries a password.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};
use serde_json::{json, Value};
use terrace_provider::{
    find_schema, Address, Attrs, Connections, ObserveRequest, Observed, Operation, PlanProblem,
    PlannedChange, Provider, ProviderError, ProviderResult, ResourceSchema, Secret, Step,
};
use tokio::sync::OnceCell;

pub mod acl;
pub mod config;
mod overlap;
pub mod schema;

pub use schema::{CONFIG, SCHEMAS, USER};

/// How long connecting, and each command, may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long deleting a tenant's keys (`purge_keys`) may take in all.
const PURGE_TIMEOUT: Duration = Duration::from_secs(300);

/// Keys asked for per `SCAN` call, and unlinked per `UNLINK`.
const SCAN_BATCH: usize = 1000;

/// Clients kept out of the tenants' connection budget: terrace's own connection and
/// room for an operator's `redis-cli`.
pub const ADMIN_RESERVE: u64 = 5;

/// `password_status` when the live hash is the SHA-256 of the password in state, alone.
pub const PASSWORD_MATCHES: &str = "matches";
/// `password_status` when the user's only password is another one.
pub const PASSWORD_CHANGED: &str = "changed outside terrace";
/// `password_status` when the known password works and so does another one.
pub const PASSWORD_ALSO_ANOTHER: &str = "another password also works (added outside terrace)";
/// `password_status` when the user takes any password (`nopass`).
pub const PASSWORD_ANY: &str = "any password works (nopass, set outside terrace)";
/// `password_status` when the user has no password left: nobody can log in as it.
pub const PASSWORD_NONE: &str = "no password works (removed outside terrace)";

/// Where and as whom terrace administers a Redis server.
#[derive(Clone)]
pub struct RedisServer {
    /// Address (host name or IP).
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// The admin ACL user terrace logs in as.
    pub admin_user: String,
    /// Its password.
    pub admin_password: Secret,
}

impl RedisServer {
    /// `redis://user@address:port`, for messages (never the password).
    pub fn target(&self) -> String {
        format!("redis://{}@{}:{}", self.admin_user, self.address, self.port)
    }
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.target())
    }
}

/// The provider for one Redis server.
pub struct RedisProvider {
    server: RedisServer,
    /// A local unix socket that reaches the server (an SSH forward), instead of its
    /// address and port.
    socket: Option<PathBuf>,
    /// How long to keep retrying the first connection (a server terrace has just
    /// started in a container); `None` fails at once.
    ready_timeout: Option<Duration>,
    conn: OnceCell<MultiplexedConnection>,
    /// Users the last observe could not check the password of (imported).
    unverified: Mutex<Vec<String>>,
    /// Every user on the server confined to one prefix, at the last observe that read
    /// users (name → prefix): what the plan check holds new prefixes and purges against.
    prefixes: Mutex<BTreeMap<String, String>>,
    /// Commands sent so far; see [`RedisProvider::commands_sent`].
    commands: AtomicU64,
}

impl fmt::Debug for RedisProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisProvider")
            .field("target", &self.server.target())
            .finish_non_exhaustive()
    }
}

/// A Redis error as text free of secrets: Redis never echoes a password back, and the
/// connection's own errors name only the address; the admin password is scrubbed anyway.
fn describe(e: &redis::RedisError, secret: &Secret) -> String {
    terrace_provider::scrub(&e.to_string(), [secret.expose()])
}

fn attr<'a>(attrs: &'a Attrs, name: &str, address: &Address) -> ProviderResult<&'a str> {
    attrs
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::Invalid(format!("{address}: redis_user needs {name}")))
}

impl RedisProvider {
    /// A provider for `server`; nothing connects until first use.
    pub fn new(server: RedisServer) -> Self {
        RedisProvider {
            server,
            socket: None,
            ready_timeout: None,
            conn: OnceCell::new(),
            unverified: Mutex::new(Vec::new()),
            prefixes: Mutex::new(BTreeMap::new()),
            commands: AtomicU64::new(0),
        }
    }

    /// How many commands this provider has sent so far. Exists so that tests can prove
    /// that observe is one round trip however many users it is asked about; the
    /// server's own command statistics are shared with every other client.
    pub fn commands_sent(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    fn connect_error(&self, message: String) -> ProviderError {
        ProviderError::Connect {
            target: self.server.target(),
            message,
        }
    }

    /// Reaches the server through `socket` (the local end of an SSH forward) instead
    /// of its address and port.
    pub fn with_socket(mut self, socket: impl Into<PathBuf>) -> Self {
        self.socket = Some(socket.into());
        self
    }

    /// Keeps retrying the first connection for up to `timeout`, for a server terrace
    /// itself has just started: its container runs before Redis accepts logins.
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = Some(timeout);
        self
    }

    /// One connection attempt, with a timeout.
    async fn connect_once(&self) -> Result<MultiplexedConnection, (bool, String)> {
        let s = &self.server;
        let addr = match &self.socket {
            Some(path) => ConnectionAddr::Unix(path.clone()),
            None => ConnectionAddr::Tcp(s.address.clone(), s.port),
        };
        let info = addr
            .into_connection_info()
            .map_err(|e| (false, describe(&e, &s.admin_password)))?
            .set_redis_settings(
                RedisConnectionInfo::default()
                    .set_username(&s.admin_user)
                    .set_password(s.admin_password.expose()),
            );
        let client =
            redis::Client::open(info).map_err(|e| (false, describe(&e, &s.admin_password)))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        match tokio::time::timeout(
            TIMEOUT,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Err(_) => Err((true, format!("timed out after {TIMEOUT:?}"))),
            // Only a server that does not answer at all is "not ready yet"; one that
            // refuses the login is up.
            Ok(Err(e)) => Err((
                e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped(),
                describe(&e, &s.admin_password),
            )),
            Ok(Ok(c)) => Ok(c),
        }
    }

    async fn conn(&self) -> ProviderResult<MultiplexedConnection> {
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let started = std::time::Instant::now();
                loop {
                    match (self.connect_once().await, self.ready_timeout) {
                        (Ok(c), _) => return Ok(c),
                        (Err((true, _)), Some(limit)) if started.elapsed() < limit => {
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        (Err((true, e)), Some(limit)) => {
                            return Err(self.connect_error(format!(
                                "not accepting connections after {}s: {e}",
                                limit.as_secs()
                            )))
                        }
                        (Err((_, e)), _) => return Err(self.connect_error(e)),
                    }
                }
            })
            .await?;
        Ok(conn.clone())
    }

    /// Runs one command with a timeout; `what` names it in errors.
    async fn run<T: redis::FromRedisValue>(
        &self,
        address: &Address,
        what: &str,
        cmd: &redis::Cmd,
    ) -> ProviderResult<T> {
        let mut conn = self.conn().await?;
        self.commands.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Err(_) => Err(ProviderError::Operation {
                address: address.clone(),
                message: format!("{what} timed out after {TIMEOUT:?}"),
            }),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => {
                Err(self.connect_error(describe(&e, &self.server.admin_password)))
            }
            Ok(Err(e)) => Err(ProviderError::Operation {
                address: address.clone(),
                message: format!("{what}: {}", describe(&e, &self.server.admin_password)),
            }),
            Ok(Ok(v)) => Ok(v),
        }
    }

    /// Runs one `ACL` command with a timeout.
    async fn acl<T: redis::FromRedisValue>(
        &self,
        address: &Address,
        args: &[String],
    ) -> ProviderResult<T> {
        let mut cmd = redis::cmd("ACL");
        for a in args {
            cmd.arg(a);
        }
        let what = format!("ACL {}", args.first().map_or("", String::as_str));
        self.run(address, &what, &cmd).await
    }

    /// The live values of `names`: one `CONFIG GET` naming them all.
    async fn config_get(
        &self,
        address: &Address,
        names: &[String],
    ) -> ProviderResult<HashMap<String, String>> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET");
        for n in names {
            cmd.arg(n);
        }
        self.run(address, "CONFIG GET", &cmd).await
    }

    /// How many keys start with each prefix: one pass of `SCAN` over the keyspace
    /// whatever the number of prefixes, within [`PURGE_TIMEOUT`].
    async fn count_keys(&self, prefixes: &[String]) -> ProviderResult<HashMap<String, u64>> {
        let whole = Address::new(self.server.target());
        let mut counts: HashMap<String, u64> = prefixes.iter().map(|p| (p.clone(), 0)).collect();
        if prefixes.is_empty() {
            return Ok(counts);
        }
        let started = std::time::Instant::now();
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor).arg("COUNT").arg(SCAN_BATCH);
            // One prefix: let the server filter.
            if let [p] = prefixes {
                cmd.arg("MATCH").arg(acl::key_glob(p));
            }
            let (next, keys): (u64, Vec<String>) = self.run(&whole, "SCAN", &cmd).await?;
            for k in &keys {
                for p in prefixes.iter().filter(|p| k.starts_with(p.as_str())) {
                    *counts.get_mut(p).expect("every prefix counted") += 1;
                }
            }
            cursor = next;
            if cursor == 0 {
                return Ok(counts);
            }
            if started.elapsed() > PURGE_TIMEOUT {
                return Err(ProviderError::Operation {
                    address: whole,
                    message: format!("counting keys took longer than {PURGE_TIMEOUT:?}"),
                });
            }
        }
    }

    /// Deletes every key starting with `prefix` (`SCAN MATCH` + `UNLINK` in batches),
    /// within [`PURGE_TIMEOUT`]; returns how many were deleted.
    async fn purge(&self, address: &Address, prefix: &str) -> ProviderResult<u64> {
        let started = std::time::Instant::now();
        let mut cursor: u64 = 0;
        let mut deleted = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(acl::key_glob(prefix))
                .arg("COUNT")
                .arg(SCAN_BATCH);
            let (next, keys): (u64, Vec<String>) = self.run(address, "SCAN", &cmd).await?;
            if !keys.is_empty() {
                let mut unlink = redis::cmd("UNLINK");
                unlink.arg(&keys);
                let n: u64 = self.run(address, "UNLINK", &unlink).await?;
                deleted += n;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(deleted);
            }
            if started.elapsed() > PURGE_TIMEOUT {
                return Err(ProviderError::Operation {
                    address: address.clone(),
                    message: format!(
                        "deleting the keys of {prefix:?} took longer than {PURGE_TIMEOUT:?} ({deleted} deleted so far); apply again to go on"
                    ),
                });
            }
        }
    }

    /// Every ACL user on the server, by name: one round trip.
    async fn list(&self) -> ProviderResult<HashMap<String, acl::LiveUser>> {
        let whole = Address::new(self.server.target());
        let lines: Vec<String> = self.acl(&whole, &["LIST".to_string()]).await?;
        Ok(lines
            .iter()
            .filter_map(|l| acl::parse_line(l))
            .map(|u| (u.name.clone(), u))
            .collect())
    }

    /// What observe reports for a live user, given the password terrace knows.
    fn describe_user(user: &acl::LiveUser, password: Option<&str>) -> Attrs {
        let mut out = Attrs::new();
        out.insert("name".into(), json!(user.name));
        // The prefix is what the key pattern confines the user to, when it is one.
        if let Some(p) = user.prefix() {
            out.insert("prefix".into(), json!(p));
        }
        out.insert("enabled".into(), json!(user.enabled));
        out.insert("key_patterns".into(), json!(user.keys));
        out.insert("channel_patterns".into(), json!(user.channels));
        out.insert("commands".into(), json!(user.commands));
        if let Some(pw) = password {
            let known = acl::password_hash(pw);
            let status = if user.nopass {
                PASSWORD_ANY
            } else if user.hashes == [known.clone()] {
                PASSWORD_MATCHES
            } else if user.hashes.contains(&known) {
                PASSWORD_ALSO_ANOTHER
            } else if user.hashes.is_empty() {
                PASSWORD_NONE
            } else {
                PASSWORD_CHANGED
            };
            out.insert("password_status".into(), json!(status));
        }
        out
    }

    fn schema(type_name: &str) -> ProviderResult<&'static ResourceSchema> {
        find_schema(SCHEMAS, type_name).ok_or_else(|| {
            ProviderError::Invalid(format!("unknown Redis resource type {type_name:?}"))
        })
    }
}

/// A new random password: 32 alphanumeric characters.
pub fn generate_password() -> Secret {
    use rand::distr::{Alphanumeric, SampleString};
    Secret::new(Alphanumeric.sample_string(&mut rand::rng(), 32))
}

/// How many apply steps one Redis server is given at once. terrace talks to it over one
/// multiplexed connection and Redis runs commands one at a time, so more steps in flight
/// only queue on that connection; a few keep the pipe busy while a step (a key purge's
/// `SCAN`) waits on a reply.
pub const APPLY_CONCURRENCY: usize = 4;

#[async_trait::async_trait]
impl Provider for RedisProvider {
    fn schemas(&self) -> &'static [ResourceSchema] {
        SCHEMAS
    }

    /// [`APPLY_CONCURRENCY`].
    fn max_concurrency(&self, _operation: terrace_provider::Operation) -> usize {
        APPLY_CONCURRENCY
    }

    fn normalize(&self, type_name: &str, attrs: &mut Attrs) -> ProviderResult<()> {
        let schema = Self::schema(type_name)?;
        if type_name == CONFIG {
            let settings = attrs
                .get("settings")
                .and_then(Value::as_object)
                .ok_or_else(|| ProviderError::Invalid("redis_config needs settings".into()))?;
            let canonical = config::canonical(settings).map_err(ProviderError::Invalid)?;
            attrs.insert("settings".into(), Value::Object(canonical));
            return Ok(());
        }
        let address = attrs
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("redis_user")
            .to_string();
        schema
            .check_attrs(&address, attrs)
            .map_err(|e| e.into_error(USER))?;
        let prefix = attr(attrs, "prefix", &Address::new(address.clone()))?.to_string();
        // What a tenant must be, exactly: observe reports the live values of these.
        attrs.insert("enabled".into(), json!(true));
        attrs.insert("key_patterns".into(), json!([acl::key_pattern(&prefix)]));
        attrs.insert(
            "channel_patterns".into(),
            json!([acl::channel_pattern(&prefix)]),
        );
        attrs.insert("commands".into(), json!(acl::TENANT_COMMANDS));
        attrs.insert("password_status".into(), json!(PASSWORD_MATCHES));
        Ok(())
    }

    async fn check_plan(&self, changes: &[PlannedChange]) -> ProviderResult<Vec<PlanProblem>> {
        let live = self.prefixes.lock().expect("prefixes lock").clone();
        Ok(overlap::problems(&live, changes))
    }

    fn unverified(&self) -> Vec<String> {
        self.unverified.lock().expect("unverified lock").clone()
    }

    /// `maxclients`, read live, less [`ADMIN_RESERVE`].
    async fn connections(&self) -> ProviderResult<Option<Connections>> {
        let whole = Address::new(self.server.target());
        let live = self.config_get(&whole, &["maxclients".to_string()]).await?;
        let max = live
            .get("maxclients")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| ProviderError::Operation {
                address: whole,
                message: "CONFIG GET maxclients gave no number".into(),
            })?;
        Ok(Some(Connections {
            max,
            reserved: ADMIN_RESERVE,
        }))
    }

    async fn observe(&self, requests: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
        for r in requests {
            Self::schema(&r.type_name)?;
        }
        self.unverified.lock().expect("unverified lock").clear();
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let whole = Address::new(self.server.target());
        let wants_users = requests.iter().any(|r| r.type_name == USER);
        let users = if wants_users {
            self.list().await?
        } else {
            HashMap::new()
        };
        *self.prefixes.lock().expect("prefixes lock") = users
            .values()
            // An empty prefix is every key (an admin's `~*`): not a tenant to keep apart.
            .filter_map(|u| {
                Some((
                    u.name.clone(),
                    u.prefix().filter(|p| !p.is_empty())?.to_string(),
                ))
            })
            .collect();
        // Every setting any request names, in one CONFIG GET.
        let mut names: Vec<String> = requests
            .iter()
            .filter(|r| r.type_name == CONFIG)
            .filter_map(|r| r.attrs.get("settings").and_then(Value::as_object))
            .flat_map(|m| m.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        let settings = self.config_get(&whole, &names).await?;
        // The keys a delete would remove, for users that purge them: one SCAN pass.
        let purging: Vec<String> = requests
            .iter()
            .filter(|r| r.type_name == USER && r.attrs.get("purge_keys") == Some(&json!(true)))
            .filter_map(|r| r.attrs.get("prefix").and_then(Value::as_str))
            .filter(|p| users.values().any(|u| u.keys == [acl::key_pattern(p)]))
            .map(str::to_string)
            .collect();
        let counts = self.count_keys(&purging).await?;
        let mut unknown = Vec::new();
        let answers = requests
            .iter()
            .map(|r| {
                if r.type_name == CONFIG {
                    let asked = r.attrs.get("settings").and_then(Value::as_object);
                    let live: serde_json::Map<String, Value> = asked
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .map(|k| {
                            let v = settings.get(k).map_or(Value::Null, |v| json!(v));
                            (k.clone(), v)
                        })
                        .collect();
                    return Ok(Observed::Present(
                        [("settings".to_string(), Value::Object(live))]
                            .into_iter()
                            .collect(),
                    ));
                }
                let name = attr(&r.attrs, "name", &r.address)?;
                let password = r.attrs.get("password").and_then(Value::as_str);
                Ok(match users.get(name) {
                    Some(u) => {
                        if password.is_none() {
                            unknown.push(name.to_string());
                        }
                        let mut found = Self::describe_user(u, password);
                        let prefix = r.attrs.get("prefix").and_then(Value::as_str);
                        if let Some(n) = prefix.and_then(|p| counts.get(p)) {
                            found.insert("key_count".into(), json!(n));
                        }
                        Observed::Present(found)
                    }
                    None => Observed::Absent,
                })
            })
            .collect::<ProviderResult<Vec<_>>>()?;
        if !unknown.is_empty() {
            unknown.sort();
            *self.unverified.lock().expect("unverified lock") = vec![format!(
                "passwords of {} on {}: terrace does not know them (imported users; Redis keeps only a hash); set `password` to the one in use, or to a new one to rotate it",
                unknown.join(", "),
                self.server.target()
            )];
        }
        Ok(answers)
    }

    async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        Self::schema(&step.type_name)?;
        let a = &step.address;
        if step.type_name == CONFIG {
            return match step.operation {
                Operation::Create | Operation::Update => {
                    let desired = step.desired.as_ref().ok_or_else(|| {
                        ProviderError::Invalid(format!("{a}: no desired attributes"))
                    })?;
                    let settings = desired
                        .get("settings")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if !settings.is_empty() {
                        // One CONFIG SET for all of them: Redis 7 applies them together
                        // or not at all.
                        let mut cmd = redis::cmd("CONFIG");
                        cmd.arg("SET");
                        for (k, v) in &settings {
                            cmd.arg(k).arg(v.as_str().unwrap_or_default());
                        }
                        let _: () = self.run(a, "CONFIG SET", &cmd).await?;
                    }
                    Ok(Some(desired.clone()))
                }
                // Redis has no "unset": the values stay until the server restarts.
                Operation::Delete => Ok(None),
            };
        }
        match step.operation {
            Operation::Create | Operation::Update => {
                let desired = step
                    .desired
                    .as_ref()
                    .ok_or_else(|| ProviderError::Invalid(format!("{a}: no desired attributes")))?;
                let mut stored = desired.clone();
                stored.remove("key_count");
                // The password: the configured or generated one, else the one in state.
                let password = desired
                    .get("password")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        step.prior
                            .as_ref()?
                            .get("password")?
                            .as_str()
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| generate_password().expose().to_string());
                stored.insert("password".into(), json!(password));
                let name = attr(desired, "name", a)?;
                let prefix = attr(desired, "prefix", a)?;
                let args = acl::setuser_args(name, prefix, &acl::password_hash(&password));
                let _: () = self.acl(a, &args).await?;
                Ok(Some(stored))
            }
            Operation::Delete => {
                let prior = step
                    .prior
                    .as_ref()
                    .ok_or_else(|| ProviderError::Invalid(format!("{a}: no prior attributes")))?;
                let name = attr(prior, "name", a)?;
                // Deleting a user also disconnects its clients, so none writes while
                // its keys are deleted.
                let _: i64 = self
                    .acl(a, &["DELUSER".to_string(), name.to_string()])
                    .await?;
                if prior.get("purge_keys") == Some(&json!(true)) {
                    let prefix = attr(prior, "prefix", a)?;
                    let n = self.purge(a, prefix).await?;
                    tracing::info!(%a, deleted = n, "deleted the tenant's keys");
                }
                Ok(None)
            }
        }
    }

    async fn import(&self, type_name: &str, id: &str, desired: &Attrs) -> ProviderResult<Attrs> {
        Self::schema(type_name)?;
        if type_name == CONFIG {
            return Err(ProviderError::Invalid(
                "redis_config is not imported: a plan adopts the server's settings".into(),
            ));
        }
        let users = self.list().await?;
        let user = users.get(id).ok_or_else(|| ProviderError::Operation {
            address: Address::new(id),
            message: format!("no Redis user {id:?} on {}", self.server.target()),
        })?;
        let password = desired.get("password").and_then(Value::as_str);
        let mut attrs = Self::describe_user(user, password);
        if let Some(p) = password {
            attrs.insert("password".into(), json!(p));
        }
        Ok(attrs)
    }
}
