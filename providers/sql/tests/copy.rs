//! A database's move, provider side, on the real servers: the copy (a dump of what is
//! inside it, with its rows counted), the restore into another database with the
//! engine's client, and the verification that refuses a restore that does not match.

mod common;

use std::os::unix::fs::PermissionsExt as _;

use common::*;
use serde_json::json;
use terrace_provider::{Address, Provider};
use terrace_provider_sql::{SqlEngine, DATABASE};

async fn copy_restore_verify(engine: SqlEngine) {
    let backups = tempfile::tempdir().unwrap();
    let p = provider(engine).with_backup_dir(backups.path());
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let addr = Address::new("database.app");
    let [a, b, c] = ["a", "b", "c"].map(|s| attrs(json!({"name": format!("{pre}_{s}")})));
    for d in [&a, &b, &c] {
        cleanup.add(DATABASE, d);
        create(&p, DATABASE, d).await.unwrap();
    }
    exec_in(
        engine,
        &format!("{pre}_a"),
        "CREATE TABLE posts (id INT PRIMARY KEY, title TEXT); \
         INSERT INTO posts VALUES (1, 'x'), (2, 'y'), (3, 'z'); \
         CREATE TABLE tags (id INT PRIMARY KEY); INSERT INTO tags VALUES (1);",
    )
    .await;

    let copy = p.export_data(&addr, DATABASE, &a).await.unwrap();
    let (posts, tags) = match engine {
        SqlEngine::Mysql => ("posts", "tags"),
        SqlEngine::Postgres => ("public.posts", "public.tags"),
    };
    assert_eq!(
        copy.inventory,
        [(posts.to_string(), 3), (tags.to_string(), 1)].into()
    );
    assert_eq!(
        p.data_format(DATABASE).as_deref(),
        Some(copy.format.as_str())
    );
    let mode = std::fs::metadata(&copy.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the copy is private");

    p.restore_data(&addr, DATABASE, &b, &copy).await.unwrap();
    // The source is untouched.
    assert!(matches!(
        observe(&p, DATABASE, &a).await,
        terrace_provider::Observed::Present(_)
    ));

    // A restore that does not give what the copy counted fails.
    let mut wrong = copy.clone();
    wrong.inventory.insert(posts.to_string(), 4);
    let err = p
        .restore_data(&addr, DATABASE, &c, &wrong)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("does not hold what the copy held"),
        "{err}"
    );
    // A copy of the other engine is not restored at all.
    let mut other = copy.clone();
    other.format = "elsewhere".into();
    let err = p
        .restore_data(&addr, DATABASE, &c, &other)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be restored into"), "{err}");
}

#[tokio::test]
async fn mysql_database_copy_restores_into_another_database_and_is_verified() {
    copy_restore_verify(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn postgres_database_copy_restores_into_another_database_and_is_verified() {
    copy_restore_verify(SqlEngine::Postgres).await;
}
