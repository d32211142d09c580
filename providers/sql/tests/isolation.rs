//! Isolation audit and password checks against the real servers: privileges and
//! passwords changed by hand (with the engines' own SQL) are observed as drift on the
//! account, an update repairs them, and a real login proves the repair.

mod common;

use common::*;
use serde_json::{json, Value};
use terrace_provider::{Attrs, Observed, Provider};
use terrace_provider_sql::{SqlEngine, SqlProvider, DATABASE, GRANT, USER};

/// Observes every object of `tenants` in one batch, as a plan does, and returns the
/// live attributes of each tenant's user.
async fn observe_users(p: &SqlProvider, tenants: &[&Tenant]) -> Vec<Attrs> {
    let mut reqs = Vec::new();
    for t in tenants {
        reqs.push(request(DATABASE, &t.db));
        reqs.push(request(USER, &t.user));
        reqs.push(request(GRANT, &t.grant));
    }
    let answers = p.observe(&reqs).await.expect("observe");
    answers
        .into_iter()
        .skip(1)
        .step_by(3)
        .map(|a| match a {
            Observed::Present(live) => live,
            other => panic!("user not observed: {other:?}"),
        })
        .collect()
}

fn extra(live: &Attrs) -> Vec<String> {
    serde_json::from_value(live["extra_access"].clone()).unwrap()
}

/// B, repaired, is refused on A's database and still reaches its own.
async fn assert_confined(engine: SqlEngine, b: &Tenant, a: &Tenant) {
    login(engine, b.name(), b.password(), a.db_name())
        .await
        .expect_err("after the repair B is refused on A again");
    login(engine, b.name(), b.password(), b.db_name())
        .await
        .expect("B still reaches its own database");
}

/// Repairs the user as apply does when a plan shows drift on `changed`.
async fn repair(p: &SqlProvider, t: &Tenant, changed: &[&str]) {
    update(p, USER, &t.user, &t.user, changed).await.unwrap();
}

/// Tenant B's user granted rights on tenant A's database by hand: observed as
/// "can reach database a", revoked by the update, and B's login to A is refused again.
/// Unrelated objects (another account with its own grants) raise no alarm.
async fn cross_tenant_access_is_drift_and_repaired(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    let b = tenant(&p, &cleanup, engine, &format!("{pre}b")).await;
    // An unrelated, unmanaged account with its own database and grant.
    let stranger = format!("{pre}x");
    let stranger_db = attrs(json!({ "name": stranger }));
    let stranger_user = attrs(json!({ "name": stranger, "password": "Stranger42" }));
    let stranger_grant =
        attrs(json!({ "database": stranger, "user": stranger, "privileges": ["ALL"] }));
    cleanup.add(USER, &stranger_user);
    cleanup.add(DATABASE, &stranger_db);
    cleanup.add(GRANT, &stranger_grant);
    create(&p, USER, &stranger_user).await.unwrap();
    create(&p, DATABASE, &stranger_db).await.unwrap();
    create(&p, GRANT, &stranger_grant).await.unwrap();

    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[0]), Vec::<String>::new(), "{live:?}");
    assert_eq!(extra(&live[1]), Vec::<String>::new(), "{live:?}");
    assert_eq!(live[1]["password_status"], "matches");
    login(engine, b.name(), b.password(), a.db_name())
        .await
        .expect_err("before the escalation B cannot reach A");

    // The escalation, by hand.
    match engine {
        SqlEngine::Mysql => {
            admin_exec(
                engine,
                format!(
                    "GRANT SELECT, INSERT ON `{}`.* TO '{}'@'%'",
                    a.db_name(),
                    b.name()
                ),
            )
            .await
        }
        SqlEngine::Postgres => {
            admin_exec(
                engine,
                format!(
                    "GRANT CONNECT ON DATABASE \"{}\" TO \"{}\"",
                    a.db_name(),
                    b.name()
                ),
            )
            .await
        }
    }
    login(engine, b.name(), b.password(), a.db_name())
        .await
        .expect("the escalation lets B reach A");

    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(
        extra(&live[0]),
        Vec::<String>::new(),
        "A itself gained nothing"
    );
    let expected = match engine {
        // The name has `_`, a wildcard: the hand-made grant on the raw name reaches
        // every database matching it.
        SqlEngine::Mysql => format!(
            "can reach every database matching `{}` (`_` and `%` are wildcards there) (INSERT, SELECT)",
            a.db_name()
        ),
        SqlEngine::Postgres => format!("can reach database `{}` (CONNECT)", a.db_name()),
    };
    assert_eq!(extra(&live[1]), vec![expected]);

    repair(&p, &b, &["extra_access"]).await;
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[1]), Vec::<String>::new(), "{live:?}");
    assert_confined(engine, &b, &a).await;
}

/// A tenant's own grant re-made by hand on its raw name, as people type it (`GRANT
/// ALL ON acc__a.*`): `_` is a wildcard there, so it reaches another tenant's database
/// (`acc_xa`). It is not taken for the configured grant: the grant reads as absent, the
/// audit reports the pattern, and the repair (the user's update and the grant's
/// create, as one apply makes them) shuts the other tenant out again.
#[tokio::test]
async fn mysql_own_grant_on_the_raw_name_is_reported_as_reaching_other_tenants() {
    let engine = SqlEngine::Mysql;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}_xa")).await;
    let b = tenant(&p, &cleanup, engine, &format!("{pre}__a")).await;
    let escaped = b.db_name().replace('_', "\\_");
    admin_exec(
        engine,
        format!(
            "REVOKE ALL PRIVILEGES ON `{escaped}`.* FROM '{}'@'%'",
            b.name()
        ),
    )
    .await;
    admin_exec(
        engine,
        format!(
            "GRANT ALL PRIVILEGES ON `{}`.* TO '{}'@'%'",
            b.db_name(),
            b.name()
        ),
    )
    .await;
    login(engine, b.name(), b.password(), a.db_name())
        .await
        .expect("the raw pattern lets B reach A");

    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[0]), Vec::<String>::new(), "{live:?}");
    assert_eq!(
        extra(&live[1]),
        vec![format!(
            "can reach every database matching `{}` (`_` and `%` are wildcards there) (ALL)",
            b.db_name()
        )]
    );
    assert!(matches!(
        observe(&p, GRANT, &b.grant).await,
        Observed::Absent
    ));

    repair(&p, &b, &["extra_access"]).await;
    create(&p, GRANT, &b.grant).await.unwrap();
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[1]), Vec::<String>::new(), "{live:?}");
    assert_confined(engine, &b, &a).await;
}

#[tokio::test]
async fn mysql_cross_tenant_access_is_drift_and_repaired() {
    cross_tenant_access_is_drift_and_repaired(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn postgres_cross_tenant_access_is_drift_and_repaired() {
    cross_tenant_access_is_drift_and_repaired(SqlEngine::Postgres).await;
}

/// MariaDB: global grants (those with a `mysql.user` column and those without), a
/// grant on the escaped name of another database, a grant on its own raw name beside
/// the escaped one, GRANT OPTION on its own, a table grant, a grant on another tenant's
/// procedure and a role are all seen and all revoked, while the configured grant
/// survives.
#[tokio::test]
async fn mysql_global_table_role_and_grant_option_are_audited() {
    let engine = SqlEngine::Mysql;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    let b = tenant(&p, &cleanup, engine, &format!("{pre}b")).await;
    let role = format!("{pre}role");
    let escaped_a = a.db_name().replace('_', "\\_");
    admin_exec(engine, format!("CREATE TABLE `{}`.t (x INT)", a.db_name())).await;
    admin_exec(
        engine,
        format!(
            "CREATE PROCEDURE `{}`.dump() SQL SECURITY DEFINER SELECT * FROM `{}`.t",
            a.db_name(),
            a.db_name()
        ),
    )
    .await;
    admin_exec(engine, format!("CREATE ROLE `{role}`")).await;
    for sql in [
        // SET USER and CONNECTION ADMIN have no `mysql.user` column (MariaDB 10.5 on).
        format!(
            "GRANT CREATE USER, PROCESS, SET USER, CONNECTION ADMIN ON *.* TO '{}'@'%'",
            b.name()
        ),
        format!(
            "GRANT EXECUTE ON PROCEDURE `{}`.dump TO '{}'@'%'",
            a.db_name(),
            b.name()
        ),
        format!("GRANT SELECT ON `{escaped_a}`.* TO '{}'@'%'", b.name()),
        format!(
            "GRANT SELECT ON `{}`.`t` TO '{}'@'%'",
            a.db_name(),
            b.name()
        ),
        format!("GRANT `{role}` TO '{}'@'%'", b.name()),
        // Beside terrace's escaped grant, one on B's raw name (a wildcard pattern) must
        // not be masked by it.
        format!("GRANT DELETE ON `{}`.* TO '{}'@'%'", b.db_name(), b.name()),
        format!(
            "GRANT ALL ON `{}`.* TO '{}'@'%' WITH GRANT OPTION",
            b.db_name().replace('_', "\\_"),
            b.name()
        ),
    ] {
        admin_exec(engine, sql).await;
    }
    let live = observe_users(&p, &[&a, &b]).await;
    let mut want = vec![
        format!(
            "can pass its access to database `{}` on to other accounts (GRANT OPTION)",
            b.db_name()
        ),
        format!("can reach database `{}` (SELECT)", a.db_name()),
        format!(
            "can reach every database matching `{}` (`_` and `%` are wildcards there) (DELETE)",
            b.db_name()
        ),
        format!("can reach table `t` of database `{}` (SELECT)", a.db_name()),
        format!(
            "can reach procedure `dump` of database `{}` (EXECUTE)",
            a.db_name()
        ),
        "holds privileges on every database (PROCESS, CREATE USER, SET USER, CONNECTION ADMIN)"
            .to_string(),
        format!("is a member of role `{role}` and holds its privileges"),
    ];
    want.sort();
    assert_eq!(extra(&live[1]), want);

    repair(&p, &b, &["extra_access"]).await;
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[1]), Vec::<String>::new(), "{live:?}");
    // The configured grant is untouched.
    let Observed::Present(g) = observe(&p, GRANT, &b.grant).await else {
        panic!("B's grant is gone");
    };
    assert_eq!(g["privileges"], json!(["ALL"]));
    login(engine, b.name(), b.password(), b.db_name())
        .await
        .unwrap();
    admin_exec(engine, format!("DROP ROLE `{role}`")).await;
}

/// PostgreSQL: role attributes, NOLOGIN, membership in another tenant's role (which
/// would hand B everything A owns) and privileges for PUBLIC are all seen and repaired.
#[tokio::test]
async fn postgres_role_attributes_membership_and_public_are_audited() {
    let engine = SqlEngine::Postgres;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    let b = tenant(&p, &cleanup, engine, &format!("{pre}b")).await;
    for sql in [
        format!("ALTER ROLE \"{}\" CREATEDB CREATEROLE", b.name()),
        format!("GRANT \"{}\" TO \"{}\"", a.name(), b.name()),
        format!("GRANT TEMPORARY ON DATABASE \"{}\" TO PUBLIC", a.db_name()),
    ] {
        admin_exec(engine, sql).await;
    }
    // Membership in A's role lets B into A's database (A owns it).
    login(engine, b.name(), b.password(), a.db_name())
        .await
        .expect("membership lets B reach A");
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(
        extra(&live[1]),
        vec![
            "has role attribute CREATEDB".to_string(),
            "has role attribute CREATEROLE".to_string(),
            format!(
                "is a member of role `{}` and holds its privileges",
                a.name()
            ),
        ]
    );
    let Observed::Present(g) = observe(&p, GRANT, &a.grant).await else {
        panic!("A's grant is gone");
    };
    assert_eq!(
        g["revoke_public"],
        Value::Bool(false),
        "PUBLIC holds TEMPORARY on A"
    );

    repair(&p, &b, &["extra_access"]).await;
    update(&p, GRANT, &a.grant, &a.grant, &["revoke_public"])
        .await
        .unwrap();
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[1]), Vec::<String>::new(), "{live:?}");
    let Observed::Present(g) = observe(&p, GRANT, &a.grant).await else {
        panic!("A's grant is gone");
    };
    assert_eq!(g["revoke_public"], Value::Bool(true));
    assert_confined(engine, &b, &a).await;

    // A role that lost LOGIN is reported, and gets it back.
    admin_exec(engine, format!("ALTER ROLE \"{}\" NOLOGIN", b.name())).await;
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[1]), vec!["cannot log in (NOLOGIN)".to_string()]);
    repair(&p, &b, &["extra_access"]).await;
    login(engine, b.name(), b.password(), b.db_name())
        .await
        .unwrap();
}

/// A password changed by hand is seen without logging in, and set back by the update;
/// the application's password (the one in state) works again.
async fn password_changed_by_hand_is_drift_and_repaired(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(live[0]["password_status"], "matches");
    match engine {
        SqlEngine::Mysql => {
            admin_exec(
                engine,
                format!("ALTER USER '{}'@'%' IDENTIFIED BY 'ByHand123'", a.name()),
            )
            .await
        }
        SqlEngine::Postgres => {
            admin_exec(
                engine,
                format!("ALTER ROLE \"{}\" PASSWORD 'ByHand123'", a.name()),
            )
            .await
        }
    }
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect_err("the application's password no longer works");
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(live[0]["password_status"], "changed outside terrace");

    repair(&p, &a, &["password_status"]).await;
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(live[0]["password_status"], "matches");
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect("the application's password works again");
}

/// MariaDB ways to keep a second password or shut the application out that leave the
/// first login method's hash as terrace set it: a second method (`IDENTIFIED VIA … OR
/// …`), `PASSWORD EXPIRE`, an expiry interval, `REQUIRE SSL` and `ACCOUNT LOCK`. Each is drift, and the repair a plan
/// makes for it restores exactly one way in, the application's.
#[tokio::test]
async fn mysql_second_password_expiry_and_lock_are_drift_and_repaired() {
    let engine = SqlEngine::Mysql;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let a = tenant(&p, &cleanup, engine, &format!("{}a", prefix())).await;
    let acct = format!("'{}'@'%'", a.name());

    admin_exec(
        engine,
        format!(
            "ALTER USER {acct} IDENTIFIED VIA mysql_native_password USING PASSWORD('{}') \
             OR mysql_native_password USING PASSWORD('Backdoor42')",
            a.password()
        ),
    )
    .await;
    login(engine, a.name(), "Backdoor42", a.db_name())
        .await
        .expect("the second password works");
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(
        live[0]["password_status"],
        "another password also works (added outside terrace)"
    );
    repair(&p, &a, &["password_status"]).await;
    assert_eq!(
        observe_users(&p, &[&a]).await[0]["password_status"],
        "matches"
    );
    login(engine, a.name(), "Backdoor42", a.db_name())
        .await
        .expect_err("after the repair the second password is refused");
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect("the application's password still works");

    admin_exec(engine, format!("ALTER USER {acct} PASSWORD EXPIRE")).await;
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect_err("an expired password is refused");
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(live[0]["password_status"], "expired outside terrace");
    repair(&p, &a, &["password_status"]).await;
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect("the password set again works");

    admin_exec(
        engine,
        format!("ALTER USER {acct} PASSWORD EXPIRE INTERVAL 1 DAY"),
    )
    .await;
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(
        extra(&live[0]),
        vec!["its password expires 1 days after it is set (PASSWORD EXPIRE INTERVAL)".to_string()]
    );
    repair(&p, &a, &["extra_access"]).await;
    assert_eq!(
        extra(&observe_users(&p, &[&a]).await[0]),
        Vec::<String>::new()
    );

    admin_exec(engine, format!("ALTER USER {acct} REQUIRE SSL")).await;
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect_err("a connection without TLS is refused");
    assert_eq!(
        extra(&observe_users(&p, &[&a]).await[0]),
        vec!["can log in only over TLS (REQUIRE SSL or X509)".to_string()]
    );
    repair(&p, &a, &["extra_access"]).await;
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect("without the requirement the application logs in again");

    admin_exec(engine, format!("ALTER USER {acct} ACCOUNT LOCK")).await;
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect_err("a locked account is refused");
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(
        extra(&live[0]),
        vec!["cannot log in (ACCOUNT LOCK)".to_string()]
    );
    assert_eq!(live[0]["password_status"], "matches");
    repair(&p, &a, &["extra_access"]).await;
    assert_eq!(
        extra(&observe_users(&p, &[&a]).await[0]),
        Vec::<String>::new()
    );
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect("unlocked, the application logs in again");
}

/// A connection limit set by hand on a tenant's account that the configuration leaves
/// unlimited (`CONNECTION LIMIT 0` shuts the application out) is drift, and the
/// update takes it away again.
async fn connection_limit_set_by_hand_is_drift_and_repaired(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let a = tenant(&p, &cleanup, engine, &format!("{}a", prefix())).await;
    let none = match engine {
        SqlEngine::Mysql => 0,
        SqlEngine::Postgres => -1,
    };
    assert_eq!(
        a.user["connection_limit"],
        json!(none),
        "normalize says none"
    );
    assert_eq!(
        observe_users(&p, &[&a]).await[0]["connection_limit"],
        json!(none)
    );
    let sql = match engine {
        SqlEngine::Mysql => format!("ALTER USER '{}'@'%' WITH MAX_USER_CONNECTIONS 1", a.name()),
        SqlEngine::Postgres => format!("ALTER ROLE \"{}\" CONNECTION LIMIT 0", a.name()),
    };
    admin_exec(engine, sql).await;
    let live = observe_users(&p, &[&a]).await;
    assert_ne!(live[0]["connection_limit"], json!(none), "{live:?}");
    repair(&p, &a, &["connection_limit"]).await;
    assert_eq!(
        observe_users(&p, &[&a]).await[0]["connection_limit"],
        json!(none)
    );
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect("the application logs in again");
}

#[tokio::test]
async fn mysql_connection_limit_set_by_hand_is_drift_and_repaired() {
    connection_limit_set_by_hand_is_drift_and_repaired(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn postgres_connection_limit_set_by_hand_is_drift_and_repaired() {
    connection_limit_set_by_hand_is_drift_and_repaired(SqlEngine::Postgres).await;
}

/// MariaDB 10.11: a grant to `PUBLIC` on a tenant's database lets every account in,
/// the other tenants' among them. It is reported on each tenant it lets in (not on the
/// owner, whose own database it is), and the repair revokes it from PUBLIC.
#[tokio::test]
async fn mysql_grants_to_public_are_audited() {
    let engine = SqlEngine::Mysql;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    let b = tenant(&p, &cleanup, engine, &format!("{pre}b")).await;
    let escaped_a = a.db_name().replace('_', "\\_");
    admin_exec(engine, format!("GRANT SELECT ON `{escaped_a}`.* TO PUBLIC")).await;
    login(engine, b.name(), b.password(), a.db_name())
        .await
        .expect("PUBLIC lets B reach A");
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[0]), Vec::<String>::new(), "{live:?}");
    assert_eq!(
        extra(&live[1]),
        vec![format!(
            "can reach database `{}` (SELECT), through PUBLIC (so does every account)",
            a.db_name()
        )]
    );
    repair(&p, &b, &["extra_access"]).await;
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[1]), Vec::<String>::new(), "{live:?}");
    assert_confined(engine, &b, &a).await;
}

/// PostgreSQL: a `VALID UNTIL` in the past shuts the application out like `NOLOGIN`;
/// one in the future will. Either is drift, and the repair makes the password valid
/// for good again.
#[tokio::test]
async fn postgres_valid_until_is_drift_and_repaired() {
    let engine = SqlEngine::Postgres;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let a = tenant(&p, &cleanup, engine, &format!("{}a", prefix())).await;
    admin_exec(
        engine,
        format!(
            "ALTER ROLE \"{}\" VALID UNTIL '2000-01-01 00:00:00+00'",
            a.name()
        ),
    )
    .await;
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect_err("an expired password is refused");
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(
        extra(&live[0]),
        vec!["its password expires at 2000-01-01 00:00:00 UTC (VALID UNTIL)".to_string()]
    );
    repair(&p, &a, &["extra_access"]).await;
    assert_eq!(
        extra(&observe_users(&p, &[&a]).await[0]),
        Vec::<String>::new()
    );
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .expect("valid again, the application logs in");
}

/// PostgreSQL: session settings put on a tenant's role (`ALTER ROLE … SET`, everywhere
/// or in one database) and settings of its database that shut it out or let others copy
/// it are drift; the repair resets them.
#[tokio::test]
async fn postgres_role_settings_and_database_flags_are_drift_and_repaired() {
    let engine = SqlEngine::Postgres;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let a = tenant(&p, &cleanup, engine, &format!("{}a", prefix())).await;
    let (role, db) = (a.name(), a.db_name());
    for sql in [
        format!("ALTER ROLE \"{role}\" SET default_transaction_read_only = on"),
        format!("ALTER ROLE \"{role}\" IN DATABASE \"{db}\" SET work_mem = '64kB'"),
        format!("ALTER DATABASE \"{db}\" IS_TEMPLATE true"),
    ] {
        admin_exec(engine, sql).await;
    }
    let live = observe_users(&p, &[&a]).await;
    let mut want = vec![
        format!("database `{db}` can be copied by any role that may create databases (IS_TEMPLATE true)"),
        "starts every session with `default_transaction_read_only=on` (ALTER ROLE … SET)".to_string(),
        format!("starts every session in database `{db}` with `work_mem=64kB` (ALTER ROLE … SET)"),
    ];
    want.sort();
    assert_eq!(extra(&live[0]), want);
    repair(&p, &a, &["extra_access"]).await;
    assert_eq!(
        extra(&observe_users(&p, &[&a]).await[0]),
        Vec::<String>::new()
    );

    admin_exec(
        engine,
        format!("ALTER DATABASE \"{db}\" ALLOW_CONNECTIONS false"),
    )
    .await;
    login(engine, role, a.password(), db)
        .await
        .expect_err("no connections to the database");
    assert_eq!(
        extra(&observe_users(&p, &[&a]).await[0]),
        vec![format!(
            "cannot connect to database `{db}` (ALLOW_CONNECTIONS false)"
        )]
    );
    repair(&p, &a, &["extra_access"]).await;
    login(engine, role, a.password(), db)
        .await
        .expect("the application connects again");
}

#[tokio::test]
async fn mysql_password_changed_by_hand_is_drift_and_repaired() {
    password_changed_by_hand_is_drift_and_repaired(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn postgres_password_changed_by_hand_is_drift_and_repaired() {
    password_changed_by_hand_is_drift_and_repaired(SqlEngine::Postgres).await;
}

/// PostgreSQL stores the verifier terrace computed: the server never saw the password
/// (so `log_statement` cannot log it), yet the password logs in.
#[tokio::test]
async fn postgres_stores_a_scram_verifier_computed_by_terrace() {
    let engine = SqlEngine::Postgres;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    login(engine, a.name(), a.password(), a.db_name())
        .await
        .unwrap();
    let live = observe_users(&p, &[&a]).await;
    assert_eq!(live[0]["password_status"], "matches");
    assert!(p.unverified().is_empty(), "{:?}", p.unverified());
    // State records the fingerprint of the verifier, which later plans compare first.
    assert_eq!(
        a.user["password_fingerprint"].as_str().map(str::len),
        Some(64)
    );
}

/// An admin that may not read `pg_authid` (not a superuser) still audits privileges,
/// but cannot check passwords: the provider says so instead of reporting a match.
#[tokio::test]
async fn postgres_passwords_an_admin_cannot_read_are_reported_unverified() {
    let engine = SqlEngine::Postgres;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    let admin = format!("{pre}adm");
    admin_exec(
        engine,
        format!("CREATE ROLE \"{admin}\" LOGIN CREATEROLE PASSWORD 'Adm1nPw42'"),
    )
    .await;
    let mut server = server(engine);
    server.admin_user = admin.clone();
    server.admin_password = terrace_provider::Secret::new("Adm1nPw42");
    let limited = SqlProvider::new(server);
    let live = observe_users(&limited, &[&a]).await;
    admin_exec(engine, format!("DROP ROLE \"{admin}\"")).await;
    assert!(!live[0].contains_key("password_status"), "{live:?}");
    assert_eq!(extra(&live[0]), Vec::<String>::new());
    let notes = limited.unverified();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!("passwords of {} on postgres://{admin}@", a.name()))
            && notes[0].contains("may not read pg_authid"),
        "{notes:?}"
    );
}

/// Among 200 foreign databases and accounts (another project's, on a shared server), a
/// managed user that was given access to one of them by hand is still reported, though
/// observe reads only what its batch concerns: what an account holds is selected by the
/// account, wherever it is. MariaDB: a database grant, a wildcard pattern, a table grant
/// and a role, all on foreign objects; PostgreSQL: privileges on a foreign database,
/// ownership of another, membership in a foreign role.
async fn access_to_a_foreign_database_among_many_is_reported(engine: SqlEngine) {
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    let b = tenant(&p, &cleanup, engine, &format!("{pre}b")).await;
    let foreign = Foreign::create(engine, &pre, 200).await;
    let (f1, f2, f3) = (&foreign.names[137], &foreign.names[42], &foreign.names[7]);
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[1]), Vec::<String>::new(), "{live:?}");
    let want = match engine {
        SqlEngine::Mysql => {
            admin_exec(engine, format!("CREATE TABLE `{f2}`.t (x INT)")).await;
            admin_exec(engine, format!("CREATE ROLE `{pre}frole`")).await;
            for sql in [
                format!(
                    "GRANT SELECT ON `{}`.* TO '{}'@'%'",
                    f1.replace('_', "\\_"),
                    b.name()
                ),
                format!("GRANT INSERT ON `{pre}f1%`.* TO '{}'@'%'", b.name()),
                format!("GRANT UPDATE ON `{f2}`.`t` TO '{}'@'%'", b.name()),
                format!("GRANT `{pre}frole` TO '{}'@'%'", b.name()),
            ] {
                admin_exec(engine, sql).await;
            }
            vec![
                format!("can reach database `{f1}` (SELECT)"),
                format!(
                    "can reach every database matching `{pre}f1%` (`_` and `%` are wildcards there) (INSERT)"
                ),
                format!("can reach table `t` of database `{f2}` (UPDATE)"),
                format!("is a member of role `{pre}frole` and holds its privileges"),
            ]
        }
        SqlEngine::Postgres => {
            for sql in [
                format!(
                    "GRANT CONNECT, TEMPORARY ON DATABASE \"{f1}\" TO \"{}\"",
                    b.name()
                ),
                format!("ALTER DATABASE \"{f2}\" OWNER TO \"{}\"", b.name()),
                format!("GRANT \"{f3}\" TO \"{}\"", b.name()),
            ] {
                admin_exec(engine, sql).await;
            }
            vec![
                format!("can reach database `{f1}` (CONNECT, TEMPORARY)"),
                format!("is a member of role `{f3}` and holds its privileges"),
                format!("owns database `{f2}`"),
            ]
        }
    };
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[0]), Vec::<String>::new(), "A gained nothing");
    let mut want = want;
    want.sort();
    assert_eq!(extra(&live[1]), want);
    repair(&p, &b, &["extra_access"]).await;
    let live = observe_users(&p, &[&a, &b]).await;
    assert_eq!(extra(&live[1]), Vec::<String>::new(), "{live:?}");
    if engine == SqlEngine::Mysql {
        admin_exec(engine, format!("DROP ROLE `{pre}frole`")).await;
    }
}

#[tokio::test]
async fn mysql_access_to_a_foreign_database_among_many_is_reported() {
    access_to_a_foreign_database_among_many_is_reported(SqlEngine::Mysql).await;
}

#[tokio::test]
async fn postgres_access_to_a_foreign_database_among_many_is_reported() {
    access_to_a_foreign_database_among_many_is_reported(SqlEngine::Postgres).await;
}

/// The reverse audit (PostgreSQL): a role terrace does not manage given rights on a
/// tenant's database by hand is drift on the database's `other_access`, and the update
/// revokes exactly that. The tenant's own user, another managed tenant's user (its
/// side is its own `extra_access`), the owner and the admin are not listed.
#[tokio::test]
async fn postgres_a_stranger_role_reaching_a_tenant_database_is_drift_and_revoked() {
    let engine = SqlEngine::Postgres;
    let p = provider(engine);
    let cleanup = Cleanup::new(engine);
    let pre = prefix();
    let a = tenant(&p, &cleanup, engine, &format!("{pre}a")).await;
    let b = tenant(&p, &cleanup, engine, &format!("{pre}b")).await;
    let stranger = format!("{pre}_stranger");
    cleanup.add(USER, &attrs(json!({ "name": stranger })));
    let db = a.db_name();
    for sql in [
        format!("CREATE ROLE \"{stranger}\" LOGIN PASSWORD 'Stranger-Pw1'"),
        format!("GRANT CONNECT, CREATE ON DATABASE \"{db}\" TO \"{stranger}\""),
        format!("GRANT CONNECT ON DATABASE \"{db}\" TO \"{}\"", b.name()),
    ] {
        admin_exec(engine, sql).await;
    }
    login(engine, &stranger, "Stranger-Pw1", db)
        .await
        .expect("the stranger reaches A's database");
    // Observed as a plan does: every tenant's objects in one batch.
    let mut all = Vec::new();
    for t in [&a, &b] {
        all.extend([
            request(DATABASE, &t.db),
            request(USER, &t.user),
            request(GRANT, &t.grant),
        ]);
    }
    let answers = p.observe(&all).await.unwrap();
    let Observed::Present(live) = &answers[0] else {
        panic!("A's database not observed")
    };
    assert_eq!(
        live["other_access"],
        json!([format!("role `{stranger}` can reach it (CONNECT, CREATE)")])
    );
    let Observed::Present(live_b) = &answers[3] else {
        panic!("B's database not observed")
    };
    assert_eq!(live_b["other_access"], json!([]));

    update(&p, DATABASE, &a.db, &a.db, &["other_access"])
        .await
        .unwrap();
    login(engine, &stranger, "Stranger-Pw1", db)
        .await
        .expect_err("the stranger is refused on A's database after the repair");
    let Observed::Present(after) = &p.observe(&all).await.unwrap()[0] else {
        panic!("A's database not observed")
    };
    assert_eq!(after["other_access"], json!([]));
    // Alone in a batch, the database is still checked: B's user, outside this batch,
    // is someone terrace does not manage here.
    let Observed::Present(alone) = &p.observe(&[request(DATABASE, &a.db)]).await.unwrap()[0] else {
        panic!("A's database not observed")
    };
    assert_eq!(
        alone["other_access"],
        json!([format!("role `{}` can reach it (CONNECT)", b.name())])
    );
}
