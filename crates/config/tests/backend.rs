//! The `terrace { backend ... }` block: read alone (for state commands) and as part of a
//! whole configuration, with located errors for what cannot be a backend.
mod common;

use std::path::PathBuf;

use common::{load, render, PG};
use expect_test::expect;
use terrace_config::{read_backend, BackendSetting};

fn read(text: &str) -> Result<Option<BackendSetting>, String> {
    read_backend(vec![(PathBuf::from("main.hcl"), text.to_string())]).map_err(|e| render(&e))
}

#[test]
fn a_pg_backend_is_read_alone_and_with_the_configuration() {
    let text = "terrace {\n  backend \"pg\" {\n    url   = \"pg://ci@db.internal/terrace\"\n    state = \"farm\"\n  }\n}\n";
    let expected = BackendSetting::Pg {
        url: "pg://ci@db.internal/terrace".into(),
        state: Some("farm".into()),
    };
    assert_eq!(read(text).unwrap(), Some(expected.clone()));
    // Errors elsewhere in the configuration do not stop a state command from finding it.
    assert_eq!(
        read(&format!("{text}\nservce \"x\" {{}}\n")).unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        load(&[("a.hcl", PG), ("main.hcl", text)]).backend,
        Some(expected)
    );
    assert_eq!(read(PG).unwrap(), None);
    assert_eq!(
        read("terrace {\n  backend \"local\" {\n    path = \"state/prod.json\"\n  }\n}\n").unwrap(),
        Some(BackendSetting::Local {
            path: Some("state/prod.json".into())
        })
    );
}

#[test]
fn what_cannot_be_a_backend_is_located() {
    let e = read(concat!(
        "variable \"u\" {}\n",
        "terrace {\n",
        "  backend \"pg\" {\n",
        "    url  = \"pg://ci:hunter2@db/terrace\"\n",
        "    path = \"x\"\n",
        "  }\n",
        "}\n",
        "terrace {\n",
        "  backend \"s3\" {}\n",
        "}\n",
    ))
    .unwrap_err();
    expect![[r#"
        terrace::config

          × 3 errors in the configuration

        Error: terrace::config::invalid_value

          × the backend URL holds a password, which would be committed with the configuration
           ╭─[main.hcl:4:12]
         3 │   backend "pg" {
         4 │     url  = "pg://ci:*******@db/terrace"
           ·            ──────────────┬─────────────
           ·                          ╰── remove the password from here
         5 │     path = "x"
           ╰────
          help: give the password in PGPASSWORD or ~/.pgpass, or put the whole URL in TERRACE_BACKEND

        Error: terrace::config::unknown_attribute

          × a "pg" backend has no attribute "path"
           ╭─[main.hcl:5:5]
         4 │     url  = "pg://ci:*******@db/terrace"
         5 │     path = "x"
           ·     ──┬─
           ·       ╰── not allowed here
         6 │   }
           ╰────
          help: attributes of a "pg" backend: url, state

        Error: terrace::config::duplicate

          × more than one backend
           ╭─[main.hcl:3:3]
         2 │ terrace {
         3 │   backend "pg" {
           ·   ──────┬─────
           ·         ╰── first backend
         4 │     url  = "pg://ci:*******@db/terrace"
           ╰────
            ╭─[main.hcl:9:3]
          8 │ terrace {
          9 │   backend "s3" {}
            ·   ──────┬─────
            ·         ╰── another backend
         10 │ }
            ╰────
          help: the state lives in one place: keep one backend block
    "#]].assert_eq(&e);
    let e = read("terrace {\n  backend \"pg\" {\n    url = \"pg://${var.u}@db/t\"\n  }\n}\n")
        .unwrap_err();
    expect![[r#"
        terrace::config

          × 1 error in the configuration

        Error: terrace::config::wrong_type

          × backend url must be a literal string
           ╭─[main.hcl:3:11]
         2 │   backend "pg" {
         3 │     url = "pg://${var.u}@db/t"
           ·           ──────────┬─────────
           ·                     ╰── not a literal string
         4 │   }
           ╰────
          help: the backend is read before variables exist; write the value itself in quotes, or set TERRACE_BACKEND
    "#]].assert_eq(&e);
}
