//! PostgreSQL: catalog snapshot for batched observe, and DDL for each step.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, PgPool, Row};
use terrace_provider::{Attrs, ObserveRequest, Observed, ProviderError, Secret};

use crate::access::{Excess, CLOSED_DATABASE, TEMPLATE_DATABASE};
use crate::attrs::{
    collapse_all, normalize_privileges, opt_bool, opt_int, opt_str, opt_str_list, reject_attrs,
    req_str, str_list, PG_DB_PRIVILEGES,
};
use crate::password::{Verdict, PASSWORD_STATUS};
use crate::quote::{pg_ident, pg_string, validate_password, validate_pg_name};
use crate::schema::{DATABASE, GRANT, USER};
use crate::stmt::Stmt;
use crate::{Needs, SqlEngine};

const ENGINE: SqlEngine = SqlEngine::Postgres;

/// invalid_catalog_name (database gone), undefined_object (role gone).
const REVOKE_GONE: &[&str] = &["3D000", "42704"];

/// One role as `pg_authid` (or, without the right to read it, `pg_roles`) describes it.
#[derive(Debug, Default)]
pub(crate) struct Role {
    connection_limit: i32,
    /// The stored password verifier; None when there is none or it cannot be read.
    password: Option<String>,
    /// Attributes terrace never sets (`SUPERUSER`, ...) that the role has.
    attributes: Vec<&'static str>,
    can_login: bool,
    /// `VALID UNTIL`, when set to anything but `infinity`: past it, logins are refused.
    valid_until: Option<String>,
    /// Session settings set on it (`ALTER ROLE … [IN DATABASE d] SET x = y`), as
    /// (database, `x=y`), the database empty for all: each session of the role starts
    /// with them (`role=other`, `default_transaction_read_only=on`).
    settings: Vec<(String, String)>,
    /// Roles it is a member of.
    member_of: Vec<String>,
}

/// Everything observe needs, read in at most three queries (four when the admin may
/// not read password verifiers).
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// database name → (owner, connection limit)
    databases: HashMap<String, (String, i32)>,
    /// database name → settings made by hand that change who may use it
    /// (`ALLOW_CONNECTIONS false`, `IS_TEMPLATE true`), for the audit of its owner.
    database_flags: HashMap<String, Vec<&'static str>>,
    /// role name → role
    roles: HashMap<String, Role>,
    /// Whether `pg_authid` could be read, i.e. passwords can be checked.
    pub(crate) passwords_readable: bool,
    /// (database, role) → privileges; PUBLIC is the role `None`.
    grants: HashMap<(String, Option<String>), HashSet<String>>,
    /// role → databases it holds privileges on, for the isolation audit.
    reach: HashMap<String, Vec<String>>,
    /// database → roles (not PUBLIC) holding privileges on it, for the reverse audit.
    holders: HashMap<String, Vec<String>>,
    /// role → databases it owns.
    pub(crate) owns: HashMap<String, Vec<String>>,
}

/// Role attributes that terrace never grants, as (`pg_authid` column, keyword).
const ROLE_ATTRIBUTES: &[(&str, &str)] = &[
    ("rolsuper", "SUPERUSER"),
    ("rolcreatedb", "CREATEDB"),
    ("rolcreaterole", "CREATEROLE"),
    ("rolreplication", "REPLICATION"),
    ("rolbypassrls", "BYPASSRLS"),
];

/// The roles query over `catalog` (`pg_authid` or `pg_roles`) for the roles named in
/// `$1`: constant text only.
fn roles_query(catalog: &str) -> String {
    let attrs = ROLE_ATTRIBUTES
        .iter()
        .map(|(c, _)| format!("r.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT r.rolname::text AS name, r.rolconnlimit AS connlimit, r.rolcanlogin AS login, \
                r.rolpassword::text AS password, {attrs}, \
                ARRAY(SELECT COALESCE(d.datname::text, '') \
                      FROM pg_db_role_setting st \
                      LEFT JOIN pg_database d ON d.oid = st.setdatabase \
                      CROSS JOIN LATERAL unnest(st.setconfig) AS c \
                      WHERE st.setrole = r.oid ORDER BY st.setdatabase, c) AS setting_dbs, \
                ARRAY(SELECT c FROM pg_db_role_setting st \
                      CROSS JOIN LATERAL unnest(st.setconfig) AS c \
                      WHERE st.setrole = r.oid ORDER BY st.setdatabase, c) AS settings, \
                CASE WHEN r.rolvaliduntil = 'infinity' THEN NULL \
                     ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"') \
                END AS valid_until, \
                ARRAY(SELECT g.rolname::text FROM pg_auth_members m \
                      JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = r.oid \
                      ORDER BY 1) AS member_of \
         FROM {catalog} r WHERE r.rolname = ANY($1::text[])"
    )
}

/// `names` as the value of a `text[]` parameter.
fn names(names: &BTreeSet<String>) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

/// Whether database `name` exists and can still be dumped, asking about that one
/// database. A database whose `DROP DATABASE` was interrupted (terrace killed
/// mid-destroy) is marked invalid, `datconnlimit` -2: nobody can connect to it any more,
/// so it cannot be dumped, and part of it is already gone; it counts as absent, so that
/// dropping it is not blocked forever.
pub(crate) async fn database_exists(
    pool: &PgPool,
    name: &str,
    counter: &AtomicU64,
) -> Result<bool, sqlx::Error> {
    counter.fetch_add(1, Ordering::Relaxed);
    let limit: Option<i32> =
        sqlx::query_scalar("SELECT datconnlimit FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(limit.is_some_and(|l| l != -2))
}

/// Reads what `needs` asks for from the catalogs, counting each query in `counter` and
/// the rows they return in `rows_read`. Every query selects by the batch's names, bound
/// as one `text[]` each and compared with `=` (exactly, no pattern): requested
/// databases by name, and everything the audited roles own or hold, on any database,
/// by role. The server's other databases and roles are neither sent nor decoded.
pub(crate) async fn snapshot(
    pool: &PgPool,
    needs: &Needs,
    counter: &AtomicU64,
    rows_read: &AtomicU64,
) -> Result<Snapshot, sqlx::Error> {
    let mut snap = Snapshot::default();
    if needs.databases {
        counter.fetch_add(1, Ordering::Relaxed);
        // The requested databases, and every database an audited role owns.
        let rows = sqlx::query(
            "SELECT datname::text AS name, pg_get_userbyid(datdba)::text AS owner, \
                    datconnlimit AS connlimit, datallowconn AS allowconn, \
                    datistemplate AS template \
             FROM pg_database \
             WHERE datname = ANY($1::text[]) \
                OR datdba IN (SELECT oid FROM pg_roles WHERE rolname = ANY($2::text[]))",
        )
        .bind(names(&needs.database_names))
        .bind(names(&needs.user_names))
        .fetch_all(pool)
        .await?;
        rows_read.fetch_add(rows.len() as u64, Ordering::Relaxed);
        for r in rows {
            let name: String = r.try_get("name")?;
            let owner: String = r.try_get("owner")?;
            let flags: Vec<&'static str> = [
                (!r.try_get::<bool, _>("allowconn")?).then_some(CLOSED_DATABASE),
                r.try_get::<bool, _>("template")?
                    .then_some(TEMPLATE_DATABASE),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !flags.is_empty() {
                snap.database_flags.insert(name.clone(), flags);
            }
            snap.owns
                .entry(owner.clone())
                .or_default()
                .push(name.clone());
            if needs.database_names.contains(&name) {
                snap.databases
                    .insert(name, (owner, r.try_get("connlimit")?));
            }
        }
    }
    if needs.users {
        counter.fetch_add(1, Ordering::Relaxed);
        // Password verifiers live in pg_authid, which only superusers may read; an
        // admin without that right still gets everything else from pg_roles, and the
        // plan says the passwords could not be checked.
        let roles = names(&needs.user_names);
        let rows = match sqlx::query(AssertSqlSafe(roles_query("pg_authid")))
            .bind(&roles)
            .fetch_all(pool)
            .await
        {
            Ok(rows) => {
                snap.passwords_readable = true;
                rows
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42501") => {
                counter.fetch_add(1, Ordering::Relaxed);
                sqlx::query(AssertSqlSafe(roles_query("pg_roles")))
                    .bind(&roles)
                    .fetch_all(pool)
                    .await?
            }
            Err(e) => return Err(e),
        };
        rows_read.fetch_add(rows.len() as u64, Ordering::Relaxed);
        for r in rows {
            let attributes = ROLE_ATTRIBUTES
                .iter()
                .map(|(c, k)| Ok::<_, sqlx::Error>((r.try_get::<bool, _>(*c)?, *k)))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter_map(|(set, k)| set.then_some(k))
                .collect();
            snap.roles.insert(
                r.try_get("name")?,
                Role {
                    connection_limit: r.try_get("connlimit")?,
                    password: r
                        .try_get::<Option<String>, _>("password")?
                        .filter(|_| snap.passwords_readable),
                    attributes,
                    can_login: r.try_get("login")?,
                    valid_until: r.try_get("valid_until")?,
                    settings: {
                        let dbs: Vec<String> = r.try_get("setting_dbs")?;
                        let settings: Vec<String> = r.try_get("settings")?;
                        dbs.into_iter().zip(settings).collect()
                    },
                    member_of: r.try_get("member_of")?,
                },
            );
        }
    }
    if needs.grants {
        counter.fetch_add(1, Ordering::Relaxed);
        // A NULL datacl means the built-in defaults (owner: everything; PUBLIC: CONNECT
        // and TEMPORARY); acldefault spells them out so both cases read the same way.
        let rows = sqlx::query(
            "SELECT d.datname::text AS db, \
                    CASE WHEN a.grantee = 0 THEN NULL \
                         ELSE pg_get_userbyid(a.grantee)::text END AS grantee, \
                    a.privilege_type::text AS privilege \
             FROM pg_database d \
             CROSS JOIN LATERAL aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a \
             WHERE d.datname = ANY($1::text[]) \
                OR a.grantee IN (SELECT oid FROM pg_roles WHERE rolname = ANY($2::text[]))",
        )
        // Every privilege (PUBLIC's too) on the databases the grants and the batch
        // name, and every privilege of the audited roles on any database.
        .bind(names(
            &needs
                .grant_databases
                .union(&needs.database_names)
                .cloned()
                .collect(),
        ))
        .bind(names(&needs.user_names))
        .fetch_all(pool)
        .await?;
        rows_read.fetch_add(rows.len() as u64, Ordering::Relaxed);
        for r in rows {
            let db: String = r.try_get("db")?;
            let grantee: Option<String> = r.try_get("grantee")?;
            let privs = snap
                .grants
                .entry((db.clone(), grantee.clone()))
                .or_default();
            if privs.is_empty() {
                if let Some(role) = grantee {
                    snap.holders
                        .entry(db.clone())
                        .or_default()
                        .push(role.clone());
                    snap.reach.entry(role).or_default().push(db);
                }
            }
            privs.insert(r.try_get("privilege")?);
        }
    }
    Ok(snap)
}

/// What role `role` holds beyond `allowed` (the databases its configured grants and
/// ownerships name). Ownership of a database whose owner the configuration sets
/// (`owner_configured`) is that database's drift, not repeated here.
pub(crate) fn excess(
    snap: &Snapshot,
    role: &str,
    allowed: &HashSet<String>,
    owner_configured: &HashSet<String>,
) -> Vec<Excess> {
    let mut out = Vec::new();
    if let Some(r) = snap.roles.get(role) {
        out.extend(r.attributes.iter().map(|a| Excess::Attribute(a)));
        if !r.can_login {
            out.push(Excess::NoLogin);
        }
        if let Some(t) = &r.valid_until {
            out.push(Excess::Expires(format!("at {t} (VALID UNTIL)")));
        }
        out.extend(
            r.settings
                .iter()
                .map(|(database, setting)| Excess::Setting {
                    database: (!database.is_empty()).then(|| database.clone()),
                    setting: setting.clone(),
                }),
        );
        out.extend(r.member_of.iter().cloned().map(Excess::Role));
    }
    let owned: HashSet<&String> = snap.owns.get(role).into_iter().flatten().collect();
    // Its own databases made unusable for it, or copyable by others.
    for db in owned.iter().copied().chain(allowed.iter()) {
        for flag in snap.database_flags.get(db).into_iter().flatten() {
            let found = Excess::DatabaseFlag {
                database: db.clone(),
                flag,
            };
            if !out.contains(&found) {
                out.push(found);
            }
        }
    }
    for db in &owned {
        if !allowed.contains(*db) && !owner_configured.contains(*db) {
            out.push(Excess::Owner {
                database: db.to_string(),
            });
        }
    }
    for db in snap.reach.get(role).into_iter().flatten() {
        if allowed.contains(db) || owned.contains(db) {
            continue;
        }
        let privs = &snap.grants[&(db.clone(), Some(role.to_string()))];
        out.push(Excess::Database {
            pattern: db.clone(),
            wildcard: false,
            privileges: collapse_all(privs.iter().cloned().collect(), PG_DB_PRIVILEGES),
        });
    }
    out.sort();
    out
}

/// Checks the known `password` of `role` against its stored verifier: at once when the
/// verifier is the one terrace set (its `fingerprint` from state), else by recomputing
/// it. None when the role does not exist; `Unknown` when verifiers cannot be read.
pub(crate) fn password_verdict(
    snap: &Snapshot,
    role: &str,
    password: &str,
    fingerprint: Option<&str>,
) -> Option<Verdict> {
    let r = snap.roles.get(role)?;
    if !snap.passwords_readable {
        return Some(Verdict::Unknown(crate::password::PASSWORDS_UNREADABLE));
    }
    let stored = r.password.as_deref();
    if stored.is_some_and(|v| Some(crate::password::fingerprint(v).as_str()) == fingerprint) {
        return Some(Verdict::Matches);
    }
    Some(crate::password::pg_check(password, role, stored))
}

/// Statements that take away everything in `found` from the role in `attrs`.
pub(crate) fn revoke_excess(attrs: &Attrs, found: &[Excess]) -> Result<Vec<Stmt>, ProviderError> {
    let role = name(attrs, "name", "role name")?;
    let mut out = Vec::new();
    let mut alter = Stmt::new("ALTER ROLE ").q(&role);
    let mut altered = false;
    for e in found {
        match e {
            Excess::Attribute(a) => {
                // Only keywords from ROLE_ATTRIBUTES: NO + the attribute.
                let kw = ROLE_ATTRIBUTES
                    .iter()
                    .find(|(_, k)| k == a)
                    .map(|(_, k)| *k)
                    .ok_or_else(|| ProviderError::Invalid(format!("unknown role attribute {a}")))?;
                alter = alter.kw(" NO").q(kw);
                altered = true;
            }
            Excess::NoLogin => {
                alter = alter.kw(" LOGIN");
                altered = true;
            }
            Excess::Expires(_) => {
                alter = alter.kw(" VALID UNTIL 'infinity'");
                altered = true;
            }
            Excess::Setting { database, .. } => {
                let stmt = match database {
                    Some(db) => Stmt::new("ALTER ROLE ")
                        .q(&role)
                        .kw(" IN DATABASE ")
                        .q(&pg_ident(db))
                        .kw(" RESET ALL"),
                    None => Stmt::new("ALTER ROLE ").q(&role).kw(" RESET ALL"),
                };
                if !out.iter().any(|s: &Stmt| s.sql() == stmt.sql()) {
                    out.push(stmt.ignoring(REVOKE_GONE));
                }
            }
            Excess::DatabaseFlag { database, flag } => {
                let undo = if *flag == CLOSED_DATABASE {
                    " ALLOW_CONNECTIONS true"
                } else {
                    " IS_TEMPLATE false"
                };
                out.push(
                    Stmt::new("ALTER DATABASE ")
                        .q(&pg_ident(database))
                        .kw(undo)
                        .ignoring(REVOKE_GONE),
                );
            }
            Excess::Role(g) => out.push(
                Stmt::new("REVOKE ")
                    .q(&pg_ident(g))
                    .kw(" FROM ")
                    .q(&role)
                    .ignoring(REVOKE_GONE),
            ),
            Excess::Database { pattern, .. } => out.push(
                Stmt::new("REVOKE ALL PRIVILEGES ON DATABASE ")
                    .q(&pg_ident(pattern))
                    .kw(" FROM ")
                    .q(&role)
                    .ignoring(REVOKE_GONE),
            ),
            Excess::Owner { database } => out.push(
                Stmt::new("ALTER DATABASE ")
                    .q(&pg_ident(database))
                    .kw(" OWNER TO CURRENT_USER")
                    .ignoring(REVOKE_GONE),
            ),
            // MariaDB-only findings never come from a PostgreSQL snapshot.
            Excess::Global(_)
            | Excess::GrantOption { .. }
            | Excess::Table { .. }
            | Excess::Routine { .. }
            | Excess::Public(_)
            | Excess::RequiresTls
            | Excess::Locked => {}
        }
    }
    if altered {
        out.insert(0, alter);
    }
    Ok(out)
}

/// The roles that hold privileges on database `db` and are neither its owner nor
/// `managed` (the batch's accounts and terrace's admin), with those privileges: access
/// nothing in the configuration gives, for the database's `other_access`.
pub(crate) fn other_access(
    snap: &Snapshot,
    db: &str,
    managed: &dyn Fn(&str) -> bool,
) -> Vec<(String, Vec<String>)> {
    let owner = snap.databases.get(db).map(|(o, _)| o.as_str());
    let mut out: Vec<(String, Vec<String>)> = snap
        .holders
        .get(db)
        .into_iter()
        .flatten()
        .filter(|r| Some(r.as_str()) != owner && !managed(r))
        .map(|r| {
            let privs = snap
                .grants
                .get(&(db.to_string(), Some(r.clone())))
                .map(|p| collapse_all(p.iter().cloned().collect(), PG_DB_PRIVILEGES))
                .unwrap_or_default();
            (r.clone(), privs)
        })
        .collect();
    out.sort();
    out
}

/// Statements revoking every privilege `roles` hold on database `db`.
pub(crate) fn revoke_others(db: &str, roles: &[String]) -> Vec<Stmt> {
    roles
        .iter()
        .map(|r| {
            Stmt::new("REVOKE ALL PRIVILEGES ON DATABASE ")
                .q(&pg_ident(db))
                .kw(" FROM ")
                .q(&pg_ident(r))
        })
        .collect()
}

/// Answers one request from the snapshot.
pub(crate) fn answer(snap: &Snapshot, req: &ObserveRequest) -> Result<Observed, ProviderError> {
    let a = &req.attrs;
    let mut out = Attrs::new();
    match req.type_name.as_str() {
        DATABASE => {
            let name = req_str(a, "name")?;
            let Some((owner, limit)) = snap.databases.get(name) else {
                return Ok(Observed::Absent);
            };
            out.insert("name".into(), name.into());
            out.insert("owner".into(), owner.as_str().into());
            out.insert("connection_limit".into(), (*limit).into());
        }
        USER => {
            let name = req_str(a, "name")?;
            let Some(role) = snap.roles.get(name) else {
                return Ok(Observed::Absent);
            };
            out.insert("name".into(), name.into());
            out.insert("connection_limit".into(), role.connection_limit.into());
        }
        GRANT => {
            let db = req_str(a, "database")?;
            let user = req_str(a, "user")?;
            let privs = snap.grants.get(&(db.to_string(), Some(user.to_string())));
            let Some(privs) = privs.filter(|p| !p.is_empty()) else {
                return Ok(Observed::Absent);
            };
            // Any privilege of PUBLIC (not only CONNECT: TEMPORARY or CREATE granted by
            // hand reach every role too) means the database is not closed.
            let public_open = snap
                .grants
                .get(&(db.to_string(), None))
                .is_some_and(|p| !p.is_empty());
            let privs = collapse_all(privs.iter().cloned().collect(), PG_DB_PRIVILEGES);
            out.insert("database".into(), db.into());
            out.insert("user".into(), user.into());
            out.insert("privileges".into(), str_list(&privs));
            out.insert("revoke_public".into(), (!public_open).into());
        }
        other => return Err(crate::unknown_type(other)),
    }
    Ok(Observed::Present(out))
}

fn name(attrs: &Attrs, key: &str, kind: &str) -> Result<String, ProviderError> {
    let n = req_str(attrs, key)?;
    validate_pg_name(kind, n)?;
    Ok(pg_ident(n))
}

fn conn_limit(attrs: &Attrs) -> Result<Option<i64>, ProviderError> {
    let limit = opt_int(attrs, "connection_limit")?;
    if let Some(n) = limit {
        if !(-1..=i64::from(i32::MAX)).contains(&n) {
            return Err(ProviderError::Invalid(format!(
                "connection_limit {n} is out of range on PostgreSQL (-1 = unlimited)"
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

/// ` PASSWORD '<SCRAM verifier>'`, computed here: the server stores it as it is and
/// never sees the password, so `log_statement` cannot write the password to its log.
fn with_password(s: Stmt, pw: &Secret) -> Stmt {
    let verifier = Secret::new(crate::password::scram_verifier(pw.expose()));
    s.kw(" PASSWORD ")
        .secret(pg_string(verifier.expose()), &verifier)
        .also_hide(pw)
        .with_fingerprint(crate::password::fingerprint(verifier.expose()))
}

fn grant_stmt(attrs: &Attrs) -> Result<Stmt, ProviderError> {
    let privs = opt_str_list(attrs, "privileges")?
        .ok_or_else(|| ProviderError::Invalid("attribute privileges is required".into()))?;
    // Spliced unquoted, so checked against the whitelist right here.
    let privs = normalize_privileges(ENGINE, &privs)?;
    let list = if privs == ["ALL"] {
        "ALL PRIVILEGES".to_string()
    } else {
        privs.join(", ")
    };
    Ok(Stmt::new("GRANT ")
        .q(&list)
        .kw(" ON DATABASE ")
        .q(&name(attrs, "database", "database name")?)
        .kw(" TO ")
        .q(&name(attrs, "user", "role name")?))
}

fn revoke_stmt(attrs: &Attrs) -> Result<Stmt, ProviderError> {
    Ok(Stmt::new("REVOKE ALL PRIVILEGES ON DATABASE ")
        .q(&name(attrs, "database", "database name")?)
        .kw(" FROM ")
        .q(&name(attrs, "user", "role name")?)
        .ignoring(REVOKE_GONE))
}

fn public_stmt(attrs: &Attrs) -> Result<Option<Stmt>, ProviderError> {
    let Some(revoke) = opt_bool(attrs, "revoke_public")? else {
        return Ok(None);
    };
    let db = name(attrs, "database", "database name")?;
    Ok(Some(if revoke {
        Stmt::new("REVOKE ALL PRIVILEGES ON DATABASE ")
            .q(&db)
            .kw(" FROM PUBLIC")
    } else {
        // The PostgreSQL defaults for PUBLIC on a database.
        Stmt::new("GRANT CONNECT, TEMPORARY ON DATABASE ")
            .q(&db)
            .kw(" TO PUBLIC")
    }))
}

fn check_attrs(type_name: &str, attrs: &Attrs) -> Result<(), ProviderError> {
    match type_name {
        DATABASE => reject_attrs(attrs, ENGINE, &["charset", "collation"]),
        USER | GRANT => reject_attrs(attrs, ENGINE, &["host"]),
        _ => Ok(()),
    }
}

/// Statements that create the object described by fully resolved `attrs`.
pub(crate) fn plan_create(type_name: &str, attrs: &Attrs) -> Result<Vec<Stmt>, ProviderError> {
    check_attrs(type_name, attrs)?;
    match type_name {
        DATABASE => {
            // Sent on its own (never in a transaction): PostgreSQL refuses otherwise.
            let mut s = Stmt::new("CREATE DATABASE ").q(&name(attrs, "name", "database name")?);
            if opt_str(attrs, "owner")?.is_some() {
                s = s.kw(" OWNER ").q(&name(attrs, "owner", "owner role name")?);
            }
            if let Some(n) = conn_limit(attrs)? {
                s = s.kw(" CONNECTION LIMIT ").q(&n.to_string());
            }
            Ok(vec![s])
        }
        USER => {
            let pw = password(attrs)?
                .ok_or_else(|| ProviderError::Invalid("a password is required".into()))?;
            let mut s = with_password(
                Stmt::new("CREATE ROLE ")
                    .q(&name(attrs, "name", "role name")?)
                    .kw(" LOGIN"),
                &pw,
            );
            if let Some(n) = conn_limit(attrs)? {
                s = s.kw(" CONNECTION LIMIT ").q(&n.to_string());
            }
            Ok(vec![s])
        }
        GRANT => {
            // Start from nothing: a role that owns the database holds every privilege
            // implicitly, so granting a subset alone would read back as ALL.
            let mut out = vec![revoke_stmt(attrs)?, grant_stmt(attrs)?];
            out.extend(public_stmt(attrs)?);
            Ok(out)
        }
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
            let db = name(desired, "name", "database name")?;
            if changed.contains("owner") && opt_str(desired, "owner")?.is_some() {
                out.push(
                    Stmt::new("ALTER DATABASE ")
                        .q(&db)
                        .kw(" OWNER TO ")
                        .q(&name(desired, "owner", "owner role name")?),
                );
            }
            if changed.contains("connection_limit") {
                if let Some(n) = conn_limit(desired)? {
                    out.push(
                        Stmt::new("ALTER DATABASE ")
                            .q(&db)
                            .kw(" CONNECTION LIMIT ")
                            .q(&n.to_string()),
                    );
                }
            }
        }
        USER => {
            let role = name(desired, "name", "role name")?;
            let renamed = changed.contains("name");
            if renamed {
                // The role keeps what it owns and its grants; an MD5 password is cleared
                // by a rename (the name is its salt), so the password is set again below.
                out.push(
                    Stmt::new("ALTER ROLE ")
                        .q(&name(prior, "name", "role name")?)
                        .kw(" RENAME TO ")
                        .q(&role),
                );
            }
            // Set again when it changed in the configuration, or by hand on the server.
            let reset = renamed || changed.contains(PASSWORD_STATUS);
            let prior_pw = opt_str(prior, "password").ok().flatten();
            let set_pw = password(desired)?.filter(|pw| reset || prior_pw != Some(pw.expose()));
            if let Some(pw) = set_pw {
                out.push(with_password(Stmt::new("ALTER ROLE ").q(&role), &pw));
            }
            if changed.contains("connection_limit") {
                if let Some(n) = conn_limit(desired)? {
                    out.push(
                        Stmt::new("ALTER ROLE ")
                            .q(&role)
                            .kw(" CONNECTION LIMIT ")
                            .q(&n.to_string()),
                    );
                }
            }
        }
        GRANT => {
            if changed.contains("privileges") {
                out.push(revoke_stmt(desired)?);
                out.push(grant_stmt(desired)?);
            }
            if changed.contains("revoke_public") {
                out.extend(public_stmt(desired)?);
            }
        }
        other => return Err(crate::unknown_type(other)),
    }
    Ok(out)
}

/// Statements that remove the object described by `prior`. Deleting a grant revokes
/// the role's privileges but leaves PUBLIC's as they are: restoring PUBLIC access
/// would silently open the database to every role.
pub(crate) fn plan_delete(type_name: &str, prior: &Attrs) -> Result<Vec<Stmt>, ProviderError> {
    match type_name {
        DATABASE => Ok(vec![Stmt::new("DROP DATABASE IF EXISTS ")
            .q(&name(prior, "name", "database name")?)
            .kw(" WITH (FORCE)")]),
        USER => Ok(vec![Stmt::new("DROP ROLE IF EXISTS ").q(&name(
            prior,
            "name",
            "role name",
        )?)]),
        GRANT => Ok(vec![revoke_stmt(prior)?]),
        other => Err(crate::unknown_type(other)),
    }
}

/// Request attributes identifying the object named by an import `id`.
pub(crate) fn import_request(type_name: &str, id: &str) -> Result<Attrs, ProviderError> {
    let mut a = Attrs::new();
    match type_name {
        DATABASE | USER => {
            a.insert("name".into(), id.into());
        }
        GRANT => {
            let (user, db) = id.split_once('/').ok_or_else(|| {
                ProviderError::Invalid(format!("grant id {id:?} must be USER/DATABASE"))
            })?;
            a.insert("user".into(), user.into());
            a.insert("database".into(), db.into());
        }
        other => return Err(crate::unknown_type(other)),
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn attrs(v: Value) -> Attrs {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hostile_names_are_quoted_in_ddl() {
        let a = attrs(
            json!({"name": "a\"; DROP DATABASE x; --", "owner": "o'w", "connection_limit": 3}),
        );
        let s = plan_create(DATABASE, &a).unwrap();
        assert_eq!(
            s[0].sql(),
            "CREATE DATABASE \"a\"\"; DROP DATABASE x; --\" OWNER \"o'w\" CONNECTION LIMIT 3"
        );
        let a = attrs(json!({"name": "r\\", "password": "p'\\w"}));
        let s = plan_create(USER, &a).unwrap();
        // The server receives a SCRAM verifier computed here, never the password.
        let sent = s[0].sql();
        assert!(
            sent.starts_with("CREATE ROLE \"r\\\" LOGIN PASSWORD E'SCRAM-SHA-256$4096:"),
            "{sent}"
        );
        assert!(!sent.contains("p'"), "{sent}");
        let verifier = sent.split('\'').nth(1).unwrap();
        assert_eq!(
            crate::password::pg_check("p'\\w", "r\\", Some(verifier)),
            Verdict::Matches
        );
        assert_eq!(
            s[0].shown(),
            "CREATE ROLE \"r\\\" LOGIN PASSWORD '(sensitive value)'"
        );
        let a = attrs(
            json!({"database": "d", "user": "u", "privileges": ["connect"], "revoke_public": true}),
        );
        let s = plan_create(GRANT, &a).unwrap();
        assert_eq!(
            s[0].sql(),
            "REVOKE ALL PRIVILEGES ON DATABASE \"d\" FROM \"u\""
        );
        assert_eq!(s[1].sql(), "GRANT CONNECT ON DATABASE \"d\" TO \"u\"");
        assert_eq!(
            s[2].sql(),
            "REVOKE ALL PRIVILEGES ON DATABASE \"d\" FROM PUBLIC"
        );
    }

    #[test]
    fn a_verifier_terrace_set_is_recognised_by_its_fingerprint_alone() {
        let verifier = crate::password::scram_verifier("right");
        let mut snap = Snapshot {
            passwords_readable: true,
            ..Snapshot::default()
        };
        snap.roles.insert(
            "r".into(),
            Role {
                password: Some(verifier.clone()),
                can_login: true,
                ..Role::default()
            },
        );
        let fp = crate::password::fingerprint(&verifier);
        // The fingerprint alone decides (no PBKDF2): what state recorded is still there.
        assert_eq!(
            password_verdict(&snap, "r", "not-even-checked", Some(&fp)),
            Some(Verdict::Matches)
        );
        // Without it, or with another one, the password is checked for real.
        assert_eq!(
            password_verdict(&snap, "r", "right", None),
            Some(Verdict::Matches)
        );
        assert_eq!(
            password_verdict(&snap, "r", "wrong", Some("00")),
            Some(Verdict::Differs)
        );
        // The statement that sets a verifier carries its fingerprint.
        let a = attrs(json!({"name": "r", "password": "pw"}));
        let s = plan_create(USER, &a).unwrap();
        let sent = s[0].sql().split('\'').nth(1).unwrap().to_string();
        assert_eq!(
            s[0].fingerprint(),
            Some(crate::password::fingerprint(&sent).as_str())
        );
    }

    #[test]
    fn invalid_input_is_rejected_before_sql() {
        assert!(plan_create(DATABASE, &attrs(json!({"name": "a".repeat(64)}))).is_err());
        assert!(plan_create(DATABASE, &attrs(json!({"name": "a\u{0}"}))).is_err());
        assert!(plan_create(DATABASE, &attrs(json!({"name": "ok", "charset": "utf8"}))).is_err());
        assert!(plan_create(
            DATABASE,
            &attrs(json!({"name": "ok", "connection_limit": -2}))
        )
        .is_err());
        assert!(plan_create(
            USER,
            &attrs(json!({"name": "u", "host": "%", "password": "x"}))
        )
        .is_err());
    }
}
