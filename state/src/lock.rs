//! The state lock: an advisory `flock` on `<state>.lock`.
//!
//! `flock` rather than "create the file exclusively" because the kernel drops the lock
//! when its holder exits for any reason, so a crashed apply never leaves a lock that a
//! human must remove by hand. The lock file records who holds it only so that a refused
//! command can say so; the lock itself is the `flock`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::StateError;

/// Who holds the state lock, as written into the lock file while it is held.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    /// `user@hostname` of the holder.
    pub who: String,
    /// Process id of the holder.
    pub pid: u32,
    /// What the holder is doing, e.g. `apply`.
    pub operation: String,
    /// When the lock was taken.
    pub since: DateTime<Utc>,
    /// A random ID for this holding of the lock, which `terrace force-unlock` must be
    /// given, so that it cannot remove a lock taken since the user looked. Empty in lock
    /// files written before it existed.
    #[serde(default)]
    pub id: String,
}

impl LockInfo {
    /// Describes the current process performing `operation`.
    pub fn current(operation: &str) -> Self {
        LockInfo {
            who: format!("{}@{}", user_name(), host_name()),
            pid: std::process::id(),
            operation: operation.to_string(),
            since: Utc::now(),
            id: uuid::Uuid::new_v4().simple().to_string(),
        }
    }

    /// True when the holder is a process still running on this machine: its lock must
    /// never be forced (two commands would write the state at once).
    pub fn running_here(&self) -> bool {
        let same_host = self.who.rsplit_once('@').map(|(_, h)| h) == Some(host_name().as_str());
        same_host && Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// How long a refused `try_lock` is retried before the lock counts as held: long enough
/// to step over a `plan` that is only checking whether the lock is free
/// ([`probe`]), far shorter than any real holder.
const GRACE: Duration = Duration::from_millis(300);

/// Takes the lock on `path` (waiting at most [`GRACE`]) and records `info` in it.
pub(crate) fn acquire(path: &Path, info: &LockInfo) -> Result<File, StateError> {
    // No truncation at open: if someone else holds the lock, its details are what we
    // want to read back.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| StateError::io("open lock file", path, e))?;
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if started.elapsed() < GRACE => {
                std::thread::sleep(Duration::from_millis(25));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(StateError::Locked {
                    info: read_holder(path),
                    path: path.to_path_buf(),
                })
            }
            Err(TryLockError::Error(e)) => return Err(StateError::io("lock", path, e)),
        }
    }
    // From here on dropping `file` (on error) releases the lock.
    let mut json = serde_json::to_vec_pretty(info).expect("lock info serialises to JSON");
    json.push(b'\n');
    file.set_len(0)
        .and_then(|()| file.write_all(&json))
        .and_then(|()| file.sync_data())
        .map_err(|e| StateError::io("write lock file", path, e))?;
    Ok(file)
}

/// Who holds the lock on `path` right now, without taking it: `None` if nobody does,
/// `Some(None)` if someone does but left no details.
///
/// Takes a shared lock for an instant, which a holder's exclusive lock refuses; a
/// writer that tries to lock in that instant waits for it ([`GRACE`]).
pub(crate) fn probe(path: &Path) -> Result<Option<Option<LockInfo>>, StateError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StateError::io("open lock file", path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(None),
        Err(TryLockError::WouldBlock) => Ok(Some(read_holder(path))),
        Err(TryLockError::Error(e)) => Err(StateError::io("lock", path, e)),
    }
}

/// What `force-unlock` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForceUnlocked {
    /// Nobody held the lock; the details a killed holder left behind (if any) were
    /// cleared.
    WasFree(Option<LockInfo>),
    /// The lock file of this holder was removed.
    Removed(LockInfo),
}

/// Removes the lock on `path` held by the holder whose lock ID is `id`. See
/// [`crate::LocalBackend::force_unlock`].
pub(crate) fn force_unlock(path: &Path, id: &str) -> Result<ForceUnlocked, StateError> {
    let file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ForceUnlocked::WasFree(None))
        }
        Err(e) => return Err(StateError::io("open lock file", path, e)),
    };
    match file.try_lock() {
        Ok(()) => {
            let stale = read_holder_once(path);
            file.set_len(0)
                .map_err(|e| StateError::io("clear lock file", path, e))?;
            return Ok(ForceUnlocked::WasFree(stale));
        }
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(StateError::io("lock", path, e)),
    }
    let refuse = |message: String| Err(StateError::ForceUnlock { message });
    let Some(holder) = read_holder(path) else {
        return refuse(format!(
            "the lock {} is held by a process that recorded no details, so the lock ID \
             cannot be checked; nothing was removed",
            path.display()
        ));
    };
    if holder.id.is_empty() || holder.id != id {
        return refuse(format!(
            "the lock {} is held by {} (pid {}, {}) with lock ID {}, not {id}; nothing was \
             removed",
            path.display(),
            holder.who,
            holder.pid,
            holder.operation,
            if holder.id.is_empty() {
                "(none)"
            } else {
                &holder.id
            },
        ));
    }
    if holder.running_here() {
        return refuse(format!(
            "the lock is held by pid {} ({}), which is still running on this machine; \
             removing its lock would let two commands write the state at once. Wait for \
             it or stop it: the lock is released when it exits",
            holder.pid, holder.operation
        ));
    }
    std::fs::remove_file(path).map_err(|e| StateError::io("remove lock file", path, e))?;
    Ok(ForceUnlocked::Removed(holder))
}

/// The holder's details as the file holds them now, without retrying.
fn read_holder_once(path: &Path) -> Option<LockInfo> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Reads the holder's details. The holder truncates and rewrites the file just after
/// taking the lock, so an empty or half-written file is retried briefly before giving up.
fn read_holder(path: &Path) -> Option<LockInfo> {
    for attempt in 0..10 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut text = String::new();
        let read = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
        if read.is_err() {
            return None;
        }
        if let Ok(info) = serde_json::from_str(&text) {
            return Some(info);
        }
    }
    None
}

fn user_name() -> String {
    if let Some(u) = std::env::var("USER").ok().filter(|u| !u.is_empty()) {
        return u;
    }
    std::process::Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

pub(crate) fn host_name() -> String {
    ["/etc/hostname", "/proc/sys/kernel/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .chain(std::env::var("HOSTNAME").ok())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_describes_this_process() {
        let info = LockInfo::current("apply");
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.operation, "apply");
        let (user, host) = info.who.split_once('@').unwrap();
        assert!(!user.is_empty() && !host.is_empty());
        assert!((Utc::now() - info.since).num_seconds() < 60);
    }
}
