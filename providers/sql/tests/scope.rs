//! Observe reads only what its batch concerns: on a shared server the databases and
//! accounts of other projects cost a plan nothing (issue #15), yet every name is matched
//! exactly, wildcard characters and hostile quoting included.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Observed, Provider};
use terrace_provider_sql::quote::{mysql_ident, mysql_string, pg_ident};
use terrace_provider_sql::{SqlEngine, SqlProvider, DATABASE, GRANT, USER};

/// Statements that make an unmanaged database and account named `name`, the account
/// holding every privilege on the database.
fn foreign_sql(engine: SqlEngine, name: &str) -> Vec<String> {
    match engine {
        SqlEngine::Mysql => vec![
            format!("CREATE DATABASE {}", mysql_ident(name)),
            format!(
                "CREATE USER {}@'%' IDENTIFIED BY 'Foreign42'",
                mysql_string(name)
            ),
            format!(
                "GRANT ALL ON {}.* TO {}@'%'",
                mysql_ident(name),
                mysql_string(name)
            ),
        ],
        SqlEngine::Postgres => vec![
            format!("CREATE ROLE {} LOGIN PASSWORD 'Foreign42'", pg_ident(name)),
            format!(
                "CREATE DATABASE {} OWNER {}",
                pg_ident(name),
                pg_ident(name)
            ),
        ],
    }
}

fn drop_foreign_sql(engine: SqlEngine, name: &str) -> Vec<String> {
    match engine {
        SqlEngine::Mysql => vec![
            format!("DROP DATABASE IF EXISTS {}", mysql_ident(name)),
            format!("DROP USER IF EXISTS {}@'%'", mysql_string(name)),
        ],
        SqlEngine::Postgres => vec![
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg_ident(name)),
            format!("DROP ROLE IF EXISTS {}", pg_ident(name)),
        ],
    }
}

/// Two tenants, one plainly named with a `_` (a wildcard in `LIKE` and in MariaDB grant
/// patterns) and one with quotes, a backtick, a backslash and `%`, are observed; then 200
/// foreign databases and accounts appear, with look-alikes of the tenants' names (the
/// wildcards filled in, another case, the backslash doubled). The same batch reads the
/// same number of catalog rows in the same number of statements, and answers the same.
async fn observe_reads_only_the_batch(engine: SqlEngine, p: SqlProvider) {
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let plain = format!("{pre}a_b");
    let hostile = format!("{pre}q'\"`\\%");
    let mut reqs = Vec::new();
    for name in [&plain, &hostile] {
        let t = tenant(&p, &cleanup, engine, name).await;
        for a in [t.db, t.user, t.grant] {
            let t = if a.contains_key("database") {
                GRANT
            } else if a.contains_key("extra_access") {
                USER
            } else {
                DATABASE
            };
            reqs.push(request(t, &a));
        }
    }
    let (rows, stmts) = (p.catalog_rows_read(), p.statements_executed());
    let before = p.observe(&reqs).await.unwrap();
    let rows_alone = p.catalog_rows_read() - rows;
    let stmts_alone = p.statements_executed() - stmts;
    assert!(
        before.iter().all(|a| matches!(a, Observed::Present(_))),
        "{before:?}"
    );

    let _foreign = Foreign::create(engine, &pre, 200).await;
    let look_alikes = [
        format!("{pre}aXb"),
        format!("{pre}A_B"),
        format!("{pre}q'\"`\\X"),
        format!("{pre}q'\"`\\\\%"),
        format!("{pre}Q'\"`\\%"),
    ];
    for name in &look_alikes {
        for sql in foreign_sql(engine, name) {
            admin_exec(engine, sql).await;
        }
    }
    let (rows, stmts) = (p.catalog_rows_read(), p.statements_executed());
    let after = p.observe(&reqs).await.unwrap();
    let rows_shared = p.catalog_rows_read() - rows;
    let stmts_shared = p.statements_executed() - stmts;
    // A batch of more databases and accounts than MariaDB's provider looks up one by
    // one: the server matches them in one scan of each catalog instead, as exactly.
    let mut large = reqs.clone();
    for i in 0..70 {
        let missing = attrs(json!({ "name": format!("{pre}missing{i}") }));
        large.push(request(DATABASE, &missing));
        large.push(request(USER, &missing));
    }
    // Names no MariaDB catalog can hold (a character outside the BMP, more characters
    // than its columns) name nothing, and fail nothing.
    for name in [
        format!("{pre}\u{1F600}"),
        format!("{pre}{}", "x".repeat(200)),
    ] {
        large.push(request(DATABASE, &attrs(json!({ "name": name }))));
        large.push(request(USER, &attrs(json!({ "name": name }))));
    }
    let (rows, stmts) = (p.catalog_rows_read(), p.statements_executed());
    let answers = p.observe(&large).await.unwrap();
    let rows_large = p.catalog_rows_read() - rows;
    let stmts_large = p.statements_executed() - stmts;
    for name in &look_alikes {
        for sql in drop_foreign_sql(engine, name) {
            admin_exec(engine, sql).await;
        }
    }
    assert_eq!(after, before, "the same answers on a shared server");
    assert_eq!(answers[..reqs.len()], before[..]);
    assert!(answers[reqs.len()..].iter().all(|a| *a == Observed::Absent));
    assert_eq!((rows_large, stmts_large), (rows_alone, stmts_alone));
    assert_eq!(stmts_shared, stmts_alone, "the same statements");
    assert_eq!(
        rows_shared, rows_alone,
        "the catalog rows read must not grow with foreign objects"
    );
    // Exactly the tenants' own rows: MariaDB one database, one account and one
    // `mysql.db` row each; PostgreSQL one database and one role each, and the owner's
    // three privileges (CREATE, TEMPORARY, CONNECT) on each database.
    let own = match engine {
        SqlEngine::Mysql => 6,
        SqlEngine::Postgres => 10,
    };
    assert_eq!(rows_shared, own);
}

#[tokio::test]
async fn mysql_observe_reads_only_the_batch() {
    observe_reads_only_the_batch(SqlEngine::Mysql, provider(SqlEngine::Mysql)).await;
}

/// As on MariaDB 10.4 and 10.5, which have no `JSON_TABLE`: small batches select their
/// accounts with `IN (?, …)`, as exactly.
#[tokio::test]
async fn mysql_without_json_table_observe_reads_only_the_batch() {
    let p = provider(SqlEngine::Mysql).without_json_table();
    observe_reads_only_the_batch(SqlEngine::Mysql, p).await;
}

#[tokio::test]
async fn pg_observe_reads_only_the_batch() {
    observe_reads_only_the_batch(SqlEngine::Postgres, provider(SqlEngine::Postgres)).await;
}
