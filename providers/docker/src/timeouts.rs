//! How long terrace waits for each Docker engine call: one table, so that the policy
//! lives in one place and every call has a bound.
//!
//! A hung engine accepts a request and never answers (seen with Docker 20.10 when its
//! containerd stalls). One bound for every call, as bollard applies it, is either far too
//! long for a version check (it was 600 s: a plan waited ten minutes) or too short for a
//! large image pull, so each call has a rule derived from what it does:
//!
//! - [`Rule::Quick`]: the engine answers from memory or after a small write (version,
//!   lists, inspects, network and volume creation, create, start, rename): the short
//!   bound, [`DEFAULT_TIMEOUT`] unless [`TIMEOUT_ENV`] says otherwise. Docker's own
//!   Python SDK (and Compose v1, which used it) waited 60 s for any answer; terrace asks
//!   at most [`crate::APPLY_CONCURRENCY`] creates of an engine at once, where one takes
//!   a few seconds on a loaded 2-core test machine, so 30 s leaves a wide margin.
//! - [`Rule::Removal`]: the engine deletes files before it answers (a container's
//!   writable layer, a volume's content), which takes as long as there are files:
//!   [`SLOW_FACTOR`] short bounds.
//! - [`Rule::Stop`]: the engine waits for the process (the container's stop timeout,
//!   or the one terrace passes) before it kills it: that wait plus one short bound for
//!   the kill and the answer. The Python SDK adds its timeout to a stop's wait the
//!   same way.
//! - [`Rule::Progress`]: streams whose length depends on the data (image pull and
//!   import, a volume's copy out and back in): they fail only when no byte moved in
//!   either direction for [`SLOW_FACTOR`] short bounds; a stream that moves is never
//!   cut, however long it takes.
//!
//! Every call goes through [`DockerProvider::call`] or [`DockerProvider::stream`]: the
//! bollard client is reachable only from this module, so a call without a bound does
//! not compile. The timeout bollard itself applies ([`BACKSTOP`]) never fires first.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use terrace_provider::{Address, ProviderError, ProviderResult};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::normalize::format_duration;
use crate::DockerProvider;

/// The short bound when [`TIMEOUT_ENV`] does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable that sets the short bound (`30`, `30s`, `2m`, `500ms`:
/// [`terrace_provider::duration::parse_duration`]); every other bound follows from it.
pub const TIMEOUT_ENV: &str = "TERRACE_DOCKER_TIMEOUT";

/// How many short bounds a removal may take, and a stream may stay silent.
pub const SLOW_FACTOR: u32 = 4;

/// What bollard is told to wait: longer than any bound here, so it never fires first.
/// It cannot be the bound itself: bollard applies one figure to every request, and to
/// a stream only until its first byte.
pub(crate) const BACKSTOP: Duration = Duration::from_secs(24 * 3_600);

/// The bollard client of one provider, connected on first use. Its field is private
/// to this module: calls reach it only through [`DockerProvider::call`] and
/// [`DockerProvider::stream`].
#[derive(Default)]
pub(crate) struct Client(OnceCell<(Docker, crate::transport::Raw)>);

/// How the bound of a [`Call`] is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// The short bound.
    Quick,
    /// [`SLOW_FACTOR`] short bounds: the engine deletes files first.
    Removal,
    /// The engine's wait before it kills the process, plus a short bound.
    Stop {
        /// The wait (set with [`Call::waiting`]).
        wait: Duration,
    },
    /// No byte moved for [`SLOW_FACTOR`] short bounds.
    Progress,
}

/// One kind of engine call: what messages call it, how its bound is found, and
/// whether it changes the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Call {
    /// What the call does, as a message says it: `"stopping"` (the object follows).
    pub(crate) doing: &'static str,
    /// How its bound is found.
    pub(crate) rule: Rule,
    /// It changes the engine: one that timed out may still take effect there.
    pub(crate) changes: bool,
}

impl Call {
    const fn reads(doing: &'static str) -> Call {
        Call {
            doing,
            rule: Rule::Quick,
            changes: false,
        }
    }

    const fn writes(doing: &'static str, rule: Rule) -> Call {
        Call {
            doing,
            rule,
            changes: true,
        }
    }

    /// A [`Rule::Stop`] call whose engine waits `wait` before it kills.
    pub(crate) fn waiting(self, wait: Duration) -> Call {
        Call {
            rule: Rule::Stop { wait },
            ..self
        }
    }
}

/// Every call terrace makes of an engine, with its rule.
pub(crate) mod calls {
    use super::{Call, Rule};
    use std::time::Duration;

    /// The first call on a connection (bollard's version negotiation).
    pub(crate) const VERSION: Call = Call::reads("negotiating the API version");
    pub(crate) const INFO: Call = Call::reads("reading the engine's info");
    pub(crate) const LIST: Call = Call::reads("listing");
    pub(crate) const INSPECT: Call = Call::reads("inspecting");
    pub(crate) const CREATE: Call = Call::writes("creating", Rule::Quick);
    pub(crate) const CONNECT: Call = Call::writes("connecting", Rule::Quick);
    pub(crate) const START: Call = Call::writes("starting", Rule::Quick);
    pub(crate) const RENAME: Call = Call::writes("renaming", Rule::Quick);
    pub(crate) const PAUSE: Call = Call::writes("pausing", Rule::Quick);
    pub(crate) const UNPAUSE: Call = Call::writes("unpausing", Rule::Quick);
    pub(crate) const UPDATE: Call = Call::writes("updating", Rule::Quick);
    /// A network's removal deletes no files.
    pub(crate) const REMOVE_NETWORK: Call = Call::writes("removing", Rule::Quick);
    /// A container's (with `force`: a SIGKILL, then its writable layer) or a volume's.
    pub(crate) const REMOVE: Call = Call::writes("removing", Rule::Removal);
    /// Set the engine's wait with [`Call::waiting`].
    pub(crate) const STOP: Call = Call::writes(
        "stopping",
        Rule::Stop {
            wait: Duration::ZERO,
        },
    );
    pub(crate) const PULL: Call = Call::writes("pulling", Rule::Progress);
    pub(crate) const IMPORT: Call = Call::writes("importing", Rule::Progress);
    /// A volume's content streamed out as a tar (its copy).
    pub(crate) const COPY_OUT: Call = Call {
        doing: "copying out",
        rule: Rule::Progress,
        changes: false,
    };
    /// A volume's copy streamed back in.
    pub(crate) const COPY_IN: Call = Call::writes("copying into", Rule::Progress);
}

/// The short bound, from which every bound follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    quick: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            quick: DEFAULT_TIMEOUT,
        }
    }
}

impl Timeouts {
    /// Bounds whose short bound is `quick` (zero is taken as a millisecond: every call
    /// has a bound, and none is instant).
    pub fn new(quick: Duration) -> Timeouts {
        Timeouts {
            quick: quick.max(Duration::from_millis(1)),
        }
    }

    /// The short bound from [`TIMEOUT_ENV`], else [`DEFAULT_TIMEOUT`] (a value that
    /// cannot be read, or zero, gives the default too, with a warning in the log).
    pub fn from_env() -> Timeouts {
        let Ok(text) = std::env::var(TIMEOUT_ENV) else {
            return Timeouts::default();
        };
        match terrace_provider::duration::parse_duration(&text) {
            Ok(d) if !d.is_zero() => Timeouts::new(d),
            _ => {
                tracing::warn!(value = %text, "{TIMEOUT_ENV} is not a duration above zero such as 30 or 2m; using the default");
                Timeouts::default()
            }
        }
    }

    /// The short bound.
    pub fn quick(&self) -> Duration {
        self.quick
    }

    fn slow(&self) -> Duration {
        self.quick.saturating_mul(SLOW_FACTOR)
    }

    /// How long `call` may take (for [`Rule::Progress`]: may stay silent).
    pub(crate) fn bound(&self, call: &Call) -> Duration {
        match call.rule {
            Rule::Quick => self.quick,
            Rule::Removal | Rule::Progress => self.slow(),
            Rule::Stop { wait } => wait.saturating_add(self.quick),
        }
    }

    /// The bound of `call` and where it comes from, for messages.
    fn explain(&self, call: &Call) -> String {
        let quick = show(self.quick);
        let bound = show(self.bound(call));
        match call.rule {
            Rule::Quick => format!("within {bound} ({TIMEOUT_ENV})"),
            Rule::Removal => format!(
                "within {bound} ({SLOW_FACTOR} × {TIMEOUT_ENV} {quick}: the engine deletes files first)"
            ),
            Rule::Stop { wait } => format!(
                "within {bound} (the {} the engine waits before it kills the process, then {TIMEOUT_ENV} {quick})",
                show(wait)
            ),
            Rule::Progress => format!(
                "for {bound}: no byte moved either way ({SLOW_FACTOR} × {TIMEOUT_ENV} {quick})"
            ),
        }
    }
}

/// `1m30s`, `500ms`: terrace's duration syntax (what [`TIMEOUT_ENV`] reads).
fn show(d: Duration) -> String {
    // Whole milliseconds: finer is noise in a message.
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 1_000_000);
    format_duration(ms.saturating_mul(1_000_000))
}

/// When a stream last moved a byte; cloned into the stream's parts, which call
/// [`Progress::touch`].
#[derive(Debug, Clone)]
pub(crate) struct Progress(Arc<Mutex<Instant>>);

impl Progress {
    fn new() -> Progress {
        Progress(Arc::new(Mutex::new(Instant::now())))
    }

    /// Something moved just now.
    pub(crate) fn touch(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// `fut`'s output, or `None` once `idle` passed without a [`Progress::touch`].
async fn unless_stalled<F: Future>(
    fut: F,
    progress: &Progress,
    idle: Duration,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        let deadline = progress.last() + idle;
        tokio::select! {
            biased;
            out = &mut fut => return Some(out),
            () = tokio::time::sleep_until(deadline) => {
                if progress.last() + idle <= Instant::now() {
                    return None;
                }
            }
        }
    }
}

impl DockerProvider {
    /// The engine as an address, for errors of calls no resource owns (observe's).
    pub(crate) fn whole(&self) -> Address {
        Address::new(self.engine().target())
    }

    /// Runs one engine call, `f(client)`, under `call`'s bound; `object` names what it
    /// acts on (`container "web"`, `containers`) and `address` whose call it is, for
    /// the error. The outer result is terrace's (the engine did not answer in time, or
    /// could not be reached); the inner one is the call's own.
    pub(crate) async fn call<'a, O, Fut>(
        &'a self,
        call: Call,
        address: &Address,
        object: &str,
        f: impl FnOnce(&'a Docker) -> Fut,
    ) -> ProviderResult<O>
    where
        Fut: Future<Output = O>,
    {
        debug_assert!(call.rule != Rule::Progress, "streams go through stream()");
        let docker = self.client(address).await?;
        self.count();
        let bound = self.timeouts.bound(&call);
        tokio::time::timeout(bound, f(docker))
            .await
            .map_err(|_| self.timed_out(&call, address, object))
    }

    /// Removes the container `name` (killing it if it runs) under the removal bound,
    /// keeping its named volumes (`v: false`): their data always outlives the container.
    pub(crate) async fn force_remove_container(
        &self,
        address: &Address,
        object: &str,
        name: &str,
    ) -> ProviderResult<Result<(), bollard::errors::Error>> {
        let options = bollard::query_parameters::RemoveContainerOptions {
            force: true,
            v: false,
            link: false,
        };
        self.call(calls::REMOVE, address, object, |d| {
            d.remove_container(name, Some(options))
        })
        .await
    }

    /// Like [`DockerProvider::call`], for a stream: `f` gets a [`Progress`] to touch
    /// whenever a byte moves (sent or received), and fails only when none moved for the
    /// call's bound.
    pub(crate) async fn stream<'a, O, Fut>(
        &'a self,
        call: Call,
        address: &Address,
        object: &str,
        f: impl FnOnce(&'a Docker, Progress) -> Fut,
    ) -> ProviderResult<O>
    where
        Fut: Future<Output = O>,
    {
        let docker = self.client(address).await?;
        self.count();
        let progress = Progress::new();
        let idle = self.timeouts.bound(&call);
        unless_stalled(f(docker, progress.clone()), &progress, idle)
            .await
            .ok_or_else(|| self.timed_out(&call, address, object))
    }

    /// The connected client, connecting (and negotiating the API version, since
    /// engines here speak older versions than bollard's default) on first use, within
    /// the short bound: also a caller that waits for another's connection attempt.
    async fn client(&self, address: &Address) -> ProviderResult<&Docker> {
        Ok(&self.connected(address).await?.0)
    }

    /// A GET of `path` whose JSON answer is decoded as `T` by terrace rather than
    /// bollard (see [`crate::transport::Raw`]), under `call`'s bound, like [`call`].
    ///
    /// [`call`]: DockerProvider::call
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        call: Call,
        address: &Address,
        object: &str,
        path: &str,
    ) -> ProviderResult<Result<T, bollard::errors::Error>> {
        let (docker, raw) = self.connected(address).await?;
        self.count();
        let bound = self.timeouts.bound(&call);
        tokio::time::timeout(bound, raw.get_json(&docker.client_version(), path))
            .await
            .map_err(|_| self.timed_out(&call, address, object))
    }

    /// The connected clients (see [`client`](DockerProvider::client)).
    async fn connected(
        &self,
        address: &Address,
    ) -> ProviderResult<&(Docker, crate::transport::Raw)> {
        let connect = || async {
            let connect = |message: String| ProviderError::Connect {
                target: self.engine().target(),
                message,
            };
            let path = self.engine().socket_path().map_err(connect)?;
            let (docker, raw) = crate::transport::connect(
                &path,
                BACKSTOP,
                bollard::API_DEFAULT_VERSION,
                Arc::clone(&self.connections),
            )
            .map_err(|e| {
                connect(format!(
                    "{e} (is the Docker engine running? scripts/docker-engine.sh starts one)"
                ))
            })?;
            self.count();
            let docker = docker.negotiate_version().await.map_err(|e| {
                connect(format!(
                    "{e} (is the Docker engine running? scripts/docker-engine.sh starts one)"
                ))
            })?;
            tracing::debug!(target = %self.engine().target(), version = %docker.client_version(), "connected to Docker");
            Ok((docker, raw))
        };
        let call = calls::VERSION;
        tokio::time::timeout(
            self.timeouts.bound(&call),
            self.client.0.get_or_try_init(connect),
        )
        .await
        .unwrap_or_else(|_| Err(self.timed_out(&call, address, "with the engine")))
    }

    /// The error of a call that got no answer in time: the engine, the call, its
    /// object and its bound, and what to do.
    fn timed_out(&self, call: &Call, address: &Address, object: &str) -> ProviderError {
        let target = self.engine().target();
        let engine = if address.as_str() == target {
            "the Docker engine".to_string()
        } else {
            format!("the Docker engine at {target}")
        };
        let what = if object.is_empty() {
            call.doing.to_string()
        } else {
            format!("{} {object}", call.doing)
        };
        let answered = match call.rule {
            Rule::Progress => "stalled",
            _ => "got no answer",
        };
        let mut message = format!(
            "{what}: {engine} {answered} {}. It accepted the request, so it is hung or \
             overloaded: check it on its host (`docker info`; restart the engine if that \
             hangs too), or allow more time with {TIMEOUT_ENV} (e.g. {TIMEOUT_ENV}=2m).",
            self.timeouts.explain(call)
        );
        if call.changes {
            message.push_str(
                " The call may still take effect on the engine: the next plan reads what \
                 it did.",
            );
        }
        ProviderError::Operation {
            address: address.clone(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_from_the_short_one() {
        let t = Timeouts::new(Duration::from_secs(30));
        assert_eq!(t.bound(&calls::LIST), Duration::from_secs(30));
        assert_eq!(t.bound(&calls::REMOVE), Duration::from_secs(120));
        assert_eq!(t.bound(&calls::PULL), Duration::from_secs(120));
        assert_eq!(
            t.bound(&calls::STOP.waiting(Duration::from_secs(3))),
            Duration::from_secs(33)
        );
        assert_eq!(
            t.explain(&calls::STOP.waiting(Duration::from_secs(90))),
            "within 2m (the 1m30s the engine waits before it kills the process, then \
             TERRACE_DOCKER_TIMEOUT 30s)"
        );
        assert_eq!(
            Timeouts::new(Duration::ZERO).quick(),
            Duration::from_millis(1)
        );
    }

    #[tokio::test]
    async fn a_stream_that_moves_is_not_cut_and_one_that_stalls_is() {
        // Real time, with a wide margin: a byte every 100 ms against a bound of 1 s.
        let idle = Duration::from_secs(1);
        let p = Progress::new();
        let moving = {
            let p = p.clone();
            async move {
                for _ in 0..25 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    p.touch();
                }
            }
        };
        let started = Instant::now();
        assert_eq!(unless_stalled(moving, &p, idle).await, Some(()));
        assert!(started.elapsed() >= Duration::from_millis(2_500));
        let p = Progress::new();
        let started = Instant::now();
        let stalled = tokio::time::sleep(Duration::from_secs(3_600));
        assert_eq!(unless_stalled(stalled, &p, idle).await, None);
        assert!(started.elapsed() >= idle);
    }
}
