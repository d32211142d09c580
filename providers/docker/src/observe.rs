//! Batched observation: one list call per object kind, concurrent inspects of the
//! containers asked for (and of the images they run, once per distinct image). The
//! list of containers is made only when one must be found by name.
//!
//! Every attribute is reported in the canonical form of [`crate::normalize`], leaving out
//! what the engine or the image adds, so that an unchanged object reads back equal to
//! its normalised configuration.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bollard::models::{
    ContainerSummary, ContainerSummaryStateEnum, ImageConfig, ImageInspect, ImageSummary, Network,
    PortSummaryTypeEnum, Volume,
};
use bollard::query_parameters::{
    ListContainersOptions, ListImagesOptions, ListNetworksOptions, ListVolumesOptions,
};
use futures_util::{stream, StreamExt};
use serde_json::json;
use terrace_provider::{
    Address, Attrs, ObserveRequest, Observed, ProviderError, ProviderResult, Value,
};

use crate::clash::{EngineView, Holder};
use crate::error::status;
use crate::inspect::{self, Config, HostConfig, Inspected};
use crate::normalize::{
    format_port, healthcheck_value, image_id_placeholder, mount_value, network_value, normalize,
    restart_string, stop_signal, stop_timeout_string, trim_slash, DEFAULT_STOP_SIGNAL,
    DEFAULT_STOP_TIMEOUT_S, LABEL_ADDRESS, LABEL_MANAGED, LABEL_PREFIX,
};
use crate::schema::{CONTAINER, EXTRA_LIMITS, IMAGE, NETWORK, VOLUME};
use crate::timeouts::calls::{INSPECT, LIST};
use crate::{unknown_type, DockerProvider};

/// How many inspects run at once: enough to hide latency, few enough to be polite.
/// With the list calls and the `info` beside them, an observe holds at most this many
/// plus five connections to the engine.
pub const INSPECT_CONCURRENCY: usize = 16;

/// What observe reports on a container's endpoint whose network was removed since the
/// container joined it (the container cannot start until it is re-created).
pub(crate) const STALE_ENDPOINT: &str = "the network was removed after the container joined it";

/// Everything one observe batch read from the engine.
#[derive(Default)]
struct Snapshot {
    /// The container each container request resolved to, by request address.
    containers: HashMap<Address, Arc<Inspected>>,
    images_by_id: HashMap<String, ImageInspect>,
    /// terrace's networks, by name.
    networks: HashMap<String, Network>,
    /// The id of every network on the engine, by name: a container's endpoint that
    /// names another id belongs to a network that was removed since.
    network_ids: HashMap<String, String>,
    volumes: HashMap<String, Volume>,
    images: Vec<ImageSummary>,
}

impl Snapshot {
    /// The id of the local image `reference` (`repo:tag` or `repo@digest`), if present.
    fn image_id(&self, reference: &str) -> Option<&str> {
        self.images
            .iter()
            .find(|i| {
                i.repo_tags.iter().any(|t| t == reference)
                    || i.repo_digests.iter().any(|d| d == reference)
            })
            .map(|i| i.id.as_str())
    }
}

/// The request's attributes in canonical form (state written by an older version, or a
/// test that skipped normalize, still compares right); as given if they do not parse.
fn canonical(type_name: &str, attrs: &Attrs) -> Attrs {
    let mut a = attrs.clone();
    match normalize(type_name, &mut a) {
        Ok(()) => a,
        Err(_) => attrs.clone(),
    }
}

fn name_of(attrs: &Attrs) -> Option<&str> {
    attrs.get("name").and_then(Value::as_str)
}

pub(crate) async fn observe(
    p: &DockerProvider,
    requests: &[ObserveRequest],
) -> ProviderResult<Vec<Observed>> {
    let mut kinds = BTreeSet::new();
    for r in requests {
        match r.type_name.as_str() {
            IMAGE | NETWORK | VOLUME | CONTAINER => {
                kinds.insert(r.type_name.as_str());
            }
            other => return Err(unknown_type(other)),
        }
    }
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let requests: Vec<(&ObserveRequest, Attrs)> = requests
        .iter()
        .map(|r| (r, canonical(&r.type_name, &r.attrs)))
        .collect();
    let snap = snapshot(p, &kinds, &requests).await?;
    Ok(requests
        .iter()
        .map(|(r, attrs)| answer(&snap, r, attrs))
        .collect())
}

async fn snapshot(
    p: &DockerProvider,
    kinds: &BTreeSet<&str>,
    requests: &[(&ObserveRequest, Attrs)],
) -> ProviderResult<Snapshot> {
    let whole = p.whole();
    let err = |what: &str, e: bollard::errors::Error| p.op_err(&whole, what, &e, &[]);

    // Image references to look up: images asked for, and the images containers name
    // (whose current id tells whether a container runs an outdated image).
    let refs: BTreeSet<String> = requests
        .iter()
        .filter_map(|(r, a)| match r.type_name.as_str() {
            IMAGE => a.get("name"),
            CONTAINER => a.get("image"),
            _ => None,
        })
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();

    // The containers the state recorded by id are inspected while the engine lists its
    // networks, volumes and images: an inspect by id finds a container wherever its
    // name went. The list of every container (the engine's slowest answer, ~55 ms for
    // 1,000 containers) is needed only to find a container by name: one without a
    // recorded id (not created yet, or state from before ids), or whose recorded id
    // the engine no longer has. Names and ports other containers hold are checked
    // against it at plan time, when a change needs that (`check_plan`).
    let recorded: BTreeSet<String> = requests
        .iter()
        .filter(|(r, _)| r.type_name == CONTAINER)
        .filter_map(|(_, a)| a.get("id").and_then(Value::as_str).map(str::to_string))
        .collect();
    let by_name = requests
        .iter()
        .any(|(r, a)| r.type_name == CONTAINER && a.get("id").and_then(Value::as_str).is_none());
    let containers = async {
        if !kinds.contains(CONTAINER) || !by_name {
            return Ok(None);
        }
        list_containers(p, &whole).await.map(Some)
    };
    let early = async { Ok(inspect_containers(p, &whole, recorded).await) };
    // A plan of containers checks the engine's capacity: read here, beside the
    // inspects, rather than after them. A failure only leaves it unknown (and is not
    // asked again in this run).
    let capacity = async {
        if kinds.contains(CONTAINER) {
            let _unknown_on_failure = p.read_capacity().await;
        }
        Ok(())
    };
    // Every network: containers' endpoints are checked against the ids they have now.
    let networks = async {
        if !kinds.contains(NETWORK) && !kinds.contains(CONTAINER) {
            return Ok(Vec::new());
        }
        p.call(LIST, &whole, "networks", |d| {
            d.list_networks(None::<ListNetworksOptions>)
        })
        .await?
        .map_err(|e| err("listing networks", e))
    };
    let volumes = async {
        if !kinds.contains(VOLUME) {
            return Ok(Vec::new());
        }
        // Every volume: one of that name terrace did not make is a conflict at plan time.
        p.call(LIST, &whole, "volumes", |d| {
            d.list_volumes(None::<ListVolumesOptions>)
        })
        .await?
        .map(|r| r.volumes.unwrap_or_default())
        .map_err(|e| err("listing volumes", e))
    };
    let images = async {
        if refs.is_empty() && !kinds.contains(CONTAINER) {
            return Ok(Vec::new());
        }
        // Images are found by reference, not label: pulled and adopted images carry no
        // terrace label. Every local image, not only those asked for: a container's new
        // image (known only to the plan) must be there before its old container goes.
        list_images(p, &whole).await
    };
    let (mut containers, networks, volumes, images, early, ()) =
        tokio::try_join!(containers, networks, volumes, images, early, capacity)?;
    let mut found = Inspections::default();
    found.add(early)?;
    // A recorded id the engine does not have: the container may be there under a new
    // id (re-created by hand), found by its name.
    if containers.is_none() && found.missed() {
        containers = Some(list_containers(p, &whole).await?);
    }

    let network_holders: Vec<Holder> = networks
        .iter()
        .filter_map(|n| Some(named(n.id.clone()?, n.name.clone()?, n.labels.as_ref())))
        .collect();
    let volume_holders: Vec<Holder> = volumes
        .iter()
        .map(|v| named(v.name.clone(), v.name.clone(), Some(&v.labels)))
        .collect();
    let mut snap = Snapshot {
        network_ids: networks
            .iter()
            .filter_map(|n| Some((n.name.clone()?, n.id.clone()?)))
            .collect(),
        networks: networks
            .into_iter()
            .filter(|n| is_managed(n.labels.as_ref()))
            .filter_map(|n| Some((n.name.clone()?, n)))
            .collect(),
        volumes: volumes
            .into_iter()
            .filter(|v| is_managed(Some(&v.labels)))
            .map(|v| (v.name.clone(), v))
            .collect(),
        images,
        ..Default::default()
    };

    let view = EngineView {
        containers: containers
            .as_ref()
            .map(|cs| cs.iter().filter_map(holder).collect()),
        networks: network_holders,
        volumes: volume_holders,
        images: kinds.contains(CONTAINER).then(|| image_refs(&snap.images)),
    };
    // The container each request means: by the list when there is one, else (every
    // recorded id answered) the recorded id itself.
    let resolved: Vec<(&Address, String)> = {
        let lookup = view.containers.as_deref().map(Lookup::new);
        requests
            .iter()
            .filter(|(r, _)| r.type_name == CONTAINER)
            .filter_map(|(r, a)| {
                let id = a.get("id").and_then(Value::as_str);
                let id = match &lookup {
                    Some(lookup) => lookup
                        .resolve(r.address.as_str(), name_of(a)?, id)?
                        .id
                        .clone(),
                    None => id?.to_string(),
                };
                Some((&r.address, id))
            })
            .collect()
    };
    *p.view.lock().unwrap_or_else(|e| e.into_inner()) = Some(view);
    let needed: BTreeSet<&str> = resolved.iter().map(|(_, id)| id.as_str()).collect();
    found.fail_if_needed(&needed, err)?;
    // Found by name: inspected now.
    let late: BTreeSet<String> = needed
        .iter()
        .filter(|id| !found.by_id.contains_key(**id))
        .map(|id| id.to_string())
        .collect();
    found.add(inspect_containers(p, &whole, late).await)?;
    found.fail_if_needed(&needed, err)?;
    for (address, id) in resolved {
        if let Some(c) = found.by_id.get(&id) {
            snap.containers.insert(address.clone(), Arc::clone(c));
        }
    }

    // The images the containers run, once each: their env, labels and volumes are
    // what the engine adds to a container without being asked.
    let image_ids: BTreeSet<String> = snap
        .containers
        .values()
        .filter_map(|c| c.image.clone())
        .collect();
    type Inspected = ProviderResult<Result<ImageInspect, bollard::errors::Error>>;
    let whole = &whole;
    let inspected: Vec<(String, Inspected)> = stream::iter(image_ids)
        .map(|id| async move {
            let object = format!("image {id}");
            let r = p
                .call(INSPECT, whole, &object, |d| d.inspect_image(&id))
                .await;
            (id, r)
        })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .collect()
        .await;
    for (id, r) in inspected {
        let r = r?;
        match r {
            Ok(i) => {
                snap.images_by_id.insert(id, i);
            }
            // The image was deleted (a container keeps its layers): nothing to subtract.
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(err(&format!("inspecting image {id}"), e)),
        }
    }
    Ok(snap)
}

fn summary_name(c: &ContainerSummary) -> Option<String> {
    c.names
        .as_ref()?
        .first()
        .map(|n| n.trim_start_matches('/').to_string())
}

fn is_managed(labels: Option<&HashMap<String, String>>) -> bool {
    labels.is_some_and(|l| l.get(LABEL_MANAGED).map(String::as_str) == Some("true"))
}

/// A listed network or volume as [`EngineView`] keeps it.
fn named(id: String, name: String, labels: Option<&HashMap<String, String>>) -> Holder {
    Holder {
        id,
        name,
        managed: is_managed(labels),
        address: labels.and_then(|l| l.get(LABEL_ADDRESS).cloned()),
        ports: Vec::new(),
    }
}

/// A listed container as [`EngineView`] keeps it.
pub(crate) fn holder(c: &ContainerSummary) -> Option<Holder> {
    let labels = c.labels.clone().unwrap_or_default();
    let holds_ports = matches!(
        c.state,
        Some(
            ContainerSummaryStateEnum::RUNNING
                | ContainerSummaryStateEnum::PAUSED
                | ContainerSummaryStateEnum::RESTARTING
        )
    );
    let ports = c
        .ports
        .iter()
        .flatten()
        .filter(|_| holds_ports)
        .filter_map(|p| {
            let proto = match p.typ {
                Some(PortSummaryTypeEnum::UDP) => "udp",
                Some(PortSummaryTypeEnum::SCTP) => "sctp",
                _ => "tcp",
            };
            Some((
                p.ip.clone().unwrap_or_default(),
                p.public_port?,
                proto.to_string(),
            ))
        })
        .collect();
    Some(Holder {
        id: c.id.clone()?,
        name: summary_name(c)?,
        managed: labels.get(LABEL_MANAGED).map(String::as_str) == Some("true"),
        address: labels.get(LABEL_ADDRESS).cloned(),
        ports,
    })
}

/// Finds the container a request means: the one whose id the state recorded (at
/// creation, or at an explicit import), wherever its name went (renamed outside
/// terrace); else terrace's container of that name. A container without terrace's
/// labels is never taken for terrace's by its name; when the state recorded an id the
/// engine no longer has, neither is one whose address label is another's (another
/// project's container that took the name since). The address label alone is not an
/// identity: several projects on one engine may use the same addresses. Indexed, so
/// that resolving every request of a batch is linear in the engine's containers.
pub(crate) struct Lookup<'a> {
    by_id: HashMap<&'a str, &'a Holder>,
    managed_by_name: HashMap<&'a str, &'a Holder>,
}

impl<'a> Lookup<'a> {
    /// Indexes `containers` (the first of each id or name wins, as a scan would).
    pub(crate) fn new(containers: &'a [Holder]) -> Self {
        let mut by_id = HashMap::with_capacity(containers.len());
        let mut managed_by_name = HashMap::with_capacity(containers.len());
        for h in containers {
            by_id.entry(h.id.as_str()).or_insert(h);
            if h.managed {
                managed_by_name.entry(h.name.as_str()).or_insert(h);
            }
        }
        Lookup {
            by_id,
            managed_by_name,
        }
    }

    /// The container the request of `address` for `name`, recorded as
    /// `recorded_id`, means.
    pub(crate) fn resolve(
        &self,
        address: &str,
        name: &str,
        recorded_id: Option<&str>,
    ) -> Option<&'a Holder> {
        let by_name = || self.managed_by_name.get(name).copied();
        match recorded_id {
            None => by_name(),
            Some(id) => self.by_id.get(id).copied().or_else(|| {
                // Made again by terrace under this address (a replacement whose new
                // id a killed apply did not record): this resource's all the same.
                by_name().filter(|h| h.address.as_deref() == Some(address))
            }),
        }
    }
}

/// Every container on the engine, running or not, terrace's or not.
async fn list_containers(
    p: &DockerProvider,
    whole: &Address,
) -> ProviderResult<Vec<ContainerSummary>> {
    p.call(LIST, whole, "containers", |d| {
        d.list_containers(Some(ListContainersOptions {
            all: true,
            ..Default::default()
        }))
    })
    .await?
    .map_err(|e| p.op_err(whole, "listing containers", &e, &[]))
}

/// Every local image.
async fn list_images(p: &DockerProvider, whole: &Address) -> ProviderResult<Vec<ImageSummary>> {
    p.call(LIST, whole, "images", |d| {
        d.list_images(None::<ListImagesOptions>)
    })
    .await?
    .map_err(|e| p.op_err(whole, "listing images", &e, &[]))
}

/// Every tag and digest of `images`, as [`EngineView::images`] keeps them.
fn image_refs(images: &[ImageSummary]) -> BTreeSet<String> {
    images
        .iter()
        .flat_map(|i| i.repo_tags.iter().chain(&i.repo_digests).cloned())
        .collect()
}

/// Every local image's tags and digests, as [`EngineView::images`] keeps them.
pub(crate) async fn list_image_refs(p: &DockerProvider) -> ProviderResult<BTreeSet<String>> {
    Ok(image_refs(&list_images(p, &p.whole()).await?))
}

/// Every container on the engine as [`EngineView`] keeps it.
pub(crate) async fn list_holders(p: &DockerProvider) -> ProviderResult<Vec<Holder>> {
    let listed = list_containers(p, &p.whole()).await?;
    Ok(listed.iter().filter_map(holder).collect())
}

/// The containers inspected so far, by the id asked for, and the inspects that failed.
#[derive(Default)]
struct Inspections {
    by_id: HashMap<String, Arc<Inspected>>,
    failed: HashMap<String, bollard::errors::Error>,
    /// Some inspect was answered by a container with another id.
    answered_other: bool,
}

impl Inspections {
    /// Sorts the answers of [`inspect_containers`]; a call's own failure (unreachable,
    /// timed out) fails the observe.
    fn add(&mut self, inspected: Vec<(String, InspectedContainer)>) -> ProviderResult<()> {
        for (id, r) in inspected {
            match r? {
                // The engine looks an inspect's argument up as an id, then as a name,
                // then as an id prefix: a container *named* like the id is not it.
                Ok(c) if c.id.as_deref() == Some(id.as_str()) => {
                    self.by_id.insert(id, Arc::new(c));
                }
                Ok(_) => self.answered_other = true,
                Err(e) => {
                    self.failed.insert(id, e);
                }
            }
        }
        Ok(())
    }

    /// Whether some container asked for was not found by its id.
    fn missed(&self) -> bool {
        self.answered_other || !self.failed.is_empty()
    }

    /// The first failure of an inspect of a container still `needed`, other than "no
    /// such container" (removed, or never there: absent).
    fn fail_if_needed(
        &mut self,
        needed: &BTreeSet<&str>,
        err: impl Fn(&str, bollard::errors::Error) -> ProviderError,
    ) -> ProviderResult<()> {
        let failed = std::mem::take(&mut self.failed);
        match failed
            .into_iter()
            .find(|(id, e)| status(e) != Some(404) && needed.contains(id.as_str()))
        {
            Some((id, e)) => Err(err(&format!("inspecting container {id}"), e)),
            None => Ok(()),
        }
    }
}

/// What inspecting one container gave: the call's own failure (unreachable, timed
/// out), or the engine's answer.
type InspectedContainer = ProviderResult<Result<Inspected, bollard::errors::Error>>;

/// Inspects the containers `ids`, [`INSPECT_CONCURRENCY`] at once; each answer is
/// keyed by the id asked for.
async fn inspect_containers(
    p: &DockerProvider,
    whole: &Address,
    ids: BTreeSet<String>,
) -> Vec<(String, InspectedContainer)> {
    stream::iter(ids)
        .map(|id| async move {
            let object = format!("container {id}");
            let r = match inspect::path(&id) {
                Some(path) => p.get_json(INSPECT, whole, &object, &path).await,
                // Not an id the engine could have given: no container has it.
                None => Ok(Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    message: format!("no such container: {id}"),
                })),
            };
            (id, r)
        })
        .buffer_unordered(INSPECT_CONCURRENCY)
        .collect()
        .await
}

fn answer(snap: &Snapshot, r: &ObserveRequest, req: &Attrs) -> Observed {
    let type_name = r.type_name.as_str();
    let Some(name) = name_of(req) else {
        return Observed::Absent;
    };
    match type_name {
        IMAGE => match snap.image_id(name) {
            Some(id) => Observed::Present(attrs([("name", json!(name)), ("id", json!(id))])),
            None => Observed::Absent,
        },
        NETWORK => match snap.networks.get(name) {
            Some(n) => Observed::Present(attrs([
                ("name", json!(name)),
                ("driver", json!(n.driver.clone().unwrap_or_default())),
                ("internal", json!(n.internal.unwrap_or(false))),
            ])),
            None => Observed::Absent,
        },
        VOLUME => match snap.volumes.get(name) {
            Some(v) => {
                Observed::Present(attrs([("name", json!(name)), ("driver", json!(v.driver))]))
            }
            None => Observed::Absent,
        },
        CONTAINER => match snap.containers.get(&r.address) {
            Some(c) => {
                let image = c.image.as_ref().and_then(|id| snap.images_by_id.get(id));
                Observed::Present(container_attrs(snap, c, image, req))
            }
            None => Observed::Absent,
        },
        _ => Observed::Absent,
    }
}

fn attrs<const N: usize>(items: [(&str, Value); N]) -> Attrs {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// `KEY=VALUE` entries as a map (a bare `KEY` means unset and is skipped).
fn env_map(env: Option<&Vec<String>>) -> BTreeMap<String, String> {
    env.into_iter()
        .flatten()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn req_keys(req: &Attrs, key: &str) -> BTreeSet<String> {
    req.get(key)
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// A container's attributes in canonical form. `req` (the configuration's or the
/// state's view) says which env keys and labels the user set: those are reported even
/// when the image sets the same value.
fn container_attrs(
    snap: &Snapshot,
    c: &Inspected,
    image: Option<&ImageInspect>,
    req: &Attrs,
) -> Attrs {
    // Borrowed, not copied: a no-change plan of 1,000 containers reads 1,000 of these.
    let (no_config, no_host, no_image_config) = Default::default();
    let config: &Config = c.config.as_ref().unwrap_or(&no_config);
    let host: &HostConfig = c.host_config.as_ref().unwrap_or(&no_host);
    let image_config: &ImageConfig = image
        .and_then(|i| i.config.as_ref())
        .unwrap_or(&no_image_config);
    let name = c
        .name
        .as_deref()
        .unwrap_or_default()
        .trim_start_matches('/')
        .to_string();
    let mut out = Attrs::new();
    out.insert("name".into(), json!(name));

    let image_name = config.image.clone().unwrap_or_default();
    out.insert("image".into(), json!(image_name));
    // The placeholder while the name still points at the image the container runs (or
    // cannot be resolved: then there is nothing to compare); the real old id otherwise.
    let running_id = c.image.clone().unwrap_or_default();
    let image_id = match snap.image_id(&image_name) {
        Some(current) if current != running_id => running_id,
        _ => image_id_placeholder(&image_name),
    };
    out.insert("image_id".into(), json!(image_id));

    out.insert(
        "command".into(),
        config.cmd.clone().map_or(Value::Null, |c| json!(c)),
    );

    // Env: drop what the image set, unless the user set that key too.
    let user_env = req_keys(req, "env");
    let image_env = env_map(image_config.env.as_ref());
    let env: BTreeMap<String, String> = env_map(config.env.as_ref())
        .into_iter()
        .filter(|(k, v)| user_env.contains(k) || image_env.get(k) != Some(v))
        .collect();
    out.insert("env".into(), json!(env));

    // Labels: drop terrace's own and the image's (unless the user set that key).
    let user_labels = req_keys(req, "labels");
    let image_labels = image_config.labels.clone().unwrap_or_default();
    let labels: BTreeMap<&String, &String> = config
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !k.starts_with(LABEL_PREFIX))
        .filter(|(k, v)| user_labels.contains(*k) || image_labels.get(*k) != Some(*v))
        .collect();
    out.insert("labels".into(), json!(labels));

    // Ports: the configured bindings (not the runtime ones, which vanish when stopped).
    let mut ports: Vec<String> = host
        .port_bindings
        .iter()
        .flatten()
        .flat_map(|(cport, bindings)| {
            let (num, proto) = cport.split_once('/').unwrap_or((cport, "tcp"));
            bindings.iter().flatten().map(move |b| {
                format_port(
                    b.host_ip.as_deref().unwrap_or(""),
                    b.host_port.as_deref().unwrap_or(""),
                    num,
                    proto,
                )
            })
        })
        .collect();
    ports.sort();
    ports.dedup();
    out.insert("ports".into(), json!(ports));

    // Mounts: named volumes by name, binds by host path; anonymous volumes the image
    // declares (VOLUME) are the engine's doing.
    let image_volumes: BTreeSet<String> = image_config
        .volumes
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|v| trim_slash(v))
        .collect();
    let mut mounts: Vec<(String, Value)> = c
        .mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let target = trim_slash(m.destination.as_deref()?);
            let source = match m.typ.as_deref() {
                Some("volume") => {
                    if image_volumes.contains(&target) && !requested_mount(req, &target) {
                        return None;
                    }
                    m.name.clone()?
                }
                Some("bind") => trim_slash(m.source.as_deref()?),
                _ => return None,
            };
            let read_only = !m.rw.unwrap_or(true);
            Some((target.clone(), mount_value(&source, &target, read_only)))
        })
        .collect();
    mounts.sort_by(|a, b| a.0.cmp(&b.0));
    out.insert(
        "mounts".into(),
        Value::Array(mounts.into_iter().map(|(_, v)| v).collect()),
    );

    // Networks: aliases the engine adds (the container's name and short id) are dropped
    // unless the user asked for them.
    let id = c.id.clone().unwrap_or_default();
    let short_id: String = id.chars().take(12).collect();
    let mut networks: Vec<(&String, Value)> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .into_iter()
        .flatten()
        .map(|(net, ep)| {
            let asked = requested_aliases(req, net);
            // Compared by id: a network removed (and maybe re-created under the same
            // name) after the container joined it leaves an endpoint that cannot start.
            let stale = ep
                .network_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .is_some_and(|id| snap.network_ids.get(net).map(String::as_str) != Some(id));
            let aliases: Vec<String> = ep
                .aliases
                .iter()
                .flatten()
                .filter(|a| asked.contains(*a) || (**a != name && **a != short_id && **a != id))
                .cloned()
                .collect();
            let mut value = network_value(net, aliases);
            if stale {
                if let Value::Object(m) = &mut value {
                    m.insert("stale".into(), json!(STALE_ENDPOINT));
                }
            }
            (net, value)
        })
        .collect();
    networks.sort_by(|a, b| a.0.cmp(b.0));
    out.insert(
        "networks".into(),
        Value::Array(networks.into_iter().map(|(_, v)| v).collect()),
    );

    out.insert("memory".into(), json!(host.memory.unwrap_or(0)));
    let restart = host.restart_policy.clone().unwrap_or_default();
    let restart_name = restart
        .name
        .map(|n| {
            serde_json::to_value(n)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    out.insert(
        "restart".into(),
        json!(restart_string(
            &restart_name,
            restart.maximum_retry_count.unwrap_or(0)
        )),
    );

    out.insert(EXTRA_LIMITS.into(), json!(extra_limits(host)));

    let health = config
        .healthcheck
        .clone()
        .filter(|h| h.test.as_ref().is_some_and(|t| !t.is_empty()));
    out.insert(
        "healthcheck".into(),
        health.map_or(Value::Null, |h| {
            healthcheck_value(
                h.test.unwrap_or_default(),
                h.interval.unwrap_or(0),
                h.timeout.unwrap_or(0),
                h.retries.unwrap_or(0),
                h.start_period.unwrap_or(0),
            )
        }),
    );

    // The engine's effective values: what a stop does, whoever set it (the image may
    // name a stop signal), so that writing out a default is no change.
    out.insert("init".into(), json!(host.init.unwrap_or(false)));
    let signal = config.stop_signal.as_deref().map_or_else(
        || DEFAULT_STOP_SIGNAL.to_string(),
        |s| stop_signal(s).unwrap_or_else(|_| s.to_string()),
    );
    out.insert("stop_signal".into(), json!(signal));
    out.insert(
        "stop_timeout".into(),
        json!(stop_timeout_string(
            config.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT_S)
        )),
    );

    let running = c.state.as_ref().is_some_and(|s| s.running.unwrap_or(false));
    out.insert("running".into(), json!(running));
    let paused = c.state.as_ref().is_some_and(|s| s.paused.unwrap_or(false));
    out.insert("paused".into(), json!(paused));
    out
}

/// The limits `docker update` can set that terrace never does, as the `docker update`
/// flags that set them (what an operator typed, and can search for). terrace creates
/// containers with none of them, so any one was set outside terrace.
fn extra_limits(host: &HostConfig) -> Vec<String> {
    let set = |v: Option<i64>| v.filter(|n| *n > 0);
    let size = |n: i64| terrace_provider::byte_size(n).unwrap_or_else(|| n.to_string());
    let mut out = Vec::new();
    if let Some(n) = set(host.nano_cpus) {
        // Shown as Docker's `--cpus` takes it: 0.5, 1.25.
        let cpus = format!("{:.9}", n as f64 / 1e9);
        out.push(format!(
            "--cpus={}",
            cpus.trim_end_matches('0').trim_end_matches('.')
        ));
    }
    let numbers = [
        ("--cpu-shares", host.cpu_shares),
        ("--cpu-period", host.cpu_period),
        ("--cpu-quota", host.cpu_quota),
        ("--cpu-rt-period", host.cpu_realtime_period),
        ("--cpu-rt-runtime", host.cpu_realtime_runtime),
        ("--pids-limit", host.pids_limit),
        ("--blkio-weight", host.blkio_weight),
    ];
    for (flag, v) in numbers {
        if let Some(n) = set(v) {
            out.push(format!("{flag}={n}"));
        }
    }
    for (flag, v) in [
        ("--cpuset-cpus", &host.cpuset_cpus),
        ("--cpuset-mems", &host.cpuset_mems),
    ] {
        if let Some(list) = v.as_deref().filter(|s| !s.is_empty()) {
            out.push(format!("{flag}={list}"));
        }
    }
    // With `memory`, terrace sets swap to unlimited (-1); without, the engine keeps 0.
    for (flag, v) in [
        ("--memory-reservation", host.memory_reservation),
        ("--memory-swap", host.memory_swap),
    ] {
        if let Some(n) = set(v) {
            out.push(format!("{flag}={}", size(n)));
        }
    }
    out
}

fn requested_mount(req: &Attrs, target: &str) -> bool {
    req.get("mounts")
        .and_then(Value::as_array)
        .is_some_and(|ms| {
            ms.iter()
                .any(|m| m.get("target").and_then(Value::as_str) == Some(target))
        })
}

fn requested_aliases(req: &Attrs, network: &str) -> BTreeSet<String> {
    req.get("networks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|n| n.get("name").and_then(Value::as_str) == Some(network))
        .filter_map(|n| n.get("aliases").and_then(Value::as_array))
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

/// Why `terrace import` found nothing: either no such object, or one terrace cannot
/// adopt because it lacks the `terrace.managed` label (labels cannot be added to an
/// existing container, network or volume, and observe only sees labelled objects).
pub(crate) async fn import_missing(p: &DockerProvider, t: &str, id: &str) -> ProviderError {
    let target = p.engine().target();
    let address = Address::new(format!("{t}.{id}"));
    let object = format!("{t} {id:?}");
    let found = match t {
        CONTAINER => p
            .call(INSPECT, &address, &object, |d| {
                d.inspect_container(id, None)
            })
            .await
            .map(|r| r.is_ok()),
        NETWORK => p
            .call(INSPECT, &address, &object, |d| d.inspect_network(id, None))
            .await
            .map(|r| r.is_ok()),
        VOLUME => p
            .call(INSPECT, &address, &object, |d| d.inspect_volume(id))
            .await
            .map(|r| r.is_ok()),
        _ => Ok(false),
    };
    let exists = match found {
        Ok(exists) => exists,
        Err(e) => return e,
    };
    if exists {
        ProviderError::Invalid(format!(
            "cannot import {t} {id:?}: it exists on {target} but was not created by terrace \
             (no {LABEL_MANAGED}=true label), and Docker cannot add labels to it; remove it \
             and let terrace create it, or rename it"
        ))
    } else {
        ProviderError::Invalid(format!(
            "cannot import {t} {id:?}: it does not exist on {target}"
        ))
    }
}
