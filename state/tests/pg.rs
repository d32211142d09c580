//! The PostgreSQL backend against the real server of `scripts/services.sh`
//! (`TERRACE_TEST_PG_URL`): round trips, the journal, serial and lineage checks, leases,
//! history and restore. Each test uses its own state name.

use serde_json::json;
use terrace_provider::{Address, Attrs, ProviderKey};
use terrace_state::{Backend, JournalRecord, Keyring, ResourceState, State, StateError};

fn url() -> String {
    std::env::var("TERRACE_TEST_PG_URL")
        .expect("TERRACE_TEST_PG_URL is not set: `source target/services.env`")
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    )
}

fn backend(name: &str, extra: &str) -> Backend {
    Backend::parse(&format!("{}?state={name}{extra}", url()), "unused").unwrap()
}

fn user(addr: &str, password: &str) -> ResourceState {
    ResourceState {
        address: Address::new(addr),
        type_name: "sql_user".into(),
        provider: ProviderKey("service.pg".into()),
        attributes: Attrs::from([
            ("name".to_string(), json!("u")),
            ("password".to_string(), json!(password)),
        ]),
        sensitive_attributes: vec!["password".into()],
        dependencies: vec![],
        pending: false,
    }
}

#[test]
fn writes_journal_history_and_restore() {
    let b = backend(&unique("rt"), "&history=3");
    assert!(b.load().unwrap().is_none());
    assert!(!b.exists().unwrap());
    let mut lock = b.lock("apply").unwrap();
    let mut state = State::new();
    state.upsert(user("a", "pw-a"));
    lock.write(&mut state).unwrap();
    lock.append(&mut state, &JournalRecord::Pending(user("b", "pw-b")))
        .unwrap();
    drop(lock); // as if killed: the journal stays

    let seen = b.load().unwrap().unwrap();
    assert!(seen.get(&Address::new("b")).unwrap().pending);
    let mut lock = b.lock("apply").unwrap();
    let mut state = lock.load().unwrap().unwrap(); // folds the journal in
    assert_eq!(state.serial, 3);
    for i in 0..4 {
        state.upsert(user(&format!("c{i}"), "pw"));
        lock.write(&mut state).unwrap();
    }
    drop(lock);
    let history = b.history().unwrap();
    let serials: Vec<u64> = history.iter().map(|h| h.serial).collect();
    assert_eq!(serials, [6, 5, 4], "the last 3 versions");

    let mut lock = b.lock("state restore").unwrap();
    let restored = lock.restore(4).unwrap();
    assert_eq!(restored.serial, 8);
    assert_eq!(restored.resources.len(), 3, "a, b and c0");
    assert!(lock
        .restore(1)
        .unwrap_err()
        .to_string()
        .contains("serial 1"));
    drop(lock);
    assert_eq!(b.load().unwrap().unwrap(), restored);
}

#[test]
fn a_stale_writer_and_another_lineage_are_refused() {
    let name = unique("stale");
    let b = backend(&name, "");
    let mut state = State::new();
    b.lock("apply").unwrap().write(&mut state).unwrap();

    // Two commands load serial 1; the first writes, the second is stale.
    let mut copy = b.load().unwrap().unwrap();
    let mut other = copy.clone();
    b.lock("apply").unwrap().write(&mut other).unwrap();
    let err = b.lock("apply").unwrap().write(&mut copy).unwrap_err();
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
    assert_eq!(copy.serial, 1);

    let mut foreign = State::new();
    foreign.serial = 10;
    let err = b.lock("apply").unwrap().write(&mut foreign).unwrap_err();
    assert!(matches!(err, StateError::LineageMismatch { .. }), "{err}");
    assert_eq!(b.load().unwrap().unwrap().serial, 2);
}

#[test]
fn leases_name_the_holder_and_force_unlock_names_what_it_removes() {
    let name = unique("lease");
    let b = backend(&name, "&lease=2");
    let held = b.lock("apply").unwrap();
    let err = b.lock("plan").unwrap_err().to_string();
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(
        err.contains("apply") && err.contains(&held.info().id),
        "{err}"
    );
    // The live holder renews its lease: still held after longer than the lease.
    std::thread::sleep(std::time::Duration::from_millis(2600));
    assert!(b.lock("plan").is_err());
    let holder = b.lock_holder().unwrap().flatten().unwrap();
    assert_eq!(holder.id, held.info().id);
    // Not with another ID, not while this process (on this machine) runs.
    assert!(b
        .force_unlock("nope")
        .unwrap_err()
        .to_string()
        .contains("not nope"));
    assert!(b
        .force_unlock(&held.info().id)
        .unwrap_err()
        .to_string()
        .contains("still running"));
    drop(held);
    assert_eq!(b.lock_holder().unwrap(), None);
    let other = backend(&unique("lease-other"), "");
    let _a = b.lock("apply").unwrap();
    let _b = other.lock("apply").expect("states never share a lock");
}

#[test]
fn encrypted_states_hide_secrets_in_every_table() {
    let name = unique("enc");
    let b = backend(&name, "").with_keys(Keyring::from_key([9; 32]));
    let mut lock = b.lock("apply").unwrap();
    let mut state = State::new();
    state.upsert(user("a", "pw-Hidden-1"));
    lock.write(&mut state).unwrap();
    lock.append(
        &mut state,
        &JournalRecord::Pending(user("b", "pw-Hidden-2")),
    )
    .unwrap();
    lock.write(&mut state).unwrap();
    lock.append(
        &mut state,
        &JournalRecord::Pending(user("c", "pw-Hidden-3")),
    )
    .unwrap();
    drop(lock);
    let loaded = b.load().unwrap().unwrap();
    assert_eq!(loaded.resources.len(), 3);
    let text = stored(&name);
    assert!(text.contains("terrace-enc:v1:"), "{text}");
    assert!(!text.contains("pw-Hidden"), "{text}");
    let plain = backend(&name, "");
    assert!(plain
        .load()
        .unwrap_err()
        .to_string()
        .contains("no state key"));

    // Encrypting a state written in clear rewrites its history too.
    let name = unique("enc-later");
    let plain = backend(&name, "");
    let mut state = State::new();
    state.upsert(user("a", "pw-Hidden-4"));
    plain.lock("apply").unwrap().write(&mut state).unwrap();
    plain.lock("apply").unwrap().write(&mut state).unwrap();
    assert!(stored(&name).contains("pw-Hidden-4"));
    let keyed = backend(&name, "").with_keys(Keyring::from_key([9; 32]));
    assert!(matches!(keyed.load(), Err(StateError::Plaintext { .. })));
    keyed
        .lock("state encrypt")
        .unwrap()
        .convert(Keyring::from_key([9; 32]))
        .unwrap();
    assert!(!stored(&name).contains("pw-Hidden-4"), "{}", stored(&name));
    assert_eq!(keyed.load().unwrap().unwrap().resources, state.resources);
}

/// Every stored row of state `name` (document, history, journal), read with psql.
fn stored(name: &str) -> String {
    let out = std::process::Command::new("psql")
        .arg(url())
        .args(["-At", "-c"])
        .arg(format!(
            "SELECT document FROM terrace_states WHERE name = '{name}' UNION ALL \
             SELECT document FROM terrace_state_history WHERE name = '{name}' UNION ALL \
             SELECT record FROM terrace_state_journal WHERE name = '{name}'"
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}
