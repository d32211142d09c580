//! Saved plans (`terrace plan --out FILE`, `terrace apply FILE`).
//!
//! A saved plan holds no secrets: it records the redacted plan and which state it was
//! made against. Applying it re-plans against the same state and the live systems and
//! proceeds only if the result is identical, so `apply FILE` does exactly what `plan`
//! printed, or refuses.

use std::path::Path;

use serde::{Deserialize, Serialize};
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
    /// The plan, redacted.
    pub plan: Plan,
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

    /// Writes the plan file (mode 0600: it describes infrastructure, if not secrets).
    pub fn write(&self, path: &Path) -> miette::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let text = serde_json::to_string_pretty(self).expect("plan serialises");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()).map(|_| f))
            .map_err(|e| miette::miette!("cannot write plan file {}: {e}", path.display()))?;
        f.flush().ok();
        Ok(())
    }

    /// True if `fresh` (made now) would do exactly what this saved plan showed.
    pub fn matches(&self, fresh: &Plan) -> bool {
        fn actions(p: &Plan) -> Vec<&ResourceChange> {
            p.actionable().collect()
        }
        let fresh = fresh.redacted();
        actions(&self.plan) == actions(&fresh) && self.plan.conflicts == fresh.conflicts
    }
}
