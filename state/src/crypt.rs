//! Encryption at rest of the secrets in a state: the values of each resource's
//! `sensitive_attributes`, in the state file, its backup and the journal.
//!
//! Only those values are encrypted; everything else stays readable JSON, so `state
//! list`/`state show` and diffs of the state keep working. An encrypted value is a JSON
//! string `"terrace-enc:v1:<key id>:<base64 of nonce ‖ ciphertext>"`, sealed with
//! XChaCha20-Poly1305 (24-byte random nonce, so random nonces never collide in
//! practice), with the state's lineage, the resource's address and the attribute's name
//! as associated data: a ciphertext moved to another attribute, resource or state does
//! not decrypt. A state document that holds encrypted values says so in its top-level
//! `"encryption"` field.
//!
//! The key ([`Keyring`]) comes from the environment: `TERRACE_STATE_KEY` (base64 of 32
//! bytes), `TERRACE_STATE_KEY_FILE` (a file of mode 0600 holding the same), or
//! `TERRACE_STATE_PASSPHRASE` (stretched with Argon2id, salted with the state's lineage).
//! The same three names with `FALLBACK_` after `STATE_` give a previous key, used only
//! to read: set the new key and the old one as fallback, and the next write (or `terrace
//! state encrypt`) re-encrypts everything with the new key.
//!
//! What this does not protect against: anyone who has the key (or passphrase) and can
//! run terrace reads every secret, as terrace itself must; the servers terrace manages
//! hold the secrets too; a process running as the user while terrace runs can read its
//! memory and environment; names, addresses and every non-sensitive attribute stay in
//! clear; and nothing hides how many secrets there are, or when they changed.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::StateError;

/// Prefix of an encrypted value.
const PREFIX: &str = "terrace-enc:v1:";
/// The algorithm named in a state's `"encryption"` field.
pub(crate) const ALGORITHM: &str = "xchacha20poly1305";
const NONCE_LEN: usize = 24;

/// Keys derived from passphrases, by (source index, lineage).
type DerivedKeys = HashMap<(usize, String), [u8; 32]>;

/// Where a key comes from. Passphrases are stretched per state (the lineage is the
/// salt), so they stay in this form until a lineage is known.
#[derive(Clone)]
enum Source {
    Raw([u8; 32]),
    Passphrase(String),
}

/// The keys that encrypt and decrypt state secrets: at most one primary key (which
/// encrypts, and decrypts) and any number of fallback keys (which only decrypt). An
/// empty keyring means encryption is not configured: states are written in clear, and an
/// encrypted state cannot be read.
#[derive(Clone, Default)]
pub struct Keyring {
    primary: Option<Source>,
    fallbacks: Vec<Source>,
    /// Argon2 is deliberately slow: keys derived from passphrases, by (source index,
    /// lineage), index 0 being the primary.
    derived: Arc<Mutex<DerivedKeys>>,
}

impl fmt::Debug for Keyring {
    /// Never shows key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("configured", &self.primary.is_some())
            .field("fallbacks", &self.fallbacks.len())
            .finish()
    }
}

impl PartialEq for Keyring {
    /// Two keyrings are equal when they hold the same sources (compared by key id for raw
    /// keys, by content for passphrases).
    fn eq(&self, other: &Self) -> bool {
        let ids = |k: &Keyring| -> Vec<String> {
            k.primary
                .iter()
                .chain(&k.fallbacks)
                .map(|s| match s {
                    Source::Raw(b) => key_id(b),
                    Source::Passphrase(p) => key_id(&Sha256::digest(p.as_bytes()).into()),
                })
                .collect()
        };
        ids(self) == ids(other)
    }
}

impl Eq for Keyring {}

/// An error in the key configuration. The messages name variables and files, never key
/// material.
fn key_error(message: String) -> StateError {
    StateError::Key { message }
}

impl Keyring {
    /// No key: states are read and written in clear.
    pub fn none() -> Self {
        Keyring::default()
    }

    /// A keyring with the raw 32-byte `key` as primary.
    pub fn from_key(key: [u8; 32]) -> Self {
        Keyring {
            primary: Some(Source::Raw(key)),
            ..Keyring::default()
        }
    }

    /// A keyring whose primary key is derived from `passphrase` (Argon2id, salted with
    /// each state's lineage).
    pub fn from_passphrase(passphrase: &str) -> Self {
        Keyring {
            primary: Some(Source::Passphrase(passphrase.to_string())),
            ..Keyring::default()
        }
    }

    /// Adds `other`'s primary key as a fallback (read-only) key of this keyring.
    pub fn with_fallback(mut self, other: Keyring) -> Self {
        self.fallbacks.extend(other.primary);
        self
    }

    /// Whether a primary key is configured, i.e. whether states are written encrypted.
    pub fn is_configured(&self) -> bool {
        self.primary.is_some()
    }

    /// The keyring the environment configures (see the module documentation): from
    /// `TERRACE_STATE_KEY`, `TERRACE_STATE_KEY_FILE` or `TERRACE_STATE_PASSPHRASE` (at
    /// most one), with a fallback from the same names with `FALLBACK_`.
    pub fn from_env() -> Result<Self, StateError> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`Keyring::from_env`] with the variables read through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, StateError> {
        let primary = source(&var, "TERRACE_STATE_")?;
        let fallback = source(&var, "TERRACE_STATE_FALLBACK_")?;
        if primary.is_none() && fallback.is_some() {
            return Err(key_error(
                "a fallback state key is set but no state key: set TERRACE_STATE_KEY (or \
                 TERRACE_STATE_KEY_FILE or TERRACE_STATE_PASSPHRASE) to the key new writes \
                 use"
                .to_string(),
            ));
        }
        Ok(Keyring {
            primary,
            fallbacks: fallback.into_iter().collect(),
            derived: Arc::default(),
        })
    }

    /// The 32-byte key of source `index` (0 = primary) for the state `lineage`.
    fn key(&self, index: usize, lineage: &str) -> Option<[u8; 32]> {
        let source = if index == 0 {
            self.primary.as_ref()?
        } else {
            self.fallbacks.get(index - 1)?
        };
        match source {
            Source::Raw(k) => Some(*k),
            Source::Passphrase(p) => {
                let mut cache = self.derived.lock().unwrap_or_else(|e| e.into_inner());
                let k = cache
                    .entry((index, lineage.to_string()))
                    .or_insert_with(|| derive(p, lineage));
                Some(*k)
            }
        }
    }

    /// A key for another `purpose`, derived (HKDF-SHA256) from the primary key for the
    /// state `lineage` (a passphrase is stretched first, as for the state itself), or
    /// `None` without a primary key. Knowing a derived key tells nothing about the state
    /// key, and keys for different purposes are unrelated.
    pub fn derive_key(&self, lineage: &str, purpose: &str) -> Option<[u8; 32]> {
        let key = self.key(0, lineage)?;
        Some(hkdf_sha256(&key, format!("terrace:{purpose}").as_bytes()))
    }

    /// Every key, primary first, for `lineage`.
    fn keys(&self, lineage: &str) -> Vec<[u8; 32]> {
        (0..=self.fallbacks.len())
            .filter_map(|i| self.key(i, lineage))
            .collect()
    }
}

/// Argon2id (the crate's defaults: 19 MiB, 2 passes) of `passphrase`, salted with the
/// lineage (unique per state, which is all a salt needs to be).
fn derive(passphrase: &str, lineage: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    let salt = format!("terrace-state:{lineage}");
    argon2::Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt.as_bytes(), &mut out)
        .expect("argon2 accepts a 32-byte output and a salt of 14+ bytes");
    out
}

/// The key configured by the variables `<prefix>KEY`, `<prefix>KEY_FILE` and
/// `<prefix>PASSPHRASE`.
fn source(
    var: &impl Fn(&str) -> Option<String>,
    prefix: &str,
) -> Result<Option<Source>, StateError> {
    let key_var = format!("{prefix}KEY");
    let pass_var = format!("{prefix}PASSPHRASE");
    only_one(var, &[&key_var, &format!("{key_var}_FILE"), &pass_var])?;
    if let Some((key, _)) = raw_key_from_vars(var, &key_var, "state key")? {
        return Ok(Some(Source::Raw(key)));
    }
    Ok(var(&pass_var).map(Source::Passphrase))
}

/// Fails if more than one of the variables `names` is set.
fn only_one(var: &impl Fn(&str) -> Option<String>, names: &[&String]) -> Result<(), StateError> {
    let set: Vec<&str> = names
        .iter()
        .filter(|n| var(n).is_some())
        .map(|n| n.as_str())
        .collect();
    if set.len() > 1 {
        return Err(key_error(format!(
            "{} are all set: set only one of them",
            set.join(" and ")
        )));
    }
    Ok(())
}

/// A raw 32-byte key from the variable `name` (base64) or `<name>_FILE` (a file of mode
/// 0600 holding the same), at most one of them set: the state key's rules, for any key
/// terrace takes from the environment (`TERRACE_STATE_KEY`, `TERRACE_PLAN_KEY`). Returns
/// the key and the variable it came from, or `None` if neither is set. `what` names the
/// key in messages ("plan key"), which never show key material.
pub fn raw_key_from_vars(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    what: &str,
) -> Result<Option<([u8; 32], String)>, StateError> {
    let file_var = format!("{name}_FILE");
    only_one(var, &[&name.to_string(), &file_var])?;
    if let Some(text) = var(name) {
        return parse_key(&text, name, what).map(|k| Some((k, name.to_string())));
    }
    if let Some(path) = var(&file_var) {
        return read_key_file(Path::new(&path), &file_var, what).map(|k| Some((k, file_var)));
    }
    Ok(None)
}

/// [`raw_key_from_vars`] with the process environment (empty values count as unset).
pub fn raw_key_from_env(name: &str, what: &str) -> Result<Option<([u8; 32], String)>, StateError> {
    raw_key_from_vars(
        &|n: &str| std::env::var(n).ok().filter(|v| !v.is_empty()),
        name,
        what,
    )
}

/// A base64-encoded 32-byte key. The error names where the key came from, never the key.
fn parse_key(text: &str, origin: &str, what: &str) -> Result<[u8; 32], StateError> {
    let bytes = B64.decode(text.trim()).map_err(|_| {
        key_error(format!(
            "{origin} is not base64 (generate a key with `head -c 32 /dev/urandom | base64`)"
        ))
    })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        key_error(format!(
            "{origin} decodes to {} bytes; a {what} is 32 bytes (generate one with \
             `head -c 32 /dev/urandom | base64`)",
            bytes.len()
        ))
    })
}

/// Reads a key file, which must not be readable by group or others.
fn read_key_file(path: &Path, var: &str, what: &str) -> Result<[u8; 32], StateError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| StateError::io("read key file", path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_error(format!(
            "{what} file {} (from {var}) has mode {mode:o}: others may read it; \
             `chmod 600` it",
            path.display()
        )));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| StateError::io("read key file", path, e))?;
    parse_key(
        &text,
        &format!("{what} file {} (from {var})", path.display()),
        what,
    )
}

/// HKDF-SHA256 (RFC 5869, the `hkdf` crate) of `ikm` for `info`, 32 bytes,
/// with a fixed salt: a key for another purpose, independent of `ikm` for anyone
/// without it.
fn hkdf_sha256(ikm: &[u8], info: &[u8]) -> [u8; 32] {
    hkdf_sha256_salted(b"terrace-hkdf-v1", ikm, info)
}

fn hkdf_sha256_salted(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("32 bytes is within HKDF-SHA256's output limit");
    out
}

/// A short public name for a key: the first 8 hex digits of a SHA-256 over it, so that
/// an error can say which key a value needs without revealing anything about it.
fn key_id(key: &[u8; 32]) -> String {
    let digest = Sha256::new()
        .chain_update(b"terrace-state-key-id\0")
        .chain_update(key)
        .finalize();
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `value` is an encrypted value.
pub(crate) fn is_encrypted(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.starts_with(PREFIX))
}

/// Associated data binding a ciphertext to its place.
fn aad(lineage: &str, address: &str, attribute: &str) -> Vec<u8> {
    let mut v = Vec::new();
    for part in [lineage, address, attribute] {
        v.extend_from_slice(&(part.len() as u64).to_be_bytes());
        v.extend_from_slice(part.as_bytes());
    }
    v
}

/// Encrypts every sensitive attribute of the resource JSON `resource` in place with the
/// primary key. Does nothing without a primary key.
pub(crate) fn seal_resource(keys: &Keyring, lineage: &str, resource: &mut Value) {
    let Some(key) = keys.key(0, lineage) else {
        return;
    };
    let cipher = XChaCha20Poly1305::new(&key.into());
    let id = key_id(&key);
    let Some(obj) = resource.as_object_mut() else {
        return;
    };
    let address = obj
        .get("address")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let names = sensitive_names(obj);
    let Some(attrs) = obj.get_mut("attributes").and_then(Value::as_object_mut) else {
        return;
    };
    for name in names {
        let Some(value) = attrs.get_mut(&name) else {
            continue;
        };
        // Serialising a JSON value cannot fail.
        let plain = serde_json::to_vec(value).expect("JSON value serialises");
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: &aad(lineage, &address, &name),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message this size");
        let mut blob = nonce.to_vec();
        blob.extend(sealed);
        *value = Value::String(format!("{PREFIX}{id}:{}", B64.encode(blob)));
    }
}

/// What went wrong opening the secrets of a document.
pub(crate) enum OpenError {
    /// Encrypted values, but no key configured.
    NoKey,
    /// No configured key opens the value of `attribute` of `address`.
    WrongKey {
        address: String,
        attribute: String,
        needed: String,
        have: Vec<String>,
    },
    /// A malformed encrypted value.
    Malformed { address: String, attribute: String },
}

impl OpenError {
    /// The error for the document at `path`.
    pub(crate) fn into_state_error(self, path: &Path) -> StateError {
        let path = path.to_path_buf();
        match self {
            OpenError::NoKey => StateError::Encrypted {
                path,
                message: "it holds encrypted secrets and no state key is configured: set \
                          TERRACE_STATE_KEY, TERRACE_STATE_KEY_FILE or \
                          TERRACE_STATE_PASSPHRASE"
                    .to_string(),
            },
            OpenError::WrongKey {
                address,
                attribute,
                needed,
                have,
            } => StateError::Encrypted {
                path,
                message: format!(
                    "the secret {attribute:?} of {address} was encrypted with key {needed}, \
                     and the configured keys ({}) do not open it: wrong key or passphrase? \
                     After a key rotation, set the previous key as \
                     TERRACE_STATE_FALLBACK_KEY (or _KEY_FILE, _PASSPHRASE)",
                    have.join(", ")
                ),
            },
            OpenError::Malformed { address, attribute } => StateError::Corrupt {
                path,
                message: format!("the encrypted value of {attribute:?} of {address} is malformed"),
            },
        }
    }
}

/// Decrypts every encrypted sensitive attribute of `resource` in place. Returns how many
/// values were encrypted.
pub(crate) fn open_resource(
    keys: &Keyring,
    lineage: &str,
    resource: &mut Value,
) -> Result<usize, OpenError> {
    let Some(obj) = resource.as_object_mut() else {
        return Ok(0);
    };
    let address = obj
        .get("address")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(attrs) = obj.get_mut("attributes").and_then(Value::as_object_mut) else {
        return Ok(0);
    };
    let mut opened = 0;
    // Every attribute is checked, not only the listed ones, so that an encrypted value
    // is never taken for a clear one.
    for (name, value) in attrs.iter_mut() {
        if !is_encrypted(value) {
            continue;
        }
        let malformed = || OpenError::Malformed {
            address: address.clone(),
            attribute: name.clone(),
        };
        let text = value.as_str().expect("checked above")[PREFIX.len()..].to_string();
        let (id, data) = text.split_once(':').ok_or_else(malformed)?;
        let blob = B64.decode(data).map_err(|_| malformed())?;
        if blob.len() < NONCE_LEN {
            return Err(malformed());
        }
        let all = keys.keys(lineage);
        if all.is_empty() {
            return Err(OpenError::NoKey);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = XNonce::from(<[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| malformed())?);
        let plain = all
            .iter()
            .filter(|k| key_id(k) == id)
            .find_map(|k| {
                XChaCha20Poly1305::new(&(*k).into())
                    .decrypt(
                        &nonce,
                        Payload {
                            msg: sealed,
                            aad: &aad(lineage, &address, name),
                        },
                    )
                    .ok()
            })
            .ok_or_else(|| OpenError::WrongKey {
                address: address.clone(),
                attribute: name.clone(),
                needed: id.to_string(),
                have: all.iter().map(key_id).collect(),
            })?;
        *value = serde_json::from_slice(&plain).map_err(|_| malformed())?;
        opened += 1;
    }
    Ok(opened)
}

/// The names in the resource's `sensitive_attributes`.
fn sensitive_names(obj: &Map<String, Value>) -> Vec<String> {
    obj.get("sensitive_attributes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The `"encryption"` field of a state document written with `keys`.
pub(crate) fn header(keys: &Keyring, lineage: &str) -> Option<Value> {
    let key = keys.key(0, lineage)?;
    Some(serde_json::json!({ "algorithm": ALGORITHM, "key": key_id(&key) }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource() -> Value {
        json!({"address": "database.a.user", "attributes": {"name": "a", "password": "hunter22"},
               "sensitive_attributes": ["password"]})
    }

    #[test]
    fn sealed_values_open_only_in_their_place_and_with_their_key() {
        let k = Keyring::from_key([7; 32]);
        let mut r = resource();
        seal_resource(&k, "L", &mut r);
        let text = r.to_string();
        assert!(!text.contains("hunter22"), "{text}");
        assert_eq!(r["attributes"]["name"], "a");
        let mut moved = r.clone();
        moved["address"] = json!("database.b.user");
        assert!(matches!(
            open_resource(&k, "L", &mut moved),
            Err(OpenError::WrongKey { .. })
        ));
        assert!(matches!(
            open_resource(&Keyring::from_key([8; 32]), "L", &mut r.clone()),
            Err(OpenError::WrongKey { .. })
        ));
        assert!(matches!(
            open_resource(&Keyring::none(), "L", &mut r.clone()),
            Err(OpenError::NoKey)
        ));
        assert_eq!(open_resource(&k, "L", &mut r).ok(), Some(1));
        assert_eq!(r, resource());
    }

    #[test]
    fn keys_come_from_one_variable_and_errors_never_show_them() {
        let key = B64.encode([1u8; 32]);
        let vars = |pairs: Vec<(&'static str, String)>| {
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
        };
        let k = Keyring::from_vars(vars(vec![("TERRACE_STATE_KEY", key.clone())])).unwrap();
        assert!(k.is_configured());
        assert!(!Keyring::from_vars(vars(vec![])).unwrap().is_configured());
        let short = B64.encode([1u8; 16]);
        let err = Keyring::from_vars(vars(vec![("TERRACE_STATE_KEY", short.clone())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("16 bytes") && !err.contains(&short), "{err}");
        let err = Keyring::from_vars(vars(vec![
            ("TERRACE_STATE_KEY", key.clone()),
            ("TERRACE_STATE_PASSPHRASE", "p".into()),
        ]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("only one"), "{err}");
        let err = Keyring::from_vars(vars(vec![("TERRACE_STATE_FALLBACK_KEY", key.clone())]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no state key"), "{err}");
    }

    #[test]
    fn hkdf_matches_rfc_5869_test_case_1() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let salt: Vec<u8> = (0..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        assert_eq!(
            hex(&hkdf_sha256_salted(&salt, &[0x0b; 22], &info)),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
        );
        let k = Keyring::from_key([7; 32]);
        assert_ne!(k.derive_key("L", "plan"), k.key(0, "L"));
        assert_ne!(k.derive_key("L", "plan"), k.derive_key("L", "other"));
        assert_eq!(Keyring::none().derive_key("L", "plan"), None);
    }

    #[test]
    fn other_keys_follow_the_state_key_rules() {
        let key = B64.encode([3u8; 32]);
        let vars = |pairs: Vec<(&'static str, String)>| {
            move |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())
        };
        let got = raw_key_from_vars(&vars(vec![("X_KEY", key.clone())]), "X_KEY", "plan key");
        assert_eq!(got.unwrap(), Some(([3u8; 32], "X_KEY".to_string())));
        assert_eq!(
            raw_key_from_vars(&vars(vec![]), "X_KEY", "plan key").unwrap(),
            None
        );
        let err = raw_key_from_vars(
            &vars(vec![
                ("X_KEY", key.clone()),
                ("X_KEY_FILE", "/nowhere".into()),
            ]),
            "X_KEY",
            "plan key",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("X_KEY and X_KEY_FILE") && !err.contains(&key),
            "{err}"
        );
        let short = B64.encode([1u8; 8]);
        let err = raw_key_from_vars(&vars(vec![("X_KEY", short.clone())]), "X_KEY", "plan key")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a plan key is 32 bytes") && !err.contains(&short),
            "{err}"
        );
    }

    #[test]
    fn passphrase_keys_differ_per_lineage() {
        let k = Keyring::from_passphrase("correct horse");
        assert_ne!(k.key(0, "a"), k.key(0, "b"));
        assert_eq!(
            k.key(0, "a"),
            Keyring::from_passphrase("correct horse").key(0, "a")
        );
    }
}
