//! The PostgreSQL state backend end to end: plan/apply/drift/destroy with the state in
//! PostgreSQL (`TERRACE_BACKEND`), a second process refused naming the holder of the
//! lease, a killed holder's lease expiring so the next run proceeds, history and
//! restore, and `state migrate` local → pg → local keeping lineage, serial and content.
//!
//! The other lease holder is this test binary run again with `CHILD_ENV` set
//! (`lease_holder_child`), holding the lease until it is killed.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{pg_service, unique, Project};

const CHILD_ENV: &str = "TERRACE_PG_TEST_LEASE_CHILD";
const MARKER: &str = "<<child holds the lease>>";

fn pg_url() -> String {
    std::env::var("TERRACE_TEST_PG_URL").expect("`source target/services.env` first")
}

fn backend_url(state: &str, extra: &str) -> String {
    format!("{}?state={state}{extra}", pg_url())
}

fn hcl(db: &str) -> String {
    format!(
        "{}\ntenant \"t\" {{\n  database {{\n    service = service.pg\n    name = \"{db}\"\n  }}\n}}\n",
        pg_service()
    )
}

fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Not a test by itself: the body of the child process, which holds the lease.
#[test]
fn lease_holder_child() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let backend = terrace_state::Backend::parse(&url, "unused").unwrap();
    let _lock = backend.lock("apply").expect("child takes the lease");
    println!("\n{MARKER}");
    std::thread::sleep(Duration::from_secs(600));
}

fn spawn_holder(url: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lease_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.trim() == MARKER {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("child did not report holding the lease");
    }
    child
}

#[test]
fn plan_apply_drift_and_destroy_with_the_state_in_postgres() {
    let db = unique("pgst");
    let p = Project::new(&hcl(&db));
    let url = backend_url(&db, "");
    let env = [("TERRACE_BACKEND", url.as_str())];
    p.terrace_env(&["plan", "--detailed-exitcode"], &env)
        .expect_code(2);
    p.terrace_env(&["apply", "--auto-approve"], &env)
        .expect_code(0);
    assert!(!p.state_path().exists(), "no local state file is written");
    p.terrace_env(&["plan", "--detailed-exitcode"], &env)
        .expect_code(0);
    p.terrace_env(&["drift"], &env).expect_code(0);
    let list = p.terrace_env(&["state", "list"], &env).expect_code(0);
    assert!(list.stdout.contains("tenant.t.database"), "{}", list.stdout);

    let history = p.terrace_env(&["state", "history"], &env).expect_code(0);
    assert!(history.stdout.contains("serial"), "{}", history.stdout);
    // A password in --backend is refused (it would show in the process list).
    let refused = p.terrace(&["--backend", &url, "state", "list"]);
    assert_ne!(refused.code, 0);
    assert!(
        flat(&refused.stderr).contains("process list"),
        "{}",
        refused.stderr
    );

    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
    // Restore the version before the destroy: the state has the resources again, and
    // a plan wants to create them again (they are gone).
    let history = p.terrace_env(&["state", "history"], &env).expect_code(0);
    let newest: u64 = history
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("serial"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("a serial in the history");
    let restored = p
        .terrace_env(&["state", "restore", &newest.to_string()], &env)
        .expect_code(0);
    assert!(
        restored.stdout.contains("Restored version"),
        "{}",
        restored.stdout
    );
    let list = p.terrace_env(&["state", "list"], &env).expect_code(0);
    assert!(list.stdout.contains("tenant.t.database"), "{}", list.stdout);
    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
}

#[test]
fn a_second_process_is_refused_and_a_killed_holders_lease_expires() {
    let db = unique("pglease");
    let p = Project::new(&hcl(&db));
    let url = backend_url(&db, "&lease=3");
    let env = [("TERRACE_BACKEND", url.as_str())];
    let mut holder = spawn_holder(&url);

    let refused = p.terrace_env(&["apply", "--auto-approve"], &env);
    assert_ne!(refused.code, 0);
    let msg = flat(&refused.stderr);
    assert!(msg.contains(&format!("pid {}", holder.id())), "{msg}");
    assert!(
        msg.contains("is locked by") && msg.contains("lease"),
        "{msg}"
    );
    // Still held after longer than the lease: the live holder renews it.
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(p.terrace_env(&["apply", "--auto-approve"], &env).code, 0);

    // kill -9: no chance to release; the lease expires by itself.
    let killed = Instant::now();
    holder.kill().unwrap();
    holder.wait().unwrap();
    let mut last = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let run = p.terrace_env(&["apply", "--auto-approve"], &env);
        if run.code == 0 {
            last = None;
            break;
        }
        assert!(flat(&run.stderr).contains("is locked by"), "{}", run.stderr);
        last = Some(run.stderr);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(last.is_none(), "the lease never expired: {last:?}");
    p.terrace_env(&["destroy", "--auto-approve"], &env)
        .expect_code(0);
}

#[test]
fn migrate_local_to_pg_and_back_keeps_lineage_serial_and_content() {
    let db = unique("pgmig");
    let p = Project::new(&hcl(&db));
    p.apply();
    let local = std::fs::read_to_string(p.state_path()).unwrap();
    let url = backend_url(&db, "");
    let env = [("TERRACE_BACKEND", url.as_str())];

    // `--to` with a password is refused; from the environment it is fine.
    let refused = p.terrace(&["state", "migrate", "--to", &url]);
    assert_ne!(refused.code, 0);
    let out = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(p.path())
        .args(["state", "migrate", "--to"])
        .arg(url.replace("terrace_admin:terrace-dev-pg@", "terrace_admin@"))
        .env("PGPASSWORD", "terrace-dev-pg")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.terrace_env(&["plan", "--detailed-exitcode"], &env)
        .expect_code(0);

    // Back to a new local file: the same bytes.
    let back = p.path().join("back.json");
    let back_s = back.to_string_lossy().into_owned();
    p.terrace_env(&["state", "migrate", "--to", &back_s], &env)
        .expect_code(0);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), local);

    // Another lineage at the destination is refused.
    let other = Project::new(&pg_service());
    std::fs::write(
        other.state_path(),
        local.replace(
            &p.state()["lineage"].as_str().unwrap().to_string(),
            "00000000-0000-4000-8000-000000000000",
        ),
    )
    .unwrap();
    let clash = p.terrace_env(
        &[
            "state",
            "migrate",
            "--to",
            &other.state_path().to_string_lossy(),
        ],
        &env,
    );
    assert_ne!(clash.code, 0);
    assert!(
        flat(&clash.stderr).contains("holds another state"),
        "{}",
        clash.stderr
    );

    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}
