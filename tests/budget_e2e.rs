//! Connection budgets end to end: the tenants' `connection_limit`s per server against
//! the server's own limit read live (MariaDB and PostgreSQL `max_connections`, Redis
//! `maxclients`) less a reserve for administration; within budget the plan shows the
//! usage, over budget it is refused naming the server, its budget and the overflow.

mod common;

use common::{mysql_service, pg_service, unique, Project};

fn redis_service() -> String {
    r#"
variable "redis_admin_password" {
  type      = string
  sensitive = true
}
service "cache" {
  engine   = "redis"
  endpoint = { address = "127.0.0.1", port = 6379 }
  admin    = { user = "terrace_admin", password = var.redis_admin_password }
}
"#
    .to_string()
}

/// Three tenants, each with a database (or Redis user) limited to `limit` connections.
fn tenants(block: &str, limit: u64) -> String {
    let keys: Vec<String> = (0..3)
        .map(|i| format!("\"{}\"", unique(&format!("c{i}"))))
        .collect();
    format!(
        r#"
tenant "client" {{
  for_each = toset([{}])
  {block} {{
    service          = service.SERVICE
    NAME
    connection_limit = {limit}
  }}
}}
"#,
        keys.join(", ")
    )
}

fn sql_project(service: &str, name: &str, limit: u64) -> String {
    let t = tenants("database", limit)
        .replace("SERVICE", name)
        .replace("NAME", "name             = \"b_${each.key}\"");
    service.to_string() + &t
}

fn redis_project(limit: u64) -> String {
    let t = tenants("redis", limit)
        .replace("SERVICE", "cache")
        .replace("NAME", "prefix           = \"${each.key}:\"");
    redis_service() + &t
}

/// The error report with miette's line wrapping (`\n  | `) undone.
fn flat(report: &str) -> String {
    report
        .split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Within budget: planned (nothing applied) with the usage line; over: refused.
fn check(hcl_ok: &str, hcl_over: &str, ok_line: &str, refusal: &str) {
    let p = Project::new(hcl_ok);
    let plan = p.plan().expect_code(2);
    assert!(plan.stdout.contains(ok_line), "{}", plan.all());
    p.write(hcl_over);
    let over = p.plan();
    assert_ne!(over.code, 0);
    assert_ne!(over.code, 2, "{}", over.all());
    assert!(over.stdout.contains("OVER-COMMITTED"), "{}", over.all());
    assert!(flat(&over.all()).contains(refusal), "{}", over.all());
    // Apply refuses too, before touching anything.
    let applied = p.terrace(&["apply", "--auto-approve"]);
    assert_ne!(applied.code, 0);
    assert!(flat(&applied.all()).contains(refusal), "{}", applied.all());
    if p.state_path().exists() {
        assert!(p.state()["resources"]
            .as_array()
            .is_none_or(|r| r.is_empty()));
    }
}

#[test]
fn mariadb_budget_is_max_connections_less_the_reserve() {
    // The local MariaDB: max_connections 151, terrace keeps 5 (its own pool).
    check(
        &sql_project(&mysql_service(), "db", 10),
        &sql_project(&mysql_service(), "db", 50),
        "Connections: service.db: 30 of 146 (the server takes 151, 5 kept for administration) committed to 3 tenant(s)\n",
        "service.db: the tenants' connection limits add up to 150, its budget is 146 (151 connections less 5 kept for administration): 4 over",
    );
}

#[test]
fn postgres_budget_also_keeps_the_superuser_reserve() {
    // The local PostgreSQL: max_connections 100, superuser_reserved_connections 3.
    check(
        &sql_project(&pg_service(), "pg", 10),
        &sql_project(&pg_service(), "pg", 31),
        "Connections: service.pg: 30 of 92 (the server takes 100, 8 kept for administration) committed to 3 tenant(s)\n",
        "service.pg: the tenants' connection limits add up to 93, its budget is 92 (100 connections less 8 kept for administration): 1 over",
    );
}

#[test]
fn redis_budget_is_maxclients_less_the_reserve() {
    // The local Redis: maxclients 10000 (the default).
    check(
        &redis_project(20),
        &redis_project(4000),
        "Connections: service.cache: 60 of 9995 (the server takes 10000, 5 kept for administration) committed to 3 tenant(s)\n",
        "service.cache: the tenants' connection limits add up to 12000, its budget is 9995 (10000 connections less 5 kept for administration): 2005 over",
    );
}
