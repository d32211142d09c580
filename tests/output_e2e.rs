//! `output` blocks and `terrace output` against the real local PostgreSQL: generated
//! values come from the state, sensitive ones only when asked for by name.

mod common;

use common::{pg_service, unique, Project};

#[test]
fn outputs_show_applied_values_and_hide_sensitive_ones_unless_named() {
    let a = unique("out");
    let p = Project::new(&format!(
        r#"{}
tenant "app" {{
  for_each = toset(["{a}"])
  database {{
    service = service.pg
    name    = each.key
  }}
}}
output "db_name" {{
  value       = tenant.app["{a}"].database.name
  description = "the app's database"
}}
output "db_url" {{
  value     = "postgres://${{tenant.app["{a}"].database.user}}:${{tenant.app["{a}"].database.password}}@127.0.0.1:5432/${{tenant.app["{a}"].database.name}}"
  sensitive = true
}}
"#,
        pg_service()
    ));

    // Before apply: the password is not known yet.
    let list = p.terrace(&["output"]).expect_code(0);
    assert_eq!(
        list.stdout,
        format!("db_name = \"{a}\"\ndb_url = <sensitive>\n")
    );
    let early = p.terrace(&["output", "db_url"]).expect_code(1);
    assert!(early.stderr.contains("not known yet"), "{}", early.stderr);

    // Outputs are never part of a plan.
    let plan = p.plan().expect_code(2);
    assert!(!plan.stdout.contains("db_url"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 3 to add"), "{}", plan.stdout);
    p.apply();

    let password = p.state_attrs(&format!("tenant.app[\"{a}\"].database.user"))["password"]
        .as_str()
        .unwrap()
        .to_string();
    let list = p.terrace(&["output"]).expect_code(0);
    assert!(!list.stdout.contains(&password), "{}", list.stdout);
    let json = p.terrace(&["output", "--json"]).expect_code(0);
    assert!(!json.stdout.contains(&password), "{}", json.stdout);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["db_name"]["value"], a.as_str());
    assert_eq!(doc["db_name"]["description"], "the app's database");
    assert_eq!(doc["db_url"]["sensitive"], true);
    assert!(doc["db_url"].get("value").is_none());

    // Asked for by name: the value, usable as is.
    let raw = p.terrace(&["output", "--raw", "db_url"]).expect_code(0);
    assert_eq!(
        raw.stdout,
        format!("postgres://{a}:{password}@127.0.0.1:5432/{a}")
    );
    let quoted = p.terrace(&["output", "db_name"]).expect_code(0);
    assert_eq!(quoted.stdout, format!("\"{a}\"\n"));
    let unknown = p.terrace(&["output", "nope"]).expect_code(1);
    assert!(
        unknown.stderr.contains("declared outputs: db_name, db_url"),
        "{}",
        unknown.stderr
    );
    p.plan().expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}
