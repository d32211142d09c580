//! The local backend, in one process: persistence, backups, permissions and locking.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;
use terrace_provider::{Address, Attrs, ProviderKey};
use terrace_state::{
    JournalRecord, LocalBackend, LockInfo, ResourceState, State, StateError, FORMAT_VERSION,
};

fn resource(addr: &str, owner: &str) -> ResourceState {
    ResourceState {
        address: Address::new(addr),
        type_name: "sql_database".into(),
        provider: ProviderKey("service.pg".into()),
        attributes: Attrs::from([
            ("name".to_string(), json!(addr)),
            ("owner".to_string(), json!(owner)),
            ("password".to_string(), json!("s3cret")),
        ]),
        sensitive_attributes: vec!["password".into()],
        dependencies: vec![Address::new("database.x.user")],
        pending: false,
    }
}

fn backend() -> (tempfile::TempDir, LocalBackend) {
    let dir = tempfile::tempdir().unwrap();
    let b = LocalBackend::in_dir(dir.path());
    (dir, b)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn load_without_file_is_none() {
    let (_d, b) = backend();
    assert_eq!(b.load().unwrap(), None);
}

#[test]
fn round_trip_save_load() {
    let (_d, b) = backend();
    let mut s = State::new();
    s.upsert(resource("database.b", "bob"));
    s.upsert(resource("database.a", "alice"));
    b.lock("apply").unwrap().write(&mut s).unwrap();
    let loaded = b.load().unwrap().unwrap();
    assert_eq!(loaded, s);
    assert_eq!(loaded.version, FORMAT_VERSION);
    let text = fs::read_to_string(b.path()).unwrap();
    assert!(text.ends_with("}\n"), "trailing newline");
    assert!(text.starts_with("{\n  \"version\": 1,\n"), "{text}");
    assert!(text.find("database.a").unwrap() < text.find("database.b").unwrap());
}

#[test]
fn same_state_writes_same_bytes_apart_from_serial() {
    let (_d, b) = backend();
    let mut s = State::new();
    s.upsert(resource("database.a", "alice"));
    let mut lock = b.lock("apply").unwrap();
    lock.write(&mut s).unwrap();
    let first = fs::read_to_string(b.path()).unwrap();
    lock.write(&mut s).unwrap();
    let second = fs::read_to_string(b.path()).unwrap();
    assert_eq!(
        first.replace("\"serial\": 1,", "\"serial\": 2,"),
        second,
        "only the serial changes"
    );
}

#[test]
fn serial_increments_on_each_write_and_lineage_is_stable() {
    let (_d, b) = backend();
    let mut s = State::new();
    let lineage = s.lineage.clone();
    assert_eq!(s.serial, 0);
    {
        let mut lock = b.lock("apply").unwrap();
        lock.write(&mut s).unwrap();
        assert_eq!(s.serial, 1);
        lock.write(&mut s).unwrap();
        assert_eq!(s.serial, 2);
    }
    let mut loaded = b.load().unwrap().unwrap();
    assert_eq!(loaded.serial, 2);
    assert_eq!(loaded.lineage, lineage);
    let mut lock = b.lock("apply").unwrap();
    loaded.upsert(resource("database.a", "alice"));
    lock.write(&mut loaded).unwrap();
    let again = b.load().unwrap().unwrap();
    assert_eq!(again.serial, 3);
    assert_eq!(again.lineage, lineage);
}

#[test]
fn state_backup_and_lock_files_are_mode_0600() {
    let (_d, b) = backend();
    let mut s = State::new();
    {
        let mut lock = b.lock("apply").unwrap();
        lock.write(&mut s).unwrap();
    }
    // Loosen the mode: the next write must not carry it over.
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o644)).unwrap();
    let mut lock = b.lock("apply").unwrap();
    lock.write(&mut s).unwrap();
    assert_eq!(mode(b.path()), 0o600);
    assert_eq!(mode(&b.backup_path()), 0o600);
    assert_eq!(mode(&b.lock_path()), 0o600);
}

#[test]
fn backup_holds_pre_command_content() {
    let (_d, b) = backend();
    let mut s = State::new();
    s.upsert(resource("database.a", "alice"));
    b.lock("apply").unwrap().write(&mut s).unwrap();
    let original = fs::read(b.path()).unwrap();
    assert!(!b.backup_path().exists(), "no backup without a prior state");

    let mut lock = b.lock("apply").unwrap();
    s.upsert(resource("database.b", "bob"));
    lock.write(&mut s).unwrap();
    let after_first = fs::read(b.path()).unwrap();
    s.upsert(resource("database.c", "carol"));
    lock.write(&mut s).unwrap();
    assert_eq!(fs::read(b.backup_path()).unwrap(), original);
    drop(lock);

    // The next command backs up what the previous command left.
    let mut lock = b.lock("apply").unwrap();
    let before_third = fs::read(b.path()).unwrap();
    assert_ne!(before_third, after_first);
    s.remove(&Address::new("database.a"));
    lock.write(&mut s).unwrap();
    assert_eq!(fs::read(b.backup_path()).unwrap(), before_third);
}

#[test]
fn corrupt_file_is_an_error_naming_the_path_and_left_untouched() {
    let (_d, b) = backend();
    let garbage = b"{\"version\": 1, \"lineage\": ";
    fs::write(b.path(), garbage).unwrap();
    let err = b.load().unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains(&b.path().display().to_string()),
        "{err}"
    );

    let mut lock = b.lock("apply").unwrap();
    let err = lock.write(&mut State::new()).unwrap_err();
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert_eq!(fs::read(b.path()).unwrap(), garbage);
    assert!(!b.backup_path().exists());
}

#[test]
fn unsupported_version_is_refused() {
    let (_d, b) = backend();
    let doc = json!({"version": FORMAT_VERSION + 1, "lineage": "x", "serial": 3,
                     "terrace_version": "9.0.0", "resources": [], "new_field": true});
    fs::write(b.path(), doc.to_string()).unwrap();
    let err = b.load().unwrap_err();
    assert!(
        matches!(
            err,
            StateError::UnsupportedVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("version 2") && msg.contains("upgrade"),
        "{msg}"
    );

    // Nor is it overwritten.
    let before = fs::read(b.path()).unwrap();
    let mut lock = b.lock("apply").unwrap();
    assert!(matches!(
        lock.write(&mut State::new()),
        Err(StateError::UnsupportedVersion { .. })
    ));
    assert_eq!(fs::read(b.path()).unwrap(), before);
}

#[test]
fn second_lock_in_same_process_fails_with_holder_details() {
    let (_d, b) = backend();
    let first = b.lock("apply").unwrap();
    let err = b.lock("plan").unwrap_err();
    match &err {
        StateError::Locked {
            info: Some(info),
            path,
        } => {
            assert_eq!(info.operation, "apply");
            assert_eq!(info.pid, std::process::id());
            assert_eq!(info, first.info());
            assert_eq!(path, &b.lock_path());
        }
        other => panic!("expected Locked with details, got {other:?}"),
    }
    let msg = err.to_string();
    let since = first
        .info()
        .since
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let expected = format!(
        "state is locked by {} (pid {}, apply) since {since}",
        first.info().who,
        std::process::id()
    );
    assert!(msg.starts_with(&expected), "{msg}");
    assert!(msg.contains("released automatically"), "{msg}");

    // A second backend value for the same file conflicts too.
    let other = LocalBackend::new(b.path());
    assert!(matches!(
        other.lock("apply"),
        Err(StateError::Locked { .. })
    ));
}

#[test]
fn lock_is_free_again_after_drop_and_file_remains() {
    let (_d, b) = backend();
    let first = b.lock("apply").unwrap();
    drop(first);
    let second = b.lock("destroy").unwrap();
    assert_eq!(second.info().operation, "destroy");
    assert!(b.lock_path().exists());
    let recorded: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(b.lock_path()).unwrap()).unwrap();
    assert_eq!(recorded["operation"], "destroy");
    assert_eq!(recorded["pid"], std::process::id());
}

#[test]
fn load_does_not_need_the_lock() {
    let (_d, b) = backend();
    let mut s = State::new();
    let mut lock = b.lock("apply").unwrap();
    lock.write(&mut s).unwrap();
    assert_eq!(b.load().unwrap().unwrap(), s);
    assert_eq!(lock.load().unwrap().unwrap(), s);
}

#[test]
fn writes_leave_no_temporary_files() {
    let (d, b) = backend();
    let mut s = State::new();
    for i in 0..3 {
        let mut lock = b.lock("apply").unwrap();
        s.upsert(resource(&format!("database.d{i}"), "o"));
        lock.write(&mut s).unwrap();
        lock.write(&mut s).unwrap();
    }
    assert_eq!(
        names(d.path()),
        [
            "terrace.state.json",
            "terrace.state.json.backup",
            "terrace.state.json.lock"
        ]
    );
}

#[test]
fn writing_another_lineage_is_refused() {
    let (_d, b) = backend();
    let mut mine = State::new();
    b.lock("apply").unwrap().write(&mut mine).unwrap();
    let before = fs::read(b.path()).unwrap();
    let mut other = State::new();
    let err = b.lock("apply").unwrap().write(&mut other).unwrap_err();
    assert!(matches!(err, StateError::LineageMismatch { .. }), "{err}");
    assert_eq!(other.serial, 0, "serial unchanged on failure");
    assert_eq!(fs::read(b.path()).unwrap(), before);
}

#[test]
fn writing_a_stale_copy_is_refused() {
    let (_d, b) = backend();
    let mut s = State::new();
    b.lock("apply").unwrap().write(&mut s).unwrap();
    let mut stale = b.load().unwrap().unwrap();
    let mut fresh = b.load().unwrap().unwrap();
    b.lock("apply").unwrap().write(&mut fresh).unwrap();
    let err = b.lock("apply").unwrap().write(&mut stale).unwrap_err();
    assert!(
        matches!(
            err,
            StateError::StaleSerial {
                found: 2,
                ours: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(stale.serial, 1);
}

#[test]
fn journal_records_survive_a_killed_apply_and_are_folded_in_once() {
    let (d, b) = backend();
    let mut s = State::new();
    s.upsert(resource("database.old", "o"));
    b.lock("apply").unwrap().write(&mut s).unwrap();

    let mut lock = b.lock("apply").unwrap();
    let mut pending = resource("database.a.user", "alice");
    pending
        .attributes
        .insert("password".into(), json!("generated-pw"));
    lock.append(&mut s, &JournalRecord::Pending(pending.clone()))
        .unwrap();
    let base = fs::read(b.path()).unwrap();
    let base_mtime = fs::metadata(b.path()).unwrap().modified().unwrap();
    lock.append(&mut s, &JournalRecord::Remove(Address::new("database.old")))
        .unwrap();
    lock.append(
        &mut s,
        &JournalRecord::Pending(resource("database.b", "bob")),
    )
    .unwrap();
    lock.append(
        &mut s,
        &JournalRecord::Upsert(resource("database.b", "bob")),
    )
    .unwrap();
    // A step's checkpoint appends to the journal; the state file stays as it was.
    assert_eq!(fs::read(b.path()).unwrap(), base);
    assert_eq!(
        fs::metadata(b.path()).unwrap().modified().unwrap(),
        base_mtime
    );
    assert_eq!(mode(&b.journal_path()), 0o600);
    // Killed here, before the final write (dropping the lock only empties the lock
    // file; the journal stays as a kill leaves it).
    drop(lock);

    let seen = b.load().unwrap().unwrap();
    assert_eq!(
        seen.resources, s.resources,
        "readers see the journal applied"
    );
    let user = seen.get(&Address::new("database.a.user")).unwrap();
    assert!(user.pending);
    assert_eq!(user.attributes["password"], "generated-pw");
    assert!(!seen.get(&Address::new("database.b")).unwrap().pending);
    assert!(seen.get(&Address::new("database.old")).is_none());

    // The next lock holder folds it into the state file, once.
    let serial = seen.serial;
    let mut lock = b.lock("apply").unwrap();
    let recovered = lock.load().unwrap().unwrap();
    assert_eq!(recovered.serial, serial + 1);
    assert!(!b.journal_path().exists());
    assert_eq!(b.load().unwrap().unwrap(), recovered);
    drop(lock);
    assert!(names(d.path()).iter().all(|n| !n.ends_with(".tmp")));
}

#[test]
fn a_full_write_ends_the_journal() {
    let (_d, b) = backend();
    let mut s = State::new();
    let mut lock = b.lock("apply").unwrap();
    lock.append(&mut s, &JournalRecord::Pending(resource("database.a", "a")))
        .unwrap();
    assert!(b.journal_path().exists());
    lock.append(&mut s, &JournalRecord::Upsert(resource("database.a", "a")))
        .unwrap();
    lock.write(&mut s).unwrap();
    assert!(!b.journal_path().exists());
    let loaded = b.load().unwrap().unwrap();
    assert_eq!(loaded, s);
    assert!(!loaded.resources[0].pending);
    let text = fs::read_to_string(b.path()).unwrap();
    assert!(!text.contains("pending"), "false is not written: {text}");
}

#[test]
fn a_stale_journal_beside_a_newer_state_is_ignored() {
    let (_d, b) = backend();
    let mut s = State::new();
    let mut lock = b.lock("apply").unwrap();
    lock.append(&mut s, &JournalRecord::Pending(resource("database.a", "a")))
        .unwrap();
    let journal = fs::read(b.journal_path()).unwrap();
    lock.write(&mut s).unwrap();
    // Killed between the full write and the removal of the journal.
    fs::write(b.journal_path(), journal).unwrap();
    s.remove(&Address::new("database.a"));
    lock.write(&mut s).unwrap();
    drop(lock);
    assert!(b.load().unwrap().unwrap().resources.is_empty());
}

#[test]
fn missing_state_with_a_backup_or_journal_beside_it_is_refused() {
    let (_d, b) = backend();
    let mut s = State::new();
    s.upsert(resource("database.a", "a"));
    b.lock("apply").unwrap().write(&mut s).unwrap();
    b.lock("apply").unwrap().write(&mut s).unwrap();
    assert!(b.backup_path().exists());
    fs::remove_file(b.path()).unwrap();
    let err = b.load().unwrap_err();
    assert!(matches!(err, StateError::MissingState { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(".backup") && msg.contains("cp "), "{msg}");

    fs::rename(b.backup_path(), b.journal_path()).unwrap();
    assert!(matches!(
        b.load().unwrap_err(),
        StateError::MissingState { .. }
    ));
}

#[test]
fn a_symlinked_state_path_shares_the_lock_and_stays_a_link() {
    let (d, b) = backend();
    let mut s = State::new();
    b.lock("apply").unwrap().write(&mut s).unwrap();
    let link = d.path().join("link.json");
    std::os::unix::fs::symlink(b.path(), &link).unwrap();
    let via_link = LocalBackend::new(&link);
    assert_eq!(via_link.lock_path(), b.lock_path());

    let held = b.lock("apply").unwrap();
    assert!(matches!(
        via_link.lock("apply"),
        Err(StateError::Locked { .. })
    ));
    drop(held);
    let mut lock = via_link.lock("apply").unwrap();
    lock.write(&mut s).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(b.load().unwrap().unwrap().serial, 2);

    // A relative link, and one whose target does not exist yet.
    let dangling = d.path().join("new.json");
    std::os::unix::fs::symlink("sub/real.json", &dangling).unwrap();
    fs::create_dir(d.path().join("sub")).unwrap();
    let nb = LocalBackend::new(&dangling);
    assert_eq!(
        nb.path(),
        fs::canonicalize(d.path()).unwrap().join("sub/real.json")
    );
}

#[test]
fn stale_temporary_files_are_removed_by_the_next_lock_holder() {
    let (d, b) = backend();
    let mut s = State::new();
    b.lock("apply").unwrap().write(&mut s).unwrap();
    let stale = d.path().join(".terrace.state.json.0123abcd.tmp");
    let stale_backup = d.path().join(".terrace.state.json.backup.4567.tmp");
    let other = d.path().join(".other.json.89.tmp");
    for p in [&stale, &stale_backup, &other] {
        fs::write(p, "secret").unwrap();
    }
    let _lock = b.lock("apply").unwrap();
    assert!(!stale.exists() && !stale_backup.exists());
    assert!(other.exists(), "other files are not touched");
}

#[test]
fn the_lock_file_is_emptied_when_the_lock_is_released() {
    let (_d, b) = backend();
    let lock = b.lock("apply").unwrap();
    let held: LockInfo = serde_json::from_str(&fs::read_to_string(b.lock_path()).unwrap()).unwrap();
    assert_eq!(&held, lock.info());
    assert!(!held.id.is_empty());
    assert_eq!(b.lock_holder().unwrap(), Some(Some(held)));
    drop(lock);
    assert_eq!(fs::read(b.lock_path()).unwrap(), b"");
    assert_eq!(b.lock_holder().unwrap(), None);
}

#[test]
fn history_lists_the_backup_and_restore_writes_it_back_as_the_next_version() {
    let (_d, b) = backend();
    let b = terrace_state::Backend::from(b);
    assert!(b.history().unwrap().is_empty());
    let mut state = State::new();
    state.upsert(resource("database.a", "a"));
    b.lock("apply").unwrap().write(&mut state).unwrap();
    state.upsert(resource("database.b", "b"));
    b.lock("apply").unwrap().write(&mut state).unwrap();
    let history = b.history().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!((history[0].serial, history[0].resources), (1, 1));
    let mut lock = b.lock("state restore").unwrap();
    assert!(lock
        .restore(2)
        .unwrap_err()
        .to_string()
        .contains("serial 2"));
    let restored = lock.restore(1).unwrap();
    drop(lock);
    assert_eq!(restored.serial, 3);
    assert_eq!(b.load().unwrap().unwrap().resources.len(), 1);
}
