//! Batched observe (constant statement count) and import of unmanaged objects.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Observed, Provider};
use terrace_provider_sql::{SqlEngine, DATABASE, GRANT, USER};

/// Observing 3 resources and observing 150 resources send the same number of
/// statements (one catalog query per resource type), and every answer is right.
async fn observe_is_batched(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let db = attrs(json!({"name": format!("{pre}_db")}));
    let user = attrs(json!({"name": format!("{pre}_u")}));
    let grant = attrs(
        json!({"database": format!("{pre}_db"), "user": format!("{pre}_u"), "privileges": ["ALL"]}),
    );
    cleanup.add(DATABASE, &db);
    cleanup.add(USER, &user);
    cleanup.add(GRANT, &grant);
    create(&p, DATABASE, &db).await.unwrap();
    create(&p, USER, &user).await.unwrap();
    create(&p, GRANT, &grant).await.unwrap();

    let few = vec![
        request(DATABASE, &db),
        request(USER, &user),
        request(GRANT, &grant),
    ];
    let before = p.statements_executed();
    let answers = p.observe(&few).await.unwrap();
    let few_count = p.statements_executed() - before;
    assert!(answers.iter().all(|a| matches!(a, Observed::Present(_))));

    let mut many = Vec::new();
    for i in 0..50 {
        many.push(request(
            DATABASE,
            &attrs(json!({"name": format!("{pre}_missing{i}")})),
        ));
        many.push(request(
            USER,
            &attrs(json!({"name": format!("{pre}_missing{i}")})),
        ));
        many.push(request(
            GRANT,
            &attrs(json!({"database": format!("{pre}_db"), "user": format!("{pre}_missing{i}")})),
        ));
    }
    many[77] = request(USER, &user);
    let before = p.statements_executed();
    let answers = p.observe(&many).await.unwrap();
    let many_count = p.statements_executed() - before;
    assert_eq!(answers.len(), 150);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(
            matches!(a, Observed::Present(_)),
            i == 77,
            "answer {i}: {a:?}"
        );
    }
    assert_eq!(
        few_count, many_count,
        "statement count must not grow with requests"
    );
    // One catalog query per resource type, plus (MariaDB) one for the isolation audit's
    // table grants and roles; PostgreSQL reads memberships inside the roles query.
    let constant = match engine {
        SqlEngine::Mysql => 4,
        SqlEngine::Postgres => 3,
    };
    assert_eq!(many_count, constant, "a constant number of catalog queries");

    // A database alone: its catalog row, and on PostgreSQL its ACL too (who else can
    // reach it, `other_access`).
    let before = p.statements_executed();
    p.observe(&[request(DATABASE, &db)]).await.unwrap();
    let alone = match engine {
        SqlEngine::Mysql => 1,
        SqlEngine::Postgres => 2,
    };
    assert_eq!(p.statements_executed() - before, alone);
    assert_eq!(p.observe(&[]).await.unwrap(), vec![]);
}

#[tokio::test]
async fn mysql_observe_is_batched() {
    observe_is_batched(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_observe_is_batched() {
    observe_is_batched(SqlEngine::Postgres).await;
}

/// Objects made by hand are adopted by import; missing ones are an error.
async fn import_unmanaged(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let (db, user) = (format!("{pre}_db"), format!("{pre}_u"));
    // Users first, so that the database (which a PostgreSQL user owns) is dropped
    // before them.
    if engine == SqlEngine::Mysql {
        cleanup.add(USER, &attrs(json!({ "name": user, "host": "localhost" })));
    }
    cleanup.add(USER, &attrs(json!({ "name": user })));
    cleanup.add(DATABASE, &attrs(json!({ "name": db })));
    match engine {
        SqlEngine::Mysql => {
            admin_exec(
                engine,
                format!("CREATE DATABASE `{db}` CHARACTER SET latin1"),
            )
            .await;
            admin_exec(engine, format!("CREATE USER '{user}'@'localhost' IDENTIFIED BY 'x' WITH MAX_USER_CONNECTIONS 4")).await;
            // On the exact name: on the raw one, `_` is a wildcard (checked below).
            let exact = db.replace('_', "\\_");
            admin_exec(
                engine,
                format!("GRANT SELECT ON `{exact}`.* TO '{user}'@'localhost'"),
            )
            .await;
        }
        SqlEngine::Postgres => {
            admin_exec(
                engine,
                format!("CREATE ROLE \"{user}\" LOGIN CONNECTION LIMIT 4"),
            )
            .await;
            admin_exec(engine, format!("CREATE DATABASE \"{db}\" OWNER \"{user}\"")).await;
        }
    }

    let got = p
        .import(DATABASE, &db, &attrs(json!({ "name": db })))
        .await
        .unwrap();
    assert_eq!(got["name"], json!(db));
    match engine {
        SqlEngine::Mysql => assert_eq!(got["charset"], json!("latin1")),
        SqlEngine::Postgres => {
            assert_eq!(got["owner"], json!(user));
            assert_eq!(got["connection_limit"], json!(-1));
        }
    }

    // The password cannot be read: the configuration's is kept, or it stays unknown.
    let user_id = match engine {
        SqlEngine::Mysql => format!("{user}@localhost"),
        SqlEngine::Postgres => user.clone(),
    };
    let got = p
        .import(
            USER,
            &user_id,
            &attrs(json!({ "name": user, "password": "from-config" })),
        )
        .await
        .unwrap();
    assert_eq!(got["connection_limit"], json!(4));
    assert_eq!(got["password"], json!("from-config"));
    let got = p.import(USER, &user_id, &attrs(json!({}))).await.unwrap();
    assert!(!got.contains_key("password"));
    if engine == SqlEngine::Mysql {
        assert_eq!(got["host"], json!("localhost"));
        // Without a host in the id, the configuration's host is used.
        let got = p
            .import(
                USER,
                &user,
                &attrs(json!({ "name": user, "host": "localhost" })),
            )
            .await
            .unwrap();
        assert_eq!(got["host"], json!("localhost"));
        assert!(
            p.import(USER, &user, &attrs(json!({}))).await.is_err(),
            "no such user@%"
        );
    }

    let grant_id = format!("{user_id}/{db}");
    let got = p.import(GRANT, &grant_id, &attrs(json!({}))).await.unwrap();
    let expect = match engine {
        SqlEngine::Mysql => json!(["SELECT"]),
        SqlEngine::Postgres => json!(["ALL"]), // the owner holds everything
    };
    assert_eq!(got["privileges"], expect);
    if engine == SqlEngine::Mysql {
        let exact = db.replace('_', "\\_");
        admin_exec(
            engine,
            format!("REVOKE SELECT ON `{exact}`.* FROM '{user}'@'localhost'"),
        )
        .await;
        admin_exec(
            engine,
            format!("GRANT SELECT ON `{db}`.* TO '{user}'@'localhost'"),
        )
        .await;
        let err = p
            .import(GRANT, &grant_id, &attrs(json!({})))
            .await
            .expect_err("a grant on the raw name is not the grant");
        assert!(err.to_string().contains("grant on `"), "{err}");
    }

    let err = p
        .import(DATABASE, &format!("{pre}_nope"), &attrs(json!({})))
        .await
        .expect_err("importing a missing database fails");
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(p
        .import(GRANT, "no-slash", &attrs(json!({})))
        .await
        .is_err());
}

#[tokio::test]
async fn mysql_import_unmanaged() {
    import_unmanaged(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_import_unmanaged() {
    import_unmanaged(SqlEngine::Postgres).await;
}
