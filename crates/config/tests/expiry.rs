//! Expiry (`lifecycle { expires_at, ttl }`) and variables read from a directory of
//! instance files: what a project carries, and the errors users see.
mod common;

use std::path::{Path, PathBuf};

use common::{render, schemas, Dir, PG};
use expect_test::expect;
use terrace_config::{load, variable_directory, MemoryEnv, Project, VarInputs};

const CLONES: &str = r#"
variable "clones" {
  type      = map(object({ ttl = string }))
  directory = "clones.d"
}

variable "launch_ends" {
  type    = string
  default = "2026-12-24T19:00:00+01:00"
}

tenant "clone" {
  for_each = var.clones
  database {
    service = service.pg
    name    = "wp_${replace(each.key, "-", "_")}"
  }
  lifecycle {
    ttl = each.value.ttl
  }
}

tenant "launch" {
  database {
    service = service.pg
    name    = "launch"
  }
  lifecycle {
    expires_at = var.launch_ends
    prevent_destroy = false
  }
}

tenant "keeper" {
  database {
    service = service.pg
    name    = "keeper"
  }
  lifecycle {
    expires_at = null
  }
}
"#;

fn load_mem(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Project, String> {
    let dir = Path::new("/cfg");
    let files = files
        .iter()
        .map(|(n, t)| (dir.join(n), t.to_string()))
        .collect();
    let env = MemoryEnv {
        files: env
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect(),
        home: None,
    };
    load(dir, files, &VarInputs::default(), &env, &schemas).map_err(|e| render(&e))
}

fn expiries(p: &Project) -> String {
    p.expiries
        .iter()
        .map(|e| {
            format!(
                "{} expires_at={:?} ttl={:?}\n",
                e.instance,
                e.expires_at.map(|t| t.to_rfc3339()),
                e.ttl.map(|d| d.num_seconds())
            )
        })
        .collect()
}

#[test]
fn instances_come_from_their_files_and_carry_their_expiry() {
    let p = load_mem(
        &[("main.hcl", CLONES), ("pg.hcl", PG)],
        &[
            ("/cfg/clones.d/feature_123.json", r#"{"ttl": "48h"}"#),
            ("/cfg/clones.d/b-2.json", r#"{"ttl": "1h30m"}"#),
            // A writer's temporary file and other files are not instances.
            ("/cfg/clones.d/.c.json.tmp", "{"),
            ("/cfg/clones.d/README", "not an instance"),
        ],
    )
    .unwrap();
    expect![[r#"
        tenant.clone["b-2"] expires_at=None ttl=Some(5400)
        tenant.clone["feature_123"] expires_at=None ttl=Some(172800)
        tenant.launch expires_at=Some("2026-12-24T18:00:00+00:00") ttl=None
    "#]]
    .assert_eq(&expiries(&p));
    let dbs: Vec<&str> = p
        .resources
        .iter()
        .filter(|r| r.type_name == "sql_database")
        .map(|r| r.attrs["name"].as_str().unwrap())
        .collect();
    assert_eq!(dbs, ["wp_b_2", "wp_feature_123", "keeper", "launch"]);
}

#[test]
fn a_missing_directory_is_no_instances() {
    let p = load_mem(&[("main.hcl", CLONES), ("pg.hcl", PG)], &[]).unwrap();
    assert!(!p
        .resources
        .iter()
        .any(|r| r.address.as_str().starts_with("tenant.clone[")));
}

#[test]
fn bad_expiries_and_instance_files_are_located() {
    let e = load_mem(
        &[("main.hcl", CLONES), ("pg.hcl", PG)],
        &[("/cfg/clones.d/x.json", r#"{"ttl": "two days"}"#)],
    )
    .unwrap_err();
    expect![[r#"
        terrace::config

          × 1 error in the configuration

        Error: terrace::config::invalid_value

          × invalid "ttl" of tenant.clone["x"]: "two days" is not a duration: write a number and a unit (s, m, h, d, w), like "48h" or "1h30m"
            ╭─[/cfg/main.hcl:19:11]
         18 │   lifecycle {
         19 │     ttl = each.value.ttl
            ·           ───────┬──────
            ·                  ╰── not a duration
         20 │   }
            ╰────
          help: write it like `ttl = "48h"`, or null for none
    "#]]
    .assert_eq(&e);

    let wrong = CLONES
        .replace("expires_at = var.launch_ends", "expires_at = 3")
        .replace("expires_at = null", "expires_at = \"tomorrow\"");
    let e = load_mem(&[("main.hcl", &wrong), ("pg.hcl", PG)], &[]).unwrap_err();
    expect![[r#"
        terrace::config

          × 2 errors in the configuration

        Error: terrace::config::wrong_type

          × wrong type for "expires_at" of tenant.launch: expected an RFC 3339 timestamp, found a number
            ╭─[/cfg/main.hcl:29:18]
         28 │   lifecycle {
         29 │     expires_at = 3
            ·                  ┬
            ·                  ╰── this is a number
         30 │     prevent_destroy = false
            ╰────
          help: write it like `expires_at = "2026-12-24T18:00:00Z"`

        Error: terrace::config::invalid_value

          × invalid "expires_at" of tenant.keeper: "tomorrow" is not an RFC 3339 timestamp (premature end of input); write it like "2026-12-24T18:00:00Z"
            ╭─[/cfg/main.hcl:40:18]
         39 │   lifecycle {
         40 │     expires_at = "tomorrow"
            ·                  ─────┬────
            ·                       ╰── not an RFC 3339 timestamp
         41 │   }
            ╰────
          help: write it like `expires_at = "2026-12-24T18:00:00Z"`, or null for none
    "#]]
    .assert_eq(&e);

    let e = load_mem(
        &[("main.hcl", CLONES), ("pg.hcl", PG)],
        &[("/cfg/clones.d/no way.json", r#"{"ttl": "1h"}"#)],
    )
    .unwrap_err();
    assert!(
        e.contains("/cfg/clones.d/no way.json: \"no way\" is not a valid instance name"),
        "{e}"
    );
    let e = load_mem(
        &[("main.hcl", CLONES), ("pg.hcl", PG)],
        &[("/cfg/clones.d/a.json", r#"{"ttl": 1"#)],
    )
    .unwrap_err();
    assert!(e.contains("/cfg/clones.d/a.json is not valid JSON"), "{e}");
    let e = load_mem(
        &[("main.hcl", CLONES), ("pg.hcl", PG)],
        &[("/cfg/clones.d/a.json", r#"{"size": "L"}"#)],
    )
    .unwrap_err();
    assert!(
        e.contains("invalid instance files for variable \"clones\""),
        "{e}"
    );
}

#[test]
fn each_in_an_expiry_needs_for_each() {
    let e = load_mem(
        &[
            (
                "main.hcl",
                r#"
tenant "t" {
  database {
    service = service.pg
    name    = "t"
  }
  lifecycle {
    ttl = each.value
  }
}
"#,
            ),
            ("pg.hcl", PG),
        ],
        &[],
    )
    .unwrap_err();
    assert!(
        e.contains("`each` is only available in blocks with for_each"),
        "{e}"
    );
}

#[test]
fn the_instance_command_finds_the_directory_without_loading_the_project() {
    let dir = Dir::new(&[("main.hcl", CLONES), ("pg.hcl", PG)]);
    assert_eq!(
        variable_directory(dir.dir.path(), "clones").unwrap(),
        dir.path("clones.d")
    );
    let e = variable_directory(dir.dir.path(), "launch_ends").unwrap_err();
    assert!(
        render(&e).contains("has no literal `directory"),
        "{}",
        render(&e)
    );
    let e = variable_directory(dir.dir.path(), "nope").unwrap_err();
    assert!(
        render(&e).contains("variables with a directory: clones"),
        "{}",
        render(&e)
    );
}
