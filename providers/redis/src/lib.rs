//! terrace provider for Redis: `redis_user`, an ACL user confined to a key prefix.
//!
//! One provider instance serves one Redis server, logged in as an admin ACL user.
//! Observe is one `ACL LIST` however many users are asked for; every user is written
//! whole with `ACL SETUSER <name> reset ...` (so an update also removes whatever was
//! granted by hand), its password sent as a SHA-256 hash (`#<hex>`), never in clear.
//! Every call has a timeout, and no error carries a password.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisConnectionInfo};
use serde_json::{json, Value};
use terrace_provider::{
    find_schema, Address, Attrs, ObserveRequest, Observed, Operation, Provider, ProviderError,
    ProviderResult, ResourceSchema, Secret, Step,
};
use tokio::sync::OnceCell;

pub mod acl;
pub mod schema;

pub use schema::{SCHEMAS, USER};

/// How long connecting, and each command, may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// `password_status` when the live hash is the SHA-256 of the password in state.
pub const PASSWORD_MATCHES: &str = "matches";
/// `password_status` when it is not (changed by hand, added, removed, or `nopass`).
pub const PASSWORD_CHANGED: &str = "changed";

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
    conn: OnceCell<MultiplexedConnection>,
    /// Users the last observe could not check the password of (imported).
    unverified: Mutex<Vec<String>>,
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
            conn: OnceCell::new(),
            unverified: Mutex::new(Vec::new()),
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

    async fn conn(&self) -> ProviderResult<MultiplexedConnection> {
        let s = &self.server;
        let conn = self
            .conn
            .get_or_try_init(|| async {
                let info = (s.address.as_str(), s.port)
                    .into_connection_info()
                    .map_err(|e| self.connect_error(describe(&e, &s.admin_password)))?
                    .set_redis_settings(
                        RedisConnectionInfo::default()
                            .set_username(&s.admin_user)
                            .set_password(s.admin_password.expose()),
                    );
                let client = redis::Client::open(info)
                    .map_err(|e| self.connect_error(describe(&e, &s.admin_password)))?;
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(TIMEOUT))
                    .set_response_timeout(Some(TIMEOUT));
                tokio::time::timeout(
                    TIMEOUT,
                    client.get_multiplexed_async_connection_with_config(&config),
                )
                .await
                .map_err(|_| self.connect_error(format!("timed out after {TIMEOUT:?}")))?
                .map_err(|e| self.connect_error(describe(&e, &s.admin_password)))
            })
            .await?;
        Ok(conn.clone())
    }

    /// Runs one `ACL` command with a timeout.
    async fn acl<T: redis::FromRedisValue>(
        &self,
        address: &Address,
        args: &[String],
    ) -> ProviderResult<T> {
        let mut conn = self.conn().await?;
        let mut cmd = redis::cmd("ACL");
        for a in args {
            cmd.arg(a);
        }
        let what = args.first().map_or("", String::as_str);
        self.commands.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(TIMEOUT, cmd.query_async::<T>(&mut conn)).await {
            Err(_) => Err(ProviderError::Operation {
                address: address.clone(),
                message: format!("ACL {what} timed out after {TIMEOUT:?}"),
            }),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => {
                Err(self.connect_error(describe(&e, &self.server.admin_password)))
            }
            Ok(Err(e)) => Err(ProviderError::Operation {
                address: address.clone(),
                message: format!("ACL {what}: {}", describe(&e, &self.server.admin_password)),
            }),
            Ok(Ok(v)) => Ok(v),
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
        if let [k] = user.keys.as_slice() {
            if let Some(p) = k.strip_prefix('~').and_then(|k| k.strip_suffix('*')) {
                out.insert("prefix".into(), json!(p));
            }
        }
        out.insert("enabled".into(), json!(user.enabled));
        out.insert("key_patterns".into(), json!(user.keys));
        out.insert("channel_patterns".into(), json!(user.channels));
        out.insert("commands".into(), json!(user.commands));
        if let Some(pw) = password {
            let ok = !user.nopass && user.hashes == [acl::password_hash(pw)];
            let status = if ok {
                PASSWORD_MATCHES
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

#[async_trait::async_trait]
impl Provider for RedisProvider {
    fn schemas(&self) -> &'static [ResourceSchema] {
        SCHEMAS
    }

    fn normalize(&self, type_name: &str, attrs: &mut Attrs) -> ProviderResult<()> {
        let schema = Self::schema(type_name)?;
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

    fn unverified(&self) -> Vec<String> {
        self.unverified.lock().expect("unverified lock").clone()
    }

    async fn observe(&self, requests: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
        for r in requests {
            Self::schema(&r.type_name)?;
        }
        self.unverified.lock().expect("unverified lock").clear();
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let users = self.list().await?;
        let mut unknown = Vec::new();
        let answers = requests
            .iter()
            .map(|r| {
                let name = attr(&r.attrs, "name", &r.address)?;
                let password = r.attrs.get("password").and_then(Value::as_str);
                Ok(match users.get(name) {
                    Some(u) => {
                        if password.is_none() {
                            unknown.push(name.to_string());
                        }
                        Observed::Present(Self::describe_user(u, password))
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
        match step.operation {
            Operation::Create | Operation::Update => {
                let desired = step
                    .desired
                    .as_ref()
                    .ok_or_else(|| ProviderError::Invalid(format!("{a}: no desired attributes")))?;
                let mut stored = desired.clone();
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
                // Deleting a user also disconnects its clients.
                let _: i64 = self
                    .acl(a, &["DELUSER".to_string(), name.to_string()])
                    .await?;
                Ok(None)
            }
        }
    }

    async fn import(&self, type_name: &str, id: &str, desired: &Attrs) -> ProviderResult<Attrs> {
        Self::schema(type_name)?;
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
