//! Reading typed values out of [`Attrs`] and normalising privilege lists.

use terrace_provider::{Attrs, ProviderError, Value};

use crate::SqlEngine;

/// A string attribute, if present and not null.
pub(crate) fn opt_str<'a>(attrs: &'a Attrs, key: &str) -> Result<Option<&'a str>, ProviderError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ProviderError::Invalid(format!(
            "attribute {key} must be a string, got {}",
            kind(other)
        ))),
    }
}

/// A required string attribute.
pub(crate) fn req_str<'a>(attrs: &'a Attrs, key: &str) -> Result<&'a str, ProviderError> {
    opt_str(attrs, key)?
        .ok_or_else(|| ProviderError::Invalid(format!("attribute {key} is required")))
}

/// An integer attribute, if present.
pub(crate) fn opt_int(attrs: &Attrs, key: &str) -> Result<Option<i64>, ProviderError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            ProviderError::Invalid(format!("attribute {key} must be an integer, got {n}"))
        }),
        Some(other) => Err(ProviderError::Invalid(format!(
            "attribute {key} must be an integer, got {}",
            kind(other)
        ))),
    }
}

/// A boolean attribute, if present.
pub(crate) fn opt_bool(attrs: &Attrs, key: &str) -> Result<Option<bool>, ProviderError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ProviderError::Invalid(format!(
            "attribute {key} must be a boolean, got {}",
            kind(other)
        ))),
    }
}

/// A list-of-strings attribute, if present.
pub(crate) fn opt_str_list(attrs: &Attrs, key: &str) -> Result<Option<Vec<String>>, ProviderError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(ProviderError::Invalid(format!(
                    "attribute {key} must be a list of strings, got an element of type {}",
                    kind(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(ProviderError::Invalid(format!(
            "attribute {key} must be a list of strings, got {}",
            kind(other)
        ))),
    }
}

/// Names a JSON type for error messages (never the value: it may be sensitive).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Rejects attributes that exist in the schema but not on this engine, so that a
/// configuration asking for e.g. a PostgreSQL owner on MariaDB fails instead of being
/// silently ignored (and then showing as drift forever).
pub(crate) fn reject_attrs(
    attrs: &Attrs,
    engine: SqlEngine,
    names: &[&str],
) -> Result<(), ProviderError> {
    for name in names {
        if matches!(attrs.get(*name), Some(v) if !v.is_null()) {
            return Err(ProviderError::Invalid(format!(
                "attribute {name} is not supported on {}",
                engine.label()
            )));
        }
    }
    Ok(())
}

/// Database-level privileges that MariaDB's `GRANT ALL ON db.*` sets, as
/// (`mysql.db` column, privilege keyword). `Grant_priv` is not among them: `GRANT ALL`
/// leaves it 'N' (verified on MariaDB 10.11), so it does not count towards "ALL".
pub(crate) const MYSQL_DB_PRIVILEGES: &[(&str, &str)] = &[
    ("Select_priv", "SELECT"),
    ("Insert_priv", "INSERT"),
    ("Update_priv", "UPDATE"),
    ("Delete_priv", "DELETE"),
    ("Create_priv", "CREATE"),
    ("Drop_priv", "DROP"),
    ("References_priv", "REFERENCES"),
    ("Index_priv", "INDEX"),
    ("Alter_priv", "ALTER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"),
    ("Lock_tables_priv", "LOCK TABLES"),
    ("Create_view_priv", "CREATE VIEW"),
    ("Show_view_priv", "SHOW VIEW"),
    ("Create_routine_priv", "CREATE ROUTINE"),
    ("Alter_routine_priv", "ALTER ROUTINE"),
    ("Execute_priv", "EXECUTE"),
    ("Event_priv", "EVENT"),
    ("Trigger_priv", "TRIGGER"),
    ("Delete_history_priv", "DELETE HISTORY"),
];

/// Global privileges MariaDB keeps as `mysql.user` columns, as (column, keyword).
/// Any of them on an account terrace manages is access beyond the configuration.
pub(crate) const MYSQL_GLOBAL_PRIVILEGES: &[(&str, &str)] = &[
    ("Select_priv", "SELECT"),
    ("Insert_priv", "INSERT"),
    ("Update_priv", "UPDATE"),
    ("Delete_priv", "DELETE"),
    ("Create_priv", "CREATE"),
    ("Drop_priv", "DROP"),
    ("Reload_priv", "RELOAD"),
    ("Shutdown_priv", "SHUTDOWN"),
    ("Process_priv", "PROCESS"),
    ("File_priv", "FILE"),
    ("Grant_priv", "GRANT OPTION"),
    ("References_priv", "REFERENCES"),
    ("Index_priv", "INDEX"),
    ("Alter_priv", "ALTER"),
    ("Show_db_priv", "SHOW DATABASES"),
    ("Super_priv", "SUPER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"),
    ("Lock_tables_priv", "LOCK TABLES"),
    ("Execute_priv", "EXECUTE"),
    ("Repl_slave_priv", "REPLICATION SLAVE"),
    ("Repl_client_priv", "BINLOG MONITOR"),
    ("Create_view_priv", "CREATE VIEW"),
    ("Show_view_priv", "SHOW VIEW"),
    ("Create_routine_priv", "CREATE ROUTINE"),
    ("Alter_routine_priv", "ALTER ROUTINE"),
    ("Create_user_priv", "CREATE USER"),
    ("Event_priv", "EVENT"),
    ("Trigger_priv", "TRIGGER"),
    ("Create_tablespace_priv", "CREATE TABLESPACE"),
    ("Delete_history_priv", "DELETE HISTORY"),
];

/// Global privileges MariaDB (10.5 on) keeps only as bits of `mysql.global_priv`'s
/// `access` (no `mysql.user` column), by bit; bits 0–29 are the columns above, in order.
/// Read off MariaDB 10.11 by granting each alone.
pub(crate) const MARIADB_ACCESS_ONLY_PRIVILEGES: &[(u32, &str)] = &[
    (30, "SET USER"),
    (31, "FEDERATED ADMIN"),
    (32, "CONNECTION ADMIN"),
    (33, "READ_ONLY ADMIN"),
    (34, "REPLICATION SLAVE ADMIN"),
    (35, "REPLICATION MASTER ADMIN"),
    (36, "BINLOG ADMIN"),
    (37, "BINLOG REPLAY"),
    (38, "SLAVE MONITOR"),
];

/// Database privileges in PostgreSQL; holding all three is `ALL`.
pub(crate) const PG_DB_PRIVILEGES: &[&str] = &["CONNECT", "CREATE", "TEMPORARY"];

/// Normalises a privilege list to the form observe reports: upper case, single spaces,
/// synonyms folded (`ALL PRIVILEGES` → `ALL`, PostgreSQL `TEMP` → `TEMPORARY`), sorted,
/// deduplicated, and `["ALL"]` when it names every privilege. Privileges are keywords
/// spliced into `GRANT` statements, so anything not on the engine's list is rejected.
pub fn normalize_privileges(
    engine: SqlEngine,
    privileges: &[String],
) -> Result<Vec<String>, ProviderError> {
    let known: Vec<&str> = match engine {
        SqlEngine::Mysql => MYSQL_DB_PRIVILEGES.iter().map(|(_, p)| *p).collect(),
        SqlEngine::Postgres => PG_DB_PRIVILEGES.to_vec(),
    };
    let mut out: Vec<String> = Vec::new();
    for raw in privileges {
        let p = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        let p = match p.as_str() {
            "ALL PRIVILEGES" => "ALL".to_string(),
            "TEMP" if engine == SqlEngine::Postgres => "TEMPORARY".to_string(),
            _ => p,
        };
        if p != "ALL" && !known.contains(&p.as_str()) {
            return Err(ProviderError::Invalid(format!(
                "unknown {} database privilege {raw:?}",
                engine.label()
            )));
        }
        out.push(p);
    }
    if out.is_empty() {
        return Err(ProviderError::Invalid(
            "privileges must name at least one privilege".into(),
        ));
    }
    Ok(collapse_all(out, &known))
}

/// Sorts and deduplicates, and replaces a complete set by `["ALL"]`.
pub(crate) fn collapse_all(mut privs: Vec<String>, known: &[&str]) -> Vec<String> {
    privs.sort();
    privs.dedup();
    if privs.iter().any(|p| p == "ALL") || known.iter().all(|k| privs.iter().any(|p| p == k)) {
        return vec!["ALL".to_string()];
    }
    privs
}

/// A JSON list of strings.
pub(crate) fn str_list(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn privileges_are_normalised() {
        let n = |e, v: &[&str]| normalize_privileges(e, &s(v));
        assert_eq!(
            n(SqlEngine::Mysql, &["all privileges"]).unwrap(),
            s(&["ALL"])
        );
        assert_eq!(
            n(
                SqlEngine::Mysql,
                &["select", "Insert", "SELECT", "lock   tables"]
            )
            .unwrap(),
            s(&["INSERT", "LOCK TABLES", "SELECT"])
        );
        assert_eq!(
            n(SqlEngine::Postgres, &["temp", "connect", "create"]).unwrap(),
            s(&["ALL"])
        );
        assert_eq!(
            n(SqlEngine::Postgres, &["connect"]).unwrap(),
            s(&["CONNECT"])
        );
        assert!(n(SqlEngine::Postgres, &["SELECT"]).is_err());
        assert!(n(SqlEngine::Mysql, &["SELECT; DROP DATABASE x"]).is_err());
        assert!(n(SqlEngine::Mysql, &[]).is_err());
        let every: Vec<&str> = MYSQL_DB_PRIVILEGES.iter().map(|(_, p)| *p).collect();
        assert_eq!(n(SqlEngine::Mysql, &every).unwrap(), s(&["ALL"]));
    }
}

/// MariaDB/MySQL charset and collation in the server's spelling: lower case, the
/// deprecated alias `utf8` as `utf8mb3` (what the server reports), and the charset
/// derived from the collation when only the collation is given.
pub(crate) fn normalize_charset(attrs: &mut Attrs) -> Result<(), ProviderError> {
    let canon = |s: &str| {
        let s = s.to_lowercase();
        match s.strip_prefix("utf8") {
            Some("") => "utf8mb3".to_string(),
            Some(rest) if rest.starts_with('_') => format!("utf8mb3{rest}"),
            _ => s,
        }
    };
    let charset = opt_str(attrs, "charset")?.map(canon);
    let collation = opt_str(attrs, "collation")?.map(canon);
    if let Some(coll) = &collation {
        let owner = coll.split('_').next().unwrap_or_default().to_string();
        match &charset {
            Some(cs) if *cs != owner => {
                return Err(ProviderError::Invalid(format!(
                    "collation {coll:?} belongs to charset {owner:?}, not {cs:?}"
                )))
            }
            _ => {
                attrs.insert("charset".into(), Value::String(owner));
            }
        }
        attrs.insert("collation".into(), Value::String(coll.clone()));
    } else if let Some(cs) = charset {
        attrs.insert("charset".into(), Value::String(cs));
    }
    Ok(())
}

#[cfg(test)]
mod charset_tests {
    use super::*;

    fn norm(v: serde_json::Value) -> Result<serde_json::Value, ProviderError> {
        let mut a: Attrs = serde_json::from_value(v).unwrap();
        normalize_charset(&mut a)?;
        Ok(serde_json::to_value(a).unwrap())
    }

    #[test]
    fn charset_and_collation_take_the_server_spelling() {
        assert_eq!(
            norm(serde_json::json!({"charset": "UTF8"})).unwrap()["charset"],
            "utf8mb3"
        );
        assert_eq!(
            norm(serde_json::json!({"charset": "utf8mb4", "collation": "UTF8MB4_Unicode_CI"}))
                .unwrap(),
            serde_json::json!({"charset": "utf8mb4", "collation": "utf8mb4_unicode_ci"})
        );
        assert_eq!(
            norm(serde_json::json!({"collation": "latin1_swedish_ci"})).unwrap()["charset"],
            "latin1"
        );
        assert_eq!(
            norm(serde_json::json!({"collation": "utf8_general_ci"})).unwrap(),
            serde_json::json!({"charset": "utf8mb3", "collation": "utf8mb3_general_ci"})
        );
        assert!(
            norm(serde_json::json!({"charset": "utf8mb4", "collation": "latin1_swedish_ci"}))
                .is_err()
        );
    }
}
