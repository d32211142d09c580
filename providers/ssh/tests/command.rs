//! host_command guards against a real sshd.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Observed, Operation};
use terrace_provider_ssh::COMMAND;

#[tokio::test]
async fn creates_guard() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let marker = dir.path("done");
    let desired = normalized(
        &p,
        COMMAND,
        attrs(json!({"command": format!("echo ran >> '{marker}'"), "creates": marker})),
    );
    assert_eq!(observe(&p, COMMAND, &desired).await, Observed::Absent);
    step(&p, COMMAND, Operation::Create, None, Some(&desired))
        .await
        .unwrap();
    assert!(matches!(
        observe(&p, COMMAND, &desired).await,
        Observed::Present(_)
    ));
    // Applying again runs nothing: the guard is checked at apply time too.
    step(&p, COMMAND, Operation::Create, None, Some(&desired))
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
}

#[tokio::test]
async fn unless_guard_and_failures() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let log = dir.path("log");
    let desired = normalized(
        &p,
        COMMAND,
        attrs(json!({"command": format!("echo line >> '{log}'\nexit 0"),
                     "unless": format!("grep -q line '{log}'")})),
    );
    assert_eq!(observe(&p, COMMAND, &desired).await, Observed::Absent);
    step(&p, COMMAND, Operation::Create, None, Some(&desired))
        .await
        .unwrap();
    assert!(matches!(
        observe(&p, COMMAND, &desired).await,
        Observed::Present(_)
    ));
    step(
        &p,
        COMMAND,
        Operation::Update,
        Some(&desired),
        Some(&desired),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "line\n");

    // Without guards a command always plans to run.
    let always = normalized(&p, COMMAND, attrs(json!({"command": "true"})));
    assert_eq!(observe(&p, COMMAND, &always).await, Observed::Absent);

    let failing = normalized(
        &p,
        COMMAND,
        attrs(json!({"command": "echo 'it broke' >&2; exit 7"})),
    );
    let err = step(&p, COMMAND, Operation::Create, None, Some(&failing))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("host testhost"), "{err}");
    assert!(
        err.contains("status 7") && err.contains("it broke"),
        "{err}"
    );
}
