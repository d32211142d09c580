//! host_file against a real sshd: create, no-op, update, drift, delete.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;

use common::*;
use serde_json::json;
use terrace_provider::{Address, ObserveRequest, Observed, Operation, Provider};
use terrace_provider_ssh::{CONTENT_NOT_SHOWN, FILE};

#[tokio::test]
async fn file_lifecycle() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let path = dir.path("app.conf");
    let desired = normalized(
        &p,
        FILE,
        attrs(
            json!({"path": path, "content": "listen 80;\n", "mode": "640",
                     "owner": "root", "group": "terrace"}),
        ),
    );
    assert_eq!(observe(&p, FILE, &desired).await, Observed::Absent);

    let stored = step(&p, FILE, Operation::Create, None, Some(&desired))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, desired);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "listen 80;\n");
    // No-op: everything observe reports equals the configuration.
    let live = observe(&p, FILE, &desired).await;
    assert_matches(&live, &desired);
    let Observed::Present(live) = live else {
        unreachable!()
    };
    assert_eq!(live["mode"], "0640");
    assert_eq!(live["owner"], "root");
    assert!(!live.contains_key("content"), "content is never read back");

    // Update content and mode.
    let desired2 = normalized(
        &p,
        FILE,
        attrs(
            json!({"path": path, "content": "listen 8080;\n", "mode": "0600",
                     "owner": "root", "group": "terrace"}),
        ),
    );
    step(&p, FILE, Operation::Update, Some(&stored), Some(&desired2))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "listen 8080;\n");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_matches(&observe(&p, FILE, &desired2).await, &desired2);
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");

    // Drift: edited by hand, the hash differs.
    std::fs::write(&path, "listen 9999;\n").unwrap();
    let Observed::Present(live) = observe(&p, FILE, &desired2).await else {
        panic!("file vanished")
    };
    assert_ne!(live["content_sha256"], desired2["content_sha256"]);
    assert_eq!(live["mode"], "0600");

    step(&p, FILE, Operation::Delete, Some(&desired2), None)
        .await
        .unwrap();
    assert!(!std::path::Path::new(&path).exists());
    assert_eq!(observe(&p, FILE, &desired2).await, Observed::Absent);
    // Deleting again is harmless.
    step(&p, FILE, Operation::Delete, Some(&desired2), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn content_with_any_bytes_round_trips() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let path = dir.path("odd");
    let content = "no trailing newline, quotes ' \" $HOME `id` \\ and\nTERRACE_DATA_END_-\nüñí";
    let desired = normalized(&p, FILE, attrs(json!({"path": path, "content": content})));
    step(&p, FILE, Operation::Create, None, Some(&desired))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content);
    assert_matches(&observe(&p, FILE, &desired).await, &desired);
}

#[tokio::test]
async fn a_missing_directory_is_a_clear_error_naming_the_host() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let desired = normalized(
        &p,
        FILE,
        attrs(json!({"path": "/nonexistent-terrace-dir/x", "content": "x"})),
    );
    let err = step(&p, FILE, Operation::Create, None, Some(&desired))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("host testhost"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn drift_reads_back_the_live_text_of_world_readable_files_only() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let want = |path: &str, mode: &str| {
        normalized(
            &p,
            FILE,
            attrs(json!({"path": path, "content": "a\nb\n", "mode": mode})),
        )
    };
    let live_of = |o: Observed| match o {
        Observed::Present(a) => a,
        other => panic!("{other:?}"),
    };
    let (public, private, big, binary, same) = (
        dir.path("public"),
        dir.path("private"),
        dir.path("big"),
        dir.path("binary"),
        dir.path("same"),
    );
    let write = |path: &str, content: &[u8], mode: u32| {
        std::fs::write(path, content).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write(&public, b"a\nchanged by hand\n", 0o644);
    write(&private, b"a\nDB_PASSWORD=x\n", 0o640);
    write(&big, &vec![b'x'; 70 * 1024], 0o644);
    write(&binary, b"a\0b\n", 0o644);
    write(&same, b"a\nb\n", 0o644);

    let live = live_of(observe(&p, FILE, &want(&public, "0644")).await);
    assert_eq!(live["content"], "a\nchanged by hand\n");
    // Not readable by everyone on the host: may be secret, never fetched; said so in
    // place of the content, so that no diff is drawn from the recorded text.
    let live = live_of(observe(&p, FILE, &want(&private, "0640")).await);
    assert_eq!(live["content"], CONTENT_NOT_SHOWN, "{live:?}");
    assert_ne!(
        live["content_sha256"],
        want(&private, "0640")["content_sha256"]
    );
    // Recorded as private, made readable by hand: still never fetched.
    let live = live_of(observe(&p, FILE, &want(&public, "0640")).await);
    assert_eq!(live["content"], CONTENT_NOT_SHOWN, "{live:?}");
    // Over the size cap, or not text: the hashes tell the drift.
    let live = live_of(observe(&p, FILE, &want(&big, "0644")).await);
    assert_eq!(live["content"], CONTENT_NOT_SHOWN);
    let live = live_of(observe(&p, FILE, &want(&binary, "0644")).await);
    assert_eq!(live["content"], CONTENT_NOT_SHOWN);
    // Unchanged: nothing is transferred.
    let live = live_of(observe(&p, FILE, &want(&same, "0644")).await);
    assert!(!live.contains_key("content"));
}

#[tokio::test]
async fn apply_never_writes_through_a_link_or_into_a_directory() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    // A link planted where a managed file goes (since the plan) points at a file
    // root owns: applying must not change that file's content or mode.
    let victim = dir.path("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (link, sub) = (dir.path("link.conf"), dir.path("sub"));
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::fs::create_dir(&sub).unwrap();
    for (path, content) in [(&link, Some("x\n")), (&link, None), (&sub, Some("x\n"))] {
        let mut a = json!({"path": path, "mode": "0666"});
        if let Some(c) = content {
            a["content"] = json!(c);
        }
        let desired = normalized(&p, FILE, attrs(a));
        let err = step(&p, FILE, Operation::Update, Some(&desired), Some(&desired))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("symbolic link") || err.contains("not a regular file"),
            "{err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_dir(&sub).unwrap().count(),
        0,
        "nothing moved into it"
    );
}

/// One observe request for the file at `path` managed with `content` and `mode`.
fn file_req(
    p: &terrace_provider_ssh::SshProvider,
    path: &str,
    content: &str,
    mode: &str,
) -> ObserveRequest {
    ObserveRequest {
        address: Address::new(format!("host_file.t[{path:?}]")),
        type_name: FILE.into(),
        attrs: normalized(
            p,
            FILE,
            attrs(json!({"path": path, "content": content, "mode": mode})),
        ),
    }
}

fn present(o: &Observed) -> &terrace_provider::Attrs {
    match o {
        Observed::Present(a) => a,
        other => panic!("expected the file to be present, got {other:?}"),
    }
}

fn failed(o: &Observed) -> &str {
    match o {
        Observed::Failed(why) => why,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Every file of a host is read by one `stat` and one `sha256sum`: each file's result,
/// good or bad, still lands on its own resource, in one remote command, whatever its
/// name holds (spaces, quotes, `$`, `*`, a backslash, which `sha256sum` escapes).
#[tokio::test]
async fn one_probe_reports_each_file_of_a_mixed_batch_on_its_own_resource() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let plain = dir.write("plain.conf", b"a\n", 0o644);
    let odd = dir.write("with space & 'quote' $HOME *.conf", b"odd\n", 0o640);
    let backslash = dir.write("back\\slash\\n.conf", b"bs\n", 0o600);
    let drift = dir.write("drift.conf", b"changed by hand\n", 0o644);
    let private = dir.write("private.conf", b"DB_PASSWORD=x\n", 0o640);
    let (link, sub, fifo, gone) = (
        dir.path("link.conf"),
        dir.path("sub"),
        dir.path("fifo"),
        dir.path("gone.conf"),
    );
    std::os::unix::fs::symlink(&plain, &link).unwrap();
    std::fs::create_dir(&sub).unwrap();
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let last = dir.write("last.conf", b"z\n", 0o644);

    let requests = vec![
        file_req(&p, &plain, "a\n", "0644"),
        file_req(&p, &link, "a\n", "0644"),
        file_req(&p, &odd, "odd\n", "0640"),
        file_req(&p, &gone, "g\n", "0644"),
        file_req(&p, &sub, "s\n", "0644"),
        file_req(&p, &backslash, "bs\n", "0600"),
        file_req(&p, &fifo, "f\n", "0644"),
        file_req(&p, &drift, "as configured\n", "0644"),
        file_req(&p, &private, "DB_PASSWORD=y\n", "0640"),
        file_req(&p, &last, "z\n", "0644"),
    ];
    let before = p.host().commands_run();
    let found = p.observe(&requests).await.expect("the host itself is fine");
    assert_eq!(p.host().commands_run() - before, 1, "one remote command");
    assert_eq!(found.len(), requests.len());
    for i in [0, 2, 5, 9] {
        assert_matches(&found[i], &requests[i].attrs);
        assert!(
            !present(&found[i]).contains_key("content"),
            "{:?}",
            found[i]
        );
    }
    assert_eq!(present(&found[2])["path"], odd.as_str());
    assert_eq!(present(&found[5])["mode"], "0600");
    assert_eq!(present(&found[5])["owner"], "root");
    let why = failed(&found[1]);
    assert!(
        why.contains("symbolic link") && why.contains(&plain),
        "{why}"
    );
    assert_eq!(found[3], Observed::Absent);
    assert!(
        failed(&found[4]).contains("is a directory"),
        "{:?}",
        found[4]
    );
    assert!(
        failed(&found[6]).contains("not a regular file"),
        "{:?}",
        found[6]
    );
    // Drift: the world-readable file's live text comes back for the diff, the private
    // one's never leaves the host.
    let live = present(&found[7]);
    assert_eq!(live["content"], "changed by hand\n");
    assert_ne!(live["content_sha256"], requests[7].attrs["content_sha256"]);
    let live = present(&found[8]);
    assert_eq!(live["content"], CONTENT_NOT_SHOWN, "{live:?}");
    assert_ne!(live["content_sha256"], requests[8].attrs["content_sha256"]);
}

/// Files this user may not read fail alone; a file that passes every test but that the
/// batched `sha256sum` cannot read (`/proc/self/mem`: reading a process's own memory at
/// offset 0 fails) makes the batch read each file alone, so it is reported exactly as when
/// observed alone, and the files around it keep their own hashes.
#[tokio::test]
async fn an_unreadable_file_fails_alone_in_a_batch() {
    let mut cfg = config("testhost", "TERRACE_TEST_SSH_HOST1");
    cfg.become_root = false;
    let p =
        terrace_provider_ssh::SshProvider::new(Arc::new(terrace_provider_ssh::SshHost::new(cfg)));
    let dir = Scratch::new();
    let first = dir.write("first.conf", b"1\n", 0o644);
    let secret = dir.write("secret.conf", b"s\n", 0o600);
    let second = dir.write("second.conf", b"2\n", 0o644);
    let requests = vec![
        file_req(&p, &first, "1\n", "0644"),
        file_req(&p, &secret, "s\n", "0600"),
        file_req(&p, &second, "2\n", "0644"),
    ];
    let found = p.observe(&requests).await.expect("the host itself is fine");
    assert_matches(&found[0], &requests[0].attrs);
    let why = failed(&found[1]);
    assert!(
        why.contains("cannot read the file") && why.contains(&secret),
        "{why}"
    );
    assert_matches(&found[2], &requests[2].attrs);

    let p = provider("TERRACE_TEST_SSH_HOST1");
    let requests = vec![
        file_req(&p, &first, "1\n", "0644"),
        file_req(&p, "/proc/self/mem", "m\n", "0600"),
        file_req(&p, &second, "2\n", "0644"),
    ];
    let found = p.observe(&requests).await.expect("the host itself is fine");
    assert_matches(&found[0], &requests[0].attrs);
    let alone = p.observe(&requests[1..2]).await.expect("observe");
    assert_eq!(found[1], alone[0]);
    assert_matches(&found[2], &requests[2].attrs);
}

/// More files than one batch command takes: every file still gets its own answer.
#[tokio::test]
async fn many_files_span_several_batches_in_one_probe() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let n = 600;
    let mut requests = Vec::new();
    for i in 0..n {
        let path = dir.path(&format!("f{i}.conf"));
        let content = format!("file {i}\n");
        // Every seventh is missing.
        if i % 7 != 0 {
            dir.write(&format!("f{i}.conf"), content.as_bytes(), 0o644);
        }
        requests.push(file_req(&p, &path, &content, "0644"));
    }
    let before = p.host().commands_run();
    let found = p.observe(&requests).await.expect("observe");
    assert_eq!(p.host().commands_run() - before, 1, "one remote command");
    for (i, (o, r)) in found.iter().zip(&requests).enumerate() {
        if i % 7 == 0 {
            assert_eq!(*o, Observed::Absent, "file {i}");
        } else {
            assert_matches(o, &r.attrs);
        }
    }
}
