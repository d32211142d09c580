//! Secrets encrypted at rest, end to end: the real binary applies a PostgreSQL tenant
//! with a state key, and the generated password is nowhere in the stored bytes, yet the
//! tenant logs in with it; a missing or wrong key is a clear error that changes nothing;
//! a state in clear is refused until `state encrypt`; rotation with a fallback key.

mod common;

use std::path::Path;

use common::{block_on, pg_service, unique, Project};
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use terrace_state::{Keyring, LocalBackend};

const KEY1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const KEY2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

fn hcl(db: &str) -> String {
    format!(
        "{}\ntenant \"t\" {{\n  database {{\n    service = service.pg\n    name = \"{db}\"\n  }}\n}}\n",
        pg_service()
    )
}

/// The tenant's generated password, read with `key`.
fn password(p: &Project, key: [u8; 32]) -> String {
    let state = LocalBackend::new(p.state_path())
        .with_keys(Keyring::from_key(key))
        .load()
        .unwrap()
        .unwrap();
    let user = state
        .resources
        .iter()
        .find(|r| r.type_name == "sql_user")
        .expect("a sql_user in the state");
    user.attributes["password"].as_str().unwrap().to_string()
}

/// Every file of the project directory (state, backup, lineage record), concatenated.
fn stored(dir: &Path) -> String {
    let mut out = String::new();
    for e in walk(dir) {
        out.push_str(&String::from_utf8_lossy(&std::fs::read(e).unwrap()));
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

async fn login(user: &str, password: &str, db: &str) -> Result<(), String> {
    PgConnectOptions::new()
        .host("127.0.0.1")
        .port(5432)
        .username(user)
        .password(password)
        .database(db)
        .connect()
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn flat(text: &str) -> String {
    text.split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn an_encrypted_state_hides_the_password_and_still_converges() {
    let db = unique("enc");
    let p = Project::new(&hcl(&db));
    let k1 = [("TERRACE_STATE_KEY", KEY1)];
    p.terrace_env(&["apply", "--auto-approve"], &k1)
        .expect_code(0);
    // A second apply leaves a backup (of the encrypted state) beside it.
    p.terrace_env(&["apply", "--auto-approve"], &k1)
        .expect_code(0);

    let pw = password(&p, [1; 32]);
    assert!(pw.len() >= 16);
    assert!(!stored(p.path()).contains(&pw), "password stored in clear");
    assert!(stored(p.path()).contains(&db), "names stay readable");
    block_on(login(&db, &pw, &db)).expect("the tenant logs in with the stored password");
    let plan = p.terrace_env(&["plan", "--detailed-exitcode"], &k1);
    let plan = plan.expect_code(0);
    assert!(plan.stdout.contains("No changes"), "{}", plan.stdout);
    let list = p.terrace_env(&["state", "list"], &k1).expect_code(0);
    assert!(list.stdout.contains("tenant.t.database"), "{}", list.stdout);

    // Without the key, or with another one: a clear error, and nothing changes.
    let before = stored(p.path());
    let none = p.terrace(&["plan"]);
    assert_ne!(none.code, 0);
    assert!(
        flat(&none.stderr).contains("no state key is configured"),
        "{}",
        none.stderr
    );
    let wrong = p.terrace_env(&["apply", "--auto-approve"], &[("TERRACE_STATE_KEY", KEY2)]);
    assert_ne!(wrong.code, 0);
    assert!(
        flat(&wrong.stderr).contains("do not open it"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.all().contains(&pw));
    assert_eq!(before, stored(p.path()), "a failed read changed files");

    // Rotation: the new key, the old one as fallback, then the new key alone.
    p.terrace_env(
        &["state", "encrypt"],
        &[
            ("TERRACE_STATE_KEY", KEY2),
            ("TERRACE_STATE_FALLBACK_KEY", KEY1),
        ],
    )
    .expect_code(0);
    assert_eq!(password(&p, [2; 32]), pw);
    let k2 = [("TERRACE_STATE_KEY", KEY2)];
    p.terrace_env(&["plan", "--detailed-exitcode"], &k2)
        .expect_code(0);
    assert!(!stored(p.path()).contains(&pw));

    p.terrace_env(&["destroy", "--auto-approve"], &k2)
        .expect_code(0);
}

#[test]
fn a_state_in_clear_is_refused_once_a_key_is_set_until_encrypted() {
    let db = unique("encp");
    let p = Project::new(&hcl(&db));
    p.apply();
    let state = std::fs::read_to_string(p.state_path()).unwrap();
    assert!(!state.contains("terrace-enc:"));

    let k1 = [("TERRACE_STATE_KEY", KEY1)];
    let refused = p.terrace_env(&["plan"], &k1);
    assert_ne!(refused.code, 0);
    assert!(
        flat(&refused.stderr).contains("is not encrypted"),
        "{}",
        refused.stderr
    );
    assert!(
        flat(&refused.stderr).contains("terrace state encrypt"),
        "{}",
        refused.stderr
    );
    assert_eq!(state, std::fs::read_to_string(p.state_path()).unwrap());

    let out = p.terrace_env(&["state", "encrypt"], &k1).expect_code(0);
    assert!(out.stdout.contains("now encrypted"), "{}", out.stdout);
    let pw = password(&p, [1; 32]);
    assert!(!stored(p.path()).contains(&pw), "a copy in clear was left");
    p.terrace_env(&["plan", "--detailed-exitcode"], &k1)
        .expect_code(0);

    // And back in clear, explicitly.
    p.terrace_env(&["state", "decrypt"], &k1).expect_code(0);
    p.terrace(&["plan", "--detailed-exitcode"]).expect_code(0);
    p.terrace(&["destroy", "--auto-approve"]).expect_code(0);
}
