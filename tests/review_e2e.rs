//! Pull-request review end to end: a plan saved against the real PostgreSQL renders the
//! same markdown and JSON from a copy of the project on which no server can be reached,
//! and a partial run says so in its JSON and markdown.

mod common;

use std::path::Path;

use common::{pg_service, unique, Project};

fn project_hcl(apps: &[&str], limit: i64) -> String {
    let map: Vec<String> = apps.iter().map(|k| format!("{k} = {limit}")).collect();
    format!(
        r#"{}
variable "apps" {{
  default = {{ {} }}
}}
tenant "app" {{
  for_each = var.apps
  database {{
    service          = service.pg
    name             = each.key
    connection_limit = each.value
  }}
}}
"#,
        pg_service(),
        map.join(", ")
    )
}

fn addr(app: &str) -> String {
    format!("tenant.app[\"{app}\"].database")
}

/// Copies the files of `from` (not subdirectories) into `to`.
fn copy_files(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn a_saved_plan_renders_the_same_on_a_copy_with_no_server_reachable() {
    let (a, b, c) = (unique("rva"), unique("rvb"), unique("rvc"));
    let p = Project::new(&project_hcl(&[&a, &b], 5));
    p.apply();
    let password = p.state_attrs(&format!("{}.user", addr(&a)))["password"]
        .as_str()
        .unwrap()
        .to_string();

    // One to add (with its user and grant), one to change, one dropped (with its user
    // and grant).
    p.write(&project_hcl(&[&a, &c], 6));
    let plan_file = p.path().join("pr.plan");
    let plan_file = plan_file.to_str().unwrap();
    let planned = p
        .terrace(&[
            "plan",
            "--out",
            plan_file,
            "--markdown",
            "--project",
            "shop",
            "--detailed-exitcode",
        ])
        .expect_code(2);
    let markdown = planned.stdout.clone();
    assert!(
        markdown.starts_with(
            "<!-- terrace-plan: shop -->\n**Plan: 3 to add, 1 to change, 3 to destroy.**\n"
        ),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!(
            "**1 with data dropped**\n- database `{}`",
            addr(&b)
        )),
        "{markdown}"
    );
    assert!(markdown.find("### ⚠️ Warnings") < markdown.find("### Changes"));
    let json = p.terrace(&["plan", "--json"]).expect_code(0).stdout;
    let text = p.terrace(&["plan"]).expect_code(0).stdout;

    // Elsewhere: the project files and the plan, with the server made unreachable and
    // its password unknown. `show` reads only the plan file.
    let elsewhere = tempfile::tempdir().unwrap();
    copy_files(p.path(), elsewhere.path());
    let hcl = std::fs::read_to_string(elsewhere.path().join("main.hcl")).unwrap();
    std::fs::write(
        elsewhere.path().join("main.hcl"),
        hcl.replace("port = 5432", "port = 1"),
    )
    .unwrap();
    let copied_plan = elsewhere.path().join("pr.plan");
    let show = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
            .arg("-C")
            .arg(elsewhere.path())
            .arg("show")
            .arg(&copied_plan)
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("TERRACE_VAR_pg_admin_password")
            .env_remove("TERRACE_PROJECT")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        show(&["--markdown"]),
        markdown,
        "the project name is recorded in the plan"
    );
    assert_eq!(show(&["--json"]), json);
    let shown_text = show(&[]);
    assert!(text.starts_with(&shown_text), "{text}\n---\n{shown_text}");

    // The same parts as files, for a bot to post.
    let parts = elsewhere.path().join("comment");
    let parts_arg = parts.to_str().unwrap();
    show(&["--markdown-dir", parts_arg]);
    let written = std::fs::read_to_string(parts.join("part-001.md")).unwrap();
    assert_eq!(written, markdown);
    assert!(!parts.join("part-002.md").exists());

    for out in [&markdown, &json, &shown_text] {
        assert!(!out.contains(&password), "a password was printed");
    }
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["complete"], true);
    assert_eq!(doc["summary"]["has_destroy"], true);
    assert_eq!(doc["summary"]["drops_data"], true);
    assert_eq!(doc["summary"]["has_drift"], false);

    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn a_plan_with_an_unreachable_server_is_marked_incomplete_in_json_and_markdown() {
    let db = unique("rvdown");
    let secret = format!("{}-Secret", unique("pw"));
    let hcl = format!(
        r#"
variable "down_password" {{
  type      = string
  sensitive = true
}}
service "down" {{
  engine   = "postgres"
  endpoint = {{ address = "127.0.0.1", port = 1 }}
  admin    = {{ user = "{secret}", password = var.down_password }}
}}
database "lost" {{
  service = service.down
  name    = "{db}"
}}
"#
    );
    let p = Project::new(&hcl);
    let env = [("TERRACE_VAR_down_password", secret.as_str())];
    let run = p.terrace_env(&["plan", "--json"], &env).expect_code(1);
    assert!(!run.all().contains(&secret), "{}", run.all());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["complete"], false, "{doc:#}");
    assert_eq!(doc["errors"][0]["provider"], "service.down", "{doc:#}");
    assert!(
        doc["errors"][0]["message"].as_str().unwrap().len() > 10,
        "{doc:#}"
    );
    let not_planned: Vec<&str> = doc["not_planned"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(not_planned.contains(&"database.lost"), "{doc:#}");

    let run = p.terrace_env(&["plan", "--markdown"], &env).expect_code(1);
    assert!(!run.all().contains(&secret), "{}", run.all());
    assert!(
        run.stdout.contains("could not be planned") || run.stdout.contains("could not be (see"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("- `service.down` could not be reached: "),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("- not planned: `database.lost`"),
        "{}",
        run.stdout
    );
}
