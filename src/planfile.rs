//! Saved plans (`terrace plan --out FILE`, `terrace apply FILE`).
//!
//! A saved plan holds no secrets: it records the redacted plan and which state it was
//! made against. Applying it re-plans against the same state and the live systems and
//! proceeds only if the result is identical, so `apply FILE` does exactly what `plan`
//! printed, or refuses.
//!
//! Redaction alone would hide a changed secret (both plans show `(sensitive value)`),
//! so the file also carries an HMAC-SHA256 of every sensitive value the plan would
//! write. Its key ([`PlanKey`]) is never in the plan: a plan file shared for review
//! cannot be used to guess the secrets. The key is, first found:
//!
//! 1. `TERRACE_PLAN_KEY` (base64 of 32 bytes) or `TERRACE_PLAN_KEY_FILE` (a file of mode
//!    0600 holding the same), read by the state key's rules
//!    ([`terrace_state::raw_key_from_env`]): one secret shared by the jobs that plan and
//!    apply, on different checkouts;
//! 2. derived from the state key when state encryption is configured
//!    ([`terrace_state::Keyring::derive_key`], HKDF-SHA256 with its own purpose), so
//!    that CI needs one secret;
//! 3. a random file beside the state (`<state>.plan-key`, for a PostgreSQL state in the
//!    project's `.terrace/`), created by `plan --out`: good for one checkout only.
//!
//! The plan records the key's public fingerprint and where it came from, so `apply
//! FILE` with another key (or none) is refused naming the variables, rather than
//! reported as a stale plan.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use terrace_plan::{Plan, ResourceChange};

/// Version of the saved-plan file format.
pub const PLANFILE_VERSION: u32 = 1;

/// The contents of a saved plan file.
#[derive(Debug, Serialize, Deserialize)]
pub struct SavedPlan {
    /// File format version.
    pub format_version: u32,
    /// terrace version that wrote it.
    pub terrace_version: String,
    /// Lineage of the state the plan was made against (None: no state yet).
    pub lineage: Option<String>,
    /// Serial of that state.
    pub serial: Option<u64>,
    /// HMAC of the sensitive values the plan writes (hex).
    pub secrets_digest: String,
    /// The project name for the markdown marker, fixed when the plan is made so that
    /// `show` renders the same comment on any machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `--target` / `--replace` the plan was made with: `apply FILE` plans the same way.
    #[serde(default, skip_serializing_if = "terrace_plan::Focus::is_empty")]
    pub focus: terrace_plan::Focus,
    /// The public fingerprint of the key of `secrets_digest` ([`PlanKey::id`]); absent
    /// in plans saved before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_key: Option<String>,
    /// Where that key came from ([`PlanKey::origin`]), for messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_key_from: Option<String>,
    /// The plan, redacted.
    pub plan: Plan,
}

/// The variable that gives the saved-plan key (`..._FILE`: a file holding it).
pub const PLAN_KEY_VAR: &str = "TERRACE_PLAN_KEY";

/// The key of a saved plan's secrets digest. Never printed or saved.
pub struct PlanKey {
    key: Vec<u8>,
    /// Where it came from: `TERRACE_PLAN_KEY`, `TERRACE_PLAN_KEY_FILE`, `the state key`
    /// or `this checkout's .terrace/ file` (never the key).
    pub origin: String,
}

impl std::fmt::Debug for PlanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlanKey({}, from {})", self.id(), self.origin)
    }
}

/// Where a key from the file beside the state is said to come from.
const LOCAL_ORIGIN: &str = "this checkout's .terrace/ file";

impl PlanKey {
    /// The key bytes, for [`secrets_digest`] and [`SavedPlan::matches`].
    pub fn bytes(&self) -> &[u8] {
        &self.key
    }

    /// A public fingerprint: 8 hex digits of an HMAC under the key, which tell two keys
    /// apart and nothing about either.
    pub fn id(&self) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(b"terrace plan key id");
        mac.finalize().into_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether this key is the checkout's own file (useless on another checkout).
    pub fn is_local(&self) -> bool {
        self.origin == LOCAL_ORIGIN
    }

    /// The saved-plan key for the state in `backend` (project `dir`) with `lineage`
    /// (the one the plan is made against): from the environment, from the state key, or
    /// from the file beside the state, which `create` makes if missing (`plan --out`);
    /// `None` if there is none and `create` is false (`apply FILE`).
    pub fn find(
        backend: &terrace_state::Backend,
        dir: &Path,
        lineage: Option<&str>,
        create: bool,
    ) -> miette::Result<Option<PlanKey>> {
        if let Some((key, var)) = terrace_state::raw_key_from_env(PLAN_KEY_VAR, "plan key")
            .map_err(miette::Report::new)?
        {
            return Ok(Some(PlanKey {
                key: key.to_vec(),
                origin: var,
            }));
        }
        if let Some(key) = backend
            .keys()
            .derive_key(lineage.unwrap_or_default(), "saved-plan-digest")
        {
            return Ok(Some(PlanKey {
                key: key.to_vec(),
                origin: "the state key".to_string(),
            }));
        }
        let path = key_path(&backend.companion_base(dir));
        let key = if create {
            load_or_create_key(&path)?
        } else {
            match std::fs::read(&path) {
                Ok(k) => k,
                Err(_) => return Ok(None),
            }
        };
        Ok(Some(PlanKey {
            key,
            origin: LOCAL_ORIGIN.to_string(),
        }))
    }
}

/// The key file for secret digests, beside the state file.
pub fn key_path(state_path: &Path) -> PathBuf {
    let mut name = state_path.file_name().unwrap_or_default().to_os_string();
    name.push(".plan-key");
    state_path.with_file_name(name)
}

/// Reads the digest key, creating it (mode 0600) on first use.
pub fn load_or_create_key(path: &Path) -> miette::Result<Vec<u8>> {
    if let Ok(key) = std::fs::read(path) {
        return Ok(key);
    }
    let mut key = vec![0u8; 32];
    rand::rng().fill_bytes(&mut key);
    // Beside a PostgreSQL state the key lives in the project's `.terrace/`.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| miette::miette!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(&key))
        .map_err(|e| miette::miette!("cannot create {}: {e}", path.display()))?;
    Ok(key)
}

/// HMAC over every sensitive value the actionable changes would write, in a canonical
/// order, so that any changed secret changes the digest.
pub fn secrets_digest(plan: &Plan, key: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for c in plan.actionable() {
        for (name, value) in c.after.iter().flatten() {
            if c.sensitive.contains(name) {
                for part in [c.address.as_str(), name.as_str(), &value.to_string()] {
                    mac.update(&(part.len() as u64).to_le_bytes());
                    mac.update(part.as_bytes());
                }
            }
        }
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SavedPlan {
    /// Reads and checks a plan file.
    pub fn read(path: &Path) -> miette::Result<SavedPlan> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| miette::miette!("cannot read plan file {}: {e}", path.display()))?;
        let saved: SavedPlan = serde_json::from_str(&text)
            .map_err(|e| miette::miette!("{} is not a terrace plan file: {e}", path.display()))?;
        if saved.format_version != PLANFILE_VERSION {
            miette::bail!(
                "{} has plan format {}, this terrace reads format {PLANFILE_VERSION}",
                path.display(),
                saved.format_version
            );
        }
        Ok(saved)
    }

    /// Writes the plan file atomically (temp file, fsync, rename), mode 0600.
    pub fn write(&self, path: &Path) -> miette::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("plan serialises");
        terrace_state::write_atomically(path, text.as_bytes())
            .map_err(|e| miette::miette!("cannot write plan file {}: {e}", path.display()))
    }

    /// Refuses to go on unless `key` is the key this plan was saved with (plans saved
    /// before the key's fingerprint was recorded are checked by their digest alone).
    pub fn check_key(&self, key: Option<&PlanKey>) -> miette::Result<()> {
        let Some(saved_id) = &self.plan_key else {
            return Ok(());
        };
        let saved_from = self.plan_key_from.as_deref().unwrap_or("an unknown source");
        let help = format!(
            "set {PLAN_KEY_VAR} (base64 of 32 bytes) or {PLAN_KEY_VAR}_FILE (a file of mode \
             0600 holding it) to the key `terrace plan --out` used, in both jobs: e.g. one \
             CI secret; or, with state encryption, the same state key and no {PLAN_KEY_VAR}"
        );
        match key {
            None => miette::bail!(
                help = help,
                "cannot check the saved plan: it was saved with plan key {saved_id} (from \
                 {saved_from}), and no plan key is configured here ({PLAN_KEY_VAR}, \
                 {PLAN_KEY_VAR}_FILE or a state key); nothing was changed"
            ),
            Some(k) if &k.id() != saved_id => miette::bail!(
                help = help,
                "cannot check the saved plan: it was saved with plan key {saved_id} (from \
                 {saved_from}), but the plan key here is {} (from {}); nothing was changed",
                k.id(),
                k.origin
            ),
            Some(_) => Ok(()),
        }
    }

    /// True if `fresh` (made now, unredacted) would do exactly what this saved plan
    /// showed, secrets included.
    pub fn matches(&self, fresh: &Plan, key: &[u8]) -> bool {
        fn actions(p: &Plan) -> Vec<&ResourceChange> {
            p.actionable().collect()
        }
        let digest = secrets_digest(fresh, key);
        let fresh = fresh.redacted();
        actions(&self.plan) == actions(&fresh)
            && self.plan.conflicts == fresh.conflicts
            && self.secrets_digest == digest
    }
}
