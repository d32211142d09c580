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
use std::time::Duration;

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
}

impl LockInfo {
    /// Describes the current process performing `operation`.
    pub fn current(operation: &str) -> Self {
        LockInfo {
            who: format!("{}@{}", user_name(), host_name()),
            pid: std::process::id(),
            operation: operation.to_string(),
            since: Utc::now(),
        }
    }
}

/// Takes the lock on `path` without waiting and records `info` in it.
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
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(StateError::Locked {
                info: read_holder(path),
                path: path.to_path_buf(),
            })
        }
        Err(TryLockError::Error(e)) => return Err(StateError::io("lock", path, e)),
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

fn host_name() -> String {
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
