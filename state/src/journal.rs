//! The write-ahead journal: `<state>.journal`, an append-only file of JSON lines that
//! records an apply's progress between two full writes of the state.
//!
//! ```text
//! {"journal":1,"lineage":"0b6f…","base_serial":7}
//! {"pending":{"address":"database.a.user","type":"sql_user",…,"pending":true}}
//! {"upsert":{"address":"database.a.user","type":"sql_user",…}}
//! {"remove":"database.old"}
//! ```
//!
//! The first line says which state the records apply to: the state file with that
//! lineage and serial. Each later line is one [`JournalRecord`], appended in order, so a
//! step's checkpoint costs one small write however large the state is; one `fdatasync`
//! makes every line written before it durable (group commit: the executor syncs the
//! records of steps finishing close together at once, before their dependents start).
//! A full write of the state includes every record and then deletes the journal; a crash
//! between the two leaves a journal whose `base_serial` is older than the state's, which
//! readers recognise and ignore.
//!
//! Only the last line can be incomplete (the process died while appending it); it is
//! ignored. A power loss can also leave zeros where a block written after the last
//! `fdatasync` never reached the disk: the records end at the first NUL byte (JSON lines
//! hold none). Any other line that does not parse makes the journal corrupt: it is
//! reported and never deleted, since it may be the only record of what was created.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use terrace_provider::Address;

use serde_json::Value;

use crate::crypt::{self, Keyring};
use crate::error::StateError;
use crate::format::{ResourceState, State};

/// Format version of the journal's header line.
pub(crate) const JOURNAL_VERSION: u32 = 1;

/// The journal's first line.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(crate) struct Header {
    /// [`JOURNAL_VERSION`].
    pub(crate) journal: u32,
    /// Lineage of the state the records apply to.
    pub(crate) lineage: String,
    /// Serial of the state file the records apply to.
    pub(crate) base_serial: u64,
}

/// One change to the state, as recorded in the journal.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum JournalRecord {
    /// About to create this resource: it is recorded with `pending` set, with the
    /// attributes (and generated secrets) the create will use.
    Pending(ResourceState),
    /// The resource was created, updated or adopted: recorded as managed.
    Upsert(ResourceState),
    /// The resource was destroyed (or forgotten): it leaves the state.
    Remove(Address),
}

impl JournalRecord {
    /// Applies this record to `state` in memory.
    pub fn apply_to(&self, state: &mut State) {
        match self {
            JournalRecord::Pending(r) => state.upsert(ResourceState {
                pending: true,
                ..r.clone()
            }),
            JournalRecord::Upsert(r) => state.upsert(ResourceState {
                pending: false,
                ..r.clone()
            }),
            JournalRecord::Remove(a) => {
                state.remove(a);
            }
        }
    }
}

/// How many bytes of each journal this process has made durable (written and
/// `fsync`ed), by journal path: what [`journal_durable_len`] reports.
static DURABLE: std::sync::Mutex<BTreeMap<PathBuf, u64>> = std::sync::Mutex::new(BTreeMap::new());

/// How many leading bytes of the journal at `path` this process has made durable
/// (written and `fsync`ed) since it started that journal; `None` if it has not started
/// one there. For tests that check durability order (a step's dependents start only
/// once the step's record is durable): the records in that prefix survive a power loss.
/// One lock per journal updates it, once per `fsync`.
pub fn journal_durable_len(path: &Path) -> Option<u64> {
    durable().get(path).copied()
}

fn durable() -> std::sync::MutexGuard<'static, BTreeMap<PathBuf, u64>> {
    // A panic elsewhere while holding it leaves a map that is still consistent.
    DURABLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A journal was started at `path` with its `header_len`-byte header durable.
pub(crate) fn durable_started(path: &Path, header_len: u64) {
    durable().insert(path.to_path_buf(), header_len);
}

/// `bytes` more of the journal at `path` are durable.
pub(crate) fn durable_grew(path: &Path, bytes: u64) {
    *durable().entry(path.to_path_buf()).or_default() += bytes;
}

/// Encodes one journal line, newline included.
pub(crate) fn line<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs, strings and JSON values always serialise.
    let mut bytes = serde_json::to_vec(value).expect("journal record serialises to JSON");
    bytes.push(b'\n');
    bytes
}

/// Encodes one record as a journal line, its resource's sensitive values encrypted
/// with `keys` when a key is configured (as in the state file).
pub(crate) fn record_line(record: &JournalRecord, keys: &Keyring, lineage: &str) -> Vec<u8> {
    let mut value = serde_json::to_value(record).expect("journal record serialises to JSON");
    if let Some(resource) = resource_of(&mut value) {
        crypt::seal_resource(keys, lineage, resource);
    }
    line(&value)
}

/// The resource inside an encoded `pending` or `upsert` record.
fn resource_of(value: &mut Value) -> Option<&mut Value> {
    let object = value.as_object_mut()?;
    let (_, resource) = object.iter_mut().next()?;
    resource.is_object().then_some(resource)
}

/// Applies the journal `bytes` (read from `path`) to `state`, the state file it sits
/// beside. Returns how many records were applied: 0 for an empty journal or one that an
/// earlier full write already included.
pub(crate) fn replay(
    path: &Path,
    bytes: &[u8],
    state: &mut State,
    keys: &Keyring,
) -> Result<usize, StateError> {
    let corrupt = |line: usize, message: String| StateError::JournalCorrupt {
        path: path.to_path_buf(),
        line,
        message,
    };
    // Only lines that end with a newline were completely written.
    let mut lines = bytes.split_inclusive(|b| *b == b'\n');
    let Some(first) = lines.next().filter(|l| l.ends_with(b"\n")) else {
        // Killed while writing the header: nothing was recorded after it.
        return Ok(0);
    };
    let header: Header =
        serde_json::from_slice(first).map_err(|e| corrupt(1, format!("bad header: {e}")))?;
    if header.journal != JOURNAL_VERSION {
        return Err(corrupt(
            1,
            format!(
                "journal format {} is not the one this terrace writes ({JOURNAL_VERSION})",
                header.journal
            ),
        ));
    }
    if header.lineage != state.lineage {
        return Err(corrupt(
            1,
            format!(
                "it belongs to state lineage {}, but the state file has lineage {}",
                header.lineage, state.lineage
            ),
        ));
    }
    if header.base_serial < state.serial {
        // A full write already included these records (it was killed before it could
        // delete the journal).
        return Ok(0);
    }
    if header.base_serial > state.serial {
        return Err(corrupt(
            1,
            format!(
                "it continues state serial {}, but the state file has the older serial {} \
                 (was the state file replaced by an older copy?)",
                header.base_serial, state.serial
            ),
        ));
    }
    let mut applied = 0;
    for (i, l) in lines.enumerate() {
        if !l.ends_with(b"\n") {
            // The torn last append of a killed run: that step was not recorded.
            break;
        }
        if l.contains(&0) {
            // A power loss between appends and their `fdatasync` can leave a block that
            // never reached the disk (zeros) before one that did. JSON lines hold no raw
            // NUL, so this is where the durable records end: what follows was written
            // but never synced, so nothing that depends on it had started, and a create
            // among it was recorded pending (and synced) before it ran.
            break;
        }
        let mut value: Value =
            serde_json::from_slice(l).map_err(|e| corrupt(i + 2, e.to_string()))?;
        if let Some(resource) = resource_of(&mut value) {
            crypt::open_resource(keys, &state.lineage, resource)
                .map_err(|e| e.into_state_error(path))?;
        }
        let record: JournalRecord =
            serde_json::from_value(value).map_err(|e| corrupt(i + 2, e.to_string()))?;
        record.apply_to(state);
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use terrace_provider::{Attrs, ProviderKey};

    fn res(addr: &str) -> ResourceState {
        ResourceState {
            address: Address::new(addr),
            type_name: "sql_user".into(),
            provider: ProviderKey("service.pg".into()),
            attributes: Attrs::from([("name".to_string(), json!(addr))]),
            sensitive_attributes: vec![],
            dependencies: vec![],
            pending: false,
        }
    }

    fn journal(state: &State, records: &[JournalRecord]) -> Vec<u8> {
        let mut out = line(&Header {
            journal: JOURNAL_VERSION,
            lineage: state.lineage.clone(),
            base_serial: state.serial,
        });
        for r in records {
            out.extend(record_line(r, &Keyring::none(), &state.lineage));
        }
        out
    }

    #[test]
    fn records_apply_in_order_and_a_torn_last_line_is_ignored() {
        let mut s = State::new();
        s.upsert(res("old"));
        let mut bytes = journal(
            &s,
            &[
                JournalRecord::Pending(res("a")),
                JournalRecord::Pending(res("b")),
                JournalRecord::Upsert(res("a")),
                JournalRecord::Remove(Address::new("old")),
            ],
        );
        bytes.extend_from_slice(b"{\"upsert\":{\"addr");
        let n = replay(Path::new("j"), &bytes, &mut s, &Keyring::none()).unwrap();
        assert_eq!(n, 4);
        let got: Vec<(&str, bool)> = s
            .resources
            .iter()
            .map(|r| (r.address.as_str(), r.pending))
            .collect();
        assert_eq!(got, [("a", false), ("b", true)]);
    }

    #[test]
    fn records_after_a_block_lost_in_a_power_failure_are_not_durable() {
        let mut s = State::new();
        let mut bytes = journal(&s, &[JournalRecord::Pending(res("a"))]);
        let lost_from = bytes.len();
        bytes.extend(record_line(
            &JournalRecord::Upsert(res("a")),
            &Keyring::none(),
            &s.lineage,
        ));
        // The block holding the upsert never reached the disk; the next one did.
        for b in &mut bytes[lost_from + 5..] {
            *b = 0;
        }
        bytes.extend(record_line(
            &JournalRecord::Pending(res("b")),
            &Keyring::none(),
            &s.lineage,
        ));
        let n = replay(Path::new("j"), &bytes, &mut s, &Keyring::none()).unwrap();
        assert_eq!(n, 1);
        let got: Vec<(&str, bool)> = s
            .resources
            .iter()
            .map(|r| (r.address.as_str(), r.pending))
            .collect();
        assert_eq!(
            got,
            [("a", true)],
            "a stays pending: the next plan adopts it"
        );
    }

    #[test]
    fn a_journal_already_included_in_the_state_is_ignored() {
        let mut s = State::new();
        let bytes = journal(&s, &[JournalRecord::Pending(res("a"))]);
        s.serial += 1;
        assert_eq!(
            replay(Path::new("j"), &bytes, &mut s, &Keyring::none()).unwrap(),
            0
        );
        assert!(s.resources.is_empty());
    }

    #[test]
    fn foreign_newer_or_garbled_journals_are_errors() {
        let s = State::new();
        let bytes = journal(&State::new(), &[]);
        let err = replay(Path::new("/p/j"), &bytes, &mut s.clone(), &Keyring::none()).unwrap_err();
        assert!(err.to_string().contains("lineage"), "{err}");
        assert!(err.to_string().contains("/p/j"), "{err}");

        let mut newer = s.clone();
        newer.serial = 5;
        let bytes = journal(&newer, &[]);
        let err = replay(Path::new("j"), &bytes, &mut s.clone(), &Keyring::none()).unwrap_err();
        assert!(err.to_string().contains("older serial"), "{err}");

        let mut bytes = journal(&s, &[JournalRecord::Pending(res("a"))]);
        bytes.extend_from_slice(b"garbage\n");
        bytes.extend(record_line(
            &JournalRecord::Pending(res("b")),
            &Keyring::none(),
            &s.lineage,
        ));
        let err = replay(Path::new("j"), &bytes, &mut s.clone(), &Keyring::none()).unwrap_err();
        assert!(
            matches!(err, StateError::JournalCorrupt { line: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_journal_killed_while_writing_its_header_is_empty() {
        let mut s = State::new();
        assert_eq!(
            replay(Path::new("j"), b"", &mut s, &Keyring::none()).unwrap(),
            0
        );
        assert_eq!(
            replay(Path::new("j"), b"{\"journ", &mut s, &Keyring::none()).unwrap(),
            0
        );
    }
}
