//! Saved plans (`terrace plan --out FILE`, `terrace apply FILE`).
//!
//! A saved plan holds no secrets: it records the redacted plan and which state it was
//! made against. Applying it re-plans against the same state and the live systems and
//! proceeds only if the result is identical, so `apply FILE` does exactly what `plan`
//! printed, or refuses.
//!
//! Redaction alone would hide a changed secret (both plans show `(sensitive value)`),
//! so the file also carries an HMAC-SHA256 of every sensitive value the plan would
//! write. Its key is a random file next to the state (mode 0600), never in the plan: a
//! plan file shared for review cannot be used to guess the secrets.

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
    /// The plan, redacted.
    pub plan: Plan,
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
