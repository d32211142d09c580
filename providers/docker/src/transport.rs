//! The HTTP client under bollard: one per engine, keeping its unix-socket connections
//! open between requests.
//!
//! bollard's own unix client turns connection pooling off (`pool_max_idle_per_host(0)`),
//! so every request opened a new connection: 1,007 of them for a no-change plan of 1,000
//! containers, each one a goroutine, an accept and, over an SSH forward, a new channel.
//! This client is bollard's, with pooling on; bollard still builds every request, so
//! only the connection handling differs, except for [`Raw`] GETs (a container's
//! inspect), whose answers terrace decodes itself. Each call's own bound is
//! `timeouts.rs`'s.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::errors::Error;
use bollard::{BollardRequest, ClientVersion, Docker};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::Response;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use hyperlocal::{UnixConnector, UnixStream};

/// How long an idle connection is kept: long enough for the gaps between the steps of
/// one command, short enough that an engine (or SSH forward) is not held open by a
/// provider that has nothing more to say.
const IDLE_S: u64 = 30;

/// [`UnixConnector`], counting the connections it opens.
#[derive(Clone)]
struct Counting {
    opened: Arc<AtomicU64>,
}

impl tower_service::Service<hyper::Uri> for Counting {
    type Response = UnixStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<UnixStream, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        UnixConnector.poll_ready(cx)
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        self.opened.fetch_add(1, Ordering::Relaxed);
        UnixConnector.call(uri)
    }
}

/// Sends one request over the pooled connections.
type Sender = Arc<
    dyn Fn(
            BollardRequest,
        ) -> Pin<Box<dyn Future<Output = Result<Response<Incoming>, Error>> + Send>>
        + Send
        + Sync,
>;

/// The pooled client without bollard's models: for the GETs whose answers terrace
/// decodes into types of its own (a container's inspect: see `inspect.rs` for why).
#[derive(Clone)]
pub(crate) struct Raw {
    send: Sender,
    /// The socket path, hex-encoded as the URI's host (see [`connect`]).
    host: String,
}

/// An error body of the engine's API.
#[derive(serde::Deserialize)]
struct ErrorMessage {
    message: String,
}

impl Raw {
    /// GETs `path` (under the API `version`) and decodes the JSON answer as `T`;
    /// an answer outside 2xx is the error bollard would report for it.
    pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        version: &ClientVersion,
        path: &str,
    ) -> Result<T, Error> {
        let uri = format!(
            "unix://{}/v{}.{}{path}",
            self.host, version.major_version, version.minor_version
        );
        let request = hyper::Request::get(uri)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(bollard::body_full(bytes::Bytes::new()))?;
        let response = (self.send)(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorMessage>(&body)
                .map(|m| m.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            return Err(Error::DockerResponseServerError {
                status_code: status.as_u16(),
                message,
            });
        }
        Ok(serde_json::from_slice(&body)?)
    }
}

/// A client for the engine at `socket` whose connections are reused, and counted in
/// `opened`, and the same connections for [`Raw`] requests. bollard applies
/// `backstop` to every request until its answer begins (whole seconds); the callers'
/// own bounds are shorter.
pub(crate) fn connect(
    socket: &Path,
    backstop: Duration,
    version: &ClientVersion,
    opened: Arc<AtomicU64>,
) -> Result<(Docker, Raw), Error> {
    if !socket.exists() {
        return Err(Error::SocketNotFoundError(socket.display().to_string()));
    }
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(IDLE_S))
        .build(Counting { opened });
    let client = Arc::new(client);
    // The socket path travels in the URI's host, hex-encoded, as hyperlocal (and
    // bollard's own unix client) expect: any byte of a path survives.
    let host: String = socket
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let send: Sender = Arc::new(move |req: BollardRequest| {
        let client = Arc::clone(&client);
        Box::pin(async move { client.request(req).await.map_err(Error::from) })
    });
    let raw = Raw {
        send: Arc::clone(&send),
        host: host.clone(),
    };
    let docker = Docker::connect_with_custom_transport(
        move |req: BollardRequest| send(req),
        Some(format!("unix://{host}")),
        backstop.as_secs().max(1),
        version,
    )?;
    Ok((docker, raw))
}
