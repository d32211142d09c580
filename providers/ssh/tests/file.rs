//! host_file against a real sshd: create, no-op, update, drift, delete.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::*;
use serde_json::json;
use terrace_provider::{Observed, Operation};
use terrace_provider_ssh::FILE;

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
    // Not readable by everyone on the host: may be secret, never fetched.
    let live = live_of(observe(&p, FILE, &want(&private, "0640")).await);
    assert!(!live.contains_key("content"), "{live:?}");
    assert_ne!(
        live["content_sha256"],
        want(&private, "0640")["content_sha256"]
    );
    // Recorded as private, made readable by hand: still never fetched.
    let live = live_of(observe(&p, FILE, &want(&public, "0640")).await);
    assert!(!live.contains_key("content"), "{live:?}");
    // Over the size cap, or not text: the hashes tell the drift.
    let live = live_of(observe(&p, FILE, &want(&big, "0644")).await);
    assert!(!live.contains_key("content"));
    let live = live_of(observe(&p, FILE, &want(&binary, "0644")).await);
    assert!(!live.contains_key("content"));
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
