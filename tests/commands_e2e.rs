//! `terrace version`, `completions` and `graph --format`: no server needed.

use std::process::Command;

use expect_test::expect;

fn terrace(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run terrace");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn version_names_the_binary_and_format_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = terrace(dir.path(), &["version"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with(&format!("terrace {}\n", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let (code, out, _) = terrace(dir.path(), &["version", "--json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["terrace"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["state_format"], "1");
}

#[test]
fn completion_scripts_name_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = terrace(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for cmd in ["validate", "plan", "apply", "graph", "completions"] {
            assert!(out.contains(cmd), "{shell} lacks {cmd}");
        }
        assert!(out.contains("target"), "{shell} lacks --target");
    }
    // The bash script is valid bash.
    let (_, script, _) = terrace(dir.path(), &["completions", "bash"]);
    let path = dir.path().join("terrace.bash");
    std::fs::write(&path, script).unwrap();
    let status = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(status.success());
    // A usage error is an error (1), not the 2 of "changes present".
    let (code, _, err) = terrace(dir.path(), &["completions", "tcsh"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn graph_prints_dot_or_mermaid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.hcl"),
        r#"
variable "pw" { sensitive = true }
service "pg" {
  engine   = "postgres"
  endpoint = { address = "127.0.0.1", port = 5432 }
  admin    = { user = "terrace_admin", password = var.pw }
}
tenant "app" {
  for_each = toset(["a"])
  database {
    service = service.pg
    name    = each.key
  }
}
"#,
    )
    .unwrap();
    let args = ["graph", "--format", "mermaid", "--var", "pw=x"];
    let (code, out, err) = terrace(dir.path(), &args);
    assert_eq!(code, 0, "{err}");
    expect![[r#"
        flowchart RL
          n0["tenant.app[#quot;a#quot;].database"]
          n1["tenant.app[#quot;a#quot;].database.grant"]
          n2["tenant.app[#quot;a#quot;].database.user"]
          n0 --> n2
          n1 --> n0
          n1 --> n2
    "#]]
    .assert_eq(&out);
    let (code, dot, _) = terrace(dir.path(), &["graph", "--var", "pw=x"]);
    assert_eq!(code, 0);
    assert!(dot.starts_with("digraph terrace {"), "{dot}");
    let (code, _, err) = terrace(dir.path(), &["graph", "--format", "svg", "--var", "pw=x"]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn fmt_checks_shows_and_rewrites_keeping_comments() {
    let dir = tempfile::tempdir().unwrap();
    let messy = "# Keep me.\nnetwork   \"farm\"   {\n    name = \"farm\"  # and me\n}\n";
    let path = dir.path().join("main.hcl");
    std::fs::write(&path, messy).unwrap();
    std::fs::write(dir.path().join("ok.hcl"), "volume \"v\" {}\n").unwrap();

    let (code, out, err) = terrace(dir.path(), &["fmt", "--check"]);
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "main.hcl\n");
    assert!(err.contains("1 file(s) are not formatted"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        messy,
        "--check writes nothing"
    );

    let (code, out, _) = terrace(dir.path(), &["fmt", "--check", "--diff"]);
    assert_eq!(code, 3);
    expect![[r#"
        main.hcl
        --- a/main.hcl
        +++ b/main.hcl
        @@ -1,4 +1,4 @@
         # Keep me.
        -network   "farm"   {
        -    name = "farm"  # and me
        +network "farm" {
        +  name = "farm"  # and me
         }
    "#]]
    .assert_eq(&out);

    let (code, out, err) = terrace(dir.path(), &["fmt"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "main.hcl\n");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# Keep me.\nnetwork \"farm\" {\n  name = \"farm\"  # and me\n}\n"
    );
    let (code, out, _) = terrace(dir.path(), &["fmt", "--check"]);
    assert_eq!((code, out.as_str()), (0, ""));

    // A file that does not parse is an error naming it, and is left alone.
    std::fs::write(&path, "network \"x\" { a = 1  b = 2 }\n").unwrap();
    let (code, _, err) = terrace(dir.path(), &["fmt"]);
    assert_eq!(code, 1);
    assert!(err.contains("main.hcl: cannot format"), "{err}");
}
