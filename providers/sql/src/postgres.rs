//! PostgreSQL: catalog snapshot for batched observe, and DDL for each step.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{PgPool, Row};
use terrace_provider::{Attrs, ObserveRequest, Observed, ProviderError, Secret};

use crate::attrs::{
    collapse_all, normalize_privileges, opt_bool, opt_int, opt_str, opt_str_list, reject_attrs,
    req_str, str_list, PG_DB_PRIVILEGES,
};
use crate::quote::{pg_ident, pg_string, validate_password, validate_pg_name};
use crate::schema::{DATABASE, GRANT, USER};
use crate::stmt::Stmt;
use crate::{Needs, SqlEngine};

const ENGINE: SqlEngine = SqlEngine::Postgres;

/// invalid_catalog_name (database gone), undefined_object (role gone).
const REVOKE_GONE: &[&str] = &["3D000", "42704"];

/// Everything observe needs, read in at most three queries.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// database name → (owner, connection limit)
    databases: HashMap<String, (String, i32)>,
    /// role name → connection limit
    roles: HashMap<String, i32>,
    /// (database, role) → privileges; PUBLIC is the role `None`.
    grants: HashMap<(String, Option<String>), HashSet<String>>,
}

/// Reads the catalogs that `needs` asks for, counting each query in `counter`.
pub(crate) async fn snapshot(
    pool: &PgPool,
    needs: Needs,
    counter: &AtomicU64,
) -> Result<Snapshot, sqlx::Error> {
    let mut snap = Snapshot::default();
    if needs.databases {
        counter.fetch_add(1, Ordering::Relaxed);
        let rows = sqlx::query(
            "SELECT datname::text AS name, pg_get_userbyid(datdba)::text AS owner, \
                    datconnlimit AS connlimit \
             FROM pg_database",
        )
        .fetch_all(pool)
        .await?;
        for r in rows {
            snap.databases.insert(
                r.try_get("name")?,
                (r.try_get("owner")?, r.try_get("connlimit")?),
            );
        }
    }
    if needs.users {
        counter.fetch_add(1, Ordering::Relaxed);
        let rows =
            sqlx::query("SELECT rolname::text AS name, rolconnlimit AS connlimit FROM pg_roles")
                .fetch_all(pool)
                .await?;
        for r in rows {
            snap.roles
                .insert(r.try_get("name")?, r.try_get("connlimit")?);
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
             CROSS JOIN LATERAL aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a",
        )
        .fetch_all(pool)
        .await?;
        for r in rows {
            snap.grants
                .entry((r.try_get("db")?, r.try_get("grantee")?))
                .or_default()
                .insert(r.try_get("privilege")?);
        }
    }
    Ok(snap)
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
            let Some(limit) = snap.roles.get(name) else {
                return Ok(Observed::Absent);
            };
            out.insert("name".into(), name.into());
            out.insert("connection_limit".into(), (*limit).into());
        }
        GRANT => {
            let db = req_str(a, "database")?;
            let user = req_str(a, "user")?;
            let privs = snap.grants.get(&(db.to_string(), Some(user.to_string())));
            let Some(privs) = privs.filter(|p| !p.is_empty()) else {
                return Ok(Observed::Absent);
            };
            let public_connect = snap
                .grants
                .get(&(db.to_string(), None))
                .is_some_and(|p| p.contains("CONNECT"));
            let privs = collapse_all(privs.iter().cloned().collect(), PG_DB_PRIVILEGES);
            out.insert("database".into(), db.into());
            out.insert("user".into(), user.into());
            out.insert("privileges".into(), str_list(&privs));
            out.insert("revoke_public".into(), (!public_connect).into());
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
            let mut s = Stmt::new("CREATE ROLE ")
                .q(&name(attrs, "name", "role name")?)
                .kw(" LOGIN PASSWORD ")
                .secret(pg_string(pw.expose()), &pw);
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
            let prior_pw = opt_str(prior, "password").ok().flatten();
            let set_pw = password(desired)?.filter(|pw| renamed || prior_pw != Some(pw.expose()));
            if let Some(pw) = set_pw {
                out.push(
                    Stmt::new("ALTER ROLE ")
                        .q(&role)
                        .kw(" PASSWORD ")
                        .secret(pg_string(pw.expose()), &pw),
                );
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
        assert_eq!(s[0].sql(), "CREATE ROLE \"r\\\" LOGIN PASSWORD E'p''\\\\w'");
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
