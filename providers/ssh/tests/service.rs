//! host_service through the init.d fallback (this machine has no systemd), with a tiny
//! init script the test writes through host_file.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Observed, Operation};
use terrace_provider_ssh::{FILE, SERVICE};

const NAME: &str = "terrace-test-svc";
const PIDFILE: &str = "/run/terrace-test-svc.pid";

const INIT_SCRIPT: &str = r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          terrace-test-svc
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: terrace's service test daemon
### END INIT INFO
PID=/run/terrace-test-svc.pid
case "$1" in
  start) start-stop-daemon --start --quiet --background --make-pidfile --pidfile $PID --exec /bin/sleep -- 100000 ;;
  stop) start-stop-daemon --stop --quiet --oknodo --retry 5 --pidfile $PID; rm -f $PID ;;
  restart) "$0" stop; "$0" start ;;
  status) start-stop-daemon --status --pidfile $PID ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 3 ;;
esac
"#;

fn pid() -> Option<String> {
    std::fs::read_to_string(PIDFILE)
        .ok()
        .map(|s| s.trim().to_string())
}

#[tokio::test]
async fn start_restart_on_token_change_stop() {
    let p = provider("TERRACE_TEST_SSH_HOST2");
    let script = normalized(
        &p,
        FILE,
        attrs(
            json!({"path": format!("/etc/init.d/{NAME}"), "content": INIT_SCRIPT,
                     "mode": "0755", "owner": "root", "group": "root"}),
        ),
    );
    let svc = normalized(&p, SERVICE, attrs(json!({"name": NAME, "running": true})));
    // A leftover from an interrupted run would make the first checks lie.
    if observe(&p, SERVICE, &svc).await != Observed::Absent {
        let _ = std::process::Command::new(format!("/etc/init.d/{NAME}"))
            .arg("stop")
            .status();
    }
    step(&p, FILE, Operation::Delete, Some(&script), None)
        .await
        .unwrap();
    assert_eq!(observe(&p, SERVICE, &svc).await, Observed::Absent);

    step(&p, FILE, Operation::Create, None, Some(&script))
        .await
        .unwrap();
    let Observed::Present(live) = observe(&p, SERVICE, &svc).await else {
        panic!("the init script is there")
    };
    assert_eq!(live["running"], false);

    let v1 = normalized(
        &p,
        SERVICE,
        attrs(json!({"name": NAME, "running": true, "restart_on": "sha-1"})),
    );
    let stored = step(&p, SERVICE, Operation::Create, None, Some(&v1))
        .await
        .unwrap()
        .unwrap();
    assert_matches(&observe(&p, SERVICE, &v1).await, &v1);
    let first = pid().expect("a pid file");

    // Same token: nothing restarts.
    step(&p, SERVICE, Operation::Update, Some(&stored), Some(&v1))
        .await
        .unwrap();
    assert_eq!(pid().as_deref(), Some(first.as_str()));

    // New token: restarted.
    let v2 = normalized(
        &p,
        SERVICE,
        attrs(json!({"name": NAME, "running": true, "restart_on": "sha-2"})),
    );
    let stored = step(&p, SERVICE, Operation::Update, Some(&stored), Some(&v2))
        .await
        .unwrap()
        .unwrap();
    let second = pid().expect("a pid file");
    assert_ne!(
        first, second,
        "restart_on changed: the daemon must be restarted"
    );
    assert_matches(&observe(&p, SERVICE, &v2).await, &v2);

    // Enabled at boot, then not (init.d: update-rc.d links).
    let enabled = normalized(
        &p,
        SERVICE,
        attrs(json!({"name": NAME, "running": true, "enabled": true, "restart_on": "sha-2"})),
    );
    let stored = step(
        &p,
        SERVICE,
        Operation::Update,
        Some(&stored),
        Some(&enabled),
    )
    .await
    .unwrap()
    .unwrap();
    assert_matches(&observe(&p, SERVICE, &enabled).await, &enabled);
    assert_eq!(
        pid().as_deref(),
        Some(second.as_str()),
        "enabling does not restart"
    );

    // Stop and disable.
    let stopped = normalized(
        &p,
        SERVICE,
        attrs(json!({"name": NAME, "running": false, "enabled": false})),
    );
    step(
        &p,
        SERVICE,
        Operation::Update,
        Some(&stored),
        Some(&stopped),
    )
    .await
    .unwrap();
    assert_matches(&observe(&p, SERVICE, &stopped).await, &stopped);
    assert!(pid().is_none());

    step(&p, FILE, Operation::Delete, Some(&script), None)
        .await
        .unwrap();
    // The rc.d links update-rc.d made go with the script.
    let out = std::process::Command::new("/usr/sbin/update-rc.d")
        .args([NAME, "remove"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn a_missing_service_is_absent_and_cannot_be_started() {
    let p = provider("TERRACE_TEST_SSH_HOST2");
    let svc = normalized(
        &p,
        SERVICE,
        attrs(json!({"name": "terrace-no-such-service"})),
    );
    assert_eq!(observe(&p, SERVICE, &svc).await, Observed::Absent);
    let err = step(&p, SERVICE, Operation::Create, None, Some(&svc))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such service"), "{err}");
}
