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

/// A service block's resources are protected unless the block allows destroying them;
/// its other lifecycle settings keep the default protection.
#[test]
fn service_resources_default_to_prevent_destroy() {
    let service = |name: &str, lifecycle: &str| {
        format!(
            "service \"{name}\" {{\n  engine = \"container\"\n{lifecycle}  container {{\n    name  = \"{name}\"\n    image = \"busybox:1\"\n  }}\n}}\n"
        )
    };
    let text = [
        service("plain", ""),
        service(
            "ignoring",
            "  lifecycle {\n    ignore_changes = [memory]\n  }\n",
        ),
        service(
            "allowed",
            "  lifecycle {\n    prevent_destroy = false\n  }\n",
        ),
    ]
    .concat();
    let p = load(&[("main.hcl", &text)]);
    let protected = |a: &str| {
        p.resources
            .iter()
            .find(|r| r.address.as_str() == a)
            .unwrap_or_else(|| panic!("{a}"))
            .lifecycle
            .prevent_destroy
    };
    assert!(protected("service.plain.container"));
    assert!(protected("service.ignoring.container"));
    assert!(!protected("service.allowed.container"));
}
