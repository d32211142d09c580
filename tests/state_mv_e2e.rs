//! `terrace state mv` against the real local PostgreSQL: renaming a tenant's key keeps
//! its database when the state is moved along.

mod common;

use common::{pg_service, unique, Project};

fn project_hcl(key: &str, db: &str) -> String {
    format!(
        r#"{}
tenant "app" {{
  for_each = toset(["{key}"])
  database {{
    service = service.pg
    name    = "{db}"
  }}
}}
"#,
        pg_service()
    )
}

#[test]
fn moving_a_tenant_key_in_the_state_keeps_its_database() {
    let db = unique("mv");
    let p = Project::new(&project_hcl("old", &db));
    p.apply();
    let password = p.state_attrs("tenant.app[\"old\"].database.user")["password"].clone();

    // The key changes: without a move, the old objects would be destroyed and the
    // new ones conflict with them.
    p.write(&project_hcl("new", &db));
    let before = p.plan();
    assert_ne!(before.code, 0, "{}", before.stdout);

    let dry = p
        .terrace(&[
            "state",
            "mv",
            "--dry-run",
            "tenant.app[\"old\"]",
            "tenant.app[\"new\"]",
        ])
        .expect_code(0);
    assert!(
        dry.stdout
            .contains("would move tenant.app[\"old\"].database -> tenant.app[\"new\"].database\n"),
        "{}",
        dry.stdout
    );
    assert!(p.state().to_string().contains("tenant.app[\\\"old\\\"]"));

    let mv = p
        .terrace(&["state", "mv", "tenant.app[\"old\"]", "tenant.app[\"new\"]"])
        .expect_code(0);
    assert!(mv.stdout.contains("Moved 3 resource(s)"), "{}", mv.stdout);
    let state = p.state();
    let grant = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "tenant.app[\"new\"].database.grant")
        .expect("grant moved");
    assert!(
        grant["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.as_str().unwrap().starts_with("tenant.app[\"new\"]")),
        "{grant}"
    );
    assert_eq!(
        p.state_attrs("tenant.app[\"new\"].database.user")["password"],
        password
    );
    p.plan().expect_code(0);

    // Nothing at OLD any more; a taken destination is refused.
    let gone = p
        .terrace(&["state", "mv", "tenant.app[\"old\"]", "tenant.app[\"x\"]"])
        .expect_code(1);
    assert!(gone.stderr.contains("not in the state"), "{}", gone.stderr);
    let taken = p
        .terrace(&[
            "state",
            "mv",
            "tenant.app[\"new\"].database.user",
            "tenant.app[\"new\"].database",
        ])
        .expect_code(1);
    assert!(
        taken.stderr.contains("already in the state"),
        "{}",
        taken.stderr
    );

    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn a_moved_block_shows_a_move_and_the_apply_records_it() {
    let db = unique("mvb");
    let p = Project::new(&project_hcl("old", &db));
    p.apply();
    let password = p.state_attrs("tenant.app[\"old\"].database.user")["password"].clone();

    p.write(&format!(
        "{}\nmoved {{\n  from = tenant.app[\"old\"]\n  to   = tenant.app[\"new\"]\n}}\n",
        project_hcl("new", &db)
    ));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("# tenant.app[\"old\"].database has moved to tenant.app[\"new\"].database"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 0 to change, 0 to destroy, 3 to move."),
        "{}",
        plan.stdout
    );
    let apply = p.apply();
    assert!(
        apply.stdout.contains("Moved 3 object(s) in the state."),
        "{}",
        apply.stdout
    );
    assert_eq!(
        p.state_attrs("tenant.app[\"new\"].database.user")["password"],
        password
    );
    // Done: the moved block now finds nothing to move.
    p.plan().expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}
