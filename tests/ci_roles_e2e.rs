//! The CI setup of `docs/postgres-roles.md`, for real: its SQL (run as written, with
//! unique names) creates a reading and a writing role; the reader plans with `--out`
//! (nothing written: the state's serial unchanged, no lease row), the writer applies the
//! plan file from another checkout (same `TERRACE_PLAN_KEY`), and the reader's apply is
//! refused with a permission error before anything changes.

mod common;

use common::{block_on, pg_admin, pg_service, unique, Project};

fn hcl(dbs: &[&str]) -> String {
    let mut text = pg_service();
    for (i, db) in dbs.iter().enumerate() {
        text.push_str(&format!(
            "tenant \"t{i}\" {{\n  database {{\n    service = service.pg\n    name = \"{db}\"\n  }}\n}}\n"
        ));
    }
    text
}

fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `n`th (from 0) ```sql block of the document.
fn docs_sql(n: usize) -> String {
    let doc = include_str!("../docs/postgres-roles.md");
    let block = doc.split("```sql\n").nth(n + 1).expect("an sql block");
    block[..block.find("```").expect("its end")].to_string()
}

fn admin_sql(statements: &[String]) {
    block_on(async {
        let pool = pg_admin().await;
        for sql in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        pool.close().await;
    });
}

/// (serial, lease rows) of state `name` in `schema`, read as the admin.
fn stored(schema: &str, name: &str) -> (i64, i64) {
    block_on(async {
        let pool = pg_admin().await;
        let serial: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(max(serial), 0) FROM {schema}.terrace_states WHERE name = $1"
        )))
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap();
        let locks: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {schema}.terrace_state_locks WHERE name = $1"
        )))
        .bind(name)
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        (serial, locks)
    })
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

/// Removes what the test made, also when it fails half-way.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let id = &self.0;
        block_on(async {
            let pool = pg_admin().await;
            for sql in [
                format!("DROP DATABASE IF EXISTS {id}_a"),
                format!("DROP DATABASE IF EXISTS {id}_b"),
                format!("DROP ROLE IF EXISTS {id}_a"),
                format!("DROP ROLE IF EXISTS {id}_b"),
                format!("DROP SCHEMA IF EXISTS {id}_store CASCADE"),
                format!("DROP OWNED BY {id}_plan, {id}_apply"),
                format!("DROP ROLE IF EXISTS {id}_plan"),
                format!("DROP ROLE IF EXISTS {id}_apply"),
            ] {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await;
            }
            pool.close().await;
        });
    }
}

#[test]
fn a_read_only_role_plans_and_a_writing_role_applies_the_saved_plan() {
    let id = unique("ci");
    let _cleanup = Cleanup(id.clone());
    let (schema, reader, writer) = (
        format!("{id}_store"),
        format!("{id}_plan"),
        format!("{id}_apply"),
    );
    let sql = docs_sql(0)
        .replace("state_store", &schema)
        .replace("ci_plan", &reader)
        .replace("ci_apply", &writer)
        .replace("DATABASE infra", "DATABASE postgres");
    admin_sql(&[
        sql,
        format!("ALTER ROLE {reader} PASSWORD 'reader-pw-7'"),
        format!("ALTER ROLE {writer} PASSWORD 'writer-pw-7'"),
    ]);

    let (db1, db2) = (format!("{id}_a"), format!("{id}_b"));
    let state = format!("{id}_state");
    let url = |role: &str| format!("pg://{role}@127.0.0.1:5432/postgres?state={state}");
    let (reader_url, writer_url) = (url(&reader), url(&writer));
    let plan_key = "9KWaHtQS2+vSq6YaOyP2QcMLYrsCwxmho7QSvQeMGnM=";
    let as_reader = [
        ("TERRACE_BACKEND", reader_url.as_str()),
        ("PGPASSWORD", "reader-pw-7"),
        ("TERRACE_PLAN_KEY", plan_key),
    ];
    let as_writer = [
        ("TERRACE_BACKEND", writer_url.as_str()),
        ("PGPASSWORD", "writer-pw-7"),
        ("TERRACE_PLAN_KEY", plan_key),
    ];

    // The writer's first apply creates the tables (it owns them) and the state.
    let first = Project::new(&hcl(&[&db1]));
    first
        .terrace_env(&["apply", "--auto-approve"], &as_writer)
        .expect_code(0);
    let (serial, locks) = stored(&schema, &state);
    assert!(serial >= 1 && locks == 0, "serial {serial}, locks {locks}");

    // The plan job: a fresh checkout of the changed configuration, as the reader.
    let plan_job = Project::new(&hcl(&[&db1, &db2]));
    let planfile = plan_job.path().join("pr.plan");
    let planfile = planfile.to_string_lossy().into_owned();
    let planned = plan_job
        .terrace_env(
            &["plan", "--detailed-exitcode", "--out", &planfile],
            &as_reader,
        )
        .expect_code(2);
    assert!(planned.stdout.contains(&db2), "{}", planned.stdout);
    assert_eq!(
        stored(&schema, &state),
        (serial, 0),
        "plan wrote nothing, took no lease"
    );

    // The reader cannot apply: refused before anything changes.
    let refused = plan_job.terrace_env(&["apply", &planfile], &as_reader);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    let msg = flat(&refused.stderr);
    assert!(
        msg.contains("permission denied for table terrace_state_locks")
            && msg.contains("this role may not do that")
            && msg.contains("docs/postgres-roles.md"),
        "{msg}"
    );
    assert!(!refused.all().contains("reader-pw-7") && !refused.all().contains(plan_key));
    assert_eq!(stored(&schema, &state), (serial, 0));
    assert!(!database_exists(&db2), "nothing was created");

    // The apply job: another fresh checkout, the plan file as an artifact, the writer.
    let apply_job = Project::new(&hcl(&[&db1, &db2]));
    let artifact = apply_job.path().join("pr.plan");
    std::fs::copy(&planfile, &artifact).unwrap();
    let applied = apply_job
        .terrace_env(&["apply", &artifact.to_string_lossy()], &as_writer)
        .expect_code(0);
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );
    assert!(database_exists(&db2));
    let (after, locks) = stored(&schema, &state);
    assert!(
        after > serial && locks == 0,
        "serial {after}, locks {locks}"
    );
    // The other read-only commands work as the reader too.
    plan_job.terrace_env(&["drift"], &as_reader).expect_code(0);
    let listed = plan_job
        .terrace_env(&["state", "list"], &as_reader)
        .expect_code(0);
    assert!(
        listed.stdout.contains("tenant.t1.database"),
        "{}",
        listed.stdout
    );
    assert_eq!(stored(&schema, &state), (after, 0));

    apply_job
        .terrace_env(&["destroy", "--auto-approve"], &as_writer)
        .expect_code(0);
}

/// The second block of the document: tables that exist already (here the shared ones in
/// `public`, where PostgreSQL 15 gives no `CREATE` to anyone by default), a writer with
/// row privileges only. Taking the lock used to run `CREATE TABLE IF NOT EXISTS`, which
/// needs `CREATE` on the schema even when the table exists: "permission denied for
/// schema public".
#[test]
fn a_writer_with_row_privileges_only_applies_once_the_tables_exist() {
    let id = unique("ci");
    let _cleanup = Cleanup(id.clone());
    let (reader, writer) = (format!("{id}_plan"), format!("{id}_apply"));
    let (db1, db2) = (format!("{id}_a"), format!("{id}_b"));
    let state = format!("{id}_state");
    let admin_url = format!(
        "{}?state={state}",
        std::env::var("TERRACE_TEST_PG_URL").expect("`source target/services.env` first")
    );
    // The admin makes the state (and the tables, if no test made them yet).
    Project::new(&hcl(&[&db1]))
        .terrace_env(
            &["apply", "--auto-approve"],
            &[("TERRACE_BACKEND", &admin_url)],
        )
        .expect_code(0);
    let sql = docs_sql(1)
        .replace("ci_plan", &reader)
        .replace("ci_apply", &writer);
    admin_sql(&[
        format!("CREATE ROLE {reader} LOGIN PASSWORD 'reader-pw-8'"),
        format!("CREATE ROLE {writer} LOGIN PASSWORD 'writer-pw-8'"),
        sql,
    ]);
    let no_create: bool = block_on(async {
        let pool = pg_admin().await;
        let v = sqlx::query_scalar("SELECT NOT has_schema_privilege($1, 'public', 'CREATE')")
            .bind(&writer)
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        v
    });
    assert!(no_create, "the writer must not be able to create tables");

    let url = |role: &str| format!("pg://{role}@127.0.0.1:5432/postgres?state={state}");
    let (reader_url, writer_url) = (url(&reader), url(&writer));
    let key = "9KWaHtQS2+vSq6YaOyP2QcMLYrsCwxmho7QSvQeMGnM=";
    let plan_job = Project::new(&hcl(&[&db1, &db2]));
    let planfile = plan_job.path().join("pr.plan");
    let planfile = planfile.to_string_lossy().into_owned();
    plan_job
        .terrace_env(
            &["plan", "--detailed-exitcode", "--out", &planfile],
            &[
                ("TERRACE_BACKEND", reader_url.as_str()),
                ("PGPASSWORD", "reader-pw-8"),
                ("TERRACE_PLAN_KEY", key),
            ],
        )
        .expect_code(2);
    let writer_env = [
        ("TERRACE_BACKEND", writer_url.as_str()),
        ("PGPASSWORD", "writer-pw-8"),
        ("TERRACE_PLAN_KEY", key),
    ];
    plan_job
        .terrace_env(&["apply", &planfile], &writer_env)
        .expect_code(0);
    assert!(database_exists(&db2));
    plan_job
        .terrace_env(&["destroy", "--auto-approve"], &writer_env)
        .expect_code(0);
    block_on(async {
        let pool = pg_admin().await;
        for table in [
            "terrace_state_history",
            "terrace_state_journal",
            "terrace_states",
        ] {
            let sql = format!("DELETE FROM {table} WHERE name = $1");
            let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&state)
                .execute(&pool)
                .await;
        }
        pool.close().await;
    });
}
