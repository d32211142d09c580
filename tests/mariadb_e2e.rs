//! End to end against the real local MariaDB.

mod common;

use common::{block_on, mysql_admin, mysql_service, unique, Project};
use expect_test::expect;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, Row};

fn project_hcl(clones: &[&str], limit: i64) -> String {
    let list: Vec<String> = clones.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        r#"{}
variable "clones" {{
  type    = set(string)
  default = [{}]
}}
tenant "clone" {{
  for_each = var.clones
  database {{
    service          = service.db
    name             = "wp_${{each.key}}"
    user             = "u_${{each.key}}"
    collation        = "utf8mb4_unicode_ci"
    connection_limit = {limit}
  }}
}}
"#,
        mysql_service(),
        list.join(", ")
    )
}

async fn schema(db: &str) -> Option<(String, String)> {
    let pool = mysql_admin().await;
    sqlx::query(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME \
         FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
    )
    .bind(db)
    .fetch_optional(&pool)
    .await
    .unwrap()
    .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
}

async fn max_conns(user: &str) -> Option<i64> {
    let pool = mysql_admin().await;
    sqlx::query("SELECT CAST(max_user_connections AS SIGNED) FROM mysql.user WHERE User = ?")
        .bind(user)
        .fetch_optional(&pool)
        .await
        .unwrap()
        .map(|r| r.get::<i64, _>(0))
}

async fn login(user: &str, password: &str, db: &str) -> Result<(), String> {
    MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(3306)
        .username(user)
        .password(password)
        .database(db)
        .connect()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[test]
fn clones_are_created_isolated_updated_and_removed() {
    let a = unique("ma");
    let b = unique("mb");
    let p = Project::new(&project_hcl(&[&a, &b], 10));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout
            .contains("Plan: 6 to add, 0 to change, 0 to destroy."),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(
        block_on(schema(&format!("wp_{a}"))),
        Some(("utf8mb4".into(), "utf8mb4_unicode_ci".into()))
    );
    assert_eq!(block_on(max_conns(&format!("u_{a}"))), Some(10));
    p.plan().expect_code(0);

    // Real logins: own database yes, the other clone's no.
    let user_a = format!("tenant.clone[\"{a}\"].database.user");
    let pw = p.state_attrs(&user_a)["password"]
        .as_str()
        .unwrap()
        .to_string();
    block_on(login(&format!("u_{a}"), &pw, &format!("wp_{a}"))).expect("own database");
    let err = block_on(login(&format!("u_{a}"), &pw, &format!("wp_{b}"))).unwrap_err();
    assert!(err.contains("Access denied"), "{err}");

    // In-place update of the per-user connection cap.
    p.write(&project_hcl(&[&a, &b], 20));
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains("~ connection_limit = 10 -> 20"),
        "{}",
        plan.stdout
    );
    p.apply();
    assert_eq!(block_on(max_conns(&format!("u_{a}"))), Some(20));
    p.plan().expect_code(0);

    // Remove one clone.
    p.write(&project_hcl(&[&a], 20));
    p.plan().expect_code(2);
    p.apply();
    assert_eq!(block_on(schema(&format!("wp_{b}"))), None);
    assert_eq!(block_on(max_conns(&format!("u_{b}"))), None);
    p.plan().expect_code(0);

    // Drift: database dropped by hand, re-created by apply.
    block_on(async {
        let pool = mysql_admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE `wp_{a}`")))
            .execute(&pool)
            .await
            .unwrap();
    });
    let plan = p.plan().expect_code(2);
    assert!(
        plan.stdout.contains("was deleted outside terrace"),
        "{}",
        plan.stdout
    );
    p.apply();
    assert!(block_on(schema(&format!("wp_{a}"))).is_some());
    block_on(login(&format!("u_{a}"), &pw, &format!("wp_{a}"))).expect("grant still works");

    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
    assert_eq!(block_on(schema(&format!("wp_{a}"))), None);
}

fn single_db_hcl(db: &str, user: &str, extra: &str) -> String {
    format!(
        "{}\ndatabase \"one\" {{\n  service = service.db\n  name = \"{db}\"\n  user = \"{user}\"\n{extra}\n}}\n",
        mysql_service()
    )
}

#[test]
fn spelling_of_privileges_and_charset_never_causes_a_diff() {
    let db = unique("mspell");
    let p = Project::new(&single_db_hcl(
        &db,
        &db,
        "  privileges = [\"select\", \"insert\"]\n  charset = \"UTF8\"",
    ));
    p.apply();
    let plan = p.plan().expect_code(0);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    assert_eq!(block_on(schema(&db)).unwrap().0, "utf8mb3");
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn renaming_a_user_keeps_its_password_and_grants() {
    let db = unique("mren");
    let (u1, u2) = (format!("{db}_a"), format!("{db}_b"));
    let p = Project::new(&single_db_hcl(&db, &u1, ""));
    p.apply();
    let pw = p.state_attrs("database.one.user")["password"]
        .as_str()
        .unwrap()
        .to_string();
    p.write(&single_db_hcl(&db, &u2, ""));
    p.apply();
    p.plan().expect_code(0);
    block_on(login(&u2, &pw, &db)).expect("renamed user logs in to its database");
    assert_eq!(block_on(max_conns(&u1)), None, "old account is gone");
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn replacing_a_user_replaces_the_grant_that_lives_in_it() {
    let db = unique("mrep");
    let p = Project::new(&single_db_hcl(&db, &db, ""));
    p.apply();
    let pw = p.state_attrs("database.one.user")["password"]
        .as_str()
        .unwrap()
        .to_string();
    // DROP USER takes the grant with it: the plan says the grant is made again.
    let plan = p
        .terrace(&[
            "plan",
            "--detailed-exitcode",
            "--replace",
            "database.one.user",
        ])
        .expect_code(2);
    expect![[r#"
        terrace will perform the following actions:

          # database.one.grant must be replaced (it lives in what is replaced)
          # (it lives in database.one.user, which is replaced: the server drops it with it, and apply makes it again)
        -/+ sql_grant {
                # (4 unchanged attributes hidden)
            }

          # database.one.user must be replaced (requested)
        -/+ sql_user {
                name = "DB"
                # (5 unchanged attributes hidden)
            }

        Plan: 2 to add, 0 to change, 2 to destroy.
    "#]]
    .assert_eq(&plan.stdout.replace(&db, "DB"));
    p.terrace(&["apply", "--auto-approve", "--replace", "database.one.user"])
        .expect_code(0);
    block_on(login(&db, &pw, &db)).expect("the replaced user reaches its database again");
    p.plan().expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}

#[test]
fn a_database_is_dumped_before_it_is_dropped() {
    let db = unique("mdump");
    let p = Project::new(&single_db_hcl(&db, &db, ""));
    p.apply();
    block_on(async {
        let pool = mysql_admin().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE TABLE `{db}`.orders (id int); INSERT INTO `{db}`.orders VALUES (4343);"
        )))
        .execute(&pool)
        .await
        .unwrap();
    });
    p.write(&mysql_service());
    // The plan says so before anything happens.
    let plan = p.plan().expect_code(2);
    let promise = format!(
        "# (a dump of its data is written to {}/{db}-<time>.sql first",
        p.path().join(".terrace/backups").display()
    );
    assert!(plan.stdout.contains(&promise), "{}", plan.stdout);
    let run = p.apply();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("Dumped before dropping: "))
        .unwrap_or_else(|| panic!("no dump reported: {}", run.stdout));
    let dump =
        std::fs::read_to_string(line.trim_start_matches("Dumped before dropping: ")).unwrap();
    assert!(
        dump.contains("CREATE TABLE `orders`") && dump.contains("4343"),
        "{dump}"
    );
    assert_eq!(block_on(schema(&db)), None);
}

/// plan, apply and destroy end their connections with MariaDB's quit message: the
/// server logs a connection that was merely dropped as `Aborted connection`, and
/// operators watch those warnings.
#[test]
fn commands_leave_no_aborted_connection_in_the_server_log() {
    let log = std::env::var("TERRACE_TEST_MYSQL_LOG")
        .expect("TERRACE_TEST_MYSQL_LOG is not set: run scripts/services.sh");
    // An admin of its own, so that the server's log lines about it are this test's.
    let admin = unique("mquit");
    let db = unique("mquitdb");
    let as_admin = |sql: String| {
        block_on(async {
            let pool = mysql_admin().await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        })
    };
    for host in ["localhost", "%"] {
        as_admin(format!(
            "CREATE USER '{admin}'@'{host}' IDENTIFIED BY 'quit-test-pw'; \
             GRANT ALL PRIVILEGES ON *.* TO '{admin}'@'{host}' WITH GRANT OPTION;"
        ));
    }
    let hcl = single_db_hcl(&db, &db, "").replace("\"terrace_admin\"", &format!("\"{admin}\""));
    let p = Project::new(&hcl);
    let env = [("TERRACE_VAR_mysql_admin_password", "quit-test-pw")];
    p.apply_plan_destroy(&env);

    // Once the server holds no connection of this admin, what it logs about them is
    // written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let connected: i64 = loop {
        let n = block_on(async {
            let pool = mysql_admin().await;
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?",
            )
            .bind(&admin)
            .fetch_one(&pool)
            .await
            .unwrap();
            pool.close().await;
            n
        });
        if n == 0 || std::time::Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for host in ["localhost", "%"] {
        as_admin(format!("DROP USER '{admin}'@'{host}'"));
    }
    assert_eq!(connected, 0, "terrace's connections outlived it");
    let text = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("{log}: {e}"));
    let aborted: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("Aborted connection") && l.contains(&format!("user: '{admin}'")))
        .collect();
    assert!(aborted.is_empty(), "the server logged: {aborted:#?}");
}
