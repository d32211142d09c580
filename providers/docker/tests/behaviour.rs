//! What containers do for real: reach each other by alias, keep volume data across
//! replacement, and show drift made by hand.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::Observed;
use terrace_provider_docker::{CONTAINER, NETWORK, VOLUME};

#[tokio::test]
async fn container_reaches_another_by_alias_on_a_user_network() {
    let p = provider();
    let mut c = Cleanup::default();
    let net = c.network(&uniq("web"));
    create(&p, NETWORK, attrs(json!({"name": net})))
        .await
        .unwrap();
    let server = c.container(&uniq("httpd"));
    create(
        &p,
        CONTAINER,
        attrs(json!({
            "name": server, "image": BUSYBOX,
            "command": ["sh", "-c", "mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 80 -h /www"],
            "networks": [{"name": net, "aliases": ["site"]}],
        })),
    )
    .await
    .unwrap();
    let client = c.container(&uniq("wget"));
    create(
        &p,
        CONTAINER,
        attrs(json!({
            "name": client, "image": BUSYBOX,
            // The server may need a moment to listen: retry for up to 10 s.
            "command": ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://site/ && exit 0; sleep 1; done; exit 1"],
            "networks": [{"name": net}],
        })),
    )
    .await
    .unwrap();
    let out = wait_and_logs(&client);
    assert!(out.contains("hello-from-httpd"), "client output: {out}");
}

#[tokio::test]
async fn volume_data_survives_container_replacement() {
    let p = provider();
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("keep"));
    create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    let name = c.container(&uniq("writer"));
    let first = create(
        &p,
        CONTAINER,
        attrs(json!({
            "name": name, "image": BUSYBOX,
            "command": ["sh", "-c", "echo precious > /data/file && trap 'exit 0' TERM; while true; do sleep 1; done"],
            "mounts": [{"source": vol, "target": "/data"}],
        })),
    )
    .await
    .unwrap();
    // Wait until the file is written before replacing.
    for _ in 0..50 {
        if docker(&["exec", &name, "cat", "/data/file"]).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A replacement: delete, then create with another command, same volume.
    delete(&p, CONTAINER, &first).await.unwrap();
    assert_eq!(
        observe(&p, VOLUME, &attrs(json!({"name": vol}))).await,
        Observed::Present(attrs(json!({"name": vol, "driver": "local"})))
    );
    create(
        &p,
        CONTAINER,
        attrs(json!({
            "name": name, "image": BUSYBOX,
            "command": ["cat", "/data/file"],
            "mounts": [{"source": vol, "target": "/data", "read_only": true}],
        })),
    )
    .await
    .unwrap();
    assert_eq!(wait_and_logs(&name), "precious");
}

#[tokio::test]
async fn container_stopped_by_hand_is_drift_and_apply_starts_it() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("stopme"));
    let desired = normalized(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": BUSYBOX, "command": forever()})),
    );
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    docker(&["stop", "-t", "5", &name]).unwrap();
    let live = observe_present(&p, CONTAINER, &stored).await;
    assert_eq!(live["running"], false);
    let diff = changed(CONTAINER, &desired, &live);
    assert_eq!(diff, vec!["running"]);
    assert!(replace_because(CONTAINER, &diff).is_empty());
    // Drift: state and config agree, the planner passes "running" as changed.
    update(&p, CONTAINER, &stored, desired.clone(), &["running"])
        .await
        .unwrap();
    assert_no_diff(
        CONTAINER,
        &desired,
        &observe_present(&p, CONTAINER, &stored).await,
    );
}

#[tokio::test]
async fn container_removed_by_hand_is_absent() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("gone"));
    let stored = create(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": BUSYBOX, "command": forever()})),
    )
    .await
    .unwrap();
    docker(&["rm", "-f", &name]).unwrap();
    assert_eq!(observe(&p, CONTAINER, &stored).await, Observed::Absent);
}

#[tokio::test]
async fn volume_removed_by_hand_is_absent() {
    let p = provider();
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("gonevol"));
    let stored = create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    docker(&["volume", "rm", &vol]).unwrap();
    assert_eq!(observe(&p, VOLUME, &stored).await, Observed::Absent);
}

#[tokio::test]
async fn container_created_by_hand_is_not_seen() {
    // Observe lists only labelled objects: a same-named container terrace did not make
    // reads as absent (apply then fails with the engine's name conflict).
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("byhand"));
    docker(&["create", "--name", &name, BUSYBOX, "true"]).unwrap();
    let a = normalized(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": BUSYBOX, "command": forever()})),
    );
    assert_eq!(observe(&p, CONTAINER, &a).await, Observed::Absent);
    let err = create(&p, CONTAINER, a).await.unwrap_err().to_string();
    assert!(err.contains("already in use"), "{err}");
}
