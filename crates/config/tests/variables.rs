//! Variable values, precedence, types and sensitivity.
mod common;

use common::{assert_report, load_err_with, Dir, PG};
use serde_json::json;
use terrace_config::{ErrorKind, VarInputs};

const DB: &str = r#"
variable "db_name" {
  type    = string
  default = "from_default"
}
database "d" {
  service = service.pg
  name    = var.db_name
}
"#;

fn db_name(dir: &Dir, inputs: &VarInputs) -> String {
    let p = dir
        .load(inputs)
        .unwrap_or_else(|e| panic!("{}", common::render(&e)));
    p.resources[0].attrs["name"].as_str().unwrap().to_string()
}

#[test]
fn precedence_default_env_file_cli() {
    let dir = Dir::new(&[("a.hcl", PG), ("b.hcl", DB)]);
    std::fs::write(dir.path("one.tfvars"), "db_name = \"from_file1\"\n").unwrap();
    std::fs::write(dir.path("two.tfvars"), "db_name = \"from_file2\"\n").unwrap();
    let env = vec![
        ("TERRACE_VAR_db_name".to_string(), "from_env".to_string()),
        ("OTHER".into(), "x".into()),
    ];
    let files = vec![dir.path("one.tfvars"), dir.path("two.tfvars")];
    let cli = vec![("db_name".to_string(), "from_cli".to_string())];

    assert_eq!(db_name(&dir, &VarInputs::default()), "from_default");
    let mut inputs = VarInputs {
        env: env.clone(),
        ..Default::default()
    };
    assert_eq!(db_name(&dir, &inputs), "from_env");
    inputs.var_files = files.clone();
    assert_eq!(db_name(&dir, &inputs), "from_file2");
    inputs.vars = cli;
    assert_eq!(db_name(&dir, &inputs), "from_cli");
    // Files alone: the later one wins.
    let inputs = VarInputs {
        var_files: files.into_iter().rev().collect(),
        ..Default::default()
    };
    assert_eq!(db_name(&dir, &inputs), "from_file1");
}

#[test]
fn typed_values_from_text_are_parsed_as_hcl() {
    let dir = Dir::new(&[
        ("a.hcl", PG),
        (
            "b.hcl",
            r#"
variable "limit" { type = number }
variable "names" { type = list(string) }
variable "raw" {}
tenant "t" {
  for_each = toset(var.names)
  database {
    service          = service.pg
    name             = "${var.raw}_${each.key}"
    connection_limit = var.limit
  }
}
"#,
        ),
    ]);
    let inputs = VarInputs {
        vars: vec![
            ("limit".into(), "7".into()),
            ("names".into(), r#"["b", "a"]"#.into()),
        ],
        env: vec![("TERRACE_VAR_raw".into(), "pre".into())],
        ..Default::default()
    };
    let p = dir
        .load(&inputs)
        .unwrap_or_else(|e| panic!("{}", common::render(&e)));
    let names: Vec<_> = p
        .resources
        .iter()
        .filter(|r| r.type_name == "sql_database")
        .map(|r| r.attrs["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("pre_a"), json!("pre_b")]);
    assert_eq!(p.resources[0].attrs["connection_limit"], json!(7));
}

#[test]
fn type_mismatch_from_cli_and_default() {
    let e = load_err_with(
        &[("main.hcl", "variable \"n\" {\n  type    = number\n  default = \"ten\"\n}\nvariable \"m\" { type = map(number) }\n")],
        &VarInputs { vars: vec![("m".into(), "{ a = true }".into())], ..Default::default() },
    );
    assert_eq!(e.len(), 2, "{}", common::render(&e));
    assert!(e.iter().all(|x| x.kind() == ErrorKind::WrongType));
    assert_report(
        &e,
        &[
            "main.hcl:3:13",
            "invalid default for variable \"n\": expected a number, found the string \"ten\"",
            "variable \"n\" has type number",
            "invalid value for variable \"m\" from --var: key \"a\": expected a number, found a bool",
        ],
    );
}

#[test]
fn unknown_variable_in_var_file_and_cli() {
    let dir = Dir::new(&[("main.hcl", "variable \"region\" { default = \"x\" }\n")]);
    std::fs::write(dir.path("vals.tfvars"), "regoin = \"eu\"\n").unwrap();
    let inputs = VarInputs {
        var_files: vec![dir.path("vals.tfvars")],
        vars: vec![("regio".into(), "y".into())],
        ..Default::default()
    };
    let e = dir.load(&inputs).unwrap_err();
    assert_eq!(e.len(), 2);
    assert_report(
        &e,
        &[
            "vals.tfvars:1:1",
            "no variable named \"regoin\"",
            "did you mean \"region\"?",
            "no variable named \"regio\"",
        ],
    );
}

#[test]
fn sensitive_tracking_through_locals_and_secrets() {
    let p = common::load(&[
        ("a.hcl", PG),
        (
            "b.hcl",
            r#"
variable "secret_name" {
  sensitive = true
  default   = "hidden_db"
}
variable "pw" {
  sensitive = true
  default   = "p4ss"
}
locals {
  derived = upper(local.base)
  base    = var.secret_name
}
database "d" {
  service = service.pg
  name    = lower(local.derived)
  user    = "visible"
  password = var.pw
}
database "plain" {
  service = service.pg
  name    = "plain"
}
"#,
        ),
    ]);
    let by = |a: &str| {
        p.resources
            .iter()
            .find(|r| r.address.as_str() == a)
            .unwrap()
    };
    let set = |a: &str| by(a).sensitive_attrs.iter().cloned().collect::<Vec<_>>();
    assert_eq!(by("database.d").attrs["name"], json!("hidden_db"));
    assert_eq!(set("database.d"), vec!["name"]);
    assert_eq!(set("database.d.user"), vec!["password"]);
    assert_eq!(set("database.d.grant"), vec!["database"]);
    assert!(set("database.plain").is_empty());
    let secrets: Vec<&str> = p.secrets.iter().map(|s| s.expose()).collect();
    assert!(
        secrets.contains(&"hidden_db") && secrets.contains(&"p4ss") && secrets.contains(&"adminpw"),
        "{secrets:?}"
    );
    assert!(!secrets.contains(&"visible"));
}

#[test]
fn user_defaulting_to_sensitive_name_is_sensitive() {
    let p = common::load(&[
        ("a.hcl", PG),
        ("b.hcl", "variable \"s\" {\n  sensitive = true\n  default = \"x1\"\n}\ndatabase \"d\" {\n  service = service.pg\n  name = var.s\n}\n"),
    ]);
    let user = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == "database.d.user")
        .unwrap();
    assert!(user.sensitive_attrs.contains("name"));
    let db = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == "database.d")
        .unwrap();
    assert!(db.sensitive_attrs.contains("owner"));
}
