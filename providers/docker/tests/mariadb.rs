//! A real database container from `terrace/mariadb:1` (built by scripts/images.sh):
//! the admin account from the environment accepts a login over a published port.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};
use terrace_provider_docker::{CONTAINER, VOLUME};

const IMAGE: &str = "terrace/mariadb:1";

#[tokio::test]
async fn mariadb_container_accepts_the_admin_login() {
    let p = provider();
    if docker(&["image", "inspect", IMAGE]).is_err() {
        eprintln!("SKIPPED: {IMAGE} is not built; run scripts/images.sh to include this test");
        return;
    }
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("mdb"));
    create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    let name = c.container(&uniq("mariadb"));
    let password = format!("pw-{}", uniq("x"));
    let desired = normalized(
        &p,
        CONTAINER,
        attrs(json!({
            "name": name, "image": IMAGE,
            "env": {"MARIADB_ADMIN_USER": "terrace", "MARIADB_ADMIN_PASSWORD": password},
            "ports": ["127.0.0.1::3306"],
            "mounts": [{"source": vol, "target": "/var/lib/mysql"}],
            "memory": "512m",
        })),
    );
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    assert_no_diff(
        CONTAINER,
        &desired,
        &observe_present(&p, CONTAINER, &stored).await,
    );

    let mapped = docker(&["port", &name, "3306/tcp"]).unwrap();
    let port: u16 = mapped
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no published port: {mapped:?}"));
    let opts = MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("terrace")
        .password(&password);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut conn = loop {
        match opts.connect().await {
            Ok(conn) => break conn,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!(
                "no login within 120 s: {e}\ncontainer log:\n{}",
                docker(&["logs", &name]).unwrap_or_default()
            ),
        }
    };
    let row = sqlx::query("SELECT CURRENT_USER()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let user: String = row.get(0);
    assert_eq!(user, "terrace@%");
    conn.close().await.unwrap();
    // The entrypoint never prints the password.
    let log = docker(&["logs", &name]).unwrap_or_default();
    assert!(!log.contains(&password));
}
