//! Lowering: exact addresses, types, attributes and dependencies.
mod common;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use terrace_config::Engine;
use terrace_provider::{Address, DesiredResource, ProviderKey};

fn res(address: &str, type_name: &str, attrs: Value, deps: &[&str]) -> DesiredResource {
    DesiredResource {
        address: Address::new(address),
        type_name: type_name.into(),
        provider: ProviderKey("service.db".into()),
        attrs: serde_json::from_value(attrs).unwrap(),
        sensitive_attrs: BTreeSet::new(),
        depends_on: deps.iter().map(|d| Address::new(*d)).collect(),
        lifecycle: Default::default(),
    }
}

fn example(engine: &str) -> String {
    format!(
        r#"
variable "pg_admin_password" {{
  type      = string
  sensitive = true
  default   = "s3cret"
}}
variable "apps" {{ default = {{ calibre_web = 50, app2 = 30 }} }}
locals {{
  prefix = "wp_"
  names  = [for k, v in var.apps : "${{local.prefix}}${{k}}"]
}}
host "db1" {{
  address = "10.0.0.5"
  user    = "deploy"
}}
service "db" {{
  engine   = "{engine}"
  endpoint = {{ address = "127.0.0.1" }}
  admin    = {{ user = "terrace_admin", password = var.pg_admin_password }}
  host     = host.db1
}}
tenant "app" {{
  for_each = var.apps
  database {{
    service          = service.db
    name             = each.key
    connection_limit = each.value
  }}
}}
database "reports" {{
  service = service.db
  name    = "reports"
}}
"#
    )
}

#[test]
fn postgres_example_lowers_exactly() {
    let p = common::load(&[("main.hcl", &example("postgres"))]);
    let mut expected = Vec::new();
    for (base, name, limit) in [
        ("database.reports", "reports", None),
        ("tenant.app[\"app2\"].database", "app2", Some(30)),
        (
            "tenant.app[\"calibre_web\"].database",
            "calibre_web",
            Some(50),
        ),
    ] {
        let mut db = json!({"name": name, "owner": name});
        if let Some(l) = limit {
            db["connection_limit"] = json!(l);
        }
        let user = format!("{base}.user");
        expected.push(res(base, "sql_database", db, &[&user]));
        expected.push(res(
            &format!("{base}.grant"),
            "sql_grant",
            json!({"database": name, "user": name, "privileges": ["ALL"], "revoke_public": true}),
            &[base, &user],
        ));
        expected.push(res(&user, "sql_user", json!({"name": name}), &[]));
    }
    assert_eq!(p.resources, expected);

    let svc = &p.services["db"];
    assert_eq!(svc.engine, Engine::Postgres);
    let sql = svc.sql.as_ref().unwrap();
    assert_eq!((sql.address.as_str(), sql.port), ("127.0.0.1", 5432));
    assert_eq!(sql.admin_user, "terrace_admin");
    assert_eq!(sql.admin_password.expose(), "s3cret");
    assert_eq!(svc.container, None);
    assert_eq!(svc.host.as_deref(), Some("db1"));
    assert!(p.docker_engines.is_empty());
    let host = &p.hosts["db1"];
    assert_eq!(
        (host.port, host.user.as_str(), host.become_root),
        (22, "deploy", false)
    );
    assert!(p.secrets.iter().any(|s| s.expose() == "s3cret"));
}

#[test]
fn mariadb_example_lowers_exactly() {
    let p = common::load(&[("main.hcl", &example("mariadb"))]);
    let mut expected = Vec::new();
    for (base, name, limit) in [
        ("database.reports", "reports", None),
        ("tenant.app[\"app2\"].database", "app2", Some(30)),
        (
            "tenant.app[\"calibre_web\"].database",
            "calibre_web",
            Some(50),
        ),
    ] {
        let mut user_attrs = json!({"name": name, "host": "%"});
        if let Some(l) = limit {
            user_attrs["connection_limit"] = json!(l);
        }
        let user = format!("{base}.user");
        expected.push(res(
            base,
            "sql_database",
            json!({"name": name, "charset": "utf8mb4"}),
            &[],
        ));
        expected.push(res(
            &format!("{base}.grant"),
            "sql_grant",
            json!({"database": name, "user": name, "host": "%", "privileges": ["ALL"]}),
            &[base, &user],
        ));
        expected.push(res(&user, "sql_user", user_attrs, &[]));
    }
    assert_eq!(p.resources, expected);
    assert_eq!(p.services["db"].sql.as_ref().unwrap().port, 3306);
    assert_eq!(p.services["db"].engine, Engine::Mariadb);
}

#[test]
fn explicit_user_password_privileges_charset_and_collation() {
    let p = common::load(&[(
        "main.hcl",
        r#"
service "db" {
  engine   = "mysql"
  endpoint = { address = "db.local", port = 3307 }
  admin    = { user = "root", password = "x" }
}
database "shop" {
  service    = service.db
  name       = "shop"
  user       = "shop_rw"
  password   = "pw1"
  privileges = ["select", "insert"]
  charset    = "latin1"
  collation  = "latin1_swedish_ci"
}
"#,
    )]);
    let r = &p.resources;
    assert_eq!(
        r[0].attrs,
        serde_json::from_value(
            json!({"name": "shop", "charset": "latin1", "collation": "latin1_swedish_ci"})
        )
        .unwrap()
    );
    assert_eq!(r[1].address.as_str(), "database.shop.grant");
    assert_eq!(r[1].attrs["privileges"], json!(["SELECT", "INSERT"]));
    assert_eq!(r[1].attrs["user"], json!("shop_rw"));
    assert_eq!(
        r[2].attrs,
        serde_json::from_value(json!({"name": "shop_rw", "host": "%", "password": "pw1"})).unwrap()
    );
    assert_eq!(p.services["db"].sql.as_ref().unwrap().port, 3307);
    assert!(p.secrets.iter().any(|s| s.expose() == "pw1"));
}

#[test]
fn labelled_databases_in_tenant_and_cross_block_dependencies() {
    let p = common::load(&[
        ("a.hcl", common::PG),
        (
            "b.hcl",
            r#"
tenant "t" {
  for_each = toset(["x"])
  database "reports" {
    service = service.pg
    name    = "${each.key}_reports"
  }
  database "main" {
    service = service.pg
    name    = each.key
  }
}
database "audit" {
  service = service.pg
  name    = "audit_for_${tenant.t["x"].database.main.name}"
}
"#,
        ),
    ]);
    let addrs: Vec<&str> = p.resources.iter().map(|r| r.address.as_str()).collect();
    assert!(
        addrs.contains(&"tenant.t[\"x\"].database[\"reports\"]"),
        "{addrs:?}"
    );
    assert!(
        addrs.contains(&"tenant.t[\"x\"].database[\"main\"].grant"),
        "{addrs:?}"
    );
    let audit = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == "database.audit")
        .unwrap();
    assert_eq!(audit.attrs["name"], json!("audit_for_x"));
    // Depends on its own user plus all six resources of tenant.t.
    assert_eq!(audit.depends_on.len(), 7, "{:?}", audit.depends_on);
    assert!(audit
        .depends_on
        .contains(&Address::new("tenant.t[\"x\"].database[\"reports\"].grant")));
    assert_eq!(
        p.resources
            .iter()
            .filter(|r| r.provider.0 == "service.pg")
            .count(),
        9
    );
}

#[test]
fn tenant_without_for_each_and_keys_needing_escapes() {
    let p = common::load(&[
        ("a.hcl", common::PG),
        (
            "b.hcl",
            r#"
tenant "solo" {
  database {
    service = service.pg
    name    = "solo"
  }
}
database "multi" {
  for_each = { "we\"ird key" = "db_a" }
  service  = service.pg
  name     = each.value
}
"#,
        ),
    ]);
    let addrs: Vec<&str> = p.resources.iter().map(|r| r.address.as_str()).collect();
    assert!(addrs.contains(&"tenant.solo.database"), "{addrs:?}");
    assert!(
        addrs.contains(&r#"database.multi["we\"ird key"].user"#),
        "{addrs:?}"
    );
}

#[test]
fn a_collation_alone_leaves_the_charset_to_the_server() {
    let p = common::load(&[(
        "main.hcl",
        r#"
service "my" {
  engine   = "mariadb"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "root", password = "pw" }
}
database "a" {
  service   = service.my
  name      = "a"
  collation = "latin1_swedish_ci"
}
database "b" {
  service = service.my
  name    = "b"
}
"#,
    )]);
    let db = |addr: &str| {
        p.resources
            .iter()
            .find(|r| r.address.as_str() == addr)
            .unwrap()
    };
    assert!(
        !db("database.a").attrs.contains_key("charset"),
        "{:?}",
        db("database.a").attrs
    );
    assert_eq!(db("database.b").attrs["charset"], "utf8mb4");
}

#[test]
fn redis_block_lowers_to_a_redis_user_and_self_redis_reaches_the_app() {
    let p = common::load(&[(
        "main.hcl",
        r#"
service "cache" {
  engine   = "redis"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "terrace_admin", password = "adm" }
}
image "app" { name = "app:1" }
tenant "client" {
  for_each = toset(["a-1"])
  redis {
    service = service.cache
    prefix  = "wp_${each.key}:"
  }
  app {
    image = image.app
    env = {
      REDIS_USER     = self.redis.user
      REDIS_PASSWORD = self.redis.password
      REDIS_PREFIX   = self.redis.prefix
    }
  }
}
"#,
    )]);
    let svc = &p.services["cache"];
    assert_eq!(svc.redis.as_ref().map(|r| r.port), Some(6379));
    assert!(svc.sql.is_none());
    let user = p
        .resources
        .iter()
        .find(|r| r.type_name == "redis_user")
        .expect("a redis_user");
    assert_eq!(user.address.as_str(), "tenant.client[\"a-1\"].redis");
    assert_eq!(user.provider, ProviderKey("service.cache".into()));
    assert_eq!(
        Value::Object(user.attrs.clone().into_iter().collect()),
        json!({"name": "client_a-1", "prefix": "wp_a-1:"})
    );
    let app = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == "tenant.client[\"a-1\"].app")
        .expect("the app");
    let env = app.attrs["env"].to_string();
    assert!(env.contains("\"REDIS_USER\":\"client_a-1\""), "{env}");
    assert!(env.contains("\"REDIS_PREFIX\":\"wp_a-1:\""), "{env}");
    // The generated password travels as a marker, and the app waits for the user.
    let marker = terrace_provider::refs::marker(&user.address, "password");
    assert_eq!(app.attrs["env"]["REDIS_PASSWORD"], json!(marker));
    assert!(app.depends_on.contains(&user.address));
}

#[test]
fn redis_settings_lower_to_a_redis_config_and_budget_and_purge_reach_the_user() {
    let p = common::load(&[(
        "main.hcl",
        r#"
service "cache" {
  engine   = "redis"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "terrace_admin", password = "adm" }
  settings = { maxmemory = "256mb", "maxmemory-policy" = "allkeys-lru", hz = 10 }
}
tenant "client" {
  redis {
    service          = service.cache
    prefix           = "wp_client:"
    connection_limit = 20
    purge_keys       = true
  }
}
"#,
    )]);
    let config = p
        .resources
        .iter()
        .find(|r| r.type_name == "redis_config")
        .expect("a redis_config");
    assert_eq!(config.address.as_str(), "service.cache.settings");
    assert_eq!(config.provider, ProviderKey("service.cache".into()));
    // As written: the provider's normalize puts it in the form Redis reports.
    assert_eq!(
        config.attrs["settings"],
        json!({"maxmemory": "256mb", "maxmemory-policy": "allkeys-lru", "hz": "10"})
    );
    let user = p
        .resources
        .iter()
        .find(|r| r.type_name == "redis_user")
        .expect("a redis_user");
    assert_eq!(user.attrs["connection_limit"], json!(20));
    assert_eq!(user.attrs["purge_keys"], json!(true));
}
