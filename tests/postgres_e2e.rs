//! End to end against the real local PostgreSQL: the terrace binary plans and applies,
//! and the assertions read the server's own catalogs and log in as the tenants.

mod common;

use common::{block_on, pg_admin, pg_service, unique, Project};
use expect_test::expect;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Row};

fn project_hcl(apps: &[(&str, i64)]) -> String {
    let map: Vec<String> = apps.iter().map(|(k, v)| format!("{k} = {v}")).collect();
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

async fn conn_limit(db: &str) -> Option<i32> {
    let pool = pg_admin().await;
    sqlx::query("SELECT datconnlimit FROM pg_database WHERE datname = $1")
        .bind(db)
        .fetch_optional(&pool)
        .await
        .unwrap()
        .map(|r| r.get::<i32, _>(0))
}

async fn login(user: &str, password: &str, db: &str) -> Result<(), String> {
    PgConnectOptions::new()
        .host("127.0.0.1")
        .port(5432)
        .username(user)
        .password(password)
        .database(db)
        .connect()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn addr(app: &str, suffix: &str) -> String {
    format!("tenant.app[\"{app}\"].database{suffix}")
}

#[test]
fn lifecycle_create_converge_update_delete() {
    let a = unique("pga");
    let b = unique("pgb");
    let p = Project::new(&project_hcl(&[(&a, 50), (&b, 30)]));

    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains(&format!("# {} will be created", addr(&a, ""))),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("(sensitive value) (generated during apply)"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 6 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );

    let applied = p.apply();
    assert!(
        applied
            .stdout
            .contains("Apply complete! Resources: 6 added, 0 changed, 0 destroyed."),
        "{}",
        applied.stdout
    );
    assert_eq!(block_on(conn_limit(&a)), Some(50));
    assert_eq!(block_on(conn_limit(&b)), Some(30));

    // Convergence: the second plan is empty.
    let again = p.plan().expect_code(0);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    // A changed connection limit is an in-place update.
    p.write(&project_hcl(&[(&a, 60), (&b, 30)]));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains("~ connection_limit = 50 -> 60"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(block_on(conn_limit(&a)), Some(60));
    p.plan().expect_code(0);

    // Removing a tenant destroys its database, role and grant.
    p.write(&project_hcl(&[(&a, 60)]));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains(&format!("# {} will be destroyed", addr(&b, ""))),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 0 to change, 3 to destroy."),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(block_on(conn_limit(&b)), None);
    p.plan().expect_code(0);

    // Cleanup through terrace itself.
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(block_on(conn_limit(&a)), None);
}

#[test]
fn tenants_log_in_to_their_own_database_only() {
    let a = unique("pgla");
    let b = unique("pglb");
    let p = Project::new(&project_hcl(&[(&a, 5), (&b, 5)]));
    p.apply();
    let pw_a = p.state_attrs(&addr(&a, ".user"))["password"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pw_a.len() >= 24, "generated password too short");
    block_on(login(&a, &pw_a, &a)).expect("tenant logs in to its own database");
    let err = block_on(login(&a, &pw_a, &b)).expect_err("must be refused on another tenant's db");
    assert!(err.contains("permission denied"), "{err}");
    assert!(block_on(login(&a, "wrong-password", &a)).is_err());
    // The generated password never shows in plan output.
    let plan = p.terrace(&["plan"]);
    assert!(!plan.all().contains(&pw_a));
    let json = p.terrace(&["plan", "--json"]);
    assert!(!json.all().contains(&pw_a));
    let show = p
        .terrace(&["state", "show", &addr(&a, ".user")])
        .expect_code(0);
    assert!(
        !show.stdout.contains(&pw_a) && show.stdout.contains("(sensitive value)"),
        "{}",
        show.stdout
    );
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn database_dropped_by_hand_is_drift_and_recreated() {
    let a = unique("pgd");
    let p = Project::new(&project_hcl(&[(&a, 7)]));
    p.apply();
    block_on(async {
        let pool = pg_admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{a}\" WITH (FORCE)"
        )))
        .execute(&pool)
        .await
        .unwrap();
    });
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains(&format!("# {} was deleted outside terrace", addr(&a, ""))),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout
            .contains(&format!("# {} will be created", addr(&a, ""))),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(block_on(conn_limit(&a)), Some(7));
    p.plan().expect_code(0);

    // A limit changed by hand is drift, and apply puts it back.
    block_on(async {
        let pool = pg_admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{a}\" CONNECTION LIMIT 99"
        )))
        .execute(&pool)
        .await
        .unwrap();
    });
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains("has changed outside terrace"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("~ connection_limit = 7 -> 99"),
        "{}",
        plan.stdout
    );
    assert!(
        plan.stdout.contains("~ connection_limit = 99 -> 7"),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(block_on(conn_limit(&a)), Some(7));
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn unmanaged_database_is_a_conflict_until_imported() {
    let a = unique("pgi");
    block_on(async {
        let pool = pg_admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{a}\"")))
            .execute(&pool)
            .await
            .unwrap();
    });
    let p = Project::new(&project_hcl(&[(&a, 5)]));
    // Conflicts block it: apply would refuse, so the plan fails.
    let plan = p.plan().expect_code(1);
    let db = addr(&a, "");
    assert!(plan.stdout.contains("Conflicts"), "{}", plan.stdout);
    assert!(
        plan.stdout.contains(&format!("terrace import '{db}' {a}")),
        "{}",
        plan.stdout
    );
    let refused = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(
        refused.stderr.contains("not managed by terrace"),
        "{}",
        refused.stderr
    );

    let wrong = p.terrace(&["import", &db, "some_other_db"]).expect_code(1);
    assert!(
        wrong.stderr.contains("is configured with ID"),
        "{}",
        wrong.stderr
    );
    assert!(!p.state_path().exists(), "nothing was imported");
    p.terrace(&["import", &db, &a]).expect_code(0);
    // Now only the role and grant are missing, plus the owner/limit to put right.
    let plan = p.plan().expect_code(2);
    assert!(!plan.stdout.contains("Conflicts"), "{}", plan.stdout);
    assert!(
        plan.stdout
            .contains(&format!("# {} will be updated in place", db)),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(block_on(conn_limit(&a)), Some(5));
    p.plan().expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn saved_plan_applies_exactly_or_is_refused_when_stale() {
    let a = unique("pgs");
    let p = Project::new(&project_hcl(&[(&a, 5)]));
    let planfile = p.path().join("tfplan.json");
    let planfile = planfile.to_str().unwrap();
    p.terrace(&["plan", "--out", planfile]).expect_code(0);
    let saved = std::fs::read_to_string(planfile).unwrap();
    assert!(!saved.contains(&std::env::var("TERRACE_VAR_pg_admin_password").unwrap()));

    // The configuration changes after the plan was saved: apply refuses.
    p.write(&project_hcl(&[(&a, 6)]));
    let stale = p.terrace(&["apply", planfile]).expect_code(1);
    assert!(
        stale.stderr.contains("saved plan is stale"),
        "{}",
        stale.stderr
    );
    assert_eq!(block_on(conn_limit(&a)), None, "nothing was applied");

    // Back to what was planned: the saved plan applies as shown.
    p.write(&project_hcl(&[(&a, 5)]));
    p.terrace(&["apply", planfile]).expect_code(0);
    assert_eq!(block_on(conn_limit(&a)), Some(5));
    // The state moved on: the same file is now stale.
    p.terrace(&["apply", planfile]).expect_code(1);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn a_failed_step_saves_progress_and_skips_dependents() {
    let good = unique("pgok");
    let bad = unique("pgbad");
    // Valid to terrace, refused by the server at apply time: "public" is a reserved role.
    let with_bad = |user: &str| {
        format!(
            "{}\ndatabase \"bad\" {{\n  service = service.pg\n  name = \"{bad}\"\n  user = \"{user}\"\n}}\n",
            project_hcl(&[(&good, 5)])
        )
    };
    let p = Project::new(&with_bad("public"));
    let run = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(run.stderr.contains("Apply failed"), "{}", run.all());
    assert!(
        run.stderr.contains("failed:  database.bad.user"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("skipped: database.bad\n"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("skipped: database.bad.grant"),
        "{}",
        run.all()
    );
    // The state is valid and truthful: the good tenant is recorded; of the bad one only
    // the failed user, as pending (a failed create may have left an object for the next
    // plan to adopt), and nothing that never started.
    let state = p.state();
    let recorded: Vec<(&str, bool)> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["address"].as_str().unwrap(), r["pending"] == true))
        .collect();
    assert!(
        recorded.contains(&(addr(&good, ".grant").as_str(), false)),
        "{recorded:?}"
    );
    let bad_ones: Vec<_> = recorded
        .iter()
        .filter(|(a, _)| a.starts_with("database.bad"))
        .collect();
    assert_eq!(bad_ones, [&("database.bad.user", true)], "{recorded:?}");
    assert_eq!(block_on(conn_limit(&good)), Some(5));
    assert_eq!(block_on(conn_limit(&bad)), None);

    // Fix the config: the next apply creates only what is missing, then converges.
    p.write(&with_bad(&bad));
    let run = p.apply();
    assert!(
        run.stdout.contains("3 added, 0 changed, 0 destroyed"),
        "{}",
        run.stdout
    );
    p.plan().expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

fn single_db_hcl(db: &str, user: &str, extra: &str) -> String {
    format!(
        "{}\ndatabase \"one\" {{\n  service = service.pg\n  name = \"{db}\"\n  user = \"{user}\"\n{extra}\n}}\n",
        pg_service()
    )
}

#[test]
fn replacing_a_role_that_owns_its_database_is_refused_at_plan_time() {
    let db = unique("pgrep");
    let p = Project::new(&single_db_hcl(&db, &db, ""));
    p.apply();
    let plan = p
        .terrace(&[
            "plan",
            "--detailed-exitcode",
            "--replace",
            "database.one.user",
        ])
        .expect_code(1);
    expect![[r#"
        terrace will perform the following actions:

          # database.one.grant must be replaced (it lives in what is replaced)
          # (it lives in database.one.user, which is replaced: the server drops it with it, and apply makes it again)
        -/+ sql_grant {
                # (4 unchanged attributes hidden)
            }

          # database.one.user must be replaced (requested)
        -/+ sql_user {
                name = "DB"
                # (4 unchanged attributes hidden)
            }

        Conflicts (apply refuses until each is resolved):

          ! database.one.user: PostgreSQL cannot drop role "DB": it owns database "DB", which stays (dropping what the role owns would drop the tables in it)
            hint: change the role in place instead (its password and connection limit change without a replacement), or give the database another owner first

        Plan: 2 to add, 0 to change, 2 to destroy.
        1 conflict(s) block this plan.
    "#]]
    .assert_eq(&plan.stdout.replace(&db, "DB"));
    let apply = p
        .terrace(&["apply", "--auto-approve", "--replace", "database.one.user"])
        .expect_code(1);
    assert!(
        apply.stderr.contains("nothing was changed"),
        "{}",
        apply.stderr
    );
    p.plan().expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn renaming_a_tenant_user_renames_the_role_in_place() {
    let db = unique("pgrn");
    let (u1, u2) = (format!("{db}_u1"), format!("{db}_u2"));
    let p = Project::new(&single_db_hcl(&db, &u1, ""));
    p.apply();
    let pw = p.state_attrs("database.one.user")["password"]
        .as_str()
        .unwrap()
        .to_string();
    p.write(&single_db_hcl(&db, &u2, ""));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("# database.one.user will be updated in place"),
        "{}",
        plan.stdout
    );
    p.apply();
    p.plan().expect_code(0);
    // Same password, new name, still the owner of its database.
    block_on(login(&u2, &pw, &db)).expect("renamed role logs in with its password");
    assert!(block_on(login(&u1, &pw, &db)).is_err());
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn a_subset_of_privileges_converges_in_one_apply() {
    let db = unique("pgpv");
    let p = Project::new(&single_db_hcl(
        &db,
        &db,
        "  privileges = [\"connect\", \"temp\"]",
    ));
    p.apply();
    let plan = p.plan().expect_code(0);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn saved_plan_is_refused_when_a_secret_changed_since() {
    let db = unique("pgsec");
    let hcl = format!(
        "{}\nvariable \"app_pw\" {{\n  type = string\n  sensitive = true\n}}\ndatabase \"one\" {{\n  service = service.pg\n  name = \"{db}\"\n  password = var.app_pw\n}}\n",
        pg_service()
    );
    let p = Project::new(&hcl);
    let planfile = p.path().join("plan.json");
    let planfile = planfile.to_str().unwrap();
    p.terrace(&["plan", "--var", "app_pw=FirstSecret1", "--out", planfile])
        .expect_code(0);
    let saved = std::fs::read_to_string(planfile).unwrap();
    assert!(!saved.contains("FirstSecret1"), "secret in saved plan");
    let refused = p
        .terrace(&["apply", "--var", "app_pw=OtherSecret2", planfile])
        .expect_code(1);
    assert!(
        refused.stderr.contains("saved plan is stale"),
        "{}",
        refused.stderr
    );
    assert!(!refused.all().contains("OtherSecret2"));
    p.terrace(&["apply", "--var", "app_pw=FirstSecret1", planfile])
        .expect_code(0);
    block_on(login(&db, "FirstSecret1", &db)).expect("the planned password was applied");
    p.terrace(&["destroy", "--auto-approve", "--var", "app_pw=FirstSecret1"])
        .expect_code(0);
}

#[test]
fn importing_a_user_warns_that_its_password_is_unknown() {
    let db = unique("pgiu");
    block_on(async {
        let pool = pg_admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE \"{db}\" LOGIN")))
            .execute(&pool)
            .await
            .unwrap();
    });
    let p = Project::new(&single_db_hcl(&db, &db, ""));
    // Conflicts block it: apply would refuse, so the plan fails.
    let plan = p.plan().expect_code(1);
    assert!(
        plan.stdout.contains("database.one.user: a database user"),
        "{}",
        plan.stdout
    );
    let run = p
        .terrace(&["import", "database.one.user", &db])
        .expect_code(0);
    assert!(
        run.stderr.contains("cannot read password back"),
        "{}",
        run.stderr
    );
    p.apply();
    // The plan never vouches for a password terrace does not know.
    let plan = p.plan().expect_code(0);
    assert!(
        plan.stdout.contains(&format!(
            "service.pg: passwords of {db} on postgres://terrace_admin@127.0.0.1:5432: terrace does not know them"
        )) && plan
            .stdout
            .contains("No changes among what could be verified"),
        "{}",
        plan.stdout
    );
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn an_unreachable_server_fails_by_name_while_the_others_are_applied_and_saved() {
    let db = unique("pgiso");
    let hcl = format!(
        r#"{}
service "down" {{
  engine   = "postgres"
  endpoint = {{ address = "127.0.0.1", port = 9 }}
  admin    = {{ user = "terrace_admin", password = var.pg_admin_password }}
}}
database "up" {{
  service = service.pg
  name    = "{db}"
}}
database "lost" {{
  service = service.down
  name    = "{db}_lost"
}}
"#,
        pg_service()
    );
    let p = Project::new(&hcl);
    let plan = p.terrace(&["plan"]).expect_code(1);
    assert!(
        plan.stdout.contains("# database.up will be created"),
        "{}",
        plan.stdout
    );
    assert!(!plan.stdout.contains("database.lost"), "{}", plan.stdout);
    assert!(
        plan.stderr.contains("service.down could not be reached"),
        "{}",
        plan.stderr
    );

    let run = p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(
        run.stdout.contains("Apply complete! Resources: 3 added"),
        "{}",
        run.all()
    );
    assert!(
        run.stderr.contains("service.down could not be reached"),
        "{}",
        run.stderr
    );
    assert_eq!(
        block_on(conn_limit(&db)),
        Some(-1),
        "the reachable server was changed"
    );
    assert!(
        p.state_attrs("database.up.grant").is_object(),
        "and its state saved"
    );

    // With the unreachable service gone from the configuration, everything converges.
    p.write(&format!(
        "{}\ndatabase \"up\" {{\n  service = service.pg\n  name    = \"{db}\"\n}}\n",
        pg_service()
    ));
    p.plan().expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn a_database_is_dumped_before_it_is_dropped_and_kept_when_the_dump_fails() {
    let db = unique("pgdump");
    let p = Project::new(&single_db_hcl(&db, &db, ""));
    p.apply();
    // Real data in the tenant's database.
    block_on(async {
        let conn = PgConnectOptions::new()
            .host("127.0.0.1")
            .port(5432)
            .username("terrace_admin")
            .password(&std::env::var("TERRACE_VAR_pg_admin_password").unwrap())
            .database(&db);
        let mut c = conn.connect().await.unwrap();
        sqlx::raw_sql("CREATE TABLE orders (id int); INSERT INTO orders VALUES (4242);")
            .execute(&mut c)
            .await
            .unwrap();
    });
    p.write(&pg_service());

    // Without the dump tool, the drop is refused and the data stays.
    let no_tools = p.terrace_env(&["apply", "--auto-approve"], &[("PATH", "/nonexistent")]);
    let no_tools = no_tools.expect_code(1);
    assert!(
        no_tools.stderr.contains("without a dump first"),
        "{}",
        no_tools.stderr
    );
    assert!(
        block_on(conn_limit(&db)).is_some(),
        "database was dropped without a dump"
    );
    assert!(
        p.state_attrs("database.one").is_object(),
        "and it is still in state"
    );

    let run = p.apply();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Dumped before dropping: "))
        .unwrap_or_else(|| panic!("no dump reported: {}", run.stdout));
    let path = line.trim_start_matches("Dumped before dropping: ");
    let dump = std::fs::read_to_string(path).unwrap();
    assert!(
        dump.contains("CREATE TABLE public.orders") && dump.contains("4242"),
        "{dump}"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(block_on(conn_limit(&db)), None, "dropped after the dump");
    assert!(!run
        .all()
        .contains(&std::env::var("TERRACE_VAR_pg_admin_password").unwrap()));
}

/// A run killed while the dump tool writes leaves a file named as partial, never one
/// that reads as a complete dump; the next run writes a whole one and only then drops.
#[test]
fn a_dump_cut_short_by_a_killed_run_is_never_named_like_a_complete_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = unique("pgcut");
    let p = Project::new(&single_db_hcl(&db, &db, ""));
    p.apply();
    p.write(&pg_service());
    // A dump tool that writes a little and then hangs, as a large dump would.
    let tools = tempfile::tempdir().unwrap();
    let fake = tools.path().join("pg_dump");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho '-- PostgreSQL database dump (partial)'\nexec sleep 30\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap()
    );
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(p.path())
        .args(["apply", "--auto-approve"])
        .env("PATH", &path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let backups = p.path().join(".terrace/backups");
    let names = || -> Vec<String> {
        std::fs::read_dir(&backups)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !names().iter().any(|n| n.ends_with(".sql.partial")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no dump started: {:?}",
            names()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    run.kill().unwrap();
    run.wait().unwrap();
    let left = names();
    assert!(
        left.iter().all(|n| n.ends_with(".sql.partial")),
        "a cut dump looks complete: {left:?}"
    );
    assert!(
        block_on(conn_limit(&db)).is_some(),
        "dropped without a dump"
    );

    // The real tool: a whole dump under the final name, then the drop.
    let run = p.apply();
    assert!(
        run.stdout.contains("Dumped before dropping: "),
        "{}",
        run.stdout
    );
    assert!(names().iter().any(|n| n.ends_with(".sql")), "{:?}", names());
    assert_eq!(block_on(conn_limit(&db)), None);
}

/// A killed apply recorded a user as pending; by the rerun a role of that name exists
/// whose password is not the one terrace generated (someone else's). The plan reports a
/// conflict instead of adopting it, and apply neither resets the stranger's password nor
/// touches anything else of theirs.
#[test]
fn a_pending_user_whose_name_someone_else_holds_is_not_taken_over() {
    let a = unique("pgown");
    let p = Project::new(&project_hcl(&[(&a, 5)]));
    p.apply();
    let mut state = p.state();
    for r in state["resources"].as_array_mut().unwrap() {
        if r["address"] == addr(&a, ".user") {
            r["pending"] = true.into();
        }
    }
    std::fs::write(p.state_path(), serde_json::to_string(&state).unwrap()).unwrap();
    block_on(async {
        let pool = pg_admin().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER ROLE \"{a}\" PASSWORD 'Stranger123'"
        )))
        .execute(&pool)
        .await
        .unwrap();
    });

    let list = p.terrace(&["state", "list"]).expect_code(0);
    assert_eq!(
        list.stdout.lines().count(),
        3,
        "addresses only: {}",
        list.stdout
    );
    assert_eq!(
        list.stderr.trim(),
        format!(
            "note: an apply stopped while creating 1 of these; the next plan looks for them, \
             adopting what that apply made and creating what is missing: {}",
            addr(&a, ".user")
        )
    );
    // Conflicts are changes to resolve: --detailed-exitcode says 2.
    // Conflicts block it: apply would refuse, so the plan fails.
    let plan = p.plan().expect_code(1);
    assert!(
        plan.stdout.contains(&format!(
            "! {}: a database user named \"{a}\" already exists on service.pg, and it is not \
             the one an earlier apply stopped while creating: its password is not the one \
             terrace generated for it.",
            addr(&a, ".user")
        )),
        "{}",
        plan.all()
    );
    let refused = p.terrace(&["apply", "--auto-approve"]);
    assert_ne!(refused.code, 0, "{}", refused.all());
    block_on(login(&a, "Stranger123", &a)).expect("the stranger's password still works");
    assert_eq!(p.state()["resources"].as_array().unwrap().len(), 3);
}
