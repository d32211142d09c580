//! terrace provider for Docker engines: images, networks, volumes and containers.
//!
//! One [`DockerProvider`] serves one engine, reached over its unix socket. Observe
//! answers every request from one list call per object kind (filtered by terrace's
//! `terrace.managed=true` label) plus concurrent inspects of the containers asked for,
//! so its cost does not grow with the number of networks, volumes or images.
//!
//! The central promise is *no perpetual diffs*: [`Provider::normalize`] puts desired
//! attributes into one canonical spelling (see [`normalize`]) and observe reports live
//! objects in exactly that spelling, leaving out what the engine or the image adds
//! (image env and labels, automatic network aliases, default restart policy …).
//!
//! `env` values may be secrets: they are never logged and are scrubbed from errors.

mod apply;
mod backup;
mod clash;
mod error;
mod image;
mod inspect;
pub mod normalize;
mod observe;
mod schema;
mod timeouts;
mod transport;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use terrace_provider::{
    find_schema, Address, Attrs, ObserveRequest, Observed, Operation, PlanProblem, PlannedChange,
    Provider, ProviderError, ProviderResult, ResourceSchema, Safeguard, Step,
};

pub use observe::INSPECT_CONCURRENCY;
pub use schema::{CONTAINER, IMAGE, NETWORK, SCHEMAS, VOLUME};
pub use timeouts::{Timeouts, DEFAULT_TIMEOUT, SLOW_FACTOR, TIMEOUT_ENV};

/// Where the engine listens when neither the configuration nor `$DOCKER_HOST` says.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How to reach one Docker engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerEngine {
    /// The engine's unix socket (a forwarded one works too). `None`: `$DOCKER_HOST` if it
    /// is a `unix://` URL, else [`DEFAULT_SOCKET`].
    pub socket: Option<PathBuf>,
}

impl DockerEngine {
    /// The socket path this engine resolves to, or why it cannot be used (a `tcp://`
    /// `$DOCKER_HOST`: only unix sockets are supported).
    pub fn socket_path(&self) -> Result<PathBuf, String> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        match std::env::var("DOCKER_HOST") {
            Ok(h) if !h.is_empty() => match h.strip_prefix("unix://") {
                Some(p) => Ok(PathBuf::from(p)),
                None => Err(format!(
                    "DOCKER_HOST={h:?} is not a unix:// socket; terrace talks to Docker over unix sockets only"
                )),
            },
            _ => Ok(PathBuf::from(DEFAULT_SOCKET)),
        }
    }

    /// `unix:///path`, for messages.
    pub fn target(&self) -> String {
        match self.socket_path() {
            Ok(p) => format!("unix://{}", p.display()),
            Err(_) => std::env::var("DOCKER_HOST").unwrap_or_default(),
        }
    }
}

/// The provider for one Docker engine. Cheap to create: it connects on first use. Safe
/// to share between tasks.
pub struct DockerProvider {
    engine: DockerEngine,
    /// One client for the provider's life: its connections are reused by every call.
    /// Only `timeouts.rs` can reach it, so every call has a bound.
    client: timeouts::Client,
    /// How long each call may take.
    timeouts: Timeouts,
    calls: AtomicU64,
    /// Connections the client opened (shared with its connector).
    connections: Arc<AtomicU64>,
    /// Where a volume's content is copied before the volume is removed; `None`: no copy.
    backup_dir: Option<PathBuf>,
    /// Every container (and network and volume) on the engine as the last observe listed
    /// it: what [`Provider::check_plan`] checks names and ports against (it lists the
    /// containers itself when observe did not need to).
    view: Mutex<Option<clash::EngineView>>,
    /// The engine's capacity, read by the last observe of containers alongside its
    /// inspects (the engine's `info` grows with its containers: ~25 ms for 1,000, which
    /// a plan would otherwise wait for after everything else). `Some(None)`: the read
    /// failed or the engine did not say; not asked again in this run.
    capacity: Mutex<Option<Option<terrace_provider::Capacity>>>,
}

impl fmt::Debug for DockerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DockerProvider")
            .field("target", &self.engine.target())
            .finish_non_exhaustive()
    }
}

pub(crate) fn unknown_type(type_name: &str) -> ProviderError {
    ProviderError::Invalid(format!("unknown Docker resource type {type_name:?}"))
}

impl DockerProvider {
    /// Reads the engine's capacity (its host's memory) from its `info`.
    pub(crate) async fn read_capacity(&self) -> ProviderResult<Option<terrace_provider::Capacity>> {
        let whole = self.whole();
        let read = async {
            let info = self
                .call(timeouts::calls::INFO, &whole, "", |d| d.info())
                .await?
                .map_err(|e| ProviderError::Connect {
                    target: self.engine.target(),
                    message: e.to_string(),
                })?;
            Ok(info
                .mem_total
                .and_then(|m| u64::try_from(m).ok())
                .map(|memory_bytes| terrace_provider::Capacity { memory_bytes }))
        };
        let read: ProviderResult<_> = read.await;
        *self.capacity.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(read.as_ref().ok().copied().flatten());
        read
    }

    /// A provider for `engine`, its calls bounded as [`TIMEOUT_ENV`] says (see
    /// [`Timeouts`]). Does not connect yet.
    pub fn new(engine: DockerEngine) -> Self {
        DockerProvider {
            engine,
            client: timeouts::Client::default(),
            timeouts: Timeouts::from_env(),
            calls: AtomicU64::new(0),
            connections: Arc::new(AtomicU64::new(0)),
            backup_dir: None,
            view: Mutex::new(None),
            capacity: Mutex::new(None),
        }
    }

    /// Copies every volume's content into a tar file in `dir` (mode 0600) before the
    /// volume is removed, and refuses the removal when the copy fails: data is never
    /// destroyed silently. The plan names the file ([`Provider::safeguard`]).
    pub fn with_backup_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.backup_dir = Some(dir.into());
        self
    }

    /// Bounds every call by `timeouts` instead of what [`TIMEOUT_ENV`] says.
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// How long each call may take.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Where volume copies go, if they are taken.
    pub fn backup_dir(&self) -> Option<&std::path::Path> {
        self.backup_dir.as_deref()
    }

    /// The engine this provider manages.
    pub fn engine(&self) -> &DockerEngine {
        &self.engine
    }

    /// How many engine API calls this provider has made so far (including version
    /// negotiation). Exists so that tests can prove that observe is batched.
    pub fn api_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// How many connections to the engine this provider has opened so far. Requests reuse
    /// idle connections, so this stays at most the number of requests in flight at once
    /// (observe's inspect concurrency), whatever the number of requests.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// Counts one API call; every call site calls this right before the request.
    pub(crate) fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    fn schema(type_name: &str) -> ProviderResult<&'static ResourceSchema> {
        find_schema(SCHEMAS, type_name).ok_or_else(|| unknown_type(type_name))
    }
}

pub(crate) fn require<'a>(
    attrs: &'a Option<Attrs>,
    what: &str,
    step: &Step,
) -> ProviderResult<&'a Attrs> {
    attrs.as_ref().ok_or_else(|| {
        ProviderError::Invalid(format!(
            "{}: {:?} step without {what} attributes",
            step.address, step.operation
        ))
    })
}

/// A normalised copy: apply works on canonical attributes even if a caller skipped
/// [`Provider::normalize`].
pub(crate) fn resolved(type_name: &str, attrs: &Attrs) -> ProviderResult<Attrs> {
    let mut a = attrs.clone();
    normalize::normalize(type_name, &mut a)?;
    Ok(a)
}

/// How many creates and updates one engine is given at once: where its throughput stops
/// growing. The engine serialises much of a create (its daemon lock, the storage driver),
/// so beyond that more in flight only wait longer there. Measured on the test engine
/// (Docker 20.10, 2 shared cores; `docker run -d` of 40 containers, two rounds): 2 in
/// flight 3.3 containers/s, 4: 3.4–4.1/s, 6: 4.3–4.5/s, 10: 4.0–4.3/s; the issue's
/// figures at 100 containers agree (10 and 32 in flight take the same time, at 2.1 s
/// and 5.8 s per container against 0.38 s alone).
pub const APPLY_CONCURRENCY: usize = 6;

/// How many destroys one engine is given at once. A container's destroy mostly waits:
/// for its process to stop (up to the stop timeout, then a kill) and for its volume's
/// copy; measured, 100 container destroys took 10.6 s each at 10 in flight and 10.4 s at
/// 4, so fewer in flight only made the destroy longer.
pub const DESTROY_CONCURRENCY: usize = 10;

#[async_trait::async_trait]
impl Provider for DockerProvider {
    fn schemas(&self) -> &'static [ResourceSchema] {
        SCHEMAS
    }

    /// [`APPLY_CONCURRENCY`] creates and updates (measured: the engine's throughput
    /// stops growing there), [`DESTROY_CONCURRENCY`] destroys.
    fn max_concurrency(&self, operation: Operation) -> usize {
        match operation {
            Operation::Delete => DESTROY_CONCURRENCY,
            _ => APPLY_CONCURRENCY,
        }
    }

    /// As the last observe read it, else read now.
    async fn capacity(&self) -> ProviderResult<Option<terrace_provider::Capacity>> {
        if let Some(known) = *self.capacity.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(known);
        }
        self.read_capacity().await
    }

    fn normalize(&self, type_name: &str, attrs: &mut Attrs) -> ProviderResult<()> {
        normalize::normalize(type_name, attrs)
    }

    fn safeguard(&self, type_name: &str, attrs: &Attrs) -> Option<Safeguard> {
        let dir = self.backup_dir.as_ref()?;
        let name = attrs.get("name").and_then(|v| v.as_str())?;
        (type_name == VOLUME).then(|| Safeguard {
            kind: "copy".into(),
            destination: backup::destination_pattern(dir, name),
        })
    }

    /// Volumes move as tar archives, between any two engines.
    fn data_format(&self, type_name: &str) -> Option<String> {
        (type_name == VOLUME).then(|| backup::COPY_FORMAT.to_string())
    }

    async fn export_data(
        &self,
        address: &Address,
        type_name: &str,
        attrs: &Attrs,
    ) -> ProviderResult<terrace_provider::DataCopy> {
        match (type_name, attrs.get("name").and_then(|v| v.as_str())) {
            (VOLUME, Some(name)) => backup::export_volume(self, address, name).await,
            _ => Err(ProviderError::Invalid(format!(
                "{address}: only a volume's data can be copied"
            ))),
        }
    }

    async fn restore_data(
        &self,
        address: &Address,
        type_name: &str,
        attrs: &Attrs,
        copy: &terrace_provider::DataCopy,
    ) -> ProviderResult<()> {
        match (type_name, attrs.get("name").and_then(|v| v.as_str())) {
            (VOLUME, Some(name)) => backup::restore_volume(self, address, name, copy).await,
            _ => Err(ProviderError::Invalid(format!(
                "{address}: only a volume's data can be restored"
            ))),
        }
    }

    /// Lists the engine's containers first when a change takes a name or starts a
    /// container and observe did not list them; its images when a container is
    /// created on an engine observe did not ask about containers (a move's
    /// destination).
    async fn check_plan(&self, changes: &[PlannedChange]) -> ProviderResult<Vec<PlanProblem>> {
        let (containers, images) = {
            let view = self.view.lock().unwrap_or_else(|e| e.into_inner());
            let view = view.as_ref();
            (
                view.is_some_and(|v| v.containers.is_some()),
                view.is_some_and(|v| v.images.is_some()),
            )
        };
        if clash::needs_containers(changes) && !containers {
            let holders = observe::list_holders(self).await?;
            let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
            view.get_or_insert_with(Default::default).containers = Some(holders);
        }
        if clash::needs_images(changes) && !images {
            let refs = observe::list_image_refs(self).await?;
            let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
            view.get_or_insert_with(Default::default).images = Some(refs);
        }
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        Ok(view
            .as_ref()
            .map(|view| clash::check(view, changes))
            .unwrap_or_default())
    }

    async fn observe(&self, requests: &[ObserveRequest]) -> ProviderResult<Vec<Observed>> {
        observe::observe(self, requests).await
    }

    async fn apply(&self, step: &Step) -> ProviderResult<Option<Attrs>> {
        let t = Self::schema(&step.type_name)?.type_name;
        tracing::debug!(address = %step.address, operation = ?step.operation, type_name = t, "applying");
        match (t, step.operation) {
            (IMAGE, Operation::Create) => image::create(self, step).await.map(Some),
            (IMAGE, Operation::Update) => image::update(self, step).await.map(Some),
            (IMAGE, Operation::Delete) => image::delete(self, step).await.map(|_| None),
            (_, Operation::Create) => apply::create(self, t, step).await.map(Some),
            (_, Operation::Update) => apply::update(self, t, step).await.map(Some),
            (_, Operation::Delete) => apply::delete(self, t, step).await.map(|_| None),
        }
    }

    async fn import(&self, type_name: &str, id: &str, desired: &Attrs) -> ProviderResult<Attrs> {
        let t = Self::schema(type_name)?.type_name;
        // The configuration's view fills in what identifies the object and what cannot be
        // read back; the ID names the object.
        let mut attrs = desired.clone();
        attrs.insert("name".into(), id.into());
        if t == CONTAINER && !attrs.contains_key("image") {
            attrs.insert("image".into(), "unknown".into());
        }
        if t == CONTAINER {
            // A container is known by its id from now on, so one made by hand (which
            // Docker cannot give terrace's labels) can be adopted too.
            let address = Address::new(format!("{t}.{id}"));
            let object = format!("container {id:?}");
            let found = self
                .call(timeouts::calls::INSPECT, &address, &object, |d| {
                    d.inspect_container(id, None)
                })
                .await?;
            if let Ok(found) = found {
                if let Some(cid) = found.id {
                    attrs.insert("id".into(), cid.into());
                }
            }
        }
        let attrs = resolved(t, &attrs)?;
        let req = ObserveRequest {
            address: Address::new(format!("{t}.{id}")),
            type_name: t.to_string(),
            attrs: attrs.clone(),
        };
        let observed = self.observe(std::slice::from_ref(&req)).await?;
        match observed.into_iter().next() {
            Some(Observed::Present(mut found)) => {
                for (k, v) in attrs {
                    found.entry(k).or_insert(v);
                }
                Ok(found)
            }
            _ => Err(observe::import_missing(self, t, id).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_resolution() {
        let e = DockerEngine {
            socket: Some("/tmp/x.sock".into()),
        };
        assert_eq!(e.socket_path().unwrap(), PathBuf::from("/tmp/x.sock"));
        assert_eq!(e.target(), "unix:///tmp/x.sock");
    }

    #[test]
    fn provider_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<DockerProvider>();
    }
}
