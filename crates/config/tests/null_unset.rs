//! `null` means "not set" for optional attributes, as in Terraform: so that
//! `lookup(var.known, each.key, null)` leaves an attribute to its default.
mod common;

use common::{load, PG};

#[test]
fn null_optional_attributes_are_absent() {
    let p = load(&[
        ("a.hcl", PG),
        (
            "main.hcl",
            r#"
variable "limits" {
  default = { a = 5 }
}
tenant "t" {
  for_each = toset(["a", "b"])
  database {
    service          = service.pg
    name             = each.key
    connection_limit = lookup(var.limits, each.key, null)
    charset          = null
  }
}
"#,
        ),
    ]);
    let db = |k: &str| {
        p.resources
            .iter()
            .find(|r| r.address.as_str() == format!("tenant.t[\"{k}\"].database"))
            .unwrap()
    };
    assert_eq!(
        db("a").attrs.get("connection_limit"),
        Some(&serde_json::json!(5))
    );
    assert_eq!(db("b").attrs.get("connection_limit"), None);
    assert_eq!(db("b").attrs.get("charset"), None);
}

#[test]
fn a_null_name_takes_the_default() {
    let p = load(&[("main.hcl", "network \"farm\" {\n  name = null\n}\n")]);
    assert_eq!(
        p.resources[0].attrs.get("name"),
        Some(&serde_json::json!("farm"))
    );
}
