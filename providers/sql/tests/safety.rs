//! Secrets stay out of errors; invalid names never reach the server; connection errors
//! name their target.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Provider, ProviderError, Secret};
use terrace_provider_sql::{SqlEngine, SqlProvider, DATABASE, GRANT, USER};

/// Creating a user that already exists fails on a statement that carries the password;
/// the error reports the server's message but not the password.
async fn password_not_in_errors(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let secret = format!("Zq9{}Secret", pre.replace('_', ""));
    let u = attrs(json!({"name": format!("{pre}_u"), "password": secret}));
    cleanup.add(USER, &u);
    create(&p, USER, &u).await.unwrap();
    let before = p.statements_executed();
    let err = create(&p, USER, &u)
        .await
        .expect_err("duplicate user must fail");
    assert_eq!(
        p.statements_executed(),
        before + 1,
        "the statement was sent"
    );
    let shown = format!("{err} / {err:?}");
    assert!(
        matches!(err, ProviderError::Operation { .. }),
        "server rejection is an operation error: {shown}"
    );
    assert!(!shown.contains(&secret), "password leaked: {shown}");
    assert!(shown.len() > 20, "the server's reason is kept: {shown}");
}

#[tokio::test]
async fn mysql_password_not_in_errors() {
    password_not_in_errors(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_password_not_in_errors() {
    password_not_in_errors(SqlEngine::Postgres).await;
}

/// Invalid names are rejected with `Invalid` before any statement is sent.
async fn invalid_names_rejected(engine: SqlEngine) {
    let p = provider(engine);
    let long = "x".repeat(90);
    let cases = [
        (DATABASE, json!({"name": "a\0b"})),
        (DATABASE, json!({"name": long})),
        (DATABASE, json!({"name": ""})),
        (DATABASE, json!({"name": "trailing "})),
        (USER, json!({"name": "nul\0user"})),
        (USER, json!({"name": long})),
        (USER, json!({"name": "ok", "password": "pw\0"})),
        (
            GRANT,
            json!({"database": "d", "user": "u", "privileges": ["ALL; DROP DATABASE d"]}),
        ),
        (
            GRANT,
            json!({"database": "d\0", "user": "u", "privileges": ["ALL"]}),
        ),
    ];
    for (t, a) in cases {
        let err = create(&p, t, &attrs(a.clone()))
            .await
            .expect_err("invalid input must fail");
        assert!(
            matches!(err, ProviderError::Invalid(_)),
            "{t} {a}: expected Invalid, got {err}"
        );
    }
    assert_eq!(p.statements_executed(), 0, "nothing reached the server");
}

#[tokio::test]
async fn mysql_invalid_names_rejected() {
    invalid_names_rejected(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_invalid_names_rejected() {
    invalid_names_rejected(SqlEngine::Postgres).await;
}

/// A PostgreSQL identifier of 64 bytes would be truncated silently by the server; the
/// provider refuses it instead, while 63 bytes work.
#[tokio::test]
async fn pg_name_length_limit() {
    let p = provider(SqlEngine::Postgres);
    let cleanup = Cleanup::new(SqlEngine::Postgres);
    let pre = prefix();
    let ok = format!("{pre}{}", "é".repeat((63 - pre.len()) / 2));
    let ok = format!("{ok}{}", "x".repeat(63 - ok.len()));
    assert_eq!(ok.len(), 63);
    let d = attrs(json!({ "name": ok }));
    cleanup.add(DATABASE, &d);
    create(&p, DATABASE, &d).await.unwrap();
    assert_converged(&p, DATABASE, &d).await;
    let too_long = attrs(json!({ "name": format!("{ok}y") }));
    assert!(matches!(
        create(&p, DATABASE, &too_long).await,
        Err(ProviderError::Invalid(_))
    ));
}

/// A wrong admin password gives a Connect error naming engine://user@host:port, without
/// the password.
async fn connect_error_names_target(engine: SqlEngine) {
    let mut s = server(engine);
    s.admin_password = Secret::new("Wr0ngAdminPassw0rd");
    let target = format!(
        "{}://{}@{}:{}",
        engine.scheme(),
        s.admin_user,
        s.address,
        s.port
    );
    let p = SqlProvider::new(s);
    let err = p
        .observe(&[request(DATABASE, &attrs(json!({"name": "x"})))])
        .await
        .expect_err("wrong password must fail");
    let shown = format!("{err} / {err:?}");
    assert!(matches!(err, ProviderError::Connect { .. }), "{shown}");
    assert!(shown.contains(&target), "{shown}");
    assert!(!shown.contains("Wr0ngAdminPassw0rd"), "{shown}");

    // An unreachable port is a Connect error too.
    let mut s = server(engine);
    s.port = 1;
    let err = SqlProvider::new(s)
        .observe(&[request(DATABASE, &attrs(json!({"name": "x"})))])
        .await
        .expect_err("closed port must fail");
    assert!(matches!(err, ProviderError::Connect { .. }), "{err}");
    assert!(err.to_string().contains(":1"), "{err}");
}

#[tokio::test]
async fn mysql_connect_error_names_target() {
    connect_error_names_target(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn pg_connect_error_names_target() {
    connect_error_names_target(SqlEngine::Postgres).await;
}

#[tokio::test]
async fn unknown_type_and_foreign_attributes_are_invalid() {
    for engine in ENGINES {
        let p = provider(engine);
        let bad_attr = match engine {
            SqlEngine::Mysql => json!({"name": "x", "owner": "o"}),
            SqlEngine::Postgres => json!({"name": "x", "charset": "utf8"}),
        };
        assert!(matches!(
            create(&p, DATABASE, &attrs(bad_attr)).await,
            Err(ProviderError::Invalid(_))
        ));
        assert!(matches!(
            create(&p, "sql_table", &attrs(json!({"name": "x"}))).await,
            Err(ProviderError::Invalid(_))
        ));
        assert!(p
            .observe(&[request("sql_table", &attrs(json!({"name": "x"})))])
            .await
            .is_err());
        assert_eq!(p.statements_executed(), 0);
    }
}

/// A server that accepts TCP connections and then never answers fails the provider
/// with a connection error naming it, within the connect timeout: plan and apply never
/// hang on it.
#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accept and hold every connection, silently.
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = listener.accept().await {
            conns.push(c);
        }
    });
    let checks = ENGINES.map(|engine| {
        tokio::spawn(async move {
            let mut s = server(engine);
            s.address = "127.0.0.1".into();
            s.port = port;
            let p = terrace_provider_sql::SqlProvider::new(s);
            let started = std::time::Instant::now();
            let req = request(DATABASE, &attrs(json!({"name": "x"})));
            // Without a timeout inside the provider this would hang: fail instead.
            let answer =
                tokio::time::timeout(std::time::Duration::from_secs(30), p.observe(&[req]))
                    .await
                    .expect("observe hangs on a silent server");
            let err = answer.expect_err("a silent server fails");
            assert!(started.elapsed() < std::time::Duration::from_secs(20));
            let text = err.to_string();
            assert!(
                text.contains(&format!("127.0.0.1:{port}"))
                    && text.contains("no answer within 10s"),
                "{text}"
            );
        })
    });
    for check in checks {
        check.await.unwrap();
    }
    held.abort();
}
