//! Shared helpers: write HCL files into a temporary directory and load them.
#![allow(dead_code)]

use std::path::PathBuf;

use terrace_config::{load_dir, ConfigErrors, ErrorKind, Project, VarInputs};
use terrace_provider::{find_schema, ResourceSchema};

/// The resource schemas of the providers, as the binary passes them.
pub fn schemas(type_name: &str) -> Option<&'static ResourceSchema> {
    find_schema(terrace_provider_docker::SCHEMAS, type_name)
        .or_else(|| find_schema(terrace_provider_ssh::SCHEMAS, type_name))
        .or_else(|| find_schema(terrace_provider_redis::SCHEMAS, type_name))
}

/// A temporary configuration directory.
pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new(files: &[(&str, &str)]) -> Dir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Dir { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn load(&self, inputs: &VarInputs) -> Result<Project, ConfigErrors> {
        load_dir(self.dir.path(), inputs, &schemas)
    }
}

pub fn load(files: &[(&str, &str)]) -> Project {
    match Dir::new(files).load(&VarInputs::default()) {
        Ok(p) => p,
        Err(e) => panic!("unexpected errors:\n{}", render(&e)),
    }
}

pub fn load_err(files: &[(&str, &str)]) -> ConfigErrors {
    load_err_with(files, &VarInputs::default())
}

pub fn load_err_with(files: &[(&str, &str)], inputs: &VarInputs) -> ConfigErrors {
    match Dir::new(files).load(inputs) {
        Ok(p) => panic!("expected errors, got {p:#?}"),
        Err(e) => e,
    }
}

/// Renders a report as the CLI would, without colours.
pub fn render(e: &ConfigErrors) -> String {
    let mut out = String::new();
    miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(200)
        .render_report(&mut out, e)
        .unwrap();
    out
}

/// Asserts that the rendered report contains every fragment.
pub fn assert_report(e: &ConfigErrors, fragments: &[&str]) {
    let text = render(e);
    for f in fragments {
        assert!(text.contains(f), "report lacks {f:?}:\n{text}");
    }
}

pub const PG: &str = r#"
service "pg" {
  engine   = "postgres"
  endpoint = { address = "127.0.0.1", port = 5432 }
  admin    = { user = "terrace_admin", password = "adminpw" }
}
"#;

/// Loads files that must produce exactly one error of `kind`; returns the report.
pub fn single(files: &[(&str, &str)], kind: ErrorKind) -> ConfigErrors {
    let e = load_err(files);
    assert_eq!(e.len(), 1, "expected one error:\n{}", render(&e));
    assert_eq!(e.0[0].kind(), kind, "{}", render(&e));
    assert_report(&e, &[kind.code()]);
    e
}
