//! terrace's state: what terrace believes it manages, stored between runs.
//!
//! Two backends behind one API ([`Backend`], [`StateLock`]): the local file described
//! below (the default), and a named state in PostgreSQL ([`PgBackend`]: serial-checked
//! transactional writes, history, the journal in a table, leased locks).
//!
//! # The state file
//!
//! The local backend keeps one JSON document, `terrace.state.json` by default, next to
//! the configuration. It is pretty-printed and deterministic (same state, same bytes) so
//! that it diffs well and can be reviewed:
//!
//! ```json
//! {
//!   "version": 1,
//!   "lineage": "0b6f3c1e-6d0a-4c1e-9d8e-2f4a5b6c7d8e",
//!   "serial": 7,
//!   "terrace_version": "0.1.0",
//!   "resources": [
//!     {
//!       "address": "database.reports",
//!       "type": "sql_database",
//!       "provider": "service.pg",
//!       "attributes": { "name": "reports", "owner": "reports" },
//!       "sensitive_attributes": [],
//!       "dependencies": ["database.reports.user"]
//!     }
//!   ]
//! }
//! ```
//!
//! - `version` is the format version ([`FORMAT_VERSION`]). A file with any other version
//!   is refused rather than guessed at, so an old terrace never rewrites (and so
//!   truncates) a file written by a newer one.
//! - `lineage` is a UUID chosen when the state is first created and never changed. It
//!   tells two unrelated states apart: writing a state over a file of another lineage is
//!   refused.
//! - `serial` grows by one on every write. Writing a state whose serial is older than the
//!   file's is refused, because it means someone else wrote in between.
//! - `resources` are sorted by address; each one's `sensitive_attributes` and
//!   `dependencies` are sorted and free of duplicates.
//! - a resource with `"pending": true` is one an apply was about to create when it
//!   stopped: its attributes (and any password generated for it) are those the create
//!   used. The next plan adopts the object if it exists and creates it if not. The field
//!   is left out when false, so a state without pending resources is byte-for-byte what
//!   earlier versions wrote, and an earlier terrace reading a pending resource simply
//!   takes it as managed (its next plan then recreates it if absent, with the recorded
//!   password).
//!
//! Sensitive values are stored in clear unless a state key is configured
//! ([`Keyring`], from `TERRACE_STATE_KEY`, `TERRACE_STATE_KEY_FILE` or
//! `TERRACE_STATE_PASSPHRASE`): then every value named in a resource's
//! `sensitive_attributes` is encrypted (XChaCha20-Poly1305) in the state file, its backup
//! and the journal, the document says so in an `"encryption"` field placed before
//! `"resources"`, and everything else stays readable JSON. See the `crypt` module for
//! the format, key rotation and what this does not protect against. Either way the file
//! is created with mode 0600.
//!
//! # Files next to the state file
//!
//! - `<state>.lock`: locked with an advisory `flock` while a command may write the state.
//!   While locked it holds a JSON [`LockInfo`] saying who holds it; the holder empties it
//!   when it finishes. The kernel frees the lock when the holder exits, even by a crash,
//!   so a stale lock never needs cleaning up on a local disk; the file itself is left in
//!   place on purpose (deleting it races with the next holder). For shared storage,
//!   [`LocalBackend::force_unlock`] removes a lock whose holder is gone.
//! - `<state>.journal`: the write-ahead journal of the apply in progress, or of one that
//!   was killed (see [`JournalRecord`]): one JSON line per step, appended, and made
//!   durable by an `fsync` shared by the lines written since the last ([`StateLock::sync`]),
//!   mode 0600. Every read of the state applies it; the next full write folds it into
//!   the state file and deletes it.
//! - `<state>.backup`: the state as it was before the last command that wrote it.
//!
//! The state path is resolved through symbolic links first, so every name for the same
//! file shares one lock. Writes are atomic (temporary file `.<state>.<random>.tmp`, mode
//! 0600, `fsync`, `rename`, `fsync` of the directory): after a crash at any point the
//! state file is either the old or the new complete document. A temporary file left by
//! a killed writer is removed by the next command that takes the lock.

mod backend;
mod crypt;
mod error;
mod format;
mod journal;
mod local;
mod lock;
mod pg;

pub use backend::{Backend, StateLock};
pub use crypt::{raw_key_from_env, raw_key_from_vars, Keyring};
pub use error::StateError;
pub use format::{ResourceState, State, FORMAT_VERSION};
pub use journal::{journal_durable_len, JournalRecord};
pub use local::{write_atomically, LocalBackend, DEFAULT_STATE_FILE};
pub use lock::{ForceUnlocked, LockInfo};
pub use pg::{HistoryEntry, PgBackend, DEFAULT_HISTORY, DEFAULT_LEASE, QUERY_TIMEOUT};
