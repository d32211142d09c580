//! `--var` for a variable without a type: lists and maps written in HCL are values.
mod common;

use common::{Dir, PG};
use terrace_config::VarInputs;

const TENANTS: &str = r#"
variable "apps" {}
tenant "app" {
  for_each = var.apps
  database {
    service = service.pg
    name    = each.key
  }
}
"#;

fn databases(raw: &str) -> Result<usize, String> {
    let dir = Dir::new(&[("pg.hcl", PG), ("t.hcl", TENANTS)]);
    let inputs = VarInputs {
        vars: vec![("apps".into(), raw.into())],
        ..Default::default()
    };
    dir.load(&inputs)
        .map(|p| p.resources.len())
        .map_err(|e| common::render(&e))
}

#[test]
fn an_untyped_var_takes_a_list_or_map_written_in_hcl() {
    assert_eq!(databases("{ a = 1, b = 2 }"), Ok(6));
    assert_eq!(databases(r#"["a", "b", "c"]"#), Ok(9));
}

#[test]
fn other_text_stays_a_string() {
    // A string is not a valid for_each, which shows that it stayed one.
    let e = databases("[not hcl").unwrap_err();
    assert!(e.contains("for_each"), "{e}");
    let e = databases("abc").unwrap_err();
    assert!(e.contains("for_each"), "{e}");
}
