//! Faults of one resource or of the transport: a broken resource fails alone, a host
//! that never answers cannot hang terrace, and nothing of a connection outlives
//! terrace for long, even after `kill -9`: a master of a run's own ends within seconds,
//! a persistent one (reused by quick successive runs) after its idle time.

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

/// A host whose master outlives it by `idle` in `dir` (a test's own directory, so tests
/// never see each other's masters).
fn persistent_host(idle: Duration, dir: &Path) -> Arc<SshHost> {
    Arc::new(
        SshHost::new(config("web1", "TERRACE_TEST_SSH_HOST1")).with_persist(idle, Some(dir.into())),
    )
}

/// A host that opens a master of its own and ends it (reuse off).
fn own_master_host() -> Arc<SshHost> {
    Arc::new(
        SshHost::new(config("web1", "TERRACE_TEST_SSH_HOST1")).with_persist(Duration::ZERO, None),
    )
}

/// A private directory for persistent masters, removed (with any master still in it)
/// on drop.
struct Masters(tempfile::TempDir);

impl Masters {
    fn new() -> Self {
        let d = tempfile::Builder::new().prefix("tm").tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Masters(d)
    }
    fn dir(&self) -> &Path {
        self.0.path()
    }
    /// The control socket of the one master in here.
    fn socket(&self) -> Option<PathBuf> {
        use std::os::unix::fs::FileTypeExt;
        std::fs::read_dir(self.dir())
            .ok()?
            .filter_map(Result::ok)
            .find(|e| e.file_type().is_ok_and(|t| t.is_socket()))
            .map(|e| e.path())
    }
}

impl Drop for Masters {
    fn drop(&mut self) {
        if let Some(ctl) = self.socket() {
            let _ = Command::new("ssh")
                .arg("-S")
                .arg(ctl)
                .args(["-O", "exit", "x"])
                .stderr(Stdio::null())
                .status();
        }
    }
}

async fn some_command(h: &Arc<SshHost>) {
    let p = SshProvider::new(h.clone());
    let found = p
        .observe(&[file_request("x", "/etc/hostname")])
        .await
        .unwrap();
    assert!(matches!(found[0], Observed::Present(_)), "{found:?}");
}

fn wait_gone(pid: u32, within: Duration) -> bool {
    let since = Instant::now();
    while alive(pid) && since.elapsed() < within {
        std::thread::sleep(Duration::from_millis(100));
    }
    !alive(pid)
}

#[tokio::test]
async fn forward_and_control_directories_are_private() {
    // A master of the run's own: its control socket is in the run's private directory.
    let h = own_master_host();
    let sock = h
        .forward_tcp_to_socket("127.0.0.1", 3306, "mysqld.sock")
        .await
        .unwrap();
    let dir = sock.parent().unwrap();
    let private = dir.parent().unwrap();
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    assert_eq!(mode(private), 0o700, "{}", private.display());
    assert!(control_socket(private).is_some(), "{}", private.display());
    h.close().await;
    // A persistent master: in the per-user directory, created 0700, with the lease.
    let masters = Masters::new();
    let shared = masters.dir().join("sub");
    let h = persistent_host(Duration::from_secs(5), &shared);
    some_command(&h).await;
    assert_eq!(mode(&shared), 0o700);
    h.close().await;
    let ctl = std::fs::read_dir(&shared)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.path().extension().is_none())
        .unwrap()
        .path();
    let _ = Command::new("ssh")
        .arg("-S")
        .arg(ctl)
        .args(["-O", "exit", "x"])
        .stderr(Stdio::null())
        .status();
    // A directory others may enter is not used: the run opens a master of its own.
    let open = masters.dir().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    let h = persistent_host(Duration::from_secs(5), &open);
    some_command(&h).await;
    assert_eq!(
        std::fs::read_dir(&open).unwrap().count(),
        0,
        "nothing in a shared directory"
    );
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

/// Not a test of its own: the process that `kill -9` kills in the tests below. It opens
/// a host with a forward (as the Docker provider does), prints where, and waits.
/// `TERRACE_SSH_TEST_HOLDER` is `own` (a master of its own) or the directory of
/// persistent masters (idle 3 s).
#[tokio::test]
#[ignore = "run by the kill -9 tests below"]
async fn holder_process() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let h = if mode == "own" {
        own_master_host()
    } else {
        persistent_host(Duration::from_secs(3), Path::new(&mode))
    };
    let sock = h
        .forward_tcp_to_socket("127.0.0.1", 3306, "mysqld.sock")
        .await
        .unwrap();
    let private = sock.parent().unwrap().parent().unwrap();
    println!("READY {}", private.display());
    tokio::time::sleep(Duration::from_secs(600)).await;
}

/// Starts a holder; returns it and its private (forward) directory.
fn start_holder(mode: &std::ffi::OsStr) -> (std::process::Child, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "holder_process", "--ignored", "--nocapture"])
        .env(CHILD_ENV, mode)
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
    (child, private)
}

#[test]
fn master_ends_soon_after_terrace_is_killed() {
    let (mut child, private) = start_holder("own".as_ref());
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
    assert!(
        wait_gone(pid, Duration::from_secs(30)),
        "ssh master {pid} still runs 30 s after terrace was killed"
    );
    let _ = std::fs::remove_dir_all(&private);
}

/// A persistent master outlives a killed run by its idle time at most; the next run
/// within that time does not reuse it (it may hold the killed run's forwards) but
/// replaces it.
#[tokio::test]
async fn a_persistent_master_outlives_a_killed_run_by_its_idle_time_at_most() {
    let masters = Masters::new();
    // Killed, and no run after it: the master ends by itself.
    let (mut child, private) = start_holder(masters.dir().as_os_str());
    let pid = master_pid(&masters.socket().expect("a persistent master"));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        alive(pid),
        "the master must not expire under a running terrace"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_gone(pid, Duration::from_secs(3 + 10)),
        "ssh master {pid} still runs 13 s after terrace was killed (idle time 3 s)"
    );
    let _ = std::fs::remove_dir_all(&private);
    // Killed, and a run right after it: a fresh master, the old one ended at once.
    let (mut child, private) = start_holder(masters.dir().as_os_str());
    let old = master_pid(&masters.socket().unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
    let h = persistent_host(Duration::from_secs(3), masters.dir());
    some_command(&h).await;
    let new = master_pid(&masters.socket().unwrap());
    assert_ne!(old, new, "the killed run's master was reused");
    assert!(
        wait_gone(old, Duration::from_secs(2)),
        "the killed run's master still runs"
    );
    h.close().await;
    assert!(
        wait_gone(new, Duration::from_secs(3 + 10)),
        "the idle master still runs"
    );
    let _ = std::fs::remove_dir_all(&private);
}

/// Quick successive runs share one master; runs at the same time do not.
#[tokio::test]
async fn a_second_run_reuses_the_master_and_a_concurrent_one_opens_its_own() {
    let masters = Masters::new();
    let first = persistent_host(Duration::from_secs(30), masters.dir());
    let began = Instant::now();
    some_command(&first).await;
    let cold = began.elapsed();
    let pid = master_pid(&masters.socket().unwrap());
    // At the same time: a master of its own, not the held one.
    let concurrent = persistent_host(Duration::from_secs(30), masters.dir());
    some_command(&concurrent).await;
    let sockets = std::fs::read_dir(masters.dir())
        .unwrap()
        .filter(|e| {
            use std::os::unix::fs::FileTypeExt;
            e.as_ref().unwrap().file_type().unwrap().is_socket()
        })
        .count();
    assert_eq!(
        sockets, 1,
        "the concurrent run used the persistent directory"
    );
    concurrent.close().await;
    first.close().await;
    assert!(alive(pid), "the master outlives the run");
    let second = persistent_host(Duration::from_secs(30), masters.dir());
    let began = Instant::now();
    some_command(&second).await;
    let warm = began.elapsed();
    assert_eq!(master_pid(&masters.socket().unwrap()), pid, "reused");
    println!("first command: {cold:?} with a new master, {warm:?} reusing it");
    second.close().await;
}

/// With a short idle time, the master ends soon after the last run; the next run starts
/// a fresh one in place of the socket it left.
#[tokio::test]
async fn a_persistent_master_ends_after_its_idle_time() {
    let masters = Masters::new();
    let h = persistent_host(Duration::from_secs(2), masters.dir());
    some_command(&h).await;
    let pid = master_pid(&masters.socket().unwrap());
    h.close().await;
    assert!(wait_gone(pid, Duration::from_secs(2 + 10)), "still running");
    let h = persistent_host(Duration::from_secs(2), masters.dir());
    some_command(&h).await;
    assert_ne!(master_pid(&masters.socket().unwrap()), pid);
    h.close().await;
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
