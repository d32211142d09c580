//! Observe is batched: one list call per object kind whatever the number of resources;
//! only the per-container inspects grow, and they reuse a few connections.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Address, ObserveRequest, Observed, Provider};
use terrace_provider_docker::{CONTAINER, IMAGE, INSPECT_CONCURRENCY, NETWORK, VOLUME};

#[tokio::test]
async fn list_calls_are_constant_and_inspects_are_per_container() {
    let p = provider();
    let mut c = Cleanup::default();
    let net = c.network(&uniq("bnet"));
    let vol = c.volume(&uniq("bvol"));
    create(&p, NETWORK, attrs(json!({"name": net})))
        .await
        .unwrap();
    create(&p, VOLUME, attrs(json!({"name": vol})))
        .await
        .unwrap();
    let mut names = Vec::new();
    for _ in 0..20 {
        let n = c.container(&uniq("batch"));
        // Created, not started: enough to be listed and inspected, and quick.
        create_stopped(&p, &n).await;
        names.push(n);
    }
    let requests = |k: usize| -> Vec<ObserveRequest> {
        let mut r: Vec<ObserveRequest> = names[..k]
            .iter()
            .map(|n| ObserveRequest {
                address: Address::new(format!("c.{n}")),
                type_name: CONTAINER.into(),
                attrs: normalized(&p, CONTAINER, attrs(json!({"name": n, "image": BUSYBOX}))),
            })
            .collect();
        for (t, a) in [
            (NETWORK, json!({"name": net})),
            (VOLUME, json!({"name": vol})),
            (IMAGE, json!({"name": BUSYBOX})),
        ] {
            r.push(ObserveRequest {
                address: Address::new(format!("{t}.x")),
                type_name: t.into(),
                attrs: normalized(&p, t, attrs(a)),
            });
        }
        r
    };
    // (requests, connections opened) by one observe.
    let count = |reqs: Vec<ObserveRequest>| {
        let p = &p;
        async move {
            let (calls, conns) = (p.api_calls(), p.connections());
            let found = p.observe(&reqs).await.unwrap();
            assert!(found.iter().all(|o| matches!(o, Observed::Present(_))));
            (p.api_calls() - calls, p.connections() - conns)
        }
    };
    let (one, _) = count(requests(1)).await;
    let (twenty, _) = count(requests(20)).await;
    // 4 lists (containers, networks, volumes, images), the engine's info (its
    // capacity), 1 inspect per container, 1 inspect per distinct image the containers
    // run.
    assert_eq!(one, 4 + 1 + 1 + 1, "calls for 1 container");
    assert_eq!(
        twenty - one,
        19,
        "only the 19 extra container inspects differ"
    );

    // Connections are reused, within an observe and across observes: the provider holds
    // about as many connections as it has requests in flight at once (the four lists
    // together, then INSPECT_CONCURRENCY inspects), however many requests it makes. (A
    // request that starts while the one before it is still handing its connection back
    // may open one more, hence the margin.)
    let mut opened = Vec::new();
    for _ in 0..3 {
        let (calls, conns) = count(requests(20)).await;
        assert_eq!(calls, twenty);
        opened.push(conns);
    }
    eprintln!(
        "{} requests over {} connections; opened by warm observes of 20: {opened:?}",
        p.api_calls(),
        p.connections()
    );
    assert!(
        p.connections() <= 2 * INSPECT_CONCURRENCY as u64,
        "{} connections for {} requests",
        p.connections(),
        p.api_calls()
    );
    assert!(
        opened.iter().sum::<u64>() < twenty,
        "warm observes opened a connection per request: {opened:?}"
    );
}

/// Containers the state recorded by id are inspected by id: a no-change observe lists
/// no containers at all (the engine's slowest answer, and it grows with every container
/// on the engine, terrace's or not). A plan that creates a container lists them once,
/// at the check, to find the names and ports others hold.
#[tokio::test]
async fn containers_recorded_by_id_are_not_listed_until_a_change_needs_the_list() {
    let p = provider();
    let mut c = Cleanup::default();
    let mut stored = Vec::new();
    for _ in 0..3 {
        let n = c.container(&uniq("byid"));
        let a = create_stopped(&p, &n).await;
        assert!(a.get("id").is_some(), "create records the id: {a:?}");
        stored.push((n, a));
    }
    let request = |n: &str, a: &terrace_provider::Attrs| ObserveRequest {
        address: Address::new(format!("c.{n}")),
        type_name: CONTAINER.into(),
        attrs: a.clone(),
    };
    let by_id: Vec<ObserveRequest> = stored.iter().map(|(n, a)| request(n, a)).collect();
    let calls = p.api_calls();
    let found = p.observe(&by_id).await.unwrap();
    assert!(found.iter().all(|o| matches!(o, Observed::Present(_))));
    // 2 lists (networks, images), the info, 3 container inspects, 1 image inspect.
    assert_eq!(p.api_calls() - calls, 2 + 1 + 3 + 1, "no container list");
    // The capacity a plan checks was read by that observe.
    let calls = p.api_calls();
    assert!(p.capacity().await.unwrap().is_some());
    assert_eq!(p.api_calls(), calls, "capacity as observed");

    // One request without its id (found by name): the list is made, the others are
    // still inspected once each.
    let mut mixed = by_id.clone();
    mixed[0].attrs.remove("id");
    let calls = p.api_calls();
    let found = p.observe(&mixed).await.unwrap();
    assert!(found.iter().all(|o| matches!(o, Observed::Present(_))));
    assert_eq!(
        p.api_calls() - calls,
        3 + 1 + 3 + 1,
        "the container list, once"
    );

    // No change needs the list, then a create does: listed once.
    p.observe(&by_id).await.unwrap();
    let calls = p.api_calls();
    assert_eq!(p.check_plan(&[]).await.unwrap(), vec![]);
    assert_eq!(p.api_calls(), calls, "nothing to check");
    let fresh = normalized(
        &p,
        CONTAINER,
        attrs(json!({"name": uniq("fresh"), "image": BUSYBOX, "command": forever()})),
    );
    let create_one = terrace_provider::PlannedChange {
        address: Address::new("c.fresh"),
        type_name: CONTAINER.into(),
        destroys: false,
        creates: true,
        before: None,
        after: Some(fresh),
    };
    assert_eq!(
        p.check_plan(std::slice::from_ref(&create_one))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(p.api_calls(), calls + 1, "the list, for the create");
    p.check_plan(&[create_one]).await.unwrap();
    assert_eq!(p.api_calls(), calls + 1, "listed once per observe");
}
