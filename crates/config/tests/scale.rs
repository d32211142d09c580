//! Large configurations evaluate to the right values: many locals, a `for_each` over
//! tens of thousands of items, `toset` of many duplicates, `range` up to its limit.
//! Their cost is measured by `benches/eval.rs` (up to 100,000 instances, in a release
//! build), never asserted here: these sizes keep the debug-build tests quick.
mod common;

use common::{load, render, Dir};
use serde_json::json;
use terrace_config::VarInputs;

const HOST: &str = r#"host "web1" { address = "10.0.0.10" }"#;

#[test]
fn twenty_thousand_locals_each_reading_the_one_before() {
    let mut text = String::from("locals {\n  l0 = 0\n");
    for i in 1..20_000 {
        text.push_str(&format!("  l{i} = local.l{} + 1\n", i - 1));
    }
    text.push_str("}\noutput \"last\" { value = local.l19999 }\n");
    text.push_str("output \"middle\" { value = local.l777 }\n");
    let p = load(&[("main.hcl", &text)]);
    assert_eq!(p.outputs["last"].value, json!(19_999));
    assert_eq!(p.outputs["middle"].value, json!(777));
}

#[test]
fn for_each_over_thirty_thousand_items_makes_one_instance_per_key() {
    let text = format!(
        r#"{HOST}
locals {{
  names = [for i in range(30000) : "p${{i}}"]
}}
package "many" {{
  for_each = toset(concat(local.names, local.names))
  host     = host.web1
  name     = each.key
}}
"#
    );
    let p = load(&[("main.hcl", &text)]);
    assert_eq!(p.resources.len(), 30_000);
    // Sorted by address; every key once, with its own name.
    let mut expected: Vec<String> = (0..30_000).map(|i| format!("p{i}")).collect();
    expected.sort();
    for (r, key) in p.resources.iter().zip(&expected) {
        assert_eq!(r.address.as_str(), format!("package.many[\"{key}\"]"));
        assert_eq!(r.attrs["name"], json!(key));
    }
}

#[test]
fn toset_of_many_duplicates_keeps_each_value_once_in_order() {
    let p = load(&[(
        "main.hcl",
        r#"
locals {
  many = [for i in range(30000) : "k${i % 7}"]
}
output "strings" { value = toset(local.many) }
output "mixed" { value = toset([3, 1, 3.0, "1", 1, { a = 1, b = 2 }, { b = 2, a = 1 }, [1], [1]]) }
output "count" { value = length(toset(local.many)) }
"#,
    )]);
    // Strings are ordered lexically; other sets keep first occurrences in order.
    assert_eq!(
        p.outputs["strings"].value,
        json!(["k0", "k1", "k2", "k3", "k4", "k5", "k6"])
    );
    assert_eq!(
        p.outputs["mixed"].value,
        json!([3, 1, "1", { "a": 1, "b": 2 }, [1]])
    );
    assert_eq!(p.outputs["count"].value, json!(7));
}

#[test]
fn range_goes_up_to_a_million_elements() {
    let p = load(&[(
        "main.hcl",
        r#"
output "n" { value = length(range(1000000)) }
output "last" { value = range(0, 1000000)[999999] }
output "down" { value = range(5, 0, -2) }
"#,
    )]);
    assert_eq!(p.outputs["n"].value, json!(1_000_000));
    assert_eq!(p.outputs["last"].value, json!(999_999));
    assert_eq!(p.outputs["down"].value, json!([5, 3, 1]));
}

#[test]
fn range_beyond_a_million_elements_is_refused_at_the_call() {
    let dir = Dir::new(&[(
        "main.hcl",
        r#"
locals {
  ids = range(0, 2000000)
}
"#,
    )]);
    let e = dir.load(&VarInputs::default()).unwrap_err();
    let root = dir.dir.path().display().to_string();
    expect_test::expect![[r#"
        terrace::config

          × 1 error in the configuration

        Error: terrace::config::eval

          × cannot evaluate expression: error calling function `range`: range would make 2000000 elements; it makes at most 1000000 (a million): check the bounds and the step
           ╭─[$DIR/main.hcl:3:9]
         2 │ locals {
         3 │   ids = range(0, 2000000)
           ·         ────────┬────────
           ·                 ╰── while evaluating this expression
         4 │ }
           ╰────
          help: check the function's arguments
    "#]].assert_eq(&render(&e).replace(&root, "$DIR"));
}
