//! Instances that read their own entry of a map (`var.apps[each.key].db`): each gets
//! the value at its key, whatever computes the key; a key that is missing fails as it
//! does on the whole map; reads of the whole map, and keys bound by a `for`, still see
//! every entry. (An instance's context holds only the entries it reads at keys known
//! per instance: the cost is measured by `benches/eval.rs`, case `lookup`.)
mod common;

use std::collections::BTreeMap;

use common::{load, render, Dir};
use serde_json::{json, Value};
use terrace_config::VarInputs;

const COMMON: &str = r#"
host "web1" { address = "10.0.0.10" }
variable "apps" {
  default = {
    a = { db = "dba", size = "s", pkg = "nginx" }
    b = { db = "dbb", size = "l", pkg = "redis-server" }
  }
}
locals {
  sizes = { s = "small", l = "large" }
}
service "db" {
  engine   = "postgres"
  endpoint = { address = "127.0.0.1" }
  admin    = { user = "admin", password = "pw" }
}
"#;

/// Address → attribute `attr` of every resource with it, `main` after [`COMMON`].
fn attr(main: &str, attr: &str) -> BTreeMap<String, Value> {
    attr_of_files(&[("main.hcl", main)], attr)
}

#[test]
fn each_instance_reads_its_own_entry_by_any_key_from_each() {
    let got = attr(
        r#"
tenant "app" {
  for_each = var.apps
  database {
    service = service.db
    name    = var.apps[each.key].db
    user    = "${var.apps[each.key].db}_${local.sizes[each.value.size]}"
  }
}
package "p" {
  for_each = var.apps
  host     = host.web1
  name     = "${var.apps[each.key].pkg}-${var.apps["a"].db}-${local.sizes[var.apps[each.key].size]}"
}
package "l" {
  for_each = toset(["a", "zz"])
  host     = host.web1
  name     = lookup(var.apps, each.key, { pkg = "fallback" }).pkg
}
"#,
        "name",
    );
    assert_eq!(
        got,
        BTreeMap::from([
            ("package.l[\"a\"]".into(), json!("nginx")),
            ("package.l[\"zz\"]".into(), json!("fallback")),
            ("package.p[\"a\"]".into(), json!("nginx-dba-small")),
            ("package.p[\"b\"]".into(), json!("redis-server-dba-large")),
            ("tenant.app[\"a\"].database".into(), json!("dba")),
            ("tenant.app[\"a\"].database.user".into(), json!("dba_small")),
            ("tenant.app[\"b\"].database".into(), json!("dbb")),
            ("tenant.app[\"b\"].database.user".into(), json!("dbb_large")),
        ])
    );
}

#[test]
fn reads_of_the_whole_map_and_for_bound_keys_see_every_entry() {
    let got = attr(
        r#"
package "whole" {
  for_each = var.apps
  host     = host.web1
  name     = "${var.apps[each.key].pkg}-${length(var.apps)}"
}
package "for_bound" {
  for_each = var.apps
  host     = host.web1
  # `each` here is the for expression's own variable, not the instance's.
  name     = "${var.apps[each.key].pkg}-${join("+", [for each in [{ key = "a" }, { key = "b" }] : var.apps[each.key].db])}"
}
package "other_name" {
  for_each = var.apps
  host     = host.web1
  name     = "${var.apps[each.key].pkg}-${join("+", [for k in ["b", "a"] : var.apps[k].db])}"
}
"#,
        "name",
    );
    assert_eq!(
        got,
        BTreeMap::from([
            ("package.for_bound[\"a\"]".into(), json!("nginx-dba+dbb")),
            (
                "package.for_bound[\"b\"]".into(),
                json!("redis-server-dba+dbb")
            ),
            ("package.other_name[\"a\"]".into(), json!("nginx-dbb+dba")),
            (
                "package.other_name[\"b\"]".into(),
                json!("redis-server-dbb+dba")
            ),
            ("package.whole[\"a\"]".into(), json!("nginx-2")),
            ("package.whole[\"b\"]".into(), json!("redis-server-2")),
        ])
    );
}

/// The rendered error of a configuration that fails to load, its directory as `$DIR`.
fn error_of(files: &str) -> String {
    let dir = Dir::new(&[("main.hcl", &format!("{COMMON}{files}"))]);
    let e = dir.load(&VarInputs::default()).unwrap_err();
    render(&e).replace(&dir.dir.path().display().to_string(), "$DIR")
}

#[test]
fn a_missing_key_fails_as_on_the_whole_map() {
    let keyed = r#"
package "p" {
  for_each = { x = "a", y = "nope" }
  host     = host.web1
  name     = var.apps[each.value].pkg
}
"#;
    let out = error_of(keyed);
    expect_test::expect![[r#"
        terrace::config

          × 1 error in the configuration

        Error: terrace::config::eval

          × cannot evaluate expression: no such key: `nope`
            ╭─[$DIR/main.hcl:21:14]
         20 │   host     = host.web1
         21 │   name     = var.apps[each.value].pkg
            ·              ────────────┬───────────
            ·                          ╰── while evaluating this expression
         22 │ }
            ╰────
          help: the referenced value has no such key or index; check the name and the value it refers to
    "#]]
    .assert_eq(&out);
    // The same error, word for word, when the map is also read whole (and so declared
    // whole in every instance's context).
    let whole = keyed.replace(
        "var.apps[each.value].pkg",
        "length(var.apps) > 0 ? var.apps[each.value].pkg : \"\"",
    );
    let whole_out = error_of(&whole);
    assert!(
        whole_out.contains("× cannot evaluate expression: no such key: `nope`\n"),
        "{whole_out}"
    );
}

/// [`attr`] of several files, the first of them `main.hcl`.
fn attr_of_files(files: &[(&str, &str)], attr: &str) -> BTreeMap<String, Value> {
    let main = format!("{COMMON}{}", files[0].1);
    let mut all = vec![("main.hcl", main.as_str())];
    all.extend_from_slice(&files[1..]);
    load(&all)
        .resources
        .iter()
        .filter_map(|r| Some((r.address.to_string(), r.attrs.get(attr)?.clone())))
        .map(|(a, v)| (a, serde_json::to_value(v).unwrap()))
        .collect()
}

#[test]
fn a_template_read_where_content_is_null_sees_every_value() {
    // The template's references are not the block's: it is read during evaluation,
    // for the instances whose `content` is null, and may read anything.
    let got = attr_of_files(
        &[
            (
                "main.hcl",
                r#"
variable "files" {
  default = { a = { content = null }, b = { content = "inline" } }
}
file "f" {
  for_each = var.files
  host     = host.web1
  path     = "/etc/${each.key}.conf"
  content  = var.files[each.key].content
  source   = var.files[each.key].content == null ? "all.tpl" : null
}
"#,
            ),
            (
                "all.tpl",
                "${length(var.files)} ${var.files[\"b\"].content} ${local.sizes[\"l\"]}",
            ),
        ],
        "content",
    );
    assert_eq!(
        got,
        BTreeMap::from([
            ("file.f[\"a\"]".into(), json!("2 inline large")),
            ("file.f[\"b\"]".into(), json!("inline")),
        ])
    );
}

#[test]
fn top_level_blocks_and_values_that_are_not_maps() {
    let got = attr(
        r#"
variable "order" { default = ["b", "a"] }
database "d" {
  for_each = var.apps
  service  = service.db
  name     = "${var.apps[each.key].db}_${local.sizes[var.apps[each.key].size]}"
}
package "by_position" {
  for_each = { first = 0, second = 1 }
  host     = host.web1
  name     = "${var.order[each.value]}-pkg"
}
"#,
        "name",
    );
    assert_eq!(
        got,
        BTreeMap::from([
            ("database.d[\"a\"]".into(), json!("dba_small")),
            ("database.d[\"a\"].user".into(), json!("dba_small")),
            ("database.d[\"b\"]".into(), json!("dbb_large")),
            ("database.d[\"b\"].user".into(), json!("dbb_large")),
            ("package.by_position[\"first\"]".into(), json!("b-pkg")),
            ("package.by_position[\"second\"]".into(), json!("a-pkg")),
        ])
    );
}
