//! MariaDB/MySQL: catalog snapshot for batched observe, and DDL for each step.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::{AssertSqlSafe, MySqlPool, Row};
use terrace_provider::{Attrs, ObserveRequest, Observed, ProviderError, Secret, Value};

use crate::attrs::{
    collapse_all, opt_int, opt_str, opt_str_list, reject_attrs, req_str, str_list,
    MYSQL_DB_PRIVILEGES,
};
use crate::quote::{
    mysql_grant_db_pattern, mysql_ident, mysql_string, validate_mysql_charset, validate_mysql_db,
    validate_mysql_host, validate_mysql_user, validate_password,
};
use crate::schema::{DATABASE, GRANT, USER};
use crate::stmt::Stmt;
use crate::{Needs, SqlEngine};

const ENGINE: SqlEngine = SqlEngine::Mysql;

/// "There is no such grant defined", "no such grant on table", "operation failed for
/// user" (user gone): all mean that there is nothing left to revoke.
const REVOKE_GONE: &[&str] = &["1141", "1147", "1396"];

/// Everything observe needs, read in at most three queries.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    /// database name → (charset, collation)
    databases: HashMap<String, (String, String)>,
    /// (user, lower-case host) → max_user_connections
    users: HashMap<(String, String), i64>,
    /// (user, lower-case host, Db column as stored) → privileges held
    grants: HashMap<(String, String, String), Vec<String>>,
}

/// Reads the catalog tables that `needs` asks for, counting each query in `counter`.
pub(crate) async fn snapshot(
    pool: &MySqlPool,
    needs: Needs,
    counter: &AtomicU64,
) -> Result<Snapshot, sqlx::Error> {
    let mut snap = Snapshot::default();
    if needs.databases {
        counter.fetch_add(1, Ordering::Relaxed);
        let rows = sqlx::query(
            "SELECT CAST(SCHEMA_NAME AS CHAR) AS name, \
                    CAST(DEFAULT_CHARACTER_SET_NAME AS CHAR) AS cs, \
                    CAST(DEFAULT_COLLATION_NAME AS CHAR) AS coll \
             FROM information_schema.SCHEMATA",
        )
        .fetch_all(pool)
        .await?;
        for r in rows {
            snap.databases
                .insert(r.try_get("name")?, (r.try_get("cs")?, r.try_get("coll")?));
        }
    }
    if needs.users {
        counter.fetch_add(1, Ordering::Relaxed);
        // mysql.user also lists roles (is_role = 'Y'), which are not login users.
        let rows = sqlx::query(
            "SELECT CAST(User AS CHAR) AS user, CAST(Host AS CHAR) AS host, \
                    CAST(max_user_connections AS SIGNED) AS maxconn \
             FROM mysql.user WHERE COALESCE(is_role, 'N') <> 'Y'",
        )
        .fetch_all(pool)
        .await?;
        for r in rows {
            let host: String = r.try_get("host")?;
            snap.users.insert(
                (r.try_get("user")?, host.to_lowercase()),
                r.try_get("maxconn")?,
            );
        }
    }
    if needs.grants {
        counter.fetch_add(1, Ordering::Relaxed);
        // One string of Y/N flags in MYSQL_DB_PRIVILEGES order. Built from constant
        // column names only, hence safe to assert.
        let flags = MYSQL_DB_PRIVILEGES
            .iter()
            .map(|(col, _)| *col)
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT CAST(Db AS CHAR) AS db, CAST(User AS CHAR) AS user, \
                    CAST(Host AS CHAR) AS host, CAST(CONCAT({flags}) AS CHAR) AS flags \
             FROM mysql.db"
        );
        let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await?;
        for r in rows {
            let flags: String = r.try_get("flags")?;
            let privs: Vec<String> = MYSQL_DB_PRIVILEGES
                .iter()
                .zip(flags.chars())
                .filter(|(_, f)| *f == 'Y')
                .map(|((_, p), _)| p.to_string())
                .collect();
            let host: String = r.try_get("host")?;
            snap.grants.insert(
                (r.try_get("user")?, host.to_lowercase(), r.try_get("db")?),
                privs,
            );
        }
    }
    Ok(snap)
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
            let Some(limit) = snap.users.get(&(name.to_string(), host.to_lowercase())) else {
                return Ok(Observed::Absent);
            };
            out.insert("name".into(), name.into());
            out.insert("host".into(), host.into());
            out.insert("connection_limit".into(), (*limit).into());
        }
        GRANT => {
            let db = req_str(a, "database")?;
            let user = req_str(a, "user")?;
            let host = host(a)?;
            let key = |stored: String| (user.to_string(), host.to_lowercase(), stored);
            // Our grants use the escaped pattern; one made by hand may use the raw name.
            let privs = snap
                .grants
                .get(&key(mysql_grant_db_pattern(db)))
                .or_else(|| snap.grants.get(&key(db.to_string())));
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
            let mut s = Stmt::new("CREATE USER ")
                .q(&account(attrs, "name")?)
                .kw(" IDENTIFIED BY ")
                .secret(mysql_string(pw.expose()), &pw);
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
            let new_pw = password(desired)?;
            if let Some(pw) =
                new_pw.filter(|pw| opt_str(prior, "password").ok().flatten() != Some(pw.expose()))
            {
                out.push(
                    Stmt::new("ALTER USER ")
                        .q(&acct)
                        .kw(" IDENTIFIED BY ")
                        .secret(mysql_string(pw.expose()), &pw),
                );
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
    use serde_json::json;

    fn attrs(v: Value) -> Attrs {
        serde_json::from_value(v).unwrap()
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
        assert_eq!(
            s[0].sql(),
            "CREATE USER 'o''b\\\\'@'%' IDENTIFIED BY 'p''w'"
        );
        assert!(!s[0].shown().contains("p''w"));
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
