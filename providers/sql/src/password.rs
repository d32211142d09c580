//! Password hashes computed and checked on terrace's side.
//!
//! Servers keep a hash, never the password. terrace checks a known password against
//! that hash without logging in (so a password changed by hand shows as drift), and
//! sends hashes instead of passwords wherever the engine accepts them (so a password
//! never reaches a server's statement log):
//!
//! - MariaDB/MySQL `mysql_native_password`: `*` + upper-case hex of SHA1(SHA1(password)),
//!   deterministic, sent as `IDENTIFIED WITH mysql_native_password AS '*…'`;
//! - PostgreSQL SCRAM-SHA-256 (RFC 5802/7677, PostgreSQL's verifier format
//!   `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`): salted, so it is
//!   checked by recomputing the keys with the stored salt and iteration count;
//! - PostgreSQL's legacy `md5` + MD5(password ‖ role name).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Iterations for SCRAM verifiers terrace computes: PostgreSQL's own default.
const SCRAM_ITERATIONS: u32 = 4096;
/// Salt length in bytes: PostgreSQL's own default.
const SCRAM_SALT_LEN: usize = 16;

/// The attribute of `sql_user` saying whether the live password is the configured one;
/// its desired value is always [`PASSWORD_MATCHES`].
pub(crate) const PASSWORD_STATUS: &str = "password_status";
/// The live password is the one terrace set.
pub(crate) const PASSWORD_MATCHES: &str = "matches";
/// The live password is another one.
pub(crate) const PASSWORD_CHANGED: &str = "changed outside terrace";
/// The known password works, and so does another way in (MariaDB `IDENTIFIED VIA … OR
/// …`): a second password someone keeps.
pub(crate) const PASSWORD_ALSO_ANOTHER: &str =
    "another password also works (added outside terrace)";
/// The password was marked expired (MariaDB `PASSWORD EXPIRE`): the application's
/// logins are refused until it is set again.
pub(crate) const PASSWORD_EXPIRED: &str = "expired outside terrace";

/// The attribute of `sql_user` holding the fingerprint of the verifier terrace last set
/// (PostgreSQL): while the server still holds exactly that verifier, the password is
/// the known one, without the 4,096 PBKDF2 rounds a SCRAM check costs per user.
pub(crate) const PASSWORD_FINGERPRINT: &str = "password_fingerprint";

/// SHA-256 (hex) of a stored password hash or verifier. It reveals nothing usable: the
/// verifier itself cannot be recovered from it, let alone the password.
pub(crate) fn fingerprint(stored: &str) -> String {
    hex::encode(Sha256::digest(stored.as_bytes()))
}

/// Why a password was not checked: terrace does not know it (an imported user).
pub(crate) const PASSWORD_UNKNOWN: &str = "unknown";
/// Why a password was not checked: the admin may not read the stored verifiers.
pub(crate) const PASSWORDS_UNREADABLE: &str = "unreadable";

/// What comparing a known password with a server's stored hash found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The stored hash is the known password's.
    Matches,
    /// The stored hash belongs to another password (or the account has none).
    Differs,
    /// The hash is of a kind terrace cannot check (another auth plugin); the string
    /// names it for the plan's "not verified" list.
    Unknown(&'static str),
    /// The known password works, and the account accepts another login method beside it.
    AlsoAnother,
    /// The stored hash is the known password's, but it is marked expired.
    Expired,
}

/// MariaDB/MySQL `mysql_native_password` hash: `*` + HEX(SHA1(SHA1(password))).
pub(crate) fn mysql_native_hash(password: &str) -> String {
    let inner = Sha1::digest(password.as_bytes());
    let outer = Sha1::digest(inner);
    format!("*{}", hex::encode_upper(outer))
}

/// Checks `password` against a MariaDB/MySQL account's `plugin` and
/// `authentication_string`.
pub(crate) fn mysql_check(password: &str, plugin: &str, stored: &str) -> Verdict {
    match plugin {
        // MariaDB reports an empty plugin for old accounts with a native hash.
        "mysql_native_password" | "" => {
            // An account without a password stores an empty string.
            let matches = (stored.is_empty() && password.is_empty())
                || stored.eq_ignore_ascii_case(&mysql_native_hash(password));
            if matches {
                Verdict::Matches
            } else {
                Verdict::Differs
            }
        }
        // No password at all: a socket-only or locked account has no password to match.
        "unix_socket" | "auth_socket" => Verdict::Differs,
        "ed25519" => Verdict::Unknown("ed25519"),
        "caching_sha2_password" => Verdict::Unknown("caching_sha2_password"),
        "sha256_password" => Verdict::Unknown("sha256_password"),
        _ => Verdict::Unknown("an unknown authentication plugin"),
    }
}

/// A fresh PostgreSQL SCRAM-SHA-256 verifier for `password`, with a random salt.
pub(crate) fn scram_verifier(password: &str) -> String {
    let salt: [u8; SCRAM_SALT_LEN] = rand::random();
    let (stored, server) = scram_keys(password, &salt, SCRAM_ITERATIONS);
    format!(
        "SCRAM-SHA-256${SCRAM_ITERATIONS}:{}${}:{}",
        B64.encode(salt),
        B64.encode(stored),
        B64.encode(server)
    )
}

/// Checks `password` against a PostgreSQL `pg_authid.rolpassword` value of role `role`.
pub(crate) fn pg_check(password: &str, role: &str, stored: Option<&str>) -> Verdict {
    let Some(stored) = stored else {
        return Verdict::Differs;
    };
    if let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") {
        return match scram_matches(password, rest) {
            Some(true) => Verdict::Matches,
            Some(false) => Verdict::Differs,
            None => Verdict::Unknown("an unreadable SCRAM verifier"),
        };
    }
    if let Some(hash) = stored.strip_prefix("md5") {
        let mut md5 = md5::Md5::new();
        md5.update(password.as_bytes());
        md5.update(role.as_bytes());
        return if hex::encode(md5.finalize()).eq_ignore_ascii_case(hash) {
            Verdict::Matches
        } else {
            Verdict::Differs
        };
    }
    Verdict::Unknown("an unknown password hash format")
}

/// `<iterations>:<salt>$<StoredKey>:<ServerKey>` checked against `password`; None if
/// the text is not a verifier.
fn scram_matches(password: &str, verifier: &str) -> Option<bool> {
    let (params, keys) = verifier.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    let (stored, server) = keys.split_once(':')?;
    let iterations: u32 = iterations.parse().ok().filter(|n| *n > 0)?;
    let salt = B64.decode(salt).ok()?;
    let stored = B64.decode(stored).ok()?;
    let server = B64.decode(server).ok()?;
    let (want_stored, want_server) = scram_keys(password, &salt, iterations);
    Some(stored == want_stored && server == want_server)
}

/// SCRAM's StoredKey and ServerKey for `password` (SASLprep'd as PostgreSQL does:
/// when the password is not valid for SASLprep, its raw bytes are used).
fn scram_keys(password: &str, salt: &[u8], iterations: u32) -> (Vec<u8>, Vec<u8>) {
    let prepared = stringprep::saslprep(password)
        .map(|p| p.into_owned())
        .unwrap_or_else(|_| password.to_string());
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(prepared.as_bytes(), salt, iterations, &mut salted);
    let client_key = hmac_sha256(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key).to_vec();
    let server_key = hmac_sha256(&salted, b"Server Key");
    (stored_key, server_key)
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_hash_matches_mariadb_password_function() {
        // SELECT PASSWORD('password') on MariaDB 10.11.
        assert_eq!(
            mysql_native_hash("password"),
            "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
        );
        let stored = mysql_native_hash("right");
        assert_eq!(
            mysql_check("right", "mysql_native_password", &stored),
            Verdict::Matches
        );
        assert_eq!(
            mysql_check("wrong", "mysql_native_password", &stored),
            Verdict::Differs
        );
        assert_eq!(
            mysql_check("right", "", &stored.to_lowercase()),
            Verdict::Matches
        );
        assert!(matches!(
            mysql_check("x", "ed25519", "abc"),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn scram_verifiers_round_trip_and_reject_other_passwords() {
        let v = scram_verifier("pencil");
        assert!(v.starts_with("SCRAM-SHA-256$4096:"), "{v}");
        assert!(!v.contains("pencil"));
        assert_eq!(pg_check("pencil", "r", Some(&v)), Verdict::Matches);
        assert_eq!(pg_check("pencil2", "r", Some(&v)), Verdict::Differs);
        // Fresh salt every time: two verifiers of one password differ.
        assert_ne!(v, scram_verifier("pencil"));
        assert!(matches!(
            pg_check("pencil", "r", Some("SCRAM-SHA-256$x")),
            Verdict::Unknown(_)
        ));
        assert_eq!(pg_check("pencil", "r", None), Verdict::Differs);
    }

    #[test]
    fn pg_md5_hashes_are_salted_with_the_role_name() {
        // md5 || MD5('secret' || 'alice'), as PostgreSQL stores it.
        let mut md5 = md5::Md5::new();
        md5.update(b"secretalice");
        let stored = format!("md5{}", hex::encode(md5.finalize()));
        assert_eq!(pg_check("secret", "alice", Some(&stored)), Verdict::Matches);
        assert_eq!(pg_check("secret", "bob", Some(&stored)), Verdict::Differs);
    }
}
