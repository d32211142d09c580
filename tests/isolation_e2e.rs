//! End to end, as an operator meets it: two tenants applied by the real binary, then
//! tenant B's user is granted tenant A's database and A's password is changed by hand
//! with the engine's own SQL. The plan must show both as drift on the accounts (exit
//! code 2), apply must repair them, the next plan must be empty, and a real login
//! proves B is refused on A again while A's application password works.

mod common;

use common::{block_on, mysql_admin, mysql_service, pg_admin, pg_service, unique, Project};
use expect_test::{expect, Expect};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions};

#[derive(Clone, Copy)]
enum Engine {
    Postgres,
    Mariadb,
}

fn project(engine: Engine, a: &str, b: &str) -> String {
    let (service, name) = match engine {
        Engine::Postgres => (pg_service(), "pg"),
        Engine::Mariadb => (mysql_service(), "db"),
    };
    format!(
        r#"{service}
tenant "app" {{
  for_each = toset(["{a}", "{b}"])
  database {{
    service = service.{name}
    name    = each.key
  }}
}}
"#
    )
}

async fn admin(engine: Engine, sql: String) {
    match engine {
        Engine::Postgres => {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&pg_admin().await)
                .await
                .unwrap();
        }
        Engine::Mariadb => {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mysql_admin().await)
                .await
                .unwrap();
        }
    }
}

async fn login(engine: Engine, user: &str, password: &str, db: &str) -> Result<(), String> {
    let r = match engine {
        Engine::Postgres => PgConnectOptions::new()
            .host("127.0.0.1")
            .port(5432)
            .username(user)
            .password(password)
            .database(db)
            .connect()
            .await
            .map(drop),
        Engine::Mariadb => MySqlConnectOptions::new()
            .host("127.0.0.1")
            .port(3306)
            .username(user)
            .password(password)
            .database(db)
            .connect()
            .await
            .map(drop),
    };
    r.map_err(|e| e.to_string())
}

fn escalation_and_password_drift_are_planned_and_repaired(engine: Engine, snapshot: Expect) {
    let a = unique("isoa");
    let b = unique("isob");
    let p = Project::new(&project(engine, &a, &b));
    p.apply();
    p.plan().expect_code(0);
    let user = |t: &str| format!("tenant.app[\"{t}\"].database.user");
    let password = |t: &str| {
        p.state_attrs(&user(t))["password"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (pw_a, pw_b) = (password(&a), password(&b));

    block_on(async {
        match engine {
            Engine::Postgres => {
                admin(
                    engine,
                    format!("GRANT CONNECT ON DATABASE \"{a}\" TO \"{b}\""),
                )
                .await;
                admin(engine, format!("ALTER ROLE \"{a}\" PASSWORD 'ByHand123'")).await;
            }
            Engine::Mariadb => {
                let escaped = a.replace('_', "\\_");
                admin(
                    engine,
                    format!("GRANT SELECT ON `{escaped}`.* TO '{b}'@'%'"),
                )
                .await;
                admin(
                    engine,
                    format!("ALTER USER '{a}'@'%' IDENTIFIED BY 'ByHand123'"),
                )
                .await;
            }
        }
        login(engine, &b, &pw_b, &a)
            .await
            .expect("the escalation lets B reach A");
    });

    let plan = p.plan().expect_code(2);
    let shown = plan.stdout.replace(&a, "A").replace(&b, "B");
    snapshot.assert_eq(&shown);
    assert!(!plan.all().contains(&pw_a) && !plan.all().contains(&pw_b));

    p.apply();
    let again = p.plan().expect_code(0);
    assert!(
        again
            .stdout
            .contains("No changes. The live systems match the configuration."),
        "{}",
        again.stdout
    );
    block_on(async {
        login(engine, &b, &pw_b, &a)
            .await
            .expect_err("after apply B is refused on A again");
        login(engine, &a, &pw_a, &a)
            .await
            .expect("A's application password works again");
    });
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn postgres_escalation_and_password_drift_are_planned_and_repaired() {
    escalation_and_password_drift_are_planned_and_repaired(
        Engine::Postgres,
        expect![[r#"
            Objects changed outside terrace since the last apply (drift):

              # tenant.app["A"].database.user has changed outside terrace
              ~ sql_user {
                  ~ password_status = "matches" -> "changed outside terrace"
                }
              # tenant.app["B"].database.user has changed outside terrace
              ~ sql_user {
                  ~ extra_access = [
                      + can reach database `A` (CONNECT)
                    ]
                }

            terrace will perform the following actions:

              # tenant.app["A"].database.user will be updated in place
              # (changed outside terrace; apply sets it back)
              ~ sql_user {
                    name            = "A"
                  ~ password_status = "changed outside terrace" -> "matches"
                    # (3 unchanged attributes hidden)
                }

              # tenant.app["B"].database.user will be updated in place
              # (changed outside terrace; apply sets it back)
              ~ sql_user {
                  ~ extra_access = [
                      - "can reach database `A` (CONNECT)",
                    ]
                    name         = "B"
                    # (3 unchanged attributes hidden)
                }

            Plan: 0 to add, 2 to change, 0 to destroy.
        "#]],
    );
}

#[test]
fn mariadb_escalation_and_password_drift_are_planned_and_repaired() {
    escalation_and_password_drift_are_planned_and_repaired(
        Engine::Mariadb,
        expect![[r#"
            Objects changed outside terrace since the last apply (drift):

              # tenant.app["A"].database.user has changed outside terrace
              ~ sql_user {
                  ~ password_status = "matches" -> "changed outside terrace"
                }
              # tenant.app["B"].database.user has changed outside terrace
              ~ sql_user {
                  ~ extra_access = [
                      + can reach database `A` (SELECT)
                    ]
                }

            terrace will perform the following actions:

              # tenant.app["A"].database.user will be updated in place
              # (changed outside terrace; apply sets it back)
              ~ sql_user {
                    name            = "A"
                  ~ password_status = "changed outside terrace" -> "matches"
                    # (4 unchanged attributes hidden)
                }

              # tenant.app["B"].database.user will be updated in place
              # (changed outside terrace; apply sets it back)
              ~ sql_user {
                  ~ extra_access = [
                      - "can reach database `A` (SELECT)",
                    ]
                    name         = "B"
                    # (4 unchanged attributes hidden)
                }

            Plan: 0 to add, 2 to change, 0 to destroy.
        "#]],
    );
}
