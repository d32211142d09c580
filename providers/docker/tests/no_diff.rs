//! No perpetual diffs: for every container attribute, a container created with it reads
//! back equal to its normalised configuration, so a second plan is empty. The image used
//! here sets its own env, labels and a VOLUME, which must not leak into what is observed.

mod common;

use std::sync::OnceLock;

use common::*;
use serde_json::{json, Value};
use terrace_provider::Attrs;
use terrace_provider_docker::{normalize::image_id_placeholder, CONTAINER, NETWORK, VOLUME};

/// An image with ENV, LABEL and VOLUME of its own, built once per machine (cached by
/// tag like the scripts' images).
fn rich_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let name = "terrace/test-rich:1".to_string();
        if docker(&["image", "inspect", &name]).is_ok() {
            return name;
        }
        let tmp = uniq("richsrc");
        docker(&["create", "--name", &tmp, BUSYBOX, "true"]).unwrap();
        docker(&[
            "commit",
            "--change",
            "ENV IMG_VAR=from-image SHARED=image-value",
            "--change",
            "LABEL img.label=yes shared.label=image",
            "--change",
            "VOLUME /anon",
            &tmp,
            &name,
        ])
        .unwrap();
        docker(&["rm", &tmp]).unwrap();
        name
    })
}

/// The anonymous volumes a container got from its image's VOLUME: terrace leaves them
/// (it never removes volumes), so the tests remove them.
fn anonymous_volumes(container: &str) -> Vec<String> {
    docker(&[
        "inspect",
        container,
        "-f",
        "{{range .Mounts}}{{.Type}}:{{.Name}} {{end}}",
    ])
    .unwrap_or_default()
    .split_whitespace()
    .filter_map(|m| m.strip_prefix("volume:"))
    .filter(|n| n.len() == 64 && n.chars().all(|c| c.is_ascii_hexdigit()))
    .map(str::to_string)
    .collect()
}

/// Creates a container from the rich image with `extra` attributes, checks that what is
/// observed equals the normalised configuration (and that state reads back without
/// drift), deletes it and returns the observation.
async fn roundtrip(extra: Value) -> Attrs {
    roundtrip_with(extra, &mut Cleanup::default()).await
}

async fn roundtrip_with(extra: Value, c: &mut Cleanup) -> Attrs {
    let p = provider();
    let name = c.container(&uniq("nd"));
    let mut a = json!({"name": name, "image": rich_image(), "command": forever()});
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    let desired = normalized(&p, CONTAINER, attrs(a));
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    let live = observe_present(&p, CONTAINER, &stored).await;
    assert_no_diff(CONTAINER, &desired, &live);
    // No drift either: state (what apply returned) reads back the same.
    assert_no_diff(CONTAINER, &stored, &live);
    let anon = anonymous_volumes(&name);
    delete(&p, CONTAINER, &stored).await.unwrap();
    for v in anon {
        c.volume(&v);
    }
    live
}

#[tokio::test]
async fn name_image_and_image_id() {
    let live = roundtrip(json!({})).await;
    assert_eq!(
        live["image_id"],
        image_id_placeholder(rich_image()).as_str()
    );
}

#[tokio::test]
async fn command() {
    roundtrip(json!({"command": ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"]})).await;
}

#[tokio::test]
async fn env_without_image_env() {
    let live = roundtrip(json!({"env": {"A": "1", "PORT": 8080, "EMPTY": "", "EQ": "a=b"}})).await;
    assert!(!live["env"].as_object().unwrap().contains_key("IMG_VAR"));
}

#[tokio::test]
async fn env_that_repeats_or_overrides_the_image() {
    // The user sets a key the image also sets, to the same and to another value.
    roundtrip(json!({"env": {"IMG_VAR": "from-image", "SHARED": "mine"}})).await;
}

#[tokio::test]
async fn empty_env() {
    roundtrip(json!({"env": {}})).await;
}

#[tokio::test]
async fn labels() {
    let live = roundtrip(json!({"labels": {"app": "web", "shared.label": "image"}})).await;
    let l = live["labels"].as_object().unwrap();
    assert!(!l.contains_key("img.label") && !l.contains_key("terrace.managed"));
}

#[tokio::test]
async fn ports() {
    roundtrip(json!({"ports": ["127.0.0.1:0:80", "80", "127.0.0.1::81/udp", "127.0.0.1::82"]}))
        .await;
}

#[tokio::test]
async fn ports_short_form() {
    // "HOST:CONTAINER" publishes on all addresses; pick a port nobody uses.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let live = roundtrip(json!({"ports": [format!("{port}:80")]})).await;
    assert_eq!(live["ports"], json!([format!("0.0.0.0:{port}:80/tcp")]));
}

#[tokio::test]
async fn mounts_volume_bind_and_read_only() {
    let p = provider();
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("ndvol"));
    create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(uniq("bind"));
    std::fs::create_dir_all(&dir).unwrap();
    let live = roundtrip_with(
        json!({"mounts": [
            {"source": vol, "target": "/data/"},
            {"source": dir.to_str().unwrap(), "target": "/cfg", "read_only": true},
        ]}),
        &mut c,
    )
    .await;
    // The image's anonymous VOLUME /anon is not reported.
    assert_eq!(live["mounts"].as_array().unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn networks_with_aliases() {
    let p = provider();
    let mut c = Cleanup::default();
    let a = c.network(&uniq("nda"));
    let b = c.network(&uniq("ndb"));
    for n in [&a, &b] {
        create(&p, NETWORK, attrs(json!({"name": n})))
            .await
            .unwrap();
    }
    roundtrip_with(
        json!({"networks": [{"name": b, "aliases": ["web", "api"]}, {"name": a}]}),
        &mut c,
    )
    .await;
}

#[tokio::test]
async fn network_alias_equal_to_the_container_name_is_kept_when_asked() {
    let p = provider();
    let mut c = Cleanup::default();
    let n = c.network(&uniq("ndn"));
    create(&p, NETWORK, attrs(json!({"name": n})))
        .await
        .unwrap();
    let name = c.container(&uniq("self"));
    let desired = normalized(
        &p,
        CONTAINER,
        attrs(
            json!({"name": name, "image": rich_image(), "command": forever(),
                     "networks": [{"name": n, "aliases": [name, "other"]}]}),
        ),
    );
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    assert_no_diff(
        CONTAINER,
        &desired,
        &observe_present(&p, CONTAINER, &stored).await,
    );
}

#[tokio::test]
async fn memory_in_units() {
    for m in [json!("64m"), json!(50331648), json!("1g"), json!("65536k")] {
        roundtrip(json!({"memory": m})).await;
    }
}

#[tokio::test]
async fn restart_policies() {
    for r in [
        "no",
        "always",
        "unless-stopped",
        "on-failure",
        "on-failure:3",
    ] {
        roundtrip(json!({"restart": r})).await;
    }
}

#[tokio::test]
async fn healthcheck_defaults_and_units() {
    roundtrip(json!({"healthcheck": {"test": "exit 0"}})).await;
    roundtrip(
        json!({"healthcheck": {"test": ["CMD-SHELL", "exit 0"], "interval": "90s",
        "timeout": "1.5s", "retries": 5, "start_period": 2}}),
    )
    .await;
    roundtrip(json!({"healthcheck": {"test": ["sh", "-c", "exit 0"], "interval": "500ms"}})).await;
}

#[tokio::test]
async fn stopped_container() {
    let live = roundtrip(json!({"running": false})).await;
    assert_eq!(live["running"], false);
}

#[tokio::test]
async fn everything_at_once() {
    let p = provider();
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("allvol"));
    let net = c.network(&uniq("allnet"));
    create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    create(&p, NETWORK, attrs(json!({"name": net})))
        .await
        .unwrap();
    roundtrip_with(
        json!({
            "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
            "env": {"SECRET_TOKEN": "t0k3n-value", "IMG_VAR": "from-image", "N": 3},
            "labels": {"tier": "web"},
            "ports": ["127.0.0.1::8080", "127.0.0.1::53/udp"],
            "mounts": [{"source": vol, "target": "/data", "read_only": false}],
            "networks": [{"name": net, "aliases": ["all", "every"]}],
            "memory": "48m",
            "restart": "on-failure:2",
            "healthcheck": {"test": "exit 0", "interval": "1m", "timeout": "5s", "retries": 2, "start_period": "0s"},
            "running": true,
        }),
        &mut c,
    )
    .await;
}

#[tokio::test]
async fn retagged_image_plans_a_replace_because_of_image_id() {
    let p = provider();
    let mut c = Cleanup::default();
    let tag = c.image(&format!("{}:1", uniq("moving")));
    docker(&["tag", BUSYBOX, &tag]).unwrap();
    let name = c.container(&uniq("ret"));
    let desired = normalized(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": tag, "command": forever()})),
    );
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    let live = observe_present(&p, CONTAINER, &stored).await;
    assert_no_diff(CONTAINER, &desired, &live);

    // The tag now points at another image: the container runs an outdated one.
    docker(&["tag", rich_image(), &tag]).unwrap();
    let live = observe_present(&p, CONTAINER, &stored).await;
    let busybox_id = docker(&["image", "inspect", BUSYBOX, "-f", "{{.Id}}"]).unwrap();
    assert_eq!(live["image_id"], busybox_id.as_str());
    let diff = changed(CONTAINER, &desired, &live);
    assert_eq!(diff, vec!["image_id"]);
    assert_eq!(replace_because(CONTAINER, &diff), vec!["image_id"]);
    delete(&p, CONTAINER, &stored).await.unwrap();
}
