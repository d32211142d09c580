//! The example CI workflow's comment script (examples/ci/pr-comment.py), run against a
//! local fake of GitHub's comment API, posting parts the real binary rendered from a
//! saved plan — in an empty directory, with no configuration and no server.

use std::process::Command;

use serde_json::json;
use terrace_plan::{Action, Plan, ResourceChange};
use terrace_provider::{Address, ProviderKey};

/// A plan too long for one comment: 150 file updates with 40-line diffs.
fn long_plan() -> Plan {
    let changes = (0..150)
        .map(|i| {
            let text = |tag: &str| -> String {
                (0..40)
                    .map(|n| format!("setting_{n} = {i}{tag}\n"))
                    .collect()
            };
            let path = format!("/etc/app/{i:03}.conf");
            ResourceChange {
                address: Address::new(format!(r#"host.web.file["{path}"]"#)),
                type_name: "host_file".into(),
                provider: ProviderKey("host.web".into()),
                prior_provider: None,
                action: Action::Update,
                moves_data: false,
                deletes_data: false,
                keeps_object: false,
                before: serde_json::from_value(json!({"path": path, "content": text("")})).ok(),
                after: serde_json::from_value(json!({"path": path, "content": text(" # new")}))
                    .ok(),
                changed: vec!["content".into()],
                replace_because: vec![],
                generated: vec![],
                sensitive: Default::default(),
                prior_sensitive: Default::default(),
                byte_sizes: Default::default(),
                depends_on: vec![],
                note: None,
            }
        })
        .collect();
    Plan {
        changes,
        ..Plan::default()
    }
}

#[test]
fn the_comment_script_posts_and_updates_the_parts_terrace_renders() {
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("pr.plan");
    let saved = json!({
        "format_version": 1,
        "terrace_version": env!("CARGO_PKG_VERSION"),
        "lineage": null,
        "serial": null,
        "secrets_digest": "",
        "project": "shop",
        "plan": long_plan(),
    });
    std::fs::write(&plan_file, saved.to_string()).unwrap();
    let parts = dir.path().join("comment");
    std::fs::create_dir(&parts).unwrap();
    std::fs::write(parts.join("part-099.md"), "stale part of an older plan").unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(dir.path())
        .arg("show")
        .arg(&plan_file)
        .arg("--markdown-dir")
        .arg(&parts)
        .env("NO_COLOR", "1")
        .env_remove("TERRACE_PROJECT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let names: Vec<String> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.contains(&"part-099.md".to_string()), "{names:?}");
    assert!(names.len() > 1, "{names:?}");
    let first = std::fs::read_to_string(parts.join("part-001.md")).unwrap();
    assert!(
        first.starts_with(&format!(
            "<!-- terrace-plan: shop -->\n**terrace plan, part 1 of {}**",
            names.len()
        )),
        "{first}"
    );

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ci/test_pr_comment.py"
    );
    let run = Command::new("python3")
        .arg(script)
        .env("PARTS_DIR", &parts)
        .output()
        .expect("python3 runs the script's tests");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    // The test of terrace's own parts ran (it is skipped without PARTS_DIR).
    assert!(
        stderr.contains("test_posts_the_parts_terrace_rendered") && !stderr.contains("skipped"),
        "{stderr}"
    );
}

/// The GitLab job's note script (examples/ci/mr-note.py), against a local fake of
/// GitLab's merge-request notes API, posting parts the real binary rendered.
#[test]
fn the_merge_request_note_script_posts_and_updates_the_parts_terrace_renders() {
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("mr.plan");
    let saved = json!({
        "format_version": 1,
        "terrace_version": env!("CARGO_PKG_VERSION"),
        "lineage": null,
        "serial": null,
        "secrets_digest": "",
        "project": "shop",
        "plan": long_plan(),
    });
    std::fs::write(&plan_file, saved.to_string()).unwrap();
    let parts = dir.path().join("comment");
    let out = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(dir.path())
        .arg("show")
        .arg(&plan_file)
        .arg("--markdown-dir")
        .arg(&parts)
        .env("NO_COLOR", "1")
        .env_remove("TERRACE_PROJECT")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ci/test_mr_note.py");
    let run = Command::new("python3")
        .arg(script)
        .env("PARTS_DIR", &parts)
        .output()
        .expect("python3 runs the script's tests");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("test_posts_the_parts_terrace_rendered") && !stderr.contains("skipped"),
        "{stderr}"
    );
}
