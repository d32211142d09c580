//! `env` values never appear in errors or in terrace's tracing output.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::json;
use terrace_provider_docker::CONTAINER;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn env_values_stay_out_of_errors_and_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter("terrace_provider_docker=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("secret"));
    let secret = "hunter2-db-password";
    let with_env = |n: &str| {
        attrs(json!({"name": n, "image": BUSYBOX, "command": forever(),
                     "env": {"DB_PASSWORD": secret}}))
    };
    create(&p, CONTAINER, with_env(&name)).await.unwrap();
    // A failing create: the name is taken.
    let err = create(&p, CONTAINER, with_env(&name)).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("already in use"), "{shown}");
    assert!(!shown.contains(secret), "{shown}");
    // A failing create of another kind: the image does not exist.
    let missing = attrs(
        json!({"name": uniq("noimg"), "image": "terrace/no-such-image:1",
                               "env": {"DB_PASSWORD": secret}}),
    );
    let err = create(&p, CONTAINER, missing).await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(secret), "{shown}");

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("created container"),
        "tracing was captured: {logs}"
    );
    assert!(!logs.contains(secret), "{logs}");
}
