//! Secrets encrypted at rest in the local backend: absent from every stored byte,
//! readable with the key, rotation, wrong or missing key, and the explicit migration of a
//! state in clear.

use std::fs;
use std::path::Path;

use serde_json::json;
use terrace_provider::{Address, Attrs, ProviderKey};
use terrace_state::{JournalRecord, Keyring, LocalBackend, ResourceState, State, StateError};

const SECRET: &str = "pw-Zq8vX3kT9";
const PENDING_SECRET: &str = "pw-pending-Jr5bN2";

fn user(addr: &str, password: &str) -> ResourceState {
    ResourceState {
        address: Address::new(addr),
        type_name: "sql_user".into(),
        provider: ProviderKey("service.pg".into()),
        attributes: Attrs::from([
            ("name".to_string(), json!("app_user")),
            ("password".to_string(), json!(password)),
        ]),
        sensitive_attributes: vec!["password".into()],
        dependencies: vec![],
        pending: false,
    }
}

fn key(byte: u8) -> Keyring {
    Keyring::from_key([byte; 32])
}

/// Every file in `dir`, concatenated.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.extend(fs::read(p).unwrap());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Writes a state with one secret, then journals a pending create with another, and
/// leaves the journal in place (as a killed apply would).
fn write_with_journal(b: &LocalBackend) -> State {
    let mut state = State::new();
    state.upsert(user("database.a.user", SECRET));
    b.lock("apply").unwrap().write(&mut state).unwrap();
    // A second command, so that a backup exists.
    let mut lock = b.lock("apply").unwrap();
    lock.append(
        &mut state,
        &JournalRecord::Pending(user("database.b.user", PENDING_SECRET)),
    )
    .unwrap();
    // Dropping the lock without a full write keeps the journal, as a crash would.
    drop(lock);
    state
}

#[test]
fn secrets_are_absent_from_state_backup_and_journal_and_readable_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackend::in_dir(dir.path()).with_keys(key(1));
    let written = write_with_journal(&b);
    assert!(b.journal_path().exists() && b.backup_path().exists());

    let bytes = all_bytes(dir.path());
    assert!(!contains(&bytes, SECRET), "secret stored in clear");
    assert!(
        !contains(&bytes, PENDING_SECRET),
        "pending secret stored in clear"
    );
    // What is not secret stays readable.
    let text = fs::read_to_string(b.path()).unwrap();
    assert!(text.contains("\"name\": \"app_user\""), "{text}");
    assert!(text.contains("\"encryption\""), "{text}");

    let loaded = b.load().unwrap().unwrap();
    assert_eq!(loaded.resources, written.resources);
    let pending = loaded.get(&Address::new("database.b.user")).unwrap();
    assert!(pending.pending);
    assert_eq!(pending.attributes["password"], json!(PENDING_SECRET));
}

#[test]
fn a_wrong_or_missing_key_is_a_clear_error_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackend::in_dir(dir.path()).with_keys(key(1));
    write_with_journal(&b);
    let before = all_bytes(dir.path());

    let wrong = LocalBackend::in_dir(dir.path()).with_keys(key(2));
    let err = wrong.load().unwrap_err();
    assert!(matches!(err, StateError::Encrypted { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("do not open it") && msg.contains("nothing was changed"),
        "{msg}"
    );
    // Taking the lock folds the journal in: with the wrong key it must fail first.
    let mut lock = wrong.lock("apply").unwrap();
    assert!(lock.load().is_err());
    drop(lock);

    let none = LocalBackend::in_dir(dir.path());
    let err = none.load().unwrap_err().to_string();
    assert!(err.contains("no state key is configured"), "{err}");
    let mut lock = none.lock("apply").unwrap();
    assert!(lock.load().is_err());
    drop(lock);

    assert_eq!(before, all_bytes(dir.path()));
}

#[test]
fn rotation_reads_with_the_fallback_and_writes_with_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let old = LocalBackend::in_dir(dir.path()).with_keys(key(1));
    write_with_journal(&old);

    let rotating = LocalBackend::in_dir(dir.path()).with_keys(key(3).with_fallback(key(1)));
    let mut lock = rotating.lock("state encrypt").unwrap();
    let state = lock.convert(key(3).with_fallback(key(1))).unwrap().unwrap();
    drop(lock);
    assert_eq!(state.resources.len(), 2);

    // Only the new key is needed now, for the state and its backup alike.
    let new = LocalBackend::in_dir(dir.path()).with_keys(key(3));
    assert_eq!(new.load().unwrap().unwrap().resources, state.resources);
    let backup = LocalBackend::new(new.backup_path()).with_keys(key(3));
    assert!(backup.load().unwrap().is_some());
    assert!(old.load().is_err());
    assert!(!contains(&all_bytes(dir.path()), SECRET));
}

#[test]
fn a_state_in_clear_is_refused_until_encrypted_and_can_be_decrypted_back() {
    let dir = tempfile::tempdir().unwrap();
    let plain = LocalBackend::in_dir(dir.path());
    let mut state = State::new();
    state.upsert(user("database.a.user", SECRET));
    plain.lock("apply").unwrap().write(&mut state).unwrap();
    // A second command leaves a backup in clear too.
    plain.lock("apply").unwrap().write(&mut state).unwrap();
    assert!(contains(&all_bytes(dir.path()), SECRET));

    let keyed = LocalBackend::in_dir(dir.path()).with_keys(key(1));
    let err = keyed.load().unwrap_err();
    assert!(matches!(err, StateError::Plaintext { .. }), "{err}");
    let mut lock = keyed.lock("apply").unwrap();
    assert!(matches!(lock.load(), Err(StateError::Plaintext { .. })));

    let converted = lock.convert(key(1)).unwrap().unwrap();
    drop(lock);
    assert_eq!(converted.serial, 3);
    assert!(
        !contains(&all_bytes(dir.path()), SECRET),
        "backup kept in clear"
    );
    assert_eq!(keyed.load().unwrap().unwrap().resources, state.resources);

    // And back, explicitly.
    let mut lock = keyed.lock("state decrypt").unwrap();
    lock.convert(Keyring::none()).unwrap();
    drop(lock);
    assert_eq!(plain.load().unwrap().unwrap().resources, state.resources);
    assert!(!fs::read_to_string(plain.path())
        .unwrap()
        .contains("encryption"));
}

#[test]
fn passphrase_keys_work_and_a_key_file_must_be_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackend::in_dir(dir.path()).with_keys(Keyring::from_passphrase("tr0ub4dor"));
    write_with_journal(&b);
    assert!(!contains(&all_bytes(dir.path()), SECRET));
    let again = LocalBackend::in_dir(dir.path()).with_keys(Keyring::from_passphrase("tr0ub4dor"));
    assert_eq!(again.load().unwrap().unwrap().resources.len(), 2);
    let wrong = LocalBackend::in_dir(dir.path()).with_keys(Keyring::from_passphrase("tr0ub4dor!"));
    assert!(wrong.load().is_err());

    let keydir = tempfile::tempdir().unwrap();
    let file = keydir.path().join("state.key");
    fs::write(&file, "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    let var = |name: &str| {
        (name == "TERRACE_STATE_KEY_FILE").then(|| file.to_string_lossy().into_owned())
    };
    let err = Keyring::from_vars(var).unwrap_err().to_string();
    assert!(err.contains("chmod 600") && !err.contains("AQEB"), "{err}");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(Keyring::from_vars(var).unwrap(), key(1));
}
