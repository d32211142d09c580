//! The HTTP client under bollard: one per engine, keeping its unix-socket connections
//! open between requests.
//!
//! bollard's own unix client turns connection pooling off (`pool_max_idle_per_host(0)`),
//! so every request opened a new connection: 1,007 of them for a no-change plan of 1,000
//! containers, each one a goroutine, an accept and, over an SSH forward, a new channel.
//! This client is bollard's, with pooling on; bollard still builds every request, so
//! only the connection handling differs. Each call's own bound is `timeouts.rs`'s.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bollard::{BollardRequest, ClientVersion, Docker};
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

/// A client for the engine at `socket` whose connections are reused, and counted in
/// `opened`. bollard applies `backstop` to every request until its answer begins
/// (whole seconds); the callers' own bounds are shorter.
pub(crate) fn connect(
    socket: &Path,
    backstop: Duration,
    version: &ClientVersion,
    opened: Arc<AtomicU64>,
) -> Result<Docker, bollard::errors::Error> {
    if !socket.exists() {
        return Err(bollard::errors::Error::SocketNotFoundError(
            socket.display().to_string(),
        ));
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
    Docker::connect_with_custom_transport(
        move |req: BollardRequest| {
            let client = Arc::clone(&client);
            async move {
                client
                    .request(req)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        },
        Some(format!("unix://{host}")),
        backstop.as_secs().max(1),
        version,
    )
}
