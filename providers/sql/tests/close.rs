//! A provider's connections end with the protocol's goodbye (MariaDB's `COM_QUIT`,
//! PostgreSQL's `Terminate`), not a dropped socket: a server counts and logs a dropped
//! one as aborted, and operators watch those warnings for attacks and network trouble.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use terrace_provider::{Provider, Secret};
use terrace_provider_sql::{SqlEngine, SqlProvider, DATABASE};

/// Polls the first column of `sql` (a count) until it reads `0`, for at most 10 s.
async fn wait_for_zero(engine: SqlEngine, db: &str, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = query_in(engine, db, sql).await;
        if n.first().cloned().flatten().as_deref() == Some("0") {
            return;
        }
        assert!(Instant::now() < deadline, "still connected: {sql}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Observes through `p`, which opens its first connection and then its pool (whose
/// connections stay open until [`Provider::close`]).
async fn open_connections(p: &SqlProvider) {
    let missing = attrs(json!({"name": "tt_close_never_created"}));
    p.observe(&[request(DATABASE, &missing)]).await.unwrap();
}

#[tokio::test]
async fn mariadb_sees_no_aborted_connection() {
    let engine = SqlEngine::Mysql;
    let log = std::env::var("TERRACE_TEST_MYSQL_LOG")
        .expect("TERRACE_TEST_MYSQL_LOG is not set: run scripts/services.sh");
    // A login of its own, so that the server's log lines about it are this test's.
    let user = format!("{}_adm", prefix());
    let password = "close-test-password";
    for host in ["localhost", "%"] {
        admin_exec(
            engine,
            format!("CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'"),
        )
        .await;
        admin_exec(
            engine,
            format!("GRANT ALL PRIVILEGES ON *.* TO '{user}'@'{host}'"),
        )
        .await;
    }
    let mut server = server(engine);
    server.admin_user = user.clone();
    server.admin_password = Secret::new(password);
    let p = SqlProvider::new(server);
    open_connections(&p).await;
    let connected = format!(
        "SELECT CAST(COUNT(*) AS CHAR) FROM information_schema.PROCESSLIST WHERE USER = '{user}'"
    );
    let open = query_in(engine, "mysql", &connected).await;
    assert_ne!(
        open[0].as_deref(),
        Some("0"),
        "observe left no pooled connection"
    );

    p.close().await;
    // Once the server has let go of every connection, whatever it logs about them is
    // written.
    wait_for_zero(engine, "mysql", &connected).await;
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{log}: {e}"));
    let aborted: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Aborted connection") && l.contains(&format!("user: '{user}'")))
        .collect();
    for host in ["localhost", "%"] {
        admin_exec(engine, format!("DROP USER '{user}'@'{host}'")).await;
    }
    assert!(aborted.is_empty(), "the server logged: {aborted:#?}");
}

#[tokio::test]
async fn postgres_sees_no_abandoned_session() {
    let engine = SqlEngine::Postgres;
    // A database of its own to connect to, so that its session counts are this test's.
    let db = format!("{}_close", prefix());
    admin_exec(engine, format!("CREATE DATABASE {db}")).await;
    let mut server = server(engine);
    server.admin_database = Some(db.clone());
    let p = SqlProvider::new(server);
    open_connections(&p).await;
    let connected = format!("SELECT COUNT(*)::text FROM pg_stat_activity WHERE datname = '{db}'");
    let open = query_in(engine, "postgres", &connected).await;
    assert_ne!(
        open[0].as_deref(),
        Some("0"),
        "observe left no pooled connection"
    );

    p.close().await;
    wait_for_zero(engine, "postgres", &connected).await;
    let counts = query_in(
        engine,
        "postgres",
        &format!(
            "SELECT sessions::text || ' ' || sessions_abandoned::text FROM pg_stat_database \
             WHERE datname = '{db}'"
        ),
    )
    .await;
    admin_exec(engine, format!("DROP DATABASE {db} WITH (FORCE)")).await;
    let counts = counts[0].clone().unwrap();
    let (sessions, abandoned) = counts.split_once(' ').unwrap();
    assert_ne!(sessions, "0", "no session was counted");
    assert_eq!(
        abandoned, "0",
        "{abandoned} of {sessions} session(s) were abandoned"
    );
}
