//! Every engine call has a bound: against an engine that accepts and never answers,
//! observe and apply steps fail within it, naming the engine, the call, its object and
//! the bound; a stop may take its whole wait; a create whose answer never came is found
//! again by its labels.
//!
//! The hung engines are real sockets (`common/stall.rs`): one that never answers, and a
//! relay to the real engine that loses the answer to one kind of request.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::stall::{Hung, Relay};
use common::*;
use expect_test::expect;
use serde_json::json;
use terrace_provider::{Address, ObserveRequest, Observed, Provider, ProviderError};
use terrace_provider_docker::{DockerEngine, DockerProvider, Timeouts, CONTAINER, NETWORK};

/// The short bound these tests use.
const QUICK: Duration = Duration::from_secs(1);

/// Far above every bound here, far below the 600 s one call could wait before: a test
/// that reaches it fails instead of waiting that long.
const GUARD: Duration = Duration::from_secs(60);

fn provider_at(socket: &std::path::Path) -> DockerProvider {
    DockerProvider::new(DockerEngine {
        socket: Some(socket.to_path_buf()),
    })
    .with_timeouts(Timeouts::new(QUICK))
}

/// `fut`'s output and how long it took; panics after [`GUARD`].
async fn timed<T>(fut: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let out = tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("still waiting after {GUARD:?}"));
    (out, started.elapsed())
}

/// The message with the socket's path (it differs per run) as `<socket>`.
fn shown(e: &ProviderError, socket: &std::path::Path) -> String {
    e.to_string()
        .replace(&socket.display().to_string(), "<socket>")
}

fn the_real_engine() -> std::path::PathBuf {
    DockerEngine::default()
        .socket_path()
        .expect("a unix socket for the local engine")
}

#[tokio::test]
async fn observe_of_a_hung_engine_fails_within_the_short_bound_naming_it() {
    let hung = Hung::start();
    let p = provider_at(&hung.socket);
    let req = ObserveRequest {
        address: Address::new("docker_container.web"),
        type_name: CONTAINER.into(),
        attrs: attrs(json!({"name": "web", "image": BUSYBOX})),
    };
    let (r, took) = timed(p.observe(std::slice::from_ref(&req))).await;
    let e = r.expect_err("a hung engine cannot be observed");
    assert!(took >= QUICK, "gave up after {took:?}");
    expect![[r#"unix://<socket>: negotiating the API version with the engine: the Docker engine got no answer within 1s (TERRACE_DOCKER_TIMEOUT). It accepted the request, so it is hung or overloaded: check it on its host (`docker info`; restart the engine if that hangs too), or allow more time with TERRACE_DOCKER_TIMEOUT (e.g. TERRACE_DOCKER_TIMEOUT=2m)."#]]
        .assert_eq(&shown(&e, &hung.socket));
}

#[tokio::test]
async fn a_step_on_a_hung_engine_fails_within_the_short_bound_naming_its_resource() {
    let hung = Hung::start();
    let p = provider_at(&hung.socket);
    let (r, took) = timed(create(&p, NETWORK, attrs(json!({"name": "tt-never-made"})))).await;
    let e = r.expect_err("a hung engine creates nothing");
    assert!(took >= QUICK, "gave up after {took:?}");
    expect![[r#"docker_network.tt-never-made: negotiating the API version with the engine: the Docker engine at unix://<socket> got no answer within 1s (TERRACE_DOCKER_TIMEOUT). It accepted the request, so it is hung or overloaded: check it on its host (`docker info`; restart the engine if that hangs too), or allow more time with TERRACE_DOCKER_TIMEOUT (e.g. TERRACE_DOCKER_TIMEOUT=2m)."#]]
        .assert_eq(&shown(&e, &hung.socket));
}

/// The engine stops the container, but its answer never comes: the destroy fails after
/// the container's own wait plus the short bound (not after the short bound alone, and
/// not ten minutes later), and the next destroy finishes the job.
#[tokio::test]
async fn a_stop_whose_answer_never_comes_fails_after_its_wait_and_the_short_bound() {
    let direct = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("stopstall"));
    let desired = attrs(json!({
        "name": name, "image": BUSYBOX, "command": forever(), "stop_timeout": "2s",
    }));
    let state = create(&direct, CONTAINER, desired).await.unwrap();

    let relay = Relay::start(&the_real_engine(), "/stop");
    let p = provider_at(&relay.socket);
    let (r, took) = timed(delete(&p, CONTAINER, &state)).await;
    let e = r.expect_err("the stop's answer never came");
    assert_eq!(relay.stalled(), 1);
    // 2 s of the container's stop timeout, then 1 s.
    assert!(took >= Duration::from_secs(3), "gave up after {took:?}");
    let id = state["id"].as_str().unwrap();
    let message = shown(&e, &relay.socket).replace(id, "<id>");
    expect![[r#"docker_container.<name>: stopping container "<id>": the Docker engine at unix://<socket> got no answer within 3s (the 2s the engine waits before it kills the process, then TERRACE_DOCKER_TIMEOUT 1s). It accepted the request, so it is hung or overloaded: check it on its host (`docker info`; restart the engine if that hangs too), or allow more time with TERRACE_DOCKER_TIMEOUT (e.g. TERRACE_DOCKER_TIMEOUT=2m). The call may still take effect on the engine: the next plan reads what it did."#]]
        .assert_eq(&message.replace(&name, "<name>"));

    delete(&direct, CONTAINER, &state).await.unwrap();
    assert!(
        docker(&["inspect", &name]).is_err(),
        "the container is gone"
    );
}

/// A process that ignores SIGTERM takes the container's whole stop timeout to stop:
/// that is the stop's bound, not the (shorter) short bound.
#[tokio::test]
async fn a_stop_may_take_its_whole_wait_even_when_that_exceeds_the_short_bound() {
    // 2 s: the engine's kill and answer after the wait get a margin on a busy machine.
    let p = provider().with_timeouts(Timeouts::new(2 * QUICK));
    let mut c = Cleanup::default();
    let name = c.container(&uniq("slowstop"));
    let desired = attrs(json!({
        "name": name, "image": BUSYBOX, "command": ["sleep", "3600"], "stop_timeout": "4s",
    }));
    let state = create(&p, CONTAINER, desired).await.unwrap();
    let (r, took) = timed(delete(&p, CONTAINER, &state)).await;
    r.expect("the stop may take its 4 s");
    assert!(took >= Duration::from_secs(4), "stopped in {took:?}");
    assert!(
        docker(&["inspect", &name]).is_err(),
        "the container is gone"
    );
}

/// The engine creates the container, but its answer never comes: the step fails, and
/// the container it made is found by its name and terrace's labels (what the next plan
/// does for the pending record), never made a second time.
#[tokio::test]
async fn a_create_whose_answer_never_came_is_found_again_not_duplicated() {
    let direct = provider();
    let mut c = Cleanup::default();
    let name = c.container(&uniq("createstall"));
    let desired = attrs(json!({"name": name, "image": BUSYBOX, "command": forever()}));

    let relay = Relay::start(&the_real_engine(), "/containers/create");
    let p = provider_at(&relay.socket);
    let (r, _) = timed(create(&p, CONTAINER, desired.clone())).await;
    let e = r.expect_err("the create's answer never came");
    assert_eq!(relay.stalled(), 1);
    expect![[r#"docker_container.<name>: creating container "<name>": the Docker engine at unix://<socket> got no answer within 1s (TERRACE_DOCKER_TIMEOUT). It accepted the request, so it is hung or overloaded: check it on its host (`docker info`; restart the engine if that hangs too), or allow more time with TERRACE_DOCKER_TIMEOUT (e.g. TERRACE_DOCKER_TIMEOUT=2m). The call may still take effect on the engine: the next plan reads what it did."#]]
        .assert_eq(&shown(&e, &relay.socket).replace(&name, "<name>"));

    // The engine made it (created, not started: the start never ran).
    let listed = docker(&["ps", "-a", "-q", "--filter", &format!("name=^/{name}$")]).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let pending = normalized(&direct, CONTAINER, desired);
    match observe(&direct, CONTAINER, &pending).await {
        Observed::Present(found) => {
            assert_eq!(found["name"], json!(name));
            assert_eq!(found["running"], json!(false));
        }
        other => panic!("the container the engine made was not found: {other:?}"),
    }
}

/// Against the real engine nothing changes: the short bound is far above what its
/// calls take.
#[tokio::test]
async fn a_healthy_engine_answers_well_within_the_short_bound() {
    let p = provider().with_timeouts(Timeouts::new(QUICK));
    let mut c = Cleanup::default();
    let name = c.network(&uniq("quick"));
    let state = create(&p, NETWORK, attrs(json!({"name": name})))
        .await
        .unwrap();
    observe_present(&p, NETWORK, &state).await;
    delete(&p, NETWORK, &state).await.unwrap();
}

/// A volume's copy before its removal is a stream: when the engine stops sending it,
/// the destroy fails after the stream's bound (no byte for 4 short bounds), the partial
/// copy is removed and the volume, with its data, stays.
#[tokio::test]
async fn a_volume_copy_that_stalls_fails_the_destroy_and_keeps_the_volume() {
    let backups = std::env::temp_dir().join(uniq("stalled-copies"));
    let mut c = Cleanup::default();
    let vol = c.volume(&uniq("stallcopy"));
    c.container(&format!("terrace-copy-{vol}"));
    let direct = provider();
    let state = create(
        &direct,
        terrace_provider_docker::VOLUME,
        attrs(json!({"name": vol})),
    )
    .await
    .unwrap();

    // The archive is streamed by `GET …/archive`; its answer never comes.
    let relay = Relay::start(&the_real_engine(), "/archive");
    let p = provider_at(&relay.socket).with_backup_dir(&backups);
    let (r, took) = timed(delete(&p, terrace_provider_docker::VOLUME, &state)).await;
    let e = r.expect_err("no copy, no removal");
    assert_eq!(relay.stalled(), 1);
    assert!(took >= 4 * QUICK, "gave up after {took:?}");
    expect![[r#"docker_volume.<vol>: refusing to remove volume "<vol>" without a copy first: copying out volume "<vol>": the Docker engine at unix://<socket> stalled for 4s: no byte moved either way (4 × TERRACE_DOCKER_TIMEOUT 1s). It accepted the request, so it is hung or overloaded: check it on its host (`docker info`; restart the engine if that hangs too), or allow more time with TERRACE_DOCKER_TIMEOUT (e.g. TERRACE_DOCKER_TIMEOUT=2m)."#]]
        .assert_eq(&shown(&e, &relay.socket).replace(&vol, "<vol>"));
    assert!(
        docker(&["volume", "inspect", &vol]).is_ok(),
        "the volume stays"
    );
    let left: Vec<_> = std::fs::read_dir(&backups)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no partial copy is left: {left:?}");
    let _ = std::fs::remove_dir_all(&backups);
}
