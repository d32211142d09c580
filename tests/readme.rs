//! The README's HCL snippets are what users copy first: each ```hcl block must pass
//! `terrace validate` as written, with no variable values (validate's placeholders), and
//! be in `terrace fmt`'s layout, so a snippet that does not parse, references something
//! it does not declare or would be reformatted fails CI.

use std::process::Command;

/// Every ```hcl block of `text`, with the line its body starts on.
fn hcl_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```hcl" => current = Some((i + 2, String::new())),
            Some(_) if line.trim_start() == "```" => out.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn every_readme_hcl_snippet_validates_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let blocks = hcl_blocks(&readme);
    assert!(blocks.len() >= 5, "found only {} hcl blocks", blocks.len());
    let mut failures = Vec::new();
    for (line, body) in &blocks {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("main.hcl"), body).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_terrace"));
        cmd.arg("-C")
            .arg(dir.path())
            .arg("validate")
            .env("NO_COLOR", "1");
        // No values from the caller's environment: the snippet must stand alone.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TERRACE_VAR_")) {
            cmd.env_remove(k);
        }
        let out = cmd.output().expect("run terrace");
        // And in the canonical layout, so that a copied snippet is left alone by fmt.
        let fmt = Command::new(env!("CARGO_BIN_EXE_terrace"))
            .arg("-C")
            .arg(dir.path())
            .args(["fmt", "--check", "--diff"])
            .output()
            .expect("run terrace");
        if !fmt.status.success() {
            failures.push(format!(
                "README.md:{line}: not formatted:\n{}{}",
                String::from_utf8_lossy(&fmt.stdout),
                String::from_utf8_lossy(&fmt.stderr)
            ));
        }
        if !out.status.success() {
            failures.push(format!(
                "README.md:{line}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn validate_needs_no_values_for_required_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.hcl"),
        r#"
variable "pw" {
  type      = string
  sensitive = true
}
variable "apps" {
  type = map(number)
}
service "pg" {
  engine   = "postgres"
  endpoint = { address = "127.0.0.1", port = 5432 }
  admin    = { user = "terrace_admin", password = var.pw }
}
tenant "app" {
  for_each = var.apps
  database {
    service          = service.pg
    name             = each.key
    connection_limit = each.value
  }
}
"#,
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_terrace"))
            .arg("-C")
            .arg(dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("TERRACE_VAR_pw")
            .env_remove("TERRACE_VAR_apps")
            .output()
            .unwrap()
    };
    let out = run(&["validate"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("checked with a placeholder of their type: apps, pw."),
        "{stdout}"
    );
    // plan still needs the values.
    let out = run(&["plan"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no value for variable"));
}
