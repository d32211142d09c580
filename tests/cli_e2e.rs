//! CLI behaviour that needs the binary: hostile names, locking, confirmation, exit codes.

mod common;

use common::{pg_service, unique, Project};

#[test]
fn hostile_names_are_rejected_before_any_sql_runs() {
    for hostile in [
        "a'; DROP DATABASE x; --",
        "wp`x",
        "tenant\\\"q",
        "ｗｐ",
        "a b",
        "x\u{202e}y",
    ] {
        // The service points at a port where nothing listens: if terrace tried to run SQL,
        // the error would be a connection error, not the validation diagnostic.
        let hcl = format!(
            r#"
variable "pg_admin_password" {{
  type      = string
  sensitive = true
}}
service "pg" {{
  engine   = "postgres"
  endpoint = {{ address = "127.0.0.1", port = 1 }}
  admin    = {{ user = "terrace_admin", password = var.pg_admin_password }}
}}
database "evil" {{
  service = service.pg
  name    = "{hostile}"
}}
"#
        );
        let p = Project::new(&hcl);
        for cmd in [
            &["validate"][..],
            &["plan"][..],
            &["apply", "--auto-approve"][..],
        ] {
            let run = p.terrace(cmd).expect_code(1);
            assert!(
                run.stderr.contains("main.hcl:13:"),
                "{hostile:?} {cmd:?}: {}",
                run.stderr
            );
            assert!(!run.stderr.contains("cannot connect"), "{}", run.stderr);
        }
        assert!(!p.state_path().exists());
    }
}

#[test]
fn second_apply_is_refused_while_the_state_is_locked() {
    let a = unique("lk");
    let p = Project::new(&format!(
        "{}\ndatabase \"x\" {{\n  service = service.pg\n  name = \"{a}\"\n}}\n",
        pg_service()
    ));
    let backend = terrace_state::LocalBackend::new(p.state_path());
    let held = backend.lock("apply").expect("first lock");
    let run = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(run.stderr.contains("locked by"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("apply"), "{}", run.stderr);
    drop(held);
    // Nothing was created while locked; with the lock gone, plan sees work to do.
    p.plan().expect_code(2);
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let a = unique("na");
    let p = Project::new(&format!(
        "{}\ndatabase \"x\" {{\n  service = service.pg\n  name = \"{a}\"\n}}\n",
        pg_service()
    ));
    let run = p.terrace(&["apply"]).expect_code(1);
    assert!(run.stderr.contains("--auto-approve"), "{}", run.stderr);
    // The plan was shown, nothing was done.
    assert!(run.stdout.contains("Plan: 3 to add"), "{}", run.stdout);
    p.plan().expect_code(2);
}

#[test]
fn config_errors_point_at_file_line_and_column() {
    let p = Project::new(&format!(
        "{}\ndatabase \"x\" {{\n  service = service.pg\n  name = \"ok\"\n  conection_limit = 5\n}}\n",
        pg_service()
    ));
    let run = p.terrace(&["validate"]).expect_code(1);
    assert!(run.stderr.contains("main.hcl:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("connection_limit"),
        "did-you-mean missing: {}",
        run.stderr
    );
}

#[test]
fn graph_prints_dot_with_dependencies() {
    let p = Project::new(&format!(
        "{}\ndatabase \"x\" {{\n  service = service.pg\n  name = \"g1\"\n}}\n",
        pg_service()
    ));
    let run = p.terrace(&["graph"]).expect_code(0);
    assert!(
        run.stdout.starts_with("digraph terrace {"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains(r#""database.x.grant" -> "database.x";"#),
        "{}",
        run.stdout
    );
}

#[test]
fn help_lists_every_command() {
    let p = Project::new("");
    let run = p.terrace(&["--help"]).expect_code(0);
    for cmd in [
        "validate", "plan", "apply", "destroy", "import", "state", "graph",
    ] {
        assert!(run.stdout.contains(cmd), "{cmd}: {}", run.stdout);
    }
}

/// Runs terrace under a pseudo-terminal (util-linux `script`), as a person would.
fn on_a_terminal(dir: &std::path::Path, no_color: bool) -> String {
    let cmd = format!(
        "{} -C {} plan",
        env!("CARGO_BIN_EXE_terrace"),
        dir.display()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]).env_remove("NO_COLOR");
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let out = c.output().expect("script(1) from util-linux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_on_a_terminal_and_never_with_no_color() {
    let p = Project::new("variable \"x\" {\n  default = 1\n}\n");
    let tty = on_a_terminal(p.path(), false);
    assert!(tty.contains("\u{1b}[1mNo changes."), "{tty:?}");
    let plain = on_a_terminal(p.path(), true);
    assert!(
        plain.contains("No changes.") && !plain.contains('\u{1b}'),
        "{plain:?}"
    );
    // Not a terminal (stdout piped), NO_COLOR unset: no colour either.
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(p.path())
        .arg("plan")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let piped = String::from_utf8_lossy(&piped.stdout);
    assert!(
        piped.contains("No changes.") && !piped.contains('\u{1b}'),
        "{piped:?}"
    );
}

/// `terrace validate | head -0`: the reader is gone before terrace prints. Before, the
/// print panicked with a backtrace; now terrace ends as other tools do, by `SIGPIPE`.
#[test]
fn a_reader_that_goes_away_ends_terrace_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let p = Project::new("variable \"x\" {\n  default = 1\n}\n");
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("validate")
        .current_dir(p.path())
        .stdout(writer)
        .output()
        .expect("run terrace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
    assert_eq!(stderr, "");
}

/// A mistyped flag is an error (1), never the 2 that means "changes present" or
/// "drift" to CI; help and version are successes.
#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    for args in [
        &["drift", "--metrics-fil", "x"][..],
        &["plan", "--detailed-exitcode", "--tagret", "a.b"],
        &["no-such-command"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error:"), "{args:?}: {stderr}");
    }
    for args in [&["--help"][..], &["--version"], &["plan", "--help"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
}
