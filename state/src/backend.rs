//! The backend a command uses, local file or PostgreSQL, and its held lock: one API over
//! both, so the binary does not care where the state lives.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::crypt::Keyring;
use crate::error::StateError;
use crate::format::State;
use crate::journal::JournalRecord;
use crate::local::{LocalBackend, LocalLock};
use crate::lock::{ForceUnlocked, LockInfo};
use crate::pg::{HistoryEntry, PgBackend, PgLock};

/// Where a state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A file on the local disk (the default).
    Local(LocalBackend),
    /// A named state in a PostgreSQL database.
    Pg(PgBackend),
}

impl From<LocalBackend> for Backend {
    fn from(b: LocalBackend) -> Self {
        Backend::Local(b)
    }
}

impl From<PgBackend> for Backend {
    fn from(b: PgBackend) -> Self {
        Backend::Pg(b)
    }
}

impl Backend {
    /// The backend `spec` names: a `pg://` (or `postgres://`) URL, or a file path.
    /// `default_name` names a PostgreSQL state whose URL has no `?state=`.
    pub fn parse(spec: &str, default_name: &str) -> Result<Self, StateError> {
        if spec.starts_with("pg://")
            || spec.starts_with("postgres://")
            || spec.starts_with("postgresql://")
        {
            Ok(Backend::Pg(PgBackend::from_url(spec, default_name)?))
        } else {
            Ok(Backend::Local(LocalBackend::new(spec)))
        }
    }

    /// This backend with its secrets sealed by `keys`.
    pub fn with_keys(self, keys: Keyring) -> Self {
        match self {
            Backend::Local(b) => Backend::Local(b.with_keys(keys)),
            Backend::Pg(b) => Backend::Pg(b.with_keys(keys)),
        }
    }

    /// The keys in use.
    pub fn keys(&self) -> &Keyring {
        match self {
            Backend::Local(b) => b.keys(),
            Backend::Pg(b) => b.keys(),
        }
    }

    /// Where the state is, for messages: the file path or the `pg://` location (never
    /// a password).
    pub fn location(&self) -> String {
        match self {
            Backend::Local(b) => b.path().display().to_string(),
            Backend::Pg(b) => b.location().to_string(),
        }
    }

    /// The state file, for the local backend.
    pub fn local_path(&self) -> Option<&Path> {
        match self {
            Backend::Local(b) => Some(b.path()),
            Backend::Pg(_) => None,
        }
    }

    /// A local path files tied to this state sit beside (the saved-plan key): the state
    /// file, or for a PostgreSQL state `<dir>/.terrace/<state name>.pg`.
    pub fn companion_base(&self, dir: &Path) -> PathBuf {
        match self {
            Backend::Local(b) => b.path().to_path_buf(),
            Backend::Pg(b) => dir.join(".terrace").join(format!("{}.pg", b.name())),
        }
    }

    /// Whether the state exists.
    pub fn exists(&self) -> Result<bool, StateError> {
        match self {
            Backend::Local(b) => Ok(b.path().exists()),
            Backend::Pg(b) => b.exists(),
        }
    }

    /// Reads the state (journal applied), `None` if there is none.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        match self {
            Backend::Local(b) => b.load(),
            Backend::Pg(b) => b.load(),
        }
    }

    /// This backend waiting up to `timeout` for a lock another command holds
    /// ([`Backend::lock`], [`Backend::lock_holder_waiting`]); zero (the default) does not
    /// wait.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        match &mut self {
            Backend::Local(b) => b.lock_timeout = timeout,
            Backend::Pg(b) => b.lock_timeout = timeout,
        }
        self
    }

    /// How long a held lock is waited for.
    pub fn lock_timeout(&self) -> Duration {
        match self {
            Backend::Local(b) => b.lock_timeout,
            Backend::Pg(b) => b.lock_timeout,
        }
    }

    /// Takes the state lock for `operation`. While another command holds it, retries
    /// with backoff for the lock timeout ([`Backend::with_lock_timeout`]), then fails
    /// with [`StateError::Locked`] (or [`StateError::LeaseHeld`]) naming the holder.
    pub fn lock(&self, operation: &str) -> Result<StateLock, StateError> {
        let mut backoff = Backoff::new(self.lock_timeout());
        loop {
            let attempt = match self {
                Backend::Local(b) => b.lock(operation),
                Backend::Pg(b) => b.lock(operation).map(StateLock::from),
            };
            match attempt {
                Err(StateError::Locked { .. } | StateError::LeaseHeld { .. }) if backoff.wait() => {
                }
                other => return other,
            }
        }
    }

    /// Who holds the lock now.
    pub fn lock_holder(&self) -> Result<Option<Option<LockInfo>>, StateError> {
        match self {
            Backend::Local(b) => b.lock_holder(),
            Backend::Pg(b) => b.lock_holder(),
        }
    }

    /// Who holds the lock once it is free or the lock timeout has passed: for commands
    /// that only read and refuse to run while the state is locked (`plan`).
    pub fn lock_holder_waiting(&self) -> Result<Option<Option<LockInfo>>, StateError> {
        let mut backoff = Backoff::new(self.lock_timeout());
        loop {
            match self.lock_holder()? {
                Some(_) if backoff.wait() => {}
                other => return Ok(other),
            }
        }
    }

    /// Removes the lock held under lock ID `id`, naming its holder.
    pub fn force_unlock(&self, id: &str) -> Result<ForceUnlocked, StateError> {
        match self {
            Backend::Local(b) => b.force_unlock(id),
            Backend::Pg(b) => b.force_unlock(id),
        }
    }

    /// Where the lock is, for messages.
    pub fn lock_location(&self) -> String {
        match self {
            Backend::Local(b) => b.lock_path().display().to_string(),
            Backend::Pg(b) => format!("the lease of {}", b.location()),
        }
    }

    /// The versions kept: the PostgreSQL history, or the local backup.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, StateError> {
        match self {
            Backend::Pg(b) => b.history(),
            Backend::Local(b) => {
                let backup = LocalBackend::new(b.backup_path()).with_keys(b.keys().clone());
                if !b.backup_path().exists() {
                    return Ok(Vec::new());
                }
                let state = backup.load()?.unwrap_or_default();
                let saved_at = std::fs::metadata(b.backup_path())
                    .and_then(|m| m.modified())
                    .map(chrono::DateTime::<chrono::Utc>::from)
                    .unwrap_or_default();
                Ok(vec![HistoryEntry {
                    serial: state.serial,
                    saved_at,
                    resources: state.resources.len() as u64,
                }])
            }
        }
    }
}

/// First pause between attempts to take a held lock; doubled after each, up to
/// [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between attempts: a freed lock is taken within this.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// Pauses between attempts on a held lock, with exponential backoff, until a deadline.
struct Backoff {
    deadline: Instant,
    pause: Duration,
}

impl Backoff {
    fn new(timeout: Duration) -> Self {
        Backoff {
            deadline: Instant::now() + timeout,
            pause: FIRST_PAUSE,
        }
    }

    /// Sleeps before the next attempt; false (without sleeping) once time is up.
    fn wait(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.deadline {
            return false;
        }
        std::thread::sleep(self.pause.min(self.deadline - now));
        self.pause = (self.pause * 2).min(MAX_PAUSE);
        true
    }
}

/// The held state lock, of either backend. Dropping it releases the lock.
///
/// Writing state is only possible through a `StateLock`, so every write is serialised.
#[derive(Debug)]
pub struct StateLock {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Local(LocalLock),
    Pg(PgLock),
}

impl From<LocalLock> for StateLock {
    fn from(l: LocalLock) -> Self {
        StateLock {
            inner: Inner::Local(l),
        }
    }
}

impl From<PgLock> for StateLock {
    fn from(l: PgLock) -> Self {
        StateLock {
            inner: Inner::Pg(l),
        }
    }
}

impl StateLock {
    /// Who holds this lock (this process).
    pub fn info(&self) -> &LockInfo {
        match &self.inner {
            Inner::Local(l) => l.info(),
            Inner::Pg(l) => l.info(),
        }
    }

    /// Reads the state while holding the lock; a journal left by an interrupted apply
    /// is folded into the stored state at once, so that recovery happens exactly once.
    pub fn load(&mut self) -> Result<Option<State>, StateError> {
        match &mut self.inner {
            Inner::Local(l) => l.load(),
            Inner::Pg(l) => l.load(),
        }
    }

    /// Records one step in the journal and applies it to `state`: one appended record,
    /// made durable, whatever the size of the state. The first record of a command
    /// starts the journal on top of a full write of `state`; [`StateLock::write`] folds
    /// the journal back into the state.
    ///
    /// On error the record may or may not be stored, but `state` has it either way.
    pub fn append(&mut self, state: &mut State, record: &JournalRecord) -> Result<(), StateError> {
        match &mut self.inner {
            Inner::Local(l) => l.append(state, record),
            Inner::Pg(l) => l.append(state, record),
        }
    }

    /// [`StateLock::append`] for several records at once, made durable together: a
    /// crash keeps a prefix of them (local) or none or all (PostgreSQL).
    pub fn append_all(
        &mut self,
        state: &mut State,
        records: &[JournalRecord],
    ) -> Result<(), StateError> {
        match &mut self.inner {
            Inner::Local(l) => l.append_all(state, records),
            Inner::Pg(l) => l.append_all(state, records),
        }
    }

    /// Applies `records` to `state` and stores them after every record stored before,
    /// without waiting for them to be durable: group commit. The local backend writes
    /// them to the journal (a killed process keeps them; a power loss may lose any of the
    /// records written since the last sync, never one before it) and [`StateLock::sync`]
    /// makes them durable with one `fsync` however many were written; PostgreSQL commits them
    /// at once (one transaction, durable on return). Whoever relies on a record being
    /// durable (a step's dependents, a create's intent) calls [`StateLock::sync`] first.
    pub fn append_unsynced(
        &mut self,
        state: &mut State,
        records: &[JournalRecord],
    ) -> Result<(), StateError> {
        match &mut self.inner {
            Inner::Local(l) => l.append_unsynced(state, records),
            Inner::Pg(l) => l.append_all(state, records),
        }
    }

    /// Makes every record stored so far durable (see [`StateLock::append_unsynced`]):
    /// one `fsync` of the local journal if anything was written since the last one.
    pub fn sync(&mut self) -> Result<(), StateError> {
        match &mut self.inner {
            Inner::Local(l) => l.sync(),
            Inner::Pg(_) => Ok(()),
        }
    }

    /// How many times this lock has made journal records durable: `fsync`s of the
    /// local journal (PostgreSQL: none counted, each append is its own transaction).
    /// Lets tests check that records of steps finishing together share one.
    pub fn journal_syncs(&self) -> u64 {
        match &self.inner {
            Inner::Local(l) => l.journal_syncs(),
            Inner::Pg(_) => 0,
        }
    }

    /// Writes `state` as the next version: increments `state.serial` and replaces the
    /// stored state atomically, refusing another lineage or a newer serial (someone
    /// else's state would be lost). On error `state.serial` is left as it was.
    pub fn write(&mut self, state: &mut State) -> Result<(), StateError> {
        match &mut self.inner {
            Inner::Local(l) => l.write(state),
            Inner::Pg(l) => l.write(state),
        }
    }

    /// Rewrites the state with its secrets sealed by `to` (encrypted with its key, or in
    /// clear if it has none): `terrace state encrypt`, `state decrypt` and key rotation.
    /// Accepts a state in clear. Returns the state, or `None` if there is none.
    pub fn convert(&mut self, to: Keyring) -> Result<Option<State>, StateError> {
        match &mut self.inner {
            Inner::Local(l) => l.convert(to),
            Inner::Pg(l) => l.convert(to),
        }
    }

    /// Writes the kept version `serial` back as the next version (PostgreSQL history;
    /// for a local state, the backup if it has that serial).
    pub fn restore(&mut self, serial: u64) -> Result<State, StateError> {
        match &mut self.inner {
            Inner::Pg(l) => l.restore(serial),
            Inner::Local(l) => l.restore(serial),
        }
    }
}
