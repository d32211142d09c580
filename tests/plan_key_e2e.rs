//! The saved-plan key across checkouts, with the state in PostgreSQL: a plan saved in one
//! copy of the project applies from another copy given the same key
//! (`TERRACE_PLAN_KEY`, `TERRACE_PLAN_KEY_FILE`, or derived from the state key), and is
//! refused, naming the variables, with no key or another key, changing nothing. The key
//! never shows in output or in the plan file.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::{block_on, pg_admin, pg_service, unique, Project};

const KEY_1: &str = "q9Qy0mS5xJm6Yl1p0Wc0w3l2c3R1dmZ4eWF6YmNkZWY=";
const KEY_2: &str = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGw=";

fn hcl(db: &str) -> String {
    format!(
        "{}\ntenant \"t\" {{\n  database {{\n    service = service.pg\n    name = \"{db}\"\n  }}\n}}\n",
        pg_service()
    )
}

fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

fn backend_url(state: &str) -> String {
    let url = std::env::var("TERRACE_TEST_PG_URL").expect("`source target/services.env` first");
    format!("{url}?state={state}")
}

fn database_exists(name: &str) -> bool {
    block_on(async {
        let pool = pg_admin().await;
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n == 1
    })
}

/// A second checkout of `p`: the same configuration, none of its `.terrace/`.
fn checkout_of(hcl_text: &str, planfile: &std::path::Path) -> (Project, String) {
    let q = Project::new(hcl_text);
    let copy = q.path().join("pr.plan");
    std::fs::copy(planfile, &copy).unwrap();
    (q, copy.to_string_lossy().into_owned())
}

fn assert_no_key_in(text: &str) {
    for key in [KEY_1, KEY_2] {
        assert!(!text.contains(key), "a key leaked: {text}");
    }
}

#[test]
fn a_saved_plan_applies_on_another_checkout_with_the_same_plan_key_only() {
    let db = unique("pkey");
    let text = hcl(&db);
    let url = backend_url(&db);
    let a = Project::new(&text);
    let planfile = a.path().join("pr.plan");
    let plan_arg = planfile.to_string_lossy().into_owned();

    // Without a key, the plan says its key is this checkout's own.
    let own = a
        .terrace_env(
            &["plan", "--detailed-exitcode", "--out", &plan_arg],
            &[("TERRACE_BACKEND", &url)],
        )
        .expect_code(2);
    assert!(
        flat(&own.stdout).contains("set TERRACE_PLAN_KEY in both"),
        "{}",
        own.stdout
    );

    let made = a
        .terrace_env(
            &["plan", "--detailed-exitcode", "--out", &plan_arg],
            &[("TERRACE_BACKEND", &url), ("TERRACE_PLAN_KEY", KEY_1)],
        )
        .expect_code(2);
    assert!(!made.stdout.contains("in both"), "{}", made.stdout);
    let saved = std::fs::read_to_string(&planfile).unwrap();
    assert_no_key_in(&saved);
    let saved: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved["plan_key_from"], "TERRACE_PLAN_KEY");
    let key_id = saved["plan_key"].as_str().unwrap().to_string();

    let (b, copy) = checkout_of(&text, &planfile);
    // No key on the other checkout.
    let none = b.terrace_env(&["apply", &copy], &[("TERRACE_BACKEND", &url)]);
    assert_ne!(none.code, 0);
    let msg = flat(&none.stderr);
    assert!(
        msg.contains(&format!(
            "saved with plan key {key_id} (from TERRACE_PLAN_KEY)"
        )) && msg.contains("no plan key is configured here")
            && msg.contains("nothing was changed")
            && msg.contains("TERRACE_PLAN_KEY_FILE"),
        "{msg}"
    );
    // Another key.
    let other = b.terrace_env(
        &["apply", &copy],
        &[("TERRACE_BACKEND", &url), ("TERRACE_PLAN_KEY", KEY_2)],
    );
    assert_ne!(other.code, 0);
    let msg = flat(&other.stderr);
    assert!(
        msg.contains(&format!("saved with plan key {key_id}"))
            && msg.contains("but the plan key here is")
            && msg.contains("(from TERRACE_PLAN_KEY)"),
        "{msg}"
    );
    assert_no_key_in(&other.all());
    assert!(!database_exists(&db), "nothing was created");
    let list = b
        .terrace_env(&["state", "list"], &[("TERRACE_BACKEND", &url)])
        .expect_code(0);
    assert_eq!(list.stdout, "", "no state was written");

    // The right key from a file: refused while others may read it, then applied.
    let key_file = b.path().join("plan.key");
    std::fs::write(&key_file, format!("{KEY_1}\n")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key_env = key_file.to_string_lossy().into_owned();
    let env = [
        ("TERRACE_BACKEND", url.as_str()),
        ("TERRACE_PLAN_KEY_FILE", key_env.as_str()),
    ];
    let open = b.terrace_env(&["apply", &copy], &env);
    assert_ne!(open.code, 0);
    assert!(
        flat(&open.stderr).contains("(from TERRACE_PLAN_KEY_FILE) has mode 644"),
        "{}",
        open.stderr
    );
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let applied = b.terrace_env(&["apply", &copy], &env).expect_code(0);
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );
    assert_no_key_in(&applied.all());
    assert!(database_exists(&db));

    b.terrace_env(&["destroy", "--auto-approve"], &[("TERRACE_BACKEND", &url)])
        .expect_code(0);
}

#[test]
fn with_state_encryption_the_plan_key_is_derived_from_the_state_key() {
    let db = unique("pkeyenc");
    let text = hcl(&db);
    let url = backend_url(&db);
    let state_key = "c3RhdGUta2V5LWZvci10aGUtcGxhbi1rZXktdGVzdHM=";
    let env = [
        ("TERRACE_BACKEND", url.as_str()),
        ("TERRACE_STATE_KEY", state_key),
    ];
    let a = Project::new(&text);
    let planfile = a.path().join("pr.plan");
    let made = a
        .terrace_env(
            &[
                "plan",
                "--detailed-exitcode",
                "--out",
                &planfile.to_string_lossy(),
            ],
            &env,
        )
        .expect_code(2);
    assert!(!made.stdout.contains("in both"), "{}", made.stdout);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&planfile).unwrap()).unwrap();
    assert_eq!(saved["plan_key_from"], "the state key");

    let (b, copy) = checkout_of(&text, &planfile);
    // An explicit plan key takes precedence over the derived one: here, another key.
    let mut explicit = env.to_vec();
    explicit.push(("TERRACE_PLAN_KEY", KEY_1));
    let other = b.terrace_env(&["apply", &copy], &explicit);
    assert_ne!(other.code, 0);
    let msg = flat(&other.stderr);
    assert!(
        msg.contains("(from the state key)") && msg.contains("(from TERRACE_PLAN_KEY)"),
        "{msg}"
    );
    assert!(!database_exists(&db));
    // The same state key alone: applied.
    b.terrace_env(&["apply", &copy], &env).expect_code(0);
    assert!(database_exists(&db));
    b.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
}
