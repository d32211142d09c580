//! Templates, functions, locals in any order and for_each.
mod common;

use common::PG;
use serde_json::json;

fn names(p: &terrace_config::Project) -> Vec<String> {
    p.resources
        .iter()
        .filter(|r| r.type_name == "sql_database")
        .map(|r| r.attrs["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn for_each_over_a_map_with_templates() {
    let p = common::load(&[
        ("a.hcl", PG),
        (
            "b.hcl",
            r#"
variable "apps" { default = { blog = 5, shop = 8 } }
locals { prefix = "wp_" }
tenant "app" {
  for_each = var.apps
  database {
    service          = service.pg
    name             = "${local.prefix}${each.key}"
    connection_limit = each.value * 2
  }
}
"#,
        ),
    ]);
    assert_eq!(names(&p), vec!["wp_blog", "wp_shop"]);
    assert_eq!(
        p.resources[0].address.as_str(),
        "tenant.app[\"blog\"].database"
    );
    assert_eq!(p.resources[0].attrs["connection_limit"], json!(10));
}

#[test]
fn for_each_over_a_set_and_a_list() {
    let p = common::load(&[
        ("a.hcl", PG),
        (
            "b.hcl",
            r#"
database "s" {
  for_each = toset(["b", "a", "b"])
  service  = service.pg
  name     = "s_${each.value}"
}
database "l" {
  for_each = ["x"]
  service  = service.pg
  name     = "l_${each.key}"
}
"#,
        ),
    ]);
    assert_eq!(names(&p), vec!["l_x", "s_a", "s_b"]);
    assert!(p
        .resources
        .iter()
        .any(|r| r.address.as_str() == "database.s[\"a\"].grant"));
}

#[test]
fn functions_and_locals_in_any_order() {
    let p = common::load(&[
        ("a.hcl", PG),
        (
            "b.hcl",
            r#"
locals {
  all    = concat(local.first, ["Gamma"])
  first  = split(",", "alpha,Beta")
  joined = join("_", [for n in local.all : lower(n)])
  fmt    = format("%s_%d_%v", "f", 3, true)
  merged = merge({ a = 1 }, { b = 2 })
  misc   = [
    upper("x"), replace("a-b", "-", "_"), trimspace("  t  "), substr("abcdef", 1, 3),
    length(local.all), join("", keys(local.merged)), length(values(local.merged)),
    lookup(local.merged, "zz", 9), contains(local.all, "Beta"), coalesce("", "c"),
    min(4, 2, 8), max(4, 2, 8), tostring(5), tonumber("6"), length(tolist(range(3))),
  ]
}
database "d" {
  service = service.pg
  name    = local.joined
}
database "e" {
  service = service.pg
  name    = "${local.fmt}_${join("_", [for v in local.misc : tostring(v)])}"
}
"#,
        ),
    ]);
    assert_eq!(
        names(&p),
        vec![
            "alpha_beta_gamma",
            "f_3_true_X_a_b_t_bcd_3_ab_2_9_true_c_2_8_5_6_3"
        ]
    );
}

#[test]
fn toset_keeps_the_first_of_equal_elements_and_orders_strings() {
    let p = common::load(&[
        ("a.hcl", PG),
        (
            "b.hcl",
            r#"
tenant "app" {
  for_each = toset(["b", "a", "b", "c", "a"])
  database {
    service = service.pg
    name    = "${each.key}_${join("_", [for x in toset([3, 1, 3, 2, 1]) : tostring(x)])}"
  }
}
"#,
        ),
    ]);
    assert_eq!(names(&p), vec!["a_3_1_2", "b_3_1_2", "c_3_1_2"]);
}
