//! The state document and its JSON encoding.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use terrace_provider::{Address, Attrs, ProviderKey};

use serde_json::Value;

use crate::crypt::{self, Keyring};
use crate::error::StateError;

/// The state format version this crate reads and writes. Bump it (and add a migration)
/// whenever the document changes in a way an older terrace would misread.
pub const FORMAT_VERSION: u32 = 1;

/// Everything terrace records about the resources it manages.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct State {
    /// Format version, [`FORMAT_VERSION`] for every state this crate writes.
    pub version: u32,
    /// UUID (v4) chosen when the state was created and kept for its whole life, so that
    /// two unrelated states can never be mistaken for one another.
    pub lineage: String,
    /// Incremented by every write, so that a stale copy can be detected.
    pub serial: u64,
    /// Version of the terrace that last wrote the state, for diagnostics only.
    pub terrace_version: String,
    /// Managed resources, sorted by address: add them with [`State::upsert`] (lookups
    /// are binary searches), never by pushing out of order.
    pub resources: Vec<ResourceState>,
    /// When terrace first created each instance whose configuration gives it a `ttl`
    /// (RFC 3339, by instance address, e.g. `tenant.clone["c101"]`): its lifetime counts
    /// from there. Kept after the instance expired and its resources were destroyed, for
    /// as long as the configuration lists it, so that it is not created again with a
    /// fresh lifetime. Absent from the JSON when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub first_created: BTreeMap<String, String>,
    /// Where each placed tenant instance runs (instance address → host address, e.g.
    /// `tenant.site["blog"]` → `host.web["a"]`), recorded before the apply that creates
    /// it: the configuration's placement rule keeps it there, so adding hosts or tenants
    /// moves no one. Dropped when the instance leaves the configuration. Absent from the
    /// JSON when empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub placements: BTreeMap<String, String>,
}

/// What terrace recorded about one resource after it last created, updated or imported it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ResourceState {
    /// Unique address of the resource.
    pub address: Address,
    /// Resource type, e.g. `sql_database`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Provider instance that owns the resource; needed to delete it once it has left
    /// the configuration.
    pub provider: ProviderKey,
    /// Attributes as returned by the provider, including computed ones.
    pub attributes: Attrs,
    /// Attributes whose values must never be displayed; sorted.
    pub sensitive_attributes: Vec<String>,
    /// Resources this one depended on when it was written; kept so that a resource
    /// removed from the configuration is still destroyed in the right order.
    pub dependencies: Vec<Address>,
    /// True while the resource is only *intended*: an apply recorded that it was about
    /// to create it (with any secret it generated for it) but never recorded that the
    /// create finished. The next plan looks for the object: if it exists it is adopted,
    /// if not it is created, with the recorded secrets either way. Absent from the JSON
    /// when false, so states without pending resources read the same as before.
    #[serde(default, skip_serializing_if = "is_false")]
    pub pending: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl State {
    /// A new, empty state with a fresh lineage and serial 0 (the first write makes it 1).
    ///
    /// `terrace_version` is this crate's version; the CLI may overwrite it with its own.
    pub fn new() -> Self {
        State {
            version: FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            terrace_version: env!("CARGO_PKG_VERSION").to_string(),
            resources: Vec::new(),
            first_created: BTreeMap::new(),
            placements: BTreeMap::new(),
        }
    }

    /// The recorded resource at `address`, if any.
    pub fn get(&self, address: &Address) -> Option<&ResourceState> {
        self.find(address).ok().map(|i| &self.resources[i])
    }

    /// Records `resource`, replacing any resource at the same address, and keeps the list
    /// sorted.
    pub fn upsert(&mut self, resource: ResourceState) {
        match self.find(&resource.address) {
            Ok(i) => self.resources[i] = resource,
            Err(i) => self.resources.insert(i, resource),
        }
    }

    /// Forgets the resource at `address` and returns it.
    pub fn remove(&mut self, address: &Address) -> Option<ResourceState> {
        self.find(address).ok().map(|i| self.resources.remove(i))
    }

    /// Addresses of all recorded resources, in order.
    pub fn addresses(&self) -> impl Iterator<Item = &Address> {
        self.resources.iter().map(|r| &r.address)
    }

    /// Binary search. The order is kept by [`State::upsert`] and restored by every
    /// decode; a linear fallback here made each miss (every create of a first apply)
    /// cost the whole state: quadratic at thousands of resources.
    fn find(&self, address: &Address) -> Result<usize, usize> {
        self.resources.binary_search_by(|r| r.address.cmp(address))
    }

    /// Puts the state in canonical order so that equal states encode to equal bytes.
    /// Fails if two resources share an address, since neither could be chosen safely.
    fn normalize(&mut self) -> Result<(), StateError> {
        self.resources.sort_by(|a, b| a.address.cmp(&b.address));
        if let Some(w) = self
            .resources
            .windows(2)
            .find(|w| w[0].address == w[1].address)
        {
            return Err(StateError::DuplicateAddress {
                address: w[0].address.clone(),
            });
        }
        for r in &mut self.resources {
            r.sensitive_attributes.sort();
            r.sensitive_attributes.dedup();
            r.dependencies.sort();
            r.dependencies.dedup();
        }
        Ok(())
    }
}

impl Default for State {
    /// Same as [`State::new`]: a fresh lineage.
    fn default() -> Self {
        State::new()
    }
}

/// Encodes `state` as pretty JSON with a trailing newline, normalising it first. With a
/// configured key the sensitive attribute values are encrypted and the document gets an
/// `"encryption"` field (see [`crate::crypt`]); without one, the bytes are exactly those
/// of an unencrypted state.
pub(crate) fn encode(state: &mut State, keys: &Keyring) -> Result<Vec<u8>, StateError> {
    state.normalize()?;
    // Serialising plain structs, strings and JSON values cannot fail. The document is
    // written from the structs, in their declaration order (`version` first), without
    // an intermediate JSON tree: at 30,000 resources that tree costs tens of megabytes.
    let mut bytes = match crypt::header(keys, &state.lineage) {
        None => serde_json::to_vec_pretty(&*state),
        Some(header) => {
            let resources = state
                .resources
                .iter()
                .map(|r| {
                    let mut v = serde_json::to_value(r).expect("a resource serialises");
                    crypt::seal_resource(keys, &state.lineage, &mut v);
                    v
                })
                .collect();
            serde_json::to_vec_pretty(&Sealed {
                version: state.version,
                lineage: &state.lineage,
                serial: state.serial,
                terrace_version: &state.terrace_version,
                encryption: header,
                resources,
                first_created: &state.first_created,
                placements: &state.placements,
            })
        }
    }
    .expect("state serialises to JSON");
    bytes.push(b'\n');
    Ok(bytes)
}

/// An encrypted state document as written: the fields of [`State`] in the same order,
/// with the `"encryption"` header before the sealed resources.
#[derive(Serialize)]
struct Sealed<'a> {
    version: u32,
    lineage: &'a str,
    serial: u64,
    terrace_version: &'a str,
    encryption: Value,
    resources: Vec<Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    first_created: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    placements: &'a BTreeMap<String, String>,
}

/// A decoded state document.
pub(crate) struct Decoded {
    /// The state, secrets in clear.
    pub(crate) state: State,
    /// Whether the document was encrypted (had an `"encryption"` field).
    pub(crate) encrypted: bool,
}

/// Decodes a state document read from `path`, decrypting its secrets with `keys`. The
/// version is checked before the rest is interpreted, so a newer format is reported as
/// such rather than as a confusing missing-field error. An encrypted document without a
/// configured key is refused (so it is never rewritten in clear by mistake).
pub(crate) fn decode(path: &Path, bytes: &[u8], keys: &Keyring) -> Result<Decoded, StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let header = header_checked(path, bytes)?;
    // A document without secrets sealed in it is decoded straight into the structs,
    // in one pass.
    let plain = if header.encrypted() {
        None
    } else {
        let state: State = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        // A sealed value in a document without the header (removed by hand) must be
        // opened, or refused, never taken for a clear value.
        let sealed = state
            .resources
            .iter()
            .any(|r| r.attributes.values().any(crypt::is_encrypted));
        (!sealed).then_some(state)
    };
    let mut state = match plain {
        Some(state) => state,
        None => {
            if header.encrypted() && !keys.is_configured() {
                return Err(crypt::OpenError::NoKey.into_state_error(path));
            }
            let mut value: Value =
                serde_json::from_slice(bytes).map_err(|e| corrupt(format!("invalid JSON: {e}")))?;
            let object = value.as_object_mut().expect("checked by header_checked");
            object.remove("encryption");
            let lineage = object
                .get("lineage")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            for r in object
                .get_mut("resources")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                crypt::open_resource(keys, &lineage, r).map_err(|e| e.into_state_error(path))?;
            }
            serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?
        }
    };
    if state.lineage.is_empty() {
        return Err(corrupt("empty \"lineage\"".to_string()));
    }
    state.normalize().map_err(|e| corrupt(e.to_string()))?;
    Ok(Decoded {
        state,
        encrypted: header.encrypted(),
    })
}

/// The lineage and serial of a state document, read without opening its secrets (a
/// writer checks them before replacing the file).
pub(crate) fn peek(path: &Path, bytes: &[u8]) -> Result<(String, u64), StateError> {
    let header = header_checked(path, bytes)?;
    let corrupt = |message: &str| StateError::Corrupt {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    let lineage = header
        .lineage
        .as_ref()
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| corrupt("no valid \"lineage\""))?;
    let serial = header
        .serial
        .as_ref()
        .and_then(Value::as_u64)
        .ok_or_else(|| corrupt("no valid \"serial\""))?;
    Ok((lineage.to_string(), serial))
}

/// The fields of a state document read before the rest; every other field is skipped
/// without being built.
#[derive(Deserialize)]
struct Header {
    version: Option<Value>,
    lineage: Option<Value>,
    serial: Option<Value>,
    encryption: Option<serde::de::IgnoredAny>,
}

impl Header {
    /// Whether the document has sealed values (an `"encryption"` field).
    fn encrypted(&self) -> bool {
        self.encryption.is_some()
    }
}

/// Reads the header of `bytes`, a JSON object with the supported `version`.
fn header_checked(path: &Path, bytes: &[u8]) -> Result<Header, StateError> {
    let corrupt = |message: String| StateError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let header: Header = serde_json::from_slice(bytes).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            // Every field accepts any JSON value: only a document that is not an
            // object fails here with a data error.
            corrupt("not a JSON object".to_string())
        } else {
            corrupt(format!("invalid JSON: {e}"))
        }
    })?;
    let version = match &header.version {
        None => return Err(corrupt("no \"version\" field".to_string())),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| corrupt(format!("\"version\" is not a whole number: {v}")))?,
    };
    if version != u64::from(FORMAT_VERSION) {
        return Err(StateError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(addr: &str) -> ResourceState {
        ResourceState {
            address: Address::new(addr),
            type_name: "sql_database".into(),
            provider: ProviderKey("service.pg".into()),
            attributes: Attrs::from([("name".to_string(), json!(addr))]),
            sensitive_attributes: vec![],
            dependencies: vec![],
            pending: false,
        }
    }

    /// A damaged file is named for what is wrong with it, read from the header alone.
    #[test]
    fn corrupt_documents_say_what_is_wrong() {
        for (text, says) in [
            ("[1, 2]", "not a JSON object"),
            ("\"state\"", "not a JSON object"),
            ("{\"version\": 1, \"lineage\":", "invalid JSON"),
            ("{\"version\": 1} trailing", "invalid JSON"),
            (
                "{\"lineage\": \"l\", \"resources\": []}",
                "no \"version\" field",
            ),
            ("{\"version\": \"1\"}", "\"version\" is not a whole number"),
        ] {
            let err = decode(Path::new("s.json"), text.as_bytes(), &Keyring::none())
                .err()
                .unwrap_or_else(|| panic!("{text} decoded"));
            assert!(
                matches!(&err, StateError::Corrupt { message, .. } if message.starts_with(says)),
                "{text}: {err:?}"
            );
        }
    }

    /// An encrypted state: fields in the plain order with the header before the
    /// resources; without its header a sealed value is still never read as clear text.
    #[test]
    fn sealed_values_are_opened_or_refused_even_without_the_header() {
        let key = Keyring::from_key([7; 32]);
        let mut s = State::new();
        let mut r = res("a");
        r.attributes.insert("password".into(), json!("s3cret-pw"));
        r.sensitive_attributes = vec!["password".into()];
        s.upsert(r);
        let text = String::from_utf8(encode(&mut s, &key).unwrap()).unwrap();
        assert!(!text.contains("s3cret-pw"));
        let pos = |k: &str| text.find(&format!("\"{k}\"")).unwrap();
        assert!(pos("version") < pos("lineage") && pos("terrace_version") < pos("encryption"));
        assert!(pos("encryption") < pos("resources"));
        let opened = decode(Path::new("s.json"), text.as_bytes(), &key).unwrap();
        assert!(opened.encrypted);
        assert_eq!(opened.state.resources, s.resources);

        // The header removed by hand: the sealed value is opened with the key...
        let mut doc: Value = serde_json::from_str(&text).unwrap();
        doc.as_object_mut().unwrap().remove("encryption");
        let stripped = doc.to_string();
        let opened = decode(Path::new("s.json"), stripped.as_bytes(), &key).unwrap();
        assert_eq!(opened.state.resources, s.resources);
        // ...and refused without it, never decoded as the clear text it is not.
        let err = decode(Path::new("s.json"), stripped.as_bytes(), &Keyring::none())
            .err()
            .expect("refused without a key");
        assert!(!err.to_string().contains("s3cret-pw"), "{err}");
    }

    #[test]
    fn upsert_keeps_sorted_and_replaces() {
        let mut s = State::new();
        s.upsert(res("c"));
        s.upsert(res("a"));
        s.upsert(res("b"));
        let mut b2 = res("b");
        b2.type_name = "sql_user".into();
        s.upsert(b2);
        let addrs: Vec<_> = s.addresses().map(|a| a.as_str()).collect();
        assert_eq!(addrs, ["a", "b", "c"]);
        assert_eq!(s.get(&Address::new("b")).unwrap().type_name, "sql_user");
        assert!(s.get(&Address::new("z")).is_none());
    }

    #[test]
    fn first_creation_times_round_trip_and_are_absent_when_empty() {
        let keys = Keyring::none();
        let mut s = State::new();
        let bytes = encode(&mut s, &keys).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("first_created"));
        s.first_created
            .insert(r#"tenant.clone["a"]"#.into(), "2026-01-01T00:00:00Z".into());
        let bytes = encode(&mut s, &keys).unwrap();
        let back = decode(Path::new("s.json"), &bytes, &keys).unwrap().state;
        assert_eq!(back.first_created, s.first_created);
    }

    #[test]
    fn placements_round_trip_and_are_absent_when_empty() {
        let keys = Keyring::none();
        let mut s = State::new();
        let bytes = encode(&mut s, &keys).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("placements"));
        s.placements
            .insert(r#"tenant.site["a"]"#.into(), r#"host.web["b"]"#.into());
        let bytes = encode(&mut s, &keys).unwrap();
        let back = decode(Path::new("s.json"), &bytes, &keys).unwrap().state;
        assert_eq!(back.placements, s.placements);
    }

    #[test]
    fn remove_returns_resource() {
        let mut s = State::new();
        s.upsert(res("a"));
        s.upsert(res("b"));
        assert_eq!(s.remove(&Address::new("a")).unwrap().address.as_str(), "a");
        assert!(s.remove(&Address::new("a")).is_none());
        assert_eq!(s.resources.len(), 1);
    }

    #[test]
    fn a_state_file_out_of_order_is_sorted_when_read() {
        let s = State::new();
        // Written as a hand-edited file might be: not in address order.
        let mut doc = serde_json::to_value(&s).unwrap();
        doc["resources"] = json!([
            serde_json::to_value(res("b")).unwrap(),
            serde_json::to_value(res("a")).unwrap()
        ]);
        let text = serde_json::to_vec(&doc).unwrap();
        let read = decode(Path::new("s.json"), &text, &crate::crypt::Keyring::none())
            .unwrap()
            .state;
        assert!(read.get(&Address::new("a")).is_some());
        assert!(read.get(&Address::new("b")).is_some());
        assert_eq!(read.resources[0].address, Address::new("a"));
    }

    #[test]
    fn new_states_have_distinct_uuid_lineages() {
        let a = State::new();
        let b = State::new();
        assert_ne!(a.lineage, b.lineage);
        assert!(uuid::Uuid::parse_str(&a.lineage).is_ok());
        assert_eq!(a.version, FORMAT_VERSION);
        assert_eq!(a.serial, 0);
    }

    #[test]
    fn encoding_is_pretty_sorted_and_deterministic() {
        let mut s = State::new();
        let mut r = res("b");
        r.sensitive_attributes = vec!["z".into(), "a".into(), "z".into()];
        r.dependencies = vec![Address::new("y"), Address::new("x")];
        s.resources.push(r);
        s.resources.push(res("a"));
        let bytes = encode(&mut s, &Keyring::none()).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\n  \"version\": 1,"));
        assert!(text.contains("\"type\": \"sql_database\""));
        assert!(text.find("\"a\"").unwrap() < text.find("\"b\"").unwrap());
        assert_eq!(s.resources[1].sensitive_attributes, ["a", "z"]);
        assert_eq!(
            s.resources[1].dependencies,
            [Address::new("x"), Address::new("y")]
        );
        // Top-level keys in declaration order.
        let keys = [
            "version",
            "lineage",
            "serial",
            "terrace_version",
            "resources",
        ];
        let pos: Vec<_> = keys
            .iter()
            .map(|k| text.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(encode(&mut s.clone(), &Keyring::none()).unwrap(), bytes);
        assert_eq!(
            decode(Path::new("x"), &bytes, &Keyring::none())
                .unwrap()
                .state,
            s
        );
    }

    #[test]
    fn encode_rejects_duplicate_addresses() {
        let mut s = State::new();
        s.resources.push(res("a"));
        s.resources.push(res("a"));
        assert!(matches!(
            encode(&mut s, &Keyring::none()),
            Err(StateError::DuplicateAddress { address }) if address.as_str() == "a"
        ));
    }

    #[test]
    fn decode_rejects_other_versions() {
        for v in [0u64, 2, 99] {
            let doc = json!({"version": v, "lineage": "l", "serial": 1,
                             "terrace_version": "9", "resources": []});
            let err = decode(
                Path::new("/p/s.json"),
                doc.to_string().as_bytes(),
                &Keyring::none(),
            )
            .err()
            .unwrap();
            assert!(
                matches!(err, StateError::UnsupportedVersion { found, supported: 1, .. } if found == v),
                "{err}"
            );
            assert!(err.to_string().contains("/p/s.json"));
        }
        let doc = json!({"version": 2, "something": "new"});
        let err = decode(Path::new("s"), doc.to_string().as_bytes(), &Keyring::none())
            .err()
            .unwrap();
        assert!(err.to_string().contains("newer terrace"), "{err}");
    }

    #[test]
    fn decode_reports_corruption() {
        let cases: [&[u8]; 6] = [
            b"",
            b"{\"version\": 1, ",
            b"[]",
            b"{\"lineage\": \"x\"}",
            b"{\"version\": \"1\"}",
            b"{\"version\": 1, \"lineage\": \"x\"}",
        ];
        for bytes in cases {
            let err = decode(Path::new("/p/s.json"), bytes, &Keyring::none())
                .err()
                .unwrap();
            assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains("/p/s.json"));
        }
    }

    #[test]
    fn decode_rejects_duplicate_addresses_as_corrupt() {
        let r = serde_json::to_value(res("a")).unwrap();
        let doc = json!({"version": 1, "lineage": "l", "serial": 1,
                         "terrace_version": "9", "resources": [r, r]});
        let err = decode(Path::new("s"), doc.to_string().as_bytes(), &Keyring::none())
            .err()
            .unwrap();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    }
}
