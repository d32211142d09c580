//! SSH masters that outlive a run, the way users' `ControlPersist` works, so that quick
//! successive runs skip the connection setup (key exchange, authentication: most of an
//! SSH plan's extra cost).
//!
//! - The control socket lives in a per-user private directory (0700, checked: owned by
//!   this user, no access for anyone else, not a symbolic link), named by a hash of every
//!   setting that decides what the connection is (user, address, port, identity file,
//!   known_hosts file, host key policy, idle time), so a run with another configuration
//!   never uses a master it should not.
//! - The master is ssh's own, started with `ControlPersist=<idle>s`: ssh ends it after
//!   that long without clients, so a crashed or killed terrace cannot leave it running
//!   for ever. While a run uses it, the run holds a mux client connection to it (see
//!   `hold_master` in `session.rs`), so it never expires under a run.
//! - One run at a time uses a given master: a run takes an exclusive `flock` lease on
//!   `<hash>.lock` for as long as it uses the host (released by the kernel if it dies).
//!   A concurrent run finds the lease taken and opens a master of its own, for itself
//!   only, as before: concurrent runs never share channels (sshd's `MaxSessions`).
//! - A run that ends cleanly closes its forwards and empties the lease file; one that was
//!   killed leaves its pid there, so the next run knows the master may still hold the
//!   killed run's forwards and replaces it with a fresh one (`ssh -O exit`).
//! - A socket that no longer answers (its master ended) is removed before a new master
//!   is started in its place.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssh::Session;
use sha2::{Digest, Sha256};

use crate::session::{HostConfig, HostKeyCheck, ALIVE_INTERVAL, CONNECT_TIMEOUT, LOGIN_TIMEOUT};

/// How long a master outlives its last run unless `TERRACE_SSH_PERSIST` says otherwise.
pub const DEFAULT_PERSIST: Duration = Duration::from_secs(60);
/// The environment variable that sets how long masters outlive their last run: seconds
/// (`60`, `60s`, `2m`); `0` turns reuse off (every run opens its own master and ends it).
pub const PERSIST_ENV: &str = "TERRACE_SSH_PERSIST";
/// Is a master that exists still answering? A live master answers in milliseconds.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// How long masters outlive their last run, from [`PERSIST_ENV`] (default
/// [`DEFAULT_PERSIST`]; a value that cannot be read also gives the default, with a
/// warning in the log). Zero: no reuse.
pub fn persist_from_env() -> Duration {
    let Ok(text) = std::env::var(PERSIST_ENV) else {
        return DEFAULT_PERSIST;
    };
    parse_persist(&text).unwrap_or_else(|| {
        tracing::warn!(value = %text, "{PERSIST_ENV} is not a duration such as 60 or 2m; using the default");
        DEFAULT_PERSIST
    })
}

fn parse_persist(text: &str) -> Option<Duration> {
    terrace_provider::duration::parse_duration(text).ok()
}

/// The per-user directory of persistent masters: `$XDG_RUNTIME_DIR/terrace-ssh` when
/// that is set (a per-user tmpfs cleared at logout), else `<tmp>/terrace-ssh-<uid>`.
pub(crate) fn default_dir() -> std::io::Result<PathBuf> {
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        if run.is_absolute() && run.is_dir() {
            return Ok(run.join("terrace-ssh"));
        }
    }
    let uid = std::fs::metadata("/proc/self")?.uid();
    Ok(std::env::temp_dir().join(format!("terrace-ssh-{uid}")))
}

/// Creates `dir` (0700) or checks that the existing one is private: a directory, not a
/// link, owned by this user, closed to everyone else. Whoever can reach a control socket
/// uses the connection.
fn ensure_private(dir: &Path) -> std::io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = std::fs::symlink_metadata(dir)?;
    let me = std::fs::metadata("/proc/self")?.uid();
    if !m.is_dir() || m.uid() != me || m.permissions().mode() & 0o077 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a private directory of this user (0700)",
            dir.display()
        )));
    }
    Ok(())
}

/// The name of the master for `cfg`: a hash of everything that decides which
/// connection it is, so no other configuration reuses it.
fn key(cfg: &HostConfig, idle: Duration) -> String {
    let mut h = Sha256::new();
    let path = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .map(|p| p.into_os_string().into_encoded_bytes())
            .unwrap_or_default()
    };
    let check = match cfg.host_key_check {
        HostKeyCheck::Strict => "strict",
        HostKeyCheck::AcceptNew => "accept-new",
    };
    for part in [
        b"terrace-ssh-1".to_vec(),
        cfg.user.as_bytes().to_vec(),
        cfg.address.as_bytes().to_vec(),
        cfg.port.to_string().into_bytes(),
        path(&cfg.identity_file),
        path(&cfg.known_hosts),
        check.as_bytes().to_vec(),
        idle.as_secs().to_string().into_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(&part);
    }
    h.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// This run's exclusive use of one persistent master. Dropping it (or the process
/// dying) releases it; [`Lease::release`] also records the clean end.
#[derive(Debug)]
pub(crate) struct Lease {
    file: File,
    /// The master's control socket.
    pub(crate) ctl: PathBuf,
    /// ssh's log of the master (why it could not connect).
    log: PathBuf,
    /// The previous holder died without releasing: the master may still hold its
    /// forwards.
    dirty: bool,
}

impl Lease {
    /// Takes the lease of `cfg`'s master in `dir`. `None` when another run holds it.
    pub(crate) fn take(
        dir: &Path,
        cfg: &HostConfig,
        idle: Duration,
    ) -> std::io::Result<Option<Self>> {
        ensure_private(dir)?;
        let name = key(cfg, idle);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(dir.join(format!("{name}.lock")))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let mut previous = String::new();
        file.read_to_string(&mut previous)?;
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.sync_data()?;
        Ok(Some(Lease {
            file,
            ctl: dir.join(&name),
            log: dir.join(format!("{name}.log")),
            dirty: !previous.trim().is_empty(),
        }))
    }

    /// The run is done with the master (its forwards are closed): the next run may
    /// reuse it as it is.
    pub(crate) fn release(self) {
        let _ = self.file.set_len(0);
        // The lock goes with the file.
    }

    /// The master, reused if it answers (and no killed run may have left forwards in
    /// it), else started afresh. Errors are worded like the other connection errors.
    pub(crate) async fn attach(
        &mut self,
        cfg: &HostConfig,
        idle: Duration,
    ) -> Result<Session, String> {
        if self.ctl.exists() {
            let old = Session::resume_mux(self.ctl.clone().into_boxed_path(), None);
            let alive = matches!(
                tokio::time::timeout(CHECK_TIMEOUT, old.check()).await,
                Ok(Ok(()))
            );
            if alive && !self.dirty {
                tracing::debug!(target = %cfg.target(), "reusing the ssh master");
                return Ok(old);
            }
            if alive {
                // A killed run may have left forwards in it: end it, start afresh.
                tracing::debug!(target = %cfg.target(), "replacing the master a killed run used");
                let _ = tokio::time::timeout(
                    CHECK_TIMEOUT,
                    tokio::process::Command::new("ssh")
                        .arg("-S")
                        .arg(&self.ctl)
                        .args(["-O", "exit", "terrace"])
                        .stdin(std::process::Stdio::null())
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .kill_on_drop(true)
                        .status(),
                )
                .await;
            }
            // Stale (its master ended) or just ended: ssh will not bind over it.
            let _ = std::fs::remove_file(&self.ctl);
        }
        self.dirty = false;
        self.launch(cfg, idle).await?;
        Ok(Session::resume_mux(
            self.ctl.clone().into_boxed_path(),
            None,
        ))
    }

    /// Starts the master: ssh's own background process (`-f` after login), ending by
    /// itself after `idle` without clients.
    async fn launch(&self, cfg: &HostConfig, idle: Duration) -> Result<(), String> {
        let _ = std::fs::remove_file(&self.log);
        let mut ssh = tokio::process::Command::new("ssh");
        ssh.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .arg("-E")
            .arg(&self.log)
            .arg("-S")
            .arg(&self.ctl)
            .args(["-M", "-f", "-N"])
            .arg("-o")
            .arg(format!("ControlPersist={}s", idle.as_secs().max(1)))
            .args(["-o", "BatchMode=yes"])
            .arg("-o")
            .arg(match cfg.host_key_check {
                HostKeyCheck::Strict => "StrictHostKeyChecking=yes",
                HostKeyCheck::AcceptNew => "StrictHostKeyChecking=accept-new",
            })
            .arg("-o")
            .arg(format!("ConnectTimeout={}", CONNECT_TIMEOUT.as_secs()))
            .arg("-o")
            .arg(format!("ServerAliveInterval={}", ALIVE_INTERVAL.as_secs()))
            .arg("-p")
            .arg(cfg.port.to_string())
            .arg("-l")
            .arg(&cfg.user);
        if let Some(k) = &cfg.identity_file {
            // Only that key, as the per-run master does.
            ssh.args(["-o", "IdentitiesOnly=yes"]).arg("-i").arg(k);
        }
        if let Some(k) = &cfg.known_hosts {
            let mut option = std::ffi::OsString::from("UserKnownHostsFile=");
            option.push(k);
            ssh.arg("-o").arg(option);
        }
        // `--` keeps an address from ever being read as an option.
        ssh.arg("--").arg(&cfg.address);
        let status = tokio::time::timeout(LOGIN_TIMEOUT, ssh.status())
            .await
            .map_err(|_| {
                format!(
                    "no answer within {}s (the host accepts connections but does not \
                     complete the SSH login)",
                    LOGIN_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| format!("cannot run ssh: {e}"))?;
        if !status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            return Err(crate::session::classify_ssh_message(&log));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HostConfig {
        HostConfig {
            name: "web1".into(),
            address: "127.0.0.1".into(),
            port: 2222,
            user: "deploy".into(),
            identity_file: Some("/k/id".into()),
            known_hosts: None,
            host_key_check: HostKeyCheck::Strict,
            become_root: true,
        }
    }

    #[test]
    fn a_master_is_named_by_every_setting_that_makes_the_connection() {
        let base = key(&cfg(), DEFAULT_PERSIST);
        assert_eq!(base, key(&cfg(), DEFAULT_PERSIST));
        assert_eq!(base.len(), 20);
        let mut other = cfg();
        other.name = "renamed".into();
        other.become_root = false;
        assert_eq!(
            base,
            key(&other, DEFAULT_PERSIST),
            "not connection settings"
        );
        let variants: Vec<HostConfig> = vec![
            HostConfig {
                user: "root".into(),
                ..cfg()
            },
            HostConfig {
                port: 2223,
                ..cfg()
            },
            HostConfig {
                address: "127.0.0.2".into(),
                ..cfg()
            },
            HostConfig {
                identity_file: Some("/k/other".into()),
                ..cfg()
            },
            HostConfig {
                known_hosts: Some("/k/kh".into()),
                ..cfg()
            },
            HostConfig {
                host_key_check: HostKeyCheck::AcceptNew,
                ..cfg()
            },
        ];
        for v in variants {
            assert_ne!(base, key(&v, DEFAULT_PERSIST), "{v:?}");
        }
        assert_ne!(base, key(&cfg(), Duration::from_secs(5)));
    }

    #[test]
    fn persist_durations() {
        assert_eq!(parse_persist("60"), Some(Duration::from_secs(60)));
        assert_eq!(parse_persist("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_persist(" 5s "), Some(Duration::from_secs(5)));
        assert_eq!(parse_persist("0"), Some(Duration::ZERO));
        assert_eq!(parse_persist("soon"), None);
        assert_eq!(parse_persist("-1"), None);
    }

    #[test]
    fn a_shared_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("masters");
        ensure_private(&dir).unwrap();
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(ensure_private(&dir).is_err());
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(ensure_private(&link).is_err());
    }

    #[test]
    fn one_run_at_a_time_holds_a_master_and_a_killed_holder_is_noticed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("m");
        let first = Lease::take(&dir, &cfg(), DEFAULT_PERSIST).unwrap().unwrap();
        assert!(!first.dirty);
        assert!(Lease::take(&dir, &cfg(), DEFAULT_PERSIST)
            .unwrap()
            .is_none());
        // Dropped without release: as if the process died.
        drop(first);
        let second = Lease::take(&dir, &cfg(), DEFAULT_PERSIST).unwrap().unwrap();
        assert!(second.dirty, "the previous holder did not end cleanly");
        second.release();
        let third = Lease::take(&dir, &cfg(), DEFAULT_PERSIST).unwrap().unwrap();
        assert!(!third.dirty);
    }
}
