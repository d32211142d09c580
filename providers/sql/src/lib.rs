//! terrace provider for SQL servers: databases, users and grants on MariaDB/MySQL and
//! PostgreSQL.
//!
//! One [`SqlProvider`] serves one server. Observe reads the server's catalogs in a
//! constant number of queries however many resources are asked for, and answers every
//! request from that snapshot. The queries ask only about the batch's names (its
//! databases; everything its accounts hold, wherever it is), so a small project on a
//! server shared with many others reads a small snapshot. Every step is a handful of DDL statements built only
//! from quoted names (see [`quote`]); passwords never reach logs or error messages.

mod access;
mod attrs;
mod copy;
mod dump;
mod mysql;
mod password;
mod postgres;
pub mod quote;
mod schema;
mod stmt;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use terrace_provider::{
    find_schema, Address, Attrs, ObserveRequest, Observed, Operation, Provider, ProviderError,
    ProviderResult, ResourceSchema, Secret, Step, Value,
};
use tokio::sync::OnceCell;

use access::{Excess, EXTRA_ACCESS, OTHER_ACCESS};
use password::{
    Verdict, PASSWORDS_UNREADABLE, PASSWORD_ALSO_ANOTHER, PASSWORD_CHANGED, PASSWORD_EXPIRED,
    PASSWORD_FINGERPRINT, PASSWORD_MATCHES, PASSWORD_STATUS, PASSWORD_UNKNOWN,
};

pub use attrs::normalize_privileges;
pub use schema::{DATABASE, GRANT, SCHEMAS, USER};

/// Which SQL dialect a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlEngine {
    /// PostgreSQL.
    Postgres,
    /// MariaDB or MySQL.
    Mysql,
}

impl SqlEngine {
    /// URL scheme used when naming a server in messages: `postgres` or `mysql`.
    pub fn scheme(self) -> &'static str {
        match self {
            SqlEngine::Postgres => "postgres",
            SqlEngine::Mysql => "mysql",
        }
    }

    /// Human name for messages.
    pub(crate) fn label(self) -> &'static str {
        match self {
            SqlEngine::Postgres => "PostgreSQL",
            SqlEngine::Mysql => "MariaDB/MySQL",
        }
    }
}

/// How to reach one SQL server as an administrator.
#[derive(Debug, Clone)]
pub struct SqlServer {
    /// Dialect.
    pub engine: SqlEngine,
    /// Host name or IP address.
    pub address: String,
    /// TCP port.
    pub port: u16,
    /// Administrative user that creates databases, users and grants.
    pub admin_user: String,
    /// Its password.
    pub admin_password: Secret,
    /// Database to connect to; PostgreSQL defaults to `postgres`, MariaDB to none.
    pub admin_database: Option<String>,
}

impl SqlServer {
    /// `engine://user@address:port`, for messages: never includes the password.
    pub fn target(&self) -> String {
        format!(
            "{}://{}@{}:{}",
            self.engine.scheme(),
            self.admin_user,
            self.address,
            self.port
        )
    }
}

/// Generates a password: 32 alphanumeric characters from the thread-local CSPRNG
/// (ChaCha, seeded from the OS). Alphanumeric keeps it safe in URLs and config files.
pub fn generate_password() -> Secret {
    Secret::new(Alphanumeric.sample_string(&mut rand::rng(), 32))
}

/// The most connections terrace's own pool opens to one server.
const POOL_SIZE: u64 = 5;
/// How long a statement waits for a free pooled connection (or for the server to
/// accept a new one) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection attempt may take: a server that accepts TCP and then never
/// answers must fail the provider, not hang terrace.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the catalog queries of one observe batch may take together.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one DDL statement may take (it can wait on a lock held by a client).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long saying goodbye may take: the quit message needs no answer, so only a
/// stalled socket takes this long, and then the connection is dropped instead.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The error a timed-out call reports: a transport failure, like a dropped connection.
fn timed_out(what: &str, limit: Duration) -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("{what}: no answer within {}s", limit.as_secs()),
    ))
}

/// `fut`, or a timeout error after `limit`.
async fn within<T>(
    what: &str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| Err(timed_out(what, limit)))
}

/// Closes `conn` with the protocol's quit message: a connection merely dropped is
/// counted and logged by the server as aborted.
async fn say_goodbye(conn: impl Connection) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.close()).await;
}

/// Which catalogs an observe batch needs, and which names in them it concerns: the
/// catalog queries ask about these alone (one parameter per query, never per object),
/// so the databases and accounts of other projects on a shared server cost nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct Needs {
    pub(crate) databases: bool,
    pub(crate) users: bool,
    pub(crate) grants: bool,
    /// Databases the batch's `sql_database` requests name.
    pub(crate) database_names: BTreeSet<String>,
    /// Accounts (user or role names) of its `sql_user` requests: the audited accounts,
    /// whose privileges are read wherever they are on the server.
    pub(crate) user_names: BTreeSet<String>,
    /// The same accounts as catalog keys: (user, lower-case host) on MariaDB, whose
    /// account tables are keyed by both.
    pub(crate) accounts: BTreeSet<AccountKey>,
    /// Databases and accounts its `sql_grant` requests name.
    pub(crate) grant_databases: BTreeSet<String>,
    pub(crate) grant_users: BTreeSet<String>,
}

enum Pool {
    Mysql(MySqlPool),
    Postgres(PgPool),
}

/// The provider for one SQL server. Cheap to create: it connects a small pool (at most
/// five connections) on first use. Safe to share between tasks.
pub struct SqlProvider {
    server: SqlServer,
    pool: OnceCell<Pool>,
    statements: AtomicU64,
    /// Rows the catalog queries of observe returned, for tests: they prove that a batch
    /// reads only what it concerns, whatever else the server holds.
    catalog_rows: AtomicU64,
    /// How long to keep retrying the first connection (a server that was just started,
    /// e.g. in a container); `None` fails at once.
    ready_timeout: Option<std::time::Duration>,
    /// Where a database is dumped before it is dropped; `None`: no dump.
    backup_dir: Option<std::path::PathBuf>,
    /// A local unix socket that reaches the server (an SSH forward), used instead of
    /// `address:port`. For PostgreSQL its file name is `.s.PGSQL.<port>`.
    socket: Option<std::path::PathBuf>,
    /// What the last observe found each managed account holding beyond the
    /// configuration, by account; an update of `extra_access` revokes exactly this.
    audit: Mutex<HashMap<AccountKey, Vec<Excess>>>,
    /// PostgreSQL: the databases each observed role owns, for the plan check (a role
    /// that owns a database cannot be dropped).
    owned: Mutex<HashMap<String, Vec<String>>>,
    /// PostgreSQL: the roles outside the batch that the last observe found holding
    /// privileges on each database; an update of `other_access` revokes exactly these.
    others: Mutex<HashMap<String, Vec<String>>>,
    /// What the last observe could not verify, for the plan.
    unverified: Mutex<Vec<String>>,
    /// MariaDB/MySQL: what the server's SQL offers, read when the pool is made.
    dialect: std::sync::OnceLock<mysql::Dialect>,
}

/// An account in the catalogs: (user, lower-case host) on MariaDB, (role, "") on
/// PostgreSQL.
type AccountKey = (String, String);

/// What the configuration gives each account, collected from one observe batch: the
/// audit compares every account's live privileges against it.
#[derive(Debug, Default)]
struct Allowed {
    /// Account → databases (MariaDB: escaped grant patterns) its grants and
    /// ownerships name.
    databases: HashMap<AccountKey, HashSet<String>>,
    /// Databases whose owner the configuration sets (PostgreSQL).
    owner_configured: HashSet<String>,
}

impl fmt::Debug for SqlProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlProvider")
            .field("target", &self.server.target())
            .finish_non_exhaustive()
    }
}

/// Errors that mean the server could not be talked to at all (as opposed to an answer).
fn is_connection_error(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

pub(crate) fn unknown_type(type_name: &str) -> ProviderError {
    ProviderError::Invalid(format!("unknown SQL resource type {type_name:?}"))
}

impl SqlProvider {
    /// A provider for `server`. Does not connect yet.
    pub fn new(server: SqlServer) -> Self {
        SqlProvider {
            server,
            pool: OnceCell::new(),
            statements: AtomicU64::new(0),
            catalog_rows: AtomicU64::new(0),
            ready_timeout: None,
            backup_dir: None,
            socket: None,
            audit: Mutex::new(HashMap::new()),
            owned: Mutex::new(HashMap::new()),
            others: Mutex::new(HashMap::new()),
            unverified: Mutex::new(Vec::new()),
            dialect: std::sync::OnceLock::new(),
        }
    }

    /// Reaches the server through the unix socket at `path` (a forward to it) instead
    /// of `address:port`, which still name the server in messages. For PostgreSQL the
    /// file must be named `.s.PGSQL.<port>`, as its clients expect.
    pub fn with_socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Dumps every database into `dir` before dropping it, and refuses the drop when
    /// the dump fails: data is never destroyed silently.
    pub fn with_backup_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.backup_dir = Some(dir.into());
        self
    }

    /// Selects a batch's accounts as on a MariaDB without `JSON_TABLE` (before 10.6),
    /// whatever the server's version: tests run that path against a newer server.
    #[doc(hidden)]
    pub fn without_json_table(self) -> Self {
        let _ = self.dialect.set(mysql::Dialect { json_table: false });
        self
    }

    /// Keeps retrying the first connection for up to `timeout`, for a server terrace
    /// itself has just started: its container runs before the database accepts logins.
    pub fn with_ready_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.ready_timeout = Some(timeout);
        self
    }

    /// Connects once directly, retrying until the ready timeout (if any) runs out.
    async fn first_connect<C, F, Fut>(&self, connect: F) -> ProviderResult<C>
    where
        C: Connection,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<C, sqlx::Error>>,
    {
        let started = std::time::Instant::now();
        loop {
            let result = within("connecting", CONNECT_TIMEOUT, connect()).await;
            // A server that answers with an error (wrong password) is up: only failures
            // to talk to it at all mean "not ready yet".
            let not_ready = matches!(&result, Err(e) if !matches!(e, sqlx::Error::Database(_)));
            match (&result, self.ready_timeout) {
                (Err(_), Some(limit)) if not_ready && started.elapsed() < limit => {
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                (Err(e), Some(limit)) if not_ready => {
                    return Err(self.connect_error(format!(
                        "not accepting connections after {}s: {e}",
                        limit.as_secs()
                    )));
                }
                _ => return self.probe(result),
            }
        }
    }

    /// The server this provider manages.
    pub fn server(&self) -> &SqlServer {
        &self.server
    }

    /// How many SQL statements this provider has sent so far (catalog queries and DDL).
    /// Exists so that tests can prove that observe is batched.
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// How many rows observe's catalog queries have returned so far. Exists so that
    /// tests can prove that a batch reads only the objects and accounts it asks about,
    /// not every database and account on the server.
    pub fn catalog_rows_read(&self) -> u64 {
        self.catalog_rows.load(Ordering::Relaxed)
    }

    fn connect_error(&self, message: String) -> ProviderError {
        ProviderError::Connect {
            target: self.server.target(),
            message: stmt::scrub(&message, [&self.server.admin_password]),
        }
    }

    /// Checks the first connection made directly: the pool would retry a refused
    /// connection until its timeout and then report only "timed out", while a direct
    /// attempt fails at once with the real reason.
    fn probe<C: Connection>(&self, conn: Result<C, sqlx::Error>) -> ProviderResult<C> {
        conn.map_err(|e| self.connect_error(e.to_string()))
    }

    async fn pool(&self) -> ProviderResult<&Pool> {
        self.pool
            .get_or_try_init(|| async {
                let s = &self.server;
                // sqlx logs every statement it runs by default; ours carry passwords, so
                // its statement logging is switched off and we log redacted copies.
                let pool = match s.engine {
                    SqlEngine::Mysql => {
                        let mut o = MySqlConnectOptions::new()
                            .host(&s.address)
                            .port(s.port)
                            .username(&s.admin_user)
                            .password(s.admin_password.expose());
                        if let Some(db) = &s.admin_database {
                            o = o.database(db);
                        }
                        if let Some(path) = &self.socket {
                            o = o.socket(path);
                        }
                        let o = o.disable_statement_logging();
                        let mut conn = self.first_connect(|| o.connect()).await?;
                        let version: String = within(
                            "reading the server version",
                            STATEMENT_TIMEOUT,
                            sqlx::query_scalar("SELECT VERSION()").fetch_one(&mut conn),
                        )
                        .await
                        .map_err(|e| self.connect_error(e.to_string()))?;
                        let _ = self.dialect.set(mysql::Dialect::of_version(&version));
                        // The pool opens its own connections.
                        say_goodbye(conn).await;
                        Pool::Mysql(
                            MySqlPoolOptions::new()
                                .max_connections(POOL_SIZE as u32)
                                .acquire_timeout(ACQUIRE_TIMEOUT)
                                .connect_lazy_with(o),
                        )
                    }
                    SqlEngine::Postgres => {
                        let mut o = PgConnectOptions::new()
                            .host(&s.address)
                            .port(s.port)
                            .username(&s.admin_user)
                            .password(s.admin_password.expose())
                            .database(s.admin_database.as_deref().unwrap_or("postgres"));
                        if let Some(dir) = self.socket.as_deref().and_then(|p| p.parent()) {
                            o = o.socket(dir);
                        }
                        let o = o.disable_statement_logging();
                        // The pool opens its own connections.
                        say_goodbye(self.first_connect(|| o.connect()).await?).await;
                        Pool::Postgres(
                            PgPoolOptions::new()
                                .max_connections(POOL_SIZE as u32)
                                .acquire_timeout(ACQUIRE_TIMEOUT)
                                .connect_lazy_with(o),
                        )
                    }
                };
                tracing::debug!(target = %s.target(), "connected");
                Ok(pool)
            })
            .await
    }

    /// Turns a sqlx error into a provider error free of secrets: server messages become
    /// `Operation` errors, transport problems `Connect` errors naming the target.
    fn map_err(&self, e: &sqlx::Error, address: &Address, secrets: &[Secret]) -> ProviderError {
        let all = secrets
            .iter()
            .chain(std::iter::once(&self.server.admin_password));
        match e {
            sqlx::Error::Database(db) => {
                // MariaDB's error number says more than its generic SQLSTATE.
                let code = match db.try_downcast_ref::<MySqlDatabaseError>() {
                    Some(m) => format!(" (error {})", m.number()),
                    None => db.code().map(|c| format!(" ({c})")).unwrap_or_default(),
                };
                ProviderError::Operation {
                    address: address.clone(),
                    message: stmt::scrub(&format!("{}{code}", db.message()), all),
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Protocol(_) => ProviderError::Connect {
                target: self.server.target(),
                message: stmt::scrub(&e.to_string(), all),
            },
            other => ProviderError::Operation {
                address: address.clone(),
                message: stmt::scrub(&other.to_string(), all),
            },
        }
    }

    /// True if the server error is one the statement treats as success.
    fn ignorable(&self, e: &sqlx::Error, codes: &[&str]) -> bool {
        let sqlx::Error::Database(db) = e else {
            return false;
        };
        let code = match self.server.engine {
            SqlEngine::Mysql => db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|m| m.number().to_string()),
            SqlEngine::Postgres => db.code().map(|c| c.into_owned()),
        };
        code.is_some_and(|c| codes.contains(&c.as_str()))
    }

    /// Whether database `name` exists now: one query about that database alone, and
    /// with PostgreSQL's "interrupted DROP" rule. Not an observe, whose batch of one
    /// database would still pay an observe's fixed cost, once per database a destroy
    /// drops.
    async fn database_exists(&self, address: &Address, name: &str) -> ProviderResult<bool> {
        let pool = self.pool().await?;
        let found = match pool {
            Pool::Mysql(p) => {
                within(
                    "catalog queries",
                    OBSERVE_TIMEOUT,
                    mysql::database_exists(p, name, &self.statements),
                )
                .await
            }
            Pool::Postgres(p) => {
                within(
                    "catalog queries",
                    OBSERVE_TIMEOUT,
                    postgres::database_exists(p, name, &self.statements),
                )
                .await
            }
        };
        found.map_err(|e| self.map_err(&e, address, &[]))
    }

    /// Runs statements one by one, each on its own (DDL; `CREATE DATABASE` on
    /// PostgreSQL must not be inside a transaction).
    async fn run(&self, address: &Address, stmts: &[stmt::Stmt]) -> ProviderResult<()> {
        let pool = self.pool().await?;
        for s in stmts {
            tracing::debug!(%address, statement = s.shown(), "executing");
            self.statements.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let res = loop {
                let sql = AssertSqlSafe(s.sql().to_string());
                let res = match pool {
                    Pool::Mysql(p) => within(
                        "statement",
                        STATEMENT_TIMEOUT,
                        sqlx::raw_sql(sql).execute(p),
                    )
                    .await
                    .map(|_| ()),
                    Pool::Postgres(p) => within(
                        "statement",
                        STATEMENT_TIMEOUT,
                        sqlx::raw_sql(sql).execute(p),
                    )
                    .await
                    .map(|_| ()),
                };
                // A server terrace runs in a container may have been restarted (its
                // container replaced) since the pool connected: pooled connections are
                // then dead. Wait for it again, within the readiness window.
                match (&res, self.ready_timeout) {
                    (Err(e), Some(limit))
                        if is_connection_error(e) && started.elapsed() < limit =>
                    {
                        tracing::debug!(%address, "server not reachable, retrying: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                    }
                    _ => break res,
                }
            };
            if let Err(e) = res {
                if self.ignorable(&e, s.ignored()) {
                    tracing::debug!(%address, "nothing to do: object already gone");
                    continue;
                }
                return Err(self.map_err(&e, address, s.secrets()));
            }
        }
        Ok(())
    }

    /// Fills in defaults and normalises, so that the attributes stored in state, those
    /// used to build statements and those observe reports all have the same form.
    fn resolve(&self, type_name: &str, attrs: &Attrs) -> ProviderResult<Attrs> {
        let mut out = attrs.clone();
        if self.server.engine == SqlEngine::Mysql
            && (type_name == USER || type_name == GRANT)
            && matches!(out.get("host"), None | Some(Value::Null))
        {
            out.insert("host".into(), "%".into());
        }
        if type_name == GRANT {
            if let Some(privs) = attrs::opt_str_list(&out, "privileges")? {
                let privs = normalize_privileges(self.server.engine, &privs)?;
                out.insert("privileges".into(), attrs::str_list(&privs));
            }
        }
        Ok(out)
    }

    /// Reports a grant's privileges in the request's own spelling when it means
    /// exactly what is live (`["select", "insert"]` for `["INSERT", "SELECT"]`, `["ALL
    /// PRIVILEGES"]` for `["ALL"]`), so that a configuration not written in normal form
    /// still reads back equal and a second plan shows no change. Real differences are
    /// reported in normal form.
    fn echo_privileges(&self, req: &ObserveRequest, answer: Observed) -> Observed {
        let Observed::Present(mut live) = answer else {
            return answer;
        };
        if req.type_name == GRANT {
            let asked = attrs::opt_str_list(&req.attrs, "privileges")
                .ok()
                .flatten()
                .and_then(|p| normalize_privileges(self.server.engine, &p).ok());
            if let (Some(asked), Some(have)) = (asked, live.get("privileges")) {
                if &attrs::str_list(&asked) == have {
                    live.insert("privileges".into(), req.attrs["privileges"].clone());
                }
            }
        }
        Observed::Present(live)
    }

    fn plan_create(&self, t: &str, a: &Attrs) -> ProviderResult<Vec<stmt::Stmt>> {
        match self.server.engine {
            SqlEngine::Mysql => mysql::plan_create(t, a),
            SqlEngine::Postgres => postgres::plan_create(t, a),
        }
    }

    fn plan_update(
        &self,
        t: &str,
        prior: &Attrs,
        desired: &Attrs,
        changed: &BTreeSet<String>,
    ) -> ProviderResult<Vec<stmt::Stmt>> {
        match self.server.engine {
            SqlEngine::Mysql => mysql::plan_update(t, prior, desired, changed),
            SqlEngine::Postgres => postgres::plan_update(t, prior, desired, changed),
        }
    }

    fn plan_delete(&self, t: &str, prior: &Attrs) -> ProviderResult<Vec<stmt::Stmt>> {
        match self.server.engine {
            SqlEngine::Mysql => mysql::plan_delete(t, prior),
            SqlEngine::Postgres => postgres::plan_delete(t, prior),
        }
    }

    /// The catalog key of the account a user or grant request names.
    fn account_key(&self, attrs: &Attrs, user_key: &str) -> ProviderResult<AccountKey> {
        let user = attrs::req_str(attrs, user_key)?.to_string();
        Ok(match self.server.engine {
            SqlEngine::Mysql => (user, mysql::host(attrs)?.to_lowercase()),
            SqlEngine::Postgres => (user, String::new()),
        })
    }

    /// What the configuration gives each account, from the requests of one batch.
    /// Grants and databases being deleted are included: their own steps remove them.
    fn allowed(&self, requests: &[ObserveRequest]) -> ProviderResult<Allowed> {
        let mut out = Allowed::default();
        for r in requests {
            match r.type_name.as_str() {
                GRANT => {
                    let db = attrs::req_str(&r.attrs, "database")?;
                    let db = match self.server.engine {
                        SqlEngine::Mysql => quote::mysql_grant_db_pattern(db),
                        SqlEngine::Postgres => db.to_string(),
                    };
                    let k = self.account_key(&r.attrs, "user")?;
                    out.databases.entry(k).or_default().insert(db);
                }
                DATABASE if self.server.engine == SqlEngine::Postgres => {
                    if let Some(owner) = attrs::opt_str(&r.attrs, "owner")? {
                        let name = attrs::req_str(&r.attrs, "name")?.to_string();
                        out.owner_configured.insert(name.clone());
                        out.databases
                            .entry((owner.to_string(), String::new()))
                            .or_default()
                            .insert(name);
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Adds the audit attributes to one observed user: `extra_access` (what it holds
    /// beyond the configuration) and `password_status` (whether the password terrace
    /// knows is still the live one). Returns what could not be verified.
    fn audit_user(
        &self,
        req: &ObserveRequest,
        live: &mut Attrs,
        found: Vec<Excess>,
        verdict: Option<Verdict>,
        audit: &mut HashMap<AccountKey, Vec<Excess>>,
    ) -> ProviderResult<Option<&'static str>> {
        live.insert(EXTRA_ACCESS.into(), access::describe(&found));
        audit.insert(self.account_key(&req.attrs, "name")?, found);
        Ok(match verdict {
            Some(Verdict::Matches) => {
                live.insert(PASSWORD_STATUS.into(), PASSWORD_MATCHES.into());
                None
            }
            Some(Verdict::Differs) => {
                live.insert(PASSWORD_STATUS.into(), PASSWORD_CHANGED.into());
                None
            }
            Some(Verdict::AlsoAnother) => {
                live.insert(PASSWORD_STATUS.into(), PASSWORD_ALSO_ANOTHER.into());
                None
            }
            Some(Verdict::Expired) => {
                live.insert(PASSWORD_STATUS.into(), PASSWORD_EXPIRED.into());
                None
            }
            Some(Verdict::Unknown(why)) => Some(why),
            None => None,
        })
    }

    /// Statements revoking what the last observe found the user in `attrs` holding
    /// beyond the configuration.
    fn revoke_excess(&self, attrs: &Attrs) -> ProviderResult<Vec<stmt::Stmt>> {
        let key = self.account_key(attrs, "name")?;
        let found = self
            .audit
            .lock()
            .expect("audit lock")
            .get(&key)
            .cloned()
            .unwrap_or_default();
        match self.server.engine {
            SqlEngine::Mysql => mysql::revoke_excess(attrs, &found),
            SqlEngine::Postgres => postgres::revoke_excess(attrs, &found),
        }
    }

    /// Words what the last batch could not verify, once per reason.
    fn record_unverified(&self, reasons: HashMap<&'static str, Vec<String>>) {
        let mut notes: Vec<String> = reasons
            .into_iter()
            .map(|(why, mut users)| {
                users.sort();
                let who = users.join(", ");
                let target = self.server.target();
                match why {
                    PASSWORD_UNKNOWN => format!(
                        "passwords of {who} on {target}: terrace does not know them (the users \
                         were imported, and servers keep only a hash); set `password` in the \
                         configuration to the one in use, or to a new one to rotate it"
                    ),
                    PASSWORDS_UNREADABLE => format!(
                        "passwords of {who} on {target}: the admin role may not read pg_authid \
                         (it is not a superuser), so a password changed by hand would go unseen"
                    ),
                    other => format!(
                        "passwords of {who} on {target}: they use {other}, which terrace cannot check"
                    ),
                }
            })
            .collect();
        notes.sort();
        *self.unverified.lock().expect("unverified lock") = notes;
    }

    fn schema(type_name: &str) -> ProviderResult<&'static ResourceSchema> {
        find_schema(SCHEMAS, type_name).ok_or_else(|| unknown_type(type_name))
    }
}

/// Records in `stored` the fingerprint of the password hash the statements set, or,
/// when they set none, keeps the one recorded before (`prior`): the password did not
/// change.
fn record_fingerprint(stmts: &[stmt::Stmt], prior: Option<&Attrs>, stored: &mut Attrs) {
    let set = stmts.iter().find_map(stmt::Stmt::fingerprint);
    match (set, prior.and_then(|p| p.get(PASSWORD_FINGERPRINT))) {
        (Some(fp), _) => {
            stored.insert(PASSWORD_FINGERPRINT.into(), fp.into());
        }
        (None, Some(old)) => {
            stored.insert(PASSWORD_FINGERPRINT.into(), old.clone());
        }
        (None, None) => {}
    }
}

fn require<'a>(attrs: &'a Option<Attrs>, what: &str, step: &Step) -> ProviderResult<&'a Attrs> {
    attrs.as_ref().ok_or_else(|| {
        ProviderError::Invalid(format!(
            "{}: {:?} step without {what} attributes",
            step.address, step.operation
        ))
    })
}

#[async_trait::async_trait]
impl Provider for SqlProvider {
    fn schemas(&self) -> &'static [ResourceSchema] {
        SCHEMAS
    }

    /// The pool's size (`POOL_SIZE`): a step holds a pooled connection for its
    /// statements, so more in flight would only wait for one (and fail after the
    /// acquire timeout). The pool is what terrace keeps out of the tenants' connection
    /// budget, so this never takes connections the server's `max_connections` does not
    /// leave for it.
    fn max_concurrency(&self, _operation: terrace_provider::Operation) -> usize {
        POOL_SIZE as usize
    }

    /// A database is dumped into the backup directory before it is dropped (see
    /// [`dump`]); the plan says where, so a reviewer knows before approving.
    fn safeguard(&self, type_name: &str, attrs: &Attrs) -> Option<terrace_provider::Safeguard> {
        let dir = self.backup_dir.as_ref().filter(|_| type_name == DATABASE)?;
        let name = attrs.get("name")?.as_str()?;
        Some(terrace_provider::Safeguard {
            kind: "dump".into(),
            destination: dir.join(format!("{name}-<time>.sql")).display().to_string(),
        })
    }

    /// PostgreSQL refuses to drop a role that owns a database (`DROP OWNED` would drop
    /// the tenant's tables): a plan that destroys or replaces such a role while the
    /// database stays is refused here rather than failing half-way through apply.
    async fn check_plan(
        &self,
        changes: &[terrace_provider::PlannedChange],
    ) -> ProviderResult<Vec<terrace_provider::PlanProblem>> {
        if self.server.engine != SqlEngine::Postgres {
            return Ok(Vec::new());
        }
        let name = |a: &Option<Attrs>| {
            a.as_ref()
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let dropped: HashSet<String> = changes
            .iter()
            .filter(|c| c.type_name == DATABASE && c.destroys)
            .filter_map(|c| name(&c.before))
            .collect();
        let owned = self.owned.lock().expect("owned lock");
        let mut out = Vec::new();
        for c in changes.iter().filter(|c| c.type_name == USER && c.destroys) {
            let Some(role) = name(&c.before) else {
                continue;
            };
            for db in owned.get(&role).into_iter().flatten() {
                if !dropped.contains(db) {
                    out.push(terrace_provider::PlanProblem {
                        address: c.address.clone(),
                        message: format!(
                            "PostgreSQL cannot drop role {role:?}: it owns database {db:?}, which stays (dropping what the role owns would drop the tables in it)"
                        ),
                        hint: "change the role in place instead (its password and connection limit change without a replacement), or give the database another owner first".into(),
                        identity_taken: false,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Databases move as dumps of their engine: MariaDB/MySQL to MariaDB/MySQL,
    /// PostgreSQL to PostgreSQL.
    fn data_format(&self, type_name: &str) -> Option<String> {
        (type_name == DATABASE).then(|| self.copy_format())
    }

    async fn export_data(
        &self,
        address: &Address,
        type_name: &str,
        attrs: &Attrs,
    ) -> ProviderResult<terrace_provider::DataCopy> {
        if type_name != DATABASE {
            return Err(unknown_type(type_name));
        }
        self.export_database(address, &self.resolve(DATABASE, attrs)?)
            .await
    }

    async fn restore_data(
        &self,
        address: &Address,
        type_name: &str,
        attrs: &Attrs,
        copy: &terrace_provider::DataCopy,
    ) -> ProviderResult<()> {
        if type_name != DATABASE {
            return Err(unknown_type(type_name));
        }
        self.restore_database(address, &self.resolve(DATABASE, attrs)?, copy)
            .await
    }

    fn normalize(&self, type_name: &str, attrs: &mut Attrs) -> ProviderResult<()> {
        match type_name {
            GRANT => {
                if let Some(list) = attrs::opt_str_list(attrs, "privileges")? {
                    let norm = normalize_privileges(self.server.engine, &list)?;
                    attrs.insert("privileges".into(), serde_json::json!(norm));
                }
            }
            DATABASE if self.server.engine == SqlEngine::Mysql => {
                attrs::normalize_charset(attrs)?;
            }
            DATABASE => {
                no_limit_unless_set(attrs, PG_NO_LIMIT);
                // Nobody outside the configuration reaches it: checked on every plan.
                attrs.insert(OTHER_ACCESS.into(), serde_json::json!([]));
            }
            // A user holds nothing beyond its grants, and its password is the one
            // terrace set: both are checked on every plan.
            USER => {
                attrs.insert(EXTRA_ACCESS.into(), serde_json::json!([]));
                attrs.insert(PASSWORD_STATUS.into(), PASSWORD_MATCHES.into());
                no_limit_unless_set(
                    attrs,
                    match self.server.engine {
                        SqlEngine::Postgres => PG_NO_LIMIT,
                        SqlEngine::Mysql => MYSQL_NO_LIMIT,
                    },
                );
            }
            _ => {}
        }
        Ok(())
    }

    fn unverified(&self) -> Vec<String> {
        self.unverified.lock().expect("unverified lock").clone()
    }

    /// `max_connections`, read live; the reserve is the server's own for superusers
    /// (PostgreSQL) plus terrace's pool, so the admin can still log in when tenants
    /// use every connection they are allowed.
    async fn connections(&self) -> ProviderResult<Option<terrace_provider::Connections>> {
        use sqlx::Row;
        let pool = self.pool().await?;
        let whole = Address::new(self.server.target());
        self.statements.fetch_add(1, Ordering::Relaxed);
        let (max, server_reserve): (i64, i64) = match pool {
            Pool::Mysql(p) => {
                let row = within(
                    "reading max_connections",
                    OBSERVE_TIMEOUT,
                    sqlx::query("SELECT CAST(@@max_connections AS SIGNED) AS max").fetch_one(p),
                )
                .await
                .map_err(|e| self.map_err(&e, &whole, &[]))?;
                (
                    row.try_get("max")
                        .map_err(|e| self.map_err(&e, &whole, &[]))?,
                    0,
                )
            }
            Pool::Postgres(p) => {
                // `reserved_connections` exists from PostgreSQL 16 on.
                let row = within(
                    "reading max_connections",
                    OBSERVE_TIMEOUT,
                    sqlx::query(
                        "SELECT current_setting('max_connections')::int8 AS max, \
                         current_setting('superuser_reserved_connections')::int8 \
                         + coalesce(current_setting('reserved_connections', true), '0')::int8 AS reserved",
                    )
                    .fetch_one(p),
                )
                .await
                .map_err(|e| self.map_err(&e, &whole, &[]))?;
                let get = |c: &str| row.try_get::<i64, _>(c);
                (
                    get("max").map_err(|e| self.map_err(&e, &whole, &[]))?,
                    get("reserved").map_err(|e| self.map_err(&e, &whole, &[]))?,
                )
            }
        };
        Ok(Some(terrace_provider::Connections {
            max: max.max(0) as u64,
            reserved: (server_reserve.max(0) as u64) + POOL_SIZE,
        }))
    }

    async fn observe(&self, requests: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
        let mut needs = Needs::default();
        self.unverified.lock().expect("unverified lock").clear();
        for r in requests {
            match r.type_name.as_str() {
                DATABASE => {
                    needs.databases = true;
                    // PostgreSQL: who else holds privileges on it (`other_access`).
                    needs.grants |= self.server.engine == SqlEngine::Postgres;
                    let name = attrs::req_str(&r.attrs, "name")?;
                    needs.database_names.insert(name.to_string());
                }
                USER => {
                    needs.users = true;
                    let name = attrs::req_str(&r.attrs, "name")?;
                    needs.user_names.insert(name.to_string());
                    needs.accounts.insert(self.account_key(&r.attrs, "name")?);
                }
                GRANT => {
                    needs.grants = true;
                    let db = attrs::req_str(&r.attrs, "database")?;
                    needs.grant_databases.insert(db.to_string());
                    let user = attrs::req_str(&r.attrs, "user")?;
                    needs.grant_users.insert(user.to_string());
                }
                other => return Err(unknown_type(other)),
            }
        }
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        // Auditing users needs every grant (and on PostgreSQL every owner) too.
        if needs.users {
            needs.grants = true;
            needs.databases |= self.server.engine == SqlEngine::Postgres;
        }
        let allowed = self.allowed(requests)?;
        let none = HashSet::new();
        let mut audit = HashMap::new();
        let mut unverified: HashMap<&'static str, Vec<String>> = HashMap::new();
        let pool = self.pool().await?;
        let whole = Address::new(self.server.target());
        let mut answers: Vec<Observed> = Vec::with_capacity(requests.len());
        match pool {
            Pool::Mysql(p) => {
                let snap = within(
                    "catalog queries",
                    OBSERVE_TIMEOUT,
                    mysql::snapshot(
                        p,
                        &needs,
                        self.dialect.get().copied().unwrap_or_default(),
                        &self.statements,
                        &self.catalog_rows,
                    ),
                )
                .await
                .map_err(|e| self.map_err(&e, &whole, &[]))?;
                for r in requests {
                    let mut answer = mysql::answer(&snap, r)?;
                    if let (USER, Observed::Present(live)) = (r.type_name.as_str(), &mut answer) {
                        let (user, host) = self.account_key(&r.attrs, "name")?;
                        let granted = allowed.databases.get(&(user.clone(), host.clone()));
                        let found = mysql::excess(&snap, &user, &host, granted.unwrap_or(&none));
                        let verdict = match attrs::opt_str(&r.attrs, "password")? {
                            Some(pw) => mysql::password_verdict(&snap, &user, &host, pw),
                            None => Some(Verdict::Unknown(PASSWORD_UNKNOWN)),
                        };
                        if let Some(why) = self.audit_user(r, live, found, verdict, &mut audit)? {
                            unverified.entry(why).or_default().push(user);
                        }
                    }
                    answers.push(answer);
                }
            }
            Pool::Postgres(p) => {
                let snap = within(
                    "catalog queries",
                    OBSERVE_TIMEOUT,
                    postgres::snapshot(p, &needs, &self.statements, &self.catalog_rows),
                )
                .await
                .map_err(|e| self.map_err(&e, &whole, &[]))?;
                {
                    // What this batch's roles own now: a role that owned a database
                    // at an earlier observe of this run may own none any more.
                    let mut owned = self.owned.lock().expect("owned lock");
                    owned.retain(|role, _| !needs.user_names.contains(role));
                    owned.extend(snap.owns.iter().map(|(r, d)| (r.clone(), d.clone())));
                }
                let managed = |role: &str| {
                    role == self.server.admin_user
                        || needs.user_names.contains(role)
                        || needs.grant_users.contains(role)
                };
                let mut others = self.others.lock().expect("others lock");
                for r in requests {
                    let mut answer = postgres::answer(&snap, r)?;
                    if let (DATABASE, Observed::Present(live)) = (r.type_name.as_str(), &mut answer)
                    {
                        let db = attrs::req_str(&r.attrs, "name")?;
                        let found = postgres::other_access(&snap, db, &managed);
                        let shown: Vec<String> = found
                            .iter()
                            .map(|(role, privs)| {
                                format!("role `{role}` can reach it ({})", privs.join(", "))
                            })
                            .collect();
                        live.insert(OTHER_ACCESS.into(), serde_json::json!(shown));
                        others.insert(db.to_string(), found.into_iter().map(|(r, _)| r).collect());
                    }
                    if let (USER, Observed::Present(live)) = (r.type_name.as_str(), &mut answer) {
                        let (role, _) = self.account_key(&r.attrs, "name")?;
                        let granted = allowed.databases.get(&(role.clone(), String::new()));
                        let found = postgres::excess(
                            &snap,
                            &role,
                            granted.unwrap_or(&none),
                            &allowed.owner_configured,
                        );
                        let verdict = match attrs::opt_str(&r.attrs, "password")? {
                            Some(pw) => postgres::password_verdict(
                                &snap,
                                &role,
                                pw,
                                attrs::opt_str(&r.attrs, PASSWORD_FINGERPRINT)?,
                            ),
                            None => Some(Verdict::Unknown(PASSWORD_UNKNOWN)),
                        };
                        if let Some(why) = self.audit_user(r, live, found, verdict, &mut audit)? {
                            unverified.entry(why).or_default().push(role);
                        }
                    }
                    answers.push(answer);
                }
            }
        }
        // Merged, not replaced: a lookup made during apply (does this database still
        // exist?) must not forget what the plan's audit found.
        self.audit.lock().expect("audit lock").extend(audit);
        self.record_unverified(unverified);
        Ok(requests
            .iter()
            .zip(answers)
            .map(|(r, a)| self.echo_privileges(r, a))
            .collect())
    }

    async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        let schema = Self::schema(&step.type_name)?;
        let t = schema.type_name;
        match step.operation {
            Operation::Create => {
                let mut stored = self.resolve(t, require(&step.desired, "desired", step)?)?;
                if t == USER && matches!(stored.get("password"), None | Some(Value::Null)) {
                    stored.insert(
                        "password".into(),
                        generate_password().expose().to_string().into(),
                    );
                }
                let stmts = self.plan_create(t, &stored)?;
                self.run(&step.address, &stmts).await?;
                record_fingerprint(&stmts, None, &mut stored);
                Ok(Some(stored))
            }
            Operation::Update => {
                let prior = self.resolve(t, require(&step.prior, "prior", step)?)?;
                let mut stored = self.resolve(t, require(&step.desired, "desired", step)?)?;
                // The password is computed: unless the configuration sets a new one, the
                // one in state stays valid and stays recorded.
                if t == USER && matches!(stored.get("password"), None | Some(Value::Null)) {
                    if let Some(pw) = prior.get("password").filter(|v| !v.is_null()) {
                        stored.insert("password".into(), pw.clone());
                    }
                }
                // What the planner says changed (this includes drift, where prior and
                // desired agree but the live object does not) plus what differs from
                // state. Identity attributes are force_new and never updated in place.
                let mut changed: BTreeSet<String> = step.changed.iter().cloned().collect();
                for (k, v) in &stored {
                    if prior.get(k) != Some(v) {
                        changed.insert(k.clone());
                    }
                }
                changed.retain(|k| schema.attr(k).is_some_and(|a| !a.force_new));
                let mut stmts = Vec::new();
                if t == USER && changed.contains(EXTRA_ACCESS) {
                    stmts.extend(self.revoke_excess(&prior)?);
                }
                if t == DATABASE && changed.contains(OTHER_ACCESS) {
                    let db = attrs::req_str(&prior, "name")?;
                    let roles = self.others.lock().expect("others lock").get(db).cloned();
                    stmts.extend(postgres::revoke_others(db, &roles.unwrap_or_default()));
                }
                stmts.extend(self.plan_update(t, &prior, &stored, &changed)?);
                self.run(&step.address, &stmts).await?;
                record_fingerprint(&stmts, Some(&prior), &mut stored);
                Ok(Some(stored))
            }
            Operation::Delete => {
                let prior = self.resolve(t, require(&step.prior, "prior", step)?)?;
                if let (DATABASE, Some(dir)) = (t, &self.backup_dir) {
                    let name = attrs::req_str(&prior, "name")?;
                    if self.database_exists(&step.address, name).await? {
                        let dumped = dump::dump_database(
                            &self.server,
                            self.socket.as_deref(),
                            &step.address,
                            name,
                            dir,
                        )
                        .await;
                        // A database that vanished meanwhile (the DROP of a killed run
                        // still finishing on the server) has nothing left to dump.
                        if let Err(e) = dumped {
                            if self.database_exists(&step.address, name).await? {
                                return Err(e);
                            }
                        }
                    }
                }
                let stmts = self.plan_delete(t, &prior)?;
                self.run(&step.address, &stmts).await?;
                Ok(None)
            }
        }
    }

    /// Closes the pool's connections with the quit message, waiting (boundedly) for
    /// any still in use to come back.
    async fn close(&self) {
        let closing = async {
            match self.pool.get() {
                Some(Pool::Mysql(p)) => p.close().await,
                Some(Pool::Postgres(p)) => p.close().await,
                None => {}
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing).await;
    }

    async fn import(&self, type_name: &str, id: &str, desired: &Attrs) -> ProviderResult<Attrs> {
        let t = Self::schema(type_name)?.type_name;
        let attrs = match self.server.engine {
            SqlEngine::Mysql => mysql::import_request(t, id, desired)?,
            SqlEngine::Postgres => postgres::import_request(t, id)?,
        };
        let req = ObserveRequest {
            address: Address::new(format!("{t}.{id}")),
            type_name: t.to_string(),
            attrs,
        };
        let observed = self.observe(std::slice::from_ref(&req)).await?;
        match observed.into_iter().next() {
            Some(Observed::Present(mut found)) => {
                // Whatever cannot be read back (the password) comes from the
                // configuration, if it has it.
                for (k, v) in desired {
                    found.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Ok(found)
            }
            _ => {
                let mut why = format!(
                    "cannot import {t} {id:?}: it does not exist on {}",
                    self.server.target()
                );
                if self.server.engine == SqlEngine::Mysql && t == GRANT {
                    if let Some(db) = req.attrs.get("database").and_then(|v| v.as_str()) {
                        if quote::mysql_grant_db_pattern(db) != db {
                            why.push_str(&format!(
                                " (only a grant on the exact name counts; one on `{db}` \
                                 reaches every database its `_` or `%` match: grant on `{}`)",
                                quote::mysql_grant_db_pattern(db)
                            ));
                        }
                    }
                }
                Err(ProviderError::Invalid(why))
            }
        }
    }
}

/// "No connection limit" as PostgreSQL stores it (`CONNECTION LIMIT -1`).
const PG_NO_LIMIT: i64 = -1;
/// "No connection limit" as MariaDB stores it (`MAX_USER_CONNECTIONS 0`).
const MYSQL_NO_LIMIT: i64 = 0;

/// An unset `connection_limit` means none, said explicitly: a limit set by hand (`ALTER
/// ROLE … CONNECTION LIMIT 0` shuts the application out) is then drift, not ignored.
fn no_limit_unless_set(attrs: &mut Attrs, none: i64) {
    if attrs.get("connection_limit").is_none_or(|v| v.is_null()) {
        attrs.insert("connection_limit".into(), none.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> SqlProvider {
        SqlProvider::new(SqlServer {
            engine: SqlEngine::Mysql,
            address: "db.example".into(),
            port: 3306,
            admin_user: "admin".into(),
            admin_password: Secret::new("AdminPw42"),
            admin_database: None,
        })
    }

    #[test]
    fn errors_are_scrubbed_of_statement_and_admin_secrets() {
        let p = provider();
        let addr = Address::new("x.y");
        let echoed = sqlx::Error::Protocol("server said: near 'UserPw''7' / AdminPw42".into());
        let err = p.map_err(&echoed, &addr, &[Secret::new("UserPw'7")]);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("UserPw"), "{shown}");
        assert!(!shown.contains("AdminPw42"), "{shown}");
        assert!(shown.contains("(sensitive value)"), "{shown}");
        assert!(shown.contains("mysql://admin@db.example:3306"), "{shown}");
        let other = sqlx::Error::Configuration("bad UserPw'7".into());
        let err = p.map_err(&other, &addr, &[Secret::new("UserPw'7")]);
        assert!(!err.to_string().contains("UserPw"));
    }

    #[test]
    fn a_dropped_database_announces_its_dump_and_nothing_else_does() {
        let attrs: Attrs = serde_json::from_value(serde_json::json!({"name": "shop"})).unwrap();
        assert_eq!(
            provider().safeguard(DATABASE, &attrs),
            None,
            "no backup dir: no dump"
        );
        let p = provider().with_backup_dir(std::path::Path::new("/p/.terrace/backups"));
        assert_eq!(
            p.safeguard(DATABASE, &attrs),
            Some(terrace_provider::Safeguard {
                kind: "dump".into(),
                destination: "/p/.terrace/backups/shop-<time>.sql".into(),
            })
        );
        assert_eq!(p.safeguard(USER, &attrs), None);
    }

    #[test]
    fn debug_output_hides_the_admin_password() {
        let p = provider();
        assert!(!format!("{p:?} {:?}", p.server()).contains("AdminPw42"));
    }

    #[test]
    fn generated_passwords_are_long_random_alphanumerics() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose().len(), 32);
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
