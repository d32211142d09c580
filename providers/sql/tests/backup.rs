//! The safety backup taken before a database is dropped, on the real servers: restored
//! with the engine's own client, it gives the whole database back (tables and rows,
//! views, triggers, routines and, on MariaDB, events), not only its tables.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;
use terrace_provider_sql::{SqlEngine, DATABASE};

/// The one file the drop wrote into `dir`.
fn only_dump(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "one dump: {files:?}");
    files.into_iter().next().unwrap()
}

/// Restores a backup the way its user would: the engine's client reads the file, which
/// creates the database itself. The password goes in the environment.
fn restore_backup(engine: SqlEngine, dump: &Path) {
    let s = server(engine);
    let input = std::fs::File::open(dump).unwrap();
    let mut cmd = match engine {
        SqlEngine::Mysql => {
            let mut c = Command::new("mariadb");
            c.args([
                format!("--host={}", s.address),
                format!("--port={}", s.port),
                "--protocol=TCP".into(),
                format!("--user={}", s.admin_user),
                "--batch".into(),
            ])
            .env("MYSQL_PWD", s.admin_password.expose());
            c
        }
        SqlEngine::Postgres => {
            let mut c = Command::new("psql");
            c.args([
                format!("--host={}", s.address),
                format!("--port={}", s.port),
                format!("--username={}", s.admin_user),
                "--no-password".into(),
                "--quiet".into(),
                "--set=ON_ERROR_STOP=1".into(),
                "--dbname=postgres".into(),
            ])
            .env("PGPASSWORD", s.admin_password.expose());
            c
        }
    };
    let out = cmd
        .stdin(input)
        .stdout(Stdio::null())
        .output()
        .expect("run the client");
    assert!(
        out.status.success(),
        "restore failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What the test database holds, one statement per entry (the MariaDB client needs no
/// delimiter games when each is sent on its own).
fn fill(engine: SqlEngine) -> Vec<&'static str> {
    match engine {
        SqlEngine::Mysql => vec![
            "CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(20))",
            "INSERT INTO items VALUES (1, 'ONE'), (2, 'TWO\nLINES')",
            "CREATE VIEW labels AS SELECT label FROM items",
            "CREATE TRIGGER shout BEFORE INSERT ON items FOR EACH ROW \
             SET NEW.label = UPPER(NEW.label)",
            "CREATE FUNCTION answer() RETURNS INT DETERMINISTIC RETURN 42",
            "CREATE PROCEDURE add_item(IN i INT, IN l VARCHAR(20)) \
             INSERT INTO items VALUES (i, l)",
            "CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM items WHERE id < 0",
        ],
        SqlEngine::Postgres => vec![
            "CREATE TABLE items (id INT PRIMARY KEY, label TEXT)",
            "INSERT INTO items VALUES (1, 'ONE'), (2, E'TWO\\nLINES')",
            "CREATE VIEW labels AS SELECT label FROM items",
            "CREATE FUNCTION shout() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN NEW.label := upper(NEW.label); RETURN NEW; END $$",
            "CREATE TRIGGER shout BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION shout()",
            "CREATE FUNCTION answer() RETURNS INT LANGUAGE sql AS 'SELECT 42'",
            "CREATE PROCEDURE add_item(i INT, l TEXT) LANGUAGE sql \
             AS 'INSERT INTO items VALUES (i, l)'",
        ],
    }
}

async fn backup_restores_everything(engine: SqlEngine) {
    let backups = tempfile::tempdir().unwrap();
    let p = provider(engine).with_backup_dir(backups.path());
    let cleanup = Cleanup::new(engine);
    let name = format!("{}_bk", prefix());
    let db = attrs(json!({ "name": name }));
    cleanup.add(DATABASE, &db);
    create(&p, DATABASE, &db).await.unwrap();
    for sql in fill(engine) {
        query_in(engine, &name, sql).await;
    }

    delete(&p, DATABASE, &db).await.unwrap();
    assert_absent(&p, DATABASE, &db).await;
    restore_backup(engine, &only_dump(backups.path()));

    let text = match engine {
        SqlEngine::Mysql => "CAST(label AS CHAR)",
        SqlEngine::Postgres => "label::text",
    };
    let labels = |from: &str| format!("SELECT {text} FROM {from} ORDER BY 1");
    // Rows, with a value that spans lines, and the view over them.
    let want = [Some("ONE".to_string()), Some("TWO\nLINES".to_string())];
    assert_eq!(query_in(engine, &name, &labels("items")).await, want);
    assert_eq!(query_in(engine, &name, &labels("labels")).await, want);
    // The routines, and the trigger, which the procedure's insert fires.
    let call = match engine {
        SqlEngine::Mysql => "CALL add_item(3, 'three')",
        SqlEngine::Postgres => "CALL add_item(3, 'three')",
    };
    query_in(engine, &name, call).await;
    let answer = match engine {
        SqlEngine::Mysql => "SELECT CAST(answer() AS CHAR)",
        SqlEngine::Postgres => "SELECT answer()::text",
    };
    assert_eq!(
        query_in(engine, &name, answer).await,
        [Some("42".to_string())]
    );
    let three = format!("SELECT {text} FROM items WHERE id = 3");
    assert_eq!(
        query_in(engine, &name, &three).await,
        [Some("THREE".to_string())]
    );
    if engine == SqlEngine::Mysql {
        let events = format!(
            "SELECT CAST(EVENT_NAME AS CHAR) FROM information_schema.EVENTS \
             WHERE EVENT_SCHEMA = '{name}'"
        );
        assert_eq!(
            query_in(engine, &name, &events).await,
            [Some("nightly".to_string())]
        );
    }
}

#[tokio::test]
async fn mysql_backup_before_drop_restores_tables_views_triggers_routines_events() {
    backup_restores_everything(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn postgres_backup_before_drop_restores_tables_views_triggers_routines() {
    backup_restores_everything(SqlEngine::Postgres).await;
}

/// The lookup before the dump asks about the one database: a database dropped behind
/// terrace's back is not dumped (there is nothing to dump) and its drop succeeds, and a
/// database whose name differs only in case is not taken for it.
async fn gone_database_is_not_dumped(engine: SqlEngine) {
    let backups = tempfile::tempdir().unwrap();
    let p = provider(engine).with_backup_dir(backups.path());
    let cleanup = Cleanup::new(engine);
    let name = format!("{}_gone", prefix());
    let upper = name.to_uppercase();
    let db = attrs(json!({ "name": name }));
    let other = attrs(json!({ "name": upper }));
    cleanup.add(DATABASE, &db);
    cleanup.add(DATABASE, &other);
    create(&p, DATABASE, &other).await.unwrap();

    delete(&p, DATABASE, &db).await.unwrap();
    let left: Vec<_> = std::fs::read_dir(backups.path()).unwrap().collect();
    assert!(left.is_empty(), "no dump of an absent database: {left:?}");
}

#[tokio::test]
async fn mysql_gone_database_is_dropped_without_a_dump() {
    gone_database_is_not_dumped(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn postgres_gone_database_is_dropped_without_a_dump() {
    gone_database_is_not_dumped(SqlEngine::Postgres).await;
}
