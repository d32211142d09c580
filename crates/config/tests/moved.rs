//! `moved` blocks: read as addresses and checked; the binary applies them to the state.
mod common;

use common::{assert_report, load, load_err, PG};
use terrace_config::Moved;

const TENANT: &str = r#"
tenant "app" {
  for_each = toset(["new"])
  database {
    service = service.pg
    name    = "shop"
  }
}
"#;

#[test]
fn moved_blocks_are_addresses() {
    let p = load(&[
        ("pg.hcl", PG),
        ("t.hcl", TENANT),
        (
            "moved.hcl",
            "moved {\n  from = tenant.app[\"old\"]\n  to   = tenant.app[ \"new\" ]\n}\nmoved {\n  from = database.x.user\n  to   = tenant.app[\"new\"].database.user\n}\n",
        ),
    ]);
    assert_eq!(
        p.moved,
        [
            Moved {
                from: "tenant.app[\"old\"]".into(),
                to: "tenant.app[\"new\"]".into()
            },
            Moved {
                from: "database.x.user".into(),
                to: "tenant.app[\"new\"].database.user".into()
            },
        ]
    );
}

#[test]
fn moved_blocks_are_checked() {
    let e = load_err(&[
        ("pg.hcl", PG),
        ("t.hcl", TENANT),
        (
            "moved.hcl",
            r#"moved {
  from = "tenant.app.old"
  to   = tenant.app["new"]
}
moved {
  from = tenant.app["a"]
  to   = tenant.other["a"]
}
moved {
  from = var.x
  to   = tenant.app["new"]
}
moved {
  from = tenant.app["new"]
  to   = tenant.app["new"]
}
"#,
        ),
    ]);
    assert_report(
        &e,
        &[
            "moved.hcl:2:",
            "`from` must be the address of a block or resource",
            "moved to tenant.other[\"a\"], which the configuration does not declare",
            "moved.hcl:10:",
            "a move to the same address",
        ],
    );
}
