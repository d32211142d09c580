//! The language core over in-memory sources: `load` takes (path, text) pairs and an
//! environment and reads nothing itself. Each case is data (configuration files, the
//! files of the environment, variable inputs) and the whole expected outcome: the
//! lowered resources, or the rendered errors.
mod common;

use std::path::{Path, PathBuf};

use common::{render, schemas};
use expect_test::{expect, Expect};
use terrace_config::{load, MemoryEnv, VarInputs};

/// One case: configuration files under `/cfg`, files of the environment, a home
/// directory and `--var-file`s.
struct Case<'a> {
    files: &'a [(&'a str, &'a str)],
    env: &'a [(&'a str, &'a str)],
    home: Option<&'a str>,
    var_files: &'a [&'a str],
}

impl Case<'_> {
    /// Loads the case and renders the outcome: one line per resource (address, type,
    /// attributes, sensitive attributes) and host, or the error report.
    fn check(&self, expected: Expect) {
        let dir = Path::new("/cfg");
        let files = self
            .files
            .iter()
            .map(|(n, t)| (dir.join(n), t.to_string()))
            .collect();
        let env = MemoryEnv {
            files: self
                .env
                .iter()
                .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                .collect(),
            home: self.home.map(PathBuf::from),
        };
        let inputs = VarInputs {
            var_files: self.var_files.iter().map(PathBuf::from).collect(),
            ..VarInputs::default()
        };
        let out = match load(dir, files, &inputs, &env, &schemas) {
            Ok(p) => {
                let mut out = String::new();
                for (name, h) in &p.hosts {
                    out.push_str(&format!(
                        "host {name}: {}@{} key {:?}\n",
                        h.user, h.address, h.identity_file
                    ));
                }
                for r in &p.resources {
                    out.push_str(&format!(
                        "{} {} {} sensitive {:?}\n",
                        r.address,
                        r.type_name,
                        serde_json::to_string(&r.attrs).unwrap(),
                        r.sensitive_attrs
                    ));
                }
                out
            }
            Err(e) => render(&e),
        };
        expected.assert_eq(&out);
    }
}

const WEB1: &str =
    "host \"web1\" {\n  address       = \"10.0.0.10\"\n  identity_file = \"~/.ssh/id\"\n}\n";

#[test]
fn templates_var_files_and_home_come_from_the_environment() {
    Case {
        files: &[
            ("hosts.hcl", WEB1),
            (
                "main.hcl",
                "variable \"port\" { type = number }\nfile \"conf\" {\n  host   = host.web1\n  path   = \"/etc/app.conf\"\n  source = \"t/app.conf\"\n}\nfirewall_rule \"app\" {\n  host       = host.web1\n  port       = var.port\n  allow_from = [\"10.0.0.0/24\"]\n}\n",
            ),
        ],
        env: &[
            ("/cfg/t/app.conf", "port=${var.port}\n"),
            ("/cfg/prod.vars", "port = 8080\n"),
        ],
        home: Some("/home/ops"),
        var_files: &["/cfg/prod.vars"],
    }
    .check(expect![[r#"
        host web1: root@10.0.0.10 key Some("/home/ops/.ssh/id")
        file.conf host_file {"content":"port=8080\n","path":"/etc/app.conf"} sensitive {}
        firewall_rule.app host_firewall_rule {"allow_from":["10.0.0.0/24"],"port":8080} sensitive {}
    "#]]);
}

#[test]
fn a_missing_template_and_var_file_are_located_errors() {
    Case {
        files: &[
            ("hosts.hcl", WEB1),
            (
                "main.hcl",
                "file \"conf\" {\n  host   = host.web1\n  path   = \"/etc/app.conf\"\n  source = \"t/missing.conf\"\n}\n",
            ),
        ],
        env: &[],
        home: None,
        var_files: &["/cfg/absent.vars"],
    }
    .check(expect![[r#"
        terrace::config

          × 3 errors in the configuration

        Error: terrace::config::invalid_value

          × cannot expand "~" in "identity_file": HOME is not set
           ╭─[/cfg/hosts.hcl:3:19]
         2 │   address       = "10.0.0.10"
         3 │   identity_file = "~/.ssh/id"
           ·                   ─────┬─────
           ·                        ╰── needs $HOME
         4 │ }
           ╰────
          help: write an absolute path, or set HOME, for `identity_file`

        Error: terrace::config::io

          × cannot read template "t/missing.conf": No such file or directory
           ╭─[/cfg/main.hcl:4:12]
         3 │   path   = "/etc/app.conf"
         4 │   source = "t/missing.conf"
           ·            ────────┬───────
           ·                    ╰── no such file
         5 │ }
           ╰────
          help: `source` is a template file, relative to the configuration directory (/cfg); create /cfg/t/missing.conf or fix the path

        Error: terrace::config::io

          × cannot read /cfg/absent.vars: No such file or directory
          help: check the --var-file path
    "#]]);
}

#[test]
fn no_files() {
    Case {
        files: &[],
        env: &[],
        home: None,
        var_files: &[],
    }
    .check(expect![[r#"
        terrace::config

          × 1 error in the configuration

        Error: terrace::config::io

          × no *.hcl files in /cfg
          help: terrace loads every *.hcl file of the configuration directory
    "#]]);
}
