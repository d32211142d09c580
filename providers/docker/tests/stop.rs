//! `init`, `stop_signal` and `stop_timeout`: set at creation, read back in canonical
//! form, a replacement when changed, and what bounds a stop or a destroy.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use terrace_provider_docker::CONTAINER;

/// A container process that ignores SIGTERM: `sleep` as PID 1 has no handler, and the
/// kernel does not deliver default-action signals to a namespace's init.
fn deaf() -> serde_json::Value {
    json!(["sleep", "3600"])
}

/// Without `stop_timeout`, deleting a container waits 3 s before killing it; stopping
/// one (`running = false`) waits 10 s.
const DEFAULT_DELETE_WAIT: Duration = Duration::from_secs(3);

#[tokio::test]
async fn stop_timeout_bounds_destroy_of_a_process_that_ignores_sigterm() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("deaf"));
    let desired = attrs(json!({
        "name": name, "image": BUSYBOX, "command": deaf(), "stop_timeout": "1s",
    }));
    let state = create(&p, CONTAINER, desired.clone()).await.unwrap();
    let observed = observe_present(&p, CONTAINER, &state).await;
    assert_eq!(observed["stop_timeout"], json!("1s"));
    assert_no_diff(CONTAINER, &normalized(&p, CONTAINER, desired), &observed);
    assert_eq!(
        docker(&["inspect", "-f", "{{.Config.StopTimeout}}", &name]).unwrap(),
        "1"
    );

    let t = Instant::now();
    delete(&p, CONTAINER, &state).await.unwrap();
    let took = t.elapsed();
    // About a second (the engine's SIGKILL after 1 s, then the removal); the default
    // would have waited 3 s before the kill.
    assert!(
        took >= Duration::from_millis(900) && took < DEFAULT_DELETE_WAIT,
        "destroy took {took:?}"
    );
    assert!(docker(&["inspect", &name]).is_err(), "container is gone");
}

#[tokio::test]
async fn without_stop_timeout_a_destroy_of_what_observe_reported_waits_the_short_default() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("deafd"));
    let desired = attrs(json!({"name": name, "image": BUSYBOX, "command": deaf()}));
    let state = create(&p, CONTAINER, desired).await.unwrap();
    // What apply deletes from: the observed object, which reports the engine's
    // effective 10 s.
    let observed = observe_present(&p, CONTAINER, &state).await;
    assert_eq!(observed["stop_timeout"], json!("10s"));
    let t = Instant::now();
    delete(&p, CONTAINER, &observed).await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= DEFAULT_DELETE_WAIT - Duration::from_millis(200) && took < Duration::from_secs(8),
        "destroy took {took:?}"
    );
    assert!(docker(&["inspect", &name]).is_err(), "container is gone");
}

#[tokio::test]
async fn stop_timeout_bounds_stopping_too() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("deafstop"));
    let running = attrs(json!({
        "name": name, "image": BUSYBOX, "command": deaf(), "stop_timeout": "1s",
    }));
    let state = create(&p, CONTAINER, running.clone()).await.unwrap();
    let mut stopped = running.clone();
    stopped.insert("running".into(), json!(false));
    let t = Instant::now();
    update(&p, CONTAINER, &state, stopped, &["running"])
        .await
        .unwrap();
    let took = t.elapsed();
    // The default stop waits 10 s before the kill.
    assert!(took < Duration::from_secs(5), "stop took {took:?}");
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &name]).unwrap(),
        "false"
    );
}

#[tokio::test]
async fn init_forwards_sigterm_so_destroy_is_quick() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("init"));
    let desired = attrs(json!({
        "name": name, "image": BUSYBOX, "command": deaf(), "init": true,
        "stop_signal": "term",
    }));
    let state = create(&p, CONTAINER, desired.clone()).await.unwrap();
    assert_eq!(
        docker(&["inspect", "-f", "{{.HostConfig.Init}}", &name]).unwrap(),
        "true"
    );
    let observed = observe_present(&p, CONTAINER, &state).await;
    assert_eq!(observed["init"], json!(true));
    assert_eq!(observed["stop_signal"], json!("SIGTERM"));
    assert_no_diff(CONTAINER, &normalized(&p, CONTAINER, desired), &observed);

    // The engine's init is PID 1 and passes SIGTERM on to `sleep`, which dies of it.
    let t = Instant::now();
    delete(&p, CONTAINER, &state).await.unwrap();
    let took = t.elapsed();
    assert!(took < DEFAULT_DELETE_WAIT, "destroy took {took:?}");
}

#[tokio::test]
async fn changing_init_or_stop_settings_is_a_replacement() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("stopset"));
    let base = attrs(json!({
        "name": name, "image": BUSYBOX, "command": forever(), "running": false,
    }));
    let state = create(&p, CONTAINER, base.clone()).await.unwrap();
    let observed = observe_present(&p, CONTAINER, &state).await;
    // Unset, the engine's defaults are reported: no init, SIGTERM, 10 s.
    assert_eq!(observed["init"], json!(false));
    assert_eq!(observed["stop_signal"], json!("SIGTERM"));
    assert_eq!(observed["stop_timeout"], json!("10s"));
    // Writing the defaults out is no change.
    let mut same = base.clone();
    same.insert("init".into(), json!(false));
    same.insert("stop_signal".into(), json!("15"));
    same.insert("stop_timeout".into(), json!("10s"));
    assert_no_diff(CONTAINER, &normalized(&p, CONTAINER, same), &observed);

    for (key, value) in [
        ("init", json!(true)),
        ("stop_signal", json!("SIGINT")),
        ("stop_timeout", json!("1s")),
    ] {
        let mut next = base.clone();
        next.insert(key.into(), value);
        let diff = changed(CONTAINER, &normalized(&p, CONTAINER, next), &observed);
        assert_eq!(diff, vec![key.to_string()]);
        assert_eq!(replace_because(CONTAINER, &diff), vec![key.to_string()]);
    }
}
