//! `terrace drift` end to end against the real local PostgreSQL: exit codes, the JSON
//! report, the metrics file, read-only-ness, `lifecycle { ignore_changes }` and the
//! ignore file of acknowledged drift.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{block_on, pg_admin, pg_service, unique, Project};

fn hcl(db: &str, lifecycle: &str) -> String {
    format!(
        r#"{}
tenant "app" {{
  database {{
    service          = service.pg
    name             = "{db}"
    connection_limit = 7
  }}
  {lifecycle}
}}
"#,
        pg_service()
    )
}

fn set_limit(db: &str, limit: i32) {
    block_on(async {
        // The name comes from `unique`: a plain identifier.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE \"{db}\" CONNECTION LIMIT {limit}"
        )))
        .execute(&pg_admin().await)
        .await
        .unwrap();
    });
}

fn limit(db: &str) -> i32 {
    block_on(async {
        use sqlx::Row;
        sqlx::query("SELECT datconnlimit FROM pg_database WHERE datname = $1")
            .bind(db)
            .fetch_one(&pg_admin().await)
            .await
            .unwrap()
            .get::<i32, _>(0)
    })
}

/// Every file of the project directory (recursively) with its bytes and mtime.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let meta = e.metadata().unwrap();
                out.insert(
                    path.strip_prefix(dir).unwrap().display().to_string(),
                    (std::fs::read(&path).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    out
}

/// miette's wrapped report on one line: words joined by single spaces, no gutters.
fn flat(s: &str) -> String {
    s.split_whitespace()
        .filter(|w| *w != "|" && *w != "x")
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value of the metrics line starting with `prefix`.
fn metric(text: &str, prefix: &str) -> String {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn drift_run_exit_codes_metrics_and_read_only() {
    let db = unique("dr");
    let p = Project::new(&hcl(&db, ""));
    p.apply();
    let metrics_dir = tempfile::tempdir().unwrap();
    let metrics = metrics_dir.path().join("terrace.prom");
    let metrics_arg = metrics.to_str().unwrap();

    // Right after an apply there is nothing to report: exit 0, never 2.
    let run = p
        .terrace(&["drift", "--metrics-file", metrics_arg])
        .expect_code(0);
    assert!(
        run.stdout
            .contains("No drift: the 3 managed objects match the state."),
        "{}",
        run.stdout
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    let project = p.path().file_name().unwrap().to_str().unwrap().to_string();
    let label = |t: &str| format!("{{project=\"{project}\",resource_type=\"{t}\"}}");
    assert_eq!(
        metric(
            &text,
            &format!("terrace_managed_resources{}", label("sql_database"))
        ),
        "1"
    );
    assert_eq!(
        metric(
            &text,
            &format!("terrace_drifted_resources{}", label("sql_database"))
        ),
        "0"
    );
    assert_eq!(metric(&text, "terrace_drift_last_run_success{"), "1");
    let first_success = metric(&text, "terrace_drift_last_success_timestamp_seconds{");
    assert_eq!(
        first_success,
        metric(&text, "terrace_drift_last_run_timestamp_seconds{")
    );
    assert!(text.contains("# TYPE terrace_drift_last_run_duration_seconds gauge"));

    // Changed by hand: reported with before -> live, exit 2, and the run writes
    // nothing in the project (state bytes and mtime, no journal, no new file).
    set_limit(&db, 42);
    let before = snapshot(p.path());
    let run = p
        .terrace(&["drift", "--metrics-file", metrics_arg])
        .expect_code(2);
    assert!(
        run.stdout.contains("~ connection_limit = 7 -> 42"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("Drift: 1 object changed outside terrace."),
        "{}",
        run.stdout
    );
    assert_eq!(
        snapshot(p.path()),
        before,
        "a drift run wrote in the project"
    );
    assert!(!p.path().join("terrace.state.json.journal").exists());
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(
        metric(
            &text,
            &format!("terrace_drifted_resources{}", label("sql_database"))
        ),
        "1"
    );
    assert_eq!(
        metric(
            &text,
            &format!("terrace_drifted_resources{}", label("sql_user"))
        ),
        "0"
    );

    // JSON: the same drift, machine-readable.
    let run = p.terrace(&["drift", "--json"]).expect_code(2);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["has_drift"], true);
    assert_eq!(doc["complete"], true);
    let d = &doc["resource_drift"][0];
    assert_eq!(d["type"], "sql_database");
    assert_eq!(d["kind"], "changed");
    assert_eq!(d["attrs"][0]["name"], "connection_limit");
    assert_eq!(d["attrs"][0]["before"], 7);
    assert_eq!(d["attrs"][0]["after"], 42);

    // A run that cannot observe (wrong admin password) exits 1 and keeps the last
    // success timestamp, while the run timestamp moves on.
    p.terrace_env(
        &["drift", "--metrics-file", metrics_arg],
        &[("TERRACE_VAR_pg_admin_password", "wrong")],
    )
    .expect_code(1);
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert_eq!(metric(&text, "terrace_drift_last_run_success{"), "0");
    assert!(
        metric(&text, "terrace_drift_last_success_timestamp_seconds{")
            < metric(&text, "terrace_drift_last_run_timestamp_seconds{")
    );
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn ignore_changes_silences_drift_and_prevent_destroy_refuses_destroy() {
    let db = unique("drl");
    let p = Project::new(&hcl(
        &db,
        "lifecycle {\n    prevent_destroy = true\n    ignore_changes  = [connection_limit]\n  }",
    ));
    p.apply();
    set_limit(&db, 42);
    // Managed by hand on purpose: neither drift nor a change.
    let run = p.terrace(&["drift"]).expect_code(0);
    assert!(run.stdout.contains("No drift"), "{}", run.stdout);
    p.plan().expect_code(0);
    let run = p.terrace(&["destroy", "--auto-approve"]).expect_code(1);
    assert!(
        flat(&run.stderr).contains("tenant.app.database would be destroyed")
            && run.stderr.contains("prevent_destroy = true"),
        "{}",
        run.stderr
    );
    // Renaming the database forces a replacement: refused, naming the attribute.
    p.write(&hcl(
        &format!("{db}_x"),
        "lifecycle {\n    prevent_destroy = true\n  }",
    ));
    let run = p.terrace(&["plan"]).expect_code(1);
    assert!(
        flat(&run.stderr)
            .contains("tenant.app.database would be replaced (destroyed and created again), forced by a change of \"name\""),
        "{}",
        run.stderr
    );
    // A drift run applies nothing: a plan that would be refused does not stop it, and
    // the limit changed by hand is drift again now that it is no longer ignored.
    let run = p.terrace(&["drift"]).expect_code(2);
    assert!(
        run.stdout.contains("~ connection_limit = 7 -> 42"),
        "{}",
        run.stdout
    );
    p.write(&hcl(&db, ""));
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn acknowledged_drift_does_not_alert_until_it_expires() {
    let db = unique("dra");
    let p = Project::new(&hcl(&db, ""));
    p.apply();
    set_limit(&db, 42);
    let ignore = p.path().join("terrace.driftignore");
    std::fs::write(
        &ignore,
        "# accepted drift\ntenant.app.database.connection_limit expires=2999-12-31 raised for the migration (OPS-1)\n",
    )
    .unwrap();
    let run = p.terrace(&["drift"]).expect_code(0);
    assert!(
        run.stdout
            .contains("Acknowledged drift (terrace.driftignore):"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("acknowledged by line 2 (`tenant.app.database.connection_limit`, until 2999-12-31): raised for the migration (OPS-1)"),
        "{}",
        run.stdout
    );
    let run = p.terrace(&["drift", "--json"]).expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["has_drift"], false);
    assert_eq!(
        doc["acknowledged"][0]["acknowledgement"]["reason"],
        "raised for the migration (OPS-1)"
    );
    // Expired: it alerts again, saying which acknowledgement ran out.
    std::fs::write(
        &ignore,
        "tenant.app.* expires=2020-01-31 raised for the migration\n",
    )
    .unwrap();
    let run = p.terrace(&["drift"]).expect_code(2);
    assert!(
        run.stdout.contains("acknowledgement expired on 2020-01-31"),
        "{}",
        run.stdout
    );
    // A malformed file is an error, not silence.
    std::fs::write(&ignore, "tenant.app.database\n").unwrap();
    let run = p.terrace(&["drift"]).expect_code(1);
    assert!(run.stderr.contains("has no reason"), "{}", run.stderr);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn apply_refresh_only_records_live_values_without_touching_the_server() {
    let db = unique("drr");
    let p = Project::new(&hcl(&db, ""));
    p.apply();
    set_limit(&db, 42);
    let address = "tenant.app.database";
    // Without a terminal it shows what it would record, then refuses to go on.
    let run = p.terrace(&["apply", "--refresh-only"]).expect_code(1);
    assert!(
        run.stdout.contains("~ connection_limit = 7 -> 42"),
        "{}",
        run.stdout
    );
    assert_eq!(p.state_attrs(address)["connection_limit"], 7);
    let run = p
        .terrace(&["apply", "--refresh-only", "--auto-approve"])
        .expect_code(0);
    assert!(
        run.stdout
            .contains("Accepted the drift of 1 object(s) into the state; no server was changed."),
        "{}",
        run.stdout
    );
    assert_eq!(p.state_attrs(address)["connection_limit"], 42);
    assert_eq!(limit(&db), 42);
    // Accepted: no drift any more; the configuration still says 7, so plan sets it back
    // (as a configured change, not as drift), and the server was not touched.
    p.terrace(&["drift"]).expect_code(0);
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains("~ connection_limit = 42 -> 7"),
        "{}",
        plan.stdout
    );
    assert!(
        !plan.stdout.contains("changed outside terrace"),
        "{}",
        plan.stdout
    );
    let run = p
        .terrace(&["apply", "--refresh-only", "--auto-approve"])
        .expect_code(0);
    assert!(run.stdout.contains("Nothing to accept"), "{}", run.stdout);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}
