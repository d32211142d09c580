//! One multiplexed SSH connection per host, opened lazily and shared by every task.
//!
//! Every remote command is the same fixed wrapper (see [`crate::script`]); the script
//! itself and any data travel on stdin, so nothing sensitive is ever visible in a
//! process list on either machine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use terrace_provider::ProviderError;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};

use crate::forward::Forwards;
use crate::script;

/// How strictly the server's host key is checked against `known_hosts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyCheck {
    /// The key must already be in `known_hosts` and match: anything else is refused.
    #[default]
    Strict,
    /// Unknown hosts are added on first contact (trust on first use); a *changed* key is
    /// still refused.
    AcceptNew,
}

/// How to reach one host.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// The host's name in the configuration (`web1`), used in every message.
    pub name: String,
    /// Address or DNS name to connect to.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private key to log in with; when unset, ssh's own defaults and agent apply.
    pub identity_file: Option<PathBuf>,
    /// known_hosts file to check the host key against; when unset, ssh's defaults.
    pub known_hosts: Option<PathBuf>,
    /// Host key policy.
    pub host_key_check: HostKeyCheck,
    /// Run resources that need root (packages, services, firewall, files) through
    /// `sudo -n` when `user` is not root.
    pub become_root: bool,
}

impl HostConfig {
    /// `host web1 (deploy@127.0.0.1:2222)`: how messages name the host.
    pub fn target(&self) -> String {
        format!(
            "host {} ({}@{}:{})",
            self.name, self.user, self.address, self.port
        )
    }

    /// True if commands needing root must go through sudo.
    pub(crate) fn sudo(&self) -> bool {
        self.become_root && self.user != "root"
    }
}

/// sshd's default `MaxSessions 10` caps concurrent channels on one connection; beyond
/// it the mux master refuses new sessions. Six leaves room for port forwards.
pub(crate) const MAX_CONCURRENT: usize = 6;
/// How often a refused channel is retried (with growing pauses) before giving up.
const OPEN_RETRIES: u32 = 8;
/// TCP connect and SSH banner: a host that accepts connections and never answers
/// fails after this long (ssh's `ConnectTimeout` covers the banner exchange).
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole login (key exchange, authentication), in case a host stalls after its
/// banner, where ssh has no timeout of its own.
pub(crate) const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive probes on the connection: a host that stops answering mid-command
/// (powered off, frozen, cut off) is given up after three missed probes, so about
/// 15 s, however long a command may legitimately run.
pub(crate) const ALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// How long a master of one run's own (reuse turned off, or another run holding the
/// shared one: see [`crate::persist`]) outlives it. terrace holds a connection to the
/// master's control socket for as long as it runs, so this only counts once terrace is
/// gone, even after `kill -9`: then the master, and every forward it holds, ends within
/// this many seconds.
pub(crate) const MASTER_LINGER_SECS: usize = 5;
/// A probe (observe) that takes longer than this has hung (a guard that never ends).
const PROBE_TIMEOUT: Duration = Duration::from_secs(300);
/// One apply step (a package install, a user command) that takes longer has hung.
const STEP_TIMEOUT: Duration = Duration::from_secs(1800);
/// Local control-socket requests: opening or closing a forward, a liveness check.
pub(crate) const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);

/// The output of one remote command.
#[derive(Debug, Clone)]
pub(crate) struct RunOutput {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl RunOutput {
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// One host reached over SSH: a single multiplexed connection (openssh native-mux),
/// opened on first use and shared by every provider and forward that uses the host.
/// Safe to share between tasks; per-host concurrency is bounded so that sshd's
/// `MaxSessions` is never exceeded.
pub struct SshHost {
    pub(crate) cfg: HostConfig,
    session: Mutex<Option<Arc<Session>>>,
    /// A connection to the master's control socket, held (idle) while this host is
    /// open: it keeps the master from expiring (see [`MASTER_LINGER_SECS`]) and is
    /// closed by the kernel if terrace dies, whatever the signal.
    hold: Mutex<Option<tokio::net::UnixStream>>,
    permits: Semaphore,
    /// How long a master outlives the run (zero: a master of this run's own, ended with
    /// it), and where such masters live.
    persist: Duration,
    persist_dir: Option<std::path::PathBuf>,
    /// This run's use of a persistent master, while it has one.
    lease: Mutex<Option<crate::persist::Lease>>,
    commands: AtomicU64,
    pub(crate) forwards: Forwards,
    /// Time limits of a probe and of an apply step.
    probe_limit: Duration,
    step_limit: Duration,
}

impl std::fmt::Debug for SshHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshHost")
            .field("target", &self.cfg.target())
            .finish_non_exhaustive()
    }
}

impl SshHost {
    /// A host; does not connect yet.
    pub fn new(cfg: HostConfig) -> Self {
        SshHost {
            cfg,
            session: Mutex::new(None),
            hold: Mutex::new(None),
            permits: Semaphore::new(MAX_CONCURRENT),
            persist: crate::persist::persist_from_env(),
            persist_dir: None,
            lease: Mutex::new(None),
            commands: AtomicU64::new(0),
            forwards: Forwards::default(),
            probe_limit: PROBE_TIMEOUT,
            step_limit: STEP_TIMEOUT,
        }
    }

    /// The same host with other time limits for a probe (observe: 5 minutes unless
    /// set) and for one apply step (30 minutes): a remote command that runs longer is
    /// abandoned with an error naming the host, so that nothing waits forever on it.
    pub fn with_time_limits(mut self, probe: Duration, step: Duration) -> Self {
        self.probe_limit = probe;
        self.step_limit = step;
        self
    }

    /// The same host with another reuse policy: masters outlive a run by `idle` (zero:
    /// every run opens its own and ends it; the default is [`crate::DEFAULT_PERSIST`] or
    /// what [`crate::PERSIST_ENV`] says), kept in `dir` (the default: a per-user
    /// directory, `$XDG_RUNTIME_DIR/terrace-ssh` or `<tmp>/terrace-ssh-<uid>`).
    pub fn with_persist(mut self, idle: Duration, dir: Option<std::path::PathBuf>) -> Self {
        self.persist = idle;
        self.persist_dir = dir;
        self
    }

    /// The time limit of one probe.
    pub(crate) fn probe_limit(&self) -> Duration {
        self.probe_limit
    }

    /// The host's configuration.
    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }

    /// How many remote commands have been started on this host. Exists so that tests
    /// can prove that observe is batched.
    pub fn commands_run(&self) -> u64 {
        self.commands.load(Ordering::Relaxed)
    }

    /// Closes every forward (removing local socket files) and the connection. The next
    /// use connects again.
    ///
    /// A persistent master is left running for the next run: ssh ends it after its idle
    /// time.
    pub async fn close(&self) {
        self.forwards.close_all(self).await;
        let taken = self.session.lock().await.take();
        if let Some(lease) = self.lease.lock().await.take() {
            drop(taken);
            self.hold.lock().await.take();
            lease.release();
            return;
        }
        if let Some(session) = taken {
            match Arc::try_unwrap(session) {
                Ok(s) => match tokio::time::timeout(CONTROL_TIMEOUT, s.close()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::debug!(target = %self.cfg.target(), error = %e, "close")
                    }
                    Err(_) => tracing::debug!(target = %self.cfg.target(), "close timed out"),
                },
                // Still used by a running command: its Drop shuts the master down.
                Err(shared) => drop(shared),
            }
        }
        // Released last: without it the master ends by itself shortly.
        self.hold.lock().await.take();
    }

    pub(crate) fn connect_error(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Connect {
            target: self.cfg.target(),
            message: message.into(),
        }
    }

    /// The shared session, connecting if needed. A failed attempt is not cached: the
    /// next call tries again.
    pub(crate) async fn session(&self) -> Result<Arc<Session>, ProviderError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let session = match self.persistent().await? {
            Some(s) => s,
            None => self.own_master().await?,
        };
        let hold = match hold_master(session.control_socket()).await {
            Ok(h) => h,
            Err(e) => {
                // A master of this run's own is ended; a persistent one ends by itself.
                if self.lease.lock().await.is_none() {
                    let _ = tokio::time::timeout(CONTROL_TIMEOUT, session.close()).await;
                }
                return Err(
                    self.connect_error(format!("cannot attach to the ssh control socket: {e}"))
                );
            }
        };
        *self.hold.lock().await = Some(hold);
        let session = Arc::new(session);
        *slot = Some(session.clone());
        tracing::debug!(target = %self.cfg.target(), "connected");
        Ok(session)
    }

    /// The persistent master for this host (reused or started), or None when reuse is
    /// off, the per-user directory is not usable, or another run holds the master.
    async fn persistent(&self) -> Result<Option<Session>, ProviderError> {
        if self.persist.is_zero() {
            return Ok(None);
        }
        let mut lease = self.lease.lock().await;
        if lease.is_none() {
            let dir = match &self.persist_dir {
                Some(d) => Ok(d.clone()),
                None => crate::persist::default_dir(),
            };
            let taken = dir.and_then(|d| crate::persist::Lease::take(&d, &self.cfg, self.persist));
            match taken {
                Ok(Some(l)) => *lease = Some(l),
                Ok(None) => {
                    tracing::debug!(target = %self.cfg.target(), "another run uses the persistent master");
                    return Ok(None);
                }
                Err(e) => {
                    tracing::debug!(target = %self.cfg.target(), error = %e, "no persistent master");
                    return Ok(None);
                }
            }
        }
        let l = lease.as_mut().expect("just taken");
        l.attach(&self.cfg, self.persist)
            .await
            .map(Some)
            .map_err(|e| self.connect_error(e))
    }

    /// A master of this run's own, in the host's private directory, ended with the run.
    async fn own_master(&self) -> Result<Session, ProviderError> {
        let c = &self.cfg;
        let mut b = SessionBuilder::default();
        let linger = std::num::NonZeroUsize::new(MASTER_LINGER_SECS).expect("not zero");
        b.user(c.user.clone())
            .port(c.port)
            .connect_timeout(CONNECT_TIMEOUT)
            .server_alive_interval(ALIVE_INTERVAL)
            .control_persist(ControlPersist::IdleFor(linger))
            // The control socket lives in the host's private (0700) temp directory:
            // the default (the current directory) may be read-only or too long a
            // path for a socket, and whoever reaches the socket uses the connection.
            .control_directory(self.forwards.private_dir().map_err(|e| {
                self.connect_error(format!("cannot create a private directory: {e}"))
            })?)
            .known_hosts_check(match c.host_key_check {
                HostKeyCheck::Strict => KnownHosts::Strict,
                HostKeyCheck::AcceptNew => KnownHosts::Add,
            });
        if let Some(k) = &c.identity_file {
            b.keyfile(k);
        }
        if let Some(k) = &c.known_hosts {
            b.user_known_hosts_file(k);
        }
        let session = tokio::time::timeout(LOGIN_TIMEOUT, b.connect_mux(&c.address))
            .await
            .map_err(|_| {
                self.connect_error(format!(
                    "no answer within {}s (the host accepts connections but does not \
                     complete the SSH login)",
                    LOGIN_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| self.connect_error(describe_connect_error(&e)))?;
        Ok(session)
    }

    /// The session if one is open, without connecting.
    pub(crate) async fn existing_session(&self) -> Option<Arc<Session>> {
        self.session.lock().await.clone()
    }

    /// Forgets a session whose master died, so that the next call reconnects.
    async fn reset(&self, dead: &Arc<Session>) {
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, dead)) {
            *slot = None;
            self.hold.lock().await.take();
        }
    }

    /// After a failed or timed-out command: if the master no longer answers, forget it
    /// (the next command reconnects) and return true.
    async fn forget_if_dead(&self, session: &Arc<Session>) -> bool {
        let alive = matches!(
            tokio::time::timeout(CONTROL_TIMEOUT, session.check()).await,
            Ok(Ok(()))
        );
        if !alive {
            self.reset(session).await;
        }
        !alive
    }

    /// Runs a shell script on the host (as root through `sudo -n` when `root` and the
    /// login user is not root), giving up after the step time limit. The script goes over
    /// stdin: the command line is always the fixed [`script::wrapper`].
    pub(crate) async fn run(&self, body: &str, root: bool) -> Result<RunOutput, ProviderError> {
        self.run_for(body, root, self.step_limit).await
    }

    /// [`SshHost::run`] with its own time limit.
    pub(crate) async fn run_for(
        &self,
        body: &str,
        root: bool,
        limit: Duration,
    ) -> Result<RunOutput, ProviderError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| self.connect_error("connection closed"))?;
        let wrapper = script::wrapper(root && self.cfg.sudo(), limit.as_secs().max(1));
        let too_long = || {
            self.connect_error(format!(
                "the remote command did not finish within {}s",
                limit.as_secs()
            ))
        };
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            let session = self.session().await?;
            self.commands.fetch_add(1, Ordering::Relaxed);
            // The host stops the script at `limit`; this side waits a little longer,
            // for a host that no longer answers at all.
            let res = tokio::time::timeout(
                limit + CONTROL_TIMEOUT,
                self.run_once(&session, &wrapper, body),
            )
            .await;
            let Ok(res) = res else {
                self.forget_if_dead(&session).await;
                return Err(too_long());
            };
            match res {
                Ok(out) if out.code == Some(script::TIMED_OUT) && started.elapsed() >= limit => {
                    return Err(too_long())
                }
                Ok(out) => return self.check_sudo(out),
                Err(e) if is_refused(&e) && attempt < OPEN_RETRIES => {
                    // Another user of the same connection (a forward) holds channels.
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(e) => {
                    if self.forget_if_dead(&session).await {
                        // The command was under way: say that its outcome is unknown.
                        return Err(self.connect_error(format!(
                            "the connection to the host was lost while a command ran \
                             (no answer to keep-alives, or the host went down); whether \
                             it completed is unknown: {e}"
                        )));
                    }
                    return Err(self.connect_error(format!("remote command failed: {e}")));
                }
            }
        }
    }

    async fn run_once(
        &self,
        session: &Session,
        wrapper: &str,
        body: &str,
    ) -> Result<RunOutput, openssh::Error> {
        let mut child = session
            .raw_command(wrapper)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await?;
        if let Some(mut stdin) = child.stdin().take() {
            stdin
                .write_all(body.as_bytes())
                .await
                .map_err(openssh::Error::ChildIo)?;
            stdin.shutdown().await.map_err(openssh::Error::ChildIo)?;
        }
        match child.wait_with_output().await {
            Ok(o) => Ok(RunOutput {
                code: o.status.code(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            }),
            // Exit 127 ("command not found") is reported as an error by native-mux.
            Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(RunOutput {
                    code: Some(127),
                    stdout: String::new(),
                    stderr: "command not found (exit 127)".into(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// `sudo -n` fails instead of prompting; say why in words an operator acts on.
    fn check_sudo(&self, out: RunOutput) -> Result<RunOutput, ProviderError> {
        if !out.success() && out.stderr.starts_with("sudo:") {
            let why = if out.stderr.contains("password is required") {
                "sudo needs a password".to_string()
            } else {
                out.stderr.trim().to_string()
            };
            return Err(self.connect_error(format!(
                "cannot become root: {why} (become_root needs passwordless sudo for {})",
                self.cfg.user
            )));
        }
        Ok(out)
    }
}

/// Opens an idle client connection to the master's control socket and completes the
/// mux hello (the master's `MUX_MSG_HELLO`, version 4, answered in kind), so that the
/// master counts a live client for as long as the connection is open.
async fn hold_master(ctl: &std::path::Path) -> std::io::Result<tokio::net::UnixStream> {
    use tokio::io::AsyncReadExt;
    const HELLO: [u8; 12] = [0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 4];
    let attach = async {
        let mut s = tokio::net::UnixStream::connect(ctl).await?;
        let mut theirs = [0u8; 12];
        s.read_exact(&mut theirs).await?;
        if theirs[..8] != HELLO[..8] {
            return Err(std::io::Error::other("unexpected mux hello"));
        }
        s.write_all(&HELLO).await?;
        Ok(s)
    };
    tokio::time::timeout(CONTROL_TIMEOUT, attach)
        .await
        .map_err(|_| std::io::Error::other("timed out"))?
}

/// "Session open refused by peer": sshd's MaxSessions is exhausted for the moment.
fn is_refused(e: &openssh::Error) -> bool {
    let mut text = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        text.push_str(&s.to_string());
        src = s.source();
    }
    text.contains("refused by peer") || format!("{e:?}").contains("refused by peer")
}

/// Turns ssh's stderr into one clear sentence.
pub(crate) fn describe_connect_error(e: &openssh::Error) -> String {
    let detail = match e {
        openssh::Error::Connect(io) | openssh::Error::Master(io) => io.to_string(),
        other => other.to_string(),
    };
    classify_ssh_message(&detail)
}

pub(crate) fn classify_ssh_message(detail: &str) -> String {
    let last = detail
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    if detail.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        "host key changed: the server's key does not match known_hosts; refusing to connect \
         (someone may be intercepting the connection, or the host was reinstalled)"
            .into()
    } else if detail.contains("Host key verification failed") {
        "host key verification failed: the host's key is not in known_hosts (strict checking)"
            .into()
    } else if detail.contains("Connection refused") {
        "connection refused".into()
    } else if detail.contains("Permission denied") {
        format!("key refused: {last}")
    } else if detail.contains("timed out") {
        "connection timed out".into()
    } else if last.is_empty() {
        detail.to_string()
    } else {
        last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_messages_become_one_clear_sentence() {
        let changed = "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
                       Host key for [127.0.0.1]:2222 has changed\nHost key verification failed.";
        assert!(classify_ssh_message(changed).starts_with("host key changed"));
        assert_eq!(
            classify_ssh_message("connect to host 127.0.0.1 port 2299: Connection refused"),
            "connection refused"
        );
        assert!(
            classify_ssh_message("terrace@x: Permission denied (publickey).")
                .starts_with("key refused")
        );
    }

    #[test]
    fn a_sudo_password_prompt_is_a_clear_error() {
        let host = SshHost::new(HostConfig {
            name: "web1".into(),
            address: "127.0.0.1".into(),
            port: 2222,
            user: "deploy".into(),
            identity_file: None,
            known_hosts: None,
            host_key_check: HostKeyCheck::Strict,
            become_root: true,
        });
        let err = host
            .check_sudo(RunOutput {
                code: Some(1),
                stdout: String::new(),
                stderr: "sudo: a password is required\n".into(),
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("host web1") && err.contains("sudo needs a password"),
            "{err}"
        );
    }

    #[test]
    fn target_names_host_user_and_endpoint() {
        let cfg = HostConfig {
            name: "web1".into(),
            address: "127.0.0.1".into(),
            port: 2222,
            user: "deploy".into(),
            identity_file: None,
            known_hosts: None,
            host_key_check: HostKeyCheck::Strict,
            become_root: true,
        };
        assert_eq!(cfg.target(), "host web1 (deploy@127.0.0.1:2222)");
        assert!(cfg.sudo());
    }
}
