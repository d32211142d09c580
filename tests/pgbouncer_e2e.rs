//! The PostgreSQL state backend through PgBouncer in transaction pooling mode
//! (`scripts/pgbouncer.sh`: Debian 12's PgBouncer 1.18, default settings, in front of the
//! test PostgreSQL): plan, saved plan, apply, history, concurrent readers, a lease held
//! and renewed by another process, its expiry after a kill, and destroy.
//!
//! Before the backend used unnamed statements inside explicit transactions, the first
//! command through PgBouncer failed with "unsupported startup parameter:
//! extra_float_digits", and once past that every command after the first with "prepared
//! statement \"sqlx_s_1\" already exists" (named statements left on shared server
//! connections).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{block_on, flat, pg_admin, pg_tenant_hcl, unique, Project};

const CHILD_ENV: &str = "TERRACE_PGBOUNCER_TEST_LEASE_CHILD";

fn bouncer_url() -> String {
    std::env::var("TERRACE_TEST_PGBOUNCER_URL")
        .expect("run scripts/pgbouncer.sh and `source target/services.env` first")
}

/// Not a test by itself: the body of the child process, which holds the lease.
#[test]
fn pgbouncer_lease_holder_child() {
    common::hold_lease_if_child(CHILD_ENV);
}

/// (serial, history rows, lock rows) of state `name`, read directly (not through
/// PgBouncer).
fn stored(name: &str) -> (i64, i64, i64) {
    block_on(async {
        let pool = pg_admin().await;
        let one = |sql: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sql)
                    .bind(name)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let serial = one("SELECT coalesce(max(serial), 0) FROM terrace_states WHERE name = $1");
        let history = one("SELECT count(*) FROM terrace_state_history WHERE name = $1");
        let locks = one("SELECT count(*) FROM terrace_state_locks WHERE name = $1");
        let r = (serial.await, history.await, locks.await);
        pool.close().await;
        r
    })
}

#[test]
fn the_state_backend_works_through_pgbouncer_in_transaction_mode() {
    let db = unique("pgbnc");
    let p = Project::new(&pg_tenant_hcl(&db));
    let url = format!("{}?state={db}&lease=2", bouncer_url());
    let env = [("TERRACE_BACKEND", url.as_str())];
    let planfile = p.path().join("plan.tfplan");
    let planfile = planfile.to_string_lossy();

    // Several commands in a row: each one's statements must not collide with the last's
    // on PgBouncer's shared server connections.
    for _ in 0..3 {
        p.terrace_env(&["plan", "--detailed-exitcode", "--out", &planfile], &env)
            .expect_code(2);
    }
    p.terrace_env(&["apply", "--auto-approve", &planfile], &env)
        .expect_code(0);
    let (serial, history, locks) = stored(&db);
    assert!(serial >= 2, "the apply wrote versions: serial {serial}");
    assert!(history >= 1, "replaced versions are kept: {history}");
    assert_eq!(locks, 0, "the lease is released");
    p.terrace_env(&["plan", "--detailed-exitcode"], &env)
        .expect_code(0);
    let listed = p.terrace_env(&["state", "history"], &env).expect_code(0);
    assert!(listed.stdout.contains("serial"), "{}", listed.stdout);

    // Concurrent readers share PgBouncer's server connections.
    let runs: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            let dir = p.path().to_path_buf();
            std::thread::spawn(move || {
                Command::new(env!("CARGO_BIN_EXE_terrace"))
                    .arg("-C")
                    .arg(dir)
                    .args(["state", "list"])
                    .env("NO_COLOR", "1")
                    .env("TERRACE_BACKEND", url)
                    .stdin(Stdio::null())
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for run in runs {
        let out = run.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("tenant.t.database"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // A holder renews its 2 s lease through PgBouncer: still refused after 5 s.
    let mut holder = common::spawn_lease_holder("pgbouncer_lease_holder_child", CHILD_ENV, &url);
    std::thread::sleep(Duration::from_secs(5));
    let refused = p.terrace_env(&["apply", "--auto-approve"], &env);
    assert_ne!(refused.code, 0);
    let msg = flat(&refused.stderr);
    assert!(msg.contains(&format!("pid {}", holder.id())), "{msg}");
    assert!(msg.contains("is locked by"), "{msg}");
    // Killed, it cannot release it: the lease expires and the next command proceeds.
    let killed = Instant::now();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let mut last = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let run = p.terrace_env(&["destroy", "--auto-approve"], &env);
        if run.code == 0 {
            last = None;
            break;
        }
        assert!(flat(&run.stderr).contains("is locked by"), "{}", run.stderr);
        last = Some(run.stderr);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(last.is_none(), "the lease never expired: {last:?}");
    let (after, _, locks) = stored(&db);
    assert!(after > serial, "destroy wrote a new version");
    assert_eq!(locks, 0);
}
