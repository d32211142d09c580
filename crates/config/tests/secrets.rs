//! Values of sensitive variables never reach a diagnostic, even when they are the
//! very value the diagnostic is about.
mod common;

use common::{Dir, PG};
use terrace_config::VarInputs;

const SENSITIVE: &str = r#"
variable "secret_name" {
  type      = string
  sensitive = true
}
variable "secret_num" {
  type      = number
  sensitive = true
  default   = 5
}
database "d" {
  service          = service.pg
  name             = var.secret_name
  connection_limit = var.secret_num
}
"#;

fn rendered_error(inputs: &VarInputs) -> String {
    let dir = Dir::new(&[("a.hcl", PG), ("b.hcl", SENSITIVE)]);
    let err = dir.load(inputs).expect_err("the configuration is invalid");
    common::render(&err)
}

#[test]
fn an_invalid_name_from_a_sensitive_variable_is_not_shown() {
    let out = rendered_error(&VarInputs {
        vars: vec![("secret_name".into(), "Bad-Name-Secret9".into())],
        ..VarInputs::default()
    });
    assert!(out.contains("invalid database name"), "{out}");
    assert!(!out.contains("Bad-Name-Secret9"), "secret leaked: {out}");
    assert!(out.contains("(sensitive value)"), "{out}");
}

#[test]
fn unparsable_text_for_a_sensitive_variable_is_not_shown() {
    for inputs in [
        VarInputs {
            vars: vec![
                ("secret_name".into(), "okname".into()),
                ("secret_num".into(), "NotANumberSecret7".into()),
            ],
            ..VarInputs::default()
        },
        VarInputs {
            vars: vec![("secret_name".into(), "okname".into())],
            env: vec![("TERRACE_VAR_secret_num".into(), "NotANumberSecret7".into())],
            ..VarInputs::default()
        },
    ] {
        let out = rendered_error(&inputs);
        assert!(out.contains("secret_num"), "{out}");
        assert!(!out.contains("NotANumberSecret7"), "secret leaked: {out}");
    }
}

#[test]
fn a_file_with_secret_content_hides_its_hash_and_is_private_by_default() {
    let dir = Dir::new(&[(
        "main.hcl",
        r#"
variable "token" {
  type      = string
  sensitive = true
  default   = "s3cret-token"
}
host "web1" { address = "10.0.0.10" }
file "env" {
  host    = host.web1
  path    = "/etc/app.env"
  content = "TOKEN=${var.token}\n"
}
file "public" {
  host    = host.web1
  path    = "/etc/motd"
  content = "hello\n"
}
"#,
    )]);
    let p = dir
        .load(&VarInputs::default())
        .unwrap_or_else(|e| panic!("{}", common::render(&e)));
    let env = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == "file.env")
        .unwrap();
    assert!(env.sensitive_attrs.contains("content"));
    assert!(
        env.sensitive_attrs.contains("content_sha256"),
        "{:?}",
        env.sensitive_attrs
    );
    assert_eq!(env.attrs["mode"], "0600");
    let public = p
        .resources
        .iter()
        .find(|r| r.address.as_str() == "file.public")
        .unwrap();
    assert!(
        !public.attrs.contains_key("mode"),
        "only secret files get a default mode"
    );
}
