//! Identity by the recorded id and terrace's labels, not only by name, and what is done
//! by hand between two plans:
//! a container renamed, replaced by one without terrace's labels, paused; a network
//! removed and re-created under a stopped container; a port another container holds.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Address, Attrs, Observed, PlannedChange, Provider};
use terrace_provider_docker::{CONTAINER, NETWORK};

/// A loopback port nothing listens on right now (the OS picks it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn present(o: Observed, what: &str) -> Attrs {
    match o {
        Observed::Present(a) => a,
        other => panic!("{what} reads as {other:?}"),
    }
}

fn planned(address: &str, before: Option<&Attrs>, after: &Attrs) -> PlannedChange {
    PlannedChange {
        address: Address::new(address),
        type_name: CONTAINER.into(),
        destroys: before.is_some(),
        creates: true,
        before: before.cloned(),
        after: Some(after.clone()),
    }
}

#[tokio::test]
async fn a_container_renamed_by_hand_is_found_by_its_recorded_id_and_renamed_back() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("ren"));
    let moved = c.container(&format!("{name}-moved"));
    let stored = create(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": BUSYBOX, "command": forever()})),
    )
    .await
    .unwrap();
    let id = docker(&["inspect", "-f", "{{.Id}}", &name]).unwrap();
    docker(&["rename", &name, &moved]).unwrap();

    let addr = address_of(CONTAINER, &name);
    let live = present(
        observe_at(&p, CONTAINER, &addr, &stored).await,
        "a renamed container",
    );
    assert_eq!(live["name"], json!(moved));
    // Only the name drifted, and a new name is changed in place, not by a replacement.
    let diff = changed(CONTAINER, &stored, &live);
    assert_eq!(diff, vec!["name".to_string()]);
    assert!(replace_because(CONTAINER, &diff).is_empty());

    update(&p, CONTAINER, &live, stored.clone(), &["name"])
        .await
        .unwrap();
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &name]).unwrap(),
        id,
        "the same container, renamed back"
    );
    let live = present(
        observe_at(&p, CONTAINER, &addr, &stored).await,
        "the renamed-back container",
    );
    assert_no_diff(CONTAINER, &stored, &live);
}

#[tokio::test]
async fn a_container_holding_the_name_without_terrace_labels_is_not_terrace_s() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("foreign"));
    let stored = create_stopped(&p, &name).await;
    // Replaced by hand, without terrace's labels.
    docker(&["rm", "-f", &name]).unwrap();
    docker(&["create", "--name", &name, BUSYBOX, "true"]).unwrap();
    let id = docker(&["inspect", "-f", "{{.Id}}", &name]).unwrap();

    let addr = address_of(CONTAINER, &name);
    assert_eq!(
        observe_at(&p, CONTAINER, &addr, &stored).await,
        Observed::Absent
    );
    // Re-creating it could only fail on the name: a conflict at plan time, naming it.
    let problems = p
        .check_plan(&[planned(&addr, None, &stored)])
        .await
        .unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains(&format!(
            "the name {name:?} is held by container {name:?} (id {}, not created by terrace",
            &id[..12]
        )),
        "{}",
        problems[0].message
    );
    assert!(
        problems[0].hint.contains(&format!("docker rm -f {name}")),
        "{}",
        problems[0].hint
    );
    // Destroying the resource never removes someone else's container of that name.
    delete(&p, CONTAINER, &stored).await.unwrap();
    assert_eq!(docker(&["inspect", "-f", "{{.Id}}", &name]).unwrap(), id);
}

/// The engine looks an inspect's argument up as an id, then as a name: a container
/// someone named like terrace's recorded id must not be taken for terrace's.
#[tokio::test]
async fn a_container_named_like_the_recorded_id_is_not_terrace_s() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("idname"));
    let stored = create_stopped(&p, &name).await;
    let id = stored["id"].as_str().expect("a recorded id").to_string();
    docker(&["rm", "-f", &name]).unwrap();
    let impostor = c.container(&id);
    docker(&["create", "--name", &impostor, BUSYBOX, "true"]).unwrap();

    let addr = address_of(CONTAINER, &name);
    assert_eq!(
        observe_at(&p, CONTAINER, &addr, &stored).await,
        Observed::Absent
    );
}

/// A container terrace made again under the same name (a killed apply, say) while the
/// state still records the old id: found by its name and labels, at its new id.
#[tokio::test]
async fn a_recorded_id_the_engine_no_longer_has_falls_back_to_terrace_s_container_of_that_name() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("again"));
    let desired =
        attrs(json!({"name": name, "image": BUSYBOX, "command": forever(), "running": false}));
    let stored = create(&p, CONTAINER, desired.clone()).await.unwrap();
    docker(&["rm", "-f", &name]).unwrap();
    let again = create(&p, CONTAINER, desired).await.unwrap();
    assert_ne!(stored["id"], again["id"]);

    let addr = address_of(CONTAINER, &name);
    let live = present(
        observe_at(&p, CONTAINER, &addr, &stored).await,
        "terrace's container made again",
    );
    assert_no_diff(CONTAINER, &again, &live);
}

#[tokio::test]
async fn a_paused_container_is_drift_and_update_unpauses_it() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("pause"));
    let stored = create(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": BUSYBOX, "command": forever()})),
    )
    .await
    .unwrap();
    docker(&["pause", &name]).unwrap();
    let addr = address_of(CONTAINER, &name);
    let live = present(observe_at(&p, CONTAINER, &addr, &stored).await, "paused");
    assert_eq!(live["paused"], json!(true));
    assert_eq!(
        changed(CONTAINER, &stored, &live),
        vec!["paused".to_string()]
    );
    update(&p, CONTAINER, &live, stored.clone(), &["paused"])
        .await
        .unwrap();
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Paused}}", &name]).unwrap(),
        "false"
    );
    let live = present(observe_at(&p, CONTAINER, &addr, &stored).await, "resumed");
    assert_no_diff(CONTAINER, &stored, &live);
}

#[tokio::test]
async fn a_network_re_created_under_a_stopped_container_is_seen_by_its_id() {
    let p = provider();
    let mut c = Cleanup::default();
    let net = c.network(&uniq("renet"));
    let name = c.container(&uniq("renetc"));
    let net_attrs = create(&p, NETWORK, attrs(json!({"name": net})))
        .await
        .unwrap();
    let desired = attrs(json!({
        "name": name, "image": BUSYBOX, "command": forever(),
        "networks": [net], "running": false,
    }));
    // It ran once (only then does its endpoint record the network's id), then stopped.
    let mut started = desired.clone();
    started.insert("running".into(), json!(true));
    let started = create(&p, CONTAINER, started).await.unwrap();
    let stored = update(&p, CONTAINER, &started, desired.clone(), &["running"])
        .await
        .unwrap();
    // By hand: the network goes away under the stopped container and comes back (as
    // terrace re-creates a network deleted outside it).
    docker(&["network", "rm", &net]).unwrap();
    create(&p, NETWORK, net_attrs).await.unwrap();
    let start = docker(&["start", &name]).unwrap_err();
    assert!(start.contains("not found"), "{start}");

    let addr = address_of(CONTAINER, &name);
    let live = present(observe_at(&p, CONTAINER, &addr, &stored).await, "stale");
    let diff = changed(CONTAINER, &stored, &live);
    assert_eq!(diff, vec!["networks".to_string()], "{live:?}");
    assert_eq!(replace_because(CONTAINER, &diff), diff);

    // The replacement joins the network as it is now, and starts.
    delete(&p, CONTAINER, &live).await.unwrap();
    let stored = create(&p, CONTAINER, desired).await.unwrap();
    let mut running = stored.clone();
    running.insert("running".into(), json!(true));
    update(&p, CONTAINER, &stored, running.clone(), &["running"])
        .await
        .unwrap();
    let live = present(observe_at(&p, CONTAINER, &addr, &running).await, "new");
    assert_no_diff(CONTAINER, &normalized(&p, CONTAINER, running), &live);
}

#[tokio::test]
async fn a_port_another_container_publishes_blocks_the_plan_naming_the_holder() {
    let p = provider();
    let mut c = Cleanup::default();
    let (taken, mine) = (free_port(), free_port());
    let holder = c.container(&uniq("holder"));
    docker(&[
        "run",
        "-d",
        "--name",
        &holder,
        "-p",
        &format!("127.0.0.1:{taken}:80"),
        BUSYBOX,
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ])
    .unwrap();
    let name = c.container(&uniq("proxy"));
    let stored = create(
        &p,
        CONTAINER,
        attrs(json!({
            "name": name, "image": BUSYBOX, "command": forever(),
            "ports": [format!("127.0.0.1:{mine}:80")],
        })),
    )
    .await
    .unwrap();
    let addr = address_of(CONTAINER, &name);
    let live = present(observe_at(&p, CONTAINER, &addr, &stored).await, "proxy");

    // Moving the proxy to the taken port: a replacement that could not start.
    let mut moved = stored.clone();
    moved.insert("ports".into(), json!([format!("127.0.0.1:{taken}:80")]));
    let moved = normalized(&p, CONTAINER, moved);
    // Observe found the proxy by its recorded id and listed no containers: the check
    // lists them once, as a replacement needs the ports others hold.
    let calls = p.api_calls();
    let problems = p
        .check_plan(&[planned(&addr, Some(&live), &moved)])
        .await
        .unwrap();
    assert_eq!(p.api_calls(), calls + 1, "one list of the containers");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains(&format!(
            "host port {taken}/tcp is already published by container {holder:?}"
        )),
        "{}",
        problems[0].message
    );
    // Its own port is no clash: the old container goes first.
    let mut bigger = stored.clone();
    bigger.insert("command".into(), json!(["sleep", "1000"]));
    assert_eq!(
        p.check_plan(&[planned(&addr, Some(&live), &bigger)])
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(p.api_calls(), calls + 1, "listed once per observe");
}

#[tokio::test]
async fn a_rename_is_found_by_the_recorded_id_when_another_project_shares_the_address() {
    let p = provider();
    let mut c = Cleanup::default();
    // Two projects on one engine, each with a container at the same address.
    let addr = format!("service.proxy.container.{}", uniq("shared"));
    let mut stored = Vec::new();
    for which in ["mine", "theirs"] {
        let name = c.container(&uniq(which));
        stored.push(create_stopped_at(&p, &addr, &name).await);
    }
    let mine = &stored[0];
    let name = mine["name"].as_str().unwrap();
    let moved = c.container(&format!("{name}-moved"));
    docker(&["rename", name, &moved]).unwrap();
    let live = present(
        observe_at(&p, CONTAINER, &addr, mine).await,
        "a renamed container whose address another project uses too",
    );
    assert_eq!(live["name"], json!(moved));
}

#[tokio::test]
async fn another_project_s_container_with_the_same_address_is_not_taken_for_a_new_one() {
    let p = provider();
    let mut c = Cleanup::default();
    let addr = format!("service.proxy.container.{}", uniq("other"));
    let theirs = c.container(&uniq("theirs"));
    let desired = |name: &str| {
        normalized(
            &p,
            CONTAINER,
            attrs(json!({"name": name, "image": BUSYBOX, "command": forever(), "running": false})),
        )
    };
    create_stopped_at(&p, &addr, &theirs).await;
    // This project's resource at the same address, not created yet.
    let mine = c.container(&uniq("mine"));
    assert_eq!(
        observe_at(&p, CONTAINER, &addr, &desired(&mine)).await,
        Observed::Absent
    );
}

#[tokio::test]
async fn a_network_or_volume_name_held_by_hand_is_a_conflict_at_plan_time() {
    use terrace_provider_docker::VOLUME;
    let p = provider();
    let mut c = Cleanup::default();
    let net = c.network(&uniq("handnet"));
    let vol = c.volume(&uniq("handvol"));
    // Made by hand where terrace wants to create them.
    docker(&["network", "create", &net]).unwrap();
    docker(&["volume", "create", &vol]).unwrap();
    let net_attrs = normalized(&p, NETWORK, attrs(json!({"name": net})));
    let vol_attrs = normalized(&p, VOLUME, attrs(json!({"name": vol})));
    let requests = [
        (NETWORK, address_of(NETWORK, &net), net_attrs.clone()),
        (VOLUME, address_of(VOLUME, &vol), vol_attrs.clone()),
    ];
    let observe: Vec<terrace_provider::ObserveRequest> = requests
        .iter()
        .map(|(t, a, attrs)| terrace_provider::ObserveRequest {
            address: Address::new(a),
            type_name: t.to_string(),
            attrs: attrs.clone(),
        })
        .collect();
    let found = p.observe(&observe).await.unwrap();
    assert_eq!(found, vec![Observed::Absent, Observed::Absent]);
    let changes: Vec<PlannedChange> = requests
        .iter()
        .map(|(t, a, attrs)| PlannedChange {
            address: Address::new(a),
            type_name: t.to_string(),
            destroys: false,
            creates: true,
            before: None,
            after: Some(attrs.clone()),
        })
        .collect();
    let problems = p.check_plan(&changes).await.unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0]
            .message
            .starts_with(&format!("the name {net:?} is held by network {net:?} (id "))
            && problems[0].message.contains("not created by terrace"),
        "{}",
        problems[0].message
    );
    assert!(
        problems[1].message
            == format!(
                "the name {vol:?} is held by volume {vol:?} (not created by terrace: it has no terrace labels)"
            ),
        "{}",
        problems[1].message
    );
}

#[tokio::test]
async fn a_replacement_whose_image_is_not_on_the_engine_blocks_the_plan() {
    use terrace_provider_docker::IMAGE;
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("noimg"));
    let stored = create_stopped(&p, &name).await;
    let addr = address_of(CONTAINER, &name);
    let live = present(observe_at(&p, CONTAINER, &addr, &stored).await, "it");
    let missing = format!("terrace/{}:1", uniq("missing"));
    let moved = normalized(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": missing, "command": forever(), "running": false})),
    );
    let problems = p
        .check_plan(&[planned(&addr, Some(&live), &moved)])
        .await
        .unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].message,
        format!("image {missing:?} is not on the engine, and nothing in this plan provides it")
    );
    // An `image` resource of the same plan that makes it: fine.
    let image = PlannedChange {
        address: Address::new("image.new"),
        type_name: IMAGE.into(),
        destroys: false,
        creates: true,
        before: None,
        after: Some(normalized(&p, IMAGE, attrs(json!({"name": missing})))),
    };
    assert_eq!(
        p.check_plan(&[planned(&addr, Some(&live), &moved), image])
            .await
            .unwrap(),
        vec![]
    );
}

/// A container moved to another engine is observed by the engine it leaves: the one it
/// goes to was never asked about containers, and its images are read for the check.
#[tokio::test]
async fn a_create_on_an_engine_never_observed_is_checked_for_its_image() {
    let p = provider();
    let missing = format!("terrace/{}:1", uniq("missing"));
    let name = uniq("arrives");
    let arriving = normalized(
        &p,
        CONTAINER,
        attrs(json!({"name": name, "image": missing, "command": forever(), "running": false})),
    );
    let addr = address_of(CONTAINER, &name);
    let problems = p
        .check_plan(&[planned(&addr, None, &arriving)])
        .await
        .unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].message,
        format!("image {missing:?} is not on the engine, and nothing in this plan provides it")
    );
}

/// Our container was removed by hand and another project on the engine made its own
/// under the same name: it carries terrace's labels, but another address. It is not
/// ours to observe, update or destroy.
#[tokio::test]
async fn another_project_s_container_that_took_the_name_of_a_removed_one_is_not_ours() {
    let p = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("taken"));
    let ours = create_stopped(&p, &name).await;
    docker(&["rm", "-f", &name]).unwrap();
    let elsewhere = format!("service.other.container.{}", uniq("p2"));
    let theirs = create_stopped_at(&p, &elsewhere, &name).await;

    let addr = address_of(CONTAINER, &name);
    assert_eq!(
        observe_at(&p, CONTAINER, &addr, &ours).await,
        Observed::Absent
    );
    // Destroying our resource leaves theirs alone.
    delete(&p, CONTAINER, &ours).await.unwrap();
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &name]).unwrap(),
        theirs["id"].as_str().unwrap()
    );
}
