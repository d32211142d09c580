//! Lowering evaluated database blocks into the three resources the SQL provider expects:
//! `B` (`sql_database`), `B.user` (`sql_user`) and `B.grant` (`sql_grant`).

use std::collections::BTreeSet;

use serde_json::{json, Value};
use terrace_provider::{Address, Attrs, DesiredResource, ProviderKey};

use crate::Engine;

/// One evaluated database block instance.
#[derive(Debug, Clone)]
pub(crate) struct DbInstance {
    /// Base address, e.g. `tenant.app["x"].database`.
    pub base: String,
    pub service: String,
    pub engine: Engine,
    pub name: String,
    pub user: String,
    pub connection_limit: Option<i64>,
    pub password: Option<String>,
    pub privileges: Vec<String>,
    pub charset: Option<String>,
    pub collation: Option<String>,
    /// Block attributes (`name`, `user`, ...) whose expression is sensitive.
    pub sensitive: BTreeSet<&'static str>,
    /// Whether `user` was set explicitly (else it follows `name`, and its sensitivity).
    pub user_set: bool,
}

fn attrs(pairs: Vec<(&str, Option<Value>)>) -> Attrs {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

/// The three resources of one database instance.
pub(crate) fn lower(db: &DbInstance) -> Vec<DesiredResource> {
    let b = Address::new(db.base.clone());
    let user_addr = Address::new(format!("{}.user", db.base));
    let grant_addr = Address::new(format!("{}.grant", db.base));
    let provider = ProviderKey(format!("service.{}", db.service));
    let s = |attr: &'static str| db.sensitive.contains(attr);
    // The user name comes from `user`, or from `name` when `user` is not set.
    let user_sensitive = if db.user_set { s("user") } else { s("name") };
    let limit = db.connection_limit.map(|n| json!(n));
    let password = db.password.as_ref().map(|p| json!(p));
    let privileges = json!(db.privileges);

    let mut database_sens = BTreeSet::new();
    let mut user_sens = BTreeSet::new();
    let mut grant_sens = BTreeSet::new();
    let mark = |set: &mut BTreeSet<String>, cond: bool, name: &str| {
        if cond {
            set.insert(name.to_string());
        }
    };
    mark(&mut database_sens, s("name"), "name");
    mark(&mut user_sens, user_sensitive, "name");
    mark(&mut user_sens, s("password"), "password");
    mark(&mut grant_sens, s("name"), "database");
    mark(&mut grant_sens, user_sensitive, "user");
    mark(&mut grant_sens, s("privileges"), "privileges");

    let (database_attrs, user_attrs, grant_attrs) = match db.engine {
        Engine::Postgres => {
            mark(&mut database_sens, user_sensitive, "owner");
            mark(
                &mut database_sens,
                s("connection_limit"),
                "connection_limit",
            );
            (
                attrs(vec![
                    ("name", Some(json!(db.name))),
                    ("owner", Some(json!(db.user))),
                    ("connection_limit", limit),
                ]),
                attrs(vec![("name", Some(json!(db.user))), ("password", password)]),
                attrs(vec![
                    ("database", Some(json!(db.name))),
                    ("user", Some(json!(db.user))),
                    ("privileges", Some(privileges)),
                    ("revoke_public", Some(json!(true))),
                ]),
            )
        }
        Engine::Mysql | Engine::Mariadb => {
            mark(&mut database_sens, s("charset"), "charset");
            mark(&mut database_sens, s("collation"), "collation");
            mark(&mut user_sens, s("connection_limit"), "connection_limit");
            (
                attrs(vec![
                    ("name", Some(json!(db.name))),
                    (
                        "charset",
                        Some(json!(db.charset.as_deref().unwrap_or("utf8mb4"))),
                    ),
                    ("collation", db.collation.as_ref().map(|c| json!(c))),
                ]),
                attrs(vec![
                    ("name", Some(json!(db.user))),
                    ("host", Some(json!("%"))),
                    ("connection_limit", limit),
                    ("password", password),
                ]),
                attrs(vec![
                    ("database", Some(json!(db.name))),
                    ("user", Some(json!(db.user))),
                    ("host", Some(json!("%"))),
                    ("privileges", Some(privileges)),
                ]),
            )
        }
    };
    let database_deps = match db.engine {
        // The owner must exist before the database that names it.
        Engine::Postgres => vec![user_addr.clone()],
        Engine::Mysql | Engine::Mariadb => vec![],
    };
    vec![
        DesiredResource {
            address: b.clone(),
            type_name: "sql_database".into(),
            provider: provider.clone(),
            attrs: database_attrs,
            sensitive_attrs: database_sens,
            depends_on: database_deps,
        },
        DesiredResource {
            address: user_addr.clone(),
            type_name: "sql_user".into(),
            provider: provider.clone(),
            attrs: user_attrs,
            sensitive_attrs: user_sens,
            depends_on: vec![],
        },
        DesiredResource {
            address: grant_addr,
            type_name: "sql_grant".into(),
            provider,
            attrs: grant_attrs,
            sensitive_attrs: grant_sens,
            depends_on: vec![b, user_addr],
        },
    ]
}
