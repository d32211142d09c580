//! `--target` and `--replace` end to end against the real local PostgreSQL.

mod common;

use common::{block_on, pg_admin, pg_service, unique, Project};
use sqlx::Row;

fn project_hcl(apps: &[&str]) -> String {
    let keys: Vec<String> = apps.iter().map(|k| format!("\"{k}\"")).collect();
    format!(
        r#"{}
tenant "app" {{
  for_each = toset([{}])
  database {{
    service = service.pg
    name    = each.key
  }}
}}
"#,
        pg_service(),
        keys.join(", ")
    )
}

async fn exists(db: &str) -> bool {
    let pool = pg_admin().await;
    sqlx::query("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(db)
        .fetch_one(&pool)
        .await
        .unwrap()
        .get::<i64, _>(0)
        == 1
}

fn addr(app: &str, suffix: &str) -> String {
    format!("tenant.app[\"{app}\"].database{suffix}")
}

#[test]
fn target_applies_only_the_target_and_its_dependencies_and_replace_is_requested() {
    let a = unique("tga");
    let b = unique("tgb");
    let p = Project::new(&project_hcl(&[&a, &b]));

    // The grant depends on the database and the user: the three of `a`, none of `b`.
    let grant = addr(&a, ".grant");
    let plan = p.terrace(&["plan", "--target", &grant]).expect_code(0);
    assert!(plan.stdout.contains("Plan: 3 to add"), "{}", plan.stdout);
    assert!(!plan.stdout.contains(&b), "{}", plan.stdout);
    assert!(
        plan.stderr.contains("resource targeting is in effect"),
        "{}",
        plan.stderr
    );

    let apply = p
        .terrace(&[
            "apply",
            "--auto-approve",
            "--target",
            &format!("tenant.app[\"{a}\"]"),
        ])
        .expect_code(0);
    assert!(apply.stdout.contains("3 added"), "{}", apply.stdout);
    // The summary says how long the apply took.
    assert!(
        apply.stdout.contains("0 destroyed. Took "),
        "{}",
        apply.stdout
    );
    assert!(block_on(exists(&a)));
    assert!(!block_on(exists(&b)), "b was not targeted");

    // The rest is still pending.
    let rest = p.plan().expect_code(2);
    assert!(
        rest.stdout
            .contains("Plan: 3 to add, 0 to change, 0 to destroy"),
        "{}",
        rest.stdout
    );
    p.apply();
    p.plan().expect_code(0);

    // An unknown target is an error, not an empty plan.
    let unknown = p
        .terrace(&["plan", "--target", "tenant.nope"])
        .expect_code(1);
    assert!(
        unknown.stderr.contains("--target tenant.nope"),
        "{}",
        unknown.stderr
    );

    // --replace: an unchanged grant is replaced, saying it was requested.
    let replace = p
        .terrace(&["apply", "--auto-approve", "--replace", &grant])
        .expect_code(0);
    assert!(
        replace
            .stdout
            .contains(&format!("# {grant} must be replaced (requested)")),
        "{}",
        replace.stdout
    );
    assert!(
        replace.stdout.contains("1 added, 0 changed, 1 destroyed"),
        "{}",
        replace.stdout
    );
    p.plan().expect_code(0);

    // A saved plan records the focus and applies it exactly.
    let planfile = p.path().join("replace.plan");
    let planfile = planfile.to_str().unwrap();
    p.terrace(&["plan", "--replace", &grant, "--out", planfile])
        .expect_code(0);
    let applied = p.terrace(&["apply", planfile]).expect_code(0);
    assert!(
        applied.stdout.contains("1 added, 0 changed, 1 destroyed"),
        "{}",
        applied.stdout
    );
    p.terrace(&["apply", planfile, "--target", &grant])
        .expect_code(1);

    let destroyed = p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    assert!(
        destroyed
            .stdout
            .contains("Destroy complete! Resources: 6 destroyed."),
        "{}",
        destroyed.stdout
    );
    assert!(!block_on(exists(&a)));
}
