//! Isolation audit: what an account terrace manages can reach beyond what the
//! configuration grants it.
//!
//! On a shared server, "no cross-tenant access" is the promise. It is checked, not
//! assumed: observe reads every privilege of every managed account (global, on any
//! database or database pattern, on tables, role attributes and memberships) in the
//! same batch as everything else, and reports what goes beyond the configuration as
//! the user's `extra_access` attribute, whose desired value is always empty. An
//! update of that attribute revokes exactly what was found.

use std::fmt;

/// The attribute of `sql_user` listing access beyond the configuration.
pub(crate) const EXTRA_ACCESS: &str = "extra_access";

/// The attribute of a PostgreSQL `sql_database` listing the roles outside the batch
/// (accounts terrace does not manage here) that hold privileges on it: the reverse
/// side of the audit, who *else* can reach a tenant's data.
pub(crate) const OTHER_ACCESS: &str = "other_access";

/// One privilege an account holds that the configuration does not give it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Excess {
    /// Privileges on every database (MariaDB `ON *.*`), including `GRANT OPTION`.
    Global(Vec<String>),
    /// Privileges on a database (PostgreSQL) or a `mysql.db` pattern (MariaDB) the
    /// configuration does not grant. `pattern` is the name as the server stores it.
    Database {
        /// The database name or MariaDB pattern, as stored.
        pattern: String,
        /// True when the MariaDB pattern holds unescaped wildcards (`_`, `%`).
        wildcard: bool,
        /// Privileges held there.
        privileges: Vec<String>,
    },
    /// `GRANT OPTION` on a database the configuration does grant: the account can pass
    /// its access on to anyone (MariaDB).
    GrantOption {
        /// The stored pattern.
        pattern: String,
    },
    /// Table- or column-level privileges (MariaDB `mysql.tables_priv`).
    Table {
        /// Database name as stored.
        database: String,
        /// Table name.
        table: String,
        /// Privileges held there.
        privileges: Vec<String>,
    },
    /// Privileges on a stored procedure or function (MariaDB `mysql.procs_priv`).
    Routine {
        /// A function (else a procedure).
        function: bool,
        /// Database name as stored.
        database: String,
        /// The routine's name.
        name: String,
        /// Privileges held there.
        privileges: Vec<String>,
    },
    /// Owner of a database the configuration does not give it (PostgreSQL).
    Owner {
        /// The database.
        database: String,
    },
    /// Member of (MariaDB: granted) another role, whose privileges it can use.
    Role(String),
    /// A PostgreSQL role attribute terrace never sets: `SUPERUSER`, `CREATEDB`,
    /// `CREATEROLE`, `REPLICATION`, `BYPASSRLS`.
    Attribute(&'static str),
    /// The PostgreSQL role lost `LOGIN`: the application cannot connect.
    NoLogin,
    /// The MariaDB account is locked (`ACCOUNT LOCK`): the application cannot connect.
    Locked,
    /// The MariaDB account must connect over TLS (`REQUIRE SSL`, `X509`, …), which terrace
    /// never asks: an application that does not cannot connect.
    RequiresTls,
    /// The password expires (PostgreSQL `VALID UNTIL`, MariaDB `PASSWORD EXPIRE
    /// INTERVAL`): the application is shut out from then on. Says when.
    Expires(String),
    /// Held through MariaDB's `PUBLIC`, which every account is.
    Public(Box<Excess>),
    /// A session setting on the PostgreSQL role (`ALTER ROLE … [IN DATABASE d] SET`).
    Setting {
        /// The database it applies in; `None`: every database.
        database: Option<String>,
        /// `name=value`.
        setting: String,
    },
    /// A setting of one of the role's own databases that changes who may use it
    /// (PostgreSQL `ALLOW_CONNECTIONS false`, `IS_TEMPLATE true`).
    DatabaseFlag {
        /// The database.
        database: String,
        /// The setting, as `ALTER DATABASE` spells it.
        flag: &'static str,
    },
}

impl fmt::Display for Excess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Excess::Global(p) => write!(
                f,
                "holds privileges on every database ({})",
                p.join(", ")
            ),
            Excess::Database {
                pattern,
                wildcard: true,
                privileges,
            } => write!(
                f,
                "can reach every database matching `{pattern}` (`_` and `%` are wildcards there) ({})",
                privileges.join(", ")
            ),
            Excess::Database {
                pattern,
                privileges,
                ..
            } => write!(
                f,
                "can reach database `{}` ({})",
                unescape(pattern),
                privileges.join(", ")
            ),
            Excess::GrantOption { pattern } => write!(
                f,
                "can pass its access to database `{}` on to other accounts (GRANT OPTION)",
                unescape(pattern)
            ),
            Excess::Table {
                database,
                table,
                privileges,
            } => write!(
                f,
                "can reach table `{}` of database `{}` ({})",
                table,
                database,
                privileges.join(", ")
            ),
            Excess::Routine {
                function,
                database,
                name,
                privileges,
            } => write!(
                f,
                "can reach {} `{name}` of database `{database}` ({})",
                if *function { "function" } else { "procedure" },
                privileges.join(", ")
            ),
            Excess::Owner { database } => write!(f, "owns database `{database}`"),
            Excess::Role(role) => write!(f, "is a member of role `{role}` and holds its privileges"),
            Excess::Attribute(attr) => write!(f, "has role attribute {attr}"),
            Excess::NoLogin => write!(f, "cannot log in (NOLOGIN)"),
            Excess::Locked => write!(f, "cannot log in (ACCOUNT LOCK)"),
            Excess::RequiresTls => write!(f, "can log in only over TLS (REQUIRE SSL or X509)"),
            Excess::Expires(when) => write!(f, "its password expires {when}"),
            Excess::Public(held) => write!(f, "{held}, through PUBLIC (so does every account)"),
            Excess::Setting {
                database: None,
                setting,
            } => write!(f, "starts every session with `{setting}` (ALTER ROLE … SET)"),
            Excess::Setting {
                database: Some(db),
                setting,
            } => write!(
                f,
                "starts every session in database `{db}` with `{setting}` (ALTER ROLE … SET)"
            ),
            Excess::DatabaseFlag { database, flag } => match *flag {
                CLOSED_DATABASE => write!(f, "cannot connect to database `{database}` ({flag})"),
                _ => write!(
                    f,
                    "database `{database}` can be copied by any role that may create databases ({flag})"
                ),
            },
        }
    }
}

/// A MariaDB grant pattern with its wildcard escapes removed, for messages.
fn unescape(pattern: &str) -> String {
    pattern.replace("\\_", "_").replace("\\%", "%")
}

/// True when a MariaDB grant pattern contains a wildcard that is not escaped.
pub(crate) fn has_wildcard(pattern: &str) -> bool {
    let mut escaped = false;
    for c in pattern.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '_' | '%' if !escaped => return true,
            _ => escaped = false,
        }
    }
    false
}

/// Whether MariaDB's grant pattern `pattern` (`_` one character, `%` any run, `\`
/// escaping the next) covers database `name`, as the server matches them.
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    // A literal character, `_` (exactly one character) or `%` (any run).
    #[derive(Clone, Copy)]
    enum Tok {
        Lit(char),
        One,
        Any,
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        toks.push(match c {
            '\\' => Tok::Lit(chars.next().unwrap_or('\\')),
            '_' => Tok::One,
            '%' => Tok::Any,
            c => Tok::Lit(c),
        });
    }
    let name: Vec<char> = name.chars().collect();
    // matched[j]: the tokens so far match name[..j]; pattern × name steps in all.
    let mut matched = vec![false; name.len() + 1];
    matched[0] = true;
    for t in toks {
        let mut next = vec![false; name.len() + 1];
        for j in 0..=name.len() {
            next[j] = match t {
                Tok::Any => matched[j] || (j > 0 && next[j - 1]),
                Tok::One => j > 0 && matched[j - 1],
                Tok::Lit(c) => j > 0 && matched[j - 1] && name[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[name.len()]
}

/// [`Excess::DatabaseFlag`]: nobody can connect to the database.
pub(crate) const CLOSED_DATABASE: &str = "ALLOW_CONNECTIONS false";
/// [`Excess::DatabaseFlag`]: any role that may create databases can copy it.
pub(crate) const TEMPLATE_DATABASE: &str = "IS_TEMPLATE true";

/// The `extra_access` value for a list of findings: sorted, worded for operators.
pub(crate) fn describe(found: &[Excess]) -> serde_json::Value {
    let mut lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    lines.sort();
    lines.dedup();
    serde_json::json!(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_found_only_when_unescaped() {
        assert!(has_wildcard("wordpress_a"));
        assert!(has_wildcard("a%"));
        assert!(!has_wildcard("wordpress\\_a"));
        assert!(!has_wildcard("plain"));
        assert!(has_wildcard("a\\_b_c"));
    }

    #[test]
    fn patterns_match_as_mariadb_matches_grants() {
        for (pattern, name, want) in [
            ("acc\\_a", "acc_a", true),
            ("acc\\_a", "accxa", false),
            ("acc_a", "accxa", true),
            ("acc__a", "acc_xa", true),
            ("acc__a", "acc_a", false),
            ("acc%", "acc", true),
            ("acc%", "acc_anything", true),
            ("%", "x", true),
            ("a%b", "axxb", true),
            ("a%b", "axxc", false),
            ("plain", "plain", true),
            ("plain", "plainer", false),
        ] {
            assert_eq!(pattern_matches(pattern, name), want, "{pattern} {name}");
        }
    }

    #[test]
    fn findings_are_worded_for_operators() {
        let found = vec![
            Excess::Database {
                pattern: "wordpress\\_a".into(),
                wildcard: false,
                privileges: vec!["SELECT".into()],
            },
            Excess::Database {
                pattern: "wordpress_b".into(),
                wildcard: true,
                privileges: vec!["ALL".into()],
            },
            Excess::Global(vec!["CREATE USER".into()]),
            Excess::Attribute("CREATEDB"),
            Excess::NoLogin,
            Excess::Locked,
            Excess::Expires("at 2000-01-01 00:00:00 UTC (VALID UNTIL)".into()),
            Excess::Role("tenant_a".into()),
            Excess::Owner {
                database: "a".into(),
            },
        ];
        expect_test::expect![[r#"
            [
              "can reach database `wordpress_a` (SELECT)",
              "can reach every database matching `wordpress_b` (`_` and `%` are wildcards there) (ALL)",
              "cannot log in (ACCOUNT LOCK)",
              "cannot log in (NOLOGIN)",
              "has role attribute CREATEDB",
              "holds privileges on every database (CREATE USER)",
              "is a member of role `tenant_a` and holds its privileges",
              "its password expires at 2000-01-01 00:00:00 UTC (VALID UNTIL)",
              "owns database `a`"
            ]"#]]
        .assert_eq(&serde_json::to_string_pretty(&describe(&found)).unwrap());
    }
}
