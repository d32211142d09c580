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

/// A command that succeeds without producing what its guard checks would run on every
/// apply and read as "deleted outside terrace" on every plan: the step fails instead,
/// saying why.
#[tokio::test]
async fn a_command_that_leaves_its_guard_unmet_fails_the_step() {
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let (marker, log) = (dir.path("never"), dir.path("log"));
    let desired = normalized(
        &p,
        COMMAND,
        attrs(json!({"command": format!("echo ran >> '{log}'"), "creates": marker})),
    );
    let err = step(&p, COMMAND, Operation::Create, None, Some(&desired))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the command succeeded, but its guard is still not satisfied"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ran\n",
        "it ran once"
    );
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

/// Every guard of a host is checked in one remote command, each on its own resource; the
/// `unless` scripts run from files in one private directory, gone once the probe ends.
#[tokio::test]
async fn guards_of_many_commands_are_checked_in_one_probe() {
    use terrace_provider::{Address, ObserveRequest, Provider};
    let p = provider("TERRACE_TEST_SSH_HOST1");
    let dir = Scratch::new();
    let (marker, exists) = (dir.path("where"), dir.path("exists"));
    std::fs::write(&exists, "").unwrap();
    let commands = [
        json!({"command": "true", "unless": "true"}),
        json!({"command": "true", "unless": "false"}),
        json!({"command": "true", "unless": format!(
            "d=$(dirname \"$0\")\n{{ echo \"$d\"; stat -c %a \"$d\"; }} > '{marker}'\nexit 1")}),
        json!({"command": "true", "creates": exists}),
        json!({"command": "true", "creates": dir.path("missing"), "unless": "exit 3"}),
    ];
    let requests: Vec<ObserveRequest> = commands
        .into_iter()
        .enumerate()
        .map(|(i, a)| ObserveRequest {
            address: Address::new(format!("host_command.c{i}")),
            type_name: COMMAND.into(),
            attrs: normalized(&p, COMMAND, attrs(a)),
        })
        .collect();
    let before = p.host().commands_run();
    let found = p.observe(&requests).await.expect("observe");
    assert_eq!(p.host().commands_run() - before, 1, "one remote command");
    let present: Vec<bool> = found
        .iter()
        .map(|o| matches!(o, Observed::Present(_)))
        .collect();
    assert_eq!(present, [true, false, false, true, false], "{found:?}");
    assert!(
        found.iter().all(|o| !matches!(o, Observed::Failed(_))),
        "{found:?}"
    );
    let seen = std::fs::read_to_string(&marker).unwrap();
    let (guard_dir, mode) = seen.trim().split_once('\n').unwrap();
    assert_eq!(mode, "700", "the guard scripts' directory is private");
    assert!(
        !std::path::Path::new(guard_dir).exists(),
        "{guard_dir} was left behind"
    );
}
