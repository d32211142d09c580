//! The local backend: one state file on disk, written atomically under a lock.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::backend::StateLock;
use crate::crypt::Keyring;
use crate::error::StateError;
use crate::format::{decode, encode, peek, State};
use crate::journal::{self, Header, JournalRecord, JOURNAL_VERSION};
use crate::lock::{acquire, force_unlock, probe, ForceUnlocked, LockInfo};

/// Name of the state file in the project directory when none is configured.
pub const DEFAULT_STATE_FILE: &str = "terrace.state.json";

/// A state file on the local disk, with its `.lock`, `.journal` and `.backup`
/// companions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBackend {
    path: PathBuf,
    /// The keys that encrypt the state's secrets; none by default.
    keys: Keyring,
    /// How long [`crate::Backend::lock`] waits for a held lock.
    pub(crate) lock_timeout: std::time::Duration,
}

impl LocalBackend {
    /// A backend for the state file at `path` (which need not exist yet; its directory
    /// must).
    ///
    /// Symbolic links are resolved here, once: the lock, the journal and the backup sit
    /// beside the real file, so two commands that name the same state through different
    /// paths take the same lock, and a write replaces the file the link points to rather
    /// than the link.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        LocalBackend {
            path: resolve(path.into()),
            keys: Keyring::none(),
            lock_timeout: std::time::Duration::ZERO,
        }
    }

    /// This backend with its secrets encrypted at rest by `keys` (see [`Keyring`]): the
    /// state file, its backup and the journal hold the sensitive values encrypted, and a
    /// state in clear is refused ([`StateError::Plaintext`]) until
    /// [`StateLock::convert`] encrypts it.
    pub fn with_keys(mut self, keys: Keyring) -> Self {
        self.keys = keys;
        self
    }

    /// The keys this backend uses.
    pub fn keys(&self) -> &Keyring {
        &self.keys
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

    /// The write-ahead journal, `<state>.journal` (see the crate documentation).
    pub fn journal_path(&self) -> PathBuf {
        with_suffix(&self.path, ".journal")
    }

    /// Reads the state with the journal of an interrupted apply applied, or `None` if
    /// there is no state file yet.
    ///
    /// A missing state file with a backup or a journal beside it is an error
    /// ([`StateError::MissingState`]), never an empty state: the state was there and is
    /// gone, and starting over would lose track of everything it recorded.
    ///
    /// Needs no lock: writes replace the file atomically and the journal is only
    /// appended to, so a reader always sees a complete document. Commands that will
    /// write should load *after* taking the lock (see [`StateLock::load`]), so that
    /// nobody can write in between.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        Ok(self.load_counting()?.map(|(state, _)| state))
    }

    /// [`LocalBackend::load`], with the number of journal records applied.
    fn load_counting(&self) -> Result<Option<(State, usize)>, StateError> {
        self.load_with(false)
    }

    /// [`LocalBackend::load_counting`]; `allow_plain` accepts a state in clear although
    /// a key is configured (to encrypt it).
    pub(crate) fn load_with(
        &self,
        allow_plain: bool,
    ) -> Result<Option<(State, usize)>, StateError> {
        let Some(bytes) = read_optional(&self.path, "read state file")? else {
            for companion in [self.backup_path(), self.journal_path()] {
                if companion.exists() {
                    return Err(StateError::MissingState {
                        path: self.path.clone(),
                        companion,
                    });
                }
            }
            return Ok(None);
        };
        let decoded = decode(&self.path, &bytes, &self.keys)?;
        if self.keys.is_configured() && !decoded.encrypted && !allow_plain {
            return Err(StateError::Plaintext {
                path: self.path.clone(),
            });
        }
        let mut state = decoded.state;
        let journal_path = self.journal_path();
        let applied = match read_optional(&journal_path, "read state journal")? {
            Some(j) => journal::replay(&journal_path, &j, &mut state, &self.keys)?,
            None => 0,
        };
        Ok(Some((state, applied)))
    }

    /// Takes the state lock for `operation` (e.g. `"apply"`), waiting a fraction of a
    /// second at most: if the lock is held, by this process or another, fails with
    /// [`StateError::Locked`] naming the holder.
    ///
    /// Temporary files that a killed command left beside the state are removed: only a
    /// lock holder creates them, so once the lock is ours none of them is in use.
    pub fn lock(&self, operation: &str) -> Result<StateLock, StateError> {
        self.lock_local(operation).map(StateLock::from)
    }

    /// [`LocalBackend::lock`], unwrapped.
    fn lock_local(&self, operation: &str) -> Result<LocalLock, StateError> {
        let lock_path = self.lock_path();
        let info = LockInfo::current(operation);
        let file = acquire(&lock_path, &info)?;
        let lock = LocalLock {
            backend: self.clone(),
            file,
            info,
            backed_up: false,
            journal: None,
            unsynced: 0,
            syncs: 0,
        };
        remove_stale_temporaries(&self.path)?;
        Ok(lock)
    }

    /// Who holds the state lock now: `None` if nobody, `Some(None)` if a holder left no
    /// details. Does not take the lock (a command that only reads uses it to say that an
    /// apply is running).
    pub fn lock_holder(&self) -> Result<Option<Option<LockInfo>>, StateError> {
        probe(&self.lock_path())
    }

    /// Removes the lock held by the holder whose lock ID ([`LockInfo::id`]) is `id`: for
    /// a lock that outlived its holder, as can happen with state on shared storage.
    /// Refuses when the ID does not match (the lock changed hands since it was read) and
    /// when the holder is a process still running on this machine. If nobody holds the
    /// lock, clears the details a killed holder left in the file.
    pub fn force_unlock(&self, id: &str) -> Result<ForceUnlocked, StateError> {
        force_unlock(&self.lock_path(), id)
    }
}

/// The held lock of a local state. Dropping it releases the lock (so does the process exiting).
///
/// Writing state is only possible through a `StateLock`, so every write is serialised.
#[derive(Debug)]
pub(crate) struct LocalLock {
    backend: LocalBackend,
    /// Holds the `flock`: the kernel releases it when this descriptor is closed on drop.
    /// The lock file is deliberately not deleted, since a holder that deletes it could
    /// race with a new holder that has just opened it; it is emptied instead.
    file: File,
    info: LockInfo,
    /// Whether this lock already saved the pre-command state to the backup file.
    backed_up: bool,
    /// The journal this lock appends to, once the first record is written.
    journal: Option<File>,
    /// Bytes written to the journal since its last `fdatasync`: a killed process keeps
    /// them (they are in the kernel's page cache), a power loss may not.
    unsynced: u64,
    /// How many times this lock made its journal durable (`fdatasync`s of records).
    syncs: u64,
}

impl Drop for LocalLock {
    /// Empties the lock file before the descriptor closes, so that a finished command
    /// does not leave details that read like a live holder. Still holding the `flock`
    /// here, so no new holder can be writing its own details yet.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

impl LocalLock {
    /// Who holds this lock (this process).
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// Rewrites the state with its secrets sealed by `to` (encrypted with its key, or in
    /// clear if it has none): `terrace state encrypt`, `state decrypt` and key rotation.
    /// Reads the state with this backend's keys, accepting a state in clear; the backup
    /// is rewritten the same way, so no copy in the old form stays beside the state
    /// (a journal is folded in and deleted). Returns the state, or `None` if there is
    /// none.
    pub fn convert(&mut self, to: Keyring) -> Result<Option<State>, StateError> {
        let Some((mut state, _)) = self.backend.load_with(true)? else {
            return Ok(None);
        };
        let backup = self.backend.backup_path();
        let old_backup = match read_optional(&backup, "read state backup")? {
            Some(bytes) => Some(decode(&backup, &bytes, &self.backend.keys)?.state),
            None => None,
        };
        self.backend.keys = to;
        let mut previous = match old_backup {
            Some(b) if b.lineage == state.lineage => b,
            _ => state.clone(),
        };
        write_atomically(&backup, &encode(&mut previous, &self.backend.keys)?)?;
        self.backed_up = true;
        self.write(&mut state)?;
        Ok(Some(state))
    }

    /// Writes the backup back as the next version, if it has serial `serial` (the local
    /// backend keeps one previous version).
    pub(crate) fn restore(&mut self, serial: u64) -> Result<State, StateError> {
        let current = self.load()?;
        let backup = self.backend.backup_path();
        let old = match read_optional(&backup, "read state backup")? {
            Some(bytes) => Some(decode(&backup, &bytes, &self.backend.keys)?.state),
            None => None,
        };
        let Some(mut old) = old.filter(|o| o.serial == serial) else {
            return Err(StateError::Backend {
                location: self.backend.path.display().to_string(),
                message: format!(
                    "a local state keeps one previous version (its .backup), and it does not \
                     have serial {serial}; nothing was changed"
                ),
            });
        };
        if let Some(current) = current {
            old.serial = current.serial;
        }
        self.write(&mut old)?;
        Ok(old)
    }

    /// Reads the state while holding the lock; same as [`LocalBackend::load`], and if a
    /// journal left by an interrupted apply had records, the state with them is written
    /// in full at once (and the journal deleted), so that recovery happens exactly once.
    pub fn load(&mut self) -> Result<Option<State>, StateError> {
        match self.backend.load_counting()? {
            Some((mut state, applied)) => {
                if applied > 0 {
                    self.write(&mut state)?;
                }
                Ok(Some(state))
            }
            None => Ok(None),
        }
    }

    /// Records one step in the journal and applies it to `state`: one appended line and
    /// one `fsync`, whatever the size of the state (see the crate documentation). The
    /// first record of a command starts the journal on top of a full write of `state`,
    /// so the state file is the journal's base. [`StateLock::write`] folds the journal
    /// back into the state file.
    ///
    /// On error the record may or may not be on disk, but `state` has it either way.
    pub fn append(&mut self, state: &mut State, record: &JournalRecord) -> Result<(), StateError> {
        self.append_all(state, std::slice::from_ref(record))
    }

    /// [`StateLock::append`] for several records at once, with a single `fsync` (which
    /// also makes durable every record [`LocalLock::append_unsynced`] wrote before): a
    /// crash keeps a prefix of them (whole records only).
    pub fn append_all(
        &mut self,
        state: &mut State,
        records: &[JournalRecord],
    ) -> Result<(), StateError> {
        self.append_unsynced(state, records)?;
        self.sync()
    }

    /// Applies `records` to `state` and writes them to the journal, in order after every
    /// record written before, without waiting for the disk: a killed process leaves them
    /// in the journal, a power loss may lose them (never a record made durable before).
    /// [`LocalLock::sync`] makes them durable.
    pub fn append_unsynced(
        &mut self,
        state: &mut State,
        records: &[JournalRecord],
    ) -> Result<(), StateError> {
        if records.is_empty() {
            return Ok(());
        }
        if self.journal.is_none() {
            self.write(state)?;
            self.journal = Some(self.start_journal(state)?);
        }
        let mut bytes = Vec::new();
        for record in records {
            record.apply_to(state);
            bytes.extend(journal::record_line(
                record,
                &self.backend.keys,
                &state.lineage,
            ));
        }
        let path = self.backend.journal_path();
        let file = self.journal.as_mut().expect("journal started above");
        file.write_all(&bytes)
            .map_err(|e| StateError::io("append to state journal", &path, e))?;
        self.unsynced += bytes.len() as u64;
        Ok(())
    }

    /// Makes every record written so far durable with one `fdatasync`; nothing to do if
    /// there is none. The journal is only ever appended to, in order: after it, a crash
    /// keeps at least every record written before it.
    pub fn sync(&mut self) -> Result<(), StateError> {
        let Some(file) = self.journal.as_mut() else {
            return Ok(());
        };
        if self.unsynced == 0 {
            return Ok(());
        }
        let path = self.backend.journal_path();
        file.sync_data()
            .map_err(|e| StateError::io("append to state journal", &path, e))?;
        self.syncs += 1;
        journal::durable_grew(&path, std::mem::take(&mut self.unsynced));
        Ok(())
    }

    /// How many times this lock has made journal records durable (one `fdatasync` per
    /// [`LocalLock::sync`] that had records to sync).
    pub fn journal_syncs(&self) -> u64 {
        self.syncs
    }

    /// Creates the journal with its header naming `state` as its base.
    fn start_journal(&self, state: &State) -> Result<File, StateError> {
        let path = self.backend.journal_path();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StateError::io("create state journal", &path, e))?;
        let header = Header {
            journal: JOURNAL_VERSION,
            lineage: state.lineage.clone(),
            base_serial: state.serial,
        };
        let header = journal::line(&header);
        file.write_all(&header)
            .and_then(|()| file.sync_all())
            .map_err(|e| StateError::io("write state journal", &path, e))?;
        // The journal's name must survive a power loss too.
        sync_dir(&path)?;
        journal::durable_started(&path, header.len() as u64);
        Ok(file)
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
            // Only lineage and serial matter here: the secrets stay sealed.
            let (lineage, serial) = peek(&path, bytes)?;
            if lineage != state.lineage {
                return Err(StateError::LineageMismatch {
                    path,
                    expected: state.lineage.clone(),
                    found: lineage,
                });
            }
            if serial > state.serial {
                return Err(StateError::StaleSerial {
                    path,
                    found: serial,
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
        let result =
            encode(state, &self.backend.keys).and_then(|bytes| write_atomically(&path, &bytes));
        if result.is_err() {
            state.serial = previous;
            return result;
        }
        // The state file now holds every journal record: the journal is done with. If
        // this is not reached, the journal's base serial is older than the file's and
        // readers ignore it.
        self.journal = None;
        self.unsynced = 0;
        let journal = self.backend.journal_path();
        match fs::remove_file(&journal) {
            Ok(()) => sync_dir(&journal),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::io("remove state journal", &journal, e)),
        }
    }
}

/// `path` with every symbolic link resolved: in full if it exists, otherwise its
/// directory resolved and a dangling link followed. Unresolvable paths stay as given.
fn resolve(path: PathBuf) -> PathBuf {
    let mut path = path;
    // Bounded, like the kernel's own limit, so a link cycle cannot loop forever.
    for _ in 0..40 {
        if let Ok(real) = fs::canonicalize(&path) {
            return real;
        }
        match fs::read_link(&path) {
            // A dangling link: follow it by hand (its target does not exist yet).
            Ok(target) => {
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Err(_) => break,
        }
    }
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            fs::canonicalize(dir).map(|d| d.join(name)).unwrap_or(path)
        }
        _ => path,
    }
}

/// Removes `.<state>.*.tmp` files (of the state and its backup) left by a killed writer.
fn remove_stale_temporaries(state: &Path) -> Result<(), StateError> {
    let dir = parent_dir(state);
    let Some(name) = state.file_name() else {
        return Ok(());
    };
    let mut prefix = OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let prefix = prefix.to_string_lossy().into_owned();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return Err(StateError::io("list", dir, e)),
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let file = file.to_string_lossy();
        if file.starts_with(&prefix) && file.ends_with(".tmp") {
            let p = entry.path();
            fs::remove_file(&p)
                .map_err(|e| StateError::io("remove stale temporary file", &p, e))?;
        }
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `fsync`s the directory holding `path`, so that a created, renamed or removed name in
/// it survives a power loss.
fn sync_dir(path: &Path) -> Result<(), StateError> {
    let dir = parent_dir(path);
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StateError::io("sync directory", dir, e))
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
    let dir = parent_dir(path);
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
    sync_dir(path)
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
