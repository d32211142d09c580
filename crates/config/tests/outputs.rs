//! `output` blocks: values, sensitivity, and that they own no resources.
mod common;

use common::{assert_report, load, load_err, PG};
use serde_json::json;

const TENANT: &str = r#"
tenant "app" {
  for_each = toset(["a"])
  database {
    service = service.pg
    name    = "app_${each.key}"
  }
}
"#;

#[test]
fn outputs_evaluate_references_and_own_no_resources() {
    let with = load(&[
        ("pg.hcl", PG),
        ("t.hcl", TENANT),
        (
            "out.hcl",
            r#"
output "db_name" {
  value       = tenant.app["a"].database.name
  description = "the app's database"
}
output "endpoints" {
  value = { host = "127.0.0.1", port = 5432, names = [tenant.app["a"].database.user] }
}
output "db_password" {
  value     = tenant.app["a"].database.password
  sensitive = true
}
"#,
        ),
    ]);
    let without = load(&[("pg.hcl", PG), ("t.hcl", TENANT)]);
    assert_eq!(with.resources, without.resources);
    let o = &with.outputs;
    assert_eq!(o["db_name"].value, json!("app_a"));
    assert_eq!(
        o["db_name"].description.as_deref(),
        Some("the app's database")
    );
    assert!(!o["db_name"].sensitive);
    assert_eq!(
        o["endpoints"].value,
        json!({ "host": "127.0.0.1", "port": 5432, "names": ["app_a"] })
    );
    assert!(o["db_password"].sensitive);
    // Known only after apply: a marker the binary fills from the state.
    let marker = o["db_password"].value.as_str().unwrap();
    assert_eq!(terrace_provider::refs::find(marker).len(), 1, "{marker}");
}

#[test]
fn an_output_reading_a_secret_must_be_declared_sensitive() {
    let e = load_err(&[
        ("pg.hcl", PG),
        ("t.hcl", TENANT),
        (
            "out.hcl",
            "output \"pw\" {\n  value = tenant.app[\"a\"].database.password\n}\n",
        ),
    ]);
    assert_report(
        &e,
        &[
            "output \"pw\" shows a sensitive value",
            "out.hcl:2:",
            "add `sensitive = true`",
        ],
    );
    let e = load_err(&[
        ("pg.hcl", PG),
        ("out.hcl", "output \"x\" {\n  sensitive = true\n}\n"),
    ]);
    assert_report(&e, &["value"]);
}
