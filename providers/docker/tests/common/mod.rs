//! Helpers shared by the integration tests, which run against the real Docker engine
//! started by `scripts/docker-engine.sh` (it also builds `terrace/busybox:1`).
#![allow(dead_code)]

pub mod stall;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use terrace_provider::{
    find_schema, Address, Attrs, ObserveRequest, Observed, Operation, Provider, ProviderResult,
    Step,
};
use terrace_provider_docker::{DockerEngine, DockerProvider, SCHEMAS};

/// The tiny image every container test runs.
pub const BUSYBOX: &str = "terrace/busybox:1";

/// A command that runs until stopped and stops at once on SIGTERM (a shell as PID 1
/// ignores TERM unless it traps it).
pub fn forever() -> Value {
    serde_json::json!([
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done"
    ])
}

/// A provider for the local engine; panics with instructions if there is none.
pub fn provider() -> DockerProvider {
    let engine = DockerEngine::default();
    let path = engine
        .socket_path()
        .unwrap_or_else(|e| panic!("cannot use the Docker engine: {e}"));
    assert!(
        Path::new(&path).exists(),
        "no Docker engine socket at {}: run scripts/docker-engine.sh first",
        path.display()
    );
    let out = docker(&["image", "inspect", BUSYBOX]);
    assert!(
        out.is_ok(),
        "image {BUSYBOX} is missing: run scripts/docker-engine.sh first"
    );
    DockerProvider::new(engine)
}

/// A unique lower-case name, so that tests running in parallel never collide.
pub fn uniq(what: &str) -> String {
    format!(
        "tt-{what}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

pub fn attrs(v: Value) -> Attrs {
    serde_json::from_value(v).expect("attrs are a JSON object")
}

/// Runs the docker CLI ("by hand"); Ok(stdout) on success, Err(stderr) otherwise.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

pub fn normalized(p: &DockerProvider, type_name: &str, mut a: Attrs) -> Attrs {
    p.normalize(type_name, &mut a).expect("valid attributes");
    a
}

fn step(type_name: &str, op: Operation, prior: Option<Attrs>, desired: Option<Attrs>) -> Step {
    let name = desired
        .as_ref()
        .or(prior.as_ref())
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("x")
        .to_string();
    Step {
        address: Address::new(format!("{type_name}.{name}")),
        type_name: type_name.to_string(),
        operation: op,
        prior,
        desired,
        changed: Vec::new(),
    }
}

/// Creates from normalised `desired`; returns what would be stored in state.
pub async fn create(p: &DockerProvider, type_name: &str, desired: Attrs) -> ProviderResult<Attrs> {
    let desired = normalized(p, type_name, desired);
    p.apply(&step(type_name, Operation::Create, None, Some(desired)))
        .await
        .map(|a| a.expect("create returns attributes"))
}

/// Creates the container `name` from the test image, running [`forever`] but not
/// started: enough to be listed, inspected and found, and quick.
pub async fn create_stopped(p: &DockerProvider, name: &str) -> Attrs {
    create_stopped_at(
        p,
        &address_of(terrace_provider_docker::CONTAINER, name),
        name,
    )
    .await
}

/// [`create_stopped`] as the resource at `address` (another project's, say).
pub async fn create_stopped_at(p: &DockerProvider, address: &str, name: &str) -> Attrs {
    let type_name = terrace_provider_docker::CONTAINER;
    let desired = normalized(
        p,
        type_name,
        attrs(
            serde_json::json!({"name": name, "image": BUSYBOX, "command": forever(), "running": false}),
        ),
    );
    p.apply(&Step {
        address: Address::new(address),
        ..step(type_name, Operation::Create, None, Some(desired))
    })
    .await
    .expect("create a stopped container")
    .expect("create returns attributes")
}

pub async fn update(
    p: &DockerProvider,
    type_name: &str,
    prior: &Attrs,
    desired: Attrs,
    changed: &[&str],
) -> ProviderResult<Attrs> {
    let desired = normalized(p, type_name, desired);
    let mut s = step(
        type_name,
        Operation::Update,
        Some(prior.clone()),
        Some(desired),
    );
    s.changed = changed.iter().map(|c| c.to_string()).collect();
    p.apply(&s)
        .await
        .map(|a| a.expect("update returns attributes"))
}

pub async fn delete(p: &DockerProvider, type_name: &str, prior: &Attrs) -> ProviderResult<()> {
    p.apply(&step(
        type_name,
        Operation::Delete,
        Some(prior.clone()),
        None,
    ))
    .await
    .map(|a| assert!(a.is_none()))
}

/// Observes one resource the way refresh does for a resource in state: by its stored
/// attributes.
pub async fn observe(p: &DockerProvider, type_name: &str, stored: &Attrs) -> Observed {
    let req = ObserveRequest {
        address: Address::new(format!("{type_name}.test")),
        type_name: type_name.to_string(),
        attrs: stored.clone(),
    };
    p.observe(std::slice::from_ref(&req))
        .await
        .expect("observe")
        .remove(0)
}

/// Observes one resource by its address (as refresh does: the address is what the
/// container's `terrace.address` label holds) and its stored attributes.
pub async fn observe_at(
    p: &DockerProvider,
    type_name: &str,
    address: &str,
    stored: &Attrs,
) -> Observed {
    let req = ObserveRequest {
        address: Address::new(address),
        type_name: type_name.to_string(),
        attrs: stored.clone(),
    };
    p.observe(std::slice::from_ref(&req))
        .await
        .expect("observe")
        .remove(0)
}

/// The address the helpers above give a resource named `name`.
pub fn address_of(type_name: &str, name: &str) -> String {
    format!("{type_name}.{name}")
}

pub async fn observe_present(p: &DockerProvider, type_name: &str, stored: &Attrs) -> Attrs {
    match observe(p, type_name, stored).await {
        Observed::Present(a) => a,
        other => panic!("{type_name} {:?}: {other:?}", stored.get("name")),
    }
}

/// The desired attributes the planner would see as changed: observable keys of the
/// normalised desired set whose observed value differs. Empty means "a second plan is
/// empty".
pub fn changed(type_name: &str, desired: &Attrs, observed: &Attrs) -> Vec<String> {
    let schema = find_schema(SCHEMAS, type_name).expect("known type");
    desired
        .iter()
        .filter(|(k, _)| schema.attr(k).is_none_or(|a| a.observable))
        .filter(|(k, v)| observed.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Of `changed`, those that force a replacement.
pub fn replace_because(type_name: &str, changed: &[String]) -> Vec<String> {
    let schema = find_schema(SCHEMAS, type_name).expect("known type");
    changed
        .iter()
        .filter(|k| schema.attr(k).is_some_and(|a| a.force_new))
        .cloned()
        .collect()
}

/// Asserts observed == normalised desired on every observable desired key.
#[track_caller]
pub fn assert_no_diff(type_name: &str, desired: &Attrs, observed: &Attrs) {
    let diff = changed(type_name, desired, observed);
    let show = |keys: &[String], a: &Attrs| -> String {
        keys.iter()
            .map(|k| format!("{k}={}", a.get(k).cloned().unwrap_or(Value::Null)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert!(
        diff.is_empty(),
        "perpetual diff on {diff:?}:\n desired:  {}\n observed: {}",
        show(&diff, desired),
        show(&diff, observed)
    );
}

/// Removes test objects when dropped, even if the test panicked.
#[derive(Default)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
}

impl Cleanup {
    pub fn container(&mut self, n: &str) -> String {
        self.containers.push(n.to_string());
        n.to_string()
    }
    pub fn network(&mut self, n: &str) -> String {
        self.networks.push(n.to_string());
        n.to_string()
    }
    pub fn volume(&mut self, n: &str) -> String {
        self.volumes.push(n.to_string());
        n.to_string()
    }
    pub fn image(&mut self, n: &str) -> String {
        self.images.push(n.to_string());
        n.to_string()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Order matters: containers hold networks, volumes and images.
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
        for v in &self.volumes {
            let _ = docker(&["volume", "rm", "-f", v]);
        }
        for i in &self.images {
            let _ = docker(&["rmi", "-f", i]);
        }
    }
}

/// Waits for a container to exit and returns its output.
pub fn wait_and_logs(name: &str) -> String {
    docker(&["wait", name]).expect("docker wait");
    docker(&["logs", name]).expect("docker logs")
}
