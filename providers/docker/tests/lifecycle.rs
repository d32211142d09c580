//! Create, no-op, in-place update, replace detection and delete for every resource type,
//! against the real engine.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::Observed;
use terrace_provider_docker::{CONTAINER, IMAGE, NETWORK, VOLUME};

#[tokio::test]
async fn network_lifecycle() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.network(&uniq("net"));
    let desired = normalized(&p, NETWORK, attrs(json!({"name": name})));
    let stored = create(&p, NETWORK, desired.clone()).await.unwrap();
    assert_eq!(stored, desired);
    let live = observe_present(&p, NETWORK, &stored).await;
    assert_no_diff(NETWORK, &desired, &live);
    assert_eq!(live["driver"], "bridge");
    let labels = docker(&["network", "inspect", &name, "-f", "{{json .Labels}}"]).unwrap();
    assert!(labels.contains("\"terrace.managed\":\"true\""), "{labels}");
    assert!(labels.contains(&format!("\"terrace.address\":\"docker_network.{name}\"")));

    // A force_new attribute the config changes shows as a difference to replace.
    let internal = normalized(&p, NETWORK, attrs(json!({"name": name, "internal": true})));
    let diff = changed(NETWORK, &internal, &live);
    assert_eq!(replace_because(NETWORK, &diff), vec!["internal"]);

    delete(&p, NETWORK, &stored).await.unwrap();
    assert_eq!(observe(&p, NETWORK, &stored).await, Observed::Absent);
    // Deleting again is not an error.
    delete(&p, NETWORK, &stored).await.unwrap();
}

#[tokio::test]
async fn internal_network_reads_back() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.network(&uniq("inet"));
    let desired = attrs(json!({"name": name, "internal": true, "driver": "bridge"}));
    let stored = create(&p, NETWORK, desired).await.unwrap();
    assert_no_diff(
        NETWORK,
        &stored,
        &observe_present(&p, NETWORK, &stored).await,
    );
    delete(&p, NETWORK, &stored).await.unwrap();
}

#[tokio::test]
async fn volume_lifecycle() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.volume(&uniq("vol"));
    let stored = create(&p, VOLUME, attrs(json!({"name": name})))
        .await
        .unwrap();
    let live = observe_present(&p, VOLUME, &stored).await;
    assert_no_diff(VOLUME, &stored, &live);
    assert_eq!(live["driver"], "local");

    let other = normalized(&p, VOLUME, attrs(json!({"name": name, "driver": "other"})));
    let diff = changed(VOLUME, &other, &live);
    assert_eq!(replace_because(VOLUME, &diff), vec!["driver"]);

    delete(&p, VOLUME, &stored).await.unwrap();
    assert_eq!(observe(&p, VOLUME, &stored).await, Observed::Absent);
}

#[tokio::test]
async fn volume_terrace_did_not_make_is_not_adopted() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.volume(&uniq("foreign"));
    docker(&["volume", "create", &name]).unwrap();
    let err = create(&p, VOLUME, attrs(json!({"name": name})))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not created by terrace"), "{err}");
}

#[tokio::test]
async fn image_adopt_observe_and_delete_tag() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.image(&format!("{}:1", uniq("img")));
    docker(&["tag", BUSYBOX, &name]).unwrap();
    let busybox_id = docker(&["image", "inspect", BUSYBOX, "-f", "{{.Id}}"]).unwrap();

    let desired = normalized(&p, IMAGE, attrs(json!({"name": name, "pull": "never"})));
    let stored = create(&p, IMAGE, desired.clone()).await.unwrap();
    assert_eq!(stored["id"], busybox_id.as_str());
    let live = observe_present(&p, IMAGE, &stored).await;
    assert_no_diff(IMAGE, &desired, &live);
    assert_eq!(live["id"], busybox_id.as_str());
    assert!(!live.contains_key("pull"), "pull is not observable");

    // Destroying an image resource leaves the image on the engine.
    delete(&p, IMAGE, &stored).await.unwrap();
    assert!(matches!(
        observe(&p, IMAGE, &stored).await,
        Observed::Present(_)
    ));
    docker(&["image", "inspect", BUSYBOX]).expect("busybox survives");
}

#[tokio::test]
async fn image_missing_with_pull_never_is_a_clear_error() {
    let p = provider();
    let name = format!("{}:1", uniq("nope"));
    let err = create(&p, IMAGE, attrs(json!({"name": name, "pull": "never"})))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pull = \"never\"") && err.contains(&name),
        "{err}"
    );
}

#[tokio::test]
async fn image_in_use_is_left_in_place_on_delete() {
    let p = provider();
    let mut c = Cleanup::default();
    // A separate image (not just a tag of busybox), so the tag is its only one.
    let name = c.image(&format!("{}:1", uniq("busy")));
    let cont = c.container(&uniq("user"));
    docker(&["create", "--name", &cont, BUSYBOX, "true"]).unwrap();
    docker(&["commit", &cont, &name]).unwrap();
    let stored = create(&p, IMAGE, attrs(json!({"name": name})))
        .await
        .unwrap();
    let user = c.container(&uniq("user2"));
    docker(&["create", "--name", &user, &name, "true"]).unwrap();
    delete(&p, IMAGE, &stored)
        .await
        .expect("an image in use is not an error");
    docker(&["image", "inspect", &name]).expect("still there");
}

#[tokio::test]
async fn image_import_from_tarball() {
    let p = provider();
    let mut c = Cleanup::default();
    let dir = std::env::temp_dir().join(uniq("rootfs"));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("busybox-static installed");
    std::os::unix::fs::symlink("busybox", dir.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.join("bin/echo")).unwrap();
    let tar = dir.with_extension("tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());

    let name = c.image(&format!("{}:1", uniq("imported")));
    let desired = normalized(
        &p,
        IMAGE,
        attrs(json!({"name": name, "source": tar.to_str().unwrap(),
                     "cmd": ["sh", "-c", "echo imported-ok"]})),
    );
    let stored = create(&p, IMAGE, desired.clone()).await.unwrap();
    assert!(stored["id"].as_str().unwrap().starts_with("sha256:"));
    assert_no_diff(IMAGE, &desired, &observe_present(&p, IMAGE, &stored).await);
    let labels = docker(&["image", "inspect", &name, "-f", "{{json .Config.Labels}}"]).unwrap();
    assert!(labels.contains("terrace.managed"), "{labels}");

    // The CMD given with the import runs.
    let cont = c.container(&uniq("fromtar"));
    docker(&["run", "--name", &cont, &name]).unwrap();
    assert_eq!(docker(&["logs", &cont]).unwrap(), "imported-ok");

    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_file(&tar).ok();
}

#[tokio::test]
async fn container_lifecycle() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("life"));
    let base = json!({"name": name, "image": BUSYBOX, "command": forever(), "memory": "32m"});
    let desired = normalized(&p, CONTAINER, attrs(base.clone()));
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    let live = observe_present(&p, CONTAINER, &stored).await;
    assert_no_diff(CONTAINER, &desired, &live);
    assert_eq!(live["running"], true);
    let labels = docker(&["inspect", &name, "-f", "{{json .Config.Labels}}"]).unwrap();
    assert!(labels.contains(&format!("\"terrace.address\":\"docker_container.{name}\"")));

    // In place: memory, restart, running.
    let mut next = base.clone();
    next["memory"] = json!("64m");
    next["restart"] = json!("unless-stopped");
    next["running"] = json!(false);
    let next = normalized(&p, CONTAINER, attrs(next));
    let diff = changed(CONTAINER, &next, &live);
    assert_eq!(diff, vec!["memory", "restart", "running"]);
    assert!(replace_because(CONTAINER, &diff).is_empty());
    let stored2 = update(&p, CONTAINER, &stored, next.clone(), &[])
        .await
        .unwrap();
    let live = observe_present(&p, CONTAINER, &stored2).await;
    assert_no_diff(CONTAINER, &next, &live);
    assert_eq!(live["memory"], 64 << 20);
    assert_eq!(live["running"], false);

    // And back to running.
    let mut again = next.clone();
    again.insert("running".into(), json!(true));
    let stored3 = update(&p, CONTAINER, &stored2, again.clone(), &["running"])
        .await
        .unwrap();
    assert_no_diff(
        CONTAINER,
        &again,
        &observe_present(&p, CONTAINER, &stored3).await,
    );

    // A force_new change (the command) reads as a replacement.
    let mut other = base.clone();
    other["command"] = json!(["sleep", "5"]);
    let other = normalized(&p, CONTAINER, attrs(other));
    let diff = changed(CONTAINER, &other, &live);
    assert!(replace_because(CONTAINER, &diff).contains(&"command".to_string()));

    delete(&p, CONTAINER, &stored3).await.unwrap();
    assert_eq!(observe(&p, CONTAINER, &stored3).await, Observed::Absent);
    delete(&p, CONTAINER, &stored3).await.unwrap();
}

#[tokio::test]
async fn limits_set_with_docker_update_are_drift_that_a_new_container_repairs() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("lim"));
    let base = json!({"name": name, "image": BUSYBOX, "command": forever(), "memory": "32m"});
    let desired = normalized(&p, CONTAINER, attrs(base));
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    assert_no_diff(
        CONTAINER,
        &desired,
        &observe_present(&p, CONTAINER, &stored).await,
    );

    // By hand: a tenant throttled or pinned, which Docker cannot undo in place (an update
    // with 0 means "unchanged" for most of these).
    docker(&[
        "update",
        "--cpus=0.5",
        "--cpu-shares=512",
        "--pids-limit=50",
        "--memory-reservation=16m",
        "--memory-swap=64m",
        "--cpuset-cpus=0",
        &name,
    ])
    .unwrap();
    let live = observe_present(&p, CONTAINER, &stored).await;
    assert_eq!(
        live["extra_limits"],
        json!([
            "--cpus=0.5",
            "--cpu-shares=512",
            "--pids-limit=50",
            "--cpuset-cpus=0",
            "--memory-reservation=16m",
            "--memory-swap=64m",
        ])
    );
    let diff = changed(CONTAINER, &desired, &live);
    assert_eq!(diff, vec!["extra_limits"]);
    assert_eq!(replace_because(CONTAINER, &diff), vec!["extra_limits"]);

    // The repair: the container made again, as the configuration says.
    delete(&p, CONTAINER, &live).await.unwrap();
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    let live = observe_present(&p, CONTAINER, &stored).await;
    assert_no_diff(CONTAINER, &desired, &live);
    assert_eq!(live["extra_limits"], json!([]));
    delete(&p, CONTAINER, &stored).await.unwrap();
}

#[tokio::test]
async fn import_reads_a_managed_container_and_adopts_a_foreign_one_by_its_id() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("imp"));
    let stored = create_stopped(&p, &name).await;
    let desired = normalized(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": BUSYBOX, "command": forever(), "running": false})),
    );
    let got = p.import(CONTAINER, &name, &desired).await.unwrap();
    assert_no_diff(CONTAINER, &stored, &got);

    // One made by hand cannot get terrace's labels: it is adopted by its id, and found
    // by it from then on (its name alone would not make it terrace's).
    let foreign = c.container(&uniq("foreign"));
    docker(&["create", "--name", &foreign, BUSYBOX, "true"]).unwrap();
    let id = docker(&["inspect", "-f", "{{.Id}}", &foreign]).unwrap();
    let got = p.import(CONTAINER, &foreign, &desired).await.unwrap();
    assert_eq!(got["id"], json!(id));
    assert_eq!(got["command"], json!(["true"]));
    let again = observe_at(&p, CONTAINER, "c.adopted", &got).await;
    assert!(
        matches!(again, terrace_provider::Observed::Present(_)),
        "{again:?}"
    );
}

use terrace_provider::Provider;
