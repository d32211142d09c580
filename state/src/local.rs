//! The local backend: one state file on disk, written atomically under a lock.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::StateError;
use crate::format::{decode, encode, State};
use crate::lock::{acquire, LockInfo};

/// Name of the state file in the project directory when none is configured.
pub const DEFAULT_STATE_FILE: &str = "terrace.state.json";

/// A state file on the local disk, with its `.lock` and `.backup` companions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBackend {
    path: PathBuf,
}

impl LocalBackend {
    /// A backend for the state file at `path` (which need not exist yet; its directory
    /// must).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalBackend { path: path.into() }
    }

    /// A backend for [`DEFAULT_STATE_FILE`] in the project directory `dir`.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        LocalBackend::new(dir.as_ref().join(DEFAULT_STATE_FILE))
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file, `<state>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        with_suffix(&self.path, ".lock")
    }

    /// The backup file, `<state>.backup`.
    pub fn backup_path(&self) -> PathBuf {
        with_suffix(&self.path, ".backup")
    }

    /// Reads the state, or `None` if there is no state file yet.
    ///
    /// Needs no lock: writes replace the file atomically, so a reader always sees a
    /// complete document. Commands that will write should load *after* taking the lock
    /// (see [`StateLock::load`]), so that nobody can write in between.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        read_optional(&self.path, "read state file")?
            .map(|bytes| decode(&self.path, &bytes))
            .transpose()
    }

    /// Takes the state lock for `operation` (e.g. `"apply"`), without waiting: if the
    /// lock is held, by this process or another, fails with [`StateError::Locked`] naming
    /// the holder.
    pub fn lock(&self, operation: &str) -> Result<StateLock, StateError> {
        let lock_path = self.lock_path();
        let info = LockInfo::current(operation);
        let file = acquire(&lock_path, &info)?;
        Ok(StateLock {
            backend: self.clone(),
            _file: file,
            info,
            backed_up: false,
        })
    }
}

/// The held state lock. Dropping it releases the lock (so does the process exiting).
///
/// Writing state is only possible through a `StateLock`, so every write is serialised.
#[derive(Debug)]
pub struct StateLock {
    backend: LocalBackend,
    /// Holds the `flock`: the kernel releases it when this descriptor is closed on drop.
    /// The lock file is deliberately not deleted, since a holder that deletes it could
    /// race with a new holder that has just opened it.
    _file: File,
    info: LockInfo,
    /// Whether this lock already saved the pre-command state to the backup file.
    backed_up: bool,
}

impl StateLock {
    /// Who holds this lock (this process).
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Reads the state while holding the lock; same as [`LocalBackend::load`].
    pub fn load(&self) -> Result<Option<State>, StateError> {
        self.backend.load()
    }

    /// Writes `state`: increments `state.serial`, then replaces the state file
    /// atomically. The state is normalised (sorted) in place.
    ///
    /// The first write through this lock first copies the existing state file to
    /// `<state>.backup`, so the backup is the state from before this command.
    ///
    /// Refuses to overwrite a file holding another lineage, a newer serial, or content
    /// that is not a valid state: each means something else's state would be lost. On
    /// error `state.serial` is left as it was.
    pub fn write(&mut self, state: &mut State) -> Result<(), StateError> {
        let path = self.backend.path.clone();
        let existing = read_optional(&path, "read state file")?;
        if let Some(bytes) = &existing {
            let on_disk = decode(&path, bytes)?;
            if on_disk.lineage != state.lineage {
                return Err(StateError::LineageMismatch {
                    path,
                    expected: state.lineage.clone(),
                    found: on_disk.lineage,
                });
            }
            if on_disk.serial > state.serial {
                return Err(StateError::StaleSerial {
                    path,
                    found: on_disk.serial,
                    ours: state.serial,
                });
            }
        }
        if !self.backed_up {
            if let Some(bytes) = &existing {
                write_atomically(&self.backend.backup_path(), bytes)?;
            }
            self.backed_up = true;
        }

        let previous = state.serial;
        state.serial = previous + 1;
        let result = encode(state).and_then(|bytes| write_atomically(&path, &bytes));
        if result.is_err() {
            state.serial = previous;
        }
        result
    }
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Reads a whole file, or `None` if it does not exist.
fn read_optional(path: &Path, action: &'static str) -> Result<Option<Vec<u8>>, StateError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io(action, path, e)),
    }
}

/// Replaces `path` with `bytes` so that, whatever happens, `path` is either the old or
/// the new complete file: write a mode-0600 temporary file in the same directory (so the
/// rename cannot cross file systems), fsync it, rename it over `path`, then fsync the
/// directory so the rename itself survives a power loss. Also used for other files that
/// must never be seen half-written (saved plans).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name() else {
        return Err(StateError::io(
            "write",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        ));
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
    let tmp = dir.join(tmp_name);

    // Mode is set at creation, so the content is never readable by others even briefly.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| StateError::io("create temporary file", &tmp, e))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| StateError::io("write temporary file", &tmp, e))
        .and_then(|()| {
            drop(file);
            fs::rename(&tmp, path).map_err(|e| StateError::io("replace", path, e))
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StateError::io("sync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn companion_paths() {
        let b = LocalBackend::in_dir("/proj");
        assert_eq!(b.path(), Path::new("/proj/terrace.state.json"));
        assert_eq!(b.lock_path(), Path::new("/proj/terrace.state.json.lock"));
        assert_eq!(
            b.backup_path(),
            Path::new("/proj/terrace.state.json.backup")
        );
    }

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomically(&p, b"one").unwrap();
        write_atomically(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_atomic_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails after the temp file exists.
        let p = dir.path().join("d");
        fs::create_dir(&p).unwrap();
        fs::write(p.join("x"), b"x").unwrap();
        assert!(write_atomically(&p, b"data").is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [OsString::from("d")]);
    }
}
