//! Observe is batched: one list call per object kind whatever the number of resources;
//! only the per-container inspects grow.

mod common;

use common::*;
use serde_json::json;
use terrace_provider::{Address, ObserveRequest, Observed, Provider};
use terrace_provider_docker::{CONTAINER, IMAGE, NETWORK, VOLUME};

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
        create(
            &p,
            CONTAINER,
            attrs(json!({"name": n, "image": BUSYBOX, "command": forever(), "running": false})),
        )
        .await
        .unwrap();
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
    let count = |reqs: Vec<ObserveRequest>| {
        let p = &p;
        async move {
            let before = p.api_calls();
            let found = p.observe(&reqs).await.unwrap();
            assert!(found.iter().all(|o| matches!(o, Observed::Present(_))));
            p.api_calls() - before
        }
    };
    let two = count(requests(2)).await;
    let twenty = count(requests(20)).await;
    // 4 lists (containers, networks, volumes, images) + 1 inspect per container + 1
    // inspect per distinct image the containers run.
    assert_eq!(two, 4 + 2 + 1, "calls for 2 containers");
    assert_eq!(
        twenty - two,
        18,
        "only the 18 extra container inspects differ"
    );
}
