//! Waiting for the state lock (`--lock-timeout`) with the local and the PostgreSQL
//! backends, and `force-unlock` naming the holder and asking before it removes anything.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{pg_service, unique, Holder, Project};
use serde_json::json;

/// `text` with miette's line wrapping undone.
fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

/// Another terrace holding the lock file `lock`, its details (id `id`) written in it.
fn held_by_another(lock: &Path, id: &str) -> Option<Holder> {
    let info = json!({"who": "ops@elsewhere", "pid": 4242, "operation": "apply",
                      "since": "2026-01-01T00:00:00Z", "id": id});
    Holder::new(lock, Some(info))
}

/// terrace started in the background in `p`, output captured.
fn spawn(p: &Project, args: &[&str], envs: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_terrace"))
        .arg("-C")
        .arg(p.path())
        .args(args)
        .env("NO_COLOR", "1")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start terrace")
}

/// Waits for `child`: (exit code, stdout + stderr).
fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Starts `args` while the lock is held, checks they are still waiting after a while,
/// calls `release`, and checks they then succeed.
fn waits_then_succeeds(
    p: &Project,
    runs: &[&[&str]],
    envs: &[(&str, &str)],
    release: impl FnOnce(),
) {
    let began = Instant::now();
    let mut children: Vec<Child> = runs.iter().map(|args| spawn(p, args, envs)).collect();
    std::thread::sleep(Duration::from_millis(1500));
    for c in &mut children {
        assert!(
            c.try_wait().unwrap().is_none(),
            "did not wait for the lock: {:?}",
            finish_now(c)
        );
    }
    release();
    for (args, c) in runs.iter().zip(children) {
        let (code, out) = finish(c);
        assert_eq!(code, 0, "{args:?}: {out}");
    }
    assert!(began.elapsed() >= Duration::from_millis(1500));
}

fn finish_now(c: &mut Child) -> String {
    let mut out = String::new();
    if let Some(mut e) = c.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut out).ok();
    }
    out
}

fn admin_env() -> Vec<(&'static str, String)> {
    vec![(
        "TERRACE_VAR_pg_admin_password",
        std::env::var("TERRACE_VAR_pg_admin_password").expect("source target/services.env"),
    )]
}

#[test]
fn lock_timeout_waits_for_a_local_lock_then_proceeds_or_gives_up() {
    let p = Project::new(&pg_service());
    p.apply();
    let env = admin_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let lock = p.path().join("terrace.state.json.lock");
    let Some(holder) = held_by_another(&lock, "w1") else {
        eprintln!("flock(1) not installed; skipping");
        return;
    };
    waits_then_succeeds(
        &p,
        &[
            &["apply", "--auto-approve", "--lock-timeout", "60s"],
            &["plan", "--lock-timeout=1m"],
        ],
        &env,
        || drop(holder),
    );

    // Held for longer than the timeout: the usual "locked by" error, after the wait.
    let _holder = held_by_another(&lock, "w2").unwrap();
    let began = Instant::now();
    let run = p.terrace(&["apply", "--auto-approve", "-lock-timeout=800ms"]);
    let took = began.elapsed();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(took >= Duration::from_millis(800), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let err = flat(&run.stderr);
    assert!(
        err.contains("ops@elsewhere") && err.contains("4242"),
        "{err}"
    );
    // Without --lock-timeout: at once.
    let began = Instant::now();
    p.terrace(&["apply", "--auto-approve"]).expect_code(1);
    assert!(began.elapsed() < Duration::from_millis(800));
    let bad = p
        .terrace(&["plan", "--lock-timeout", "soon"])
        .expect_code(1);
    assert!(bad.stderr.contains("not a duration"), "{}", bad.stderr);
}

#[test]
fn lock_timeout_waits_for_a_postgresql_lease_then_proceeds_or_gives_up() {
    let url = format!(
        "{}?state={}",
        std::env::var("TERRACE_TEST_PG_URL").expect("source target/services.env"),
        unique("pgwait")
    );
    let p = Project::new(&pg_service());
    let mut env = admin_env();
    env.push(("TERRACE_BACKEND", url.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let backend = terrace_state::Backend::parse(&url, "unused").unwrap();
    let held = backend.lock("apply").unwrap();
    waits_then_succeeds(
        &p,
        &[&["apply", "--auto-approve", "--lock-timeout", "60s"]],
        &env,
        || drop(held),
    );

    let _held = backend.lock("apply").unwrap();
    let began = Instant::now();
    let run = p.terrace_env(&["apply", "--auto-approve", "--lock-timeout", "1s"], &env);
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(began.elapsed() >= Duration::from_secs(1));
    let err = flat(&run.stderr);
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
}

/// Runs `terrace force-unlock ID` on a pseudo-terminal (script(1)), answering `answer`.
fn force_unlock_on_a_tty(p: &Project, id: &str, answer: &str) -> Option<(i32, String)> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|s| Path::new(s).exists())?;
    let command = format!(
        "{} -C {} force-unlock {id}",
        env!("CARGO_BIN_EXE_terrace"),
        p.path().display()
    );
    let mut child = Command::new(script)
        .args(["-qec", &command, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Answer once the question is up (script forwards what it reads to the terminal).
    std::thread::sleep(Duration::from_millis(700));
    stdin.write_all(answer.as_bytes()).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    Some(finish(child))
}

#[test]
fn force_unlock_names_the_holder_and_asks_first() {
    let p = Project::new(&pg_service());
    let lock = p.path().join("terrace.state.json.lock");
    let Some(_holder) = held_by_another(&lock, "5eed") else {
        eprintln!("flock(1) not installed; skipping");
        return;
    };
    // No terminal, no --force: refused, naming the holder.
    let run = p.terrace(&["force-unlock", "5eed"]).expect_code(1);
    let err = flat(&run.stderr);
    assert!(
        err.contains("held by ops@elsewhere (pid 4242, apply) since")
            && err.contains("lock ID 5eed"),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert!(std::fs::read_to_string(&lock).unwrap().contains("5eed"));

    if let Some((code, out)) = force_unlock_on_a_tty(&p, "5eed", "n\n") {
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("The state lock is held by ops@elsewhere"),
            "{out}"
        );
        assert!(out.contains("Remove the lock? [y/N]"), "{out}");
        assert!(out.contains("Nothing was removed."), "{out}");
        assert!(lock.exists());
        let (code, out) = force_unlock_on_a_tty(&p, "5eed", "y\n").unwrap();
        assert_eq!(code, 0, "{out}");
        assert!(
            flat(&out).contains("Removed the lock held by ops@elsewhere (pid 4242, apply)"),
            "{out}"
        );
        assert!(!lock.exists());
    } else {
        eprintln!("script(1) not installed; the prompt is not tested");
    }

    // --force (or -y): no question.
    let _again = held_by_another(&lock, "5eed2").unwrap();
    let run = p.terrace(&["force-unlock", "-y", "5eed2"]).expect_code(0);
    assert!(
        run.stdout
            .contains("Removed the lock held by ops@elsewhere (pid 4242, apply)"),
        "{}",
        run.all()
    );
}
