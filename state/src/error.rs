//! Errors of the state backend. Every error that concerns a file names it, because the
//! user's next step is nearly always to look at that file.

use std::io;
use std::path::{Path, PathBuf};

use chrono::SecondsFormat;
use terrace_provider::Address;

use crate::format::FORMAT_VERSION;
use crate::lock::LockInfo;

/// Everything that can go wrong reading, locking or writing state.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    /// Another command (in this or another process) holds the state lock.
    #[error("{}", locked_message(info.as_ref(), path))]
    #[diagnostic(code(terrace::state::locked))]
    Locked {
        /// Who holds the lock, as recorded in the lock file. `None` if the file could not
        /// be read or parsed: the holder may have only just taken the lock, or may not be
        /// terrace at all.
        info: Option<LockInfo>,
        /// The lock file.
        path: PathBuf,
    },
    /// A file-system operation failed.
    #[error("cannot {action} {}: {cause}", path.display())]
    #[diagnostic(
        code(terrace::state::io),
        help("check that the path exists and that this user may read and write it")
    )]
    Io {
        /// What we were doing, e.g. `read state file`.
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error: part of the message (so every caller shows it), not a
        /// separate cause that a report would print twice.
        cause: io::Error,
    },
    /// The state file exists but is not a valid state document. It is never replaced
    /// automatically: it may be the only record of what terrace manages.
    #[error(
        "state file {} is corrupt: {message}; it has been left untouched (repair it, or \
         restore the previous state from {})",
        path.display(),
        backup_hint(path)
    )]
    #[diagnostic(code(terrace::state::corrupt))]
    Corrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The state file has a format version this terrace does not understand.
    #[error("{}", version_message(path, *found))]
    #[diagnostic(code(terrace::state::version))]
    UnsupportedVersion {
        /// The state file.
        path: PathBuf,
        /// The version found in the file.
        found: u64,
        /// The only version this terrace reads and writes.
        supported: u32,
    },
    /// The state being written is not the one stored (different lineage), so
    /// writing it would silently discard the other state.
    #[error(
        "state {} holds a different state (lineage {found}, but the state being \
         written has lineage {expected}); refusing to overwrite it",
        path.display()
    )]
    #[diagnostic(
        code(terrace::state::lineage),
        help("point --state at this project's own state file")
    )]
    LineageMismatch {
        /// The state file.
        path: PathBuf,
        /// Lineage of the state being written.
        expected: String,
        /// Lineage found in the file.
        found: String,
    },
    /// The state was written by someone else after this one was loaded; writing would
    /// lose their changes.
    #[error(
        "state {} has serial {found}, newer than the state being written (serial \
         {ours}): another command wrote it after this one loaded it; nothing was written: \
         run the command again",
        path.display()
    )]
    #[diagnostic(code(terrace::state::stale_serial))]
    StaleSerial {
        /// The state file (or the `pg://` location).
        path: PathBuf,
        /// Serial in the file.
        found: u64,
        /// Serial of the state being written, before the write.
        ours: u64,
    },
    /// The journal beside the state file cannot be applied. It is left untouched: it may
    /// be the only record of objects an interrupted apply created.
    #[error(
        "state journal {} cannot be applied (line {line}: {message}); it has been left \
         untouched: move it away only once you have checked that the objects it names \
         are in the state or gone",
        path.display()
    )]
    #[diagnostic(code(terrace::state::journal))]
    JournalCorrupt {
        /// The journal file.
        path: PathBuf,
        /// The line (1-based) that is wrong.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// There is no state file, but files beside it show there was one: starting from an
    /// empty state would create everything again, or lose track of what exists.
    #[error(
        "state file {} does not exist, but {} does: the state was removed or moved, and \
         terrace will not start from an empty state. Restore it (`cp {} {}`), point \
         --state at the right file, or move {} away if you really mean to start over",
        path.display(),
        companion.display(),
        companion.display(),
        path.display(),
        companion.display()
    )]
    #[diagnostic(code(terrace::state::missing))]
    MissingState {
        /// The state file that is missing.
        path: PathBuf,
        /// The backup or journal found beside it.
        companion: PathBuf,
    },
    /// `force-unlock` was asked to remove a lock it must not remove.
    #[error("{message}")]
    #[diagnostic(code(terrace::state::force_unlock))]
    ForceUnlock {
        /// Why not.
        message: String,
    },
    /// The state key configuration is wrong (bad base64, wrong length, a key file others
    /// can read, several sources at once). Never shows key material.
    #[error("{message}")]
    #[diagnostic(code(terrace::state::key))]
    Key {
        /// What is wrong.
        message: String,
    },
    /// The state's secrets cannot be decrypted (no key, or not the right one). Nothing
    /// was written.
    #[error("cannot read state {}: {message}; nothing was changed", path.display())]
    #[diagnostic(code(terrace::state::encrypted))]
    Encrypted {
        /// The state document.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Encryption is configured but the state holds its secrets in clear: it is refused
    /// rather than silently accepted (it may be a copy someone swapped in).
    #[error(
        "state {} is not encrypted, but a state key is configured; nothing was changed",
        path.display()
    )]
    #[diagnostic(
        code(terrace::state::plaintext),
        help(
            "run `terrace state encrypt` once to encrypt its secrets with the configured key, \
             or unset the state key variables to keep it in clear"
        )
    )]
    Plaintext {
        /// The state document.
        path: PathBuf,
    },
    /// The state database could not be reached or answered with an error.
    #[error("state backend {location}: {message}")]
    #[diagnostic(
        code(terrace::state::backend),
        help("check the backend URL, that the server is up, and this role's privileges")
    )]
    Backend {
        /// Where the state is (never with a password).
        location: String,
        /// What went wrong.
        message: String,
    },
    /// Another command holds the lease on a shared state.
    #[error("{}", lease_message(location, info.as_ref(), expires.as_ref()))]
    #[diagnostic(code(terrace::state::locked))]
    LeaseHeld {
        /// Where the state is.
        location: String,
        /// The holder, if the lease was still there when read back.
        info: Option<LockInfo>,
        /// When the holder's lease expires unless it renews it.
        expires: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// This command's lease was broken (force-unlocked, or expired while the command was
    /// stalled) and another command may hold it now: nothing more is written.
    #[error(
        "the lock on state {location} was lost (force-unlocked, or it expired while this \
         command was stalled); nothing more was written. Run the command again: the next \
         run picks up what this one recorded"
    )]
    #[diagnostic(code(terrace::state::lease_lost))]
    LeaseLost {
        /// Where the state is.
        location: String,
    },
    /// Two resources share an address; the state cannot be written unambiguously.
    #[error("resource {address} appears more than once in the state")]
    #[diagnostic(
        code(terrace::state::duplicate),
        help("remove one of them with `terrace state rm ADDRESS`")
    )]
    DuplicateAddress {
        /// The duplicated address.
        address: Address,
    },
}

impl StateError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        StateError::Io {
            action,
            path: path.to_path_buf(),
            cause: source,
        }
    }
}

fn locked_message(info: Option<&LockInfo>, path: &Path) -> String {
    let holder = match info {
        Some(i) => format!(
            "state is locked by {} (pid {}, {}) since {}",
            i.who,
            i.pid,
            i.operation,
            i.since.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        None => "state is locked by another process (no holder details recorded)".to_string(),
    };
    let force = match info.map(|i| i.id.as_str()).filter(|id| !id.is_empty()) {
        Some(id) => format!(
            "; if that process is gone and the lock stays (state on shared storage), \
             remove it with `terrace force-unlock {id}`"
        ),
        None => String::new(),
    };
    format!(
        "{holder}; lock file {}. The lock is released automatically when that process \
         exits: wait for it to finish, or stop it if it is stuck{force}",
        path.display()
    )
}

fn lease_message(
    location: &str,
    info: Option<&LockInfo>,
    expires: Option<&chrono::DateTime<chrono::Utc>>,
) -> String {
    let Some(i) = info else {
        return format!(
            "state {location} is locked by another command, whose lease ended as it was \
             read: run again"
        );
    };
    let expires = expires
        .map(|e| e.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default();
    format!(
        "state {location} is locked by {} (pid {}, {}) since {}; its lease is renewed while \
         it runs and expires at {expires} if it stops. If that command is gone, wait for \
         the lease to expire, or remove it with `terrace force-unlock {}`",
        i.who,
        i.pid,
        i.operation,
        i.since.to_rfc3339_opts(SecondsFormat::Secs, true),
        i.id
    )
}

fn backup_hint(path: &Path) -> String {
    let mut s = path.as_os_str().to_owned();
    s.push(".backup");
    PathBuf::from(s).display().to_string()
}

fn version_message(path: &Path, found: u64) -> String {
    if found > u64::from(FORMAT_VERSION) {
        format!(
            "state file {} has format version {found}, written by a newer terrace; this \
             terrace understands only version {FORMAT_VERSION}: upgrade terrace",
            path.display()
        )
    } else {
        format!(
            "state file {} has format version {found}, which this terrace does not \
             understand (it reads and writes version {FORMAT_VERSION})",
            path.display()
        )
    }
}
