//! `lifecycle { ... }`: carried by every resource of its block, and checked.
mod common;

use common::{load, PG};

#[test]
fn lifecycle_reaches_every_resource_of_its_block_only() {
    let p = load(&[
        ("a.hcl", PG),
        (
            "main.hcl",
            r#"
tenant "t" {
  database {
    service = service.pg
    name    = "t"
  }
  lifecycle {
    prevent_destroy = true
    ignore_changes  = [connection_limit, "password_status"]
  }
}
database "other" {
  service = service.pg
  name    = "other"
}
"#,
        ),
    ]);
    for r in &p.resources {
        let protected = r.address.as_str().starts_with("tenant.t");
        assert_eq!(r.lifecycle.prevent_destroy, protected, "{}", r.address);
        assert_eq!(
            r.lifecycle.ignore_changes.len(),
            if protected { 2 } else { 0 },
            "{}",
            r.address
        );
    }
    assert!(p
        .resources
        .iter()
        .any(|r| r.address.as_str().starts_with("tenant.t")));
}
