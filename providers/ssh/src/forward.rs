//! Local endpoints forwarded to a host over its SSH connection, so that other providers
//! (Docker over the remote `docker.sock`, SQL behind the host's loopback) reach remote
//! services without exposing them on the network.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use openssh::{ForwardType, Socket};
use terrace_provider::ProviderError;
use tokio::sync::Mutex;

use crate::session::{SshHost, CONTROL_TIMEOUT};

#[derive(Debug, Clone)]
enum Forward {
    Unix {
        local: PathBuf,
        remote: String,
    },
    Tcp {
        local: SocketAddr,
        host: String,
        port: u16,
    },
    /// A local unix socket forwarded to a TCP port on the host's side.
    SocketToTcp {
        local: PathBuf,
        host: String,
        port: u16,
    },
}

/// The forwards open on one host. Local unix sockets (and the ssh control socket) live
/// in a private (0700) temp directory that is removed with this value, because ssh
/// leaves the socket files behind.
#[derive(Debug, Default)]
pub(crate) struct Forwards {
    open: Mutex<Vec<Forward>>,
    dir: std::sync::OnceLock<tempfile::TempDir>,
    next: AtomicU64,
}

/// Private directories are named `terrace-fwd-<pid>-<random>` in the temp directory.
const DIR_PREFIX: &str = "terrace-fwd-";

/// Removes the private directories that killed runs left beside `ours`: those of this
/// user whose process is gone and in which no socket answers any more (ssh removes its
/// sockets when the master ends, a few seconds after terrace). A directory whose
/// socket still answers belongs to a live run, whatever its pid says.
fn remove_stale(ours: &Path) {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let (Some(tmp), Ok(me)) = (ours.parent(), std::fs::metadata(ours)) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return; // cannot tell a dead process from a live one here
    }
    let answers = |dir: &Path| {
        let mut todo = vec![(dir.to_path_buf(), 0)];
        while let Some((d, depth)) = todo.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let Ok(t) = e.file_type() else { continue };
                if t.is_socket() && std::os::unix::net::UnixStream::connect(e.path()).is_ok() {
                    return true;
                }
                if t.is_dir() && depth < 2 {
                    todo.push((e.path(), depth + 1));
                }
            }
        }
        false
    };
    for e in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let path = e.path();
        let mine =
            std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir() && m.uid() == me.uid());
        if !mine || pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        if !answers(&path) {
            tracing::debug!(dir = %path.display(), "removing what a killed run left");
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

impl Forwards {
    /// The host's private directory, created on first use. Only the owner may enter
    /// it: a socket inside is as good as the connection it forwards to.
    pub(crate) fn private_dir(&self) -> std::io::Result<&Path> {
        let dir = match self.dir.get() {
            Some(d) => d,
            None => {
                let d = tempfile::Builder::new()
                    .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir()?;
                remove_stale(d.path());
                // Another task may have won the race; either directory works.
                let _ = self.dir.set(d);
                self.dir.get().expect("just set")
            }
        };
        Ok(dir.path())
    }

    fn socket_path(&self) -> std::io::Result<PathBuf> {
        let dir = self.private_dir()?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        Ok(dir.join(format!("{n}.sock")))
    }

    /// Closes every forward and removes the local socket files.
    pub(crate) async fn close_all(&self, host: &SshHost) {
        let open = std::mem::take(&mut *self.open.lock().await);
        let session = host.existing_session().await;
        for f in open {
            if let Some(s) = &session {
                let res = match &f {
                    Forward::Unix { local, remote } => {
                        timed(s.close_port_forward(
                            ForwardType::Local,
                            Socket::from(local.as_path()),
                            Socket::from(PathBuf::from(remote)),
                        ))
                        .await
                    }
                    Forward::Tcp { local, host, port } => {
                        timed(s.close_port_forward(
                            ForwardType::Local,
                            Socket::from(*local),
                            Socket::new(host.as_str(), *port),
                        ))
                        .await
                    }
                    Forward::SocketToTcp { local, host, port } => {
                        timed(s.close_port_forward(
                            ForwardType::Local,
                            Socket::from(local.as_path()),
                            Socket::new(host.as_str(), *port),
                        ))
                        .await
                    }
                };
                if let Err(e) = res {
                    tracing::debug!(error = %e, "closing forward");
                }
            }
            if let Forward::Unix { local, .. } | Forward::SocketToTcp { local, .. } = &f {
                let _ = std::fs::remove_file(local);
            }
        }
    }
}

impl SshHost {
    /// Forwards a new local unix socket to `remote_socket` on the host (e.g.
    /// `/var/run/docker.sock`) and returns the local path. The socket file is removed
    /// by [`SshHost::close`] or when the host is dropped.
    pub async fn forward_unix(&self, remote_socket: &str) -> Result<PathBuf, ProviderError> {
        if !remote_socket.starts_with('/') {
            return Err(ProviderError::Invalid(format!(
                "{}: remote socket {remote_socket:?} must be an absolute path",
                self.cfg.target()
            )));
        }
        let local = self
            .forwards
            .socket_path()
            .map_err(|e| self.connect_error(format!("cannot create a local socket: {e}")))?;
        let session = self.session().await?;
        timed(session.request_port_forward(
            ForwardType::Local,
            Socket::from(local.as_path()),
            Socket::from(PathBuf::from(remote_socket)),
        ))
        .await
        .map_err(|e| self.connect_error(format!("cannot forward to {remote_socket}: {e}")))?;
        self.forwards.open.lock().await.push(Forward::Unix {
            local: local.clone(),
            remote: remote_socket.to_string(),
        });
        Ok(local)
    }

    /// Forwards a new local unix socket to `remote_host:remote_port` as seen from the
    /// host (typically `127.0.0.1:5432`) and returns its path: `file_name` inside a new
    /// directory of this host's private (0700) forward directory. Unlike a local TCP
    /// port, no other user of this machine can connect to it. PostgreSQL clients want
    /// the directory and a file named `.s.PGSQL.<port>`; MariaDB clients the file.
    pub async fn forward_tcp_to_socket(
        &self,
        remote_host: &str,
        remote_port: u16,
        file_name: &str,
    ) -> Result<PathBuf, ProviderError> {
        let dir = self
            .forwards
            .socket_path()
            .map_err(|e| self.connect_error(format!("cannot create a local socket: {e}")))?
            .with_extension("d");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| self.connect_error(format!("cannot create {}: {e}", dir.display())))?;
        let local = dir.join(file_name);
        let session = self.session().await?;
        timed(session.request_port_forward(
            ForwardType::Local,
            Socket::from(local.as_path()),
            Socket::new(remote_host, remote_port),
        ))
        .await
        .map_err(|e| {
            self.connect_error(format!(
                "cannot forward to {remote_host}:{remote_port}: {e}"
            ))
        })?;
        self.forwards.open.lock().await.push(Forward::SocketToTcp {
            local: local.clone(),
            host: remote_host.to_string(),
            port: remote_port,
        });
        Ok(local)
    }

    /// Forwards a new local TCP port on 127.0.0.1 to `remote_host:remote_port` as seen
    /// from the host (typically `127.0.0.1:5432`) and returns the local address.
    pub async fn forward_tcp(
        &self,
        remote_host: &str,
        remote_port: u16,
    ) -> Result<SocketAddr, ProviderError> {
        let session = self.session().await?;
        let mut last = String::new();
        // The mux protocol does not report a port it picked, so pick a free one here;
        // another process may take it in between, hence the retries.
        for _ in 0..5 {
            let local = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| self.connect_error(format!("no free local port: {e}")))?;
            match timed(session.request_port_forward(
                ForwardType::Local,
                Socket::from(local),
                Socket::new(remote_host, remote_port),
            ))
            .await
            {
                Ok(()) => {
                    self.forwards.open.lock().await.push(Forward::Tcp {
                        local,
                        host: remote_host.to_string(),
                        port: remote_port,
                    });
                    return Ok(local);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(self.connect_error(format!(
            "cannot forward to {remote_host}:{remote_port}: {last}"
        )))
    }
}

/// A control-socket request that cannot hang: a master that no longer answers fails it
/// after [`CONTROL_TIMEOUT`].
async fn timed<T>(
    req: impl std::future::Future<Output = Result<T, openssh::Error>>,
) -> Result<T, openssh::Error> {
    tokio::time::timeout(CONTROL_TIMEOUT, req)
        .await
        .unwrap_or_else(|_| {
            Err(openssh::Error::Master(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from ssh within {}s", CONTROL_TIMEOUT.as_secs()),
            )))
        })
}
