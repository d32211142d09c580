//! Faults of one resource or of the transport: a broken resource fails alone, a host
//! that never answers cannot hang terrace, and nothing of a connection outlives
//! terrace, even after `kill -9`.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use terrace_provider::{Address, ObserveRequest, Observed, Provider};
use terrace_provider_ssh::{SshHost, SshProvider, FILE, PACKAGE};

fn file_request(name: &str, path: &str) -> ObserveRequest {
    ObserveRequest {
        address: Address::new(format!("host_file.{name}")),
        type_name: FILE.into(),
        attrs: attrs(json!({"path": path})),
    }
}

fn failure(o: &Observed) -> &str {
    match o {
        Observed::Failed(why) => why,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_broken_file_is_its_own_error_and_the_rest_of_the_host_is_observed() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let (good, link, sub, gone) = (
        dir.path("good.conf"),
        dir.path("link.conf"),
        dir.path("sub"),
        dir.path("gone.conf"),
    );
    std::fs::write(&good, "ok\n").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
    std::fs::create_dir(&sub).unwrap();
    let requests = vec![
        file_request("good", &good),
        file_request("link", &link),
        file_request("sub", &sub),
        file_request("gone", &gone),
        ObserveRequest {
            address: Address::new("host_package.coreutils"),
            type_name: PACKAGE.into(),
            attrs: attrs(json!({"name": "coreutils"})),
        },
        // A request the probe cannot even ask about fails alone too.
        file_request("relative", "etc/relative"),
    ];
    let before = p.host().commands_run();
    let found = p.observe(&requests).await.expect("the host itself is fine");
    assert_eq!(p.host().commands_run() - before, 1, "still one probe");
    assert!(matches!(found[0], Observed::Present(_)), "{:?}", found[0]);
    let why = failure(&found[1]);
    assert!(
        why.contains("host testhost")
            && why.contains("symbolic link")
            && why.contains("/etc/shadow"),
        "{why}"
    );
    assert!(
        failure(&found[2]).contains("is a directory"),
        "{:?}",
        found[2]
    );
    assert_eq!(found[3], Observed::Absent);
    assert!(matches!(found[4], Observed::Present(_)), "{:?}", found[4]);
    assert!(
        failure(&found[5]).contains("absolute file path"),
        "{:?}",
        found[5]
    );
    // Import says what is wrong, not "does not exist".
    let err = p
        .import(FILE, &link, &attrs(json!({"content": "x"})))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("symbolic link"), "{err}");
}

#[tokio::test]
async fn an_unreadable_file_is_its_own_error() {
    // Without root, the login user cannot read a root-only file.
    let mut cfg = config("web1", "TERRACE_TEST_SSH_HOST1");
    cfg.become_root = false;
    let p = SshProvider::new(Arc::new(SshHost::new(cfg)));
    let dir = Scratch::new();
    let (secret, open) = (dir.path("secret"), dir.path("open"));
    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&open, "hello\n").unwrap();
    let found = p
        .observe(&[file_request("secret", &secret), file_request("open", &open)])
        .await
        .unwrap();
    assert!(
        failure(&found[0]).contains("cannot read the file"),
        "{:?}",
        found[0]
    );
    assert!(matches!(found[1], Observed::Present(_)), "{:?}", found[1]);
}

/// Accepts TCP connections and never says a word, like a hung server.
async fn silent_listener() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    port
}

#[tokio::test]
async fn a_host_that_accepts_and_never_answers_fails_in_bounded_time() {
    let port = silent_listener().await;
    let mut cfg = config("mute", "TERRACE_TEST_SSH_HOST1");
    cfg.port = port;
    let p = SshProvider::new(Arc::new(SshHost::new(cfg)));
    let started = Instant::now();
    let res = tokio::time::timeout(
        Duration::from_secs(90),
        p.observe(&[file_request("x", "/etc/hostname")]),
    )
    .await
    .expect("observe must give up by itself, not hang");
    let err = res.unwrap_err().to_string();
    assert!(
        err.contains("host mute") && err.contains("timed out"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    // A forward is refused the same way.
    let h = SshHost::new({
        let mut c = config("mute", "TERRACE_TEST_SSH_HOST1");
        c.port = port;
        c
    });
    let res = tokio::time::timeout(Duration::from_secs(90), h.forward_tcp("127.0.0.1", 1))
        .await
        .expect("forward must give up by itself");
    assert!(res.is_err());
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn forward_and_control_directories_are_private() {
    let h = host("web1", "TERRACE_TEST_SSH_HOST1");
    let sock = h
        .forward_tcp_to_socket("127.0.0.1", 3306, "mysqld.sock")
        .await
        .unwrap();
    let dir = sock.parent().unwrap();
    let private = dir.parent().unwrap();
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    assert_eq!(mode(private), 0o700, "{}", private.display());
    // The control socket lives in the same private directory.
    assert!(control_socket(private).is_some(), "{}", private.display());
    h.close().await;
}

/// The ssh master's control socket inside a host's private directory.
fn control_socket(private: &Path) -> Option<PathBuf> {
    std::fs::read_dir(private)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("master"))
        .find(|p| p.exists())
}

/// The pid of the master behind a control socket (`ssh -O check` says it).
fn master_pid(ctl: &Path) -> u32 {
    let out = Command::new("ssh")
        .arg("-S")
        .arg(ctl)
        .args(["-O", "check", "x"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    let pid = text
        .split("pid=")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("no master: {text}"));
    pid.parse().unwrap()
}

/// Running (a zombie waiting for its reaper counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

const CHILD_ENV: &str = "TERRACE_SSH_TEST_HOLDER";

/// Not a test of its own: the process that `kill -9` kills in the test below. It opens
/// a host with a forward (as the Docker provider does), prints where, and waits.
#[tokio::test]
#[ignore = "run by master_ends_soon_after_terrace_is_killed"]
async fn holder_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let h = host("web1", "TERRACE_TEST_SSH_HOST1");
    let sock = h
        .forward_tcp_to_socket("127.0.0.1", 3306, "mysqld.sock")
        .await
        .unwrap();
    let private = sock.parent().unwrap().parent().unwrap();
    println!("READY {}", private.display());
    tokio::time::sleep(Duration::from_secs(600)).await;
}

#[test]
fn master_ends_soon_after_terrace_is_killed() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "holder_process", "--ignored", "--nocapture"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let private = loop {
        let line = lines.next().expect("the holder printed READY").unwrap();
        if let Some(p) = line.strip_prefix("READY ") {
            break PathBuf::from(p);
        }
    };
    let ctl = control_socket(&private).expect("a control socket");
    let pid = master_pid(&ctl);
    // While terrace lives, its master stays, however idle: longer than it lingers.
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        alive(pid),
        "the master must not expire under a running terrace"
    );
    child.kill().unwrap(); // SIGKILL: no destructor, no cleanup runs
    child.wait().unwrap();
    let killed = Instant::now();
    while alive(pid) && killed.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        !alive(pid),
        "ssh master {pid} still runs 30 s after terrace was killed"
    );
    let _ = std::fs::remove_dir_all(&private);
}

#[tokio::test]
async fn a_remote_command_that_never_ends_is_abandoned_with_an_error() {
    let h = SshHost::new(config("web1", "TERRACE_TEST_SSH_HOST1"))
        .with_time_limits(Duration::from_secs(3), Duration::from_secs(3));
    let p = SshProvider::new(Arc::new(h));
    // A unique duration, to find the process on the host afterwards.
    let sleep = format!("3000.{}", std::process::id());
    // A guard that never returns would hold the whole plan forever.
    let req = ObserveRequest {
        address: Address::new("host_command.hang"),
        type_name: terrace_provider_ssh::COMMAND.into(),
        attrs: attrs(json!({"command": "true", "unless": format!("sleep {sleep}")})),
    };
    let res = tokio::time::timeout(Duration::from_secs(60), p.observe(&[req]))
        .await
        .expect("observe gives up by itself");
    let err = res.unwrap_err().to_string();
    assert!(
        err.contains("host web1") && err.contains("did not finish within 3s"),
        "{err}"
    );
    // The host stopped the command too: nothing of it runs on.
    let still_running = || {
        Command::new("pgrep")
            .args(["-f", &format!("^sleep {sleep}$")])
            .status()
            .unwrap()
            .success()
    };
    let given_up = Instant::now();
    while still_running() && given_up.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !still_running(),
        "the abandoned command still runs on the host"
    );
    // The connection is still good for the next command.
    let ok = p
        .observe(&[file_request("x", "/etc/hostname")])
        .await
        .unwrap();
    assert!(matches!(ok[0], Observed::Present(_)));
}

#[tokio::test]
async fn what_a_killed_run_left_is_removed_by_the_next_one() {
    // A pid that no longer runs.
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let tmp = std::env::temp_dir();
    let stale = tmp.join(format!("terrace-fwd-{dead}-{}", unique("s")));
    let busy = tmp.join(format!("terrace-fwd-{dead}-{}", unique("b")));
    for d in [&stale, &busy] {
        std::fs::create_dir_all(d.join(".ssh-connectionX")).unwrap();
    }
    // A socket nobody listens on any more, and one that still answers (a run in
    // another pid namespace, say): only the first directory is left over.
    drop(std::os::unix::net::UnixListener::bind(stale.join(".ssh-connectionX/master")).unwrap());
    let _live = std::os::unix::net::UnixListener::bind(busy.join("0.sock")).unwrap();
    let h = host("web1", "TERRACE_TEST_SSH_HOST1");
    let sock = h
        .forward_tcp_to_socket("127.0.0.1", 3306, "mysqld.sock")
        .await
        .unwrap();
    assert!(!stale.exists(), "{} is left over", stale.display());
    assert!(busy.exists(), "a directory in use was removed");
    let ours = sock.parent().unwrap().parent().unwrap();
    assert!(ours
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(&format!("terrace-fwd-{}-", std::process::id())));
    h.close().await;
    let _ = std::fs::remove_dir_all(&busy);
}
