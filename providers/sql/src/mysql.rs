//! MariaDB/MySQL: catalog snapshot for batched observe, and DDL for each step.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, MySqlPool, Row};
use terrace_provider::{Attrs, ObserveRequest, Observed, ProviderError, Secret, Value};

use crate::access::{has_wildcard, pattern_matches, Excess};
use crate::attrs::{
    collapse_all, opt_int, opt_str, opt_str_list, reject_attrs, req_str, str_list,
    MARIADB_ACCESS_ONLY_PRIVILEGES, MYSQL_DB_PRIVILEGES, MYSQL_GLOBAL_PRIVILEGES,
};
use crate::password::{Verdict, PASSWORD_STATUS};
use crate::quote::{
    mysql_grant_db_pattern, mysql_ident, mysql_string, validate_mysql_charset, validate_mysql_db,
    validate_mysql_host, validate_mysql_user, validate_password,
};
use crate::schema::{DATABASE, GRANT, USER};
use crate::stmt::Stmt;
use crate::{Needs, SqlEngine};

const ENGINE: SqlEngine = SqlEngine::Mysql;

/// MariaDB's `PUBLIC` (10.11) as its grant tables store it: what it is granted, every
/// account holds.
const PUBLIC: (&str, &str) = ("PUBLIC", "");

/// "There is no such grant defined", "no such grant on table", "on routine", "operation
/// failed for user" (user gone): all mean that there is nothing left to revoke.
const REVOKE_GONE: &[&str] = &["1141", "1147", "1403", "1396"];

/// One login account as its `mysql.global_priv` document describes it.
#[derive(Debug, Default)]
pub(crate) struct Account {
    max_user_connections: i64,
    /// Authentication plugin and its stored string (the password hash).
    plugin: String,
    auth: String,
    /// Global privileges (`ON *.*`).
    global: Vec<String>,
    /// Ways to log in (`IDENTIFIED VIA a OR b`): more than one means another password
    /// works beside the first, which `plugin` and `auth` show.
    login_methods: i64,
    /// `ACCOUNT LOCK`: every login is refused.
    locked: bool,
    /// `PASSWORD EXPIRE`: logins are refused until the password is set again.
    expired: bool,
    /// `PASSWORD EXPIRE INTERVAL n DAY` (days; -1 is the server's policy, 0 never).
    lifetime: i64,
    /// `REQUIRE SSL` (1), `X509` (2), `SPECIFIED` (3); 0 for none, which terrace sets.
    ssl_type: i64,
}

/// One `mysql.db` row: privileges on a database pattern.
#[derive(Debug, Default, Clone)]
struct DbGrant {
    privileges: Vec<String>,
    grant_option: bool,
}

/// Everything observe needs, read in at most four queries.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// database name → (charset, collation)
    databases: HashMap<String, (String, String)>,
    /// (user, lower-case host) → account
    users: HashMap<(String, String), Account>,
    /// (user, lower-case host, Db column as stored) → privileges held
    grants: HashMap<(String, String, String), DbGrant>,
    /// (user, lower-case host) → Db patterns with a `mysql.db` row, for the audit.
    patterns: HashMap<(String, String), Vec<String>>,
    /// (user, lower-case host) → table-level grants and granted roles.
    other: HashMap<(String, String), Vec<Excess>>,
    /// The databases the batch asked about (as objects or grants): what `PUBLIC`'s
    /// grants are checked against.
    batch_databases: BTreeSet<String>,
}

/// The catalog key of an account.
fn key(user: &str, host: &str) -> (String, String) {
    (user.to_string(), host.to_lowercase())
}

/// `CONCAT` of the Y/N flag columns `columns` of the table aliased `alias` (`"u."`),
/// for one string per row. Built from constant names only, hence safe to assert.
fn flags(alias: &str, columns: &[(&str, &str)]) -> String {
    let cols = columns
        .iter()
        .map(|(c, _)| format!("{alias}{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("CAST(CONCAT({cols}) AS CHAR)")
}

/// The keywords of the `Y` flags in a `flags` string.
fn set_flags(columns: &[(&str, &'static str)], flags: &str) -> Vec<String> {
    columns
        .iter()
        .zip(flags.chars())
        .filter(|(_, f)| *f == 'Y')
        .map(|((_, p), _)| p.to_string())
        .collect()
}

/// The global privileges an account's `access` bits hold: bits 0–29 are the
/// `mysql.user` privilege columns in order, the rest those without a column.
fn global_privileges(access: i64) -> Vec<String> {
    let columns = MYSQL_GLOBAL_PRIVILEGES
        .iter()
        .enumerate()
        .map(|(bit, (_, p))| (bit as u32, *p));
    columns
        .chain(MARIADB_ACCESS_ONLY_PRIVILEGES.iter().copied())
        .filter(|(bit, _)| access >> bit & 1 == 1)
        .map(|(_, p)| p.to_string())
        .collect()
}

/// Whether database `name` exists, asking about that one database: the equality on
/// `SCHEMA_NAME` lets the server look up its directory alone, where a read of the whole
/// `SCHEMATA` lists every database on the server (125 ms at 20,000 databases).
pub(crate) async fn database_exists(
    pool: &MySqlPool,
    name: &str,
    counter: &AtomicU64,
) -> Result<bool, sqlx::Error> {
    counter.fetch_add(1, Ordering::Relaxed);
    let rows = sqlx::query(
        "SELECT CAST(SCHEMA_NAME AS CHAR) AS name FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME = ?",
    )
    .bind(name)
    .fetch_all(pool)
    .await?;
    // The column compares without regard to case; the name must match exactly, as it
    // does in the snapshot's map.
    for r in rows {
        if r.try_get::<String, _>("name")? == name {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The user names in JSON array parameter `?` as a table `names(name)` to join the
/// privilege tables with. Its column has the catalogs' own character set and binary
/// collation: the server compares exactly, without converting every catalog row (a
/// join or `IN` across character sets cost 1 µs per row of the table at 10,000
/// accounts), and `mysql.db` is read through its index on `User`.
const NAMES: &str = "JSON_TABLE(?, '$[*]' COLUMNS (name VARCHAR(128) CHARACTER SET utf8mb3 \
                     COLLATE utf8mb3_bin PATH '$')) AS names";

/// The accounts in JSON array parameter `?` (`[[user, host], ...]`, hosts in lower case
/// as MariaDB stores them) as a table `accounts(user, host)`: `mysql.global_priv`,
/// `mysql.tables_priv`, `mysql.procs_priv` and `mysql.roles_mapping` are read by their
/// keys on (host, user).
const ACCOUNTS: &str = "JSON_TABLE(?, '$[*]' COLUMNS ( \
                        user VARCHAR(128) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin PATH '$[0]', \
                        host VARCHAR(255) CHARACTER SET utf8mb3 COLLATE utf8mb3_bin PATH '$[1]')) \
                        AS accounts";

/// How a catalog query selects the batch's names, by how many there are. Each is one
/// statement; each compares with `=` (no pattern: `_` and `%` mean themselves) against
/// bound values, never names in the SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Select {
    /// Up to [`LOOKUPS`] names: looked up by key (a `SCHEMATA` lookup per database
    /// name; the JSON tables above joined to the privilege tables' keys), which costs
    /// nothing per object the server holds.
    Lookups,
    /// More: one scan of the catalog against `IN (?, ?, …)`, which the server matches by
    /// binary search. Lookups cost 9–45 µs each, a scanned row 0.2–2 µs: from a few
    /// dozen names on, a scan is cheaper on most servers, and the batch is a large
    /// project's anyway. (An index range of a thousand values costs more to plan than
    /// the scan: hence `IGNORE INDEX` on `mysql.db`.)
    List,
    /// More names than one statement takes parameters: the whole catalog, matched here.
    All,
}

/// What the server's SQL offers the catalog queries, from its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dialect {
    /// `JSON_TABLE` (MariaDB 10.6, MySQL 8.0.4): without it, a batch's accounts are
    /// selected with `IN (?, …)` whatever their number (MariaDB 10.4 and 10.5, still
    /// run by distributions with longer support than MariaDB's).
    pub(crate) json_table: bool,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect { json_table: true }
    }
}

impl Dialect {
    /// The dialect of a server whose `VERSION()` is `version` (`10.11.6-MariaDB-0+deb12u1`,
    /// `8.0.36`). A version that does not parse gets the default.
    pub(crate) fn of_version(version: &str) -> Dialect {
        let mut parts = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().ok());
        let (Some(Some(major)), Some(Some(minor)), patch) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Dialect::default();
        };
        let at_least = if version.contains("MariaDB") {
            (10, 6, 0)
        } else {
            (8, 0, 4)
        };
        let patch = patch.flatten().unwrap_or(0);
        Dialect {
            json_table: (major, minor, patch) >= at_least,
        }
    }

    /// How to select `n` names, each bound `times` times in a [`Select::List`].
    fn select(self, n: usize, times: usize) -> Select {
        match Select::of(n, times) {
            Select::Lookups if !self.json_table => Select::List,
            other => other,
        }
    }
}

/// See [`Select::Lookups`].
const LOOKUPS: usize = 64;
/// MariaDB takes at most 65,535 parameters in one statement.
const MAX_PARAMS: usize = 65_535;

impl Select {
    /// How to select `n` names, each bound `times` times in a [`Select::List`].
    fn of(n: usize, times: usize) -> Select {
        match n {
            n if n <= LOOKUPS => Select::Lookups,
            n if n * times <= MAX_PARAMS => Select::List,
            _ => Select::All,
        }
    }
}

/// `?, ?, …` for `n` values; `NULL` for none (`IN (NULL)` is never true).
fn placeholders(n: usize) -> String {
    if n == 0 {
        return "NULL".into();
    }
    vec!["?"; n].join(", ")
}

/// Whether `value` fits a catalog column of `max` utf8mb3 characters. One that does not
/// names nothing there and is left out of the parameters: converted to the column's
/// type it would be cut short or have characters replaced, and could then match
/// another name.
fn storable(value: &str, max: usize) -> bool {
    value.chars().count() <= max && value.chars().all(|c| u32::from(c) < 0x10000)
}

/// The names of `names` a catalog column of `max` characters can hold.
fn storable_names(names: &BTreeSet<String>, max: usize) -> Vec<&str> {
    names
        .iter()
        .map(String::as_str)
        .filter(|n| storable(n, max))
        .collect()
}

/// A JSON array of `names`, the value of a [`NAMES`] parameter.
fn json_names(names: &[&str]) -> String {
    serde_json::Value::from_iter(names.iter().map(|n| serde_json::Value::from(*n))).to_string()
}

/// A JSON array of `[user, host]` pairs, the value of an [`ACCOUNTS`] parameter.
fn json_accounts(accounts: &BTreeSet<(String, String)>) -> String {
    let pairs = accounts
        .iter()
        .filter(|(user, host)| storable(user, 128) && storable(host, 255))
        .map(|(user, host)| serde_json::json!([user, host]));
    serde_json::Value::from_iter(pairs).to_string()
}

/// Runs `sql`, binding `params`, then each of `names` `times` times over (a
/// [`Select::List`]). Statements whose text depends on the batch's size are not kept
/// prepared on the connection.
async fn fetch(
    pool: &MySqlPool,
    sql: String,
    params: &[String],
    names: &[&str],
    times: usize,
) -> Result<Vec<sqlx::mysql::MySqlRow>, sqlx::Error> {
    let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(names.is_empty());
    for p in params {
        q = q.bind(p.as_str());
    }
    for _ in 0..times {
        for n in names {
            q = q.bind(*n);
        }
    }
    q.fetch_all(pool).await
}

/// Reads what `needs` asks for from the catalog tables, counting each query in `counter`
/// and the rows they return in `rows_read`. Every query selects by the batch's names
/// (databases by name; everything an audited account holds, on any database, by the
/// account), so the server's other databases and accounts are neither sent nor decoded.
pub(crate) async fn snapshot(
    pool: &MySqlPool,
    needs: &Needs,
    dialect: Dialect,
    counter: &AtomicU64,
    rows_read: &AtomicU64,
) -> Result<Snapshot, sqlx::Error> {
    let mut snap = Snapshot {
        batch_databases: needs
            .database_names
            .union(&needs.grant_databases)
            .cloned()
            .collect(),
        ..Snapshot::default()
    };
    if needs.databases {
        counter.fetch_add(1, Ordering::Relaxed);
        const COLUMNS: &str = "SELECT CAST(SCHEMA_NAME AS CHAR) AS name, \
                    CAST(DEFAULT_CHARACTER_SET_NAME AS CHAR) AS cs, \
                    CAST(DEFAULT_COLLATION_NAME AS CHAR) AS coll \
             FROM information_schema.SCHEMATA";
        let names = storable_names(&needs.database_names, 64);
        // MariaDB answers `SCHEMA_NAME = ?` from that database's directory alone; any
        // other condition lists and opens every database on the server first. The
        // column compares without regard to case: the list is compared in binary.
        let (sql, names) = match Select::of(names.len(), 1) {
            Select::Lookups if names.is_empty() => (format!("{COLUMNS} WHERE FALSE"), names),
            Select::Lookups => {
                let branch = format!("{COLUMNS} WHERE SCHEMA_NAME = ?");
                (vec![branch; names.len()].join(" UNION ALL "), names)
            }
            Select::List => (
                format!(
                    "{COLUMNS} WHERE SCHEMA_NAME COLLATE utf8mb3_bin IN ({})",
                    placeholders(names.len())
                ),
                names,
            ),
            Select::All => (COLUMNS.to_string(), Vec::new()),
        };
        let rows = fetch(pool, sql, &[], &names, 1).await?;
        rows_read.fetch_add(rows.len() as u64, Ordering::Relaxed);
        for r in rows {
            // SCHEMA_NAME compares without regard to case: only the exact name counts.
            let name: String = r.try_get("name")?;
            if needs.database_names.contains(&name) {
                snap.databases
                    .insert(name, (r.try_get("cs")?, r.try_get("coll")?));
            }
        }
    }
    if needs.users {
        counter.fetch_add(1, Ordering::Relaxed);
        // Read from `mysql.global_priv`, where MariaDB (10.4 on) keeps each account as
        // one JSON document: the `mysql.user` view computes some forty columns from it
        // per row and still shows only the first login method. The privileges are the
        // `access` bits; roles (`is_role`) are not login users.
        let columns = "SELECT CAST(g.User AS CHAR) AS user, CAST(g.Host AS CHAR) AS host, \
                    CAST(COALESCE(JSON_VALUE(g.Priv, '$.max_user_connections'), 0) AS SIGNED) AS maxconn, \
                    CAST(COALESCE(JSON_VALUE(g.Priv, '$.plugin'), '') AS CHAR) AS plugin, \
                    CAST(COALESCE(JSON_VALUE(g.Priv, '$.authentication_string'), '') AS CHAR) AS auth, \
                    CAST(COALESCE(JSON_LENGTH(g.Priv, '$.auth_or'), 1) AS SIGNED) AS methods, \
                    CAST(COALESCE(JSON_VALUE(g.Priv, '$.access'), 0) AS SIGNED) AS access, \
                    CAST(COALESCE(JSON_VALUE(g.Priv, '$.account_locked'), '') AS CHAR) AS locked, \
                    CAST(COALESCE(JSON_VALUE(g.Priv, '$.password_last_changed'), '') AS CHAR) AS changed, \
                    CAST(COALESCE(JSON_VALUE(g.Priv, '$.password_lifetime'), -1) AS SIGNED) AS lifetime, \
                    CAST(COALESCE(JSON_VALUE(g.Priv, '$.ssl_type'), 0) AS SIGNED) AS ssl_type";
        let not_role = "COALESCE(JSON_VALUE(g.Priv, '$.is_role'), '') NOT IN ('1', 'true')";
        let names = storable_names(&needs.user_names, 128);
        let rows = match dialect.select(needs.accounts.len(), 1) {
            Select::Lookups => {
                let sql = format!(
                    "{columns} FROM {ACCOUNTS} \
                     JOIN mysql.global_priv g ON g.Host = accounts.host AND g.User = accounts.user \
                     WHERE {not_role}"
                );
                fetch(pool, sql, &[json_accounts(&needs.accounts)], &[], 0).await?
            }
            Select::List => {
                let sql = format!(
                    "{columns} FROM mysql.global_priv g WHERE g.User IN ({}) AND {not_role}",
                    placeholders(names.len())
                );
                fetch(pool, sql, &[], &names, 1).await?
            }
            Select::All => {
                let sql = format!("{columns} FROM mysql.global_priv g WHERE {not_role}");
                fetch(pool, sql, &[], &[], 0).await?
            }
        };
        rows_read.fetch_add(rows.len() as u64, Ordering::Relaxed);
        for r in rows {
            let user: String = r.try_get("user")?;
            let host: String = r.try_get("host")?;
            snap.users.insert(
                key(&user, &host),
                Account {
                    max_user_connections: r.try_get("maxconn")?,
                    plugin: r
                        .try_get::<Option<String>, _>("plugin")?
                        .unwrap_or_default(),
                    auth: r.try_get::<Option<String>, _>("auth")?.unwrap_or_default(),
                    global: global_privileges(r.try_get("access")?),
                    login_methods: r.try_get("methods")?,
                    locked: matches!(r.try_get::<String, _>("locked")?.as_str(), "1" | "true"),
                    expired: r.try_get::<String, _>("changed")? == "0",
                    lifetime: r.try_get("lifetime")?,
                    ssl_type: r.try_get("ssl_type")?,
                },
            );
        }
    }
    if needs.grants {
        counter.fetch_add(1, Ordering::Relaxed);
        // Every database-level grant of the audited accounts (on any database or
        // pattern, foreign ones included) and of the accounts the grants name.
        let columns = format!(
            "SELECT CAST(d.Db AS CHAR) AS db, CAST(d.User AS CHAR) AS user, \
                    CAST(d.Host AS CHAR) AS host, {} AS flags, \
                    CAST(d.Grant_priv AS CHAR) AS grant_option",
            flags("d.", MYSQL_DB_PRIVILEGES)
        );
        let mut accounts: BTreeSet<String> = needs
            .user_names
            .union(&needs.grant_users)
            .cloned()
            .collect();
        if needs.users {
            accounts.insert(PUBLIC.0.to_string());
        }
        let names = storable_names(&accounts, 128);
        let rows = match dialect.select(names.len(), 1) {
            Select::Lookups => {
                let sql = format!("{columns} FROM {NAMES} JOIN mysql.db d ON d.User = names.name");
                fetch(pool, sql, &[json_names(&names)], &[], 0).await?
            }
            Select::List => {
                let sql = format!(
                    "{columns} FROM mysql.db d IGNORE INDEX (User) WHERE d.User IN ({})",
                    placeholders(names.len())
                );
                fetch(pool, sql, &[], &names, 1).await?
            }
            Select::All => fetch(pool, format!("{columns} FROM mysql.db d"), &[], &[], 0).await?,
        };
        rows_read.fetch_add(rows.len() as u64, Ordering::Relaxed);
        for r in rows {
            let flags: String = r.try_get("flags")?;
            let user: String = r.try_get("user")?;
            let host: String = r.try_get("host")?;
            let db: String = r.try_get("db")?;
            let grant_option: String = r.try_get("grant_option")?;
            snap.patterns
                .entry(key(&user, &host))
                .or_default()
                .push(db.clone());
            snap.grants.insert(
                (user, host.to_lowercase(), db),
                DbGrant {
                    privileges: set_flags(MYSQL_DB_PRIVILEGES, &flags),
                    grant_option: grant_option == "Y",
                },
            );
        }
    }
    if needs.users {
        // Table- and column-level grants and granted roles of the audited accounts, on
        // any database, for the isolation audit.
        counter.fetch_add(1, Ordering::Relaxed);
        let tables = "SELECT 'table' AS kind, CAST(t.User AS CHAR) AS user, \
                    CAST(t.Host AS CHAR) AS host, CAST(t.Db AS CHAR) AS db, \
                    CAST(t.Table_name AS CHAR) AS obj, \
                    CAST(CONCAT_WS(',', NULLIF(t.Table_priv, ''), NULLIF(t.Column_priv, '')) AS CHAR) AS privs";
        let roles = "SELECT 'role', CAST(r.User AS CHAR), CAST(r.Host AS CHAR), '', \
                    CAST(r.Role AS CHAR), ''";
        // Grants on stored procedures and functions: EXECUTE on a `SQL SECURITY
        // DEFINER` routine of another tenant runs with its owner's rights.
        let routines = "SELECT LOWER(p.Routine_type), CAST(p.User AS CHAR), \
                    CAST(p.Host AS CHAR), CAST(p.Db AS CHAR), \
                    CAST(p.Routine_name AS CHAR), CAST(p.Proc_priv AS CHAR)";
        let mut audited = needs.accounts.clone();
        audited.insert((PUBLIC.0.to_string(), PUBLIC.1.to_string()));
        let mut audited_names = needs.user_names.clone();
        audited_names.insert(PUBLIC.0.to_string());
        let names = storable_names(&audited_names, 128);
        let rows = match dialect.select(audited.len(), 3) {
            Select::Lookups => {
                let sql = format!(
                    "{tables} FROM {ACCOUNTS} \
                     JOIN mysql.tables_priv t ON t.User = accounts.user AND t.Host = accounts.host \
                     UNION ALL \
                     {roles} FROM {ACCOUNTS} \
                     JOIN mysql.roles_mapping r ON r.User = accounts.user AND r.Host = accounts.host \
                     UNION ALL \
                     {routines} FROM {ACCOUNTS} \
                     JOIN mysql.procs_priv p ON p.User = accounts.user AND p.Host = accounts.host"
                );
                let accounts = json_accounts(&audited);
                fetch(
                    pool,
                    sql,
                    &[accounts.clone(), accounts.clone(), accounts],
                    &[],
                    0,
                )
                .await?
            }
            Select::List => {
                let list = placeholders(names.len());
                let sql = format!(
                    "{tables} FROM mysql.tables_priv t WHERE t.User IN ({list}) \
                     UNION ALL \
                     {roles} FROM mysql.roles_mapping r WHERE r.User IN ({list}) \
                     UNION ALL \
                     {routines} FROM mysql.procs_priv p WHERE p.User IN ({list})"
                );
                fetch(pool, sql, &[], &names, 3).await?
            }
            Select::All => {
                let sql = format!(
                    "{tables} FROM mysql.tables_priv t UNION ALL {roles} FROM mysql.roles_mapping r \
                     UNION ALL {routines} FROM mysql.procs_priv p"
                );
                fetch(pool, sql, &[], &[], 0).await?
            }
        };
        rows_read.fetch_add(rows.len() as u64, Ordering::Relaxed);
        for r in rows {
            let kind: String = r.try_get("kind")?;
            let user: String = r.try_get("user")?;
            let host: String = r.try_get("host")?;
            let obj: String = r.try_get("obj")?;
            let privileges = || -> Result<Vec<String>, sqlx::Error> {
                let privs: Option<String> = r.try_get("privs")?;
                let mut privileges: Vec<String> = privs
                    .unwrap_or_default()
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| p.to_uppercase())
                    .collect();
                privileges.sort();
                privileges.dedup();
                Ok(privileges)
            };
            let found = match kind.as_str() {
                "role" => Excess::Role(obj),
                "table" => Excess::Table {
                    database: r.try_get("db")?,
                    table: obj,
                    privileges: privileges()?,
                },
                _ => Excess::Routine {
                    function: kind == "function",
                    database: r.try_get("db")?,
                    name: obj,
                    privileges: privileges()?,
                },
            };
            snap.other.entry(key(&user, &host)).or_default().push(found);
        }
    }
    Ok(snap)
}

/// What account `user@host` holds beyond `allowed` (the escaped database patterns its
/// configured grants use).
pub(crate) fn excess(
    snap: &Snapshot,
    user: &str,
    host: &str,
    allowed: &HashSet<String>,
) -> Vec<Excess> {
    let mut out = held(snap, &key(user, host), allowed);
    // What PUBLIC is granted, every account holds (MariaDB 10.11): reported where it
    // opens a database of this batch, whoever else's it may open.
    let opens = |db: &str| snap.batch_databases.iter().any(|d| pattern_matches(db, d));
    out.extend(
        held(snap, &key(PUBLIC.0, PUBLIC.1), allowed)
            .into_iter()
            .filter(|e| match e {
                Excess::Database { pattern, .. } | Excess::GrantOption { pattern } => {
                    opens(pattern)
                }
                Excess::Table { database, .. } | Excess::Routine { database, .. } => {
                    snap.batch_databases.contains(database)
                }
                _ => true,
            })
            .map(|e| Excess::Public(Box::new(e))),
    );
    out.sort();
    out
}

/// What account `k` holds itself beyond `allowed`.
fn held(snap: &Snapshot, k: &(String, String), allowed: &HashSet<String>) -> Vec<Excess> {
    let k = k.clone();
    let mut out = Vec::new();
    if let Some(acct) = snap.users.get(&k) {
        if !acct.global.is_empty() {
            out.push(Excess::Global(acct.global.clone()));
        }
        if acct.locked {
            out.push(Excess::Locked);
        }
        if acct.ssl_type != 0 {
            out.push(Excess::RequiresTls);
        }
        if acct.lifetime > 0 {
            out.push(Excess::Expires(format!(
                "{} days after it is set (PASSWORD EXPIRE INTERVAL)",
                acct.lifetime
            )));
        }
    }
    for pattern in snap.patterns.get(&k).into_iter().flatten() {
        let Some(g) = snap
            .grants
            .get(&(k.0.clone(), k.1.clone(), pattern.clone()))
        else {
            continue;
        };
        // Only the escaped pattern is the configured grant. One made by hand on a raw
        // name holding `_` (as people type it) reaches every database the pattern
        // matches, another tenant's among them: access beyond the configuration.
        if allowed.contains(pattern) {
            if g.grant_option {
                out.push(Excess::GrantOption {
                    pattern: pattern.clone(),
                });
            }
        } else if !g.privileges.is_empty() || g.grant_option {
            let known: Vec<&str> = MYSQL_DB_PRIVILEGES.iter().map(|(_, p)| *p).collect();
            let mut privileges = collapse_all(g.privileges.clone(), &known);
            if g.grant_option {
                privileges.push("GRANT OPTION".into());
            }
            out.push(Excess::Database {
                pattern: pattern.clone(),
                wildcard: has_wildcard(pattern),
                privileges,
            });
        }
    }
    out.extend(snap.other.get(&k).into_iter().flatten().cloned());
    out
}

/// Checks the known `password` of `user@host` against its stored hash; None when the
/// account does not exist.
pub(crate) fn password_verdict(
    snap: &Snapshot,
    user: &str,
    host: &str,
    password: &str,
) -> Option<Verdict> {
    let acct = snap.users.get(&key(user, host))?;
    Some(
        match crate::password::mysql_check(password, &acct.plugin, &acct.auth) {
            Verdict::Matches if acct.login_methods > 1 => Verdict::AlsoAnother,
            Verdict::Matches if acct.expired => Verdict::Expired,
            verdict => verdict,
        },
    )
}

/// `<what><target> FROM <account>`, where a grant already gone counts as done. MariaDB
/// takes `ALL PRIVILEGES` and `GRANT OPTION` only in separate statements.
fn revoke_on(what: &'static str, target: &str, acct: &str) -> Stmt {
    Stmt::new(what)
        .q(target)
        .kw(" FROM ")
        .q(acct)
        .ignoring(REVOKE_GONE)
}

/// Statements that take away everything in `found` from the account in `attrs`.
pub(crate) fn revoke_excess(attrs: &Attrs, found: &[Excess]) -> Result<Vec<Stmt>, ProviderError> {
    let own: Vec<Excess> = found
        .iter()
        .filter(|e| !matches!(e, Excess::Public(_)))
        .cloned()
        .collect();
    let public: Vec<Excess> = found
        .iter()
        .filter_map(|e| match e {
            Excess::Public(e) => Some((**e).clone()),
            _ => None,
        })
        .collect();
    let mut out = revoke_from(&account(attrs, "name")?, &own);
    // `PUBLIC` is a keyword here, not an account name to quote.
    out.extend(revoke_from(PUBLIC.0, &public));
    Ok(out)
}

/// Statements that take away everything in `found` from `acct` (quoted already).
fn revoke_from(acct: &str, found: &[Excess]) -> Vec<Stmt> {
    let acct = acct.to_string();
    let mut out = Vec::new();
    for e in found {
        match e {
            Excess::Global(_) => {
                out.push(
                    Stmt::new("REVOKE ALL PRIVILEGES ON *.* FROM ")
                        .q(&acct)
                        .ignoring(REVOKE_GONE),
                );
                out.push(
                    Stmt::new("REVOKE GRANT OPTION ON *.* FROM ")
                        .q(&acct)
                        .ignoring(REVOKE_GONE),
                );
            }
            Excess::Database { pattern, .. } => {
                let target = format!("{}.*", mysql_ident(pattern));
                out.push(revoke_on("REVOKE ALL PRIVILEGES ON ", &target, &acct));
                out.push(revoke_on("REVOKE GRANT OPTION ON ", &target, &acct));
            }
            Excess::GrantOption { pattern } => {
                let target = format!("{}.*", mysql_ident(pattern));
                out.push(revoke_on("REVOKE GRANT OPTION ON ", &target, &acct));
            }
            Excess::Table {
                database, table, ..
            } => {
                let target = format!("{}.{}", mysql_ident(database), mysql_ident(table));
                out.push(revoke_on("REVOKE ALL PRIVILEGES ON ", &target, &acct));
                out.push(revoke_on("REVOKE GRANT OPTION ON ", &target, &acct));
            }
            Excess::Role(role) => {
                out.push(
                    Stmt::new("REVOKE ")
                        .q(&mysql_ident(role))
                        .kw(" FROM ")
                        .q(&acct)
                        .ignoring(REVOKE_GONE),
                );
            }
            Excess::Locked => {
                out.push(Stmt::new("ALTER USER ").q(&acct).kw(" ACCOUNT UNLOCK"));
            }
            Excess::RequiresTls => {
                out.push(Stmt::new("ALTER USER ").q(&acct).kw(" REQUIRE NONE"));
            }
            Excess::Expires(_) => {
                out.push(
                    Stmt::new("ALTER USER ")
                        .q(&acct)
                        .kw(" PASSWORD EXPIRE DEFAULT"),
                );
            }
            Excess::Routine {
                function,
                database,
                name,
                ..
            } => {
                let target = format!("{}.{}", mysql_ident(database), mysql_ident(name));
                let on = if *function {
                    "REVOKE ALL PRIVILEGES ON FUNCTION "
                } else {
                    "REVOKE ALL PRIVILEGES ON PROCEDURE "
                };
                out.push(revoke_on(on, &target, &acct));
                let option = if *function {
                    "REVOKE GRANT OPTION ON FUNCTION "
                } else {
                    "REVOKE GRANT OPTION ON PROCEDURE "
                };
                out.push(revoke_on(option, &target, &acct));
            }
            // PostgreSQL-only findings never come from a MariaDB snapshot; PUBLIC's are
            // sorted out by the caller.
            Excess::Owner { .. }
            | Excess::Attribute(_)
            | Excess::NoLogin
            | Excess::Setting { .. }
            | Excess::DatabaseFlag { .. }
            | Excess::Public(_) => {}
        }
    }
    out
}

/// The host of a user or grant, `%` when unset.
pub(crate) fn host(attrs: &Attrs) -> Result<&str, ProviderError> {
    Ok(opt_str(attrs, "host")?.unwrap_or("%"))
}

/// Answers one request from the snapshot.
pub(crate) fn answer(snap: &Snapshot, req: &ObserveRequest) -> Result<Observed, ProviderError> {
    let a = &req.attrs;
    let mut out = Attrs::new();
    match req.type_name.as_str() {
        DATABASE => {
            let name = req_str(a, "name")?;
            let Some((cs, coll)) = snap.databases.get(name) else {
                return Ok(Observed::Absent);
            };
            out.insert("name".into(), name.into());
            out.insert("charset".into(), cs.as_str().into());
            out.insert("collation".into(), coll.as_str().into());
        }
        USER => {
            let name = req_str(a, "name")?;
            let host = host(a)?;
            let Some(acct) = snap.users.get(&key(name, host)) else {
                return Ok(Observed::Absent);
            };
            out.insert("name".into(), name.into());
            out.insert("host".into(), host.into());
            out.insert("connection_limit".into(), acct.max_user_connections.into());
        }
        GRANT => {
            let db = req_str(a, "database")?;
            let user = req_str(a, "user")?;
            let host = host(a)?;
            let key = |stored: String| (user.to_string(), host.to_lowercase(), stored);
            // Terrace's grants use the escaped pattern. One made by hand on a raw name
            // with `_` is a wildcard, not this grant: the user's audit reports it.
            let privs = snap
                .grants
                .get(&key(mysql_grant_db_pattern(db)))
                .map(|g| &g.privileges);
            let Some(privs) = privs.filter(|p| !p.is_empty()) else {
                return Ok(Observed::Absent);
            };
            let known: Vec<&str> = MYSQL_DB_PRIVILEGES.iter().map(|(_, p)| *p).collect();
            out.insert("database".into(), db.into());
            out.insert("user".into(), user.into());
            out.insert("host".into(), host.into());
            out.insert(
                "privileges".into(),
                str_list(&collapse_all(privs.clone(), &known)),
            );
        }
        other => return Err(crate::unknown_type(other)),
    }
    Ok(Observed::Present(out))
}

fn account(attrs: &Attrs, user_key: &str) -> Result<String, ProviderError> {
    let user = req_str(attrs, user_key)?;
    let host = host(attrs)?;
    validate_mysql_user(user)?;
    validate_mysql_host(host)?;
    Ok(format!("{}@{}", mysql_string(user), mysql_string(host)))
}

fn db_name(attrs: &Attrs, key: &str) -> Result<String, ProviderError> {
    let name = req_str(attrs, key)?;
    validate_mysql_db(name)?;
    Ok(mysql_ident(name))
}

/// ` CHARACTER SET x COLLATE y` for whichever of the two are set.
fn charset_clause(mut s: Stmt, attrs: &Attrs) -> Result<Stmt, ProviderError> {
    if let Some(cs) = opt_str(attrs, "charset")? {
        validate_mysql_charset("charset", cs)?;
        s = s.kw(" CHARACTER SET ").q(&mysql_ident(cs));
    }
    if let Some(coll) = opt_str(attrs, "collation")? {
        validate_mysql_charset("collation", coll)?;
        s = s.kw(" COLLATE ").q(&mysql_ident(coll));
    }
    Ok(s)
}

fn conn_limit(attrs: &Attrs) -> Result<Option<i64>, ProviderError> {
    let limit = opt_int(attrs, "connection_limit")?;
    if let Some(n) = limit {
        if !(0..=i64::from(i32::MAX)).contains(&n) {
            return Err(ProviderError::Invalid(format!(
                "connection_limit {n} is out of range on MariaDB/MySQL (0 = unlimited)"
            )));
        }
    }
    Ok(limit)
}

fn password(attrs: &Attrs) -> Result<Option<Secret>, ProviderError> {
    let pw = opt_str(attrs, "password")?.map(Secret::new);
    if let Some(pw) = &pw {
        validate_password(pw.expose())?;
    }
    Ok(pw)
}

/// ` IDENTIFIED WITH mysql_native_password AS '*…'`: the server gets the hash it stores,
/// never the password, so the password cannot reach its statement or audit logs. The
/// hash is still treated as a secret.
fn identified(s: Stmt, pw: &Secret) -> Stmt {
    let hash = Secret::new(crate::password::mysql_native_hash(pw.expose()));
    s.kw(" IDENTIFIED WITH mysql_native_password AS ")
        .secret(mysql_string(hash.expose()), &hash)
        .also_hide(pw)
}

fn grant_target(attrs: &Attrs) -> Result<(String, String), ProviderError> {
    let db = req_str(attrs, "database")?;
    validate_mysql_db(db)?;
    Ok((
        mysql_ident(&mysql_grant_db_pattern(db)),
        account(attrs, "user")?,
    ))
}

fn revoke_stmts(attrs: &Attrs) -> Result<Vec<Stmt>, ProviderError> {
    let (target, acct) = grant_target(attrs)?;
    let mut out = vec![Stmt::new("REVOKE ALL PRIVILEGES ON ")
        .q(&target)
        .kw(".* FROM ")
        .q(&acct)
        .ignoring(REVOKE_GONE)];
    // A grant made by hand on the unescaped name (a wildcard pattern) is revoked too.
    let db = req_str(attrs, "database")?;
    if mysql_grant_db_pattern(db) != db {
        out.push(
            Stmt::new("REVOKE ALL PRIVILEGES ON ")
                .q(&mysql_ident(db))
                .kw(".* FROM ")
                .q(&acct)
                .ignoring(REVOKE_GONE),
        );
    }
    Ok(out)
}

fn grant_stmt(attrs: &Attrs) -> Result<Stmt, ProviderError> {
    let (target, acct) = grant_target(attrs)?;
    let privs = opt_str_list(attrs, "privileges")?
        .ok_or_else(|| ProviderError::Invalid("attribute privileges is required".into()))?;
    // Already normalised against the whitelist by the caller; checked again because
    // these keywords go into the statement unquoted.
    let privs = crate::attrs::normalize_privileges(ENGINE, &privs)?;
    let list = if privs == ["ALL"] {
        "ALL PRIVILEGES".to_string()
    } else {
        privs.join(", ")
    };
    Ok(Stmt::new("GRANT ")
        .q(&list)
        .kw(" ON ")
        .q(&target)
        .kw(".* TO ")
        .q(&acct))
}

fn check_attrs(type_name: &str, attrs: &Attrs) -> Result<(), ProviderError> {
    match type_name {
        DATABASE => reject_attrs(attrs, ENGINE, &["owner", "connection_limit"]),
        GRANT => reject_attrs(attrs, ENGINE, &["revoke_public"]),
        _ => Ok(()),
    }
}

/// Statements that create the object described by fully resolved `attrs`.
pub(crate) fn plan_create(type_name: &str, attrs: &Attrs) -> Result<Vec<Stmt>, ProviderError> {
    check_attrs(type_name, attrs)?;
    match type_name {
        DATABASE => {
            let s = Stmt::new("CREATE DATABASE ").q(&db_name(attrs, "name")?);
            Ok(vec![charset_clause(s, attrs)?])
        }
        USER => {
            let pw = password(attrs)?
                .ok_or_else(|| ProviderError::Invalid("a password is required".into()))?;
            let mut s = identified(Stmt::new("CREATE USER ").q(&account(attrs, "name")?), &pw);
            if let Some(n) = conn_limit(attrs)? {
                s = s.kw(" WITH MAX_USER_CONNECTIONS ").q(&n.to_string());
            }
            Ok(vec![s])
        }
        GRANT => Ok(vec![grant_stmt(attrs)?]),
        other => Err(crate::unknown_type(other)),
    }
}

/// Statements that change `changed` attributes in place from `prior` to `desired`
/// (both fully resolved).
pub(crate) fn plan_update(
    type_name: &str,
    prior: &Attrs,
    desired: &Attrs,
    changed: &BTreeSet<String>,
) -> Result<Vec<Stmt>, ProviderError> {
    check_attrs(type_name, desired)?;
    let mut out = Vec::new();
    match type_name {
        DATABASE => {
            if changed.contains("charset") || changed.contains("collation") {
                let s = Stmt::new("ALTER DATABASE ").q(&db_name(desired, "name")?);
                let s = charset_clause(s, desired)?;
                if s.sql().contains(" CHARACTER SET ") || s.sql().contains(" COLLATE ") {
                    out.push(s);
                }
            }
        }
        USER => {
            let acct = account(desired, "name")?;
            if changed.contains("name") || changed.contains("host") {
                // RENAME USER keeps the account's grants and password.
                out.push(
                    Stmt::new("RENAME USER ")
                        .q(&account(prior, "name")?)
                        .kw(" TO ")
                        .q(&acct),
                );
            }
            // Set again when it changed in the configuration, or by hand on the server.
            let reset = changed.contains(PASSWORD_STATUS);
            let new_pw = password(desired)?;
            if let Some(pw) = new_pw.filter(|pw| {
                reset || opt_str(prior, "password").ok().flatten() != Some(pw.expose())
            }) {
                out.push(identified(Stmt::new("ALTER USER ").q(&acct), &pw));
            }
            if changed.contains("connection_limit") {
                if let Some(n) = conn_limit(desired)? {
                    out.push(
                        Stmt::new("ALTER USER ")
                            .q(&acct)
                            .kw(" WITH MAX_USER_CONNECTIONS ")
                            .q(&n.to_string()),
                    );
                }
            }
        }
        GRANT => {
            if changed.contains("privileges") {
                out.extend(revoke_stmts(desired)?);
                out.push(grant_stmt(desired)?);
            }
        }
        other => return Err(crate::unknown_type(other)),
    }
    Ok(out)
}

/// Statements that remove the object described by `prior`.
pub(crate) fn plan_delete(type_name: &str, prior: &Attrs) -> Result<Vec<Stmt>, ProviderError> {
    match type_name {
        DATABASE => Ok(vec![
            Stmt::new("DROP DATABASE IF EXISTS ").q(&db_name(prior, "name")?)
        ]),
        USER => Ok(vec![
            Stmt::new("DROP USER IF EXISTS ").q(&account(prior, "name")?)
        ]),
        GRANT => revoke_stmts(prior),
        other => Err(crate::unknown_type(other)),
    }
}

/// Request attributes identifying the object named by an import `id`.
/// An account is `name@host` or just `name`, in which case the host comes from the
/// configuration (`desired`) or defaults to `%`.
pub(crate) fn import_request(
    type_name: &str,
    id: &str,
    desired: &Attrs,
) -> Result<Attrs, ProviderError> {
    let mut a = Attrs::new();
    let default_host = host(desired)?.to_string();
    let split_account = |s: &str| match s.rsplit_once('@') {
        Some((u, h)) => (u.to_string(), h.to_string()),
        None => (s.to_string(), default_host.clone()),
    };
    match type_name {
        DATABASE => {
            a.insert("name".into(), id.into());
        }
        USER => {
            let (u, h) = split_account(id);
            a.insert("name".into(), Value::String(u));
            a.insert("host".into(), Value::String(h));
        }
        GRANT => {
            // Database names cannot contain '/', so the last '/' separates them.
            let (acct, db) = id.rsplit_once('/').ok_or_else(|| {
                ProviderError::Invalid(format!("grant id {id:?} must be USER[@HOST]/DATABASE"))
            })?;
            let (u, h) = split_account(acct);
            a.insert("user".into(), Value::String(u));
            a.insert("host".into(), Value::String(h));
            a.insert("database".into(), db.into());
        }
        other => return Err(crate::unknown_type(other)),
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bits as MariaDB 10.11 set them, each privilege granted alone.
    #[test]
    fn access_bits_name_the_global_privileges() {
        for (access, want) in [
            (1_i64, "SELECT"),
            (32_768, "SUPER"),
            (524_288, "REPLICATION SLAVE"),
            (1_048_576, "BINLOG MONITOR"),
            (268_435_456, "CREATE TABLESPACE"),
            (536_870_912, "DELETE HISTORY"),
            (1 << 30, "SET USER"),
            (1 << 32, "CONNECTION ADMIN"),
            (1 << 38, "SLAVE MONITOR"),
        ] {
            assert_eq!(global_privileges(access), [want], "{access}");
        }
        assert_eq!(global_privileges(0), Vec::<String>::new());
    }
    use serde_json::json;

    fn attrs(v: Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn json_table_is_used_from_the_versions_that_have_it() {
        for (version, json_table) in [
            ("10.11.19-MariaDB-0+deb12u1", true),
            ("10.6.0-MariaDB", true),
            ("11.4.2-MariaDB-ubu2404", true),
            ("10.5.23-MariaDB-0+deb11u1", false),
            ("10.4.34-MariaDB-log", false),
            ("8.0.36", true),
            ("8.0.3-rc-log", false),
            ("5.7.44-log", false),
            ("unexpected", true),
        ] {
            assert_eq!(
                Dialect::of_version(version),
                Dialect { json_table },
                "{version}"
            );
        }
    }

    #[test]
    fn hostile_names_are_quoted_in_ddl() {
        let a = attrs(json!({"name": "a'; DROP DATABASE x; --`", "charset": "utf8mb4"}));
        let s = plan_create(DATABASE, &a).unwrap();
        assert_eq!(
            s[0].sql(),
            "CREATE DATABASE `a'; DROP DATABASE x; --``` CHARACTER SET `utf8mb4`"
        );
        let a = attrs(json!({"name": "o'b\\", "host": "%", "password": "p'w"}));
        let s = plan_create(USER, &a).unwrap();
        // The server receives the hash it stores, never the password itself.
        assert_eq!(
            s[0].sql(),
            format!(
                "CREATE USER 'o''b\\\\'@'%' IDENTIFIED WITH mysql_native_password AS '{}'",
                crate::password::mysql_native_hash("p'w")
            )
        );
        assert!(!s[0].sql().contains("p''w"));
        assert!(!s[0].shown().contains("p''w"));
        assert!(!s[0]
            .shown()
            .contains(&crate::password::mysql_native_hash("p'w")));
        let a = attrs(json!({"database": "d_b", "user": "u", "privileges": ["select"]}));
        let s = plan_create(GRANT, &a).unwrap();
        assert_eq!(s[0].sql(), "GRANT SELECT ON `d\\_b`.* TO 'u'@'%'");
    }

    #[test]
    fn invalid_input_is_rejected_before_sql() {
        let bad = [
            json!({"name": "a\0b"}),
            json!({"name": "x".repeat(65)}),
            json!({"name": " lead"}),
            json!({"name": "ok", "charset": "utf8; DROP"}),
            json!({"name": "ok", "owner": "bob"}),
        ];
        for b in bad {
            assert!(plan_create(DATABASE, &attrs(b.clone())).is_err(), "{b}");
        }
        let a = attrs(json!({"database": "d", "user": "u", "privileges": ["ALL; DROP"]}));
        assert!(plan_create(GRANT, &a).is_err());
    }

    #[test]
    fn batch_names_are_bound_values_selected_by_count() {
        assert_eq!(Select::of(LOOKUPS, 1), Select::Lookups);
        let old = Dialect { json_table: false };
        assert_eq!(old.select(1, 1), Select::List);
        assert_eq!(old.select(40_000, 2), Select::All);
        assert_eq!(Select::of(LOOKUPS + 1, 1), Select::List);
        assert_eq!(Select::of(40_000, 2), Select::All);
        assert_eq!(placeholders(0), "NULL");
        assert_eq!(placeholders(3), "?, ?, ?");
        // Hostile names travel as JSON values, escaped by serde_json, never as SQL.
        let accounts = BTreeSet::from([("o'b\\\"`%_".to_string(), "%".to_string())]);
        assert_eq!(json_accounts(&accounts), r#"[["o'b\\\"`%_","%"]]"#);
        // What no utf8mb3 column can hold names nothing there.
        assert!(storable("o'b\\\"`%_é", 128));
        assert!(!storable("a\u{1F600}", 128));
        assert!(!storable(&"x".repeat(129), 128));
        assert_eq!(
            json_names(&storable_names(
                &BTreeSet::from(["a\u{1F600}".to_string()]),
                64
            )),
            "[]"
        );
    }

    #[test]
    fn import_ids_are_parsed() {
        let none = Attrs::new();
        let a = import_request(USER, "bob@localhost", &none).unwrap();
        assert_eq!(a["host"], "localhost");
        let a = import_request(USER, "bob", &none).unwrap();
        assert_eq!(a["host"], "%");
        let a = import_request(USER, "bob", &attrs(json!({"host": "10.%"}))).unwrap();
        assert_eq!(a["host"], "10.%");
        let a = import_request(GRANT, "bob@10.0.0.1/app", &none).unwrap();
        assert_eq!(
            (
                a["user"].as_str(),
                a["host"].as_str(),
                a["database"].as_str()
            ),
            (Some("bob"), Some("10.0.0.1"), Some("app"))
        );
    }
}
