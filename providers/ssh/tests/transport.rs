//! The SSH transport itself: forwards, host key checking, unreachable hosts,
//! concurrency and batched observe.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use serde_json::json;
use terrace_provider::{Address, ObserveRequest, Provider};
use terrace_provider_ssh::{SshHost, SshProvider, COMMAND, FILE, PACKAGE, SERVICE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn echo_once<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    s.write_all(&buf[..n]).await.unwrap();
}

#[tokio::test]
async fn forward_tcp_reaches_a_loopback_listener_on_the_host() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        echo_once(s).await;
    });
    let h = host("web1", "TERRACE_TEST_SSH_HOST1");
    let local = h.forward_tcp("127.0.0.1", port).await.unwrap();
    assert!(local.ip().is_loopback());
    assert_ne!(local.port(), port);
    let mut c = tokio::net::TcpStream::connect(local).await.unwrap();
    c.write_all(b"ping over ssh").await.unwrap();
    let mut got = vec![0u8; 13];
    c.read_exact(&mut got).await.unwrap();
    assert_eq!(got, b"ping over ssh");
    h.close().await;
}

#[tokio::test]
async fn forward_unix_reaches_a_socket_and_cleans_up() {
    let dir = Scratch::new();
    // The remote end connects as the login user.
    std::fs::set_permissions(&dir.0, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let remote = dir.0.join("remote.sock");
    let listener = tokio::net::UnixListener::bind(&remote).unwrap();
    std::fs::set_permissions(&remote, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        echo_once(s).await;
    });
    let h = host("web1", "TERRACE_TEST_SSH_HOST1");
    let local: PathBuf = h.forward_unix(remote.to_str().unwrap()).await.unwrap();
    assert!(local.exists());
    let mut c = tokio::net::UnixStream::connect(&local).await.unwrap();
    c.write_all(b"docker?").await.unwrap();
    let mut got = vec![0u8; 7];
    c.read_exact(&mut got).await.unwrap();
    assert_eq!(got, b"docker?");
    h.close().await;
    assert!(!local.exists(), "the local socket file is removed on close");
}

#[tokio::test]
async fn a_changed_host_key_is_refused() {
    // known_hosts claiming host2's key for host1's address.
    let dir = Scratch::new();
    let real = std::fs::read_to_string(env("TERRACE_TEST_SSH_KNOWN_HOSTS")).unwrap();
    let key2 = real
        .lines()
        .find(|l| l.starts_with("[127.0.0.1]:2223 "))
        .expect("host2 in known_hosts")
        .split_once(' ')
        .unwrap()
        .1;
    let wrong = dir.0.join("known_hosts");
    std::fs::write(&wrong, format!("[127.0.0.1]:2222 {key2}\n")).unwrap();
    let mut cfg = config("web1", "TERRACE_TEST_SSH_HOST1");
    cfg.known_hosts = Some(wrong);
    let p = SshProvider::new(Arc::new(SshHost::new(cfg)));
    let req = ObserveRequest {
        address: Address::new("host_file.x"),
        type_name: FILE.into(),
        attrs: attrs(json!({"path": "/etc/hostname"})),
    };
    let err = p.observe(&[req]).await.unwrap_err().to_string();
    assert!(err.contains("host key changed"), "{err}");
    assert!(err.contains("host web1"), "{err}");
}

#[tokio::test]
async fn an_unreachable_host_fails_by_name_while_others_work() {
    let mut cfg = config("web9", "TERRACE_TEST_SSH_HOST1");
    cfg.port = 2299; // nothing listens here
    let down = SshProvider::new(Arc::new(SshHost::new(cfg)));
    let up = provider("TERRACE_TEST_SSH_HOST2");
    let req = ObserveRequest {
        address: Address::new("host_file.x"),
        type_name: FILE.into(),
        attrs: attrs(json!({"path": "/etc/hostname"})),
    };
    let (a, b) = tokio::join!(
        down.observe(std::slice::from_ref(&req)),
        up.observe(std::slice::from_ref(&req))
    );
    let err = a.unwrap_err().to_string();
    assert!(
        err.contains("host web9 (terrace@127.0.0.1:2299): connection refused"),
        "{err}"
    );
    assert_eq!(b.unwrap().len(), 1);
}

fn mixed_requests(n: usize) -> Vec<ObserveRequest> {
    (0..n)
        .map(|i| {
            let (t, a) = match i % 4 {
                0 => (FILE, json!({"path": format!("/tmp/terrace-nothing-{i}")})),
                1 => (
                    PACKAGE,
                    json!({"name": if i % 8 == 1 { "coreutils" } else { "sl" }}),
                ),
                2 => (SERVICE, json!({"name": format!("terrace-nothing-{i}")})),
                _ => (COMMAND, json!({"command": "true", "unless": "true"})),
            };
            ObserveRequest {
                address: Address::new(format!("{t}.r{i}")),
                type_name: t.into(),
                attrs: attrs(a),
            }
        })
        .collect()
}

#[tokio::test]
async fn observe_costs_one_command_for_1_or_50_resources() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let h = p.host().clone();
    let before = h.commands_run();
    let one = p.observe(&mixed_requests(1)).await.unwrap();
    let after_one = h.commands_run();
    let many = p.observe(&mixed_requests(50)).await.unwrap();
    let after_many = h.commands_run();
    assert_eq!(one.len(), 1);
    assert_eq!(many.len(), 50);
    assert_eq!(after_one - before, 1);
    assert_eq!(after_many - after_one, 1);
    // coreutils is installed, the guard `unless true` is satisfied.
    assert!(matches!(many[1], terrace_provider::Observed::Present(_)));
    assert!(matches!(many[3], terrace_provider::Observed::Present(_)));
    assert_eq!(many[2], terrace_provider::Observed::Absent);
}

#[tokio::test]
async fn many_concurrent_commands_share_one_connection() {
    // More than sshd's MaxSessions (10) at once: the host bounds and retries.
    let p = Arc::new(provider("TERRACE_TEST_SSH_HOST2"));
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let p = p.clone();
            tokio::spawn(async move { p.observe(&mixed_requests(1 + i % 5)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(p.host().commands_run(), 40);
}
