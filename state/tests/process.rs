//! The state lock across processes: a holder in another process is refused, and its
//! lock is freed when it exits, even when killed.
//!
//! The other process is this test binary run again with `CHILD_ENV` set, which makes
//! `lock_holder_child` take the lock, report `LOCKED`, and hold it until stdin closes.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use terrace_state::{ForceUnlocked, LocalBackend, State, StateError};

const CHILD_ENV: &str = "TERRACE_STATE_TEST_LOCK_CHILD";
const MARKER: &str = "<<child holds the lock>>";

/// Not a test by itself: the body of the child process.
#[test]
fn lock_holder_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let backend = LocalBackend::new(path);
    let _lock = backend.lock("child-apply").expect("child takes the lock");
    // libtest prints the test name without a newline first, so start a fresh line.
    println!("\n{MARKER}");
    // Hold the lock until the parent closes our stdin (or dies).
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

/// Starts a child holding the lock on `state` and waits until it has it.
fn spawn_holder(state: &Path) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read in a thread so that a child that never locks fails the test instead of
    // hanging it. The thread drains stdout to the end so the child never hits a
    // closed pipe when libtest prints its summary.
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
        let status = child.wait().unwrap();
        panic!("child did not report holding the lock: {status}");
    }
    child
}

#[test]
fn lock_held_by_another_process_is_refused_until_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::in_dir(dir.path());
    let mut child = spawn_holder(backend.path());

    let err = backend.lock("apply").unwrap_err();
    match &err {
        StateError::Locked {
            info: Some(info), ..
        } => {
            assert_eq!(info.pid, child.id());
            assert_eq!(info.operation, "child-apply");
        }
        other => panic!("expected Locked with details, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("pid {}", child.id())));
    // Reading is still allowed while another process holds the lock.
    assert_eq!(backend.load().unwrap(), None);

    // Closing stdin lets the child drop the lock and exit normally.
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let mut lock = backend.lock("apply").unwrap();
    lock.write(&mut State::new()).unwrap();
}

#[test]
fn lock_of_a_killed_process_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::in_dir(dir.path());
    let mut child = spawn_holder(backend.path());
    assert!(matches!(
        backend.lock("apply"),
        Err(StateError::Locked { .. })
    ));
    child.kill().unwrap(); // SIGKILL: no destructor runs.
    child.wait().unwrap();
    backend
        .lock("apply")
        .expect("the kernel frees the lock of a dead process");
}

/// A holder that is not terrace (here util-linux `flock`) leaves no details, yet is
/// still respected.
#[test]
fn foreign_flock_holder_is_refused() {
    let Some(flock) = ["/usr/bin/flock", "/bin/flock"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("flock(1) not installed; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::in_dir(dir.path());
    // `flock FILE sh -c 'echo LOCKED; cat'` holds the lock while `cat` waits on stdin.
    let mut child = Command::new(flock)
        .arg(backend.lock_path())
        .args(["sh", "-c", "echo LOCKED; cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "LOCKED");

    let err = backend.lock("apply").unwrap_err();
    assert!(
        matches!(err, StateError::Locked { info: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("locked by another process"));

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    backend.lock("apply").unwrap();
}

/// A lock whose holder is gone from view (a holder on another machine sharing the state)
/// is removed by `force_unlock`, given the lock ID; a wrong ID removes nothing.
#[test]
fn force_unlock_removes_a_foreign_holders_lock_given_its_id() {
    let Some(flock) = ["/usr/bin/flock", "/bin/flock"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("flock(1) not installed; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::in_dir(dir.path());
    let info = serde_json::json!({"who": "ops@elsewhere", "pid": 4242, "operation": "apply",
        "since": "2026-01-01T00:00:00Z", "id": "abc123"});
    std::fs::write(backend.lock_path(), info.to_string()).unwrap();
    let mut child = Command::new(flock)
        .arg(backend.lock_path())
        .args(["sh", "-c", "echo LOCKED; cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let err = backend.lock("apply").unwrap_err();
    assert!(
        err.to_string().contains("terrace force-unlock abc123"),
        "{err}"
    );

    let err = backend.force_unlock("wrong").unwrap_err();
    assert!(err.to_string().contains("not wrong"), "{err}");
    assert!(backend.lock_path().exists());

    match backend.force_unlock("abc123").unwrap() {
        ForceUnlocked::Removed(holder) => {
            assert_eq!(holder.who, "ops@elsewhere");
            assert_eq!(holder.pid, 4242);
        }
        other => panic!("{other:?}"),
    }
    backend
        .lock("apply")
        .expect("the lock is free after force-unlock");
    drop(child.stdin.take());
    child.wait().unwrap();
}

#[test]
fn force_unlock_refuses_a_live_holder_on_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::in_dir(dir.path());
    let mut child = spawn_holder(backend.path());
    let holder = backend.lock_holder().unwrap().unwrap().unwrap();
    assert_eq!(holder.pid, child.id());
    let err = backend.force_unlock(&holder.id).unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert!(matches!(
        backend.force_unlock("anything").unwrap(),
        ForceUnlocked::WasFree(None)
    ));
}
