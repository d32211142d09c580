//! Create / observe / update / delete of each resource type on both engines, checking
//! that what observe reads back equals what was applied.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::Observed;
use terrace_provider_sql::{SqlEngine, DATABASE, GRANT, USER};

async fn database_lifecycle(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let name = format!("{pre}_db");

    let (desired, owner2) = match engine {
        SqlEngine::Mysql => (
            attrs(json!({"name": name, "charset": "utf8mb4", "collation": "utf8mb4_bin"})),
            None,
        ),
        SqlEngine::Postgres => {
            // Owners must exist first.
            let o1 = attrs(json!({"name": format!("{pre}_o1")}));
            let o2 = attrs(json!({"name": format!("{pre}_o2")}));
            cleanup.add(USER, &o1);
            cleanup.add(USER, &o2);
            create(&p, USER, &o1).await.unwrap();
            create(&p, USER, &o2).await.unwrap();
            (
                attrs(json!({"name": name, "owner": format!("{pre}_o1"), "connection_limit": 5})),
                Some(format!("{pre}_o2")),
            )
        }
    };
    cleanup.add(DATABASE, &desired);
    assert_absent(&p, DATABASE, &desired).await;
    let stored = create(&p, DATABASE, &desired).await.unwrap();
    assert_eq!(stored, desired);
    assert_converged(&p, DATABASE, &desired).await;

    // In-place update.
    let (desired2, changed): (_, &[&str]) = match engine {
        SqlEngine::Mysql => (
            attrs(json!({"name": name, "charset": "utf8mb4", "collation": "utf8mb4_unicode_ci"})),
            &["collation"],
        ),
        SqlEngine::Postgres => (
            attrs(json!({"name": name, "owner": owner2.unwrap(), "connection_limit": -1})),
            &["owner", "connection_limit"],
        ),
    };
    let stored2 = update(&p, DATABASE, &stored, &desired2, changed)
        .await
        .unwrap();
    assert_eq!(stored2, desired2);
    assert_converged(&p, DATABASE, &desired2).await;

    delete(&p, DATABASE, &stored2).await.unwrap();
    assert_absent(&p, DATABASE, &desired2).await;
    // Deleting again is harmless (DROP … IF EXISTS).
    delete(&p, DATABASE, &stored2).await.unwrap();
}

#[tokio::test]
async fn mysql_database_lifecycle() {
    database_lifecycle(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_database_lifecycle() {
    database_lifecycle(SqlEngine::Postgres).await;
}

async fn user_lifecycle(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let name = format!("{pre}_u");
    let mut desired = attrs(json!({"name": name, "connection_limit": 3}));
    if engine == SqlEngine::Mysql {
        desired.insert("host".into(), json!("%"));
    }
    cleanup.add(USER, &desired);
    assert_absent(&p, USER, &desired).await;

    let stored = create(&p, USER, &desired).await.unwrap();
    let pw = stored["password"]
        .as_str()
        .expect("generated password")
        .to_string();
    assert_eq!(pw.len(), 32);
    assert!(pw.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_converged(&p, USER, &desired).await;

    // connection_limit in place; no password in desired: the generated one is kept.
    let mut desired2 = desired.clone();
    desired2.insert("connection_limit".into(), json!(7));
    let stored2 = update(&p, USER, &stored, &desired2, &["connection_limit"])
        .await
        .unwrap();
    assert_eq!(stored2["password"], json!(pw), "password carried over");
    assert_converged(&p, USER, &desired2).await;

    // A new password from the configuration is set on the server.
    let db = match engine {
        SqlEngine::Mysql => "information_schema",
        SqlEngine::Postgres => "postgres",
    };
    login(engine, &name, &pw, db)
        .await
        .expect("generated password logs in");
    let mut desired3 = desired2.clone();
    desired3.insert("password".into(), json!("N3w-pass'word\\x"));
    let stored3 = update(&p, USER, &stored2, &desired3, &[]).await.unwrap();
    assert_eq!(stored3["password"], json!("N3w-pass'word\\x"));
    login(engine, &name, "N3w-pass'word\\x", db)
        .await
        .expect("new password logs in");
    assert!(
        login(engine, &name, &pw, db).await.is_err(),
        "old password must be refused"
    );

    delete(&p, USER, &stored3).await.unwrap();
    assert_absent(&p, USER, &desired3).await;
    delete(&p, USER, &stored3).await.unwrap();
}

#[tokio::test]
async fn mysql_user_lifecycle() {
    user_lifecycle(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_user_lifecycle() {
    user_lifecycle(SqlEngine::Postgres).await;
}

async fn grant_lifecycle(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let db = attrs(json!({"name": format!("{pre}_db")}));
    let user = attrs(json!({"name": format!("{pre}_u")}));
    cleanup.add(DATABASE, &db);
    cleanup.add(USER, &user);
    create(&p, DATABASE, &db).await.unwrap();
    let user_stored = create(&p, USER, &user).await.unwrap();

    let mut desired = attrs(json!({
        "database": format!("{pre}_db"),
        "user": format!("{pre}_u"),
        "privileges": ["ALL"],
    }));
    if engine == SqlEngine::Postgres {
        desired.insert("revoke_public".into(), json!(true));
    }
    cleanup.add(GRANT, &desired);
    assert_absent(&p, GRANT, &desired).await;
    let stored = create(&p, GRANT, &desired).await.unwrap();
    assert_converged(&p, GRANT, &desired).await;

    // Narrower privileges, written loosely: stored and observed in normal form.
    let loose = match engine {
        SqlEngine::Mysql => json!(["select", "Insert", "SELECT"]),
        SqlEngine::Postgres => json!(["connect", "temp"]),
    };
    let normal = match engine {
        SqlEngine::Mysql => json!(["INSERT", "SELECT"]),
        SqlEngine::Postgres => json!(["CONNECT", "TEMPORARY"]),
    };
    let mut desired2 = desired.clone();
    desired2.insert("privileges".into(), loose);
    let stored2 = update(&p, GRANT, &stored, &desired2, &["privileges"])
        .await
        .unwrap();
    assert_eq!(stored2["privileges"], normal);
    assert_converged(&p, GRANT, &stored2).await;
    // The configuration's own spelling reads back equal too (no perpetual diff).
    assert_converged(&p, GRANT, &desired2).await;
    // A real difference is reported in normal form.
    let mut other = desired2.clone();
    other.insert("privileges".into(), json!(["ALL"]));
    let Observed::Present(live) = observe(&p, GRANT, &other).await else {
        panic!("grant absent");
    };
    assert_eq!(live["privileges"], normal);

    if engine == SqlEngine::Postgres {
        let mut desired3 = stored2.clone();
        desired3.insert("revoke_public".into(), json!(false));
        let stored3 = update(&p, GRANT, &stored2, &desired3, &["revoke_public"])
            .await
            .unwrap();
        assert_converged(&p, GRANT, &stored3).await;
    }

    delete(&p, GRANT, &stored2).await.unwrap();
    assert_absent(&p, GRANT, &stored2).await;
    // Revoking again, or after the user is gone, is not an error.
    delete(&p, GRANT, &stored2).await.unwrap();
    delete(&p, USER, &user_stored).await.unwrap();
    delete(&p, GRANT, &stored2).await.unwrap();
    delete(&p, DATABASE, &db).await.unwrap();
    delete(&p, GRANT, &stored2).await.unwrap();
}

#[tokio::test]
async fn mysql_grant_lifecycle() {
    grant_lifecycle(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_grant_lifecycle() {
    grant_lifecycle(SqlEngine::Postgres).await;
}

/// A grant with no privileges left (all revoked by hand) reads as absent, a MariaDB
/// grant of every privilege reads back as ALL, and one on the raw name (where `_` is a
/// wildcard) is not the configured grant.
#[tokio::test]
async fn mysql_grant_read_back_forms() {
    let engine = SqlEngine::Mysql;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let db = attrs(json!({"name": format!("{pre}_db")}));
    let user = attrs(json!({"name": format!("{pre}_u")}));
    cleanup.add(DATABASE, &db);
    cleanup.add(USER, &user);
    create(&p, DATABASE, &db).await.unwrap();
    create(&p, USER, &user).await.unwrap();
    let g = attrs(json!({"database": format!("{pre}_db"), "user": format!("{pre}_u")}));
    cleanup.add(GRANT, &g);
    // Made by hand on the escaped name.
    let escaped = format!("{pre}_db").replace('_', "\\_");
    admin_exec(
        engine,
        format!("GRANT ALL PRIVILEGES ON `{escaped}`.* TO '{pre}_u'@'%'"),
    )
    .await;
    let Observed::Present(live) = observe(&p, GRANT, &g).await else {
        panic!("hand-made grant not found");
    };
    assert_eq!(live["privileges"], json!(["ALL"]));
    assert_eq!(live["host"], json!("%"));
    admin_exec(
        engine,
        format!("REVOKE ALL PRIVILEGES ON `{escaped}`.* FROM '{pre}_u'@'%'"),
    )
    .await;
    assert_absent(&p, GRANT, &g).await;
    // On the raw name, `_` is a wildcard: not this grant (the user's audit reports it).
    admin_exec(
        engine,
        format!("GRANT ALL PRIVILEGES ON `{pre}_db`.* TO '{pre}_u'@'%'"),
    )
    .await;
    assert_absent(&p, GRANT, &g).await;
    admin_exec(
        engine,
        format!("REVOKE ALL PRIVILEGES ON `{pre}_db`.* FROM '{pre}_u'@'%'"),
    )
    .await;
}
