//! Real logins: generated passwords work, grants confine a user to its database, and
//! PostgreSQL's revoke_public really keeps other roles out.

mod common;

use common::*;
use serde_json::json;
use terrace_provider_sql::{SqlEngine, DATABASE, GRANT, USER};

/// A user with a generated password and a grant on database A logs in to A, and is
/// refused on database B (on PostgreSQL, B has revoked PUBLIC access).
async fn grant_confines_user(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let (a, b) = (format!("{pre}_a"), format!("{pre}_b"));
    let (u, other) = (format!("{pre}_u"), format!("{pre}_o"));
    for db in [&a, &b] {
        let d = attrs(json!({ "name": db }));
        cleanup.add(DATABASE, &d);
        create(&p, DATABASE, &d).await.unwrap();
    }
    let mut users = Vec::new();
    for name in [&u, &other] {
        let d = attrs(json!({ "name": name }));
        cleanup.add(USER, &d);
        users.push(create(&p, USER, &d).await.unwrap());
    }
    let pw = users[0]["password"].as_str().unwrap().to_string();

    let mut ga = attrs(json!({"database": a, "user": u, "privileges": ["ALL"]}));
    let mut gb = attrs(json!({"database": b, "user": other, "privileges": ["ALL"]}));
    if engine == SqlEngine::Postgres {
        ga.insert("revoke_public".into(), json!(true));
        gb.insert("revoke_public".into(), json!(true));
    }
    for g in [&ga, &gb] {
        cleanup.add(GRANT, g);
        create(&p, GRANT, g).await.unwrap();
    }

    login(engine, &u, &pw, &a)
        .await
        .expect("user logs in to its own database with the generated password");
    let err = login(engine, &u, &pw, &b)
        .await
        .expect_err("user must be refused on another database");
    let msg = err.to_string();
    assert!(
        msg.contains("denied") || msg.contains("permission"),
        "unexpected refusal: {msg}"
    );
    assert!(login(engine, &u, "wrong-password", &a).await.is_err());

    // After the grant is removed, A is closed too (PUBLIC access is revoked on PG).
    delete(&p, GRANT, &ga).await.unwrap();
    assert!(login(engine, &u, &pw, &a).await.is_err());
}

#[tokio::test]
async fn mysql_grant_confines_user() {
    grant_confines_user(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_grant_confines_user() {
    grant_confines_user(SqlEngine::Postgres).await;
}

/// With revoke_public = false any role may connect (PostgreSQL's default); switching
/// it to true shuts out a role without a grant while the granted one still connects.
#[tokio::test]
async fn pg_revoke_public_blocks_other_roles() {
    let engine = SqlEngine::Postgres;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let db = format!("{pre}_db");
    let d = attrs(json!({ "name": db }));
    cleanup.add(DATABASE, &d);
    create(&p, DATABASE, &d).await.unwrap();
    let mut pws = Vec::new();
    for name in [format!("{pre}_app"), format!("{pre}_stranger")] {
        let u = attrs(json!({ "name": name }));
        cleanup.add(USER, &u);
        pws.push(create(&p, USER, &u).await.unwrap()["password"].clone());
    }
    let (app_pw, stranger_pw) = (pws[0].as_str().unwrap(), pws[1].as_str().unwrap());
    let app = format!("{pre}_app");
    let stranger = format!("{pre}_stranger");

    let g = attrs(
        json!({"database": db, "user": app, "privileges": ["CONNECT"], "revoke_public": false}),
    );
    cleanup.add(GRANT, &g);
    let stored = create(&p, GRANT, &g).await.unwrap();
    assert_converged(&p, GRANT, &g).await;
    login(engine, &stranger, stranger_pw, &db)
        .await
        .expect("PUBLIC may connect while revoke_public is false");

    let mut g2 = stored.clone();
    g2.insert("revoke_public".into(), json!(true));
    update(&p, GRANT, &stored, &g2, &["revoke_public"])
        .await
        .unwrap();
    assert_converged(&p, GRANT, &g2).await;
    let err = login(engine, &stranger, stranger_pw, &db)
        .await
        .expect_err("a role without a grant must be refused");
    assert!(err.to_string().contains("permission denied"), "{err}");
    login(engine, &app, app_pw, &db)
        .await
        .expect("the granted role still connects");
}

/// Users with hostile names and passwords are created through the quoting and can
/// really log in with exactly that password.
async fn hostile_user_logs_in(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let name = format!("{pre}'u\"`\\x");
    let pw = "p'w\"`\\; DROP USER x; --";
    let db_name = format!("{pre}_d'b`\"x");
    let d = attrs(json!({ "name": db_name }));
    cleanup.add(DATABASE, &d);
    create(&p, DATABASE, &d).await.unwrap();
    assert_converged(&p, DATABASE, &d).await;
    let u = attrs(json!({ "name": name, "password": pw }));
    cleanup.add(USER, &u);
    create(&p, USER, &u).await.unwrap();
    assert_converged(&p, USER, &u).await;
    let g = attrs(json!({"database": db_name, "user": name, "privileges": ["ALL"]}));
    cleanup.add(GRANT, &g);
    create(&p, GRANT, &g).await.unwrap();
    assert_converged(&p, GRANT, &g).await;
    login(engine, &name, pw, &db_name)
        .await
        .expect("hostile user logs in with its hostile password");
    delete(&p, GRANT, &g).await.unwrap();
    delete(&p, USER, &u).await.unwrap();
    delete(&p, DATABASE, &d).await.unwrap();
    assert_absent(&p, DATABASE, &d).await;
    assert_absent(&p, USER, &u).await;
}

#[tokio::test]
async fn mysql_hostile_names_are_quoted() {
    hostile_user_logs_in(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_hostile_names_are_quoted() {
    hostile_user_logs_in(SqlEngine::Postgres).await;
}
