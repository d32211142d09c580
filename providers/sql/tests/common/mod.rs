//! Helpers shared by the integration tests, which run against the real MariaDB and
//! PostgreSQL servers started by `scripts/services.sh`.
#![allow(dead_code)]

use std::sync::Mutex;

use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};
use terrace_provider::{
    Address, Attrs, ObserveRequest, Observed, Operation, Provider, ProviderResult, Secret, Step,
};
use terrace_provider_sql::{SqlEngine, SqlProvider, SqlServer, DATABASE, GRANT, USER};

pub const ENGINES: [SqlEngine; 2] = [SqlEngine::Mysql, SqlEngine::Postgres];

/// The admin URL for an engine, from the environment.
pub fn admin_url(engine: SqlEngine) -> String {
    let var = match engine {
        SqlEngine::Mysql => "TERRACE_TEST_MYSQL_URL",
        SqlEngine::Postgres => "TERRACE_TEST_PG_URL",
    };
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run scripts/services.sh and `source target/services.env`")
    })
}

/// Splits `scheme://user:password@host:port[/db]` (the test URLs are not percent-encoded).
pub fn server(engine: SqlEngine) -> SqlServer {
    let url = admin_url(engine);
    let rest = url.split_once("://").expect("URL has a scheme").1;
    let (creds, hostpart) = rest.rsplit_once('@').expect("URL has credentials");
    let (user, password) = creds.split_once(':').expect("URL has a password");
    let (hostport, db) = match hostpart.split_once('/') {
        Some((hp, db)) if !db.is_empty() => (hp, Some(db.to_string())),
        Some((hp, _)) => (hp, None),
        None => (hostpart, None),
    };
    let (host, port) = hostport.rsplit_once(':').expect("URL has a port");
    SqlServer {
        engine,
        address: host.to_string(),
        port: port.parse().expect("numeric port"),
        admin_user: user.to_string(),
        admin_password: Secret::new(password),
        admin_database: db,
    }
}

pub fn provider(engine: SqlEngine) -> SqlProvider {
    SqlProvider::new(server(engine))
}

/// A unique lower-case prefix, so that tests running in parallel never collide.
pub fn prefix() -> String {
    format!(
        "tt_{}",
        Alphanumeric
            .sample_string(&mut rand::rng(), 10)
            .to_lowercase()
    )
}

pub fn attrs(v: Value) -> Attrs {
    serde_json::from_value(v).expect("attrs are a JSON object")
}

fn step(type_name: &str, op: Operation, prior: Option<Attrs>, desired: Option<Attrs>) -> Step {
    Step {
        address: Address::new(format!("test.{type_name}")),
        type_name: type_name.to_string(),
        operation: op,
        prior,
        desired,
        changed: Vec::new(),
    }
}

pub async fn create(p: &SqlProvider, type_name: &str, desired: &Attrs) -> ProviderResult<Attrs> {
    let out = p
        .apply(&step(
            type_name,
            Operation::Create,
            None,
            Some(desired.clone()),
        ))
        .await?;
    Ok(out.expect("create returns attrs"))
}

pub async fn update(
    p: &SqlProvider,
    type_name: &str,
    prior: &Attrs,
    desired: &Attrs,
    changed: &[&str],
) -> ProviderResult<Attrs> {
    let mut s = step(
        type_name,
        Operation::Update,
        Some(prior.clone()),
        Some(desired.clone()),
    );
    s.changed = changed.iter().map(|c| c.to_string()).collect();
    Ok(p.apply(&s).await?.expect("update returns attrs"))
}

pub async fn delete(p: &SqlProvider, type_name: &str, prior: &Attrs) -> ProviderResult<()> {
    let out = p
        .apply(&step(
            type_name,
            Operation::Delete,
            Some(prior.clone()),
            None,
        ))
        .await?;
    assert!(out.is_none(), "delete returns no attrs");
    Ok(())
}

pub fn request(type_name: &str, attrs: &Attrs) -> ObserveRequest {
    ObserveRequest {
        address: Address::new(format!("test.{type_name}")),
        type_name: type_name.to_string(),
        attrs: attrs.clone(),
    }
}

pub async fn observe(p: &SqlProvider, type_name: &str, attrs: &Attrs) -> Observed {
    let mut v = p
        .observe(&[request(type_name, attrs)])
        .await
        .expect("observe");
    assert_eq!(v.len(), 1);
    v.remove(0)
}

/// Asserts that the object exists and that every attribute of `desired` (except the
/// password, which cannot be read back) is observed with exactly that value: a second
/// plan would show no change.
pub async fn assert_converged(p: &SqlProvider, type_name: &str, desired: &Attrs) -> Attrs {
    let Observed::Present(live) = observe(p, type_name, desired).await else {
        panic!("{type_name} {desired:?} is absent after apply");
    };
    assert!(
        !live.contains_key("password"),
        "observe must never report a password"
    );
    for (k, v) in desired {
        if k == "password" {
            continue;
        }
        assert_eq!(
            live.get(k),
            Some(v),
            "{type_name}.{k} differs: live {live:?}"
        );
    }
    live
}

pub async fn assert_absent(p: &SqlProvider, type_name: &str, attrs: &Attrs) {
    assert_eq!(observe(p, type_name, attrs).await, Observed::Absent);
}

/// Logs in as `user` to `database` over a fresh connection and runs a query.
pub async fn login(
    engine: SqlEngine,
    user: &str,
    password: &str,
    database: &str,
) -> Result<(), sqlx::Error> {
    let s = server(engine);
    match engine {
        SqlEngine::Mysql => {
            let o = MySqlConnectOptions::new()
                .host(&s.address)
                .port(s.port)
                .username(user)
                .password(password)
                .database(database)
                .disable_statement_logging();
            let mut c = o.connect().await?;
            sqlx::raw_sql("SELECT 1").execute(&mut c).await?;
            c.close().await
        }
        SqlEngine::Postgres => {
            let o = PgConnectOptions::new()
                .host(&s.address)
                .port(s.port)
                .username(user)
                .password(password)
                .database(database)
                .disable_statement_logging();
            let mut c = o.connect().await?;
            sqlx::raw_sql("SELECT 1").execute(&mut c).await?;
            c.close().await
        }
    }
}

/// Runs `sql` as the admin inside database `db` and returns the first column of every
/// row as text (the queries cast it).
pub async fn query_in(engine: SqlEngine, db: &str, sql: &str) -> Vec<Option<String>> {
    let url = admin_url(engine);
    match engine {
        SqlEngine::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(&format!("{url}/{db}"))
                .await
                .unwrap();
            let rows = sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                .fetch_all(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter().map(|r| r.get(0)).collect()
        }
        SqlEngine::Postgres => {
            let base = url.rsplit_once('/').unwrap().0;
            let mut c = sqlx::PgConnection::connect(&format!("{base}/{db}"))
                .await
                .unwrap();
            let rows = sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                .fetch_all(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter().map(|r| r.get(0)).collect()
        }
    }
}

/// Runs `sql` (one or more statements) as the admin inside database `db`.
pub async fn exec_in(engine: SqlEngine, db: &str, sql: &str) {
    query_in(engine, db, sql).await;
}

/// Runs one statement as the admin, outside the provider (to make unmanaged objects).
pub async fn admin_exec(engine: SqlEngine, sql: String) {
    let url = admin_url(engine);
    match engine {
        SqlEngine::Mysql => {
            let mut c = sqlx::MySqlConnection::connect(&url)
                .await
                .expect("admin connect");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .expect("admin statement");
        }
        SqlEngine::Postgres => {
            let mut c = sqlx::PgConnection::connect(&url)
                .await
                .expect("admin connect");
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut c)
                .await
                .expect("admin statement");
        }
    }
}

/// Deletes registered objects when dropped, even if the test panicked, so that failing
/// tests do not leave databases and users behind.
pub struct Cleanup {
    engine: SqlEngine,
    items: Mutex<Vec<(String, Attrs)>>,
}

impl Cleanup {
    pub fn new(engine: SqlEngine) -> Self {
        Cleanup {
            engine,
            items: Mutex::new(Vec::new()),
        }
    }

    /// Registers an object for deletion; later registrations are deleted first.
    pub fn add(&self, type_name: &str, attrs: &Attrs) {
        self.items
            .lock()
            .unwrap()
            .push((type_name.to_string(), attrs.clone()));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let items = std::mem::take(&mut *self.items.lock().unwrap());
        let engine = self.engine;
        in_drop(async move {
            let p = provider(engine);
            for (t, a) in items.iter().rev() {
                let _ = delete(&p, t, a).await;
            }
        });
    }
}

/// Runs a guard's clean-up to its end on a fresh runtime on its own thread: `Drop`
/// cannot await, and the test's runtime may be shutting down.
fn in_drop(cleanup: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(cleanup)
    })
    .join()
    .ok();
}

/// Databases and accounts the project does not manage, made by hand as another project
/// on a shared server would have them: `n` databases `{prefix}f{i}`, each with an account
/// of the same name holding every privilege on it. Dropped when the guard is dropped,
/// even if the test panicked.
pub struct Foreign {
    engine: SqlEngine,
    /// Their names (database and account alike).
    pub names: Vec<String>,
}

impl Foreign {
    /// Creates them over one admin connection, in a few multi-statement batches.
    pub async fn create(engine: SqlEngine, prefix: &str, n: usize) -> Foreign {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}f{i}")).collect();
        let guard = Foreign {
            engine,
            names: names.clone(),
        };
        for chunk in names.chunks(50) {
            let mut sql = String::new();
            for name in chunk {
                match engine {
                    SqlEngine::Mysql => sql.push_str(&format!(
                        "CREATE DATABASE `{name}`; CREATE USER '{name}'@'%' IDENTIFIED BY 'Foreign42'; \
                         GRANT ALL ON `{name}`.* TO '{name}'@'%';"
                    )),
                    SqlEngine::Postgres => sql.push_str(&format!(
                        "CREATE ROLE \"{name}\" LOGIN PASSWORD 'Foreign42'; \
                         GRANT CONNECT ON DATABASE postgres TO \"{name}\";"
                    )),
                }
            }
            admin_exec(engine, sql).await;
            if engine == SqlEngine::Postgres {
                // CREATE DATABASE cannot run in a multi-statement batch (an implicit
                // transaction) on PostgreSQL.
                for name in chunk {
                    admin_exec(
                        engine,
                        format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""),
                    )
                    .await;
                }
            }
        }
        guard
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let names = std::mem::take(&mut self.names);
        let engine = self.engine;
        in_drop(async move {
            let url = admin_url(engine);
            match engine {
                SqlEngine::Mysql => {
                    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
                    for chunk in names.chunks(100) {
                        let sql: String = chunk
                            .iter()
                            .map(|n| {
                                format!(
                                    "DROP DATABASE IF EXISTS `{n}`; DROP USER IF EXISTS '{n}'@'%';"
                                )
                            })
                            .collect();
                        let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await;
                    }
                }
                SqlEngine::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                    for n in &names {
                        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{n}\" WITH (FORCE)"
                        )))
                        .execute(&mut c)
                        .await;
                    }
                    for chunk in names.chunks(100) {
                        let sql: String = chunk
                                .iter()
                                .map(|n| {
                                    format!(
                                        "REVOKE ALL ON DATABASE postgres FROM \"{n}\"; DROP ROLE IF EXISTS \"{n}\";"
                                    )
                                })
                                .collect();
                        let _ = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut c).await;
                    }
                }
            }
        });
    }
}

/// One tenant as the configuration describes it: database, user, grant on it.
pub struct Tenant {
    pub db: Attrs,
    pub user: Attrs,
    pub grant: Attrs,
}

impl Tenant {
    pub fn name(&self) -> &str {
        self.user["name"].as_str().unwrap()
    }
    pub fn db_name(&self) -> &str {
        self.db["name"].as_str().unwrap()
    }
    pub fn password(&self) -> &str {
        self.user["password"].as_str().unwrap()
    }
}

/// Creates a tenant as terrace's lowering does (on PostgreSQL the user owns its
/// database and PUBLIC is shut out), with the attributes normalize adds.
pub async fn tenant(p: &SqlProvider, cleanup: &Cleanup, engine: SqlEngine, name: &str) -> Tenant {
    let mut user = attrs(serde_json::json!({ "name": name }));
    p.normalize(USER, &mut user).unwrap();
    let db = match engine {
        SqlEngine::Mysql => attrs(serde_json::json!({ "name": name })),
        SqlEngine::Postgres => attrs(serde_json::json!({ "name": name, "owner": name })),
    };
    let grant = match engine {
        SqlEngine::Mysql => {
            attrs(serde_json::json!({ "database": name, "user": name, "privileges": ["ALL"] }))
        }
        SqlEngine::Postgres => attrs(
            serde_json::json!({ "database": name, "user": name, "privileges": ["ALL"], "revoke_public": true }),
        ),
    };
    cleanup.add(USER, &user);
    cleanup.add(DATABASE, &db);
    cleanup.add(GRANT, &grant);
    let user = create(p, USER, &user).await.unwrap();
    let db = create(p, DATABASE, &db).await.unwrap();
    let grant = create(p, GRANT, &grant).await.unwrap();
    Tenant { db, user, grant }
}
