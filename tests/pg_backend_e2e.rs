//! The PostgreSQL state backend end to end: plan/apply/drift/destroy with the state in
//! PostgreSQL (`TERRACE_BACKEND`), a second process refused naming the holder of the
//! lease, a killed holder's lease expiring so the next run proceeds, history and
//! restore, and `state migrate` local → pg → local keeping lineage, serial and content.
//!
//! The other lease holder is this test binary run again with `CHILD_ENV` set
//! (`lease_holder_child`), holding the lease until it is killed.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{block_on, flat, pg_admin, pg_service, pg_tenant_hcl, unique, Project};
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;

const CHILD_ENV: &str = "TERRACE_PG_TEST_LEASE_CHILD";

fn pg_url() -> String {
    std::env::var("TERRACE_TEST_PG_URL").expect("`source target/services.env` first")
}

fn backend_url(state: &str, extra: &str) -> String {
    format!("{}?state={state}{extra}", pg_url())
}

/// Not a test by itself: the body of the child process, which holds the lease.
#[test]
fn lease_holder_child() {
    common::hold_lease_if_child(CHILD_ENV);
}

#[test]
fn plan_apply_drift_and_destroy_with_the_state_in_postgres() {
    let db = unique("pgst");
    let p = Project::new(&pg_tenant_hcl(&db));
    let url = backend_url(&db, "");
    let env = [("TERRACE_BACKEND", url.as_str())];
    let planfile = p.path().join("plan.tfplan");
    let planfile = planfile.to_string_lossy();
    p.terrace_env(&["plan", "--detailed-exitcode", "--out", &planfile], &env)
        .expect_code(2);
    p.terrace_env(&["apply", "--auto-approve", &planfile], &env)
        .expect_code(0);
    assert!(!p.state_path().exists(), "no local state file is written");
    p.terrace_env(&["plan", "--detailed-exitcode"], &env)
        .expect_code(0);
    p.terrace_env(&["drift"], &env).expect_code(0);
    let list = p.terrace_env(&["state", "list"], &env).expect_code(0);
    assert!(list.stdout.contains("tenant.t.database"), "{}", list.stdout);

    let history = p.terrace_env(&["state", "history"], &env).expect_code(0);
    assert!(history.stdout.contains("serial"), "{}", history.stdout);
    // A password in --backend is refused (it would show in the process list).
    let refused = p.terrace(&["--backend", &url, "state", "list"]);
    assert_ne!(refused.code, 0);
    assert!(
        flat(&refused.stderr).contains("process list"),
        "{}",
        refused.stderr
    );

    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
    // Restore the version before the destroy: the state has the resources again, and
    // a plan wants to create them again (they are gone).
    let history = p.terrace_env(&["state", "history"], &env).expect_code(0);
    let newest: u64 = history
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("serial"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("a serial in the history");
    let restored = p
        .terrace_env(&["state", "restore", &newest.to_string()], &env)
        .expect_code(0);
    assert!(
        restored.stdout.contains("Restored version"),
        "{}",
        restored.stdout
    );
    let list = p.terrace_env(&["state", "list"], &env).expect_code(0);
    assert!(list.stdout.contains("tenant.t.database"), "{}", list.stdout);
    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
}

#[test]
fn a_second_process_is_refused_and_a_killed_holders_lease_expires() {
    let db = unique("pglease");
    let p = Project::new(&pg_tenant_hcl(&db));
    let url = backend_url(&db, "&lease=3");
    let env = [("TERRACE_BACKEND", url.as_str())];
    let mut holder = common::spawn_lease_holder("lease_holder_child", CHILD_ENV, &url);

    let refused = p.terrace_env(&["apply", "--auto-approve"], &env);
    assert_ne!(refused.code, 0);
    let msg = flat(&refused.stderr);
    assert!(msg.contains(&format!("pid {}", holder.id())), "{msg}");
    assert!(
        msg.contains("is locked by") && msg.contains("lease"),
        "{msg}"
    );
    // Still held after longer than the lease: the live holder renews it.
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(p.terrace_env(&["apply", "--auto-approve"], &env).code, 0);

    // kill -9: no chance to release; the lease expires by itself.
    let killed = Instant::now();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let mut last = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let run = p.terrace_env(&["apply", "--auto-approve"], &env);
        if run.code == 0 {
            last = None;
            break;
        }
        assert!(flat(&run.stderr).contains("is locked by"), "{}", run.stderr);
        last = Some(run.stderr);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(last.is_none(), "the lease never expired: {last:?}");
    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
}

#[test]
fn migrate_local_to_pg_and_back_keeps_lineage_serial_and_content() {
    let db = unique("pgmig");
    let p = Project::new(&pg_tenant_hcl(&db));
    p.apply();
    let local = std::fs::read_to_string(p.state_path()).unwrap();
    let url = backend_url(&db, "");
    let env = [("TERRACE_BACKEND", url.as_str())];

    // `--to` with a password is refused; from the environment it is fine.
    let refused = p.terrace(&["state", "migrate", "--to", &url]);
    assert_ne!(refused.code, 0);
    let out = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(p.path())
        .args(["state", "migrate", "--to"])
        .arg(url.replace("terrace_admin:terrace-dev-pg@", "terrace_admin@"))
        .env("PGPASSWORD", "terrace-dev-pg")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.terrace_env(&["plan", "--detailed-exitcode"], &env)
        .expect_code(0);

    // Back to a new local file: the same bytes.
    let back = p.path().join("back.json");
    let back_s = back.to_string_lossy().into_owned();
    p.terrace_env(&["state", "migrate", "--to", &back_s], &env)
        .expect_code(0);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), local);

    // Another lineage at the destination is refused.
    let other = Project::new(&pg_service());
    std::fs::write(
        other.state_path(),
        local.replace(
            &p.state()["lineage"].as_str().unwrap().to_string(),
            "00000000-0000-4000-8000-000000000000",
        ),
    )
    .unwrap();
    let clash = p.terrace_env(
        &[
            "state",
            "migrate",
            "--to",
            &other.state_path().to_string_lossy(),
        ],
        &env,
    );
    assert_ne!(clash.code, 0);
    assert!(
        flat(&clash.stderr).contains("holds another state"),
        "{}",
        clash.stderr
    );

    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

/// Journal rows of state `name`.
fn journal_rows(name: &str) -> i64 {
    block_on(async {
        let pool = pg_admin().await;
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM terrace_state_journal WHERE name = $1")
                .bind(name)
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
        pool.close().await;
        n
    })
}

#[test]
fn an_apply_killed_mid_way_converges_on_the_next_run() {
    let prefix = unique("pgcrash");
    let dbs: Vec<String> = (0..4).map(|i| format!("{prefix}_{i}")).collect();
    let mut hcl_text = pg_service();
    for (i, db) in dbs.iter().enumerate() {
        hcl_text.push_str(&format!(
            "tenant \"t{i}\" {{\n  database {{\n    service = service.pg\n    name = \"{db}\"\n  }}\n}}\n"
        ));
    }
    let p = Project::new(&hcl_text);
    let url = backend_url(&prefix, "&lease=3");
    let env = [("TERRACE_BACKEND", url.as_str())];

    let mut child = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(p.path())
        .args(["apply", "--auto-approve", "--parallelism", "1"])
        .env("TERRACE_BACKEND", &url)
        .env(
            "TERRACE_VAR_pg_admin_password",
            std::env::var("TERRACE_VAR_pg_admin_password").unwrap(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the journal holds the intents and at least one outcome.
    let start = Instant::now();
    while journal_rows(&prefix) < 14 && start.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    let rows = journal_rows(&prefix);
    assert!(
        !status.success() && rows >= 14,
        "the apply was not killed mid-way ({status}, {rows} journal rows)"
    );

    // The rerun waits out the dead run's lease, then converges.
    let start = Instant::now();
    loop {
        let run = p.terrace_env(&["apply", "--auto-approve"], &env);
        if run.code == 0 {
            break;
        }
        assert!(flat(&run.stderr).contains("is locked by"), "{}", run.stderr);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "lease never expired"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    p.terrace_env(&["plan", "--detailed-exitcode"], &env)
        .expect_code(0);
    assert_eq!(journal_rows(&prefix), 0, "the journal was folded in");

    // Every generated password in the state logs in.
    let state = terrace_state::Backend::parse(&url, "unused")
        .unwrap()
        .load()
        .unwrap()
        .unwrap();
    let users: Vec<_> = state
        .resources
        .iter()
        .filter(|r| r.type_name == "sql_user")
        .collect();
    assert_eq!(users.len(), dbs.len());
    for u in users {
        let name = u.attributes["name"].as_str().unwrap().to_string();
        let pw = u.attributes["password"].as_str().unwrap().to_string();
        block_on(async {
            PgConnectOptions::new()
                .host("127.0.0.1")
                .port(5432)
                .username(&name)
                .password(&pw)
                .database(&name)
                .connect()
                .await
                .map(|_| ())
        })
        .unwrap_or_else(|e| panic!("{name} cannot log in: {e}"));
    }
    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
}

#[test]
fn force_unlock_removes_a_dead_holders_lease_naming_it() {
    let name = unique("pgforce");
    let p = Project::new(&pg_service());
    let url = backend_url(&name, "&lease=600");
    let env = [("TERRACE_BACKEND", url.as_str())];
    let mut holder = common::spawn_lease_holder("lease_holder_child", CHILD_ENV, &url);
    let pid = holder.id();
    let refused = flat(&p.terrace_env(&["state", "list"], &env).stderr);
    let refused = if refused.contains("is locked by") {
        refused
    } else {
        flat(&p.terrace_env(&["apply", "--auto-approve"], &env).stderr)
    };
    let id = refused
        .split("terrace force-unlock ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_hexdigit()).next())
        .unwrap_or_else(|| panic!("no lock ID in: {refused}"))
        .to_string();
    // Alive on this machine: refused.
    let alive = p.terrace_env(&["force-unlock", &id], &env);
    assert_ne!(alive.code, 0);
    assert!(
        flat(&alive.stderr).contains("still running"),
        "{}",
        alive.stderr
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    let wrong = p.terrace_env(&["force-unlock", "0123abcd"], &env);
    assert_ne!(wrong.code, 0);
    assert!(
        flat(&wrong.stderr).contains("nothing was removed"),
        "{}",
        wrong.stderr
    );
    let removed = p
        .terrace_env(&["force-unlock", "--force", &id], &env)
        .expect_code(0);
    assert!(
        removed.stdout.contains(&format!("pid {pid}, apply")) && removed.stdout.contains(&id),
        "{}",
        removed.stdout
    );
    // The next run proceeds at once, without waiting for the 10-minute lease.
    p.terrace_env(&["apply", "--auto-approve"], &env)
        .expect_code(0);
}

#[test]
fn a_read_only_role_can_plan_but_not_apply() {
    let db = unique("pgro");
    let p = Project::new(&pg_tenant_hcl(&db));
    let url = backend_url(&db, "");
    let env = [("TERRACE_BACKEND", url.as_str())];
    p.terrace_env(&["apply", "--auto-approve"], &env)
        .expect_code(0);
    let role = unique("terrace_ro");
    block_on(async {
        let pool = pg_admin().await;
        for sql in [
            format!("CREATE ROLE {role} LOGIN PASSWORD 'ro-pass-1'"),
            format!(
                "GRANT SELECT ON terrace_states, terrace_state_history, \
                 terrace_state_journal, terrace_state_locks TO {role}"
            ),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
    });
    let ro_url = format!("pg://{role}:ro-pass-1@127.0.0.1:5432/postgres?state={db}");
    let ro = [("TERRACE_BACKEND", ro_url.as_str())];
    let plan = p.terrace_env(&["plan", "--detailed-exitcode"], &ro);
    let apply = p.terrace_env(&["apply", "--auto-approve"], &ro);
    block_on(async {
        let pool = pg_admin().await;
        for sql in [
            format!(
                "REVOKE ALL ON terrace_states, terrace_state_history, \
                 terrace_state_journal, terrace_state_locks FROM {role}"
            ),
            format!("DROP ROLE {role}"),
        ] {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
        }
    });
    let plan = plan.expect_code(0);
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
    assert_ne!(apply.code, 0);
    assert!(
        flat(&apply.stderr).contains("permission denied"),
        "{}",
        apply.stderr
    );
    assert!(!apply.all().contains("ro-pass-1"));
    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
}

/// The configuration names the backend (`terrace { backend "pg" { ... } }`); the password
/// comes from PGPASSWORD. Every command, including those that only read the state, uses
/// it; `--state` still overrides it for one command.
#[test]
fn the_backend_block_in_the_configuration_is_used_by_every_command() {
    let db = unique("pghcl");
    let full = pg_url();
    let (scheme, rest) = full.split_once("://").unwrap();
    let (userinfo, host) = rest.split_once('@').unwrap();
    let (user, password) = userinfo.split_once(':').unwrap();
    let hcl_text = format!(
        "{}\nterrace {{\n  backend \"pg\" {{\n    url   = \"{scheme}://{user}@{host}\"\n    state = \"{db}\"\n  }}\n}}\n",
        pg_tenant_hcl(&db)
    );
    let p = Project::new(&hcl_text);
    let env = [("PGPASSWORD", password)];
    p.terrace_env(&["apply", "--auto-approve"], &env)
        .expect_code(0);
    assert!(!p.state_path().exists(), "no local state file is written");
    let list = p.terrace_env(&["state", "list"], &env).expect_code(0);
    assert!(list.stdout.contains("tenant.t.database"), "{}", list.stdout);
    p.terrace_env(&["plan", "--detailed-exitcode"], &env)
        .expect_code(0);
    // The same state, named explicitly through TERRACE_BACKEND, agrees.
    let url = backend_url(&db, "");
    let list2 = p
        .terrace_env(&["state", "list"], &[("TERRACE_BACKEND", url.as_str())])
        .expect_code(0);
    assert_eq!(list.stdout, list2.stdout);
    // --state overrides the block: that file is empty.
    let local = p.path().join("other.json");
    let empty = p
        .terrace_env(
            &["--state", &local.to_string_lossy(), "state", "list"],
            &env,
        )
        .expect_code(0);
    assert_eq!(empty.stdout, "");
    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
}

/// Every command ends its state connections with PostgreSQL's `Terminate` message: the
/// server counts a connection merely dropped as an abandoned session (and a pooler in
/// between may log it), which a monitored database reports as client trouble.
#[test]
fn commands_end_their_state_sessions_instead_of_abandoning_them() {
    // A database of its own holds the state, so that its session counts are this test's.
    let tenant = unique("pgquit");
    let db = format!("{tenant}_state");
    let sql = |q: String| {
        block_on(async {
            let pool = pg_admin().await;
            let row: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(q))
                .fetch_optional(&pool)
                .await
                .unwrap();
            pool.close().await;
            row
        })
    };
    sql(format!("CREATE DATABASE {db}"));
    let url = pg_url().replace("/postgres", &format!("/{db}?state=quit"));
    let env = [("TERRACE_BACKEND", url.as_str())];
    let p = Project::new(&pg_tenant_hcl(&tenant));
    p.apply_plan_destroy(&env);

    let deadline = Instant::now() + Duration::from_secs(10);
    let connected = format!("SELECT COUNT(*)::text FROM pg_stat_activity WHERE datname = '{db}'");
    while sql(connected.clone()).as_deref() != Some("0") {
        assert!(Instant::now() < deadline, "terrace's sessions outlived it");
        std::thread::sleep(Duration::from_millis(50));
    }
    let counts = sql(format!(
        "SELECT sessions::text || ' ' || sessions_abandoned::text FROM pg_stat_database \
         WHERE datname = '{db}'"
    ))
    .unwrap();
    sql(format!("DROP DATABASE {db} WITH (FORCE)"));
    let (sessions, abandoned) = counts.split_once(' ').unwrap();
    assert_ne!(sessions, "0", "no session was counted");
    assert_eq!(
        abandoned, "0",
        "{abandoned} of {sessions} session(s) were abandoned"
    );
}
