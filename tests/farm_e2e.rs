//! `examples/wordpress-farm` (seed 000) end to end against the real Docker engine: a
//! shared MariaDB and a shared Redis in containers terrace runs (waited for before
//! their users are made), a proxy, one app per client with its database, Redis prefix
//! and volume; the plan shows the host's memory and each server's connection budget;
//! a second plan is empty; each client's Redis user is confined to its prefix.

mod common;

use std::process::Command;

use common::{free_port, unique, Cleanup, Project};

const DB_PASSWORD: &str = "farm-db-Pw7";
const REDIS_PASSWORD: &str = "farm-redis-Pw7";

/// `redis-cli` against the farm's Redis as `user` (password in the environment).
fn redis(port: u16, user: &str, password: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args([
            "--no-auth-warning",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args(["--user", user])
        .args(args)
        .env("REDISCLI_AUTH", password)
        .output()
        .expect("redis-cli");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_farm_applies_shows_capacity_and_budgets_and_plans_nothing_the_second_time() {
    let prefix = unique("wf").replace('_', "");
    let _cleanup = Cleanup(prefix.clone());
    let hcl = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/wordpress-farm/main.hcl"
    ))
    .unwrap();
    // The test ends by destroying the shared services too.
    let p = Project::new(&common::allow_destroying_services(&hcl));
    let redis_port = free_port();
    let vars = [
        format!("prefix={prefix}"),
        format!("db_port={}", free_port()),
        format!("redis_port={redis_port}"),
        format!("proxy_port={}", free_port()),
    ];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        for v in &vars {
            all.extend(["--var", v.as_str()]);
        }
        p.terrace_env(
            &all,
            &[
                ("TERRACE_VAR_db_admin_password", DB_PASSWORD),
                ("TERRACE_VAR_redis_admin_password", REDIS_PASSWORD),
            ],
        )
    };

    let plan = run(&["plan", "--detailed-exitcode"]).expect_code(2);
    for shown in [
        "# service.cache.container will be created",
        "# service.cache.settings will be created",
        "# tenant.client[\"alice\"].redis will be created",
        // 512m + 320m + 32m + 128m + 96m + 96m of the host's memory.
        "Capacity: docker.local: 1.2 GiB of",
        // The servers do not run yet: their limits are read once they do.
        "Connections: service.db: 30 (the server's limit is read once it runs) committed to 3 tenant(s)",
        "Connections: service.cache: 60 (the server's limit is read once it runs) committed to 3 tenant(s)",
    ] {
        assert!(plan.stdout.contains(shown), "{shown}\n{}", plan.stdout);
    }
    let applied = run(&["apply", "--auto-approve"]).expect_code(0);
    for out in [plan.all(), applied.all()] {
        assert!(
            !out.contains(DB_PASSWORD) && !out.contains(REDIS_PASSWORD),
            "{out}"
        );
    }

    // The second plan is empty, and shows the budgets read from the running servers.
    let again = run(&["plan", "--detailed-exitcode"]).expect_code(0);
    for shown in [
        "No changes.",
        "Connections: service.db: 30 of 146 (the server takes 151, 5 kept for administration) committed to 3 tenant(s)",
        "Connections: service.cache: 60 of 9995 (the server takes 10000, 5 kept for administration) committed to 3 tenant(s)",
    ] {
        assert!(again.stdout.contains(shown), "{shown}\n{}", again.stdout);
    }

    // The settings are live, in the form Redis reports them.
    let maxmemory = redis(
        redis_port,
        "terrace_admin",
        REDIS_PASSWORD,
        &["CONFIG", "GET", "maxmemory"],
    );
    assert!(maxmemory.contains("268435456"), "{maxmemory}");
    // Each client reaches its own prefix only.
    let password = |c: &str| {
        p.state_attrs(&format!("tenant.client[\"{c}\"].redis"))["password"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let alice = password("alice");
    assert_eq!(
        redis(
            redis_port,
            "client_alice",
            &alice,
            &["SET", "wp_alice:k", "v"]
        )
        .trim(),
        "OK"
    );
    let denied = redis(redis_port, "client_alice", &alice, &["GET", "wp_bob:k"]);
    assert!(denied.contains("NOPERM"), "{denied}");

    // A setting changed by hand is drift that apply repairs.
    redis(
        redis_port,
        "terrace_admin",
        REDIS_PASSWORD,
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    );
    let drift = run(&["plan", "--detailed-exitcode"]).expect_code(2);
    assert!(drift.stdout.contains("settings"), "{}", drift.stdout);
    run(&["apply", "--auto-approve"]).expect_code(0);
    run(&["plan", "--detailed-exitcode"]).expect_code(0);

    run(&["destroy", "--auto-approve", "--include-services"]).expect_code(0);
}
