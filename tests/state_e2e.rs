//! State safety, end to end through the real binary: the lock holds whatever path names
//! the state, a vanished or foreign state is refused rather than taken as empty, unknown
//! resource types are errors, a finished command leaves no held-looking lock, a stuck
//! lock can be removed by ID, and `plan` says so when an apply holds the lock.
//!
//! Other holders of the lock are played by util-linux `flock(1)`, which holds a real
//! `flock` on the lock file, like a terrace running elsewhere.

mod common;

use common::{pg_service, unique, Holder, Project};
use serde_json::json;

/// A project with a service and no resources: every command runs without touching a
/// server.
fn empty_project() -> Project {
    Project::new(&pg_service())
}

/// `text` with miette's line wrapping undone: words joined by single spaces, without
/// the `|` gutter. Long words may still be split where miette broke them (at a `-` or a
/// `/`), so assertions only look for plain phrases.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// A state document with `resources`, lineage `lineage`.
fn state_doc(lineage: &str, resources: serde_json::Value) -> String {
    json!({
        "version": 1,
        "lineage": lineage,
        "serial": 3,
        "terrace_version": "0.1.0",
        "resources": resources,
    })
    .to_string()
}

fn db_resource(address: &str, type_name: &str) -> serde_json::Value {
    json!({
        "address": address,
        "type": type_name,
        "provider": "service.pg",
        "attributes": {"name": unique("stx")},
        "sensitive_attributes": [],
        "dependencies": [],
    })
}

fn foreign_apply(id: &str) -> serde_json::Value {
    json!({"who": "ops@elsewhere", "pid": 4242, "operation": "apply",
           "since": "2026-01-01T00:00:00Z", "id": id})
}

#[test]
fn a_symlinked_state_path_takes_the_same_lock_and_writes_through_the_link() {
    let p = empty_project();
    std::fs::write(
        p.state_path(),
        state_doc(
            "8d3c1f2a-0000-4000-8000-000000000001",
            json!([
                db_resource("database.a", "sql_database"),
                db_resource("database.b", "sql_database")
            ]),
        ),
    )
    .unwrap();
    let link = p.path().join("linked.json");
    std::os::unix::fs::symlink(p.state_path(), &link).unwrap();
    let link_arg = link.to_str().unwrap();

    // Another writer holds the real state's lock: the link must not get around it.
    let lock = p.path().join("terrace.state.json.lock");
    let Some(holder) = Holder::new(&lock, Some(foreign_apply("l1"))) else {
        eprintln!("flock(1) not installed; skipping");
        return;
    };
    let run = p
        .terrace(&["--state", link_arg, "state", "rm", "database.a"])
        .expect_code(1);
    assert!(
        flat(&run.stderr).contains("state is locked by ops@elsewhere"),
        "{}",
        run.all()
    );
    drop(holder);

    // Once free, a write through the link updates the file it points to.
    p.terrace(&["--state", link_arg, "state", "rm", "database.a"])
        .expect_code(0);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let list = p.terrace(&["state", "list"]).expect_code(0);
    assert_eq!(list.stdout, "database.b\n");
    assert!(!p.path().join("linked.json.lock").exists());
}

#[test]
fn a_missing_state_with_a_backup_beside_it_is_refused() {
    let p = empty_project();
    std::fs::write(
        p.path().join("terrace.state.json.backup"),
        state_doc("8d3c1f2a-0000-4000-8000-000000000002", json!([])),
    )
    .unwrap();
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["destroy", "--auto-approve"],
    ] {
        let run = p.terrace(args).expect_code(1);
        assert!(
            flat(&run.stderr).contains("does not exist, but") && run.stderr.contains(".backup"),
            "{args:?}: {}",
            run.all()
        );
    }
    assert!(!p.state_path().exists(), "no empty state was written");
}

#[test]
fn a_state_of_another_lineage_than_the_project_last_used_is_refused() {
    let p = empty_project();
    let mine = "8d3c1f2a-0000-4000-8000-00000000000a";
    std::fs::write(
        p.state_path(),
        state_doc(mine, json!([db_resource("database.a", "sql_database")])),
    )
    .unwrap();
    // A command that holds the lock records the lineage as this project's.
    p.terrace(&["state", "rm", "database.a"]).expect_code(0);
    let recorded = std::fs::read_to_string(p.path().join(".terrace/state-lineage")).unwrap();
    assert_eq!(recorded.trim(), mine);

    // Another project's state, named by mistake: refused by every command that plans.
    let other = p.path().join("other.json");
    std::fs::write(
        &other,
        state_doc(
            "8d3c1f2a-0000-4000-8000-00000000000b",
            json!([db_resource("database.x", "sql_database")]),
        ),
    )
    .unwrap();
    let other_arg = other.to_str().unwrap();
    for args in [&["plan"][..], &["destroy", "--auto-approve"]] {
        let mut all = vec!["--state", other_arg];
        all.extend_from_slice(args);
        let run = p.terrace(&all).expect_code(1);
        assert!(
            flat(&run.stderr).contains("this project last used lineage")
                && flat(&run.stderr).contains("point --state at this project's state file"),
            "{args:?}: {}",
            run.all()
        );
    }
    // No state at all where this project's state was: refused, not planned as empty.
    let run = p
        .terrace(&[
            "--state",
            p.path().join("typo.json").to_str().unwrap(),
            "plan",
        ])
        .expect_code(1);
    assert!(
        flat(&run.stderr).contains("refusing to start from an empty state"),
        "{}",
        run.all()
    );

    // The project's own state is fine.
    p.terrace(&["plan"]).expect_code(0);
    // Moving the project to the other state on purpose: delete the record.
    std::fs::remove_file(p.path().join(".terrace/state-lineage")).unwrap();
    p.terrace(&["--state", other_arg, "state", "list"])
        .expect_code(0);
}

#[test]
fn a_resource_type_this_terrace_does_not_know_is_an_error() {
    let p = empty_project();
    std::fs::write(
        p.state_path(),
        state_doc(
            "8d3c1f2a-0000-4000-8000-000000000003",
            json!([db_resource("table.t", "sql_table")]),
        ),
    )
    .unwrap();
    for args in [
        &["plan"][..],
        &["apply", "--auto-approve"],
        &["destroy", "--auto-approve"],
    ] {
        let run = p.terrace(args).expect_code(1);
        assert!(
            flat(&run.stderr).contains("table.t with resource type \"sql_table\"")
                && flat(&run.stderr).contains("terrace state rm table.t"),
            "{args:?}: {}",
            run.all()
        );
    }
}

#[test]
fn a_finished_command_leaves_the_lock_free_looking_and_no_temporary_files() {
    let p = empty_project();
    std::fs::write(
        p.state_path(),
        state_doc(
            "8d3c1f2a-0000-4000-8000-000000000004",
            json!([db_resource("database.a", "sql_database")]),
        ),
    )
    .unwrap();
    // What a writer killed in the middle of a write leaves behind.
    let stale = p.path().join(".terrace.state.json.0f0f0f.tmp");
    std::fs::write(&stale, "old state with secrets").unwrap();
    p.terrace(&["state", "rm", "database.a"]).expect_code(0);
    assert!(
        !stale.exists(),
        "the killed writer's temporary file is removed"
    );
    let lock = std::fs::read(p.path().join("terrace.state.json.lock")).unwrap();
    assert!(lock.is_empty(), "{}", String::from_utf8_lossy(&lock));
}

#[test]
fn force_unlock_removes_a_stuck_lock_naming_its_holder() {
    let p = empty_project();
    std::fs::write(
        p.state_path(),
        state_doc(
            "8d3c1f2a-0000-4000-8000-000000000005",
            json!([db_resource("database.a", "sql_database")]),
        ),
    )
    .unwrap();
    let lock = p.path().join("terrace.state.json.lock");
    let Some(_holder) = Holder::new(&lock, Some(foreign_apply("5eed"))) else {
        eprintln!("flock(1) not installed; skipping");
        return;
    };
    let run = p.terrace(&["state", "rm", "database.a"]).expect_code(1);
    assert!(
        flat(&run.stderr).contains("terrace force-unlock 5eed"),
        "{}",
        run.all()
    );
    let wrong = p.terrace(&["force-unlock", "nope"]).expect_code(1);
    assert!(flat(&wrong.stderr).contains("not nope"), "{}", wrong.all());

    let run = p
        .terrace(&["force-unlock", "--force", "5eed"])
        .expect_code(0);
    assert!(
        run.stdout
            .contains("Removed the lock held by ops@elsewhere (pid 4242, apply)"),
        "{}",
        run.all()
    );
    p.terrace(&["state", "rm", "database.a"]).expect_code(0);
}

#[test]
fn plan_while_an_apply_holds_the_lock_says_so() {
    let p = empty_project();
    std::fs::write(
        p.state_path(),
        state_doc("8d3c1f2a-0000-4000-8000-000000000006", json!([])),
    )
    .unwrap();
    let lock = p.path().join("terrace.state.json.lock");
    let Some(holder) = Holder::new(&lock, Some(foreign_apply("9a"))) else {
        eprintln!("flock(1) not installed; skipping");
        return;
    };
    let run = p.terrace(&["plan"]).expect_code(1);
    assert!(
        flat(&run.stderr).contains("cannot plan now: apply is running (pid 4242, ops@elsewhere"),
        "{}",
        run.all()
    );
    drop(holder);
    p.terrace(&["plan"]).expect_code(0);
}
