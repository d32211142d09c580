//! Create, update and delete for networks, volumes and containers.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, EndpointSettings, HealthConfig, HostConfig, Mount,
    MountType, NetworkConnectRequest, NetworkCreateRequest, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveVolumeOptions, RenameContainerOptions,
    StopContainerOptions,
};
use terrace_provider::{Address, Attrs, ProviderError, ProviderResult, Step, Value};

use crate::error::{env_secrets, status};
use crate::normalize::{
    health_parts, parse_canonical_port, stop_timeout_s, DEFAULT_STOP_TIMEOUT_S, LABEL_ADDRESS,
    LABEL_MANAGED,
};
use crate::schema::{CONTAINER, NETWORK, VOLUME};
use crate::timeouts::calls::{
    CONNECT, CREATE, INSPECT, LIST, PAUSE, REMOVE, REMOVE_NETWORK, RENAME, START, STOP, UNPAUSE,
    UPDATE,
};
use crate::{require, resolved, DockerProvider, SCHEMAS};

/// Seconds a container gets to stop before it is killed when it is being deleted: it is
/// going away, and its data lives in volumes.
const DELETE_STOP_TIMEOUT_S: i32 = 3;
/// Seconds a container gets to stop when `running` becomes false.
const STOP_TIMEOUT_S: i32 = 10;

/// How long a stop waits before the engine kills: `None` (the engine's own count) when
/// the container sets `stop_timeout`, which then governs both stopping and deleting;
/// else `default`. Second, that wait, which the call's bound adds to the short one: a
/// negative `stop_timeout` (Docker's "wait for ever", which only the engine's own tools
/// set) is bounded like the engine's default, 10 s.
fn stop_wait(attrs: &Attrs, default: i32) -> (Option<i32>, Duration) {
    let secs = |s: i64| Duration::from_secs(u64::try_from(s).unwrap_or(0));
    match attrs.get("stop_timeout") {
        None => (Some(default), secs(i64::from(default))),
        Some(v) => {
            let own = stop_timeout_s(v)
                .ok()
                .filter(|s| *s >= 0)
                .unwrap_or(DEFAULT_STOP_TIMEOUT_S);
            (None, secs(own))
        }
    }
}

fn s<'a>(attrs: &'a Attrs, key: &str) -> &'a str {
    attrs.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn b(attrs: &Attrs, key: &str, default: bool) -> bool {
    attrs.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// terrace's labels plus the user's.
fn labels(address: &Address, user: Option<&Value>) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = user
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    out.insert(LABEL_MANAGED.into(), "true".into());
    out.insert(LABEL_ADDRESS.into(), address.to_string());
    out
}

pub(crate) async fn create(p: &DockerProvider, t: &str, step: &Step) -> ProviderResult<Attrs> {
    let mut desired = resolved(t, require(&step.desired, "desired", step)?)?;
    match t {
        NETWORK => create_network(p, &step.address, &desired).await?,
        VOLUME => create_volume(p, &step.address, &desired).await?,
        CONTAINER => {
            // The new container's id (a replacement's `desired` carries the old one).
            let id = create_container(p, &step.address, &desired).await?;
            desired.insert("id".into(), id.into());
        }
        other => return Err(crate::unknown_type(other)),
    }
    Ok(desired)
}

pub(crate) async fn update(p: &DockerProvider, t: &str, step: &Step) -> ProviderResult<Attrs> {
    let prior = resolved(t, require(&step.prior, "prior", step)?)?;
    let mut desired = resolved(t, require(&step.desired, "desired", step)?)?;
    // What the planner says changed (this includes drift: state and config agree but the
    // live object does not) plus what differs from state. force_new attributes are never
    // updated in place; the planner replaces instead.
    let schema = crate::find_schema(SCHEMAS, t).ok_or_else(|| crate::unknown_type(t))?;
    let mut changed: BTreeSet<String> = step.changed.iter().cloned().collect();
    for (k, v) in &desired {
        if prior.get(k) != Some(v) {
            changed.insert(k.clone());
        }
    }
    changed.retain(|k| schema.attr(k).is_some_and(|a| !a.force_new) && desired.contains_key(k));
    if t == CONTAINER && !changed.is_empty() {
        update_container(p, &step.address, &prior, &desired, &changed).await?;
    }
    // Still the same object: it keeps its id.
    if let (true, Some(id)) = (t == CONTAINER, prior.get("id")) {
        desired.entry("id".into()).or_insert_with(|| id.clone());
    }
    Ok(desired)
}

pub(crate) async fn delete(p: &DockerProvider, t: &str, step: &Step) -> ProviderResult<()> {
    // The prior is what observe reported, which may hold what no configuration can say
    // (a stale network endpoint): only its name matters here.
    let given = require(&step.prior, "prior", step)?;
    let prior = resolved(t, given).unwrap_or_else(|_| given.clone());
    let name = s(&prior, "name");
    let addr = &step.address;
    let gone = |r: Result<(), bollard::errors::Error>, what: &str| match r {
        Ok(()) => Ok(()),
        Err(e) if status(&e) == Some(404) => {
            tracing::debug!(address = %addr, "nothing to do: {what} {name:?} is already gone");
            Ok(())
        }
        Err(e) => Err(p.op_err(addr, &format!("removing {what} {name:?}"), &e, &[])),
    };
    match t {
        NETWORK => {
            let object = format!("network {name:?}");
            let r = p
                .call(REMOVE_NETWORK, addr, &object, |d| d.remove_network(name))
                .await?;
            gone(r, "network")
        }
        VOLUME => {
            // The content first; no copy, no removal.
            if let Some(dir) = p.backup_dir() {
                crate::backup::copy_volume(p, addr, name, dir).await?;
            }
            let object = format!("volume {name:?}");
            let r = p
                .call(REMOVE, addr, &object, |d| {
                    d.remove_volume(name, None::<RemoveVolumeOptions>)
                })
                .await?;
            gone(r, "volume")
        }
        CONTAINER => {
            let secrets = env_secrets([Some(&prior)]);
            // By the id recorded at creation, wherever its name went; never a container
            // of that name that terrace did not make.
            let Some((id, _)) = find_container(p, addr, &prior).await? else {
                tracing::debug!(address = %addr, "nothing to do: container {name:?} is already gone");
                return Ok(());
            };
            let name = id.as_str();
            let object = format!("container {name:?}");
            // Observe reports the engine's effective stop timeout (10 s when the
            // container set none), so the prior cannot tell "10 s asked for" from
            // "none asked for": the container itself says.
            let asked = match prior.get("stop_timeout") {
                Some(_) if own_stop_timeout(p, addr, name).await.is_none() => {
                    let mut unset = prior.clone();
                    unset.remove("stop_timeout");
                    unset
                }
                _ => prior.clone(),
            };
            let (t, wait) = stop_wait(&asked, DELETE_STOP_TIMEOUT_S);
            let r = p
                .call(STOP.waiting(wait), addr, &object, |d| {
                    d.stop_container(
                        name,
                        // The signal is the container's own (`stop_signal`, or its image's).
                        Some(StopContainerOptions { t, signal: None }),
                    )
                })
                .await?;
            match r {
                // 304: already stopped; 404: already gone (the remove below says so).
                Err(e) if !matches!(status(&e), Some(304 | 404)) => {
                    return Err(p.op_err(
                        addr,
                        &format!("stopping container {name:?}"),
                        &e,
                        &secrets,
                    ))
                }
                _ => {}
            }
            let r = p.force_remove_container(addr, &object, name).await?;
            gone(r, "container")
        }
        other => Err(crate::unknown_type(other)),
    }
}

/// The stop timeout container `id` was created with; `None` when it set none, or when
/// the engine cannot say (then the shorter destroy wait applies).
async fn own_stop_timeout(p: &DockerProvider, address: &Address, id: &str) -> Option<i64> {
    let path = crate::inspect::path(id)?;
    let object = format!("container {id:?}");
    let found: crate::inspect::Inspected = p
        .get_json(INSPECT, address, &object, &path)
        .await
        .ok()?
        .ok()?;
    found.config?.stop_timeout
}

/// The container that is `address`'s object, as (id, current name): see
/// [`crate::observe::Lookup`]. One or two list calls filtered by id and by name, so that
/// a destroy of many containers does not list the whole engine for each.
async fn find_container(
    p: &DockerProvider,
    address: &Address,
    a: &Attrs,
) -> ProviderResult<Option<(String, String)>> {
    let name = s(a, "name");
    let recorded = a.get("id").and_then(Value::as_str);
    // Names are `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; the filter is a regular expression.
    let by_name = format!("^/{}$", name.replace('.', "\\."));
    let filters = recorded
        .map(|id| ("id", id.to_string()))
        .into_iter()
        .chain((!name.is_empty()).then_some(("name", by_name)));
    let mut containers = Vec::new();
    for (key, value) in filters {
        let object = format!("containers of {key} {value}");
        let listed = p
            .call(LIST, address, &object, |d| {
                d.list_containers(Some(ListContainersOptions {
                    all: true,
                    filters: Some(HashMap::from([(key.to_string(), vec![value.clone()])])),
                    ..Default::default()
                }))
            })
            .await?
            .map_err(|e| p.op_err(address, "listing containers", &e, &[]))?;
        containers.extend(listed.iter().filter_map(crate::observe::holder));
        if key == "id" && !containers.is_empty() {
            break;
        }
    }
    Ok(crate::observe::Lookup::new(&containers)
        .resolve(address.as_str(), name, recorded)
        .map(|h| (h.id.clone(), h.name.clone())))
}

async fn create_network(p: &DockerProvider, address: &Address, a: &Attrs) -> ProviderResult<()> {
    let name = s(a, "name");
    let object = format!("network {name:?}");
    p.call(CREATE, address, &object, |d| {
        d.create_network(NetworkCreateRequest {
            name: name.to_string(),
            driver: Some(s(a, "driver").to_string()),
            internal: Some(b(a, "internal", false)),
            labels: Some(labels(address, None)),
            ..Default::default()
        })
    })
    .await?
    .map_err(|e| p.op_err(address, &format!("creating network {name:?}"), &e, &[]))?;
    tracing::info!(%address, network = name, "created network");
    Ok(())
}

async fn create_volume(p: &DockerProvider, address: &Address, a: &Attrs) -> ProviderResult<()> {
    let name = s(a, "name");
    let object = format!("volume {name:?}");
    let v = p
        .call(CREATE, address, &object, |d| {
            d.create_volume(VolumeCreateRequest {
                name: Some(name.to_string()),
                driver: Some(s(a, "driver").to_string()),
                labels: Some(labels(address, None)),
                ..Default::default()
            })
        })
        .await?
        .map_err(|e| p.op_err(address, &format!("creating volume {name:?}"), &e, &[]))?;
    // Creating a volume whose name exists returns the existing one instead of failing:
    // adopting a volume terrace did not make would hide someone else's data.
    if v.labels.get(LABEL_MANAGED).map(String::as_str) != Some("true") {
        return Err(ProviderError::Operation {
            address: address.clone(),
            message: format!(
                "volume {name:?} already exists and was not created by terrace (no {LABEL_MANAGED}=true label); remove it or choose another name"
            ),
        });
    }
    tracing::info!(%address, volume = name, "created volume");
    Ok(())
}

fn restart_policy(r: &str) -> RestartPolicy {
    let (name, retries) = match r.split_once(':') {
        Some((n, c)) => (n, c.parse().unwrap_or(0)),
        None => (r, 0),
    };
    let name = match name {
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        _ => RestartPolicyNameEnum::NO,
    };
    RestartPolicy {
        name: Some(name),
        maximum_retry_count: Some(retries),
    }
}

fn str_vec(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    })
}

/// The engine's create body for canonical attributes (no I/O, so it is unit-testable).
fn container_body(address: &Address, a: &Attrs) -> ProviderResult<ContainerCreateBody> {
    let env = a.get("env").and_then(Value::as_object).map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
    });

    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for port in str_vec(a.get("ports")).unwrap_or_default() {
        let (ip, host, container) = parse_canonical_port(&port)?;
        if !exposed.contains(&container) {
            exposed.push(container.clone());
        }
        // 0.0.0.0 is sent as "" — what `docker run -p 8080:80` sends (all addresses).
        let host_ip = if ip == "0.0.0.0" { String::new() } else { ip };
        bindings
            .entry(container)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: Some(host_ip),
                host_port: Some(host),
            });
    }

    let mounts: Vec<Mount> = a
        .get("mounts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let source = m.get("source").and_then(Value::as_str).unwrap_or_default();
            Mount {
                target: m.get("target").and_then(Value::as_str).map(str::to_string),
                source: Some(source.to_string()),
                typ: Some(if source.starts_with('/') {
                    MountType::BIND
                } else {
                    MountType::VOLUME
                }),
                read_only: m.get("read_only").and_then(Value::as_bool),
                ..Default::default()
            }
        })
        .collect();

    let healthcheck = match a.get("healthcheck") {
        Some(h) => {
            let (test, interval, timeout, retries, start_period) = health_parts(h)?;
            Some(HealthConfig {
                test: Some(test),
                interval: Some(interval),
                timeout: Some(timeout),
                retries: Some(retries),
                start_period: Some(start_period),
                ..Default::default()
            })
        }
        None => None,
    };

    // The first network is the container's network mode; the others are connected after
    // creation (older engines accept only one endpoint at create time).
    let first = a
        .get("networks")
        .and_then(Value::as_array)
        .and_then(|n| n.first());
    let (network_mode, networking_config) = match first {
        Some(n) => {
            let name = n.get("name").and_then(Value::as_str).unwrap_or_default();
            let endpoint = EndpointSettings {
                aliases: str_vec(n.get("aliases")),
                ..Default::default()
            };
            (
                Some(name.to_string()),
                Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(name.to_string(), endpoint)])),
                }),
            )
        }
        None => (None, None),
    };

    let memory = a.get("memory").and_then(Value::as_i64).filter(|m| *m > 0);
    let stop_timeout = match a.get("stop_timeout") {
        Some(v) => Some(stop_timeout_s(v).map_err(ProviderError::Invalid)?),
        None => None,
    };
    Ok(ContainerCreateBody {
        image: Some(s(a, "image").to_string()),
        cmd: str_vec(a.get("command")),
        env,
        labels: Some(labels(address, a.get("labels"))),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck,
        stop_signal: a
            .get("stop_signal")
            .and_then(Value::as_str)
            .map(str::to_string),
        stop_timeout,
        host_config: Some(HostConfig {
            port_bindings: (!bindings.is_empty()).then_some(bindings),
            mounts: (!mounts.is_empty()).then_some(mounts),
            memory,
            // Unlimited swap: otherwise the engine caps swap at twice the memory limit,
            // and raising the limit later with `docker update` fails.
            memory_swap: memory.map(|_| -1),
            restart_policy: Some(restart_policy(s(a, "restart"))),
            network_mode,
            init: a.get("init").and_then(Value::as_bool),
            ..Default::default()
        }),
        networking_config,
        ..Default::default()
    })
}

/// Creates (and starts, unless `running` is false) the container; returns its id.
async fn create_container(
    p: &DockerProvider,
    address: &Address,
    a: &Attrs,
) -> ProviderResult<String> {
    let secrets = env_secrets([Some(a)]);
    let name = s(a, "name");
    let object = format!("container {name:?}");
    let body = container_body(address, a)?;
    let created = p
        .call(CREATE, address, &object, |d| {
            d.create_container(
                Some(CreateContainerOptions {
                    name: Some(name.to_string()),
                    ..Default::default()
                }),
                body,
            )
        })
        .await?
        .map_err(|e| {
            p.op_err(
                address,
                &format!("creating container {name:?}"),
                &e,
                &secrets,
            )
        })?;
    tracing::info!(%address, container = name, image = s(a, "image"), "created container");

    // If a later step fails, remove the half-made container so that a retry starts clean.
    let rest = async {
        let networks = a.get("networks").and_then(Value::as_array);
        for n in networks.into_iter().flatten().skip(1) {
            let net = n.get("name").and_then(Value::as_str).unwrap_or_default();
            let what = format!("container {name:?} to network {net:?}");
            p.call(CONNECT, address, &what, |d| {
                d.connect_network(
                    net,
                    NetworkConnectRequest {
                        container: name.to_string(),
                        endpoint_config: Some(EndpointSettings {
                            aliases: str_vec(n.get("aliases")),
                            ..Default::default()
                        }),
                    },
                )
            })
            .await?
            .map_err(|e| {
                p.op_err(
                    address,
                    &format!("connecting to network {net:?}"),
                    &e,
                    &secrets,
                )
            })?;
        }
        if b(a, "running", true) {
            start(p, address, name, &secrets).await?;
        }
        Ok::<(), ProviderError>(())
    };
    if let Err(e) = rest.await {
        let cleanup = p.force_remove_container(address, &object, name).await;
        let cleanup = match cleanup {
            Ok(r) => r.map_err(|c| c.to_string()),
            Err(c) => Err(c.to_string()),
        };
        if let Err(c) = cleanup {
            tracing::warn!(%address, container = name, error = %crate::error::scrub(&c, &secrets), "could not remove the half-created container");
        }
        return Err(e);
    }
    Ok(created.id)
}

async fn start(
    p: &DockerProvider,
    address: &Address,
    name: &str,
    secrets: &[String],
) -> ProviderResult<()> {
    let object = format!("container {name:?}");
    let r = p
        .call(START, address, &object, |d| d.start_container(name, None))
        .await?;
    match r {
        // 304: already running.
        Err(e) if status(&e) != Some(304) => Err(p.op_err(
            address,
            &format!("starting container {name:?}"),
            &e,
            secrets,
        )),
        _ => {
            tracing::info!(%address, container = name, "started container");
            Ok(())
        }
    }
}

async fn update_container(
    p: &DockerProvider,
    address: &Address,
    prior: &Attrs,
    a: &Attrs,
    changed: &BTreeSet<String>,
) -> ProviderResult<()> {
    let secrets = env_secrets([Some(a)]);
    let name = s(a, "name");
    let object = format!("container {name:?}");
    if changed.contains("name") {
        // Renamed by hand, or in the configuration: Docker renames in place.
        let Some((id, current)) = find_container(p, address, prior).await? else {
            return Err(ProviderError::Operation {
                address: address.clone(),
                message: format!("container {name:?} to rename was not found"),
            });
        };
        if current != name {
            let what = format!("container {current:?} to {name:?}");
            p.call(RENAME, address, &what, |d| {
                d.rename_container(
                    &id,
                    RenameContainerOptions {
                        name: name.to_string(),
                    },
                )
            })
            .await?
            .map_err(|e| {
                p.op_err(
                    address,
                    &format!("renaming container {current:?} to {name:?}"),
                    &e,
                    &secrets,
                )
            })?;
            tracing::info!(%address, container = name, from = current, "renamed container");
        }
    }
    if changed.contains("paused") {
        let (r, what) = if b(a, "paused", false) {
            let r = p.call(PAUSE, address, &object, |d| d.pause_container(name));
            (r.await?, "pausing")
        } else {
            let r = p.call(UNPAUSE, address, &object, |d| d.unpause_container(name));
            (r.await?, "unpausing")
        };
        match r {
            // 409: already in that state.
            Err(e) if status(&e) != Some(409) => {
                return Err(p.op_err(address, &format!("{what} container {name:?}"), &e, &secrets))
            }
            _ => tracing::info!(%address, container = name, "{what} container done"),
        }
    }
    if changed.contains("memory") || changed.contains("restart") {
        let mut body = ContainerUpdateBody::default();
        if changed.contains("memory") {
            let m = a.get("memory").and_then(Value::as_i64).unwrap_or(0);
            if m == 0 {
                // The engine treats 0 as "unchanged" in an update: a limit cannot be
                // lifted in place.
                return Err(ProviderError::Operation {
                    address: address.clone(),
                    message: format!(
                        "container {name:?}: Docker cannot remove a memory limit from a running container; set a larger limit, or recreate the container"
                    ),
                });
            }
            body.memory = Some(m);
            body.memory_swap = Some(-1);
        }
        if changed.contains("restart") {
            body.restart_policy = Some(restart_policy(s(a, "restart")));
        }
        p.call(UPDATE, address, &object, |d| d.update_container(name, body))
            .await?
            .map_err(|e| {
                p.op_err(
                    address,
                    &format!("updating container {name:?}"),
                    &e,
                    &secrets,
                )
            })?;
        tracing::info!(%address, container = name, "updated container resources");
    }
    if changed.contains("running") {
        if b(a, "running", true) {
            start(p, address, name, &secrets).await?;
        } else {
            let (t, wait) = stop_wait(a, STOP_TIMEOUT_S);
            let r = p
                .call(STOP.waiting(wait), address, &object, |d| {
                    d.stop_container(name, Some(StopContainerOptions { t, signal: None }))
                })
                .await?;
            match r {
                Err(e) if status(&e) != Some(304) => {
                    return Err(p.op_err(
                        address,
                        &format!("stopping container {name:?}"),
                        &e,
                        &secrets,
                    ))
                }
                _ => tracing::info!(%address, container = name, "stopped container"),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;

    #[test]
    fn create_body_carries_everything() {
        let mut a: Attrs = serde_json::from_value(serde_json::json!({
            "name": "web", "image": "terrace/busybox:1",
            "ports": ["8080:80", "127.0.0.1:8081:80", "[::1]::53/udp"],
            "mounts": [{"source": "data", "target": "/data"}, {"source": "/etc", "target": "/cfg", "read_only": true}],
            "networks": [{"name": "a", "aliases": ["x"]}, "b"],
            "memory": "64m", "restart": "on-failure:2",
            "labels": {"k": "v"},
        }))
        .unwrap();
        normalize(CONTAINER, &mut a).unwrap();
        let body = container_body(&Address::new("c.web"), &a).unwrap();
        let host = body.host_config.unwrap();
        let pb = host.port_bindings.unwrap();
        assert_eq!(pb["80/tcp"].as_ref().unwrap().len(), 2);
        assert_eq!(
            pb["53/udp"].as_ref().unwrap()[0].host_ip.as_deref(),
            Some("::1")
        );
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.network_mode.as_deref(), Some("a"));
        assert_eq!(host.restart_policy.unwrap().maximum_retry_count, Some(2));
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_MANAGED], "true");
        assert_eq!(labels[LABEL_ADDRESS], "c.web");
        assert_eq!(labels["k"], "v");
    }
}
